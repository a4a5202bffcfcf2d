"""Adaptive concurrency for an endpoint's priority gate: AIMD with a memory of the last good limit.

When the server says it is over capacity (429/529) *repeatedly* (``trigger`` refusals among the last ``window``
outcomes: a lone 429 is a statement about one request, not about capacity), the limit is cut, once per signal
"generation": answers to attempts that started before the last cut say nothing new and are ignored. The cut
goes back to the last limit known to be good (one that served ``limit`` successes in a row without an overload
signal) when there is one, one below it when a few were refused at that level, else (most refused: capacity
dropped) halves the concurrency in flight.
Each ``limit`` successes in a row raise the limit by one, up to the configured maximum; raising it again to a
level that was just refused needs twice as many successes each time it is refused (up to 32x), so a client
settles on the server's capacity and probes above it rarely.

With ``initial_limit`` the limit starts there and doubles after each ``limit`` successes in a row (slow start,
as TCP does) until the first refusal or the maximum: a client does not open with a burst of ``max_limit``
requests against a server that serves far fewer.

With ten times more callers than the server's capacity, the limit converges in a few round trips and the
callers wait in the endpoint's queue instead of turning 429s into a retry storm.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from .clock import SYSTEM_CLOCK, Clock

__all__ = ["AdaptiveLimit"]

_MAX_PATIENCE = 32


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
        window: int = 20,
        trigger: int = 3,
        initial_limit: int | None = None,
    ) -> None:
        self._gate = gate
        self.max_limit = max_limit
        self.min_limit = max(1, min(min_limit, max_limit))
        self.decrease_factor = decrease_factor
        self._clock = clock
        self.limit = max_limit
        self._slow_start = initial_limit is not None and initial_limit < max_limit
        if initial_limit is not None and self._slow_start:
            self.limit = max(self.min_limit, initial_limit)
            gate.set_limit(self.limit)
        self._last_cut = float("-inf")
        self._streak = 0
        self._good: int | None = None  # the highest limit that served `limit` successes with no overload since
        self._refused: dict[int, int] = {}  # limit -> how many times raising to it was refused
        self._recent: deque[bool] = deque(maxlen=window)  # outcomes since the last cut: True = refused
        self._trigger = max(1, trigger)
        self.cuts = 0

    def on_overload(self, attempt_started_at: float, in_flight: int) -> None:
        """The server refused an attempt for capacity. Cut the limit unless the attempt predates the last cut."""
        if attempt_started_at < self._last_cut:
            return
        self._recent.append(True)
        refused = sum(self._recent)
        if refused < self._trigger:
            return
        mostly_refused = refused * 2 >= len(self._recent)
        self._recent.clear()
        self._slow_start = False
        self._refused[self.limit] = min(5, self._refused.get(self.limit, 0) + 1)  # 2**5 == _MAX_PATIENCE
        if self._good is not None and self._good < self.limit:
            new = self._good
        elif self._good is not None and not mostly_refused:  # a few refusals at the level known to be good: the
            new = self._good = self.limit - 1  # server drains the level above, or lost a little: step down by one
        else:
            base = min(self.limit, max(in_flight, 1))
            new = int(base * self.decrease_factor)
            self._good = None
        new = max(self.min_limit, new)
        self._last_cut = self._clock.now()
        self._streak = 0
        self.cuts += 1
        if new != self.limit:
            self.limit = new
            self._gate.set_limit(new)

    def on_success(self) -> None:
        self._recent.append(False)
        self._streak += 1
        if self._streak < self.limit:
            return
        if self._good is None or self._good < self.limit:
            self._good = self.limit
        if self.limit >= self.max_limit:
            self._streak = 0
            return
        if self._slow_start:
            self._streak = 0
            self.limit = min(self.max_limit, self.limit * 2)
            self._gate.set_limit(self.limit)
            return
        patience = min(_MAX_PATIENCE, 2 ** self._refused.get(self.limit + 1, 0))
        if self._streak >= self.limit * patience:
            self._streak = 0
            self.limit += 1
            self._gate.set_limit(self.limit)

    def snapshot(self) -> dict[str, Any]:
        return {"limit": self.limit, "max_limit": self.max_limit, "cuts": self.cuts, "last_good": self._good}
