"""Fault descriptions and the controller that decides which fault, if any, the next request gets.

A :class:`Fault` is chosen per request, in this order: the request's ``x-sandbox-fault`` header, the FIFO
queue (:meth:`FaultController.push`), outage mode, capacity mode, the default fault, then the seeded random
mix. The controller is thread-safe so a test thread can drive a server running on another thread's loop.

Header grammar (``x-sandbox-fault``)::

    fault   := kind ["=" primary] *(";" param "=" value)
    kind    := status | reset | slow_headers | slow_body | stream_cut | stall | malformed | html
               | wrong_content_type | none
    primary := the kind's main parameter: status -> status, slow_* -> delay, stream_cut/stall/malformed -> after
    param   := status | retry-after | retry-after-ms | should-retry | delay | after | clean | message | type | html

e.g. ``status=429;retry-after-ms=250``, ``status=502;html=1`` (a proxy's HTML error page instead of the
protocol's JSON error body), ``stream_cut=3;clean=1``, ``slow_headers=0.5``, ``reset``, ``stall=3;delay=5``
(three stream chunks, then nothing for 5 s on an open connection).
"""

from __future__ import annotations

import enum
import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from infermux.errors import ConfigurationError

__all__ = ["STALL_SECONDS", "Fault", "FaultController", "FaultKind", "parse_fault"]

#: how long a ``stall`` fault without a ``delay`` keeps its connection silent (a bound: nothing waits forever)
STALL_SECONDS = 60.0


class FaultKind(str, enum.Enum):
    """What goes wrong with one request."""

    NONE = "none"  # explicitly no fault (useful in random mixes and to skip a default)
    STATUS = "status"  # an HTTP error status with the protocol's real error body
    RESET = "reset"  # the connection is reset before any response byte
    SLOW_HEADERS = "slow_headers"  # wait ``delay`` seconds before responding
    SLOW_BODY = "slow_body"  # wait ``delay`` seconds between stream chunks (or before a JSON body)
    STREAM_CUT = "stream_cut"  # send ``after`` chunks, then drop the connection (no terminal marker)
    STALL = "stall"  # send ``after`` chunks (half a JSON body), then nothing for ``delay`` s (0: 60), connection open
    MALFORMED = "malformed"  # 200 whose JSON is truncated (a stream: one event's data is truncated)
    HTML = "html"  # 200 with an HTML page labelled text/html
    WRONG_CONTENT_TYPE = "wrong_content_type"  # the right JSON body labelled text/plain


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault; fields a kind does not use are ignored."""

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    retry_after_ms: int | None = None
    should_retry: bool | None = None
    message: str | None = None
    error_type: str | None = None
    delay: float = 0.0
    after: int = 1
    clean: bool = False  # stream_cut: end the body cleanly (EOF) instead of aborting the connection
    html_body: bool = False  # status: answer with a proxy's HTML error page instead of the protocol's error body

    @classmethod
    def status_error(
        cls,
        status: int,
        *,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        should_retry: bool | None = None,
        message: str | None = None,
        error_type: str | None = None,
    ) -> Fault:
        return cls(FaultKind.STATUS, status, retry_after, retry_after_ms, should_retry, message, error_type)

    @classmethod
    def reset(cls) -> Fault:
        return cls(FaultKind.RESET)

    @classmethod
    def slow_headers(cls, delay: float) -> Fault:
        return cls(FaultKind.SLOW_HEADERS, delay=delay)

    @classmethod
    def slow_body(cls, delay: float) -> Fault:
        return cls(FaultKind.SLOW_BODY, delay=delay)

    @classmethod
    def stream_cut(cls, after: int = 1, *, clean: bool = False) -> Fault:
        return cls(FaultKind.STREAM_CUT, after=after, clean=clean)

    @classmethod
    def stall(cls, after: int = 1, delay: float = 0.0) -> Fault:
        """Send ``after`` stream chunks, then keep the connection open without sending anything for ``delay``
        seconds (0: :data:`STALL_SECONDS`) or until the client goes away; then drop it."""
        return cls(FaultKind.STALL, after=after, delay=delay)

    @classmethod
    def malformed(cls, after: int = 1) -> Fault:
        return cls(FaultKind.MALFORMED, after=after)

    @classmethod
    def html(cls) -> Fault:
        return cls(FaultKind.HTML)

    @classmethod
    def wrong_content_type(cls) -> Fault:
        return cls(FaultKind.WRONG_CONTENT_TYPE)

    @property
    def label(self) -> str:
        """The key this fault is counted under in the stats (``status:429``, ``reset``...)."""
        return f"status:{self.status}" if self.kind is FaultKind.STATUS else self.kind.value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["kind"] = self.kind.value
        return out


_PRIMARY = {
    FaultKind.STATUS: "status",
    FaultKind.SLOW_HEADERS: "delay",
    FaultKind.SLOW_BODY: "delay",
    FaultKind.STREAM_CUT: "after",
    FaultKind.STALL: "after",
    FaultKind.MALFORMED: "after",
}
_ALIASES = {"retry-after": "retry_after", "retry-after-ms": "retry_after_ms", "should-retry": "should_retry"}
_ALIASES.update(
    {"html": "html_body", "type": "error_type", "error-type": "error_type", "code": "status", "seconds": "delay"}
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _kind(value: str) -> FaultKind:
    try:
        return FaultKind(value.strip().lower().replace("-", "_"))
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise ConfigurationError(f"unknown sandbox fault kind {value!r} (known: {known})") from None


def _coerce(name: str, value: Any) -> Any:
    """Convert one parameter (string from a header, or JSON value) to the field's type."""
    try:
        if name in ("status", "retry_after_ms", "after"):
            return int(value)
        if name in ("retry_after", "delay"):
            return float(value)
        if name in ("should_retry", "clean", "html_body"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError(value)
        if name in ("message", "error_type"):
            return str(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"bad value {value!r} for sandbox fault parameter {name!r}") from None
    raise ConfigurationError(f"unknown sandbox fault parameter {name!r}")


def _build(kind: FaultKind, params: Mapping[str, Any]) -> Fault:
    values: dict[str, Any] = {}
    for raw, value in params.items():
        name = _ALIASES.get(raw.strip().lower(), raw.strip().lower().replace("-", "_"))
        if name == "kind":
            continue
        values[name] = _coerce(name, value)
    return replace(Fault(kind), **values)


def parse_fault(spec: str | Mapping[str, Any] | Fault) -> Fault:
    """Parse a fault from the header grammar, a JSON object (``{"kind": ..., ...}``) or pass a Fault through."""
    if isinstance(spec, Fault):
        return spec
    if isinstance(spec, Mapping):
        if "kind" not in spec:
            raise ConfigurationError("a sandbox fault object needs a 'kind'")
        return _build(_kind(str(spec["kind"])), spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(f"bad sandbox fault spec {spec!r}")
    head, *rest = [p.strip() for p in spec.split(";") if p.strip()]
    kind_text, _, primary = head.partition("=")
    kind = _kind(kind_text)
    params: dict[str, str] = {}
    if primary:
        if kind not in _PRIMARY:
            raise ConfigurationError(f"sandbox fault {kind.value!r} takes no value")
        params[_PRIMARY[kind]] = primary
    for part in rest:
        name, eq, value = part.partition("=")
        if not eq:
            raise ConfigurationError(f"sandbox fault parameter {part!r} needs '=value'")
        params[name] = value
    return _build(kind, params)


class FaultController:
    """Decides the fault for each incoming request. All methods are thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._default: Fault | None = None
        self._random: tuple[list[tuple[Fault, float]], random.Random] | None = None
        self.capacity: int | None = None
        self.capacity_retry_after_ms = 100
        self._outage = False
        self._outage_left: int | None = None

    def push(self, fault: Fault | str, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests (after any already queued)."""
        f = parse_fault(fault)
        if times < 1:
            raise ConfigurationError("times must be >= 1")
        with self._lock:
            self._queue.extend([f] * times)

    def set_default(self, fault: Fault | str | None) -> None:
        """The fault every request gets when nothing else applies (None: no fault)."""
        with self._lock:
            self._default = None if fault is None else parse_fault(fault)

    def set_random(self, weights: Mapping[FaultKind | Fault | str, float] | None, seed: int = 0) -> None:
        """A seeded mix: each request gets a fault with the given probability (the rest get none)."""
        if weights is None:
            with self._lock:
                self._random = None
            return
        table: list[tuple[Fault, float]] = []
        for key, p in weights.items():
            f = parse_fault(key.value) if isinstance(key, FaultKind) else parse_fault(key)
            if p < 0:
                raise ConfigurationError("fault probabilities must be >= 0")
            table.append((f, float(p)))
        if sum(p for _, p in table) > 1.0 + 1e-9:
            raise ConfigurationError("fault probabilities must sum to at most 1")
        with self._lock:
            self._random = (table, random.Random(seed))

    def set_capacity(self, limit: int | None, retry_after_ms: int = 100) -> None:
        """At most ``limit`` requests in flight; extra ones get 429 with ``retry-after-ms`` (None: unlimited)."""
        if limit is not None and limit < 0:
            raise ConfigurationError("capacity must be >= 0")
        with self._lock:
            self.capacity = limit
            self.capacity_retry_after_ms = retry_after_ms

    def set_outage(self, enabled: bool = True, requests: int | None = None) -> None:
        """Every request gets 503 while enabled; with ``requests``, only that many more requests."""
        with self._lock:
            self._outage = enabled
            self._outage_left = requests if enabled else None

    def clear(self) -> None:
        """Forget every queued fault and mode."""
        with self._lock:
            self._queue.clear()
            self._default = None
            self._random = None
            self.capacity = None
            self._outage = False
            self._outage_left = None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def outage(self) -> bool:
        with self._lock:
            return self._outage

    def next_fault(self, header: str | None, in_flight: int) -> tuple[Fault | None, str | None]:
        """The fault for a new request and the mode that caused it (``header``, ``queue``, ``outage``...)."""
        if header:
            f = parse_fault(header)
            return (None if f.kind is FaultKind.NONE else f), "header"
        with self._lock:
            if self._queue:
                f = self._queue.popleft()
                return (None if f.kind is FaultKind.NONE else f), "queue"
            if self._outage:
                if self._outage_left is not None:
                    self._outage_left -= 1
                    if self._outage_left <= 0:
                        self._outage, self._outage_left = False, None
                return Fault.status_error(503), "outage"
            if self.capacity is not None and in_flight >= self.capacity:
                return Fault.status_error(429, retry_after_ms=self.capacity_retry_after_ms), "capacity"
            if self._default is not None:
                f = self._default
                return (None if f.kind is FaultKind.NONE else f), "default"
            if self._random is not None:
                table, rng = self._random
                draw, acc = rng.random(), 0.0
                for f, p in table:
                    acc += p
                    if draw < acc:
                        return (None if f.kind is FaultKind.NONE else f), "random"
        return None, None
