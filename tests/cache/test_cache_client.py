"""The response cache through the public client, against the sandbox emulators (OpenAI chat, TEI embeddings)
on 127.0.0.1: exact and semantic hits, tenant isolation, opt-out / refresh, TTL on a FakeClock, what is never
cached, stream replay as the same events, a failing embedder or store that does not fail the call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import infermux
from infermux import EndpointConfig, StreamFinish, StreamStart, TextDelta, Tool
from infermux.cache import CacheConfig, MemoryStore, SemanticConfig
from infermux.cache.redis import RedisStore
from infermux.errors import ConfigurationError
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)

NO_RETRY = RetryPolicy(max_retries=0)


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(backends=("openai", "tei")) as s:
        yield s


def _endpoints(sb: Sandbox, *, keys: tuple[str, ...] = ("sk-a",)) -> list[EndpointConfig]:
    return [
        EndpointConfig(name="chat", provider="openai", base_url=sb.openai_base_url, model="gpt-4o-mini", api_keys=keys),
        EndpointConfig(name="emb", provider="tei", base_url=sb.base_url, model="bge", retry=NO_RETRY),
    ]


def _chat_calls(sb: Sandbox) -> int:
    return sum(n for route, n in sb.stats.routes.items() if "chat/completions" in route)


async def test_exact_hits_namespaces_optout_refresh_and_ttl(sb: Sandbox) -> None:
    clock = FakeClock()
    cfg = CacheConfig(ttl=60.0, clock=clock)
    async with infermux.AsyncClient(_endpoints(sb), cache=cfg) as c:
        r1 = await c.chat("Say hi", endpoint="chat", temperature=0)
        r2 = await c.chat("Say hi", endpoint="chat", temperature=0)
        assert r1.cached is None and r2.cached == "exact" and r2.text == r1.text and _chat_calls(sb) == 1
        assert r2.attempts == 0 and r2.request_id != r1.request_id
        await c.chat("Say hi", endpoint="chat", temperature=0, cache_namespace="tenant-2")  # another tenant
        assert _chat_calls(sb) == 2
        await c.chat("Say hi", endpoint="chat", temperature=0, cache=False)  # opt-out: neither read nor written
        assert _chat_calls(sb) == 3
        r5 = await c.chat("Say hi", endpoint="chat", temperature=0, cache_refresh=True)
        assert r5.cached is None and _chat_calls(sb) == 4
        clock.advance(61)
        r6 = await c.chat("Say hi", endpoint="chat", temperature=0)
        assert r6.cached is None and _chat_calls(sb) == 5  # expired
        stats = c.stats()["cache"]["namespaces"]
        ns = next(k for k in stats if k.startswith("keys:"))
        assert stats[ns]["hits_exact"] == 1 and stats[ns]["bypassed"] == 1 and stats[ns]["refreshes"] == 1
        assert stats["tenant-2"]["misses"] == 1
        assert c.cache is not None and await c.cache.clear() >= 1


async def test_api_key_is_the_tenant(sb: Sandbox) -> None:
    store = MemoryStore()
    for keys, expect_calls in ((("sk-a",), 1), (("sk-a",), 1), (("sk-b",), 2)):
        async with infermux.AsyncClient(_endpoints(sb, keys=keys), cache=CacheConfig(store=store)) as c:
            await c.chat("Who are you?", endpoint="chat", temperature=0)
        assert _chat_calls(sb) == expect_calls  # same key: served from the shared store; other key: not


async def test_never_cached_sampled_tools_and_errors(sb: Sandbox) -> None:
    async with infermux.AsyncClient(_endpoints(sb), cache=CacheConfig()) as c:
        await c.chat("Hello", endpoint="chat")  # temperature unset = provider default (sampled)
        await c.chat("Hello", endpoint="chat")
        assert _chat_calls(sb) == 2
        await c.chat("Hello", endpoint="chat", temperature=0.7, cache_allow_sampled=True)
        r = await c.chat("Hello", endpoint="chat", temperature=0.7, cache_allow_sampled=True)
        assert r.cached == "exact" and _chat_calls(sb) == 3
        tool = Tool("get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
        for _ in range(2):
            await c.chat("Weather in Paris?", endpoint="chat", temperature=0, tools=[tool])
        assert _chat_calls(sb) == 5
        ns = next(iter(c.stats()["cache"]["namespaces"].values()))
        assert ns["uncacheable"] == {"sampled": 2, "tools": 2}


async def test_stream_fills_cache_and_hit_replays_the_same_event_types(sb: Sandbox) -> None:
    async with infermux.AsyncClient(_endpoints(sb), cache=CacheConfig()) as c:
        async with c.stream("Count to three", endpoint="chat", temperature=0) as s:
            live = [ev async for ev in s]
            live_final = await s.final_response()
        assert s.cached is None and _chat_calls(sb) == 1
        async with c.stream("Count to three", endpoint="chat", temperature=0) as s2:
            replayed = [ev async for ev in s2]
            final = await s2.final_response()
        assert _chat_calls(sb) == 1 and s2.cached == "exact" and final.cached == "exact"
        assert final.text == live_final.text and final.finish_reason == live_final.finish_reason
        assert isinstance(replayed[0], StreamStart) and isinstance(replayed[-1], StreamFinish)
        assert [e.text for e in replayed if isinstance(e, TextDelta)] == [
            e.text for e in live if isinstance(e, TextDelta)
        ]
        r = await c.chat("Count to three", endpoint="chat", temperature=0)  # a stream's answer serves chat too
        assert r.cached == "exact" and r.text == live_final.text


async def test_abandoned_or_cut_streams_are_not_cached(sb: Sandbox) -> None:
    from infermux.sandbox import Fault

    async with infermux.AsyncClient(_endpoints(sb), cache=CacheConfig()) as c:
        async with c.stream("Tell me a story", endpoint="chat", temperature=0, max_tokens=64) as s:
            async for _ in s:
                break  # the caller stops reading
        sb.faults.push(Fault.stream_cut(2, clean=True))
        with pytest.raises(infermux.IncompleteStreamError):
            async with c.stream("Tell me a story", endpoint="chat", temperature=0, max_tokens=64, resume=False) as s:
                async for _ in s:
                    pass
        r = await c.chat("Tell me a story", endpoint="chat", temperature=0, max_tokens=64)
        assert r.cached is None
        ns = next(iter(c.stats()["cache"]["namespaces"].values()))
        assert ns["stores"] == 1 and ns["hits_exact"] == 0


async def test_semantic_hit_and_guard_with_tei_emulator(sb: Sandbox) -> None:
    sem = SemanticConfig(endpoint="emb", threshold=0.8)
    async with infermux.AsyncClient(_endpoints(sb), cache=CacheConfig(semantic=sem)) as c:
        r1 = await c.chat("is bread flour gluten free", endpoint="chat", temperature=0)
        r2 = await c.chat("Is bread flour gluten free?", endpoint="chat", temperature=0)
        assert r2.cached == "semantic" and r2.text == r1.text and _chat_calls(sb) == 1
        r3 = await c.chat("is bread flour not gluten free", endpoint="chat", temperature=0)
        assert r3.cached is None and _chat_calls(sb) == 2
        # the same question inside another conversation does not hit
        convo: list[dict[str, Any]] = [
            {"role": "system", "content": "You answer about cars."},
            {"role": "user", "content": "Is bread flour gluten free?"},
        ]
        r5 = await c.chat(convo, endpoint="chat", temperature=0)
        assert r5.cached is None and _chat_calls(sb) == 3
        ns = next(iter(c.stats()["cache"]["namespaces"].values()))
        assert ns["hits_semantic"] == 1 and ns["false_hit_guards"] == 1 and ns["guard_reasons"] == {"negation": 1}


async def test_failing_embedder_and_store_do_not_fail_the_call(sb: Sandbox) -> None:
    import socket

    from infermux.sandbox import Fault

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sem = SemanticConfig(endpoint="emb")
    async with infermux.AsyncClient(_endpoints(sb), cache=CacheConfig(semantic=sem)) as c:
        sb.faults.push(Fault.status_error(500))
        r = await c.chat("What is a monad?", endpoint="chat", temperature=0)
        assert r.text
        ns = next(iter(c.stats()["cache"]["namespaces"].values()))
        assert ns["embed_errors"] == 1 and ns["stores"] == 1
        dead = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    async with infermux.AsyncClient(_endpoints(sb), cache=CacheConfig(store=dead)) as c2:
        r = await c2.chat("What is a monad?", endpoint="chat", temperature=0)
        assert r.text and r.cached is None
        ns2 = next(iter(c2.stats()["cache"]["namespaces"].values()))
        assert ns2["store_errors"] == 2  # the lookup and the fill


def test_bad_cache_configuration() -> None:
    ep = EndpointConfig(name="cache", provider="openai", base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(ConfigurationError):
        infermux.AsyncClient([ep], cache=CacheConfig())  # "cache" is reserved in stats()
    with pytest.raises(ConfigurationError):
        CacheConfig(ttl=0)
    with pytest.raises(ConfigurationError):
        SemanticConfig(max_false_hit_rate=0)
    ok = EndpointConfig(name="x", provider="openai", base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(ConfigurationError):
        infermux.AsyncClient([ok], cache={"ttl": 5})  # type: ignore[arg-type]


def test_sync_client_uses_the_cache() -> None:
    from infermux.sandbox import SandboxThread

    with SandboxThread(backends=("openai",)) as sb:
        ep = EndpointConfig(
            name="chat", provider="openai", base_url=sb.openai_base_url, model="gpt-4o-mini", api_keys=("sk-a",)
        )
        with infermux.Client([ep], cache=CacheConfig()) as c:
            first = c.chat("Hi there", temperature=0)
            again = c.chat("Hi there", temperature=0)
            assert first.cached is None and again.cached == "exact" and again.text == first.text
            assert next(iter(c.stats()["cache"]["namespaces"].values()))["hits_exact"] == 1


async def test_extra_headers_are_part_of_the_key(sb: Sandbox) -> None:
    async with infermux.AsyncClient(_endpoints(sb), cache=CacheConfig()) as c:
        await c.chat("Hello there", endpoint="chat", temperature=0, extra_headers={"OpenAI-Organization": "org-a"})
        r = await c.chat("Hello there", endpoint="chat", temperature=0, extra_headers={"OpenAI-Organization": "org-b"})
        assert r.cached is None and _chat_calls(sb) == 2
        r = await c.chat("Hello there", endpoint="chat", temperature=0, extra_headers={"OpenAI-Organization": "org-b"})
        assert r.cached == "exact"
