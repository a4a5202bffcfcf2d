"""Replays recorded Gemini (generativelanguage.googleapis.com) traffic through the pure provider.

Every ``gemini`` recording is a case. Supported: ``:generateContent`` (response and request side),
``:batchEmbedContents`` (response side; request side compared item by item) and error bodies of any route
(the Google error envelope is API-wide, so the Interactions 4xx is classified too). The Interactions API
(``/v1beta/interactions``) is a different protocol (steps, named-event SSE) that this provider does not
speak: its successful exchanges are skipped with that reason.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from infermux.errors import AuthenticationError, status_error_class
from infermux.providers.gemini import (
    DEFAULT_BASE_URL,
    PROVIDER,
    build_chat,
    build_embed,
    chat_request_from_wire,
    classify_error,
    parse_chat,
    parse_embed,
)
from infermux.types import EmbedRequest

from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"gemini"})
BASE_PATH = urlsplit(DEFAULT_BASE_URL).path  # "/v1beta"


def _route(rec: Recording) -> str:
    return urlsplit(rec.request["path"]).path


def _skip_unsupported(rec: Recording) -> None:
    if rec.response["status"] >= 400:
        return
    if rec.endpoint_kind == "gemini_interactions":
        pytest.skip("Gemini Interactions API (/v1beta/interactions) is not supported by the gemini provider")
    if rec.endpoint_kind not in ("chat", "embeddings"):
        pytest.skip(f"endpoint kind {rec.endpoint_kind!r} is not a route of the gemini provider")


def test_recordings_present() -> None:
    if not RECORDINGS:
        pytest.skip("no gemini recordings in INFERMUX_RECORDINGS")
    kinds = {r.endpoint_kind for r in RECORDINGS}
    assert {"chat", "embeddings"} <= kinds


def _text_of(body: dict[str, Any]) -> str:
    parts = body["candidates"][0]["content"]["parts"]
    return "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    _skip_unsupported(rec)
    resp = rec.response
    status = resp["status"]
    headers = rec.response_headers()
    if status >= 400:
        err = classify_error(status, headers, rec.response_bytes())
        body = resp.get("body")
        envelope = body[0] if isinstance(body, list) else body
        assert isinstance(envelope, dict)
        reasons = {d.get("reason") for d in envelope["error"].get("details", []) if isinstance(d, dict)}
        if "API_KEY_INVALID" in reasons:
            assert isinstance(err, AuthenticationError) and err.error_type == "API_KEY_INVALID"
        else:
            assert isinstance(err, status_error_class(status)) and err.error_type == envelope["error"]["status"]
        assert err.status_code == status and err.provider_message == envelope["error"]["message"]
        return
    body = resp["body"]
    if rec.endpoint_kind == "embeddings":
        out = parse_embed(rec.response_bytes(), headers)
        assert [list(v) for v in out.vectors] == [e["values"] for e in body["embeddings"]]
        assert out.usage is not None and out.usage.input_tokens == body["usageMetadata"]["promptTokenCount"]
        return
    r = parse_chat(rec.response_bytes(), headers)
    um = body["usageMetadata"]
    assert r.text == _text_of(body) and r.text
    assert r.finish_reason == "stop" and body["candidates"][0]["finishReason"] == "STOP"
    assert r.usage is not None
    assert r.usage.input_tokens == um["promptTokenCount"]
    assert r.usage.output_tokens == um["candidatesTokenCount"] + um.get("thoughtsTokenCount", 0)
    assert r.usage.input_tokens + r.usage.output_tokens == um["totalTokenCount"]
    assert (r.model, r.response_id) == (body["modelVersion"], body["responseId"])


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    _skip_unsupported(rec)
    if rec.response["status"] >= 400:
        pytest.skip("error recording: its request is an Interactions call (request side not supported)")
    req = rec.request
    route = _route(rec)
    assert route.startswith(BASE_PATH + "/models/")
    assert PROVIDER.auth_headers("k").keys() <= set(req["headers"])  # x-goog-api-key, as the SDK sends it
    model, _, method = route[len(BASE_PATH + "/models/") :].partition(":")
    if rec.endpoint_kind == "embeddings":
        # The SDK sends batchEmbedContents even for one input (we use embedContent for one); compare the
        # items of a batch of two: same keys and values, except the optional content role the SDK adds.
        assert method == "batchEmbedContents"
        items = req["body"]["requests"]
        texts = tuple(p["text"] for it in items for p in it["content"]["parts"])
        ours = build_embed(EmbedRequest((*texts, "second")), model)
        assert ours.path == f"/models/{model}:batchEmbedContents"
        for theirs, mine in zip(items, ours.json["requests"], strict=False):
            content = {k: v for k, v in theirs["content"].items() if k != "role"}
            assert {**theirs, "content": content} == mine
        return
    assert method == "generateContent"
    chat = chat_request_from_wire(req["body"], model=model)
    ours = build_chat(chat, model, False)
    assert BASE_PATH + ours.path == route
    assert ours.json == req["body"]
