"""Bounded responses (issue 8 item 11): a huge declared body, an endless body, a decompression bomb and an endless
SSE stream from a real loopback server end quickly with a typed, non-retried ResponseTooLargeError, and the
client stops reading (the server could write only a few MB before the connection closed)."""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any

import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import ConfigurationError, DeadlineExceededError, InternalServerError, ResponseTooLargeError
from infermux.resilience.retry import RetryPolicy
from infermux.transport import DEFAULT_MAX_RESPONSE_BYTES, Limits, MockResponse, MockTransport
from infermux.types import ChatRequest, Message

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("error::ResourceWarning")]

MiB = 1024 * 1024
REQ = ChatRequest((Message.user("hello"),))
#: what the server may have written before the client hung up: the limit plus loopback socket buffers
WRITE_SLACK = 32 * MiB
SSE_EVENT = b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"aaaa"}}]}\n\n'


class FloodServer:
    """Answers each request with ``head`` then writes ``chunk`` repeatedly (at most ``cap`` bytes, ``delay``
    between writes) until the client goes away; counts the bytes it managed to write."""

    def __init__(self, head: bytes, chunk: bytes, *, chunked: bool, delay: float = 0.0, cap: int = 512 * MiB):
        self.head, self.chunk, self.chunked, self.delay, self.cap = head, chunk, chunked, delay, cap
        self.written = 0
        self.hits = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":", 1)[1]))
            self.hits += 1
            writer.write(self.head)
            piece = b"%x\r\n%s\r\n" % (len(self.chunk), self.chunk) if self.chunked else self.chunk
            while self.written < self.cap:
                writer.write(piece)
                await writer.drain()
                self.written += len(piece)
                if self.delay:
                    await asyncio.sleep(self.delay)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> FloodServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def _head(status: str, ctype: str, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n{extra}\r\n".encode()


def _endpoint(srv: FloodServer, limits: Limits | None = None, **kw: Any) -> Endpoint:
    cfg = EndpointConfig(
        name="flood",
        provider="openai",
        base_url=srv.url(),
        model="m",
        retry=kw.pop("retry", RetryPolicy(max_retries=2, initial_delay=0.01)),
        limits=limits or Limits(),
        **kw,
    )
    return Endpoint(cfg)


async def _expect_too_large(ep: Endpoint, *, stream: bool = False) -> tuple[ResponseTooLargeError, float]:
    t0 = time.monotonic()
    with pytest.raises(ResponseTooLargeError) as ei:
        if stream:
            async for _ in ep.stream(REQ, timeout=10):
                pass
        else:
            await ep.chat(REQ, timeout=10)
    return ei.value, time.monotonic() - t0


async def test_declared_huge_body_fails_before_reading() -> None:
    head = _head("200 OK", "application/json", "content-length: 4000000000\r\n")
    async with FloodServer(head, b"x" * 65536, chunked=False) as srv:
        ep = _endpoint(srv)  # the default limit
        try:
            err, elapsed = await _expect_too_large(ep)
        finally:
            await ep.aclose()
    assert elapsed < 5 and srv.written < WRITE_SLACK
    assert err.limit == DEFAULT_MAX_RESPONSE_BYTES and "4000000000" in str(err)
    assert not err.retryable and err.attempts == 1 and srv.hits == 1  # not retried into the same overflow
    assert err.endpoint == "flood" and err.request_id


async def test_endless_body_is_cut_at_the_limit() -> None:
    async with FloodServer(_head("200 OK", "application/json", "transfer-encoding: chunked\r\n"), b"x" * 65536,
                           chunked=True) as srv:  # fmt: skip
        ep = _endpoint(srv, Limits(max_body_bytes=MiB))
        try:
            err, elapsed = await _expect_too_large(ep)
        finally:
            await ep.aclose()
    assert elapsed < 5 and srv.written < WRITE_SLACK and srv.hits == 1
    assert err.limit == MiB and ep.stats()["failures"] == {"ResponseTooLargeError": 1}


async def test_decompression_bomb_is_cut_at_the_limit() -> None:
    bomb = gzip.compress(b"0" * (16 * MiB))  # about 16 KB on the wire
    head = _head("200 OK", "application/json", f"content-encoding: gzip\r\ncontent-length: {len(bomb)}\r\n")
    async with FloodServer(head, bomb, chunked=False, cap=len(bomb)) as srv:
        ep = _endpoint(srv, Limits(max_body_bytes=MiB))
        try:
            err, _ = await _expect_too_large(ep)
        finally:
            await ep.aclose()
    assert err.limit == MiB


async def test_endless_sse_stream_is_cut_at_the_limit() -> None:
    async with FloodServer(_head("200 OK", "text/event-stream", "transfer-encoding: chunked\r\n"), SSE_EVENT * 200,
                           chunked=True) as srv:  # fmt: skip
        ep = _endpoint(srv, Limits(max_stream_bytes=MiB))
        try:
            err, elapsed = await _expect_too_large(ep, stream=True)
        finally:
            await ep.aclose()
    assert elapsed < 5 and srv.written < WRITE_SLACK and srv.hits == 1
    assert err.limit == MiB and not err.retryable


async def test_error_status_with_endless_body_is_the_status_error() -> None:
    """An error body over the limit is dropped; the caller still gets the typed status error."""
    head = _head("500 Internal Server Error", "application/json", "transfer-encoding: chunked\r\n")
    async with FloodServer(head, b"x" * 65536, chunked=True) as srv:
        ep = _endpoint(srv, Limits(max_body_bytes=MiB), retry=RetryPolicy(max_retries=0))
        try:
            with pytest.raises(InternalServerError) as ei:
                await ep.chat(REQ, timeout=10)
        finally:
            await ep.aclose()
    assert ei.value.status_code == 500 and srv.written < WRITE_SLACK


async def test_call_timeout_bounds_a_slow_endless_body() -> None:
    """A body that trickles forever (each chunk well within Timeouts.read) ends at the call's timeout."""
    head = _head("200 OK", "application/json", "transfer-encoding: chunked\r\n")
    async with FloodServer(head, b" ", chunked=True, delay=0.05, cap=10_000) as srv:
        cfg = EndpointConfig(name="slow", provider="openai", base_url=srv.url(), model="m")
        async with infermux.AsyncClient([cfg]) as client:
            t0 = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await client.chat("hi", timeout=1.0)
            assert time.monotonic() - t0 < 3


async def test_mock_transport_applies_the_limits_too() -> None:
    big = b"x" * 2048
    ep = Endpoint(
        EndpointConfig(name="m", provider="openai", base_url="http://mock/v1", model="m", limits=Limits(1024, 1024)),
        transport=MockTransport(lambda r: MockResponse(200, {"content-type": "application/json"}, big)),
    )
    with pytest.raises(ResponseTooLargeError):
        await ep.chat(REQ)
    with pytest.raises(ResponseTooLargeError):
        async for _ in ep.stream(REQ):
            pass


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1024", True, None])
def test_limits_are_validated(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_body_bytes"):
        Limits(max_body_bytes=bad)
    with pytest.raises(ConfigurationError, match="max_stream_bytes"):
        Limits(max_stream_bytes=bad)
