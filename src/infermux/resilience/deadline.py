"""A per-request deadline: one overall time budget for every attempt, queue wait and backoff sleep."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import ConfigurationError, DeadlineExceededError, InfermuxError
from .clock import Clock

__all__ = ["Deadline"]

T = TypeVar("T")


class Deadline:
    """Runs an awaitable under the remaining time (asyncio timeouts in real time; remaining measured on
    the endpoint's clock) and turns expiry into :class:`DeadlineExceededError`."""

    __slots__ = ("at", "clock", "total")

    def __init__(self, clock: Clock, total: float | None) -> None:
        if total is not None and (isinstance(total, bool) or not isinstance(total, (int, float)) or total != total):
            raise ConfigurationError(f"timeout must be a number of seconds or None, got {total!r}")
        self.clock = clock
        self.total = total
        self.at = None if total is None else clock.now() + total

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - self.clock.now()

    def expired_error(self) -> DeadlineExceededError:
        return DeadlineExceededError(f"request deadline of {self.total:.3g}s exceeded")

    async def run(self, aw: Awaitable[T]) -> T:
        rem = self.remaining()
        if rem is None:
            return await aw
        if rem <= 0:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise self.expired_error()
        if sys.version_info >= (3, 11):
            cm = asyncio.timeout(rem)
            try:
                async with cm:
                    return await aw
            except TimeoutError as e:
                if cm.expired():  # ours, not a TimeoutError the operation raised itself
                    raise self.expired_error() from e
                raise
        try:  # pragma: no cover - Python 3.10 (an operation's own asyncio.TimeoutError is not told apart here)
            return await asyncio.wait_for(aw, rem)
        except asyncio.TimeoutError as e:  # pragma: no cover
            raise self.expired_error() from e

    async def run_capped(self, aw: Awaitable[T], cap: float | None, on_cap: Callable[[], InfermuxError]) -> T:
        """:meth:`run`, and also at most ``cap`` seconds (real time, like every asyncio timeout): running out of
        the cap first raises ``on_cap()`` (e.g. a stream's idle timeout), the deadline its own error."""
        rem = self.remaining()
        if cap is None or (rem is not None and rem <= cap):
            return await self.run(aw)
        if sys.version_info >= (3, 11):
            cm = asyncio.timeout(cap)
            try:
                async with cm:
                    return await aw
            except TimeoutError as e:
                if cm.expired():
                    raise on_cap() from e
                raise
        try:  # pragma: no cover - Python 3.10
            return await asyncio.wait_for(aw, cap)
        except asyncio.TimeoutError as e:  # pragma: no cover
            raise on_cap() from e
