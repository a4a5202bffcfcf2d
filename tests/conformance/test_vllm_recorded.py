"""Recorded vLLM traffic (OpenLLMetry's tests against ``vllm serve``) through the vLLM provider: chat,
legacy completions and embeddings parsed, vLLM's ``stop_reason`` read, requests rebuilt and compared."""

from __future__ import annotations

import base64
import math
from typing import Any

import pytest

from infermux.providers import openai as oa
from infermux.providers import vllm
from infermux.types import EmbedRequest

from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"vllm"})
_SUPPORTED = {"chat", "completions_legacy", "embeddings"}


def _kind(rec: Recording) -> str:
    kind = rec.endpoint_kind or "unknown"
    if kind not in _SUPPORTED:
        pytest.skip(f"endpoint kind {kind} is not served by the vllm provider")
    return kind


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    kind = _kind(rec)
    body: dict[str, Any] = rec.response["body"]
    headers = rec.response_headers()
    assert "x-request-id" not in headers  # vLLM sends none: nothing to attribute
    if kind == "embeddings":
        emb = vllm.PROVIDER.parse_embed(rec.response_bytes(), headers)  # type: ignore[misc]
        raw = base64.b64decode(body["data"][0]["embedding"])
        assert emb.provider == "vllm" and emb.dimensions == len(raw) // 4
        assert all(math.isfinite(x) for x in emb.vectors[0])
        return
    if kind == "chat":
        resp = vllm.PROVIDER.parse_chat(rec.response_bytes(), headers)
        assert resp.text == body["choices"][0]["message"]["content"]
        assert resp.tool_calls == ()  # vLLM sends "tool_calls": [] on plain answers
    else:
        resp = oa.parse_completion(rec.response_bytes(), headers, provider="vllm")
        assert resp.text == body["choices"][0]["text"]
    assert resp.provider == "vllm" and resp.response_id == body["id"]
    assert resp.finish_reason == body["choices"][0]["finish_reason"]
    assert "stop_reason" in body["choices"][0] and vllm.stop_reason(resp) == body["choices"][0]["stop_reason"]
    assert resp.usage is not None and resp.usage.input_tokens == body["usage"]["prompt_tokens"]
    assert resp.usage.output_tokens == body["usage"]["completion_tokens"]


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    kind = _kind(rec)
    body = rec.request.get("body")
    if not isinstance(body, dict):
        pytest.skip("request body not recorded (async client cassette)")
    if kind == "chat":
        pr = vllm.PROVIDER.build_chat(oa.chat_request_from_wire(body), body["model"], False)
        assert pr.json == body
    elif kind == "completions_legacy":
        pr = oa.build_completion(body["model"], body["prompt"])
        assert pr.json == body
    else:
        extra = {k: v for k, v in body.items() if k not in ("input", "model")}
        pr = vllm.PROVIDER.build_embed(EmbedRequest((body["input"],), extra=extra), body["model"])  # type: ignore[misc]
        assert pr.json == {**body, "input": [body["input"]]}
    assert rec.request["path"] == "/v1" + pr.path
