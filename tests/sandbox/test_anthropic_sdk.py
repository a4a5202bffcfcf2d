"""The official anthropic SDK against the sandbox: messages, streams, tools, count_tokens, errors."""

from __future__ import annotations

import json

import aiohttp
import anthropic
import httpx2
import pytest

from infermux.sandbox import Fault, Sandbox, SandboxThread

MODEL = "claude-sonnet-4-20250514"
MSG = [{"role": "user", "content": "Say hello in one word."}]
WEATHER = {
    "name": "get_weather",
    "description": "Get weather by city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def client(sb: Sandbox) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sb.base_url, api_key="sk-ant-test", max_retries=0)


async def test_messages_create(sb: Sandbox) -> None:
    async with client(sb) as c:
        raw = await c.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=MSG, system="Be terse.")  # type: ignore[arg-type]
        m = await raw.parse()
    assert m.content[0].type == "text" and m.content[0].text == "echo: Say hello in one word."
    assert m.stop_reason == "end_turn" and m.role == "assistant" and m.id.startswith("msg_")
    assert m.usage.input_tokens == 7 and m.usage.output_tokens == 6
    assert raw.headers["request-id"].startswith("req_")
    assert "anthropic-ratelimit-requests-remaining" in raw.headers


async def test_stream_text_and_final_message(sb: Sandbox) -> None:
    async with client(sb) as c:
        async with c.messages.stream(model=MODEL, max_tokens=100, messages=MSG) as stream:  # type: ignore[arg-type]
            pieces = [t async for t in stream.text_stream]
            final = await stream.get_final_message()
        raw_events = [
            ev.type
            async for ev in await c.messages.create(model=MODEL, max_tokens=100, messages=MSG, stream=True)  # type: ignore[arg-type]
        ]
    assert "".join(pieces) == "echo: Say hello in one word."
    assert final.content[0].text == "echo: Say hello in one word."  # type: ignore[union-attr]
    assert final.usage.output_tokens == 6 and final.stop_reason == "end_turn"
    assert raw_events[0] == "message_start" and raw_events[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in raw_events and "content_block_stop" in raw_events


async def test_max_tokens_and_stop_sequences(sb: Sandbox) -> None:
    async with client(sb) as c:
        m = await c.messages.create(model=MODEL, max_tokens=2, messages=MSG)  # type: ignore[arg-type]
        assert m.stop_reason == "max_tokens" and m.content[0].text == "echo: Say"  # type: ignore[union-attr]
        m = await c.messages.create(model=MODEL, max_tokens=50, messages=MSG, stop_sequences=["one"])  # type: ignore[arg-type]
        assert m.stop_reason == "stop_sequence" and m.stop_sequence == "one"
        assert m.content[0].text == "echo: Say hello in "  # type: ignore[union-attr]


async def test_tool_use_non_stream_and_stream(sb: Sandbox) -> None:
    choice = {"type": "tool", "name": "get_weather"}
    async with client(sb) as c:
        m = await c.messages.create(model=MODEL, max_tokens=256, messages=MSG, tools=[WEATHER], tool_choice=choice)  # type: ignore[arg-type]
        async with c.messages.stream(
            model=MODEL,
            max_tokens=256,
            messages=MSG,
            tools=[WEATHER],
            tool_choice={"type": "any"},  # type: ignore[arg-type]
        ) as stream:
            final = await stream.get_final_message()
        auto = await c.messages.create(model=MODEL, max_tokens=256, messages=MSG, tools=[WEATHER])  # type: ignore[arg-type]
    assert m.stop_reason == "tool_use"
    block = m.content[0]
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "example"}
    assert block.id.startswith("toolu_")
    sblock = final.content[0]
    assert final.stop_reason == "tool_use" and sblock.type == "tool_use" and sblock.input == {"city": "example"}
    assert auto.stop_reason == "end_turn"


async def test_tool_result_and_images(sb: Sandbox) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    convo = [
        {"role": "user", "content": "call get_weather"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "rainy"}]},
    ]
    async with client(sb) as c:
        m = await c.messages.create(model=MODEL, max_tokens=64, messages=convo, tools=[WEATHER])  # type: ignore[arg-type]
        img = await c.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": [image, {"type": "text", "text": "what?"}]}],  # type: ignore[list-item]
        )
    assert m.content[0].text == "tool result: rainy"  # type: ignore[union-attr]
    assert img.content[0].text == "echo: what? (1 image)"  # type: ignore[union-attr]


async def test_count_tokens_matches_usage(sb: Sandbox) -> None:
    async with client(sb) as c:
        counted = await c.messages.count_tokens(model=MODEL, messages=MSG)  # type: ignore[arg-type]
        m = await c.messages.create(model=MODEL, max_tokens=10, messages=MSG)  # type: ignore[arg-type]
    assert counted.input_tokens == m.usage.input_tokens == 5


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
async def test_status_faults(sb: Sandbox, status: int, exc: type[anthropic.APIStatusError]) -> None:
    sb.faults.push(Fault.status_error(status, retry_after=2))
    async with client(sb) as c:
        with pytest.raises(exc) as info:
            await c.messages.create(model=MODEL, max_tokens=10, messages=MSG)  # type: ignore[arg-type]
    err = info.value
    assert err.status_code == status
    assert isinstance(err.body, dict) and err.body["type"] == "error"
    assert err.body["request_id"] == err.response.headers["request-id"]
    assert err.response.headers["retry-after"] == "2"
    assert err.response.headers["x-should-retry"] == ("false" if status < 429 else "true")


async def test_overloaded_body(sb: Sandbox) -> None:
    sb.faults.push("status=529")
    async with client(sb) as c:
        with pytest.raises(anthropic.OverloadedError) as info:
            await c.messages.create(model=MODEL, max_tokens=10, messages=MSG)  # type: ignore[arg-type]
    assert info.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}  # type: ignore[index]


async def test_stream_cut_and_reset(sb: Sandbox) -> None:
    async with client(sb) as c:
        sb.faults.push(Fault.stream_cut(4))
        pieces: list[str] = []
        # mid-stream, the SDK lets the transport's ReadError through unwrapped
        with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
            async with c.messages.stream(model=MODEL, max_tokens=100, messages=MSG) as stream:  # type: ignore[arg-type]
                async for piece in stream.text_stream:
                    pieces.append(piece)
        assert pieces == ["echo:"]  # message_start, content_block_start, ping, first delta, then the cut
        sb.faults.push(Fault.reset())
        with pytest.raises(anthropic.APIConnectionError):
            await c.messages.create(model=MODEL, max_tokens=10, messages=MSG)  # type: ignore[arg-type]


async def test_raw_protocol_errors(sb: Sandbox) -> None:
    url = sb.base_url + "/v1/messages"
    body = {"model": MODEL, "max_tokens": 10, "messages": MSG}
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers={"x-api-key": "k"}) as r:
            assert r.status == 400
            err = await r.json()
            assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
            assert "anthropic-version" in err["error"]["message"] and err["request_id"] == r.headers["request-id"]
        async with s.post(url, json=body, headers={"anthropic-version": "2023-06-01"}) as r:
            assert r.status == 401 and (await r.json())["error"]["type"] == "authentication_error"
        hdr = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        cases = [
            ({"model": MODEL, "messages": MSG}, "max_tokens: Field required"),
            ({"max_tokens": 5, "messages": MSG}, "model: Field required"),
            ({"model": MODEL, "max_tokens": 5, "messages": []}, "messages: at least one message is required"),
            ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
            ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "top-level `system`"),
        ]
        for payload, expected in cases:
            async with s.post(url, json=payload, headers=hdr) as r:
                assert r.status == 400, payload
                assert expected in (await r.json())["error"]["message"]
        async with s.post(url, data=b"{not json", headers={**hdr, "content-type": "application/json"}) as r:
            assert r.status == 400 and (await r.json())["error"]["type"] == "invalid_request_error"
        async with s.get(sb.base_url + "/v1/models", headers=hdr) as r:
            models = await r.json()
            assert models["data"][0]["type"] == "model" and models["has_more"] is False


def test_sync_anthropic_on_thread(sync_sb: SandboxThread) -> None:
    with anthropic.Anthropic(base_url=sync_sb.base_url, api_key="k", max_retries=0) as c:
        with c.messages.stream(model=MODEL, max_tokens=50, messages=MSG) as stream:  # type: ignore[arg-type]
            text = "".join(stream.text_stream)
        sync_sb.faults.push(Fault.status_error(529))
        with pytest.raises(anthropic.OverloadedError):
            c.messages.create(model=MODEL, max_tokens=10, messages=MSG)  # type: ignore[arg-type]
    assert text == "echo: Say hello in one word."
    assert json.loads(json.dumps(sync_sb.stats.snapshot()))["faults"] == {"status:529": 1}
