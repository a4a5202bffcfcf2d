"""Per-endpoint counters: plain integers, a bounded latency reservoir, fixed-bucket histograms (for Prometheus),
the response-time EWMA (for lowest-latency routing) and forward-progress marks (for health), snapshotted as
plain data."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .types import Usage

__all__ = ["EWMA_ALPHA", "LATENCY_BUCKETS", "EndpointCounters", "Histogram", "percentile"]

#: histogram bucket bounds in seconds (request duration and time to first token); +Inf is implicit
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
#: weight of the newest observation in the response-time EWMA
EWMA_ALPHA = 0.3


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already-sorted values (``q`` in 0..100); ``None`` when empty."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


class Histogram:
    """Cumulative-bucket histogram with fixed bounds (Prometheus semantics: ``le`` buckets, sum and count)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def buckets(self) -> list[tuple[float, int]]:
        """``(upper bound, cumulative count)`` pairs, ending with ``(inf, count)``."""
        out: list[tuple[float, int]] = []
        total = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class EndpointCounters:
    """Counters of one endpoint. Everything is O(1) to update on the hot path.

    Once no call is in progress, ``requests == successes + sum(failures) + cancelled``.
    """

    __slots__ = (
        "attempt_failures",
        "attempts",
        "attempts_running",
        "busy_since",
        "cached_tokens",
        "cancelled",
        "circuit_rejections",
        "ewma",
        "ewma_at",
        "failures",
        "fallbacks",
        "last_progress",
        "latencies",
        "latency_hist",
        "provider_metrics",
        "queue_rejected",
        "rate_limit_headers",
        "requests",
        "resumes",
        "retries",
        "shed",
        "streams_running",
        "successes",
        "tokens_in",
        "tokens_out",
        "ttft_hist",
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
        self.latency_hist = Histogram()  # successful calls, whole duration (queue and retries included)
        self.ttft_hist = Histogram()  # streams: from the call's start to the first content reaching the caller
        self.ewma: float | None = None  # response time: time to first token for streams, duration otherwise
        self.ewma_at: float | None = None  # clock time of the last observation
        self.fallbacks = 0  # calls that left this endpoint for another one (the router moved on)
        # forward progress (health): attempts sent and not yet ended (of which streams), since when the endpoint
        # has had a stream running without a break, and when it last produced something (an answer, a chunk)
        self.attempts_running = 0
        self.streams_running = 0
        self.busy_since = 0.0
        self.last_progress: float | None = None

    def observe_latency(self, seconds: float, now: float, *, stream: bool = False) -> None:
        """A successful call's duration; a non-stream call's also feeds the response-time EWMA."""
        self.latencies.append(seconds)
        self.latency_hist.observe(seconds)
        if not stream:
            self._ewma(seconds, now)

    def observe_ttft(self, seconds: float, now: float) -> None:
        """A stream's time to first token (feeds the histogram and the response-time EWMA)."""
        self.ttft_hist.observe(seconds)
        self._ewma(seconds, now)

    def _ewma(self, seconds: float, now: float) -> None:
        self.ewma = seconds if self.ewma is None else EWMA_ALPHA * seconds + (1.0 - EWMA_ALPHA) * self.ewma
        self.ewma_at = now

    def attempt_started(self, now: float, *, stream: bool = False) -> None:
        self.attempts_running += 1
        if stream:
            if self.streams_running == 0:
                self.busy_since = now
            self.streams_running += 1

    def attempt_ended(self, now: float, *, answered: bool, stream: bool = False) -> None:
        """An attempt ended; ``answered``: the server produced an answer (any status), which is progress."""
        self.attempts_running = max(0, self.attempts_running - 1)
        if stream:
            self.streams_running = max(0, self.streams_running - 1)
        if answered:
            self.last_progress = now

    def progressed(self, now: float) -> None:
        """The server produced something (a stream chunk)."""
        self.last_progress = now

    def stalled_for(self, now: float) -> float:
        """Seconds the endpoint has had streams running without producing anything (0 when none runs): judged
        by completions and chunks against the age of the busy period, so a saturated endpoint that keeps
        answering is never stalled, however many calls wait. Only streams count: a non-stream call's forward
        progress is its end (a long generation is not a stall; a hung one is bounded by its read timeout,
        whose failure reaches the breaker)."""
        if self.streams_running == 0:
            return 0.0
        since = self.busy_since if self.last_progress is None else max(self.last_progress, self.busy_since)
        return max(0.0, now - since)

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
            "ttft_s": {"count": self.ttft_hist.count, "sum": self.ttft_hist.sum},
            "response_time_ewma_s": self.ewma,
            "fallbacks": self.fallbacks,
            "rate_limits": dict(self.rate_limit_headers),
            "provider_metrics": dict(self.provider_metrics),
        }
