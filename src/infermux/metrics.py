"""Prometheus metrics of a client's endpoints (extra ``[metrics]``: ``prometheus_client``, imported lazily).

A custom collector reads the engine's own counters when scraped (nothing is counted twice, nothing costs on
the hot path beyond the counters the engine keeps anyway)::

    from prometheus_client import REGISTRY, start_http_server
    from infermux.metrics import PrometheusCollector

    REGISTRY.register(PrometheusCollector(client))   # an AsyncClient or a Client
    start_http_server(9464, addr="127.0.0.1")

or ``infermux.metrics.exposition(client)`` for the text format. Every endpoint series has the labels ``endpoint``
and ``model`` (the endpoint's configured model, ``""`` when none); per-key series add ``key`` (the key's label,
``key#1:3f2a9c``, never the key). A client with a response cache adds the ``infermux_cache_*`` counters, labelled
by ``namespace`` (the tenant: its name, or a hash of the endpoints' keys, never a key). See the README's "Fleet"
section for the list of names.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._stats import Histogram
from .errors import ConfigurationError
from .resilience.breaker import BreakerState

if TYPE_CHECKING:  # pragma: no cover
    from prometheus_client.metrics_core import Metric

    from .endpoint import Endpoint
    from .health import HealthMonitor
    from .router import Router

__all__ = ["PrometheusCollector", "exposition"]

#: per-key outcome label -> the key pool snapshot's counter
_KEY_OUTCOMES = {
    "success": "successes",
    "failure": "failures",
    "rate_limited": "rate_limited",
    "auth_failed": "auth_failed",
}


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ModuleNotFoundError as e:
        raise ConfigurationError("Prometheus metrics need prometheus_client: pip install 'infermux[metrics]'") from e
    return prometheus_client


def _source(client: Any) -> tuple[list[Endpoint], HealthMonitor | None, Any]:
    """The endpoints, the health monitor and the response cache (``None`` when absent) of ``client``."""
    from .endpoint import Endpoint

    inner = getattr(client, "aio", client)  # the sync Client wraps an AsyncClient
    endpoints = getattr(inner, "endpoints", None)
    if isinstance(client, Sequence) and all(isinstance(e, Endpoint) for e in client):
        return list(client), None, None
    if endpoints is None:
        raise ConfigurationError(f"PrometheusCollector needs a Client, an AsyncClient or endpoints, got {client!r}")
    return list(endpoints), getattr(inner, "monitor", None), getattr(inner, "cache", None)


#: cache counter -> (metric name without ``_total``, help); per-reason counters are listed apart
_CACHE_COUNTERS = {
    "lookups": ("infermux_cache_lookups", "Response cache lookups"),
    "misses": ("infermux_cache_misses", "Lookups that found no usable answer"),
    "false_hit_guards": (
        "infermux_cache_false_hit_guards",
        "Semantic lookups whose near-matches the verifier all refused (false hits avoided)",
    ),
    "stores": ("infermux_cache_stores", "Answers stored"),
    "evictions": ("infermux_cache_evictions", "Entries evicted"),
    "bypassed": ("infermux_cache_bypassed", "Calls that skipped the cache (cache=False)"),
    "refreshes": ("infermux_cache_refreshes", "Calls that asked the provider and replaced the stored answer"),
    "embed_errors": ("infermux_cache_embed_errors", "Semantic lookups whose embedding call failed"),
    "store_errors": ("infermux_cache_store_errors", "Cache store operations that failed"),
}


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class PrometheusCollector:
    """A ``prometheus_client`` collector over a client's endpoints (register it on a registry)."""

    def __init__(self, client: Any) -> None:
        _prometheus()
        self._endpoints, self._health, self._cache = _source(client)
        inner = getattr(client, "aio", client)
        self._router: Router | None = getattr(inner, "router", None)

    def describe(self) -> list[Metric]:
        return []  # the series depend on the endpoints' state: no fixed description (unchecked collector)

    def collect(self) -> Iterator[Metric]:
        core = _prometheus().metrics_core
        counter, gauge, hist = core.CounterMetricFamily, core.GaugeMetricFamily, core.HistogramMetricFamily
        base = ["endpoint", "model"]
        m = {
            "requests": counter(
                "infermux_requests", "Calls by outcome (success, error, cancelled)", labels=[*base, "outcome"]
            ),
            "errors": counter("infermux_request_errors", "Failed calls by error class", labels=[*base, "error"]),
            "attempts": counter("infermux_attempts", "Attempts sent to the server", labels=base),
            "attempt_failures": counter(
                "infermux_attempt_failures", "Failed attempts by error class", labels=[*base, "error"]
            ),
            "retries": counter("infermux_retries", "Retries after a failed attempt", labels=base),
            "waits": counter(
                "infermux_waits", "Local waits on a protective state (breaker open, keys blocked)", labels=base
            ),
            "resumes": counter(
                "infermux_stream_resumes", "Streams resumed after content reached the caller", labels=base
            ),
            "fallbacks": counter(
                "infermux_fallbacks", "Calls the router moved from this endpoint to another", labels=base
            ),
            "shed": counter("infermux_shed", "Queued calls shed for higher-priority ones", labels=base),
            "rejected": counter("infermux_queue_rejected", "Calls refused by a full queue", labels=base),
            "circuit": counter("infermux_circuit_rejections", "Calls refused by an open breaker", labels=base),
            "tokens": counter("infermux_tokens", "Tokens by type (input, output, cached)", labels=[*base, "type"]),
            "latency": hist(
                "infermux_request_duration_seconds",
                "Duration of successful calls (queue, retries and the whole stream included)",
                labels=base,
            ),
            "ttft": hist(
                "infermux_time_to_first_token_seconds",
                "Streams: time from the call's start to the first content",
                labels=base,
            ),
            "in_flight": gauge("infermux_in_flight", "Calls holding a slot now", labels=base),
            "queue": gauge("infermux_queue_depth", "Calls waiting for a slot, by priority", labels=[*base, "priority"]),
            "limit": gauge("infermux_concurrency_limit", "Current (adaptive) concurrency limit", labels=base),
            "breaker": gauge(
                "infermux_breaker_state", "Circuit breaker state (1 for the current one)", labels=[*base, "state"]
            ),
            "health": gauge(
                "infermux_health_up", "1 when health monitoring finds the endpoint up, else 0", labels=base
            ),
            "key_requests": counter(
                "infermux_key_requests", "Calls per API key label by outcome", labels=[*base, "key", "outcome"]
            ),
            "key_in_flight": gauge(
                "infermux_key_in_flight", "Calls in flight per API key label", labels=[*base, "key"]
            ),
            "key_disabled": gauge(
                "infermux_key_disabled", "1 when the key was rejected (401/403)", labels=[*base, "key"]
            ),
        }
        for ep in self._endpoints:
            self._endpoint(ep, m)
        yield from m.values()
        if self._router is not None:
            yield from _hedging(counter, gauge, self._router)
        if self._cache is not None:
            yield from _cache_families(core, self._cache.stats())

    def _endpoint(self, ep: Endpoint, m: dict[str, Any]) -> None:
        c = ep.counters
        lab = [ep.name, ep.config.model or ""]
        failed = sum(c.failures.values())
        m["requests"].add_metric([*lab, "success"], c.successes)
        m["requests"].add_metric([*lab, "error"], failed)
        m["requests"].add_metric([*lab, "cancelled"], c.cancelled)
        for name, n in sorted(c.failures.items()):
            m["errors"].add_metric([*lab, name], n)
        for name, n in sorted(c.attempt_failures.items()):
            m["attempt_failures"].add_metric([*lab, name], n)
        for key, value in (
            ("attempts", c.attempts),
            ("retries", c.retries),
            ("waits", c.waits),
            ("resumes", c.resumes),
            ("fallbacks", c.fallbacks),
            ("shed", c.shed),
            ("rejected", c.queue_rejected),
            ("circuit", c.circuit_rejections),
        ):
            m[key].add_metric(lab, value)
        for kind, n in (("input", c.tokens_in), ("output", c.tokens_out), ("cached", c.cached_tokens)):
            m["tokens"].add_metric([*lab, kind], n)
        _histogram(m["latency"], lab, c.latency_hist)
        _histogram(m["ttft"], lab, c.ttft_hist)
        gate = ep.gate
        m["in_flight"].add_metric(lab, gate.in_flight)
        for prio, n in gate.depth_by_priority().items():
            m["queue"].add_metric([*lab, prio], n)
        m["limit"].add_metric(lab, gate.max_concurrency)
        state = ep.breaker.state
        for s in BreakerState:
            m["breaker"].add_metric([*lab, s.value], 1.0 if s is state else 0.0)
        if self._health is not None:
            up = self._health.state(ep).value == "up"
            m["health"].add_metric(lab, 1.0 if up else 0.0)
        for k in ep.keys.snapshot():
            kl = [*lab, k["label"]]
            for outcome, field in _KEY_OUTCOMES.items():
                m["key_requests"].add_metric([*kl, outcome], k[field])
            m["key_in_flight"].add_metric(kl, k["in_flight"])
            m["key_disabled"].add_metric(kl, 1.0 if k["disabled"] else 0.0)


#: hedging outcome label -> the group's hedge counter
_HEDGE_OUTCOMES = {
    "fired": "fired",
    "won": "won",
    "skipped_budget": "skipped_budget",
    "skipped_unavailable": "skipped_unavailable",
}


def _hedging(counter: Any, gauge: Any, router: Router) -> Iterator[Metric]:
    """Hedged requests per group (``group`` label: the group, or ``endpoints:a,b`` for calls outside one)."""
    hedges = counter(
        "infermux_hedges",
        "Hedged requests by outcome (fired, won, skipped_budget, skipped_unavailable)",
        labels=["group", "outcome"],
    )
    calls = counter("infermux_hedge_calls", "Calls that could hedge (each earns hedge budget)", labels=["group"])
    delay = gauge("infermux_hedge_delay_seconds", "Current hedge delay", labels=["group"])
    for name, h in sorted(router.hedgers.items()):
        c = h.counters
        for outcome, field in _HEDGE_OUTCOMES.items():
            hedges.add_metric([name, outcome], getattr(c, field))
        calls.add_metric([name], c.calls)
        delay.add_metric([name], h.tracker.delay())
    yield from (hedges, calls, delay)


def _cache_families(core: Any, stats: dict[str, Any]) -> list[Metric]:
    """The response cache's counters per namespace (``ResponseCache.stats()``)."""
    counter = core.CounterMetricFamily
    ns = ["namespace"]
    plain = {key: counter(name, doc, labels=ns) for key, (name, doc) in _CACHE_COUNTERS.items()}
    hits = counter(
        "infermux_cache_hits", "Lookups answered from the cache, by kind (exact, semantic)", labels=[*ns, "kind"]
    )
    refusals = counter(
        "infermux_cache_guard_refusals",
        "Semantic near-matches the verifier refused, by reason (negation, number, direction...)",
        labels=[*ns, "reason"],
    )
    uncacheable = counter(
        "infermux_cache_uncacheable", "Calls or answers the cache may not keep, by reason", labels=[*ns, "reason"]
    )
    for name, c in sorted(stats.get("namespaces", {}).items()):
        for key, family in plain.items():
            family.add_metric([name], c.get(key, 0))
        hits.add_metric([name, "exact"], c.get("hits_exact", 0))
        hits.add_metric([name, "semantic"], c.get("hits_semantic", 0))
        for reason, n in sorted(c.get("guard_reasons", {}).items()):
            refusals.add_metric([name, reason], n)
        for reason, n in sorted(c.get("uncacheable", {}).items()):
            uncacheable.add_metric([name, reason], n)
    return [*plain.values(), hits, refusals, uncacheable]


def _histogram(family: Any, labels: list[str], h: Histogram) -> None:
    family.add_metric(labels, [(_le(b), n) for b, n in h.buckets()], sum_value=h.sum)


def exposition(client: Any) -> bytes:
    """The Prometheus text exposition of ``client``'s metrics (a private registry; for a scrape handler)."""
    prom = _prometheus()
    registry = prom.CollectorRegistry(auto_describe=False)
    registry.register(PrometheusCollector(client))
    out: bytes = prom.generate_latest(registry)
    return out
