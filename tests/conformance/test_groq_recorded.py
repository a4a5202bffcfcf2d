"""Recorded api.groq.com traffic through the Groq provider: responses parsed (streams fed in small chunks) with
Groq's extras checked (usage timing fields, ``x_groq``, ``x-ratelimit-*`` headers), errors classified (498/503
capacity -> OverloadedError), requests rebuilt through the model-checking ``build_chat`` and compared with what
the groq SDK sent. ``check_response`` / ``check_request`` work on any recording that ``accepts``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from infermux.errors import ConfigurationError
from infermux.providers import groq
from infermux.providers import openai as oa

from ._checks import check_status_error, error_envelope, expected_finish, run_stream, sse_objects
from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"groq"})


def accepts(rec: Recording) -> bool:
    return rec.provider == "groq"


def _chat_only(rec: Recording) -> None:
    if rec.endpoint_kind not in ("chat", None):
        pytest.skip(f"endpoint kind {rec.endpoint_kind} is not served by the groq provider (chat only)")


def _check_rate_limits(rec: Recording) -> None:
    h = rec.response_headers()
    rl = groq.parse_rate_limits(h)
    for attr, name in (
        ("limit_requests", "x-ratelimit-limit-requests"),
        ("limit_tokens", "x-ratelimit-limit-tokens"),
        ("remaining_requests", "x-ratelimit-remaining-requests"),
        ("remaining_tokens", "x-ratelimit-remaining-tokens"),
    ):
        if name in h and h[name].strip().isdigit():
            assert getattr(rl, attr) == int(h[name]), name
    for name, value in (("requests", rl.reset_requests), ("tokens", rl.reset_tokens)):
        text = h.get(f"x-ratelimit-reset-{name}")
        if text is None:
            continue
        assert value is not None, text
        if text.endswith("ms"):
            assert value == pytest.approx(float(text[:-2]) / 1000)
        elif text.endswith("s") and "m" not in text and "h" not in text:
            assert value == pytest.approx(float(text[:-1]))


def _check_stream(rec: Recording) -> None:
    chunks = [obj for _, obj in sse_objects(rec) if isinstance(obj, Mapping)]
    error = next((error_envelope(_body_rec(rec, c))[1] for c in chunks if "error" in c and "choices" not in c), None)
    finish = [ch.get("finish_reason") for c in chunks for ch in c.get("choices") or [] if ch.get("finish_reason")]
    done = any(str(e.get("data", "")).strip() == "[DONE]" for e in rec.response.get("sse_events") or [])
    acc = run_stream(
        groq.PROVIDER.new_stream_parser,
        rec,
        complete=done or error is not None,  # termination rule: [DONE] required (a finish_reason is not enough)
        error_message=error,
    )
    if acc is None:
        return
    assert acc.text == "".join(
        (ch.get("delta") or {}).get("content") or ""
        for c in chunks
        for ch in c.get("choices") or []
        if ch.get("index", 0) == 0
    )
    if error is None:
        assert acc.finish_reason == expected_finish(finish[-1] if finish else None)
    with_usage = [c for c in chunks if isinstance(c.get("x_groq"), Mapping) and "usage" in c["x_groq"]]
    if with_usage and not any(isinstance(c.get("usage"), Mapping) for c in chunks):
        usage = with_usage[-1]["x_groq"]["usage"]
        assert acc.usage is not None and acc.usage.output_tokens == usage["completion_tokens"]
        assert acc.usage.input_tokens == usage["prompt_tokens"]
        assert groq.groq_timing(with_usage[-1]) == {k: usage[k] for k in groq.TIMING_FIELDS if k in usage}
    first = next((c for c in chunks if isinstance(c.get("x_groq"), Mapping) and "id" in c["x_groq"]), None)
    if first is not None and "x-request-id" in rec.response_headers():
        assert first["x_groq"]["id"] == rec.response_headers()["x-request-id"]


def _body_rec(rec: Recording, obj: Any) -> Recording:
    return Recording(rec.path, {**rec.data, "response": {"status": 200, "headers": {}, "body": obj}})


def _check_body(rec: Recording) -> None:
    body: dict[str, Any] = rec.response["body"]
    headers = rec.response_headers()
    resp = groq.PROVIDER.parse_chat(rec.response_bytes(), headers)
    choice = body["choices"][0]
    assert resp.text == (choice["message"].get("content") or "")
    assert [c.name for c in resp.tool_calls] == [
        c["function"]["name"] for c in choice["message"].get("tool_calls") or []
    ]
    assert resp.finish_reason == expected_finish(choice.get("finish_reason"))
    assert resp.provider == "groq" and resp.response_id == body["id"]
    assert resp.provider_request_id == headers.get("x-request-id")
    if isinstance(body.get("x_groq"), Mapping) and "x-request-id" in headers:
        assert body["x_groq"]["id"] == headers["x-request-id"]
    usage = body.get("usage")
    if isinstance(usage, Mapping):
        assert resp.usage is not None and resp.usage.output_tokens == usage["completion_tokens"]
        timing = groq.groq_timing(resp)
        assert timing == {k: usage[k] for k in groq.TIMING_FIELDS if k in usage}
        if {"total_time", "prompt_time", "completion_time"} <= set(timing):
            assert timing["total_time"] == pytest.approx(timing["prompt_time"] + timing["completion_time"])


def check_response(rec: Recording) -> None:
    _chat_only(rec)
    status = int(rec.response["status"])
    headers = rec.response_headers()
    if status >= 400:
        err = groq.PROVIDER.classify_error(status, headers, rec.response_bytes())
        _, message = error_envelope(rec)
        capacity = status == 498 or (status == 503 and "capacity" in (message or "").lower())
        check_status_error(err, rec, provider="groq", request_id=headers.get("x-request-id"), overloaded=capacity)
        return
    _check_rate_limits(rec)
    if "raw_body" in rec.response:
        _check_stream(rec)
    else:
        _check_body(rec)


def check_request(rec: Recording) -> None:
    _chat_only(rec)
    body = rec.request.get("body")
    if not isinstance(body, dict):
        pytest.skip("request body not recorded (async client cassette)")
    stream = bool(body.get("stream"))
    try:
        pr = groq.PROVIDER.build_chat(oa.chat_request_from_wire(body), body["model"], stream)
    except ConfigurationError:
        if int(rec.response["status"]) >= 400:
            return  # refusing before I/O what the server refused is fine
        raise
    assert rec.request["path"].split("?")[0] == "/openai/v1" + pr.path
    assert pr.json["messages"] == body["messages"] and pr.json["model"] == body["model"]
    expected = {k for k, v in body.items() if v is not None} | ({"stream_options"} if stream else set())
    if not stream:
        expected.discard("stream")
    assert set(pr.json) == expected
    for key in expected - {"stream", "stream_options", "stop", "messages"}:
        assert pr.json[key] == body[key], key
    if body["model"] in groq.MODELS:  # a model of the table: the request passed its checks
        assert groq.MODELS[body["model"]].chat


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    check_response(rec)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    check_request(rec)
