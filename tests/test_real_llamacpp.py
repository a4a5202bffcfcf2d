"""infermux against a REAL llama.cpp server (xllamacpp + SmolLM2-135M) on 127.0.0.1: chat, stream,
stop sequences, max tokens, JSON mode, tools, native routes, auth and bad-input errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.local import LocalLlamaServer
from infermux.providers import llamacpp
from infermux.resilience.retry import RetryPolicy
from infermux.types import StreamFinish, TextDelta, UsageEvent

pytestmark = [pytest.mark.realserver, pytest.mark.filterwarnings("error::ResourceWarning")]


def cfg(srv: LocalLlamaServer, **kw: Any) -> EndpointConfig:
    return EndpointConfig(
        name="llama",
        provider="llamacpp",
        base_url=srv.openai_base_url,
        model="smollm2",
        retry=RetryPolicy(max_retries=1, initial_delay=0.05, deadline=60),
        **kw,
    )


async def test_chat_stream_and_counters(llama_server: LocalLlamaServer) -> None:
    async with infermux.AsyncClient([cfg(llama_server)]) as client:
        r = await client.chat("What is the capital of France?", max_tokens=12, temperature=0)
        assert r.text.strip() and r.finish_reason in ("stop", "length")
        assert r.usage is not None and r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 12
        assert r.provider == "llamacpp" and r.endpoint == "llama" and r.request_id and r.latency_s
        r2 = await client.chat("What is the capital of France?", max_tokens=12, temperature=0)
        assert r2.text == r.text  # temperature 0 is deterministic on llama.cpp

        async with client.stream("What is the capital of France?", max_tokens=12, temperature=0) as s:
            events = [ev async for ev in s]
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text == r.text
        assert isinstance(events[-1], StreamFinish) or any(isinstance(e, StreamFinish) for e in events)
        assert any(isinstance(e, UsageEvent) for e in events)
        st = client.stats()["llama"]
        assert st["requests"] == 3 and st["successes"] == 3 and st["tokens_out"] > 0
        assert st["latency_s"]["p50"] is not None and st["breaker"]["state"] == "closed"


async def test_max_tokens_and_stop_sequence(llama_server: LocalLlamaServer) -> None:
    async with infermux.AsyncClient([cfg(llama_server)]) as client:
        r = await client.chat("Count from 1 to 50 separated by spaces.", max_tokens=5, temperature=0)
        assert r.finish_reason == "length" and r.usage is not None and r.usage.output_tokens == 5
        full = await client.chat(
            "List the numbers from 1 to 20 with a comma between them.", max_tokens=40, temperature=0
        )
        words = full.text.split()
        assert len(words) > 3
        stop = words[2]
        cut = await client.chat(
            "List the numbers from 1 to 20 with a comma between them.", max_tokens=40, temperature=0, stop=[stop]
        )
        assert cut.finish_reason == "stop" and stop not in cut.text and len(cut.text) < len(full.text)


async def test_json_mode_is_valid_json(llama_server: LocalLlamaServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    async with infermux.AsyncClient([cfg(llama_server)]) as client:
        r = await client.chat(
            "Give the capital of France as JSON.",
            max_tokens=40,
            temperature=0,
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
        )
        assert isinstance(r.json()["city"], str)


async def test_tool_call_round_trip(llama_server_tools: LocalLlamaServer) -> None:
    """The deterministic prefill recipe from shared/notes/real-servers.md: the real server parses a tool call."""
    tool = infermux.Tool(
        "get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}}
    )
    messages = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "'},
    ]
    async with infermux.AsyncClient([cfg(llama_server_tools)]) as client:
        r = await client.chat(messages, tools=[tool], tool_choice="required", temperature=0, max_tokens=150)
        assert r.finish_reason == "tool_calls" and r.tool_calls
        call = r.tool_calls[0]
        assert call.name == "get_weather" and isinstance(call.arguments, dict) and call.arguments.get("city")


async def test_bad_input_gives_typed_400(llama_server: LocalLlamaServer) -> None:
    async with infermux.AsyncClient([cfg(llama_server)]) as client:
        with pytest.raises(infermux.BadRequestError) as ei:
            await client.chat("x " * 3000, max_tokens=4)  # longer than n_ctx=2048
        e = ei.value
        assert e.status_code == 400 and e.provider == "llamacpp" and e.endpoint == "llama" and not e.retryable
        assert e.attempts == 1 and e.request_id


async def test_wrong_key_gives_401_and_disables_key(llama_server_keyed: LocalLlamaServer) -> None:
    good = llama_server_keyed.api_key
    assert good
    async with infermux.AsyncClient([cfg(llama_server_keyed, api_keys=("sk-wrong",))]) as client:
        with pytest.raises(infermux.AuthenticationError) as ei:
            await client.chat("hi", max_tokens=2)
        assert ei.value.status_code == 401 and "sk-wrong" not in str(ei.value)
        with pytest.raises(infermux.KeyPoolExhaustedError):
            await client.chat("hi", max_tokens=2)
    async with infermux.AsyncClient([cfg(llama_server_keyed, api_keys=("sk-wrong", good))]) as client:
        with pytest.raises(infermux.AuthenticationError):
            await client.chat("hi", max_tokens=2)  # first key rejected; not retried (401)
        r = await client.chat("hi", max_tokens=2)  # second key in rotation
        assert r.text is not None
        keys = client.stats()["llama"]["keys"]
        assert keys[0]["disabled"] and not keys[1]["disabled"]


async def test_native_routes(llama_server: LocalLlamaServer) -> None:
    ep = Endpoint(cfg(llama_server))
    try:
        root = llamacpp.server_root(ep.base_url)
        native = Endpoint(EndpointConfig("native", "llamacpp", root, model="smollm2"))
        try:
            tokens = await native.call(llamacpp.build_tokenize("Hello world"), llamacpp.parse_tokenize)
            assert tokens and all(isinstance(t, int) for t in tokens)
            text = await native.call(llamacpp.build_detokenize(tokens), llamacpp.parse_detokenize)
            assert "Hello world" in text
            props = await native.call(llamacpp.build_props(), llamacpp.parse_props)
            assert isinstance(props, dict) and props
            comp = await native.call(
                llamacpp.build_completion("The sky is", n_predict=4, temperature=0), llamacpp.parse_completion
            )
            assert comp.text and comp.usage is not None and comp.usage.output_tokens <= 4
            health = await native.call(llamacpp.build_health(), lambda b, h: llamacpp.parse_health(200, h, b))
            assert health
        finally:
            await native.aclose()
    finally:
        await ep.aclose()


def test_sync_client_against_real_server(llama_server: LocalLlamaServer) -> None:
    with infermux.Client([cfg(llama_server)]) as client:
        r = client.chat("Say hello", max_tokens=6, temperature=0)
        with client.stream("Say hello", max_tokens=6, temperature=0) as s:
            streamed = "".join(s.text())
        assert streamed == r.text
        assert json.dumps(client.stats(), default=str)
