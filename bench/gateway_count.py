"""Deterministic per-request costs of ``infermux serve`` (the bench's configuration: master key, a virtual key
with RPM/TPM limits) in front of the fake upstream, for comparing two source trees on a busy machine where
CPU time is noise:

- ``--tool callgrind``: user-space instructions per request (valgrind's count over a run of ``--requests``
  sequential requests minus a run of ``--base`` requests, divided by the difference: start-up cancels out);
- ``--tool strace``: system calls per request (``strace -c`` attached for ``--requests`` requests).

    python bench/gateway_count.py [--src PATH] [--tool callgrind|strace] [--requests 400] [--base 100] [--stream]
                                  [--anthropic | --responses]

Needs ``valgrind`` / ``strace`` (Debian packages). Slow under valgrind (~1 min per run of 400 requests).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _server import BenchServer, gateway_bench_key

ROOT = Path(__file__).resolve().parents[1]
MASTER = "mk-bench-master-key-0001"
SERVE = "import sys; from infermux.cli import main; sys.exit(main(sys.argv[1:]))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(args: argparse.Namespace, key: str) -> tuple[str, str, dict[str, str]]:
    """The path, body and headers of the request counted."""
    chat: dict[str, object] = {"model": "m", "messages": [{"role": "user", "content": "Say hello."}]}
    chat["max_tokens"] = 16
    if args.stream:
        chat["stream"] = True
    if args.responses:  # OpenAI's Responses API (the upstream stays chat completions)
        body: dict[str, object] = {"model": "m", "input": "Say hello.", "max_output_tokens": 16}
        if args.stream:
            body["stream"] = True
        return "/v1/responses", json.dumps(body), {"authorization": f"Bearer {key}", "content-type": "application/json"}
    if args.anthropic:  # the caller speaks Anthropic's Messages (the upstream stays OpenAI's)
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"}
        return "/v1/messages", json.dumps(chat), headers
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    return "/v1/chat/completions", json.dumps(chat), headers


def run(args: argparse.Namespace, n: int, tmp: Path) -> str:
    """One gateway process, ``n`` sequential requests; the tool's summary."""
    with BenchServer(chunks=20) as up:
        cfg = tmp / "infermux.toml"
        cfg.write_text(
            f'[[endpoints]]\nname = "up"\nprovider = "openai"\nbase_url = "http://127.0.0.1:{up.port}/v1"\n'
            'model = "m"\napi_keys = ["sk-up-1"]\n\n[gateway]\nmax_tokens = 4096\n'
        )
        port = free_port()
        env = {**os.environ, "INFERMUX_MASTER_KEY": MASTER, "PYTHONPATH": args.src}
        argv = [sys.executable, "-c", SERVE, "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
        if args.tool == "callgrind":
            argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv]
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        tracer = None
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    urllib.request.urlopen(base + "/health", timeout=5).read()
                    break
                except OSError:
                    time.sleep(0.5)
            key = gateway_bench_key(base, MASTER, timeout=60)  # slow under valgrind
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            path, send, headers = _call(args, key)
            for _ in range(3):  # warm-up (first connection upstream)
                conn.request("POST", path, send, headers)
                conn.getresponse().read()
            if args.tool == "strace":
                out = tmp / "strace.txt"
                tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(proc.pid), "-o", str(out)])
                time.sleep(1.0)
            for _ in range(n):
                conn.request("POST", path, send, headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise SystemExit(f"HTTP {resp.status}")
            conn.close()
            if tracer is not None:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(30)
                return out.read_text()
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=180)
        return err.decode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--tool", choices=("callgrind", "strace"), default="callgrind")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--base", type=int, default=100)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--anthropic", action="store_true", help="call /v1/messages (Anthropic's protocol) instead")
    ap.add_argument("--responses", action="store_true", help="call /v1/responses (OpenAI's Responses API) instead")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gwcount-"))
    what = ("anthropic " if args.anthropic else "responses " if args.responses else "") + (
        "stream" if args.stream else "json"
    )
    if args.tool == "strace":
        text = run(args, args.requests, tmp)
        print(f"{args.src} ({what}): system calls per request over {args.requests} requests")
        for line in text.splitlines():
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m:
                print(f"  {m.group(2)}: {int(m.group(1)) / args.requests:.2f}")
        return
    counts = []
    for n in (args.base, args.requests):
        m = re.search(r"Collected : (\d+)", run(args, n, tmp))
        if m is None:
            raise SystemExit("no callgrind summary")
        counts.append(int(m.group(1)))
    per = (counts[1] - counts[0]) / (args.requests - args.base)
    print(f"{args.src} ({what}): {per:,.0f} instructions per request (user space, callgrind)")


if __name__ == "__main__":
    main()
