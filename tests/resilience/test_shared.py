"""Breakers, key pools and health verdicts shared through a state store (one MemoryStore standing for the
shared view; the Redis store keeps the same view in step between processes: tests/test_shared_state.py)."""

from __future__ import annotations

import pytest

from infermux.errors import ConfigurationError, RateLimitError
from infermux.resilience import BreakerConfig, BreakerState, CircuitBreaker, FakeClock, KeyPool, MemoryStore
from infermux.resilience.health import EndpointHealth, HealthConfig, HealthState

OPEN, CLOSED, HALF_OPEN = BreakerState.OPEN, BreakerState.CLOSED, BreakerState.HALF_OPEN


def _pair(clock: FakeClock, store: MemoryStore) -> tuple[CircuitBreaker, CircuitBreaker]:
    cfg = BreakerConfig(consecutive_failures=2, open_seconds=10.0)
    return (
        CircuitBreaker(cfg, clock=clock, store=store, key="breaker:ep"),
        CircuitBreaker(cfg, clock=clock, store=store, key="breaker:ep"),
    )


def test_memory_store_extend_keeps_the_later_expiry_and_version_moves() -> None:
    clock = FakeClock()
    s = MemoryStore(clock=clock)
    v0 = s.version
    s.extend("k", 1, 10.0)
    assert s.ttl("k") == 10.0 and s.version == v0 + 1
    s.extend("k", 2, 5.0)  # shorter: ignored
    assert s.get("k") == 1 and s.ttl("k") == 10.0 and s.version == v0 + 1
    clock.advance(6.0)
    s.extend("k", 3, 20.0)
    assert s.get("k") == 3 and s.ttl("k") == 20.0
    s.set("p", "x")
    s.extend("p", "y", 1.0)  # a record without expiry is never shortened
    assert s.get("p") == "x" and s.ttl("p") is None
    with pytest.raises(ConfigurationError):
        s.extend("k", 1, -1.0)


def test_breaker_opened_by_one_is_seen_by_the_other_and_closed_by_its_probe() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    a, b = _pair(clock, store)
    assert b.state is CLOSED
    clock.advance(4.0)
    assert a.acquire() is not None and a.acquire() is not None
    a.record_failure()
    a.record_failure()
    assert a.state is OPEN
    clock.advance(3.0)
    assert b.state is OPEN and b.acquire() is None  # b sends nothing into the outage
    assert b.retry_at == pytest.approx(clock.now() + 7.0)  # the open period a started, not a new one
    assert b.adopted == 1 and b.snapshot()["trips"] == 0
    clock.advance(7.0)
    assert a.state is HALF_OPEN
    assert b.state is OPEN and b.acquire() is None  # a found the outage: a probes, b waits for its verdict
    probe = a.acquire()
    assert probe is not None and probe.probe
    a.record_success(probe)
    assert a.state is CLOSED
    assert b.state is CLOSED and b.adopted == 2  # a's good probe closes b too


def test_when_the_finder_sends_no_verdict_the_other_probes_after_the_grace() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    a, b = _pair(clock, store)
    a.record_failure(a.acquire())
    a.record_failure(a.acquire())
    assert b.state is OPEN
    clock.advance(10.0)  # a's open period is over, but a (gone) never probes
    assert b.state is OPEN and b.retry_at == pytest.approx(clock.now() + b.shared_probe_grace)
    clock.advance(b.shared_probe_grace)
    assert b.state is HALF_OPEN and b.acquire() is not None


def test_a_failed_probe_elsewhere_reopens_a_half_open_breaker() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    a, b = _pair(clock, store)
    a.record_failure(a.acquire())
    a.record_failure(a.acquire())
    assert b.state is OPEN
    clock.advance(10.0)
    assert b.state is OPEN  # waiting for a's probe
    a.record_failure(a.acquire())  # a's probe fails: the outage goes on
    assert a.state is OPEN and b.state is OPEN and b.adopted == 2
    clock.advance(10.0 + b.shared_probe_grace - 0.1)
    assert b.state is OPEN  # a new open period from a's reopening, and a grace again
    clock.advance(0.1)
    assert b.state is HALF_OPEN  # a did not probe this time: b does
    # a half-open breaker adopts an OPEN published meanwhile (its probe permits go stale)
    b2 = CircuitBreaker(BreakerConfig(consecutive_failures=2, open_seconds=10.0), clock=clock)
    b2.bind_store(store, "breaker:ep")
    a.state  # noqa: B018 - a is HALF_OPEN too by now
    a.record_failure(a.acquire())
    assert b.state is OPEN and b2.state is OPEN


def test_own_records_are_not_adopted_twice() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    a, b = _pair(clock, store)
    a.record_failure(a.acquire())
    a.record_failure(a.acquire())
    assert b.state is OPEN
    store.set("unrelated", 1)  # the version moves; the breaker record is unchanged
    assert b.state is OPEN and b.adopted == 1 and a.adopted == 0


def test_key_blocked_by_a_quota_in_one_pool_is_avoided_by_the_other() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    keys = ["sk-aaaa-1111", "sk-bbbb-2222"]
    pa, pb = KeyPool(keys, clock=clock), KeyPool(keys, clock=clock)
    pa.bind_store(store, "keys:ep")
    pb.bind_store(store, "keys:ep")
    lease = pa.acquire()
    assert lease.index == 0
    pa.release(lease, "rate_limited", retry_after=30.0, exhausted=True)
    for _ in range(4):  # round robin would start with key #1: b leases only key #2
        got = pb.acquire()
        assert got.index == 1
        pb.release(got, "success")
    snap = pb.snapshot()[0]
    assert snap["blocked_for"] == pytest.approx(30.0) and snap["requests"] == 0
    second = pb.acquire()
    pb.release(second, "rate_limited", retry_after=5.0, exhausted=True)  # b blocks key #2 for 5 s
    assert pa.ready_at() == pytest.approx(clock.now() + 5.0)  # a: both blocked, #2 first
    with pytest.raises(RateLimitError):
        pa.acquire()
    blocked_a = store.ttl(f"keys:ep:{pa.snapshot()[0]['label']}:block")
    assert blocked_a == pytest.approx(30.0)  # never shortened by a later, shorter block
    assert not any(k in repr(store._data) for k in keys)  # labels only, never key text


def test_key_disabled_in_one_pool_is_disabled_in_the_other() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    keys = ["sk-aaaa-1111", "sk-bbbb-2222"]
    pa, pb = KeyPool(keys, clock=clock), KeyPool(keys, clock=clock)
    pa.bind_store(store, "keys:ep")
    pb.bind_store(store, "keys:ep")
    lease = pa.acquire()
    pa.release(lease, "auth_failed", reason="401 invalid key sk-aaaa-1111")
    assert pb.usable_count() == 1
    snap = pb.snapshot()[0]
    assert snap["disabled"] and "another process" in snap["disabled_reason"]
    assert "sk-aaaa" not in snap["disabled_reason"]


def test_health_down_found_by_one_process_is_seen_by_the_other() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    cfg = HealthConfig(interval=10.0, timeout=2.0, failures=2)
    ha, hb = EndpointHealth(cfg, clock), EndpointHealth(HealthConfig(probe=False), clock)
    ha.bind_store(store, "health:ep")
    hb.bind_store(store, "health:ep")
    ha.record_probe(False, error="HTTP 503")
    assert hb.verdict(breaker_open=False, stalled_for=0).state is HealthState.UP
    ha.record_probe(False, error="HTTP 503")
    v = hb.verdict(breaker_open=False, stalled_for=0)
    assert v.state is HealthState.DOWN and v.reason is not None and "HTTP 503" in v.reason
    assert ha.verdict(breaker_open=False, stalled_for=0).reason == "2 health probes failed (last: HTTP 503)"
    ha.record_probe(True)
    assert hb.verdict(breaker_open=False, stalled_for=0).state is HealthState.UP
    # a prober that stops renewing its verdict does not keep the endpoint down forever
    ha.record_probe(False, error="HTTP 503")
    ha.record_probe(False, error="HTTP 503")
    assert hb.verdict(breaker_open=False, stalled_for=0).state is HealthState.DOWN
    clock.advance(3 * 10.0 + 2.0)
    assert hb.verdict(breaker_open=False, stalled_for=0).state is HealthState.UP


def test_redis_view_without_redis_queues_coalesced_writes_and_lets_local_writes_win() -> None:
    from infermux.shared_state import RedisStateStore

    clock = FakeClock()
    s = RedisStateStore("redis://127.0.0.1:9/0", prefix="p", clock=clock, max_pending=2)
    s.set("a", {"x": 1}, ttl=5.0)
    s.set("a", {"x": 2}, ttl=5.0)  # coalesced: one write of the latest value
    assert s.get("a") == {"x": 2} and list(s._pending) == ["a"]
    s.extend("blk", 1, 10.0)
    s.extend("blk", 1, 3.0)  # shorter: the view does not change
    assert s.ttl("blk") == 10.0
    s.incr("n")  # a third key: the oldest queued write is dropped (it stays local)
    assert list(s._pending) == ["blk", "n"] and s.counters["dropped"] == 1
    v = s.version
    assert not s._apply("blk", '"remote"', 60_000)  # a queued local write wins over what Redis says
    assert s._apply("other", '{"y": 1}', 2_000) and s.get("other") == {"y": 1} and s.ttl("other") == 2.0
    assert not s._apply("other", '{"y": 1}', 1_990)  # the same record (round-trip jitter): no change
    assert s._apply("other", None, -2) and s.get("other") is None and s.version > v
    with pytest.raises(ConfigurationError):
        RedisStateStore("redis://x", prefix="bad*prefix")
