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


_EARLY = 0.001  # a timer that fires this close to its time is on time (uvloop's timers are in milliseconds)


class ChunkTimer:
    """Bounds each wait of a stream's reader (:meth:`wait`) by the deadline and, once set, by ``cap`` seconds
    (a stream's idle timeout), with one timer handle for the whole stream instead of one per chunk.

    The bound of a wait (the deadline, or ``cap`` seconds after the wait began) never comes earlier than the
    previous wait's, so the handle scheduled for an earlier wait can stay: when it fires early (or while no wait
    is running) it is moved to the current bound, or dropped until the next wait. Expiry cancels the waiting
    task and raises the deadline's error or ``on_cap()``, as :meth:`Deadline.run_capped` would. :meth:`close`
    when the stream ends."""

    __slots__ = ("_at", "_cap_error", "_deadline", "_due", "_fired", "_handle", "_loop", "_task", "_which", "cap")

    def __init__(self, deadline: Deadline, on_cap: Callable[[], InfermuxError]) -> None:
        self._deadline = deadline
        self._cap_error = on_cap
        self.cap: float | None = None  # set once content has started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0  # loop time the handle is scheduled for
        self._task: asyncio.Task[object] | None = None  # the task of the wait in progress (None: no wait)
        self._due = 0.0  # loop time at which the wait in progress runs out
        self._which: Callable[[], InfermuxError] = deadline.expired_error
        self._fired = False

    async def wait(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` within the bound (see the class docstring)."""
        rem = self._deadline.remaining()
        cap = self.cap
        if rem is None and cap is None:
            return await aw
        if (rem is not None and rem <= 0) or sys.version_info < (3, 11):
            return await self._deadline.run_capped(aw, cap, self._cap_error)  # refused now; or Python 3.10
        task = self._arm(rem, cap)
        cancelling = task.cancelling()
        try:
            result = await aw
        except asyncio.CancelledError as e:
            self._task = None
            if self._fired and task.uncancel() <= cancelling:
                timed_out = TimeoutError()  # the chain asyncio.timeout gives: ours <- TimeoutError <- cancel
                timed_out.__cause__ = e
                raise self._which() from timed_out
            raise
        except BaseException:
            self._task = None
            if self._fired:
                task.uncancel()
            raise
        self._task = None
        if self._fired:
            task.uncancel()
        return result

    def _arm(self, rem: float | None, cap: float | None) -> asyncio.Task[object]:
        """Start a wait of the current task: its bound, and a handle due no later than it."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover - not in a task (asyncio.timeout refuses it the same way)
            raise RuntimeError("a Deadline must be awaited in a task")
        if cap is None or (rem is not None and rem <= cap):
            self._which, seconds = self._deadline.expired_error, rem
        else:
            self._which, seconds = self._cap_error, cap
        self._due = due = loop.time() + (seconds or 0.0)
        self._task, self._fired = task, False
        handle = self._handle
        if handle is not None and self._at > due:  # the deadline's clock moved on: a handle due too late
            handle.cancel()
            handle = None
        if handle is None:
            self._at = due
            self._handle = loop.call_at(due, self._fire)
        return task

    def _fire(self) -> None:
        self._handle = None
        task = self._task
        if task is None:  # no wait in progress: the next one schedules its own bound
            return
        loop = self._loop
        assert loop is not None
        if loop.time() + _EARLY < self._due:  # scheduled for an earlier wait: move to this one's bound
            self._at = self._due
            self._handle = loop.call_at(self._due, self._fire)
            return
        self._fired = True
        task.cancel()

    def close(self) -> None:
        """Drop the timer (the stream ended)."""
        handle, self._handle, self._task = self._handle, None, None
        if handle is not None:
            handle.cancel()
