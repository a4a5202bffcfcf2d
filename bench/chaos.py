"""What the caller gets under faults, outage and overload: infermux (one endpoint, and primary + backup) vs the
openai SDK (max_retries=5) vs LiteLLM Router, side by side in one run, against the same fault server.

    python bench/chaos.py [--quick] [--scenarios A,B,C] [--only SUBJECTS] [--litellm-python PATH] [--json FILE]

Fault server: ``infermux.sandbox`` (OpenAI protocol) on 127.0.0.1, on threads of this process; each subject runs
in its own process (bench/_chaos_worker.py; LiteLLM from its own venv, default ``.tmp/litellm-venv``). Every
subject uses a 2 s per-attempt timeout and its library's defaults otherwise.

- **A**: 20 % of requests get one of 13 faults (429 + retry-after-ms 250 + retry-after 1; 429 + retry-after 2;
  500; 503; 529 overloaded; 502 with an HTML page; TCP reset; headers after 3 s; stream cut cleanly after 3
  chunks; stream aborted after 3 chunks; cut after 1 chunk (a non-stream body: cut at half its Content-Length);
  200 with truncated JSON (a stream: its first event); 200 HTML page). 2,000 requests, 50 concurrent, every 2nd
  streamed. Healthy replies after about 2 ms; faults at once.
- **B**: 503 on every request from t=5 s to t=15 s; 50 new requests per second for 25 s (1,250).
- **C**: 500 requests at once; the server serves 10 at a time, 100 ms each, else 429 + ``retry-after-ms: 250``.

The backup of "infermux-backup" is a second server: with the same fault mix (A), healthy (B), with its own
capacity of 10 (C). Outcomes per request: ok (exactly the expected text), wrong (a success with other text),
failed (the library's typed error), untyped (anything else), hung (still running after 90 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from infermux.sandbox import SandboxThread  # noqa: E402

WORKER = Path(__file__).with_name("_chaos_worker.py")
DEFAULT_LITELLM_PY = ROOT / ".tmp" / "litellm-venv" / "bin" / "python"
SUBJECTS = ("infermux", "infermux-backup", "openai", "litellm-router")
FAULTS_A = (
    "status=429;retry-after-ms=250;retry-after=1",
    "status=429;retry-after=2",
    "status=500",
    "status=503",
    "status=529;type=overloaded_error;message=Overloaded",
    "status=502;html=1",
    "reset",
    "slow_headers=3",
    "stream_cut=3;clean=1",
    "stream_cut=3",
    "stream_cut=1",
    "malformed=0",
    "html",
)
HEALTHY_LATENCY = 0.002


def scenario_params(name: str, quick: bool) -> dict[str, Any]:
    if name == "A":
        return {"n": 400 if quick else 2000, "conc": 50, "rate": 0}
    if name == "B":
        return {"n": 500 if quick else 1250, "conc": 0, "rate": 50, "outage": (2.0, 6.0) if quick else (5.0, 15.0)}
    return {"n": 200 if quick else 500, "conc": 0, "rate": 0}


def make_server(scenario: str, seed: int) -> SandboxThread:
    if scenario == "C":
        sb = SandboxThread(base_latency=0.1)
        sb.faults.set_capacity(10, retry_after_ms=250)
    else:
        sb = SandboxThread(base_latency=HEALTHY_LATENCY)
        if scenario == "A":
            sb.faults.set_random(dict.fromkeys(FAULTS_A, 0.2 / len(FAULTS_A)), seed=seed)
    sb.start()
    return sb


class Outage:
    """Turns the primary's outage on and off at fixed times after the worker starts issuing."""

    def __init__(self, sb: SandboxThread, window: tuple[float, float]) -> None:
        self.sb, self.window = sb, window
        self.on_at = self.off_at = 0.0
        self.total_on = self.total_off = 0
        self._thread: threading.Thread | None = None

    def start(self, t0: float) -> None:
        def run() -> None:
            time.sleep(max(0.0, t0 + self.window[0] - time.time()))
            self.total_on, self.on_at = self.sb.stats.total, time.time()
            self.sb.faults.set_outage(True)
            time.sleep(max(0.0, t0 + self.window[1] - time.time()))
            self.sb.faults.set_outage(False)
            self.total_off, self.off_at = self.sb.stats.total, time.time()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def run_subject(subject: str, scenario: str, p: dict[str, Any], litellm_py: Path) -> dict[str, Any]:
    servers = [make_server(scenario, 1)]  # the outage (B) is on the first one only
    if subject == "infermux-backup":
        servers.append(make_server(scenario, 2))
    try:
        py = str(litellm_py) if subject.startswith("litellm") else sys.executable
        if subject.startswith("litellm") and not litellm_py.exists():
            return {"error": f"n/a: no LiteLLM venv at {litellm_py}"}
        urls = ",".join(sb.base_url for sb in servers)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        args = [py, str(WORKER), subject, scenario, urls, str(p["n"]), str(p["conc"]), str(p["rate"])]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first.startswith("START "):
            _, err = proc.communicate(timeout=30)
            return {"error": f"worker failed: {first.strip()} {err.strip()[-300:]}"}
        t0 = float(first.split()[1])
        outage = Outage(servers[0], p["outage"]) if "outage" in p else None
        if outage is not None:
            outage.start(t0)
        out, err = proc.communicate(timeout=900)
        if outage is not None:
            outage.join()
        if proc.returncode != 0:
            return {"error": f"worker exit {proc.returncode}: {err.strip()[-300:]}"}
        records = json.loads(out.strip().splitlines()[-1])
        server_total = sum(sb.stats.total for sb in servers)
        return summarize(records, t0, server_total, outage)
    finally:
        for sb in servers:
            sb.stop()


def summarize(records: list[list[Any]], t0: float, server_total: int, outage: Outage | None) -> dict[str, Any]:
    n = len(records)
    outcomes = {k: sum(1 for r in records if r[2] == k) for k in ("ok", "wrong", "failed", "untyped", "hung")}
    ok_ends = [r[1] for r in records if r[2] == "ok"]
    res: dict[str, Any] = {
        "n": n,
        **outcomes,
        "attempts_per_request": round(server_total / n, 3) if n else None,
        "last_ok_s": round(max(ok_ends) - t0, 2) if ok_ends else None,
        "errors": sorted({r[3] for r in records if r[2] in ("failed", "untyped")})[:6],
        "wrong_examples": [r[3] for r in records if r[2] == "wrong"][:2],
    }
    if outage is not None:
        res["into_outage"] = outage.total_off - outage.total_on
        after = [r for r in records if r[0] >= outage.off_at]
        res["failed_after_recovery"] = sum(1 for r in after if r[2] != "ok")
        first = [r[1] for r in records if r[2] == "ok" and r[1] >= outage.off_at]
        res["first_ok_after_recovery_s"] = round(min(first) - outage.off_at, 2) if first else None
        res["lat_p50_s"] = round(statistics.median([r[1] - r[0] for r in records]), 3)
    return res


COLUMNS = (
    ("ok", "ok"),
    ("wrong", "wrong"),
    ("untyped", "untyped"),
    ("hung", "hung"),
    ("failed", "failed"),
    ("attempts_per_request", "attempts/req"),
    ("into_outage", "into outage"),
    ("failed_after_recovery", "failed after recovery"),
    ("first_ok_after_recovery_s", "first ok after recovery (s)"),
    ("last_ok_s", "last ok (s)"),
)

TARGETS = {
    ("A", "infermux"): "ok >= 1990, 0 wrong/untyped/hung, attempts/req <= 1.3",
    ("A", "infermux-backup"): "ok >= 1995",
    ("B", "infermux"): "all ok, into outage <= 100, 0 failed after recovery, first ok <= 1 s after",
    ("B", "infermux-backup"): "all ok, into outage <= 100",
    ("C", "infermux"): "all ok, last ok <= 6.5 s, attempts/req <= 1.5",
    ("C", "infermux-backup"): "all ok, last ok <= 3.25 s",
}


def check(scenario: str, subject: str, r: dict[str, Any], n: int) -> str:
    """PASS/FAIL against the issue's targets (scaled to n in --quick runs)."""
    if "error" in r or (scenario, subject) not in TARGETS:
        return ""
    clean = r["wrong"] == 0 and r["untyped"] == 0 and r["hung"] == 0
    if scenario == "A":
        need = n - (n * 10 // 2000 if subject == "infermux" else n * 5 // 2000)
        ok = r["ok"] >= need and clean and (subject != "infermux" or r["attempts_per_request"] <= 1.3)
    elif scenario == "B":
        ok = r["ok"] == n and r["into_outage"] <= 100
        if subject == "infermux":
            first = r["first_ok_after_recovery_s"]
            ok = ok and r["failed_after_recovery"] == 0 and first is not None and first <= 1.0
    else:
        ideal = n / 10 * 0.1 / (2 if subject == "infermux-backup" else 1)
        ok = r["ok"] == n and r["last_ok_s"] is not None and r["last_ok_s"] <= 1.3 * ideal
        if subject == "infermux":
            ok = ok and r["attempts_per_request"] <= 1.5
    return "PASS" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller counts (A 400, B 10 s, C 200)")
    ap.add_argument("--scenarios", default="A,B,C")
    ap.add_argument("--only", default=",".join(SUBJECTS))
    ap.add_argument("--litellm-python", type=Path, default=DEFAULT_LITELLM_PY)
    ap.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = ap.parse_args()
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # the fault server's own reset/abort tracebacks
    results: dict[str, dict[str, Any]] = {}
    for scenario in args.scenarios.split(","):
        p = scenario_params(scenario, args.quick)
        for subject in args.only.split(","):
            t = time.monotonic()
            r = run_subject(subject, scenario, p, args.litellm_python)
            r["verdict"] = check(scenario, subject, r, p["n"])
            r["wall_s"] = round(time.monotonic() - t, 1)
            results[f"{scenario}/{subject}"] = r
            print(f"{scenario} {subject}: {json.dumps(r)}", file=sys.stderr, flush=True)
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


def print_table(results: dict[str, dict[str, Any]]) -> None:
    header = ["scenario", "subject", *(label for _, label in COLUMNS), "target", "verdict"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key, r in results.items():
        scenario, subject = key.split("/")
        if "error" in r:
            print(f"| {scenario} | {subject} | {r['error']} |")
            continue
        cells = ["" if r.get(k) is None else str(r.get(k)) for k, _ in COLUMNS]
        cells[0] = f"{r['ok']}/{r['n']}"
        target = TARGETS.get((scenario, subject), "")
        print("| " + " | ".join([scenario, subject, *cells, target, r["verdict"]]) + " |")


if __name__ == "__main__":
    main()
