"""Every Python block of the README runs as written (each in its own interpreter, as a user would paste it).

A block whose fence reads ```` ```python illustrative ```` is shown, not run; they must stay few.
The blocks start the embedded llama.cpp model or the sandbox themselves.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_local_server

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
MAX_ILLUSTRATIVE = 2


def python_blocks() -> list[tuple[int, str, str]]:
    """(line number, info string, code) of each Python block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


def runnable() -> list[tuple[int, str]]:
    return [(line, code) for line, info, code in python_blocks() if info != "illustrative"]


def test_readme_has_runnable_blocks_and_few_illustrative_ones() -> None:
    blocks = python_blocks()
    assert len(runnable()) >= 5
    assert sum(info == "illustrative" for _, info, _ in blocks) <= MAX_ILLUSTRATIVE
    assert all(info in ("", "illustrative") for _, info, _ in blocks), "unknown fence info string"


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("line", "code"), runnable(), ids=[f"README.md:{line}" for line, _ in runnable()])
def test_readme_block_runs_as_written(line: int, code: str, tmp_path: Path) -> None:
    if "infermux.local" in code:
        require_local_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERMUX_")}
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150, check=False
    )
    where = f"README.md:{line}"
    assert proc.returncode == 0, f"{where} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    out = proc.stdout
    if "What is the capital of France?" in code:
        assert "Paris" in out, f"{where}: the embedded model's defaults should answer sensibly:\n{out}"
    if "embedding=True" in code:
        assert "2 576" in out, out
    if "tool_choice=" in code:
        assert "tool_calls [('get_weather', {'city': 'Paris'})" in out, out
    if "HedgeConfig" in code:  # the hedging example: the stalled endpoint loses, per-call opt-out
        assert "west [('east', 'hedge_lost'), ('west', 'ok')]\n1 1 1 0\neast\n" in out, out
    elif "StreamResumed" in code:  # the mid-stream failover example: one stream, the seam, the route
        assert "echo: one two three four five\n" in out and "[a -> b: StreamIdleTimeoutError]" in out, out
        assert "[('a', 'failover mid-stream'), ('b', None)]" in out, out
    elif "GroupConfig" in code:  # the Fleet example: weights, the route of a fallback, health, metrics
        assert "['east', 'east', 'west', 'east']" in out and "big long ok None" in out, out
        assert "west chat InternalServerError fallback (retryable) to group 'long'" in out, out
        assert "{'east': True, 'west': True, 'big': True} up" in out and "infermux_fallbacks_total" in out, out
    elif "infermux.otel" in code:  # the OpenTelemetry example: one span, a failed attempt then a good one
        assert "chat gpt-4o-mini 3 ['infermux.attempt', 'infermux.attempt.failed', 'infermux.attempt']" in out, out
    elif "RedisServer" in code:  # shared state: a's breaker, opened by its failures, refuses b's call
        assert out.count("a: InternalServerError") == 3 and "b: CircuitOpenError - b sent nothing: True" in out, out
    elif "ReasoningDelta" in code:  # reasoning: streamed apart from the text, signed, sent back next turn
        assert "[thinking] The user wrote" in out and "echo: Is 9.11 bigger than 9.8?" in out, out
        assert "| signed: True" in out and "echo: Sure?" in out, out
    elif "SandboxThread" in code:
        assert "InternalServerError 503 True gpt" in out, out
        debug = proc.stderr
        assert "attempt 1" in debug and "attempt 2" in debug and "sk-test" not in debug, debug[-2000:]
