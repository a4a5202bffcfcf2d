"""Hedging on 127.0.0.1 with real sockets: two OpenAI emulators (the sandbox) behind one group, one of which
stalls before its headers (the ``slow_headers`` fault) or before its first content chunk (``slow_body``). The
hedge to the other server answers; the stalled request's connection is closed, which the stalled server sees
(it stops stalling and counts the hang-up in ``stats.hung_up_ids``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

import infermux
from infermux.fleet import GroupConfig
from infermux.hedging import HedgeConfig
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Sandbox

pytestmark = pytest.mark.timeout(30)

STALL = 20.0  # far beyond the test's own time: only a hang-up ends it early


async def until(cond: Callable[[], bool], what: str, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit}s: {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Sandbox, Sandbox, infermux.AsyncClient]]:
    async with Sandbox(backends=("openai",)) as sa, Sandbox(backends=("openai",)) as sb:
        eps = [
            infermux.EndpointConfig(
                name=name,
                provider="openai",
                base_url=sbx.openai_base_url,
                model=model,
                api_keys=("sk-test",),
                retry=RetryPolicy(max_retries=0),
            )
            for name, sbx, model in (("a", sa, "gpt-4o-mini"), ("b", sb, "gpt-4o-mini"))
        ]
        group = GroupConfig("g", ("a", "b"), hedge=HedgeConfig(delay=0.05))
        async with infermux.AsyncClient(eps, groups=[group], trust_env=False) as c:
            yield sa, sb, c


async def test_chat_hedge_wins_and_the_stalled_connection_is_closed(
    pair: tuple[Sandbox, Sandbox, infermux.AsyncClient],
) -> None:
    sa, sb, c = pair
    sa.faults.push(f"slow_headers={STALL}")
    started = time.monotonic()
    r = await c.chat("hello", model="g", max_tokens=8)
    took = time.monotonic() - started
    assert r.endpoint == "b" and r.text
    assert [(h.endpoint, h.outcome) for h in r.route] == [("a", "hedge_lost"), ("b", "ok")]
    assert took < 2.0  # not the 20 s stall
    await until(lambda: sa.stats.hung_up_total == 1, "the stalled server saw the hang-up")
    assert sa.stats.hung_up_ids == [r.request_id]
    await until(lambda: sa.stats.in_flight == 0, "the stalled request ended on the server")
    stats = c.stats()
    assert stats["a"]["cancelled"] == 1 and stats["a"]["failures_total"] == 0
    assert stats["a"]["breaker"]["state"] == "closed"
    assert (stats["hedging"]["g"]["fired"], stats["hedging"]["g"]["won"]) == (1, 1)
    assert sb.stats.total == 1


async def test_stream_hedge_is_decided_on_the_first_content_chunk(
    pair: tuple[Sandbox, Sandbox, infermux.AsyncClient],
) -> None:
    sa, _, c = pair
    sa.faults.push(f"slow_headers={STALL}")  # no headers at all
    async with c.stream("hello", model="g", max_tokens=8) as s:
        text = "".join([t async for t in s.text()])
    assert s.endpoint == "b" and text
    assert [(h.endpoint, h.outcome) for h in s.route] == [("a", "hedge_lost"), ("b", "ok")]
    await until(lambda: sa.stats.hung_up_total == 1, "the stalled server saw the hang-up")

    sa.faults.push(f"slow_body={STALL}")  # headers at once, the content stalls: the hedge still wins
    started = time.monotonic()
    async with c.stream("hello", model="g", max_tokens=8) as s:
        text = "".join([t async for t in s.text()])
    assert s.endpoint == "b" and text and time.monotonic() - started < 2.0
    assert [(h.endpoint, h.outcome) for h in s.route] == [("a", "hedge_lost"), ("b", "ok")]
    assert c.stats()["a"]["cancelled"] == 2 and c.stats()["a"]["breaker"]["state"] == "closed"
    assert c.stats()["hedging"]["g"]["won"] == 2


async def test_embeddings_hedge_wins(pair: tuple[Sandbox, Sandbox, infermux.AsyncClient]) -> None:
    sa, _, c = pair
    sa.faults.push(f"slow_headers={STALL}")
    r = await c.embed(["one", "two"], model="g")
    assert r.endpoint == "b" and len(r.vectors) == 2
    await until(lambda: sa.stats.hung_up_total == 1, "the stalled server saw the hang-up")
    r = await c.embed("three", model="g")  # no stall: the first endpoint answers, no hedge
    assert r.endpoint == "a" and c.stats()["hedging"]["g"]["fired"] == 1
