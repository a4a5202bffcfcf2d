"""Replays recorded Anthropic traffic through the pure provider (response and request side).

Every recording of ``anthropic`` and ``bedrock-anthropic`` is a case. Bedrock's request envelope differs
(model in the path ``/model/<id>/invoke``, ``anthropic_version`` in the body, SigV4 auth), which this
provider does not build: its request side is skipped; its response body is the Messages shape and is
parsed. Legacy ``/v1/complete`` traffic is skipped on both sides (Text Completions API, not supported).
``check_response`` / ``check_request`` work on any recording that ``accepts``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest

from infermux.errors import ConfigurationError
from infermux.providers.anthropic import PROVIDER, build_chat, chat_request_from_wire, classify_error, parse_chat
from infermux.types import ChatRequest, Message

from ._checks import check_status_error, error_envelope, expected_finish, run_stream, sse_objects
from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

PROVIDERS = {"anthropic", "bedrock-anthropic"}
RECORDINGS = load(PROVIDERS)
CHUNK = 13  # small, odd-sized chunks so SSE lines and UTF-8 characters get split

#: request keys whose recorded form legitimately differs from ours after the wire -> ChatRequest -> wire
#: round trip: the beta structured-outputs spelling ``output_format`` is sent as GA ``output_config.format``.
DOCUMENTED_KEY_DIFFERENCES = {"output_format": "output_config"}


def accepts(rec: Recording) -> bool:
    return rec.provider in PROVIDERS


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


def _request_id(rec: Recording) -> str | None:
    headers = rec.response_headers()
    body = rec.response.get("body")
    body_rid = body.get("request_id") if isinstance(body, Mapping) else None
    return headers.get("request-id") or headers.get("x-request-id") or body_rid


def _check_error(rec: Recording) -> None:
    status = int(rec.response["status"])
    headers = rec.response_headers()
    err = classify_error(status, headers, rec.response_bytes())
    etype, _ = error_envelope(rec)
    body = rec.response.get("body")
    anthropic_shape = isinstance(body, Mapping) and isinstance(body.get("error"), Mapping)
    check_status_error(
        err,
        rec,
        provider="anthropic",
        request_id=_request_id(rec),
        overloaded=etype == "overloaded_error",
        # only the {"type": "error", "error": {...}} envelope is Anthropic's; a proxy's page has no type
        check_type=anthropic_shape,
    )
    if "x-should-retry" in headers:
        assert err.should_retry_header is (headers["x-should-retry"] == "true")
        assert err.retryable is err.should_retry_header


def _content_event(
    obj: Mapping[str, Any], text: list[str], thinking: list[str], signatures: list[str], tools: dict[int, list[Any]]
) -> None:
    """A content block's start or delta, into the text / thinking / signature / tool-call expectations."""
    if obj.get("type") == "content_block_start":
        block = obj["content_block"]
        if block.get("type") == "text":
            text.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tools[obj["index"]] = [block["id"], block["name"], []]
        elif block.get("type") == "thinking":
            thinking.append(block.get("thinking") or "")
        return
    d = obj["delta"]
    if d.get("type") == "text_delta":
        text.append(d["text"])
    elif d.get("type") == "thinking_delta":
        thinking.append(d["thinking"])
    elif d.get("type") == "signature_delta":
        signatures.append(d["signature"])
    elif d.get("type") == "input_json_delta" and obj["index"] in tools:
        tools[obj["index"]][2].append(d.get("partial_json") or "")


def _stream_expectations(rec: Recording) -> dict[str, Any]:
    """Text, tool calls, stop reason, usage and error as the recorded events carry them."""
    text: list[str] = []
    thinking: list[str] = []
    signatures: list[str] = []
    tools: dict[int, list[Any]] = {}
    stop = error = None
    usage: dict[str, Any] = {}
    done = False
    for name, obj in sse_objects(rec):
        if not isinstance(obj, Mapping):
            continue
        kind = name or obj.get("type")
        if kind == "message_start":
            usage.update((obj.get("message") or {}).get("usage") or {})
        elif kind in ("content_block_start", "content_block_delta"):
            _content_event(obj, text, thinking, signatures, tools)
        elif kind == "message_delta":
            stop = (obj.get("delta") or {}).get("stop_reason") or stop
            usage.update(obj.get("usage") or {})
            usage["final"] = True
        elif kind == "message_stop":
            done = True
        elif kind == "error" and error is None:
            error = (obj.get("error") or {}).get("message") or json.dumps(obj)[:300]
    calls = [(t[0], t[1], _json_or_raw("".join(t[2]) or "{}")) for _, t in sorted(tools.items())]
    exp = {"text": "".join(text), "calls": calls, "stop": stop, "usage": usage, "error": error, "done": done}
    return {**exp, "reasoning": "".join(thinking), "signatures": signatures}


def _json_or_raw(text: str) -> Any:
    """A tool input's JSON (a stream cut mid-input leaves it unparsable: compared only when complete)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check_stream(rec: Recording) -> None:
    exp = _stream_expectations(rec)
    acc = run_stream(
        PROVIDER.new_stream_parser,
        rec,
        complete=exp["done"] or exp["error"] is not None,
        error_message=exp["error"],
        size=CHUNK,
    )
    if acc is None:
        return
    assert acc.text == exp["text"]
    assert acc.reasoning == exp["reasoning"]  # extended thinking: kept apart from the text, not dropped
    assert [b.signature for b in acc.reasoning_blocks() if b.signature] == exp["signatures"]
    assert [(c.id, c.name, c.arguments) for c in acc.tool_calls()] == exp["calls"]
    if exp["error"] is None:
        assert acc.finish_reason == expected_finish(exp["stop"])
    u = exp["usage"]
    if u.get("final"):  # usage is reported with message_delta (a stream cut by an error has none)
        assert acc.usage is not None and acc.usage.output_tokens == u["output_tokens"]
        inputs = sum(u.get(k) or 0 for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        assert acc.usage.input_tokens == inputs


def _check_body(rec: Recording) -> None:
    headers = rec.response_headers()
    body = rec.response["body"]
    r = parse_chat(rec.response_bytes(), headers)
    texts = [b["text"] for b in body["content"] if b["type"] == "text"]
    # only client tool_use blocks are calls for the caller (server_tool_use / mcp_tool_use run server-side)
    uses = [b for b in body["content"] if b["type"] == "tool_use"]
    assert r.text == "".join(texts)
    thinks = [b for b in body["content"] if b["type"] in ("thinking", "redacted_thinking")]
    assert r.reasoning == "".join(b.get("thinking", "") for b in thinks)
    assert [(b.signature, b.redacted) for b in r.reasoning_blocks] == [
        (t.get("signature"), t.get("data")) for t in thinks
    ]
    assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [(u["id"], u["name"], u["input"]) for u in uses]
    assert r.response_id == body["id"]
    assert r.model == body["model"]
    assert r.provider_request_id == (headers.get("request-id") or headers.get("x-request-id"))
    u = body["usage"]
    assert r.usage is not None
    assert r.usage.output_tokens == u["output_tokens"]
    cache_read = u.get("cache_read_input_tokens") or 0
    assert r.usage.input_tokens == u["input_tokens"] + (u.get("cache_creation_input_tokens") or 0) + cache_read
    assert r.usage.cached_tokens == cache_read
    assert r.finish_reason == expected_finish(body.get("stop_reason"))


def check_response(rec: Recording) -> None:
    _skip_unsupported(rec, "response")
    if int(rec.response["status"]) >= 400:
        _check_error(rec)
    elif "raw_body" in rec.response:
        _check_stream(rec)
    else:
        _check_body(rec)


def check_request(rec: Recording) -> None:
    _skip_unsupported(rec, "request")
    req = rec.request
    body: dict[str, Any] | None = req.get("body")
    if not body:
        pytest.skip("the cassette did not record the request body")
    rec_headers = {k.lower(): v for k, v in (req.get("headers") or {}).items()}
    if int(rec.response["status"]) < 400:  # the API refuses a request without it
        assert "anthropic-version" in rec_headers
    # Where a credential header survived the upstream scrubbing it is x-api-key, ours; an OAuth/auth_token
    # client sends ``authorization: Bearer`` instead (a credential this provider does not take).
    if "x-api-key" in rec_headers:
        assert rec_headers["x-api-key"] == "<redacted>"
    else:
        assert not ({"api-key", "x-goog-api-key"} & set(rec_headers))

    try:
        chat = chat_request_from_wire(body)
    except ConfigurationError as e:
        pytest.skip(f"request not expressible as neutral messages: {e}")
    ours = build_chat(chat, str(body["model"]), bool(body.get("stream")))
    assert ours.method == req["method"]
    assert urlsplit(req["path"]).path.endswith("/v1/messages")
    assert ours.path == "/v1/messages"
    if "anthropic-version" in rec_headers:
        assert ours.headers["anthropic-version"] == rec_headers["anthropic-version"]
    assert set(PROVIDER.auth_headers("k")) == {"x-api-key"}

    expected = dict(body)
    if expected.get("stream") is False:
        expected.pop("stream")  # the default: not sent
    for recorded_key, our_key in DOCUMENTED_KEY_DIFFERENCES.items():
        if recorded_key in expected:
            assert ours.json[our_key] == {"format": expected.pop(recorded_key)}
            expected[our_key] = ours.json[our_key]
    assert set(ours.json) == set(expected)
    assert ours.json == expected


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    check_response(rec)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    check_request(rec)


def _has_thinking(rec: Recording) -> bool:
    body = rec.response.get("body")
    content = body.get("content") if isinstance(body, Mapping) else None
    return isinstance(content, list) and any(
        isinstance(b, Mapping) and b.get("type") in ("thinking", "redacted_thinking") for b in content
    )


THINKING = [r for r in RECORDINGS if r.provider == "anthropic" and _has_thinking(r)]


@pytest.mark.parametrize("rec", THINKING, ids=str)
def test_recorded_thinking_goes_back_signed_in_the_next_turn(rec: Recording) -> None:
    # multi-turn with extended thinking: the answer, appended as the assistant turn (ChatResponse.message()),
    # is sent back with its thinking blocks exactly as received (signature included), before the text
    r = parse_chat(rec.response_bytes(), rec.response_headers())
    assert r.reasoning and r.reasoning_blocks
    req = chat_request_from_wire(rec.request["body"])
    follow = ChatRequest((*req.messages, r.message(), Message.user("And in 'raspberry'?")), extra=req.extra)
    body = build_chat(follow, str(rec.request["body"]["model"]), False).json
    sent = body["messages"][-2]
    assert sent["role"] == "assistant"
    kept = [b for b in rec.response["body"]["content"] if b["type"] in ("thinking", "redacted_thinking", "text")]
    assert sent["content"] == kept
    assert body["thinking"] == rec.request["body"]["thinking"]
