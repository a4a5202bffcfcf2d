"""Per-endpoint circuit breaker: a pure state machine over an injectable clock.

Protocol: a call asks :meth:`CircuitBreaker.acquire` for a :class:`Permit` (``None``: not allowed now) and ends
with exactly one of :meth:`~CircuitBreaker.record_success`, :meth:`~CircuitBreaker.record_failure`,
:meth:`~CircuitBreaker.record_neutral` (use :func:`is_breaker_failure` to choose between failure and neutral) or
:meth:`~CircuitBreaker.record_ignored` (cancelled, or never sent: no evidence), passing its permit back.
:meth:`try_acquire` is the older boolean form; outcomes recorded without a permit are matched as before
(an outcome in HALF_OPEN is taken as the probe's).

States::

    CLOSED --(failures / attempts started >= threshold, with >= minimum_calls started in the window)--> OPEN
    OPEN --(the open time passed; evaluated lazily)--> HALF_OPEN
    HALF_OPEN --(half_open_successes probe successes)--> CLOSED
    HALF_OPEN --(a probe fails)--> OPEN (for the same open time: a sustained outage is probed at a steady pace)

Rules that keep a healthy endpoint closed and a dead one probed at a steady pace:

- **The failure rate is failures over attempts *started***, not over outcomes received: under concurrency fast
  failures return before healthy replies, so a burst of 50 with 10 instant faults is 10/50, never 10/10. The
  window is the last ``window_calls`` attempts started within ``window_seconds`` (so a long healthy history
  does not delay the trip when an outage begins), and nothing opens before ``minimum_calls`` of them.
- ``consecutive_failures`` (off by default) opens after N failures in a row; it can trip on a burst, so it is
  an explicit opt-in.
- **The open time grows on repeated trips** (a flapping endpoint: closed, then tripping again): the n-th trip
  opens for ``open_seconds * open_growth**(n-1)``, capped at ``max_open_seconds`` (Envoy's outlier ejection).
  The trip count is forgotten after ``max_open_seconds`` spent CLOSED. A failed probe reopens for the current
  open time without growing it, so an outage is probed every ``open_seconds`` and the first success after
  recovery comes within about one open time.
- **Probes are bounded for real**: each permit belongs to a state generation; only the permits handed out in
  the current HALF_OPEN period are probes, and an outcome of a call admitted before the breaker opened (a
  stale 4xx, a late failure) neither frees a probe permit nor closes or reopens the breaker.
"""

from __future__ import annotations

import enum
import logging
import math
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import (
    APIConnectionError,
    ConfigurationError,
    DeadlineExceededError,
    IncompleteStreamError,
    InfermuxError,
    InternalServerError,
)
from .clock import SYSTEM_CLOCK, Clock
from .store import StateStore

__all__ = ["BreakerConfig", "BreakerState", "CircuitBreaker", "Permit", "is_breaker_failure"]

_log = logging.getLogger(__name__)
_MAX_TRANSITIONS_KEPT = 1000
_LEGACY_PERMITS_KEPT = 10_000
_CLOSED_RECORD_TTL = 3600.0  # a CLOSED record only tells OPEN replicas to close; then it may go


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When the breaker opens, how long it stays open, and how it probes.

    It opens when, among the last ``window_calls`` attempts started within ``window_seconds``, at least
    ``minimum_calls`` were started and ``failures / started >= failure_rate_threshold``; or after
    ``consecutive_failures`` failures in a row
    (0, the default, disables that rule). The n-th trip in a row opens for ``open_seconds *
    open_growth**(n-1)`` up to ``max_open_seconds``.
    """

    failure_rate_threshold: float = 0.5
    minimum_calls: int = 20
    window_calls: int = 50
    window_seconds: float = 10.0
    consecutive_failures: int = 0
    open_seconds: float = 0.5
    half_open_max_calls: int = 1
    half_open_successes: int = 1
    open_growth: float = 2.0
    max_open_seconds: float = 30.0

    def __post_init__(self) -> None:
        t = self.failure_rate_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1:
            raise ConfigurationError(f"BreakerConfig.failure_rate_threshold must be in (0, 1], got {t!r}")
        for name, minimum in (
            ("minimum_calls", 1),
            ("window_calls", 1),
            ("consecutive_failures", 0),
            ("half_open_max_calls", 1),
            ("half_open_successes", 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ConfigurationError(f"BreakerConfig.{name} must be an int >= {minimum}, got {v!r}")
        for name in ("window_seconds", "open_seconds", "max_open_seconds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigurationError(f"BreakerConfig.{name} must be a finite number > 0, got {v!r}")
        g = self.open_growth
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g) or g < 1:
            raise ConfigurationError(f"BreakerConfig.open_growth must be a finite number >= 1, got {g!r}")
        if self.window_calls < self.minimum_calls:  # the window must be able to hold the minimum volume
            object.__setattr__(self, "window_calls", self.minimum_calls)
        if self.max_open_seconds < self.open_seconds:
            object.__setattr__(self, "max_open_seconds", float(self.open_seconds))


def is_breaker_failure(error: BaseException) -> bool:
    """Whether ``error`` says the endpoint is unhealthy: 5xx/529, a connection failure, an attempt timeout or a
    stream that stopped before its terminal marker.

    Caller errors (4xx including 429), malformed 2xx bodies (the server answered; a parser stricter than the
    provider must not open the breaker on a healthy endpoint), the client's own refusals, configuration errors,
    the caller's overall deadline and cancellation are not health signals.
    """
    if not isinstance(error, InfermuxError) or isinstance(error, DeadlineExceededError):
        return False
    return isinstance(error, (InternalServerError, APIConnectionError, IncompleteStreamError))


class _Start:
    """One attempt started in CLOSED, in the window until evicted; ``failed`` once it failed."""

    __slots__ = ("at", "failed", "live")

    def __init__(self, at: float) -> None:
        self.at = at
        self.failed = False
        self.live = True


@dataclass(slots=True)
class Permit:
    """The right of one call to go, issued by :meth:`CircuitBreaker.acquire`; pass it to the ``record_*`` call."""

    generation: int
    probe: bool
    done: bool = False
    start: _Start | None = None


class CircuitBreaker:
    """A circuit breaker for one endpoint (see the module docstring for the rules and the call protocol).

    With ``store`` and ``key`` the breaker shares its OPEN and CLOSED transitions through the store (an OPEN
    record expires with the open period; HALF_OPEN is local) and adopts those of other breakers on the same
    key: an OPEN record opens this breaker until the record expires (no trip is counted here) plus
    ``shared_probe_grace`` (default ``open_seconds``) during which the breaker that published it sends the probe;
    a CLOSED record seen while OPEN or HALF_OPEN closes it. So a restarted process or a replica
    sharing the store sends nothing into an outage another one found. Reading the shared view costs one int
    comparison per state check (the store's ``version``) until something changed.
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
        self._generation = 0
        self._opened_at = 0.0
        self._open_for = config.open_seconds
        self._closed_at = clock.now()
        self._trips = 0
        self._window: deque[_Start] = deque()
        self._legacy: deque[Permit] = deque(maxlen=_LEGACY_PERMITS_KEPT)
        self._window_started = 0
        self._window_failures = 0
        self._consecutive = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        self.transitions: list[tuple[float, BreakerState, BreakerState]] = []
        self.transitions_total = 0
        self._origin = uuid.uuid4().hex[:12]  # tells this breaker's records from the others'
        self._seq = 0
        self._seen_version = -1
        self._seen_record: tuple[Any, Any] | None = None
        self.adopted = 0  # transitions taken from other breakers' records
        #: an OPEN adopted from another breaker lasts this much longer, so that the breaker which found the
        #: outage sends the probe and the others follow its verdict (CLOSED, or a new OPEN); if none comes
        #: (that process is gone), this one probes
        self.shared_probe_grace = config.open_seconds
        self._await_finder = False
        if store is not None and key:
            self.bind_store(store, key)

    def bind_store(self, store: StateStore, key: str) -> None:
        """Share this breaker's state through ``store`` under ``key`` (see the class docstring)."""
        if not key:
            raise ConfigurationError("CircuitBreaker: a store needs a key")
        self._store, self._key = store, key
        self._seen_version = -1
        self._sync()

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value})"

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> BreakerState:
        """The current state; OPEN turns into HALF_OPEN here once the open time has passed."""
        if self._store is not None and self._store.version != self._seen_version:
            self._sync()
        if self._state is BreakerState.OPEN and self._clock.now() >= self._opened_at + self._open_for:
            if self._await_finder:  # the process that found the outage probes it: wait for its verdict first
                self._await_finder = False
                self._opened_at += self.shared_probe_grace
            if self._clock.now() >= self._opened_at + self._open_for:
                self._transition(BreakerState.HALF_OPEN)
        return self._state

    @property
    def retry_at(self) -> float | None:
        """Clock time at which the next probe is allowed; ``None`` unless OPEN."""
        if self.state is BreakerState.OPEN:
            return self._opened_at + self._open_for
        return None

    @property
    def open_for(self) -> float:
        """How long the current (or next) open period lasts."""
        return self._open_for

    def available(self) -> bool:
        """Could a call be admitted now (CLOSED, or HALF_OPEN with a free probe permit)? Takes nothing."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and self._probes_in_flight < self.config.half_open_max_calls
        )

    def acquire(self) -> Permit | None:
        """A permit for one call, or ``None`` while OPEN or while every HALF_OPEN probe permit is taken."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Permit(self._generation, probe=False, start=self._add())
        if state is BreakerState.HALF_OPEN and self._probes_in_flight < self.config.half_open_max_calls:
            self._probes_in_flight += 1
            return Permit(self._generation, probe=True)
        return None

    def try_acquire(self) -> bool:
        """The boolean form of :meth:`acquire`: outcomes recorded without a permit are matched to these calls
        in order."""
        permit = self.acquire()
        if permit is None:
            return False
        self._legacy.append(permit)
        return True

    # ------------------------------------------------------------------ outcomes

    def _current(self, permit: Permit | None) -> tuple[BreakerState | None, Permit | None]:
        """The state an outcome applies to (``None`` when it is stale: issued in an earlier generation, or already
        recorded), with the permit it belongs to (without one, the oldest of :meth:`try_acquire`'s)."""
        state = self.state
        if permit is None:
            if not self._legacy:
                return state, None
            permit = self._legacy.popleft()
        if permit.done:
            return None, permit
        permit.done = True
        if permit.generation != self._generation:
            return None, permit
        return state, permit

    def record_success(self, permit: Permit | None = None) -> None:
        """The call succeeded."""
        state, _ = self._current(permit)
        if state is BreakerState.HALF_OPEN:
            self._probe_succeeded()
        elif state is BreakerState.CLOSED:
            self._consecutive = 0

    def record_failure(self, permit: Permit | None = None) -> None:
        """The call failed in a way that says the endpoint is unhealthy (see :func:`is_breaker_failure`)."""
        state, permit = self._current(permit)
        if state is BreakerState.HALF_OPEN:
            self._release_probe()
            self._open(trip=False)
        elif state is BreakerState.CLOSED:
            self._consecutive += 1
            start = permit.start if permit is not None else None
            if start is not None and start.live and not start.failed:
                start.failed = True
                self._window_failures += 1
            cfg = self.config
            if (cfg.consecutive_failures and self._consecutive >= cfg.consecutive_failures) or (
                self._window_started >= cfg.minimum_calls
                and self._window_failures >= cfg.failure_rate_threshold * self._window_started
            ):
                self._open(trip=True)

    def record_neutral(self, permit: Permit | None = None) -> None:
        """The call ended with an outcome that says nothing about health (e.g. a 4xx).

        In CLOSED it changes nothing; from the current HALF_OPEN probe it counts as a success (the server answered).
        """
        if self._current(permit)[0] is BreakerState.HALF_OPEN:
            self._probe_succeeded()

    def record_ignored(self, permit: Permit | None = None) -> None:
        """The call ended without evidence either way (cancelled, the caller's own deadline ran out, nothing was
        sent): a HALF_OPEN probe permit is given back without counting a success or a failure."""
        if self._current(permit)[0] is BreakerState.HALF_OPEN:
            self._release_probe()

    def reset(self) -> None:
        """Back to CLOSED with empty statistics and no trip history."""
        self._clear()
        self._trips = 0
        self._open_for = self.config.open_seconds
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
            "open_seconds": self._open_for,
            "trips": self._trips,
            "window_calls": self._window_started,
            "window_failures": self._window_failures,
            "consecutive_failures": self._consecutive,
            "transitions": self.transitions_total,
            "probes_in_flight": self._probes_in_flight,
        }

    # ------------------------------------------------------------------ shared state

    def _sync(self) -> None:
        """Adopt a transition another breaker published under the same key (once per record)."""
        store, key = self._store, self._key
        if store is None or not key:
            return
        self._seen_version = store.version
        record = store.get(key)
        if not isinstance(record, dict) or record.get("by") == self._origin:
            return
        stamp = (record.get("by"), record.get("seq"))
        if stamp == self._seen_record:
            return
        self._seen_record = stamp
        shared = record.get("state")
        if shared == BreakerState.OPEN.value:
            # monotonic times do not travel between processes: the record's TTL says how long is left
            left = store.ttl(key)
            until = self._clock.now() + (self._open_for if left is None else left)
            end = self._opened_at + self._open_for
            if self._state is BreakerState.OPEN and until + self.shared_probe_grace < end:
                return  # this breaker's own open period lasts longer: it probes for itself
            self.adopted += 1
            self._await_finder = True  # the publisher probes when its period ends: follow its verdict
            if self._state is not BreakerState.OPEN:
                self._clear()
                self._opened_at = until - self._open_for
                self._transition(BreakerState.OPEN, publish=False)
            else:
                self._opened_at = max(end, until) - self._open_for
        elif shared == BreakerState.CLOSED.value and self._state is not BreakerState.CLOSED:
            self._clear()
            self._closed_at = self._clock.now()
            self.adopted += 1
            self._transition(BreakerState.CLOSED, publish=False)

    def _publish(self, new: BreakerState) -> None:
        if self._store is None or not self._key or new is BreakerState.HALF_OPEN:
            return
        self._seq += 1
        record = {"state": new.value, "name": self.name, "by": self._origin, "seq": self._seq}
        ttl = self._open_for if new is BreakerState.OPEN else _CLOSED_RECORD_TTL
        self._store.set(self._key, record, ttl=ttl)
        self._seen_version = self._store.version

    # ------------------------------------------------------------------ internals

    def _add(self) -> _Start:
        now = self._clock.now()
        start = _Start(now)
        self._window.append(start)
        self._window_started += 1
        self._evict(now)
        return start

    def _evict(self, now: float) -> None:
        horizon = now - self.config.window_seconds
        window, keep = self._window, self.config.window_calls
        while window and (window[0].at <= horizon or len(window) > keep):
            old = window.popleft()
            old.live = False
            self._window_started -= 1
            if old.failed:
                self._window_failures -= 1

    def _release_probe(self) -> None:
        if self._probes_in_flight > 0:
            self._probes_in_flight -= 1

    def _probe_succeeded(self) -> None:
        self._release_probe()
        self._probe_successes += 1
        if self._probe_successes >= self.config.half_open_successes:
            self._clear()
            self._closed_at = self._clock.now()
            self._transition(BreakerState.CLOSED)

    def _open(self, *, trip: bool) -> None:
        now = self._clock.now()
        cfg = self.config
        if trip:
            if now - self._closed_at >= cfg.max_open_seconds:
                self._trips = 0  # healthy long enough: forget earlier trips
            self._trips += 1
            try:
                grown = cfg.open_seconds * cfg.open_growth ** (self._trips - 1)
            except OverflowError:
                grown = math.inf
            self._open_for = min(cfg.max_open_seconds, grown)
        self._clear()
        self._opened_at = now
        self._await_finder = False
        self._transition(BreakerState.OPEN)

    def _clear(self) -> None:
        for start in self._window:
            start.live = False
        self._window.clear()
        self._window_started = 0
        self._window_failures = 0
        self._consecutive = 0
        self._probes_in_flight = 0
        self._probe_successes = 0

    def _transition(self, new: BreakerState, *, publish: bool = True) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        if new is BreakerState.HALF_OPEN:
            self._probes_in_flight = 0
            self._probe_successes = 0
        now = self._clock.now()
        self.transitions.append((now, old, new))
        self.transitions_total += 1
        if len(self.transitions) > _MAX_TRANSITIONS_KEPT:
            del self.transitions[: len(self.transitions) - _MAX_TRANSITIONS_KEPT]
        if publish:
            self._publish(new)
        if self._on_state_change is not None:
            try:
                self._on_state_change(old, new)
            except Exception:  # noqa: BLE001 - a broken callback must not break the breaker
                _log.exception("circuit breaker %r: on_state_change callback failed", self.name)
