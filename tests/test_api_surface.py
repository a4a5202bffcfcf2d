"""What a user of the openai SDK or LiteLLM reaches for first: exported names, serializable responses, per-call
``extra_headers`` and ``max_retries``, typed signatures that name the public method, DEBUG logs of every try,
and a clear error when one AsyncClient is used from two event loops."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from typing import Any

import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import ConfigurationError, InternalServerError, MalformedResponseError
from infermux.resilience.clock import FakeClock
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Sandbox
from infermux.transport import HTTPRequest, MockResponse, MockTransport

pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("error::ResourceWarning")]

JSON = {"content-type": "application/json"}
SECRET = "sk-secret-marker-0123456789"


def completion(text: str = "ok") -> MockResponse:
    body = {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    return MockResponse(200, JSON, json.dumps(body).encode())


def error(status: int) -> MockResponse:
    return MockResponse(status, JSON, json.dumps({"error": {"message": "x", "type": "server_error"}}).encode())


def endpoint(handler: Any, **kw: Any) -> tuple[Endpoint, MockTransport]:
    transport = MockTransport(handler)
    config = EndpointConfig(name="a", provider="openai", base_url="http://mock/v1", model="m", **kw)
    return Endpoint(config, transport=transport, clock=FakeClock(), rand=lambda: 0.0), transport


# ---------------------------------------------------------------------- names the README uses


def test_readme_names_are_exported() -> None:
    for name in ("RetryPolicy", "Timeouts", "BreakerConfig", "BreakerState", "FakeClock", "ChatStream", "Priority"):
        assert name in infermux.__all__ and getattr(infermux, name) is not None
    assert infermux.RetryPolicy is RetryPolicy


# ---------------------------------------------------------------------- to_dict, and the json() trap


async def test_to_dict_is_plain_json_data() -> None:
    e, _ = endpoint(lambda r: completion("hello"))
    async with infermux.AsyncClient([e]) as client:
        r = await client.chat("hi")
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["text"] == "hello" and d["usage"] == {
        "input_tokens": 3,
        "output_tokens": 1,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert d["endpoint"] == "a" and d["request_id"] == r.request_id and d["raw"]["id"] == "c"
    assert "raw" not in r.to_dict(raw=False)


def test_embed_response_to_dict() -> None:
    r = infermux.EmbedResponse(vectors=((0.5, 1.0),), model="m")
    assert r.to_dict() == {
        "vectors": [[0.5, 1.0]],
        "model": "m",
        "usage": None,
        "provider": None,
        "endpoint": None,
        "request_id": None,
        "provider_request_id": None,
        "latency_s": None,
        "attempts": 1,
        "raw": None,
        "route": [],  # the endpoints the router tried (none: this response was built by hand)
    }


async def test_json_of_a_non_json_reply_is_a_typed_error_pointing_at_to_dict() -> None:
    e, _ = endpoint(lambda r: completion("Paris."))
    async with infermux.AsyncClient([e]) as client:
        r = await client.chat("hi")
    with pytest.raises(MalformedResponseError, match=r"to_dict\(\)") as ei:
        r.json()
    assert ei.value.endpoint == "a" and ei.value.request_id == r.request_id and not ei.value.retryable
    assert infermux.ChatResponse(text='{"a": 1}').json() == {"a": 1}


# ---------------------------------------------------------------------- per-call options


@pytest.mark.parametrize("stream", [False, True])
async def test_extra_headers_are_sent_on_every_attempt(stream: bool) -> None:
    calls: list[HTTPRequest] = []

    def handler(r: HTTPRequest) -> MockResponse:
        calls.append(r)
        if len(calls) == 1:
            return error(503)
        if stream:
            chunk = {"id": "c", "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
            return MockResponse(
                200, {"content-type": "text/event-stream"}, f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            )
        return completion()

    e, _ = endpoint(handler)
    headers = {"X-Team": "search", "OpenAI-Organization": "org-1"}
    async with infermux.AsyncClient([e]) as client:
        if stream:
            async with client.stream("hi", extra_headers=headers) as s:
                assert (await s.final_response()).text == "ok"
        else:
            await client.chat("hi", extra_headers=headers)
    assert len(calls) == 2
    for r in calls:
        assert r.headers["x-team"] == "search" and r.headers["openai-organization"] == "org-1"
        assert r.headers["x-request-id"] == calls[0].headers["x-request-id"]  # ours cannot be overridden


async def test_embed_takes_extra_headers_and_max_retries() -> None:
    calls: list[HTTPRequest] = []

    def handler(r: HTTPRequest) -> MockResponse:
        calls.append(r)
        return error(503)

    e, _ = endpoint(handler)
    async with infermux.AsyncClient([e]) as client:
        with pytest.raises(InternalServerError):
            await client.embed("x", extra_headers={"x-a": "1"}, max_retries=1)
    assert len(calls) == 2 and all(r.headers["x-a"] == "1" for r in calls)


@pytest.mark.parametrize("stream", [False, True])
async def test_max_retries_per_call(stream: bool) -> None:
    calls: list[HTTPRequest] = []
    no_breaker = infermux.BreakerConfig(consecutive_failures=0, minimum_calls=100)
    e, _ = endpoint(lambda r: calls.append(r) or error(503), retry=RetryPolicy(max_retries=5), breaker=no_breaker)
    async with infermux.AsyncClient([e]) as client:
        for n in (0, 2):
            calls.clear()
            with pytest.raises(InternalServerError) as ei:
                if stream:
                    async with client.stream("hi", max_retries=n) as s:
                        await s.final_response()
                else:
                    await client.chat("hi", max_retries=n)
            assert len(calls) == n + 1 and ei.value.attempts == n + 1
        calls.clear()
        with pytest.raises(InternalServerError):
            await client.chat("hi")  # the endpoint's own policy again
        assert len(calls) == 6


@pytest.mark.parametrize("bad", [{"max_retries": -1}, {"max_retries": "2"}, {"extra_headers": {"x": 1}}])
async def test_bad_per_call_options_are_configuration_errors(bad: dict[str, Any]) -> None:
    e, transport = endpoint(lambda r: completion())
    async with infermux.AsyncClient([e]) as client:
        with pytest.raises(ConfigurationError):
            await client.chat("hi", **bad)
    assert transport.requests == []


# ---------------------------------------------------------------------- signatures


def test_sync_client_methods_have_explicit_signatures() -> None:
    for method in (infermux.Client.chat, infermux.Client.stream):
        params = inspect.signature(method).parameters
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        assert {"temperature", "max_tokens", "tools", "extra_headers", "max_retries", "timeout"} <= set(params)
    assert "max_retries" in inspect.signature(infermux.Client.embed).parameters


async def test_a_wrong_keyword_names_the_public_method() -> None:
    e, _ = endpoint(lambda r: completion())
    with infermux.Client([e]) as client:
        with pytest.raises(TypeError, match=r"Client\.chat\(\) got an unexpected keyword argument 'temprature'"):
            client.chat("hi", temprature=0)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"Client\.stream\(\) got an unexpected keyword argument"):
            client.stream("hi", max_token=3)  # type: ignore[call-arg]
    e2, _ = endpoint(lambda r: completion())
    async with infermux.AsyncClient([e2]) as aclient:
        with pytest.raises(TypeError, match=r"AsyncClient\.chat\(\) got an unexpected keyword argument 'temprature'"):
            await aclient.chat("hi", temprature=0)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"AsyncClient\.stream\(\) got an unexpected keyword argument"):
            aclient.stream("hi", max_token=3)  # type: ignore[call-arg]


# ---------------------------------------------------------------------- DEBUG logs of every try


async def test_debug_log_names_request_and_attempt_of_every_try_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    n = 0

    def handler(r: HTTPRequest) -> MockResponse:
        nonlocal n
        n += 1
        return error(503) if n < 3 else completion()

    e, _ = endpoint(handler, api_keys=(SECRET,))
    caplog.set_level(logging.DEBUG, logger="infermux")
    async with infermux.AsyncClient([e]) as client:
        r = await client.chat("hi", request_id="rid-123")
    assert r.attempts == 3
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "infermux"]
    for attempt in (1, 2, 3):
        assert any("rid-123" in m and f"attempt {attempt} " in m for m in lines), lines
    assert any("attempt 1 failed: InternalServerError (retrying" in m for m in lines), lines
    assert not any(SECRET in m or SECRET[:12] in m for m in lines)


# ---------------------------------------------------------------------- one AsyncClient, two event loops


def test_async_client_under_two_asyncio_runs_is_a_clear_error() -> None:
    async def use(client: infermux.AsyncClient) -> str:
        return (await client.chat("hi", max_tokens=4)).text

    async def main() -> None:
        async with Sandbox() as sb:
            config = EndpointConfig(
                name="sb", provider="openai", base_url=sb.openai_base_url, model="gpt-4o-mini", api_keys=("sk-test",)
            )
            holder.append(infermux.AsyncClient([config]))
            assert await use(holder[0])
            sandbox.append(sb)
            with pytest.raises(ConfigurationError, match="another event loop"):
                await asyncio.get_running_loop().run_in_executor(None, lambda: asyncio.run(use(holder[0])))
            await holder[0].aclose()

            async def after_aclose() -> str:  # a clean rebind once the client was closed
                try:
                    return await use(holder[0])
                finally:
                    await holder[0].aclose()

            assert await asyncio.get_running_loop().run_in_executor(None, lambda: asyncio.run(after_aclose()))

    holder: list[infermux.AsyncClient] = []
    sandbox: list[Sandbox] = []
    asyncio.run(main())
    assert sandbox
