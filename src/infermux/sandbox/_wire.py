"""Wire-level pieces shared by both protocols: replies, headers, error bodies, and the fault-aware writer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import string
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from aiohttp import web

from infermux.sandbox._faults import STALL_SECONDS, Fault, FaultKind
from infermux.sandbox._model import Responder

__all__ = [
    "DIALECTS",
    "Ctx",
    "Dialect",
    "JsonReply",
    "ProtocolError",
    "StreamReply",
    "abort_connection",
    "error_reply",
    "register_dialect",
    "reset_server_state",
    "send_reply",
    "server_state",
]

OPENAI = "openai"
ANTHROPIC = "anthropic"


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one more protocol (beyond OpenAI and Anthropic, built in below) shapes ids, headers and errors.

    ``error_body(status, message, error_type, request_id, state)`` returns ``(body, extra_headers)``; a ``str``
    body is sent as text/plain (TGI answers some 422s that way), anything else as JSON.
    ``base_headers(request_id, started, limit, in_flight, state)`` are the headers of every response.
    ``state`` is the serving sandbox's per-server state (``SandboxApp.state``; see :func:`server_state`).
    """

    name: str
    error_body: Callable[[int, str | None, str | None, str, dict[str, Any]], tuple[Any, dict[str, str]]]
    new_request_id: Callable[[], str] = lambda: secrets.token_hex(16)
    base_headers: Callable[[str, float, int, int, dict[str, Any]], dict[str, str]] = (
        lambda rid, started, limit, in_flight, state: {"x-request-id": rid}
    )


DIALECTS: dict[str, Dialect] = {}


def register_dialect(dialect: Dialect) -> Dialect:
    DIALECTS[dialect.name] = dialect
    return dialect


_T = TypeVar("_T")
_STATE_LOCK = threading.Lock()


def server_state(state: dict[str, Any], key: str, factory: type[_T]) -> _T:
    """The object a backend keeps under ``state[key]`` (one server's state), created on first use.

    Each sandbox owns its ``state`` dict, so two sandboxes in one process never share backend state.
    """
    with _STATE_LOCK:
        current = state.get(key)
        if not isinstance(current, factory):
            current = state[key] = factory()
        return current


def reset_server_state(state: dict[str, Any]) -> None:
    """Forget every backend's state in ``state`` (their next request starts fresh)."""
    with _STATE_LOCK:
        state.clear()


_B62 = string.ascii_letters + string.digits

HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>\n"
)


@dataclass(slots=True)
class JsonReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StreamReply:
    """An SSE body: ``(event name or None, data text)`` in order; the last events are the terminal markers."""

    events: list[tuple[str | None, str]]
    headers: dict[str, str] = field(default_factory=dict)
    #: "sse" (``event:``/``data:`` frames), "sse_nospace" (TGI's ``data:{...}``) or "ndjson" (one JSON per line)
    format: str = "sse"


Reply = JsonReply | StreamReply


def new_request_id(protocol: str) -> str:
    if protocol in DIALECTS:
        return DIALECTS[protocol].new_request_id()
    if protocol == ANTHROPIC:
        return "req_011C" + "".join(secrets.choice(_B62) for _ in range(20))
    return "req_" + secrets.token_hex(16)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def base_headers(
    protocol: str,
    request_id: str,
    started: float,
    *,
    limit: int,
    in_flight: int,
    state: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Headers every real response of the protocol carries (request id, rate limits, processing time)."""
    if protocol in DIALECTS:
        return DIALECTS[protocol].base_headers(request_id, started, limit, in_flight, {} if state is None else state)
    if protocol == ANTHROPIC:
        reset = (datetime.now(timezone.utc) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = {"request-id": request_id}
        for what, lim in (("requests", limit), ("tokens", 540000), ("input-tokens", 450000), ("output-tokens", 90000)):
            remaining = max(0, lim - in_flight) if what == "requests" else lim
            out[f"anthropic-ratelimit-{what}-limit"] = str(lim)
            out[f"anthropic-ratelimit-{what}-remaining"] = str(remaining)
            out[f"anthropic-ratelimit-{what}-reset"] = reset
        return out
    return {
        "x-request-id": request_id,
        "openai-processing-ms": str(max(1, int((time.monotonic() - started) * 1000))),
        "openai-version": "2020-10-01",
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(max(0, limit - in_flight)),
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-limit-tokens": "50000000",
        "x-ratelimit-remaining-tokens": "49999989",
        "x-ratelimit-reset-tokens": "0s",
    }


_OPENAI_ERR: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", None, "The requested resource does not exist."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again shortly."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    529: ("server_error", "overloaded", "The server is overloaded, please try again later."),
}
_ANTHROPIC_ERR: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Bad request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


def error_reply(
    protocol: str,
    status: int,
    message: str | None = None,
    *,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    request_id: str = "",
    headers: Mapping[str, str] | None = None,
    state: dict[str, Any] | None = None,
) -> JsonReply:
    """An error in the protocol's real body shape (OpenAI ``{"error": {...}}``, Anthropic ``{"type": "error"}``);
    ``state``: the serving sandbox's per-server state (a dialect may shape errors by it)."""
    out = dict(headers or {})
    if protocol in DIALECTS:
        st = {} if state is None else state
        dbody, dheaders = DIALECTS[protocol].error_body(status, message, error_type, request_id, st)
        out.update(dheaders)
        return JsonReply(status, dbody, out)
    if protocol == ANTHROPIC:
        default_type, default_msg = _ANTHROPIC_ERR.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Error")
        )
        body: dict[str, Any] = {
            "type": "error",
            "error": {"type": error_type or default_type, "message": message or default_msg},
            "request_id": request_id,
        }
        out.setdefault("x-should-retry", "true" if status in (408, 409, 429) or status >= 500 else "false")
        return JsonReply(status, body, out)
    o_type, o_code, o_msg = _OPENAI_ERR.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error")
    )
    err = {"message": message or o_msg, "type": error_type or o_type, "param": param, "code": code or o_code}
    return JsonReply(status, {"error": err}, out)


def fault_reply(protocol: str, fault: Fault, request_id: str, state: dict[str, Any] | None = None) -> JsonReply:
    """The error response a STATUS fault asks for, with its retry headers."""
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        ra = fault.retry_after
        headers["retry-after"] = str(int(ra)) if float(ra).is_integer() else str(ra)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    if fault.should_retry is not None:
        headers["x-should-retry"] = "true" if fault.should_retry else "false"
    return error_reply(
        protocol,
        fault.status,
        fault.message,
        error_type=fault.error_type,
        request_id=request_id,
        headers=headers,
        state=state,
    )


def abort_connection(request: web.BaseRequest) -> None:
    """Drop the connection with a TCP reset (SO_LINGER 0), so the client sees ECONNRESET, not a clean EOF."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _sse(event: str | None, data: str) -> bytes:
    return (f"event: {event}\ndata: {data}\n\n" if event else f"data: {data}\n\n").encode()


def _frame(fmt: str, event: str | None, data: str) -> bytes:
    if fmt == "ndjson":
        return (data + "\n").encode()
    if fmt == "sse_nospace":
        return (f"event:{event}\ndata:{data}\n\n" if event else f"data:{data}\n\n").encode()
    return _sse(event, data)


async def _send_json(request: web.Request, reply: JsonReply, fault: Fault | None) -> web.StreamResponse:
    kind = fault.kind if fault else FaultKind.NONE
    headers = dict(reply.headers)
    if kind is FaultKind.HTML:
        return web.Response(status=200, text=HTML_PAGE, content_type="text/html", headers=headers)
    is_text = isinstance(reply.body, str)
    is_raw = isinstance(reply.body, bytes)  # a binary body (KServe tensors), sent as-is
    body = reply.body if is_raw else reply.body.encode() if is_text else dumps(reply.body).encode()
    content_type = "text/plain" if kind is FaultKind.WRONG_CONTENT_TYPE or is_text else "application/json"
    if is_raw and kind is not FaultKind.WRONG_CONTENT_TYPE:
        content_type = "application/octet-stream"
    if kind is FaultKind.MALFORMED:
        body = body[: max(1, len(body) // 2)]
    if kind not in (FaultKind.SLOW_BODY, FaultKind.STREAM_CUT, FaultKind.STALL):
        return web.Response(status=reply.status, body=body, content_type=content_type, headers=headers)
    resp = web.StreamResponse(status=reply.status, headers=headers)
    resp.content_type = content_type
    resp.content_length = len(body)
    await resp.prepare(request)
    assert fault is not None
    if kind is FaultKind.SLOW_BODY:
        await asyncio.sleep(fault.delay)
        await resp.write(body)
        return resp
    await resp.write(body[: len(body) // 2])
    if kind is FaultKind.STALL:
        await _stall(request, fault)
    abort_connection(request)
    return resp


async def _stall(request: web.BaseRequest, fault: Fault) -> None:
    """Send nothing for the fault's ``delay`` (0: STALL_SECONDS) while the connection stays open; return early
    once the client has gone away."""
    loop = asyncio.get_running_loop()
    until = loop.time() + (fault.delay or STALL_SECONDS)
    while loop.time() < until:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(0.05, max(0.0, until - loop.time())))


async def _send_stream(
    request: web.Request, reply: StreamReply, fault: Fault | None, token_delay: float
) -> web.StreamResponse:
    kind = fault.kind if fault else FaultKind.NONE
    if kind is FaultKind.HTML:
        return web.Response(status=200, text=HTML_PAGE, content_type="text/html", headers=reply.headers)
    resp = web.StreamResponse(status=200, headers=reply.headers)
    ctype = "application/x-ndjson" if reply.format == "ndjson" else "text/event-stream"
    resp.content_type = "text/plain" if kind is FaultKind.WRONG_CONTENT_TYPE else ctype
    resp.charset = "utf-8"
    await resp.prepare(request)
    events = list(reply.events)
    cut = len(events)
    if kind in (FaultKind.STREAM_CUT, FaultKind.STALL) and fault is not None:
        cut = max(0, min(fault.after, len(events) - 1))
    if kind is FaultKind.MALFORMED and fault is not None:
        i = max(0, min(fault.after, len(events) - 1))
        name, data = events[i]
        events[i] = (name, data[: max(1, len(data) // 2)])
    delay = fault.delay if kind is FaultKind.SLOW_BODY and fault is not None else token_delay
    for i, (name, data) in enumerate(events[:cut]):
        if delay and i:
            await asyncio.sleep(delay)
        await resp.write(_frame(reply.format, name, data))
    if kind is FaultKind.STALL and fault is not None:
        await _stall(request, fault)
    if cut < len(events) and fault is not None and not fault.clean:
        abort_connection(request)
    return resp


async def send_reply(
    request: web.Request, reply: Reply, fault: Fault | None, token_delay: float = 0.0
) -> web.StreamResponse:
    """Write ``reply``, applying the body-level part of ``fault`` (malformed, cut, slow body, wrong type, HTML)."""
    if isinstance(reply, StreamReply):
        return await _send_stream(request, reply, fault, token_delay)
    return await _send_json(request, reply, fault)


class ProtocolError(Exception):
    """Raised by request parsing to answer with ``reply`` (an error in the protocol's shape)."""

    def __init__(self, reply: JsonReply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass(slots=True)
class Ctx:
    """Per-request context handed to the protocol handlers."""

    protocol: str
    request_id: str
    headers: dict[str, str]
    responder: Responder | None = None
    embedding_dim: int = 64
    models: tuple[str, ...] = ()
    path_params: dict[str, str] = field(default_factory=dict)
    #: per-server mutable state shared by a backend's handlers (pulled models, loaded adapters...)
    state: dict[str, Any] = field(default_factory=dict)
    #: the request's query parameters
    query: dict[str, str] = field(default_factory=dict)
    #: requests the server is handling now, this one included
    in_flight: int = 0
    created: int = field(default_factory=lambda: int(time.time()))
    #: the request's headers (lower-case names), and its raw body on ``with_body=False`` routes (binary protocols)
    request_headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes = b""

    def error(self, status: int, message: str, **kw: Any) -> ProtocolError:
        reply = error_reply(self.protocol, status, message, request_id=self.request_id, state=self.state, **kw)
        return ProtocolError(reply)

    def json(self, body: Any, status: int = 200) -> JsonReply:
        return JsonReply(status, body, dict(self.headers))

    def stream(self, events: list[tuple[str | None, str]], fmt: str = "sse") -> StreamReply:
        return StreamReply(events, dict(self.headers), fmt)
