"""Helpers shared by the conformance checks: feeding streams, reading a recording's own expectations
(finish reasons, error bodies, retry delays) independently of the parsers under test, and the outcome
checks every stream and error case goes through."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from infermux.errors import (
    APIStatusError,
    ConfigurationError,
    IncompleteStreamError,
    OverloadedError,
    status_error_class,
)
from infermux.types import StreamAccumulator, StreamError, StreamEvent, StreamFinish, TextDelta

from ._recordings import Recording

#: Every provider finish/stop reason the recorded APIs document -> the neutral value we promise.
#: Written out here (not imported) so a parser's table is checked against the APIs, not against itself.
FINISH: Mapping[str, str] = {
    # OpenAI-protocol (OpenAI, Azure, Groq, DeepSeek, vLLM, TGI Messages API)
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "insufficient_system_resource": "other",
    # Anthropic
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
    "pause_turn": "other",
    # Responses API incomplete_details.reason
    "max_output_tokens": "length",
    # Ollama done_reason (stop, length; "load"/"unload" when only loading a model)
    "load": "other",
    "unload": "other",
}


def expected_finish(raw: object) -> str | None:
    """The neutral finish reason for a recorded one (``None`` stays ``None``; unknown values -> ``other``)."""
    if raw is None or raw == "":
        return None
    return FINISH.get(raw, "other") if isinstance(raw, str) else "other"


def feed(parser: Any, raw: bytes, size: int) -> list[StreamEvent]:
    """Feed ``raw`` to a stream parser in ``size``-byte chunks, then close it."""
    events: list[StreamEvent] = []
    for i in range(0, len(raw), max(size, 1)):
        events.extend(parser.feed(raw[i : i + size]))
    events.extend(parser.close())
    return events


def accumulate(events: list[StreamEvent]) -> StreamAccumulator:
    acc = StreamAccumulator()
    for e in events:
        acc.add(e)
    return acc


def sse_objects(rec: Recording) -> list[tuple[str | None, Any]]:
    """``(event name, decoded JSON)`` of every recorded SSE event with a JSON payload ([DONE] left out)."""
    out: list[tuple[str | None, Any]] = []
    for ev in rec.response.get("sse_events") or []:
        data = str(ev.get("data") or "").strip()
        if not data or data == "[DONE]":
            continue
        try:
            out.append((ev.get("event"), json.loads(data)))
        except ValueError:
            out.append((ev.get("event"), None))
    return out


def has_done_marker(rec: Recording) -> bool:
    return any(str(ev.get("data") or "").strip() == "[DONE]" for ev in rec.response.get("sse_events") or [])


def run_stream(
    new_parser: Any,
    rec: Recording,
    *,
    complete: bool,
    error_message: str | None,
    size: int = 7,
) -> StreamAccumulator | None:
    """Parse the recorded stream in small chunks and check its outcome against the recording.

    ``complete``: the recording carries its terminal marker (or an in-band error). An incomplete one must
    raise :class:`IncompleteStreamError` (``None`` is returned). With ``error_message`` the recording has an
    in-band error event: a ``StreamError`` with that message must come out and at most one finish; without
    it, exactly one ``StreamFinish`` ends the events. Chunking must not change the events."""
    raw = rec.response_bytes()
    if not complete:
        with pytest.raises(IncompleteStreamError):
            feed(new_parser(), raw, size)
        return None
    events = feed(new_parser(), raw, size)
    assert events == feed(new_parser(), raw, len(raw) or 1), "chunking changed the events"
    finishes = sum(isinstance(e, StreamFinish) for e in events)
    errors = [e for e in events if isinstance(e, StreamError)]
    if error_message is not None:
        assert errors, f"recorded in-band error {error_message!r} did not become a StreamError"
        assert errors[0].message == error_message
        assert finishes <= 1
    else:
        assert not errors, errors
        assert finishes == 1 and isinstance(events[-1], StreamFinish), events[-3:]
    acc = accumulate(events)
    assert acc.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    return acc


# --------------------------------------------------------------------------- errors


def error_envelope(rec: Recording) -> tuple[str | None, str | None]:
    """``(error type, message)`` as the recorded error body states them, read by the documented shapes:
    ``{"error": {"message", "type"|"code"|"status"}}`` (OpenAI, Azure, Anthropic, Google, Groq),
    ``{"error": "text", "error_type"}`` (TGI, HF, Ollama), ``{"message", "type"|"code"}`` (vLLM, Bedrock),
    ``{"detail": ...}`` (FastAPI), a JSON list of those (Google), or plain text (first 300 bytes, trimmed)."""
    resp = rec.response
    body = resp.get("body")
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            etype = next((str(err[k]) for k in ("type", "code", "status") if err.get(k) not in (None, "")), None)
            msg = err.get("message")
            return etype, msg if isinstance(msg, str) and msg else None
        etype = next((str(body[k]) for k in ("error_type", "type", "code") if body.get(k) not in (None, "")), None)
        if isinstance(err, str):
            return etype, err
        for key in ("message", "detail", "msg"):
            v = body.get(key)
            if v is not None:
                return etype, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        return etype, None
    if isinstance(body, str):
        return None, body
    text = rec.response_bytes()[:300].decode("utf-8", "replace").strip()
    return None, text or None


def expected_retry_after(headers: Mapping[str, str]) -> float | None:
    """The delay a ``retry-after-ms`` / numeric ``retry-after`` header asks for (HTTP dates: ``None``)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        v = headers.get(name)
        if v is not None:
            try:
                return max(0.0, float(v) / scale)
            except ValueError:
                return None
    return None


def check_status_error(
    err: APIStatusError,
    rec: Recording,
    *,
    provider: str,
    request_id: str | None,
    error_type: str | None = None,
    message: str | None = None,
    overloaded: bool = False,
    check_type: bool = True,
) -> None:
    """The typed error of a recorded error answer: class by status (or overloaded), status, provider,
    message and type as the body states them, request id, and the advertised retry delay."""
    status = int(rec.response["status"])
    etype, msg = error_envelope(rec)
    etype = error_type if error_type is not None else etype
    msg = message if message is not None else msg
    assert isinstance(err, APIStatusError)
    if overloaded:
        assert isinstance(err, OverloadedError) and err.retryable, err
    else:
        assert type(err) is status_error_class(status), (type(err), status)
    assert err.status_code == status and err.provider == provider
    if msg is not None and (isinstance(rec.response.get("body"), (Mapping, list))):
        assert err.provider_message == msg
    elif msg is not None:  # a text body: kept, trimmed and cut
        assert err.provider_message and msg.startswith(err.provider_message[:200].strip())
    if check_type and etype is not None:
        assert err.error_type == etype, (err.error_type, etype)
    assert err.provider_request_id == request_id
    delay = expected_retry_after(rec.response_headers())
    if delay is not None:
        assert err.retry_after == pytest.approx(delay)


@contextmanager
def not_skipped(what: str) -> Iterator[None]:
    """Turn a ``pytest.skip`` inside the block into a failure (a variant we generated must be checked)."""
    try:
        yield
    except pytest.skip.Exception as e:
        pytest.fail(f"{what}: skipped ({e.msg}) but it is a supported shape")


_T = TypeVar("_T")


def rebuilt_unless_refused(rec: Recording, build: Callable[[], _T]) -> _T | None:
    """``build()`` (our request rebuilt from the recorded one), or ``None`` when we refuse it before I/O with
    :class:`ConfigurationError` and the server refused it too (a 4xx such as 422 for an empty ``messages``):
    refusing what the provider refuses is right. A refusal of a request the server accepted still fails."""
    try:
        return build()
    except ConfigurationError:
        if int(rec.response["status"]) >= 400:
            return None
        raise
