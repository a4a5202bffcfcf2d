"""Routing overhead: a group of 4 endpoints (each strategy) vs a single endpoint, against one fast local server.

    python bench/routing.py [--requests 600] [--concurrency 32] [--decision-only]

One run measures every configuration against the same server (bench/_server.py in a subprocess, so its CPU is
not counted): client CPU per request (``time.process_time``) and median latency of sequential calls, CPU per
request and throughput at a concurrency, and the router's own decision time without I/O (``Router.target`` +
``Router.plan``, the work a call does before it reaches an endpoint). The 4 endpoints are 4 names for the same
server, so the figures differ only by the routing work. The decision time is the best of 5 rounds of 20,000
decisions (a shared machine's preemptions only ever add time); ``--decision-only`` measures just that column,
without the server (the decision does no I/O).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _server import BenchServer, cpu_count_line

import infermux
from infermux.fleet import GroupConfig
from infermux.resilience.health import HealthConfig

STRATEGIES = ("ordered", "round_robin", "weighted", "least_loaded", "lowest_latency", "prefix_affinity")
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]


def configs(url: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(label, client kwargs, call kwargs)."""

    def ep(name: str) -> infermux.EndpointConfig:
        return infermux.EndpointConfig(name=name, provider="openai", base_url=url + "/v1", model="m", api_keys=("k",))

    four = [ep(f"e{i}") for i in range(4)]
    out: list[tuple[str, dict[str, Any], dict[str, Any]]] = [("1 endpoint", {"endpoints": [ep("e0")]}, {})]
    for s in STRATEGIES:
        weights = {"e0": 0.4, "e1": 0.3, "e2": 0.2, "e3": 0.1} if s == "weighted" else {}
        group = GroupConfig("g", tuple(e.name for e in four), strategy=s, weights=weights)
        out.append((f"group of 4, {s}", {"endpoints": four, "groups": [group]}, {"model": "g"}))
    group = GroupConfig("g", tuple(e.name for e in four), strategy="round_robin")
    health = HealthConfig(probe=False)
    out.append(
        (
            "group of 4, round_robin + health gating",
            {"endpoints": four, "groups": [group], "health": health},
            {"model": "g"},
        )
    )
    return out


def decision_us(c: infermux.AsyncClient, call_kw: dict[str, Any], reps: int = 20000, rounds: int = 5) -> float:
    """The router's decision alone (target + plan, no I/O), µs per call: the best of ``rounds`` rounds."""
    req_model = call_kw.get("model")
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            target = c.router.target(model=req_model, key=lambda chars: "system:You are terse.\x1euser:Say hello.")
            c.router.plan(target.endpoints, target.strategy, target.affinity_key())
        best = min(best, (time.perf_counter() - t0) / reps)
    return best * 1e6


async def measure(
    client_kw: dict[str, Any], call_kw: dict[str, Any], n: int, conc: int, *, decision_only: bool = False
) -> dict[str, float]:
    async with infermux.AsyncClient(trust_env=False, **client_kw) as c:
        if decision_only:
            return {"decide_us": decision_us(c, call_kw)}
        for _ in range(50):  # warm up connections and caches
            await c.chat(MESSAGES, **call_kw)
        lat: list[float] = []
        cpu0 = time.process_time()
        for _ in range(n):
            t0 = time.perf_counter()
            await c.chat(MESSAGES, **call_kw)
            lat.append(time.perf_counter() - t0)
        seq_cpu = (time.process_time() - cpu0) / n
        total = n * 2
        left = total

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await c.chat(MESSAGES, **call_kw)

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        wall = time.perf_counter() - t0
        conc_cpu = (time.process_time() - cpu0) / total
        decide = decision_us(c, call_kw)  # the router's decision alone: target + plan, no I/O
    return {
        "seq_cpu_us": seq_cpu * 1e6,
        "p50_ms": statistics.median(lat) * 1e3,
        "conc_cpu_us": conc_cpu * 1e6,
        "rps": total / wall,
        "decide_us": decide,
    }


async def run(url: str, n: int, conc: int, *, decision_only: bool = False) -> list[tuple[str, dict[str, float]]]:
    return [(label, await measure(ckw, kw, n, conc, decision_only=decision_only)) for label, ckw, kw in configs(url)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--decision-only", action="store_true", help="only the routing decision time (no server)")
    args = ap.parse_args()
    if args.decision_only:
        rows = asyncio.run(run("http://127.0.0.1:9", 0, 0, decision_only=True))
        print(f"# bench/routing.py --decision-only ({cpu_count_line()}); best of 5 rounds of 20000 decisions")
        print()
        print("| configuration | routing decision µs |")
        print("|---|---|")
        for label, r in rows:
            print(f"| {label} | {r['decide_us']:.2f} |")
        return
    with BenchServer(chunks=10) as server:
        rows = asyncio.run(run(server.url, args.requests, args.concurrency))
    c = args.concurrency
    print(f"# bench/routing.py ({cpu_count_line()}), {args.requests} sequential + {args.requests * 2} at c={c}")
    print()
    print(
        f"| configuration | client CPU/request µs (seq) | p50 ms (seq) | CPU/request µs (c={c}) | req/s (c={c})"
        " | routing decision µs |"
    )
    print("|---|---|---|---|---|---|")
    base = rows[0][1]
    for label, r in rows:
        print(
            f"| {label} | {r['seq_cpu_us']:.0f} | {r['p50_ms']:.3f} | {r['conc_cpu_us']:.0f} | {r['rps']:.0f} |"
            f" {r['decide_us']:.2f} |"
        )
    print()
    worst = max(r["seq_cpu_us"] - base["seq_cpu_us"] for _, r in rows[1:])
    print(f"largest extra client CPU per sequential request for a group of 4 vs 1 endpoint: {worst:.0f} µs")


if __name__ == "__main__":
    main()
