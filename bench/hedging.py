"""Hedged requests against stalling upstreams: p50/p99 time to first byte with and without hedging.

    python bench/hedging.py [--requests 3000] [--concurrency 16] [--stall 2.0] [--stall-rate 0.02]

Two sandbox servers (``python -m infermux.sandbox``, each in its own process, so their CPU is not the
client's), both serving one group ``g`` of two endpoints. On each server a seeded random fault mix stalls
``--stall-rate`` of the requests for ``--stall`` seconds before the headers (``slow_headers``); every request
also waits ``--latency`` seconds (a model's think time). Per mode (non-stream chat: time to the answer; streams:
time to the first content chunk) the same requests run without hedging, then with the group's hedging
(default :class:`~infermux.hedging.HedgeConfig`: delay = the observed p95 TTFB, budget 5 % + a burst of 2).
The servers are reset and re-seeded before each run, so both runs meet the same stall draws.

Printed: p50/p90/p99/max TTFB, requests the servers received, extra request ratio (server side, and the
client's hedges fired / won / skipped), the load average; the last stdout line is a JSON object of all
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import infermux
from infermux.fleet import GroupConfig
from infermux.hedging import HedgeConfig
from infermux.resilience.retry import RetryPolicy

MESSAGES = [{"role": "user", "content": "Say hello."}]


class Upstream:
    """A sandbox server in its own process (stopped by its PID)."""

    def __init__(self, latency: float) -> None:
        cmd = [sys.executable, "-m", "infermux.sandbox", "--host", "127.0.0.1", "--port", "0", "--backend", "openai"]
        cmd += ["--latency", str(latency), "--max-records", "100"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)  # the server prints its URL once it listens
        line = self.proc.stdout.readline() if ready else ""
        m = re.search(r"listening on (http://\S+)", line)
        if m is None:
            self.proc.kill()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.url = m.group(1)

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))]


async def run(ups: list[Upstream], args: argparse.Namespace, *, stream: bool, hedge: bool) -> dict[str, Any]:
    n, conc, stall, rate, seed = args.requests, args.concurrency, args.stall, args.stall_rate, args.seed
    for i, u in enumerate(ups):
        u.control("/_sandbox/reset", {})
        weights = {f"slow_headers={stall}": rate} if rate > 0 else None
        u.control("/_sandbox/faults", {"random": {"weights": weights, "seed": seed + i} if weights else None})
    eps = [
        infermux.EndpointConfig(
            name=f"u{i}",
            provider="openai",
            base_url=u.url + "/v1",
            model="gpt-4o-mini",
            api_keys=("sk-bench",),
            retry=RetryPolicy(max_retries=0),
            max_concurrency=conc * 2,
        )
        for i, u in enumerate(ups)
    ]
    group = GroupConfig("g", tuple(e.name for e in eps), strategy="round_robin", hedge=HedgeConfig() if hedge else None)
    ttfb: list[float] = []
    left = n
    async with infermux.AsyncClient(eps, groups=[group], trust_env=False) as c:

        async def one() -> None:
            t0 = time.perf_counter()
            if stream:
                async with c.stream(MESSAGES, model="g", max_tokens=8) as s:
                    async for _ in s.text():
                        ttfb.append(time.perf_counter() - t0)
                        break
            else:
                await c.chat(MESSAGES, model="g", max_tokens=8)
                ttfb.append(time.perf_counter() - t0)

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        wall0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        wall = time.perf_counter() - wall0
        stats = c.stats()
    await asyncio.sleep(0.2)  # the servers end the stalls whose client hung up
    received = sum(u.control("/_sandbox/stats")["total"] for u in ups)
    stalled = sum(u.control("/_sandbox/stats")["faults"].get("slow_headers", 0) for u in ups)
    h = stats.get("hedging", {}).get("g", {})
    return {
        "mode": "stream" if stream else "chat",
        "hedging": hedge,
        "requests": n,
        "answered": len(ttfb),
        "p50_ms": pct(ttfb, 50) * 1000,
        "p90_ms": pct(ttfb, 90) * 1000,
        "p99_ms": pct(ttfb, 99) * 1000,
        "max_ms": max(ttfb) * 1000,
        "upstream_requests": received,
        "stalled_upstream_requests": stalled,
        "extra_request_ratio": (received - n) / n,
        "hedges_fired": h.get("fired", 0),
        "hedges_won": h.get("won", 0),
        "hedges_skipped_budget": h.get("skipped_budget", 0),
        "hedges_skipped_unavailable": h.get("skipped_unavailable", 0),
        "final_delay_ms": h["delay_s"] * 1000 if h else None,
        "wall_s": wall,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--stall", type=float, default=2.0, help="seconds a stalled request waits before its headers")
    ap.add_argument("--stall-rate", type=float, default=0.02, help="share of requests that stall, per server")
    ap.add_argument("--latency", type=float, default=0.02, help="every request's base latency at the server, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modes", default="chat,stream")
    args = ap.parse_args()
    ups = [Upstream(args.latency), Upstream(args.latency)]
    results: list[dict[str, Any]] = []
    try:
        load0 = os.getloadavg()
        print(
            f"# bench/hedging.py: {args.requests} requests at concurrency {args.concurrency}, 2 sandbox upstreams,"
            f" {args.stall_rate:.0%} of requests stall {args.stall:g} s, base latency {args.latency * 1000:g} ms,"
            f" {os.cpu_count()} CPUs, load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"
        )
        print()
        cols = ["mode", "hedging", "p50 ms", "p90 ms", "p99 ms", "max ms", "upstream requests", "extra"]
        print("| " + " | ".join([*cols, "hedges fired / won / skipped (budget)"]) + " |")
        print("|---|---|---|---|---|---|---|---|---|")
        for mode in args.modes.split(","):
            for hedge in (False, True):
                r = await run(ups, args, stream=mode == "stream", hedge=hedge)
                results.append(r)
                print(
                    f"| {r['mode']} | {'on' if hedge else 'off'} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} |"
                    f" {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['upstream_requests']} |"
                    f" {r['extra_request_ratio']:.2%} | {r['hedges_fired']} / {r['hedges_won']} /"
                    f" {r['hedges_skipped_budget']} |",
                    flush=True,
                )
        load1 = os.getloadavg()
    finally:
        for u in ups:
            u.stop()
    print()
    summary: dict[str, Any] = {"load_avg_start": load0, "load_avg_end": load1, "runs": results}
    for mode in args.modes.split(","):
        off = next(r for r in results if r["mode"] == mode and not r["hedging"])
        on = next(r for r in results if r["mode"] == mode and r["hedging"])
        gain = off["p99_ms"] / on["p99_ms"]
        ok = gain >= 5 and on["extra_request_ratio"] <= 0.05
        summary[f"{mode}_p99_gain"] = gain
        summary[f"{mode}_target_met"] = ok
        print(
            f"{mode}: p99 TTFB {off['p99_ms']:.0f} ms -> {on['p99_ms']:.0f} ms ({gain:.1f}x lower),"
            f" extra requests {on['extra_request_ratio']:.2%}"
            f" (target: >= 5x lower, <= 5 % extra: {'met' if ok else 'NOT met'})"
        )
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
