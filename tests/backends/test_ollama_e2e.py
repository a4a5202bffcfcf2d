"""Ollama end to end on 127.0.0.1: the official ``ollama`` SDK (sync and async) and the ``openai`` SDK (on the
``/v1`` routes) against the sandbox emulator, proving it faithful; then infermux (Endpoint / AsyncClient with
provider="ollama" and "ollama_openai") against the same emulator: normal and streamed chat, tools, images, JSON,
embeddings, generate/tags/show/pull/ps/version helpers, typed 4xx, 429/503 retried to success, cut and malformed
streams, and bad input refused before any I/O."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import ollama
import openai
import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    BadRequestError,
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
)
from infermux.providers import ollama as ol
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread
from infermux.transport import Timeouts
from infermux.types import (
    ChatRequest,
    EmbedRequest,
    ImagePart,
    Message,
    ResponseFormat,
    StreamAccumulator,
    TextPart,
    Tool,
)

pytestmark = pytest.mark.timeout(60)

MODEL = "llama3.2"
VISION = "llava"
EMBED = "nomic-embed-text"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def models() -> list[str]:
    return [MODEL, VISION, EMBED]  # a fresh list per sandbox: pulled models are not shared between tests


# --------------------------------------------------------------------------- the official ollama SDK


@pytest.fixture(scope="module")
def sbt() -> Iterator[SandboxThread]:
    with SandboxThread(backends=("ollama",), models=models()) as sandbox:
        yield sandbox


@pytest.fixture
def sdk(sbt: SandboxThread) -> Iterator[ollama.Client]:
    sbt.reset()
    client = ollama.Client(host=sbt.base_url, headers={"Authorization": "Bearer ignored"})
    yield client
    client.close()
    sbt.reset()


def test_sdk_chat_and_stream_agree(sdk: ollama.Client, sbt: SandboxThread) -> None:
    r = sdk.chat(model=MODEL, messages=[{"role": "user", "content": "hello there"}], options={"seed": 1})
    assert (r.message.role, r.message.content, r.done, r.done_reason) == (
        "assistant",
        "echo: hello there",
        True,
        "stop",
    )
    assert r.model == MODEL and r.eval_count == 3 and r.prompt_eval_count == 2 and r.total_duration
    parts = list(sdk.chat(model=MODEL, messages=[{"role": "user", "content": "hello there"}], stream=True))
    assert "".join(p.message.content or "" for p in parts) == r.message.content
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == r.eval_count
    assert sbt.stats.routes == {"POST /api/chat": 2}


def test_sdk_options_num_predict_and_stop(sdk: ollama.Client) -> None:
    msgs = [{"role": "user", "content": "one two three four five"}]
    cut = sdk.chat(model=MODEL, messages=msgs, options={"num_predict": 2})
    assert (cut.message.content, cut.done_reason, cut.eval_count) == ("echo: one", "length", 2)
    stopped = sdk.chat(model=MODEL, messages=msgs, options={"stop": ["three"]})
    assert (stopped.message.content, stopped.done_reason) == ("echo: one two ", "stop")


def test_sdk_generate_plain_stream_and_load(sdk: ollama.Client) -> None:
    g = sdk.generate(model=MODEL, prompt="tell a joke", system="be funny")
    assert (g.response, g.done, g.done_reason) == ("echo: tell a joke", True, "stop") and g.context
    parts = list(sdk.generate(model=MODEL, prompt="tell a joke", stream=True))
    assert "".join(p.response or "" for p in parts) == g.response and parts[-1].done
    loaded = sdk.generate(model=MODEL)
    assert (loaded.response, loaded.done_reason) == ("", "load")


def test_sdk_tools_trigger_and_tool_result_turn(sdk: ollama.Client) -> None:
    r = sdk.chat(model=MODEL, messages=[{"role": "user", "content": "please call get_weather"}], tools=[WEATHER])
    [call] = r.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "example"}
    follow = sdk.chat(
        model=MODEL,
        messages=[
            {"role": "user", "content": "please call get_weather"},
            r.message,
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        ],
        tools=[WEATHER],
    )
    assert follow.message.content == "tool result: sunny" and not follow.message.tool_calls
    streamed = list(
        sdk.chat(model=MODEL, messages=[{"role": "user", "content": "call get_weather"}], tools=[WEATHER], stream=True)
    )
    calls = [c for p in streamed for c in (p.message.tool_calls or [])]
    assert [c.function.arguments for c in calls] == [{"city": "example"}]


def test_sdk_images_and_format(sdk: ollama.Client) -> None:
    r = sdk.chat(model=VISION, messages=[{"role": "user", "content": "what is this?", "images": [PNG, PNG]}])
    assert r.message.content == "echo: what is this? (2 images)"
    j = sdk.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], format="json")
    assert json.loads(j.message.content or "") == {"reply": "echo: hi"}
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    s = sdk.generate(model=MODEL, prompt="count", format=schema)
    assert json.loads(s.response or "") == {"n": 1}


def test_sdk_embed_and_legacy_embeddings(sdk: ollama.Client) -> None:
    e = sdk.embed(model=EMBED, input=["a b", "c"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 64 and e.prompt_eval_count == 3
    small = sdk.embed(model=EMBED, input="a b", dimensions=8)
    assert len(small.embeddings[0]) == 8
    legacy = sdk.embeddings(model=EMBED, prompt="a b")
    assert list(legacy.embedding) == list(e.embeddings[0])


def test_sdk_list_show_ps_and_pull(sdk: ollama.Client) -> None:
    names = [m.model for m in sdk.list().models]
    assert names == ["llama3.2:latest", "llava:latest", "nomic-embed-text:latest"]
    info = sdk.show(EMBED)
    assert info.capabilities == ["embedding"] and info.details is not None and info.details.format == "gguf"
    assert "vision" in (sdk.show(VISION).capabilities or [])
    progress = list(sdk.pull("qwen3:0.6b", stream=True))
    assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
    downloads = [p for p in progress if p.total]
    assert downloads[-1].completed == downloads[-1].total and downloads[0].completed == 0
    assert "qwen3:0.6b" in [m.model for m in sdk.list().models]
    assert sdk.chat(model="qwen3:0.6b", messages=[{"role": "user", "content": "hi"}]).message.content == "echo: hi"
    assert sdk.pull("gemma3", stream=False).status == "success"
    assert "qwen3:0.6b" in [m.model for m in sdk.ps().models]
    sdk.generate(model="qwen3:0.6b", keep_alive=0)
    assert "qwen3:0.6b" not in [m.model for m in sdk.ps().models]


def test_sdk_errors(sdk: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as ei:
        sdk.chat(model="mistral", messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code == 404 and ei.value.error == 'model "mistral" not found, try pulling it first'
    with pytest.raises(ollama.ResponseError) as si:
        sdk.show("mistral")
    assert (si.value.status_code, si.value.error) == (404, "model 'mistral' not found")
    with pytest.raises(ollama.ResponseError) as bi:
        sdk.chat(model=EMBED, messages=[{"role": "user", "content": "hi"}])
    assert bi.value.status_code == 400 and "does not support chat" in bi.value.error
    with pytest.raises(ollama.ResponseError) as pi:
        list(sdk.pull("missing-model", stream=True))
    assert pi.value.error == "pull model manifest: file does not exist"
    with pytest.raises(ollama.ResponseError) as ni:
        sdk.pull("missing-model", stream=False)
    assert ni.value.status_code == 500


def test_sdk_sees_injected_faults(sdk: ollama.Client, sbt: SandboxThread) -> None:
    sbt.faults.push(Fault.status_error(503))
    with pytest.raises(ollama.ResponseError) as ei:
        sdk.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code == 503 and "server busy" in ei.value.error
    sbt.faults.push(Fault.malformed(after=1))
    with pytest.raises(json.JSONDecodeError):
        list(sdk.chat(model=MODEL, messages=[{"role": "user", "content": "a b c"}], stream=True))


def test_openai_sdk_on_v1_routes(sbt: SandboxThread) -> None:
    sbt.reset()
    client = openai.OpenAI(base_url=sbt.base_url + "/v1", api_key="ollama", max_retries=0)
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi there"}])
    assert r.choices[0].message.content == "echo: hi there" and r.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi there"}], stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi there"
    e = client.embeddings.create(model=EMBED, input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 64
    assert [m.id for m in client.models.list()][:1] == ["llama3.2:latest"]
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="mistral", messages=[{"role": "user", "content": "x"}])
    assert ei.value.body == {
        "message": 'model "mistral" not found, try pulling it first',
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
    client.close()


async def test_async_sdk_chat_stream() -> None:
    async with Sandbox(backends=("ollama",), models=models()) as sb:
        client = ollama.AsyncClient(host=sb.base_url)
        text = ""
        async for part in await client.chat(model=MODEL, messages=[{"role": "user", "content": "a b"}], stream=True):
            text += part.message.content or ""
        assert text == "echo: a b"
        with pytest.raises(ollama.ResponseError) as ei:
            await client.embed(model="nope", input="x")
        assert ei.value.status_code == 404
        await client.close()


# --------------------------------------------------------------------------- infermux against the emulator


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(backends=("ollama",), models=models()) as sandbox:
        yield sandbox


def endpoint(sb: Sandbox, *, provider: str = "ollama", retries: int = 3, clock: FakeClock | None = None) -> Endpoint:
    cfg = EndpointConfig(
        name="local-ollama",
        provider=provider,
        base_url=sb.base_url + ("/v1" if provider == "ollama_openai" else ""),
        model=MODEL,
        retry=RetryPolicy(max_retries=retries, initial_delay=0.001, max_delay=0.01, jitter="none"),
        timeouts=Timeouts(connect=2.0, read=5.0),
    )
    return Endpoint(cfg, clock=clock or FakeClock())


def req(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest((Message.user(text),), **kw)


async def collect(ep: Endpoint, request: ChatRequest) -> StreamAccumulator:
    acc = StreamAccumulator()
    async for ev in ep.stream(request):
        acc.add(ev)
    return acc


@pytest.mark.parametrize("provider", ["ollama", "ollama_openai"])
async def test_chat_and_stream_agree(sb: Sandbox, provider: str) -> None:
    ep = endpoint(sb, provider=provider)
    try:
        r = await ep.chat(req("how are you", max_tokens=50))
        assert (r.text, r.finish_reason, r.provider, r.attempts) == ("echo: how are you", "stop", provider, 1)
        assert r.usage is not None and r.usage.output_tokens == 4
        acc = await collect(ep, req("how are you", max_tokens=50))
        assert acc.finished and acc.text == r.text and acc.finish_reason == "stop"
        assert acc.usage == r.usage
        route = "POST /api/chat" if provider == "ollama" else "POST /v1/chat/completions"
        assert sb.stats.routes == {route: 2}
    finally:
        await ep.aclose()


async def test_async_client_stream_final_response_and_models() -> None:
    async with Sandbox(backends=("ollama",), models=models()) as sb:
        cfg = EndpointConfig(name="o", provider="ollama", base_url=sb.base_url, model=MODEL)
        async with infermux.AsyncClient([cfg], trust_env=False) as client:
            plain = await client.chat("stream me please")
            async with client.stream("stream me please") as stream:
                final = await stream.final_response()
            assert final.text == plain.text == "echo: stream me please"
            assert (await client.models()) == {"o": ["llama3.2:latest", "llava:latest", "nomic-embed-text:latest"]}


async def test_tools_images_json(sb: Sandbox) -> None:
    ep = endpoint(sb)
    tool = Tool(
        "get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    )
    try:
        r = await ep.chat(req("call get_weather", tools=(tool,)))
        [call] = r.tool_calls
        assert (call.name, call.arguments, r.finish_reason) == ("get_weather", {"city": "example"}, "tool_calls")
        acc = await collect(ep, req("call get_weather", tools=(tool,)))
        assert acc.tool_calls() == r.tool_calls and acc.finish_reason == "tool_calls"  # stable synthesized ids
        history = (
            Message.user("call get_weather"),
            Message.assistant(None, r.tool_calls),
            Message.tool(call.id, "22C"),
        )
        follow = await ep.chat(ChatRequest(history, tools=(tool,)))
        assert follow.text == "tool result: 22C"
        none = await ep.chat(req("call get_weather", tools=(tool,), tool_choice="none"))
        assert not none.tool_calls
        img = await ep.chat(
            ChatRequest((Message.user([TextPart("see"), ImagePart(data=PNG, media_type="image/png")]),), model=VISION)
        )
        assert img.text == "echo: see (1 image)"
        js = await ep.chat(req("hi", response_format=ResponseFormat("json_object")))
        assert js.json() == {"reply": "echo: hi"}
    finally:
        await ep.aclose()


async def test_embed_and_native_helpers(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        e = await ep.embed(EmbedRequest(("a b", "c"), model=EMBED, dimensions=16))
        assert len(e.vectors) == 2 and e.dimensions == 16 and e.usage is not None and e.usage.input_tokens == 3
        gen = await ep.call(ol.build_generate(MODEL, "a joke"), ol.parse_generate)
        assert gen.text == "echo: a joke" and gen.finish_reason == "stop"
        progress = await ep.call(ol.build_pull("phi4"), ol.parse_pull)
        assert progress[-1].success and any(p.total for p in progress)
        tags = await ep.call(ol.build_list_models(), ol.parse_list_models)
        assert "phi4:latest" in [m.name for m in tags] and tags[0].family == "llama"
        info = await ep.call(ol.build_show(VISION), ol.parse_show)
        assert "vision" in info.capabilities and info.context_length == 131072
        running = await ep.call(ol.build_ps(), ol.parse_ps)
        assert {m.name for m in running} == {"nomic-embed-text:latest", "llama3.2:latest"}
        assert await ep.call(ol.build_version(), ol.parse_version)
        with pytest.raises(NotFoundError) as ei:
            await ep.call(ol.build_pull("missing-thing"), ol.parse_pull)
        assert ei.value.provider_message == "pull model manifest: file does not exist"
    finally:
        await ep.aclose()


async def test_4xx_typed_and_not_retried(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(NotFoundError) as ei:
            await ep.chat(req("hi", model="mistral"))
        err = ei.value
        assert (err.status_code, err.error_type, err.attempts, err.retryable) == (404, "model_not_found", 1, False)
        assert err.provider_message == 'model "mistral" not found, try pulling it first'
        with pytest.raises(BadRequestError) as bi:
            await ep.chat(req("hi", model=EMBED))
        assert bi.value.error_type == "not_supported"
        assert sb.stats.total == 2
    finally:
        await ep.aclose()


async def test_429_with_retry_after_then_success(sb: Sandbox) -> None:
    clock = FakeClock()
    ep = endpoint(sb, clock=clock)
    try:
        sb.faults.push(Fault.status_error(429, retry_after=2))
        r = await ep.chat(req("hi"), request_id="rid-429")
        assert r.text == "echo: hi" and r.attempts == 2
        assert clock.sleeps == [2.0]
        assert [(x.request_id, x.attempt, x.fault) for x in sb.stats.records] == [
            ("rid-429", 1, "status:429"),
            ("rid-429", 2, None),
        ]
    finally:
        await ep.aclose()
    strict = endpoint(sb, retries=1)
    try:
        sb.faults.push(Fault.status_error(429), times=5)
        with pytest.raises(RateLimitError) as ei:
            await strict.chat(req("hi"))
        assert ei.value.error_type == "rate_limit" and ei.value.provider_message == "too many requests"
        assert ei.value.attempts == 2
    finally:
        await strict.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_503_retried_to_success(sb: Sandbox, stream: bool) -> None:
    ep = endpoint(sb)
    try:
        sb.faults.push(Fault.status_error(503), times=2)
        if stream:
            acc = await collect(ep, req("again"))
            assert acc.text == "echo: again"
        else:
            r = await ep.chat(req("again"))
            assert r.text == "echo: again" and r.attempts == 3
        assert [x.attempt for x in sb.stats.records] == [1, 2, 3]
        assert len({x.request_id for x in sb.stats.records}) == 1
    finally:
        await ep.aclose()


async def test_503_exhausted_is_typed(sb: Sandbox) -> None:
    ep = endpoint(sb, retries=1)
    try:
        sb.faults.push(Fault.status_error(503), times=2)
        with pytest.raises(InternalServerError) as ei:
            await ep.chat(req("x"))
        assert ei.value.error_type == "server_busy" and ei.value.attempts == 2
    finally:
        await ep.aclose()


async def test_stream_cut_is_incomplete(sb: Sandbox) -> None:
    ep = endpoint(sb, retries=0)
    try:
        sb.faults.push(Fault.stream_cut(after=2, clean=True))
        with pytest.raises(IncompleteStreamError):
            await collect(ep, req("one two three four"))
    finally:
        await ep.aclose()


async def test_malformed_200_json_and_stream(sb: Sandbox) -> None:
    ep = endpoint(sb, retries=0)
    try:
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await ep.chat(req("hi"))
        sb.faults.push(Fault.malformed(after=1))
        with pytest.raises(MalformedResponseError):
            await collect(ep, req("one two three"))
        sb.faults.push(Fault.html())
        with pytest.raises(MalformedResponseError):
            await ep.chat(req("hi"))
    finally:
        await ep.aclose()


async def test_bad_input_refused_before_io(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(ConfigurationError):
            await ep.chat(ChatRequest((Message.user([ImagePart(url="https://example.com/cat.png")]),)))
        with pytest.raises(ConfigurationError):
            ol.build_pull("")
        with pytest.raises(ConfigurationError):
            EndpointConfig(name="", provider="ollama")
        assert sb.stats.total == 0
    finally:
        await ep.aclose()
