from __future__ import annotations

import email.utils
from itertools import cycle

import pytest

from infermux.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    DeadlineExceededError,
    InternalServerError,
    KeyPoolExhaustedError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    UnprocessableEntityError,
    status_error_class,
)
from infermux.resilience import (
    NO_RETRY,
    RetryDecision,
    RetryPolicy,
    backoff_delay,
    decide,
    is_retryable,
    parse_retry_after,
)


def status_error(status: int, **kw: object) -> Exception:
    return status_error_class(status)(f"HTTP {status}", status_code=status, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ policy validation


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"initial_delay": -0.1},
        {"factor": 0.5},
        {"max_delay": float("inf")},
        {"jitter": "random"},
        {"deadline": 0},
        {"deadline": -5},
        {"retry_statuses": frozenset({99})},
        {"retry_statuses": 5},
        {"max_retry_after": float("nan")},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_coerces_statuses_to_frozenset() -> None:
    p = RetryPolicy(retry_statuses={500, 503})  # type: ignore[arg-type]
    assert p.retry_statuses == frozenset({500, 503})
    assert isinstance(p.retry_statuses, frozenset)


# ------------------------------------------------------------------ backoff


def test_backoff_schedule_without_jitter() -> None:
    p = RetryPolicy(initial_delay=0.5, factor=2.0, max_delay=5.0, jitter="none")
    assert [backoff_delay(p, n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_huge_retry_number_is_capped_not_overflowing() -> None:
    p = RetryPolicy(initial_delay=1.0, factor=10.0, max_delay=60.0, jitter="none")
    assert backoff_delay(p, 10_000) == 60.0


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5, 0.999, 1.0])
@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_full_and_equal_jitter_bounds(r: float, n: int) -> None:
    full = RetryPolicy(initial_delay=1.0, factor=2.0, max_delay=30.0, jitter="full")
    equal = RetryPolicy(initial_delay=1.0, factor=2.0, max_delay=30.0, jitter="equal")
    base = min(30.0, 2.0 ** (n - 1))
    assert backoff_delay(full, n, rand=lambda: r) == pytest.approx(r * base)
    assert 0 <= backoff_delay(full, n, rand=lambda: r) <= base
    assert backoff_delay(equal, n, rand=lambda: r) == pytest.approx(base / 2 + r * base / 2)
    assert base / 2 <= backoff_delay(equal, n, rand=lambda: r) <= base


def test_out_of_range_rand_is_clamped() -> None:
    p = RetryPolicy(initial_delay=2.0, jitter="full")
    assert backoff_delay(p, 1, rand=lambda: 7.0) == 2.0
    assert backoff_delay(p, 1, rand=lambda: -1.0) == 0.0


# ------------------------------------------------------------------ retryability


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_no_retry_on_caller_errors(status: int) -> None:
    err = status_error(status)
    assert not is_retryable(RetryPolicy(), err)
    d = decide(RetryPolicy(), err, retry_number=1, elapsed=0.0)
    assert d == RetryDecision(False, 0.0, d.reason) and "not retryable" in d.reason


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retry_on_transient_statuses(status: int) -> None:
    assert is_retryable(RetryPolicy(), status_error(status))


def test_status_outside_policy_set_is_not_retried() -> None:
    p = RetryPolicy(retry_statuses=frozenset({503}))
    assert not is_retryable(p, status_error(500))
    assert is_retryable(p, status_error(503))


def test_user_may_add_status_to_retry_set() -> None:
    p = RetryPolicy(retry_statuses=frozenset({400}))
    assert is_retryable(p, status_error(400))


def test_should_retry_header_overrides_status() -> None:
    no = status_error(500)
    no.should_retry_header = False  # type: ignore[attr-defined]
    assert not is_retryable(RetryPolicy(), no)
    yes = status_error(400)
    yes.should_retry_header = True  # type: ignore[attr-defined]
    assert is_retryable(RetryPolicy(), yes)
    none = status_error(500)
    none.should_retry_header = None  # type: ignore[attr-defined]
    assert is_retryable(RetryPolicy(), none)


def test_explicit_instance_retryable_wins_over_status_set() -> None:
    assert not is_retryable(RetryPolicy(), status_error(500, retryable=False))
    assert is_retryable(RetryPolicy(), status_error(400, retryable=True))


def test_other_errors_use_their_retryable_flag() -> None:
    p = RetryPolicy()
    assert is_retryable(p, APIConnectionError("reset"))
    assert is_retryable(p, APITimeoutError("read timeout"))
    assert is_retryable(p, MalformedResponseError("html"))
    assert is_retryable(p, CircuitOpenError("open"))
    assert is_retryable(p, QueueFullError("full"))
    assert not is_retryable(p, DeadlineExceededError("deadline"))
    assert not is_retryable(p, DeadlineExceededError("deadline", retryable=True))
    assert not is_retryable(p, ConfigurationError("bad"))
    assert not is_retryable(p, KeyPoolExhaustedError("no keys", retryable=True))
    assert not is_retryable(p, ValueError("x"))
    assert not is_retryable(p, KeyError("x"))


def test_in_band_overloaded_without_status_is_retryable() -> None:
    assert is_retryable(RetryPolicy(), OverloadedError("overloaded"))


# ------------------------------------------------------------------ decide


def test_decide_uses_backoff_when_no_retry_after() -> None:
    p = RetryPolicy(initial_delay=1.0, factor=3.0, jitter="none")
    delays = [decide(p, status_error(503), retry_number=n, elapsed=0.0).delay for n in (1, 2, 3)]
    assert delays == [1.0, 3.0, 9.0]


def test_max_retries() -> None:
    p = RetryPolicy(max_retries=2, jitter="none")
    err = status_error(500)
    assert decide(p, err, retry_number=2, elapsed=0).retry
    d = decide(p, err, retry_number=3, elapsed=0)
    assert not d.retry and "max_retries" in d.reason
    assert not decide(NO_RETRY, err, retry_number=1, elapsed=0).retry


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ],
)
def test_retry_after_is_honoured_exactly_without_jitter(headers: dict[str, str], expected: float) -> None:
    p = RetryPolicy(jitter="none", initial_delay=30.0)
    err = RateLimitError("slow down", status_code=429, retry_after=parse_retry_after(headers))
    d = decide(p, err, retry_number=1, elapsed=0.0)
    assert d.retry and d.delay == pytest.approx(expected)


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 20, usegmt=True)
    ra = parse_retry_after({"retry-after": header}, now=now)
    assert ra == pytest.approx(20.0)
    d = decide(RetryPolicy(jitter="none"), status_error(503, retry_after=ra), retry_number=1, elapsed=0)
    assert d.retry and d.delay == pytest.approx(20.0)


@pytest.mark.parametrize("r", [0.0, 0.5, 1.0])
def test_retry_after_jitter_never_below_server_value_and_at_most_ten_percent(r: float) -> None:
    err = RateLimitError("slow", status_code=429, retry_after=10.0)
    d = decide(RetryPolicy(jitter="full"), err, retry_number=1, elapsed=0, rand=lambda: r)
    assert 10.0 <= d.delay <= 11.0
    assert d.delay == pytest.approx(10.0 * (1 + 0.1 * r))


def test_retry_after_over_cap_gives_up() -> None:
    err = RateLimitError("slow", status_code=429, retry_after=3600.0)
    d = decide(RetryPolicy(max_retry_after=120.0), err, retry_number=1, elapsed=0)
    assert not d.retry and "max_retry_after" in d.reason


def test_retry_after_ignored_when_policy_says_so() -> None:
    err = RateLimitError("slow", status_code=429, retry_after=3600.0)
    p = RetryPolicy(respect_retry_after=False, jitter="none", initial_delay=2.0)
    d = decide(p, err, retry_number=1, elapsed=0)
    assert d.retry and d.delay == 2.0


def test_negative_retry_after_clamps_to_zero() -> None:
    err = RateLimitError("slow", status_code=429, retry_after=-3.0)
    d = decide(RetryPolicy(), err, retry_number=1, elapsed=0)
    assert d.retry and d.delay == 0.0


def test_deadline() -> None:
    p = RetryPolicy(deadline=10.0, jitter="none", initial_delay=4.0)
    err = status_error(502)
    assert decide(p, err, retry_number=1, elapsed=5.9).retry
    d = decide(p, err, retry_number=1, elapsed=6.0)
    assert not d.retry and d.reason.startswith("deadline")
    ra = RateLimitError("slow", status_code=429, retry_after=8.0)
    assert not decide(p, ra, retry_number=1, elapsed=3.0).retry
    assert decide(RetryPolicy(deadline=None, jitter="none"), err, retry_number=1, elapsed=1e9).retry


def test_full_schedule_simulation_respects_max_retries_and_deadline() -> None:
    """Drive decide() like the engine does and check the total wait never crosses the deadline."""
    p = RetryPolicy(max_retries=50, initial_delay=1.0, factor=2.0, max_delay=8.0, deadline=40.0, jitter="full")
    rands = cycle([0.9, 0.1, 0.5, 1.0, 0.0])
    elapsed, retries = 0.0, 0
    while True:
        d = decide(
            p,
            InternalServerError("boom", status_code=500),
            retry_number=retries + 1,
            elapsed=elapsed,
            rand=lambda: next(rands),
        )
        if not d.retry:
            assert d.reason.startswith("deadline")
            break
        assert 0 <= d.delay <= 8.0
        elapsed += d.delay + 0.5  # the attempt itself takes 0.5s
        retries += 1
    assert elapsed - 0.5 < 40.0
    assert 0 < retries < 50


def test_cancelled_error_is_not_retryable() -> None:
    import asyncio

    assert not is_retryable(RetryPolicy(), asyncio.CancelledError())
    assert not decide(RetryPolicy(), asyncio.CancelledError(), retry_number=1, elapsed=0).retry


@pytest.mark.parametrize(
    "cls", [BadRequestError, AuthenticationError, PermissionDeniedError, NotFoundError, UnprocessableEntityError]
)
def test_caller_error_classes_without_status_are_not_retried(cls: type[Exception]) -> None:
    assert not is_retryable(RetryPolicy(), cls("x"))
