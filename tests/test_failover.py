"""Mid-stream failover across the endpoints of a group, against sandbox emulators on 127.0.0.1 (real HTTP, the
sandbox's stream faults: ``stream_cut`` drops the connection after N events, ``stall`` stops sending while the
connection stays open). The real two-llama.cpp SIGKILL test is in test_real_failover.py."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import infermux
from infermux._failover import CallSplice
from infermux._resume import CONTINUE_INSTRUCTION, continuation_request, resumed_request
from infermux.config import endpoint_from_dict
from infermux.fleet import GroupConfig, group_from_dict
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread, parse_fault
from infermux.sandbox._model import Conversation, split_tokens
from infermux.transport import HTTPRequest, MockResponse, MockTransport
from infermux.types import (
    ChatRequest,
    Message,
    StreamEvent,
    StreamFinish,
    StreamResumed,
    StreamStart,
    TextDelta,
    ToolCallStart,
    Usage,
    UsageEvent,
)

pytestmark = pytest.mark.timeout(30)

QUESTION = "one two three four five six seven eight"
ANSWER = f"echo: {QUESTION}"  # the sandbox model's reply
MODELS = {"anthropic": "claude-3-5-haiku-latest", "openai": "gpt-4o-mini"}


def continuing(conv: Conversation) -> str:
    """A model that honours the "continue" instruction: it answers with the rest of ANSWER after the partial
    assistant turn (what a provider without prefill is sent on failover)."""
    if conv.last_user_text == CONTINUE_INSTRUCTION:
        partial = conv.messages[-2][1]
        assert conv.messages[-2][0] == "assistant" and ANSWER.startswith(partial)
        return ANSWER[len(partial) :]
    return f"echo: {conv.last_user_text}"


def endpoint(name: str, sb: Sandbox, provider: str, **kw: Any) -> infermux.EndpointConfig:
    url = sb.anthropic_base_url if provider == "anthropic" else sb.openai_base_url
    kw.setdefault("retry", RetryPolicy(max_retries=2, initial_delay=0.01))
    return infermux.EndpointConfig(
        name=name, provider=provider, base_url=url, model=MODELS[provider], api_keys=("sk-test",), **kw
    )


def posts(sb: Sandbox) -> int:
    return sum(n for route, n in sb.stats.snapshot()["routes"].items() if route.startswith("POST"))


async def collect(stream: infermux.ChatStream) -> tuple[list[StreamEvent], infermux.ChatResponse]:
    async with stream as s:
        events = [ev async for ev in s]
        return events, await s.final_response()


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def seams(events: list[StreamEvent]) -> list[tuple[str | None, str | None, str]]:
    return [(e.from_endpoint, e.to_endpoint, e.reason) for e in events if isinstance(e, StreamResumed)]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Sandbox, Sandbox]]:
    async with Sandbox() as a, Sandbox(responder=continuing) as b:
        yield a, b


async def test_cut_stream_resumes_once_on_its_endpoint_then_fails_over_with_prefill(
    pair: tuple[Sandbox, Sandbox],
) -> None:
    a, b = pair
    a.faults.set_default(Fault.stream_cut(5))  # every stream of a breaks after 3 text events (Anthropic framing)
    eps = [endpoint("a", a, "anthropic"), endpoint("b", b, "anthropic")]
    async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c:
        events, r = await collect(c.stream(QUESTION, model="g"))
        # one stream: one start, the whole answer once, a seam naming both endpoints
        assert sum(isinstance(e, StreamStart) for e in events) == 1
        assert text_of(events) == r.text == ANSWER
        assert seams(events) == [("a", "a", "APIConnectionError"), ("a", "b", "APIConnectionError")]
        assert isinstance(events[-1], StreamFinish) and r.finish_reason == "stop"
        assert [(h.endpoint, h.outcome, h.reason) for h in r.route] == [
            ("a", "APIConnectionError", "failover mid-stream"),
            ("b", "ok", None),
        ]
        assert r.endpoint == "b" and r.attempts == 3  # a twice (the cut, its resume), b once
        assert posts(a) == 2 and posts(b) == 1
        # usage adds the parts: a's two cut parts never reported usage (one output token per delta delivered),
        # b reported its own (the prompt with the prefill, and the rest of the answer)
        assert r.usage is not None and r.usage.output_tokens == len(split_tokens(ANSWER))
        assert r.usage.input_tokens > 0
        st = c.stats()
        assert st["a"]["attempt_failures"] == {"APIConnectionError": 2} and st["a"]["resumes"] == 1
        assert st["a"]["breaker"]["state"] == "closed" and st["b"]["successes"] == 1


async def test_transient_cut_is_resumed_on_the_same_endpoint_first(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    a.faults.push(Fault.stream_cut(4))  # one cut; a stays healthy
    eps = [endpoint("a", a, "openai"), endpoint("b", b, "openai")]
    async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c:
        events, r = await collect(c.stream(QUESTION, model="g"))
    assert r.text == ANSWER and seams(events) == [("a", "a", "APIConnectionError")]
    assert [h.endpoint for h in r.route] == ["a"] and posts(b) == 0


async def test_the_last_endpoint_resumes_itself_under_its_retry_policy(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    a.faults.set_default(Fault.stream_cut(5))
    b.faults.push(Fault.stream_cut(4), times=2)  # b breaks twice after one more word: nobody is left to take over
    eps = [endpoint("a", a, "anthropic"), endpoint("b", b, "anthropic")]
    async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c:
        events, r = await collect(c.stream(QUESTION, model="g"))
    assert r.text == ANSWER
    assert [s[:2] for s in seams(events)] == [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")]
    assert posts(b) == 3 and [h.endpoint for h in r.route] == ["a", "b"]


async def test_stalled_stream_fails_over_after_the_idle_timeout_with_a_continue_turn(
    pair: tuple[Sandbox, Sandbox],
) -> None:
    a, b = pair
    a.faults.set_default(Fault.stall(4, delay=20))  # 3 text chunks, then silence on an open connection
    eps = [endpoint("a", a, "openai"), endpoint("b", b, "openai")]
    group = GroupConfig("g", ("a", "b"), stream_idle_timeout=0.3)
    async with infermux.AsyncClient(eps, groups=[group], trust_env=False) as c:
        started = time.monotonic()
        events, r = await collect(c.stream(QUESTION, model="g"))
        took = time.monotonic() - started
        # a stall is not resumed on the stalled endpoint: straight to b, which is asked to continue (no prefill
        # for OpenAI) and whose continuation is spliced on
        assert seams(events) == [("a", "b", "StreamIdleTimeoutError")]
        assert text_of(events) == r.text == ANSWER
        assert 0.3 <= took < 5.0, took
        assert r.latency_s is not None and 0.3 <= r.latency_s <= took  # the whole call, both parts
        assert posts(a) == 1 and posts(b) == 1
        assert c.stats()["a"]["attempt_failures"] == {"StreamIdleTimeoutError": 1}
        assert r.route[0].outcome == "StreamIdleTimeoutError" and r.route[1].endpoint == "b"


async def test_endpoint_idle_timeout_applies_without_a_group_and_is_a_typed_error() -> None:
    async with Sandbox() as a:
        a.faults.set_default("stall=3;delay=20")
        ep = endpoint("a", a, "openai", stream_idle_timeout=0.2, retry=RetryPolicy(max_retries=0))
        async with infermux.AsyncClient([ep], trust_env=False) as c:
            got: list[str] = []
            with pytest.raises(infermux.StreamIdleTimeoutError) as ei:
                async with c.stream(QUESTION) as s:
                    async for piece in s.text():
                        got.append(piece)
    e = ei.value
    assert e.retryable and e.endpoint == "a" and e.provider == "openai" and e.request_id
    assert "".join(got) == "echo: one" and e.partial_text == "echo: one"


async def test_tool_call_cut_mid_stream_is_restarted_on_the_next_endpoint(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    a.faults.set_default(Fault.stream_cut(3))  # start, the tool call's first chunk, its arguments; then cut
    tool = {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    eps = [endpoint("a", a, "openai"), endpoint("b", b, "openai")]
    async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c:
        events, r = await collect(c.stream("call get_weather", model="g", tools=[tool]))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    resumed = [e for e in events if isinstance(e, StreamResumed)]
    assert len(starts) == 2 and starts[0].id != starts[1].id  # a's call, then b's from index 0 again
    assert len(resumed) == 1 and resumed[0].tool_calls_restarted and resumed[0].to_endpoint == "b"
    assert events.index(resumed[0]) < events.index(starts[1])
    # the final response holds b's call only, complete
    assert [(t.id, t.name) for t in r.tool_calls] == [(starts[1].id, "get_weather")]
    assert isinstance(r.tool_calls[0].arguments, dict) and "city" in r.tool_calls[0].arguments
    assert r.finish_reason == "tool_calls"


async def test_failover_is_opt_out_per_call_and_per_group(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    a.faults.set_default(Fault.stream_cut(4))
    eps = [endpoint("a", a, "openai", retry=RetryPolicy(max_retries=1, initial_delay=0.01))]
    eps.append(endpoint("b", b, "openai"))
    groups = [GroupConfig("g", ("a", "b")), GroupConfig("off", ("a", "b"), failover=False)]
    async with infermux.AsyncClient(eps, groups=groups, trust_env=False) as c:
        for kw in ({"model": "g", "failover": False}, {"model": "off"}):
            got: list[StreamEvent] = []
            with pytest.raises(infermux.APIConnectionError) as ei:
                async with c.stream(QUESTION, **kw) as s:  # type: ignore[arg-type]
                    async for ev in s:
                        got.append(ev)
            assert text_of(got) == "echo: one two" and ei.value.endpoint == "a"
            assert [h.endpoint for h in ei.value.route] == ["a"]
        assert posts(b) == 0
        # per call on: a call over an endpoint list (no group) fails over too
        events, r = await collect(c.stream(QUESTION, endpoints=["a", "b"], failover=True))
        assert r.text == ANSWER and seams(events)[-1][:2] == ("a", "b")


async def test_no_failover_outside_a_group_by_default(pair: tuple[Sandbox, Sandbox]) -> None:
    a, b = pair
    a.faults.set_default(Fault.stream_cut(4))
    eps = [endpoint("a", a, "openai", retry=RetryPolicy(max_retries=0)), endpoint("b", b, "openai")]
    async with infermux.AsyncClient(eps, trust_env=False) as c:
        with pytest.raises(infermux.APIConnectionError):
            await collect(c.stream(QUESTION, endpoints=["a", "b"]))
    assert posts(b) == 0


async def test_every_endpoint_breaking_after_content_is_one_typed_error_with_the_route(
    pair: tuple[Sandbox, Sandbox],
) -> None:
    a, b = pair
    a.faults.set_default(Fault.stream_cut(4))
    b.faults.set_default(Fault.stream_cut(2))  # b breaks right after its first continuation chunk
    eps = [endpoint("a", a, "openai", retry=RetryPolicy(max_retries=0))]
    eps.append(endpoint("b", b, "openai", retry=RetryPolicy(max_retries=0)))
    async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c:
        got: list[StreamEvent] = []
        with pytest.raises(infermux.AllEndpointsFailedError) as ei:
            async with c.stream(QUESTION, model="g") as s:
                async for ev in s:
                    got.append(ev)
    e = ei.value
    assert e.retryable and [x.endpoint for x in e.errors] == ["a", "b"]
    assert [(h.endpoint, h.reason) for h in e.route] == [("a", "failover mid-stream"), ("b", "no endpoint left")]
    assert text_of(got).startswith("echo: one two") and seams(got) == [("a", "b", "APIConnectionError")]


def test_sync_client_streams_fail_over() -> None:
    with SandboxThread() as a, SandboxThread(responder=continuing) as b:
        a.faults.set_default(Fault.stall(4, delay=20))
        eps = [
            infermux.EndpointConfig(
                name=n,
                provider="openai",
                base_url=sb.openai_base_url,
                model="gpt-4o-mini",
                api_keys=("k",),
                stream_idle_timeout=0.3,
            )
            for n, sb in (("a", a), ("b", b))
        ]
        with (
            infermux.Client(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c,
            c.stream(QUESTION, model="g") as s,
        ):
            events = list(s)
            r = s.final_response()
    assert r.text == ANSWER and seams(events) == [("a", "b", "StreamIdleTimeoutError")]
    assert [h.endpoint for h in r.route] == ["a", "b"]


# ---------------------------------------------------------------------- pure pieces


def test_continuation_request_prefill_or_continue_turn() -> None:
    req = ChatRequest(messages=(Message("user", "hi"),))
    pre = continuation_request(req, "Hello there ", prefill=True)
    assert [(m.role, m.content) for m in pre.messages] == [("user", "hi"), ("assistant", "Hello there")]
    cont = continuation_request(req, "Hello there ", prefill=False)
    assert [(m.role, m.content) for m in cont.messages] == [
        ("user", "hi"),
        ("assistant", "Hello there "),
        ("user", CONTINUE_INSTRUCTION),
    ]
    assert continuation_request(req, "  ", prefill=False) is req  # nothing delivered: the request as it was
    # a request that already ends with a partial assistant turn gets the delivered text appended to it
    own = ChatRequest(messages=(Message("user", "hi"), Message("assistant", "<tool_call>")))
    merged = resumed_request(own, '{"name": ', prefill=True)
    assert [(m.role, m.content) for m in merged.messages] == [("user", "hi"), ("assistant", '<tool_call>{"name":')]


def test_call_splice_drops_a_repeat_and_sums_usage() -> None:
    sp = CallSplice()
    out = [e for ev in (StreamStart("r1"), TextDelta("Hello"), TextDelta(" wor")) for e in sp.feed(ev)]
    assert [type(e).__name__ for e in out] == ["StreamStart", "TextDelta", "TextDelta"]
    sp.failover("a", "b", "APIConnectionError")
    seen: list[StreamEvent] = []
    for ev in (
        StreamStart("r2"),
        TextDelta("Hello"),
        TextDelta(" world"),
        TextDelta("!"),
        UsageEvent(Usage(10, 3)),
        StreamFinish("stop"),
    ):
        seen += sp.feed(ev)
    assert isinstance(seen[0], StreamResumed) and (seen[0].from_endpoint, seen[0].to_endpoint) == ("a", "b")
    assert not any(isinstance(e, StreamStart) for e in seen)
    assert sp.text == "Hello world!"  # b repeated the delivered text: dropped
    usage = [e.usage for e in seen if isinstance(e, UsageEvent)]
    assert usage == [Usage(10, 5)]  # a's cut part: 2 deltas, estimated; b's as reported


def test_stall_fault_and_config_validation() -> None:
    assert parse_fault("stall=3;delay=2") == Fault.stall(3, delay=2.0)
    with pytest.raises(infermux.ConfigurationError, match="stream_idle_timeout"):
        infermux.EndpointConfig(name="x", provider="openai", stream_idle_timeout=0)
    with pytest.raises(infermux.ConfigurationError, match="stream_idle_timeout"):
        GroupConfig("g", ("x",), stream_idle_timeout=-1)
    with pytest.raises(infermux.ConfigurationError, match="failover"):
        GroupConfig("g", ("x",), failover="yes")  # type: ignore[arg-type]
    # the same settings from a config file's tables
    g = group_from_dict({"name": "g", "endpoints": ["x", "y"], "failover": False, "stream_idle_timeout": 5})
    assert g.failover is False and g.stream_idle_timeout == 5
    e = endpoint_from_dict({"name": "x", "provider": "openai", "stream_idle_timeout": 12.5})
    assert e.stream_idle_timeout == 12.5
    assert infermux.EndpointConfig(name="x", provider="openai").stream_idle_timeout == 30.0  # the default


async def test_a_hedged_stream_that_breaks_fails_over_to_an_endpoint_not_yet_used() -> None:
    async with Sandbox() as a, Sandbox() as b, Sandbox() as c:
        a.faults.push(Fault.slow_headers(5.0))  # the primary is slow: the hedge to b wins the race
        b.faults.set_default(Fault.stream_cut(5))  # ... and b breaks mid-stream
        eps = [endpoint(n, sb, "anthropic") for n, sb in (("a", a), ("b", b), ("c", c))]
        async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b", "c"))], trust_env=False) as cl:
            events, r = await collect(cl.stream(QUESTION, model="g", hedge=0.05))
    assert r.text == ANSWER
    assert [s[:2] for s in seams(events)] == [("b", "b"), ("b", "c")]  # not back to a, the hedge's loser
    assert [(h.endpoint, h.outcome) for h in r.route] == [("a", "hedge_lost"), ("b", "APIConnectionError"), ("c", "ok")]


def _anthropic_sse(texts: list[str], *, end: str = "message_stop") -> list[bytes]:
    """An Anthropic Messages stream: start, one delta per text, then the end (``"overloaded"``: an in-band error)."""
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "m",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 7, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for t in texts:
        events.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
            )
        )
    if end == "overloaded":
        events.append(("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    else:
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": len(texts)}},
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


async def test_an_in_band_overload_mid_stream_fails_over_at_once_with_prefill() -> None:
    """In-band ``overloaded_error`` after text (no I/O, a fake clock): not resumed on the overloaded endpoint,
    continued on the other with the delivered text as the assistant turn; usage adds both parts."""
    bodies: list[dict[str, Any]] = []

    def answer(r: HTTPRequest) -> MockResponse:
        sse = {"content-type": "text/event-stream"}
        if r.url.startswith("http://a.mock"):
            return MockResponse(200, sse, _anthropic_sse(["Hello", " wor"], end="overloaded"))
        bodies.append(json.loads(r.body or b"{}"))
        return MockResponse(200, sse, _anthropic_sse(["ld", "!"]))

    clock = FakeClock()
    eps = [
        infermux.EndpointConfig(name=n, provider="anthropic", base_url=f"http://{n}.mock", model="m", api_keys=("k",))
        for n in ("a", "b")
    ]
    transport = MockTransport(answer)
    async with infermux.AsyncClient(
        eps, groups=[GroupConfig("g", ("a", "b"))], transport=transport, clock=clock, trust_env=False
    ) as c:
        events, r = await collect(c.stream("hi", model="g", max_tokens=10))
    assert r.text == "Hello world!" and seams(events) == [("a", "b", "OverloadedError")]
    assert [m["role"] for m in bodies[0]["messages"]] == ["user", "assistant"]
    assert bodies[0]["messages"][-1]["content"] in ("Hello wor", [{"type": "text", "text": "Hello wor"}])
    assert bodies[0]["max_tokens"] == 8  # 10, less the 2 deltas delivered
    assert sum(1 for q in transport.requests if q.url.startswith("http://a.mock")) == 1  # not resumed on a
    assert r.usage == Usage(input_tokens=7, output_tokens=4)  # a: 2 deltas (no usage reported), b: 7 in, 2 out
    assert clock.sleeps == []  # no backoff: the overloaded endpoint was left at once
