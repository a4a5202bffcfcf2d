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


class _Expiry:
    """The timer callback of :meth:`Deadline.run`: cancels the task once, and remembers that it did."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


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

    def run(self, aw: Awaitable[T]) -> Awaitable[T]:
        """``aw`` under the remaining time (await the result); expiry raises :class:`DeadlineExceededError`."""
        rem = self.remaining()
        if rem is None:
            return aw
        if rem <= 0:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise self.expired_error()
        return _within(aw, rem, self.expired_error)

    def run_capped(self, aw: Awaitable[T], cap: float | None, on_cap: Callable[[], InfermuxError]) -> Awaitable[T]:
        """:meth:`run`, and also at most ``cap`` seconds (real time, like every asyncio timeout): running out of
        the cap first raises ``on_cap()`` (e.g. a stream's idle timeout), the deadline its own error."""
        rem = self.remaining()
        if cap is None or (rem is not None and rem <= cap):
            return self.run(aw)
        return _within(aw, cap, on_cap)


async def _within(aw: Awaitable[T], seconds: float, expired: Callable[[], InfermuxError]) -> T:
    """Await ``aw`` for at most ``seconds`` (real time); running out raises ``expired()``."""
    if sys.version_info >= (3, 11):
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover - not in a task (asyncio.timeout refuses it the same way)
            raise RuntimeError("a Deadline must be awaited in a task")
        # asyncio.timeout's protocol (cancel the task at the deadline, then uncancel it and tell our expiry
        # from any other cancellation by the task's cancel count), without its context manager: one timer
        # handle, no state object, one look-up of the running loop instead of three
        expiry = _Expiry(task)
        handle = loop.call_at(loop.time() + seconds, expiry.fire)
        cancelling = task.cancelling()
        try:
            result = await aw
        except asyncio.CancelledError as e:
            handle.cancel()
            if expiry.fired and task.uncancel() <= cancelling:
                timed_out = TimeoutError()  # the chain asyncio.timeout gives: ours <- TimeoutError <- cancel
                timed_out.__cause__ = e
                raise expired() from timed_out
            raise
        except BaseException:
            handle.cancel()
            if expiry.fired:
                task.uncancel()
            raise
        handle.cancel()
        if expiry.fired:
            task.uncancel()
        return result
    try:  # pragma: no cover - Python 3.10 (an operation's own asyncio.TimeoutError is not told apart here)
        return await asyncio.wait_for(aw, seconds)
    except asyncio.TimeoutError as e:  # pragma: no cover
        raise expired() from e
