"""Deadline.run: asyncio.timeout's semantics (expiry is our typed error, any other cancellation stays a
cancellation, the timer never outlives the call), with one timer handle of its own. Real asyncio timers of a
few milliseconds (a Deadline bounds real waits); no sleeps beyond them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from infermux.errors import DeadlineExceededError, InfermuxError
from infermux.resilience.clock import FakeClock
from infermux.resilience.deadline import Deadline

pytestmark = [pytest.mark.timeout(10)]


async def test_expiry_is_a_deadline_error_chained_as_asyncio_timeout_chains_it() -> None:
    task = asyncio.current_task()
    assert task is not None
    with pytest.raises(DeadlineExceededError, match=r"deadline of 0\.01s") as info:
        await Deadline(FakeClock(), 0.01).run(asyncio.Event().wait())
    assert isinstance(info.value.__cause__, TimeoutError)
    assert isinstance(info.value.__cause__.__cause__, asyncio.CancelledError)
    assert task.cancelling() == 0  # the expiry's cancel request was taken back


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def run() -> None:
        await Deadline(FakeClock(), 5.0).run(asyncio.Event().wait())

    t = asyncio.ensure_future(run())
    await asyncio.sleep(0)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t


async def test_a_cancellation_at_the_moment_of_expiry_is_not_swallowed() -> None:
    loop = asyncio.get_running_loop()

    async def run() -> None:
        await Deadline(FakeClock(), 0.01).run(asyncio.Event().wait())

    t = asyncio.ensure_future(run())
    await asyncio.sleep(0)
    loop.call_later(0.01, t.cancel)  # after the deadline's timer (same due time, scheduled later)
    with pytest.raises(asyncio.CancelledError):
        await t


async def test_the_operations_own_timeout_error_is_not_ours() -> None:
    async def op() -> None:
        raise TimeoutError("the operation's own")

    with pytest.raises(TimeoutError, match="own"):
        await Deadline(FakeClock(), 5.0).run(op())


async def test_the_timer_is_cancelled_when_the_call_ends() -> None:
    task = asyncio.current_task()
    assert task is not None

    async def op() -> int:
        return 7

    assert await Deadline(FakeClock(), 0.005).run(op()) == 7
    with pytest.raises(ValueError):
        await Deadline(FakeClock(), 0.005).run(_fail())
    await asyncio.sleep(0.02)  # past both deadlines: nothing cancels this task
    assert task.cancelling() == 0


async def _fail() -> None:
    raise ValueError("boom")


async def test_an_outer_timeout_that_expires_first_is_the_outer_ones() -> None:
    with pytest.raises(TimeoutError) as info:
        async with asyncio.timeout(0.005):
            await Deadline(FakeClock(), 5.0).run(asyncio.Event().wait())
    assert not isinstance(info.value, DeadlineExceededError)


async def test_no_time_left_refuses_before_starting() -> None:
    clock = FakeClock()
    d = Deadline(clock, 1.0)
    clock.advance(2.0)
    coro = asyncio.Event().wait()
    with pytest.raises(DeadlineExceededError):
        await d.run(coro)
    assert coro.cr_frame is None  # closed, never left pending


async def test_run_capped_tells_the_cap_from_the_deadline() -> None:
    from infermux.errors import StreamIdleTimeoutError

    def stalled() -> StreamIdleTimeoutError:
        return StreamIdleTimeoutError("stalled")

    with pytest.raises(StreamIdleTimeoutError, match="stalled") as info:  # the cap runs out first
        await Deadline(FakeClock(), 5.0).run_capped(asyncio.Event().wait(), 0.01, stalled)
    assert isinstance(info.value.__cause__, TimeoutError)
    with pytest.raises(DeadlineExceededError):  # the deadline is nearer than the cap: the deadline's error
        await Deadline(FakeClock(), 0.01).run_capped(asyncio.Event().wait(), 5.0, stalled)

    async def op() -> str:
        return "chunk"

    assert await Deadline(FakeClock(), None).run_capped(op(), 0.01, stalled) == "chunk"
    assert await Deadline(FakeClock(), 5.0).run_capped(op(), None, stalled) == "chunk"


async def _chunks(gaps: list[float]) -> Any:
    for gap in gaps:
        if gap:
            await asyncio.sleep(gap)
        yield gap


def _stalled() -> InfermuxError:
    from infermux.errors import StreamIdleTimeoutError

    return StreamIdleTimeoutError("stalled")


async def test_chunk_timer_bounds_each_wait_with_one_handle() -> None:
    from infermux.errors import StreamIdleTimeoutError
    from infermux.resilience.deadline import ChunkTimer

    task = asyncio.current_task()
    assert task is not None
    timer = ChunkTimer(Deadline(FakeClock(), 5.0), _stalled)
    timer.cap = 0.03
    it = _chunks([0.0, 0.02, 0.02, 0.02]).__aiter__()  # each within the cap; together past it
    got = [await timer.wait(it.__anext__()) for _ in range(4)]
    assert got == [0.0, 0.02, 0.02, 0.02] and task.cancelling() == 0  # the first wait's handle was moved on
    with pytest.raises(StreamIdleTimeoutError, match="stalled") as info:
        await timer.wait(asyncio.Event().wait())  # nothing comes: the cap
    assert isinstance(info.value.__cause__, TimeoutError) and task.cancelling() == 0
    timer.close()
    await asyncio.sleep(0.05)  # no handle left to cancel anything
    assert task.cancelling() == 0


async def test_chunk_timer_uses_the_deadline_when_it_is_nearer() -> None:
    from infermux.resilience.deadline import ChunkTimer

    clock = FakeClock()
    timer = ChunkTimer(Deadline(clock, 10.0), _stalled)
    it = _chunks([0.0]).__aiter__()
    assert await timer.wait(it.__anext__()) == 0.0  # a handle 10 s out
    clock.advance(9.99)  # the deadline's clock moved on: 10 ms left, the handle must follow
    with pytest.raises(DeadlineExceededError):
        await asyncio.wait_for(timer.wait(asyncio.Event().wait()), 2.0)
    timer.close()


async def test_chunk_timer_keeps_an_outside_cancellation() -> None:
    from infermux.resilience.deadline import ChunkTimer

    timer = ChunkTimer(Deadline(FakeClock(), 5.0), _stalled)
    timer.cap = 5.0
    t = asyncio.ensure_future(timer.wait(asyncio.Event().wait()))
    await asyncio.sleep(0)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    timer.close()
