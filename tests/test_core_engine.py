"""The endpoint engine's promises under cancellation, abandoned streams, probes and secrets (MockTransport, fake
clock): every exit gives back the queue slot, the breaker's probe permit and the key lease; counters add up;
keys never appear in reprs or errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

import pytest

import infermux
from infermux.endpoint import Attempt, Endpoint, EndpointConfig
from infermux.errors import (
    AuthenticationError,
    DeadlineExceededError,
    InfermuxError,
    InternalServerError,
    RateLimitError,
)
from infermux.resilience.breaker import BreakerConfig
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport
from infermux.types import ChatRequest, Message, TextDelta

pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("error::ResourceWarning")]

SECRET = "sk-live-ENGINESECRET-42"
JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}
REQ = ChatRequest((Message.user("hello"),))


def completion(text: str = "hi") -> bytes:
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }
    ).encode()


def sse(*texts: str) -> list[bytes]:
    out = []
    for t in texts:
        c = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": t}}]}
        out.append(f"data: {json.dumps(c)}\n\n".encode())
    fin = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    return [*out, f"data: {json.dumps(fin)}\n\n".encode(), b"data: [DONE]\n\n"]


def error(status: int, message: str = "boom") -> MockResponse:
    return MockResponse(status, JSON, json.dumps({"error": {"message": message, "type": "x"}}).encode())


Handler = Callable[[HTTPRequest], "MockResponse | Awaitable[MockResponse]"]


def make(handler: Handler, *, clock: Any = None, **cfg: Any) -> Endpoint:
    cfg.setdefault("api_keys", (SECRET,))
    cfg.setdefault("retry", RetryPolicy(max_retries=0))
    config = EndpointConfig(name="ep", provider="openai", base_url="http://mock/v1", model="m", **cfg)
    return Endpoint(config, transport=MockTransport(handler), clock=clock or FakeClock(), rand=lambda: 0.5)


def assert_idle(ep: Endpoint) -> None:
    """Nothing is held: no slot, no probe permit, no key lease; every request is accounted for."""
    s = ep.stats()
    assert s["in_flight"] == 0
    assert s["breaker"]["probes_in_flight"] == 0
    assert all(k["in_flight"] == 0 for k in s["keys"])
    assert s["requests"] == s["successes"] + s["failures_total"] + s["cancelled"], s


def half_open(ep: Endpoint, clock: FakeClock) -> None:
    for _ in range(ep.config.breaker.consecutive_failures):
        ep.breaker.try_acquire()
        ep.breaker.record_failure()
    clock.advance(ep.config.breaker.open_seconds)
    assert ep.breaker.state is infermux.resilience.BreakerState.HALF_OPEN  # type: ignore[attr-defined]


BREAKER = BreakerConfig(consecutive_failures=1, open_seconds=10.0)


class Blocker:
    """A handler that parks every request until released (or forever)."""

    def __init__(self, answer: MockResponse | None = None) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.answer = answer or MockResponse(200, JSON, completion())

    async def __call__(self, request: HTTPRequest) -> MockResponse:
        self.entered.set()
        await self.release.wait()
        return self.answer


# ---------------------------------------------------------------------- secrets


def test_attempt_and_http_request_reprs_hide_the_key() -> None:
    a = Attempt("rid", 1, SECRET, "key#1:abcdef", None)
    assert SECRET not in repr(a) and "key#1:abcdef" in repr(a)
    r = HTTPRequest("POST", "http://x/v1", {"authorization": f"Bearer {SECRET}"})
    assert SECRET not in repr(r)


def test_endpoint_config_repr_hides_header_values() -> None:
    cfg = EndpointConfig(name="gw", provider="openai", headers={"x-api-key": SECRET}, api_keys=(SECRET,))
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)


@pytest.mark.parametrize("status", [401, 500, 400])
async def test_error_echoing_the_key_is_redacted(status: int) -> None:
    ep = make(lambda r: error(status, f"Incorrect API key provided: {SECRET}. Fix it."))
    with pytest.raises(InfermuxError) as ei:
        await ep.chat(REQ)
    e = ei.value
    for text in (str(e), repr(e), e.message, repr(e.body), repr(e.provider_message), repr(e.context()), repr(e.args)):
        assert SECRET not in text
    assert "Incorrect API key provided" in str(e)  # the rest of the message survives
    assert SECRET not in json.dumps(ep.stats(), default=str)


# ---------------------------------------------------------------------- cancellation of chat()


async def test_cancelling_chat_mid_request_releases_slot_key_and_counts() -> None:
    blocker = Blocker()
    ep = make(blocker)
    task = asyncio.create_task(ep.chat(REQ))
    await blocker.entered.wait()
    assert ep.stats()["in_flight"] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_idle(ep)
    assert ep.stats()["cancelled"] == 1 and ep.stats()["failures_total"] == 0


async def test_cancelled_probe_does_not_close_the_breaker() -> None:
    clock = FakeClock()
    blocker = Blocker()
    ep = make(blocker, clock=clock, breaker=BREAKER)
    half_open(ep, clock)
    task = asyncio.create_task(ep.chat(REQ))
    await blocker.entered.wait()
    assert ep.stats()["breaker"]["probes_in_flight"] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ep.stats()["breaker"]["state"] == "half_open"  # a cancellation is no evidence of health
    assert_idle(ep)


async def test_deadline_during_probe_does_not_close_the_breaker() -> None:
    clock = FakeClock()
    ep = make(Blocker(), clock=clock, breaker=BREAKER)
    half_open(ep, clock)
    with pytest.raises(DeadlineExceededError):
        await ep.chat(REQ, timeout=0.05)
    assert ep.stats()["breaker"]["state"] == "half_open"
    assert_idle(ep)


async def test_key_pool_cooldown_is_not_a_probe_success() -> None:
    clock = FakeClock()
    ep = make(lambda r: error(429), clock=clock, breaker=BREAKER, fail_fast=True)
    with pytest.raises(RateLimitError):
        await ep.chat(REQ)  # the only key now cools down for 1 s
    half_open(ep, clock)
    ep.keys.release(ep.keys.acquire(), "rate_limited", retry_after=100.0, exhausted=True)
    with pytest.raises(RateLimitError) as ei:
        await ep.chat(REQ)
    assert ei.value.status_code is None  # refused by our own key pool: nothing was sent
    assert ep.stats()["breaker"]["state"] == "half_open"
    assert_idle(ep)


async def test_cancelling_a_queued_chat_leaves_no_trace() -> None:
    blocker = Blocker()
    ep = make(blocker, max_concurrency=1)
    first = asyncio.create_task(ep.chat(REQ))
    await blocker.entered.wait()
    second = asyncio.create_task(ep.chat(REQ, priority=infermux.Priority.HIGH))
    await asyncio.sleep(0)
    assert ep.stats()["queue_depth"]["HIGH"] == 1
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    blocker.release.set()
    assert (await first).text == "hi"
    assert_idle(ep)
    assert ep.stats()["queue_depth"]["HIGH"] == 0


class GatedClock(FakeClock):
    """A fake clock whose sleeps park until the test lets them go (to cancel during a backoff)."""

    __slots__ = ("sleeping",)

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await asyncio.Event().wait()


async def test_cancelling_during_backoff_counts_once_and_holds_nothing() -> None:
    clock = GatedClock()
    ep = make(lambda r: error(503), clock=clock, retry=RetryPolicy(max_retries=3))
    task = asyncio.create_task(ep.chat(REQ))
    await clock.sleeping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    s = ep.stats()
    assert s["requests"] == 1 and s["retries"] == 1 and s["cancelled"] == 1
    assert_idle(ep)


async def test_run_with_a_raising_operation_is_counted() -> None:
    ep = make(lambda r: error(500))

    async def op(attempt: Attempt) -> None:
        raise LookupError("user bug")

    with pytest.raises(LookupError):
        await ep.run(op)
    s = ep.stats()
    assert s["failures"] == {"LookupError": 1}
    assert_idle(ep)


async def test_run_does_not_turn_the_operations_own_timeout_into_deadline_exceeded() -> None:
    ep = make(lambda r: error(500))

    async def op(attempt: Attempt) -> None:
        raise TimeoutError("the operation's own timeout")

    with pytest.raises(TimeoutError) as ei:
        await ep.run(op, timeout=30.0)
    assert not isinstance(ei.value, DeadlineExceededError)


# ---------------------------------------------------------------------- abandoned streams


async def test_breaking_out_of_endpoint_stream_releases_everything() -> None:
    ep = make(lambda r: MockResponse(200, SSE, sse("a", "b", "c")))
    async with aclosing(ep.stream(REQ)) as events:
        async for ev in events:
            if isinstance(ev, TextDelta):
                assert ep.stats()["in_flight"] == 1
                break
    assert_idle(ep)
    assert ep.stats()["cancelled"] == 1


async def test_cancelling_a_stream_consumer_releases_everything() -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def slow_chunks() -> Any:
        yield sse("a")[0]
        await gate.wait()

    class Slow(MockResponse):
        async def iter_chunks(self) -> Any:
            async for c in slow_chunks():
                yield c

    ep = make(lambda r: Slow(200, SSE, b""), clock=clock, breaker=BREAKER)
    half_open(ep, clock)
    got = asyncio.Event()

    async def consume() -> None:
        async with aclosing(ep.stream(REQ)) as events:
            async for _ in events:
                got.set()

    task = asyncio.create_task(consume())
    await got.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ep.stats()["breaker"]["state"] == "half_open"
    assert_idle(ep)


async def test_breaking_out_of_client_stream_releases_everything() -> None:
    ep = make(lambda r: MockResponse(200, SSE, sse("a", "b", "c")))
    async with infermux.AsyncClient([ep]) as client:
        async with client.stream("hi") as s:
            async for _ in s.text():
                break
        assert_idle(ep)


def test_sync_stream_closed_early_releases_everything() -> None:
    ep = make(lambda r: MockResponse(200, SSE, sse("a", "b", "c")))
    with infermux.Client([ep]) as client:
        with client.stream("hi") as s:
            for _ in s.text():
                break
        assert_idle(ep)


async def test_stream_failure_after_delivery_is_not_retried_and_counted_once() -> None:
    calls = 0

    def handler(r: HTTPRequest) -> MockResponse:
        nonlocal calls
        calls += 1
        return MockResponse(200, SSE, [sse("a")[0], b'data: {"error": {"message": "x", "type": "server_error"}}\n\n'])

    ep = make(handler, retry=RetryPolicy(max_retries=3))
    seen = []
    with pytest.raises(InternalServerError):
        async for ev in ep.stream(REQ, resume=False):
            seen.append(ev)
    assert calls == 1 and seen
    s = ep.stats()
    assert s["failures_total"] == 1 and s["retries"] == 0
    assert_idle(ep)


async def test_auth_failure_counts_add_up_and_key_disabled() -> None:
    ep = make(lambda r: error(401))
    with pytest.raises(AuthenticationError):
        await ep.chat(REQ)
    assert_idle(ep)
    assert ep.stats()["keys"][0]["disabled"]
