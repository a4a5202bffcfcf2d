"""Recorded-traffic tests must not vanish silently (issue 8 item 10): run pytest on one conformance module with a
wrong INFERMUX_RECORDINGS, under CI=true (the run fails) and outside CI (it passes but says so loudly)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = "tests/conformance/test_groq_recorded.py"  # small and fast


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "INFERMUX_RECORDINGS", "PYTEST_ADDOPTS")}
    base["PYTHONPATH"] = str(ROOT / "src")
    base["INFERMUX_RECORDINGS"] = str(tmp_path / "no-such-folder")
    base.update(env)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", MODULE]
    return subprocess.run(cmd, cwd=ROOT, env=base, capture_output=True, text=True, timeout=120, check=False)


def test_missing_recordings_fail_the_run_under_ci(tmp_path: Path) -> None:
    r = _pytest(tmp_path, CI="true")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "no-such-folder" in out and "does not exist" in out and "CI=true" in out


def test_missing_recordings_are_reported_loudly_outside_ci(tmp_path: Path) -> None:
    r = _pytest(tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "recorded-traffic tests skipped" in out  # the terminal summary line
    assert "PytestWarning" in out and "none of the recorded cases is checked" in out


def test_a_folder_without_recordings_counts_as_missing(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a recording")
    r = _pytest(tmp_path, CI="1", INFERMUX_RECORDINGS=str(folder))
    assert r.returncode != 0 and "holds no recordings" in r.stdout + r.stderr
