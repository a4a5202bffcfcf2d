"""A cached answer keeps its reasoning: a hit (chat or stream replay) has the same reasoning blocks, signature
included, so it can go back to Anthropic in a tool-use loop. Against the sandbox's Anthropic emulator."""

from __future__ import annotations

import pytest

import infermux
from infermux import EndpointConfig, ReasoningDelta, TextDelta
from infermux.cache import CacheConfig
from infermux.sandbox import Sandbox

pytestmark = pytest.mark.timeout(60)

THINK = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


async def test_cache_hits_keep_reasoning_blocks_and_replay_them() -> None:
    async with Sandbox(backends=("anthropic",)) as sb:
        cfg = EndpointConfig(
            name="c", provider="anthropic", base_url=sb.anthropic_base_url, model="claude-sonnet-4-5", api_keys=("k",)
        )
        kw = {"max_tokens": 2048, "temperature": 1.0, "cache_allow_sampled": True, "extra": THINK}
        async with infermux.AsyncClient([cfg], cache=CacheConfig(), trust_env=False) as c:
            live = await c.chat("Why is the sky blue?", **kw)  # type: ignore[arg-type]
            hit = await c.chat("Why is the sky blue?", **kw)  # type: ignore[arg-type]
            async with c.stream("Why is the sky blue?", **kw) as s:  # type: ignore[arg-type]
                events = [ev async for ev in s]
                replayed = await s.final_response()
    assert live.cached is None and hit.cached == "exact" and replayed.cached == "exact"
    assert live.reasoning and live.reasoning_blocks[0].signature
    for r in (hit, replayed):
        assert (r.reasoning, r.reasoning_blocks, r.text) == (live.reasoning, live.reasoning_blocks, live.text)
    kinds = [type(e) for e in events if isinstance(e, (ReasoningDelta, TextDelta))]
    assert kinds[0] is ReasoningDelta and kinds[-1] is TextDelta  # reasoning first, as live
