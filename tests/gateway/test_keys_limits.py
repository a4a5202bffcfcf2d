"""Virtual keys through the admin API (hashed in SQLite, allow-list, RPM/TPM on a FakeClock, budget, expiry,
revocation, audit without secrets), request limits, /health /ready /stats, and the graceful drain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from infermux.gateway import KeyStore, TokenBucket
from infermux.gateway.limits import KeyLimiter
from infermux.resilience.clock import FakeClock
from infermux.sandbox import Sandbox

from .conftest import MASTER, Rig, make_rig, until

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
MSG = {"model": "claude-sonnet-4-20250514", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


async def call(
    rig: Rig, method: str, path: str, key: str | None = MASTER, body: Any = None, *, anthropic: bool = False
) -> tuple[int, CIMultiDict[str], Any]:
    headers = {}
    if key is not None:
        headers = (
            {"x-api-key": key, "anthropic-version": "2023-06-01"} if anthropic else {"authorization": f"Bearer {key}"}
        )
    async with aiohttp.ClientSession() as http, http.request(method, rig.url + path, json=body, headers=headers) as r:
        return r.status, CIMultiDict(r.headers), await r.json(content_type=None)


async def new_key(rig: Rig, **settings: Any) -> tuple[str, str]:
    status, _, body = await call(rig, "POST", "/admin/keys", body=settings)
    assert status == 201, body
    return body["key"], body["id"]


async def test_virtual_key_lifecycle(rig: Rig, tmp_path: Path) -> None:
    secret, kid = await new_key(rig, name="team-a", models=["gpt-4o-mini"])
    assert secret.startswith("sk-imx-")
    assert (await call(rig, "POST", "/v1/chat/completions", secret, CHAT))[0] == 200
    status, _, body = await call(rig, "POST", "/v1/messages", secret, MSG, anthropic=True)  # not in its allow-list
    assert status == 403 and body["type"] == "error" and body["error"]["type"] == "permission_error"
    status, _, listing = await call(rig, "GET", "/admin/keys")
    assert [k["id"] for k in listing["data"]] == [kid] and "key" not in listing["data"][0]
    assert (await call(rig, "GET", "/admin/keys", secret))[0] == 403  # a virtual key is no admin
    assert (await call(rig, "DELETE", f"/admin/keys/{kid}"))[0] == 200
    status, headers, body = await call(rig, "POST", "/v1/chat/completions", secret, CHAT)
    assert status == 401 and body["error"]["type"] == "authentication_error" and headers["x-request-id"]
    status, _, body = await call(rig, "POST", "/v1/messages", secret, MSG, anthropic=True)
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert (await call(rig, "DELETE", f"/admin/keys/{kid}"))[0] == 404
    audit = (await call(rig, "GET", "/admin/audit"))[2]["data"]
    assert [e["action"] for e in audit] == ["revoke", "create"] and all(e["key_id"] == kid for e in audit)
    assert secret not in str(audit)


async def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    db = tmp_path / "keys.sqlite3"
    store = KeyStore(str(db))
    secret, key = store.create(name="x", rpm=5)
    store.close()
    raw = db.read_bytes()
    assert secret.encode() not in raw and secret[7:].encode() not in raw
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM keys").fetchone() == (1,)
    again = KeyStore(str(db))  # keys survive a restart
    found = again.lookup(secret)
    assert found is not None and found.id == key.id and found.rpm == 5
    assert again.lookup(secret + "x") is None and again.lookup("") is None
    again.close()


async def test_rpm_limit_on_fake_clock(rig: Rig) -> None:
    secret, _ = await new_key(rig, rpm=2)
    assert (await call(rig, "POST", "/v1/chat/completions", secret, CHAT))[0] == 200
    assert (await call(rig, "POST", "/v1/chat/completions", secret, CHAT))[0] == 200
    status, headers, body = await call(rig, "POST", "/v1/chat/completions", secret, CHAT)
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert headers["retry-after"] == "30" and headers["x-should-retry"] == "true"  # 1 of 2 per minute: 30 s
    status, headers, body = await call(rig, "POST", "/v1/messages", secret, MSG, anthropic=True)
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    rig.clock.advance(30)
    assert (await call(rig, "POST", "/v1/chat/completions", secret, CHAT))[0] == 200
    assert (await call(rig, "POST", "/v1/chat/completions", MASTER, CHAT))[0] == 200  # the master key: no limit


async def test_tpm_limit_settles_real_usage() -> None:
    clock = FakeClock()
    lim = KeyLimiter(clock=clock)
    adm = lim.admit("k", None, 100, 90)
    assert not isinstance(adm, float)
    assert isinstance(lim.admit("k", None, 100, 20), float)  # 10 left: refused, with the wait
    lim.settle(adm, 5)  # the request used 5 tokens, not 90: 85 come back
    assert not isinstance(lim.admit("k", None, 100, 20), float)
    b = TokenBucket(60, clock=clock)
    b.take(60)
    assert b.wait_for(30) == pytest.approx(30.0)
    clock.advance(30)
    assert b.wait_for(30) == 0.0
    assert b.wait_for(600) == pytest.approx(30.0)  # over capacity: waits for a full bucket, never forever


async def test_budget_and_expiry() -> None:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        from infermux.gateway import Price

        rig = await make_rig(sb, prices={"gpt-4o-mini": Price(input=1000.0, output=1000.0)})
        try:
            secret, _ = await new_key(rig, budget=0.03)  # USD: 1000 USD / 1M tokens, ~3 used, 13 estimated
            served = 0
            for _ in range(20):
                status, headers, body = await call(rig, "POST", "/v1/chat/completions", secret, CHAT)
                if status != 200:
                    break
                served += 1
            assert status == 429 and body["error"]["type"] == "insufficient_quota"
            assert headers["x-should-retry"] == "false" and 1 <= served < 20
            spent = (await call(rig, "GET", "/admin/keys"))[2]["data"][0]["spent"]
            assert 0 < spent <= 0.03
            short, _ = await new_key(rig, expires_in=60)
            assert (await call(rig, "POST", "/v1/chat/completions", short, CHAT))[0] == 200
            rig.wall[0] += 61
            status, _, body = await call(rig, "POST", "/v1/chat/completions", short, CHAT)
            assert status == 401 and "expired" in body["error"]["message"]
        finally:
            await rig.close()


async def test_request_limits() -> None:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        rig = await make_rig(sb, max_body_bytes=2000, max_messages=3, max_tokens=100)
        try:
            big = {**CHAT, "messages": [{"role": "user", "content": "x" * 3000}]}
            status, _, body = await call(rig, "POST", "/v1/chat/completions", MASTER, big)
            assert status == 413 and "2000" in body["error"]["message"]
            status, _, body = await call(rig, "POST", "/v1/messages", MASTER, {**MSG, "x": "y" * 3000}, anthropic=True)
            assert status == 413 and body["error"]["type"] == "request_too_large"
            many = {**CHAT, "messages": [{"role": "user", "content": "x"}] * 4}
            status, _, body = await call(rig, "POST", "/v1/chat/completions", MASTER, many)
            assert status == 400 and "4 messages" in body["error"]["message"]
            status, _, body = await call(rig, "POST", "/v1/chat/completions", MASTER, {**CHAT, "max_tokens": 101})
            assert status == 400 and "max_tokens" in body["error"]["message"]
            newer = {"model": "gpt-4o-mini", "messages": CHAT["messages"], "max_completion_tokens": 101}
            assert (await call(rig, "POST", "/v1/chat/completions", MASTER, newer))[0] == 400
            status, _, body = await call(
                rig, "POST", "/v1/messages", MASTER, {**MSG, "max_tokens": 101}, anthropic=True
            )
            assert status == 400 and body["error"]["type"] == "invalid_request_error"
            async with aiohttp.ClientSession() as http:
                auth = {"authorization": f"Bearer {MASTER}"}
                async with http.post(rig.openai_url + "/chat/completions", data=b"{nope", headers=auth) as r:
                    assert r.status == 400 and "not valid JSON" in (await r.json())["error"]["message"]
            status, _, body = await call(rig, "GET", "/v1/nowhere")
            assert status == 404 and body["error"]["type"] == "not_found_error"
        finally:
            await rig.close()


async def test_health_ready_stats(rig: Rig) -> None:
    assert (await call(rig, "GET", "/health", None))[0] == 200
    status, _, body = await call(rig, "GET", "/ready", None)
    assert status == 200 and body["models"] == {"gpt-4o-mini": ["gpt"], "claude-sonnet-4-20250514": ["claude"]}
    await call(rig, "POST", "/v1/chat/completions", MASTER, CHAT)
    status, _, stats = await call(rig, "GET", "/stats")
    assert status == 200 and stats["endpoints"]["gpt"]["successes"] == 1 and stats["gateway"]["requests"] >= 1
    assert (await call(rig, "GET", "/stats", None))[0] == 401
    async with aiohttp.ClientSession() as http:
        async with http.get(rig.url + "/metrics", headers={"authorization": f"Bearer {MASTER}"}) as r:
            assert r.status == 200 and r.content_type == "text/plain"
            text = await r.text()
        async with http.get(rig.url + "/metrics") as r:
            assert r.status == 401
    assert "infermux_gateway_requests_total" in text
    assert any(line.startswith("infermux_") and 'endpoint="gpt"' in line for line in text.splitlines())
    rig.gw.draining = True  # not ready while draining (liveness stays ok)
    assert (await call(rig, "GET", "/ready", None))[0] == 503
    assert (await call(rig, "GET", "/health", None))[0] == 200
    status, headers, body = await call(rig, "POST", "/v1/chat/completions", MASTER, CHAT)
    assert status == 503 and headers["connection"] == "close" and headers["x-should-retry"] == "true"
    rig.gw.draining = False


async def test_graceful_drain(slow_rig: Rig) -> None:
    """Draining: new requests get 503; a stream still running at the deadline gets an in-band error, and is
    counted as cancelled."""
    rig = slow_rig
    body = {**CHAT, "stream": True, "max_tokens": 1000}
    async with aiohttp.ClientSession() as http:
        auth = {"authorization": f"Bearer {MASTER}"}
        resp = await http.post(rig.openai_url + "/chat/completions", json=body, headers=auth)
        assert (await resp.content.readline()).startswith(b"data: ")
        stopping = asyncio.create_task(rig.srv.stop(timeout=0.3))
        await asyncio.sleep(0.05)
        assert rig.gw.draining
        rest = b""
        with contextlib.suppress(aiohttp.ClientPayloadError):  # the connection ends right after the error event
            while b"shut down" not in rest:
                line = await asyncio.wait_for(resp.content.readline(), 5)
                if not line:
                    break
                rest += line
        resp.close()
        assert b'data: {"error":' in rest and b"shut down" in rest
        assert await stopping == 1


async def test_a_caller_that_stops_reading_is_dropped() -> None:
    """Backpressure has a bound: a caller that reads nothing for stream_write_timeout loses its stream and the
    upstream request is closed (no slot held forever)."""
    huge = " ".join(f"token{i}" for i in range(60000))  # ~10 MB of SSE frames: more than the socket buffers hold
    async with Sandbox(host="127.0.0.1", port=0, responder=lambda conv: huge) as sb:
        rig = await make_rig(sb, stream_write_timeout=0.3)
        try:
            body = json.dumps({**CHAT, "stream": True, "max_tokens": 30000}).encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", rig.srv.port)
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                + f"authorization: Bearer {MASTER}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
            # ...and never read again
            assert await until(lambda: rig.gw.counters.disconnects == 1, 15)
            assert await until(lambda: sb.stats.in_flight == 0, 5)
            assert rig.gw.client.stats()["gpt"]["in_flight"] == 0
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        finally:
            await rig.close()


async def test_local_state_settles_inline_and_an_overridden_settle_is_still_awaited() -> None:
    """The local state is settled at once (no task per request); a subclass that overrides ``settle`` (a store
    of its own) keeps being awaited through it."""
    import infermux
    from infermux.gateway import Gateway, GatewayServer, GatewaySettings, LocalState
    from infermux.gateway.limits import Admission

    from .conftest import endpoints

    class Recording(LocalState):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.settled: list[int | None] = []

        async def settle(self, adm: Admission, used_tokens: int | None, cost: float | None) -> None:
            await asyncio.sleep(0)  # a store that waits
            self.settled.append(used_tokens)
            await super().settle(adm, used_tokens, cost)

    async with Sandbox(host="127.0.0.1", port=0) as sb:
        for state_cls in (LocalState, Recording):
            clock = FakeClock()
            state = state_cls(KeyStore(), clock=clock, wall_clock=lambda: 1_900_000_000.0)
            client = infermux.AsyncClient(endpoints(sb), trust_env=False)
            gw = Gateway(client, GatewaySettings(port=0, master_key=MASTER), state=state, clock=clock)
            srv = GatewayServer(gw)
            await srv.start()
            rig = Rig(sb, gw, srv, clock, [1_900_000_000.0])
            try:
                secret, kid = await new_key(rig, tpm=1000)
                for _ in range(2):
                    assert (await call(rig, "POST", "/v1/chat/completions", secret, CHAT))[0] == 200
                assert not gw._settling  # nothing left in flight
                assert state._reserved.get(kid, 0.0) == 0.0
                if isinstance(state, Recording):
                    assert len(state.settled) == 2 and all(t is not None and t > 0 for t in state.settled)
            finally:
                await rig.close()
