from __future__ import annotations

import pytest

from infermux.errors import ConfigurationError
from infermux.resilience import FakeClock, MemoryStore, StateStore


def test_memory_store_get_set_ttl_incr() -> None:
    clock = FakeClock()
    s = MemoryStore(clock=clock)
    assert isinstance(s, StateStore)
    assert s.get("a") is None
    s.set("a", {"x": 1}, ttl=5.0)
    s.set("b", "forever")
    clock.advance(4.9)
    assert s.get("a") == {"x": 1}
    clock.advance(0.1)
    assert s.get("a") is None
    assert s.get("b") == "forever"
    assert s.incr("n") == 1
    assert s.incr("n", 5) == 6
    s.set("t", 10, ttl=1.0)
    assert s.incr("t") == 11
    clock.advance(1.0)
    assert s.incr("t") == 1  # expired: starts again from 0
    with pytest.raises(ConfigurationError):
        s.incr("b")
    with pytest.raises(ConfigurationError):
        s.set("c", 1, ttl=-1)
    s.delete("b")
    assert s.get("b") is None
    assert len(s) == 2  # "n" and "t"


def test_fake_clock() -> None:
    import asyncio

    clock = FakeClock(start=10.0)
    clock.advance(2.5)
    assert clock.now() == 12.5
    with pytest.raises(ConfigurationError):
        clock.advance(-1)
    asyncio.run(clock.sleep(3.0))
    assert clock.now() == 15.5 and clock.sleeps == [3.0]
