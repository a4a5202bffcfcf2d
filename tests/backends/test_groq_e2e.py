"""Groq end to end on 127.0.0.1: the official ``groq`` SDK against the real llama.cpp server under the
``/openai`` prefix and against the Groq emulator (proving the emulator faithful), then infermux
(provider="groq") against both: normal and streamed calls, timing fields, rate-limit headers that count down,
quota 429 with retry-after, typed 4xx, 429/498/503 retried to success, cut and malformed streams, and
incompatible requests refused before any I/O."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import groq
import pytest

from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    IncompleteStreamError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
)
from infermux.local import LocalLlamaServer
from infermux.providers import groq as gq
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread
from infermux.types import ChatRequest, ImagePart, Message, StreamAccumulator, TextPart

pytestmark = pytest.mark.timeout(60)

KEY = "gsk_test_key"
MODEL = "llama-3.1-8b-instant"
MSG = [{"role": "user", "content": "hello groq world"}]


# --------------------------------------------------------------------------- groq SDK, real llama.cpp server


@pytest.mark.realserver
def test_groq_sdk_against_real_llamacpp(llama_server_prefixed: LocalLlamaServer) -> None:
    srv = llama_server_prefixed
    c = groq.Groq(base_url=srv.base_url, api_key=srv.api_key, max_retries=0)
    r = c.chat.completions.create(model="smollm2", messages=MSG, max_tokens=8, temperature=0)
    assert r.choices[0].message.content and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.completion_tokens <= 8
    chunks = list(c.chat.completions.create(model="smollm2", messages=MSG, max_tokens=8, temperature=0, stream=True))
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert streamed == r.choices[0].message.content  # temperature 0: same text
    with pytest.raises(groq.AuthenticationError):
        groq.Groq(base_url=srv.base_url, api_key="wrong", max_retries=0).chat.completions.create(
            model="smollm2", messages=MSG, max_tokens=2
        )


@pytest.mark.realserver
async def test_infermux_groq_provider_against_real_llamacpp(llama_server_prefixed: LocalLlamaServer) -> None:
    srv = llama_server_prefixed
    assert srv.api_key
    cfg = EndpointConfig(
        "groq-local",
        "groq",
        base_url=srv.base_url + "/openai/v1",
        model="smollm2",  # not in Groq's table: passes unchecked
        api_keys=(srv.api_key,),
        retry=RetryPolicy(max_retries=1, initial_delay=0.01),
    )
    ep = Endpoint(cfg)
    try:
        req = ChatRequest(messages=(Message.user("hello groq world"),), max_tokens=8, temperature=0)
        r = await ep.chat(req)
        assert r.text and r.provider == "groq" and r.usage is not None and r.usage.output_tokens <= 8
        acc = StreamAccumulator()
        async for ev in ep.stream(req):
            acc.add(ev)
        assert acc.finished and acc.text == r.text
    finally:
        await ep.aclose()


# --------------------------------------------------------------------------- groq SDK, emulator


@pytest.fixture(scope="module")
def sbt() -> Iterator[SandboxThread]:
    with SandboxThread(backends=("groq",), keys=(KEY,)) as sandbox:
        yield sandbox


@pytest.fixture
def sdk(sbt: SandboxThread) -> Iterator[groq.Groq]:
    sbt.reset()
    yield groq.Groq(base_url=sbt.base_url, api_key=KEY, max_retries=0)
    sbt.reset()


def test_sdk_chat_timing_and_headers(sdk: groq.Groq, sbt: SandboxThread) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
    r = raw.parse()
    assert r.choices[0].message.content == "echo: hello groq world" and r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.total_time is not None and r.usage.queue_time is not None
    assert r.usage.total_time == pytest.approx(r.usage.prompt_time + r.usage.completion_time)  # type: ignore[operator]
    assert r.x_groq is not None and r.x_groq.id == raw.headers["x-request-id"]
    assert raw.headers["x-request-id"].startswith("req_") and raw.headers["x-groq-region"]
    first = int(raw.headers["x-ratelimit-remaining-requests"])
    again = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
    assert int(again.headers["x-ratelimit-remaining-requests"]) == first - 1  # counts down per request
    assert int(again.headers["x-ratelimit-remaining-tokens"]) < int(raw.headers["x-ratelimit-remaining-tokens"])
    assert sbt.stats.routes == {"POST /openai/v1/chat/completions": 2}


def test_sdk_stream_x_groq(sdk: groq.Groq) -> None:
    full = sdk.chat.completions.create(model=MODEL, messages=MSG)
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == full.choices[0].message.content
    assert chunks[0].x_groq is not None and chunks[0].x_groq.id and chunks[0].x_groq.usage is None
    last = chunks[-1].x_groq
    assert last is not None and last.usage is not None and full.usage is not None
    assert last.usage.completion_tokens == full.usage.completion_tokens and last.usage.total_time is not None


def test_sdk_quota_exhausted_gives_429_with_retry_after(sdk: groq.Groq, sbt: SandboxThread) -> None:
    sbt.configure_backend("groq", requests=2, requests_window=30.0)
    for left in (1, 0):
        raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
        assert raw.headers["x-ratelimit-remaining-requests"] == str(left)
    with pytest.raises(groq.RateLimitError) as ei:
        sdk.chat.completions.create(model=MODEL, messages=MSG)
    resp = ei.value.response
    assert 1 <= int(resp.headers["retry-after"]) <= 30
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    body = ei.value.body
    assert isinstance(body, dict) and body["error"]["code"] == "rate_limit_exceeded"
    assert gq.parse_rate_limits(resp.headers).exhausted


def test_sdk_errors(sdk: groq.Groq, sbt: SandboxThread) -> None:
    with pytest.raises(groq.NotFoundError) as nf:
        sdk.chat.completions.create(model="no-such-model", messages=MSG)
    assert isinstance(nf.value.body, dict) and nf.value.body["error"]["code"] == "model_not_found"
    with pytest.raises(groq.AuthenticationError):
        groq.Groq(base_url=sbt.base_url, api_key="gsk_wrong", max_retries=0).chat.completions.create(
            model=MODEL, messages=MSG
        )
    image = [{"type": "text", "text": "what"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    with pytest.raises(groq.BadRequestError):
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": image}])
    scout = "meta-llama/llama-4-scout-17b-16e-instruct"
    ok = sdk.chat.completions.create(model=scout, messages=[{"role": "user", "content": image}])
    assert ok.choices[0].message.content == "echo: what (1 image)"
    sbt.faults.push(Fault.status_error(498))
    with pytest.raises(groq.APIStatusError) as flex:
        sdk.chat.completions.create(model=MODEL, messages=MSG)
    assert flex.value.status_code == 498


def test_sdk_models(sdk: groq.Groq) -> None:
    ids = [m.id for m in sdk.models.list().data]
    assert MODEL in ids and "meta-llama/llama-4-scout-17b-16e-instruct" in ids
    assert sdk.models.retrieve("openai/gpt-oss-20b").id == "openai/gpt-oss-20b"


# --------------------------------------------------------------------------- infermux, emulator


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(host="127.0.0.1", port=0, backends=("groq",), keys=(KEY,)) as sandbox:
        yield sandbox


def endpoint(sb: Sandbox, **kw: Any) -> Endpoint:
    cfg = EndpointConfig(
        "groq",
        "groq",
        base_url=sb.base_url + "/openai/v1",
        model=kw.pop("model", MODEL),
        api_keys=kw.pop("api_keys", (KEY,)),
        retry=kw.pop("retry", RetryPolicy(max_retries=3, initial_delay=0.001)),
        **kw,
    )
    return Endpoint(cfg, clock=FakeClock())


REQ = ChatRequest(messages=(Message.user("hello groq world"),))


async def test_chat_stream_timing_and_rate_limits(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        r = await ep.chat(REQ)
        assert r.text == "echo: hello groq world" and r.finish_reason == "stop" and r.provider == "groq"
        assert r.provider_request_id and r.provider_request_id.startswith("req_")
        timing = gq.groq_timing(r)
        assert set(timing) == set(gq.TIMING_FIELDS) and timing["total_time"] > 0
        summed = ep.stats()["provider_metrics"]  # the endpoint sums the provider's timing per response
        assert summed == pytest.approx(timing)
        await ep.chat(REQ)
        assert ep.stats()["provider_metrics"]["total_time"] > timing["total_time"]
        limits = ep.stats()["rate_limits"]
        assert limits["x-ratelimit-remaining-requests"] == "14398"
        before = ep.stats()["provider_metrics"]["total_time"]
        acc = StreamAccumulator()
        async for ev in ep.stream(REQ):
            acc.add(ev)
        assert gq.groq_timing(acc.usage_raw)["total_time"] > 0  # x_groq.usage of the final chunk
        assert ep.stats()["provider_metrics"]["total_time"] > before  # streams are counted too
        final = acc.response()
        assert final.text == r.text and final.finish_reason == "stop"
        assert final.usage == r.usage  # from x_groq.usage on the final chunk / the usage chunk
        assert ep.stats()["rate_limits"]["x-ratelimit-remaining-requests"] == "14397"
        info = gq.parse_rate_limits(ep.stats()["rate_limits"])
        assert info.limit_requests == 14400 and info.reset_tokens is not None and info.reset_tokens <= 60
    finally:
        await ep.aclose()


async def test_typed_4xx(sb: Sandbox) -> None:
    ep = endpoint(sb, model="no-such-model")
    try:
        with pytest.raises(NotFoundError) as ei:
            await ep.chat(REQ)
        assert ei.value.provider_message == "The model `no-such-model` does not exist or you do not have access to it."
        assert ei.value.attempts == 1 and ei.value.provider_request_id
    finally:
        await ep.aclose()
    bad = endpoint(sb, api_keys=("gsk_wrong",))
    try:
        with pytest.raises(AuthenticationError) as ai:
            await bad.chat(REQ)
        assert ai.value.provider_message == "Invalid API Key" and "gsk_wrong" not in str(ai.value)
    finally:
        await bad.aclose()


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status_error(429, retry_after=1),
        Fault.status_error(503),
        Fault.status_error(498),
        Fault.status_error(503, message="Groq is currently over capacity"),
    ],
    ids=["429", "503", "498-flex", "503-capacity"],
)
async def test_transient_errors_retried_to_success(sb: Sandbox, fault: Fault) -> None:
    sb.faults.push(fault, times=2)
    ep = endpoint(sb)
    try:
        r = await ep.chat(REQ)
        assert r.text == "echo: hello groq world" and r.attempts == 3
        recs = sb.stats.records
        assert [x.attempt for x in recs] == [1, 2, 3] and len({x.request_id for x in recs}) == 1
    finally:
        await ep.aclose()


async def test_quota_429_carries_retry_after(sb: Sandbox) -> None:
    sb.configure_backend("groq", requests=1, requests_window=20.0)
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        await ep.chat(REQ)
        with pytest.raises(RateLimitError) as ei:
            await ep.chat(REQ)
        assert ei.value.retry_after is not None and 1 <= ei.value.retry_after <= 20
        assert ei.value.error_type == "requests"
    finally:
        await ep.aclose()


async def test_stream_cut_and_malformed(sb: Sandbox) -> None:
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        sb.faults.push(Fault.stream_cut(after=2, clean=True))
        with pytest.raises(IncompleteStreamError) as ei:
            async for _ in ep.stream(REQ):
                pass
        assert ei.value.partial_text == "echo:"  # role chunk + first content chunk, then EOF without [DONE]
        sb.faults.push(Fault.stream_cut(after=2))  # connection reset mid-stream
        with pytest.raises(APIConnectionError):
            async for _ in ep.stream(REQ):
                pass
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await ep.chat(REQ)
    finally:
        await ep.aclose()


async def test_incompatible_requests_refused_before_io(sb: Sandbox) -> None:
    ep = endpoint(sb)
    image = ChatRequest(messages=(Message.user([TextPart("x"), ImagePart(url="https://x/y.png")]),))
    try:
        with pytest.raises(ConfigurationError, match="vision models"):
            await ep.chat(image)
        with pytest.raises(ConfigurationError, match="not a chat model"):
            async for _ in ep.stream(ChatRequest(messages=REQ.messages, model="whisper-large-v3")):
                pass
        assert sb.stats.total == 0
        ok = await ep.chat(ChatRequest(messages=image.messages, model="meta-llama/llama-4-scout-17b-16e-instruct"))
        assert ok.text == "echo: x (1 image)"
    finally:
        await ep.aclose()
