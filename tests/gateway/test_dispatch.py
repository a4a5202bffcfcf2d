"""The gateway's own dispatch on aiohttp's low-level server: 404 and 405 (with ``Allow``) in the caller's
protocol, HEAD on the open GET routes, ``Expect: 100-continue`` (and 417 for other expectations), the
``/admin/keys/{id}`` parameter, the Application wrapper (``Gateway.app``), the stream watchdog, and the SSE
text frames made from a template."""

from __future__ import annotations

import asyncio
import json
import types
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from infermux.gateway.app import Gateway, _GuardedWriter
from infermux.gateway.sse import AnthropicSSE, ChatSSE, CompletionSSE, ResponsesSSE, dumps
from infermux.types import StreamStart, TextDelta, ToolCallDelta, ToolCallStart

from .conftest import MASTER, Rig

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


async def _raw(rig: Rig, data: bytes, *, reads: int = 1) -> list[bytes]:
    """Send ``data`` on a new connection; read ``reads`` responses' status lines and heads (bounded)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.srv.port)
    try:
        writer.write(data)
        await writer.drain()
        return [await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) for _ in range(reads)]
    finally:
        writer.close()


async def test_unknown_path_is_404_and_wrong_method_405_in_the_callers_protocol(rig: Rig) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(rig.url + "/v1/nope", headers={"authorization": f"Bearer {MASTER}"}) as r:
            body: Any = await r.json()
            assert r.status == 404
            assert body["error"]["message"] == "GET /v1/nope: Not Found"
            assert r.headers["x-request-id"]
        async with http.get(rig.url + "/v1/chat/completions") as r:
            assert r.status == 405
            assert r.headers["allow"] == "POST"
            assert "Method Not Allowed" in (await r.json())["error"]["message"]
        async with http.get(rig.url + "/v1/messages", headers={"anthropic-version": "2023-06-01"}) as r:
            body = await r.json()
            assert r.status == 405
            assert body["type"] == "error"  # Anthropic's error shape
        async with http.get(rig.url + "/admin/keys/vk_1", headers={"authorization": f"Bearer {MASTER}"}) as r:
            assert r.status == 405
            assert r.headers["allow"] == "DELETE"
        async with http.delete(rig.url + "/admin/keys/", headers={"authorization": f"Bearer {MASTER}"}) as r:
            assert r.status == 404
    assert rig.gw.counters.errors_by_status == {404: 2, 405: 3}


async def test_admin_key_id_is_the_last_path_segment(rig: Rig) -> None:
    auth = {"authorization": f"Bearer {MASTER}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(rig.url + "/admin/keys", json={"name": "d"}, headers=auth) as r:
            kid = (await r.json())["id"]
        async with http.delete(rig.url + f"/admin/keys/{kid}", headers=auth) as r:
            assert r.status == 200
            assert (await r.json())["id"] == kid
        async with http.delete(rig.url + f"/admin/keys/{kid}", headers=auth) as r:
            assert r.status == 404
            assert kid in (await r.json())["error"]["message"]


async def test_head_on_open_routes(rig: Rig) -> None:
    async with aiohttp.ClientSession() as http, http.head(rig.url + "/health") as r:
        assert r.status == 200
        assert await r.read() == b""


async def test_expect_100_continue_then_the_body(rig: Rig) -> None:
    body = json.dumps(CHAT).encode()
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {MASTER}\r\ncontent-length: {len(body)}\r\nexpect: 100-continue\r\n\r\n".encode()
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.srv.port)
    try:
        writer.write(head)
        await writer.drain()
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        await writer.drain()
        final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert final.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


async def test_unknown_expectation_is_417(rig: Rig) -> None:
    (head,) = await _raw(
        rig,
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
        + f"authorization: Bearer {MASTER}\r\nexpect: teapot\r\n\r\n{{}}".encode(),
    )
    assert head.startswith(b"HTTP/1.1 417")


async def test_pipelined_requests_are_answered_in_order(rig: Rig) -> None:
    one = b"GET /health HTTP/1.1\r\nhost: x\r\nx-request-id: first\r\n\r\n"
    two = b"GET /ready HTTP/1.1\r\nhost: x\r\nx-request-id: second\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.srv.port)
    try:
        writer.write(one + two)
        await writer.drain()
        seen = []
        for _ in range(2):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length"))[15:])
            await asyncio.wait_for(reader.readexactly(length), 5)
            seen.append(next(ln for ln in head.lower().split(b"\r\n") if ln.startswith(b"x-request-id")))
        assert seen == [b"x-request-id: first", b"x-request-id: second"]
    finally:
        writer.close()


async def test_the_application_wrapper_serves_the_same_routes(rig: Rig) -> None:
    """``Gateway.app`` (for mounting in an aiohttp server) dispatches through the same handler."""
    runner = web.AppRunner(rig.gw.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {MASTER}"}
            ) as r:
                assert r.status == 200
                assert (await r.json())["choices"][0]["message"]["content"]
            async with http.get(f"http://127.0.0.1:{port}/nope") as r:
                assert r.status == 404
    finally:
        await runner.cleanup()


class _Resp:
    async def write(self, data: bytes) -> None:
        return None


async def test_stream_watchdog_fires_only_for_a_write_that_waited_the_timeout() -> None:
    """One timer per stream: due with no write waiting, it disarms; due for a write begun later, it waits for
    that write's own deadline; due for a write begun ``timeout`` ago, it cancels the handler (no real sleep:
    ``_fire`` is called as the loop would)."""
    task = asyncio.ensure_future(asyncio.Event().wait())
    out = _GuardedWriter(_Resp(), 60.0)  # type: ignore[arg-type]
    out.task = task
    loop = asyncio.get_running_loop()
    await out.write(b"x")  # arms the watchdog, once
    first = out.timer
    assert first is not None
    await out.write(b"y")
    assert out.timer is first and out.since is None  # no new timer per write
    out._fire()  # due, no write waiting: disarmed
    assert out.timer is None and not out.stalled
    out.since = loop.time() - 1.0  # a write waiting for 1 s of its 60
    out._fire()
    assert out.timer is not None and not out.stalled  # re-armed for that write's deadline
    assert out.timer.when() == pytest.approx(out.since + 60.0)
    out.timer.cancel()
    out.since = loop.time() - 61.0  # a write waiting longer than the timeout
    out._fire()
    assert out.stalled
    with pytest.raises(asyncio.CancelledError):
        await task
    out.close()
    assert out.timer is None


class _StalledEof:
    def __init__(self) -> None:
        self.eof_started = asyncio.Event()

    async def write(self, data: bytes) -> None:
        return None

    async def write_eof(self) -> None:
        self.eof_started.set()
        await asyncio.Event().wait()  # the caller stopped reading: the buffered tail never drains


async def test_a_stream_end_that_waits_on_a_caller_who_stopped_reading_is_bounded_by_the_watchdog() -> None:
    """The end of the body (``write_eof`` drains what is buffered) is watched like a write: a caller that stops
    reading just then is treated as gone and the handler finishes (no real sleep: ``_fire`` is called as the
    loop would)."""
    resp = _StalledEof()
    owner = types.SimpleNamespace(counters=types.SimpleNamespace(disconnects=0))
    out = _GuardedWriter(resp, 60.0)  # type: ignore[arg-type]

    async def handler() -> None:
        out.task = asyncio.current_task()
        await Gateway._finish(owner, out, b"data: [DONE]\n\n")  # type: ignore[arg-type]

    task = asyncio.ensure_future(handler())
    await asyncio.wait_for(resp.eof_started.wait(), 5)
    assert out.since is not None and out.timer is not None  # the watchdog covers the wait
    out.since -= 61.0  # as if it had waited longer than the timeout
    out._fire()
    await asyncio.wait_for(task, 5)  # finished, not hung, and not an error
    assert out.stalled and owner.counters.disconnects == 1
    out.close()


@pytest.mark.parametrize("cls", [ChatSSE, CompletionSSE])
def test_text_frames_from_the_template_are_the_rendered_frames(cls: type[ChatSSE]) -> None:
    """A text delta's frame comes from a template made once per stream: byte for byte the frame rendered from
    the chunk's dict, whatever the text or the model name (even one holding the template's marker)."""
    r = cls("rid-1", 'm"odel \x00infermux-text\x00 é')
    for text in ["hi", 'é "q" \n\\ \U0001f600 \u2028', "", "\x00infermux-text\x00", "</script>"]:
        assert r._text(text) == r._text_frame(text)
        frame = json.loads(r._text(text)[len(b"data: ") :])
        assert frame["model"] == 'm"odel \x00infermux-text\x00 é'
        choice = frame["choices"][0]
        assert (choice["delta"]["content"] if cls is ChatSSE else choice["text"]) == text


def test_anthropic_text_delta_frames_from_the_template_are_the_rendered_frames() -> None:
    r = AnthropicSSE("rid-1", "claude")
    for index in (0, 3, 12):
        for text in ["hi", 'é "q" \n\\ \U0001f600', "", "\x00infermux-text\x00"]:
            frame = r._text_delta(index, text)
            assert frame == r._delta(index, {"type": "text_delta", "text": text})
            data = json.loads(frame.split(b"data: ", 1)[1])
            assert data["index"] == index and data["delta"]["text"] == text


def test_responses_text_delta_frames_from_the_template_are_the_rendered_frames() -> None:
    """Responses frames carry a sequence number and the open item's index: the template's frames equal the
    rendered ones across items (text, a tool call, text again)."""
    fast, slow = ResponsesSSE("rid-1", "m", {}), ResponsesSSE("rid-1", "m", {})
    slow._text_delta = slow._text_delta_frame  # type: ignore[method-assign]
    events = [StreamStart(), TextDelta("hi"), TextDelta('é "q" \n'), TextDelta("")]
    events += [ToolCallStart(0, "call_1", "f"), ToolCallDelta(0, '{"a":1}'), TextDelta("after"), TextDelta("more")]
    frames = [(fast.feed(ev), slow.feed(ev)) for ev in events]
    assert all(a == b for a, b in frames)
    assert b'"delta":"after"' in frames[6][0] and b'"output_index":2' in frames[6][0]


@pytest.mark.parametrize(
    "obj",
    [
        {"a": 1, "b": [1.5, None, True, False, 'é"\n\u2028 \U0001f600'], 3: "int key", "n": float("nan")},
        {"inf": float("inf"), "neg": -0.0, "big": 10**30, "tiny": 1e-300, "t": (1, 2), "nested": {"x": [{}, []]}},
        "just a string é",
        [],
    ],
)
def test_the_gateways_encoder_is_compact_json(obj: Any) -> None:
    """One C encoder kept for every body and frame: the same text as ``json.dumps`` with the same options."""
    assert dumps(obj) == json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def test_the_gateways_encoder_refuses_what_json_cannot_encode() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"x": object()})


def test_the_key_hash_cache_remembers_only_short_secrets() -> None:
    """The hash of a presented key is remembered (a bounded LRU), but not for an oversized one: 4,096 secrets of
    header size (8 KB each) would otherwise hold 32 MB of presented, mostly invalid, keys."""
    from infermux.gateway import keys

    keys._cached_sha256_hex.cache_clear()
    short, long = "sk-imx-" + "a" * 40, "x" * 5000
    assert keys.hash_key(short) == keys.hash_key(short) == keys._sha256_hex(short)
    assert keys.hash_key(long) == keys._sha256_hex(long)
    info = keys._cached_sha256_hex.cache_info()
    assert (info.hits, info.currsize) == (1, 1)  # the short one cached and hit; the long one never stored
