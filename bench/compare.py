"""infermux vs the official openai SDK vs LiteLLM (acompletion and Router), against one fast local server.

    python bench/compare.py [--quick] [--litellm-python PATH] [--only infermux,openai,...]

Every subject runs in its own fresh subprocess (LiteLLM in its own venv: it must never be a project
dependency; default ``.tmp/litellm-venv/bin/python``, create it with
``python3 -m venv .tmp/litellm-venv && .tmp/litellm-venv/bin/pip install litellm``). The server
(bench/_server.py) runs in another subprocess, so client CPU is the subject's own.

Measured: import time (in-process perf_counter around the import, median of N fresh processes), RSS
after import (VmRSS), client CPU per request and latency (sequential), throughput and CPU per request
at concurrency C, and the time and CPU to consume a ~200-chunk SSE stream. A subject that cannot run
shows ``n/a: <reason>``. The last table checks the targets of the performance issue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _server import BenchServer, cpu_count_line

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LITELLM_PY = ROOT / ".tmp" / "litellm-venv" / "bin" / "python"
MESSAGES = [{"role": "user", "content": "Say hello."}]
SUBJECTS = ("infermux", "openai", "litellm", "litellm-router")
IMPORTS = {
    "infermux": "import infermux; infermux.AsyncClient; infermux.EndpointConfig",
    "openai": "import openai; openai.AsyncOpenAI",
    "litellm": "import litellm; litellm.acompletion; litellm.Router",
}
_IMPORT_PROBE = """
import json, time
def rss():
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('VmRSS:'))
before = rss(); t0 = time.perf_counter()
{stmt}
t = time.perf_counter() - t0
print(json.dumps({{"import_s": t, "rss_kb": rss(), "rss_before_kb": before}}))
"""


# --------------------------------------------------------------------------- subjects (run in the worker)


Subject = tuple[Any, Any, Any]  # (chat, stream, close) coroutine functions


def infermux_subject(url: str) -> Subject:
    import infermux

    cfg = infermux.EndpointConfig(name="local", provider="openai", base_url=url + "/v1", model="m", api_keys=["sk-x"])
    client = infermux.AsyncClient(endpoints=[cfg])

    async def chat() -> str:
        return (await client.chat(MESSAGES, max_tokens=16)).text

    async def stream() -> int:
        n = 0
        async for _ev in client.stream(MESSAGES, max_tokens=16):
            n += 1
        return n

    return chat, stream, client.aclose


def openai_subject(url: str) -> Subject:
    import openai

    oc = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-x", max_retries=0)
    create: Any = oc.chat.completions.create

    async def chat() -> str:
        r = await create(model="m", messages=MESSAGES, max_tokens=16)
        return r.choices[0].message.content or ""

    async def stream() -> int:
        n = 0
        async for _chunk in await create(model="m", messages=MESSAGES, max_tokens=16, stream=True):
            n += 1
        return n

    return chat, stream, oc.close


def litellm_subject(url: str, router: bool) -> Subject:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    params = {"model": "openai/m", "api_base": url + "/v1", "api_key": "sk-x"}
    call: Any
    if router:
        call = litellm.Router(model_list=[{"model_name": "m", "litellm_params": params}], num_retries=0).acompletion
        kwargs: dict[str, Any] = {"model": "m"}
    else:
        call, kwargs = litellm.acompletion, {**params, "num_retries": 0}

    async def chat() -> str:
        r = await call(messages=MESSAGES, max_tokens=16, **kwargs)
        return str(r.choices[0].message.content)

    async def stream() -> int:
        n = 0
        async for _chunk in await call(messages=MESSAGES, max_tokens=16, stream=True, **kwargs):
            n += 1
        return n

    async def close() -> None:
        closer = getattr(litellm, "close_litellm_async_clients", None)
        if closer is not None:
            await closer()

    return chat, stream, close


def make_subject(name: str, url: str) -> Subject:
    if name == "infermux":
        return infermux_subject(url)
    if name == "openai":
        return openai_subject(url)
    if name in {"litellm", "litellm-router"}:
        return litellm_subject(url, router=name == "litellm-router")
    raise SystemExit(f"unknown subject {name!r}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    chat, stream, close = make_subject(args.worker, args.url)
    out: dict[str, Any] = {}
    try:
        for _ in range(30):
            text = await chat()
        if not text:
            raise RuntimeError("empty completion text")
        lat: list[float] = []
        cpu0 = time.process_time()
        for _ in range(args.seq):
            t0 = time.perf_counter()
            await chat()
            lat.append(time.perf_counter() - t0)
        out["cpu_seq_us"] = (time.process_time() - cpu0) / args.seq * 1e6
        out["p50_ms"] = statistics.median(lat) * 1e3
        out["p99_ms"] = pct(lat, 0.99) * 1e3

        left = args.conc

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await chat()

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        out["rps_conc"] = args.conc / (time.perf_counter() - wall0)
        out["cpu_conc_us"] = (time.process_time() - cpu0) / args.conc * 1e6

        await stream()  # warm-up
        walls, cpus, events = [], [], 0
        for _ in range(args.streams):
            cpu0, t0 = time.process_time(), time.perf_counter()
            events = await stream()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - cpu0)
        out["stream_ms"] = statistics.median(walls) * 1e3
        out["stream_cpu_ms"] = statistics.median(cpus) * 1e3
        out["stream_events"] = events
    finally:
        await close()
    return out


# --------------------------------------------------------------------------- orchestration


def _run_json(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:160]}"}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def measure_import(python: str, module: str, reps: int, env: dict[str, str]) -> dict[str, Any]:
    runs = [_run_json([python, "-c", _IMPORT_PROBE.format(stmt=IMPORTS[module])], 120, env) for _ in range(reps)]
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        return {"error": errors[0]}
    return {
        "import_ms": statistics.median(r["import_s"] for r in runs) * 1e3,
        "rss_mb": statistics.median(r["rss_kb"] for r in runs) / 1024,
        "rss_delta_mb": statistics.median(r["rss_kb"] - r["rss_before_kb"] for r in runs) / 1024,
    }


COLUMNS = [
    ("import ms", "import_ms", ".0f"),
    ("RSS MB", "rss_mb", ".1f"),
    ("+RSS MB", "rss_delta_mb", ".1f"),
    ("CPU/req µs", "cpu_seq_us", ".0f"),
    ("p50 ms", "p50_ms", ".3f"),
    ("p99 ms", "p99_ms", ".3f"),
    ("req/s c50", "rps_conc", ".0f"),
    ("CPU/req c50", "cpu_conc_us", ".0f"),
    ("stream ms", "stream_ms", ".2f"),
    ("stream CPU ms", "stream_cpu_ms", ".2f"),
]


def print_tables(res: dict[str, dict[str, Any]], concurrency: int) -> None:
    print(f"{'subject':<16}" + "".join(f"{h.replace('c50', f'c{concurrency}'):>15}" for h, _, _ in COLUMNS))
    for name, r in res.items():
        if "error" in r and len(r) == 1:
            print(f"{name:<16}  n/a: {r['error']}")
            continue
        cells = [format(r[k], f) if k in r else "n/a" for _, k, f in COLUMNS]
        print(f"{name:<16}" + "".join(f"{c:>15}" for c in cells))
        for where, msg in r.get("errors", {}).items():
            print(f"{'':<16}  n/a ({where}): {msg}")

    events = {n: r["stream_events"] for n, r in res.items() if "stream_events" in r}
    shown = ", ".join(f"{n}={v}" for n, v in events.items())
    print(f"items per stream (chunks or events, as each library yields them): {shown}")

    def ratio(a: str, b: str, key: str) -> float | None:
        x, y = res.get(a, {}).get(key), res.get(b, {}).get(key)
        return x / y if x is not None and y else None

    print("\nratios:")
    for b in ("openai", "litellm", "litellm-router"):
        cells = []
        for h, k, _ in COLUMNS:
            r = ratio("infermux", b, k)
            cells.append(f"{h}={r:.2f}x" if r is not None else f"{h}=n/a")
        print(f"  infermux/{b}: " + ", ".join(cells))

    targets = [
        ("client CPU/req (sequential) <= 0.5x openai", ratio("infermux", "openai", "cpu_seq_us"), 0.5, "le"),
        (f"throughput c={concurrency} >= 2x openai", ratio("infermux", "openai", "rps_conc"), 2.0, "ge"),
        (
            f"throughput c={concurrency} >= 4x LiteLLM Router",
            ratio("infermux", "litellm-router", "rps_conc"),
            4.0,
            "ge",
        ),
        ("import time <= 0.25x openai", ratio("infermux", "openai", "import_ms"), 0.25, "le"),
        ("RSS after import <= 0.5x openai", ratio("infermux", "openai", "rss_mb"), 0.5, "le"),
    ]
    print("\ntargets (from the issue):")
    for label, value, bound, how in targets:
        if value is None:
            print(f"  {label:<48} n/a")
            continue
        ok = value <= bound if how == "le" else value >= bound
        print(f"  {label:<48} {value:6.2f}x  {'PASS' if ok else 'FAIL'}")


def measure_subject(name: str, python: str, url: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    r: dict[str, Any] = {}
    errors: dict[str, str] = {}
    imp = measure_import(python, name.split("-", maxsplit=1)[0], args.import_reps, env)
    if "error" in imp:
        errors["import"] = imp["error"]
    else:
        r.update(imp)
    argv = [python, str(Path(__file__).resolve()), "--worker", name, "--url", url]
    argv += ["--seq", str(args.seq), "--conc", str(args.conc), "--concurrency", str(args.concurrency)]
    argv += ["--streams", str(args.streams)]
    run = _run_json(argv, 600, env)
    if "error" in run:
        errors["requests"] = run["error"]
    else:
        r.update(run)
    if errors:
        r["errors"] = errors
    return r


def measure_all(args: argparse.Namespace, url: str, litellm_py: str | None) -> dict[str, dict[str, Any]]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    res: dict[str, dict[str, Any]] = {}
    for name in [s.strip() for s in args.only.split(",") if s.strip()]:
        python = litellm_py if name.startswith("litellm") else sys.executable
        if python is None:
            res[name] = {"error": "no LiteLLM venv (pass --litellm-python or create .tmp/litellm-venv)"}
            continue
        res[name] = measure_subject(name, python, url, args, env)
        print(f"  measured {name} ({time.perf_counter() - started:.0f} s)", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description="infermux vs openai SDK vs LiteLLM")
    ap.add_argument("--quick", action="store_true", help="fewer requests and import runs (~1 min)")
    ap.add_argument(
        "--litellm-python", default=None, help=f"python of a venv with litellm (default {DEFAULT_LITELLM_PY})"
    )
    ap.add_argument("--only", default=",".join(SUBJECTS), help="comma-separated subset of " + ",".join(SUBJECTS))
    ap.add_argument("--seq", type=int, default=None)
    ap.add_argument("--conc", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--streams", type=int, default=None)
    ap.add_argument("--import-reps", type=int, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--url", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    quick = args.quick
    args.seq = args.seq or (100 if quick else 300)
    args.conc = args.conc or (300 if quick else 1000)
    args.streams = args.streams or (5 if quick else 20)
    args.import_reps = args.import_reps or (3 if quick else 5)

    if args.worker:
        try:
            print(json.dumps(asyncio.run(run_worker(args))))
        except Exception as exc:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:300]}))
        return

    litellm_py = args.litellm_python or (str(DEFAULT_LITELLM_PY) if DEFAULT_LITELLM_PY.exists() else None)
    started = time.perf_counter()
    with BenchServer() as server:
        res = measure_all(args, server.url, litellm_py)
    print(f"\n{cpu_count_line()}; {time.perf_counter() - started:.0f} s")
    print(
        f"sequential {args.seq} req, {args.conc} req at concurrency {args.concurrency}, "
        f"{args.streams} streams of {server.chunks} chunks, imports median of {args.import_reps}"
    )
    print_tables(res, args.concurrency)


if __name__ == "__main__":
    main()
