"""Per-call cost of the core engine alone (``AsyncClient.chat`` -> router -> endpoint -> queue/breaker/keys/retry
-> provider -> transport and back), outside the gateway, against the fake upstream (``bench/_server.py``, its own
process, so its CPU is not counted):

- ``--mode cpu`` (default): for each concurrency in ``--conc`` (default 1,2,4,16), ``--calls`` calls kept
  ``C`` at a time; the process's CPU per call, calls/s, and the event loop's wake-ups (selector polls) and
  tasks created per call. Wall-clock figures depend on the machine's load (printed with them).
- ``--mode callgrind``: user-space instructions per call (valgrind's count over a run of ``--calls`` calls
  minus a run of ``--base`` calls, divided by the difference: start-up cancels out); load-independent.
- ``--mode profile``: cProfile's top functions over ``--calls`` calls (``calls/call`` = ncalls per call).

    python bench/engine_count.py [--src PATH] [--mode cpu|callgrind|profile] [--conc 1,2,4,16] [--calls 4000]
                                 [--base 500] [--loop uvloop|asyncio] [--stream]

The client is configured as the gateway's is (one OpenAI-compatible endpoint with one API key, a call timeout,
a ready ``ChatRequest``); ``--src`` runs another source tree (e.g. main's) for an A/B.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _server import CHAT_COMPLETION, BenchServer

ROOT = Path(__file__).resolve().parents[1]


class _Answer:
    """The fake upstream's JSON answer, in process (``--transport mock``: the engine's cost without HTTP)."""

    __slots__ = ()
    status = 200
    headers = {"content-type": "application/json", "x-request-id": "req-bench"}

    async def read(self) -> bytes:
        return _BODY

    async def iter_chunks(self) -> Any:
        yield _BODY

    async def aclose(self) -> None:
        return None


class _StreamAnswer(_Answer):
    """The fake upstream's SSE answer (20 content events, a finish, a usage event, ``[DONE]``), one read each."""

    __slots__ = ()
    headers = {"content-type": "text/event-stream", "x-request-id": "req-bench"}

    async def iter_chunks(self) -> Any:
        for event in _EVENTS:
            yield event


class _MockTransport:
    async def send(self, request: Any) -> Any:
        return _StreamAnswer() if request.headers.get("accept") == "text/event-stream" else _Answer()

    async def aclose(self) -> None:
        return None


_BODY = json.dumps(CHAT_COMPLETION).encode()


def _sse_events(chunks: int = 20) -> list[bytes]:
    base = {"id": "chatcmpl-bench-0002", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    events += [
        {**base, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
        for i in range(chunks)
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": chunks}})
    out = [b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events]
    return [*out, b"data: [DONE]\n\n"]


_EVENTS = _sse_events()


async def _drive(url: str, conc: int, calls: int, stream: bool, counts: dict[str, int]) -> float:
    import infermux
    from infermux.types import ChatRequest, Message

    base = "http://127.0.0.1:9/v1" if url == "mock" else url + "/v1"
    transport: Any = _MockTransport() if url == "mock" else None
    cfg = infermux.EndpointConfig(name="up", provider="openai", base_url=base, model="m", api_keys=("sk-1",))
    req = ChatRequest(messages=(Message("user", "Say hello."),), max_tokens=16)
    async with infermux.AsyncClient([cfg], trust_env=False, transport=transport) as client:

        async def one() -> None:
            if stream:
                async with client.stream(req, timeout=600.0) as s:
                    async for _ in s:
                        pass
            else:
                await client.chat(req, timeout=600.0)

        for _ in range(max(conc, 4)):  # warm-up: connections open, caches filled
            await one()
        loop = asyncio.get_running_loop()
        sel: Any = getattr(loop, "_selector", None)
        if sel is not None:  # asyncio's loop: count its polls (uvloop has no Python selector)
            select = sel.select

            def counted(timeout: float | None = None) -> Any:
                counts["polls"] += 1
                return select(timeout)

            sel.select = counted
        factory = loop.get_task_factory()

        def task_factory(lp: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> Any:
            counts["tasks"] += 1
            return asyncio.Task(coro, loop=lp, **kw) if factory is None else factory(lp, coro, **kw)

        loop.set_task_factory(task_factory)
        left = calls
        counts["polls"] = counts["tasks"] = 0
        t0, cpu0 = time.perf_counter(), time.process_time()

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed = time.perf_counter() - t0
        counts["cpu_us"] = int((time.process_time() - cpu0) * 1e6)
        loop.set_task_factory(factory)
        if sel is not None:
            sel.select = select
        counts["tasks"] -= conc  # the workers themselves
    return elapsed


def _run(url: str, conc: int, calls: int, stream: bool, loop_kind: str) -> dict[str, float]:
    counts = {"polls": 0, "tasks": 0}
    if loop_kind == "uvloop":
        import uvloop

        elapsed = uvloop.run(_drive(url, conc, calls, stream, counts))
    else:
        elapsed = asyncio.run(_drive(url, conc, calls, stream, counts))
    return {"cpu": counts.pop("cpu_us") / 1e6, "elapsed": elapsed, **counts}


def child(args: argparse.Namespace) -> None:
    """Run in a fresh process (``--child``): one measurement, one JSON line."""
    sys.path.insert(0, args.src)
    if args.mode == "profile":
        prof = cProfile.Profile()
        prof.enable()
        _run(args.url, args.conc_one, args.calls, args.stream, args.loop)
        prof.disable()
        st = pstats.Stats(prof)
        rows = []
        for (file, line, fn), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
            rows.append((ct, tt, nc, f"{Path(file).name}:{line}:{fn}"))
        rows.sort(reverse=True)
        for ct, tt, nc, name in rows[: args.top]:
            per = 1e6 / args.calls
            print(f"{nc / args.calls:8.2f} calls/call  own {tt * per:7.1f} us  cum {ct * per:7.1f} us  {name}")
        return
    out = _run(args.url, args.conc_one, args.calls, args.stream, args.loop)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--mode", choices=("cpu", "callgrind", "profile"), default="cpu")
    ap.add_argument("--conc", default="1,2,4,16")
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--base", type=int, default=500)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--transport", choices=("http", "mock"), default="http", help="mock: no HTTP (engine only)")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--conc-one", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    env = {**os.environ, "PYTHONPATH": args.src}
    what = ("stream" if args.stream else "json") + (", mock transport" if args.transport == "mock" else "")
    print(f"{args.src} ({what}, {args.loop}); load average {os.getloadavg()}; {time.strftime('%H:%M:%S')} UTC")
    with BenchServer(chunks=20) as up:
        url = "mock" if args.transport == "mock" else up.url
        base = [sys.executable, __file__, "--child", "--url", url, "--src", args.src, "--loop", args.loop]
        base += ["--mode", args.mode] + (["--stream"] if args.stream else [])
        for conc in (int(c) for c in args.conc.split(",")):
            argv = [*base, "--conc-one", str(conc)]
            if args.mode == "profile":
                subprocess.run([*argv, "--calls", str(args.calls), "--top", str(args.top)], env=env, check=True)
                continue
            if args.mode == "callgrind":
                counts = []
                for n in (args.base, args.calls):
                    vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv, "--calls", str(n)]
                    err = subprocess.run(vg, env=env, capture_output=True, check=True).stderr.decode()
                    m = re.search(r"Collected : (\d+)", err)
                    if m is None:
                        raise SystemExit("no callgrind summary")
                    counts.append(int(m.group(1)))
                per = (counts[1] - counts[0]) / (args.calls - args.base)
                print(f"  concurrency {conc}: {per:,.0f} instructions per call (user space, callgrind)")
                continue
            line = subprocess.run([*argv, "--calls", str(args.calls)], env=env, capture_output=True, check=True)
            r = json.loads(line.stdout)
            n = args.calls
            print(
                f"  concurrency {conc:3d}: {r['cpu'] / n * 1e6:6.0f} us CPU/call"
                f"  {n / r['elapsed']:7.0f} calls/s  {r['polls'] / n:5.2f} polls/call  {r['tasks'] / n:5.2f} tasks/call"
                f"  load {os.getloadavg()[0]:.2f}"
            )


if __name__ == "__main__":
    main()
