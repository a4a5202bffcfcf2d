"""Bounded priority admission in front of an endpoint.

:class:`PriorityGate` lets at most ``max_concurrency`` calls run at once and keeps up to
``max_queue`` callers waiting, served HIGH before NORMAL before LOW and FIFO within a priority.
Each waiter owns one asyncio future; a released slot is handed directly to the best waiter, so no
caller polls or sleeps. Waiters removed by cancellation, timeout or shedding are deleted lazily
from their deque (O(1) amortised).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from ..errors import ConfigurationError, DeadlineExceededError, QueueFullError, RequestShedError
from ..types import Priority
from .clock import SYSTEM_CLOCK, Clock

__all__ = ["PriorityGate"]

_WAITING, _GRANTED, _REMOVED = 0, 1, 2
_LEVELS = tuple(Priority)


class _Waiter:
    __slots__ = ("enqueued_at", "future", "priority", "seq", "state")

    def __init__(self, priority: Priority, seq: int, enqueued_at: float, future: asyncio.Future[None]) -> None:
        self.priority = priority
        self.seq = seq
        self.enqueued_at = enqueued_at
        self.future = future
        self.state = _WAITING


class PriorityGate:
    """Bounded priority queue in front of an endpoint: at most max_concurrency in flight; up to max_queue waiting.

    ``overflow`` decides what a full queue does with a newcomer: ``"reject"`` raises
    :class:`~infermux.errors.QueueFullError`; ``"shed_lowest"`` evicts the newest waiter whose
    effective priority is worse than the newcomer's (it gets
    :class:`~infermux.errors.RequestShedError`), or rejects the newcomer when there is none. With
    ``aging_seconds``, a waiter's effective priority improves by one level per ``aging_seconds``
    waited (on ``clock``), so LOW requests are not starved. Every successful :meth:`acquire` must be
    paired with one :meth:`release` (or use :meth:`slot`).
    """

    def __init__(
        self,
        max_concurrency: int = 64,
        max_queue: int = 1024,
        *,
        overflow: Literal["reject", "shed_lowest"] = "reject",
        aging_seconds: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        name: str = "",
    ) -> None:
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 0:
            raise ConfigurationError(f"max_queue must be an int >= 0, got {max_queue!r}")
        if overflow not in ("reject", "shed_lowest"):
            raise ConfigurationError(f"overflow must be 'reject' or 'shed_lowest', got {overflow!r}")
        if aging_seconds is not None and (
            isinstance(aging_seconds, bool)
            or not isinstance(aging_seconds, (int, float))
            or not math.isfinite(aging_seconds)
            or aging_seconds <= 0
        ):
            raise ConfigurationError(f"aging_seconds must be a finite number > 0 or None, got {aging_seconds!r}")
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.overflow = overflow
        self.aging_seconds = aging_seconds
        self.name = name
        self._clock = clock
        self._queues: dict[Priority, deque[_Waiter]] = {p: deque() for p in _LEVELS}
        self._depth: dict[Priority, int] = dict.fromkeys(_LEVELS, 0)
        self._waiting = 0
        self._in_flight = 0
        self._seq = itertools.count()
        self.rejected = 0
        self.shed = 0
        self.timed_out = 0
        self.admitted = 0
        #: called (no arguments) whenever a slot is left free with nobody waiting for it: a router sharing
        #: one queue over several endpoints hands it to its next waiter
        self.on_free: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return (
            f"PriorityGate(name={self.name!r}, in_flight={self._in_flight}/{self.max_concurrency}, "
            f"waiting={self._waiting}/{self.max_queue})"
        )

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return self._waiting

    def depth_by_priority(self) -> dict[str, int]:
        """Waiting callers per (original) priority: ``{"HIGH": n, "NORMAL": n, "LOW": n}``."""
        return {p.name: self._depth[p] for p in _LEVELS}

    def snapshot(self) -> dict[str, Any]:
        now = self._clock.now()
        oldest = [q[0].enqueued_at for q in self._queues.values() if self._trim_left(q)]
        return {
            "name": self.name,
            "in_flight": self._in_flight,
            "max_concurrency": self.max_concurrency,
            "waiting": self._waiting,
            "max_queue": self.max_queue,
            "overflow": self.overflow,
            "depth_by_priority": self.depth_by_priority(),
            "oldest_wait_seconds": max(0.0, now - min(oldest)) if oldest else 0.0,
            "admitted": self.admitted,
            "rejected": self.rejected,
            "shed": self.shed,
            "timed_out": self.timed_out,
        }

    # ------------------------------------------------------------------ acquire / release

    async def acquire(self, priority: Priority = Priority.NORMAL, timeout: float | None = None) -> None:
        """Wait for a slot. Raises QueueFullError, RequestShedError or DeadlineExceededError (``timeout``
        seconds of real time spent waiting in the queue); cancellation leaves no trace."""
        if type(priority) is not Priority:  # a member passes as it is (Priority(member) is a slow identity)
            try:
                priority = Priority(priority)
            except ValueError:
                raise ConfigurationError(f"unknown priority {priority!r}") from None
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout)
        ):
            raise ConfigurationError(f"timeout must be a number of seconds or None, got {timeout!r}")
        if self._in_flight < self.max_concurrency and self._waiting == 0:
            self._in_flight += 1
            self.admitted += 1
            return
        if self._waiting >= self.max_queue:
            self._overflow(priority)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(priority, next(self._seq), self._clock.now(), loop.create_future())
        self._queues[priority].append(waiter)
        self._waiting += 1
        self._depth[priority] += 1
        self._dispatch()  # defensive: a free slot with no live waiter ahead goes to this one at once
        handle = None if timeout is None else loop.call_later(max(0.0, timeout), self._expire, waiter, timeout)
        try:
            await waiter.future
        except BaseException:
            if waiter.future.done() and not waiter.future.cancelled():
                waiter.future.exception()  # mark a shed/timeout error as retrieved even if we were cancelled
            if waiter.state == _GRANTED:
                # Cancelled after the slot was handed over: pass it on to the next waiter.
                waiter.state = _REMOVED
                self.release()
            elif waiter.state == _WAITING:
                self._remove(waiter)
            raise
        finally:
            if handle is not None:
                handle.cancel()

    def set_limit(self, max_concurrency: int) -> None:
        """Change the concurrency limit at run time (adaptive concurrency). Lowering it never cancels calls in
        flight: new ones wait until in-flight drops below the new limit; raising it admits waiters at once."""
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        self.max_concurrency = max_concurrency
        self._dispatch()
        self._notify_free()

    def release(self) -> None:
        """Give a slot back: it goes to the best waiter, or becomes free."""
        if self._in_flight <= 0:
            raise ConfigurationError("PriorityGate.release() called without a matching acquire()")
        self._in_flight -= 1
        self._dispatch()
        self._notify_free()

    def _notify_free(self) -> None:
        if self.on_free and self._in_flight < self.max_concurrency and not self._waiting:
            for callback in self.on_free:
                callback()

    @contextlib.asynccontextmanager
    async def slot(self, priority: Priority = Priority.NORMAL, timeout: float | None = None) -> AsyncIterator[None]:
        """``async with gate.slot(priority):`` acquires a slot and always releases it."""
        await self.acquire(priority, timeout)
        try:
            yield
        finally:
            self.release()

    # ------------------------------------------------------------------ internals

    def _effective(self, waiter: _Waiter, now: float) -> int:
        if self.aging_seconds is None:
            return int(waiter.priority)
        levels = int((now - waiter.enqueued_at) // self.aging_seconds)
        return max(0, int(waiter.priority) - levels)

    def _trim_left(self, q: deque[_Waiter]) -> bool:
        while q and not self._live(q[0]):
            q.popleft()
        return bool(q)

    def _trim_right(self, q: deque[_Waiter]) -> bool:
        while q and not self._live(q[-1]):
            q.pop()
        return bool(q)

    def _live(self, waiter: _Waiter) -> bool:
        if waiter.state != _WAITING:
            return False
        if waiter.future.done():  # cancelled; its task has not run its cleanup yet
            self._remove(waiter)
            return False
        return True

    def _remove(self, waiter: _Waiter) -> None:
        if waiter.state == _WAITING:
            waiter.state = _REMOVED
            self._waiting -= 1
            self._depth[waiter.priority] -= 1

    def _dispatch(self) -> None:
        while self._in_flight < self.max_concurrency and self._waiting:
            best = self._best()
            if best is None:
                return
            self._queues[best.priority].popleft()
            self._remove(best)
            best.state = _GRANTED
            self._in_flight += 1
            self.admitted += 1
            best.future.set_result(None)

    def _best(self) -> _Waiter | None:
        """The head with the best (effective priority, arrival order); heads are the oldest, hence most aged."""
        now = self._clock.now()
        best: _Waiter | None = None
        best_key: tuple[int, int] | None = None
        for q in self._queues.values():
            if self._trim_left(q):
                w = q[0]
                key = (self._effective(w, now), w.seq)
                if best_key is None or key < best_key:
                    best, best_key = w, key
        return best

    def _overflow(self, priority: Priority) -> None:
        if self.overflow == "shed_lowest":
            victim = self._worst()
            if victim is not None and self._effective(victim, self._clock.now()) > int(priority):
                self._queues[victim.priority].pop()
                self._remove(victim)
                self.shed += 1
                victim.future.set_exception(
                    RequestShedError(
                        f"shed from the full queue ({self.max_queue} waiting) for a {priority.name} request",
                        endpoint=self.name or None,
                    )
                )
                return
        self.rejected += 1
        raise QueueFullError(
            f"queue full: {self._waiting} waiting, {self._in_flight} in flight (max_queue={self.max_queue})",
            endpoint=self.name or None,
        )

    def _worst(self) -> _Waiter | None:
        """The newest waiter of the worst effective priority (tails are the newest, hence least aged)."""
        now = self._clock.now()
        worst: _Waiter | None = None
        worst_key: tuple[int, int] | None = None
        for q in self._queues.values():
            if self._trim_right(q):
                w = q[-1]
                key = (self._effective(w, now), w.seq)
                if worst_key is None or key > worst_key:
                    worst, worst_key = w, key
        return worst

    def _expire(self, waiter: _Waiter, timeout: float) -> None:
        if waiter.state != _WAITING or waiter.future.done():
            return
        self._remove(waiter)
        self.timed_out += 1
        waiter.future.set_exception(
            DeadlineExceededError(f"timed out after {timeout:g}s waiting in the queue", endpoint=self.name or None)
        )
