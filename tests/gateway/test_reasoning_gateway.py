"""Reasoning through the gateway: same-protocol streams keep the thinking (Anthropic thinking blocks with their
signature, OpenAI-compatible ``reasoning_content``), checked with the official SDKs against the emulators, in
process and through ``infermux serve``; the Anthropic tool-use loop with signed thinking works end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import infermux
from infermux.gateway import Gateway, GatewayServer, GatewaySettings
from infermux.gateway.sse import AnthropicSSE, ChatSSE
from infermux.providers import anthropic as anthropic_provider
from infermux.providers import openai as openai_provider
from infermux.sandbox import Sandbox, SandboxThread
from infermux.types import (
    ReasoningBlock,
    ReasoningDelta,
    StreamAccumulator,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)

from .conftest import MASTER, Rig

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = "claude-sonnet-4-20250514"
THINK: Any = {"type": "enabled", "budget_tokens": 1024}
WEATHER: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}

EVENTS: list[StreamEvent] = [
    StreamStart("x", "m"),
    ReasoningDelta("", 0),
    ReasoningDelta("Let me ", 0),
    ReasoningDelta("think.", 0),
    ReasoningDelta("", 0, signature="EqQBsig==", protocol="anthropic"),
    ReasoningDelta("", 1, redacted="EmwKAhgB", protocol="anthropic"),
    TextDelta("Sunny."),
    ToolCallStart(0, "call_1", "get_weather"),
    ToolCallDelta(0, '{"city": "Paris"}'),
    StreamFinish("tool_calls"),
]


def _parse_back(wire: bytes, parser: Any) -> StreamAccumulator:
    acc = StreamAccumulator()
    for i in range(0, len(wire), 7):
        for ev in parser.feed(wire[i : i + 7]):
            acc.add(ev)
    for ev in parser.close():
        acc.add(ev)
    return acc


def test_anthropic_renderer_emits_thinking_blocks_that_parse_back() -> None:
    r = AnthropicSSE("r1", "m")
    acc = _parse_back(b"".join(r.feed(ev) for ev in EVENTS) + r.close(), anthropic_provider.AnthropicStreamParser())
    assert acc.text == "Sunny." and acc.reasoning == "Let me think."
    assert acc.reasoning_blocks() == (
        ReasoningBlock("Let me think.", "EqQBsig==", None, "anthropic"),
        ReasoningBlock("", None, "EmwKAhgB", "anthropic"),
    )
    assert [(c.name, c.arguments) for c in acc.tool_calls()] == [("get_weather", {"city": "Paris"})]


def test_openai_renderer_emits_reasoning_content() -> None:
    r = ChatSSE("r1", "m")
    wire = b"".join(r.feed(ev) for ev in EVENTS) + r.close()
    acc = _parse_back(wire, openai_provider.ChatStreamParser())
    assert acc.text == "Sunny." and acc.reasoning == "Let me think."  # signatures have no OpenAI form
    assert b'"reasoning_content":"Let me "' in wire


def _ant(rig: Rig) -> anthropic.AsyncAnthropic:
    c = anthropic.AsyncAnthropic(base_url=rig.url, api_key=MASTER, max_retries=0, timeout=20)
    rig.clients.append(c)
    return c


async def test_anthropic_sdk_sees_thinking_and_signature_through_the_gateway(rig: Rig) -> None:
    direct = anthropic.AsyncAnthropic(base_url=rig.sb.anthropic_base_url, api_key="k", max_retries=0, timeout=20)
    rig.clients.append(direct)
    msgs: Any = [{"role": "user", "content": "hello there"}]
    want = await direct.messages.create(model=CLAUDE, max_tokens=2048, messages=msgs, thinking=THINK)
    c = _ant(rig)
    async with c.messages.stream(model=CLAUDE, max_tokens=2048, messages=msgs, thinking=THINK) as s:
        kinds = [ev.delta.type async for ev in s if ev.type == "content_block_delta"]
        final = await s.get_final_message()
    plain = await c.messages.create(model=CLAUDE, max_tokens=2048, messages=msgs, thinking=THINK)
    for got in (final, plain):
        assert [b.type for b in got.content] == ["thinking", "text"]
        block, ref = got.content[0], want.content[0]
        assert isinstance(block, anthropic.types.ThinkingBlock) and isinstance(ref, anthropic.types.ThinkingBlock)
        assert (block.thinking, block.signature) == (ref.thinking, ref.signature)
    assert "thinking_delta" in kinds and "signature_delta" in kinds


async def test_anthropic_tool_use_loop_with_thinking_through_the_gateway(rig: Rig) -> None:
    # the assistant turn, as the SDK assembled it from the gateway's stream, goes back with its signed thinking;
    # the emulator refuses it (as the real API) if the thinking block or its signature is missing or wrong
    c = _ant(rig)
    msgs: Any = [{"role": "user", "content": "call get_weather for Paris"}]
    kw: Any = {"model": CLAUDE, "max_tokens": 2048, "thinking": THINK, "tools": [WEATHER]}
    async with c.messages.stream(messages=msgs, **kw) as s:
        first = await s.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    use = first.content[1]
    assert isinstance(use, anthropic.types.ToolUseBlock)
    turn = [b.model_dump(exclude_none=True) for b in first.content]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "20 C"}]}
    async with c.messages.stream(messages=[*msgs, {"role": "assistant", "content": turn}, result], **kw) as s:
        second = await s.get_final_message()
    assert second.content[-1].type == "text" and second.content[-1].text == "tool result: 20 C"
    with pytest.raises(anthropic.BadRequestError, match="thinking"):
        await c.messages.create(messages=[*msgs, {"role": "assistant", "content": turn[1:]}, result], **kw)


async def test_openai_sdk_sees_reasoning_content_from_a_vllm_backend() -> None:
    model = "meta-llama/Llama-3.2-1B-Instruct"
    async with Sandbox(host="127.0.0.1", port=0, backends=("vllm",)) as sb:
        sb.configure_backend("vllm", reasoning_parser="deepseek_r1")
        cfg = infermux.EndpointConfig("v", "vllm", base_url=sb.base_url + "/v1", model=model)
        gw = Gateway(infermux.AsyncClient([cfg], trust_env=False), GatewaySettings(port=0, master_key=MASTER))
        srv = GatewayServer(gw)
        await srv.start()
        try:
            async with openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key=MASTER, max_retries=0, timeout=20) as c:
                msgs: Any = [{"role": "user", "content": "hello vllm"}]
                chunks = [ch async for ch in await c.chat.completions.create(model=model, messages=msgs, stream=True)]
                plain = await c.chat.completions.create(model=model, messages=msgs)
        finally:
            await srv.stop(timeout=2)
    want = "The user asked 'hello vllm'. I will answer."
    got = "".join((ch.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for ch in chunks if ch.choices)
    assert got == want
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "echo: hello vllm"
    assert (plain.choices[0].message.model_extra or {})["reasoning_content"] == want  # the body passed through


def test_infermux_serve_streams_thinking_to_the_anthropic_sdk(tmp_path: Path) -> None:
    with SandboxThread() as sb:
        cfg = tmp_path / "gw.toml"
        cfg.write_text(
            f'[[endpoints]]\nname = "claude"\nprovider = "anthropic"\nbase_url = "{sb.sandbox.anthropic_base_url}"\n'
            f'model = "{CLAUDE}"\napi_keys = ["k"]\n'
        )
        env = {**os.environ, "INFERMUX_MASTER_KEY": MASTER, "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-m", "infermux.cli", "serve", "--config", str(cfg), "--port", "0"]
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert "listening on http://127.0.0.1:" in line, line
            url = line.strip().rsplit(" ", 1)[-1]
            with anthropic.Anthropic(base_url=url, api_key=MASTER, max_retries=0, timeout=20) as c:
                msgs: Any = [{"role": "user", "content": "hi"}]
                with c.messages.stream(model=CLAUDE, max_tokens=2048, messages=msgs, thinking=THINK) as s:
                    final = s.get_final_message()
            block = final.content[0]
            assert isinstance(block, anthropic.types.ThinkingBlock)
            assert block.thinking == "The user wrote 'hi'; answer briefly." and len(block.signature) > 40
            assert json.loads(json.dumps(final.content[1].model_dump()))["text"] == "echo: hi"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def test_anthropic_renderer_leaves_out_another_protocols_signature() -> None:
    r = AnthropicSSE("r1", "m")
    events = [StreamStart("x", "m"), ReasoningDelta("Plan.", 0, "CiQB", None, "gemini"), TextDelta("Hi")]
    wire = b"".join(r.feed(ev) for ev in [*events, StreamFinish("stop")])
    acc = _parse_back(wire, anthropic_provider.AnthropicStreamParser())
    assert acc.reasoning_blocks() == (ReasoningBlock("Plan."),) and b"CiQB" not in wire
