"""The public clients: :class:`AsyncClient` (asyncio) and :class:`Client` (a sync facade over the same engine).

Example::

    async with infermux.AsyncClient([infermux.EndpointConfig(name="local", provider="llamacpp",
                                                           base_url="http://127.0.0.1:8080/v1", model="smollm2")]) as c:
        r = await c.chat("Say hi", max_tokens=16)
        async with c.stream("Count to 3") as s:
            async for text in s.text():
                print(text, end="")

An :class:`AsyncClient` belongs to the event loop of its first call until :meth:`AsyncClient.aclose`; a call
from another loop raises :class:`ConfigurationError` instead of leaking the first loop's connections.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

from ._chatstream import ChatStream
from ._hedge import HedgePlan, routed_stream
from ._ids import new_request_id
from .endpoint import Endpoint, EndpointConfig, StreamInfo, build_endpoints
from .errors import ConfigurationError, InfermuxError
from .fleet import GroupConfig
from .health import HealthCallback, HealthMonitor
from .providers import ProviderRequest
from .providers._common import parse_model_ids
from .resilience.clock import SYSTEM_CLOCK, Clock
from .resilience.health import HealthConfig
from .resilience.store import StateStore
from .router import Budget, Router, Target
from .shared_state import RedisStateStore, StateConfig, attach_state, open_state
from .strategies import prefix_key
from .transport import Transport
from .types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    MessagesInput,
    Priority,
    ReasoningEffort,
    ResponseFormat,
    RouteHop,
    StreamEvent,
    Tool,
    check_call_options,
    coerce_messages,
)

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from ._hooks import BatchHook, CacheHook
    from .batching import BatchConfig
    from .cache import CacheConfig, CachePlan, ResponseCache
    from .otel import Instrumentation, Telemetry
    from .providers.kserve import InferResult, Tensor

__all__ = ["AsyncClient", "ChatParams", "ChatStream", "ModelListing", "build_chat_request"]

_UNSET: Any = object()


def _coerce_tool(t: Tool | Mapping[str, Any]) -> Tool:
    if isinstance(t, Tool):
        return t
    fn = t.get("function", t) if t.get("type", "function") == "function" else None
    if not isinstance(fn, Mapping) or "name" not in fn:
        raise ConfigurationError(f"a tool must be a Tool or an OpenAI-style function dict, got {dict(t)!r}")
    return Tool(
        name=fn["name"],
        description=fn.get("description", ""),
        parameters=fn.get("parameters") or fn.get("input_schema") or {"type": "object", "properties": {}},
        strict=fn.get("strict"),
    )


def _coerce_format(rf: ResponseFormat | Mapping[str, Any] | str | None) -> ResponseFormat | None:
    if rf is None or isinstance(rf, ResponseFormat):
        return rf
    if isinstance(rf, str):
        if rf in ("json", "json_object"):
            return ResponseFormat("json_object")
        raise ConfigurationError(f"response_format string must be 'json' or 'json_object', got {rf!r}")
    t = rf.get("type")
    if t == "json_object":
        return ResponseFormat("json_object")
    if t == "json_schema":
        js = rf.get("json_schema", rf)
        return ResponseFormat(
            "json_schema", schema=js.get("schema"), name=js.get("name", "response"), strict=js.get("strict")
        )
    if t == "text":
        return None
    raise ConfigurationError(f"unsupported response_format {dict(rf)!r}")


class ModelListing(dict[str, list[str]]):
    """What :meth:`AsyncClient.models` returns: model IDs by endpoint name for the endpoints that answered,
    and ``errors``: the typed error of each endpoint that did not (so one failing endpoint hides nothing)."""

    def __init__(self, ids: Mapping[str, list[str]], errors: Mapping[str, InfermuxError]) -> None:
        super().__init__(ids)
        self.errors: dict[str, InfermuxError] = dict(errors)

    def __repr__(self) -> str:
        return f"ModelListing({dict(self)!r}, errors={ {k: type(e).__name__ for k, e in self.errors.items()}!r})"


class ChatParams(TypedDict, total=False):
    """The chat parameters :meth:`AsyncClient.chat` and :meth:`AsyncClient.stream` take as keywords (those of
    :func:`build_chat_request`)."""

    model: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: str | Sequence[str] | None
    tools: Iterable[Tool | Mapping[str, Any]] | None
    tool_choice: str | None
    parallel_tool_calls: bool | None
    response_format: ResponseFormat | Mapping[str, Any] | str | None
    seed: int | None
    user: str | None
    metadata: Mapping[str, str] | None
    extra: Mapping[str, Any] | None
    extra_headers: Mapping[str, str] | None
    max_retries: int | None
    reasoning_effort: ReasoningEffort | None


_CHAT_PARAMS = frozenset(ChatParams.__annotations__)


def _check_params(method: str, params: Mapping[str, Any]) -> None:
    """A wrong keyword is a ``TypeError`` naming the public method, as Python's own would."""
    for name in params:
        if name not in _CHAT_PARAMS:
            raise TypeError(f"{method}() got an unexpected keyword argument {name!r}")


def build_chat_request(
    messages: MessagesInput | ChatRequest,
    *,
    model: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    stop: str | Sequence[str] | None = None,
    tools: Iterable[Tool | Mapping[str, Any]] | None = None,
    tool_choice: str | None = None,
    parallel_tool_calls: bool | None = None,
    response_format: ResponseFormat | Mapping[str, Any] | str | None = None,
    seed: int | None = None,
    user: str | None = None,
    metadata: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    extra_headers: Mapping[str, str] | None = None,
    max_retries: int | None = None,
    reasoning_effort: ReasoningEffort | None = None,
) -> ChatRequest:
    """Build a validated :class:`ChatRequest` from friendly arguments (strings, OpenAI-style dicts...).

    ``extra`` goes into the JSON body, ``extra_headers`` are sent as HTTP headers on every attempt and
    ``max_retries`` replaces the endpoint's retry count for this call (see :class:`ChatRequest`)."""
    if isinstance(messages, ChatRequest):
        return messages
    check_call_options(extra_headers or {}, max_retries)
    msgs = coerce_messages(messages)
    try:
        return ChatRequest(
            messages=msgs,
            model=model,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
            tools=tuple(_coerce_tool(t) for t in tools or ()),
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=_coerce_format(response_format),
            seed=seed,
            user=user,
            metadata=dict(metadata) if isinstance(metadata, Mapping) else metadata or {},  # else: refused, named
            extra=dict(extra) if isinstance(extra, Mapping) else extra or {},
            extra_headers=dict(extra_headers or {}),
            max_retries=max_retries,
            reasoning_effort=reasoning_effort,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        if isinstance(e, ConfigurationError):
            raise
        raise ConfigurationError(f"invalid chat parameters ({type(e).__name__}: {e})") from None


class AsyncClient:
    """A client over one or more endpoints, with routing and fallback in the configured order.

    ``endpoints`` may be :class:`EndpointConfig` or ready :class:`Endpoint` objects. Without endpoints,
    ``config`` (a TOML/YAML/JSON file path: endpoints, groups, health) is read; without both, the environment
    (see :func:`infermux.config.endpoints_from_env`) when ``trust_env`` is true.

    ``groups``: model groups (:class:`~infermux.fleet.GroupConfig`): a call whose ``model`` names a group is
    routed over its endpoints with its strategy and fallback groups. ``health``: watch the endpoints
    (:class:`~infermux.resilience.health.HealthConfig`: active probes, forward progress) and skip those that
    are down; ``on_health_change(endpoint, old, new, reason)`` is called on every change (given alone, it
    turns on passive health: breaker and forward progress, without probes).

    ``transport``: how the endpoints speak HTTP: a :class:`~infermux.transport.Transport` shared by all, or a
    name, one transport per endpoint: ``"h1"`` (the default, infermux's own HTTP/1.1 client) or ``"aiohttp"``.
    """

    def __init__(
        self,
        endpoints: Sequence[EndpointConfig | Endpoint] | None = None,
        *,
        config: str | Path | None = None,
        transport: Transport | str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        trust_env: bool = True,
        groups: Sequence[GroupConfig] | None = None,
        health: HealthConfig | None = None,
        on_health_change: HealthCallback | None = None,
        cache: CacheConfig | ResponseCache | None = None,
        batching: BatchConfig | None = None,
        telemetry: Telemetry | bool | None = None,
        state: StateConfig | Mapping[str, Any] | StateStore | None = None,
    ) -> None:
        """``cache``: a response cache (:mod:`infermux.cache`); ``batching``: micro-batching of embeddings and
        KServe infer calls (:mod:`infermux.batching`); ``telemetry``: OpenTelemetry spans and GenAI metrics
        (:mod:`infermux.otel`, extra ``[otel]``; ``True``: the global providers). All are off by default.
        ``state``: share breakers, key cool-downs and health with other processes (``{"backend": "redis",
        "url": ..., "prefix": ...}``, :mod:`infermux.shared_state`)."""
        from . import config as _config

        if endpoints is None:
            if config is not None:
                fleet = _config.load_fleet(config)
                endpoints = fleet.endpoints
                groups = [*fleet.groups, *(groups or ())]
                health = health or fleet.health
                state = state or fleet.state
            elif trust_env:
                endpoints = _config.endpoints_from_env()
            if not endpoints:
                raise ConfigurationError(
                    "no endpoints configured: pass endpoints=[EndpointConfig(...)], config='infermux.toml',"
                    " or set INFERMUX_CONFIG / INFERMUX_BASE_URL"
                )
        self._endpoints = build_endpoints(endpoints, transport=transport, clock=clock)
        if health is not None and not isinstance(health, HealthConfig):
            raise ConfigurationError(f"health must be a HealthConfig or None, got {type(health).__name__}")
        if on_health_change is not None and health is None:
            health = HealthConfig(probe=False)
        self.monitor = HealthMonitor(self._endpoints, health, on_change=on_health_change, gate=health is not None)
        self.router = Router(self._endpoints, groups or (), health=self.monitor if health is not None else None)
        self.state = open_state(state, clock=clock)  # shared state (None: each endpoint's own, in this process)
        if self.state is not None:
            attach_state(self.state, self._endpoints, self.monitor)
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cache: CacheHook | None = None
        self._batching: BatchHook | None = None
        self._otel: Instrumentation | None = None
        if telemetry is not None and telemetry is not False:
            from .otel import Instrumentation

            self._otel = Instrumentation(telemetry, self._endpoints, clock)
        if cache is not None or batching is not None:
            from ._hooks import BatchHook, CacheHook, check_stats_names

            check_stats_names(self._endpoints, cache, batching)
            if batching is not None:
                self._batching = BatchHook(batching, self.router, clock)
            if cache is not None:
                self._cache = CacheHook(cache, self._endpoints, clock, self.embed)

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache (``None`` unless ``cache=`` was given): ``stats()``, ``clear(namespace)``..."""
        return None if self._cache is None else self._cache.cache

    def _bind_loop(self) -> None:
        """Tie this client to the running loop on its first call; refuse any other loop until aclose()."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self.monitor.start()  # the probe loops run on the client's loop (when probes are on)
            if isinstance(self.state, RedisStateStore):
                self.state.start()
        elif self._loop is not loop:
            raise ConfigurationError(
                "this AsyncClient is used by another event loop than the one of its first call (two"
                " asyncio.run() calls?): create the client inside the loop that uses it, or aclose() it"
                " before that loop ends (then it can be used again)"
            )

    @property
    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)

    def endpoint(self, name: str) -> Endpoint:
        return self.router.get(name)

    async def chat(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        endpoint: str | None = None,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        fail_fast: bool = False,
        endpoints: Sequence[str] | None = None,
        strategy: str | None = None,
        hedge: bool | float | None = None,
        cache: bool = True,
        cache_refresh: bool = False,
        cache_namespace: str | None = None,
        cache_allow_sampled: bool | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatResponse:
        """One chat completion. ``params`` are :func:`build_chat_request`'s (model, temperature,
        max_tokens, stop, tools, tool_choice, response_format, seed, user, metadata, extra, extra_headers,
        max_retries, reasoning_effort), see :class:`ChatParams`.
        ``timeout`` bounds the whole call, fallbacks included; ``fail_fast`` refuses at once instead of waiting
        while every endpoint protects itself (breaker open, key quota used up). ``model`` may name a group;
        ``endpoints`` (names) and ``strategy`` override the group's for this call; ``hedge`` too (``False``: no
        hedge, ``True``: hedge, a number: hedge after that many seconds; see :mod:`infermux.hedging`). The
        response's ``route`` lists the endpoints tried. With a response cache: ``cache=False`` skips it,
        ``cache_refresh=True`` asks the provider and replaces the stored answer, ``cache_namespace`` names the
        tenant, ``cache_allow_sampled`` lets a non-zero temperature use the cache."""
        _check_params("AsyncClient.chat", params)
        self._bind_loop()
        asked = build_chat_request(messages, **params)
        rid = request_id or new_request_id()
        target, req = self._target(asked, endpoint, endpoints, strategy)
        budget = Budget(self._clock, timeout)
        plan: CachePlan | None = None
        if self._cache is not None:
            from ._hooks import route_key

            opts: dict[str, Any] = {"use": cache, "refresh": cache_refresh, "namespace": cache_namespace}
            key = route_key(endpoint, endpoints, strategy)
            plan = await self._cache.begin(asked, target.endpoints, key, rid, allow_sampled=cache_allow_sampled, **opts)
            if plan is not None and plan.hit is not None:
                return plan.hit
        obs = None if self._otel is None else self._otel.begin("chat", _asked_model(asked.model, target), rid, asked)
        try:
            resp = await self.router.run(
                target,
                lambda ep, st: ep.chat(
                    req,
                    priority=priority,
                    timeout=st.timeout,
                    request_id=rid,
                    wait=st.wait,
                    share=st.share,
                    observer=obs,
                ),
                budget,
                fail_fast=fail_fast,
                priority=priority,
                refused=_refused,
                hedge=self.router.hedging(target, hedge),
            )
        except BaseException as e:
            if obs is not None:
                obs.finish(error=e)
            raise
        if obs is not None:
            obs.finish(resp)
        if plan is not None and self._cache is not None:
            await self._cache.cache.complete(plan, resp)
        return resp

    def _target(
        self, req: ChatRequest, endpoint: str | None, endpoints: Sequence[str] | None, strategy: str | None
    ) -> tuple[Target, ChatRequest]:
        """The call's routing target, and the request as its endpoints get it (a group's name is not a model:
        each member answers with its own)."""
        target = self.router.target(
            model=req.model,
            endpoint=endpoint,
            endpoints=endpoints,
            strategy=strategy,
            key=functools.partial(_chat_prefix, req),
        )
        if target.group is not None and req.model is not None:
            req = replace(req, model=None)
        return target, req

    def stream(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        endpoint: str | None = None,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        fail_fast: bool = False,
        resume: bool | None = None,
        failover: bool | None = None,
        endpoints: Sequence[str] | None = None,
        strategy: str | None = None,
        hedge: bool | float | None = None,
        cache: bool = True,
        cache_refresh: bool = False,
        cache_namespace: str | None = None,
        cache_allow_sampled: bool | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatStream:
        """A streamed chat completion (use ``async with`` / ``async for``). Falls back to the next endpoint
        while no content has reached the caller; after that a broken stream is resumed on its endpoint
        (``resume``, default each endpoint's ``resume_streams``; see :meth:`Endpoint.stream`) and, with
        ``failover`` (default: on for a call to a group, per its ``GroupConfig.failover``), continued on the
        group's next endpoint (see :mod:`infermux._failover`): one stream for the caller. ``params`` as
        in :meth:`chat` (``model`` may name a group; ``endpoints``, ``strategy``, ``hedge``: the first content
        chunk decides the race); ``stream.route`` and the final
        response's ``route`` list the endpoints tried. The cache arguments are :meth:`chat`'s: a cached answer
        is replayed as the same events, and a stream that completes fills the cache."""
        _check_params("AsyncClient.stream", params)
        asked = build_chat_request(messages, **params)
        rid = request_id or new_request_id()
        target, req = self._target(asked, endpoint, endpoints, strategy)
        budget = Budget(self._clock, timeout)
        stream = ChatStream(rid, on_start=self._bind_loop)
        live = functools.partial(
            self._stream_events,
            stream.info,
            req,
            target,
            priority=priority,
            budget=budget,
            rid=rid,
            fail_fast=fail_fast,
            resume=resume,
            failover=failover,
            hops=stream.route_hops,
            hedge=self.router.hedging(target, hedge),
        )
        if self._cache is None:
            stream.attach(live())
            return stream
        from ._hooks import route_key

        opts = {
            "use": cache,
            "refresh": cache_refresh,
            "namespace": cache_namespace,
            "allow_sampled": cache_allow_sampled,
        }
        route = (target.endpoints, route_key(endpoint, endpoints, strategy), rid)
        stream.attach(self._cache.open_stream(stream, asked, route, opts, live))
        return stream

    async def _stream_events(
        self,
        info: StreamInfo,
        req: ChatRequest,
        target: Target,
        *,
        priority: Priority,
        budget: Budget,
        rid: str,
        fail_fast: bool,
        resume: bool | None,
        failover: bool | None,
        hops: list[RouteHop],
        hedge: HedgePlan | None,
    ) -> AsyncGenerator[StreamEvent, None]:
        routing = self.router.routing(target, budget, fail_fast=fail_fast, priority=priority)
        obs = None
        if self._otel is not None:
            model = target.group.name if target.group is not None else req.model
            obs = self._otel.begin("chat", _asked_model(model, target), rid, req)
        try:
            events = routed_stream(
                routing, hedge, req, info, priority=priority, rid=rid, resume=resume, observer=obs, failover=failover
            )
            async with aclosing(events):
                async for ev in events:
                    if obs is not None:
                        obs.stream_event(ev)
                    yield ev
            if obs is not None:
                obs.finish(endpoint=info.endpoint, route=routing.route())
        except BaseException as e:
            if obs is not None:
                obs.finish(error=e, route=routing.route())
            raise
        finally:
            hops[:] = routing.route()

    async def embed(
        self,
        inputs: str | Sequence[str] | EmbedRequest,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        dimensions: int | None = None,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        fail_fast: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        max_retries: int | None = None,
        endpoints: Sequence[str] | None = None,
        strategy: str | None = None,
        batch: bool = True,
        hedge: bool | float | None = None,
    ) -> EmbedResponse:
        """Embed one text or several: ``.vectors`` holds one vector per input, in order. ``model`` may name a
        group (``endpoints``, ``strategy`` as in :meth:`chat`); the response's ``route`` lists the endpoints
        tried. With ``batching``, concurrent calls of the same endpoints, model and parameters share upstream
        requests, tried over the candidates in order (``batch=False`` or ``fail_fast=True`` sends this one on
        its own, with the group's strategy and ``hedge``, as in :meth:`chat`; batched calls are not hedged)."""
        self._bind_loop()
        if isinstance(inputs, EmbedRequest):
            req = inputs
        else:
            seq: Any = inputs
            if not isinstance(inputs, (str, list, tuple)) and isinstance(inputs, Iterable):
                seq = tuple(inputs)  # a generator...; anything else is refused by EmbedRequest, naming the field
            check_call_options(extra_headers or {}, max_retries)
            req = EmbedRequest(
                seq,
                model=model,
                dimensions=dimensions,
                extra={} if extra is None else extra,
                extra_headers=dict(extra_headers or {}),
                max_retries=max_retries,
            )
        rid = request_id or new_request_id()
        target = self.router.target(
            model=req.model,
            endpoint=endpoint,
            endpoints=endpoints,
            strategy=strategy,
            key=functools.partial(prefix_key, req.inputs),
        )
        if target.group is not None and req.model is not None:
            req = replace(req, model=None)
        model = target.group.name if target.group is not None else req.model
        obs = None if self._otel is None else self._otel.begin("embeddings", _asked_model(model, target), rid)
        try:
            if batch and not fail_fast and self._batching is not None and self._batching.config.embeddings:
                resp = await self._batching.embed(req, target.endpoints, priority, timeout, rid)
            else:
                resp = await self.router.run(
                    target,
                    lambda ep, st: ep.embed(
                        req,
                        priority=priority,
                        timeout=st.timeout,
                        request_id=rid,
                        wait=st.wait,
                        share=st.share,
                        observer=obs,
                    ),
                    Budget(self._clock, timeout),
                    fail_fast=fail_fast,
                    priority=priority,
                    hedge=self.router.hedging(target, hedge),
                )
        except BaseException as e:
            if obs is not None:
                obs.finish(error=e)
            raise
        if obs is not None:
            obs.finish(resp)
        return resp

    async def infer(
        self,
        model: str,
        inputs: Sequence[Tensor],
        *,
        outputs: Sequence[str] = (),
        version: str | None = None,
        endpoint: str | None = None,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> InferResult:
        """A KServe v2 ``infer`` call (OVMS, Triton...; the endpoint's ``base_url`` is the server root). With
        ``batching``, concurrent calls of the same model and tensor signature share one request along the
        first (batch) dimension."""
        from ._hooks import direct_infer
        from .batching import InferCall

        self._bind_loop()
        call = InferCall(model, tuple(inputs), tuple(outputs), version)
        rid = request_id or new_request_id()
        cands = self.router.candidates(endpoint=endpoint)
        if self._batching is not None and self._batching.config.infer:
            return await self._batching.infer(call, cands, priority, timeout, rid)
        budget = Budget(self._clock, timeout)
        return await self.router.run(
            cands, lambda ep, st: direct_infer(ep, call, priority, st.timeout, rid), budget, priority=priority
        )

    async def models(self, *, endpoint: str | None = None, timeout: float | None = None) -> ModelListing:
        """Model IDs each endpoint lists (its native model list, or ``GET .../models``), by endpoint name.

        Every endpoint is asked, concurrently, each with its own error: an endpoint that fails is absent from
        the mapping and its error is in ``listing.errors``. Raises when ``endpoint`` names one that failed, or
        when every endpoint failed (:class:`AllEndpointsFailedError` when there were several). ``timeout``
        bounds the whole listing."""
        self._bind_loop()
        eps = [self.router.get(endpoint)] if endpoint else self._endpoints
        budget = Budget(self._clock, timeout)
        results = await asyncio.gather(*(self._list_models(ep, budget) for ep in eps), return_exceptions=True)
        ids: dict[str, list[str]] = {}
        errors: dict[str, InfermuxError] = {}
        for ep, res in zip(eps, results, strict=True):
            if isinstance(res, InfermuxError):
                errors[ep.name] = res
            elif isinstance(res, BaseException):
                raise res  # a bug or a cancellation, not an endpoint's answer
            else:
                ids[ep.name] = res
        if not ids:
            raise self.router.all_failed(list(errors.values()))
        return ModelListing(ids, errors)

    async def _list_models(self, ep: Endpoint, budget: Budget) -> list[str]:
        prov = ep.provider
        timeout = budget.share(ep, 1)[0]  # endpoints are asked concurrently: each may use all that is left
        if prov.build_models is not None and prov.parse_models is not None:
            return await ep.call(prov.build_models(), prov.parse_models, timeout=timeout)
        parse = functools.partial(parse_model_ids, prov.name)
        return await ep.call(ProviderRequest("GET", prov.models_path), parse, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        """A plain-data snapshot of every endpoint's counters, queue, breaker and keys (by endpoint name), plus
        ``"cache"`` (hits, misses, false-hit guards... per namespace), ``"batching"`` when enabled, and
        ``"hedging"`` (per group: hedges fired, won, skipped for budget or unavailable endpoints, the delay)."""
        out: dict[str, Any] = {ep.name: ep.stats() for ep in self._endpoints}
        if self._cache is not None:
            out["cache"] = self._cache.cache.stats()
        if self._batching is not None:
            out["batching"] = self._batching.stats()
        if self.router.hedgers:
            out["hedging"] = self.router.hedge_stats()
        return out

    def health(self) -> dict[str, dict[str, Any]]:
        """Every endpoint's health as plain data: ``state`` (``up``/``down``), ``reason``, how long in it,
        whether routing is gated on it, breaker, forward progress (attempts running, stalled for, last
        progress) and the last active probe. Without a ``health`` configuration it reports passive health
        only (and routing does not use it)."""
        return self.monitor.report()

    async def check_health(self) -> dict[str, bool]:
        """Probe every endpoint once now (its health route, else its model list); ``{name: answered 2xx}``."""
        self._bind_loop()
        return await self.monitor.probe_all()

    async def aclose(self) -> None:
        """Close every endpoint's connections and stop health probes; the client may then be used again,
        from any loop."""
        await self.monitor.aclose()
        if isinstance(self.state, RedisStateStore):
            await self.state.aclose()
        if self._batching is not None:
            await self._batching.aclose()
        if self._cache is not None:
            await self._cache.cache.aclose()
        for ep in self._endpoints:
            await ep.aclose()
        self._loop = None

    async def __aenter__(self) -> AsyncClient:
        if isinstance(self.state, RedisStateStore):  # load the shared view first (bounded; Redis down: local)
            self._bind_loop()
            await self.state.wait_synced()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _asked_model(model: str | None, target: Target) -> str | None:
    """The model a call asked for (``gen_ai.request.model``): its ``model`` (or group), else the default model of
    its only endpoint."""
    if model is None and len(target.endpoints) == 1:
        return target.endpoints[0].config.model
    return model


def _refused(resp: ChatResponse) -> bool:
    return resp.finish_reason == "content_filter"


def _chat_prefix(req: ChatRequest, chars: int) -> str:
    """The start of the prompt (roles and texts), the affinity key of ``prefix_affinity``."""
    return prefix_key((f"{m.role}:{m.text}" for m in req.messages), chars)


def __getattr__(name: str) -> Any:
    if name == "Client":
        from ._sync import Client

        return Client
    raise AttributeError(name)
