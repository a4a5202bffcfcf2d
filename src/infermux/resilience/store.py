"""A small state-store seam, so breaker (and later key-pool) state can be shared by several replicas.

:class:`StateStore` is deliberately tiny and synchronous: ``get``/``set`` with an optional TTL and an
atomic ``incr``. :class:`MemoryStore` is the in-process implementation (TTL on the injectable clock).
A Redis-backed store arrives in a later issue; it must keep these semantics.
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

    def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or ``None`` when absent or expired."""
        ...

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value``; with ``ttl`` (seconds) it expires after that long."""
        ...

    def incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer under ``key`` (absent counts as 0) and return the new value."""
        ...


class MemoryStore:
    """An in-process :class:`StateStore`. Expired entries are dropped when read or overwritten."""

    __slots__ = ("_clock", "_data")

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._data: dict[str, tuple[Any, float | None]] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._data)})"

    def __len__(self) -> int:
        self.purge()
        return len(self._data)

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

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._data[key] = (value, self._expiry(ttl))

    def incr(self, key: str, amount: int = 1) -> int:
        entry = self._live(key)
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
        self._data.pop(key, None)

    def purge(self) -> None:
        """Drop every expired entry."""
        now = self._clock.now()
        for k in [k for k, (_, exp) in self._data.items() if exp is not None and now >= exp]:
            del self._data[k]

    def _expiry(self, ttl: float | None) -> float | None:
        if ttl is None:
            return None
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or math.isnan(ttl) or ttl < 0:
            raise ConfigurationError(f"MemoryStore: ttl must be a number >= 0 or None, got {ttl!r}")
        return self._clock.now() + ttl
