"""The official openai and anthropic SDKs against the gateway in front of the sandbox emulators: each protocol
served by a backend of either protocol, streams, tools, embeddings, the Responses API, errors in the caller's
shape (401, 429 with retry-after passed through, 5xx), and a client that disconnects mid-stream."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import anthropic
import openai
import pytest

from infermux.sandbox import Fault

from .conftest import MASTER, Rig, until

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
MODELS = ("gpt-4o-mini", "claude-sonnet-4-20250514")  # served by the OpenAI and the Anthropic emulator


def oai(rig: Rig, key: str = MASTER) -> openai.AsyncOpenAI:
    c = openai.AsyncOpenAI(base_url=rig.openai_url, api_key=key, max_retries=0, timeout=20)
    rig.clients.append(c)
    return c


def ant(rig: Rig, key: str = MASTER) -> anthropic.AsyncAnthropic:
    c = anthropic.AsyncAnthropic(base_url=rig.url, api_key=key, max_retries=0, timeout=20)
    rig.clients.append(c)
    return c


@pytest.mark.parametrize("model", MODELS)
async def test_openai_sdk_chat_and_stream(rig: Rig, model: str) -> None:
    c = oai(rig)
    r = await c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello there"}])
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].finish_reason == "stop" and r.usage is not None and r.usage.completion_tokens > 0
    stream = await c.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hello there"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [ch async for ch in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "echo: hello there"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    served = {name: st["successes"] for name, st in rig.gw.client.stats().items()}
    assert served[{"gpt-4o-mini": "gpt", "claude-sonnet-4-20250514": "claude"}[model]] == 2


@pytest.mark.parametrize("model", MODELS)
async def test_anthropic_sdk_messages_and_stream(rig: Rig, model: str) -> None:
    c = ant(rig)
    m = await c.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "hi you"}])
    assert m.content[0].type == "text" and m.content[0].text == "echo: hi you"
    assert m.stop_reason == "end_turn" and m.usage.output_tokens > 0
    async with c.messages.stream(model=model, max_tokens=50, messages=[{"role": "user", "content": "hi you"}]) as s:
        pieces = [t async for t in s.text_stream]
        final = await s.get_final_message()
    assert "".join(pieces) == "echo: hi you" and final.stop_reason == "end_turn"
    n = await c.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi you"}])
    assert n.input_tokens > 0


@pytest.mark.parametrize("model", MODELS)
async def test_tools_both_protocols(rig: Rig, model: str) -> None:
    c = oai(rig)
    msgs = [{"role": "user", "content": "Please call get_weather for Paris"}]
    r = await c.chat.completions.create(model=model, messages=msgs, tools=[WEATHER])
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    stream = await c.chat.completions.create(model=model, messages=msgs, tools=[WEATHER], stream=True)
    names, args = [], ""
    async for ch in stream:
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            if tc.function and tc.function.name:
                names.append(tc.function.name)
            args += (tc.function.arguments or "") if tc.function else ""
    assert names == ["get_weather"] and isinstance(json.loads(args), dict)
    a = ant(rig)
    tool = {"name": "get_weather", "description": "w", "input_schema": WEATHER["function"]["parameters"]}
    m = await a.messages.create(model=model, max_tokens=100, messages=msgs, tools=[tool])
    uses = [b for b in m.content if b.type == "tool_use"]
    assert m.stop_reason == "tool_use" and uses[0].name == "get_weather" and isinstance(uses[0].input, dict)
    async with a.messages.stream(model=model, max_tokens=100, messages=msgs, tools=[tool]) as s:
        final = await s.get_final_message()
    assert [b.name for b in final.content if b.type == "tool_use"] == ["get_weather"]


async def test_responses_and_embeddings_and_models(rig: Rig) -> None:
    c = oai(rig)
    for model in MODELS:
        r = await c.responses.create(model=model, input="hello")
        assert r.output_text == "echo: hello" and r.status == "completed"
        async with c.responses.stream(model=model, input="hello") as s:
            final = await s.get_final_response()
        assert final.output_text == "echo: hello"
    e = await c.embeddings.create(model="gpt-4o-mini", input=["a b", "c d"])  # base64 by default in the SDK
    assert len(e.data) == 2 and len(e.data[0].embedding) == 64
    e2 = await c.embeddings.create(model="gpt-4o-mini", input="x", encoding_format="float")
    assert len(e2.data[0].embedding) == 64
    ids = [m.id async for m in c.models.list()]
    assert ids == list(MODELS)
    page = await ant(rig).models.list()
    assert [m.id for m in page.data] == list(MODELS)


async def test_errors_in_each_protocol(rig: Rig) -> None:
    bad = oai(rig, "sk-wrong")
    with pytest.raises(openai.AuthenticationError) as e1:
        await bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert e1.value.status_code == 401 and e1.value.response.headers["x-request-id"]
    with pytest.raises(anthropic.AuthenticationError) as e2:
        await ant(rig, "sk-wrong").messages.create(
            model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert e2.value.body["type"] == "error" and e2.value.body["error"]["type"] == "authentication_error"

    c = oai(rig)
    rig.sb.faults.push(Fault.status_error(429, retry_after=7))
    with pytest.raises(openai.RateLimitError) as e3:
        await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    h = e3.value.response.headers
    assert h["retry-after"] == "7" and h["retry-after-ms"] == "7000" and h["x-request-id"]
    assert "endpoint=gpt" in e3.value.message  # says where it happened
    rig.sb.faults.push(Fault.status_error(429, retry_after=2))
    with pytest.raises(anthropic.RateLimitError) as e4:
        await ant(rig).messages.create(
            model="claude-sonnet-4-20250514", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert e4.value.response.headers["retry-after"] == "2"

    for model in MODELS:
        rig.sb.faults.push(Fault.status_error(503))
        with pytest.raises(openai.InternalServerError) as e5:
            await c.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
        assert e5.value.status_code == 503
    rig.sb.faults.push(Fault.status_error(529))  # Anthropic's overloaded: 529 to an Anthropic caller
    with pytest.raises(anthropic.APIStatusError) as e6:
        await ant(rig).messages.create(
            model="claude-sonnet-4-20250514", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert e6.value.status_code == 529 and e6.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(openai.BadRequestError) as e7:  # bad input: the caller's protocol, before any I/O
        await c.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=5)
    assert "messages" in e7.value.message
    # a stream that fails before any content is an HTTP error (its status), not a broken 200
    rig.sb.faults.push(Fault.status_error(429, retry_after=1))
    with pytest.raises(openai.RateLimitError):
        s = await c.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
        )
        async for _ in s:
            pass


@pytest.mark.parametrize("model", MODELS)
async def test_client_disconnect_cancels_upstream(slow_rig: Rig, model: str) -> None:
    """The SDK leaves a stream after 3 chunks (~8 s of tokens remain): the gateway's handler is cancelled, the
    upstream request is closed at once (the emulator has nothing in flight) and the endpoint counts it."""
    rig = slow_rig
    c = oai(rig)
    stream = await c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "long"}], stream=True, max_tokens=1000
    )
    got = 0
    async for ch in stream:
        if ch.choices and ch.choices[0].delta.content:
            got += 1
        if got == 3:
            break
    await stream.close()
    assert await until(lambda: rig.sb.stats.in_flight == 0, 3.0), "upstream request still running"
    name = "gpt" if model == "gpt-4o-mini" else "claude"
    assert await until(lambda: rig.gw.client.stats()[name]["in_flight"] == 0)
    assert rig.gw.client.stats()[name]["cancelled"] == 1
    assert rig.gw.counters.disconnects == 1


async def test_raw_disconnect_and_backpressure_relay(slow_rig: Rig) -> None:
    """A plain HTTP client: chunks arrive one by one while the upstream produces them (not buffered whole)."""
    rig = slow_rig
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            rig.openai_url + "/chat/completions", json=body, headers={"authorization": f"Bearer {MASTER}"}
        )
        assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
        first = await asyncio.wait_for(resp.content.readline(), 2)
        assert first.startswith(b"data: ")  # the first token came long before the ~8 s stream could end
        resp.close()  # drop the connection mid-stream
    assert await until(lambda: rig.sb.stats.in_flight == 0, 3.0)


async def test_stream_broken_after_content_ends_with_an_in_band_error() -> None:
    """With stream resume off, an upstream cut after text reached the caller cannot be an HTTP status any more:
    the caller gets its protocol's in-band error (the SDKs raise it), after the text already delivered."""
    from infermux.sandbox import Sandbox

    from .conftest import make_rig

    async with Sandbox(host="127.0.0.1", port=0) as sb:
        rig = await make_rig(sb, endpoint_kw={"resume_streams": False})
        try:
            c = oai(rig)
            sb.faults.push(Fault.stream_cut(after=3))
            stream = await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "one two three four five six"}], stream=True
            )
            seen = ""
            with pytest.raises(openai.APIError) as e1:
                async for ch in stream:
                    seen += (ch.choices[0].delta.content or "") if ch.choices else ""
            assert seen.startswith("echo: one") and "endpoint=gpt" in e1.value.message
            a = ant(rig)
            sb.faults.push(Fault.stream_cut(after=4))
            with pytest.raises(anthropic.APIStatusError):
                async with a.messages.stream(
                    model="claude-sonnet-4-20250514",
                    max_tokens=50,
                    messages=[{"role": "user", "content": "one two three four five six"}],
                ) as s:
                    async for _ in s.text_stream:
                        pass
        finally:
            await rig.close()
