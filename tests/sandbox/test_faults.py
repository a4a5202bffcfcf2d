"""Fault injection seen by a raw aiohttp client: each kind, capacity and outage modes, stats, control API."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from infermux.errors import ConfigurationError
from infermux.sandbox import Fault, FaultKind, Sandbox, parse_fault

OA = {"authorization": "Bearer k"}
AN = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}
MSGS = {"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": "one two three"}]}


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


async def post(
    s: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    async with s.post(url, json=body, headers=headers) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


# -- header grammar ------------------------------------------------------------------------------------


def test_parse_fault_grammar() -> None:
    assert parse_fault("status=429;retry-after-ms=250") == Fault.status_error(429, retry_after_ms=250)
    assert parse_fault("status;code=503;should-retry=false") == Fault.status_error(503, should_retry=False)
    assert parse_fault("stream_cut=3;clean=1") == Fault.stream_cut(3, clean=True)
    assert parse_fault("slow-headers=0.5") == Fault.slow_headers(0.5)
    assert parse_fault("reset").kind is FaultKind.RESET
    assert parse_fault({"kind": "status", "status": 529, "retry_after": 1.5}) == Fault.status_error(
        529, retry_after=1.5
    )
    for bad in ("explode", "status=abc", "reset=1", "status;retry-after", "status;bogus=1", ""):
        with pytest.raises(ConfigurationError):
            parse_fault(bad)


def test_random_weights_validated() -> None:
    sb = Sandbox()
    with pytest.raises(ConfigurationError):
        sb.faults.set_random({FaultKind.RESET: 0.7, FaultKind.HTML: 0.6}, seed=1)
    with pytest.raises(ConfigurationError):
        sb.faults.push(Fault.reset(), times=0)


# -- each fault kind, raw --------------------------------------------------------------------------------


async def test_status_fault_bodies_per_protocol(sb: Sandbox) -> None:
    async with aiohttp.ClientSession() as s:
        st, h, body = await post(
            s,
            sb.openai_base_url + "/chat/completions",
            CHAT,
            {**OA, "x-sandbox-fault": "status=429;retry-after-ms=250"},
        )
        assert st == 429 and h["retry-after-ms"] == "250" and h["x-request-id"].startswith("req_")
        err = json.loads(body)["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["code"] == "rate_limit_exceeded"
        st, h, body = await post(s, sb.base_url + "/v1/messages", MSGS, {**AN, "x-sandbox-fault": "status=529"})
        doc = json.loads(body)
        assert st == 529 and doc["error"]["type"] == "overloaded_error" and doc["request_id"] == h["request-id"]
        assert h["x-should-retry"] == "true"
        st, _, body = await post(
            s, sb.openai_base_url + "/chat/completions", CHAT, {**OA, "x-sandbox-fault": "status=529"}
        )
        assert st == 529 and json.loads(body)["error"]["type"] == "server_error"
        st, _, body = await post(
            s, sb.openai_base_url + "/chat/completions", CHAT, {**OA, "x-sandbox-fault": "nonsense"}
        )
        assert st == 400 and "x-sandbox-fault" in json.loads(body)["error"]["message"]


async def test_reset_fault(sb: Sandbox) -> None:
    sb.faults.push(Fault.reset())
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientError):
            await post(s, sb.openai_base_url + "/chat/completions", CHAT, OA)
        st, _, _ = await post(s, sb.openai_base_url + "/chat/completions", CHAT, OA)
    assert st == 200


async def test_slow_headers_and_slow_body(sb: Sandbox) -> None:
    async with aiohttp.ClientSession() as s:
        start = time.monotonic()
        st, _, _ = await post(
            s, sb.openai_base_url + "/chat/completions", CHAT, {**OA, "x-sandbox-fault": "slow_headers=0.2"}
        )
        assert st == 200 and time.monotonic() - start >= 0.19
        url = sb.openai_base_url + "/chat/completions"
        start = time.monotonic()
        async with s.post(url, json={**CHAT, "stream": True}, headers={**OA, "x-sandbox-fault": "slow_body=0.05"}) as r:
            first_at = None
            async for _ in r.content.iter_any():
                first_at = first_at or time.monotonic()
        total = time.monotonic() - start
        assert first_at is not None and first_at - start < 0.05 < total  # headers fast, body slow
        assert total >= 0.05 * 5  # 7 events: 6 gaps


async def test_a_client_hanging_up_ends_a_slow_headers_stall_and_is_counted(sb: Sandbox) -> None:
    url = sb.openai_base_url + "/chat/completions"
    headers = {**OA, "x-sandbox-fault": "slow_headers=30", "x-request-id": "rid-hang"}
    async with aiohttp.ClientSession() as s:
        call = asyncio.ensure_future(post(s, url, CHAT, headers))
        deadline = time.monotonic() + 5
        while sb.stats.in_flight < 1:
            assert time.monotonic() < deadline, "the request never reached the server"
            await asyncio.sleep(0.01)
        call.cancel()  # aiohttp closes the connection of a request cancelled before its answer
        with pytest.raises(asyncio.CancelledError):
            await call
        started = time.monotonic()
        while sb.stats.in_flight or not sb.stats.hung_up_total:
            assert time.monotonic() - started < 2.0, "the stall did not end with the hang-up"
            await asyncio.sleep(0.01)
    assert sb.stats.hung_up_ids == ["rid-hang"] and sb.stats.snapshot()["hung_up"] == 1
    assert sb.stats.hung_up_total == 1 and sb.stats.completed == 1


async def test_stream_cut_openai_and_anthropic(sb: Sandbox) -> None:
    async with aiohttp.ClientSession() as s:
        url = sb.openai_base_url + "/chat/completions"
        hdr = {**OA, "x-sandbox-fault": "stream_cut=2;clean=1"}
        async with s.post(url, json={**CHAT, "stream": True}, headers=hdr) as r:
            data = sse_data((await r.read()).decode())
        assert len(data) == 2 and "[DONE]" not in data
        sb.faults.push(Fault.stream_cut(3))
        with pytest.raises(aiohttp.ClientPayloadError):
            async with s.post(url, json={**CHAT, "stream": True}, headers=OA) as r:
                await r.read()
        hdr = {**AN, "x-sandbox-fault": "stream_cut=100;clean=true"}
        async with s.post(sb.base_url + "/v1/messages", json={**MSGS, "stream": True}, headers=hdr) as r:
            text = (await r.read()).decode()
        assert "event: message_delta" in text and "message_stop" not in text  # cut just before the terminal


async def test_malformed_html_wrong_content_type(sb: Sandbox) -> None:
    url = sb.openai_base_url + "/chat/completions"
    async with aiohttp.ClientSession() as s:
        st, h, body = await post(s, url, CHAT, {**OA, "x-sandbox-fault": "malformed"})
        assert st == 200 and h["content-type"].startswith("application/json")
        with pytest.raises(ValueError):
            json.loads(body)
        async with s.post(url, json={**CHAT, "stream": True}, headers={**OA, "x-sandbox-fault": "malformed=1"}) as r:
            data = sse_data((await r.read()).decode())
        json.loads(data[0])
        with pytest.raises(ValueError):
            json.loads(data[1])
        assert data[-1] == "[DONE]"
        st, h, body = await post(s, url, CHAT, {**OA, "x-sandbox-fault": "html"})
        assert st == 200 and h["content-type"].startswith("text/html") and body.startswith(b"<!DOCTYPE html>")
        st, h, body = await post(s, url, CHAT, {**OA, "x-sandbox-fault": "wrong_content_type"})
        assert st == 200 and h["content-type"].startswith("text/plain")
        assert json.loads(body)["object"] == "chat.completion"


# -- modes ----------------------------------------------------------------------------------------------


async def test_capacity_mode() -> None:
    async with Sandbox(capacity=2, capacity_retry_after_ms=40) as sb:
        sb.faults.push(Fault.slow_headers(0.3), times=2)  # two slow requests occupy both slots
        url = sb.openai_base_url + "/chat/completions"
        async with aiohttp.ClientSession() as s:
            slow = [asyncio.create_task(post(s, url, CHAT, OA)) for _ in range(2)]
            await asyncio.sleep(0.1)
            extra = await asyncio.gather(*(post(s, url, CHAT, OA) for _ in range(3)))
            done = await asyncio.gather(*slow)
            after = await post(s, url, CHAT, OA)
        assert [st for st, _, _ in done] == [200, 200] and after[0] == 200
        for st, h, body in extra:
            assert st == 429 and h["retry-after-ms"] == "40"
            assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
        assert sb.stats.max_in_flight == 2
        assert sb.stats.faults == {"slow_headers": 2, "status:429": 3}
        assert [r.fault_source for r in sb.stats.records].count("capacity") == 3


async def test_capacity_mode_anthropic_body() -> None:
    async with Sandbox(capacity=0) as sb, aiohttp.ClientSession() as s:
        st, h, body = await post(s, sb.base_url + "/v1/messages", MSGS, AN)
    assert st == 429 and json.loads(body)["error"]["type"] == "rate_limit_error" and h["retry-after-ms"] == "100"


async def test_outage_mode(sb: Sandbox) -> None:
    url = sb.openai_base_url + "/chat/completions"
    async with aiohttp.ClientSession() as s:
        sb.faults.set_outage(True, requests=3)
        codes = [(await post(s, url, CHAT, OA))[0] for _ in range(4)]
        assert codes == [503, 503, 503, 200]
        sb.faults.set_outage(True)
        assert (await post(s, sb.base_url + "/v1/messages", MSGS, AN))[0] == 503
        sb.faults.set_outage(False)
        assert (await post(s, url, CHAT, OA))[0] == 200


async def test_queue_default_random_precedence(sb: Sandbox) -> None:
    url = sb.openai_base_url + "/chat/completions"
    async with aiohttp.ClientSession() as s:
        sb.faults.set_default("status=500")
        sb.faults.push("status=502")
        sb.faults.push(Fault(FaultKind.NONE))
        codes = [(await post(s, url, CHAT, OA))[0] for _ in range(3)]
        assert codes == [502, 200, 500]
        sb.faults.set_default(None)

        async def run_mix() -> list[int]:
            sb.faults.set_random({FaultKind.STATUS: 0.5}, seed=7)
            return [(await post(s, url, CHAT, OA))[0] for _ in range(40)]

        first, second = await run_mix(), await run_mix()
    assert first == second  # seeded: the same sequence again
    assert 5 < first.count(500) < 35 and set(first) == {200, 500}


async def test_stats_request_ids_and_attempts(sb: Sandbox) -> None:
    url = sb.openai_base_url + "/chat/completions"
    async with aiohttp.ClientSession() as s:
        for i in range(3):
            await post(s, url, CHAT, {**OA, "x-request-id": f"r{i}", "x-infermux-attempt": "1"})
        await post(s, url, CHAT, {**OA, "x-request-id": "r1", "x-infermux-attempt": "1"})
        await post(s, url, CHAT, {**OA, "x-request-id": "r2", "x-infermux-attempt": "2"})
        await post(s, sb.openai_base_url + "/embeddings", {"model": "e", "input": "x"}, OA)
    st = sb.stats
    assert st.total == 6
    assert st.routes == {"POST /v1/chat/completions": 5, "POST /v1/embeddings": 1}
    assert st.request_ids() == ["r0", "r1", "r2", "r1", "r2", None]
    assert st.duplicates() == {"r1": 2}
    assert st.in_flight == 0 and st.completed == 6


async def test_control_api(sb: Sandbox) -> None:
    url = sb.openai_base_url + "/chat/completions"
    async with aiohttp.ClientSession() as s:
        async with s.post(
            sb.base_url + "/_sandbox/faults", json={"push": [{"kind": "status", "status": 418, "times": 2}]}
        ) as r:
            assert r.status == 200 and (await r.json())["pending"] == 2
        async with s.post(sb.base_url + "/_sandbox/faults", json={"push": "status=503", "outage": False}) as r:
            assert (await r.json())["pending"] == 3
        codes = [(await post(s, url, CHAT, OA))[0] for _ in range(4)]
        assert codes == [418, 418, 503, 200]
        async with s.post(sb.base_url + "/_sandbox/faults", json={"capacity": {"limit": 0, "retry_after_ms": 5}}) as r:
            assert r.status == 200
        assert (await post(s, url, CHAT, OA))[0] == 429
        async with s.post(sb.base_url + "/_sandbox/faults", json={"random": {"weights": {"nope": 1}}}) as r:
            assert r.status == 400 and "unknown sandbox fault kind" in (await r.json())["error"]
        async with s.get(sb.base_url + "/_sandbox/stats") as r:
            stats = await r.json()
        assert stats["total"] == 5 and stats["faults"]["status:418"] == 2 and len(stats["requests"]) == 5
        async with s.post(sb.base_url + "/_sandbox/reset") as r:
            assert r.status == 200
        assert sb.stats.total == 0 and sb.faults.capacity is None
        assert (await post(s, url, CHAT, OA))[0] == 200


async def test_unknown_route_and_validation(sb: Sandbox) -> None:
    async with aiohttp.ClientSession() as s:
        st, _, body = await post(s, sb.base_url + "/v1/nope", {}, OA)
        assert st == 404 and json.loads(body)["error"]["message"] == "Invalid URL (POST /v1/nope)"
        async with s.get(sb.openai_base_url + "/chat/completions", headers=OA) as r:
            assert r.status == 404
        url = sb.openai_base_url + "/chat/completions"
        cases = [
            ({"messages": CHAT["messages"]}, None),
            ({"model": "m"}, "missing_required_parameter"),
            ({"model": "m", "messages": []}, "empty_array"),
            ({"model": "m", "messages": [{"role": "bogus", "content": "x"}]}, "invalid_value"),
        ]
        for payload, code in cases:
            st, _, body = await post(s, url, payload, OA)
            assert st == 400 and json.loads(body)["error"]["code"] == code, payload
        async with s.post(url, data=b"{oops", headers={**OA, "content-type": "application/json"}) as r:
            assert r.status == 400 and "parse the JSON body" in (await r.json())["error"]["message"]
        st, _, body = await post(s, url, CHAT, {})
        assert st == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    assert "GET /v1/chat/completions" not in sb.stats.routes  # unknown routes are not API requests


@pytest.mark.parametrize(
    "doc",
    [
        {"pushh": "status=503"},  # a typo at the top
        {"push": "status=503", "outage": False, "extra": 1},
        {"capacity": {"limit": 1, "retry_after": 5}},
        {"outage": {"enabled": True, "count": 2}},
        {"random": {"weights": {"status": 1}, "sed": 1}},
        {"push": [{"kind": "status", "statuss": 503}]},
        {"push": ["status=503", {"kind": "status", "statuss": 503}]},  # the good first fault is not queued either
    ],
)
async def test_control_api_rejects_unknown_keys(sb: Sandbox, doc: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as s, s.post(sb.base_url + "/_sandbox/faults", json=doc) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]
    assert sb.faults.pending == 0 and not sb.faults.outage  # nothing of a refused document was applied
