"""Emulator fidelity (issue 8): OpenAI reasoning models refuse what the real API refuses and report reasoning
tokens; Azure content-filter fields (chat and Responses) on request; Anthropic extended thinking blocks.
Each is checked with the official SDK (the emulator is faithful) and through infermux (we handle it)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

import infermux
from infermux.providers.openai import content_filter_results
from infermux.sandbox import Sandbox

MSG = [{"role": "user", "content": "hello sandbox world"}]


def oai(sb: Sandbox) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sb.openai_base_url, api_key="sk-test", max_retries=0)


def client(sb: Sandbox, provider: str = "openai", model: str = "gpt-4o-mini", **kw: Any) -> infermux.AsyncClient:
    base = sb.anthropic_base_url if provider == "anthropic" else sb.openai_base_url
    cfg = infermux.EndpointConfig(name="e", provider=provider, base_url=base, model=model, api_keys=("sk-test",), **kw)
    return infermux.AsyncClient([cfg], trust_env=False)


# --------------------------------------------------------------------------- reasoning models


async def test_reasoning_model_refuses_max_tokens_like_the_real_api(sb: Sandbox) -> None:
    async with oai(sb) as c:
        with pytest.raises(openai.BadRequestError) as ei:
            await c.chat.completions.create(model="o3-mini", messages=MSG, max_tokens=5)  # type: ignore[arg-type]
        ok = await c.chat.completions.create(model="o3-mini", messages=MSG, max_completion_tokens=5)  # type: ignore[arg-type]
        legacy = await c.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)  # type: ignore[arg-type]
    assert ei.value.status_code == 400
    assert ei.value.body == {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model."
        " Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
    assert ok.choices[0].message.content == "echo: hello sandbox world"
    assert legacy.choices[0].message.content == "echo: hello sandbox world"  # older models still take it


@pytest.mark.parametrize("field", ["temperature", "top_p"])
async def test_reasoning_model_refuses_sampling_parameters(sb: Sandbox, field: str) -> None:
    async with oai(sb) as c:
        with pytest.raises(openai.BadRequestError) as ei:
            await c.chat.completions.create(model="o1", messages=MSG, **{field: 0.5})  # type: ignore[arg-type]
        await c.chat.completions.create(model="o1", messages=MSG, **{field: 1})  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError) as eff:
            await c.chat.completions.create(model="gpt-4o", messages=MSG, reasoning_effort="low")  # type: ignore[arg-type]
    assert ei.value.body["code"] == "unsupported_value" and ei.value.body["param"] == field  # type: ignore[index]
    assert f"'{field}' does not support 0.5 with this model" in ei.value.message
    assert eff.value.body["param"] == "reasoning_effort"  # type: ignore[index]


async def test_reasoning_tokens_reported_and_read(sb: Sandbox) -> None:
    async with oai(sb) as c:
        low = await c.chat.completions.create(model="o3", messages=MSG, reasoning_effort="low")  # type: ignore[arg-type]
        plain = await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]
    assert low.usage is not None and low.usage.completion_tokens_details is not None
    assert low.usage.completion_tokens_details.reasoning_tokens == 16
    assert low.usage.completion_tokens == 4 + 16
    assert plain.usage is not None and plain.usage.completion_tokens_details is not None
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0
    # infermux: max_tokens goes out as max_completion_tokens (accepted), reasoning tokens are read
    async with client(sb, model="o3-mini") as ic:
        r = await ic.chat("hello sandbox world", max_tokens=50, reasoning_effort="high")
        async with ic.stream("hello sandbox world", max_tokens=50) as s:
            streamed = await s.final_response()
    assert r.text == "echo: hello sandbox world"
    assert r.usage is not None and r.usage.reasoning_tokens == 256 and r.usage.output_tokens == 4 + 256
    assert streamed.usage is not None and streamed.usage.reasoning_tokens == 64  # medium by default
    async with client(sb, provider="openai_responses", model="o4-mini") as rc:
        rr = await rc.chat("hello sandbox world", max_tokens=50, reasoning_effort="low")
    assert (
        rr.usage is not None
        and rr.usage.reasoning_tokens == 16
        and rr.raw["reasoning"] == {"effort": "low", "summary": None}
    )


async def test_reasoning_model_sampling_refused_before_io(sb: Sandbox) -> None:
    async with client(sb, model="o3-mini") as ic:
        with pytest.raises(infermux.ConfigurationError, match="reasoning model"):
            await ic.chat("hi", temperature=0.2)
    assert sb.stats.total == 0


# --------------------------------------------------------------------------- content filtering (Azure)


async def test_chat_content_filter_fields(sb: Sandbox) -> None:
    async with client(sb, headers={"x-sandbox-content-filter": "azure"}) as ic:
        ok = await ic.chat("hello sandbox world")
    verdicts = content_filter_results(ok)
    assert ok.text == "echo: hello sandbox world" and ok.finish_reason == "stop"
    assert verdicts["prompt"][0]["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert verdicts["completion"]["violence"]["filtered"] is False
    async with client(sb, headers={"x-sandbox-content-filter": "block"}) as ic:
        blocked = await ic.chat("hello sandbox world")
        async with ic.stream("hello sandbox world") as s:
            texts = [t async for t in s.text()]
            streamed = await s.final_response()
    assert blocked.text == "" and blocked.finish_reason == "content_filter"
    assert "message" not in blocked.raw["choices"][0]
    assert content_filter_results(blocked)["completion"]["violence"] == {"filtered": True, "severity": "high"}
    assert texts == [] and streamed.finish_reason == "content_filter"


async def test_responses_content_filter_fields(sb: Sandbox) -> None:
    async with client(sb, provider="openai_responses", headers={"x-sandbox-content-filter": "block"}) as ic:
        r = await ic.chat("hello sandbox world")
        async with ic.stream("hello sandbox world") as s:
            streamed = await s.final_response()
    assert r.finish_reason == "content_filter" and r.text == ""
    assert [f["source_type"] for f in r.raw["content_filters"]] == ["prompt", "completion"]
    assert r.raw["content_filters"][1]["blocked"] is True
    assert streamed.finish_reason == "content_filter"
    async with oai(sb) as c:
        resp = await c.responses.create(
            model="gpt-4o-mini", input="hi", extra_headers={"x-sandbox-content-filter": "azure"}
        )
    assert resp.output_text == "echo: hi" and resp.model_extra is not None
    assert resp.model_extra["content_filters"][0]["blocked"] is False


# --------------------------------------------------------------------------- Anthropic extended thinking


THINK = {"type": "enabled", "budget_tokens": 1024}


async def test_anthropic_thinking_blocks(sb: Sandbox) -> None:
    async with anthropic.AsyncAnthropic(base_url=sb.anthropic_base_url, api_key="sk-ant", max_retries=0) as c:
        m = await c.messages.create(model="claude-sonnet-4-5", max_tokens=2048, messages=MSG, thinking=THINK)  # type: ignore[arg-type]
        async with c.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=2048,
            messages=MSG,  # type: ignore[arg-type]
            thinking=THINK,  # type: ignore[arg-type]
        ) as stream:
            kinds = [ev.delta.type async for ev in stream if ev.type == "content_block_delta"]
            final = await stream.get_final_message()
        with pytest.raises(anthropic.BadRequestError, match="budget_tokens"):
            await c.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=2048,
                messages=MSG,  # type: ignore[arg-type]
                thinking={"type": "enabled", "budget_tokens": 100},
            )
    assert [b.type for b in m.content] == ["thinking", "text"]
    assert m.content[0].thinking and m.content[0].signature  # type: ignore[union-attr]
    assert m.content[1].text == "echo: hello sandbox world"  # type: ignore[union-attr]
    assert "thinking_delta" in kinds and "signature_delta" in kinds and "text_delta" in kinds
    assert final.content[0].thinking == m.content[0].thinking  # type: ignore[union-attr]
    assert final.content[0].signature == m.content[0].signature  # type: ignore[union-attr]
    # infermux: the thinking stays out of the text, in raw and in the stream alike
    async with client(sb, provider="anthropic", model="claude-sonnet-4-5") as ic:
        r = await ic.chat("hello sandbox world", max_tokens=2048, extra={"thinking": THINK})
        async with ic.stream("hello sandbox world", max_tokens=2048, extra={"thinking": THINK}) as s:
            streamed = await s.final_response()
    assert r.text == streamed.text == "echo: hello sandbox world"
    assert r.raw["content"][0]["type"] == "thinking"
    assert r.usage is not None and r.usage.output_tokens > 4
