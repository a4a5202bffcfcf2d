"""OPEA end to end on 127.0.0.1: the openai SDK against the LLM microservice emulator; infermux against the
gateways (ChatQnA, CodeGen, DocSum) in both stream styles, the embedding/retriever/reranking microservices and
the client-side RAG pipeline; FastAPI error bodies typed, retries, cut and malformed bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    RateLimitError,
    UnprocessableEntityError,
)
from infermux.providers import Provider, opea
from infermux.rag import rag_pipeline
from infermux.resilience.breaker import BreakerConfig
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread
from infermux.sandbox._opea import CORPUS
from infermux.transport import Timeouts
from infermux.types import ChatRequest, Message, StreamAccumulator, TextDelta

pytestmark = pytest.mark.timeout(60)


def test_openai_sdk_against_llm_microservice() -> None:
    with SandboxThread(backends=("opea",)) as sbt:
        c = openai.OpenAI(base_url=sbt.base_url + "/v1", api_key="unused", max_retries=0)
        msgs: Any = [{"role": "user", "content": "hello opea"}]
        r = c.chat.completions.create(model="Intel/neural-chat-7b-v3-3", messages=msgs, max_tokens=10)
        assert r.choices[0].message.content == "echo: hello opea" and r.choices[0].finish_reason == "stop"
        chunks = list(c.chat.completions.create(model="m", messages=msgs, stream=True))
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "echo: hello opea"
        e = c.embeddings.create(model="bge", input="x")
        assert len(e.data[0].embedding) == 64
        with pytest.raises(openai.UnprocessableEntityError) as ei:
            c.post("/chat/completions", body={"model": "m"}, cast_to=object)
        missing = {"type": "missing", "loc": ["body", "messages"], "msg": "Field required", "input": {"model": "m"}}
        assert ei.value.body == {"detail": [missing]}
        c.close()


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(backends=("opea",)) as sandbox:
        yield sandbox


def endpoint(sb: Sandbox, provider: str | Provider = "opea", *, v1: bool = False, **kw: Any) -> Endpoint:
    cfg = EndpointConfig(
        name="sb-opea",
        provider=provider,  # type: ignore[arg-type]  # a Provider value works too (get_provider passes it on)
        base_url=sb.base_url + ("/v1" if v1 else ""),
        model="chatqna",
        retry=kw.pop("retry", RetryPolicy(max_retries=3, initial_delay=0.001)),
        timeouts=Timeouts(connect=2.0, read=5.0),
        **kw,
    )
    return Endpoint(cfg, clock=FakeClock())


def chat(text: str = "what is OPEA", **kw: Any) -> ChatRequest:
    return ChatRequest((Message.user(text),), **kw)


async def collect(ep: Endpoint, req: ChatRequest) -> tuple[StreamAccumulator, int]:
    acc, deltas = StreamAccumulator(), 0
    async for ev in ep.stream(req):
        acc.add(ev)
        deltas += isinstance(ev, TextDelta)
    return acc, deltas


@pytest.mark.parametrize("style", ["openai", "bytes"])
@pytest.mark.parametrize("provider", [opea.PROVIDER, opea.CODEGEN_PROVIDER, opea.DOCSUM_PROVIDER, opea.LLM_PROVIDER])
async def test_chat_and_stream_agree_in_both_styles(sb: Sandbox, provider: Provider, style: str) -> None:
    ep = endpoint(sb, provider, v1=provider is opea.LLM_PROVIDER, headers={"x-opea-stream-style": style})
    try:
        r = await ep.chat(chat(max_tokens=50))
        acc, deltas = await collect(ep, chat(max_tokens=50))
    finally:
        await ep.aclose()
    assert r.text == acc.text == "echo: what is OPEA" and acc.finished and deltas == 4
    assert r.provider == provider.name and r.finish_reason == "stop"
    if provider is not opea.LLM_PROVIDER:
        assert r.usage is None and r.raw["model"] in ("chatqna", "codegen", "docsum")
    if style == "openai":
        assert acc.finish_reason == "stop"


async def test_server_wide_byte_style_and_max_tokens(sb: Sandbox) -> None:
    sb.configure_backend("opea", stream_style="bytes")
    ep = endpoint(sb)
    try:
        acc, _ = await collect(ep, chat("one two three four five", max_tokens=2))
        r = await ep.chat(chat("one two three four five", max_tokens=2))
    finally:
        await ep.aclose()
    assert acc.text == r.text == "echo: one" and r.finish_reason == "length" and acc.finish_reason is None


async def test_microservices_and_rag_pipeline(sb: Sandbox) -> None:
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    llm = endpoint(sb, opea.LLM_PROVIDER, v1=True)
    try:
        doc = CORPUS[1]
        emb = await ep.call(opea.build_embedding(doc), opea.parse_embedding)
        legacy = await ep.call(opea.build_embedding(doc, legacy=True), opea.parse_embedding)
        assert emb.vectors == legacy.vectors and len(emb.vectors[0]) == 64
        found = await ep.call(opea.build_retrieval(doc, emb.vectors[0], k=3), opea.parse_retrieval)
        assert len(found.docs) == 3 and found.docs[0].text == doc and found.initial_query == doc
        ranked = await ep.call(
            opea.build_rerank("which chatbot uses retrieval", found.docs, top_n=2), opea.parse_rerank
        )
        assert len(ranked.docs) == 2 and ranked.query == "which chatbot uses retrieval"
        assert ranked.docs[0].text == doc  # most word overlap with the question
        answer = await rag_pipeline(doc, embed_ep=ep, retrieve_ep=ep, rerank_ep=ep, llm_ep=llm, top_n=1)
        assert answer.text == f"echo: {doc}" and answer.provider == "opea_llm"
        system = llm.counters  # the LLM call went through the LLM endpoint's engine
        assert system.successes == 1
    finally:
        await ep.aclose()
        await llm.aclose()


async def test_fastapi_errors_typed(sb: Sandbox) -> None:
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        with pytest.raises(UnprocessableEntityError) as ei:
            await ep.chat(chat(extra={"messages": None}))
        assert ei.value.provider_message == "body.messages: Field required" and ei.value.error_type == "missing"
        with pytest.raises(UnprocessableEntityError, match="embedding"):
            preq = opea.build_retrieval("q", [1.0])
            preq.json = {"text": "q"}
            await ep.call(preq, opea.parse_retrieval)
        sb.faults.push(Fault.status_error(500))
        with pytest.raises(InternalServerError) as se:
            await ep.chat(chat())
        assert se.value.provider_message == "Internal Server Error" and se.value.retryable
    finally:
        await ep.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_429_and_503_retried_to_success(sb: Sandbox, stream: bool) -> None:
    sb.faults.push(Fault.status_error(429, retry_after=1))
    sb.faults.push(Fault.status_error(503))
    ep = endpoint(sb, adaptive_concurrency=False)
    try:
        if stream:
            text = (await collect(ep, chat()))[0].text
        else:
            r = await ep.chat(chat())
            assert r.attempts == 3
            text = r.text
    finally:
        await ep.aclose()
    assert text == "echo: what is OPEA"
    assert [rec.attempt for rec in sb.stats.records] == [1, 2, 3] and len(set(sb.stats.request_ids())) == 1
    assert 1.0 <= ep.clock.sleeps[0] < 1.5  # type: ignore[attr-defined]


async def test_429_typed_cut_and_malformed(sb: Sandbox) -> None:
    no_breaker = BreakerConfig(consecutive_failures=0, failure_rate_threshold=1.0, minimum_calls=10_000)
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0), breaker=no_breaker)
    try:
        sb.faults.push(Fault.status_error(429, retry_after=3))
        with pytest.raises(RateLimitError) as rl:
            await ep.chat(chat())
        assert rl.value.retry_after == 3.0 and rl.value.provider_message == "Too Many Requests"
        for style in ("openai", "bytes"):
            sb.configure_backend("opea", stream_style=style)
            sb.faults.push(Fault.stream_cut(after=2, clean=True))
            with pytest.raises(IncompleteStreamError) as ei:
                await collect(ep, chat())
            assert ei.value.partial_text
            sb.faults.push(Fault.malformed(after=1))
            with pytest.raises(MalformedResponseError):
                await collect(ep, chat())
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await ep.chat(chat())
        sb.faults.push(Fault.malformed())
        with pytest.raises(MalformedResponseError):
            await ep.call(opea.build_rerank("q", ["a"]), opea.parse_rerank)
    finally:
        await ep.aclose()


async def test_bad_input_fails_before_io(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(ConfigurationError):
            await ep.chat(chat(tools=({"name": "f", "parameters": {"type": "object"}},)))
        with pytest.raises(ConfigurationError):
            await ep.call(opea.build_retrieval("q", [], k=2), opea.parse_retrieval)
    finally:
        await ep.aclose()
    assert sb.stats.total == 0
