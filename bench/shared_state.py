"""Cost of shared state on the hot path, and how fast a write reaches another store.

    python bench/shared_state.py [--calls 20000] [--samples 300]

1. The engine's own work per call (``Endpoint.run`` of an operation that returns at once: queue slot, breaker
   permit, key lease, outcome) without shared state, with a MemoryStore, and with a RedisStateStore connected
   to a real valkey/redis-server (its sync task running on the same loop): µs per call.
2. Propagation: a ``set`` on one RedisStateStore until another store's view has it (pub/sub + one GET),
   p50/p99 over ``--samples`` writes.

Prints ``os.getloadavg()`` with the figures: on a shared machine they move with the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

from infermux.endpoint import Endpoint, EndpointConfig
from infermux.resilience.store import MemoryStore, StateStore
from infermux.sandbox.redis_server import RedisServer
from infermux.shared_state import RedisStateStore


def _endpoint(store: StateStore | None) -> Endpoint:
    cfg = EndpointConfig(
        name="bench", provider="openai", base_url="http://127.0.0.1:9/v1", model="m", api_keys=("k1", "k2")
    )
    ep = Endpoint(cfg)
    if store is not None:
        ep.breaker.bind_store(store, "breaker:bench")
        ep.keys.bind_store(store, "keys:bench")
    return ep


async def per_call_us(store: StateStore | None, calls: int) -> float:
    ep = _endpoint(store)

    async def op(_: Any) -> int:
        return 1

    for _ in range(500):  # warm up
        await ep.run(op)
    t0 = time.process_time()
    for _ in range(calls):
        await ep.run(op)
    return (time.process_time() - t0) / calls * 1e6


async def propagation_ms(url: str, samples: int) -> tuple[float, float]:
    a = RedisStateStore(url, prefix="bench:prop")
    b = RedisStateStore(url, prefix="bench:prop")
    await a.wait_synced(5.0)
    await b.wait_synced(5.0)
    out = []
    try:
        for i in range(samples):
            t0 = time.perf_counter()
            a.set("k", i, ttl=60)
            while b.get("k") != i:
                await asyncio.sleep(0)
                if time.perf_counter() - t0 > 5:
                    raise RuntimeError("not propagated within 5 s")
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        await a.aclose()
        await b.aclose()
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=300)
    args = ap.parse_args()
    res: dict[str, Any] = {"loadavg_before": os.getloadavg()}
    res["us_per_call_no_state"] = round(await per_call_us(None, args.calls), 2)
    res["us_per_call_memory_store"] = round(await per_call_us(MemoryStore(), args.calls), 2)
    with RedisServer() as srv:
        store = RedisStateStore(srv.url, prefix="bench:hot")
        await store.wait_synced(5.0)
        try:
            res["us_per_call_redis_store"] = round(await per_call_us(store, args.calls), 2)
        finally:
            await store.aclose()
        p50, p99 = await propagation_ms(srv.url, args.samples)
        res["propagation_ms_p50"], res["propagation_ms_p99"] = round(p50, 3), round(p99, 3)
    res["loadavg_after"] = os.getloadavg()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
