"""Endpoint health as a pure state machine: active probe results, passive evidence (the breaker), and forward
progress, judged on an injectable clock (no I/O here; :mod:`infermux.health` runs the probes).

An endpoint is **down** when any of these holds, else **up**:

- its last ``failures`` active probes failed (``successes`` good probes in a row bring it back);
- its circuit breaker is open (passive health: real traffic failed);
- another process sharing the state store found it down by its probes (the record it publishes expires
  ``3 * interval + timeout`` after its last failed probe unless renewed, and that process's next good probe
  clears it);
- it is **stalled**: streams have been running for ``stall_after`` seconds without the endpoint producing
  anything (no answer, no stream chunk) although its health route may still answer 200. The age is measured
  from the later of the last progress and the start of the busy period, so an endpoint that is merely
  saturated (many calls in flight and queued, answers still coming) is never judged stalled.
"""

from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass

from ..errors import ConfigurationError
from .clock import SYSTEM_CLOCK, Clock
from .store import StateStore

__all__ = ["EndpointHealth", "HealthConfig", "HealthState", "HealthVerdict"]


class HealthState(str, enum.Enum):
    UP = "up"
    DOWN = "down"


def _positive(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ConfigurationError(f"HealthConfig.{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """How endpoints are watched. ``interval``: seconds between active probes of one endpoint, each delayed by
    a random ``jitter`` fraction of it (so a fleet's probes do not line up); ``timeout``: bound of one probe;
    ``failures`` / ``successes``: consecutive failed / good probes to go down / up; ``stall_after``: seconds
    of running attempts without any answer or chunk that make an endpoint down (``None``: off). ``probe=False``
    keeps passive and forward-progress health without active probes."""

    interval: float = 10.0
    timeout: float = 5.0
    jitter: float = 0.1
    failures: int = 2
    successes: int = 1
    stall_after: float | None = 60.0
    probe: bool = True

    def __post_init__(self) -> None:
        _positive("interval", self.interval)
        _positive("timeout", self.timeout)
        _positive("stall_after", self.stall_after, allow_none=True)
        j = self.jitter
        if isinstance(j, bool) or not isinstance(j, (int, float)) or not 0 <= j < 1:
            raise ConfigurationError(f"HealthConfig.jitter must be a fraction in [0, 1), got {j!r}")
        for name in ("failures", "successes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigurationError(f"HealthConfig.{name} must be an int >= 1, got {v!r}")
        if not isinstance(self.probe, bool):
            raise ConfigurationError(f"HealthConfig.probe must be a bool, got {self.probe!r}")


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    state: HealthState
    reason: str | None  # why it is down (None when up)


class EndpointHealth:
    """One endpoint's health. Feed it probe results (:meth:`record_probe`); ask :meth:`verdict` with the
    breaker's state and the endpoint's stall age; :meth:`update` returns the verdict and whether it changed."""

    __slots__ = (
        "_clock",
        "_key",
        "_origin",
        "_store",
        "config",
        "consecutive_failures",
        "consecutive_successes",
        "last_probe_at",
        "last_probe_error",
        "last_probe_ok",
        "last_probe_seconds",
        "probe_down",
        "probes",
        "since",
        "state",
    )

    def __init__(self, config: HealthConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self._clock = clock
        self.state = HealthState.UP
        self.since = clock.now()
        self.probe_down = False
        self.consecutive_failures = 0
        self.consecutive_successes = 0
        self.probes = 0
        self.last_probe_at: float | None = None
        self.last_probe_ok: bool | None = None
        self.last_probe_error: str | None = None
        self.last_probe_seconds: float | None = None
        self._store: StateStore | None = None
        self._key = ""
        self._origin = uuid.uuid4().hex[:12]

    def bind_store(self, store: StateStore, key: str) -> None:
        """Share probe verdicts through ``store`` under ``key`` (see the module docstring)."""
        self._store, self._key = store, key

    def _publish(self) -> None:
        store = self._store
        if store is None:
            return
        if self.probe_down:  # renewed by every failed probe; expires if this process stops probing
            ttl = 3 * self.config.interval + self.config.timeout
            store.set(self._key, {"down": True, "reason": self.last_probe_error, "by": self._origin}, ttl=ttl)
        else:
            record = store.get(self._key)
            if isinstance(record, dict) and record.get("by") == self._origin:
                store.delete(self._key)  # back up: clear the down verdict this process published

    def shared_down(self) -> str | None:
        """The reason another process published for this endpoint being down, else ``None``."""
        store = self._store
        if store is None:
            return None
        record = store.get(self._key)
        if isinstance(record, dict) and record.get("down") and record.get("by") != self._origin:
            return str(record.get("reason") or "failed")[:200]
        return None

    def record_probe(self, ok: bool, *, error: str | None = None, seconds: float | None = None) -> None:
        self.probes += 1
        self.last_probe_at = self._clock.now()
        self.last_probe_ok = ok
        self.last_probe_error = None if ok else (error or "failed")
        self.last_probe_seconds = seconds
        was_down = self.probe_down
        if ok:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            if self.consecutive_successes >= self.config.successes:
                self.probe_down = False
        else:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
            if self.consecutive_failures >= self.config.failures:
                self.probe_down = True
        if self.probe_down or was_down:
            self._publish()

    def verdict(self, *, breaker_open: bool, stalled_for: float, running: int = 0) -> HealthVerdict:
        if self.probe_down:
            return HealthVerdict(
                HealthState.DOWN,
                f"{self.consecutive_failures} health probes failed (last: {self.last_probe_error})",
            )
        shared = self.shared_down()
        if shared is not None:
            return HealthVerdict(HealthState.DOWN, f"health probes of another process failed (last: {shared})")
        stall = self.config.stall_after
        if stall is not None and stalled_for >= stall:
            return HealthVerdict(
                HealthState.DOWN,
                f"no progress for {stalled_for:.3g}s with {running} stream(s) running (stall_after={stall:g}s)",
            )
        if breaker_open:
            return HealthVerdict(HealthState.DOWN, "circuit breaker open")
        return HealthVerdict(HealthState.UP, None)

    def update(self, *, breaker_open: bool, stalled_for: float, running: int = 0) -> tuple[HealthVerdict, bool]:
        """The current verdict, and whether the state changed since the last update (then ``since`` moves)."""
        v = self.verdict(breaker_open=breaker_open, stalled_for=stalled_for, running=running)
        changed = v.state is not self.state
        if changed:
            self.state = v.state
            self.since = self._clock.now()
        return v, changed
