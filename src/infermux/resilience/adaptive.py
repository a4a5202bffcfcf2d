"""Adaptive concurrency (AIMD) for an endpoint's priority gate.

When the server says it is over capacity (429/529), the limit is cut multiplicatively, once per signal
"generation": answers to attempts that started before the last cut say nothing new and are ignored. Each
``limit`` successes in a row raise it by one, up to the configured maximum. This is what keeps a client
with more callers than the server's capacity from turning 429s into a retry storm.
"""

from __future__ import annotations

from typing import Any, Protocol

from .clock import SYSTEM_CLOCK, Clock

__all__ = ["AdaptiveLimit"]


class _Limited(Protocol):
    def set_limit(self, max_concurrency: int) -> None: ...


class AdaptiveLimit:
    def __init__(
        self,
        gate: _Limited,
        max_limit: int,
        *,
        min_limit: int = 1,
        decrease_factor: float = 0.5,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._gate = gate
        self.max_limit = max_limit
        self.min_limit = max(1, min(min_limit, max_limit))
        self.decrease_factor = decrease_factor
        self._clock = clock
        self.limit = max_limit
        self._last_cut = float("-inf")
        self._streak = 0
        self.cuts = 0

    def on_overload(self, attempt_started_at: float, in_flight: int) -> None:
        """The server refused an attempt for capacity. Cut the limit unless the attempt predates the last cut."""
        if attempt_started_at < self._last_cut:
            return
        base = min(self.limit, max(in_flight, 1))
        new = max(self.min_limit, int(base * self.decrease_factor))
        self._last_cut = self._clock.now()
        self._streak = 0
        self.cuts += 1
        if new != self.limit:
            self.limit = new
            self._gate.set_limit(new)

    def on_success(self) -> None:
        if self.limit >= self.max_limit:
            return
        self._streak += 1
        if self._streak >= self.limit:
            self._streak = 0
            self.limit += 1
            self._gate.set_limit(self.limit)

    def snapshot(self) -> dict[str, Any]:
        return {"limit": self.limit, "max_limit": self.max_limit, "cuts": self.cuts}
