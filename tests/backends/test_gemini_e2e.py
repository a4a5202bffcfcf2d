"""Gemini end to end on 127.0.0.1: the official google-genai SDK against the sandbox emulator (proving the
emulator faithful), then infermux (Endpoint / AsyncClient, provider="gemini") against the same emulator:
normal, streamed, tools, images, embeddings, countTokens, models, typed 4xx, 429/503 retried to success,
cut and malformed streams, and bad input refused before any I/O."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    PermissionDeniedError,
    RateLimitError,
)
from infermux.providers.gemini import (
    build_count_tokens,
    build_list_models,
    parse_count_tokens,
    parse_models,
)
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Conversation, Fault, Sandbox, SandboxThread
from infermux.sandbox._model import default_reply
from infermux.transport import Timeouts
from infermux.types import ChatRequest, EmbedRequest, ImagePart, Message, StreamAccumulator, TextPart, Tool

pytestmark = pytest.mark.timeout(60)

KEY = "AIza-test-key"
MODEL = "gemini-2.5-flash"
EMBED_MODEL = "gemini-embedding-001"
MODELS = (MODEL, "gemini-2.5-pro", EMBED_MODEL)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}


def responder(conv: Conversation) -> str:
    """The default echo, prefixed with the system instruction so tests can see it arrived."""
    return (f"[{conv.system}] " if conv.system else "") + default_reply(conv)


# --------------------------------------------------------------------------- the official SDK


@pytest.fixture(scope="module")
def sbt() -> Iterator[SandboxThread]:
    with SandboxThread(backends=("gemini",), keys=(KEY,), models=MODELS, responder=responder) as sandbox:
        yield sandbox


@pytest.fixture
def sdk(sbt: SandboxThread) -> Iterator[genai.Client]:
    sbt.reset()
    opts = types.HttpOptions(
        base_url=sbt.base_url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    client = genai.Client(api_key=KEY, http_options=opts)
    yield client
    client.close()
    sbt.reset()


def _sdk_with_key(sbt: SandboxThread, key: str) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=sbt.base_url, api_version="v1beta"))


def test_sdk_generate_content(sdk: genai.Client, sbt: SandboxThread) -> None:
    r = sdk.models.generate_content(
        model=MODEL,
        contents="hello there",
        config=types.GenerateContentConfig(system_instruction="be nice", max_output_tokens=50, temperature=0.2),
    )
    assert r.text == "[be nice] echo: hello there"
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata is not None
    assert r.usage_metadata.prompt_token_count == 4  # "be nice" + "hello there"
    assert r.usage_metadata.candidates_token_count == 5
    assert r.model_version == MODEL and r.response_id
    assert sbt.stats.routes == {"POST /v1beta/models/{model}:generateContent": 1}


def test_sdk_max_output_tokens_and_stop_sequences(sdk: genai.Client) -> None:
    r = sdk.models.generate_content(
        model=MODEL, contents="one two three four", config=types.GenerateContentConfig(max_output_tokens=2)
    )
    assert r.text == "echo: one" and r.candidates and r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    r = sdk.models.generate_content(
        model=MODEL, contents="alpha STOP beta", config=types.GenerateContentConfig(stop_sequences=["STOP"])
    )
    assert r.text == "echo: alpha " and r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP


def test_sdk_stream(sdk: genai.Client) -> None:
    chunks = list(sdk.models.generate_content_stream(model=MODEL, contents="hello there friend"))
    assert "".join(c.text or "" for c in chunks) == "echo: hello there friend"
    assert len(chunks) == 4
    assert [c.candidates[0].finish_reason for c in chunks if c.candidates][-1] == types.FinishReason.STOP
    assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks[:-1])
    last = chunks[-1].usage_metadata
    assert last is not None and last.candidates_token_count == 4


async def test_sdk_async_stream(sdk: genai.Client) -> None:
    text = []
    try:
        async for chunk in await sdk.aio.models.generate_content_stream(model=MODEL, contents="async hello"):
            text.append(chunk.text or "")
    finally:
        await sdk.aio.aclose()  # the async client's session belongs to this test's event loop
    assert "".join(text) == "echo: async hello"


WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather by city",
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={"city": types.Schema(type=types.Type.STRING), "days": types.Schema(type="INTEGER")},
                required=["city", "days"],
            ),
        ),
        types.FunctionDeclaration(name="get_time", parameters_json_schema={"type": "object", "properties": {}}),
    ]
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


def test_sdk_function_calling_trigger_and_mode_any(sdk: genai.Client) -> None:
    r = sdk.models.generate_content(
        model=MODEL,
        contents="please call get_weather",
        config=types.GenerateContentConfig(tools=[WEATHER_TOOL], automatic_function_calling=NO_AFC),
    )
    assert r.function_calls is not None
    assert [(c.name, c.args) for c in r.function_calls] == [("get_weather", {"city": "example", "days": 1})]
    forced = types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_time"])
    )
    r = sdk.models.generate_content(
        model=MODEL,
        contents="no trigger here",
        config=types.GenerateContentConfig(tools=[WEATHER_TOOL], tool_config=forced, automatic_function_calling=NO_AFC),
    )
    assert r.function_calls is not None and [c.name for c in r.function_calls] == ["get_time"]
    none = types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE"))
    r = sdk.models.generate_content(
        model=MODEL,
        contents="call get_weather",
        config=types.GenerateContentConfig(tools=[WEATHER_TOOL], tool_config=none, automatic_function_calling=NO_AFC),
    )
    assert not r.function_calls and r.text == "echo: call get_weather"


def test_sdk_function_response_turn(sdk: genai.Client) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text="call get_weather")]),
        types.Content(
            role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Oslo", "days": 1})]
        ),
        types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp": 3})]),
    ]
    r = sdk.models.generate_content(
        model=MODEL, contents=contents, config=types.GenerateContentConfig(tools=[WEATHER_TOOL])
    )
    assert r.text == 'tool result: {"temp":3}'


def test_sdk_inline_image_and_json_mode(sdk: genai.Client) -> None:
    img = types.Part.from_bytes(data=b"\x89PNG fake", mime_type="image/png")
    r = sdk.models.generate_content(model=MODEL, contents=[img, img, "what are these"])
    assert r.text == "echo: what are these (2 images)"
    schema = types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"])
    cfg = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    assert sdk.models.generate_content(model=MODEL, contents="json", config=cfg).parsed == {"city": "example"}
    cfg = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema={"type": "object", "properties": {"a": {}}}
    )
    assert sdk.models.generate_content(model=MODEL, contents="json", config=cfg).parsed == {"a": None}
    cfg = types.GenerateContentConfig(response_mime_type="application/json")
    assert sdk.models.generate_content(model=MODEL, contents="json", config=cfg).text == '{"reply": "echo: json"}'


def test_sdk_embed_single_and_batch(sdk: genai.Client, sbt: SandboxThread) -> None:
    one = sdk.models.embed_content(model=EMBED_MODEL, contents="hello")
    assert one.embeddings is not None and len(one.embeddings) == 1 and len(one.embeddings[0].values or []) == 64
    many = sdk.models.embed_content(
        model=EMBED_MODEL, contents=["a", "b", "c"], config=types.EmbedContentConfig(output_dimensionality=8)
    )
    assert many.embeddings is not None and [len(e.values or []) for e in many.embeddings] == [8, 8, 8]
    assert many.embeddings[0].values != many.embeddings[1].values
    assert sbt.stats.routes == {"POST /v1beta/models/{model}:batchEmbedContents": 2}


def test_sdk_count_tokens_and_models(sdk: genai.Client) -> None:
    assert sdk.models.count_tokens(model=MODEL, contents="one two three").total_tokens == 3
    assert [m.name for m in sdk.models.list()] == [f"models/{m}" for m in MODELS]
    info = sdk.models.get(model=MODEL)
    assert info.name == f"models/{MODEL}" and info.supported_actions == ["generateContent", "countTokens"]
    with pytest.raises(genai_errors.ClientError) as ei:
        sdk.models.get(model="no-such-model")
    assert (ei.value.code, ei.value.status) == (404, "NOT_FOUND")


def test_sdk_429_is_not_hidden_by_retries(sdk: genai.Client, sbt: SandboxThread) -> None:
    sbt.faults.push(Fault.status_error(429))
    with pytest.raises(genai_errors.ClientError) as ei:
        sdk.models.generate_content(model=MODEL, contents="x")
    assert (ei.value.code, ei.value.status) == (429, "RESOURCE_EXHAUSTED")
    details = ei.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"} in details
    assert sbt.stats.total == 1  # exactly one request: no retry hid the fault


def test_sdk_503_and_400(sdk: genai.Client) -> None:
    with pytest.raises(genai_errors.ServerError) as ei:
        sdk.models.generate_content(
            model=MODEL, contents="x", config={"http_options": {"headers": {"x-sandbox-fault": "status=503"}}}
        )
    assert (ei.value.code, ei.value.status) == (503, "UNAVAILABLE")
    with pytest.raises(genai_errors.ClientError) as ei2:
        sdk.models.generate_content(model=MODEL, contents="x", config=types.GenerateContentConfig(temperature=5))
    assert (ei2.value.code, ei2.value.status) == (400, "INVALID_ARGUMENT")


def test_sdk_auth_errors(sbt: SandboxThread) -> None:
    bad = _sdk_with_key(sbt, "wrong")
    with pytest.raises(genai_errors.ClientError) as ei:
        bad.models.generate_content(model=MODEL, contents="x")
    assert (ei.value.code, ei.value.status) == (400, "INVALID_ARGUMENT")
    assert ei.value.message == "API key not valid. Please pass a valid API key."
    anon = genai.Client(
        api_key="placeholder",
        http_options=types.HttpOptions(base_url=sbt.base_url, api_version="v1beta", headers={"x-goog-api-key": ""}),
    )
    with pytest.raises(genai_errors.ClientError) as ei:
        anon.models.generate_content(model=MODEL, contents="x")
    assert (ei.value.code, ei.value.status) == (403, "PERMISSION_DENIED")


# --------------------------------------------------------------------------- infermux against the emulator


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(backends=("gemini",), keys=(KEY,), models=MODELS, responder=responder) as sandbox:
        yield sandbox


def endpoint(sb: Sandbox, *, clock: Any = None, key: str = KEY, **kw: Any) -> Endpoint:
    cfg = EndpointConfig(
        name="gem",
        provider="gemini",
        base_url=sb.base_url + "/v1beta",
        model=MODEL,
        api_keys=(key,),
        timeouts=Timeouts(connect=2.0, read=2.0),
        retry=kw.pop("retry", RetryPolicy(max_retries=3, initial_delay=0.001)),
        **kw,
    )
    return Endpoint(cfg, clock=clock or FakeClock())


def req(text: str = "hello world", **kw: Any) -> ChatRequest:
    return ChatRequest((Message.system("sys"), Message.user(text)), **kw)


async def test_chat_and_stream_agree(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        r = await ep.chat(req(max_tokens=50))
        assert r.text == "[sys] echo: hello world"
        assert (r.finish_reason, r.provider, r.model, r.attempts) == ("stop", "gemini", MODEL, 1)
        assert r.usage == infermux.Usage(input_tokens=3, output_tokens=4)
        assert r.response_id and len(r.response_id) == 23
        acc = StreamAccumulator()
        async for ev in ep.stream(req(max_tokens=50)):
            acc.add(ev)
        assert acc.finished and acc.text == r.text and acc.usage == r.usage and acc.finish_reason == "stop"
        assert sb.stats.routes == {
            "POST /v1beta/models/{model}:generateContent": 1,
            "POST /v1beta/models/{model}:streamGenerateContent": 1,
        }
    finally:
        await ep.aclose()


async def test_async_client_stream_final_response(sb: Sandbox) -> None:
    async with infermux.AsyncClient([endpoint(sb)], trust_env=False) as client:
        plain = await client.chat("stream me please", max_tokens=3)
        assert (plain.text, plain.finish_reason) == ("echo: stream me", "length")
        async with client.stream("stream me please", max_tokens=3) as stream:
            final = await stream.final_response()
        assert final.text == plain.text and final.finish_reason == "length"


async def test_tools_images_and_json(sb: Sandbox) -> None:
    ep = endpoint(sb)
    weather = Tool("get_weather", "Weather", WEATHER_SCHEMA)
    try:
        r = await ep.chat(req("what now", tools=(weather, Tool("get_time")), tool_choice="get_time"))
        assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [("call_0", "get_time", {})]
        assert r.finish_reason == "tool_calls"
        r = await ep.chat(req("call get_weather", tools=(weather,)))
        assert r.tool_calls[0].arguments == {"city": "example", "days": 1}
        follow = ChatRequest(
            (
                Message.user("call get_weather"),
                Message.assistant(tool_calls=r.tool_calls),
                Message.tool(r.tool_calls[0].id, '{"temp": 21}'),
            ),
            tools=(weather,),
        )
        assert (await ep.chat(follow)).text == 'tool result: {"temp":21}'
        acc = StreamAccumulator()
        async for ev in ep.stream(req("call get_weather", tools=(weather,))):
            acc.add(ev)
        assert acc.tool_calls()[0].arguments == {"city": "example", "days": 1} and acc.finish_reason == "tool_calls"
        img = Message.user((TextPart("describe"), ImagePart(data=PNG, media_type="image/png")))
        assert (await ep.chat(ChatRequest((img,)))).text == "echo: describe (1 image)"
        fmt = infermux.ResponseFormat("json_schema", WEATHER_SCHEMA)
        js = await ep.chat(ChatRequest((Message.user("x"),), response_format=fmt))
        assert js.json() == {"city": "example", "days": 1}
    finally:
        await ep.aclose()


async def test_embed_count_tokens_and_models(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        one = await ep.embed(EmbedRequest(("hello",), model=EMBED_MODEL, dimensions=16))
        many = await ep.embed(EmbedRequest(("hello", "world"), model=EMBED_MODEL))
        assert one.dimensions == 16 and len(many.vectors) == 2 and many.dimensions == 64
        assert many.usage == infermux.Usage(input_tokens=2)
        n = await ep.call(build_count_tokens(req("one two three"), MODEL), parse_count_tokens)
        assert n == 4  # system "sys" counts in the generateContentRequest form
        assert await ep.call(build_list_models(), parse_models) == list(MODELS)
        assert sb.stats.routes == {
            "POST /v1beta/models/{model}:embedContent": 1,
            "POST /v1beta/models/{model}:batchEmbedContents": 1,
            "POST /v1beta/models/{model}:countTokens": 1,
            "GET /v1beta/models": 1,
        }
    finally:
        await ep.aclose()


async def test_4xx_are_typed_and_not_retried(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(BadRequestError) as ei:
            await ep.chat(req(extra={"generationConfig": {"temperature": 5}}))
        assert (ei.value.status_code, ei.value.error_type, ei.value.attempts) == (400, "INVALID_ARGUMENT", 1)
        assert "temperature" in (ei.value.provider_message or "")
        with pytest.raises(BadRequestError):
            await ep.chat(ChatRequest((Message.user("x"),), extra={"contents": None}))
    finally:
        await ep.aclose()
    bad = endpoint(sb, key="wrong")
    try:
        with pytest.raises(AuthenticationError) as ai:
            await bad.chat(req())
        assert (ai.value.status_code, ai.value.error_type, ai.value.attempts) == (400, "API_KEY_INVALID", 1)
    finally:
        await bad.aclose()
    assert sb.stats.total == 3


@pytest.mark.parametrize(
    "extra",
    [
        {"toolConfig": "x"},
        {"tools": ["x"]},
        {"generationConfig": {"stopSequences": [1]}},
        {"generationConfig": {"maxOutputTokens": 0}},
        {"generationConfig": {"responseJsonSchema": {"type": "object"}}},  # schema without the JSON mime type
        {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
        {"contents": [{"role": "user", "parts": []}]},
    ],
)
async def test_emulator_rejects_invalid_bodies_like_the_api(sb: Sandbox, extra: dict[str, Any]) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(BadRequestError) as ei:
            await ep.chat(ChatRequest((Message.user("x"),), extra=extra))
        assert (ei.value.error_type, ei.value.attempts) == ("INVALID_ARGUMENT", 1)
        assert isinstance(ei.value.body, dict) and ei.value.body["error"]["code"] == 400
    finally:
        await ep.aclose()


async def test_missing_key_is_permission_denied(sb: Sandbox) -> None:
    cfg = EndpointConfig(name="anon", provider="gemini", base_url=sb.base_url + "/v1beta", model=MODEL)
    ep = Endpoint(cfg, clock=FakeClock())
    try:
        with pytest.raises(PermissionDeniedError) as ei:
            await ep.chat(req())
        assert ei.value.error_type == "PERMISSION_DENIED"
    finally:
        await ep.aclose()


# --------------------------------------------------------------------------- raw HTTP: ?key= and alt


async def _post(sb: Sandbox, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """POST with plain aiohttp: (status, content type, decoded JSON or text)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.post(sb.base_url + path, json=body, headers=headers or {}) as resp,
    ):
        text = await resp.text()
        ctype = resp.content_type
        return resp.status, ctype, json.loads(text) if ctype == "application/json" else text


GEN = "/v1beta/models/" + MODEL + ":generateContent"
STREAM = "/v1beta/models/" + MODEL + ":streamGenerateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]}


async def test_key_query_parameter_authenticates(sb: Sandbox) -> None:
    status, _, out = await _post(sb, GEN + "?key=" + KEY, BODY)
    assert status == 200 and out["candidates"][0]["content"]["parts"] == [{"text": "echo: one two three"}]
    status, _, out = await _post(sb, GEN + "?key=wrong", BODY)
    assert status == 400 and out["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    status, _, out = await _post(sb, GEN, BODY)
    assert (status, out["error"]["status"]) == (403, "PERMISSION_DENIED")
    status, _, _ = await _post(sb, GEN + "?key=", BODY)
    assert status == 403  # an empty key is no credential
    status, _, out = await _post(sb, GEN + "?key=wrong", BODY, {"x-goog-api-key": KEY})
    assert status == 200  # the header wins over the query parameter


async def test_stream_without_alt_sse_is_a_json_array(sb: Sandbox) -> None:
    hdr = {"x-goog-api-key": KEY}
    status, ctype, chunks = await _post(sb, STREAM, BODY, hdr)
    assert status == 200 and ctype == "application/json" and isinstance(chunks, list) and len(chunks) == 4
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "echo: one two three"
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, None, "STOP"]
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 3,
        "candidatesTokenCount": 4,
        "totalTokenCount": 7,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}],
    }
    assert len({c["responseId"] for c in chunks}) == 1 and chunks[0]["modelVersion"] == MODEL
    # ?alt=json is the same array; ?alt=sse the same chunks as data-only SSE
    status, _, again = await _post(sb, STREAM + "?alt=json", BODY, hdr)
    assert status == 200 and [c["candidates"] for c in again] == [c["candidates"] for c in chunks]
    status, ctype, sse = await _post(sb, STREAM + "?alt=sse", BODY, hdr)
    frames = [json.loads(line[len("data: ") :]) for line in sse.split("\n") if line.startswith("data: ")]
    assert status == 200 and ctype == "text/event-stream"
    assert [f["candidates"] for f in frames] == [c["candidates"] for c in chunks]
    status, _, out = await _post(sb, STREAM + "?alt=proto", BODY, hdr)
    assert status == 400 and out["error"]["status"] == "INVALID_ARGUMENT"
    # key in the query and no alt: the form a bare curl call uses
    status, _, arr = await _post(sb, STREAM + "?key=" + KEY, BODY)
    assert status == 200 and isinstance(arr, list) and arr[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_stream_json_array_with_a_tool_call(sb: Sandbox) -> None:
    body = {
        **BODY,
        "tools": [{"functionDeclarations": [{"name": "weather", "parameters": WEATHER_SCHEMA}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }
    status, _, chunks = await _post(sb, STREAM, body, {"x-goog-api-key": KEY})
    assert status == 200 and len(chunks) == 1
    part = chunks[0]["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"]["name"] == "weather" and chunks[0]["candidates"][0]["finishReason"] == "STOP"


async def test_429_retry_info_then_success(sb: Sandbox) -> None:
    clock = FakeClock()
    ep = endpoint(sb, clock=clock)
    try:
        sb.faults.push(Fault.status_error(429))
        r = await ep.chat(req(), request_id="rid-429")
        assert r.attempts == 2 and r.text == "[sys] echo: hello world"
        assert len(clock.sleeps) == 1 and 1.0 <= clock.sleeps[0] <= 1.1  # RetryInfo.retryDelay "1s" (+ jitter)
        assert [(x.request_id, x.attempt, x.fault) for x in sb.stats.records] == [
            ("rid-429", 1, "status:429"),
            ("rid-429", 2, None),
        ]
    finally:
        await ep.aclose()
    once = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        sb.faults.push(Fault.status_error(429, retry_after=3))
        with pytest.raises(RateLimitError) as ei:
            await once.chat(req())
        assert (ei.value.error_type, ei.value.retry_after) == ("RESOURCE_EXHAUSTED", 3.0)  # header wins
    finally:
        await once.aclose()


async def test_503_retried_to_success_in_stream_too(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        sb.faults.push(Fault.status_error(503), times=2)
        r = await ep.chat(req(), request_id="rid-503")
        assert r.attempts == 3
        assert [x.attempt for x in sb.stats.records if x.request_id == "rid-503"] == [1, 2, 3]
        sb.faults.push(Fault.status_error(500))
        acc = StreamAccumulator()
        async for ev in ep.stream(req()):
            acc.add(ev)
        assert acc.text == r.text
    finally:
        await ep.aclose()


@pytest.mark.parametrize("clean", [False, True])
async def test_stream_cut(sb: Sandbox, clean: bool) -> None:
    """A body that ends cleanly without a finishReason is an IncompleteStreamError (the parser's check); a
    connection reset mid-body is the transport's APIConnectionError. Neither is retried once text arrived."""
    ep = endpoint(sb)
    try:
        sb.faults.push(Fault.stream_cut(after=2, clean=clean))
        texts: list[str] = []
        with pytest.raises(IncompleteStreamError if clean else APIConnectionError) as ei:
            async for ev in ep.stream(req("a b c d e f"), request_id="rid-cut", resume=False):
                if isinstance(ev, infermux.TextDelta):
                    texts.append(ev.text)
        assert "".join(texts) == "[sys] echo:"
        assert ei.value.provider == "gemini" and ei.value.attempts == 1
        if clean:
            assert isinstance(ei.value, IncompleteStreamError) and ei.value.partial_text == "[sys] echo:"
        assert sb.stats.request_ids() == ["rid-cut"]

        # resumed (the default): the resent request (no prefill for Gemini) repeats the delivered text, which is
        # dropped, so the caller sees the whole answer once and one StreamResumed event at the seam
        whole = (await ep.chat(req("a b c d e f"))).text
        sb.faults.push(Fault.stream_cut(after=2, clean=clean))
        seen = [ev async for ev in ep.stream(req("a b c d e f"))]
        assert "".join(e.text for e in seen if isinstance(e, infermux.TextDelta)) == whole
        assert [type(e).__name__ for e in seen].count("StreamResumed") == 1
    finally:
        await ep.aclose()


async def test_malformed_200_and_html(sb: Sandbox) -> None:
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await ep.chat(req())
        sb.faults.push(Fault.malformed(after=0))
        with pytest.raises(MalformedResponseError):
            async for _ in ep.stream(req()):
                pass
        sb.faults.push(Fault.html())
        with pytest.raises(MalformedResponseError):
            await ep.chat(req())
    finally:
        await ep.aclose()
    retrying = endpoint(sb)
    try:
        sb.faults.push(Fault.malformed())
        assert (await retrying.chat(req())).attempts == 2
    finally:
        await retrying.aclose()


async def test_server_error_status_in_stream_chunk(sb: Sandbox) -> None:
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        sb.faults.push(Fault.status_error(504))
        with pytest.raises(InternalServerError) as ei:
            async for _ in ep.stream(req()):
                pass
        assert ei.value.error_type == "DEADLINE_EXCEEDED"
    finally:
        await ep.aclose()


async def test_bad_input_is_refused_before_io(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(ConfigurationError):
            await ep.chat(ChatRequest((Message.user("x"),), model="bad model name"))
        with pytest.raises(ConfigurationError):
            await ep.chat(req(stop=("1", "2", "3", "4", "5", "6")))
        with pytest.raises(ConfigurationError):
            await ep.chat(ChatRequest((Message.user("x"), Message.tool("unknown-call", "r"))))
        with pytest.raises(ConfigurationError):
            await ep.embed(EmbedRequest(("x",), model="models/"))
    finally:
        await ep.aclose()
    assert sb.stats.total == 0


async def test_client_models_and_bad_key_disables_it() -> None:
    """AsyncClient.models() uses Gemini's native list; a 400 API_KEY_INVALID takes the key out of rotation."""
    from infermux.sandbox import Sandbox

    async with Sandbox(backends=("gemini",), keys=["good-key"]) as sb:
        cfg = infermux.EndpointConfig(
            name="g",
            provider="gemini",
            base_url=sb.base_url + "/v1beta",
            model="gemini-2.0-flash",
            api_keys=("bad-key", "good-key"),
        )
        async with infermux.AsyncClient([cfg]) as client:
            with pytest.raises(infermux.AuthenticationError):
                await client.chat("hi")
            models = await client.models()
            assert models["g"] and all(isinstance(m, str) for m in models["g"])
            assert (await client.chat("hi")).text
            keys = client.stats()["g"]["keys"]
            assert keys[0]["disabled"] and not keys[1]["disabled"]
