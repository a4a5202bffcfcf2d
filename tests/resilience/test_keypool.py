from __future__ import annotations

import hashlib

import pytest

from infermux.errors import ConfigurationError, KeyPoolExhaustedError, RateLimitError
from infermux.resilience import FakeClock, KeyLease, KeyPool, RetryPolicy, decide

KEYS = ["sk-proj-AAAAaaaa1111bbbb2222", "sk-proj-CCCCcccc3333dddd4444", "sk-proj-EEEEeeee5555ffff6666"]


def labels(pool: KeyPool, n: int) -> list[str]:
    out = []
    for _ in range(n):
        lease = pool.acquire()
        out.append(lease.label)
        pool.release(lease, "success")
    return out


def fp(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:6]


def test_labels_and_round_robin() -> None:
    pool = KeyPool(KEYS, clock=FakeClock())
    expected = [f"key#{i + 1}:{fp(k)}" for i, k in enumerate(KEYS)]
    assert labels(pool, 6) == expected * 2
    assert pool.size == 3


def test_validation() -> None:
    with pytest.raises(ConfigurationError) as ei:
        KeyPool(["sk-secret-1", "sk-secret-1"])
    assert "sk-secret" not in str(ei.value)
    with pytest.raises(ConfigurationError):
        KeyPool(["ok", ""])
    with pytest.raises(ConfigurationError):
        KeyPool("sk-a-single-string")
    with pytest.raises(ConfigurationError):
        KeyPool(KEYS, strategy="random")  # type: ignore[arg-type]


def test_least_loaded() -> None:
    pool = KeyPool(KEYS, strategy="least_loaded", clock=FakeClock())
    a = pool.acquire()
    b = pool.acquire()
    c = pool.acquire()
    assert [a.index, b.index, c.index] == [0, 1, 2]
    pool.release(b, "success")
    d = pool.acquire()  # key#2 is the only one with nothing in flight
    assert d.index == 1
    pool.release(a, "success")
    pool.release(c, "success")
    # now in flight: key#2 only; ties between key#1 and key#3 go in round-robin order (after key#2)
    assert pool.acquire().index == 2
    assert pool.acquire().index == 0


def test_rate_limited_key_cools_down_and_recovers() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS[:2], clock=clock)
    first = pool.acquire()
    pool.release(first, "rate_limited", retry_after=10.0)
    assert [pool.acquire().index for _ in range(3)] == [1, 1, 1]  # leases left open on purpose
    snap = pool.snapshot()
    assert snap[0]["cooling_down_for"] == 10.0 and snap[0]["rate_limited"] == 1
    clock.advance(10.0)
    got = {pool.acquire().index for _ in range(2)}
    assert got == {0, 1}


def test_rate_limit_default_and_cap() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS[:2], clock=clock)
    pool.release(pool.acquire(), "rate_limited")
    pool.release(pool.acquire(), "rate_limited", retry_after=10_000)
    cooling = [s["cooling_down_for"] for s in pool.snapshot()]
    assert cooling == [1.0, 300.0]


def test_all_cooling_still_hands_out_the_key_ready_soonest() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS[:2], clock=clock, name="ep")
    pool.release(pool.acquire(), "rate_limited", retry_after=5.0)
    pool.release(pool.acquire(), "rate_limited", retry_after=2.0)
    clock.advance(0.5)
    assert pool.ready_count() == 0 and pool.usable_count() == 2
    lease = pool.acquire()  # a 429 is about one request: the soonest-ready key still goes, paced by the endpoint
    assert lease.index == 1
    pool.release(lease, "success")


def test_all_quota_exhausted_raises_rate_limit_with_retry_after() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS[:2], clock=clock, name="ep")
    pool.release(pool.acquire(), "rate_limited", retry_after=5.0, exhausted=True)
    pool.release(pool.acquire(), "rate_limited", retry_after=2.0, exhausted=True)
    clock.advance(0.5)
    assert pool.usable_count() == 0
    with pytest.raises(RateLimitError) as ei:
        pool.acquire()
    err = ei.value
    assert err.retry_after == pytest.approx(1.5)
    assert err.retryable and err.endpoint == "ep"
    d = decide(RetryPolicy(jitter="none"), err, retry_number=1, elapsed=0.0)
    assert d.retry and d.delay == pytest.approx(1.5)  # the retry loop waits for the first key
    clock.advance(1.5)
    assert pool.acquire().index == 1


def test_auth_failure_disables_key_and_all_disabled_exhausts() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS[:2], clock=clock, name="ep")
    pool.release(pool.acquire(), "auth_failed", reason="401 Incorrect API key provided: sk-proj-****2222.")
    assert [pool.acquire().index for _ in range(3)] == [1, 1, 1]
    lease = pool.acquire()
    pool.release(lease, "auth_failed", reason="403 forbidden")
    with pytest.raises(KeyPoolExhaustedError) as ei:
        pool.acquire()
    err = ei.value
    assert not err.retryable
    assert "all 2 API keys" in str(err) and "key#1:" in str(err) and "403 forbidden" in str(err)
    assert not decide(RetryPolicy(), err, retry_number=1, elapsed=0).retry
    snap = pool.snapshot()
    assert all(s["disabled"] for s in snap)
    reason = str(snap[0]["disabled_reason"])
    assert "2222" not in reason and "sk-proj" not in reason and "[redacted]" in reason
    assert reason.startswith("401 Incorrect API key provided:")


def test_disabled_and_cooling_mix_raises_rate_limit() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS[:2], clock=clock)
    pool.release(pool.acquire(), "auth_failed")
    pool.release(pool.acquire(), "rate_limited", retry_after=3.0, exhausted=True)
    with pytest.raises(RateLimitError) as ei:
        pool.acquire()
    assert ei.value.retry_after == pytest.approx(3.0)


def test_double_release_is_a_noop_and_foreign_lease_is_refused() -> None:
    pool = KeyPool(KEYS[:1], clock=FakeClock())
    lease = pool.acquire()
    pool.release(lease, "success")
    pool.release(lease, "auth_failed")
    snap = pool.snapshot()[0]
    assert snap["successes"] == 1 and snap["auth_failed"] == 0 and not snap["disabled"] and snap["in_flight"] == 0
    other = KeyPool(KEYS[:1], clock=FakeClock())
    with pytest.raises(ConfigurationError):
        other.release(other.acquire(), "bogus")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        pool.release(other.acquire(), "success")


def test_counters() -> None:
    pool = KeyPool(KEYS[:1], clock=FakeClock())
    for outcome in ("success", "success", "failure", "neutral", "rate_limited"):
        pool.release(pool.acquire(), outcome, retry_after=0.0)
    snap = pool.snapshot()[0]
    assert (snap["requests"], snap["successes"], snap["failures"], snap["rate_limited"]) == (5, 2, 1, 1)
    assert snap["in_flight"] == 0


def test_keyless_pool() -> None:
    pool = KeyPool([], clock=FakeClock())
    lease = pool.acquire()
    assert lease.key is None and pool.size == 0
    pool.release(lease, "auth_failed")
    pool.release(pool.acquire(), "rate_limited", retry_after=60)
    assert pool.acquire().key is None  # never cooled or disabled
    assert pool.snapshot()[0]["requests"] == 3


def test_key_text_never_leaks() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS, clock=clock, name="ep")
    lease = pool.acquire()
    texts = [repr(lease), str(lease), repr(pool), str(pool), str(pool.snapshot())]
    for i in range(3):
        pool.release(pool.acquire() if i else lease, "auth_failed", reason=f"bad key {KEYS[i]}")
    with pytest.raises(KeyPoolExhaustedError) as ei:
        pool.acquire()
    texts += [str(ei.value), repr(ei.value), str(pool.snapshot()), str(ei.value.context())]
    blob = "\n".join(texts)
    for key in KEYS:
        assert key not in blob
        assert key[-8:] not in blob
    assert lease.key == KEYS[0]  # the lease still carries it for the provider
    assert isinstance(lease, KeyLease)
