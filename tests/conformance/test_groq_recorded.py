"""Recorded api.groq.com traffic through the Groq provider: responses parsed (streams fed in small chunks) with
Groq's extras checked (usage timing fields, ``x_groq``, ``x-ratelimit-*`` headers), requests rebuilt through the
model-checking ``build_chat`` and compared with what the groq SDK sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infermux.providers import groq
from infermux.providers import openai as oa
from infermux.providers._common import map_finish_reason
from infermux.types import StreamAccumulator, StreamEvent, StreamFinish

from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"groq"})


def _feed(raw: bytes, size: int) -> list[StreamEvent]:
    parser = groq.PROVIDER.new_stream_parser()
    events: list[StreamEvent] = []
    for i in range(0, len(raw), size):
        events.extend(parser.feed(raw[i : i + size]))
    events.extend(parser.close())
    return events


def _check_rate_limits(rec: Recording) -> None:
    h = rec.response_headers()
    if "x-ratelimit-limit-requests" not in h:
        return
    rl = groq.parse_rate_limits(h)
    assert rl.limit_requests == int(h["x-ratelimit-limit-requests"])
    assert rl.limit_tokens == int(h["x-ratelimit-limit-tokens"])
    assert rl.remaining_requests == int(h["x-ratelimit-remaining-requests"])
    assert rl.remaining_tokens == int(h["x-ratelimit-remaining-tokens"])
    for name, value in (("requests", rl.reset_requests), ("tokens", rl.reset_tokens)):
        text = h[f"x-ratelimit-reset-{name}"]
        assert value is not None, text
        if text.endswith("ms"):
            assert value == pytest.approx(float(text[:-2]) / 1000)
        elif "m" not in text:
            assert value == pytest.approx(float(text[:-1]))


def _check_stream(rec: Recording) -> None:
    raw = rec.response_bytes()
    events = _feed(raw, 7)
    assert events == _feed(raw, len(raw)), "chunking changed the events"
    assert isinstance(events[-1], StreamFinish) and sum(isinstance(e, StreamFinish) for e in events) == 1
    acc = StreamAccumulator()
    for e in events:
        acc.add(e)
    chunks = [json.loads(e["data"]) for e in rec.response["sse_events"] if e["data"].strip() != "[DONE]"]
    assert acc.text == "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    with_usage = [c for c in chunks if isinstance(c.get("x_groq"), dict) and "usage" in c["x_groq"]]
    if with_usage:
        usage = with_usage[-1]["x_groq"]["usage"]
        assert acc.usage is not None and acc.usage.output_tokens == usage["completion_tokens"]
        assert acc.usage.input_tokens == usage["prompt_tokens"]
        assert groq.groq_timing(with_usage[-1]) == {k: usage[k] for k in groq.TIMING_FIELDS if k in usage}
    if "x_groq" in chunks[0] and "x-request-id" in rec.response_headers():
        assert chunks[0]["x_groq"]["id"] == rec.response_headers()["x-request-id"]


def _check_body(rec: Recording) -> None:
    body: dict[str, Any] = rec.response["body"]
    resp = groq.PROVIDER.parse_chat(rec.response_bytes(), rec.response_headers())
    choice = body["choices"][0]
    assert resp.text == (choice["message"].get("content") or "")
    assert resp.finish_reason == map_finish_reason(choice.get("finish_reason"))
    assert resp.provider == "groq" and resp.response_id == body["id"]
    if "x_groq" in body:
        assert resp.provider_request_id == rec.response_headers()["x-request-id"] == body["x_groq"]["id"]
    assert resp.usage is not None and resp.usage.output_tokens == body["usage"]["completion_tokens"]
    timing = groq.groq_timing(resp)
    assert timing == {k: body["usage"][k] for k in groq.TIMING_FIELDS if k in body["usage"]}
    if {"total_time", "prompt_time", "completion_time"} <= set(timing):
        assert timing["total_time"] == pytest.approx(timing["prompt_time"] + timing["completion_time"])


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    status = int(rec.response["status"])
    if status >= 400:  # none in the shared set; a holdout set may have some
        err = groq.PROVIDER.classify_error(status, rec.response_headers(), rec.response_bytes())
        assert err.status_code == status and err.provider == "groq" and err.provider_message
        return
    _check_rate_limits(rec)
    if "raw_body" in rec.response:
        _check_stream(rec)
    else:
        _check_body(rec)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    body = rec.request.get("body")
    if not isinstance(body, dict):
        pytest.skip("request body not recorded (async client cassette)")
    stream = bool(body.get("stream"))
    pr = groq.PROVIDER.build_chat(oa.chat_request_from_wire(body), body["model"], stream)
    assert rec.request["path"] == "/openai/v1" + pr.path
    assert pr.json["messages"] == body["messages"] and pr.json["model"] == body["model"]
    expected = set(body) | ({"stream_options"} if stream else set())
    assert set(pr.json) == expected
    if body["model"] in groq.MODELS:  # a model of the table: the request passed its checks
        assert groq.MODELS[body["model"]].chat
