"""Per-endpoint counters: plain integers and a bounded latency reservoir, snapshotted as plain data."""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .types import Usage

__all__ = ["EndpointCounters", "percentile"]


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already-sorted values (``q`` in 0..100); ``None`` when empty."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


class EndpointCounters:
    """Counters of one endpoint. Everything is O(1) to update on the hot path.

    Once no call is in progress, ``requests == successes + sum(failures) + cancelled``.
    """

    __slots__ = (
        "attempt_failures",
        "attempts",
        "cached_tokens",
        "cancelled",
        "circuit_rejections",
        "failures",
        "latencies",
        "provider_metrics",
        "queue_rejected",
        "rate_limit_headers",
        "requests",
        "resumes",
        "retries",
        "shed",
        "successes",
        "tokens_in",
        "tokens_out",
        "waits",
    )

    def __init__(self, reservoir: int = 2048) -> None:
        self.requests = 0
        self.attempts = 0
        self.successes = 0
        self.cancelled = 0  # the caller cancelled the call or abandoned its stream
        self.failures: dict[str, int] = {}
        self.attempt_failures: dict[str, int] = {}  # every failed attempt that reached the server, by error class
        self.retries = 0
        self.waits = 0  # times a call waited out a protective state (breaker open, keys blocked) locally
        self.resumes = 0  # streams resumed after content reached the caller
        self.shed = 0
        self.queue_rejected = 0
        self.circuit_rejections = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.cached_tokens = 0
        self.latencies: deque[float] = deque(maxlen=reservoir)
        self.rate_limit_headers: dict[str, str] = {}
        self.provider_metrics: dict[str, float] = {}

    def add_usage(self, usage: Usage | None) -> None:
        """Add a response's token usage (chat, stream or embeddings) to the totals."""
        if usage is not None:
            self.tokens_in += usage.input_tokens
            self.tokens_out += usage.output_tokens
            self.cached_tokens += usage.cached_tokens

    def failure(self, error: BaseException) -> None:
        name = type(error).__name__
        self.failures[name] = self.failures.get(name, 0) + 1

    def attempt_failed(self, error: BaseException) -> None:
        name = type(error).__name__
        self.attempt_failures[name] = self.attempt_failures.get(name, 0) + 1

    def ended(self, error: BaseException) -> None:
        """A call ended with ``error`` that the engine did not count: a cancellation or a non-infermux error."""
        if isinstance(error, Exception):
            self.failure(error)
        else:  # CancelledError, GeneratorExit (an abandoned stream), KeyboardInterrupt...
            self.cancelled += 1

    def snapshot(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "requests": self.requests,
            "attempts": self.attempts,
            "successes": self.successes,
            "failures": dict(self.failures),
            "failures_total": sum(self.failures.values()),
            "attempt_failures": dict(self.attempt_failures),
            "cancelled": self.cancelled,
            "retries": self.retries,
            "waits": self.waits,
            "resumes": self.resumes,
            "shed": self.shed,
            "queue_rejected": self.queue_rejected,
            "circuit_rejections": self.circuit_rejections,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cached_tokens": self.cached_tokens,
            "latency_s": {
                "count": len(lat),
                "p50": percentile(lat, 50),
                "p95": percentile(lat, 95),
                "p99": percentile(lat, 99),
                "max": lat[-1] if lat else None,
            },
            "rate_limits": dict(self.rate_limit_headers),
            "provider_metrics": dict(self.provider_metrics),
        }
