"""Replays recorded Anthropic traffic through the pure provider (response and request side).

Every recording of ``anthropic`` and ``bedrock-anthropic`` is a case. Bedrock's request envelope differs
(model in the path ``/model/<id>/invoke``, ``anthropic_version`` in the body, SigV4 auth), which this
provider does not build: its request side is skipped; its response body is the Messages shape and is
parsed. Legacy ``/v1/complete`` traffic is skipped on both sides (Text Completions API, not supported).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from infermux.errors import APIStatusError, status_error_class
from infermux.providers.anthropic import PROVIDER, build_chat, chat_request_from_wire, classify_error, parse_chat
from infermux.types import StreamAccumulator, StreamEvent, StreamFinish, TextDelta

from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"anthropic", "bedrock-anthropic"})
CHUNK = 13  # small, odd-sized chunks so SSE lines and UTF-8 characters get split

#: sources whose cassette config removed the auth header entirely (name and value), so x-api-key cannot be seen
PACKAGES_WITHOUT_AUTH_HEADER = {"opentelemetry-instrumentation-anthropic"}

#: request keys whose recorded form legitimately differs from ours after the wire -> ChatRequest -> wire
#: round trip: the beta structured-outputs spelling ``output_format`` is sent as GA ``output_config.format``.
DOCUMENTED_KEY_DIFFERENCES = {"output_format": "output_config"}


def _skip_unsupported(rec: Recording, side: str) -> None:
    if rec.provider == "bedrock-anthropic" and side == "request":
        pytest.skip(
            "bedrock-anthropic: Bedrock invoke envelope (model in path, anthropic_version in body, SigV4) not built"
        )
    kind = rec.endpoint_kind
    if kind == "completions_legacy":
        pytest.skip("legacy Text Completions API (/v1/complete) is not supported by the anthropic provider")
    if kind != "chat":
        pytest.skip(f"endpoint kind {kind!r} is not the Messages API")


def _feed(raw: bytes) -> list[StreamEvent]:
    parser = PROVIDER.new_stream_parser()
    events: list[StreamEvent] = []
    for i in range(0, len(raw), CHUNK):
        events += parser.feed(raw[i : i + CHUNK])
    events += parser.close()
    return events


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    _skip_unsupported(rec, "response")
    resp = rec.response
    status = int(resp["status"])
    headers = rec.response_headers()
    raw = rec.response_bytes()
    if status >= 400:
        err = classify_error(status, headers, raw)
        assert isinstance(err, APIStatusError)
        assert type(err) is status_error_class(status)
        body = resp["body"]
        assert err.error_type == body["error"]["type"]
        assert err.provider_message == body["error"]["message"]
        assert err.provider_request_id == (headers.get("request-id") or body.get("request_id"))
        if "x-should-retry" in headers:
            assert err.should_retry_header is (headers["x-should-retry"] == "true")
            assert err.retryable is err.should_retry_header
        return
    if "raw_body" in resp:
        events = _feed(raw)
        assert isinstance(events[-1], StreamFinish)
        assert sum(isinstance(e, StreamFinish) for e in events) == 1
        acc = StreamAccumulator()
        for ev in events:
            acc.add(ev)
        assert acc.text == "".join(e.text for e in events if isinstance(e, TextDelta))
        # the recorded events, independently of the parser: every text_delta, in order
        expected = "".join(
            d["delta"]["text"]
            for d in (json.loads(e["data"]) for e in resp["sse_events"] if e.get("event") == "content_block_delta")
            if d["delta"].get("type") == "text_delta"
        )
        assert acc.text == expected
        assert acc.finish_reason is not None
        assert acc.usage is not None
        assert acc.usage.output_tokens > 0
        return
    body = resp["body"]
    r = parse_chat(raw, headers)
    texts = [b["text"] for b in body["content"] if b["type"] == "text"]
    uses = [b for b in body["content"] if b["type"] == "tool_use"]
    assert r.text == "".join(texts)
    assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [(u["id"], u["name"], u["input"]) for u in uses]
    assert r.response_id == body["id"]
    assert r.model == body["model"]
    assert r.provider_request_id == headers.get("request-id")
    assert r.usage is not None
    assert r.usage.output_tokens == body["usage"]["output_tokens"]
    assert r.usage.input_tokens >= body["usage"]["input_tokens"]
    assert (
        r.finish_reason == {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}[body["stop_reason"]]
    )


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    _skip_unsupported(rec, "request")
    req = rec.request
    body: dict[str, Any] | None = req.get("body")
    if not body:
        pytest.skip("the cassette did not record the request body")
    rec_headers = {k.lower(): v for k, v in (req.get("headers") or {}).items()}
    assert "anthropic-version" in rec_headers
    assert "authorization" not in rec_headers
    if rec.data["source"]["package"] not in PACKAGES_WITHOUT_AUTH_HEADER:
        assert rec_headers.get("x-api-key") == "<redacted>"

    ours = build_chat(chat_request_from_wire(body), str(body["model"]), bool(body.get("stream")))
    assert ours.method == req["method"]
    assert urlsplit(req["path"]).path.endswith("/v1/messages")
    assert ours.path == "/v1/messages"
    assert ours.headers["anthropic-version"] == rec_headers["anthropic-version"]
    assert set(PROVIDER.auth_headers("k")) == {"x-api-key"}

    expected = dict(body)
    for recorded_key, our_key in DOCUMENTED_KEY_DIFFERENCES.items():
        if recorded_key in expected:
            assert ours.json[our_key] == {"format": expected.pop(recorded_key)}
            expected[our_key] = ours.json[our_key]
    assert set(ours.json) == set(expected)
    assert ours.json == expected
