"""The sync facade's lifecycle: Ctrl-C wherever it lands leaves no call running, stats are read on the loop
thread, an unclosed client does not leak its thread or descriptors, and an abandoned stream gives its queue
slot back at once (sync and async), without waiting for the cyclic garbage collector."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import infermux
from infermux import _sync
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import InternalServerError
from infermux.resilience.breaker import BreakerConfig, BreakerState
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import SandboxThread
from infermux.transport import HTTPRequest, MockResponse, MockTransport

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("error::ResourceWarning")]

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}


def completion() -> MockResponse:
    body = {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    }
    return MockResponse(200, JSON, json.dumps(body).encode())


def sse_chunks(n: int) -> Iterator[bytes]:
    for i in range(n):
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"t{i} "}}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    done = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode()


def chat_or_stream(r: HTTPRequest) -> MockResponse:
    if r.body is not None and json.loads(r.body).get("stream"):
        return MockResponse(200, SSE, sse_chunks(50))
    return completion()


def endpoint(handler: Any, **kw: Any) -> Endpoint:
    clock = kw.pop("clock", None)
    config = EndpointConfig(name="a", provider="openai", base_url="http://mock/v1", model="m", **kw)
    extra = {"clock": clock} if clock is not None else {}
    return Endpoint(config, transport=MockTransport(handler), **extra)


def wait_until(cond: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# ---------------------------------------------------------------------- Ctrl-C, wherever it lands


def blocking(entered: threading.Event, calls: list[int]) -> Any:
    async def handler(r: HTTPRequest) -> MockResponse:
        calls.append(1)
        entered.set()
        await asyncio.Event().wait()  # never answers
        return completion()

    return handler


@pytest.mark.parametrize("where", ["before_submit", "after_submit_before_start", "after_start", "while_waiting"])
def test_interrupt_anywhere_in_a_sync_call_leaves_nothing_running(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyboardInterrupt injected at each point of the submission (deterministic: no signal timing)."""
    entered, calls = threading.Event(), []
    e = endpoint(blocking(entered, calls))
    client = infermux.Client([e])
    loop = client._portal.loop
    real_submit = loop.call_soon_threadsafe
    gate = threading.Event()

    def submit(cb: Any, *args: Any) -> Any:
        if cb != client._portal._start:
            return real_submit(cb, *args)
        if where == "before_submit":
            raise KeyboardInterrupt
        if where == "after_submit_before_start":
            real_submit(gate.wait, 5)  # the loop thread is busy: _start runs after the cancel
            handle = real_submit(cb, *args)
            raise KeyboardInterrupt
        handle = real_submit(cb, *args)
        if where == "after_start":
            assert entered.wait(5)
            raise KeyboardInterrupt
        return handle

    def interrupted_wait(fs: Any, timeout: float | None = None) -> Any:
        assert entered.wait(5)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "call_soon_threadsafe", submit)
    if where == "while_waiting":
        monkeypatch.setattr(_sync.concurrent.futures, "wait", interrupted_wait)
    try:
        with pytest.raises(KeyboardInterrupt):
            client.chat("hi")
        gate.set()
        monkeypatch.undo()
        assert wait_until(lambda: client.stats()["a"]["in_flight"] == 0)
        s = client.stats()["a"]
        if where in ("before_submit", "after_submit_before_start"):
            assert calls == [] and s["requests"] == 0  # never started
        else:
            assert calls == [1] and s["cancelled"] == 1  # started, then cancelled on the loop thread
    finally:
        gate.set()
        client.close()


# ---------------------------------------------------------------------- stats on the loop thread


def test_stats_run_on_the_loop_thread_with_breaker_callbacks() -> None:
    clock = FakeClock()
    seen: list[tuple[str, BreakerState, BreakerState]] = []

    def on_change(name: str, old: BreakerState, new: BreakerState) -> None:
        seen.append((threading.current_thread().name, old, new))

    config = EndpointConfig(
        name="a",
        provider="openai",
        base_url="http://mock/v1",
        model="m",
        retry=RetryPolicy(max_retries=0),
        breaker=BreakerConfig(consecutive_failures=1, open_seconds=1.0),
    )
    body = json.dumps({"error": {"message": "x", "type": "server_error"}}).encode()
    e = Endpoint(
        config,
        transport=MockTransport(lambda r: MockResponse(503, JSON, body)),
        clock=clock,
        on_breaker_change=on_change,
    )
    with infermux.Client([e]) as client:
        with pytest.raises(InternalServerError):
            client.chat("hi")
        clock.advance(2.0)  # the next read of the breaker's state moves it OPEN -> HALF_OPEN
        assert client.stats()["a"]["breaker"]["state"] == "half_open"
    assert [(old, new) for _, old, new in seen] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
    ]
    assert {name for name, _, _ in seen} == {"infermux-loop"}  # never the caller's thread


def test_stats_after_close_still_work() -> None:
    client = infermux.Client([endpoint(lambda r: completion())])
    client.chat("hi")
    client.close()
    assert client.stats()["a"]["successes"] == 1


# ---------------------------------------------------------------------- an unclosed client does not leak


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_unclosed_clients_release_thread_and_descriptors() -> None:
    with SandboxThread() as sb:
        cfg = EndpointConfig(
            name="sb", provider="openai", base_url=sb.openai_base_url, model="gpt-4o-mini", api_keys=("sk-test",)
        )
        gc.collect()
        threads, fds = threading.active_count(), _fds()
        for _ in range(50):
            client = infermux.Client([cfg], trust_env=False)
            assert client.chat("hi", max_tokens=4).text  # a real connection is open now
            del client  # never closed
        assert wait_until(lambda: threading.active_count() <= threads, 10), threading.enumerate()
        assert _fds() <= fds + 2, f"{_fds() - fds} descriptors leaked by 50 unclosed clients"


def test_a_stream_keeps_its_client_alive() -> None:
    def make() -> _sync.SyncChatStream:
        return infermux.Client([endpoint(chat_or_stream)]).stream("hi")  # the client itself is dropped

    with make() as s:
        text = "".join(s.text())
    assert text.startswith("t0 t1 ")


# ---------------------------------------------------------------------- abandoned streams give the slot back


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """Only reference counting may free the abandoned streams: the fix must not depend on the cyclic GC."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_abandoned_async_stream_releases_its_slot(no_cyclic_gc: None) -> None:
    e = endpoint(chat_or_stream, max_concurrency=2, max_queue=8)
    async with infermux.AsyncClient([e]) as client:
        for _ in range(3):
            async for _t in client.stream("x").text():
                break  # no `async with`, no aclose()
        r = await client.chat("x", timeout=5)  # the third call must not wait for a slot
        assert r.text == "ok"
        for _ in range(20):
            if e.stats()["in_flight"] == 0:
                break
            await asyncio.sleep(0)
        assert e.stats()["in_flight"] == 0


def test_abandoned_sync_stream_releases_its_slot(no_cyclic_gc: None) -> None:
    e = endpoint(chat_or_stream, max_concurrency=2, max_queue=8)
    with infermux.Client([e]) as client:
        for _ in range(3):
            for _t in client.stream("x").text():
                break
        assert client.chat("x", timeout=5).text == "ok"
        assert wait_until(lambda: client.stats()["a"]["in_flight"] == 0)
        assert client.stats()["a"]["cancelled"] == 3
