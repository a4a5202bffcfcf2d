"""vLLM end to end on 127.0.0.1: the official openai SDK against the vLLM emulator (vLLM itself is too heavy
here), then infermux (provider="vllm") against it: chat/stream/completions/embeddings, native routes through a
server-root endpoint (health, tokenize consistent with usage, detokenize, metrics counting real requests, LoRA
load/select/unload), --api-key on /v1 only, both error shapes, 429/503 retried, cut/malformed streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    IncompleteStreamError,
    MalformedResponseError,
    NotFoundError,
)
from infermux.providers import openai as oa
from infermux.providers import vllm
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread
from infermux.sandbox import _vllm as emu
from infermux.types import ChatRequest, EmbedRequest, Message, StreamAccumulator

pytestmark = pytest.mark.timeout(60)

MODEL = emu.DEFAULT_VLLM_MODEL
MSG = [{"role": "user", "content": "hello vllm world"}]


# --------------------------------------------------------------------------- openai SDK, emulator


@pytest.fixture(scope="module")
def sbt() -> Iterator[SandboxThread]:
    with SandboxThread(backends=("vllm",)) as sandbox:
        yield sandbox


@pytest.fixture
def sdk(sbt: SandboxThread) -> Iterator[openai.OpenAI]:
    sbt.reset()
    with openai.OpenAI(base_url=sbt.base_url + "/v1", api_key="EMPTY", max_retries=0) as client:
        yield client
    sbt.reset()


def test_sdk_chat_stop_reason_and_stream(sdk: openai.OpenAI) -> None:
    r = sdk.chat.completions.create(model=MODEL, messages=MSG, stop=[" world"])
    choice = r.choices[0]
    assert choice.message.content == "echo: hello vllm" and choice.finish_reason == "stop"
    assert choice.model_extra is not None and choice.model_extra["stop_reason"] == " world"
    assert r.usage is not None and r.usage.prompt_tokens == 3
    full = sdk.chat.completions.create(model=MODEL, messages=MSG)
    chunks = list(
        sdk.chat.completions.create(model=MODEL, messages=MSG, stream=True, stream_options={"include_usage": True})
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == full.choices[0].message.content
    assert chunks[-1].usage is not None and full.usage is not None
    assert chunks[-1].usage.total_tokens == full.usage.total_tokens


def test_sdk_completions_embeddings_models(sdk: openai.OpenAI) -> None:
    c = sdk.completions.create(model=MODEL, prompt="one two three", max_tokens=2)
    assert c.choices[0].text == "echo: one" and c.choices[0].finish_reason == "length"
    e = sdk.embeddings.create(model=MODEL, input=["a b", "c"])  # the SDK asks for base64
    assert len(e.data) == 2 and len(e.data[0].embedding) == 64 and e.usage.prompt_tokens == 3
    models = sdk.models.list().data
    assert [m.id for m in models] == [MODEL] and models[0].model_extra is not None
    assert models[0].model_extra["max_model_len"] == 2048 and models[0].model_extra["parent"] is None


def test_sdk_lora_lifecycle_and_errors(sdk: openai.OpenAI, sbt: SandboxThread) -> None:
    load = httpx.post(sbt.base_url + "/v1/load_lora_adapter", json={"lora_name": "sql", "lora_path": "/a/sql"})
    assert load.status_code == 200 and load.text == "Success: LoRA adapter 'sql' added successfully."
    cards = {m.id: m.model_extra for m in sdk.models.list().data}
    assert cards["sql"] == {**cards["sql"], "parent": MODEL, "root": "/a/sql"}
    assert sdk.chat.completions.create(model="sql", messages=MSG).model == "sql"
    again = httpx.post(sbt.base_url + "/v1/load_lora_adapter", json={"lora_name": "sql", "lora_path": "/a/sql"})
    assert again.status_code == 400 and again.json()["type"] == "InvalidUserInput"
    assert httpx.post(sbt.base_url + "/v1/unload_lora_adapter", json={"lora_name": "sql"}).status_code == 200
    with pytest.raises(openai.NotFoundError) as ei:
        sdk.chat.completions.create(model="sql", messages=MSG)
    assert ei.value.response.json() == {
        "object": "error",
        "message": "The model `sql` does not exist.",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }
    with pytest.raises(openai.BadRequestError, match="maximum context length is 2048"):
        sdk.chat.completions.create(model=MODEL, messages=MSG, max_tokens=4000)


def test_api_key_guards_only_v1() -> None:
    with SandboxThread(backends=("vllm",), keys=("secret",)) as sb:
        no_key = openai.OpenAI(base_url=sb.base_url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as ei:
            no_key.chat.completions.create(model=MODEL, messages=MSG)
        assert ei.value.response.json() == {"error": "Unauthorized"}
        ok = openai.OpenAI(base_url=sb.base_url + "/v1", api_key="secret", max_retries=0)
        assert ok.chat.completions.create(model=MODEL, messages=MSG).choices[0].message.content
        assert httpx.get(sb.base_url + "/health").status_code == 200  # not under /v1: public
        assert httpx.post(sb.base_url + "/tokenize", json={"model": MODEL, "prompt": "x"}).status_code == 200


# --------------------------------------------------------------------------- infermux, emulator


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(host="127.0.0.1", port=0, backends=("vllm",)) as sandbox:
        yield sandbox


def endpoint(base_url: str, **kw: Any) -> Endpoint:
    cfg = EndpointConfig(
        kw.pop("name", "vllm"),
        "vllm",
        base_url=base_url,
        model=kw.pop("model", MODEL),
        retry=kw.pop("retry", RetryPolicy(max_retries=3, initial_delay=0.001)),
        **kw,
    )
    return Endpoint(cfg, clock=FakeClock())


REQ = ChatRequest(messages=(Message.user("hello vllm world"),))


async def test_chat_stream_embed_and_native_routes(sb: Sandbox) -> None:
    ep = endpoint(sb.base_url + "/v1")
    root = endpoint(vllm.server_root(ep.base_url), name="vllm-native")
    try:
        assert await root.call(vllm.build_health(), vllm.parse_health)
        r = await ep.chat(REQ)
        assert r.text == "echo: hello vllm world" and r.provider == "vllm" and vllm.stop_reason(r) is None
        acc = StreamAccumulator()
        async for ev in ep.stream(REQ):
            acc.add(ev)
        assert acc.finished and acc.text == r.text and acc.usage == r.usage
        stopped = await ep.chat(ChatRequest(messages=REQ.messages, stop=(" vllm",)))
        assert stopped.text == "echo: hello" and vllm.stop_reason(stopped) == " vllm"
        emb = await ep.embed(EmbedRequest(("a b c",)))
        assert emb.dimensions == 64 and emb.usage is not None and emb.usage.input_tokens == 3
        comp = await ep.call(oa.build_completion(MODEL, "one two", max_tokens=5), oa.parse_completion)
        assert comp.text == "echo: one two"
        # /tokenize agrees with the usage the chat reported; /detokenize inverts it
        tok = await root.call(
            vllm.build_tokenize(MODEL, messages=[{"role": "user", "content": "hello vllm world"}]), vllm.parse_tokenize
        )
        assert r.usage is not None and tok.count == r.usage.input_tokens and tok.max_model_len == 2048
        plain = await root.call(vllm.build_tokenize(MODEL, "hello vllm world"), vllm.parse_tokenize)
        assert await root.call(vllm.build_detokenize(MODEL, plain.tokens), vllm.parse_detokenize) == "hello vllm world"
        # /metrics counts the real requests served so far (chat x3 incl. stream, embed, completion)
        m = await root.call(vllm.build_metrics(), vllm.parse_metrics)
        assert m.num_requests_running == 0 and m.num_requests_waiting == 0 and m.kv_cache_usage == 0
        assert r.usage is not None and stopped.usage is not None and comp.usage is not None
        chat_prompt = 2 * r.usage.input_tokens + stopped.usage.input_tokens + comp.usage.input_tokens
        assert m.prompt_tokens_total == chat_prompt + 3
        assert (
            m.generation_tokens_total
            == 2 * r.usage.output_tokens + stopped.usage.output_tokens + comp.usage.output_tokens
        )
        assert sum(v for _, v in m.raw["vllm:request_success_total"]) == 4
    finally:
        await ep.aclose()
        await root.aclose()


async def test_lora_through_infermux(sb: Sandbox) -> None:
    root = endpoint(sb.base_url, name="vllm-native")
    ep = endpoint(sb.base_url + "/v1", model="sql-lora")
    try:
        with pytest.raises(NotFoundError) as nf:
            await ep.chat(REQ)
        assert (
            nf.value.error_type == "NotFoundError"
            and nf.value.provider_message == "The model `sql-lora` does not exist."
        )
        msg = await root.call(vllm.build_load_lora("sql-lora", "/adapters/sql"), vllm.parse_lora_reply)
        assert msg == "Success: LoRA adapter 'sql-lora' added successfully."
        cards = await root.call(vllm.build_models(), vllm.parse_models)
        assert [c.id for c in cards] == [MODEL, "sql-lora"] and cards[1].is_lora and cards[1].parent == MODEL
        assert cards[0].max_model_len == 2048
        r = await ep.chat(REQ)
        assert r.model == "sql-lora"
        with pytest.raises(BadRequestError) as dup:
            await root.call(vllm.build_load_lora("sql-lora", "/adapters/sql"), vllm.parse_lora_reply)
        assert dup.value.error_type == "InvalidUserInput" and dup.value.attempts == 1
        await root.call(vllm.build_unload_lora("sql-lora"), vllm.parse_lora_reply)
        with pytest.raises(NotFoundError):
            await root.call(vllm.build_unload_lora("sql-lora"), vllm.parse_lora_reply)
    finally:
        await ep.aclose()
        await root.aclose()


async def test_nested_error_style_and_api_key(sb: Sandbox) -> None:
    sb.configure_backend("vllm", error_style="nested")
    ep = endpoint(sb.base_url + "/v1", model="nope")
    try:
        with pytest.raises(NotFoundError) as ei:
            await ep.chat(REQ)
        assert (
            ei.value.error_type == "NotFoundError" and ei.value.provider_message == "The model `nope` does not exist."
        )
        assert isinstance(ei.value.body, dict) and "error" in ei.value.body
    finally:
        await ep.aclose()
    async with Sandbox(host="127.0.0.1", port=0, backends=("vllm",), keys=("secret",)) as keyed:
        bad = endpoint(keyed.base_url + "/v1", api_keys=("wrong",))
        good = endpoint(keyed.base_url + "/v1", api_keys=("secret",))
        try:
            with pytest.raises(AuthenticationError) as ai:
                await bad.chat(REQ)
            assert ai.value.provider_message == "Unauthorized"
            assert (await good.chat(REQ)).text == "echo: hello vllm world"
        finally:
            await bad.aclose()
            await good.aclose()


@pytest.mark.parametrize("fault", [Fault.status_error(429, retry_after=1), Fault.status_error(503)], ids=["429", "503"])
async def test_transient_errors_retried_to_success(sb: Sandbox, fault: Fault) -> None:
    sb.faults.push(fault, times=2)
    ep = endpoint(sb.base_url + "/v1")
    try:
        r = await ep.chat(REQ)
        assert r.attempts == 3 and [x.attempt for x in sb.stats.records] == [1, 2, 3]
    finally:
        await ep.aclose()


async def test_stream_cut_malformed_and_bad_input(sb: Sandbox) -> None:
    ep = endpoint(sb.base_url + "/v1", retry=RetryPolicy(max_retries=0))
    try:
        sb.faults.push(Fault.stream_cut(after=2, clean=True))
        with pytest.raises(IncompleteStreamError):
            async for _ in ep.stream(REQ):
                pass
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await ep.chat(REQ)
        n = sb.stats.total
        with pytest.raises(ConfigurationError):
            vllm.guided_extra(regex="(")
        with pytest.raises(ConfigurationError):
            vllm.build_tokenize(MODEL)
        assert sb.stats.total == n
        guided = ChatRequest(messages=REQ.messages, extra=vllm.guided_extra(choice=["yes", "no"]))
        assert (await ep.chat(guided)).text  # the emulator accepts (and ignores) guided_* fields
    finally:
        await ep.aclose()
