"""Groq provider unit tests: model-compatibility refusals, rate-limit headers, timing fields, error mapping."""

from __future__ import annotations

import json

import pytest

from infermux.errors import (
    AuthenticationError,
    ConfigurationError,
    InternalServerError,
    OverloadedError,
    RateLimitError,
)
from infermux.providers import get_provider, groq
from infermux.resilience.retry import RetryPolicy, decide
from infermux.types import ChatRequest, ImagePart, Message, ResponseFormat, TextPart, Tool

PNG = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
TOOL = Tool("get_weather", "weather", {"type": "object", "properties": {"city": {"type": "string"}}})


def req(**kw: object) -> ChatRequest:
    return ChatRequest(messages=(Message.user("hi"),), **kw)  # type: ignore[arg-type]


def image_req() -> ChatRequest:
    return ChatRequest(messages=(Message.user([TextPart("what is this?"), PNG]),))


def test_registry_and_capabilities() -> None:
    p = get_provider("groq")
    assert p is groq.PROVIDER and p.name == "groq"
    assert p.default_base_url == "https://api.groq.com/openai/v1"
    assert {"chat", "stream", "tools", "vision", "json"} <= p.capabilities
    assert p.build_embed is None


def test_compatible_request_builds_openai_body() -> None:
    pr = groq.PROVIDER.build_chat(
        req(tools=(TOOL,), response_format=ResponseFormat("json_object")), "llama-3.3-70b-versatile", True
    )
    assert pr.method == "POST" and pr.path == "/chat/completions" and pr.stream
    assert pr.json["model"] == "llama-3.3-70b-versatile"
    assert pr.json["tools"][0]["function"]["name"] == "get_weather"
    assert pr.json["response_format"] == {"type": "json_object"}
    assert pr.json["stream_options"] == {"include_usage": True}


def test_images_to_non_vision_model_refused_with_alternatives() -> None:
    with pytest.raises(ConfigurationError) as ei:
        groq.build_chat(image_req(), "llama-3.1-8b-instant", False)
    msg = str(ei.value)
    assert "does not take images" in msg and "meta-llama/llama-4-scout-17b-16e-instruct" in msg
    assert "llama-3.1-8b-instant," not in msg  # the refused model is not offered as an alternative
    pr = groq.build_chat(image_req(), "meta-llama/llama-4-scout-17b-16e-instruct", False)
    assert pr.json["messages"][0]["content"][1]["type"] == "image_url"


def test_tools_json_and_schema_refusals() -> None:
    with pytest.raises(ConfigurationError, match=r"does not support tool use.*llama-3\.3-70b-versatile"):
        groq.build_chat(req(tools=(TOOL,)), "allam-2-7b", False)
    groq.build_chat(req(tools=(TOOL,), tool_choice="none"), "allam-2-7b", False)  # tools disabled: fine
    with pytest.raises(ConfigurationError, match="JSON mode"):
        groq.build_chat(req(response_format=ResponseFormat("json_object")), "allam-2-7b", False)
    schema = ResponseFormat("json_schema", schema={"type": "object"})
    with pytest.raises(ConfigurationError, match=r"structured outputs.*openai/gpt-oss-120b"):
        groq.build_chat(req(response_format=schema), "llama-3.1-8b-instant", False)
    ok = groq.build_chat(req(response_format=schema), "openai/gpt-oss-20b", False)
    assert ok.json["response_format"]["type"] == "json_schema"


def test_non_chat_limits_and_n() -> None:
    with pytest.raises(ConfigurationError, match="not a chat model"):
        groq.build_chat(req(), "whisper-large-v3", False)
    with pytest.raises(ConfigurationError, match="max_tokens <= 8192"):
        groq.build_chat(req(max_tokens=9000), "gemma2-9b-it", False)
    long = ChatRequest(messages=(Message.user("word " * 20000),))  # 100k chars: surely > 8192 tokens
    with pytest.raises(ConfigurationError, match="context window of 8192"):
        groq.build_chat(long, "gemma2-9b-it", False)
    groq.build_chat(long, "llama-3.3-70b-versatile", False)  # 128k context: sent
    with pytest.raises(ConfigurationError, match="n=1"):
        groq.build_chat(req(extra={"n": 2}), "llama-3.1-8b-instant", False)


def test_unknown_models_pass_unchecked_and_register_model() -> None:
    pr = groq.build_chat(image_req(), "some-new-model", False)
    assert pr.json["model"] == "some-new-model"
    try:
        groq.register_model(groq.GroqModel("some-new-model", 4096, 1024, tools=False))
        with pytest.raises(ConfigurationError, match="images"):
            groq.build_chat(image_req(), "some-new-model", False)
    finally:
        groq.MODELS.pop("some-new-model", None)
    with pytest.raises(ConfigurationError):
        groq.register_model("nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2m59.56s", 179.56),
        ("7.66s", 7.66),
        ("120ms", 0.12),
        ("17.399999999s", 17.399999999),
        ("1h2m3s", 3723.0),
        ("0s", 0.0),
        ("6ms", 0.006),
        ("12", 12.0),
        ("250us", 0.00025),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert groq.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "abc", "5x", "s", "1m-2s", "-3", "1.2.3s", "inf"])
def test_parse_duration_rejects_garbage(text: str | None) -> None:
    assert groq.parse_duration(text) is None


def test_parse_rate_limits() -> None:
    headers = {
        "x-ratelimit-limit-requests": "14400",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-requests": "14399",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-requests": "2m59.56s",
        "x-ratelimit-reset-tokens": "7.66s",
        "retry-after": "8",
    }
    rl = groq.parse_rate_limits(headers)
    assert (rl.limit_requests, rl.limit_tokens, rl.remaining_requests, rl.remaining_tokens) == (14400, 6000, 14399, 0)
    assert rl.reset_requests == pytest.approx(179.56) and rl.reset_tokens == pytest.approx(7.66)
    assert rl.retry_after == 8.0 and rl.exhausted
    empty = groq.parse_rate_limits({"x-ratelimit-limit-requests": "lots"})
    assert empty == groq.RateLimitInfo() and not empty.exhausted


RECORDED_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "llama3-8b-8192",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {
        "queue_time": 0.095563353,
        "prompt_tokens": 18,
        "prompt_time": 0.002854657,
        "completion_tokens": 70,
        "completion_time": 0.058333333,
        "total_tokens": 88,
        "total_time": 0.06118799,
    },
    "x_groq": {"id": "req_01j6y8ybhffz1r327rjcy7ygra"},
}


def test_timing_kept_in_raw_and_read_by_helper() -> None:
    headers = {"content-type": "application/json", "x-request-id": "req_01j6y8ybhffz1r327rjcy7ygra"}
    resp = groq.PROVIDER.parse_chat(json.dumps(RECORDED_BODY).encode(), headers)
    assert resp.provider == "groq" and resp.provider_request_id == "req_01j6y8ybhffz1r327rjcy7ygra"
    assert resp.raw["x_groq"]["id"] == "req_01j6y8ybhffz1r327rjcy7ygra"
    timing = groq.groq_timing(resp)
    assert timing == {
        "queue_time": 0.095563353,
        "prompt_time": 0.002854657,
        "completion_time": 0.058333333,
        "total_time": 0.06118799,
    }
    chunk = {"choices": [], "x_groq": {"id": "r", "usage": {"queue_time": 0.5, "total_time": 0.25, "prompt_tokens": 3}}}
    assert groq.groq_timing(chunk) == {"queue_time": 0.5, "total_time": 0.25}
    assert groq.groq_timing({"queue_time": True}) == {}  # booleans are not times
    totals = groq.GroqTimingTotals()
    totals.add(resp, "g1")
    totals.add(resp, "g1")
    assert totals.snapshot()["g1"]["total_time"] == pytest.approx(2 * 0.06118799)
    assert totals.snapshot()["g1"]["responses"] == 2


def test_classify_429_with_retry_after() -> None:
    body = {
        "error": {
            "message": "Rate limit reached ... Please try again in 7.66s.",
            "type": "tokens",
            "code": "rate_limit_exceeded",
        }
    }
    err = groq.classify_error(429, {"retry-after": "8", "x-request-id": "req_x"}, json.dumps(body).encode())
    assert isinstance(err, RateLimitError) and err.retry_after == 8.0
    assert err.error_type == "tokens" and "Rate limit reached" in (err.provider_message or "")
    assert err.provider_request_id == "req_x" and err.provider == "groq"


def test_classify_429_without_retry_after_uses_exhausted_reset() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "100",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-requests": "2m59.56s",
        "x-ratelimit-reset-tokens": "7.66s",
    }
    err = groq.classify_error(429, headers, b'{"error": {"message": "slow down", "type": "tokens"}}')
    assert err.retry_after == pytest.approx(7.66)


def test_classify_498_flex_capacity_is_retryable_overload() -> None:
    body = {"error": {"message": "Flex tier capacity exceeded", "type": "capacity_exceeded"}}
    err = groq.classify_error(498, {"x-request-id": "req_y"}, json.dumps(body).encode())
    assert type(err) is OverloadedError and err.status_code == 498 and err.retryable
    assert err.error_type == "capacity_exceeded" and err.provider_request_id == "req_y"
    policy = RetryPolicy(initial_delay=0.001)
    assert 498 not in policy.retry_statuses and decide(policy, err, retry_number=1, elapsed=0).retry
    no_retry = groq.classify_error(498, {"x-should-retry": "false"}, json.dumps(body).encode())
    assert not decide(policy, no_retry, retry_number=1, elapsed=0).retry


def test_classify_503_over_capacity_and_other_5xx() -> None:
    body = {"error": {"message": "Groq is currently over capacity. Please try again later.", "type": "x"}}
    err = groq.classify_error(503, {}, json.dumps(body).encode())
    assert type(err) is OverloadedError and err.status_code == 503 and err.retryable
    plain = groq.classify_error(503, {}, b"<html>503 Service Temporarily Unavailable</html>")
    assert type(plain) is InternalServerError


def test_classify_401() -> None:
    body = {"error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}}
    err = groq.PROVIDER.classify_error(401, {}, json.dumps(body).encode())
    assert isinstance(err, AuthenticationError) and err.provider_message == "Invalid API Key"
    assert not err.retryable
