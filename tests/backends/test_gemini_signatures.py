"""Gemini thought signatures: a thinking model signs its function calls (``thoughtSignature`` on the part); the
next turn of the tool loop must send each signature back on the same part (Gemini 3 answers 400 otherwise). The
emulator enforces it as the real API does (proven with the official google-genai SDK), and infermux keeps the
signature on :class:`ToolCall` (body and stream) and sends it back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import BadRequestError
from infermux.providers.gemini import build_chat
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Sandbox, SandboxThread
from infermux.sandbox._gemini import thought_signature
from infermux.types import ChatRequest, Message, ReasoningBlock, StreamAccumulator, Tool, ToolCall

pytestmark = pytest.mark.timeout(60)

KEY = "AIza-test-key"
G3 = "gemini-3-pro-preview"
MODELS = (G3, "gemini-2.5-flash")
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


# --------------------------------------------------------------------------- the official SDK: the emulator


@pytest.fixture(scope="module")
def sdk() -> Iterator[genai.Client]:
    with SandboxThread(backends=("gemini",), keys=(KEY,), models=MODELS) as sbt:
        opts = types.HttpOptions(
            base_url=sbt.base_url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
        )
        yield genai.Client(api_key=KEY, http_options=opts)


def test_sdk_tool_loop_needs_the_signature_back(sdk: genai.Client) -> None:
    tool = types.Tool(
        function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER)]
    )
    cfg = types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    ask = types.Content(role="user", parts=[types.Part(text="call get_weather please")])
    first = sdk.models.generate_content(model=G3, contents=[ask], config=cfg)
    assert first.candidates and first.candidates[0].content and first.candidates[0].content.parts
    turn = first.candidates[0].content
    part = turn.parts[0]
    assert part.function_call is not None and part.thought_signature  # bytes, as the SDK decodes it
    result = types.Content(
        role="user",
        parts=[types.Part(function_response=types.FunctionResponse(name="get_weather", response={"t": "20 C"}))],
    )
    second = sdk.models.generate_content(model=G3, contents=[ask, turn, result], config=cfg)
    assert second.text == 'tool result: {"t":"20 C"}'
    bare = types.Content(role="model", parts=[types.Part(function_call=part.function_call)])
    with pytest.raises(genai_errors.ClientError, match="missing a thought_signature") as ei:
        sdk.models.generate_content(model=G3, contents=[ask, bare, result], config=cfg)
    assert ei.value.code == 400
    # a later user turn closes the loop: its history is no longer checked (as the real API)
    again = types.Content(role="user", parts=[types.Part(text="thanks")])
    ok = sdk.models.generate_content(model=G3, contents=[ask, bare, result, second.candidates[0].content, again])
    assert ok.text == "echo: thanks"


# --------------------------------------------------------------------------- infermux


@pytest.fixture
async def ep() -> AsyncIterator[Endpoint]:
    async with Sandbox(backends=("gemini",), keys=(KEY,), models=MODELS) as sb:
        cfg = EndpointConfig(
            name="gem",
            provider="gemini",
            base_url=sb.base_url + "/v1beta",
            model=G3,
            api_keys=(KEY,),
            retry=RetryPolicy(max_retries=0),
        )
        endpoint = Endpoint(cfg, clock=FakeClock())
        try:
            yield endpoint
        finally:
            await endpoint.aclose()


ASK = Message.user("call get_weather please")
TOOLS = (Tool("get_weather", "Weather", WEATHER),)


async def test_infermux_tool_loop_sends_the_signature_back(ep: Endpoint) -> None:
    first = await ep.chat(ChatRequest((ASK,), tools=TOOLS))
    call = first.tool_calls[0]
    assert call.signature == thought_signature("get_weather", call.arguments)
    result = Message.tool(call.id, '{"t": "20 C"}')
    second = await ep.chat(ChatRequest((ASK, first.message(), result), tools=TOOLS))
    assert second.text == 'tool result: {"t":"20 C"}'
    # the same turn without the signature is what Gemini 3 refuses (so the test above cannot pass by luck)
    unsigned = Message(
        "assistant", None, tool_calls=(ToolCall(call.id, call.name, call.arguments, call.raw_arguments),)
    )
    with pytest.raises(BadRequestError, match="thought_signature"):
        await ep.chat(ChatRequest((ASK, unsigned, result), tools=TOOLS))


async def test_infermux_stream_keeps_the_signature(ep: Endpoint) -> None:
    acc = StreamAccumulator()
    async for ev in ep.stream(ChatRequest((ASK,), tools=TOOLS)):
        acc.add(ev)
    first = acc.response()
    assert first.tool_calls[0].signature
    result = Message.tool(first.tool_calls[0].id, "sunny")
    acc = StreamAccumulator()
    async for ev in ep.stream(ChatRequest((ASK, first.message(), result), tools=TOOLS)):
        acc.add(ev)
    assert acc.text == 'tool result: {"output":"sunny"}'


def test_build_chat_puts_signatures_on_their_parts() -> None:
    turn = Message(
        "assistant",
        "Checking.",
        tool_calls=(ToolCall("c1", "f", {"a": 1}, '{"a": 1}', "sig-call"), ToolCall("c2", "g", {}, "{}")),
        reasoning=(
            ReasoningBlock("I think.", "sig-thought", None, "gemini"),
            ReasoningBlock("Claude's.", "sig-ant", None, "anthropic"),  # another protocol's: not sent
            ReasoningBlock("unsigned"),
        ),
    )
    body: Any = build_chat(ChatRequest((ASK, turn, Message.tool("c1", "x"))), G3, False).json
    parts = body["contents"][1]["parts"]
    assert parts == [
        {"text": "I think.", "thought": True, "thoughtSignature": "sig-thought"},
        {"text": "Checking."},
        {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "sig-call"},
        {"functionCall": {"name": "g", "args": {}}},  # a parallel call: only the first is signed
    ]
