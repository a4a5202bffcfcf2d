"""Reasoning in the emulators, checked with the official SDKs and with infermux: Anthropic extended thinking
(signed thinking blocks, required back in tool-use loops) and vLLM's ``--reasoning-parser`` (reasoning_content)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

import infermux
from infermux.errors import BadRequestError
from infermux.sandbox import Sandbox

THINK = {"type": "enabled", "budget_tokens": 1024}
TOOL = infermux.Tool("get_weather", "weather of a city", {"type": "object", "properties": {"city": {"type": "string"}}})
MODEL = "claude-sonnet-4-5"


@pytest.fixture
async def sbv() -> AsyncIterator[Sandbox]:
    async with Sandbox(host="127.0.0.1", port=0, backends=("vllm",)) as sandbox:
        yield sandbox


def client(base_url: str, provider: str, model: str) -> infermux.AsyncClient:
    retry = infermux.RetryPolicy(max_retries=0)
    cfg = infermux.EndpointConfig("e", provider, base_url=base_url, model=model, api_keys=("sk-test",), retry=retry)
    return infermux.AsyncClient([cfg], trust_env=False)


async def test_anthropic_sdk_sees_typed_thinking_and_infermux_keeps_it(sb: Sandbox) -> None:
    msgs: Any = [{"role": "user", "content": "hello sandbox world"}]
    async with anthropic.AsyncAnthropic(base_url=sb.anthropic_base_url, api_key="sk-ant", max_retries=0) as c:
        m = await c.messages.create(model=MODEL, max_tokens=2048, messages=msgs, thinking=THINK)  # type: ignore[arg-type]
        async with c.messages.stream(model=MODEL, max_tokens=2048, messages=msgs, thinking=THINK) as s:  # type: ignore[arg-type]
            final = await s.get_final_message()
    for msg in (m, final):
        block = msg.content[0]
        assert isinstance(block, anthropic.types.ThinkingBlock)
        assert block.thinking and block.signature
    async with client(sb.anthropic_base_url, "anthropic", MODEL) as ic:
        r = await ic.chat("hello sandbox world", max_tokens=2048, extra={"thinking": THINK})
        async with ic.stream("hello sandbox world", max_tokens=2048, extra={"thinking": THINK}) as st:
            texts = [t async for t in st.text()]
            streamed = await st.final_response()
    block = m.content[0]
    assert isinstance(block, anthropic.types.ThinkingBlock)
    assert r.reasoning == streamed.reasoning == block.thinking
    assert r.reasoning_blocks[0].signature == streamed.reasoning_blocks[0].signature == block.signature
    assert "".join(texts) == streamed.text == r.text == "echo: hello sandbox world"  # text() yields only text


async def test_anthropic_tool_use_loop_needs_the_signed_thinking_back(sb: Sandbox) -> None:
    async with client(sb.anthropic_base_url, "anthropic", MODEL) as ic:
        async with ic.stream(
            "call get_weather for Oslo", max_tokens=2048, tools=[TOOL], extra={"thinking": THINK}
        ) as st:  # the turn streamed: the accumulated answer carries the signed thinking too
            first = await st.final_response()
        assert first.tool_calls and first.reasoning_blocks and first.reasoning_blocks[0].signature
        history = [infermux.Message.user("call get_weather for Oslo")]
        result = infermux.Message.tool(first.tool_calls[0].id, "12 C, cloudy")
        ok = await ic.chat(
            [*history, first.message(), result], max_tokens=2048, tools=[TOOL], extra={"thinking": THINK}
        )
        assert ok.text == "tool result: 12 C, cloudy" and ok.reasoning
        # the same turn without its thinking is refused, as by the real API
        bare = infermux.Message.assistant(tool_calls=first.tool_calls)
        with pytest.raises(BadRequestError, match="must start with a thinking block"):
            await ic.chat([*history, bare, result], max_tokens=2048, tools=[TOOL], extra={"thinking": THINK})
        # and so is a thinking block whose signature does not match it
        forged = infermux.Message.assistant(
            tool_calls=first.tool_calls,
            reasoning=[infermux.ReasoningBlock("other", first.reasoning_blocks[0].signature)],
        )
        with pytest.raises(BadRequestError, match="Invalid `signature`"):
            await ic.chat([*history, forged, result], max_tokens=2048, tools=[TOOL], extra={"thinking": THINK})


async def test_vllm_reasoning_parser_sends_reasoning_content(sbv: Sandbox) -> None:
    model = "meta-llama/Llama-3.2-1B-Instruct"
    base = sbv.base_url + "/v1"
    msgs: Any = [{"role": "user", "content": "hello vllm"}]
    async with openai.AsyncOpenAI(base_url=base, api_key="x", max_retries=0) as c:
        plain = await c.chat.completions.create(model=model, messages=msgs)
        assert plain.choices[0].message.model_extra == {"reasoning_content": None}
        sbv.configure_backend("vllm", reasoning_parser="deepseek_r1")
        r = await c.chat.completions.create(model=model, messages=msgs)
        chunks = [ch async for ch in await c.chat.completions.create(model=model, messages=msgs, stream=True)]
    want = "The user asked 'hello vllm'. I will answer."
    assert (r.choices[0].message.model_extra or {})["reasoning_content"] == want
    pieces = [(ch.choices[0].delta.model_extra or {}).get("reasoning_content") for ch in chunks if ch.choices]
    assert "".join(p for p in pieces if p) == want
    async with client(base, "vllm", model) as ic:
        got = await ic.chat("hello vllm")
        async with ic.stream("hello vllm") as st:
            streamed = await st.final_response()
    assert got.reasoning == streamed.reasoning == want
    assert got.text == streamed.text == "echo: hello vllm"
    with pytest.raises(infermux.ConfigurationError):
        sbv.configure_backend("vllm", reasoning_parser="nope")
