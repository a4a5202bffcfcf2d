"""Replays recorded Hugging Face traffic through the TGI/TEI providers: TGI-native ``/generate`` answers
(JSON, ``data:``-without-space token streams, 4xx JSON and text/plain errors), TEI / feature-extraction
embeddings and sentence-similarity scores, and the Messages API chat files through ``tgi_chat``. Responses
are compared with what the recording itself says; generate and similarity requests are rebuilt and compared."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import pytest

from infermux.errors import ConfigurationError, MalformedResponseError
from infermux.providers import tei, tgi

from ._checks import check_status_error, error_envelope, expected_finish, has_done_marker, run_stream, sse_objects
from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"huggingface"})
_IDS = [r.path.stem for r in RECORDINGS]


def _check_generate_error(rec: Recording, provider: str = "tgi") -> None:
    status = int(rec.response["status"])
    classify = tgi.CHAT_PROVIDER.classify_error if provider == "tgi_chat" else tgi.classify_error
    err = classify(status, rec.response_headers(), rec.response_bytes())
    etype, _ = error_envelope(rec)
    check_status_error(
        err,
        rec,
        provider=provider,
        request_id=rec.response_headers().get("x-request-id"),
        overloaded=(etype or "").lower() == "overloaded",
    )
    if isinstance(rec.response.get("body"), dict):
        assert err.error_type == etype


def _check_generate_stream(rec: Recording) -> None:
    objs = [o for _, o in sse_objects(rec) if isinstance(o, Mapping)]
    error = next((o["error"] for o in objs if o.get("error") is not None), None)
    final = [o for o in objs if o.get("generated_text") is not None]
    acc = run_stream(tgi.GenerateStreamParser, rec, complete=bool(final) or error is not None, error_message=error)
    if acc is None:
        return
    tokens = "".join(o["token"]["text"] for o in objs if o.get("token") and not o["token"].get("special"))
    assert acc.text == tokens
    if final and final[-1].get("details"):
        assert acc.finish_reason == expected_finish(final[-1]["details"]["finish_reason"])
        assert acc.usage is not None and acc.usage.output_tokens == final[-1]["details"]["generated_tokens"]


def _check_generate_json(rec: Recording) -> None:
    body = rec.response["body"]
    item = body[0] if isinstance(body, list) else body
    r = tgi.parse_generate(rec.response_bytes(), rec.response_headers())
    assert r.text == item["generated_text"]
    details = item.get("details")
    assert r.finish_reason == (expected_finish(details["finish_reason"]) if details else None)
    if details and r.usage is not None:
        assert r.usage.output_tokens == details["generated_tokens"]
    assert r.provider_request_id == rec.response_headers().get("x-request-id")


_TYPED = (
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "seed",
    "do_sample",
    "details",
    "decoder_input_details",
    "return_full_text",
    "truncate",
    "grammar",
    "watermark",
)


def _check_generate_request(rec: Recording) -> None:
    sent = rec.request.get("body")
    if not isinstance(sent, dict):
        return  # not recorded (async client cassettes)
    if "inputs" not in sent and int(rec.response["status"]) >= 400:
        return  # the malformed request the server refused (e.g. the 422 text/plain deserialize error)
    params = {k: v for k, v in (sent.get("parameters") or {}).items() if v is not None}
    typed = {k: params[k] for k in _TYPED if k in params}
    extra = {k: v for k, v in params.items() if k not in typed}  # "stop": [] and unknown keys pass as they are
    ours = tgi.build_generate(
        sent["inputs"],
        stream=bool(sent.get("stream")),
        **{"details": None, "return_full_text": None, **typed},
        extra=extra,
    )
    assert ours.json == {"inputs": sent["inputs"], "parameters": params}
    assert ours.path == ("/generate_stream" if sent.get("stream") else "/generate")


# --------------------------------------------------------------------------- embeddings


def _check_embeddings(rec: Recording) -> None:
    path = rec.request["path"]
    body = rec.response.get("body")
    if "sentence-similarity" in path:
        scores = tei.parse_similarity(rec.response_bytes(), rec.response_headers())
        assert scores == pytest.approx(body)
        sent = rec.request.get("body")
        # one client version sent source_sentence/sentences at the top level with "inputs": null: not ours
        if isinstance(sent, dict) and isinstance(sent.get("inputs"), dict):
            inputs = sent["inputs"]
            rebuilt = tei.build_similarity(inputs["source_sentence"], inputs["sentences"])
            assert rebuilt.json == sent
        return
    if "feature-extraction" in path or (isinstance(body, list) and body and isinstance(body[0], (int, float, list))):
        r = tei.parse_embed(rec.response_bytes(), rec.response_headers())
        expected = [body] if isinstance(body[0], (int, float)) else body
        if isinstance(expected[0][0], list):  # token-level model: per-token vectors, mean-pooled per input
            expected = [[sum(col) / len(tokens) for col in zip(*tokens, strict=True)] for tokens in expected]
        assert len(r.vectors) == len(expected) and r.dimensions == len(expected[0])
        for ours, theirs in zip(r.vectors, expected, strict=True):
            assert list(ours) == pytest.approx(theirs)
        return
    pytest.skip(f"HF Inference API task shape at {path!r} is not a TEI/feature-extraction embedding")


# --------------------------------------------------------------------------- Messages API chat


def _check_chat(rec: Recording) -> None:
    prov = tgi.CHAT_PROVIDER
    if "sse_events" in rec.response:
        chunks = [o for _, o in sse_objects(rec) if isinstance(o, Mapping)]
        error = next((error_envelope(_body_rec(rec, c))[1] for c in chunks if c.get("error") is not None), None)
        choices = [ch for c in chunks for ch in c.get("choices") or [] if ch.get("index", 0) == 0]
        finish = [ch["finish_reason"] for ch in choices if ch.get("finish_reason")]
        acc = run_stream(
            prov.new_stream_parser,
            rec,
            complete=has_done_marker(rec) or bool(finish) or error is not None,
            error_message=error,
        )
        if acc is None:
            return
        assert acc.text == "".join((ch.get("delta") or {}).get("content") or "" for ch in choices)
        if error is None:
            assert acc.finish_reason == expected_finish(finish[-1] if finish else None)
        return
    r = prov.parse_chat(rec.response_bytes(), rec.response_headers())
    choice = rec.response["body"]["choices"][0]
    msg = choice["message"]
    assert r.text == (msg.get("content") or "") and r.provider == "tgi_chat"
    assert [c.name for c in r.tool_calls] == [c["function"]["name"] for c in msg.get("tool_calls") or []]
    assert r.finish_reason == expected_finish(choice.get("finish_reason"))


def _body_rec(rec: Recording, obj: Any) -> Recording:
    return Recording(rec.path, {**rec.data, "response": {"status": 200, "headers": {}, "body": obj}})


def _check_generate(rec: Recording, status: int) -> None:
    if status >= 400:
        with contextlib.suppress(ConfigurationError):  # refusing before I/O what the server refused is fine
            _check_generate_request(rec)
        _check_generate_error(rec)
        return
    _check_generate_request(rec)
    if "sse_events" in rec.response:
        _check_generate_stream(rec)
    else:
        _check_generate_json(rec)


def accepts(rec: Recording) -> bool:
    return rec.provider == "huggingface"


def check_response(rec: Recording) -> None:
    """Response side (and, for TGI generate, the request rebuilt) of one Hugging Face recording."""
    kind = rec.endpoint_kind
    status = int(rec.response["status"])
    if kind == "tgi_generate":
        _check_generate(rec, status)
    elif kind == "embeddings":
        if status >= 400:
            err = tei.classify_error(status, rec.response_headers(), rec.response_bytes())
            check_status_error(
                err, rec, provider=err.provider or "tei", request_id=rec.response_headers().get("x-request-id")
            )
        else:
            _check_embeddings(rec)
    elif kind == "chat":
        if status >= 400:
            _check_generate_error(rec, "tgi_chat")
        else:
            _check_chat(rec)
    else:
        pytest.skip(f"endpoint kind {kind} is not a TGI/TEI route")


@pytest.mark.parametrize("rec", RECORDINGS, ids=_IDS)
def test_recorded_huggingface(rec: Recording) -> None:
    check_response(rec)


def test_truncated_recorded_generate_is_malformed() -> None:
    rec = next((r for r in RECORDINGS if r.endpoint_kind == "tgi_generate" and r.response["status"] == 200), None)
    if rec is None:
        pytest.skip("no recorded tgi_generate 200 in this set")
    raw = rec.response_bytes()
    with pytest.raises(MalformedResponseError):
        tgi.parse_generate(raw[: len(raw) // 2], rec.response_headers())
