"""Wrong types never reach deep code (issue 8 item 14): every public constructor and call raises
ConfigurationError naming the field, before any I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import ConfigurationError
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport, Timeouts
from infermux.types import ChatRequest, EmbedRequest, Message

BASE = {"name": "e", "provider": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 5),
        ("name", ""),
        ("provider", 123),
        ("provider", None),
        ("base_url", 5),
        ("model", ["m"]),
        ("model", ""),
        ("models", 5),
        ("models", [1]),
        ("api_keys", 123),
        ("api_keys", [b"sk-bytes"]),
        ("api_key_env", 5),
        ("key_strategy", "random"),
        ("retry", {"max_retries": 1}),
        ("breaker", 5),
        ("timeouts", 30),
        ("limits", 1024),
        ("max_concurrency", "8"),
        ("max_concurrency", 0),
        ("max_concurrency", True),
        ("max_queue", -1),
        ("max_queue", 1.5),
        ("overflow", "drop"),
        ("queue_aging", "30"),
        ("queue_aging", 0),
        ("adaptive_concurrency", "yes"),
        ("fail_fast", 1),
        ("resume_streams", "no"),
        ("headers", ["x"]),
        ("headers", {"x-a": 5}),
        ("headers", {5: "v"}),
        ("headers", {"bad name": "v"}),
        ("headers", {"x-a": "v\r\nx-injected: 1"}),
    ],
)
def test_endpoint_config_names_the_bad_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as ei:
        EndpointConfig(**{**BASE, field: value})
    assert field in str(ei.value)


@pytest.mark.parametrize("secret_field", ["api_keys", "headers"])
def test_bad_secret_fields_do_not_echo_their_values(secret_field: str) -> None:
    value: Any = [object(), "sk-SHOULD-NOT-SHOW"] if secret_field == "api_keys" else {"authorization": 123456789}
    with pytest.raises(ConfigurationError) as ei:
        EndpointConfig(**{**BASE, secret_field: value})
    assert "SHOULD-NOT-SHOW" not in str(ei.value) and "123456789" not in str(ei.value)


def test_endpoint_config_normalises_lists_and_single_strings() -> None:
    cfg = EndpointConfig(**{**BASE, "api_keys": "sk-1", "models": ["a", "b"], "api_key_env": ["K"]})
    assert cfg.api_keys == ("sk-1",) and cfg.models == ("a", "b") and cfg.api_key_env == ("K",)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"read": "10"}, "read"),
        ({"read": -1}, "read"),
        ({"read": 0}, "read"),  # 0 must not silently disable the timeout
        ({"read": float("inf")}, "read"),
        ({"read": float("nan")}, "read"),
        ({"connect": None}, "connect"),
        ({"connect": True}, "connect"),
    ],
)
def test_timeouts_are_validated(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=f"Timeouts.{field}"):
        Timeouts(**kw)


def test_valid_timeouts_still_work() -> None:
    assert Timeouts(connect=1, read=0.5) == Timeouts(1, 0.5)


# ---------------------------------------------------------------------- calls


def _completion(_req: HTTPRequest) -> MockResponse:
    body = {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }
    return MockResponse(200, {"content-type": "application/json"}, json.dumps(body).encode())


@pytest.fixture
async def client() -> Any:
    transport = MockTransport(_completion)
    cfg = EndpointConfig(**{**BASE, "retry": RetryPolicy(max_retries=0)})
    async with infermux.AsyncClient([cfg], transport=transport) as c:
        c.sent = transport.requests  # type: ignore[attr-defined]
        yield c


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": ["m"]}, "model"),
        ({"seed": "s"}, "seed"),
        ({"user": 5}, "user"),
        ({"parallel_tool_calls": "y"}, "parallel_tool_calls"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": True}, "temperature"),
        ({"top_p": "0.5"}, "top_p"),
        ({"stop": [1]}, "stop"),
        ({"tool_choice": 5}, "tool_choice"),
        ({"metadata": ["x"]}, "metadata"),
    ],
)
async def test_chat_parameters_are_validated(client: Any, params: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        await client.chat("hi", **params)
    assert client.sent == []  # nothing was sent


@pytest.mark.parametrize(
    ("inputs", "kw", "field"),
    [
        (123, {}, "inputs"),
        (["a", 1], {}, "inputs"),
        ("a", {"dimensions": "3"}, "dimensions"),
        ("a", {"dimensions": 0}, "dimensions"),
        ("a", {"model": 5}, "model"),
        ("a", {"extra": 5}, "extra"),
    ],
)
async def test_embed_parameters_are_validated(client: Any, inputs: Any, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        await client.embed(inputs, **kw)
    assert client.sent == []


async def test_embed_accepts_a_generator(client: Any) -> None:
    with pytest.raises(infermux.MalformedResponseError):  # the mock answers a chat body: it was sent
        await client.embed(s for s in ("a", "b"))
    assert json.loads(client.sent[0].body)["input"] == ["a", "b"]


@pytest.mark.parametrize("text", ["lone \ud800 surrogate", "\udfff"])
async def test_lone_surrogate_in_a_prompt_is_a_configuration_error(client: Any, text: str) -> None:
    with pytest.raises(ConfigurationError) as ei:
        await client.chat([{"role": "system", "content": "ok"}, {"role": "user", "content": text}])
    assert "messages[1].content" in str(ei.value) and ei.value.endpoint == "e"
    assert not ei.value.retryable and client.sent == []
    with pytest.raises(ConfigurationError, match=r"input\[1\]"):
        await client.embed(["fine", text])


def test_direct_request_constructors_validate() -> None:
    with pytest.raises(ConfigurationError, match=r"ChatRequest\.model"):
        ChatRequest((Message.user("x"),), model=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"EmbedRequest\.inputs"):
        EmbedRequest(5)  # type: ignore[arg-type]


def test_endpoint_with_a_provider_object_and_unknown_names() -> None:
    from infermux.providers import get_provider

    ep = Endpoint(EndpointConfig(**{**BASE, "provider": get_provider("anthropic")}))  # type: ignore[arg-type]
    assert ep.provider.name == "anthropic"
    with pytest.raises(ConfigurationError, match="provider"):
        get_provider(123)  # type: ignore[arg-type]
