"""The clients' promises: the caller's timeout bounds every fallback, bad input is a ConfigurationError, and the
sync facade never hangs (a close while calls run ends them; Ctrl-C cancels the call on the loop thread too)."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import infermux
from infermux import config as cfg
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import (
    AllEndpointsFailedError,
    ConfigurationError,
    DeadlineExceededError,
    InfermuxError,
)
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport

pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("error::ResourceWarning")]

JSON = {"content-type": "application/json"}


def error(status: int) -> MockResponse:
    return MockResponse(status, JSON, json.dumps({"error": {"message": "x", "type": "server_error"}}).encode())


def completion() -> MockResponse:
    body = {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    }
    return MockResponse(200, JSON, json.dumps(body).encode())


def ep(name: str, handler: Any, clock: Any, **kw: Any) -> Endpoint:
    config = EndpointConfig(name=name, provider="openai", base_url="http://mock/v1", model="m", **kw)
    return Endpoint(config, transport=MockTransport(handler), clock=clock, rand=lambda: 1.0)


# ---------------------------------------------------------------------- one budget across fallbacks


@pytest.mark.parametrize("stream", [False, True])
async def test_caller_timeout_bounds_all_endpoints_together(stream: bool) -> None:
    clock = FakeClock()
    pol = RetryPolicy(max_retries=10, initial_delay=1.0, factor=1.0, jitter="none")
    a = ep("a", lambda r: error(503), clock, retry=pol)
    b = ep("b", lambda r: error(503), clock, retry=pol)
    start = clock.now()
    async with infermux.AsyncClient([a, b], clock=clock) as client:
        with pytest.raises(AllEndpointsFailedError) as ei:
            if stream:
                async with client.stream("hi", timeout=5.0) as s:
                    await s.final_response()
            else:
                await client.chat("hi", timeout=5.0)
    assert clock.now() - start <= 5.0  # not 5 s per endpoint
    # time is kept for the fallback: "a" gets half of the 5 s, "b" what is left, so both were tried
    assert [e.endpoint for e in ei.value.errors] == ["a", "b"]
    assert a.stats()["attempts"] >= 2 and b.stats()["attempts"] >= 2


async def test_caller_timeout_is_shared_so_a_slow_primary_leaves_time_for_the_backup() -> None:
    clock = FakeClock()
    pol = RetryPolicy(max_retries=10, initial_delay=1.0, factor=1.0, jitter="none")

    def slow_503(r: HTTPRequest) -> MockResponse:
        clock.advance(1.5)  # each attempt takes 1.5 s
        return error(503)

    a = ep("a", slow_503, clock, retry=pol)
    b_calls: list[HTTPRequest] = []
    b = ep("b", lambda r: b_calls.append(r) or completion(), clock)
    async with infermux.AsyncClient([a, b], clock=clock) as client:
        r = await client.chat("hi", timeout=3.0)
    # "a" had 1.5 s of the 3 s: one 1.5 s attempt, no time for a retry; "b" got the remaining 1.5 s
    assert r.endpoint == "b" and len(b_calls) == 1 and a.stats()["attempts"] == 1

    clock2 = FakeClock()

    def slower_503(r: HTTPRequest) -> MockResponse:
        clock2.advance(4.0)
        return error(503)

    a2 = ep("a", slower_503, clock2, retry=pol)
    b2_calls: list[HTTPRequest] = []
    b2 = ep("b", lambda r: b2_calls.append(r) or completion(), clock2)
    async with infermux.AsyncClient([a2, b2], clock=clock2) as client:
        with pytest.raises(AllEndpointsFailedError) as ei:
            await client.chat("hi", timeout=3.0)
    assert b2_calls == []  # the first attempt overran the whole budget: nothing is left for "b"
    assert isinstance(ei.value.errors[-1], DeadlineExceededError) and ei.value.errors[-1].endpoint == "b"


# ---------------------------------------------------------------------- bad input is typed


@pytest.mark.parametrize(
    ("messages", "params"),
    [
        (123, {}),
        ([None], {}),
        ([{"role": "user", "content": [{"type": "image_url"}]}], {}),
        ([{"role": "assistant", "content": "x", "tool_calls": [{"id": "1"}]}], {}),
        ("hi", {"tools": [5]}),
        ("hi", {"response_format": 5}),
        ("hi", {"response_format": {"type": "json_schema", "json_schema": 5}}),
        ("hi", {"stop": 5}),
        ("hi", {"metadata": 5}),
        ("hi", {"extra": 5}),
    ],
)
async def test_bad_input_is_a_configuration_error(messages: Any, params: dict[str, Any]) -> None:
    clock = FakeClock()
    async with infermux.AsyncClient([ep("a", lambda r: completion(), clock)], clock=clock) as client:
        with pytest.raises(ConfigurationError):
            await client.chat(messages, **params)


@pytest.mark.parametrize("text", ['{"endpoints": ["x"]}', '{"endpoints": [["name", "a"]]}'])
def test_config_file_with_bad_entries_is_a_configuration_error(tmp_path: Path, text: str) -> None:
    p = tmp_path / "c.json"
    p.write_text(text)
    with pytest.raises(ConfigurationError):
        cfg.load_config(p)


def test_config_file_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_bytes(b"\xff\xfe[[endpoints]]")
    with pytest.raises(ConfigurationError):
        cfg.load_config(p)


# ---------------------------------------------------------------------- the sync facade never hangs


def blocking_handler(entered: threading.Event) -> Any:
    async def handler(r: HTTPRequest) -> MockResponse:
        entered.set()
        await asyncio.Event().wait()  # never answers
        return completion()

    return handler


def test_sync_close_while_a_call_runs_ends_it_with_a_typed_error() -> None:
    entered = threading.Event()
    e = Endpoint(
        EndpointConfig(name="a", provider="openai", base_url="http://mock/v1", model="m"),
        transport=MockTransport(blocking_handler(entered)),
    )
    client = infermux.Client([e])
    outcome: list[BaseException | str] = []

    def worker() -> None:
        try:
            client.chat("hi")
            outcome.append("returned")
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    assert entered.wait(5)
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 < 5
    t.join(5)
    assert not t.is_alive(), "the caller of chat() hangs after close()"
    assert len(outcome) == 1 and isinstance(outcome[0], InfermuxError), outcome
    with pytest.raises(ConfigurationError):
        client.chat("again")


def test_sync_ctrl_c_cancels_the_call_on_the_loop_thread() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals go to the main thread")
    entered = threading.Event()
    e = Endpoint(
        EndpointConfig(name="a", provider="openai", base_url="http://mock/v1", model="m"),
        transport=MockTransport(blocking_handler(entered)),
    )
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    main_id = threading.main_thread().ident
    assert main_id is not None

    def interrupt() -> None:
        if entered.wait(5):
            signal.pthread_kill(main_id, signal.SIGINT)

    try:
        with infermux.Client([e]) as client:
            threading.Thread(target=interrupt, daemon=True).start()
            with pytest.raises(KeyboardInterrupt):
                client.chat("hi")
            deadline = time.monotonic() + 5
            while e.stats()["in_flight"] and time.monotonic() < deadline:
                time.sleep(0.01)
            s = e.stats()
            assert s["in_flight"] == 0 and s["cancelled"] == 1
    finally:
        signal.signal(signal.SIGINT, old)
