"""Replays recorded Hugging Face traffic through the TGI/TEI providers: TGI-native ``/generate`` answers
(JSON, ``data:``-without-space token streams, 4xx JSON and text/plain errors), TEI / feature-extraction
embeddings and sentence-similarity scores, and the Messages API chat files through ``tgi_chat``. Responses
are compared with what the recording itself says; generate and similarity requests are rebuilt and compared."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from infermux.errors import ConfigurationError, MalformedResponseError, OverloadedError, status_error_class
from infermux.providers import tei, tgi
from infermux.providers._common import map_finish_reason
from infermux.types import StreamAccumulator, StreamEvent

from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"huggingface"})
_IDS = [r.path.stem for r in RECORDINGS]


def _feed(parser: Any, raw: bytes, size: int) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for i in range(0, len(raw), size):
        events.extend(parser.feed(raw[i : i + size]))
    events.extend(parser.close())
    return events


def _accumulate(events: list[StreamEvent]) -> StreamAccumulator:
    acc = StreamAccumulator()
    for ev in events:
        acc.add(ev)
    return acc


# --------------------------------------------------------------------------- tgi_generate


def _check_generate_error(rec: Recording) -> None:
    status = int(rec.response["status"])
    err = tgi.classify_error(status, rec.response_headers(), rec.response_bytes())
    body = rec.response.get("body")
    expected_msg = body.get("error") if isinstance(body, dict) else rec.response.get("body_text")
    etype = body.get("error_type") if isinstance(body, dict) else None
    assert err.status_code == status and err.provider == "tgi"
    if etype == "overloaded":
        assert isinstance(err, OverloadedError) and err.retryable
    else:
        assert type(err) is status_error_class(status)
        assert err.error_type == (etype or err.error_type)
    # a non-JSON body's text is kept up to 300 characters, whitespace-trimmed
    assert err.provider_message == expected_msg or str(expected_msg).strip().startswith(str(err.provider_message))
    assert err.provider_request_id == rec.response_headers().get("x-request-id")


def _check_generate_stream(rec: Recording) -> None:
    raw = rec.response_bytes()
    events = _feed(tgi.GenerateStreamParser(), raw, 7)
    assert events == _feed(tgi.GenerateStreamParser(), raw, len(raw) or 1), "chunking changed the events"
    acc = _accumulate(events)
    objs = [json.loads(e["data"]) for e in rec.response["sse_events"] if e["data"].strip() != "[DONE]"]
    tokens = "".join(o["token"]["text"] for o in objs if o.get("token") and not o["token"].get("special"))
    assert acc.text == tokens
    final = [o for o in objs if o.get("generated_text") is not None]
    assert acc.finished == bool(final)
    if final and final[-1].get("details"):
        assert acc.finish_reason == map_finish_reason(final[-1]["details"]["finish_reason"])


def _check_generate_json(rec: Recording) -> None:
    body = rec.response["body"]
    item = body[0] if isinstance(body, list) else body
    r = tgi.parse_generate(rec.response_bytes(), rec.response_headers())
    assert r.text == item["generated_text"]
    details = item.get("details")
    assert r.finish_reason == (map_finish_reason(details["finish_reason"]) if details else None)
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
        assert len(r.vectors) == len(expected) and r.dimensions == len(expected[0])
        for ours, theirs in zip(r.vectors, expected, strict=True):
            assert list(ours) == pytest.approx(theirs)
        return
    pytest.skip(f"HF Inference API task shape at {path!r} is not a TEI/feature-extraction embedding")


# --------------------------------------------------------------------------- Messages API chat


def _check_chat(rec: Recording) -> None:
    prov = tgi.CHAT_PROVIDER
    if "sse_events" in rec.response:
        raw = rec.response_bytes()
        acc = _accumulate(_feed(prov.new_stream_parser(), raw, 7))
        expected = "".join(
            (json.loads(e["data"])["choices"][0].get("delta") or {}).get("content") or ""
            for e in rec.response["sse_events"]
            if e["data"].strip() != "[DONE]" and json.loads(e["data"]).get("choices")
        )
        assert acc.text == expected and acc.finished
        return
    r = prov.parse_chat(rec.response_bytes(), rec.response_headers())
    msg = rec.response["body"]["choices"][0]["message"]
    assert r.text == (msg.get("content") or "") and r.provider == "tgi_chat"
    assert len(r.tool_calls) == len(msg.get("tool_calls") or [])


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


@pytest.mark.parametrize("rec", RECORDINGS, ids=_IDS)
def test_recorded_huggingface(rec: Recording) -> None:
    kind = rec.endpoint_kind
    status = int(rec.response["status"])
    if kind == "tgi_generate":
        _check_generate(rec, status)
    elif kind == "embeddings":
        if status >= 400:
            err = tei.classify_error(status, rec.response_headers(), rec.response_bytes())
            assert err.status_code == status
        else:
            _check_embeddings(rec)
    elif kind == "chat":
        if status >= 400:
            err = tgi.CHAT_PROVIDER.classify_error(status, rec.response_headers(), rec.response_bytes())
            assert type(err) is status_error_class(status) or isinstance(err, OverloadedError)
        else:
            _check_chat(rec)
    else:
        pytest.skip(f"endpoint kind {kind} is not a TGI/TEI route")


def test_truncated_recorded_generate_is_malformed() -> None:
    rec = next((r for r in RECORDINGS if r.endpoint_kind == "tgi_generate" and r.response["status"] == 200), None)
    if rec is None:
        pytest.skip("no recorded tgi_generate 200 in this set")
    raw = rec.response_bytes()
    with pytest.raises(MalformedResponseError):
        tgi.parse_generate(raw[: len(raw) // 2], rec.response_headers())
