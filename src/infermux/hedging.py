"""Hedged requests: after a delay, send the same call to a second endpoint of the group; the first good answer
(the first content chunk for streams) wins and the other is cancelled, its connection closed.

This module is the pure part (no I/O): the configuration (:class:`HedgeConfig`), the budget that bounds the
extra requests (:class:`HedgeBudget`), the delay taken from the group's observed time to first byte
(:class:`DelayTracker`) and the per-group state with its counters (:class:`Hedger`). The race itself is in
:mod:`infermux._hedge`.

- **Delay.** A fixed ``delay`` (seconds), or (``delay=None``, the default) the group's observed
  ``percentile`` (95) of the time to first byte of its answered calls (time to the answer for chat and
  embeddings, to the first content chunk for streams), never below ``min_delay``; until ``min_samples``
  answers were seen (within the last ``window`` answers and ``window_s`` seconds) it is ``initial_delay``.
- **Budget.** A token bucket in requests, not in time: each call that may hedge earns ``budget`` tokens
  (0.05: one hedge per 20 calls), up to ``burst`` tokens kept (it starts full); a hedge spends one. So hedges
  are at most ``budget`` * calls + ``burst``, whatever the load: an overloaded group (slow answers: every
  call reaches its delay) cannot be sent more than 5 % extra requests.
- **Only where another endpoint can take it now.** No hedge is sent when no other endpoint of the call's
  candidates is usable with a free slot (breaker open, keys blocked, found down, saturated): such a hedge
  would only queue, or add load where there is none to spare (counted as ``skipped_unavailable``; no budget
  is spent).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError
from .resilience.clock import Clock

__all__ = ["DelayTracker", "HedgeBudget", "HedgeConfig", "HedgeCounters", "Hedger", "hedge_from_dict"]


def _number(where: str, value: Any, *, low: float, inclusive: bool = True, high: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value >= low if inclusive else value > low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>=' if inclusive else '>'} {low:g}" + (f" and <= {high:g}" if high is not None else "")
        raise ConfigurationError(f"hedge: {where} must be a finite number {bound}, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class HedgeConfig:
    """How a group hedges (see the module docstring). ``delay``: fixed seconds, or ``None`` for the observed
    ``percentile`` of the group's time to first byte (``min_delay`` floor, ``initial_delay`` until
    ``min_samples`` answers, over the last ``window`` answers of at most ``window_s`` seconds); ``budget``:
    extra requests per call (0.05 = 5 %); ``burst``: hedges that may be sent ahead of the budget."""

    delay: float | None = None
    percentile: float = 95.0
    min_delay: float = 0.01
    initial_delay: float = 0.5
    min_samples: int = 20
    window: int = 500
    window_s: float = 300.0
    budget: float = 0.05
    burst: float = 2.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.delay is not None:
            _number("delay", self.delay, low=0.0)
        _number("percentile", self.percentile, low=0.0, inclusive=False, high=100.0)
        _number("min_delay", self.min_delay, low=0.0)
        _number("initial_delay", self.initial_delay, low=0.0)
        _number("window_s", self.window_s, low=0.0, inclusive=False)
        _number("budget", self.budget, low=0.0, high=1.0)
        _number("burst", self.burst, low=1.0)
        for name in ("min_samples", "window"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigurationError(f"hedge: {name} must be an int >= 1, got {v!r}")
        if self.min_samples > self.window:
            raise ConfigurationError(f"hedge: min_samples ({self.min_samples}) exceeds window ({self.window})")
        if not isinstance(self.enabled, bool):
            raise ConfigurationError(f"hedge: enabled must be true or false, got {self.enabled!r}")


def hedge_from_dict(d: Mapping[str, Any] | HedgeConfig | bool) -> HedgeConfig:
    """A :class:`HedgeConfig` from plain data (a group's ``hedge`` table), ``True`` (the defaults) or ``False``."""
    if isinstance(d, HedgeConfig):
        return d
    if isinstance(d, bool):
        return HedgeConfig(enabled=d)
    if not isinstance(d, Mapping):
        raise ConfigurationError(f"hedge must be a table of settings, true or false, got {d!r}")
    known = set(HedgeConfig.__dataclass_fields__)
    unknown = [k for k in d if k not in known]
    if unknown:
        raise ConfigurationError(f"hedge: unknown setting {unknown[0]!r}; known: {sorted(known)}")
    return HedgeConfig(**d)


class HedgeBudget:
    """A token bucket counted in requests: :meth:`earn` adds ``ratio`` per call (up to ``burst``), :meth:`spend`
    takes one token for a hedge if there is one. Over any run, hedges <= ``ratio`` * calls + ``burst``."""

    __slots__ = ("burst", "ratio", "tokens")

    def __init__(self, ratio: float, burst: float) -> None:
        self.ratio = ratio
        self.burst = burst
        self.tokens = burst

    def earn(self) -> None:
        self.tokens = min(self.burst, self.tokens + self.ratio)

    def spend(self) -> bool:
        if self.tokens >= 1.0 - 1e-9:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False


class DelayTracker:
    """The observed times to first byte of a group (the last ``window`` of at most ``window_s`` seconds, on
    ``clock``) and the hedge delay they give."""

    __slots__ = ("_cached", "_samples", "clock", "config")

    def __init__(self, config: HedgeConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._samples: deque[tuple[float, float]] = deque(maxlen=config.window)  # (when, seconds)
        self._cached: float | None = None

    def observe(self, seconds: float) -> None:
        if seconds >= 0 and math.isfinite(seconds):
            self._samples.append((self.clock.now(), seconds))
            self._cached = None

    def _expire(self) -> None:
        horizon = self.clock.now() - self.config.window_s
        s = self._samples
        while s and s[0][0] < horizon:
            s.popleft()
            self._cached = None

    @property
    def count(self) -> int:
        self._expire()
        return len(self._samples)

    def quantile(self) -> float | None:
        """The configured percentile of the samples kept (nearest rank), ``None`` below ``min_samples``."""
        self._expire()
        n = len(self._samples)
        if n < self.config.min_samples:
            return None
        if self._cached is None:
            ordered = sorted(v for _, v in self._samples)
            rank = max(1, math.ceil(self.config.percentile / 100.0 * n))
            self._cached = ordered[rank - 1]
        return self._cached

    def delay(self) -> float:
        cfg = self.config
        if cfg.delay is not None:
            return cfg.delay
        q = self.quantile()
        return cfg.initial_delay if q is None else max(cfg.min_delay, q)


@dataclass(slots=True)
class HedgeCounters:
    calls: int = 0  # calls that could hedge (each earned budget)
    fired: int = 0  # hedges sent
    won: int = 0  # hedges whose answer was the one returned
    skipped_budget: int = 0  # a hedge was due but the budget was spent
    skipped_unavailable: int = 0  # a hedge was due but no other endpoint could take it now

    def snapshot(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "fired": self.fired,
            "won": self.won,
            "skipped_budget": self.skipped_budget,
            "skipped_unavailable": self.skipped_unavailable,
        }


@dataclass(slots=True)
class Hedger:
    """One group's hedging state: its configuration, budget, observed delays and counters."""

    name: str
    config: HedgeConfig
    clock: Clock
    budget: HedgeBudget = field(init=False)
    tracker: DelayTracker = field(init=False)
    counters: HedgeCounters = field(default_factory=HedgeCounters)

    def __post_init__(self) -> None:
        self.budget = HedgeBudget(self.config.budget, self.config.burst)
        self.tracker = DelayTracker(self.config, self.clock)

    def begin(self) -> float:
        """A call that may hedge starts: it earns budget; returns the delay after which to hedge."""
        self.counters.calls += 1
        self.budget.earn()
        return self.tracker.delay()

    def may_fire(self, available: bool) -> bool:
        """The delay passed without an answer: whether to send the hedge now (counts why not)."""
        if not available:
            self.counters.skipped_unavailable += 1
            return False
        if not self.budget.spend():
            self.counters.skipped_budget += 1
            return False
        self.counters.fired += 1
        return True

    def stats(self) -> dict[str, Any]:
        q = self.tracker.quantile()
        return {
            **self.counters.snapshot(),
            "delay_s": self.tracker.delay(),
            "observed_quantile_s": q,
            "samples": self.tracker.count,
            "budget_tokens": round(self.budget.tokens, 6),
        }
