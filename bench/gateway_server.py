"""Which HTTP server library the gateway runs on: aiohttp.web vs a raw asyncio + h11 server (the floor of a
Python HTTP/1.1 server), both serving the same tiny JSON POST handler (parse the body, answer a
chat.completion-sized JSON), each in its own process, driven by one aiohttp client process.

    python bench/gateway_server.py [--requests 3000] [--concurrency 32]

Prints per server: sequential p50/p99 latency (ms), req/s at the given concurrency, and the server's CPU time
per request (µs, from /proc). Small and honest: one run, one machine; say the load average with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time

REPLY = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()


def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        assert body["model"]
        return web.Response(body=REPLY, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_h11(port: int) -> None:
    import h11

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        c = h11.Connection(h11.SERVER)
        body = b""
        while True:
            ev = c.next_event()
            if ev is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:
                    break
                c.receive_data(data)
                continue
            if isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                assert json.loads(body)["model"]
                body = b""
                headers = [("content-type", "application/json"), ("content-length", str(len(REPLY)))]
                writer.write(c.send(h11.Response(status_code=200, headers=headers)) or b"")
                writer.write(c.send(h11.Data(data=REPLY)) or b"")
                writer.write(c.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                c.start_next_cycle()
            elif isinstance(ev, h11.ConnectionClosed):
                break
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(conn, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(port: int, requests: int, concurrency: int) -> tuple[float, float, float]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        for _ in range(200):  # warm-up
            async with s.post(url, data=body, headers=headers) as r:
                await r.read()
        lat = []
        for _ in range(min(requests, 1000)):
            t = time.perf_counter()
            async with s.post(url, data=body, headers=headers) as r:
                await r.read()
            lat.append(time.perf_counter() - t)
        lat.sort()

        async def worker(n: int) -> None:
            for _ in range(n):
                async with s.post(url, data=body, headers=headers) as r:
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        rps = (requests // concurrency * concurrency) / (time.perf_counter() - t0)
    return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000, rps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--serve", choices=("aiohttp", "h11"))
    ap.add_argument("--port", type=int)
    args = ap.parse_args()
    if args.serve:
        (serve_aiohttp if args.serve == "aiohttp" else serve_h11)(args.port)
        return
    print(f"load average {os.getloadavg()[0]:.2f}; {args.requests} requests at concurrency {args.concurrency}")
    print("| server | p50 ms (seq) | p99 ms (seq) | req/s | server CPU µs/request |")
    print("|---|---|---|---|---|")
    for name in ("aiohttp", "h11"):
        port = free_port()
        proc = subprocess.Popen([sys.executable, __file__, "--serve", name, "--port", str(port)])
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            cpu0 = cpu_seconds(proc.pid)
            p50, p99, rps = asyncio.run(drive(port, args.requests, args.concurrency))
            total = 200 + min(args.requests, 1000) + args.requests // args.concurrency * args.concurrency
            cpu = (cpu_seconds(proc.pid) - cpu0) / total * 1e6
            print(f"| {name} | {p50:.3f} | {p99:.3f} | {rps:.0f} | {cpu:.0f} |")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
