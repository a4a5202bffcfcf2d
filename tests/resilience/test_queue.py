from __future__ import annotations

import asyncio

import pytest

from infermux.errors import ConfigurationError, DeadlineExceededError, QueueFullError, RequestShedError
from infermux.resilience import FakeClock, PriorityGate
from infermux.types import Priority

H, N, L = Priority.HIGH, Priority.NORMAL, Priority.LOW


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Recorder:
    """Starts waiters on a gate and records the order in which they get a slot."""

    def __init__(self, gate: PriorityGate) -> None:
        self.gate = gate
        self.order: list[str] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, priority: Priority = N, timeout: float | None = None) -> asyncio.Task[None]:
        async def run() -> None:
            await self.gate.acquire(priority, timeout=timeout)
            self.order.append(name)

        task = asyncio.create_task(run())
        self.tasks[name] = task
        return task


@pytest.mark.parametrize(
    "kwargs",
    [{"max_concurrency": 0}, {"max_queue": -1}, {"overflow": "drop"}, {"aging_seconds": 0}],
)
def test_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        PriorityGate(**kwargs)  # type: ignore[arg-type]


async def test_fast_path_does_not_yield() -> None:
    gate = PriorityGate(max_concurrency=2, clock=FakeClock())
    coro = gate.acquire()
    with pytest.raises(StopIteration):
        coro.send(None)  # completed without suspending
    assert gate.in_flight == 1 and gate.admitted == 1


async def test_priority_then_fifo_order() -> None:
    gate = PriorityGate(max_concurrency=1, clock=FakeClock())
    await gate.acquire()
    rec = Recorder(gate)
    for name, prio in [("l1", L), ("n1", N), ("h1", H), ("n2", N), ("l2", L), ("h2", H)]:
        rec.start(name, prio)
    await settle()
    assert gate.waiting == 6
    assert gate.depth_by_priority() == {"HIGH": 2, "NORMAL": 2, "LOW": 2}
    for _ in range(6):
        gate.release()
        await settle()
    assert rec.order == ["h1", "h2", "n1", "n2", "l1", "l2"]
    assert gate.in_flight == 1 and gate.waiting == 0
    gate.release()
    assert gate.in_flight == 0


async def test_concurrency_bound() -> None:
    gate = PriorityGate(max_concurrency=3, clock=FakeClock())
    running = 0
    peak = 0

    async def job() -> None:
        nonlocal running, peak
        async with gate.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(job() for _ in range(20)))
    assert peak == 3
    assert gate.in_flight == 0 and gate.waiting == 0 and gate.admitted == 20


async def test_reject_overflow() -> None:
    gate = PriorityGate(max_concurrency=1, max_queue=2, clock=FakeClock(), name="ep")
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("a")
    rec.start("b")
    await settle()
    with pytest.raises(QueueFullError) as ei:
        await gate.acquire(H)
    assert ei.value.endpoint == "ep" and ei.value.retryable
    assert gate.rejected == 1 and gate.waiting == 2


async def test_zero_queue_rejects_when_busy() -> None:
    gate = PriorityGate(max_concurrency=1, max_queue=0, clock=FakeClock())
    await gate.acquire()
    with pytest.raises(QueueFullError):
        await gate.acquire()


async def test_shed_lowest() -> None:
    gate = PriorityGate(max_concurrency=1, max_queue=3, overflow="shed_lowest", clock=FakeClock())
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("low-old", L)
    rec.start("norm", N)
    rec.start("low-new", L)
    await settle()
    rec.start("high", H)  # the newest LOW waiter is shed for it
    await settle()
    with pytest.raises(RequestShedError):
        await rec.tasks["low-new"]
    assert gate.shed == 1 and gate.waiting == 3
    assert gate.depth_by_priority() == {"HIGH": 1, "NORMAL": 1, "LOW": 1}
    # a newcomer no better than the worst waiter is rejected instead
    with pytest.raises(QueueFullError) as ei:
        await gate.acquire(L)
    assert not isinstance(ei.value, RequestShedError)
    assert gate.rejected == 1
    for _ in range(3):
        gate.release()
        await settle()
    assert rec.order == ["high", "norm", "low-old"]


async def test_aging_prevents_starvation() -> None:
    clock = FakeClock()
    gate = PriorityGate(max_concurrency=1, aging_seconds=10.0, clock=clock)
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("low", L)
    await settle()
    clock.advance(15.0)  # LOW has aged one level: it now ranks as NORMAL (and is older)
    rec.start("normal", N)
    await settle()
    gate.release()
    await settle()
    assert rec.order == ["low"]
    clock.advance(25.0)  # "normal" aged to HIGH-equivalent; a fresh HIGH arrives later
    rec.start("high", H)
    await settle()
    gate.release()
    await settle()
    assert rec.order == ["low", "normal"]


async def test_without_aging_low_waits_behind_newer_normal() -> None:
    clock = FakeClock()
    gate = PriorityGate(max_concurrency=1, clock=clock)
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("low", L)
    await settle()
    clock.advance(1000.0)
    rec.start("normal", N)
    await settle()
    gate.release()
    await settle()
    assert rec.order == ["normal"]
    rec.tasks["low"].cancel()
    await settle()


async def test_cancel_waiting_caller_leaves_no_trace() -> None:
    gate = PriorityGate(max_concurrency=1, clock=FakeClock())
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("a")
    rec.start("b")
    await settle()
    rec.tasks["a"].cancel()
    await settle()
    assert rec.tasks["a"].cancelled()
    assert gate.waiting == 1
    gate.release()
    await settle()
    assert rec.order == ["b"] and gate.in_flight == 1
    gate.release()
    assert gate.in_flight == 0 and gate.waiting == 0


async def test_cancel_racing_with_grant_passes_the_slot_on() -> None:
    gate = PriorityGate(max_concurrency=1, clock=FakeClock())
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("a")
    rec.start("b")
    await settle()
    gate.release()  # the slot is handed to "a" ...
    rec.tasks["a"].cancel()  # ... which is cancelled before it resumes
    await settle()
    assert rec.tasks["a"].cancelled()
    assert rec.order == ["b"]
    assert gate.in_flight == 1 and gate.waiting == 0
    gate.release()
    assert gate.in_flight == 0


async def test_cancelled_future_is_skipped_by_release_before_cleanup() -> None:
    gate = PriorityGate(max_concurrency=1, clock=FakeClock())
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("a")
    rec.start("b")
    await settle()
    rec.tasks["a"].cancel()  # cancels the future now; the task's cleanup runs later
    gate.release()
    await settle()
    assert rec.order == ["b"] and gate.in_flight == 1 and gate.waiting == 0


async def test_timeout_removes_the_waiter() -> None:
    gate = PriorityGate(max_concurrency=1, clock=FakeClock(), name="ep")
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("b")
    with pytest.raises(DeadlineExceededError, match="waiting in the queue"):
        await gate.acquire(timeout=0)
    assert gate.timed_out == 1 and gate.waiting == 1
    gate.release()
    await settle()
    assert rec.order == ["b"]


async def test_timeout_not_hit_when_granted_in_time() -> None:
    gate = PriorityGate(max_concurrency=1, clock=FakeClock())
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("a", timeout=30.0)
    await settle()
    gate.release()
    await settle()
    assert rec.order == ["a"] and gate.timed_out == 0
    await rec.tasks["a"]


async def test_fast_path_ignores_timeout() -> None:
    gate = PriorityGate(max_concurrency=1, clock=FakeClock())
    await gate.acquire(timeout=0)
    assert gate.in_flight == 1


async def test_release_without_acquire_is_an_error() -> None:
    gate = PriorityGate(clock=FakeClock())
    with pytest.raises(ConfigurationError):
        gate.release()


async def test_slot_releases_on_error_and_snapshot() -> None:
    clock = FakeClock()
    gate = PriorityGate(max_concurrency=1, clock=clock, name="ep")
    with pytest.raises(RuntimeError):
        async with gate.slot(H):
            assert gate.in_flight == 1
            raise RuntimeError("boom")
    assert gate.in_flight == 0
    await gate.acquire()
    rec = Recorder(gate)
    rec.start("a", L)
    await settle()
    clock.advance(3.0)
    snap = gate.snapshot()
    assert snap["in_flight"] == 1 and snap["waiting"] == 1 and snap["oldest_wait_seconds"] == 3.0
    assert snap["depth_by_priority"] == {"HIGH": 0, "NORMAL": 0, "LOW": 1}
    assert snap["admitted"] == 2
    rec.tasks["a"].cancel()
    await settle()


async def test_many_cancellations_no_leak() -> None:
    gate = PriorityGate(max_concurrency=2, max_queue=100, clock=FakeClock())
    await gate.acquire()
    await gate.acquire()
    rec = Recorder(gate)
    for i in range(50):
        rec.start(f"w{i}", Priority(i % 3))
    await settle()
    for i in range(0, 50, 2):
        rec.tasks[f"w{i}"].cancel()
    await settle()
    assert gate.waiting == 25
    for _ in range(27):
        gate.release()
        await settle()
    assert gate.in_flight == 0 and gate.waiting == 0
    assert sorted(rec.order) == sorted(f"w{i}" for i in range(1, 50, 2))
