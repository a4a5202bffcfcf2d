"""The engine's rules for serving the caller, one by one, on the FakeClock (no real sleeping)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import infermux
from infermux._ratelimit import parse_duration, quota_block_seconds
from infermux._resume import OverlapFilter, StreamSplice, resumed_request
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import CircuitOpenError, IncompleteStreamError, MalformedResponseError
from infermux.resilience.adaptive import AdaptiveLimit
from infermux.resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker
from infermux.resilience.clock import FakeClock
from infermux.resilience.queue import PriorityGate
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport
from infermux.types import ChatRequest, Message, StreamResumed, StreamStart, TextDelta

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}
REQ = ChatRequest((Message.user("hello"),))


def completion(text: str = "ok") -> MockResponse:
    body = {
        "id": "c1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    return MockResponse(200, JSON, json.dumps(body).encode())


def error(status: int, headers: dict[str, str] | None = None) -> MockResponse:
    return MockResponse(status, {**JSON, **(headers or {})}, json.dumps({"error": {"message": "x"}}).encode())


def make(handler: Any, clock: FakeClock, **cfg: Any) -> Endpoint:
    config = EndpointConfig(name="ep", provider="openai", base_url="http://mock/v1", model="m", api_keys=("k",), **cfg)
    return Endpoint(config, transport=MockTransport(handler), clock=clock, rand=lambda: 0.5)


# ---------------------------------------------------------------------- breaker


def test_a_burst_of_fast_failures_among_concurrent_starts_does_not_trip() -> None:
    b = CircuitBreaker(BreakerConfig(), clock=FakeClock())
    permits = [b.acquire() for _ in range(50)]  # 50 concurrent attempts started
    for p in permits[:10]:  # 10 instant faults come back before any healthy reply
        b.record_failure(p)
    assert b.state is BreakerState.CLOSED  # 10 failures of 50 started, not 10 of 10
    for p in permits[10:]:
        b.record_success(p)
    assert b.state is BreakerState.CLOSED


def test_an_outage_trips_quickly_despite_a_long_healthy_history() -> None:
    clock = FakeClock()
    b = CircuitBreaker(BreakerConfig(), clock=clock)
    for _ in range(500):  # 10 s of healthy traffic at 50/s
        b.record_success(b.acquire())
        clock.advance(0.02)
    failures = 0
    while b.state is BreakerState.CLOSED:
        b.record_failure(b.acquire())
        failures += 1
    assert failures <= 26  # half of the last 50 started


def test_open_time_grows_on_repeated_trips_not_on_failed_probes_and_is_forgotten() -> None:
    clock = FakeClock()
    cfg = BreakerConfig(consecutive_failures=1, open_seconds=1.0, open_growth=2.0, max_open_seconds=8.0)
    b = CircuitBreaker(cfg, clock=clock)
    b.record_failure(b.acquire())
    assert b.state is BreakerState.OPEN and b.open_for == 1.0
    for _ in range(5):  # a sustained outage: every probe fails, probed every second
        clock.advance(1.0)
        b.record_failure(b.acquire())
        assert b.open_for == 1.0
    clock.advance(1.0)
    b.record_success(b.acquire())  # recovered
    b.record_failure(b.acquire())  # ...and flaps: a second trip soon after
    assert b.open_for == 2.0
    clock.advance(2.0)
    b.record_success(b.acquire())
    b.record_failure(b.acquire())
    assert b.open_for == 4.0
    clock.advance(4.0)
    b.record_success(b.acquire())
    clock.advance(8.0)  # healthy for max_open_seconds: the trip count is forgotten
    b.record_failure(b.acquire())
    assert b.open_for == 1.0


def test_stale_outcomes_neither_free_the_probe_nor_close_the_breaker() -> None:
    clock = FakeClock()
    b = CircuitBreaker(BreakerConfig(consecutive_failures=1, open_seconds=1.0), clock=clock)
    slow = b.acquire()  # admitted while closed, answers late
    b.record_failure(b.acquire())
    clock.advance(1.0)
    probe = b.acquire()
    assert probe is not None and probe.probe and b.acquire() is None
    b.record_neutral(slow)  # a stale 4xx: not the probe's answer
    assert b.state is BreakerState.HALF_OPEN and b.acquire() is None  # the probe permit is still taken
    b.record_success(probe)
    assert b.state is BreakerState.CLOSED


# ---------------------------------------------------------------------- waiting instead of failing


async def test_callers_waiting_on_an_open_breaker_go_when_the_probe_succeeds() -> None:
    clock = FakeClock()
    answers = [error(503), error(503)] + [completion("back")] * 10
    ep = make(
        lambda r: answers.pop(0),
        clock,
        breaker=BreakerConfig(consecutive_failures=2, open_seconds=5.0),
        retry=RetryPolicy(max_retries=0),
    )
    for _ in range(2):
        with pytest.raises(infermux.InternalServerError):
            await ep.chat(REQ)
    assert ep.breaker.state is BreakerState.OPEN
    results = await asyncio.gather(*(ep.chat(REQ) for _ in range(5)))
    assert [r.text for r in results] == ["back"] * 5
    assert all(r.attempts == 1 for r in results)  # waiting spent no retry (max_retries=0)
    assert ep.stats()["waits"] >= 5 and ep.breaker.state is BreakerState.CLOSED


async def test_failed_probes_spend_no_retry_of_the_caller_that_sent_them() -> None:
    """The one caller of an endpoint in a long outage sends every half-open probe; those failures are the wait,
    not its retries: with max_retries=1 it still gets the answer once the endpoint is back (CI once saw a caller
    fail after probing twice through a 1.5 s outage)."""
    clock = FakeClock()
    answers = [error(503)] * 8 + [completion("back")]
    ep = make(
        lambda r: answers.pop(0),
        clock,
        breaker=BreakerConfig(consecutive_failures=2, open_seconds=1.0),
        retry=RetryPolicy(max_retries=1, initial_delay=0.01),
    )
    with pytest.raises(infermux.InternalServerError):
        await ep.chat(REQ)  # two real failures: its one retry spent, and the breaker opens
    assert ep.breaker.state is BreakerState.OPEN
    result = await ep.chat(REQ)  # waits; probes 6 times (each failure reopens the breaker), then is served
    assert result.text == "back" and result.attempts == 7 and not answers
    assert ep.breaker.state is BreakerState.CLOSED


async def test_fail_fast_refuses_at_once_while_open() -> None:
    clock = FakeClock()
    ep = make(
        lambda r: error(503),
        clock,
        breaker=BreakerConfig(consecutive_failures=1, open_seconds=5.0),
        retry=RetryPolicy(max_retries=0),
        fail_fast=True,
    )
    with pytest.raises(infermux.InternalServerError):
        await ep.chat(REQ)
    t0 = clock.now()
    with pytest.raises(CircuitOpenError) as ei:
        await ep.chat(REQ)
    assert clock.now() == t0 and ei.value.retry_after == pytest.approx(5.0)


async def test_an_endpoints_own_fail_fast_holds_for_calls_through_the_client() -> None:
    """``EndpointConfig.fail_fast`` was ignored through the client (the router always chose to wait)."""
    clock = FakeClock()
    answers = [error(503), error(503)] + [completion("back")] * 3
    ep = make(
        lambda r: answers.pop(0),
        clock,
        breaker=BreakerConfig(consecutive_failures=2, open_seconds=5.0),
        retry=RetryPolicy(max_retries=0),
        fail_fast=True,
    )
    async with infermux.AsyncClient([ep], clock=clock) as client:
        for _ in range(2):
            with pytest.raises(infermux.InternalServerError):
                await client.chat("hello")
        t0 = clock.now()
        with pytest.raises(infermux.InfermuxError) as info:
            await client.chat("hello")
        assert clock.now() == t0  # refused at once, did not wait out the open breaker
        assert info.value.retryable and len(answers) == 3  # nothing was sent


async def test_a_deadline_that_cannot_outlast_the_open_breaker_fails_now_with_the_real_error() -> None:
    clock = FakeClock()
    ep = make(
        lambda r: error(503),
        clock,
        breaker=BreakerConfig(consecutive_failures=2, open_seconds=30.0),
        retry=RetryPolicy(max_retries=5, initial_delay=0.1),
    )
    t0 = clock.now()
    with pytest.raises(infermux.InternalServerError) as ei:
        await ep.chat(REQ, timeout=10.0)
    assert ei.value.breaker_state == "open" and ei.value.attempts == 2
    assert clock.now() - t0 < 1.0  # did not sleep towards a probe it could never reach


async def test_a_key_out_of_quota_makes_callers_wait_for_its_reset_without_spending_retries() -> None:
    clock = FakeClock()
    quota = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s", "retry-after": "20"}
    answers = [error(429, quota), completion("later")]
    ep = make(lambda r: answers.pop(0), clock, retry=RetryPolicy(max_retries=1))
    first = asyncio.ensure_future(ep.chat(REQ))
    r = await first
    assert r.text == "later" and r.attempts == 2
    assert ep.keys.snapshot()[0]["rate_limited"] == 1


async def test_a_429_without_quota_headers_does_not_stop_the_other_requests() -> None:
    clock = FakeClock()
    answers = [error(429, {"retry-after-ms": "250"})] + [completion()] * 3
    ep = make(lambda r: answers.pop(0), clock)
    r1 = await ep.chat(REQ)  # its own retry waits 250 ms
    assert r1.attempts == 2
    t0 = clock.now()
    assert (await ep.chat(REQ)).attempts == 1 and clock.now() == t0  # nothing waited on the key


async def test_malformed_2xx_is_retried_at_most_once_and_is_not_a_breaker_failure() -> None:
    clock = FakeClock()
    html = MockResponse(200, {"content-type": "text/html"}, b"<html>sign in</html>")
    calls: list[HTTPRequest] = []
    ep = make(lambda r: calls.append(r) or html, clock, breaker=BreakerConfig(consecutive_failures=1))
    with pytest.raises(MalformedResponseError) as ei:
        await ep.chat(REQ)
    assert len(calls) == 2 and ei.value.attempts == 2
    assert ep.breaker.state is BreakerState.CLOSED


# ---------------------------------------------------------------------- adaptive concurrency


def test_adaptive_limit_settles_on_capacity_and_probes_above_it_rarely() -> None:
    clock = FakeClock()
    gate = PriorityGate(64, clock=clock)
    lim = AdaptiveLimit(gate, 64, clock=clock)
    capacity, refused = 10, 0
    lim.on_overload(clock.now(), 64)  # the first burst
    for _ in range(3000):
        clock.advance(0.001)
        if lim.limit > capacity:
            refused += 1
            lim.on_overload(clock.now(), lim.limit)
        else:
            lim.on_success()
    assert lim.limit <= capacity + 1
    assert refused <= 60  # 3 refusals per probe above capacity: 47 measured over 3,000 requests (1.6 %)


# ---------------------------------------------------------------------- streams


def sse(*chunks: str, done: bool = True, role_first: bool = True) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {"id": "s", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
        body["choices"][0]["finish_reason"] = finish
        return f"data: {json.dumps(body)}\n\n".encode()

    out = [chunk({"role": "assistant", "content": ""})] if role_first else []
    out += [chunk({"content": c}) for c in chunks]
    if done:
        out += [chunk({}, "stop"), b"data: [DONE]\n\n"]
    return out


async def test_in_band_overloaded_error_right_after_start_is_retried() -> None:
    def ev(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    usage = {"input_tokens": 1, "output_tokens": 0}
    start = ev("message_start", {"type": "message_start", "message": {"id": "m1", "model": "c", "usage": usage}})
    overloaded = ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    block = {"type": "text", "text": ""}
    good = b"".join(
        [
            start,
            ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            ev(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
            ),
            ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ev(
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
            ),
            ev("message_stop", {"type": "message_stop"}),
        ]
    )
    answers = [MockResponse(200, SSE, [start, overloaded]), MockResponse(200, SSE, [good])]
    clock = FakeClock()
    config = EndpointConfig(name="c", provider="anthropic", base_url="http://mock", model="c", api_keys=("k",))
    ep = Endpoint(config, transport=MockTransport(lambda r: answers.pop(0)), clock=clock, rand=lambda: 0.5)
    events = [ev async for ev in ep.stream(REQ)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hi"
    assert sum(isinstance(e, StreamStart) for e in events) == 1  # the failed attempt's start never reached us
    assert ep.stats()["retries"] == 1


async def test_a_stream_cut_after_content_is_resumed_without_repeating_text() -> None:
    requests: list[HTTPRequest] = []
    answers = [
        MockResponse(200, SSE, sse("Hello", " wor", done=False)),
        MockResponse(200, SSE, sse("Hello", " world", "!")),
    ]
    clock = FakeClock()
    ep = make(lambda r: requests.append(r) or answers.pop(0), clock)
    events = [ev async for ev in ep.stream(REQ)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello world!"
    resumed = [e for e in events if isinstance(e, StreamResumed)]
    assert len(resumed) == 1 and resumed[0].delivered_chars == len("Hello wor")
    assert json.loads(requests[1].body or b"{}")["messages"][-1]["role"] == "user"  # no prefill for OpenAI


async def test_a_stream_resumed_with_prefill_on_the_anthropic_emulator() -> None:
    from infermux.sandbox import Sandbox

    async with Sandbox() as sb:
        config = EndpointConfig(
            name="c", provider="anthropic", base_url=sb.anthropic_base_url, model="claude-sonnet-4-5", api_keys=("k",)
        )
        ep = Endpoint(config)
        try:
            sb.faults.push("stream_cut=4;clean=1")
            events = [ev async for ev in ep.stream(ChatRequest((Message.user("one two three four five six"),)))]
        finally:
            await ep.aclose()
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "echo: one two three four five six"
        assert sum(isinstance(e, StreamResumed) for e in events) == 1 and sb.stats.total == 2


def test_overlap_filter_drops_a_repeat_and_passes_a_continuation() -> None:
    f = OverlapFilter("Hello wor", prefill=False)
    assert [f.text(p) for p in ("Hel", "lo", " world", "!")] == ["", "", "ld", "!"]
    g = OverlapFilter("Hello wor", prefill=True)
    assert [g.text(p) for p in ("ld", "!")] == ["ld", "!"]  # a continuation of the partial turn
    h = OverlapFilter("Hello ", prefill=True)  # the partial turn was sent as "Hello"; the continuation repeats " "
    assert [h.text(p) for p in (" world",)] == ["world"]
    with pytest.raises(IncompleteStreamError):
        OverlapFilter("Hello wor", prefill=False).text("Goodbye")


def test_resumed_request_carries_the_partial_turn_without_trailing_whitespace() -> None:
    r = resumed_request(REQ, "Hello ", prefill=True)
    assert r.messages[-1] == Message(role="assistant", content="Hello")
    assert resumed_request(REQ, "Hello ", prefill=False) is REQ


def test_splice_holds_non_content_until_content() -> None:
    s = StreamSplice(prefill=False)
    assert s.feed(StreamStart("r1")) == [] and not s.content
    assert s.feed(TextDelta("a")) == [StreamStart("r1"), TextDelta("a")] and s.content


# ---------------------------------------------------------------------- rate-limit headers


def test_quota_headers() -> None:
    assert parse_duration("1m30.5s") == 90.5 and parse_duration("6ms") == 0.006 and parse_duration("x") is None
    assert quota_block_seconds({"x-ratelimit-remaining-requests": "3"}) is None
    h = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "2s"}
    assert quota_block_seconds(h) == 2.0
    a = {"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:10Z"}
    assert quota_block_seconds(a, now=1893456000.0) == pytest.approx(10.0)


# ---------------------------------------------------------------------- routing


async def test_panic_routing_waits_on_the_endpoint_that_recovers_first() -> None:
    clock = FakeClock()
    answers = {"a": [error(503)] + [completion("a")] * 5, "b": [error(503)] + [completion("b")] * 5}

    def ep(name: str, open_s: float) -> Endpoint:
        config = EndpointConfig(
            name=name,
            provider="openai",
            base_url="http://mock/v1",
            model="m",
            breaker=BreakerConfig(consecutive_failures=1, open_seconds=open_s),
            retry=RetryPolicy(max_retries=0),
        )
        return Endpoint(config, transport=MockTransport(lambda r: answers[name].pop(0)), clock=clock)

    a, b = ep("a", 10.0), ep("b", 3.0)
    async with infermux.AsyncClient([a, b], clock=clock) as client:
        with pytest.raises(infermux.AllEndpointsFailedError):
            await client.chat("x")  # both fail once: both breakers open
        t0 = clock.now()
        r = await client.chat("x")  # nothing can serve now: wait on "b", which recovers first
    assert r.endpoint == "b" and clock.now() - t0 == pytest.approx(3.0)
