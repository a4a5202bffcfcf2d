"""The official openai SDK against the sandbox: every call parses, and faults map to the SDK's exceptions."""

from __future__ import annotations

import base64
import json
import struct
import time

import openai
import pytest

from infermux.sandbox import Fault, Sandbox, SandboxThread

MSG = [{"role": "user", "content": "hello sandbox world"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}},
}


def client(sb: Sandbox, *, api_key: str = "sk-test", max_retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sb.openai_base_url, api_key=api_key, max_retries=max_retries)


async def test_chat_non_stream(sb: Sandbox) -> None:
    async with client(sb) as c:
        raw = await c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSG)
        r = raw.parse()
    assert r.choices[0].message.content == "echo: hello sandbox world"
    assert r.choices[0].finish_reason == "stop"
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.usage is not None and r.usage.completion_tokens == 4 and r.usage.prompt_tokens == 3
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["content-type"].startswith("application/json")
    assert "x-ratelimit-remaining-requests" in raw.headers and "openai-processing-ms" in raw.headers
    assert raw.request_id == raw.headers["x-request-id"]


async def test_chat_stream_with_usage_matches_non_stream(sb: Sandbox) -> None:
    async with client(sb) as c:
        full = await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        stream = await c.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
        chunks = [ch async for ch in stream]
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == full.choices[0].message.content
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert full.usage is not None and chunks[-1].usage.total_tokens == full.usage.total_tokens


async def test_chat_stream_helper(sb: Sandbox) -> None:
    async with client(sb) as c, c.chat.completions.stream(model="gpt-4o-mini", messages=MSG) as stream:
        deltas = [ev.delta async for ev in stream if ev.type == "content.delta"]
        final = await stream.get_final_completion()
    assert "".join(deltas) == "echo: hello sandbox world"
    assert final.choices[0].message.content == "echo: hello sandbox world"


async def test_max_tokens_and_stop(sb: Sandbox) -> None:
    async with client(sb) as c:
        r = await c.chat.completions.create(model="m", messages=MSG, max_tokens=2)
        assert r.choices[0].message.content == "echo: hello" and r.choices[0].finish_reason == "length"
        r = await c.chat.completions.create(model="m", messages=MSG, stop=[" sandbox"])
        assert r.choices[0].message.content == "echo: hello" and r.choices[0].finish_reason == "stop"


async def test_tool_call_required_non_stream(sb: Sandbox) -> None:
    async with client(sb) as c:
        r = await c.chat.completions.create(model="m", messages=MSG, tools=[WEATHER], tool_choice="required")  # type: ignore[list-item]
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls" and msg.content is None
    assert msg.tool_calls is not None and len(msg.tool_calls) == 1
    call = msg.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"city": "example", "unit": "c"}


async def test_tool_call_named_and_trigger_parallel_stream(sb: Sandbox) -> None:
    tools = [WEATHER, TIME]
    async with client(sb) as c:
        r = await c.chat.completions.create(
            model="m",
            messages=MSG,
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "get_time"}},  # type: ignore[arg-type]
        )
        assert [t.function.name for t in r.choices[0].message.tool_calls or []] == ["get_time"]  # type: ignore[union-attr]
        ask = [{"role": "user", "content": "please call get_time and call get_weather"}]
        async with c.chat.completions.stream(model="m", messages=ask, tools=tools) as stream:  # type: ignore[arg-type]
            final = await stream.get_final_completion()
        plain = await c.chat.completions.create(model="m", messages=MSG, tools=tools)  # type: ignore[arg-type]
    calls = final.choices[0].message.tool_calls or []
    assert [t.function.name for t in calls] == ["get_time", "get_weather"]  # type: ignore[union-attr]
    assert json.loads(calls[1].function.arguments) == {"city": "example", "unit": "c"}  # type: ignore[union-attr]
    assert final.choices[0].finish_reason == "tool_calls"
    assert plain.choices[0].message.tool_calls is None  # auto and no trigger: text


async def test_tool_result_turn_answers_with_text(sb: Sandbox) -> None:
    convo = [
        {"role": "user", "content": "call get_weather"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    async with client(sb) as c:
        r = await c.chat.completions.create(model="m", messages=convo, tools=[WEATHER])  # type: ignore[arg-type]
    assert r.choices[0].message.content == "tool result: sunny"


async def test_json_modes_and_images(sb: Sandbox) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["name"],
    }
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    async with client(sb) as c:
        r = await c.chat.completions.create(model="m", messages=MSG, response_format={"type": "json_object"})
        assert json.loads(r.choices[0].message.content or "") == {"reply": "echo: hello sandbox world"}
        r = await c.chat.completions.create(
            model="m",
            messages=MSG,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}},
        )
        assert json.loads(r.choices[0].message.content or "") == {"name": "example", "n": 1}
        content = [{"type": "text", "text": "what is this"}, image, image]
        r = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": content}])  # type: ignore[misc,list-item]
        assert r.choices[0].message.content == "echo: what is this (2 images)"


async def test_embeddings_float_and_base64(sb: Sandbox) -> None:
    async with client(sb) as c:
        default = await c.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
        floats = await c.embeddings.create(
            model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float"
        )
        small = await c.embeddings.create(model="e", input="alpha", dimensions=8)
        raw = await c.embeddings.with_raw_response.create(model="e", input="alpha", encoding_format="base64")
    a, b = default.data[0].embedding, default.data[1].embedding
    assert len(a) == 64 and abs(sum(x * x for x in a) - 1.0) < 1e-5
    assert a != b
    assert floats.data[0].embedding == pytest.approx(a, abs=1e-6)
    assert len(small.data[0].embedding) == 8
    wire = json.loads(raw.http_response.text)["data"][0]["embedding"]
    assert isinstance(wire, str)
    decoded = struct.unpack("<64f", base64.b64decode(wire))
    assert list(decoded) == pytest.approx(a, abs=1e-6)
    assert default.usage.prompt_tokens == 2


async def test_responses_non_stream_and_stream(sb: Sandbox) -> None:
    async with client(sb) as c:
        r = await c.responses.create(model="gpt-4o-mini", input="Say this is a test", instructions="Be brief.")
        assert r.output_text == "echo: Say this is a test" and r.status == "completed"
        assert r.usage is not None and r.usage.output_tokens == 6
        stream = await c.responses.create(model="gpt-4o-mini", input="Say this is a test", stream=True)
        events = [ev async for ev in stream]
        async with c.responses.stream(model="gpt-4o-mini", input="Say this is a test") as helper:
            final = await helper.get_final_response()
        limited = await c.responses.create(model="m", input="one two three four", max_output_tokens=2)
        tool = await c.responses.create(
            model="m",
            input="call get_weather",
            tools=[{"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}],  # type: ignore[index,list-item]
        )
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == r.output_text  # type: ignore[union-attr]
    assert final.output_text == r.output_text
    assert limited.status == "incomplete" and limited.output_text == "echo: one"
    call = tool.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "example", "unit": "c"}


async def test_models_list_and_retrieve(sb: Sandbox) -> None:
    async with client(sb) as c:
        ids = [m.id async for m in c.models.list()]
        one = await c.models.retrieve("gpt-4o-mini")
        with pytest.raises(openai.NotFoundError):
            await c.models.retrieve("nope")
    assert "gpt-4o-mini" in ids and one.id == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        (Fault.status_error(400), openai.BadRequestError),
        (Fault.status_error(401), openai.AuthenticationError),
        (Fault.status_error(403), openai.PermissionDeniedError),
        (Fault.status_error(429), openai.RateLimitError),
        (Fault.status_error(500), openai.InternalServerError),
        (Fault.status_error(502), openai.InternalServerError),
        (Fault.status_error(503), openai.InternalServerError),
        (Fault.status_error(529), openai.InternalServerError),
        (Fault.reset(), openai.APIConnectionError),
    ],
)
async def test_status_faults_map_to_sdk_errors(sb: Sandbox, fault: Fault, exc: type[Exception]) -> None:
    sb.faults.push(fault)
    async with client(sb) as c:
        with pytest.raises(exc) as info:
            await c.chat.completions.create(model="m", messages=MSG)
        ok = await c.chat.completions.create(model="m", messages=MSG)  # the fault was used up
    assert ok.choices[0].message.content
    if isinstance(info.value, openai.APIStatusError):
        assert info.value.status_code == fault.status
        assert isinstance(info.value.body, dict) and "message" in info.value.body
        assert info.value.request_id is not None and info.value.request_id.startswith("req_")


async def test_sdk_honours_retry_after_ms(sb: Sandbox) -> None:
    sb.faults.push(Fault.status_error(429, retry_after_ms=300))
    async with client(sb, max_retries=1) as c:
        start = time.monotonic()
        r = await c.chat.completions.create(model="m", messages=MSG)
        elapsed = time.monotonic() - start
    assert r.choices[0].message.content
    assert elapsed >= 0.29  # the SDK waited what retry-after-ms said (its own backoff would be ~0.5-1 s jittered)
    recs = sb.stats.records
    assert [r.attempt for r in recs] == [0, 1] and [r.fault for r in recs] == ["status:429", None]


async def test_sdk_error_body_fields(sb: Sandbox) -> None:
    async with Sandbox(keys=["sk-good"]) as strict:
        async with client(strict, api_key="sk-bad-key-123") as c:
            with pytest.raises(openai.AuthenticationError) as info:
                await c.chat.completions.create(model="m", messages=MSG)
        async with client(strict, api_key="sk-good") as c:
            assert (await c.chat.completions.create(model="m", messages=MSG)).choices
    assert info.value.code == "invalid_api_key" and info.value.type == "invalid_request_error"
    assert "sk-" in info.value.message and "sk-bad-key-123" not in info.value.message  # the key is masked
    async with client(sb) as c:
        with pytest.raises(openai.BadRequestError) as bad:
            await c.chat.completions.create(model="m", messages=[])
    assert bad.value.code == "empty_array" and bad.value.param == "messages"


async def test_body_faults_with_sdk(sb: Sandbox) -> None:
    async with client(sb) as c:
        sb.faults.push(Fault.malformed())
        with pytest.raises(json.JSONDecodeError):  # the SDK lets the parser's error through
            await c.chat.completions.create(model="m", messages=MSG)
        sb.faults.push(Fault.html())
        page = await c.chat.completions.create(model="m", messages=MSG)
        assert isinstance(page, str) and "<html>" in page  # the SDK hands back the text of a non-JSON 200
        sb.faults.push(Fault.wrong_content_type())
        raw = await c.chat.completions.with_raw_response.create(model="m", messages=MSG)
        assert raw.headers["content-type"].startswith("text/plain")
        sb.faults.push(Fault.stream_cut(2))
        stream = await c.chat.completions.create(model="m", messages=MSG, stream=True)
        got: list[str] = []
        with pytest.raises(openai.APIConnectionError):
            async for ch in stream:
                got.append(ch.choices[0].delta.content or "")
        assert got == ["", "echo:"]
        sb.faults.push(Fault.slow_headers(0.4))
        with pytest.raises(openai.APITimeoutError):
            await c.chat.completions.create(model="m", messages=MSG, timeout=0.1)
    assert sb.stats.faults == {"malformed": 1, "html": 1, "wrong_content_type": 1, "stream_cut": 1, "slow_headers": 1}


def test_sync_client_on_thread(sync_sb: SandboxThread) -> None:
    with openai.OpenAI(base_url=sync_sb.openai_base_url, api_key="k", max_retries=0) as c:
        r = c.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
        assert r.choices[0].message.content == "echo: hello sandbox world"
        sync_sb.faults.push("status=429;retry-after=7")
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model="m", messages=MSG)  # type: ignore[arg-type]
        assert info.value.response.headers["retry-after"] == "7"
        chunks = list(c.chat.completions.create(model="m", messages=MSG, stream=True))  # type: ignore[arg-type]
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "echo: hello sandbox world"
    assert sync_sb.stats.total == 3
