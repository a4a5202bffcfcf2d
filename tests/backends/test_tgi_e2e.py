"""TGI end to end on 127.0.0.1: the official huggingface_hub InferenceClient against the sandbox emulator
(proving it faithful: text_generation plain/stream/details, chat_completion plain/stream, info, health,
typed errors), then infermux (provider "tgi" native /generate and "tgi_chat" Messages API) against the same
emulator: normal and streamed calls agree, 422 validation and text/plain errors are typed, 429 overloaded and
503 are retried to success, cut streams and malformed 200s are reported, bad input fails before I/O."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import requests
from huggingface_hub import InferenceClient
from huggingface_hub import errors as hf_errors

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    ConfigurationError,
    IncompleteStreamError,
    MalformedResponseError,
    OverloadedError,
    UnprocessableEntityError,
)
from infermux.providers import tgi
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread
from infermux.sandbox._tgi import MODEL_ID
from infermux.transport import Timeouts
from infermux.types import ChatRequest, Message, ResponseFormat, StreamAccumulator, TextDelta, Tool

pytestmark = pytest.mark.timeout(60)

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}}, "required": ["city"]}


# --------------------------------------------------------------------------- the official SDK vs the emulator


@pytest.fixture(scope="module")
def sbt() -> Iterator[SandboxThread]:
    with SandboxThread(backends=("tgi",)) as sb:
        yield sb


@pytest.fixture
def hf(sbt: SandboxThread) -> Iterator[InferenceClient]:
    sbt.reset()
    yield InferenceClient(base_url=sbt.base_url, timeout=10)
    sbt.reset()


def test_sdk_text_generation_plain_details_and_stream(hf: InferenceClient) -> None:
    text = hf.text_generation("one two three four", max_new_tokens=3)
    assert text == "echo: one two"
    out = hf.text_generation("one two", details=True, max_new_tokens=20, seed=7)
    assert out.generated_text == "echo: one two"
    assert out.details is not None and out.details.finish_reason == "eos_token"
    assert out.details.generated_tokens == len(out.details.tokens) == 4
    assert out.details.tokens[-1].special
    pieces = list(hf.text_generation("one two", stream=True, max_new_tokens=20))
    assert "".join(pieces[:-1]) == "echo: one two" and pieces[-1] == "</s>"
    events = list(hf.text_generation("one two", stream=True, details=True, max_new_tokens=2))
    assert events[-1].generated_text == "echo: one" and events[-1].details is not None
    assert events[-1].details.finish_reason == "length"
    assert all(e.generated_text is None for e in events[:-1])


def test_sdk_grammar_gives_schema_json(hf: InferenceClient) -> None:
    import json

    text = hf.text_generation("where?", grammar={"type": "json", "value": SCHEMA}, max_new_tokens=50)
    assert set(json.loads(text)) == {"city", "n"}


def test_sdk_chat_completion_plain_and_stream(hf: InferenceClient) -> None:
    msgs = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello there"}]
    r = hf.chat_completion(msgs, max_tokens=10)
    assert r.choices[0].message.content == "echo: hello there"
    assert r.system_fingerprint.endswith("-native") and r.model == MODEL_ID
    chunks = list(hf.chat_completion(msgs, max_tokens=10, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hello there"
    assert chunks[-1].choices[0].finish_reason == "stop"
    tools = [{"type": "function", "function": {"name": "weather", "parameters": SCHEMA}}]
    tr = hf.chat_completion([{"role": "user", "content": "call weather"}], tools=tools)
    call = tr.choices[0].message.tool_calls[0]
    assert call.function.name == "weather" and tr.choices[0].finish_reason == "tool_calls"


def test_sdk_info_health_and_typed_errors(sbt: SandboxThread, hf: InferenceClient) -> None:
    ep = InferenceClient(model=sbt.base_url, provider="hf-inference")
    assert ep.get_endpoint_info()["model_id"] == MODEL_ID
    assert ep.health_check()
    with pytest.raises(hf_errors.ValidationError, match="max_new_tokens"):
        hf.text_generation("x", max_new_tokens=0)
    sbt.faults.push(Fault.status_error(429))
    with pytest.raises(hf_errors.OverloadedError, match="Model is overloaded"):
        hf.text_generation("x", max_new_tokens=2)
    sbt.faults.push(Fault.status_error(429))
    with warnings.catch_warnings():  # chat_completion surfaces the plain HTTP error, with TGI's message
        warnings.simplefilter("ignore")
        with pytest.raises(hf_errors.HfHubHTTPError, match="Model is overloaded") as ei:
            list(hf.chat_completion([{"role": "user", "content": "x"}], stream=True))
    assert ei.value.response is not None and ei.value.response.status_code == 429
    bad = requests.post(sbt.base_url + "/generate", json={"parameters": {}}, timeout=5)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/plain")
    assert bad.text.startswith("Failed to deserialize the JSON body into the target type: missing field `inputs`")
    notjson = requests.post(sbt.base_url + "/generate", data=b"{oops", timeout=5)
    assert notjson.status_code == 400 and notjson.text.startswith("Failed to parse the request body as JSON")


# --------------------------------------------------------------------------- infermux vs the emulator


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(backends=("tgi",)) as sandbox:
        yield sandbox


def endpoint(sb: Sandbox, provider: str = "tgi", **kw: Any) -> Endpoint:
    base = sb.base_url if provider == "tgi" else sb.base_url + "/v1"
    cfg = EndpointConfig(
        name=f"sb-{provider}",
        provider=provider,
        base_url=base,
        model="tgi",
        retry=kw.pop("retry", RetryPolicy(max_retries=3, initial_delay=0.001)),
        timeouts=Timeouts(connect=2.0, read=5.0),
        **kw,
    )
    return Endpoint(cfg, clock=FakeClock())


def chat(text: str = "count one two three", **kw: Any) -> ChatRequest:
    return ChatRequest((Message.system("sys"), Message.user(text)), **kw)


async def collect(ep: Endpoint, req: ChatRequest) -> tuple[StreamAccumulator, list[Any]]:
    acc, events = StreamAccumulator(), []
    async for ev in ep.stream(req):
        acc.add(ev)
        events.append(ev)
    return acc, events


@pytest.mark.parametrize("provider", ["tgi", "tgi_chat"])
async def test_chat_and_stream_agree(sb: Sandbox, provider: str) -> None:
    ep = endpoint(sb, provider)
    try:
        r = await ep.chat(chat(max_tokens=40))
        acc, events = await collect(ep, chat(max_tokens=40))
    finally:
        await ep.aclose()
    assert r.text.startswith("echo: ") and r.finish_reason == "stop" and r.provider == provider
    assert acc.text == r.text and acc.finished and acc.finish_reason == r.finish_reason
    assert sum(isinstance(e, TextDelta) for e in events) > 1
    assert r.provider_request_id and r.usage is not None and r.usage.output_tokens > 0
    if provider == "tgi":  # the native prompt is rendered with chatml and echoed back by the emulator
        assert "<|im_start|>user\ncount one two three<|im_end|>" in r.text
        assert r.raw["details"]["finish_reason"] == "eos_token"


async def test_native_limits_grammar_and_stop(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        short = await ep.chat(chat(max_tokens=2))
        assert short.finish_reason == "length" and short.usage is not None and short.usage.output_tokens == 2
        js = await ep.chat(chat(response_format=ResponseFormat("json_schema", schema=SCHEMA)))
        assert set(js.json()) == {"city", "n"}
        stopped = await ep.chat(chat("alpha beta gamma", stop=("beta",), extra={"prompt_template": "plain"}))
        assert stopped.text == "echo: System: sys\n\nUser: alpha " and stopped.finish_reason == "stop"
    finally:
        await ep.aclose()


async def test_validation_422_and_text_plain_are_typed_not_retried(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(UnprocessableEntityError) as ei:
            await ep.chat(chat(extra={"stop": ["a", "b", "c", "d", "e"]}))
        assert ei.value.error_type == "validation" and "stop sequences" in (ei.value.provider_message or "")
        assert ei.value.attempts == 1
        preq = tgi.build_generate("x")
        preq.json = {"parameters": {"max_new_tokens": 5}}
        with pytest.raises(UnprocessableEntityError) as ti:
            await ep.call(preq, tgi.parse_generate)
        assert ti.value.error_type == "invalid_body" and "missing field `inputs`" in str(ti.value.provider_message)
    finally:
        await ep.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_overloaded_429_and_503_retried_to_success(sb: Sandbox, stream: bool) -> None:
    sb.faults.push(Fault.status_error(429, retry_after=1))
    sb.faults.push(Fault.status_error(503))
    ep = endpoint(sb, adaptive_concurrency=False)
    try:
        if stream:
            acc, _ = await collect(ep, chat())
            text = acc.text
        else:
            r = await ep.chat(chat())
            assert r.attempts == 3
            text = r.text
    finally:
        await ep.aclose()
    assert text.startswith("echo: ")
    attempts = [rec.attempt for rec in sb.stats.records]
    assert attempts == [1, 2, 3] and len(set(sb.stats.request_ids())) == 1
    sleeps = ep.clock.sleeps  # type: ignore[attr-defined]  # FakeClock: no real waiting
    assert 1.0 <= sleeps[0] < 1.5  # retry-after honoured (with the policy's small jitter)


async def test_overloaded_without_retries_is_typed(sb: Sandbox) -> None:
    sb.faults.push(Fault.status_error(429))
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        with pytest.raises(OverloadedError) as ei:
            await ep.chat(chat())
    finally:
        await ep.aclose()
    assert ei.value.status_code == 429 and ei.value.retryable and ei.value.provider_message == "Model is overloaded"


@pytest.mark.parametrize("provider", ["tgi", "tgi_chat"])
async def test_cut_stream_and_malformed(sb: Sandbox, provider: str) -> None:
    ep = endpoint(sb, provider, retry=RetryPolicy(max_retries=0))
    try:
        sb.faults.push(Fault.stream_cut(after=2, clean=True))
        with pytest.raises(IncompleteStreamError) as ei:
            await collect(ep, chat())
        assert ei.value.partial_text
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await ep.chat(chat())
        sb.faults.push(Fault.html())
        with pytest.raises(MalformedResponseError):
            await ep.chat(chat())
    finally:
        await ep.aclose()


async def test_info_metrics_tokenize_and_health(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        info = await ep.call(tgi.build_info(), tgi.parse_info)
        assert info.model_id == MODEL_ID and info.max_stop_sequences == 4 and info.version
        before = await ep.call(tgi.build_metrics(), tgi.parse_metrics)
        await ep.chat(chat(max_tokens=3))
        after = await ep.call(tgi.build_metrics(), tgi.parse_metrics)
        assert before.request_success is not None and after.request_success == before.request_success + 1
        assert after.generated_tokens_sum == (before.generated_tokens_sum or 0) + 3
        assert after.queue_size == 0
        toks = await ep.call(tgi.build_tokenize("hello big world"), tgi.parse_tokenize)
        assert [(t.text, t.start, t.stop) for t in toks] == [("hello", 0, 5), ("big", 6, 9), ("world", 10, 15)]
        assert await ep.call(tgi.build_health(), tgi.parse_health)
    finally:
        await ep.aclose()


async def test_client_with_tools_on_messages_api(sb: Sandbox) -> None:
    cfg = EndpointConfig(name="tgi-chat", provider="tgi_chat", base_url=sb.base_url + "/v1", model="tgi")
    async with infermux.AsyncClient([cfg]) as client:
        r = await client.chat("call weather", tools=[Tool("weather", parameters=SCHEMA)])
    assert r.finish_reason == "tool_calls" and r.tool_calls[0].name == "weather"
    assert r.tool_calls[0].arguments == {"city": "example"}


async def test_bad_input_fails_before_io(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(ConfigurationError, match="tgi_chat"):
            await ep.chat(chat(tools=(Tool("f"),)))
        with pytest.raises(ConfigurationError, match="images"):
            await ep.chat(ChatRequest((Message.user([infermux.ImagePart(url="https://x/y.png")]),)))
        with pytest.raises(ConfigurationError):
            tgi.build_generate("x", top_p=1.5)
    finally:
        await ep.aclose()
    assert sb.stats.total == 0
