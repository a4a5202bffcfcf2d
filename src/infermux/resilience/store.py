"""The state-store seam: how breaker, key-pool and health state is shared by several replicas.

:class:`StateStore` is deliberately tiny and **synchronous**, so the engine's hot path never waits on I/O:
``get``/``set`` with an optional TTL, ``extend`` (keep the later of two expiries: a cool-down or quota block
is never shortened by a concurrent writer), ``ttl``, ``delete`` and ``incr``. ``version`` grows whenever the
view changes, so a reader compares one int per call and re-reads only after a change.
:class:`MemoryStore` is the in-process implementation (TTL on the injectable clock);
:class:`infermux.shared_state.RedisStateStore` is a local view of the same kind synchronised with Redis in
the background (see its module for the consistency model).
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError
from .clock import SYSTEM_CLOCK, Clock

__all__ = ["MemoryStore", "StateStore"]


@runtime_checkable
class StateStore(Protocol):
    """Key/value state shared by the resilience engine. Values are plain JSON-able data."""

    @property
    def version(self) -> int:
        """Grows on every change of the view (local writes, and writes of other processes once seen)."""
        ...

    def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or ``None`` when absent or expired."""
        ...

    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires; ``None`` when absent or without expiry."""
        ...

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value``; with ``ttl`` (seconds) it expires after that long."""
        ...

    def extend(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds unless ``key`` already lives longer (never shortens an expiry)."""
        ...

    def delete(self, key: str) -> None: ...

    def incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer under ``key`` (absent counts as 0) and return the new value."""
        ...


def check_ttl(ttl: float | None, who: str) -> None:
    if ttl is None:
        return
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or math.isnan(ttl) or ttl < 0:
        raise ConfigurationError(f"{who}: ttl must be a number >= 0 or None, got {ttl!r}")


class MemoryStore:
    """An in-process :class:`StateStore`. Expired entries are dropped when read or overwritten."""

    __slots__ = ("_clock", "_data", "version")

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._data: dict[str, tuple[Any, float | None]] = {}
        self.version = 0

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._data)})"

    def __len__(self) -> int:
        self.purge()
        return len(self._data)

    def live_keys(self) -> list[str]:
        """The live keys."""
        self.purge()
        return list(self._data)

    def _live(self, key: str) -> tuple[Any, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires = entry[1]
        if expires is not None and self._clock.now() >= expires:
            del self._data[key]
            return None
        return entry

    def get(self, key: str) -> Any | None:
        entry = self._live(key)
        return None if entry is None else entry[0]

    def ttl(self, key: str) -> float | None:
        entry = self._live(key)
        if entry is None or entry[1] is None:
            return None
        return max(0.0, entry[1] - self._clock.now())

    def expiry(self, key: str) -> tuple[bool, float | None]:
        """``(present, expiry time on the clock or None)``."""
        entry = self._live(key)
        return (False, None) if entry is None else (True, entry[1])

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._data[key] = (value, self._expiry(ttl))
        self.version += 1

    def set_until(self, key: str, value: Any, expires: float | None) -> None:
        """Store ``value`` expiring at clock time ``expires`` (``None``: never)."""
        self._data[key] = (value, expires)
        self.version += 1

    def extend(self, key: str, value: Any, ttl: float) -> None:
        check_ttl(ttl, "MemoryStore.extend")
        entry = self._live(key)
        until = self._clock.now() + ttl
        if entry is not None and (entry[1] is None or entry[1] >= until):
            return
        self._data[key] = (value, until)
        self.version += 1

    def incr(self, key: str, amount: int = 1) -> int:
        entry = self._live(key)
        self.version += 1
        if entry is None:
            self._data[key] = (amount, None)
            return amount
        value, expires = entry
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"MemoryStore.incr: the value under {key!r} is not an integer")
        value += amount
        self._data[key] = (value, expires)
        return value

    def delete(self, key: str) -> None:
        if self._data.pop(key, None) is not None:
            self.version += 1

    def purge(self) -> None:
        """Drop every expired entry."""
        now = self._clock.now()
        for k in [k for k, (_, exp) in self._data.items() if exp is not None and now >= exp]:
            del self._data[k]

    def _expiry(self, ttl: float | None) -> float | None:
        check_ttl(ttl, "MemoryStore")
        return None if ttl is None else self._clock.now() + ttl
