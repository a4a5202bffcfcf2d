"""Hedged requests (infermux.hedging, infermux._hedge): the budget, the delay from the observed time to first
byte, and the race for chat, streams and embeddings. Everything on a FakeClock with MockTransport endpoints:
no sleeping, no network (the loopback tests with real sockets are in test_hedging_e2e.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import infermux
from infermux.config import load_fleet
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import BadRequestError, ConfigurationError
from infermux.fleet import GroupConfig, group_from_dict
from infermux.hedging import DelayTracker, HedgeBudget, HedgeConfig, hedge_from_dict
from infermux.resilience.breaker import BreakerConfig
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport

pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("error::ResourceWarning")]

JSON = {"content-type": "application/json"}
NO_RETRY = RetryPolicy(max_retries=0)


class GatedClock(FakeClock):
    """A FakeClock whose sleeps end only when the test opens the gate (then time advances by the delay)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self.gate.wait()
        self.advance(max(0.0, seconds))


def completion(text: str) -> MockResponse:
    body = {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    return MockResponse(200, JSON, json.dumps(body).encode())


def answer(name: str, r: HTTPRequest) -> MockResponse:
    if r.url.endswith("/embeddings"):
        body = {"data": [{"index": 0, "embedding": [0.5, 0.5]}], "model": name, "usage": {"prompt_tokens": 1}}
        return MockResponse(200, JSON, json.dumps(body).encode())
    if json.loads(r.body or b"{}").get("stream"):
        chunks = [{"choices": [{"index": 0, "delta": {"content": name}, "finish_reason": "stop"}]}]
        data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return MockResponse(200, {"content-type": "text/event-stream"}, data.encode())
    return completion(name)


def status(code: int) -> MockResponse:
    body = {"error": {"message": "x", "type": "invalid_request_error" if code < 500 else "server_error"}}
    return MockResponse(code, JSON, json.dumps(body).encode())


class Upstream:
    """A mock upstream that answers at once, or stalls until ``release`` is set (then answers)."""

    def __init__(self, name: str, *, stall: bool = False, fail: int | None = None) -> None:
        self.name = name
        self.stall = stall
        self.fail = fail
        self.release = asyncio.Event()
        self.started = 0

    async def __call__(self, r: HTTPRequest) -> MockResponse:
        self.started += 1
        if self.stall:
            await self.release.wait()
        return status(self.fail) if self.fail else answer(self.name, r)


def ep(name: str, clock: FakeClock, handler: Any, **kw: Any) -> Endpoint:
    kw.setdefault("retry", NO_RETRY)
    config = EndpointConfig(name=name, provider="openai", base_url=f"http://{name}/v1", model=f"m-{name}", **kw)
    return Endpoint(config, transport=MockTransport(handler), clock=clock)


def client(eps: list[Endpoint], *groups: GroupConfig) -> infermux.AsyncClient:
    return infermux.AsyncClient(eps, groups=list(groups), trust_env=False)


async def until(cond: Any, what: str) -> None:
    for _ in range(1000):  # loop turns, not time: everything here runs on the FakeClock
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


# ---------------------------------------------------------------------- budget and delay (pure)


def test_budget_allows_at_most_the_ratio_of_calls_plus_the_burst() -> None:
    b = HedgeBudget(0.05, 2.0)
    spent = 0
    for _ in range(1000):
        b.earn()
        spent += b.spend()
    # the burst goes to the first two calls (the first call's earning is capped: the bucket was full), then one
    # hedge per 20 calls: 2 + floor(999 * 0.05) = 51 <= 1000 * 0.05 + 2
    assert spent == 51
    idle = HedgeBudget(0.05, 2.0)
    for _ in range(1000):
        idle.earn()
    assert idle.tokens == 2.0  # never more than the burst is kept
    assert [idle.spend(), idle.spend(), idle.spend()] == [True, True, False]
    assert [idle.earn() or idle.spend() for _ in range(20)].count(True) == 1  # one hedge per 20 calls


def test_delay_is_fixed_or_the_observed_p95_with_a_floor_until_samples_age_out() -> None:
    clock = FakeClock()
    assert DelayTracker(HedgeConfig(delay=0.2), clock).delay() == 0.2
    cfg = HedgeConfig(initial_delay=0.7, min_samples=20, min_delay=0.05, window=100, window_s=60)
    t = DelayTracker(cfg, clock)
    for i in range(19):
        t.observe(0.1 + i / 1000)
    assert t.quantile() is None and t.delay() == 0.7  # too few samples: the fallback delay
    t.observe(2.0)  # 20 samples: 19 fast, 1 stall
    assert t.quantile() == pytest.approx(0.118)  # nearest rank 19 of 20 (the stall is the top 5 %)
    for _ in range(100):
        t.observe(0.001)
    assert t.count == 100 and t.delay() == 0.05  # p95 is 1 ms: the floor applies
    clock.advance(61.0)
    assert t.count == 0 and t.delay() == 0.7  # samples older than window_s are forgotten
    for _ in range(20):
        t.observe(0.3)
    for _ in range(200):
        t.observe(0.4)
    assert t.count == 100 and t.delay() == 0.4  # only the last `window` samples count


def test_config_is_validated_and_read_from_plain_data(tmp_path: Any) -> None:
    assert hedge_from_dict(True) == HedgeConfig() and hedge_from_dict(False).enabled is False
    g = group_from_dict({"name": "g", "endpoints": ["a", "b"], "hedge": {"delay": 0.1, "budget": 0.02}})
    assert g.hedge == HedgeConfig(delay=0.1, budget=0.02)
    for bad, what in (
        ({"budget": 1.5}, "budget"),
        ({"delay": -1}, "delay"),
        ({"burst": 0.5}, "burst"),
        ({"percentile": 0}, "percentile"),
        ({"min_samples": 10, "window": 5}, "min_samples"),
        ({"delay": "fast"}, "delay"),
        ({"dealy": 1}, "unknown setting 'dealy'"),
    ):
        with pytest.raises(ConfigurationError, match=what) as info:
            GroupConfig("g", ("a", "b"), hedge=bad)  # type: ignore[arg-type]
        assert "group 'g'" in str(info.value)
    path = tmp_path / "fleet.toml"
    path.write_text(
        '[[endpoints]]\nname = "a"\nprovider = "openai"\nbase_url = "http://a/v1"\nmodel = "m"\n'
        '[[endpoints]]\nname = "b"\nprovider = "openai"\nbase_url = "http://b/v1"\nmodel = "m"\n'
        '[[groups]]\nname = "g"\nendpoints = ["a", "b"]\n[groups.hedge]\npercentile = 99\nbudget = 0.1\n'
    )
    fleet = load_fleet(path)
    assert fleet.groups[0].hedge == HedgeConfig(percentile=99.0, budget=0.1)
    clock = FakeClock()
    with pytest.raises(ConfigurationError, match="'hedging' is reserved"):  # stats() reports hedging under that key
        client(
            [ep("hedging", clock, Upstream("a")), ep("b", clock, Upstream("b"))],
            GroupConfig("g", ("hedging", "b"), hedge=True),
        )


# ---------------------------------------------------------------------- the race


async def test_the_hedge_wins_the_loser_is_cancelled_and_is_no_breaker_failure() -> None:
    clock = FakeClock()
    a, b = Upstream("a", stall=True), Upstream("b")
    eps = [ep("a", clock, a, breaker=BreakerConfig(consecutive_failures=1)), ep("b", clock, b)]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.25))) as c:
        r = await c.chat("hi", model="g")
        assert r.text == "b" and r.endpoint == "b"
        assert [(h.endpoint, h.outcome) for h in r.route] == [("a", "hedge_lost"), ("b", "ok")]
        assert clock.sleeps == [0.25]  # the hedge waited exactly the configured delay
        assert (a.started, b.started) == (1, 1)
        sa = c.stats()["a"]
        assert sa["cancelled"] == 1 and sa["failures_total"] == 0 and sa["attempt_failures"] == {}
        assert eps[0].breaker.state.value == "closed"  # one failure would have opened it
        assert eps[0].gate.in_flight == 0  # the loser's slot was given back
        h = c.stats()["hedging"]["g"]
        assert (h["calls"], h["fired"], h["won"], h["skipped_budget"], h["samples"]) == (1, 1, 1, 0, 1)


async def test_no_hedge_when_the_first_endpoint_answers_within_the_delay() -> None:
    clock = GatedClock()  # the delay never passes
    a, b = Upstream("a"), Upstream("b")
    eps = [ep("a", clock, a), ep("b", clock, b)]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=HedgeConfig(initial_delay=0.4))) as c:
        r = await c.chat("hi", model="g")
        assert r.endpoint == "a" and [h.outcome for h in r.route] == ["ok"]
        assert clock.sleeps == [0.4] and b.started == 0
        h = c.stats()["hedging"]["g"]
        assert (h["calls"], h["fired"], h["won"], h["samples"]) == (1, 0, 0, 1)


async def test_the_first_endpoint_wins_when_it_answers_after_the_hedge_was_sent() -> None:
    clock = FakeClock()
    a, b = Upstream("a", stall=True), Upstream("b", stall=True)
    eps = [ep("a", clock, a), ep("b", clock, b)]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=True)) as c:
        call = asyncio.ensure_future(c.chat("hi", model="g"))
        await until(lambda: b.started == 1, "the hedge was sent")
        a.release.set()
        r = await call
        assert r.endpoint == "a" and [(h.endpoint, h.outcome) for h in r.route] == [("b", "hedge_lost"), ("a", "ok")]
        assert c.stats()["b"]["cancelled"] == 1
        h = c.stats()["hedging"]["g"]
        assert (h["fired"], h["won"]) == (1, 0)


async def test_no_hedge_while_the_other_endpoints_cannot_take_it_now() -> None:
    clock = FakeClock()
    a, b = Upstream("a", stall=True), Upstream("b", fail=503)
    eps = [ep("a", clock, a), ep("b", clock, b, breaker=BreakerConfig(consecutive_failures=1))]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.1))) as c:
        with pytest.raises(infermux.InfermuxError):
            await c.chat("hi", endpoint="b")
        assert eps[1].breaker.state.value == "open"
        call = asyncio.ensure_future(c.chat("hi", model="g"))
        await until(lambda: c.stats()["hedging"]["g"]["skipped_unavailable"] == 1, "the hedge was skipped")
        a.release.set()
        r = await call
        assert r.endpoint == "a" and b.started == 1  # b got nothing more
        h = c.stats()["hedging"]["g"]
        assert (h["fired"], h["budget_tokens"]) == (0, 2.0)  # no budget spent on a skipped hedge


async def test_the_budget_stops_hedges_and_counts_the_skips() -> None:
    clock = FakeClock()
    a, b = Upstream("a", stall=True), Upstream("b")
    eps = [ep("a", clock, a), ep("b", clock, b)]
    cfg = HedgeConfig(delay=0.1, budget=0.0, burst=1.0)
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=cfg)) as c:
        assert (await c.chat("hi", model="g")).endpoint == "b"  # the one token of the burst
        call = asyncio.ensure_future(c.chat("hi", model="g"))
        await until(lambda: c.stats()["hedging"]["g"]["skipped_budget"] == 1, "the hedge was refused")
        a.release.set()
        assert (await call).endpoint == "a"
        h = c.stats()["hedging"]["g"]
        assert (h["calls"], h["fired"], h["won"], h["skipped_budget"]) == (2, 1, 1, 1)
        assert b.started == 1


async def test_per_call_opt_out_fixed_delay_and_opt_in_outside_a_configured_group() -> None:
    clock = FakeClock()
    a, b = Upstream("a", stall=True), Upstream("b")
    eps = [ep("a", clock, a), ep("b", clock, b)]
    groups = (GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.1)), GroupConfig("p", ("a", "b")))
    async with client(eps, *groups) as c:
        assert (await c.chat("hi", model="g", hedge=0.03)).endpoint == "b"
        assert clock.sleeps == [0.03]
        assert (await c.chat("hi", model="p", hedge=True)).endpoint == "b"  # defaults: initial_delay 0.5
        assert clock.sleeps == [0.03, 0.5]
        assert (await c.chat("hi", endpoints=["a", "b"], hedge=True)).endpoint == "b"
        assert set(c.stats()["hedging"]) == {"g", "p", "endpoints:a,b"}
        call = asyncio.ensure_future(c.chat("hi", model="g", hedge=False))
        await until(lambda: a.started == 4, "the call reached a")
        for _ in range(50):
            await asyncio.sleep(0)
        assert b.started == 3 and not call.done()  # no hedge for this call
        a.release.set()
        assert (await call).endpoint == "a"
        assert c.stats()["hedging"]["g"]["calls"] == 1  # the opted-out call is not counted
        with pytest.raises(ConfigurationError, match="delay"):
            await c.chat("hi", model="g", hedge=-1.0)


async def test_when_both_legs_fail_the_router_goes_on_with_the_rest() -> None:
    clock = FakeClock()
    a = Upstream("a", stall=True, fail=503)

    async def b(r: HTTPRequest) -> MockResponse:
        a.release.set()  # a fails once the hedge failed too
        return status(502)

    eps = [ep("a", clock, a), ep("b", clock, b), ep("c", clock, Upstream("c"))]
    async with client(eps, GroupConfig("g", ("a", "b", "c"), hedge=HedgeConfig(delay=0.1))) as c:
        r = await c.chat("hi", model="g")
        assert r.endpoint == "c"
        hops = [(h.endpoint, h.outcome) for h in r.route]
        assert sorted(hops[:2]) == [("a", "InternalServerError"), ("b", "InternalServerError")]
        assert hops[2:] == [("c", "ok")]  # b is not tried twice


async def test_an_invalid_request_ends_the_race_and_the_other_leg() -> None:
    clock = FakeClock()
    a = Upstream("a", stall=True, fail=400)
    b = Upstream("b", stall=True)

    async def slow_b(r: HTTPRequest) -> MockResponse:
        a.release.set()
        return await b(r)

    eps = [ep("a", clock, a), ep("b", clock, slow_b)]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.1))) as c:
        with pytest.raises(BadRequestError) as info:
            await c.chat("hi", model="g")
        assert [(h.endpoint, h.outcome) for h in info.value.route] == [("a", "BadRequestError"), ("b", "hedge_lost")]
        assert c.stats()["b"]["cancelled"] == 1 and eps[1].gate.in_flight == 0


async def test_a_stream_is_hedged_until_its_first_content_and_the_loser_closed() -> None:
    clock = FakeClock()
    a, b = Upstream("a", stall=True), Upstream("b")
    eps = [ep("a", clock, a), ep("b", clock, b)]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.2))) as c:
        async with c.stream("hi", model="g") as s:
            text = [t async for t in s.text()]
        assert text == ["b"] and s.endpoint == "b"
        assert [(h.endpoint, h.outcome) for h in s.route] == [("a", "hedge_lost"), ("b", "ok")]
        assert c.stats()["a"]["cancelled"] == 1 and eps[0].gate.in_flight == 0
        assert c.stats()["hedging"]["g"]["won"] == 1
        # both answer: the first content wins, the other stream is closed (cancelled at its endpoint)
        a.stall = False
        async with c.stream("hi", model="g") as s:
            assert [t async for t in s.text()] == ["a"]
        assert c.stats()["b"]["cancelled"] == 0 and c.stats()["b"]["successes"] == 1


async def test_embeddings_are_hedged_too() -> None:
    clock = FakeClock()
    a, b = Upstream("a", stall=True), Upstream("b")
    eps = [ep("a", clock, a), ep("b", clock, b)]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.2))) as c:
        r = await c.embed("hi", model="g")
        assert r.endpoint == "b" and r.vectors == ((0.5, 0.5),)
        assert [(h.endpoint, h.outcome) for h in r.route] == [("a", "hedge_lost"), ("b", "ok")]


async def test_prometheus_exports_the_hedge_counters() -> None:
    pytest.importorskip("prometheus_client")
    from infermux.metrics import exposition

    clock = FakeClock()
    eps = [ep("a", clock, Upstream("a", stall=True)), ep("b", clock, Upstream("b"))]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.2))) as c:
        await c.chat("hi", model="g")
        text = exposition(c).decode()
    for line in (
        'infermux_hedges_total{group="g",outcome="fired"} 1.0',
        'infermux_hedges_total{group="g",outcome="won"} 1.0',
        'infermux_hedges_total{group="g",outcome="skipped_budget"} 0.0',
        'infermux_hedge_calls_total{group="g"} 1.0',
        'infermux_hedge_delay_seconds{group="g"} 0.2',
    ):
        assert line in text


async def test_cancelling_the_call_cancels_both_legs() -> None:
    clock = FakeClock()
    a, b = Upstream("a", stall=True), Upstream("b", stall=True)
    eps = [ep("a", clock, a), ep("b", clock, b)]
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.1))) as c:
        call = asyncio.ensure_future(c.chat("hi", model="g"))
        await until(lambda: b.started == 1, "the hedge was sent")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert (c.stats()["a"]["cancelled"], c.stats()["b"]["cancelled"]) == (1, 1)
        assert eps[0].gate.in_flight == 0 and eps[1].gate.in_flight == 0


async def test_the_delay_follows_the_groups_observed_p95_time_to_first_byte() -> None:
    clock = GatedClock()  # the hedge delay never passes: every call is answered by a
    took = iter([0.1] * 18 + [0.2, 0.9, 0.1])

    def a(r: HTTPRequest) -> MockResponse:
        clock.advance(next(took))  # the upstream's time to first byte, on the FakeClock
        return answer("a", r)

    eps = [ep("a", clock, a), ep("b", clock, Upstream("b"))]
    cfg = HedgeConfig(initial_delay=0.5, min_samples=20, min_delay=0.01)
    async with client(eps, GroupConfig("g", ("a", "b"), hedge=cfg)) as c:
        for _ in range(21):
            assert (await c.chat("hi", model="g")).endpoint == "a"
        # 20 fallback delays while samples were too few, then the p95 (nearest rank 19 of 20: 0.2 s)
        assert clock.sleeps == [0.5] * 20 + [pytest.approx(0.2)]
        h = c.stats()["hedging"]["g"]
        assert h["samples"] == 21 and h["fired"] == 0 and h["delay_s"] == pytest.approx(0.2)
