"""Where the gateway's CPU goes: ``infermux serve`` (the bench's configuration: master key, a virtual key with
RPM/TPM limits, metrics) in front of the fake upstream, driven by wrk; prints the server's CPU per request (from
/proc, over all the requests) and, with ``--profile``, the top functions of a cProfile run (cumulative and own time,
calls per request).

    python bench/gateway_profile.py [--requests-seconds 5] [--concurrency 8] [--stream] [--profile]

A development tool (not a benchmark of record): figures vary with the machine's load, printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _server import BenchServer, gateway_bench_key

ROOT = Path(__file__).resolve().parents[1]
MASTER = "mk-bench-master-key-0001"
SERVE = """
import cProfile, os, signal, sys
from infermux.cli import main
prof = cProfile.Profile() if os.environ.get("GWPROF_OUT") else None
def dump(*_):
    if prof is not None:
        prof.disable(); prof.dump_stats(os.environ["GWPROF_OUT"]); print("dumped", flush=True)
def start(*_):
    if prof is not None:
        prof.enable()
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, dump)
sys.exit(main(sys.argv[1:]))
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, key: str, *, seconds: int, conc: int, stream: bool, tmp: Path) -> int:
    body = {"model": "m", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
    if stream:
        body["stream"] = True
    lua = tmp / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["content-type"] = "application/json"\n'
        f'wrk.headers["authorization"] = "Bearer {key}"\n'
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conc}", f"-d{seconds}s", "-s", str(lua), f"http://127.0.0.1:{port}/v1/chat/completions"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    if "Non-2xx" in out:
        raise SystemExit(out)
    return int(m.group(1))


def report(proc: subprocess.Popen[bytes], out: Path, top: int, n: int) -> None:
    import pstats

    os.kill(proc.pid, signal.SIGUSR2)
    assert proc.stdout is not None
    proc.stdout.readline()
    st = pstats.Stats(str(out))
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(top)
    print(f"(calls per request: divide ncalls by {n})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=45)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gwprof-"))
    with BenchServer(chunks=args.chunks) as up:
        cfg = tmp / "infermux.toml"
        cfg.write_text(
            f'[[endpoints]]\nname = "up"\nprovider = "openai"\nbase_url = "http://127.0.0.1:{up.port}/v1"\n'
            'model = "m"\napi_keys = ["sk-up-1"]\n\n[gateway]\nmax_tokens = 4096\n'
        )
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "INFERMUX_MASTER_KEY": MASTER,
            "PYTHONPATH": os.environ.get("GWPROF_SRC", str(ROOT / "src")),
        }
        if args.profile:
            env["GWPROF_OUT"] = str(tmp / "prof.out")
        argv = [sys.executable, "-c", SERVE, "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/health", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            key = gateway_bench_key(base, MASTER)
            wrk(port, key, seconds=1, conc=args.concurrency, stream=args.stream, tmp=tmp)  # warm-up
            if args.profile:
                os.kill(proc.pid, signal.SIGUSR1)
                time.sleep(0.2)
            c0 = cpu_seconds(proc.pid)
            n = wrk(port, key, seconds=args.seconds, conc=args.concurrency, stream=args.stream, tmp=tmp)
            cpu = cpu_seconds(proc.pid) - c0
            print(
                f"load {os.getloadavg()}; {'stream' if args.stream else 'json'} c={args.concurrency}: {n} requests, "
                f"{n / args.seconds:.0f} req/s, server CPU {cpu / n * 1e6:.0f} us/request"
            )
            if args.profile:
                report(proc, tmp / "prof.out", args.top, n)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
