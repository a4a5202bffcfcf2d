"""Recorded vLLM traffic (OpenLLMetry's tests against ``vllm serve``) through the vLLM provider: chat (plain
and streamed), legacy completions and embeddings (float lists or base64) parsed, vLLM's ``stop_reason`` read,
errors (both of vLLM's body shapes) classified, requests rebuilt and compared.
``check_response`` / ``check_request`` work on any recording that ``accepts``."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import pytest

from infermux.providers import openai as oa
from infermux.providers import vllm
from infermux.types import EmbedRequest

from ._checks import (
    check_status_error,
    expected_finish,
    has_done_marker,
    rebuilt_unless_refused,
    run_stream,
    sse_objects,
)
from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"vllm"})
_SUPPORTED = {"chat", "completions_legacy", "embeddings"}


def accepts(rec: Recording) -> bool:
    return rec.provider == "vllm"


def _kind(rec: Recording) -> str:
    kind = rec.endpoint_kind or "unknown"
    if kind not in _SUPPORTED:
        pytest.skip(f"endpoint kind {kind} is not served by the vllm provider")
    return kind


def _check_embeddings(rec: Recording) -> None:
    body: dict[str, Any] = rec.response["body"]
    emb = vllm.PROVIDER.parse_embed(rec.response_bytes(), rec.response_headers())  # type: ignore[misc]
    assert emb.provider == "vllm" and len(emb.vectors) == len(body["data"])
    for ours, item in zip(emb.vectors, sorted(body["data"], key=lambda d: d.get("index", 0)), strict=True):
        theirs = item["embedding"]
        if isinstance(theirs, str):  # encoding_format=base64: little-endian float32
            assert len(ours) == len(base64.b64decode(theirs)) // 4
        else:
            assert list(ours) == pytest.approx(theirs)
        assert all(math.isfinite(x) for x in ours)


def _check_stream(rec: Recording) -> None:
    chunks = [obj for _, obj in sse_objects(rec) if isinstance(obj, Mapping)]
    error = next((c["error"].get("message") for c in chunks if isinstance(c.get("error"), Mapping)), None)
    choices = [ch for c in chunks for ch in c.get("choices") or [] if ch.get("index", 0) == 0]
    finish = [ch["finish_reason"] for ch in choices if ch.get("finish_reason")]
    acc = run_stream(
        vllm.PROVIDER.new_stream_parser,
        rec,
        complete=has_done_marker(rec) or error is not None,  # termination rule: [DONE] required
        error_message=error,
    )
    if acc is None:
        return
    text = "".join(
        (ch.get("delta") or {}).get("content") or "" if "delta" in ch else ch.get("text") or "" for ch in choices
    )
    assert acc.text == text
    if error is None:
        assert acc.finish_reason == expected_finish(finish[-1] if finish else None)


def check_response(rec: Recording) -> None:
    kind = _kind(rec)
    headers = rec.response_headers()
    status = int(rec.response["status"])
    if status >= 400:
        err = vllm.classify_error(status, headers, rec.response_bytes())
        check_status_error(err, rec, provider="vllm", request_id=headers.get("x-request-id"))
        return
    if kind == "embeddings":
        _check_embeddings(rec)
        return
    if "raw_body" in rec.response:
        _check_stream(rec)
        return
    body: dict[str, Any] = rec.response["body"]
    choice = body["choices"][0]
    if kind == "chat":
        resp = vllm.PROVIDER.parse_chat(rec.response_bytes(), headers)
        assert resp.text == (choice["message"].get("content") or "")
        # vLLM sends "tool_calls": [] on plain answers
        calls = [(c["function"]["name"], c["function"]["arguments"]) for c in choice["message"].get("tool_calls") or []]
        assert [(c.name, c.raw_arguments) for c in resp.tool_calls] == calls
    else:
        resp = oa.parse_completion(rec.response_bytes(), headers, provider="vllm")
        assert resp.text == choice["text"]
    # vLLM sends no request id unless started with --enable-request-id-headers
    assert resp.provider_request_id == headers.get("x-request-id")
    assert resp.provider == "vllm" and resp.response_id == body["id"]
    assert resp.finish_reason == expected_finish(choice.get("finish_reason"))
    assert vllm.stop_reason(resp) == choice.get("stop_reason")
    assert resp.usage is not None and resp.usage.input_tokens == body["usage"]["prompt_tokens"]
    assert resp.usage.output_tokens == body["usage"]["completion_tokens"]


def check_request(rec: Recording) -> None:
    kind = _kind(rec)
    body = rec.request.get("body")
    if not isinstance(body, dict):
        pytest.skip("request body not recorded (async client cassette)")
    stream = bool(body.get("stream"))
    sent = {k: v for k, v in body.items() if v is not None and not (k == "stream" and v is False)}
    if kind == "chat":
        rebuilt = rebuilt_unless_refused(
            rec, lambda: vllm.PROVIDER.build_chat(oa.chat_request_from_wire(body), body["model"], stream)
        )
        if rebuilt is None:
            return
        pr = rebuilt
        if stream and "stream_options" not in sent:
            sent["stream_options"] = {"include_usage": True}  # documented: always asked for
        assert pr.json == sent
    elif kind == "completions_legacy":
        rest = {k: v for k, v in sent.items() if k not in ("model", "prompt", "stream")}
        pr = oa.build_completion(body["model"], body["prompt"], stream=stream, extra=rest)
        assert pr.json == sent
    else:
        extra = {k: v for k, v in sent.items() if k not in ("input", "model")}
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        pr = vllm.PROVIDER.build_embed(EmbedRequest(tuple(inputs), extra=extra), body["model"])  # type: ignore[misc]
        assert pr.json == {**sent, "input": inputs}
    assert rec.request["path"].split("?")[0] == "/v1" + pr.path


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    check_response(rec)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    check_request(rec)
