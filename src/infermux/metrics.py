"""Prometheus metrics of a client's endpoints (extra ``[metrics]``: ``prometheus_client``, imported lazily).

A custom collector reads the engine's own counters when scraped (nothing is counted twice, nothing costs on
the hot path beyond the counters the engine keeps anyway)::

    from prometheus_client import REGISTRY, start_http_server
    from infermux.metrics import PrometheusCollector

    REGISTRY.register(PrometheusCollector(client))   # an AsyncClient or a Client
    start_http_server(9464, addr="127.0.0.1")

or ``infermux.metrics.exposition(client)`` for the text format. Every series has the labels ``endpoint`` and
``model`` (the endpoint's configured model, ``""`` when none); per-key series add ``key`` (the key's label,
``key#1:3f2a9c``, never the key). See the README's "Fleet" section for the list of names.
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


def _source(client: Any) -> tuple[list[Endpoint], HealthMonitor | None]:
    from .endpoint import Endpoint

    inner = getattr(client, "aio", client)  # the sync Client wraps an AsyncClient
    endpoints = getattr(inner, "endpoints", None)
    if isinstance(client, Sequence) and all(isinstance(e, Endpoint) for e in client):
        return list(client), None
    if endpoints is None:
        raise ConfigurationError(f"PrometheusCollector needs a Client, an AsyncClient or endpoints, got {client!r}")
    return list(endpoints), getattr(inner, "monitor", None)


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class PrometheusCollector:
    """A ``prometheus_client`` collector over a client's endpoints (register it on a registry)."""

    def __init__(self, client: Any) -> None:
        _prometheus()
        self._endpoints, self._health = _source(client)
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


def _histogram(family: Any, labels: list[str], h: Histogram) -> None:
    family.add_metric(labels, [(_le(b), n) for b, n in h.buckets()], sum_value=h.sum)


def exposition(client: Any) -> bytes:
    """The Prometheus text exposition of ``client``'s metrics (a private registry; for a scrape handler)."""
    prom = _prometheus()
    registry = prom.CollectorRegistry(auto_describe=False)
    registry.register(PrometheusCollector(client))
    out: bytes = prom.generate_latest(registry)
    return out
