"""Model groups and routing strategies (ordered, round robin, exact weights, least loaded, lowest latency,
prefix affinity), per-call overrides, fallback groups by error class and the route every answer carries.
Everything on a FakeClock with MockTransport endpoints: no sleeping, no network."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import AllEndpointsFailedError, BadRequestError, ConfigurationError, InternalServerError
from infermux.fleet import GroupConfig, error_category
from infermux.resilience.breaker import BreakerConfig
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.strategies import PrefixAffinity, Weighted, exact_weights
from infermux.transport import HTTPRequest, MockResponse, MockTransport

pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("error::ResourceWarning")]

JSON = {"content-type": "application/json"}
NO_RETRY = RetryPolicy(max_retries=0)


def completion(text: str = "ok", finish: str = "stop") -> MockResponse:
    body = {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    return MockResponse(200, JSON, json.dumps(body).encode())


def error(status: int, code: str = "server_error", message: str = "x") -> MockResponse:
    body = {"error": {"message": message, "type": "invalid_request_error" if status < 500 else code, "code": code}}
    return MockResponse(status, JSON, json.dumps(body).encode())


def ep(name: str, clock: FakeClock, handler: Any = None, **kw: Any) -> Endpoint:
    kw.setdefault("retry", NO_RETRY)
    config = EndpointConfig(name=name, provider="openai", base_url=f"http://{name}/v1", model=f"m-{name}", **kw)
    return Endpoint(config, transport=MockTransport(handler or (lambda r: completion(name))), clock=clock)


def client(eps: list[Endpoint], *groups: GroupConfig, **kw: Any) -> infermux.AsyncClient:
    return infermux.AsyncClient(eps, groups=list(groups), trust_env=False, **kw)


async def served(c: infermux.AsyncClient, n: int, **kw: Any) -> list[str]:
    out = []
    for _ in range(n):
        r = await c.chat("hi", model=kw.pop("model", "g"), **kw)
        out.append(r.endpoint or "")
    return out


# ---------------------------------------------------------------------- strategies


async def test_ordered_is_tiers_and_each_member_answers_with_its_own_model() -> None:
    clock = FakeClock()
    eps = [ep(n, clock) for n in "abc"]
    async with client(eps, GroupConfig("g", ("a", "b", "c"))) as c:
        assert await served(c, 3) == ["a", "a", "a"]
        sent = json.loads(eps[0].transport.requests[0].body or b"")  # type: ignore[attr-defined]
        assert sent["model"] == "m-a"  # the group's name is not sent as a model
        r = await c.chat("hi", model="g")
        assert [(h.endpoint, h.group, h.outcome) for h in r.route] == [("a", "g", "ok")]


async def test_round_robin_rotates_and_skips_an_open_breaker() -> None:
    clock = FakeClock()
    calls: Counter[str] = Counter()

    def flaky(r: HTTPRequest) -> MockResponse:
        calls["b"] += 1
        return error(503)

    eps = [ep("a", clock), ep("b", clock, flaky, breaker=BreakerConfig(consecutive_failures=1)), ep("c", clock)]
    async with client(eps, GroupConfig("g", ("a", "b", "c"), strategy="round_robin")) as c:
        assert await served(c, 2) == ["a", "c"]  # b failed (503) and the router moved on to c
        assert eps[1].breaker.state.value == "open"
        assert await served(c, 4) == ["a", "c", "a", "c"]  # b is skipped while open
        assert calls["b"] == 1


def test_exact_weights_read_decimals_exactly() -> None:
    assert exact_weights({"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 5, "b": 3, "c": 2}
    assert exact_weights({"a": 0.1, "b": 0.7}) == {"a": 1, "b": 7}  # not the binary floats' ratio
    assert exact_weights({"a": 2, "b": 4}) == {"a": 1, "b": 2}
    assert exact_weights({"a": 1.5, "b": 1}) == {"a": 3, "b": 2}


async def test_weighted_fractional_weights_are_kept_exactly() -> None:
    clock = FakeClock()
    eps = [ep(n, clock) for n in "abc"]
    g = GroupConfig("g", ("a", "b", "c"), strategy="weighted", weights={"a": 0.5, "b": 0.3, "c": 0.2})
    async with client(eps, g) as c:
        got = await served(c, 1000)
    assert Counter(got) == {"a": 500, "b": 300, "c": 200}
    for i in range(0, 1000, 10):  # exact over every window of sum(weights) calls, not only on average
        assert Counter(got[i : i + 10]) == {"a": 5, "b": 3, "c": 2}


def test_weighted_is_smooth_and_weights_only_the_free_endpoints() -> None:
    class E:
        def __init__(self, name: str) -> None:
            self.name = name

    a, b, c = E("a"), E("b"), E("c")
    w = Weighted({"a": 5, "b": 1, "c": 1})
    seq = [w.order([a, b, c], [a, b, c], None, 0.0)[0].name for _ in range(7)]  # type: ignore[list-item]
    assert seq == ["a", "a", "b", "a", "c", "a", "a"]
    seq = [w.order([b, c], [a, b, c], None, 0.0)[0].name for _ in range(4)]  # type: ignore[list-item]
    assert Counter(seq) == {"b": 2, "c": 2}


async def test_least_loaded_prefers_the_endpoint_with_fewer_calls_in_flight() -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def slow(r: HTTPRequest) -> MockResponse:
        await gate.wait()
        return completion("a")

    eps = [ep("a", clock, slow, max_concurrency=4), ep("b", clock, max_concurrency=4)]
    async with client(eps, GroupConfig("g", ("a", "b"), strategy="least_loaded")) as c:
        held = asyncio.ensure_future(c.chat("hi", model="g"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert eps[0].gate.in_flight == 1
        assert await served(c, 3) == ["b", "b", "b"]  # a has one in flight: b (load 0) first
        gate.set()
        assert (await held).endpoint == "a"
        assert await served(c, 1) == ["a"]  # both idle: configured order


async def test_lowest_latency_uses_the_ewma_and_remeasures_stale_endpoints() -> None:
    clock = FakeClock()
    latency = {"a": 2.0, "b": 0.5, "c": 1.0}

    def timed(name: str) -> Any:
        async def handler(r: HTTPRequest) -> MockResponse:
            await clock.sleep(latency[name])
            return completion(name)

        return handler

    eps = [ep(n, clock, timed(n)) for n in "abc"]
    async with client(eps, GroupConfig("g", ("a", "b", "c"), strategy="lowest_latency")) as c:
        assert await served(c, 3) == ["a", "b", "c"]  # each unmeasured endpoint is measured once first
        assert await served(c, 5) == ["b"] * 5
        assert eps[1].counters.ewma == pytest.approx(0.5)
        latency["b"] = 3.0  # b slows down: its EWMA rises until c is faster
        got = await served(c, 6)
        assert got[0] == "b" and "c" in got and got[-1] == "c"
        clock.advance(31)  # a was not measured for explore_after seconds: it gets one call
        assert await served(c, 1) == ["a"]
        assert eps[0].counters.ewma_at == clock.now()


def test_prefix_affinity_ring_moves_few_keys_when_an_endpoint_is_added() -> None:
    ring = PrefixAffinity()
    keys = [f"system prompt {i}" for i in range(2000)]
    four = {k: ring.owners(k, ["a", "b", "c", "d"])[0] for k in keys}
    five = {k: ring.owners(k, ["a", "b", "c", "d", "e"])[0] for k in keys}
    moved = [k for k in keys if four[k] != five[k]]
    assert all(five[k] == "e" for k in moved)  # only keys that now belong to the new endpoint move
    assert 0.1 < len(moved) / len(keys) < 0.3  # about 1/5 of them
    share = Counter(four.values())
    assert min(share.values()) > 2000 / 4 * 0.6  # spread over every endpoint


async def test_prefix_affinity_keeps_a_prefix_on_one_endpoint_and_falls_back_while_it_is_down() -> None:
    clock = FakeClock()
    failing: set[str] = set()

    def handler(name: str) -> Any:
        def h(r: HTTPRequest) -> MockResponse:
            return error(503) if name in failing else completion(name)

        return h

    eps = [ep(n, clock, handler(n), breaker=BreakerConfig(consecutive_failures=1)) for n in "abcd"]
    g = GroupConfig("g", ("a", "b", "c", "d"), strategy="prefix_affinity", affinity_chars=64)
    async with client(eps, g) as c:
        system = {"role": "system", "content": "You answer questions about the 2024 tax code. " * 3}
        msgs = [system, {"role": "user", "content": "q1"}]
        first = (await c.chat(msgs, model="g")).endpoint
        for i in range(5):  # another question after the same 64-character prefix: same endpoint
            other = [system, {"role": "user", "content": f"question {i}"}]
            assert (await c.chat(other, model="g")).endpoint == first
        owners = [e.endpoint for e in [await c.chat(f"prompt number {i}", model="g") for i in range(40)]]
        assert len(set(owners)) >= 3  # different prefixes spread over the group
        assert first is not None
        failing.add(first)
        r = await c.chat(msgs, model="g")
        assert r.endpoint != first and [h.outcome for h in r.route] == ["InternalServerError", "ok"]
        fallback = r.endpoint
        assert (await c.chat(msgs, model="g")).endpoint == fallback  # breaker open: the next on the ring
        assert len(r.route) == 2 and r.route[0].endpoint == first and r.route[0].reason == "next endpoint"


async def test_per_call_strategy_and_endpoint_list_override_the_group() -> None:
    clock = FakeClock()
    eps = [ep(n, clock) for n in "abc"]
    async with client(eps, GroupConfig("g", ("a", "b", "c"))) as c:
        assert await served(c, 3, strategy="round_robin") == ["a", "b", "c"]
        assert await served(c, 2) == ["a", "a"]  # the group's own strategy again
        got = await served(c, 4, endpoints=["c", "b"], strategy="round_robin")  # the group's rotation, over c, b
        assert Counter(got) == {"b": 2, "c": 2} and got[0] != got[1] and got[2] != got[3]
        assert await served(c, 2, endpoints=["b", "c"]) == ["b", "b"]
        with pytest.raises(ConfigurationError, match="unknown routing strategy"):
            await c.chat("hi", model="g", strategy="fastest")
        with pytest.raises(ConfigurationError, match="unknown endpoint 'z'"):
            await c.chat("hi", model="g", endpoints=["z"])
        with pytest.raises(ConfigurationError, match="not both"):
            await c.chat("hi", endpoint="a", endpoints=["a"])
        r = await c.chat("hi", strategy="round_robin")  # no group: over every endpoint
        assert r.route[0].group is None


async def test_strategies_order_only_free_endpoints_saturated_ones_go_last() -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def slow(r: HTTPRequest) -> MockResponse:
        await gate.wait()
        return completion("a")

    eps = [ep("a", clock, slow, max_concurrency=1), ep("b", clock), ep("c", clock)]
    g = GroupConfig("g", ("a", "b", "c"), strategy="weighted", weights={"a": 100, "b": 1, "c": 1})
    async with client(eps, g) as c:
        held = asyncio.ensure_future(c.chat("hi", model="g"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not eps[0].has_capacity()
        got = await served(c, 4)
        assert "a" not in got and Counter(got) == {"b": 2, "c": 2}  # a is saturated: weights among b and c
        gate.set()
        await held


# ---------------------------------------------------------------------- fallbacks by error class and the route


def test_error_categories() -> None:
    ctx = BadRequestError(
        "x", status_code=400, error_type="invalid_request_error", body={"error": {"code": "context_length_exceeded"}}
    )
    llama = BadRequestError("x", status_code=400, error_type="exceed_context_size_error")
    claude = BadRequestError("x", status_code=400, provider_message="prompt is too long: 210000 tokens > 200000")
    policy = BadRequestError("x", status_code=400, body={"error": {"code": "content_policy_violation"}})
    assert [error_category(e) for e in (ctx, llama, claude, policy)] == [
        "context_window",
        "context_window",
        "context_window",
        "content_policy",
    ]
    assert error_category(InternalServerError("context window", status_code=500)) is None  # not about the request
    assert error_category(BadRequestError("bad temperature", status_code=400)) is None


async def test_context_window_error_falls_back_to_the_larger_group_and_the_route_says_why() -> None:
    clock = FakeClock()
    small = ep("small", clock, lambda r: error(400, "context_length_exceeded", "maximum context length is 8192"))
    small2 = ep("small2", clock)
    big = ep("big", clock, lambda r: completion("long answer"))
    groups = [
        GroupConfig("chat", ("small", "small2"), fallbacks={"context_window": ("long",), "retryable": ("spare",)}),
        GroupConfig("long", ("big",)),
        GroupConfig("spare", ("small2",)),
    ]
    async with client([small, small2, big], *groups) as c:
        r = await c.chat("a very long prompt", model="chat")
    assert r.text == "long answer" and r.endpoint == "big"
    assert [h.to_dict() for h in r.route] == [
        {
            "endpoint": "small",
            "group": "chat",
            "outcome": "BadRequestError",
            "reason": "fallback (context_window) to group 'long'",
            "attempts": 1,
        },
        {"endpoint": "big", "group": "long", "outcome": "ok", "reason": None, "attempts": 1},
    ]
    assert small2.counters.requests == 0  # a context error is not retried on the group's other members
    assert small.counters.fallbacks == 1
    assert r.to_dict()["route"][1]["endpoint"] == "big"


async def test_without_a_fallback_the_invalid_request_error_is_raised_with_its_route() -> None:
    clock = FakeClock()
    small = ep("small", clock, lambda r: error(400, "context_length_exceeded"))
    async with client([small, ep("b", clock)], GroupConfig("chat", ("small", "b"))) as c:
        with pytest.raises(BadRequestError) as ei:
            await c.chat("hi", model="chat")
    assert [(h.endpoint, h.outcome, h.reason) for h in ei.value.route] == [
        ("small", "BadRequestError", "not retryable elsewhere")
    ]
    assert ei.value.context()["route"][0]["endpoint"] == "small"


async def test_retryable_failures_go_to_the_retryable_fallback_group_and_errors_carry_the_route() -> None:
    clock = FakeClock()
    eps = [ep("a", clock, lambda r: error(503)), ep("b", clock, lambda r: error(502)), ep("x", clock)]
    groups = [GroupConfig("g", ("a", "b"), fallbacks={"retryable": ("backup",)}), GroupConfig("backup", ("x",))]
    async with client(eps, *groups) as c:
        r = await c.chat("hi", model="g")
        assert r.endpoint == "x"
        assert [(h.endpoint, h.outcome, h.reason) for h in r.route] == [
            ("a", "InternalServerError", "next endpoint"),
            ("b", "InternalServerError", "fallback (retryable) to group 'backup'"),
            ("x", "ok", None),
        ]
        eps[2].transport.handler = lambda r: error(500)  # type: ignore[attr-defined]
        with pytest.raises(AllEndpointsFailedError) as ei:
            await c.chat("hi", model="g")
    assert [h.endpoint for h in ei.value.route] == ["a", "b", "x"]
    assert ei.value.route[-1].reason == "no endpoint left"


async def test_error_class_names_are_fallback_keys() -> None:
    clock = FakeClock()
    eps = [ep("a", clock, lambda r: error(401, "invalid_api_key")), ep("x", clock)]
    groups = [
        GroupConfig("g", ("a",), fallbacks={"AuthenticationError": ("other",)}),
        GroupConfig("other", ("x",)),
    ]
    async with client(eps, *groups) as c:
        r = await c.chat("hi", model="g")
    assert r.endpoint == "x" and r.route[0].reason == "fallback (AuthenticationError) to group 'other'"


async def test_content_filter_answer_goes_to_the_content_policy_group_else_is_returned() -> None:
    clock = FakeClock()
    strict = ep("strict", clock, lambda r: completion("", finish="content_filter"))
    lenient = ep("lenient", clock, lambda r: completion("here you go"))
    groups = [GroupConfig("g", ("strict",), fallbacks={"content_policy": ("alt",)}), GroupConfig("alt", ("lenient",))]
    async with client([strict, lenient], *groups) as c:
        r = await c.chat("hi", model="g")
        assert r.text == "here you go"
        assert [(h.endpoint, h.outcome, h.reason) for h in r.route] == [
            ("strict", "content_filter", "fallback (content_policy) to group 'alt'"),
            ("lenient", "ok", None),
        ]
        lenient.transport.handler = lambda r: error(503)  # type: ignore[attr-defined]
        r = await c.chat("hi", model="g")  # the fallback failed: the refusal is the answer
        assert r.finish_reason == "content_filter" and r.endpoint == "strict"
        assert [h.outcome for h in r.route] == ["content_filter", "InternalServerError"]
    async with client([ep("s", clock, lambda r: completion("", finish="content_filter"))]) as c:
        r = await c.chat("hi")  # without groups a refusal is an answer like any other
        assert r.finish_reason == "content_filter" and [h.outcome for h in r.route] == ["ok"]


async def test_streams_and_embeddings_route_over_groups_too() -> None:
    clock = FakeClock()

    def sse(r: HTTPRequest) -> MockResponse:
        if r.url.endswith("/embeddings"):
            body = {"data": [{"index": 0, "embedding": [0.1, 0.2]}], "model": "m", "usage": {"prompt_tokens": 1}}
            return MockResponse(200, JSON, json.dumps(body).encode())
        chunks = [
            {"choices": [{"index": 0, "delta": {"content": "hel"}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        ]
        data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return MockResponse(200, {"content-type": "text/event-stream"}, data.encode())

    eps = [ep("a", clock, lambda r: error(503)), ep("b", clock, sse)]
    async with client(eps, GroupConfig("g", ("a", "b"))) as c:
        async with c.stream("hi", model="g") as s:
            final = await s.final_response()
        assert final.text == "hello" and final.endpoint == "b"
        assert [h.endpoint for h in final.route] == ["a", "b"] and s.route == final.route
        assert eps[1].counters.ttft_hist.count == 1  # the stream's time to first token was observed
        e = await c.embed("x", model="g")
        assert e.endpoint == "b" and [h.outcome for h in e.route] == ["InternalServerError", "ok"]


# ---------------------------------------------------------------------- configuration


def test_group_config_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="strategy must be one of"):
        GroupConfig("g", ("a",), strategy="random")
    with pytest.raises(ConfigurationError, match="weight of 'a' must be"):
        GroupConfig("g", ("a",), strategy="weighted", weights={"a": 0})
    with pytest.raises(ConfigurationError, match="not one of its endpoints"):
        GroupConfig("g", ("a",), weights={"b": 1})
    with pytest.raises(ConfigurationError, match="fallbacks key 'timeouts'"):
        GroupConfig("g", ("a",), fallbacks={"timeouts": ("x",)})
    with pytest.raises(ConfigurationError, match="names the group itself"):
        GroupConfig("g", ("a",), fallbacks={"any": ("g",)})
    with pytest.raises(ConfigurationError, match="non-empty list"):
        GroupConfig("g", ())
    clock = FakeClock()
    with pytest.raises(ConfigurationError, match="unknown endpoint 'zz'"):
        client([ep("a", clock)], GroupConfig("g", ("zz",)))
    with pytest.raises(ConfigurationError, match="fallback group 'nope' is not configured"):
        client([ep("a", clock)], GroupConfig("g", ("a",), fallbacks={"any": ("nope",)}))
    bare = Endpoint(EndpointConfig(name="bare", provider="openai", base_url="http://x/v1"), clock=clock)
    with pytest.raises(ConfigurationError, match="has no default model"):
        client([bare], GroupConfig("g", ("bare",)))


FLEET_TOML = """
[[endpoints]]
name = "a"
provider = "openai"
base_url = "http://a/v1"
model = "m-a"

[[endpoints]]
name = "b"
provider = "openai"
base_url = "http://b/v1"
model = "m-b"

[[groups]]
name = "chat"
endpoints = ["a", "b"]
strategy = "weighted"
weights = { a = 3, b = 1.5 }
[groups.fallbacks]
retryable = ["spare"]

[[groups]]
name = "spare"
endpoints = ["b"]

[health]
interval = 5
stall_after = 30
probe = false
"""


async def test_groups_and_health_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "infermux.toml"
    path.write_text(FLEET_TOML)
    seen: list[str] = []

    def handler(r: HTTPRequest) -> MockResponse:
        seen.append(r.url)
        return completion()

    c = infermux.AsyncClient(config=path, transport=MockTransport(handler), trust_env=False)
    async with c:
        got = [(await c.chat("hi", model="chat")).endpoint for _ in range(6)]
    assert Counter(got) == {"a": 4, "b": 2}
    assert c.router.groups["chat"].config.fallbacks == {"retryable": ("spare",)}
    assert c.monitor.config.stall_after == 30 and c.router.health is c.monitor
    path.write_text(FLEET_TOML.replace('strategy = "weighted"', 'strategy = "fastest"'))
    with pytest.raises(ConfigurationError, match="strategy must be one of"):
        infermux.AsyncClient(config=path, trust_env=False)
    path.write_text(FLEET_TOML + "\n[extra]\nx = 1\n")
    with pytest.raises(ConfigurationError, match="unknown top-level setting 'extra'"):
        infermux.AsyncClient(config=path, trust_env=False)


def test_the_readme_fleet_toml_example_loads(tmp_path: Path) -> None:
    from infermux.config import load_fleet

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    fleet = readme[readme.index("## Fleet") :]
    toml = fleet[fleet.index("```toml\n") + 8 : fleet.index("```", fleet.index("```toml\n") + 8)]
    path = tmp_path / "infermux.toml"
    path.write_text(toml)
    loaded = load_fleet(path)
    assert [e.name for e in loaded.endpoints] == ["local", "hosted", "hosted-long"]
    assert loaded.groups[0].fallbacks["context_window"] == ("long",) and loaded.health is not None
    assert loaded.health.stall_after == 60
    assert loaded.groups[0].failover is True and loaded.groups[0].stream_idle_timeout == 20
