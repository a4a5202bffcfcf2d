"""The HTTP seam: everything above it sees :class:`HTTPRequest` / :class:`HTTPResponse` only.

The default :class:`H1Transport` is infermux's own HTTP/1.1 client on asyncio's Protocol API
(``_h1.py``, ``_h1pool.py``; chosen by measurement, see ``bench/transport.py``). :class:`AiohttpTransport`
(aiohttp, imported on first use so that ``import infermux`` stays light) remains available by name
(``transport="aiohttp"``) or as an instance. :class:`MockTransport` answers from a Python
function for unit tests. Transports raise only :class:`~infermux.errors.APIConnectionError` and
:class:`~infermux.errors.APITimeoutError`; the endpoint adds the context (provider, request ID...).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ._validate import check_positive_number, check_size
from .errors import APIConnectionError, APITimeoutError, ConfigurationError, ResponseTooLargeError

if TYPE_CHECKING:  # pragma: no cover
    import aiohttp

__all__ = [
    "TRANSPORTS",
    "AiohttpTransport",
    "H1Transport",
    "HTTPRequest",
    "HTTPResponse",
    "Limits",
    "MockTransport",
    "Timeouts",
    "Transport",
    "make_transport",
    "safe_url",
]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-phase timeouts in seconds. ``read`` bounds the wait for the first byte and between chunks.

    The overall per-request deadline (all attempts and waits) lives in the retry policy.
    """

    connect: float = 10.0
    read: float = 120.0

    def __post_init__(self) -> None:
        # 0 would silently disable aiohttp's timeout and a string would only fail inside aiohttp's timer
        check_positive_number("Timeouts.connect", self.connect)
        check_positive_number("Timeouts.read", self.read)


#: default bound of a non-stream body and of a whole stream: 128 MiB (decompressed)
DEFAULT_MAX_RESPONSE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one response may make the client hold, in bytes after decompression.

    ``max_body_bytes`` bounds a non-stream body (2xx or error); a larger declared ``Content-Length`` fails
    before anything is read. ``max_stream_bytes`` bounds the total of one streamed body (so also what the
    stream's accumulators keep). Exceeding either raises :class:`~infermux.errors.ResponseTooLargeError`
    (not retried). An error body over the bound is dropped and the status error raised without it.
    """

    max_body_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_stream_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        check_size("Limits.max_body_bytes", self.max_body_bytes)
        check_size("Limits.max_stream_bytes", self.max_stream_bytes)


@dataclass(slots=True)
class HTTPRequest:
    method: str
    url: str = field(repr=False)  # its query may hold a key: the repr shows safe_url(url)
    headers: dict[str, str] = field(repr=False)  # holds the API key
    body: bytes | None = field(default=None, repr=False)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)

    def __repr__(self) -> str:
        size = None if self.body is None else len(self.body)
        return f"HTTPRequest(method={self.method!r}, url={safe_url(self.url)!r}, body_bytes={size})"


class HTTPResponse(Protocol):
    """A response whose headers have arrived; the body is read with :meth:`read` or :meth:`iter_chunks`."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names lower-cased."""
        ...

    async def read(self) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    async def send(self, request: HTTPRequest) -> HTTPResponse: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- aiohttp


def safe_url(url: str) -> str:
    """``url`` without user info, query and fragment (they may hold credentials, e.g. ``?key=``)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1][:200]
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _describe(error: BaseException, url: str) -> str:
    """A one-line description of an aiohttp error without request headers or the URL's query.

    Never ``repr()``: aiohttp's ``ClientResponseError`` repr carries the request headers (the API key).
    """
    import aiohttp

    text = f"{error.status}, {error.message}" if isinstance(error, aiohttp.ClientResponseError) else str(error)
    query = urllib.parse.urlsplit(url).query if "?" in url else ""
    if query:
        text = text.replace(query, "[redacted]")
    return f"{type(error).__name__}: {text}"[:500]


def too_large(what: str, limit: int, url: str) -> ResponseTooLargeError:
    """The error for a body (``what``) over ``limit`` bytes."""
    return ResponseTooLargeError(
        f"{what} from {safe_url(url)} is larger than the limit of {limit} bytes"
        " (raise it with EndpointConfig(limits=Limits(...)) if such answers are expected)",
        limit=limit,
    )


class _AiohttpResponse:
    __slots__ = ("_limits", "_resp", "_url", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse, url: str, limits: Limits) -> None:
        self._resp = resp
        self._url = url
        self._limits = limits
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.headers.items()}

    async def _read_bounded(self) -> bytes:
        limit = self._limits.max_body_bytes
        declared = self._resp.content_length
        if declared is not None and declared > limit:  # compressed size > limit: so is the decoded body
            raise too_large(f"the declared body ({declared} bytes)", limit, self._url)
        if declared is not None and "content-encoding" not in self.headers:
            return await self._resp.read()  # aiohttp stops at Content-Length: bounded already
        buf = bytearray()
        async for chunk in self._resp.content.iter_any():
            buf += chunk
            if len(buf) > limit:
                raise too_large("the response body", limit, self._url)
        return bytes(buf)

    async def read(self) -> bytes:
        import aiohttp

        try:
            return await self._read_bounded()
        except asyncio.TimeoutError as e:
            raise APITimeoutError("timed out reading the response body") from e
        except aiohttp.ClientError as e:
            raise APIConnectionError(
                f"connection broke while reading the body of {safe_url(self._url)}: {_describe(e, self._url)}"
            ) from None
        finally:
            self._resp.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        import aiohttp

        limit, total = self._limits.max_stream_bytes, 0
        try:
            async for chunk in self._resp.content.iter_any():
                total += len(chunk)
                if total > limit:
                    raise too_large("the stream", limit, self._url)
                yield chunk
        except asyncio.TimeoutError as e:
            raise APITimeoutError("timed out waiting for the next stream chunk") from e
        except aiohttp.ClientError as e:
            raise APIConnectionError(
                f"connection broke mid-stream from {safe_url(self._url)}: {_describe(e, self._url)}"
            ) from None
        finally:
            self._resp.release()

    async def aclose(self) -> None:
        self._resp.close()


class AiohttpTransport:
    """One aiohttp session per event loop, keep-alive pooled, created on first use."""

    def __init__(self, *, max_connections: int = 256, max_connections_per_host: int = 0) -> None:
        self._limit = max_connections
        self._limit_per_host = max_connections_per_host
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}  # built once per Timeouts (they are few)

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            import aiohttp

            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, enable_cleanup_closed=False
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
            self._loop = loop
        return self._session

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        import aiohttp

        session = self._get_session()
        t = request.timeouts
        timeout = self._timeouts.get(t)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=t.connect, connect=t.connect, sock_read=t.read)
            if len(self._timeouts) < 64:
                self._timeouts[t] = timeout
        try:
            resp = await session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=timeout,
                allow_redirects=False,
            )
        except asyncio.TimeoutError as e:
            raise APITimeoutError(f"timed out connecting to or waiting on {safe_url(request.url)}") from e
        except aiohttp.InvalidURL as e:
            raise ConfigurationError(f"invalid URL {safe_url(request.url)!r}: {_describe(e, request.url)}") from None
        except aiohttp.ClientError as e:
            # not chained: aiohttp's exceptions can carry the request's URL (its query) and headers
            raise APIConnectionError(f"could not reach {safe_url(request.url)}: {_describe(e, request.url)}") from None
        except ValueError as e:  # header injection, a header aiohttp cannot encode...: raised before any I/O
            raise ConfigurationError(
                f"invalid request to {safe_url(request.url)}: {type(e).__name__} (check API keys and headers)"
            ) from None
        return _AiohttpResponse(resp, request.url, request.limits)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


# --------------------------------------------------------------------------- mock


@dataclass(slots=True)
class MockResponse:
    """What a :class:`MockTransport` handler returns: a status, headers and a body given whole or as chunks.

    The request's :class:`Limits` apply as they do on the wire (:class:`MockTransport` sets ``limits``)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    limits: Limits = field(default_factory=Limits, repr=False)
    url: str = field(default="", repr=False)

    async def read(self) -> bytes:
        data = self.body if isinstance(self.body, bytes) else b"".join(self.body)
        if len(data) > self.limits.max_body_bytes:
            raise too_large("the response body", self.limits.max_body_bytes, self.url)
        return data

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        chunks = ([self.body] if self.body else []) if isinstance(self.body, bytes) else self.body
        total = 0
        for chunk in chunks:
            total += len(chunk)
            if total > self.limits.max_stream_bytes:
                raise too_large("the stream", self.limits.max_stream_bytes, self.url)
            yield chunk

    async def aclose(self) -> None:
        return None


MockHandler = Callable[[HTTPRequest], "MockResponse | Awaitable[MockResponse]"]


class MockTransport:
    """Answers requests from ``handler(request)``; a handler may raise transport errors to simulate faults."""

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler
        self.requests: list[HTTPRequest] = []

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        self.requests.append(request)
        result: Any = self.handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        resp: MockResponse = result
        resp.headers = {k.lower(): v for k, v in resp.headers.items()}
        resp.limits, resp.url = request.limits, request.url
        return resp

    async def aclose(self) -> None:
        return None


# --------------------------------------------------------------------------- by name

from ._h1pool import H1Transport  # noqa: E402 - it imports this module's helpers where it uses them

#: the transports that can be named (``AsyncClient(transport="aiohttp")``); "h1" is the default
TRANSPORTS = ("h1", "aiohttp")


def make_transport(name: str = "h1", *, max_connections: int = 256) -> Transport:
    """A new transport by name: ``"h1"`` (:class:`H1Transport`, the default) or ``"aiohttp"``."""
    if name == "h1":
        return H1Transport(max_connections=max_connections)
    if name == "aiohttp":
        return AiohttpTransport(max_connections=max_connections)
    raise ConfigurationError(f"unknown transport {name!r}: choose one of {', '.join(TRANSPORTS)}")
