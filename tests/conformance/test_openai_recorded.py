"""Replays recorded OpenAI-protocol traffic (OpenAI, Azure OpenAI, Groq, DeepSeek, vLLM, HF/TGI Messages API)
through the pure OpenAI providers: responses are parsed (streams fed in small chunks) and compared with what
the recording itself says; requests are rebuilt from the recorded body and compared with what was sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infermux.errors import ConfigurationError, MalformedResponseError, status_error_class
from infermux.providers import openai as oa
from infermux.providers import openai_responses as oar
from infermux.types import EmbedRequest, StreamAccumulator, StreamEvent, StreamFinish, TextDelta

from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

_PROVIDERS = {"openai", "azure-openai", "groq", "deepseek", "vllm", "huggingface"}
# Hugging Face: only its chat files speak the OpenAI protocol (TGI Messages API); tgi_generate and the
# feature-extraction "embeddings" belong to a later backend, so they are not collected here at all.
RECORDINGS = [r for r in load(_PROVIDERS) if r.provider != "huggingface" or r.endpoint_kind == "chat"]
_SUPPORTED = {"chat", "responses", "embeddings", "completions_legacy"}

#: Request-side differences between the recorded body and ours, on purpose:
#: - JSON nulls are never sent (HF's client sends every unset option as null);
#: - ``"stream": false`` is not sent (it is the default);
#: - streaming chat always adds ``stream_options: {"include_usage": true}`` (usage in the last chunk);
#: - embeddings always send ``encoding_format`` ("float" unless the caller overrides it).
#: Values are compared for every other key, except where our shape is canonical: ``input`` (a string
#: becomes a list; Responses items lose their server-side ``id``/``status``) and ``stop`` (a string
#: becomes a list). Chat ``messages`` round-trip exactly.

#: Auth header each recorded provider used; ours is ``authorization: Bearer`` except Azure's ``api-key``
#: (Azure needs its own provider config; the OpenAI builder is reused for its body only).
_AUTH_HEADER = {"azure-openai": "api-key"}
_AUTH_NAMES = {"authorization", "api-key", "x-api-key"}


def _skip_unsupported(rec: Recording) -> str:
    kind = rec.endpoint_kind or "unknown"
    if kind not in _SUPPORTED:
        pytest.skip(f"endpoint kind {kind} not supported yet")
    return kind


def _feed(parser: Any, raw: bytes, size: int) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for i in range(0, len(raw), size):
        events.extend(parser.feed(raw[i : i + size]))
    events.extend(parser.close())
    return events


def _expected_stream_text(rec: Recording, kind: str) -> str:
    """The text the recording's own SSE events carry (independent of our parser)."""
    out: list[str] = []
    for ev in rec.response.get("sse_events") or []:
        data = ev["data"]
        if data.strip() == "[DONE]":
            continue
        obj = json.loads(data)
        if kind == "responses":
            if obj.get("type") == "response.output_text.delta":
                out.append(obj["delta"])
            continue
        for ch in obj.get("choices") or []:
            if ch.get("index", 0) == 0:
                piece = (ch.get("delta") or {}).get("content") if "delta" in ch else ch.get("text")
                out.append(piece or "")
    return "".join(out)


def _check_stream(rec: Recording, kind: str) -> None:
    new_parser = oar.ResponsesStreamParser if kind == "responses" else oa.ChatStreamParser
    raw = rec.response_bytes()
    events = _feed(new_parser(), raw, 7)
    assert events == _feed(new_parser(), raw, len(raw) or 1), "chunking changed the events"
    assert isinstance(events[-1], StreamFinish), events[-3:]
    assert sum(isinstance(e, StreamFinish) for e in events) == 1
    acc = StreamAccumulator()
    for e in events:
        acc.add(e)
    assert acc.finished
    assert acc.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert acc.text == _expected_stream_text(rec, kind)


def _check_chat_body(rec: Recording, kind: str) -> None:
    body = rec.response["body"]
    headers = rec.response_headers()
    if kind == "responses":
        resp = oar.PROVIDER.parse_chat(rec.response_bytes(), headers)
        texts = [
            p["text"]
            for it in body["output"]
            if it["type"] == "message"
            for p in it["content"]
            if p["type"] == "output_text"
        ]
        assert resp.text == "".join(texts)
        calls = [it["name"] for it in body["output"] if it["type"] == "function_call"]
        assert [c.name for c in resp.tool_calls] == calls
        assert resp.usage is not None and resp.usage.input_tokens == body["usage"]["input_tokens"]
    elif kind == "completions_legacy":
        resp = oa.parse_completion(rec.response_bytes(), headers)
        assert resp.text == body["choices"][0]["text"]
    else:
        resp = oa.PROVIDER.parse_chat(rec.response_bytes(), headers)
        msg = body["choices"][0]["message"]
        assert resp.text == (msg.get("content") or "")
        calls = [c["function"]["name"] for c in msg.get("tool_calls") or []]
        if not calls and msg.get("function_call"):
            calls = [msg["function_call"]["name"]]
        assert [c.name for c in resp.tool_calls] == calls
        if body.get("usage"):
            assert resp.usage is not None and resp.usage.output_tokens == body["usage"]["completion_tokens"]
    assert resp.finish_reason is not None
    assert resp.response_id == (body.get("id") or None)


def _check_error(rec: Recording, kind: str) -> None:
    status = int(rec.response["status"])
    prov = oar.PROVIDER if kind == "responses" else oa.PROVIDER
    err = prov.classify_error(status, rec.response_headers(), rec.response_bytes())
    assert type(err) is status_error_class(status)
    assert err.status_code == status
    body = rec.response.get("body")
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        assert err.provider_message == body["error"]["message"]
        assert err.error_type == (body["error"].get("type") or body["error"].get("code"))
    hdrs = rec.response_headers()
    assert err.provider_request_id == (hdrs.get("x-request-id") or hdrs.get("apim-request-id"))


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    kind = _skip_unsupported(rec)
    status = int(rec.response["status"])
    if status >= 400:
        _check_error(rec, kind)
    elif "raw_body" in rec.response:
        _check_stream(rec, kind)
    elif kind == "embeddings":
        resp = oa.PROVIDER.parse_embed(rec.response_bytes(), rec.response_headers())  # type: ignore[misc]
        data = rec.response["body"]["data"]
        assert len(resp.vectors) == len(data)
        first = next(d for d in data if d["index"] == 0)["embedding"]
        if isinstance(first, list):
            assert resp.vectors[0] == pytest.approx(first)
        assert resp.dimensions > 0
    elif rec.response["body"].get("error") and "choices" not in rec.response["body"]:
        # Azure's content filter answers HTTP 200 with an error body: typed, not retryable, never a success.
        with pytest.raises(MalformedResponseError) as exc:
            oa.PROVIDER.parse_chat(rec.response_bytes(), rec.response_headers())
        assert exc.value.provider_message == rec.response["body"]["error"]["message"]
        assert exc.value.error_type == "content_filter" and not exc.value.retryable
    else:
        _check_chat_body(rec, kind)


def _rebuild(rec: Recording, kind: str, body: dict[str, Any]) -> tuple[Any, set[str]]:
    """Our ProviderRequest for the recorded body, and the key set we expect (after documented differences)."""
    stream = bool(body.get("stream"))
    expected = {k for k, v in body.items() if v is not None}
    if not stream:
        expected.discard("stream")
    rest = {k: v for k, v in body.items() if v is not None and k not in ("model", "stream")}
    if kind == "chat":
        pr = oa.build_chat(oa.chat_request_from_wire(body), body.get("model") or "", stream)
        if stream:
            expected.add("stream_options")
    elif kind == "embeddings":
        inputs = rest.pop("input")
        req = EmbedRequest(inputs=inputs, dimensions=rest.pop("dimensions", None), extra=rest)
        pr = oa.build_embed(req, body["model"])
        expected.add("encoding_format")
    elif kind == "completions_legacy":
        pr = oa.build_completion(body["model"], rest.pop("prompt"), stream=stream, extra=rest)
    else:
        try:
            req = oar.responses_request_from_wire(body)
        except ConfigurationError as e:
            pytest.skip(f"Responses input not expressible as neutral messages: {e}")
        pr = oar.build_chat(req, body["model"], stream)
    return pr, expected


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    kind = _skip_unsupported(rec)
    body = rec.request.get("body")
    if not isinstance(body, dict):
        pytest.skip("request body not recorded (async client cassette)")
    pr, expected = _rebuild(rec, kind, body)
    assert pr.method == rec.request["method"]
    path = str(rec.request["path"]).split("?")[0]
    if rec.provider == "azure-openai":
        assert path.rsplit("/", 1)[-1] == pr.path.rsplit("/", 1)[-1]
    else:
        assert path.endswith(pr.path), (path, pr.path)
    assert set(pr.json) == expected
    for key in expected - {"stream", "stream_options", "encoding_format", "input", "stop"}:
        assert pr.json[key] == body[key], key
    if kind == "chat":
        assert len(pr.json["messages"]) == len(body["messages"])
    # Most cassettes had their credentials stripped upstream; where an auth header was kept, it is ours.
    recorded_auth = {h.lower() for h in rec.request.get("headers") or {}} & _AUTH_NAMES
    if recorded_auth:
        assert recorded_auth == {_AUTH_HEADER.get(rec.provider) or next(iter(oa.auth_headers("k")))}
