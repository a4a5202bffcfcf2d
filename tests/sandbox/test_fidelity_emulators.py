"""Emulator fidelity (issue 8): OpenAI reasoning models refuse what the real API refuses and report reasoning
tokens; Azure content-filter fields (chat and Responses) on request; Anthropic extended thinking blocks.
Each is checked with the official SDK (the emulator is faithful) and through infermux (we handle it)."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
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


# --------------------------------------------------------------------------- inputs the real APIs refuse


TIFF_URL = "data:image/tiff;base64," + base64.b64encode(b"II*\x00").decode()
PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


def _image_msg(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


async def test_openai_emulator_refuses_images_and_tool_names(sb: Sandbox) -> None:
    async with oai(sb) as c:
        with pytest.raises(openai.BadRequestError) as tiff:
            await c.chat.completions.create(model="gpt-4o", messages=_image_msg(TIFF_URL))  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError) as bad64:
            await c.chat.completions.create(model="gpt-4o", messages=_image_msg("data:image/png;base64,@@@"))  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError) as ftp:
            await c.chat.completions.create(model="gpt-4o", messages=_image_msg("ftp://example.com/a.png"))  # type: ignore[arg-type]
        ok = await c.chat.completions.create(model="gpt-4o", messages=_image_msg(PNG_URL))  # type: ignore[arg-type]
        tool = {"type": "function", "function": {"name": "get weather", "parameters": {"type": "object"}}}
        with pytest.raises(openai.BadRequestError) as name:
            await c.chat.completions.create(model="gpt-4o", messages=MSG, tools=[tool])  # type: ignore[arg-type, list-item]
    assert tiff.value.body == {  # the real answer, as recorded (openai/otel-openai-0.62.4_test_vision_base64_3)
        "message": "You uploaded an unsupported image. Please make sure your image has of one the following"
        " formats: ['png', 'jpeg', 'gif', 'webp'].",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_image_format",
    }
    assert bad64.value.status_code == ftp.value.status_code == 400
    assert ftp.value.body["param"] == "messages[0].content[1].image_url.url"  # type: ignore[index]
    assert ok.choices[0].message.content == "echo: what? (1 image)"
    assert "does not match pattern" in name.value.message and name.value.body["param"] == "tools[0].function.name"  # type: ignore[index]


async def test_anthropic_emulator_refuses_images_and_tool_names(sb: Sandbox) -> None:
    def image(media_type: str, data: str) -> list[dict[str, Any]]:
        src = {"type": "base64", "media_type": media_type, "data": data}
        return [{"role": "user", "content": [{"type": "image", "source": src}, {"type": "text", "text": "what?"}]}]

    tool = {"name": "f", "input_schema": {"type": "object"}}
    async with anthropic.AsyncAnthropic(base_url=sb.anthropic_base_url, api_key="sk-ant", max_retries=0) as c:
        with pytest.raises(anthropic.BadRequestError, match="media_type: Input should be 'image/jpeg'"):
            await c.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=image("image/tiff", "aGk="))  # type: ignore[arg-type]
        with pytest.raises(anthropic.BadRequestError, match="base64"):
            await c.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=image("image/png", "!!"))  # type: ignore[arg-type]
        with pytest.raises(anthropic.BadRequestError, match="Tool names must be unique"):
            await c.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=MSG, tools=[tool, tool])  # type: ignore[arg-type, list-item]
        with pytest.raises(anthropic.BadRequestError, match="should match pattern"):
            await c.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=10,
                messages=MSG,  # type: ignore[arg-type]
                tools=[{"name": "get weather", "input_schema": {"type": "object"}}],  # type: ignore[list-item]
            )
        ok = await c.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=image("image/png", "aGk="))  # type: ignore[arg-type]
    assert ok.content[0].text == "echo: what? (1 image)"  # type: ignore[union-attr]


async def test_gemini_emulator_refuses_media_types_and_names() -> None:
    async with Sandbox(host="127.0.0.1", port=0, backends=("gemini",)) as sb:
        answers = await _gemini_answers(sb)
    assert [status for status, _ in answers] == [400, 400, 400, 400, 200]
    assert answers[0][1]["error"]["message"] == "Unsupported MIME type: image/tiff"
    assert "Base64 decoding failed" in answers[1][1]["error"]["message"]
    assert "Invalid URI" in answers[2][1]["error"]["message"]
    assert "Invalid function name" in answers[3][1]["error"]["message"]
    assert answers[0][1]["error"]["status"] == "INVALID_ARGUMENT"


async def _gemini_answers(sb: Sandbox) -> list[tuple[int, Any]]:
    base = f"{sb.base_url}/v1beta/models/gemini-2.0-flash:generateContent"
    headers = {"x-goog-api-key": "k"}

    def body(part: dict[str, Any], tools: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "what?"}, part]}]}
        if tools:
            out["tools"] = tools
        return out

    tiff = {"inlineData": {"mimeType": "image/tiff", "data": "aGk="}}
    bad = {"inlineData": {"mimeType": "image/png", "data": "a!b"}}
    png = {"inlineData": {"mimeType": "image/png", "data": "aGk="}}
    ftp = {"fileData": {"mimeType": "image/png", "fileUri": "ftp://x/a.png"}}
    decl = {"functionDeclarations": [{"name": "9lives", "parameters": {"type": "object"}}]}
    answers = []
    async with aiohttp.ClientSession() as s:
        for b in (body(tiff), body(bad), body(ftp), body(png, [decl]), body(png)):
            async with s.post(base, json=b, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as r:
                answers.append((r.status, await r.json()))
    return answers


async def test_responses_reasoning_item_for_reasoning_models(sb: Sandbox) -> None:
    async with oai(sb) as c:
        resp = await c.responses.create(model="o4-mini", input="hi", reasoning={"effort": "low"})
        stream = await c.responses.create(model="o4-mini", input="hi", stream=True)
        kinds = [(ev.type, getattr(getattr(ev, "item", None), "type", None)) async for ev in stream]
    assert [o.type for o in resp.output] == ["reasoning", "message"] and resp.output_text == "echo: hi"
    assert resp.usage is not None and resp.usage.output_tokens_details.reasoning_tokens == 16
    assert kinds[2:4] == [("response.output_item.added", "reasoning"), ("response.output_item.done", "reasoning")]
    tool = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
    async with client(sb, provider="openai_responses", model="o4-mini") as ic:
        r = await ic.chat("call get_time", tools=[tool])
        async with ic.stream("call get_time", tools=[tool]) as s:
            streamed = await s.final_response()
    assert [c.name for c in r.tool_calls] == [c.name for c in streamed.tool_calls] == ["get_time"]
    assert r.text == streamed.text == ""
