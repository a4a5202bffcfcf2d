"""The per-call hot path's promises: a call leaves nothing to the garbage collector's async-generator
finalizer (the router's routing generator is closed when the call ends, not later through the loop's
thread-safe wake-up and an extra task per call), and a stream parser hands out a message's events before it
parses the next message of the same network read."""

from __future__ import annotations

import gc
import json
import sys
from typing import Any

import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import MalformedResponseError
from infermux.providers import openai as oa
from infermux.resilience.clock import FakeClock
from infermux.transport import MockResponse, MockTransport
from infermux.types import StreamStart, TextDelta

pytestmark = [pytest.mark.timeout(20)]

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + json.dumps(body).encode() + b"\n\n"


STREAM = chunk({"role": "assistant", "content": ""}) + chunk({"content": "he"}) + chunk({"content": "llo"})
STREAM += chunk({}, "stop") + b"data: [DONE]\n\n"


def handler(req: Any) -> MockResponse:
    if json.loads(req.body or b"{}").get("stream"):
        return MockResponse(200, SSE, STREAM)
    body = {
        "id": "c",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    }
    return MockResponse(200, JSON, json.dumps(body).encode())


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_leaves_no_async_generator_to_the_finalizer(stream: bool) -> None:
    clock = FakeClock()
    config = EndpointConfig(name="a", provider="openai", base_url="http://mock/v1", model="m")
    endpoint = Endpoint(config, transport=MockTransport(handler), clock=clock)
    finalized: list[str] = []
    firstiter, finalizer = sys.get_asyncgen_hooks()
    assert finalizer is not None

    def spy(agen: Any) -> None:
        finalized.append(agen.ag_code.co_qualname if hasattr(agen.ag_code, "co_qualname") else agen.__name__)
        finalizer(agen)

    async with infermux.AsyncClient([endpoint], clock=clock) as client:
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=spy)
        try:
            for _ in range(3):
                if stream:
                    async with client.stream("hi") as s:
                        text = "".join([ev.text async for ev in s if isinstance(ev, TextDelta)])
                    assert text == "hello"
                else:
                    assert (await client.chat("hi")).text == "ok"
            gc.collect()
        finally:
            sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    assert finalized == []


def test_iter_feed_gives_a_messages_events_before_parsing_the_next() -> None:
    parser = oa.ChatStreamParser()
    events = parser.iter_feed(chunk({"role": "assistant", "content": "hi"}) + b"data: {not json\n\n")
    assert isinstance(next(events), StreamStart)
    assert next(events) == TextDelta("hi")  # out before the broken message after it is parsed
    with pytest.raises(MalformedResponseError):
        next(events)


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_iter_feed_gives_what_feed_gives(size: int) -> None:
    a, b = oa.ChatStreamParser(), oa.ChatStreamParser()
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    by_feed = [ev for p in pieces for ev in a.feed(p)] + a.close()
    by_iter = [ev for p in pieces for ev in b.iter_feed(p)] + b.close()
    assert by_iter == by_feed and len(by_feed) >= 4


def test_evolve_is_replace_for_the_response_types() -> None:
    import dataclasses

    from infermux._evolve import evolve
    from infermux.types import ChatResponse, EmbedResponse, RouteHop, Usage

    chat = ChatResponse(text="hi", usage=Usage(1, 2), model="m", raw={"id": "x"})
    stamp = {"model": "m2", "provider": "openai", "endpoint": "a", "latency_s": 0.5, "attempts": 2}
    assert evolve(chat, **stamp) == dataclasses.replace(chat, **stamp)
    route = (RouteHop("a", None, "ok", None, 1),)
    assert evolve(chat, route=route).route == route and chat.route == ()
    emb = EmbedResponse(vectors=((1.0, 2.0),), model="e")
    assert evolve(emb, endpoint="b") == dataclasses.replace(emb, endpoint="b")
    with pytest.raises(TypeError, match="no field"):
        evolve(chat, nope=1)
    usage = Usage(1, 2)  # another dataclass: replaced as dataclasses.replace does
    assert evolve(usage, input_tokens=3) == dataclasses.replace(usage, input_tokens=3)


def test_request_ids_are_uuid4_hex() -> None:
    import uuid

    from infermux._ids import new_request_id

    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for rid in ids:
        u = uuid.UUID(hex=rid)
        assert u.hex == rid and u.version == 4 and u.variant == uuid.RFC_4122


def _status(code: int) -> Any:
    def handle(req: Any) -> MockResponse:
        if code == 200:
            return handler(req)
        return MockResponse(code, JSON, json.dumps({"error": {"message": "no", "type": "x"}}).encode())

    return handle


async def _generic_run(router: Any, target: Any, fn: Any, budget: Any) -> Any:
    """Router.run's general loop (what a call to one endpoint went through before its one-step path)."""
    routing = router.routing(target, budget)
    async for ep, step in routing:
        try:
            result = await fn(ep, step)
        except infermux.InfermuxError as e:
            routing.failed(ep, e)
            continue
        return routing.succeeded(ep, result)
    return routing.outcome()


@pytest.mark.parametrize("code", [200, 400, 503])
@pytest.mark.parametrize("spent", [False, True])
async def test_one_endpoint_routes_as_the_general_loop_does(code: int, spent: bool) -> None:
    from infermux.resilience.retry import RetryPolicy
    from infermux.router import Budget, Router, Target
    from infermux.types import ChatRequest, Message

    outcomes = []
    for path in ("fast", "general"):
        clock = FakeClock()
        config = EndpointConfig(
            name="a", provider="openai", base_url="http://mock/v1", model="m", retry=RetryPolicy(max_retries=1)
        )
        ep = Endpoint(config, transport=MockTransport(_status(code)), clock=clock)
        router = Router([ep])
        req = ChatRequest(messages=(Message("user", "hi"),))
        steps: list[Any] = []

        async def fn(e: Endpoint, st: Any, steps: list[Any] = steps, req: ChatRequest = req) -> Any:
            steps.append(st)
            return await e.chat(req, timeout=st.timeout, wait=st.wait, share=st.share, request_id="r1")

        budget = Budget(clock, 30.0)
        if spent:
            clock.advance(31.0)
        target = Target(None, [ep], None, None)
        try:
            if path == "fast":
                out: Any = await router.run(target, fn, budget)
            else:
                out = await _generic_run(router, target, fn, budget)
            outcomes.append(("ok", out.route, out.attempts, steps, ep.stats()["requests"]))
        except infermux.InfermuxError as e:
            outcomes.append((type(e).__name__, e.route, e.attempts, steps, ep.stats()["requests"], str(e)))
    assert outcomes[0] == outcomes[1]


_BODIES = [
    b'{"a":1}',
    b'{"a":1}  \n',
    b'  {"a":1}',
    b'{"a":1} x',
    b'{"a":1}{"b":2}',
    b"{",
    b'{"a":',
    b"",
    b"[1]",
    b'{"a": NaN, "b": 1e400, "c": 123456789012345678901234567890}',
    b'{"a":"\xff"}',
    b'{"a":"\xed\xa0\x80"}',
    '{"a":"é"}'.encode(),
    '{"a":1}'.encode("utf-16-le"),
    '{"a":1}'.encode("utf-32-be"),
    b'\xef\xbb\xbf{"a":1}',
    b'{"a": {"b": [1, 2, {"c": null}]}, "d": true}',
]


@pytest.mark.parametrize("body", _BODIES)
def test_the_json_decode_fast_path_is_json_loads(body: bytes) -> None:
    from infermux.providers._base import _loads

    def outcome(f: Any) -> Any:
        try:
            return "ok", json.dumps(f(body))  # NaN-safe comparison
        except ValueError as e:
            return type(e).__name__, str(e)

    assert outcome(_loads) == outcome(json.loads)


@pytest.mark.parametrize("text", [b.decode("utf-8", "replace") for b in _BODIES] + ["\ufeff{}", "{}\ufeff"])
def test_the_json_text_fast_path_is_json_loads(text: str) -> None:
    from infermux.providers._base import loads_text

    def outcome(f: Any) -> Any:
        try:
            return "ok", json.dumps(f(text))
        except ValueError as e:
            return type(e).__name__, str(e)

    assert outcome(loads_text) == outcome(json.loads)


def test_the_json_encode_fast_path_is_json_dumps() -> None:
    from infermux._validate import _dumps

    class Odd:
        pass

    circular: dict[str, Any] = {}
    circular["a"] = circular
    cases: list[Any] = [
        {"a": 1},
        {"a": [1, 2.5, None, True, "é\n\u2028"], "b": {"c": float("nan")}},
        {"x": "\ud800"},
        {1: 2, None: 3, 2.5: 1, False: 0},
        {"t": (1, 2)},
        {"o": Odd()},
        circular,
        [1, {"a": 2}],
        "text",
    ]
    for data in cases:
        results = []
        for f in (lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False), _dumps):
            try:
                results.append(("ok", f(data)))
            except (TypeError, ValueError) as e:
                results.append((type(e).__name__, str(e)))
        assert results[0] == results[1], data


def test_fast_init_builds_what_the_dataclass_init_builds() -> None:
    import dataclasses

    from infermux._evolve import fast_init
    from infermux.router import Step
    from infermux.types import ChatResponse, Message, RouteHop, Usage

    new_chat, new_usage = fast_init(ChatResponse), fast_init(Usage)
    assert new_chat is not ChatResponse and new_usage is not Usage
    kw: dict[str, Any] = {"text": "hi", "finish_reason": "stop", "model": "m", "raw": {"id": "x"}, "reasoning": "r"}
    made, reference = new_chat(**kw, usage=new_usage(1, 2, cached_tokens=3)), ChatResponse(**kw, usage=Usage(1, 2, 3))
    assert type(made) is ChatResponse and made == reference and repr(made) == repr(reference)
    assert hash(made.usage) == hash(reference.usage) and made.route == () and made.attempts == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.text = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        new_chat(model="m")  # text is required
    with pytest.raises(TypeError):
        new_chat(text="x", nope=1)
    assert fast_init(Step)(True, 1.0, False) == Step(True, 1.0, False)
    assert fast_init(RouteHop)("a", None, "ok") == RouteHop("a", None, "ok")
    # a __post_init__ (validation) or a default factory: the class itself, nothing skipped
    assert fast_init(Message) is Message

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    assert fast_init(WithFactory) is WithFactory


@pytest.mark.parametrize("seed", range(6))
def test_sse_decoder_gives_the_same_messages_for_any_split_and_line_end(seed: int) -> None:
    import random

    from infermux.providers._sse import SSEDecoder

    rnd = random.Random(seed)
    ends = [b"\n", b"\r\n", b"\r"] if seed % 2 else [b"\n"]  # LF only: the split-once path throughout
    body, expected = b"", []
    for i in range(40):
        end = rnd.choice(ends)
        lines = [b": keep-alive"] if rnd.random() < 0.2 else []
        event = f"e{i}" if rnd.random() < 0.3 else None
        if event:
            lines.append(b"event: " + event.encode())
        data = [f'{{"n":{i},"t":"é{rnd.randint(0, 9)}"}}' for _ in range(rnd.randint(1, 2))]
        lines += [b"data: " + d.encode() for d in data]
        body += end.join(lines) + end + end
        expected.append((event, "\n".join(data)))
    for _ in range(5):
        dec, got = SSEDecoder(), []
        cuts = sorted(rnd.sample(range(1, len(body)), rnd.randint(1, 60)))
        for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True):
            got += dec.feed(body[a:b])
        got += dec.close()
        assert [(m.event, m.data) for m in got] == expected
