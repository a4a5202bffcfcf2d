"""AIMD concurrency limit: cut once per signal generation, regrow by one per `limit` successes."""

from __future__ import annotations

from infermux.resilience.adaptive import AdaptiveLimit
from infermux.resilience.clock import FakeClock
from infermux.resilience.queue import PriorityGate


def test_cut_once_per_generation_and_regrow() -> None:
    clock = FakeClock()
    gate = PriorityGate(40, clock=clock)
    lim = AdaptiveLimit(gate, 40, clock=clock, trigger=1)
    started = clock.now()
    clock.advance(0.01)
    lim.on_overload(started, in_flight=40)
    assert lim.limit == 20 and gate.max_concurrency == 20
    lim.on_overload(started, in_flight=40)  # same generation: ignored
    assert lim.limit == 20 and lim.cuts == 1
    clock.advance(0.01)
    lim.on_overload(clock.now(), in_flight=12)  # a newer attempt: cut from min(limit, in_flight)
    assert lim.limit == 6
    for _ in range(6):
        lim.on_success()
    assert lim.limit == 7 and gate.max_concurrency == 7
    for _ in range(1000):
        lim.on_success()
    assert lim.limit == 40


def test_never_below_one() -> None:
    clock = FakeClock()
    gate = PriorityGate(2, clock=clock)
    lim = AdaptiveLimit(gate, 2, clock=clock, trigger=1)
    for _ in range(5):
        clock.advance(1)
        lim.on_overload(clock.now(), in_flight=1)
    assert lim.limit == 1 and gate.max_concurrency == 1


async def test_gate_set_limit_admits_waiters() -> None:
    import asyncio

    gate = PriorityGate(1, clock=FakeClock())
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert gate.waiting == 1
    gate.set_limit(2)
    await asyncio.wait_for(waiter, 1)
    assert gate.in_flight == 2


def test_a_lone_refusal_is_not_a_capacity_signal() -> None:
    """Sporadic 429s (about 1 in 20 requests) do not cut the limit; three among the last 20 outcomes do."""
    clock = FakeClock()
    gate = PriorityGate(64, clock=clock)
    lim = AdaptiveLimit(gate, 64, clock=clock)
    for i in range(400):
        clock.advance(0.01)
        if i % 20 == 0:
            lim.on_overload(clock.now(), 50)
        else:
            lim.on_success()
    assert lim.cuts == 0 and lim.limit == 64
    for _ in range(3):
        lim.on_overload(clock.now(), 50)
    assert lim.cuts == 1 and lim.limit == 63  # a few refusals at the known-good level: one step down
    clock.advance(0.01)
    for _ in range(3):  # then everything is refused: capacity dropped, halve what is in flight
        lim.on_overload(clock.now(), 50)
    assert lim.limit == 25


def test_slow_start_doubles_until_the_first_refusal() -> None:
    clock = FakeClock()
    gate = PriorityGate(64, clock=clock)
    lim = AdaptiveLimit(gate, 64, clock=clock, initial_limit=16)
    assert lim.limit == 16 and gate.max_concurrency == 16  # no opening burst of 64
    for _ in range(16):
        lim.on_success()
    assert lim.limit == 32
    for _ in range(3):
        lim.on_overload(clock.now(), 32)
    assert lim.limit == 16  # slow start ends at the first cut; growth is additive from here
    for _ in range(16):
        lim.on_success()
    assert lim.limit == 17
