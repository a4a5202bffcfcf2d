"""Health monitoring on a FakeClock: the state machine, probes on each provider's health route, passive
health from the breaker, forward progress (a hung endpoint is down, a saturated one is not), callbacks and
health-gated routing. No sleeping, no network (MockTransport)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import infermux
from infermux._stats import EndpointCounters
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import APIConnectionError, ConfigurationError
from infermux.fleet import GroupConfig
from infermux.health import HealthMonitor, probe_request, server_root
from infermux.resilience.breaker import BreakerConfig
from infermux.resilience.clock import FakeClock
from infermux.resilience.health import EndpointHealth, HealthConfig, HealthState
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport

pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("error::ResourceWarning")]

JSON = {"content-type": "application/json"}


def completion(text: str = "ok") -> MockResponse:
    body = {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    return MockResponse(200, JSON, json.dumps(body).encode())


def ep(name: str, clock: FakeClock, handler: Any, provider: str = "openai", **kw: Any) -> Endpoint:
    kw.setdefault("retry", RetryPolicy(max_retries=0))
    config = EndpointConfig(
        name=name, provider=provider, base_url=f"http://{name}/v1", model="m", api_keys=("sk-secret-1",), **kw
    )
    return Endpoint(config, transport=MockTransport(handler), clock=clock)


# ---------------------------------------------------------------------- the pure state machine


def test_probe_failures_and_successes_move_the_state() -> None:
    clock = FakeClock()
    h = EndpointHealth(HealthConfig(failures=2, successes=2), clock)
    assert h.update(breaker_open=False, stalled_for=0)[0].state is HealthState.UP
    h.record_probe(False, error="HTTP 503")
    assert h.update(breaker_open=False, stalled_for=0) == (h.verdict(breaker_open=False, stalled_for=0), False)
    h.record_probe(False, error="HTTP 503")
    v, changed = h.update(breaker_open=False, stalled_for=0)
    assert changed and v.state is HealthState.DOWN and v.reason == "2 health probes failed (last: HTTP 503)"
    h.record_probe(True)
    assert h.update(breaker_open=False, stalled_for=0)[0].state is HealthState.DOWN  # needs 2 good probes
    clock.advance(5)
    h.record_probe(True)
    v, changed = h.update(breaker_open=False, stalled_for=0)
    assert changed and v.state is HealthState.UP and h.since == clock.now()
    assert h.update(breaker_open=True, stalled_for=0)[0].reason == "circuit breaker open"
    v = h.verdict(breaker_open=False, stalled_for=61, running=3)
    assert v.state is HealthState.DOWN and "no progress for 61s with 3 stream(s) running" in (v.reason or "")


def test_health_config_is_validated() -> None:
    for bad in ({"interval": 0}, {"timeout": -1}, {"jitter": 1.0}, {"failures": 0}, {"stall_after": "60"}):
        with pytest.raises(ConfigurationError, match="HealthConfig"):
            HealthConfig(**bad)  # type: ignore[arg-type]
    assert HealthConfig(stall_after=None).stall_after is None


def test_forward_progress_judges_completions_against_the_busy_period() -> None:
    c = EndpointCounters()
    assert c.stalled_for(100.0) == 0.0  # idle is not stalled
    c.attempt_started(100.0, stream=True)
    assert c.stalled_for(130.0) == 30.0  # a stream busy since 100, nothing produced
    c.progressed(125.0)  # a stream chunk
    assert c.stalled_for(130.0) == 5.0
    # saturated: 8 streams always running, one completes every 5 s, a new one starts at once
    for _ in range(7):
        c.attempt_started(130.0, stream=True)
    now = 130.0
    for _ in range(40):
        now += 5.0
        c.attempt_ended(now, answered=True, stream=True)
        c.attempt_started(now, stream=True)
        assert c.stalled_for(now + 4.9) < 5.0  # never "stalled", whatever the backlog
    for _ in range(8):  # a timeout or a cut is not progress
        c.attempt_ended(now + 1, answered=False, stream=True)
    assert c.attempts_running == 0 and c.stalled_for(now + 100) == 0.0


def test_a_long_non_stream_attempt_is_not_a_stall() -> None:
    c = EndpointCounters()
    c.attempt_started(100.0)  # a non-stream call: its forward progress is its end, no chunk comes before
    assert c.attempts_running == 1 and c.stalled_for(1000.0) == 0.0
    c.attempt_started(900.0, stream=True)  # a stream starts: its own busy period counts
    assert c.stalled_for(1000.0) == 100.0
    c.attempt_ended(1000.0, answered=True)  # the long call ends: the endpoint produced something
    assert c.stalled_for(1010.0) == 10.0


# ---------------------------------------------------------------------- probes


def test_probe_routes_per_provider() -> None:
    clock = FakeClock()
    assert server_root("http://h:8080/v1") == "http://h:8080" and server_root("http://h/proxy/v3/") == "http://h/proxy"
    llama = ep("l", clock, None, provider="llamacpp")
    req = probe_request(llama, 2.0)
    assert req.method == "GET" and req.url == "http://l/health" and req.timeouts.read == 2.0
    ovms = Endpoint(EndpointConfig(name="o", provider="ovms", base_url="http://o:8000/v3", model="m"), clock=clock)
    assert probe_request(ovms, 1).url == "http://o:8000/v2/health/ready"
    hosted = ep("h", clock, None, provider="openai")  # no health route: the model list, with the key
    req = probe_request(hosted, 1)
    assert req.url == "http://h/v1/models" and req.headers["authorization"] == "Bearer sk-secret-1"
    claude = Endpoint(EndpointConfig(name="c", provider="anthropic", base_url="http://c", model="m"), clock=clock)
    assert probe_request(claude, 1).url.startswith("http://c/v1/models")


async def test_probes_mark_endpoints_down_and_up_with_callbacks_and_no_call_counted() -> None:
    clock = FakeClock()
    status = {"a": 200}

    def handler(r: HTTPRequest) -> MockResponse:
        if r.url.endswith("/health"):
            if status["a"] == 0:
                raise APIConnectionError("connection refused")
            return MockResponse(status["a"], JSON, b'{"status": "ok"}')
        return completion()

    a = ep("a", clock, handler, provider="llamacpp")
    changes: list[tuple[str, str, str, str | None]] = []
    mon = HealthMonitor(
        [a],
        HealthConfig(failures=2),
        on_change=lambda n, o, s, r: changes.append((n, o.value, s.value, r)),
    )
    assert await mon.probe(a) is True
    status["a"] = 503
    assert await mon.probe(a) is False and not mon.is_down(a)  # one failure is not enough
    status["a"] = 0
    assert await mon.probe(a) is False and mon.is_down(a)
    assert changes == [("a", "up", "down", "2 health probes failed (last: APIConnectionError)")]
    status["a"] = 200
    assert await mon.probe_all() == {"a": True}
    assert changes[-1] == ("a", "down", "up", None)
    rep = mon.report()["a"]
    assert rep["state"] == "up" and rep["probe"]["count"] == 4 and rep["probe"]["ok"] is True
    assert a.counters.requests == 0 and a.keys.snapshot()[0]["requests"] == 0  # probes are not calls
    assert "sk-secret-1" not in json.dumps(rep)


async def test_probe_loop_uses_interval_and_jitter_on_the_clock() -> None:
    clock = FakeClock()
    a = ep("a", clock, lambda r: MockResponse(200, JSON, b'{"status": "ok"}'), provider="llamacpp")
    mon = HealthMonitor([a], HealthConfig(interval=10, jitter=0.2), rand=lambda: 1.0)
    mon.start()
    for _ in range(20):
        await asyncio.sleep(0)
    await mon.aclose()
    assert clock.sleeps and all(s == pytest.approx(12.0) for s in clock.sleeps)  # 10 * (1 + 0.2)
    assert mon.report()["a"]["probe"]["count"] >= 1


# ---------------------------------------------------------------------- gating, passive, forward progress


async def test_health_gated_routing_skips_down_endpoints_and_panics_when_all_are() -> None:
    clock = FakeClock()
    health = {"a": 200, "b": 200}

    def handler(name: str) -> Any:
        def h(r: HTTPRequest) -> MockResponse:
            if r.url.endswith("/health"):
                return MockResponse(health[name], JSON, b'{"status": "ok"}')
            return completion(name)

        return h

    eps = [ep(n, clock, handler(n), provider="llamacpp") for n in "ab"]
    async with infermux.AsyncClient(
        eps, groups=[GroupConfig("g", ("a", "b"))], health=HealthConfig(failures=1, probe=False), trust_env=False
    ) as c:
        assert (await c.chat("hi", model="g")).endpoint == "a"
        health["a"] = 503
        await c.check_health()
        assert c.health()["a"]["state"] == "down"
        assert (await c.chat("hi", model="g")).endpoint == "b"  # a is skipped like an open breaker
        health["b"] = 503
        await c.check_health()
        assert (await c.chat("hi", model="g")).endpoint == "a"  # all down: panic routing still serves


def sse(text: str) -> MockResponse:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]}
    data = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    return MockResponse(200, {"content-type": "text/event-stream"}, data.encode())


async def test_a_hung_endpoint_is_down_a_saturated_one_is_not() -> None:
    clock = FakeClock()
    release = asyncio.Event()

    async def hang(r: HTTPRequest) -> MockResponse:
        await release.wait()  # accepts the stream, never sends its headers (its /health would still say 200)
        return sse("a")

    async def read_all(s: infermux.ChatStream) -> infermux.ChatResponse:
        async with s:
            return await s.final_response()

    async def busy(r: HTTPRequest) -> MockResponse:
        await clock.sleep(5)  # every answer takes 5 s: with 1 slot and a queue, always busy
        return completion("b")

    a = ep("a", clock, hang)
    b = ep("b", clock, busy, max_concurrency=1)
    changes: list[tuple[str, str]] = []
    async with infermux.AsyncClient(
        [a, b],
        groups=[GroupConfig("g", ("a", "b"))],
        health=HealthConfig(stall_after=20, probe=False),
        on_health_change=lambda n, o, s, r: changes.append((n, s.value)),
        trust_env=False,
    ) as c:
        stuck = asyncio.ensure_future(read_all(c.stream("hi", endpoint="a")))
        for _ in range(5):
            await asyncio.sleep(0)
        assert a.counters.attempts_running == 1 and c.health()["a"]["state"] == "up"
        results = await asyncio.gather(*(c.chat("hi", endpoint="b") for _ in range(10)))  # 50 s of saturation
        assert all(r.endpoint == "b" for r in results) and clock.now() - 1000 >= 50
        rep = c.health()
        assert rep["b"]["state"] == "up"  # busy all along, but answering: not hung
        assert rep["a"]["state"] == "down" and "no progress for" in rep["a"]["reason"]
        assert changes == [("a", "down")]
        assert (await c.chat("hi", model="g")).endpoint == "b"  # the hung endpoint is skipped
        release.set()
        assert (await stuck).endpoint == "a"
        assert c.health()["a"]["state"] == "up" and changes[-1] == ("a", "up")


async def test_a_non_stream_call_longer_than_stall_after_leaves_its_endpoint_up() -> None:
    clock = FakeClock()

    release = asyncio.Event()

    async def slow(r: HTTPRequest) -> MockResponse:
        if b"essay" in (r.body or b""):
            await release.wait()  # a long generation: nothing to see until the answer
        return completion("a")

    changes: list[tuple[str, str]] = []
    async with infermux.AsyncClient(
        [ep("a", clock, slow), ep("b", clock, lambda r: completion("b"))],
        groups=[GroupConfig("g", ("a", "b"))],
        health=HealthConfig(stall_after=60, probe=False),
        on_health_change=lambda n, o, s, r: changes.append((n, s.value)),
        trust_env=False,
    ) as c:
        long_call = asyncio.ensure_future(c.chat("write a long essay", endpoint="a"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert c.endpoint("a").counters.attempts_running == 1
        clock.advance(75)  # past stall_after, the call still running
        assert c.health()["a"]["state"] == "up"
        assert (await c.chat("hi", model="g")).endpoint == "a"  # not skipped by the router
        release.set()
        assert (await long_call).text == "a"
    assert changes == []


async def test_passive_health_follows_the_breaker() -> None:
    clock = FakeClock()
    a = ep(
        "a",
        clock,
        lambda r: MockResponse(503, JSON, b'{"error": {"message": "x"}}'),
        breaker=BreakerConfig(consecutive_failures=1),
    )
    changes: list[str] = []
    async with infermux.AsyncClient(
        [a], on_health_change=lambda n, o, s, r: changes.append(f"{s.value}:{r}"), trust_env=False
    ) as c:
        with pytest.raises(infermux.InternalServerError):
            await c.chat("hi")
    assert changes == ["down:circuit breaker open"]
    assert c.health()["a"]["breaker"] == "open" and c.health()["a"]["gated"] is True


def test_without_health_config_routing_is_not_gated_but_health_is_reported() -> None:
    clock = FakeClock()
    c = infermux.AsyncClient([ep("a", clock, lambda r: completion())], trust_env=False)
    assert c.router.health is None
    rep = c.health()["a"]
    assert rep["state"] == "up" and rep["gated"] is False and rep["probe"]["enabled"] is False
    with pytest.raises(ConfigurationError, match="HealthConfig"):
        infermux.AsyncClient([ep("b", clock, None)], health={"interval": 1}, trust_env=False)  # type: ignore[arg-type]


async def test_the_gating_verdict_is_kept_until_an_input_changes_or_a_stall_could_begin() -> None:
    clock = FakeClock()
    status = {"health": 200}

    def handler(r: HTTPRequest) -> MockResponse:
        if r.url.endswith("/health"):
            return MockResponse(status["health"], JSON, b'{"status": "ok"}')
        return MockResponse(503, JSON, b'{"error": {"message": "x"}}')

    a = ep("a", clock, handler, provider="llamacpp", breaker=BreakerConfig(consecutive_failures=1))
    judged = 0

    class Counting(EndpointHealth):
        __slots__ = ()

        def update(self, **kw: Any) -> Any:
            nonlocal judged
            judged += 1
            return super().update(**kw)

    mon = HealthMonitor([a], HealthConfig(failures=1, stall_after=30, probe=False))
    mon._state["a"] = Counting(mon.config, clock)
    assert not mon.is_down(a) and judged == 1
    for _ in range(100):
        assert not mon.is_down(a)
    assert judged == 1  # kept: nothing changed
    a.counters.attempt_started(clock.now(), stream=True)  # a stream starts: it may stall 30 s from now
    clock.advance(29.9)
    assert not mon.is_down(a) and judged == 1
    clock.advance(0.2)
    assert mon.is_down(a) and judged == 2  # past the horizon: judged again, and the stall is seen
    assert mon.is_down(a) and judged == 3  # a down verdict is not kept (progress may end it any moment)
    a.counters.progressed(clock.now())
    assert not mon.is_down(a)
    judged = 0
    status["health"] = 503
    await mon.probe(a)  # a failed probe: judged at once
    assert judged == 1 and mon.is_down(a)
    status["health"] = 200
    await mon.probe(a)
    assert not mon.is_down(a)
    judged = 0
    a.counters.attempt_ended(clock.now(), answered=True, stream=True)
    with pytest.raises(infermux.InternalServerError):
        await a.chat(infermux.ChatRequest(messages=(infermux.Message("user", "hi"),)))  # the breaker opens
    assert judged == 1 and mon.is_down(a)  # the transition was judged when it happened
