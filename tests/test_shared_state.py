"""State shared by several processes through a real Redis-compatible server (started by the fixtures):
two separate Python processes (tests/_shared_worker.py) against the sandbox; Redis killed mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infermux.sandbox import SandboxThread
from infermux.shared_state import RedisStateStore, StateConfig, open_state

from .conftest import redis_server

WORKER = Path(__file__).with_name("_shared_worker.py")
TIMEOUT = 20.0  # bound of every wait on a worker


class Worker:
    """One separate Python process with its own AsyncClient sharing state through Redis."""

    def __init__(self, spec: dict[str, Any]) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        self._answers: dict[Any, Any] = {}
        self.ready = self.recv("ready")

    def send(self, op: str, **kw: Any) -> str:
        assert self.proc.stdin is not None
        cid = uuid.uuid4().hex[:8]
        self.proc.stdin.write(json.dumps({"id": cid, "op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return cid

    def recv(self, cid: str) -> Any:
        assert self.proc.stdout is not None
        end = time.monotonic() + TIMEOUT
        while cid not in self._answers:
            left = end - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            if not ready:
                pytest.fail(f"worker gave no answer to {cid} within {TIMEOUT}s", pytrace=False)
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                pytest.fail(f"worker exited: {err[-2000:]}", pytrace=False)
            msg = json.loads(line)
            self._answers[msg["id"]] = msg["result"]
        result = self._answers.pop(cid)
        assert not (isinstance(result, dict) and "error" in result), result
        return result

    def call(self, op: str, **kw: Any) -> Any:
        return self.recv(self.send(op, **kw))

    def quit(self) -> str:
        """Stop the process (bounded) and return its log (stderr)."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()
        err = self.proc.stderr.read() if self.proc.stderr else ""
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(backends=("openai", "groq")) as sb:
        yield sb


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[Any]:
    with redis_server() as srv:
        yield srv


def _spec(sb: SandboxThread, url: str, prefix: str, health: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "redis": url,
        "prefix": prefix,
        "health": health,
        "endpoints": [
            {"name": "brk", "provider": "openai", "base_url": sb.openai_base_url, "open_seconds": 2.0},
            {"name": "hlth", "provider": "openai", "base_url": sb.openai_base_url},
            {
                "name": "quota",
                "provider": "groq",
                "base_url": f"{sb.base_url}/openai/v1",
                "model": "llama-3.1-8b-instant",
                "keys": ["gsk_one_1111", "gsk_two_2222"],
            },
            {"name": "dead", "provider": "openai", "base_url": f"http://127.0.0.1:{_closed_port()}/v1"},
        ],
    }


@pytest.fixture(scope="module")
def pair(sandbox: SandboxThread, redis_srv: Any) -> Iterator[tuple[Worker, Worker]]:
    prefix = f"t:{uuid.uuid4().hex[:8]}"
    a = Worker(_spec(sandbox, redis_srv.url, prefix, {"interval": 60, "timeout": 2, "failures": 1}))
    b = Worker(_spec(sandbox, redis_srv.url, prefix, {"probe": False}))
    try:
        assert a.ready["connected"] and b.ready["connected"]
        yield a, b
    finally:
        a.quit()
        b.quit()


def test_breaker_opened_by_a_is_seen_by_b_which_sends_nothing_into_the_outage(
    pair: tuple[Worker, Worker], sandbox: SandboxThread
) -> None:
    a, b = pair
    sandbox.faults.set_outage(True)
    try:
        assert a.call("chat", endpoint="brk", n=3) == ["InternalServerError"] * 3
        assert a.call("state", endpoint="brk")["breaker"] == "open"
        assert b.call("wait_breaker", endpoint="brk", state="open") == "open"
        before = sandbox.stats.snapshot()["total"]
        assert b.call("chat", endpoint="brk", n=5) == ["CircuitOpenError"] * 5
        assert sandbox.stats.snapshot()["total"] == before  # b sent nothing into the outage
        st = b.call("state", endpoint="brk")
        assert st["attempts"] == 0 and st["adopted"] == 1
    finally:
        sandbox.faults.set_outage(False)
    # a found the outage, so a probes it after the open period (b waits for a's verdict: a 2 s grace here)
    assert a.call("wait_breaker", endpoint="brk", state="half_open", timeout=5.0) == "half_open"
    assert b.call("state", endpoint="brk")["breaker"] == "open"
    assert a.call("chat", endpoint="brk", n=1) == ["ok"]
    assert b.call("wait_breaker", endpoint="brk", state="closed") == "closed"
    assert b.call("chat", endpoint="brk", n=2) == ["ok", "ok"]


def test_key_blocked_by_a_quota_429_in_a_is_avoided_by_b(pair: tuple[Worker, Worker], sandbox: SandboxThread) -> None:
    a, b = pair
    sandbox.configure_backend("groq", requests=1, requests_window=60.0)
    try:
        # key #1 takes the last request of the quota, key #2 gets the 429 with remaining 0: blocked ~60 s
        assert a.call("chat", endpoint="quota", n=2) == ["ok", "RateLimitError"]
        keys_a = a.call("state", endpoint="quota")["keys"]
        assert keys_a[1]["blocked_for"] > 50 and keys_a[0]["blocked_for"] == 0
        assert b.call("wait_blocked", endpoint="quota", key=1) > 50
    finally:
        sandbox.configure_backend("groq", requests=14400)
    assert b.call("chat", endpoint="quota", n=4) == ["ok"] * 4
    keys_b = b.call("state", endpoint="quota")["keys"]
    assert keys_b[0]["requests"] == 4 and keys_b[1]["requests"] == 0  # round robin would have used #2 twice
    assert "gsk_" not in json.dumps(keys_b)


def test_health_down_found_by_a_is_seen_by_both(pair: tuple[Worker, Worker], sandbox: SandboxThread) -> None:
    a, b = pair
    sandbox.faults.set_outage(True)
    try:
        assert a.call("probe")["hlth"] is False
        assert a.call("state", endpoint="hlth")["health"]["state"] == "down"
        seen = b.call("wait_health", endpoint="hlth", state="down")
        assert seen["state"] == "down" and "another process" in seen["reason"]
    finally:
        sandbox.faults.set_outage(False)
    assert a.call("probe")["hlth"] is True
    assert b.call("wait_health", endpoint="hlth", state="up")["state"] == "up"


def test_redis_killed_mid_run_loses_no_request_warns_once_and_resyncs(sandbox: SandboxThread) -> None:
    with redis_server() as srv:
        prefix = f"t:{uuid.uuid4().hex[:8]}"
        a = Worker(_spec(sandbox, srv.url, prefix))
        b = Worker(_spec(sandbox, srv.url, prefix))
        logs = ["", ""]
        try:
            running = a.send("chat_for", endpoint="hlth", seconds=2.5)
            time.sleep(0.4)
            srv.kill()
            time.sleep(0.3)
            # while Redis is away, a's breaker of "dead" opens (connection refused): local state
            assert a.call("chat", endpoint="dead", n=3) == ["APIConnectionError"] * 3
            assert a.call("state", endpoint="dead")["store"]["connected"] is False
            time.sleep(0.3)
            srv.start()  # back on the same port, empty
            outcomes = a.recv(running)
            assert len(outcomes) > 20 and set(outcomes) == {"ok"}  # no request lost
            # after the restart a pushes what it learned alone: b sees the breaker a opened meanwhile
            assert b.call("wait_breaker", endpoint="dead", state="open", timeout=10.0) == "open"
            assert b.call("chat", endpoint="dead", n=2) == ["CircuitOpenError"] * 2
            assert a.call("state", endpoint="dead")["store"]["connected"] is True
        finally:
            logs = [a.quit(), b.quit()]
        for log in logs:
            assert log.count("unreachable") == 1, log[-3000:]  # one warning, not a flood
            assert "reachable again" in log


async def test_two_stores_share_records_and_keep_the_later_expiry(redis_srv: Any) -> None:
    prefix = f"t:{uuid.uuid4().hex[:8]}"
    store = open_state({"backend": "redis", "url": redis_srv.url, "prefix": prefix, "timeout": 0.3})
    assert isinstance(store, RedisStateStore)
    other = RedisStateStore(redis_srv.url, prefix=prefix, timeout=0.3, refresh=0.2)
    try:
        assert await store.wait_synced() and await other.wait_synced()
        store.set("rec", {"state": "open"}, ttl=30.0)
        store.extend("blk", 1, 20.0)
        await _until(lambda: other.get("rec") == {"state": "open"} and other.get("blk") == 1)
        assert 29.0 < (other.ttl("rec") or 0) <= 30.0
        other.extend("blk", 2, 5.0)  # shorter than what it sees: nothing changes, nothing is sent
        assert other.get("blk") == 1
        store.incr("n", 2)
        other.incr("n", 3)
        await _until(lambda: store.get("n") == 5 and other.get("n") == 5)  # INCRBY is exact in Redis
        store.delete("rec")
        await _until(lambda: other.get("rec") is None)
        with pytest.raises(Exception, match="JSON"):
            store.set("bad", object())
    finally:
        await store.aclose()
        await other.aclose()
    with pytest.raises(Exception, match="backend"):
        StateConfig(backend="etcd")
    with pytest.raises(Exception, match="url"):
        StateConfig(backend="redis")


async def _until(pred: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "not synced in time"
        await asyncio.sleep(0.01)


def test_state_from_a_config_file_and_redis_py_loads_only_when_used(tmp_path: Path) -> None:
    cfg = tmp_path / "infermux.toml"
    cfg.write_text(
        '[[endpoints]]\nname = "local"\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        '[state]\nbackend = "redis"\nurl = "redis://127.0.0.1:9/0"\nprefix = "infermux:state:t"\ntimeout = 0.2\n'
    )
    code = (
        "import sys, infermux; c = infermux.AsyncClient(config=sys.argv[1]);"
        " print(type(c.state).__name__, c.state.prefix, c.state.timeout, 'redis' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    argv = [sys.executable, "-c", code, str(cfg)]
    out = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split() == ["RedisStateStore", "infermux:state:t", "0.2", "False"], out.stderr[-2000:]
    from infermux.config import load_fleet
    from infermux.errors import ConfigurationError

    cfg.write_text(cfg.read_text().replace('backend = "redis"', 'backend = "etcd"'))
    with pytest.raises(ConfigurationError, match="backend"):
        load_fleet(cfg)
    cfg.write_text(cfg.read_text().replace('backend = "etcd"', 'backend = "redis"\ncolour = 1'))
    with pytest.raises(ConfigurationError, match="state"):
        load_fleet(cfg)


async def test_a_client_with_redis_down_from_the_start_serves_on_local_state(
    sandbox: SandboxThread, caplog: pytest.LogCaptureFixture
) -> None:
    import infermux

    ep = infermux.EndpointConfig(
        name="solo", provider="openai", base_url=sandbox.openai_base_url, model="m", api_keys=("sk-test",)
    )
    state = {"backend": "redis", "url": f"redis://127.0.0.1:{_closed_port()}/0", "timeout": 0.2}
    with caplog.at_level("WARNING", logger="infermux"):
        async with infermux.AsyncClient([ep], state=state) as client:
            for _ in range(5):
                assert (await client.chat("hi", max_tokens=4)).text
            assert isinstance(client.state, RedisStateStore) and not client.state.connected
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1


async def test_aclose_stops_the_sync_task_promptly_while_it_waits_on_redis(redis_srv: Any) -> None:
    store = RedisStateStore(redis_srv.url, prefix=f"t:{uuid.uuid4().hex[:8]}", timeout=0.3, refresh=0.2)
    other = RedisStateStore(redis_srv.url, prefix=store.prefix, timeout=0.3, refresh=0.2)
    try:
        assert await store.wait_synced() and await other.wait_synced()
        for i in range(50):  # traffic both ways: the cancellation lands inside a pending Redis call
            store.set("k", i)
            await _until(lambda i=i: other.get("k") == i)
        task = store._task
        assert task is not None
        await asyncio.wait_for(store.aclose(), 3.0)
        assert task.done()
    finally:
        await other.aclose()


async def test_routing_skips_an_endpoint_another_process_found_down(sandbox: SandboxThread, redis_srv: Any) -> None:
    import infermux
    from infermux.fleet import GroupConfig
    from infermux.resilience.health import HealthConfig

    def eps(first_url: str) -> list[infermux.EndpointConfig]:
        return [
            infermux.EndpointConfig(name=n, provider="openai", base_url=u, model="m", api_keys=("sk-test",))
            for n, u in (("first", first_url), ("second", sandbox.openai_base_url))
        ]

    state = {"backend": "redis", "url": redis_srv.url, "prefix": f"t:{uuid.uuid4().hex[:8]}", "timeout": 0.3}
    groups = [GroupConfig("g", ("first", "second"))]
    # a reaches "first" through a dead route (its probes fail); b reaches it fine and has no probes of its own
    prober = infermux.AsyncClient(
        eps(f"http://127.0.0.1:{_closed_port()}/v1"), health=HealthConfig(interval=60, failures=1), state=state
    )
    router = infermux.AsyncClient(
        eps(sandbox.openai_base_url), groups=groups, health=HealthConfig(probe=False), state=state
    )
    async with prober, router:
        assert (await router.chat("hi", model="g", max_tokens=4)).endpoint == "first"  # up: the verdict is kept
        assert (await prober.check_health())["first"] is False
        end = time.monotonic() + 5.0
        while (await router.chat("hi", model="g", max_tokens=4)).endpoint != "second":
            assert time.monotonic() < end, "b kept routing to the endpoint a found down"
            await asyncio.sleep(0.01)
        assert "another process" in (router.health()["first"]["reason"] or "")


async def test_aclose_ends_the_sync_task_even_when_a_library_loses_the_cancellation() -> None:
    store = RedisStateStore("redis://127.0.0.1:9/0", prefix="p", timeout=0.25)

    async def swallowing_session() -> None:  # like asyncio.wait_for before 3.12 when its operation just finished
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        await asyncio.sleep(10)

    store._session = swallowing_session  # type: ignore[method-assign]
    store.start()
    await asyncio.sleep(0)
    task = store._task
    assert task is not None
    await asyncio.wait_for(store.aclose(), 2.0)
    assert task.done() and task.cancelled()
