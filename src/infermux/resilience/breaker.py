"""Per-endpoint circuit breaker: a pure state machine over an injectable clock.

Protocol: every call that got ``True`` from :meth:`CircuitBreaker.try_acquire` ends with exactly one
of :meth:`~CircuitBreaker.record_success`, :meth:`~CircuitBreaker.record_failure`,
:meth:`~CircuitBreaker.record_neutral` (use :func:`is_breaker_failure` to choose between failure and
neutral) or :meth:`~CircuitBreaker.record_ignored` (cancelled, or never sent: no evidence). A call that
got ``False`` was not sent and records nothing.

States::

    CLOSED --(failure rate >= threshold over the window, or N failures in a row)--> OPEN
    OPEN --(open_seconds passed; evaluated lazily)--> HALF_OPEN
    HALF_OPEN --(half_open_successes probe successes)--> CLOSED
    HALF_OPEN --(a probe fails)--> OPEN (a new open period)

The breaker does not know which call held a probe permit: an outcome recorded in HALF_OPEN is
treated as a probe outcome (it is the freshest evidence about the endpoint), and outcomes recorded
while OPEN (slow calls admitted before it opened) are ignored.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import (
    APIConnectionError,
    ConfigurationError,
    DeadlineExceededError,
    InfermuxError,
    InternalServerError,
    MalformedResponseError,
)
from .clock import SYSTEM_CLOCK, Clock
from .store import StateStore

__all__ = ["BreakerConfig", "BreakerState", "CircuitBreaker", "is_breaker_failure"]

_log = logging.getLogger(__name__)
_MAX_TRANSITIONS_KEPT = 1000


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When the breaker opens, how long it stays open, and how it probes.

    It opens when, within the last ``window_seconds``, at least ``minimum_calls`` outcomes were
    recorded and ``failures / calls >= failure_rate_threshold``; or after ``consecutive_failures``
    failures in a row (0 disables that rule).
    """

    failure_rate_threshold: float = 0.5
    minimum_calls: int = 10
    window_seconds: float = 30.0
    consecutive_failures: int = 5
    open_seconds: float = 30.0
    half_open_max_calls: int = 1
    half_open_successes: int = 1

    def __post_init__(self) -> None:
        t = self.failure_rate_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1:
            raise ConfigurationError(f"BreakerConfig.failure_rate_threshold must be in (0, 1], got {t!r}")
        for name, minimum in (
            ("minimum_calls", 1),
            ("consecutive_failures", 0),
            ("half_open_max_calls", 1),
            ("half_open_successes", 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ConfigurationError(f"BreakerConfig.{name} must be an int >= {minimum}, got {v!r}")
        for name in ("window_seconds", "open_seconds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigurationError(f"BreakerConfig.{name} must be a finite number > 0, got {v!r}")


def is_breaker_failure(error: BaseException) -> bool:
    """Whether ``error`` says the endpoint is unhealthy (5xx/529, connection or timeout, malformed body).

    Caller errors (4xx including 429), the client's own refusals, configuration errors, the overall
    deadline and cancellation are not health signals: record them with ``record_neutral``.
    """
    if not isinstance(error, InfermuxError):
        return False
    if isinstance(error, DeadlineExceededError):
        return False
    return isinstance(error, (InternalServerError, APIConnectionError, MalformedResponseError))


class CircuitBreaker:
    """A circuit breaker for one endpoint (see the module docstring for the call protocol).

    With ``store`` and ``key`` the breaker writes its state record to the store on every transition
    (an OPEN record expires after ``open_seconds``) and starts OPEN if it finds an OPEN record there,
    so a restarted process or a replica sharing the store does not hammer a failing endpoint.
    """

    def __init__(
        self,
        config: BreakerConfig = BreakerConfig(),
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_state_change: Callable[[BreakerState, BreakerState], None] | None = None,
        name: str = "",
        store: StateStore | None = None,
        key: str | None = None,
    ) -> None:
        if not isinstance(config, BreakerConfig):
            raise ConfigurationError(f"config must be a BreakerConfig, got {type(config).__name__}")
        if store is not None and not key:
            raise ConfigurationError("CircuitBreaker: a store needs a key")
        self.config = config
        self.name = name
        self._clock = clock
        self._on_state_change = on_state_change
        self._store = store
        self._key = key
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._window: deque[tuple[float, bool]] = deque()
        self._window_failures = 0
        self._consecutive = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        self.transitions: list[tuple[float, BreakerState, BreakerState]] = []
        self.transitions_total = 0
        if store is not None and key:
            record = store.get(key)
            if isinstance(record, dict) and record.get("state") == BreakerState.OPEN.value:
                # Monotonic times do not travel between processes: start a full open period now.
                self._state = BreakerState.OPEN
                self._opened_at = clock.now()

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value})"

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> BreakerState:
        """The current state; OPEN turns into HALF_OPEN here once ``open_seconds`` have passed."""
        if self._state is BreakerState.OPEN and self._clock.now() >= self._opened_at + self.config.open_seconds:
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    @property
    def retry_at(self) -> float | None:
        """Clock time at which the next probe is allowed; ``None`` unless OPEN."""
        if self.state is BreakerState.OPEN:
            return self._opened_at + self.config.open_seconds
        return None

    def try_acquire(self) -> bool:
        """May a call go now? In HALF_OPEN this takes one of the ``half_open_max_calls`` probe permits."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._probes_in_flight < self.config.half_open_max_calls:
            self._probes_in_flight += 1
            return True
        return False

    # ------------------------------------------------------------------ outcomes

    def record_success(self) -> None:
        """The call succeeded."""
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._probe_succeeded()
        elif state is BreakerState.CLOSED:
            self._consecutive = 0
            self._add(failed=False)

    def record_failure(self) -> None:
        """The call failed in a way that says the endpoint is unhealthy (see :func:`is_breaker_failure`)."""
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._release_probe()
            self._open()
        elif state is BreakerState.CLOSED:
            self._consecutive += 1
            self._add(failed=True)
            cfg = self.config
            calls = len(self._window)
            if (cfg.consecutive_failures and self._consecutive >= cfg.consecutive_failures) or (
                calls >= cfg.minimum_calls and self._window_failures >= cfg.failure_rate_threshold * calls
            ):
                self._open()

    def record_neutral(self) -> None:
        """The call ended with an outcome that says nothing about health (e.g. a 4xx).

        In CLOSED it changes nothing; in HALF_OPEN it counts as a probe success (the server answered).
        """
        if self.state is BreakerState.HALF_OPEN:
            self._probe_succeeded()

    def record_ignored(self) -> None:
        """The call ended without evidence either way (cancelled, the caller's own deadline ran out, nothing was
        sent): a HALF_OPEN probe permit is given back without counting a success or a failure."""
        if self.state is BreakerState.HALF_OPEN:
            self._release_probe()

    def reset(self) -> None:
        """Back to CLOSED with empty statistics."""
        self._clear()
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)

    def snapshot(self) -> dict[str, Any]:
        """A plain-dict view for metrics and health endpoints."""
        state = self.state
        now = self._clock.now()
        self._evict(now)
        retry_at = self.retry_at
        return {
            "name": self.name,
            "state": state.value,
            "retry_at": retry_at,
            "retry_in": None if retry_at is None else max(0.0, retry_at - now),
            "window_calls": len(self._window),
            "window_failures": self._window_failures,
            "consecutive_failures": self._consecutive,
            "transitions": self.transitions_total,
            "probes_in_flight": self._probes_in_flight,
        }

    # ------------------------------------------------------------------ internals

    def _add(self, *, failed: bool) -> None:
        now = self._clock.now()
        self._evict(now)
        self._window.append((now, failed))
        if failed:
            self._window_failures += 1

    def _evict(self, now: float) -> None:
        horizon = now - self.config.window_seconds
        window = self._window
        while window and window[0][0] <= horizon:
            _, failed = window.popleft()
            if failed:
                self._window_failures -= 1

    def _release_probe(self) -> None:
        if self._probes_in_flight > 0:
            self._probes_in_flight -= 1

    def _probe_succeeded(self) -> None:
        self._release_probe()
        self._probe_successes += 1
        if self._probe_successes >= self.config.half_open_successes:
            self._clear()
            self._transition(BreakerState.CLOSED)

    def _open(self) -> None:
        self._clear()
        self._opened_at = self._clock.now()
        self._transition(BreakerState.OPEN)

    def _clear(self) -> None:
        self._window.clear()
        self._window_failures = 0
        self._consecutive = 0
        self._probes_in_flight = 0
        self._probe_successes = 0

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        if new is BreakerState.HALF_OPEN:
            self._probes_in_flight = 0
            self._probe_successes = 0
        now = self._clock.now()
        self.transitions.append((now, old, new))
        self.transitions_total += 1
        if len(self.transitions) > _MAX_TRANSITIONS_KEPT:
            del self.transitions[: len(self.transitions) - _MAX_TRANSITIONS_KEPT]
        if self._store is not None and self._key:
            ttl = self.config.open_seconds if new is BreakerState.OPEN else None
            self._store.set(self._key, {"state": new.value, "name": self.name}, ttl=ttl)
        if self._on_state_change is not None:
            try:
                self._on_state_change(old, new)
            except Exception:  # noqa: BLE001 - a broken callback must not break the breaker
                _log.exception("circuit breaker %r: on_state_change callback failed", self.name)
