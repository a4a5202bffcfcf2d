"""Running the sandbox: thread mode, the standalone CLI, and lifecycle errors."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from infermux.errors import ConfigurationError
from infermux.sandbox import Sandbox, SandboxThread, main


def test_thread_mode_serves_and_stops() -> None:
    with SandboxThread(keys=["k1"]) as sb:
        assert sb.base_url.startswith("http://127.0.0.1:") and sb.openai_base_url == sb.base_url + "/v1"
        req = urllib.request.Request(
            sb.openai_base_url + "/models", headers={"authorization": "Bearer k1", "x-request-id": "abc"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["object"] == "list"
        assert sb.stats.request_ids() == ["abc"]
        url = sb.base_url
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/_sandbox/health", timeout=2)


def test_base_url_needs_running_server() -> None:
    with pytest.raises(ConfigurationError):
        _ = Sandbox().base_url
    with pytest.raises(ConfigurationError):
        Sandbox(embedding_dim=0)


def test_cli_bad_port_returns_error() -> None:
    assert main(["--host", "127.0.0.1", "--port", "-5"]) != 0


def test_cli_subprocess_serves_until_terminated() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "infermux.sandbox", "--port", "0", "--keys", "a,b", "--capacity", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        base = line.strip().rsplit(" ", 1)[-1]
        with urllib.request.urlopen(base + "/_sandbox/health", timeout=5) as r:
            assert json.load(r) == {"status": "ok"}
        req = urllib.request.Request(base + "/v1/models", headers={"authorization": "Bearer wrong"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        info.value.close()
        assert info.value.code == 401
        assert info.value.headers["x-ratelimit-limit-requests"] == "3"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
