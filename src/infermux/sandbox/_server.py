"""The sandbox server: routing, auth, fault application, stats and the ``/_sandbox`` control API."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from infermux.errors import ConfigurationError
from infermux.sandbox import _anthropic, _openai, _responses
from infermux.sandbox._faults import Fault, FaultController, FaultKind, parse_fault
from infermux.sandbox._model import Responder
from infermux.sandbox._stats import ATTEMPT_HEADERS, DEFAULT_MAX_RECORDS, RequestRecord, SandboxStats
from infermux.sandbox._wire import (
    ANTHROPIC,
    HTML_PAGE,
    OPENAI,
    Ctx,
    ProtocolError,
    Reply,
    abort_connection,
    base_headers,
    error_reply,
    fault_reply,
    new_request_id,
    reset_server_state,
    send_reply,
    server_state,
)

__all__ = ["BUILTIN_BACKENDS", "DEFAULT_MODELS", "Backend", "Route", "SandboxApp", "load_backend"]

DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-latest",
)
Handler = Callable[[Any, Ctx], Reply]
AuthCheck = Callable[[Mapping[str, str], "frozenset[str] | None", Ctx], None]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    with_body: bool = True


@dataclass(frozen=True, slots=True)
class Backend:
    """A further emulated backend (Gemini, Ollama, TGI...): its protocol (a registered ``Dialect`` name), its
    routes, and how it checks credentials (raise ``ctx.error(...)``; ``None``: no auth, as self-hosted servers).
    Modules named in ``_BACKEND_MODULES`` define ``BACKEND`` and register their dialect on import.

    ``state``: the class of the backend's per-server state, kept under ``SandboxApp.state[name]`` (created on
    first use with :func:`~infermux.sandbox._wire.server_state`); ``configure(state, **options)``: sets options
    of one server (``state`` is that server's whole state dict; raise ``ConfigurationError`` on bad values)."""

    name: str
    protocol: str
    routes: tuple[Route, ...]
    check_auth: AuthCheck | None = None
    state: type[Any] | None = None
    configure: Callable[..., None] | None = None


#: backend name -> module under infermux.sandbox defining BACKEND; "openai"/"anthropic" are built in.
_BACKEND_MODULES: dict[str, str] = {
    "gemini": "_gemini",
    "groq": "_groq",
    "ollama": "_ollama",
    "tgi": "_tgi",
    "tei": "_tei",
    "vllm": "_vllm",
    "ovms": "_ovms",
    "opea": "_opea",
}
BUILTIN_BACKENDS = ("openai", "anthropic")


def load_backend(name: str) -> Backend:
    mod = _BACKEND_MODULES.get(name)
    if mod is None:
        known = sorted((*BUILTIN_BACKENDS, *_BACKEND_MODULES))
        raise ConfigurationError(f"unknown sandbox backend {name!r}; known: {', '.join(known)}")
    backend: Backend = importlib.import_module(f"infermux.sandbox.{mod}").BACKEND
    return backend


_OPENAI_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
_OPENAI_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY)."
)


async def _stall(request: web.Request, delay: float) -> bool:
    """Wait ``delay`` seconds before answering, as a stalled server does; ``False`` as soon as the client closes
    the connection (a real server notices the hang-up when it next polls the socket: here every 10 ms)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + delay
    while True:
        tr = request.transport
        if tr is None or tr.is_closing():
            return False
        left = end - loop.time()
        if left <= 0:
            return True
        await asyncio.sleep(min(0.01, left))


def _attempt(headers: Mapping[str, str]) -> int | None:
    for name in ATTEMPT_HEADERS:
        value = headers.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return None


def _bearer(value: str) -> str:
    scheme, _, key = value.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


_CONTROL_KEYS = frozenset({"clear", "push", "times", "default", "random", "capacity", "outage"})
_CONTROL_OBJECT_KEYS = {
    "capacity": frozenset({"limit", "retry_after_ms"}),
    "outage": frozenset({"enabled", "requests"}),
    "random": frozenset({"weights", "seed"}),
}


def _known_keys(what: str, obj: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(str(k) for k in obj if k not in allowed)
    if unknown:
        raise ConfigurationError(f"unknown key(s) {unknown} in {what}; known: {sorted(allowed)}")


def _parse_pushes(spec: Mapping[str, Any]) -> list[tuple[Fault, int]]:
    if "push" not in spec:
        return []
    items = spec["push"] if isinstance(spec["push"], list) else [spec["push"]]
    out: list[tuple[Fault, int]] = []
    for item in items:
        times = item.get("times", spec.get("times", 1)) if isinstance(item, dict) else spec.get("times", 1)
        one = {k: v for k, v in item.items() if k != "times"} if isinstance(item, dict) else item
        out.append((parse_fault(one), int(times)))
    return out


def _check_control(spec: Mapping[str, Any]) -> None:
    """Refuse keys a control document does not define, at the top and in its objects."""
    _known_keys("the control document", spec, _CONTROL_KEYS)
    for key, allowed in _CONTROL_OBJECT_KEYS.items():
        if isinstance(spec.get(key), Mapping):
            _known_keys(repr(key), spec[key], allowed)


class SandboxApp:
    """Owns the aiohttp application and the state its handlers share (faults, stats, configuration)."""

    def __init__(
        self,
        *,
        keys: Iterable[str] | None = None,
        responder: Responder | None = None,
        embedding_dim: int = 64,
        models: Iterable[str] = DEFAULT_MODELS,
        base_latency: float = 0.0,
        token_delay: float = 0.0,
        capacity: int | None = None,
        capacity_retry_after_ms: int = 100,
        backends: Iterable[str] = BUILTIN_BACKENDS,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        if embedding_dim < 1:
            raise ConfigurationError("embedding_dim must be >= 1")
        if base_latency < 0 or token_delay < 0:
            raise ConfigurationError("latencies must be >= 0")
        self.keys: frozenset[str] | None = frozenset(keys) if keys is not None else None
        self.responder = responder
        self.embedding_dim = embedding_dim
        self.models = tuple(models)
        self.base_latency = base_latency
        self.token_delay = token_delay
        self.faults = FaultController()
        self.faults.set_capacity(capacity, capacity_retry_after_ms)
        self.stats = SandboxStats(max_records)
        self.state: dict[str, Any] = {}
        self.backend_names = tuple(backends)
        self._backends = {b: load_backend(b) for b in self.backend_names if b not in BUILTIN_BACKENDS}
        self.extra: list[Backend] = list(self._backends.values())
        self._auth: dict[str, AuthCheck | None] = {b.protocol: b.check_auth for b in self.extra}
        self.app = self._build()

    def _build(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        api = self._api
        if "openai" in self.backend_names:
            app.router.add_post("/v1/chat/completions", api(OPENAI, _openai.chat_completions))
            app.router.add_post("/v1/embeddings", api(OPENAI, _openai.embeddings))
            app.router.add_post("/v1/responses", api(OPENAI, _responses.create_response))
            app.router.add_get("/v1/models", api(OPENAI, self._models, with_body=False))
            app.router.add_get("/v1/models/{model}", api(OPENAI, self._model, with_body=False))
        if "anthropic" in self.backend_names:
            app.router.add_post("/v1/messages", api(ANTHROPIC, _anthropic.create_message))
            app.router.add_post("/v1/messages/count_tokens", api(ANTHROPIC, _anthropic.count_message_tokens))
        for backend in self.extra:
            for r in backend.routes:
                app.router.add_route(r.method, r.path, api(backend.protocol, r.handler, with_body=r.with_body))
        app.router.add_post("/_sandbox/faults", self._control_faults)
        app.router.add_get("/_sandbox/stats", self._control_stats)
        app.router.add_post("/_sandbox/reset", self._control_reset)
        app.router.add_get("/_sandbox/health", self._control_health)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # -- protocol routes -------------------------------------------------------------------------------

    def _models(self, _body: Any, ctx: Ctx) -> Reply:
        return _anthropic.list_models(ctx) if ctx.protocol == ANTHROPIC else _openai.list_models(ctx)

    def _model(self, _body: Any, ctx: Ctx) -> Reply:
        return _openai.retrieve_model(ctx.path_params.get("model", ""), ctx)

    def _api(self, protocol: str, handler: Handler, *, with_body: bool = True) -> Callable[[web.Request], Any]:
        async def route(request: web.Request) -> web.StreamResponse:
            proto = protocol
            if not with_body and "anthropic-version" in request.headers:
                proto = ANTHROPIC
            return await self._dispatch(request, proto, handler, with_body)

        return route

    async def _dispatch(
        self, request: web.Request, protocol: str, handler: Handler, with_body: bool
    ) -> web.StreamResponse:
        started = time.monotonic()
        rid = new_request_id(protocol)
        try:
            fault, source = self.faults.next_fault(request.headers.get("x-sandbox-fault"), self.stats.in_flight)
        except ConfigurationError as exc:
            fault, source = Fault.status_error(400, message=f"bad x-sandbox-fault header: {exc}"), "header"
        self._record(request, rid, fault, source)
        admitted = source != "capacity"
        if admitted:
            self.stats.enter()
        try:
            return await self._respond(
                request, protocol, handler, with_body=with_body, rid=rid, fault=fault, started=started
            )
        except ConnectionResetError:  # the client hung up before its request was read whole: nobody to answer
            self.stats.hung_up(request.headers.get("x-request-id"))
            return web.Response()
        finally:
            if admitted:
                self.stats.leave()

    def _record(self, request: web.Request, rid: str, fault: Fault | None, source: str | None) -> None:
        resource = request.match_info.route.resource
        route = f"{request.method} {resource.canonical if resource is not None else request.path}"
        h = request.headers
        self.stats.record(
            RequestRecord(
                route=route,
                request_id=h.get("x-request-id"),
                attempt=_attempt(h),
                idempotency_key=h.get("idempotency-key"),
                server_request_id=rid,
                fault=fault.label if fault else None,
                fault_source=source if fault else None,
                received_at=time.time(),
            )
        )

    async def _respond(
        self,
        request: web.Request,
        protocol: str,
        handler: Handler,
        *,
        with_body: bool,
        rid: str,
        fault: Fault | None,
        started: float,
    ) -> web.StreamResponse:
        if self.base_latency and (fault is None or fault.kind not in (FaultKind.STATUS, FaultKind.RESET)):
            await asyncio.sleep(self.base_latency)  # faults are answered at once; only replies take time
        if fault is not None and fault.kind is FaultKind.RESET:
            abort_connection(request)
            return web.Response()
        if fault is not None and fault.kind is FaultKind.SLOW_HEADERS and not await _stall(request, fault.delay):
            self.stats.hung_up(request.headers.get("x-request-id"))
            return web.Response()  # the client hung up while the server stalled: nobody to answer
        limit = self.faults.capacity or 10000
        in_flight = self.stats.in_flight
        headers = base_headers(protocol, rid, started, limit=limit, in_flight=in_flight, state=self.state)
        if fault is not None and fault.kind is FaultKind.STATUS and fault.html_body:
            return web.Response(status=fault.status, text=HTML_PAGE, content_type="text/html", headers=headers)
        if fault is not None and fault.kind is FaultKind.STATUS:
            failed = fault_reply(protocol, fault, rid, self.state)
            failed.headers = {**headers, **failed.headers}
            return await send_reply(request, failed, None)
        ctx = Ctx(
            protocol,
            rid,
            headers,
            self.responder,
            self.embedding_dim,
            self.models,
            dict(request.match_info),
            state=self.state,
            query=dict(request.query),
            in_flight=in_flight,
        )
        ctx.request_headers = {k.lower(): v for k, v in request.headers.items()}
        reply: Reply
        try:
            self._check_auth(request, ctx)
            body = await self._read_json(request, ctx) if with_body else None
            if not with_body and request.can_read_body:
                ctx.raw_body = await request.read()
            reply = handler(body, ctx)
        except ProtocolError as exc:
            reply = exc.reply
            reply.headers = {**headers, **reply.headers}
        return await send_reply(request, reply, fault, self.token_delay)

    def _key_ok(self, key: str | None) -> bool:
        return bool(key) and (self.keys is None or key in self.keys)

    def _check_auth(self, request: web.Request, ctx: Ctx) -> None:
        h = request.headers
        if ctx.protocol in self._auth:
            check = self._auth[ctx.protocol]
            if check is not None:
                check(h, self.keys, ctx)
            return
        if ctx.protocol == ANTHROPIC:
            # x-api-key, or Authorization: Bearer (what anthropic SDK 2.x sends).
            key = h.get("x-api-key") or _bearer(h.get("authorization", ""))
            if not key:
                raise ctx.error(401, "x-api-key header is required")
            if not self._key_ok(key):
                raise ctx.error(401, "invalid x-api-key")
            if not h.get("anthropic-version"):
                raise ctx.error(400, "anthropic-version: header is required")
            return
        key = _bearer(h.get("authorization", ""))
        if not key:
            raise ctx.error(401, _OPENAI_NO_KEY, code="invalid_api_key")
        if not self._key_ok(key):
            shown = key[:3] + "*" * 8 + key[-4:]
            raise ctx.error(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")

    async def _read_json(self, request: web.Request, ctx: Ctx) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            if ctx.protocol == ANTHROPIC:
                raise ctx.error(400, "There was an issue with the JSON body of your request.") from None
            if ctx.protocol != OPENAI:
                raise ctx.error(400, "Failed to parse the request body as JSON") from None
            raise ctx.error(400, _OPENAI_BAD_JSON) from None

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        msg = f"Invalid URL ({request.method} {request.path})"
        if self.extra and not set(self.backend_names) & set(BUILTIN_BACKENDS):
            proto = self.extra[0].protocol
            reply = error_reply(proto, 404, msg, request_id=new_request_id(proto), state=self.state)
            return await send_reply(request, reply, None)
        if request.path.startswith("/v1/messages") or "anthropic-version" in request.headers:
            reply = error_reply(ANTHROPIC, 404, "Not Found", request_id=new_request_id(ANTHROPIC))
        else:
            reply = error_reply(OPENAI, 404, msg)
        return await send_reply(request, reply, None)

    # -- backend state ---------------------------------------------------------------------------------

    def _served(self, name: str) -> Backend | None:
        """The served backend ``name`` (``None`` for the built-in openai/anthropic); unknown or not served:
        ConfigurationError."""
        if name not in self.backend_names:
            load_backend(name)  # unknown names get the list of known backends
            raise ConfigurationError(
                f"sandbox backend {name!r} is not served by this sandbox (it serves: {', '.join(self.backend_names)})"
            )
        return self._backends.get(name)

    def configure_backend(self, name: str, **options: Any) -> None:
        """Set options of backend ``name`` for this server only (e.g. ``configure_backend("groq", requests=2)``).

        Raises ConfigurationError for an unknown or unserved backend, one without options, or bad options.
        ``reset()`` forgets what was configured.
        """
        backend = self._served(name)
        if backend is None or backend.configure is None:
            raise ConfigurationError(f"sandbox backend {name!r} has no options to configure")
        try:
            inspect.signature(backend.configure).bind(self.state, **options)
        except TypeError as exc:
            raise ConfigurationError(f"bad options for sandbox backend {name!r}: {exc}") from None
        backend.configure(self.state, **options)

    def backend_state(self, name: str) -> Any:
        """The live per-server state object of backend ``name`` (counters, loaded adapters...), created on
        first use; ConfigurationError for an unknown or unserved backend or one that keeps no state."""
        backend = self._served(name)
        if backend is None or backend.state is None:
            raise ConfigurationError(f"sandbox backend {name!r} keeps no per-server state")
        return server_state(self.state, name, backend.state)

    def reset(self) -> None:
        """Clear every fault and mode, zero the stats and forget all backend state and options."""
        self.faults.clear()
        self.stats.reset()
        reset_server_state(self.state)

    # -- control API -----------------------------------------------------------------------------------

    def configure(self, spec: Mapping[str, Any]) -> None:
        """Apply a control document (the JSON of ``POST /_sandbox/faults``, format in the README); raises
        ConfigurationError, also for a key it does not know (a typo must not be answered with ``ok``)."""
        _check_control(spec)
        pushes = _parse_pushes(spec)  # every fault parsed before anything changes: a bad one applies nothing
        if spec.get("clear"):
            self.faults.clear()
        for fault, times in pushes:
            self.faults.push(fault, times)
        if "default" in spec:
            self.faults.set_default(None if spec["default"] is None else parse_fault(spec["default"]))
        if "random" in spec:
            self._configure_random(spec["random"])
        if "capacity" in spec:
            cap = spec["capacity"]
            if isinstance(cap, dict):
                self.faults.set_capacity(cap.get("limit"), int(cap.get("retry_after_ms", 100)))
            else:
                self.faults.set_capacity(None if cap is None else int(cap), self.faults.capacity_retry_after_ms)
        if "outage" in spec:
            out = spec["outage"]
            if isinstance(out, dict):
                self.faults.set_outage(bool(out.get("enabled", True)), out.get("requests"))
            else:
                self.faults.set_outage(bool(out))

    def _configure_random(self, rnd: Any) -> None:  # keys checked by configure()
        if rnd is None:
            self.faults.set_random(None)
        elif isinstance(rnd, dict) and isinstance(rnd.get("weights"), dict):
            self.faults.set_random({str(k): float(v) for k, v in rnd["weights"].items()}, int(rnd.get("seed", 0)))
        else:
            raise ConfigurationError('\'random\' must be null or {"weights": {...}, "seed": n}')

    async def _control_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            spec = json.loads(await request.read())
            if not isinstance(spec, dict):
                raise ConfigurationError("the control document must be a JSON object")
            self.configure(spec)
        except (ValueError, TypeError, ConfigurationError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, "pending": self.faults.pending, "outage": self.faults.outage})

    async def _control_stats(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats.snapshot())

    async def _control_reset(self, _request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"ok": True})

    async def _control_health(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})
