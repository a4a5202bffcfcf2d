"""Which async HTTP client should sit under infermux's transport seam? Measured, on this machine.

    python bench/transport.py [--seq 500] [--conc 2000] [--rounds 3] [--concurrency 50]

Candidates: aiohttp, httpx.AsyncClient, httpx2.AsyncClient (the httpx fork the openai SDK now uses; skipped
if not installed), infermux's two transports through the seam (``H1Transport``, the default, and
``AiohttpTransport``: HTTPRequest in, ``read()`` out) and a raw asyncio-socket floor (prebuilt HTTP/1.1, one
keep-alive connection per worker). ``--loop uvloop`` runs them all on uvloop (as ``infermux serve`` does).
Each client POSTs a JSON chat body (json.dumps per request) and json.loads the answer, against a fixed fast
server in a SUBPROCESS (bench/_server.py), so the CPU measured here is client CPU only.

Per client: client CPU per request (time.process_time delta / N) sequentially and at concurrency C,
wall-clock throughput at C, and median / p99 latency. Clients run round-robin for ``--rounds`` rounds
(to spread machine noise evenly) and each figure is the median over rounds. Ratios are vs aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from _server import BenchServer, cpu_count_line

BODY: dict[str, Any] = {
    "model": "m",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 16,
    "temperature": 0,
}
PATH = "/v1/chat/completions"
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}

Send = Callable[[], Awaitable[dict[str, Any]]]


class Client:
    name = "?"

    async def open(self, base: str, concurrency: int) -> None:
        raise NotImplementedError

    async def send(self) -> dict[str, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class AiohttpClient(Client):
    name = "aiohttp"

    async def open(self, base: str, concurrency: int) -> None:
        import aiohttp

        self._s = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2))
        self._url = base + PATH

    async def send(self) -> dict[str, Any]:
        async with self._s.post(self._url, data=json.dumps(BODY).encode(), headers=HEADERS) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
        return json.loads(data)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self._s.close()


class HttpxClient(Client):
    name = "httpx"
    module = "httpx"

    async def open(self, base: str, concurrency: int) -> None:
        import importlib

        mod: Any = importlib.import_module(self.module)
        limits = mod.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
        self._c = mod.AsyncClient(base_url=base, limits=limits, timeout=30.0)

    async def send(self) -> dict[str, Any]:
        resp = await self._c.post(PATH, content=json.dumps(BODY).encode(), headers=HEADERS)
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}")
        return json.loads(resp.content)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self._c.aclose()


class Httpx2Client(HttpxClient):
    name = "httpx2"
    module = "httpx2"


class SeamClient(Client):
    """An infermux transport through the seam (what the endpoint does per call, without the engine)."""

    name = "infermux h1"
    kind = "h1"

    async def open(self, base: str, concurrency: int) -> None:
        from infermux.transport import make_transport

        self._t = make_transport(self.kind, max_connections=concurrency * 2)
        self._url = base + PATH

    async def send(self) -> dict[str, Any]:
        from infermux.transport import HTTPRequest

        resp = await self._t.send(HTTPRequest("POST", self._url, dict(HEADERS), json.dumps(BODY).encode()))
        data = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return json.loads(data)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self._t.aclose()


class SeamAiohttpClient(SeamClient):
    name = "infermux aiohttp"
    kind = "aiohttp"


class RawClient(Client):
    """The floor: hand-written HTTP/1.1 over asyncio streams, a pool of keep-alive connections."""

    name = "raw asyncio"

    async def open(self, base: str, concurrency: int) -> None:
        self._host, port = base.rsplit("//", 1)[1].split(":")
        self._port = int(port)
        self._pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self) -> dict[str, Any]:
        conn = self._pool.pop() if self._pool else await asyncio.open_connection(self._host, self._port)
        reader, writer = conn
        body = json.dumps(BODY).encode()
        head = f"POST {PATH} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Content-Type: application/json\r\nAuthorization: Bearer sk-bench\r\n\r\n" + body)
        head_in = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head_in.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        data = await reader.readexactly(length)
        if not head_in.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head_in[:40].decode())
        self._pool.append(conn)
        return json.loads(data)  # type: ignore[no-any-return]

    async def close(self) -> None:
        for _, writer in self._pool:
            writer.close()
        self._pool.clear()


@dataclass
class Result:
    seq_cpu_us: list[float] = field(default_factory=list)
    seq_p50_ms: list[float] = field(default_factory=list)
    seq_p99_ms: list[float] = field(default_factory=list)
    conc_cpu_us: list[float] = field(default_factory=list)
    conc_rps: list[float] = field(default_factory=list)
    conc_p50_ms: list[float] = field(default_factory=list)
    conc_p99_ms: list[float] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(client: Client, base: str, args: argparse.Namespace, res: Result) -> None:
    seq, conc, concurrency = args.seq, args.conc, args.concurrency
    await client.open(base, concurrency)
    try:
        for _ in range(50):  # warm-up: connections, imports, caches
            await client.send()
        lat: list[float] = []
        cpu0 = time.process_time()
        for _ in range(seq):
            t0 = time.perf_counter()
            out = await client.send()
            lat.append(time.perf_counter() - t0)
        res.seq_cpu_us.append((time.process_time() - cpu0) / seq * 1e6)
        assert out["object"] == "chat.completion"
        res.seq_p50_ms.append(statistics.median(lat) * 1e3)
        res.seq_p99_ms.append(pct(lat, 0.99) * 1e3)

        clat: list[float] = []
        left = conc

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                t0 = time.perf_counter()
                await client.send()
                clat.append(time.perf_counter() - t0)

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - wall0
        res.conc_cpu_us.append((time.process_time() - cpu0) / conc * 1e6)
        res.conc_rps.append(conc / wall)
        res.conc_p50_ms.append(statistics.median(clat) * 1e3)
        res.conc_p99_ms.append(pct(clat, 0.99) * 1e3)
    finally:
        await client.close()


def candidates() -> list[Client]:
    import importlib.util

    out: list[Client] = [AiohttpClient(), HttpxClient()]
    if importlib.util.find_spec("httpx2") is not None:
        out.append(Httpx2Client())
    else:
        print("httpx2: not installed, skipped (pip install httpx2)")
    out += [SeamClient(), SeamAiohttpClient(), RawClient()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="async HTTP client candidates for the transport seam")
    ap.add_argument("--seq", type=int, default=500, help="sequential requests per client per round")
    ap.add_argument("--conc", type=int, default=2000, help="requests per client per round at --concurrency")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--only", default="", help="comma-separated client names to run (default: all)")
    args = ap.parse_args()
    run: Any = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        run = uvloop.run

    clients = candidates()
    if args.only:
        keep = {n.strip() for n in args.only.split(",")} | {"aiohttp"}
        clients = [c for c in clients if c.name in keep]
    results = {c.name: Result() for c in clients}
    started = time.perf_counter()
    with BenchServer() as server:
        for _ in range(args.rounds):
            for c in clients:
                run(measure(c, server.url, args, results[c.name]))
    elapsed = time.perf_counter() - started
    total = args.rounds * len(clients) * (50 + args.seq + args.conc)

    med = {name: {k: statistics.median(v) for k, v in vars(r).items()} for name, r in results.items()}
    ref = med["aiohttp"]
    print(
        f"\n{cpu_count_line()}; {total} requests in {elapsed:.1f} s; median of {args.rounds} rounds; loop {args.loop}"
    )
    print(f"sequential: {args.seq} req/round; concurrency {args.concurrency}: {args.conc} req/round; ratios vs aiohttp")
    cols = [
        ("CPU/req seq µs", "seq_cpu_us"),
        ("p50 seq ms", "seq_p50_ms"),
        ("p99 seq ms", "seq_p99_ms"),
        (f"CPU/req c={args.concurrency} µs", "conc_cpu_us"),
        (f"req/s c={args.concurrency}", "conc_rps"),
        (f"p50 c={args.concurrency} ms", "conc_p50_ms"),
        (f"p99 c={args.concurrency} ms", "conc_p99_ms"),
    ]
    print(f"{'client':<17}" + "".join(f"{h:>22}" for h, _ in cols))
    for name, m in med.items():
        cells = []
        for _, key in cols:
            value, ratio = m[key], m[key] / ref[key] if ref[key] else float("nan")
            fmt = ".0f" if key == "conc_rps" else ".1f" if key.endswith("_us") else ".3f"
            cells.append(f"{value:>12{fmt}} ({ratio:4.2f}x)")
        print(f"{name:<17}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
