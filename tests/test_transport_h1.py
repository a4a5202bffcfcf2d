"""H1Transport (the default transport) against real loopback servers written here (asyncio, 127.0.0.1):
keep-alive pool and its bounds, framing (length, chunked, close), decoding, limits, timeouts with misbehaving
servers, cancellation, stale connections, TLS with SNI, IPv6, event-loop changes. Every wait is short and bounded."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infermux.errors import APIConnectionError, APITimeoutError, ConfigurationError, ResponseTooLargeError
from infermux.transport import H1Transport, HTTPRequest, Limits, Timeouts

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("error::ResourceWarning")]

SECRET = "sk-live-TOPSECRET-0123456789"
FAST = Timeouts(connect=1.0, read=1.0)


@dataclass
class Req:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    conn: int  # which connection (0, 1, ...) it came on

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


Handler = Callable[[Req, asyncio.StreamWriter], Awaitable[bool]]  # True: keep the connection


def resp(status: str = "200 OK", headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    h = {"Content-Length": str(len(body)), **(headers or {})}
    return f"HTTP/1.1 {status}\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in h.items()).encode() + b"\r\n" + body


def fixed(data: bytes, keep: bool = True) -> Handler:
    async def handler(req: Req, w: asyncio.StreamWriter) -> bool:
        w.write(data)
        await w.drain()
        return keep

    return handler


@dataclass
class Server:
    """Reads requests (Content-Length bodies) on every connection and lets ``handler`` answer them."""

    handler: Handler = field(default_factory=lambda: fixed(resp(body=b"ok")))
    host: str = "127.0.0.1"
    ssl: ssl.SSLContext | None = None
    requests: list[Req] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    closed_by_client: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    def url(self, path: str = "/x") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl else 'http'}://{host}:{self.port}{path}"

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cid = self.connections
        self.connections += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as e:
                    if not e.partial:
                        self.closed_by_client += 1
                    return
                lines = head[:-4].decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [(k, v.strip()) for k, _, v in (x.partition(":") for x in lines[1:])]
                n = sum(int(v) for k, v in headers if k.lower() == "content-length")
                body = await reader.readexactly(n) if n else b""
                req = Req(method, target, headers, body, cid)
                self.requests.append(req)
                if not await self.handler(req, writer):
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._conn, self.host, 0, ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def until(cond: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait (bounded) for something the loop delivers: a close seen by the other side."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "not within the bound"
        await asyncio.sleep(0.005)


@pytest.fixture
async def transport() -> AsyncIterator[H1Transport]:
    t = H1Transport()
    yield t
    await t.aclose()


async def get(t: H1Transport, url: str, method: str = "GET", body: bytes | None = None, **kw: Any) -> tuple[int, bytes]:
    r = await t.send(HTTPRequest(method, url, kw.pop("headers", {}), body, kw.pop("timeouts", FAST), **kw))
    return r.status, await r.read()


def idle(t: H1Transport) -> int:
    return sum(len(p.idle) for p in t._pools.values())


# ---------------------------------------------------------------------- keep-alive pool


async def test_keep_alive_reuses_one_connection(transport: H1Transport) -> None:
    async with Server() as srv:
        for _ in range(5):
            assert await get(transport, srv.url("/a?b=1"), "POST", b"{}") == (200, b"ok")
        assert srv.connections == 1 and len(srv.requests) == 5
        r = srv.requests[0]
        assert r.target == "/a?b=1" and r.body == b"{}"
        assert r.header("host") == [f"127.0.0.1:{srv.port}"] and r.header("content-length") == ["2"]
        assert r.header("accept-encoding")[0].startswith("gzip, deflate")


async def test_pool_bound_and_lifo_reuse() -> None:
    async def slow(req: Req, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.03)
        w.write(resp(body=str(req.conn).encode()))
        return True

    t = H1Transport(max_connections=2)
    try:
        async with Server(slow) as srv:
            results = await asyncio.gather(*(get(t, srv.url()) for _ in range(6)))
            assert [s for s, _ in results] == [200] * 6
            assert srv.max_open == 2 and srv.connections == 2  # bounded, and waiting requests reused them
            assert idle(t) == 2
            last = t._pools[("http", "127.0.0.1", srv.port)].idle[-1]
            # sequential requests take the most recently returned connection (LIFO)
            for _ in range(3):
                r = await t.send(HTTPRequest("GET", srv.url(), {}, timeouts=FAST))
                assert r._conn is last  # type: ignore[attr-defined]
                await r.read()
    finally:
        await t.aclose()


async def test_waiting_for_a_free_connection_is_bounded_by_the_connect_timeout() -> None:
    t = H1Transport(max_connections=1)
    try:
        async with Server() as srv:
            held = await t.send(HTTPRequest("GET", srv.url(), {}, timeouts=FAST))  # not read yet: holds the slot
            with pytest.raises(APITimeoutError, match="free connection"):
                await t.send(HTTPRequest("GET", srv.url(), {}, timeouts=Timeouts(connect=0.1, read=1.0)))
            assert await held.read() == b"ok"  # released: the next request gets it
            assert await get(t, srv.url()) == (200, b"ok")
            assert srv.connections == 1
    finally:
        await t.aclose()


async def test_waiting_requests_are_served_first_come_first_served() -> None:
    """A request that frees a connection and at once sends again does not jump the queue of waiting ones."""
    t = H1Transport(max_connections=1)
    try:
        async with Server() as srv:
            held = await t.send(HTTPRequest("GET", srv.url("/x"), {}, timeouts=FAST))
            waiting = asyncio.create_task(get(t, srv.url("/waiter")))
            await asyncio.sleep(0.02)  # it waits for the one connection
            await held.read()  # frees it ...
            assert await get(t, srv.url("/again")) == (200, b"ok")  # ... and asks again before the waiter ran
            assert await waiting == (200, b"ok")
            assert [r.target for r in srv.requests] == ["/x", "/waiter", "/again"]
    finally:
        await t.aclose()


async def test_connection_close_and_http10_are_not_reused(transport: H1Transport) -> None:
    async with Server(fixed(resp(headers={"Connection": "close"}, body=b"ok"), keep=True)) as srv:
        for _ in range(3):
            assert await get(transport, srv.url()) == (200, b"ok")
        assert srv.connections == 3 and idle(transport) == 0
    async with Server(fixed(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")) as srv:
        for _ in range(2):
            assert await get(transport, srv.url()) == (200, b"ok")
        assert srv.connections == 2


async def test_partly_read_body_closes_the_connection_whole_body_keeps_it(transport: H1Transport) -> None:
    async def two_parts(req: Req, w: asyncio.StreamWriter) -> bool:
        w.write(resp(body=b"a" * 10)[:-5])  # head and half the body; the rest later
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(b"aaaaa")
        return True

    async with Server(two_parts) as srv:
        r = await transport.send(HTTPRequest("GET", srv.url(), {}, timeouts=FAST))
        chunks = r.iter_chunks()
        assert await chunks.__anext__() == b"aaaaa"
        await chunks.aclose()  # stopped early, the rest not yet arrived
        await r.aclose()
        await until(lambda: srv.closed_by_client == 1)
        assert idle(transport) == 0
    async with Server(fixed(resp(body=b"error body"))) as srv:
        r = await transport.send(HTTPRequest("GET", srv.url(), {}, timeouts=FAST))
        await asyncio.sleep(0.02)
        await r.aclose()  # not read, but the whole body had arrived: reusable
        assert idle(transport) == 1
        assert await get(transport, srv.url()) == (200, b"error body")
        assert srv.connections == 1


async def test_server_closing_an_idle_connection_drops_it_from_the_pool(transport: H1Transport) -> None:
    async with Server(fixed(resp(body=b"ok"), keep=False)) as srv:  # answers with keep-alive, then closes
        assert await get(transport, srv.url(), "POST", b"x") == (200, b"ok")
        await until(lambda: idle(transport) == 0)  # the close was seen: never used for the next request
        assert await get(transport, srv.url(), "POST", b"x") == (200, b"ok")
        assert srv.connections == 2


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_stale_connection_crossing_a_request(transport: H1Transport, method: str) -> None:
    """The server reads the next request on a kept connection, then closes without answering (its idle close
    crossing the request): an idempotent request is resent once on a fresh connection, a POST fails typed."""

    async def close_second(req: Req, w: asyncio.StreamWriter) -> bool:
        if len(srv.requests) == 2:
            return False  # close without a byte
        w.write(resp(body=b"ok"))
        return True

    srv = Server(close_second)
    async with srv:
        assert await get(transport, srv.url(), method, b"1" if method == "POST" else None) == (200, b"ok")
        if method == "GET":
            assert await get(transport, srv.url()) == (200, b"ok")
            assert srv.connections == 2 and len(srv.requests) == 3
        else:
            with pytest.raises(APIConnectionError, match="without answering") as ei:
                await get(transport, srv.url(), "POST", b"2")
            assert ei.value.retryable and len(srv.requests) == 2  # not resent: the retry layer decides


async def test_aclose_closes_pooled_connections_and_the_transport_can_be_used_again() -> None:
    t = H1Transport()
    async with Server() as srv:
        await get(t, srv.url())
        await t.aclose()
        await until(lambda: srv.closed_by_client == 1)
        assert await get(t, srv.url()) == (200, b"ok")
        await t.aclose()


def test_a_new_event_loop_gets_a_new_pool() -> None:
    t = H1Transport()

    async def once(srv: Server) -> None:
        assert await get(t, srv.url()) == (200, b"ok")

    async def main() -> None:
        async with Server() as srv:
            await once(srv)

    asyncio.run(main())
    asyncio.run(main())  # the first loop's connection is gone; no error, no leak
    asyncio.run(t.aclose())


# ---------------------------------------------------------------------- framing and parsing


async def test_chunked_with_extensions_and_trailers_byte_by_byte(transport: H1Transport) -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n"
    )

    async def dribble(req: Req, w: asyncio.StreamWriter) -> bool:
        for i in range(len(raw)):
            w.write(raw[i : i + 1])
            await w.drain()
        return True

    async with Server(dribble) as srv:
        assert await get(transport, srv.url()) == (200, b"hello world")
        assert await get(transport, srv.url()) == (200, b"hello world")
        assert srv.connections == 1  # trailers consumed, the connection stays in step


async def test_stream_yields_chunks_as_they_arrive(transport: H1Transport) -> None:
    gate = asyncio.Event()

    async def sse(req: Req, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(3):
            w.write(b"9\r\ndata: %d\n\n\r\n" % i)
            await w.drain()
            await gate.wait()
            gate.clear()
        w.write(b"0\r\n\r\n")
        return True

    async with Server(sse) as srv:
        r = await transport.send(HTTPRequest("POST", srv.url(), {}, b"{}", FAST))
        got = []
        async for chunk in r.iter_chunks():
            got.append(chunk)  # each arrives before the server sends the next
            gate.set()
        assert got == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
        await r.aclose()
        assert idle(transport) == 1


async def test_close_delimited_body_1xx_head_204_304(transport: H1Transport) -> None:
    async with Server(fixed(b"HTTP/1.1 200 OK\r\n\r\nuntil the close", keep=False)) as srv:
        assert await get(transport, srv.url()) == (200, b"until the close")
        assert idle(transport) == 0
    cont = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n" + resp(body=b"ok")
    async with Server(fixed(cont)) as srv:
        assert await get(transport, srv.url()) == (200, b"ok")
    async with Server(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")) as srv:  # HEAD: no body follows
        assert await get(transport, srv.url(), "HEAD") == (200, b"")
        assert await get(transport, srv.url(), "HEAD") == (200, b"")
        assert srv.connections == 1
    for status in ("204 No Content", "304 Not Modified"):
        async with Server(fixed(f"HTTP/1.1 {status}\r\n\r\n".encode())) as srv:
            assert (await get(transport, srv.url()))[1] == b""
            assert (await get(transport, srv.url()))[1] == b""
            assert srv.connections == 1


async def test_response_headers_lower_cased_last_repeat_wins(transport: H1Transport) -> None:
    raw = b"HTTP/1.1 201 Created\r\nX-Request-ID: a\r\nSet-Cookie: 1\r\nset-cookie: 2\r\nContent-Length: 0\r\n\r\n"
    async with Server(fixed(raw)) as srv:
        r = await transport.send(HTTPRequest("GET", srv.url(), {}, timeouts=FAST))
        assert r.status == 201 and r.headers["x-request-id"] == "a" and r.headers["set-cookie"] == "2"
        await r.read()


async def test_request_headers_ours_win_no_duplicates(transport: H1Transport) -> None:
    async with Server() as srv:
        headers = {"Host": "evil", "content-length": "99", "Connection": "close", "X-A": "1", "x-a": "2"}
        assert await get(transport, srv.url(), "POST", b"abc", headers=headers) == (200, b"ok")
        r = srv.requests[0]
        assert r.header("host") == [f"127.0.0.1:{srv.port}"] and r.header("content-length") == ["3"]
        assert r.header("connection") == [] and r.header("x-a") == ["2"]
        assert await get(transport, srv.url(), "POST") == (200, b"ok")
        assert srv.requests[1].header("content-length") == ["0"]


@pytest.mark.parametrize(
    "headers",
    [{"authorization": f"Bearer {SECRET}\r\nx: y"}, {"x\r\nevil": "1"}, {"bad name": "1"}, {"x": "a\x00b"}],
)
async def test_header_injection_is_a_configuration_error(transport: H1Transport, headers: dict[str, str]) -> None:
    async with Server() as srv:
        with pytest.raises(ConfigurationError) as ei:
            await get(transport, srv.url("/x?key=" + SECRET), headers=headers)
        assert SECRET not in str(ei.value) and not srv.requests


async def test_a_method_that_is_not_a_token_is_a_configuration_error(transport: H1Transport) -> None:
    async with Server() as srv:
        with pytest.raises(ConfigurationError):
            await get(transport, srv.url(), "GET /evil HTTP/1.1\r\nX:")
        assert not srv.requests


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x", "ftp://127.0.0.1/x", "http:///x"])
async def test_invalid_url_is_a_configuration_error(transport: H1Transport, url: str) -> None:
    with pytest.raises(ConfigurationError):
        await get(transport, url)


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"HTTP/1.1 abc\r\n\r\n", "status line"),
        (b"SMTP ready\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", "CRLF"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "before the response was complete"),
    ],
)
async def test_broken_answers_are_typed_connection_errors(transport: H1Transport, answer: bytes, match: str) -> None:
    async with Server(fixed(answer, keep=False)) as srv:
        with pytest.raises(APIConnectionError, match=match) as ei:
            await get(transport, srv.url("/x?key=" + SECRET), headers={"authorization": SECRET})
        assert ei.value.retryable and SECRET not in str(ei.value)


# ---------------------------------------------------------------------- decoding


def _deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODINGS: dict[str, Callable[[bytes], bytes]] = {"gzip": gzip.compress, "deflate": zlib.compress}


@pytest.mark.parametrize("enc", ["gzip", "deflate", "deflate-raw", "br"])
@pytest.mark.parametrize("stream", [False, True])
async def test_compressed_bodies_are_decoded(transport: H1Transport, enc: str, stream: bool) -> None:
    data = b"data: hello\n\n" * 500
    if enc == "br":
        brotli = pytest.importorskip("brotli")
        body, name = brotli.compress(data), "br"
    elif enc == "deflate-raw":
        body, name = _deflate_raw(data), "deflate"
    else:
        body, name = ENCODINGS[enc](data), enc
    async with Server(fixed(resp(headers={"Content-Encoding": name}, body=body))) as srv:
        r = await transport.send(HTTPRequest("GET", srv.url(), {}, timeouts=FAST))
        got = b"".join([c async for c in r.iter_chunks()]) if stream else await r.read()
        assert got == data


async def test_undecodable_bodies_are_typed(transport: H1Transport) -> None:
    async with Server(fixed(resp(headers={"Content-Encoding": "gzip"}, body=b"abcde"))) as srv:
        with pytest.raises(APIConnectionError, match="gzip"):
            await get(transport, srv.url())
    async with Server(fixed(resp(headers={"Content-Encoding": "zstd"}, body=b"abcde"))) as srv:
        with pytest.raises(APIConnectionError, match="zstd"):
            await get(transport, srv.url())


# ---------------------------------------------------------------------- limits


async def test_declared_length_over_the_limit_fails_before_reading(transport: H1Transport) -> None:
    async def head_then_stall(req: Req, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        await asyncio.sleep(5)
        return False

    async with Server(head_then_stall) as srv:
        r = await transport.send(HTTPRequest("GET", srv.url(), {}, None, FAST, Limits(max_body_bytes=1000)))
        with pytest.raises(ResponseTooLargeError, match="declared"):
            await asyncio.wait_for(r.read(), 0.5)  # not after the read timeout: at once
        assert idle(transport) == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_chunked_and_compressed_bodies_are_bounded(transport: H1Transport, stream: bool) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"a" * 1024 + b"\r\n" * 1
    bomb = gzip.compress(b"\0" * 5_000_000)  # 5 MB from ~5 KB
    limits = Limits(max_body_bytes=1000, max_stream_bytes=1000)
    for answer in (chunked + b"0\r\n\r\n", resp(headers={"Content-Encoding": "gzip"}, body=bomb)):
        async with Server(fixed(answer)) as srv:
            r = await transport.send(HTTPRequest("GET", srv.url(), {}, None, FAST, limits))
            with pytest.raises(ResponseTooLargeError):
                if stream:
                    async for _ in r.iter_chunks():
                        pass
                else:
                    await r.read()


async def test_slow_consumer_pauses_reading(transport: H1Transport) -> None:
    async def flood(req: Req, w: asyncio.StreamWriter) -> bool:
        body = b"x" * (8 * 1024 * 1024)
        w.write(resp(body=body))
        await w.drain()
        return True

    async with Server(flood) as srv:
        r = await transport.send(HTTPRequest("GET", srv.url(), {}, timeouts=Timeouts(connect=1, read=5)))
        conn = r._conn  # type: ignore[attr-defined]
        chunks = r.iter_chunks()
        total = len(await chunks.__anext__())
        await until(lambda: conn.paused)  # the consumer holds off: the transport stops reading
        await asyncio.sleep(0.05)
        assert conn.queued < 1024 * 1024  # bounded in memory, not the whole 8 MB
        async for c in chunks:
            total += len(c)
        assert total == 8 * 1024 * 1024 and idle(transport) == 1


# ---------------------------------------------------------------------- timeouts, refusal, cancellation


async def test_misbehaving_servers_time_out_typed_and_bounded(transport: H1Transport) -> None:
    async def silent(req: Req, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def stall_mid_body(req: Req, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await w.drain()
        await asyncio.sleep(5)
        return False

    short = Timeouts(connect=1.0, read=0.15)
    loop = asyncio.get_running_loop()
    async with Server(silent) as srv:
        t0 = loop.time()
        with pytest.raises(APITimeoutError, match="timed out"):
            await get(transport, srv.url("/x?key=" + SECRET), timeouts=short)
        assert 0.1 < loop.time() - t0 < 1.0
    async with Server(stall_mid_body) as srv:
        with pytest.raises(APITimeoutError):
            await get(transport, srv.url(), timeouts=short)
        r = await transport.send(HTTPRequest("GET", srv.url(), {}, timeouts=short))
        chunks = r.iter_chunks()
        assert await chunks.__anext__() == b"abc"
        with pytest.raises(APITimeoutError, match="next stream chunk"):
            await chunks.__anext__()
    assert idle(transport) == 0 and not transport._active


async def test_refused_connection_is_a_typed_error(transport: H1Transport) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(APIConnectionError, match="could not reach") as ei:
            await get(transport, f"http://127.0.0.1:{port}/x?key={SECRET}")
    assert SECRET not in str(ei.value) and ei.value.retryable


@pytest.mark.parametrize("phase", ["head", "body", "stream"])
async def test_cancellation_closes_the_connection_and_frees_the_slot(phase: str) -> None:
    async def slow(req: Req, w: asyncio.StreamWriter) -> bool:
        if phase != "head":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await w.drain()
        await asyncio.sleep(5)
        return False

    t = H1Transport(max_connections=1)
    try:
        async with Server(slow) as srv:

            async def call() -> None:
                r = await t.send(HTTPRequest("GET", srv.url(), {}, timeouts=Timeouts(connect=1, read=5)))
                if phase == "stream":
                    async for _ in r.iter_chunks():
                        pass
                else:
                    await r.read()

            task = asyncio.create_task(call())
            await until(lambda: len(srv.requests) == 1)
            await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(lambda: not t._conns)  # closed (its connection_lost ran), not pooled
            assert t._active == 0 and idle(t) == 0
            with pytest.raises(APITimeoutError) as ei:  # the one slot is free again: it times out on the server
                await get(t, srv.url(), timeouts=Timeouts(connect=0.2, read=0.1))
            assert "free connection" not in str(ei.value)
    finally:
        await t.aclose()


# ---------------------------------------------------------------------- TLS, IPv6


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    pytest.importorskip("cryptography")
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_https_with_sni_and_verification(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    async with Server(ssl=server_ctx) as srv:
        t = H1Transport(ssl=client_ctx)
        try:
            url = f"https://localhost:{srv.port}/x"
            for _ in range(2):
                assert await get(t, url) == (200, b"ok")
            assert names[0] == "localhost" and srv.connections == 1
        finally:
            await t.aclose()
        t = H1Transport()  # the default context does not trust a self-signed certificate
        try:
            with pytest.raises(APIConnectionError, match="could not reach"):
                await get(t, srv.url())
        finally:
            await t.aclose()


async def test_ipv6_literal(transport: H1Transport) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = Server(host="::1")
        await srv.__aenter__()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert await get(transport, srv.url("/v6?q=1")) == (200, b"ok")
        assert srv.requests[0].header("host") == [f"[::1]:{srv.port}"] and srv.requests[0].target == "/v6?q=1"
    finally:
        await srv.__aexit__()


def test_runs_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        t = H1Transport()
        try:
            async with Server(fixed(resp(headers={"Content-Encoding": "gzip"}, body=gzip.compress(b"u" * 999)))) as srv:
                for _ in range(3):
                    assert await get(t, srv.url()) == (200, b"u" * 999)
                assert srv.connections == 1
        finally:
            await t.aclose()

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


# ---------------------------------------------------------------------- choosing the transport


async def test_default_is_h1_and_aiohttp_stays_available_by_name() -> None:
    from infermux.client import AsyncClient
    from infermux.endpoint import EndpointConfig
    from infermux.transport import AiohttpTransport

    msg = {"role": "assistant", "content": "hi"}
    choice = {"index": 0, "message": msg, "finish_reason": "stop"}
    body = json.dumps({"id": "c", "object": "chat.completion", "model": "m", "choices": [choice]}).encode()
    async with Server(fixed(resp(headers={"Content-Type": "application/json"}, body=body))) as srv:
        cfg = EndpointConfig(name="e", provider="openai", base_url=srv.url("/v1"), model="m")
        for name, cls in ((None, H1Transport), ("aiohttp", AiohttpTransport), ("h1", H1Transport)):
            client = AsyncClient([cfg], transport=name)
            try:
                assert isinstance(client.endpoints[0].transport, cls)
                assert (await client.chat("hello")).text == "hi"
            finally:
                await client.aclose()
        with pytest.raises(ConfigurationError, match="unknown transport"):
            AsyncClient([cfg], transport="curl")


async def test_connect_timeout_is_typed_and_bounded(transport: H1Transport) -> None:
    """A listener whose accept queue is full drops further SYNs: the connect hangs until Timeouts.connect."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):  # fill the accept queue (never accepted)
            s = socket.socket()
            s.setblocking(False)
            fillers.append(s)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            await get(transport, f"http://127.0.0.1:{port}/x", timeouts=Timeouts(connect=0.2, read=0.2))
        except APITimeoutError as e:
            assert "timed out connecting" in str(e), str(e)
            assert loop.time() - t0 < 1.5
            return
        except APIConnectionError:
            pytest.skip("this kernel refuses instead of dropping SYNs on a full accept queue")
        pytest.skip("this kernel accepted the connection")
    finally:
        for s in fillers:
            s.close()
        listener.close()


# ---------------------------------------------------------------------- review: framing and write stalls


async def test_differing_repeated_content_lengths_are_a_protocol_error(transport: H1Transport) -> None:
    """Two Content-Length values that differ (RFC 9112 6.3: unrecoverable): not "the last wins", which would
    read a body of another length than a parser that takes the first (response splitting)."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nokabc"
    async with Server(fixed(answer, keep=False)) as srv:
        with pytest.raises(APIConnectionError, match="Content-Length"):
            await get(transport, srv.url())
    same = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
    async with Server(fixed(same)) as srv:
        assert await get(transport, srv.url()) == (200, b"ok")


async def test_content_length_and_chunked_together_is_not_reused(transport: H1Transport) -> None:
    """Both Transfer-Encoding and Content-Length (RFC 9112 6.3: chunked wins, and the connection must not carry
    another request: the two framings may disagree on where the answer ends)."""
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    async with Server(fixed(answer)) as srv:
        assert await get(transport, srv.url()) == (200, b"abc")
        assert idle(transport) == 0
        assert await get(transport, srv.url()) == (200, b"abc")
        assert srv.connections == 2


async def test_read_timeout_fires_when_the_server_never_reads_the_request_body() -> None:
    """A server that accepts and never reads: the request body stays in our write buffer. The read timeout
    may wait while the body is still leaving, but not forever when nothing leaves."""
    accepted: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    t = H1Transport()
    loop = asyncio.get_running_loop()
    try:
        t0 = loop.time()
        with pytest.raises(APITimeoutError):
            req = HTTPRequest("POST", f"http://127.0.0.1:{port}/x", {}, b"x" * (64 << 20), Timeouts(1.0, 0.3))
            await asyncio.wait_for(t.send(req), 5.0)
        assert loop.time() - t0 < 3.0
        assert not t._active
    finally:
        await t.aclose()
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_a_host_that_cannot_be_encoded_is_a_configuration_error(transport: H1Transport) -> None:
    """A host name IDNA cannot encode (a label over 63 characters): a typed ConfigurationError, as the aiohttp
    transport gives (not a raw UnicodeError from the resolver, which no caller expects)."""
    with pytest.raises(ConfigurationError, match="invalid URL"):
        await get(transport, "http://" + "a" * 64 + ".example/x?key=" + SECRET)
    assert not transport._active


@pytest.mark.parametrize("stream", [False, True])
async def test_a_gzip_body_of_several_members_is_decoded_whole(transport: H1Transport, stream: bool) -> None:
    """RFC 1952: a gzip file may hold several members, one after another (aiohttp decodes them all); the second
    one was dropped without a word."""
    body = gzip.compress(b"data: one\n\n") + gzip.compress(b"data: two\n\n")
    async with Server(fixed(resp(headers={"Content-Encoding": "gzip"}, body=body))) as srv:
        r = await transport.send(HTTPRequest("GET", srv.url(), {}, timeouts=FAST))
        got = b"".join([c async for c in r.iter_chunks()]) if stream else await r.read()
        assert got == b"data: one\n\ndata: two\n\n"


async def test_a_gzip_body_of_many_empty_members_is_refused() -> None:
    """Members are bounded (a body of empty members must not cost quadratic time)."""
    from infermux._h1 import Decoder, ProtocolError

    d = Decoder("gzip")
    with pytest.raises(ProtocolError, match="members"):
        d.feed(gzip.compress(b"") * 10_000, 1 << 20)


@pytest.mark.parametrize("enc", ["gzip", "deflate", "br"])
def test_decoded_output_of_one_piece_is_bounded_by_the_room(enc: str) -> None:
    """A small compressed piece that expands hugely (a decompression bomb) yields about ``room`` bytes, not the
    whole expansion, before the limit check (gzip and deflate had it; brotli produced all of it at once)."""
    from infermux._h1 import Decoder

    data = b"\0" * (64 << 20)
    if enc == "br":
        brotli = pytest.importorskip("brotli")
        body = brotli.compress(data)
    else:
        body = ENCODINGS[enc](data)
    out = Decoder(enc).feed(body, 1000)
    assert 1000 < len(out) <= 64 * 1024  # over the room (so the caller fails it), and bounded


def test_gzip_members_split_anywhere_across_pieces() -> None:
    from infermux._h1 import Decoder

    body = gzip.compress(b"one") + gzip.compress(b"two") + gzip.compress(b"three")
    for i in range(len(body) + 1):
        for j in range(i, len(body) + 1, 3):
            d = Decoder("gzip")
            out = d.feed(body[:i], 100) + d.feed(body[i:j], 100) + d.feed(body[j:], 100) + d.flush()
            assert out == b"onetwothree", (i, j)


async def test_an_idle_connection_is_not_taken_over_the_bound_of_connections_in_use() -> None:
    """``max_connections`` bounds the connections in use at once, all hosts: a request to a host with an idle
    connection waits while the bound is held by another host's request (as aiohttp's connector; the idle
    connection was handed out over the bound)."""
    t = H1Transport(max_connections=1)
    try:
        async with Server() as x, Server() as y:
            assert await get(t, x.url()) == (200, b"ok")  # x's connection now idles in the pool
            held = await t.send(HTTPRequest("GET", y.url(), {}, timeouts=FAST))  # y holds the one slot
            with pytest.raises(APITimeoutError, match="free connection"):
                await t.send(HTTPRequest("GET", x.url(), {}, timeouts=Timeouts(connect=0.1, read=1.0)))
            assert t._active == 1
            assert await held.read() == b"ok"
            assert await get(t, x.url()) == (200, b"ok")  # the slot is free: x's idle connection is used again
            assert x.connections == 1
    finally:
        await t.aclose()
