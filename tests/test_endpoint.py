"""The endpoint engine and client over an in-process MockTransport with a fake clock (no real sleeps)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    AllEndpointsFailedError,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    DeadlineExceededError,
    IncompleteStreamError,
    InternalServerError,
    KeyPoolExhaustedError,
    MalformedResponseError,
    QueueFullError,
    RateLimitError,
)
from infermux.resilience.breaker import BreakerConfig
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport
from infermux.types import ChatRequest, Message, StreamFinish, StreamResumed, TextDelta

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")  # leaks fail the test

JSON = {"content-type": "application/json"}


def completion(text: str = "hi") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()


def error(status: int, headers: dict[str, str] | None = None) -> MockResponse:
    body = json.dumps({"error": {"message": f"err {status}", "type": "server_error"}}).encode()
    return MockResponse(status, {**JSON, **(headers or {})}, body)


def sse(*texts: str, done: bool = True) -> list[bytes]:
    chunks = []
    for i, t in enumerate(texts):
        delta: dict[str, Any] = {"content": t}
        if i == 0:
            delta["role"] = "assistant"
        c = {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": delta}]}
        chunks.append(f"data: {json.dumps(c)}\n\n".encode())
    if done:
        fin = {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        chunks.append(f"data: {json.dumps(fin)}\n\n".encode())
        chunks.append(b"data: [DONE]\n\n")
    return chunks


def make(
    handler: Callable[[HTTPRequest], MockResponse],
    *,
    clock: FakeClock | None = None,
    keys: tuple[str, ...] = ("sk-secret-one",),
    **cfg: Any,
) -> tuple[Endpoint, MockTransport, FakeClock]:
    clock = clock or FakeClock()
    transport = MockTransport(handler)
    config = EndpointConfig(name="ep", provider="openai", base_url="http://mock/v1", model="m", api_keys=keys, **cfg)
    return Endpoint(config, transport=transport, clock=clock, rand=lambda: 0.5), transport, clock


REQ = ChatRequest((Message.user("hello"),))


async def test_retries_5xx_with_backoff_and_keeps_request_id() -> None:
    answers = [error(503), error(500), MockResponse(200, JSON, completion("ok"))]
    ep, t, clock = make(lambda r: answers.pop(0))
    r = await ep.chat(REQ)
    assert r.text == "ok" and r.attempts == 3 and r.endpoint == "ep" and r.provider == "openai"
    ids = {req.headers["x-request-id"] for req in t.requests}
    assert ids == {r.request_id}
    assert [req.headers["x-infermux-attempt"] for req in t.requests] == ["1", "2", "3"]
    # full jitter with rand=0.5: 0.5 * 1.0, then 0.5 * 2.0
    assert clock.sleeps == pytest.approx([0.5, 1.0])
    s = ep.stats()
    assert s["retries"] == 2 and s["attempts"] == 3 and s["successes"] == 1 and s["tokens_in"] == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_no_retry_on_caller_errors(status: int) -> None:
    ep, t, _ = make(lambda r: error(status), keys=("k1", "k2"))
    with pytest.raises(infermux.APIStatusError) as ei:
        await ep.chat(REQ)
    assert len(t.requests) == 1
    e = ei.value
    assert e.status_code == status and not e.retryable
    assert (e.provider, e.endpoint, e.model, e.attempts) == ("openai", "ep", "m", 1)
    assert e.request_id == t.requests[0].headers["x-request-id"]


async def test_retry_after_ms_is_honoured() -> None:
    answers = [error(429, {"retry-after-ms": "250"}), MockResponse(200, JSON, completion())]
    ep, _, clock = make(lambda r: answers.pop(0), keys=())
    await ep.chat(REQ)
    assert clock.sleeps[0] >= 0.25 and clock.sleeps[0] <= 0.25 * 1.1 + 1e-9


async def test_429_rotates_to_the_other_key_and_cools_the_first() -> None:
    seen: list[str] = []

    def handler(req: HTTPRequest) -> MockResponse:
        seen.append(req.headers["authorization"])
        if req.headers["authorization"] == "Bearer key-A":
            return error(429, {"retry-after": "30"})
        return MockResponse(200, JSON, completion())

    ep, _, _ = make(handler, keys=("key-A", "key-B"), retry=RetryPolicy(max_retry_after=60))
    await ep.chat(REQ)
    await ep.chat(REQ)
    assert seen == ["Bearer key-A", "Bearer key-B", "Bearer key-B"]
    snap = ep.stats()["keys"]
    assert snap[0]["rate_limited"] == 1 and snap[0]["cooling_down_for"] > 0


async def test_401_disables_key_then_pool_exhausted_without_leaking_keys() -> None:
    ep, t, _ = make(lambda r: error(401), keys=("sk-AAAAsecret", "sk-BBBBsecret"))
    with pytest.raises(AuthenticationError):
        await ep.chat(REQ)
    with pytest.raises(AuthenticationError):
        await ep.chat(REQ)
    with pytest.raises(KeyPoolExhaustedError) as ei:
        await ep.chat(REQ)
    assert len(t.requests) == 2
    text = str(ei.value) + repr(ei.value) + repr(ep.stats()) + repr(ep.config) + repr(ep)
    assert "secret" not in text


async def test_breaker_opens_and_fails_fast_without_touching_the_server() -> None:
    cfg = BreakerConfig(consecutive_failures=3, open_seconds=10.0, minimum_calls=100)
    ep, t, clock = make(lambda r: error(503), breaker=cfg, retry=RetryPolicy(max_retries=0), fail_fast=True)
    for _ in range(3):
        with pytest.raises(InternalServerError):
            await ep.chat(REQ)
    with pytest.raises(CircuitOpenError) as ei:
        await ep.chat(REQ)
    assert len(t.requests) == 3
    assert ei.value.retry_after == pytest.approx(10.0) and ei.value.endpoint == "ep"
    clock.advance(10.0)
    with pytest.raises(InternalServerError):  # the probe goes through, fails, breaker re-opens
        await ep.chat(REQ)
    assert len(t.requests) == 4
    assert ep.stats()["breaker"]["state"] == "open"


async def test_open_breaker_makes_the_caller_wait_for_the_probe_by_default() -> None:
    cfg = BreakerConfig(consecutive_failures=3, open_seconds=10.0, minimum_calls=100)
    answers = [error(503)] * 3 + [MockResponse(200, JSON, completion("back"))]
    ep, t, clock = make(lambda r: answers.pop(0), breaker=cfg, retry=RetryPolicy(max_retries=0))
    for _ in range(3):
        with pytest.raises(InternalServerError):
            await ep.chat(REQ)
    assert ep.breaker.state.value == "open"
    t0 = clock.now()
    r = await ep.chat(REQ)  # waits out the open period (on the fake clock), goes as the probe, succeeds
    assert r.text == "back" and r.attempts == 1 and clock.now() - t0 == pytest.approx(10.0)
    assert ep.breaker.state.value == "closed" and len(t.requests) == 4
    assert ep.stats()["waits"] >= 1 and ep.stats()["circuit_rejections"] == 0


async def test_malformed_200_is_typed_and_retried() -> None:
    html = MockResponse(200, {"content-type": "text/html"}, b"<html>proxy error</html>")
    trunc = MockResponse(200, JSON, completion()[:20])
    answers = [html, trunc]
    ep, t, _ = make(lambda r: answers.pop(0), retry=RetryPolicy(max_retries=1))
    with pytest.raises(MalformedResponseError) as ei:
        await ep.chat(REQ)
    assert len(t.requests) == 2 and ei.value.attempts == 2


async def test_deadline_bounds_retries() -> None:
    ep, t, _ = make(lambda r: error(503), retry=RetryPolicy(max_retries=10, deadline=2.5, initial_delay=1.0))
    with pytest.raises(InternalServerError):
        await ep.chat(REQ)
    # waits 0.5, 1.0 (elapsed 1.5); the next wait of 2.0 would cross the 2.5 s deadline
    assert len(t.requests) == 3


async def test_slow_server_hits_deadline() -> None:
    async def slow(req: HTTPRequest) -> MockResponse:
        await asyncio.sleep(5)
        return MockResponse(200, JSON, completion())

    ep, _, _ = make(slow)  # type: ignore[arg-type]
    with pytest.raises(DeadlineExceededError):
        await ep.chat(REQ, timeout=0.05)


async def test_stream_ok_and_incomplete_stream_is_an_error() -> None:
    ep, _, _ = make(lambda r: MockResponse(200, {"content-type": "text/event-stream"}, sse("a", "b")))
    events = [ev async for ev in ep.stream(REQ)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "ab"
    assert isinstance(events[-1], StreamFinish)

    ep2, t2, _ = make(
        lambda r: MockResponse(200, {"content-type": "text/event-stream"}, sse("a", "b", done=False)),
        retry=RetryPolicy(max_retries=3),
    )
    got: list[str] = []
    with pytest.raises(IncompleteStreamError) as ei:
        async for ev in ep2.stream(REQ, resume=False):
            if isinstance(ev, TextDelta):
                got.append(ev.text)
    assert got == ["a", "b"] and ei.value.partial_text == "ab"
    assert len(t2.requests) == 1  # content reached the caller and resuming is off: never retried

    # resuming on (the default): every resent stream repeats "ab" and is cut again; the caller sees "ab" once
    ep3, t3, _ = make(
        lambda r: MockResponse(200, {"content-type": "text/event-stream"}, sse("a", "b", done=False)),
        retry=RetryPolicy(max_retries=3),
    )
    seen: list[object] = []
    with pytest.raises(IncompleteStreamError):
        async for ev in ep3.stream(REQ):
            seen.append(ev)
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "ab"
    assert sum(isinstance(e, StreamResumed) for e in seen) == 3 and len(t3.requests) == 4


async def test_a_resumed_stream_keeps_the_calls_extra_headers() -> None:
    """The resent request of a resumed stream carries the call's ``extra_headers``, as every attempt does."""
    seen: list[HTTPRequest] = []

    def answer(r: HTTPRequest) -> MockResponse:
        seen.append(r)
        return MockResponse(200, {"content-type": "text/event-stream"}, sse("a", "b", done=len(seen) > 1))

    ep, _, _ = make(answer)
    req = ChatRequest((Message.user("hello"),), extra_headers={"x-tenant": "t1"})
    events = [ev async for ev in ep.stream(req)]
    assert sum(isinstance(e, StreamResumed) for e in events) == 1 and len(seen) == 2
    assert [r.headers.get("x-tenant") for r in seen] == ["t1", "t1"]


async def test_stream_retried_when_nothing_was_delivered() -> None:
    answers = [error(503), MockResponse(200, {"content-type": "text/event-stream"}, sse("x"))]
    ep, t, _ = make(lambda r: answers.pop(0))
    text = "".join([ev.text async for ev in ep.stream(REQ) if isinstance(ev, TextDelta)])
    assert text == "x" and len(t.requests) == 2


async def test_queue_full_rejects_newcomer() -> None:
    gate = asyncio.Event()

    async def held(req: HTTPRequest) -> MockResponse:
        await gate.wait()
        return MockResponse(200, JSON, completion())

    ep, _, _ = make(held, max_concurrency=1, max_queue=0)  # type: ignore[arg-type]
    first = asyncio.create_task(ep.chat(REQ))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    with pytest.raises(QueueFullError) as ei:
        await ep.chat(REQ)
    assert ei.value.endpoint == "ep" and ei.value.retryable
    gate.set()
    assert (await first).text == "hi"
    assert ep.stats()["queue_rejected"] == 1


async def test_client_falls_back_to_next_endpoint_and_reports_all_failures() -> None:
    clock = FakeClock()
    bad = MockTransport(lambda r: error(503))
    good = MockTransport(lambda r: MockResponse(200, JSON, completion("from-b")))
    no_retry = RetryPolicy(max_retries=0)
    a = Endpoint(EndpointConfig("a", "openai", "http://a/v1", model="m", retry=no_retry), transport=bad, clock=clock)
    b = Endpoint(EndpointConfig("b", "openai", "http://b/v1", model="m", retry=no_retry), transport=good, clock=clock)
    c = Endpoint(EndpointConfig("c", "openai", "http://c/v1", model="m", retry=no_retry), transport=bad, clock=clock)
    async with infermux.AsyncClient([a, b]) as client:
        r = await client.chat("hello")
        assert r.text == "from-b" and r.endpoint == "b"
        assert client.stats()["a"]["failures_total"] == 1
    async with infermux.AsyncClient([a, c]) as client:
        with pytest.raises(AllEndpointsFailedError) as ei:
            await client.chat("hello")
        assert [e.endpoint for e in ei.value.errors] == ["a", "c"] and ei.value.retryable


async def test_client_does_not_fall_back_on_bad_request() -> None:
    clock = FakeClock()
    a = Endpoint(
        EndpointConfig("a", "openai", "http://a/v1", model="m"),
        transport=MockTransport(lambda r: error(400)),
        clock=clock,
    )
    b_t = MockTransport(lambda r: MockResponse(200, JSON, completion()))
    b = Endpoint(EndpointConfig("b", "openai", "http://b/v1", model="m"), transport=b_t, clock=clock)
    async with infermux.AsyncClient([a, b]) as client:
        with pytest.raises(BadRequestError):
            await client.chat("hello")
    assert b_t.requests == []


async def test_rate_limited_after_retries_has_typed_error() -> None:
    ep, t, _ = make(lambda r: error(429, {"retry-after": "1"}), keys=(), retry=RetryPolicy(max_retries=2))
    with pytest.raises(RateLimitError) as ei:
        await ep.chat(REQ)
    assert len(t.requests) == 3 and ei.value.retry_after == 1.0 and ei.value.attempts == 3


def test_sync_client_chat_and_stream() -> None:
    def handler(req: HTTPRequest) -> MockResponse:
        body = json.loads(req.body or b"{}")
        if body.get("stream"):
            return MockResponse(200, {"content-type": "text/event-stream"}, sse("s1", "s2"))
        return MockResponse(200, JSON, completion("sync"))

    cfg = EndpointConfig("e", "openai", "http://mock/v1", model="m")
    with infermux.Client([Endpoint(cfg, transport=MockTransport(handler))]) as client:
        assert client.chat("hi").text == "sync"
        with client.stream("hi") as s:
            assert "".join(s.text()) == "s1s2"
            assert s.final_response().text == "s1s2"


def test_bad_input_is_a_configuration_error() -> None:
    with pytest.raises(infermux.ConfigurationError):
        infermux.Message("robot", "x")  # type: ignore[arg-type]
    with pytest.raises(infermux.ConfigurationError):
        ChatRequest(())
    with pytest.raises(infermux.ConfigurationError):
        EndpointConfig("x", "no-such-provider", "http://x")  # fine as config...
        Endpoint(EndpointConfig("x", "no-such-provider", "http://x"))
    with pytest.raises(infermux.ConfigurationError):
        Endpoint(EndpointConfig("x", "openai", "ftp://x"))


async def test_breaker_state_change_callback() -> None:
    changes: list[tuple[str, str, str]] = []
    clock = FakeClock()
    cfg = EndpointConfig(
        "cb",
        "openai",
        "http://mock/v1",
        model="m",
        retry=RetryPolicy(max_retries=0),
        breaker=BreakerConfig(consecutive_failures=2, open_seconds=5.0),
    )
    answers = [error(500), error(500), MockResponse(200, JSON, completion())]
    ep = Endpoint(
        cfg,
        transport=MockTransport(lambda r: answers.pop(0)),
        clock=clock,
        on_breaker_change=lambda name, old, new: changes.append((name, old.value, new.value)),
    )
    for _ in range(2):
        with pytest.raises(InternalServerError):
            await ep.chat(REQ)
    clock.advance(5.0)
    assert (await ep.chat(REQ)).text == "hi"
    assert changes == [("cb", "closed", "open"), ("cb", "open", "half_open"), ("cb", "half_open", "closed")]
