"""The transports (H1Transport, the default, and AiohttpTransport) and the endpoint against a raw TCP server on
127.0.0.1 that answers broken HTTP on purpose: every failure is typed, says whether a retry helps, and never
carries the API key in its text."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    InfermuxError,
    MalformedResponseError,
)
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.transport import AiohttpTransport, H1Transport, HTTPRequest, Timeouts, Transport
from infermux.types import ChatRequest, Message

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("error::ResourceWarning")]

SECRET = "sk-live-TOPSECRET-0123456789"
REQ = ChatRequest((Message.user("hello"),))
COMPLETION = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }
).encode()


def http(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


Answer = Callable[[], bytes]


class RawServer:
    """Answers every request on a path with fixed raw bytes (then optionally stalls before closing)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, float]] = {}
        self.hits: dict[str, int] = {}
        self.port = 0
        self._server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            self.hits[path] = self.hits.get(path, 0) + 1
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            data, stall = self.routes.get(path, (http("404 Not Found", {"Content-Length": "0"}), 0.0))
            writer.write(data)
            await writer.drain()
            if stall:
                await asyncio.sleep(stall)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    async with RawServer() as srv:
        yield srv


@pytest.fixture(params=["h1", "aiohttp"])
def make(request: pytest.FixtureRequest) -> Callable[[], Transport]:
    return H1Transport if request.param == "h1" else AiohttpTransport


def endpoint(srv: RawServer, path: str = "", **kw: Any) -> Endpoint:
    cfg = EndpointConfig(
        name="raw",
        provider="openai",
        base_url=srv.url(path + "/v1"),
        model="m",
        api_keys=(SECRET,),
        retry=kw.pop("retry", RetryPolicy(max_retries=2, initial_delay=0.01)),
        timeouts=kw.pop("timeouts", Timeouts(connect=1.0, read=1.0)),
        **kw,
    )
    return Endpoint(cfg, clock=FakeClock())


def assert_no_secret(err: InfermuxError) -> None:
    for text in (str(err), repr(err), err.message, repr(err.body), repr(err.provider_message), repr(err.context())):
        assert SECRET not in text
        assert "TOPSECRET" not in text


# ---------------------------------------------------------------------- broken HTTP never leaks the key


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 abc\r\n\r\n",  # bad status line
        b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n",  # bad header
        b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: 5\r\n\r\nabcde",  # undecodable encoding
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc",  # bad chunk
    ],
    ids=["status-line", "header", "encoding", "chunk"],
)
async def test_broken_http_is_a_typed_error_without_the_key(raw: RawServer, answer: bytes) -> None:
    raw.routes["/v1/chat/completions"] = (answer, 0.0)
    ep = endpoint(raw)
    try:
        with pytest.raises(InfermuxError) as ei:
            await ep.chat(REQ)
        assert_no_secret(ei.value)
        assert isinstance(ei.value, (APIConnectionError, MalformedResponseError))
        assert ei.value.retryable and ei.value.endpoint == "raw" and ei.value.request_id
    finally:
        await ep.aclose()


async def test_transport_error_text_has_no_headers_or_query(raw: RawServer, make: Callable[[], Transport]) -> None:
    raw.routes["/x?key=" + SECRET] = (b"HTTP/1.1 abc\r\n\r\n", 0.0)
    t = make()
    try:
        with pytest.raises(APIConnectionError) as ei:
            await t.send(HTTPRequest("GET", raw.url("/x?key=" + SECRET), {"authorization": f"Bearer {SECRET}"}))
        assert_no_secret(ei.value)
    finally:
        await t.aclose()


# ---------------------------------------------------------------------- redirects


@pytest.mark.parametrize("stream", [False, True])
async def test_redirect_is_a_typed_status_error_not_a_parse_failure(raw: RawServer, stream: bool) -> None:
    raw.routes["/v1/chat/completions"] = (
        http("302 Found", {"Location": "https://elsewhere.example/v1/chat/completions", "Content-Length": "0"}),
        0.0,
    )
    ep = endpoint(raw)
    try:
        with pytest.raises(APIStatusError) as ei:
            if stream:
                async for _ in ep.stream(REQ):
                    pass
            else:
                await ep.chat(REQ)
        e = ei.value
        assert not isinstance(e, MalformedResponseError)
        assert e.status_code == 302 and not e.retryable
        assert "elsewhere.example" in str(e)  # where it wanted to send us
        assert raw.hits["/v1/chat/completions"] == 1  # not retried
        assert ep.stats()["failures"] == {"APIStatusError": 1}
    finally:
        await ep.aclose()


# ---------------------------------------------------------------------- bodies: gzip, no content type, cut


async def test_gzip_body_and_missing_content_type_parse(raw: RawServer) -> None:
    gz = gzip.compress(COMPLETION)
    raw.routes["/v1/chat/completions"] = (
        http("200 OK", {"Content-Encoding": "gzip", "Content-Length": str(len(gz))}, gz),
        0.0,
    )
    ep = endpoint(raw)
    try:
        r = await ep.chat(REQ)
        assert r.text == "hi"
    finally:
        await ep.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        http("200 OK", {"Content-Encoding": "gzip", "Content-Length": "5"}, b"abcde"),  # corrupt gzip
        http("200 OK", {"Content-Length": "100"}, b'{"id":'),  # body cut short
    ],
    ids=["bad-gzip", "short-body"],
)
async def test_broken_body_is_a_retryable_connection_error(raw: RawServer, answer: bytes) -> None:
    raw.routes["/v1/chat/completions"] = (answer, 0.05)
    ep = endpoint(raw)
    try:
        with pytest.raises(APIConnectionError) as ei:
            await ep.chat(REQ)
        assert ei.value.retryable and ei.value.attempts == 3
        assert raw.hits["/v1/chat/completions"] == 3
        assert_no_secret(ei.value)
    finally:
        await ep.aclose()


async def test_slow_body_times_out_typed(raw: RawServer) -> None:
    raw.routes["/v1/chat/completions"] = (http("200 OK", {"Content-Length": "100"}, b'{"id":'), 5.0)
    ep = endpoint(raw, retry=RetryPolicy(max_retries=0), timeouts=Timeouts(connect=1.0, read=0.2))
    try:
        with pytest.raises(APITimeoutError):
            await ep.chat(REQ)
    finally:
        await ep.aclose()


# ---------------------------------------------------------------------- bad configuration is not retried


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:99999/v1", "http://a b/v1", "http:///v1"])
def test_invalid_base_url_is_a_configuration_error(base_url: str) -> None:
    with pytest.raises(ConfigurationError):
        Endpoint(EndpointConfig(name="x", provider="openai", base_url=base_url, model="m"))


async def test_invalid_url_at_send_is_a_configuration_error_not_retried(make: Callable[[], Transport]) -> None:
    t = make()
    try:
        with pytest.raises(ConfigurationError):
            await t.send(HTTPRequest("GET", "http://127.0.0.1:99999/x", {}))
    finally:
        await t.aclose()


@pytest.mark.parametrize("key", ["sk-abc\n", "sk-abc\r\nX-Evil: 1", "sk-ключ"])
def test_key_that_cannot_be_a_header_is_refused_at_configuration(key: str) -> None:
    with pytest.raises(ConfigurationError) as ei:
        Endpoint(EndpointConfig(name="x", provider="openai", base_url="http://127.0.0.1:1/v1", api_keys=(key,)))
    assert key.strip() not in str(ei.value)


async def test_header_injection_at_send_is_a_configuration_error(raw: RawServer, make: Callable[[], Transport]) -> None:
    t = make()
    try:
        with pytest.raises(ConfigurationError) as ei:
            await t.send(HTTPRequest("GET", raw.url("/x"), {"authorization": f"Bearer {SECRET}\r\nx: y"}))
        assert SECRET not in str(ei.value)
    finally:
        await t.aclose()
