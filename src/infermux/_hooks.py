"""The glue between :class:`~infermux.client.AsyncClient` and its optional features: the response cache
(:mod:`infermux.cache`) and micro-batching (:mod:`infermux.batching`). Kept apart so that the client only
holds small hooks, and these features only use the router's and endpoints' public calls."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Sequence
from contextlib import aclosing
from typing import Any, TypeVar

from .batching import (
    BatchConfig,
    InferCall,
    MicroBatcher,
    embed_key,
    measure_embed,
    measure_infer,
    merge_embeddings,
    merge_infer,
)
from .cache.core import CacheConfig, CachePlan, ResponseCache, replay
from .endpoint import Endpoint
from .errors import ConfigurationError, DeadlineExceededError
from .providers.kserve import InferResult, build_infer, parse_infer
from .resilience.clock import Clock
from .router import Router
from .types import ChatRequest, EmbedRequest, EmbedResponse, Priority, StreamEvent

__all__ = ["BatchHook", "CacheHook", "direct_infer", "route_key"]

T = TypeVar("T")

_RESERVED = ("cache", "batching")


def check_stats_names(endpoints: Sequence[Endpoint], cache: object, batching: object) -> None:
    """``stats()`` reports the features under ``"cache"`` / ``"batching"``: no endpoint may take those names."""
    used = [n for n, on in zip(_RESERVED, (cache, batching), strict=True) if on is not None]
    for ep in endpoints:
        if ep.name in used:
            raise ConfigurationError(f"endpoint name {ep.name!r} is reserved in stats() while {ep.name} is enabled")


def route_key(endpoint: str | None, endpoints: Sequence[str] | None, strategy: str | None) -> str | None:
    """What of a call's routing arguments a cache key names (other endpoints may answer otherwise)."""
    if endpoints is None and strategy is None:
        return endpoint
    return f"{endpoint or ''}|{','.join(endpoints or ())}|{strategy or ''}"


def _tenant(ep: Endpoint) -> str:
    keys = ep.config.resolved_keys()
    if not keys:
        return "anonymous"
    return "keys:" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


class CacheHook:
    """Per-client cache wiring: the tenant namespace, the model a key names, the embedder."""

    def __init__(
        self,
        cache: CacheConfig | ResponseCache,
        endpoints: Sequence[Endpoint],
        clock: Clock,
        embed: Callable[..., Awaitable[EmbedResponse]],
    ) -> None:
        if isinstance(cache, ResponseCache):
            self.cache = cache
        elif isinstance(cache, CacheConfig):
            sem = cache.semantic

            async def embedder(texts: Sequence[str]) -> Sequence[Sequence[float]]:
                assert sem is not None
                r = await embed(
                    list(texts),
                    endpoint=sem.endpoint,
                    model=sem.model,
                    timeout=sem.embed_timeout,
                    priority=Priority.HIGH,
                )
                return r.vectors

            self.cache = ResponseCache(cache, clock=clock, embedder=embedder if sem is not None else None)
        else:
            raise ConfigurationError(f"cache must be a CacheConfig or a ResponseCache, got {type(cache).__name__}")
        self._tenants = {ep.name: _tenant(ep) for ep in endpoints}

    def namespace(self, cands: Sequence[Endpoint], explicit: str | None) -> str:
        if explicit is not None:
            if not isinstance(explicit, str) or not explicit:
                raise ConfigurationError(f"cache_namespace must be a non-empty string, got {explicit!r}")
            return explicit
        if self.cache.config.namespace is not None:
            return self.cache.config.namespace
        return "+".join(sorted({self._tenants[ep.name] for ep in cands}))

    async def begin(
        self,
        req: ChatRequest,
        cands: Sequence[Endpoint],
        endpoint: str | None,
        rid: str,
        *,
        use: bool,
        refresh: bool,
        namespace: str | None,
        allow_sampled: bool | None,
    ) -> CachePlan | None:
        ns = self.namespace(cands, namespace)
        if not use:
            self.cache.count_bypass(ns)
            return None
        model = f"{endpoint or '*'}|{req.model or cands[0].config.model or ''}"
        return await self.cache.begin(
            req, model=model, namespace=ns, request_id=rid, refresh=refresh, allow_sampled=allow_sampled
        )

    async def open_stream(
        self,
        owner: Any,
        req: ChatRequest,
        route: tuple[Sequence[Endpoint], str | None, str],
        opts: dict[str, Any],
        live: Callable[[], AsyncGenerator[StreamEvent, None]],
    ) -> AsyncGenerator[StreamEvent, None]:
        """A :class:`~infermux.client.ChatStream`'s events through the cache: ``route`` is (candidates, route
        key, request ID); on a hit ``owner`` (the stream) learns it was replayed and from which endpoint."""
        cands, key, rid = route
        plan = await self.begin(req, cands, key, rid, **opts)
        if plan is not None and plan.hit is not None:
            owner.cached = plan.hit.cached
            owner.info.endpoint, owner.info.provider = plan.hit.endpoint, plan.hit.provider
        async with aclosing(self.stream(plan, live)) as events:
            async for ev in events:
                yield ev

    async def stream(
        self, plan: CachePlan | None, live: Callable[[], AsyncGenerator[StreamEvent, None]]
    ) -> AsyncGenerator[StreamEvent, None]:
        """The replayed answer on a hit; else the live stream, stored once it completes."""
        if plan is not None and plan.hit is not None:
            source = replay(plan.hit, plan.hit_deltas)
        elif plan is not None:
            source = self.cache.record(plan, live())
        else:
            source = live()
        async with aclosing(source) as events:
            async for ev in events:
                yield ev


class BatchHook:
    """Per-client micro-batchers for embeddings and KServe infer (see :mod:`infermux.batching`)."""

    def __init__(self, config: BatchConfig, router: Router, clock: Clock) -> None:
        if not isinstance(config, BatchConfig):
            raise ConfigurationError(f"batching must be a BatchConfig, got {type(config).__name__}")
        self.config = config
        self.router = router
        self.embeddings: MicroBatcher[tuple[EmbedRequest, str], EmbedResponse] = MicroBatcher(
            config, self._send_embeddings, lambda p: measure_embed(p[0]), clock=clock
        )
        self.infers: MicroBatcher[tuple[InferCall, str], InferResult] = MicroBatcher(
            config, self._send_infers, lambda p: measure_infer(p[0]), clock=clock
        )

    def _cands(self, key: Hashable) -> list[Endpoint]:
        assert isinstance(key, tuple)
        return [self.router.get(n) for n in key[1]]

    async def _send_embeddings(
        self, key: Hashable, payloads: list[tuple[EmbedRequest, str]], priority: Priority
    ) -> list[EmbedResponse]:
        cands = self._cands(key)
        rid = payloads[0][1] if len(payloads) == 1 else uuid.uuid4().hex

        def call(req: EmbedRequest) -> Awaitable[EmbedResponse]:
            return self.router.run(
                cands,
                lambda ep, st: ep.embed(
                    req, priority=priority, timeout=st.timeout, request_id=rid, wait=st.wait, share=st.share
                ),
                priority=priority,
            )

        return await merge_embeddings([p[0] for p in payloads], call)

    async def _send_infers(
        self, key: Hashable, payloads: list[tuple[InferCall, str]], priority: Priority
    ) -> list[InferResult]:
        cands = self._cands(key)
        rid = payloads[0][1] if len(payloads) == 1 else uuid.uuid4().hex

        def send(c: InferCall) -> Awaitable[InferResult]:
            return self.router.run(
                cands, lambda ep, st: direct_infer(ep, c, priority, st.timeout, rid), priority=priority
            )

        return await merge_infer([p[0] for p in payloads], send)

    async def embed(
        self, req: EmbedRequest, cands: Sequence[Endpoint], priority: Priority, timeout: float | None, rid: str
    ) -> EmbedResponse:
        key = embed_key(req, [ep.name for ep in cands])
        return await _bounded(self.embeddings.submit(key, (req, rid), priority), timeout)

    async def infer(
        self, call: InferCall, cands: Sequence[Endpoint], priority: Priority, timeout: float | None, rid: str
    ) -> InferResult:
        key = ("infer", tuple(ep.name for ep in cands), call.key())
        return await _bounded(self.infers.submit(key, (call, rid), priority), timeout)

    def stats(self) -> dict[str, Any]:
        return {"embeddings": self.embeddings.stats(), "infer": self.infers.stats()}

    async def aclose(self) -> None:
        await self.embeddings.aclose()
        await self.infers.aclose()


def direct_infer(
    ep: Endpoint, call: InferCall, priority: Priority, timeout: float | None, rid: str
) -> Awaitable[InferResult]:
    """One KServe v2 infer request through ``ep``'s engine."""
    preq = build_infer(call.model, call.inputs, version=call.version, outputs=call.outputs)
    return ep.call(preq, parse_infer, priority=priority, timeout=timeout, request_id=rid, model=call.model)


async def _bounded(aw: Awaitable[T], timeout: float | None) -> T:
    if timeout is None:
        return await aw
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        raise DeadlineExceededError(f"the call's timeout of {timeout:.3g}s ran out waiting for its batch") from None
