"""The fault benchmark's three scenarios (bench/chaos.py) at a small scale, against the sandbox on loopback.

Judged by what the caller gets (ok / wrong / failed / untyped), attempts per request and requests sent into an
outage: counts, not wall time. Time constants are scaled down (retry-after, slow headers, timeouts) so the whole
module runs in seconds; the engine's rules are the defaults except where a parameter says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import pytest

import infermux
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Sandbox
from infermux.transport import Timeouts

FAULTS_A = (
    "status=429;retry-after-ms=50",
    "status=429;retry-after=0.1",
    "status=500",
    "status=503",
    "status=529;type=overloaded_error;message=Overloaded",
    "status=502;html=1",
    "reset",
    "slow_headers=0.6",
    "stream_cut=3;clean=1",
    "stream_cut=3",
    "stream_cut=1",
    "malformed=0",
    "html",
)
FAST_RETRY = RetryPolicy(initial_delay=0.05, max_delay=0.5)  # the default policy, with a 20x shorter backoff


@pytest.fixture(autouse=True)
def _quiet_server() -> None:
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # the fault server's own reset tracebacks


def prompt(i: int) -> str:
    return f"request {i}: the quick brown fox jumps over the lazy dog"


def config(sb: Sandbox, name: str = "ep", **kw: Any) -> infermux.EndpointConfig:
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("timeouts", Timeouts(connect=0.3, read=0.3))
    return infermux.EndpointConfig(
        name=name, provider="openai", base_url=sb.openai_base_url, model="m", api_keys=("sk-test",), **kw
    )


async def ask(client: infermux.AsyncClient, i: int, stream: bool, out: Counter[str]) -> None:
    try:
        if stream:
            async with client.stream(prompt(i)) as s:
                text = "".join([t async for t in s.text()])
        else:
            text = (await client.chat(prompt(i))).text
        out["ok" if text == f"echo: {prompt(i)}" else "wrong"] += 1
    except infermux.InfermuxError as e:
        out[f"failed:{type(e).__name__}"] += 1


@pytest.mark.parametrize("backup", [False, True])
async def test_scenario_a_random_faults_are_absorbed(backup: bool) -> None:
    n = 260
    async with Sandbox(base_latency=0.002) as a, Sandbox(base_latency=0.002) as b:
        a.faults.set_random(dict.fromkeys(FAULTS_A, 0.2 / len(FAULTS_A)), seed=7)
        b.faults.set_random(dict.fromkeys(FAULTS_A, 0.2 / len(FAULTS_A)), seed=8)
        eps = [config(a, "a")] + ([config(b, "b")] if backup else [])
        out: Counter[str] = Counter()
        async with infermux.AsyncClient(eps) as client:
            work = iter(range(n))

            async def worker() -> None:
                for i in work:
                    await ask(client, i, i % 2 == 1, out)

            await asyncio.gather(*(worker() for _ in range(26)))
        sent = a.stats.total + b.stats.total
    assert sum(out.values()) == n
    assert out["wrong"] == 0  # never a wrong or partial text as a success
    assert out["ok"] >= n - 1, out  # the bar: >= 99.5 % (one endpoint), >= 99.75 % (with a backup)
    assert sent / n <= 1.35, (sent, n)  # few wasted attempts: ~20 % faults cost ~0.2-0.3 extra attempts


async def test_scenario_b_outage_callers_wait_and_all_succeed() -> None:
    """50 req/s; the server answers 503 to everything for 1.5 s. Callers wait out the open breaker (no
    fallback exists) instead of failing; a probe per open period; all succeed soon after recovery."""
    async with Sandbox(base_latency=0.002) as sb:
        out: Counter[str] = Counter()
        ended: list[tuple[float, bool]] = []
        async with infermux.AsyncClient([config(sb)]) as client:

            async def one(i: int) -> None:
                before = sum(out.values())
                await ask(client, i, False, out)
                ended.append((time.monotonic(), out["ok"] > 0 and sum(out.values()) > before))

            tasks: list[asyncio.Task[None]] = []
            t0 = time.monotonic()
            into = off_at = 0.0
            for i in range(150):
                now = time.monotonic() - t0
                if i == 25:
                    on_total = sb.stats.total
                    sb.faults.set_outage(True)
                if i == 100:
                    sb.faults.set_outage(False)
                    into, off_at = sb.stats.total - on_total, time.monotonic()
                tasks.append(asyncio.create_task(one(i)))
                await asyncio.sleep(max(0.0, (i + 1) / 50 - now))
            await asyncio.gather(*tasks)
            stats = client.stats()["ep"]
    assert out["ok"] == 150, out
    # before the breaker opens (20+ failed attempts among the last 50 started), then one probe per 0.5 s open period
    assert into <= 45, into
    assert stats["waits"] > 0 and stats["breaker"]["state"] == "closed"
    first_after = min(t for t, _ in ended if t >= off_at)
    assert first_after - off_at < 1.5  # the next probe comes within one open period


@pytest.mark.parametrize("backup", [False, True])
async def test_scenario_c_overload_converges_on_capacity(backup: bool) -> None:
    """400 callers at once; the server serves 10 at a time (30 ms each) and answers 429 + retry-after-ms beyond.
    Every caller is served, with few wasted attempts (the adaptive limit settles on the capacity)."""
    n = 400
    async with Sandbox(base_latency=0.03) as a, Sandbox(base_latency=0.03) as b:
        for sb in (a, b):
            sb.faults.set_capacity(10, retry_after_ms=50)
        eps = [config(a, "a")] + ([config(b, "b")] if backup else [])
        out: Counter[str] = Counter()
        async with infermux.AsyncClient(eps) as client:
            await asyncio.gather(*(ask(client, i, False, out) for i in range(n)))
        sent = a.stats.total + b.stats.total
        served = (a.stats.total > 0, b.stats.total > 0)
    assert out["ok"] == n, out
    assert sent / n <= 1.5, (sent, n)
    assert served == (True, backup)  # with a backup, the saturated primary's overflow goes there


async def test_hanging_primary_with_caller_timeout_fails_over_and_trips() -> None:
    """A primary that accepts connections and never answers, a healthy backup, calls with timeout=0.3: each call
    keeps half of its budget for the backup and succeeds there; the primary's share overruns count as failures,
    so its breaker opens and later calls go straight to the backup."""
    async with Sandbox() as hung, Sandbox() as ok:
        hung.faults.set_default("slow_headers=30")
        eps = [
            config(hung, "primary", timeouts=Timeouts(connect=5, read=60)),
            config(ok, "backup", timeouts=Timeouts(connect=5, read=60)),
        ]
        async with infermux.AsyncClient(eps) as client:
            results = [await client.chat(prompt(i), timeout=0.3) for i in range(24)]
            stats = client.stats()
    assert all(r.endpoint == "backup" and r.text == f"echo: {prompt(i)}" for i, r in enumerate(results))
    assert stats["primary"]["attempt_failures"].get("APITimeoutError", 0) >= 20
    assert stats["primary"]["breaker"]["state"] in ("open", "half_open")
    assert stats["primary"]["attempts"] < 24  # once open, calls skip it


async def test_persistent_failure_surfaces_the_real_error_not_circuit_open() -> None:
    """A server that always answers 500: the caller gets the InternalServerError (breaker state noted), and the
    stats count the real failures, not CircuitOpenError."""
    async with Sandbox() as sb:
        sb.faults.set_default("status=500")
        pol = RetryPolicy(max_retries=5, initial_delay=0.01, max_delay=0.05, deadline=3.0)
        async with infermux.AsyncClient([config(sb, retry=pol)]) as client:
            errors = await asyncio.gather(*(client.chat(prompt(i)) for i in range(30)), return_exceptions=True)
            stats = client.stats()["ep"]
    assert all(isinstance(e, infermux.InternalServerError) for e in errors), {type(e).__name__ for e in errors}
    assert any(e.breaker_state == "open" for e in errors if isinstance(e, infermux.InfermuxError))
    assert set(stats["failures"]) == {"InternalServerError"}
    assert stats["attempt_failures"]["InternalServerError"] == sb.stats.total


async def test_a_streams_final_response_is_the_response_a_non_stream_call_returns() -> None:
    """Issue 8 item 4: after a retry, the stream's final response carries the latency, the provider's request ID
    and the attempts the server saw, like a non-stream call's."""
    async with Sandbox() as sb, infermux.AsyncClient([config(sb)]) as client:
        sb.faults.push("status=503")
        r = await client.chat(prompt(1))
        sb.faults.push("status=503")
        async with client.stream(prompt(1)) as s:
            final = await s.final_response()
    assert r.attempts == 2 and final.attempts == 2
    assert final.text == r.text and final.endpoint == r.endpoint == "ep"
    assert final.latency_s is not None and final.latency_s > 0
    assert final.provider_request_id is not None and final.provider_request_id != r.provider_request_id
    assert final.request_id == s.request_id
