"""Replays recorded Gemini traffic (generativelanguage.googleapis.com, and Vertex AI's publisher-model
routes, which carry the same ``GenerateContent`` bodies) through the pure gemini provider.

Supported: ``:generateContent`` / ``:streamGenerateContent`` (response side; request bodies rebuilt and
compared), ``:embedContent`` / ``:batchEmbedContents`` and error bodies of any route (the Google error
envelope is API-wide, so an Interactions 4xx is classified too). The Interactions API
(``/v1beta/interactions``) is a different protocol that this provider does not speak: its successful
exchanges are skipped with that reason. Vertex AI paths (``/v1*/projects/.../models/M:method``, OAuth) are
not built by this provider: for them only the request *body* is compared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from infermux.errors import AuthenticationError, ConfigurationError
from infermux.providers.gemini import (
    PROVIDER,
    GeminiStreamParser,
    build_chat,
    build_embed,
    chat_request_from_wire,
    classify_error,
    parse_chat,
    parse_embed,
)
from infermux.types import EmbedRequest

from ._checks import check_status_error, run_stream, sse_objects
from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

PROVIDERS = {"gemini", "vertexai"}
RECORDINGS = load(PROVIDERS)

#: Gemini finishReason -> neutral value (STOP with functionCall parts: tool_calls).
FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"),
        "content_filter",
    ),
}
# /v1beta/models/M:method, /v1/tunedModels/M:method, or Vertex's
# /v1beta1/projects/P/locations/L/publishers/google/models/M:method
_ROUTE = re.compile(r"^/(?P<ver>v1[a-z0-9]*)/(?P<vertex>projects/[^/]+/locations/[^/]+/publishers/[^/]+/)?"
                    r"(?P<coll>models|tunedModels)/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")  # fmt: skip


def accepts(rec: Recording) -> bool:
    return rec.provider in PROVIDERS


def _route(rec: Recording) -> re.Match[str] | None:
    return _ROUTE.match(urlsplit(rec.request["path"]).path)


def _method(rec: Recording) -> str:
    """The model method of a supported route, else a skip with the reason."""
    if rec.endpoint_kind == "gemini_interactions":
        pytest.skip("Gemini Interactions API (/v1beta/interactions) is not supported by the gemini provider")
    m = _route(rec)
    if m is None:
        pytest.skip(f"route {urlsplit(rec.request['path']).path!r} is not a model method of the gemini provider")
    method = m["method"]
    if method not in ("generateContent", "streamGenerateContent", "embedContent", "batchEmbedContents"):
        pytest.skip(f"model method {method!r} has no parser in the gemini provider")
    return method


def _finish(cand: Mapping[str, Any], has_calls: bool) -> str | None:
    raw = cand.get("finishReason")
    if not raw:
        return None
    reason = FINISH.get(raw, "other")
    return "tool_calls" if has_calls and reason == "stop" else reason


def _parts(cand: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((cand.get("content") or {}).get("parts") or [])


def _text(parts: list[Mapping[str, Any]]) -> str:
    return "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))


def _calls(parts: list[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["functionCall"]["name"], p["functionCall"].get("args") or {}) for p in parts if "functionCall" in p]


def _check_usage(r_usage: Any, um: Mapping[str, Any] | None) -> None:
    if not isinstance(um, Mapping):
        return
    assert r_usage is not None
    assert r_usage.input_tokens == um.get("promptTokenCount", 0) + um.get("toolUsePromptTokenCount", 0)
    assert r_usage.output_tokens == um.get("candidatesTokenCount", 0) + um.get("thoughtsTokenCount", 0)
    assert r_usage.cached_tokens == um.get("cachedContentTokenCount", 0)
    if "totalTokenCount" in um:
        assert r_usage.input_tokens + r_usage.output_tokens == um["totalTokenCount"]


def _check_error(rec: Recording) -> None:
    status = int(rec.response["status"])
    err = classify_error(status, rec.response_headers(), rec.response_bytes())
    body = rec.response.get("body")
    envelope = body[0] if isinstance(body, list) and body else body
    google = isinstance(envelope, Mapping) and isinstance(envelope.get("error"), Mapping)
    details = envelope["error"].get("details") or [] if google else []  # type: ignore[index]
    reasons = {d.get("reason") for d in details if isinstance(d, Mapping)}
    if "API_KEY_INVALID" in reasons:
        assert isinstance(err, AuthenticationError) and err.error_type == "API_KEY_INVALID"
        assert err.status_code == status and err.provider_message == envelope["error"]["message"]  # type: ignore[index]
        return
    delays = [
        float(d["retryDelay"].rstrip("s"))
        for d in details
        if isinstance(d, Mapping) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo") and "retryDelay" in d
    ]
    stated = envelope["error"] if google else {}  # type: ignore[index]
    code = stated.get("code")
    # the type: "status" (classic Google APIs), else a string "code" (newer APIs: "service_unavailable")
    etype = stated.get("status") or (code if isinstance(code, str) else None) if google else None
    check_status_error(
        err,
        rec,
        provider="gemini",
        request_id=rec.response_headers().get("x-request-id"),
        error_type=etype,
        check_type=google,
    )
    headers = rec.response_headers()
    if delays and not (headers.get("retry-after") or headers.get("retry-after-ms")):
        assert err.retry_after == pytest.approx(delays[0])  # RetryInfo, when no header says otherwise


def _check_body(rec: Recording) -> None:
    body = rec.response["body"]
    r = parse_chat(rec.response_bytes(), rec.response_headers())
    cands = body.get("candidates") or []
    if not cands:  # the prompt itself was blocked
        assert (body.get("promptFeedback") or {}).get("blockReason")
        assert r.text == "" and r.tool_calls == () and r.finish_reason == "content_filter"
    else:
        parts = _parts(cands[0])
        calls = _calls(parts)
        assert r.text == _text(parts)
        assert [(c.name, c.arguments) for c in r.tool_calls] == calls
        assert r.finish_reason == _finish(cands[0], bool(calls))
    _check_usage(r.usage, body.get("usageMetadata"))
    assert (r.model, r.response_id) == (body.get("modelVersion"), body.get("responseId"))


def _check_stream(rec: Recording) -> None:
    chunks = [obj for _, obj in sse_objects(rec) if isinstance(obj, Mapping)]
    error = next((c["error"].get("message") for c in chunks if isinstance(c.get("error"), Mapping)), None)
    text: list[str] = []
    calls: list[tuple[str, dict[str, Any]]] = []
    finish = None
    blocked = False
    usage = None
    for c in chunks:
        cands = c.get("candidates") or []
        if cands:
            parts = _parts(cands[0])
            text.append(_text(parts))
            calls += _calls(parts)
            if cands[0].get("finishReason"):
                finish = cands[0]
        elif (c.get("promptFeedback") or {}).get("blockReason"):
            blocked = True
        if isinstance(c.get("usageMetadata"), Mapping):
            usage = c["usageMetadata"]
    acc = run_stream(
        GeminiStreamParser, rec, complete=finish is not None or blocked or error is not None, error_message=error
    )
    if acc is None:
        return
    assert acc.text == "".join(text)
    assert [(c.name, c.arguments) for c in acc.tool_calls()] == calls
    if error is None:
        assert acc.finish_reason == (_finish(finish, bool(calls)) if finish is not None else "content_filter")
        _check_usage(acc.usage, usage)


def _check_embed(rec: Recording) -> None:
    body = rec.response["body"]
    out = parse_embed(rec.response_bytes(), rec.response_headers())
    items = body["embeddings"] if "embeddings" in body else [body["embedding"]]
    assert [list(v) for v in out.vectors] == [e["values"] for e in items]
    if isinstance(body.get("usageMetadata"), Mapping):
        assert out.usage is not None and out.usage.input_tokens == body["usageMetadata"]["promptTokenCount"]


def check_response(rec: Recording) -> None:
    if int(rec.response["status"]) >= 400:
        _check_error(rec)
        return
    method = _method(rec)
    if method in ("embedContent", "batchEmbedContents"):
        _check_embed(rec)
    elif "raw_body" in rec.response:
        _check_stream(rec)
    else:
        _check_body(rec)


def _check_auth(rec: Recording) -> None:
    headers = {k.lower() for k in rec.request.get("headers") or {}}
    query = parse_qs(urlsplit(rec.request["path"]).query)
    if rec.provider == "gemini" and "authorization" not in headers:  # API key, not OAuth
        # the key travels as x-goog-api-key (what we send) or, with older clients, as ?key=
        assert PROVIDER.auth_headers("k").keys() <= headers or "key" in query


def check_request(rec: Recording) -> None:
    method = _method(rec)
    if int(rec.response["status"]) >= 400 and rec.request.get("body") is None:
        pytest.skip("error recording without a request body")
    body = rec.request.get("body")
    if not isinstance(body, dict):
        pytest.skip("request body not recorded")
    m = _route(rec)
    assert m is not None
    model = m["model"]
    _check_auth(rec)
    if method in ("embedContent", "batchEmbedContents"):
        # We send embedContent for one input and batchEmbedContents for several; compare item by item,
        # except the optional content role the SDK adds.
        items = body["requests"] if method == "batchEmbedContents" else [{"model": f"models/{model}", **body}]
        texts = tuple(p["text"] for it in items for p in it["content"]["parts"])
        extra = {k: v for k, v in items[0].items() if k not in ("model", "content", "outputDimensionality")}
        dims = items[0].get("outputDimensionality")
        ours = build_embed(
            EmbedRequest(texts if len(texts) > 1 else (*texts, "second"), dimensions=dims, extra=extra), model
        )
        assert ours.path == f"/models/{model}:batchEmbedContents"
        for theirs, mine in zip(items, ours.json["requests"], strict=False):
            content = {k: v for k, v in theirs["content"].items() if k != "role"}
            assert {**theirs, "content": content} == mine
        return
    try:
        chat = chat_request_from_wire(body, model=model)
    except ConfigurationError as e:
        pytest.skip(f"request not expressible as neutral messages: {e}")
    stream = method == "streamGenerateContent"
    ours = build_chat(chat, model, stream)
    if not m["vertex"]:
        assert ours.path.split("?")[0] == urlsplit(rec.request["path"]).path[len("/" + m["ver"]) :]
    assert ours.json == body


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    check_response(rec)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    check_request(rec)
