"""Injectable clocks: the resilience engine reads time and sleeps only through a :class:`Clock`.

Production code uses :data:`SYSTEM_CLOCK` (monotonic time, ``asyncio.sleep``); tests use
:class:`FakeClock`, whose time moves only when the test (or a sleeping coroutine) advances it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time in seconds, and a way to wait on it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    __slots__ = ()

    #: :func:`time.monotonic` itself (read many times per call: no Python frame around it)
    now = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A manual clock for tests. ``sleep`` advances time at once and records the requested delay."""

    __slots__ = ("_now", "sleeps")

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (negative values are refused: the clock is monotonic)."""
        if not seconds >= 0:
            raise ConfigurationError(f"FakeClock cannot go backwards (advance({seconds!r}))")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._now += max(0.0, seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"


SYSTEM_CLOCK = SystemClock()
