"""Replays recorded Ollama traffic (native ``/api/*`` only: chat, generate, legacy embeddings) through the pure
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
from infermux.types import ChatRequest, Message, StreamAccumulator, StreamEvent, StreamFinish, TextDelta, ToolCall

from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

RECORDINGS = load({"ollama"})
CHUNK = 11  # odd-sized chunks split NDJSON lines and multi-byte characters
DOCUMENTED_ADDED_KEYS = {"tool_name"}


def _route(rec: Recording) -> str:
    return urlsplit(rec.request["path"]).path


def _feed(parser: Any, raw: bytes) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(raw), CHUNK):
        out += parser.feed(raw[i : i + CHUNK])
    return out + parser.close()


def _supported(rec: Recording) -> None:
    if _route(rec) not in ("/api/chat", "/api/generate", "/api/embeddings", "/api/embed"):
        pytest.skip(f"route {_route(rec)} has no parser in the ollama provider")


def test_recordings_present() -> None:
    if not RECORDINGS:
        pytest.skip("no ollama recordings in INFERMUX_RECORDINGS")
    assert all(r.provider == "ollama" for r in RECORDINGS)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_response_side(rec: Recording) -> None:
    _supported(rec)
    resp, route = rec.response, _route(rec)
    headers, raw = rec.response_headers(), rec.response_bytes()
    status = int(resp["status"])
    if status >= 400:  # the shared set has no Ollama errors; another set may
        err = ol.classify_error(status, headers, raw)
        assert err.status_code == status and err.provider == "ollama" and err.provider_message
        return
    if route in ("/api/embeddings", "/api/embed"):
        parse = ol.parse_embeddings_legacy if route == "/api/embeddings" else ol.parse_embed
        out = parse(raw, headers)
        expected = [resp["body"]["embedding"]] if route == "/api/embeddings" else resp["body"]["embeddings"]
        assert [list(v) for v in out.vectors] == expected
        return
    kind = "chat" if route == "/api/chat" else "generate"
    if "ndjson" in resp:
        lines = resp["ndjson"]
        events: list[StreamEvent] = _feed(ol.NDJSONStreamParser(kind), raw)
        assert sum(isinstance(e, StreamFinish) for e in events) == 1 and isinstance(events[-1], StreamFinish)
        acc = StreamAccumulator()
        for e in events:
            acc.add(e)
        pieces = [o["message"]["content"] if kind == "chat" else o["response"] for o in lines]
        assert acc.text == "".join(pieces) == "".join(e.text for e in events if isinstance(e, TextDelta))
        last = lines[-1]
        assert last["done"] is True and acc.finish_reason == "stop" == last["done_reason"]
        assert acc.usage is not None and acc.usage.output_tokens == last["eval_count"]
        assert acc.usage.input_tokens == last.get("prompt_eval_count", 0)
        assert acc.model == lines[0]["model"]
        return
    data = resp["body"]
    r = (ol.parse_chat if kind == "chat" else ol.parse_generate)(raw, headers)
    assert r.text == (data["message"]["content"] if kind == "chat" else data["response"])
    assert r.finish_reason == "stop" and r.model == data["model"]
    assert r.usage is not None and r.usage.output_tokens == data["eval_count"]
    assert r.usage.input_tokens == data.get("prompt_eval_count", 0)
    assert r.raw == data


def _drop_empty(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_empty(v) for k, v in d.items() if v not in (None, "", [], {})}
    if isinstance(d, list):
        return [_drop_empty(v) for v in d]
    return d


def _message(m: dict[str, Any], n: int) -> Message:
    calls = tuple(
        ToolCall.from_raw(f"call_{n}_{i}", c["function"]["name"], c["function"]["arguments"])
        for i, c in enumerate(m.get("tool_calls") or [])
    )
    if m["role"] == "tool":
        return Message.tool(f"call_{n - 1}_0", m["content"])
    return Message(m["role"], m.get("content"), tool_calls=calls)


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_request_side(rec: Recording) -> None:
    _supported(rec)
    wire, route = rec.request["body"], _route(rec)
    if wire is None:
        pytest.skip("the cassette has no request body")
    if route == "/api/chat":
        req = ChatRequest(tuple(_message(m, n) for n, m in enumerate(wire["messages"])))
        ours = ol.build_chat(req, wire["model"], bool(wire["stream"])).json
        for m in ours["messages"]:
            for key in DOCUMENTED_ADDED_KEYS:
                m.pop(key, None)
        assert "stream" in ours  # always explicit: the server streams when it is absent
    elif route == "/api/generate":
        ours = ol.build_generate(
            wire["model"],
            wire["prompt"],
            system=wire.get("system") or None,
            images=wire.get("images") or (),
            format=wire.get("format") or None,
            options=wire.get("options") or None,
            stream=bool(wire["stream"]),
            raw=wire.get("raw"),
        ).json
    else:
        ours = ol.build_embeddings_legacy(wire["model"], wire["prompt"], keep_alive=wire.get("keep_alive")).json
    assert _drop_empty(json.loads(json.dumps(ours))) == _drop_empty(wire)
