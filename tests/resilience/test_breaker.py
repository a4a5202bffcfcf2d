from __future__ import annotations

import asyncio
import logging

import pytest

from infermux.errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    DeadlineExceededError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    OverloadedError,
    QueueFullError,
    RateLimitError,
)
from infermux.resilience import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    FakeClock,
    MemoryStore,
    is_breaker_failure,
)

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def make(clock: FakeClock, **kw: object) -> tuple[CircuitBreaker, list[tuple[BreakerState, BreakerState]]]:
    calls: list[tuple[BreakerState, BreakerState]] = []
    cfg = BreakerConfig(**kw)  # type: ignore[arg-type]
    return CircuitBreaker(cfg, clock=clock, on_state_change=lambda o, n: calls.append((o, n)), name="ep"), calls


def fail(b: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        assert b.try_acquire()
        b.record_failure()


def succeed(b: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        assert b.try_acquire()
        b.record_success()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_rate_threshold": 0},
        {"failure_rate_threshold": 1.5},
        {"minimum_calls": 0},
        {"consecutive_failures": -1},
        {"open_seconds": 0},
        {"window_seconds": float("inf")},
        {"half_open_max_calls": 0},
        {"half_open_successes": 0},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        BreakerConfig(**kwargs)  # type: ignore[arg-type]


def test_opens_on_consecutive_failures_and_success_resets_the_streak() -> None:
    clock = FakeClock()
    b, calls = make(clock, consecutive_failures=3, minimum_calls=100)
    fail(b, 2)
    succeed(b)
    fail(b, 2)
    assert b.state is CLOSED
    fail(b)
    assert b.state is OPEN
    assert calls == [(CLOSED, OPEN)]
    assert b.transitions == [(clock.now(), CLOSED, OPEN)]


def test_opens_on_failure_rate_only_after_minimum_calls() -> None:
    clock = FakeClock()
    b, _ = make(clock, consecutive_failures=0, minimum_calls=10, failure_rate_threshold=0.5)
    # alternate: 4 failures, 5 successes -> 9 calls, below minimum
    for _ in range(4):
        fail(b)
        succeed(b)
    succeed(b)
    assert b.state is CLOSED and b.snapshot()["window_calls"] == 9
    fail(b)  # 10 calls, 5 failures = 0.5
    assert b.state is OPEN


def test_failure_rate_below_threshold_stays_closed() -> None:
    clock = FakeClock()
    b, _ = make(clock, consecutive_failures=0, minimum_calls=10, failure_rate_threshold=0.5)
    for _ in range(20):
        succeed(b, 2)
        fail(b)  # 1/3 failure rate
    assert b.state is CLOSED


def test_window_evicts_old_outcomes_by_clock_time() -> None:
    clock = FakeClock()
    b, _ = make(clock, consecutive_failures=0, minimum_calls=4, failure_rate_threshold=0.5, window_seconds=10.0)
    fail(b, 3)
    assert b.snapshot()["window_failures"] == 3
    clock.advance(10.0)  # those three fall out of the window
    snap = b.snapshot()
    assert snap["window_calls"] == 0 and snap["window_failures"] == 0
    succeed(b, 3)
    fail(b)  # 4 calls, 1 failure
    assert b.state is CLOSED
    clock.advance(5.0)
    fail(b, 2)  # 6 calls in window, 3 failures
    assert b.state is OPEN


def test_fast_fail_while_open_and_retry_at() -> None:
    clock = FakeClock(start=500.0)
    b, _ = make(clock, consecutive_failures=2, open_seconds=30.0)
    assert b.retry_at is None
    fail(b, 2)
    assert b.state is OPEN
    assert b.retry_at == 530.0
    assert b.try_acquire() is False
    clock.advance(29.999)
    assert b.try_acquire() is False
    assert b.snapshot()["retry_in"] == pytest.approx(0.001)
    clock.advance(0.001)
    assert b.state is HALF
    assert b.retry_at is None


def test_half_open_probe_limit() -> None:
    clock = FakeClock()
    b, _ = make(clock, consecutive_failures=1, open_seconds=10.0, half_open_max_calls=2, half_open_successes=2)
    fail(b)
    clock.advance(10.0)
    assert b.try_acquire() and b.try_acquire()
    assert not b.try_acquire()
    assert b.snapshot()["probes_in_flight"] == 2
    b.record_success()  # one probe back: one permit free, not yet closed (needs 2)
    assert b.state is HALF
    assert b.try_acquire()
    assert not b.try_acquire()
    b.record_success()
    assert b.state is CLOSED
    b.record_success()  # the last in-flight probe finishing in CLOSED is harmless
    assert b.state is CLOSED


def test_close_on_probe_success() -> None:
    clock = FakeClock()
    b, calls = make(clock, consecutive_failures=1, open_seconds=5.0)
    fail(b)
    clock.advance(5.0)
    succeed(b)
    assert b.state is CLOSED
    assert calls == [(CLOSED, OPEN), (OPEN, HALF), (HALF, CLOSED)]
    assert b.snapshot()["consecutive_failures"] == 0 and b.snapshot()["window_calls"] == 0


def test_reopen_on_probe_failure_with_a_new_open_period() -> None:
    clock = FakeClock(start=0.0)
    b, calls = make(clock, consecutive_failures=1, open_seconds=5.0)
    fail(b)
    clock.advance(7.0)
    assert b.try_acquire()
    b.record_failure()
    assert b.state is OPEN
    assert b.retry_at == 12.0
    assert calls == [(CLOSED, OPEN), (OPEN, HALF), (HALF, OPEN)]
    assert [t for t, _, _ in b.transitions] == [0.0, 7.0, 7.0]


def test_neutral_outcomes() -> None:
    clock = FakeClock()
    b, _ = make(clock, consecutive_failures=2, minimum_calls=2, failure_rate_threshold=1.0, open_seconds=5.0)
    fail(b)
    for _ in range(10):
        assert b.try_acquire()
        b.record_neutral()  # a 400 says nothing: it does not break the streak; it counts as a started attempt
    assert b.snapshot()["window_calls"] == 11 and b.snapshot()["consecutive_failures"] == 1
    fail(b)
    assert b.state is OPEN
    b.record_neutral()  # ignored while OPEN
    clock.advance(5.0)
    assert b.try_acquire()
    assert not b.try_acquire()
    b.record_neutral()  # the server answered: counts as a probe success
    assert b.state is CLOSED


def test_ignored_outcome_gives_the_probe_permit_back_without_closing() -> None:
    clock = FakeClock()
    b, calls = make(clock, consecutive_failures=1, open_seconds=5.0, half_open_max_calls=1)
    fail(b)
    clock.advance(5.0)
    assert b.try_acquire() and not b.try_acquire()  # the only probe permit is taken
    b.record_ignored()  # e.g. the probe was cancelled
    assert b.state is HALF and b.snapshot()["probes_in_flight"] == 0
    assert b.try_acquire()  # the permit is back
    b.record_success()
    assert b.state is CLOSED
    b.record_ignored()  # in CLOSED it changes nothing
    assert b.state is CLOSED and b.snapshot()["window_calls"] == 0 and calls[-1] == (HALF, CLOSED)


def test_outcomes_recorded_while_open_are_ignored() -> None:
    clock = FakeClock()
    b, _ = make(clock, consecutive_failures=1, open_seconds=5.0)
    assert b.try_acquire()  # slow call admitted while closed
    fail(b)
    b.record_failure()  # the slow call fails after the breaker opened: no new open period
    b.record_success()
    assert b.state is OPEN and len(b.transitions) == 1
    clock.advance(5.0)
    assert b.state is HALF


def test_reset() -> None:
    clock = FakeClock()
    b, calls = make(clock, consecutive_failures=1)
    fail(b)
    b.reset()
    assert b.state is CLOSED and b.try_acquire()
    assert calls[-1] == (OPEN, CLOSED)
    b.reset()  # already closed: no transition
    assert len(calls) == 2


def test_callback_failure_does_not_break_the_breaker(caplog: pytest.LogCaptureFixture) -> None:
    def boom(old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("callback bug")

    b = CircuitBreaker(BreakerConfig(consecutive_failures=1), clock=FakeClock(), on_state_change=boom)
    with caplog.at_level(logging.ERROR):
        fail(b)
    assert b.state is OPEN
    assert "on_state_change" in caplog.text


def test_snapshot_fields() -> None:
    b, _ = make(FakeClock(), consecutive_failures=1)
    fail(b)
    snap = b.snapshot()
    assert snap["state"] == "open" and snap["transitions"] == 1 and snap["retry_at"] is not None
    assert set(snap) >= {
        "state",
        "retry_at",
        "window_calls",
        "window_failures",
        "consecutive_failures",
        "transitions",
        "probes_in_flight",
    }


def test_state_persists_through_store() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    b = CircuitBreaker(BreakerConfig(consecutive_failures=1, open_seconds=10.0), clock=clock, store=store, key="br:ep")
    fail(b)
    record = store.get("br:ep")
    assert isinstance(record, dict) and record["state"] == "open" and record["name"] == ""
    twin = CircuitBreaker(BreakerConfig(open_seconds=10.0), clock=clock, store=store, key="br:ep")
    assert twin.state is OPEN and not twin.try_acquire()
    clock.advance(10.0)
    assert store.get("br:ep") is None  # the OPEN record expires with the open period
    assert CircuitBreaker(BreakerConfig(), clock=clock, store=store, key="br:ep").state is CLOSED
    with pytest.raises(ConfigurationError):
        CircuitBreaker(BreakerConfig(), clock=clock, store=store)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InternalServerError("x", status_code=500), True),
        (InternalServerError("x", status_code=503), True),
        (OverloadedError("x", status_code=529), True),
        (APIConnectionError("x"), True),
        (APITimeoutError("x"), True),
        (MalformedResponseError("x"), False),  # the server answered: a stricter parser must not open the breaker
        (IncompleteStreamError("x"), True),
        (DeadlineExceededError("x"), False),
        (BadRequestError("x", status_code=400), False),
        (RateLimitError("x", status_code=429), False),
        (CircuitOpenError("x"), False),
        (QueueFullError("x"), False),
        (ConfigurationError("x"), False),
        (asyncio.CancelledError(), False),
        (RuntimeError("x"), False),
    ],
)
def test_is_breaker_failure(error: BaseException, expected: bool) -> None:
    assert is_breaker_failure(error) is expected
