"""The response cache's counters in the Prometheus exposition (hits by kind, misses, false-hit guards and the
verifier's refusals by reason, per namespace), through the public client API against the sandbox; and every
infermux metric name follows the Prometheus naming conventions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import infermux
from infermux.cache import CacheConfig, SemanticConfig
from infermux.metrics import exposition
from infermux.sandbox import Sandbox

pytestmark = [pytest.mark.timeout(60)]

KEY = "sk-cache-metrics-secret-0123456789"


def families(text: bytes) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def sample(fams: dict[str, Any], family: str, **labels: str) -> float:
    for s in fams[family].samples:
        if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no {family} sample with {labels}")


async def test_cache_counters_are_exported_per_namespace() -> None:
    async with Sandbox() as sb:
        ep = infermux.EndpointConfig(
            name="sb", provider="openai", base_url=sb.openai_base_url, model="gpt-4o-mini", api_keys=(KEY,)
        )
        # threshold -1: every stored question is a near-match, so the verifier decides (a false-hit guard)
        sem = SemanticConfig(endpoint="sb", model="text-embedding-3-small", threshold=-1.0)
        async with infermux.AsyncClient([ep], trust_env=False, cache=CacheConfig(semantic=sem)) as c:
            q = "What is 2 + 2?"
            await c.chat(q, cache_namespace="t1", temperature=0)  # miss, stored
            assert (await c.chat(q, cache_namespace="t1", temperature=0)).cached == "exact"
            again = await c.chat("What is 2 + 3?", cache_namespace="t1", temperature=0)
            assert again.cached is None  # the near-match is refused: its number differs
            await c.chat(q, cache_namespace="t2", cache=False)
            await c.chat("Tell me a joke", cache_namespace="t2", temperature=0.9)  # sampled: not cached
            stats = c.cache.stats()["namespaces"] if c.cache is not None else {}
            text = exposition(c)
    fams = families(text)
    t1 = stats["t1"]
    assert sample(fams, "infermux_cache_lookups", namespace="t1") == t1["lookups"] == 3
    assert sample(fams, "infermux_cache_hits", namespace="t1", kind="exact") == 1
    assert sample(fams, "infermux_cache_hits", namespace="t1", kind="semantic") == 0
    assert sample(fams, "infermux_cache_misses", namespace="t1") == t1["misses"] == 2
    assert sample(fams, "infermux_cache_false_hit_guards", namespace="t1") == t1["false_hit_guards"] == 1
    assert sample(fams, "infermux_cache_guard_refusals", namespace="t1", reason="number") >= 1
    assert sample(fams, "infermux_cache_stores", namespace="t1") == t1["stores"] == 2
    assert sample(fams, "infermux_cache_bypassed", namespace="t2") == 1
    (reason,) = stats["t2"]["uncacheable"]
    assert sample(fams, "infermux_cache_uncacheable", namespace="t2", reason=reason) == 1
    assert KEY.encode() not in text


_NAME = re.compile(r"^infermux_[a-z][a-z0-9_]*$")
_UNIT_WORDS = ("milliseconds", "microseconds", "minutes", "hours", "kilobytes", "megabytes")


async def test_every_metric_name_follows_the_prometheus_conventions() -> None:
    async with Sandbox() as sb:
        ep = infermux.EndpointConfig(
            name="sb", provider="openai", base_url=sb.openai_base_url, model="gpt-4o-mini", api_keys=(KEY,)
        )
        async with infermux.AsyncClient([ep], trust_env=False, cache=CacheConfig()) as c:
            await c.chat("hi", temperature=0)
            await c.chat("hi", temperature=0)
            text = exposition(c)
    fams = families(text)
    assert any(n.startswith("infermux_cache_") for n in fams) and "infermux_requests" in fams
    for name, fam in fams.items():
        assert _NAME.match(name), name  # snake case, the library's prefix
        assert not name.endswith(("_total", "_count", "_sum", "_bucket", "_created")), name  # reserved suffixes
        assert not any(w in name for w in _UNIT_WORDS), name  # base units only (seconds, bytes)
        if fam.type == "counter":
            assert all(s.name in (name + "_total", name + "_created") for s in fam.samples), name
        if fam.type == "histogram":
            assert name.endswith("_seconds"), name  # every infermux histogram is a duration
        assert fam.documentation, name
        for s in fam.samples:
            for label in s.labels:
                assert re.match(r"^[a-z][a-z0-9_]*$", label) and not label.startswith("__"), (name, label)
