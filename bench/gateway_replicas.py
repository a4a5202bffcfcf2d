"""Budgets across gateway replicas sharing Redis: N real ``infermux serve`` processes (``state = "redis"``) on
one valkey/redis-server, in front of the sandbox's OpenAI emulator (its own process), all on 127.0.0.1.

    python bench/gateway_replicas.py [--replicas 4] [--concurrency 200] [--budget 2.0] [--sequential 300]

1. Budget: one virtual key with ``--budget`` USD (price 1000 USD per million tokens: "hi" with max_tokens 10
   reserves 24 tokens = 0.024 USD and uses 3). Waves of ``replicas x concurrency`` requests at once, spread evenly
   over the replicas, until a whole wave is refused. Prints served/refused, the key's spend as Redis holds it, the
   spend computed from the usage the callers were answered with, and the overspend against the budget (the
   claim: under the cost of one request). Then the same with prompts of ``--words`` one-letter words, which the
   emulator bills at one token a word, about twice the gateway's ~4-characters estimate (the reservation uses a
   byte bound, so this must not overspend either).
2. Overhead: ``--sequential`` requests one after another through one replica with a virtual key (RPM, TPM and
   budget set, so every request runs the admission and settlement scripts), against a ``state = "local"``
   replica and the master key (no key checks): p50/p99 latency in ms.

One run, one machine: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
MASTER = "mk-bench-master-0001"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


@contextlib.contextmanager
def redis_server(d: str) -> Iterator[str]:
    """A real valkey/redis-server (``infermux.sandbox.redis_server``; ``d`` is unused: it keeps its own dir)."""
    from infermux.sandbox.redis_server import RedisServer

    with RedisServer() as srv:
        yield srv.url


def _stop(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _start(argv: list[str], log: Path, marker: str, env: dict[str, str]) -> tuple[subprocess.Popen[Any], str]:
    """Start ``argv`` with its output in ``log``; the URL is the last word of the first line with ``marker``."""
    out = log.open("w")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    out.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if marker in line:
                return proc, line.strip().rsplit(" ", 1)[-1]
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[:4]} exited: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    _stop(proc)
    raise RuntimeError(f"{argv[:4]} did not start within 30 s: {log.read_text()[-2000:]}")


def _config(path: Path, sandbox: str, state: str, redis_url: str) -> None:
    gw = f'state = "{state}"\nredis_url = "{redis_url}"\n' if state == "redis" else ""
    path.write_text(
        f"[gateway]\n{gw}"
        '[gateway.prices."gpt-4o-mini"]\ninput = 1000.0\noutput = 1000.0\n\n'
        f'[[endpoints]]\nname = "gpt"\nprovider = "openai"\nbase_url = "{sandbox}/v1"\n'
        'model = "gpt-4o-mini"\napi_keys = ["k"]\n'
    )


async def _key(http: aiohttp.ClientSession, url: str, **settings: Any) -> tuple[str, str]:
    """A new virtual key: (secret, id)."""
    async with http.post(url + "/admin/keys", json=settings, headers={"authorization": f"Bearer {MASTER}"}) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
        return str(created["key"]), str(created["id"])


async def _post(
    http: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any] = CHAT
) -> tuple[int, dict[str, Any], float]:
    t0 = time.perf_counter()
    async with http.post(url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}) as r:
        body = await r.json()
        return r.status, body, time.perf_counter() - t0


async def budget_run(urls: list[str], concurrency: int, budget: float, words: int = 0) -> None:
    """``words`` > 0: the prompt is that many one-letter words, which the gateway's estimate (~4 characters a
    token) counts as about half the tokens the emulator bills (one a word)."""
    body = CHAT if not words else {**CHAT, "messages": [{"role": "user", "content": " ".join(["a"] * words)}]}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as http:
        key, kid = await _key(http, urls[0], name="bench", budget=budget)
        served = refused = other = waves = 0
        costs: list[float] = []
        lat: list[float] = []
        t0 = time.perf_counter()
        for _ in range(100):
            waves += 1
            n = len(urls) * concurrency
            wave = await asyncio.gather(*(_post(http, urls[i % len(urls)], key, body) for i in range(n)))
            for status, answer, dt in wave:
                if status == 200:
                    served += 1
                    costs.append((answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]) / 1000)
                    lat.append(dt)
                elif status == 429 and answer["error"]["type"] == "insufficient_quota":
                    refused += 1
                else:
                    other += 1
            if all(s != 200 for s, _, _ in wave):
                break
        elapsed = time.perf_counter() - t0
        async with http.get(urls[-1] + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"}) as r:
            spent = next(k["spent"] for k in (await r.json())["data"] if k["id"] == kid)
    kind = f"prompts of {words} one-letter words" if words else '"hi", max_tokens 10'
    one = max(costs, default=0.0)
    print(f"budget, {kind}: {len(urls)} replicas x {concurrency} concurrent, {waves} waves in {elapsed:.1f} s")
    print(f"  served {served}, refused (insufficient_quota) {refused}, other {other}")
    print(f"  budget {budget:.3f} USD; spent (Redis) {spent:.6f}; spent from the answers' usage {sum(costs):.6f}")
    print(f"  overspend {spent - budget:+.6f} USD; one request costs up to {one:.3f} USD")
    if lat:
        lat.sort()
        print(f"  latency of served requests: p50 {lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")


async def sequential(url: str, key: str, n: int) -> tuple[float, float]:
    async with aiohttp.ClientSession() as http:
        for _ in range(20):  # warm-up (connections, script cache)
            await _post(http, url, key)
        lat = []
        for _ in range(n):
            status, body, dt = await _post(http, url, key)
            assert status == 200, body
            lat.append(dt * 1000)
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1]


async def overhead(redis_url: str, local_url: str, n: int) -> None:
    async with aiohttp.ClientSession() as http:
        limits = {"rpm": 1_000_000, "tpm": 100_000_000, "budget": 1_000_000.0}
        rkey, _ = await _key(http, redis_url, **limits)
        lkey, _ = await _key(http, local_url, **limits)
    rows = [
        ("master key (no key checks), redis replica", redis_url, MASTER),
        ("virtual key, state = local", local_url, lkey),
        ("virtual key, state = redis", redis_url, rkey),
    ]
    print(f"overhead: {n} sequential requests each (p50 / p99 ms)")
    for name, url, key in rows:
        p50, p99 = await sequential(url, key, n)
        print(f"  {name:42s} {p50:6.2f} / {p99:6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=200, help="requests at once per replica, per wave")
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--sequential", type=int, default=300)
    ap.add_argument("--words", type=int, default=40, help="prompt words of the usage-beyond-estimate run (0: skip)")
    args = ap.parse_args()
    env = {**os.environ, "INFERMUX_MASTER_KEY": MASTER, "PYTHONPATH": str(ROOT / "src")}
    procs: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory(prefix="infermux-bench-") as d, redis_server(d) as redis_url:
        tmp = Path(d)
        try:
            sb_argv = [sys.executable, "-m", "infermux.sandbox", "--host", "127.0.0.1", "--port", "0"]
            sb, sandbox = _start(sb_argv, tmp / "sandbox.log", "listening on", env)
            procs.append(sb)
            urls = []
            for state, n in (("redis", args.replicas), ("local", 1)):
                cfg = tmp / f"{state}.toml"
                _config(cfg, sandbox, state, redis_url)
                for i in range(n):
                    argv = [sys.executable, "-m", "infermux.cli", "serve", "--config", str(cfg), "--port", "0"]
                    p, url = _start(argv, tmp / f"{state}{i}.log", "listening on", env)
                    procs.append(p)
                    urls.append(url)
            print(f"load average before: {os.getloadavg()}")
            asyncio.run(budget_run(urls[: args.replicas], args.concurrency, args.budget))
            print(f"load average: {os.getloadavg()}")
            if args.words:
                asyncio.run(budget_run(urls[: args.replicas], args.concurrency, args.budget, args.words))
                print(f"load average: {os.getloadavg()}")
            asyncio.run(overhead(urls[0], urls[-1], args.sequential))
            print(f"load average after: {os.getloadavg()}")
        finally:
            for p in procs:
                _stop(p)


if __name__ == "__main__":
    main()
