"""Replays recorded Ollama traffic (native ``/api/*`` only: chat, generate, embed, legacy embeddings) through the pure
provider, response side and request side.

The recordings come from an older ``ollama`` SDK that sent empty defaults (``"format": ""``, ``"options": {}``,
``"keep_alive": null``, ``"tools": []``, ``"context": []``...); the server treats them as absent, so the request
side compares bodies with empty values dropped. Our tool results carry ``tool_name`` (newer servers use it to
match the call) where the recording has none: that key is the one documented difference.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from infermux.providers import ollama as ol
from infermux.types import ChatRequest, EmbedRequest, ImagePart, Message, TextPart, Tool, ToolCall

from ._checks import check_status_error, expected_finish, run_stream
from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"ollama"})
CHUNK = 11  # odd-sized chunks split NDJSON lines and multi-byte characters
DOCUMENTED_ADDED_KEYS = {"tool_name"}


def accepts(rec: Recording) -> bool:
    return rec.provider == "ollama"


def _route(rec: Recording) -> str:
    return urlsplit(rec.request["path"]).path


def _supported(rec: Recording) -> None:
    if _route(rec) not in ("/api/chat", "/api/generate", "/api/embeddings", "/api/embed"):
        pytest.skip(f"route {_route(rec)} has no parser in the ollama provider")


def _calls(message: Any) -> list[tuple[str, Any]]:
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    return [(c["function"]["name"], c["function"].get("arguments")) for c in calls or []]


def _finish(obj: dict[str, Any], has_calls: bool) -> str | None:
    reason = obj.get("done_reason") or ("stop" if obj.get("done") is True else None)  # older servers: no reason
    mapped = expected_finish(reason)
    return "tool_calls" if has_calls and mapped == "stop" else mapped


def _check_usage(usage: Any, last: dict[str, Any]) -> None:
    if "eval_count" in last or "prompt_eval_count" in last:
        assert usage is not None and usage.output_tokens == last.get("eval_count", 0)
        assert usage.input_tokens == last.get("prompt_eval_count", 0)


def _check_stream(rec: Recording, kind: str) -> None:
    lines = rec.response["ndjson"]
    error = next((o["error"] for o in lines if o.get("error") is not None), None)
    done = [o for o in lines if o.get("done") is True]
    acc = run_stream(
        lambda: ol.NDJSONStreamParser(kind),
        rec,
        complete=bool(done) or error is not None,
        error_message=error,
        size=CHUNK,
    )
    if acc is None:
        return
    ok = [o for o in lines if o.get("error") is None]
    pieces = [(o.get("message") or {}).get("content") or "" if kind == "chat" else o.get("response") or "" for o in ok]
    assert acc.text == "".join(pieces)
    calls = [c for o in ok for c in _calls(o.get("message"))]
    assert [(c.name, c.arguments) for c in acc.tool_calls()] == calls
    if ok:
        assert acc.model == ok[0]["model"]
    if error is None:
        last = done[0]
        assert acc.finish_reason == _finish(last, bool(calls))
        _check_usage(acc.usage, last)


def check_response(rec: Recording) -> None:
    _supported(rec)
    resp, route = rec.response, _route(rec)
    headers, raw = rec.response_headers(), rec.response_bytes()
    status = int(resp["status"])
    if status >= 400:
        err = ol.classify_error(status, headers, raw)
        check_status_error(err, rec, provider="ollama", request_id=None, check_type=False)
        return
    if route in ("/api/embeddings", "/api/embed"):
        parse = ol.parse_embeddings_legacy if route == "/api/embeddings" else ol.parse_embed
        out = parse(raw, headers)
        expected = [resp["body"]["embedding"]] if route == "/api/embeddings" else resp["body"]["embeddings"]
        assert [list(v) for v in out.vectors] == expected
        return
    kind = "chat" if route == "/api/chat" else "generate"
    if "ndjson" in resp:
        _check_stream(rec, kind)
        return
    data = resp["body"]
    r = (ol.parse_chat if kind == "chat" else ol.parse_generate)(raw, headers)
    calls = _calls(data.get("message")) if kind == "chat" else []
    assert r.text == (data["message"].get("content") or "" if kind == "chat" else data["response"])
    assert [(c.name, c.arguments) for c in r.tool_calls] == calls
    assert r.finish_reason == _finish(data, bool(calls)) and r.model == data["model"]
    _check_usage(r.usage, data)
    assert r.raw == data


def _drop_empty(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_empty(v) for k, v in d.items() if v not in (None, "", [], {})}
    if isinstance(d, list):
        return [_drop_empty(v) for v in d]
    return d


def _messages(wire: list[dict[str, Any]]) -> tuple[Message, ...]:
    """The recorded messages as neutral ones. Ollama's wire has no call ids: each ``tool`` message answers
    the next unanswered call of the assistant turn before it (ids are ours; only ``tool_name`` shows them)."""
    out: list[Message] = []
    pending: list[str] = []
    for n, m in enumerate(wire):
        if m["role"] == "tool":
            out.append(Message.tool(pending.pop(0) if pending else f"orphan_{n}", m.get("content") or ""))
            continue
        calls = tuple(
            ToolCall.from_raw(f"call_{n}_{i}", c["function"]["name"], c["function"].get("arguments"))
            for i, c in enumerate(m.get("tool_calls") or [])
        )
        pending = [c.id for c in calls]
        content: str | tuple[TextPart | ImagePart, ...] = m.get("content") or ""
        if m.get("images"):  # raw base64; the media type is not on the wire
            content = (
                TextPart(m.get("content") or ""),
                *(ImagePart(data=b, media_type="image/png") for b in m["images"]),
            )
        out.append(Message(m["role"], content, tool_calls=calls))
    return tuple(out)


def _tools(wire: Any) -> tuple[Tool, ...]:
    fns = [t["function"] for t in wire or []]
    return tuple(Tool(f["name"], f.get("description") or "", f.get("parameters") or {"type": "object"}) for f in fns)


def check_request(rec: Recording) -> None:
    _supported(rec)
    wire, route = rec.request.get("body"), _route(rec)
    if not isinstance(wire, dict):
        pytest.skip("the cassette has no request body")
    stream = bool(wire.get("stream", True))  # absent: the server streams
    rest = {k: v for k, v in wire.items() if k not in ("model", "messages", "tools", "stream", "prompt", "input")}
    if route == "/api/chat":
        req = ChatRequest(_messages(wire["messages"]), tools=_tools(wire.get("tools")), extra=rest)
        ours = ol.build_chat(req, wire["model"], stream).json
        for m in ours["messages"]:
            for key in DOCUMENTED_ADDED_KEYS:
                m.pop(key, None)
        assert "stream" in ours  # always explicit: the server streams when it is absent
    elif route == "/api/generate":
        ours = ol.build_generate(wire["model"], wire.get("prompt"), stream=stream, extra=rest).json
    elif route == "/api/embed":
        inputs = wire["input"] if isinstance(wire["input"], list) else [wire["input"]]
        ours = ol.build_embed(EmbedRequest(tuple(inputs), extra=rest), wire["model"]).json
        ours["input"] = wire["input"]  # a single string is sent as a one-item list: same request
    else:
        keep_alive = rest.pop("keep_alive", None)
        if _drop_empty(rest):
            pytest.skip(f"legacy /api/embeddings options {sorted(rest)} are not built (use /api/embed)")
        ours = ol.build_embeddings_legacy(wire["model"], wire["prompt"], keep_alive=keep_alive).json
    expected = {**wire, "stream": stream} if route in ("/api/chat", "/api/generate") else wire
    assert _drop_empty(json.loads(json.dumps(ours))) == _drop_empty(expected)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    check_response(rec)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    check_request(rec)
