"""A fleet end to end on 127.0.0.1: two vLLM emulators (the sandbox) behind one group, real HTTP, the real
clock, active health probes on ``/health``. A server that accepts a request and never answers while its
``/health`` says 200 is found down by forward progress and skipped; an outage is found by the probes; both
come back; the alerting hook sees every change; the Prometheus scrape shows it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

import infermux
from infermux.fleet import GroupConfig
from infermux.metrics import exposition
from infermux.resilience.health import HealthConfig
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Sandbox
from infermux.sandbox import _vllm as emu

pytestmark = pytest.mark.timeout(60)


async def until(cond: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit}s: {what}")
        await asyncio.sleep(0.02)


async def test_health_probes_and_forward_progress_gate_a_group_of_real_servers() -> None:
    async with Sandbox(backends=("vllm",)) as sa, Sandbox(backends=("vllm",)) as sb:
        eps = [
            infermux.EndpointConfig(
                name=name,
                provider="vllm",
                base_url=sbx.base_url + "/v1",
                model=emu.DEFAULT_VLLM_MODEL,
                retry=RetryPolicy(max_retries=0),
            )
            for name, sbx in (("a", sa), ("b", sb))
        ]
        changes: list[tuple[str, str, str | None]] = []
        health = HealthConfig(interval=0.1, timeout=1.0, jitter=0.2, failures=1, stall_after=0.5)
        async with infermux.AsyncClient(
            eps,
            groups=[GroupConfig("fleet", ("a", "b"), strategy="round_robin")],
            health=health,
            on_health_change=lambda n, o, s, r: changes.append((n, s.value, r)),
            trust_env=False,
        ) as c:
            got = [(await c.chat("hello", model="fleet", max_tokens=8)).endpoint for _ in range(4)]
            assert sorted(got) == ["a", "a", "b", "b"]
            await until(lambda: c.health()["a"]["probe"]["count"] >= 2, "probes of a")
            assert sa.stats.snapshot()["routes"].get("GET /health", 0) >= 2

            # a accepts a stream and hangs (headers after 30 s); its /health keeps answering 200
            async def read(s: infermux.ChatStream) -> infermux.ChatResponse:
                async with s:
                    return await s.final_response()

            fault = {"x-sandbox-fault": "slow_headers=30"}
            hung = asyncio.ensure_future(read(c.stream("hello", endpoint="a", max_tokens=8, extra_headers=fault)))
            await until(lambda: c.health()["a"]["state"] == "down", "a found stalled")
            rep = c.health()["a"]
            assert "no progress" in rep["reason"] and rep["probe"]["ok"] is True and rep["attempts_running"] == 1
            got = [(await c.chat("hello", model="fleet", max_tokens=8)).endpoint for _ in range(4)]
            assert got == ["b"] * 4  # the hung server gets no new calls
            assert b'infermux_health_up{endpoint="a",model="' in exposition(c)
            down = f'infermux_health_up{{endpoint="a",model="{emu.DEFAULT_VLLM_MODEL}"}} 0.0'
            assert down in exposition(c).decode()
            hung.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hung
            await until(lambda: c.health()["a"]["state"] == "up", "a back once nothing hangs")

            # b's server goes away: the probes find it down; calls go to a; it comes back
            sb.faults.set_outage(True)
            await until(lambda: c.health()["b"]["state"] == "down", "b found down by its probes")
            assert "health probes failed" in c.health()["b"]["reason"]
            got = [(await c.chat("hello", model="fleet", max_tokens=8)).endpoint for _ in range(3)]
            assert got == ["a"] * 3
            sb.faults.set_outage(False)
            await until(lambda: c.health()["b"]["state"] == "up", "b back")
        assert [(n, s) for n, s, _ in changes] == [("a", "down"), ("a", "up"), ("b", "down"), ("b", "up")]
