"""The gateway core: one request handler (:meth:`Gateway.handle`) in front of one :class:`infermux.AsyncClient`,
served by aiohttp's low-level server (:meth:`Gateway.make_server`: no Application, router or middleware chain; the
gateway dispatches on its own ``(method, path)`` table), or mounted as an aiohttp Application (:attr:`Gateway.app`).

Every request: request ID (the caller's ``x-request-id`` when it is a sane token, else a new one; sent upstream
on every attempt) -> refused with 503 while draining -> authentication (master key or a virtual key) -> body
read within ``max_body_bytes`` -> the route's translation to the neutral types -> limits (messages, max
tokens, model allow-list, RPM/TPM, budget) -> the client (router -> endpoint engine) -> the answer in the
caller's protocol. Errors at any step are answered in the caller's protocol (see :mod:`.errors`).

Streams are relayed event by event: each upstream event is rendered and written before the next is read, and
``write`` waits while the caller's socket buffer is full (backpressure; nothing is buffered whole). The
server cancels a handler whose client disconnected (``handler_cancellation``), which closes the upstream
stream and frees its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from ..client import AsyncClient
from ..endpoint import Endpoint
from ..errors import InfermuxError
from ..resilience.clock import SYSTEM_CLOCK, Clock
from ..types import ChatRequest, ChatResponse, Usage
from .errors import GatewayError, Protocol, error_body, error_headers, from_exception
from .keys import KeyStore
from .limits import Admission
from .policy import GatewayCounters, Policy, Principal, RequestContext
from .settings import GatewaySettings
from .sse import StreamRenderer, dumps
from .state import GatewayState, LocalState

__all__ = ["Gateway", "Principal", "RequestContext"]

_log = logging.getLogger("infermux.gateway")
_RID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_OPEN_PATHS = frozenset(("/health", "/ready"))
_JSON = "application/json; charset=utf-8"
#: one encoder for every body (``json.dumps`` with options builds an encoder per call), compact
_encode = dumps
#: where the request ID is kept on the request (a typed key where aiohttp has them, 3.12+)
RID_KEY: Any = web.RequestKey("infermux_rid", str) if hasattr(web, "RequestKey") else "infermux_rid"


#: request IDs: 128 bits from a PRNG seeded from the OS (no system call per request, as ``os.urandom`` costs; an
#: ID is no secret), reseeded in a forked child so that two processes never share a sequence
_rng = random.Random(os.urandom(32))
_random_bits = _rng.getrandbits
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))


class _Route:
    """A handler in the dispatch table; ``with_context``: it gets the authenticated :class:`RequestContext`;
    ``param``: the name of a trailing path segment's value (``ctx.params``)."""

    __slots__ = ("handler", "param", "with_context")

    def __init__(self, handler: Callable[..., Awaitable[web.StreamResponse]], with_context: bool) -> None:
        self.handler = handler
        self.with_context = with_context
        self.param = ""


async def _no_expect(request: web.Request) -> None:
    """The Application's own ``Expect`` handling is off: :meth:`Gateway.handle` does it (for both servers)."""


async def _expect(request: web.BaseRequest) -> None:
    """``Expect: 100-continue`` (HTTP/1.1): the interim response, so the caller sends the body; any other
    expectation is refused (417), as aiohttp's router does."""
    expect = request.headers.get("expect", "")
    if request.version >= (1, 1):
        if expect.lower() != "100-continue":
            raise GatewayError(417, f"unknown Expect: {expect}")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0


class _GuardedWriter:
    """Writes to a stream response, cancelling the handler when one write waits more than ``timeout`` seconds for
    the caller to read (a caller that stops reading must not hold an upstream slot forever). One watchdog timer
    per stream, not one per write: a write notes when it began; the watchdog, when due, cancels the handler if
    the write in progress began ``timeout`` ago, else waits for when it would be (or for the next write)."""

    __slots__ = ("loop", "resp", "since", "stalled", "task", "timeout", "timer")

    def __init__(self, resp: web.StreamResponse, timeout: float) -> None:
        self.resp = resp
        self.timeout = timeout
        self.task = asyncio.current_task()
        self.loop = asyncio.get_running_loop()
        self.stalled = False
        self.since: float | None = None  # when the write in progress began
        self.timer: asyncio.TimerHandle | None = None

    def _fire(self) -> None:
        self.timer = None
        if self.since is None:  # no write waits: the next write arms the watchdog again
            return
        due = self.since + self.timeout
        if self.loop.time() < due:  # a later write (or the loop's clock resolution): not yet
            self.timer = self.loop.call_at(due, self._fire)
            return
        self.stalled = True
        if self.task is not None:
            self.task.cancel()

    def begin(self) -> None:
        """A write begins (the relay's per-event path: ``begin()``, ``await resp.write(...)``, ``since = None``,
        with no coroutine of ours around aiohttp's)."""
        self.since = now = self.loop.time()
        if self.timer is None:
            self.timer = self.loop.call_at(now + self.timeout, self._fire)

    async def write(self, data: bytes) -> None:
        self.begin()
        try:
            await self.resp.write(data)
        finally:
            self.since = None

    async def write_eof(self) -> None:
        """The end of the body, under the same watchdog: aiohttp's ``write_eof`` waits for the caller to read
        what is still buffered, and a caller that stops reading there must not hold the handler either."""
        self.begin()
        try:
            await self.resp.write_eof()
        finally:
            self.since = None

    def close(self) -> None:
        """The stream ended: the watchdog is not needed any more."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def uncancel(self) -> None:
        """Forget our own cancellation (Python 3.11+ counts them) so the handler can finish normally."""
        uncancel = getattr(self.task, "uncancel", None)
        if uncancel is not None:
            uncancel()


class Gateway:
    """Serves OpenAI- and Anthropic-protocol routes over ``client``: :meth:`handle` answers every request;
    :meth:`make_server` is aiohttp's low-level server over it, :attr:`app` an aiohttp Application over it."""

    def __init__(
        self,
        client: AsyncClient,
        settings: GatewaySettings | None = None,
        *,
        keys: KeyStore | None = None,
        state: GatewayState | None = None,
        clock: Clock = SYSTEM_CLOCK,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.settings = s = settings or GatewaySettings()
        #: the local key store (``state = "local"``; ``None`` when the state is shared through Redis)
        self.keys: KeyStore | None = None
        if state is None and s.state == "redis" and keys is None:
            from .redis_state import RedisState

            state = RedisState(
                s.redis_url,
                prefix=s.redis_prefix,
                timeout=s.redis_timeout,
                fail_open=s.fail_mode == "open",
                reservation_ttl=s.reservation_ttl,
                wall_clock=wall_clock,
                clock=clock,
            )
        if state is None:
            self.keys = keys if keys is not None else KeyStore(s.keys_db, clock=wall_clock)
            state = LocalState(self.keys, clock=clock, wall_clock=wall_clock)
        self.state: GatewayState = state
        self.counters = GatewayCounters()
        self.wall_clock = wall_clock
        self.policy = Policy(s, self.state, self.counters, models=self.models, wall_clock=wall_clock)
        self._settling: set[asyncio.Task[None]] = set()
        self.draining = False
        self.stopping = False
        self.tasks: set[asyncio.Task[Any]] = set()
        #: the dispatch table: (method, path) -> (handler, whether it gets a RequestContext); paths that end in
        #: ``/{name}`` (one segment) are looked up by their prefix in ``_prefixed``
        self._routes: dict[tuple[str, str], _Route] = {}
        self._prefixed: dict[tuple[str, str], _Route] = {}
        self._methods: dict[str, list[str]] = {}  # path (or prefix + "/{}") -> its methods, for 405's Allow
        self._app: web.Application | None = None
        from . import admin, routes

        routes.add_routes(self)
        admin.add_routes(self)

    # ------------------------------------------------------------------ plumbing

    def route(
        self,
        method: str,
        path: str,
        handler: Callable[[web.BaseRequest, RequestContext], Awaitable[web.StreamResponse]],
    ) -> None:
        """Register a handler that gets the authenticated :class:`RequestContext` (body read for POST). A path
        may end in one ``/{name}`` segment (e.g. ``/admin/keys/{key_id}``): its value is ``ctx.params[name]``."""
        self._add(method, path, _Route(handler, True))

    def route_open(
        self, method: str, path: str, handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
    ) -> None:
        """Register a handler that authenticates (or not) by itself: ``/health``, ``/ready``, ``/status``.
        A GET route answers HEAD too."""
        self._add(method, path, _Route(handler, False))
        if method == "GET":
            self._add("HEAD", path, _Route(handler, False))

    def _add(self, method: str, path: str, route: _Route) -> None:
        head, sep, last = path.rpartition("/")
        if sep and last.startswith("{") and last.endswith("}"):
            route.param = last[1:-1]
            self._prefixed[(method, head + "/")] = route
            self._methods.setdefault(head + "/{}", []).append(method)
        else:
            self._routes[(method, path)] = route
            self._methods.setdefault(path, []).append(method)

    def _resolve(self, method: str, path: str) -> tuple[_Route, str]:
        """The route of a path with a parameter, and the parameter's value; else 405 (the path is served with
        other methods) or 404."""
        prefix, _, last = path.rpartition("/")
        route = self._prefixed.get((method, prefix + "/")) if last else None
        if route is not None:
            return route, last
        allowed = self._methods.get(path) or (self._methods.get(prefix + "/{}") if last else None)
        if allowed:
            raise GatewayError(
                405, f"{method} {path}: Method Not Allowed", headers={"allow": ",".join(sorted(set(allowed)))}
            )
        raise GatewayError(404, f"{method} {path}: Not Found")

    def make_server(self, **kwargs: Any) -> web.Server:
        """aiohttp's low-level server (no Application, router or middleware chain: :meth:`handle` dispatches on
        its own table), with the request body limit and the cancellation of a handler whose caller left."""
        limit = self.settings.max_body_bytes
        loop = asyncio.get_running_loop()

        def request(
            message: Any, payload: Any, protocol: Any, writer: Any, task: asyncio.Task[None]
        ) -> web.BaseRequest:
            return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=limit)

        kwargs.setdefault("handler_cancellation", True)
        kwargs.setdefault("access_log", None)
        return web.Server(self.handle, request_factory=request, **kwargs)

    @property
    def app(self) -> web.Application:
        """The gateway as an aiohttp :class:`~aiohttp.web.Application` (one catch-all route to :meth:`handle`,
        which dispatches on the full path: serve it at the root), to run with aiohttp's own runners (give
        ``handler_cancellation=True`` to the runner); ``infermux serve`` runs :meth:`make_server` instead."""
        if self._app is None:
            app = web.Application(client_max_size=self.settings.max_body_bytes)
            app.router.add_route("*", "/{tail:.*}", self.handle, expect_handler=_no_expect)
            self._app = app
        return self._app

    @staticmethod
    def protocol_of(request: web.BaseRequest) -> Protocol:
        path = request.path
        if path.startswith("/v1/messages") or (path == "/v1/models" and "anthropic-version" in request.headers):
            return "anthropic"
        return "openai"

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Every request: its ID, the drain check, the route, ``Expect: 100-continue``, the handler (with the
        authenticated context), and any error answered in the caller's protocol."""
        given = request.headers.get("x-request-id", "")
        rid = given if given and _RID.match(given) else f"{_random_bits(128):032x}"
        request[RID_KEY] = rid
        path = request.path
        protocol = self.protocol_of(request)
        if self.draining and path not in _OPEN_PATHS:
            err = GatewayError(503, "the gateway is shutting down: send the request again", retryable=True)
            return self.error_response(protocol, rid, err, extra_headers={"connection": "close"})
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        counters = self.counters
        counters.requests += 1
        counters.in_flight += 1
        try:
            method = request.method
            route = self._routes.get((method, path))
            param = None
            if route is None:
                route, param = self._resolve(method, path)
            if "expect" in request.headers:
                await _expect(request)
            if route.with_context:
                ctx = await self.context(request, rid, protocol)
                if param is not None:
                    ctx.params = {route.param: param}
                resp: web.StreamResponse = await route.handler(request, ctx)
            else:
                resp = await route.handler(request)
        except asyncio.CancelledError:
            counters.disconnects += 0 if self.stopping else 1
            raise
        except Exception as e:  # noqa: BLE001 - answered in the caller's protocol (a bug: logged, a 500)
            resp = self._error_of(request, protocol, rid, e)
        finally:
            counters.in_flight -= 1
            if task is not None:
                self.tasks.discard(task)
        if not resp.prepared:
            resp.headers.setdefault("x-request-id", rid)
        return resp

    def _error_of(self, request: web.BaseRequest, protocol: Protocol, rid: str, e: Exception) -> web.Response:
        if isinstance(e, InfermuxError):
            return self.error_response(protocol, rid, e)
        if isinstance(e, web.HTTPException):
            if e.status == 413:
                msg = f"request body over the gateway's limit of {self.settings.max_body_bytes} bytes"
            else:
                msg = f"{request.method} {request.path}: {e.reason}"
            return self.error_response(protocol, rid, GatewayError(e.status, msg), extra_headers=dict(e.headers))
        _log.exception("gateway: unexpected error in %s %s (request %s)", request.method, request.path, rid)
        err = GatewayError(500, f"internal gateway error ({type(e).__name__}); request ID {rid}", retryable=True)
        return self.error_response(protocol, rid, err)

    def error_response(
        self, protocol: Protocol, rid: str, err: InfermuxError, *, extra_headers: Mapping[str, str] | None = None
    ) -> web.Response:
        status, etype, message, retry_after, retryable = from_exception(err, protocol)
        self.counters.errors_by_status[status] = self.counters.errors_by_status.get(status, 0) + 1
        headers = error_headers(rid, retry_after, retryable, status)
        if isinstance(err, GatewayError):
            headers.update(err.headers)
        for k, v in (extra_headers or {}).items():
            if k.lower() not in ("content-type", "content-length"):
                headers[k] = v
        body = json.dumps(error_body(protocol, status, etype, message, rid))
        return web.Response(status=status, text=body, content_type="application/json", headers=headers)

    @staticmethod
    def json_response(body: Any, rid: str, *, status: int = 200, endpoint: str | None = None) -> web.Response:
        headers = {"x-request-id": rid, "content-type": _JSON}
        if endpoint:
            headers["x-infermux-endpoint"] = endpoint
        return web.Response(status=status, body=_encode(body).encode(), headers=headers)

    # ------------------------------------------------------------------ auth and input

    async def read_json(self, request: web.BaseRequest) -> dict[str, Any]:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise GatewayError(413, f"request body of {request.content_length} bytes is over the limit of {limit}")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise GatewayError(413, f"request body over the gateway's limit of {limit} bytes") from None
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise GatewayError(400, f"request body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise GatewayError(400, f"request body must be a JSON object, got {type(body).__name__}")
        return body

    async def context(self, request: web.BaseRequest, rid: str, protocol: Protocol) -> RequestContext:
        principal = await self.policy.authenticate(request, protocol)
        body = await self.read_json(request) if request.method == "POST" and request.can_read_body else {}
        return RequestContext(rid, protocol, principal, body)

    # ------------------------------------------------------------------ models and limits

    def models(self) -> list[str]:
        """The model names served: the groups' (``[[groups]]``), then the endpoints' configured models."""
        seen: dict[str, None] = dict.fromkeys(self.client.router.groups)
        for ep in self.client.endpoints:
            for m in (ep.config.model, *ep.config.models):
                if m:
                    seen[m] = None
        return list(seen)

    def candidates(self, model: str | None) -> list[Endpoint]:
        return self.client.router.candidates(model=model)

    def shape(self, req: ChatRequest, family: frozenset[str]) -> ChatRequest:
        """``req`` as the chosen endpoints get it: fields infermux does not model (``extra``) pass through only
        when every candidate speaks the caller's protocol (they would be wrong in another's body). OpenAI's
        ``max_completion_tokens`` becomes ``max_tokens`` for another protocol."""
        if not req.extra:
            return req
        if all(ep.provider.name in family for ep in self.candidates(req.model)):
            return req
        mct = req.extra.get("max_completion_tokens")
        if req.max_tokens is None and isinstance(mct, int) and not isinstance(mct, bool) and mct > 0:
            return replace(req, extra={}, max_tokens=mct)
        return replace(req, extra={})

    # ------------------------------------------------------------------ chat

    async def serve_chat(
        self,
        request: web.BaseRequest,
        ctx: RequestContext,
        req: ChatRequest,
        *,
        family: frozenset[str],
        stream: bool,
        render: Callable[[ChatResponse], dict[str, Any]],
        renderer: Callable[[], StreamRenderer],
    ) -> web.StreamResponse:
        req = self.shape(req, family)
        adm = await self.policy.admit(ctx, req)
        usage: Usage | None = None
        try:
            if stream:
                resp, usage = await self.relay(request, ctx, req, renderer())
                return resp
            out = await self.client.chat(req, timeout=self.settings.request_timeout, request_id=ctx.request_id)
            usage = out.usage
            raw = out.raw if out.provider in family and isinstance(out.raw, dict) else None
            return self.json_response(raw if raw is not None else render(out), ctx.request_id, endpoint=out.endpoint)
        finally:
            await self.settle(adm, req.model, usage)

    async def settle(self, adm: Admission | None, model: str | None, usage: Usage | None) -> None:
        """Settle a request's reservation in a task of its own, so that a cancelled handler (the caller went
        away, the drain deadline) still settles; waited for here, and by :meth:`aclose` (bounded). The local
        state settles at once (nothing is awaited there, so nothing can be cancelled half-way)."""
        if adm is None or self.policy.settle_local(adm, model, usage):  # local: at once, nothing waits
            return
        task = asyncio.ensure_future(self.policy.settle(adm, model, usage))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        await asyncio.shield(task)

    async def relay(
        self, request: web.BaseRequest, ctx: RequestContext, req: ChatRequest, renderer: StreamRenderer
    ) -> tuple[web.StreamResponse, Usage | None]:
        """Relay one stream. The first event is awaited before the headers are sent, so a failure before any
        content (429, 5xx, auth...) reaches the caller as an HTTP error with its status and retry-after. A call
        with tools does not fail over mid-stream: the SDKs cannot be told to drop a tool call already streamed
        (the client library restarts it, see infermux._failover), so a break there ends the stream with an error."""
        failover = False if req.tools else None
        s = self.client.stream(req, timeout=self.settings.request_timeout, request_id=ctx.request_id, failover=failover)
        async with s:
            events = s.__aiter__()
            try:
                first = await events.__anext__()
            except StopAsyncIteration:
                first = None
            headers = {"cache-control": "no-cache", "x-request-id": ctx.request_id}
            if s.endpoint:
                headers["x-infermux-endpoint"] = s.endpoint
            resp = web.StreamResponse(status=200, headers=headers)
            resp.content_type = "text/event-stream"
            await resp.prepare(request)
            self.counters.streams += 1
            out = _GuardedWriter(resp, self.settings.stream_write_timeout)
            try:
                try:
                    if first is not None:
                        await out.write(renderer.feed(first))
                    async for ev in events:
                        chunk = renderer.feed(ev)
                        if chunk:
                            out.begin()
                            await resp.write(chunk)
                            out.since = None  # (a write that raised: the stream ends, the watchdog with it)
                    tail = renderer.close()
                except InfermuxError as e:
                    status, etype, message, _, _ = from_exception(e, ctx.protocol)
                    tail = renderer.error(status, etype, message)
                except asyncio.CancelledError:
                    out.since = None  # no write waits any more: the watchdog stays quiet from here
                    if out.stalled:  # the caller stopped reading: treated as gone (the upstream is closed below)
                        out.uncancel()
                        self.counters.disconnects += 1
                        return resp, renderer.usage
                    if self.stopping:  # drain deadline: say so in-band, briefly, then stop
                        await self._try_write(resp, renderer.error(503, "overloaded_error", "the gateway shut down"))
                    raise
                except ConnectionError:  # the caller went away between our writes
                    self.counters.disconnects += 1
                    return resp, renderer.usage
                await self._finish(out, tail)
            finally:
                out.close()
        return resp, renderer.usage

    async def _finish(self, out: _GuardedWriter, tail: bytes) -> None:
        """The terminal frames and the end of the body (the caller may be gone or stalled by now)."""
        try:
            await out.write(tail)
            await out.write_eof()
        except ConnectionError:
            self.counters.disconnects += 1
        except asyncio.CancelledError:
            if not out.stalled:
                raise
            out.uncancel()
            self.counters.disconnects += 1

    @staticmethod
    async def _try_write(resp: web.StreamResponse, data: bytes) -> None:
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(resp.write(data)), 0.5)

    # ------------------------------------------------------------------ readiness

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when every model (group, or endpoint's configured model) has at least one endpoint the router
        may use now (breaker not open, a usable key, not found down by health probes); endpoints without a
        configured model count under ``"*"``. With ``state = "redis"`` and ``fail_mode = "closed"``, not ready
        while the last Redis call failed."""
        router = self.client.router
        per_model: dict[str, list[str]] = {
            name: [ep.name for ep in g.endpoints if router.usable(ep)] for name, g in router.groups.items()
        }
        for ep in self.client.endpoints:
            names = [m for m in (ep.config.model, *ep.config.models) if m] or ["*"]
            for m in names:
                per_model.setdefault(m, [])
                if router.usable(ep):
                    per_model[m].append(ep.name)
        ready = not self.draining and all(per_model.values())
        detail: dict[str, Any] = {"ready": ready, "draining": self.draining, "models": per_model}
        if self.state.name == "redis":  # shared state: fail-closed with Redis down serves no virtual key
            reachable = bool(getattr(self.state, "reachable", True))
            detail["state"] = {"store": "redis", "reachable": reachable, "fail_mode": self.settings.fail_mode}
            if not reachable and self.settings.fail_mode == "closed":
                detail["ready"] = ready = False
        return ready, detail

    # ------------------------------------------------------------------ shutdown

    async def drain(self, timeout: float) -> int:
        """Refuse new requests (503), wait up to ``timeout`` for those in flight; cancel what is left (a stream
        gets an in-band error first). Returns how many were cancelled."""
        self.draining = True
        deadline = asyncio.get_running_loop().time() + timeout
        while self.tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.wait(set(self.tasks), timeout=left)
        rest = [t for t in self.tasks if not t.done()]
        self.stopping = True
        for t in rest:
            t.cancel()
        if rest:
            await asyncio.wait(rest, timeout=2.0)
        return len(rest)

    async def aclose(self) -> None:
        if self._settling:  # each is bounded by the store's timeout
            await asyncio.wait(set(self._settling), timeout=5.0)
        await self.client.aclose()
        await self.state.aclose()
