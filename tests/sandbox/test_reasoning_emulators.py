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
from infermux.fleet import GroupConfig
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


async def test_resumed_stream_keeps_one_copy_of_the_reasoning(sbv: Sandbox) -> None:
    # a stream cut after some text is resumed (resent: vLLM has no prefill); the new stream repeats the
    # reasoning, which the caller already has: it is not delivered again (the repeated text is dropped too)
    from infermux.sandbox import Fault

    model = "meta-llama/Llama-3.2-1B-Instruct"
    sbv.configure_backend("vllm", reasoning_parser="deepseek_r1")
    sbv.faults.push(Fault.stream_cut(11))  # role chunk, 8 reasoning chunks, 2 text chunks, then the cut
    retry = infermux.RetryPolicy(max_retries=2, initial_delay=0.001)
    cfg = infermux.EndpointConfig("v", "vllm", base_url=sbv.base_url + "/v1", model=model, retry=retry)
    async with infermux.AsyncClient([cfg], trust_env=False) as ic, ic.stream("hello vllm there") as st:
        events = [ev async for ev in st]
        final = await st.final_response()
    assert any(isinstance(e, infermux.StreamResumed) for e in events)
    assert final.text == "echo: hello vllm there"
    assert final.reasoning == "The user asked 'hello vllm there'. I will answer."


async def test_failover_mid_stream_keeps_the_first_endpoints_reasoning() -> None:
    # a's stream (thinking on) breaks after its thinking block and some text; b continues the answer (prefill)
    # and thinks again: the caller keeps a's signed thinking, once, and the whole answer
    from infermux.sandbox import Fault

    question = "one two three four five six seven eight"
    think = {"thinking": THINK}
    async with Sandbox() as a, Sandbox() as b:
        a.faults.set_default(Fault.stream_cut(14))  # start, thinking block (8 events), text start, 3 text deltas

        def ep(name: str, sb: Sandbox) -> infermux.EndpointConfig:
            retry = infermux.RetryPolicy(max_retries=0)
            return infermux.EndpointConfig(
                name, "anthropic", base_url=sb.anthropic_base_url, model=MODEL, retry=retry, api_keys=("k",)
            )

        client = infermux.AsyncClient([ep("a", a), ep("b", b)], groups=[GroupConfig("g", ("a", "b"))], trust_env=False)
        async with client as c, c.stream(question, model="g", max_tokens=2048, extra=think) as s:
            events = [ev async for ev in s]
            r = await s.final_response()
    assert [(e.from_endpoint, e.to_endpoint) for e in events if isinstance(e, infermux.StreamResumed)][-1] == ("a", "b")
    assert r.endpoint == "b" and r.text == f"echo: {question}"
    want = f"The user wrote {question!r}; answer briefly."
    assert r.reasoning == want and len(r.reasoning_blocks) == 1 and r.reasoning_blocks[0].signature
