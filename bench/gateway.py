"""What the gateway adds: infermux serve vs a direct call, LiteLLM proxy and nginx, against one fake upstream.

    python bench/gateway.py [--quick] [--litellm-python PATH] [--json FILE]

Processes (all on 127.0.0.1): the fake upstream (bench/_server.py: a fixed OpenAI chat.completion, or an SSE
stream of ``--chunks`` events), one server process per peer in front of it, and the load generator (wrk, one
thread, from Debian's ``wrk`` package; this script itself for the streams). The peers:

- ``direct``: the load generator talks to the upstream (its figures are the client's and upstream's own cost,
  the floor every "added" figure is taken from);
- ``nginx``: one worker, ``proxy_pass`` with a keep-alive upstream pool, no buffering (the floor of a proxy);
  skipped with a message when ``nginx`` is not installed;
- ``infermux``: ``infermux serve`` (one process), the whole engine on: the master key set, requests sent with a
  virtual key that has RPM/TPM limits (key check, limits), router, queue, breaker, key pool, retries, stats and
  metrics; ``/metrics`` is scraped once at the end to show it is live;
- ``litellm``: ``litellm --config`` (LiteLLM proxy, one worker, master key, from its own venv: ``python3 -m venv
  .tmp/litellm-venv && .tmp/litellm-venv/bin/pip install 'litellm[proxy]'`` or ``--litellm-python PATH``);
  skipped with a message when missing.

All peers are started first, then measured in turns for ``--rounds`` rounds (the machine's load drifts alike
for all); each figure is the median over the rounds, the rounds' values are printed too.
Measured per peer: latency at one request at a time (wrk -c1, p50/p99), req/s at concurrency 1..64 and the best
one whose p99 stays under 20 ms (per worker: every peer runs one server process), the server's CPU per request
there (from /proc), stream time to first byte (time to the first SSE event, sequential, this script's raw-socket
client), and the server's RSS (VmRSS of its process tree) at the end. "added" = peer - direct. Prints a table,
the issue's targets, and a last line of JSON. Figures vary with the machine's load: it is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _server import BenchServer, cpu_count_line, gateway_bench_key

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LITELLM_PY = ROOT / ".tmp" / "litellm-venv" / "bin" / "python"
MASTER = "mk-bench-master-key-0001"
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16})
STREAM_BODY = json.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16, "stream": True}
)
PATH = "/v1/chat/completions"
P99_LIMIT_MS = 20.0
PEERS = ("direct", "nginx", "infermux", "litellm")


@dataclass
class Peer:
    name: str
    port: int
    pid: int | None  # the server process (None: direct)
    headers: dict[str, str] = field(default_factory=dict)
    note: str = ""
    metrics_url: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, headers: dict[str, str] | None = None, proc: Any = None) -> None:
    end = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as r:
                if r.status == 200:
                    return
        except OSError as e:  # not up yet (refused, reset, HTTP error): the last one is reported at the deadline
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s: {last}")


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def stop_proc(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextmanager
def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[Any]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        stop_proc(proc)


# ---------------------------------------------------------------------------------------------- the peers


@contextmanager
def peer_direct(up: int, tmp: Path, args: argparse.Namespace) -> Iterator[Peer]:
    yield Peer("direct", up, None)


@contextmanager
def peer_nginx(up: int, tmp: Path, args: argparse.Namespace) -> Iterator[Peer]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        raise LookupError("nginx is not installed (apt-get install -y nginx)")
    port = free_port()
    d = tmp / "nginx"
    d.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(
        f"""{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream up {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""
    )
    with spawn([nginx, "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"], d / "out.log") as proc:
        wait_http(f"http://127.0.0.1:{port}/v1/models", 10, proc=proc)
        yield Peer("nginx", port, proc.pid, note="1 worker, keep-alive pool, no buffering")


@contextmanager
def peer_infermux(up: int, tmp: Path, args: argparse.Namespace) -> Iterator[Peer]:
    port = free_port()
    cfg = tmp / "infermux.toml"
    cfg.write_text(
        f"""[[endpoints]]
name = "up"
provider = "openai"
base_url = "http://127.0.0.1:{up}/v1"
model = "m"
api_keys = ["sk-up-1"]

[gateway]
max_tokens = 4096
"""
    )
    env = {**os.environ, "INFERMUX_MASTER_KEY": MASTER, "PYTHONPATH": str(ROOT / "src")}
    serve = "import sys; from infermux.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", serve, "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
    with spawn(argv, tmp / "infermux.log", env) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/health", 30, proc=proc)
        key = gateway_bench_key(base, MASTER)
        yield Peer(
            "infermux",
            port,
            proc.pid,
            {"authorization": f"Bearer {key}"},
            note="1 process; virtual key with rpm/tpm limits",
            metrics_url=base + "/metrics",
        )


@contextmanager
def peer_litellm(up: int, tmp: Path, args: argparse.Namespace) -> Iterator[Peer]:
    py = Path(args.litellm_python)
    exe = py.parent / "litellm"
    if not py.exists() or not exe.exists():
        raise LookupError(
            f"no LiteLLM proxy at {exe} (python3 -m venv .tmp/litellm-venv && .tmp/litellm-venv/bin/pip install "
            "'litellm[proxy]', or pass --litellm-python)"
        )
    port = free_port()
    cfg = tmp / "litellm.yaml"
    cfg.write_text(
        f"""model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      api_base: http://127.0.0.1:{up}/v1
      api_key: sk-up-1
litellm_settings:
  telemetry: false
  num_retries: 0
general_settings:
  master_key: sk-litellm-{MASTER}
"""
    )
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "NO_DOCS": "True"}
    env.pop("PYTHONPATH", None)
    argv = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    with spawn(argv, tmp / "litellm.log", env) as proc:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", 120, proc=proc)
        yield Peer("litellm", port, proc.pid, {"authorization": f"Bearer sk-litellm-{MASTER}"}, note="1 worker")


PEER_START: dict[str, Callable[[int, Path, argparse.Namespace], Any]] = {
    "direct": peer_direct,
    "nginx": peer_nginx,
    "infermux": peer_infermux,
    "litellm": peer_litellm,
}

# ---------------------------------------------------------------------------------------------- load


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if m is None:
        raise ValueError(f"cannot read wrk's latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(peer: Peer, tmp: Path, connections: int, seconds: float) -> dict[str, float]:
    """One wrk run (1 thread): req/s, p50, p99 (ms), and errors (non-2xx + socket errors)."""
    script = tmp / "post.lua"
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(BODY)}",
        'wrk.headers["content-type"] = "application/json"',
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in peer.headers.items()]
    script.write_text("\n".join(lines) + "\n")
    url = f"http://127.0.0.1:{peer.port}{PATH}"
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    cpu0 = cpu_seconds(peer.pid) if peer.pid else 0.0
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    cpu1 = cpu_seconds(peer.pid) if peer.pid else 0.0
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    return {
        "conc": connections,
        "rps": rps,
        "p50": _ms(lat["50"]) if "50" in lat else float("inf"),  # no answer at all (all timed out)
        "p99": _ms(lat["99"]) if "99" in lat else float("inf"),
        "errors": errors,
        "requests": total,
        "cpu_us": (cpu1 - cpu0) / total * 1e6 if total and peer.pid else float("nan"),
    }


def _read_stream(sock: socket.socket, buf: bytearray) -> float | None:
    """Read one chunked SSE response; the perf_counter when the first event's bytes arrived."""
    first = None
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        status = head.split(b"\r\n", 1)[0]
        raise RuntimeError(f"stream answered {status!r}")
    if b"chunked" not in head.lower():
        raise RuntimeError("stream is not chunked")
    body = bytearray(rest)
    while True:
        if first is None and b"data:" in body:
            first = time.perf_counter()
        if body.endswith(b"\r\n0\r\n\r\n") or body == b"0\r\n\r\n":
            buf.clear()
            return first
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("stream closed before its end")
        body += data


def ttfb(peer: Peer, n: int, warmup: int) -> dict[str, float]:
    """Sequential streams on one keep-alive connection: time to the first SSE event, and to the end."""
    head = f"POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1:{peer.port}\r\ncontent-type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in peer.headers.items())
    req = (head + f"content-length: {len(STREAM_BODY)}\r\n\r\n" + STREAM_BODY).encode()
    firsts, totals = [], []
    with socket.create_connection(("127.0.0.1", peer.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        for i in range(warmup + n):
            t0 = time.perf_counter()
            sock.sendall(req)
            first = _read_stream(sock, buf)
            t1 = time.perf_counter()
            if first is None:
                raise RuntimeError("stream had no data event")
            if i >= warmup:
                firsts.append((first - t0) * 1e3)
                totals.append((t1 - t0) * 1e3)
    firsts.sort()
    return {
        "ttfb_p50": statistics.median(firsts),
        "ttfb_p99": firsts[min(len(firsts) - 1, int(len(firsts) * 0.99))],
        "stream_p50": statistics.median(totals),
    }


def measure(peer: Peer, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    wrk(peer, tmp, 4, 1)  # warm-up (JIT-free, but pools, caches and the key index fill)
    seq = wrk(peer, tmp, 1, args.seq_seconds)
    sweep = [wrk(peer, tmp, c, args.seconds) for c in args.concurrency]
    ok = [r for r in sweep if r["p99"] < P99_LIMIT_MS and r["errors"] == 0]
    best = max(ok, key=lambda r: r["rps"]) if ok else None
    res: dict[str, Any] = {
        "p50": seq["p50"],
        "p99": seq["p99"],
        "seq_rps": seq["rps"],
        "seq_cpu_us": seq["cpu_us"],
        "errors": seq["errors"] + sum(r["errors"] for r in sweep),
        "sweep": sweep,
        "rps": best["rps"] if best else 0.0,
        "rps_max": max(r["rps"] for r in sweep),  # at any p99
        "rps_conc": best["conc"] if best else None,
        "rps_p99": best["p99"] if best else None,
        # the server's CPU per request: at the run kept, else (none under 20 ms) at the fastest run
        "cpu_us": (best or max(sweep, key=lambda r: r["rps"]))["cpu_us"],
    }
    res.update(ttfb(peer, args.streams, 20))
    return res


#: the figures that are the median of the rounds (the rest come from the round whose rps is the median)
_MEDIAN = ("p50", "p99", "seq_rps", "seq_cpu_us", "rps", "rps_max", "cpu_us", "ttfb_p50", "ttfb_p99", "stream_p50")


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One peer's rounds: each figure of ``_MEDIAN`` is the median over the rounds (``per_round`` keeps them all)."""
    mid = sorted(rounds, key=lambda r: r["rps"])[(len(rounds) - 1) // 2]
    res = dict(mid)
    for k in _MEDIAN:
        vals = [r[k] for r in rounds if r.get(k) is not None and r[k] == r[k]]
        res[k] = statistics.median(vals) if vals else float("nan")
    res["errors"] = sum(r["errors"] for r in rounds)
    res["per_round"] = {k: [r[k] for r in rounds] for k in _MEDIAN}
    return res


def finish(peer: Peer, res: dict[str, Any]) -> None:
    """After the last round: the server's RSS, and (infermux) one scrape of /metrics to show it is live."""
    if peer.pid:
        res["rss_mb"] = rss_mb(peer.pid)
    if peer.metrics_url:
        hdr = {"authorization": f"Bearer {MASTER}"}
        with urllib.request.urlopen(urllib.request.Request(peer.metrics_url, headers=hdr), timeout=10) as r:
            text = r.read().decode()
        m = re.search(r"^infermux_gateway_requests_total (\d+)", text, re.M)
        res["metrics_requests_total"] = int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------- report


def _f(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _verdict(v: bool | None) -> str:
    return "undecided (the direct call's own p99 is over the target: noise)" if v is None else "PASS" if v else "FAIL"


def report(results: dict[str, dict[str, Any]], load_before: str, load_after: str) -> dict[str, Any]:
    d = results.get("direct", {})
    print(f"\nbench/gateway.py: {load_before} (before) / load avg {load_after} (after)")
    print(
        "peer      p50 ms  p99 ms  +p50 ms  +p99 ms  req/s@p99<20ms (conc, p99)  max req/s  CPU us/req  req/s/core"
        "  TTFB ms  +TTFB ms  RSS MB  errors"
    )
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<9} n/a: {r['error']}")
            continue
        add50 = r["p50"] - d["p50"] if d and name != "direct" else None
        add99 = r["p99"] - d["p99"] if d and name != "direct" else None
        addt = r["ttfb_p50"] - d["ttfb_p50"] if d and name != "direct" else None
        # what one dedicated core could serve at that CPU cost per request (the server's own CPU only)
        per_core = 1e6 / r["cpu_us"] if r["cpu_us"] == r["cpu_us"] and r["cpu_us"] > 0 else float("nan")
        r.update(added_p50=add50, added_p99=add99, added_ttfb=addt, per_core=per_core)
        rps = f"{r['rps']:.0f} ({r['rps_conc']}, {_f(r['rps_p99'])})" if r["rps_conc"] else "none under 20 ms"
        print(
            f"{name:<9} {_f(r['p50'], 3):>6}  {_f(r['p99'], 3):>6}  {_f(add50, 3):>7}  {_f(add99, 3):>7}  {rps:>26}"
            f"  {r['rps_max']:>9.0f}  {_f(r['cpu_us'], 0):>10}  {_f(r['per_core'], 0):>10}"
            f"  {_f(r['ttfb_p50'], 3):>7}  {_f(addt, 3):>8}"
            f"  {_f(r.get('rss_mb'), 1):>6}  {r['errors']:>6}"
        )
    print("\nper round (one-at-a-time p50 ms; req/s with p99 < 20 ms; server CPU us/req; TTFB p50 ms):")
    for name, r in results.items():
        if "per_round" in r:
            pr = r["per_round"]
            cells = [pr["p50"], pr["rps"], pr["cpu_us"], pr["ttfb_p50"]]
            print(
                f"  {name:<9} "
                + "; ".join(" / ".join(_f(v, 3 if i != 1 else 0) for v in c) for i, c in enumerate(cells))
            )
    print("\nsweep of the median round (concurrency: req/s, p99 ms):")
    for name, r in results.items():
        if "sweep" in r:
            print(f"  {name:<9} " + "  ".join(f"{s['conc']}: {s['rps']:.0f}, {s['p99']:.2f}" for s in r["sweep"]))
    targets: dict[str, bool | None] = {}
    im, ll = results.get("infermux", {}), results.get("litellm", {})
    if "p50" in im and "p99" in d:  # the targets are added figures: without the direct floor there are none
        # a p99 difference means nothing when the floor's own p99 is over the target (the machine's noise):
        # then that target is undecided (None), never a pass
        quiet = d["p99"] <= 1.0
        targets = {
            "added_p50_le_0.5ms": im["added_p50"] <= 0.5,
            "added_p99_le_1ms": im["added_p99"] <= 1.0 if quiet else None,
            "rps_ge_2000": im["rps"] >= 2000,
            "ttfb_added_le_1ms": im["added_ttfb"] <= 1.0,
            "rss_le_100mb": im["rss_mb"] <= 100,
        }
        if ll.get("rps_max"):  # LiteLLM's best req/s at any p99 (it may have none under 20 ms): in its favour
            im["vs_litellm_rps"] = im["rps"] / ll["rps_max"]
            targets["rps_ge_10x_litellm"] = im["vs_litellm_rps"] >= 10
        if "rps" in results.get("nginx", {}) and results["nginx"]["rps"]:
            im["vs_nginx_rps"] = im["rps"] / results["nginx"]["rps"]
        print(
            "\nratios: infermux req/s (p99 < 20 ms) vs LiteLLM's best req/s at any p99 "
            + _f(im.get("vs_litellm_rps"))
            + "x, vs nginx "
            + _f(im.get("vs_nginx_rps"))
            + "x"
        )
        print(
            "targets (infermux serve, whole engine on): " + ", ".join(f"{k} {_verdict(v)}" for k, v in targets.items())
        )
    summary = {"load_before": load_before, "load_after": load_after, "targets": targets}
    summary["peers"] = {
        k: {kk: vv for kk, vv in v.items() if kk != "sweep"} | ({"sweep": v["sweep"]} if "sweep" in v else {})
        for k, v in results.items()
    }
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    ap.add_argument("--litellm-python", default=str(DEFAULT_LITELLM_PY), help="python of LiteLLM's own venv")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"subset of {','.join(PEERS)}")
    ap.add_argument("--seconds", type=float, default=2.0, help="seconds per concurrency level")
    ap.add_argument("--seq-seconds", type=float, default=4.0, help="seconds of one-at-a-time latency")
    ap.add_argument("--concurrency", default="1,2,4,8,16,32,64")
    ap.add_argument("--streams", type=int, default=300, help="sequential streams for TTFB")
    ap.add_argument("--chunks", type=int, default=20, help="SSE events per upstream stream")
    ap.add_argument(
        "--first-gap-ms",
        type=float,
        default=2.0,
        help="the upstream sends a stream's first token alone, the rest this long after (0: all in one write)",
    )
    ap.add_argument("--rounds", type=int, default=2, help="measurement rounds, peers in turn; medians reported")
    ap.add_argument("--quick", action="store_true", help="1 round, 1 s per level, 2 s latency, 100 streams")
    ap.add_argument("--json", help="also write the summary to this file")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.seq_seconds, args.streams = 1, 1.0, 2.0, 100
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        print("bench/gateway.py needs wrk (apt-get install -y wrk)", file=sys.stderr)
        return 2
    load_before = cpu_count_line()
    results: dict[str, dict[str, Any]] = {}
    rounds: dict[str, list[dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="gwbench-") as t,
        BenchServer(args.chunks, args.first_gap_ms) as up,
        ExitStack() as st,
    ):
        tmp = Path(t)
        peers: dict[str, Peer] = {}
        for name in args.peers.split(","):  # all started first, then measured in turns: the load drifts fairly
            print(f"{name}: starting...", file=sys.stderr, flush=True)
            try:
                peers[name] = st.enter_context(PEER_START[name](up.port, tmp, args))
            except (LookupError, RuntimeError, OSError) as e:
                print(f"{name}: skipped: {e}", file=sys.stderr)
                results[name] = {"error": str(e)}
        for i in range(args.rounds):
            for name, peer in peers.items():
                if name in results:
                    continue
                print(f"round {i + 1}/{args.rounds}: {name}...", file=sys.stderr, flush=True)
                try:
                    rounds.setdefault(name, []).append(measure(peer, tmp, args))
                except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                    print(f"{name}: failed: {type(e).__name__}: {e}", file=sys.stderr)
                    results[name] = {"error": f"{type(e).__name__}: {e}"}
        for name, peer in peers.items():
            if name not in results:
                results[name] = combine(rounds[name])
                finish(peer, results[name])
        results = {n: results[n] for n in args.peers.split(",") if n in results}
    la = os.getloadavg()
    summary = report(results, load_before, f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
