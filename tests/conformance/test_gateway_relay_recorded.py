"""Recorded real streams (OpenAI, Azure, Groq, DeepSeek chat; OpenAI Responses; Anthropic Messages) through the
provider's stream parser and the gateway's renderer of the same protocol: the caller gets the stream the backend
sent, event for event and field for field (Anthropic ``ping`` events aside: the SDKs skip them)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infermux.gateway.sse import AnthropicSSE, ChatSSE, ResponsesSSE
from infermux.providers.anthropic import AnthropicStreamParser
from infermux.providers.openai import ChatStreamParser
from infermux.providers.openai_responses import ResponsesStreamParser

from ._checks import sse_objects
from ._recordings import Recording, load

pytestmark = pytest.mark.conformance

CHAT = {"openai", "azure-openai", "groq", "deepseek"}


def _relayable(rec: Recording) -> bool:
    if "raw_body" not in rec.response or int(rec.response["status"]) != 200:
        return False
    kind = rec.endpoint_kind
    return (rec.provider in CHAT and kind == "chat") or (rec.provider, kind) in (
        ("openai", "responses"),
        ("anthropic", "chat"),
    )


RECORDINGS = [r for r in load(CHAT | {"anthropic"}) if _relayable(r)]


def _render(rec: Recording) -> bytes:
    if rec.provider == "anthropic":
        parser: Any = AnthropicStreamParser()
        renderer: Any = AnthropicSSE("r", "m")
    elif rec.endpoint_kind == "responses":
        parser, renderer = ResponsesStreamParser(), ResponsesSSE("r", "m", {})
    else:
        parser, renderer = ChatStreamParser(rec.provider), ChatSSE("r", "m", include_usage=True)
    raw = rec.response_bytes()
    events = [ev for i in range(0, len(raw), 11) for ev in parser.feed(raw[i : i + 11])]
    events += parser.close()
    return b"".join(renderer.feed(ev) for ev in events) + renderer.close()


def _frames(body: bytes) -> list[tuple[str | None, Any]]:
    out: list[tuple[str | None, Any]] = []
    for frame in body.decode().split("\n\n"):
        name, data = None, []
        for line in frame.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        text = "\n".join(data)
        if text and text != "[DONE]":
            out.append((name, json.loads(text)))
    return out


@pytest.mark.parametrize("rec", RECORDINGS, ids=str)
def test_recorded_stream_reaches_a_same_protocol_caller_as_it_came(rec: Recording) -> None:
    want = [(name, obj) for name, obj in sse_objects(rec) if name != "ping"]
    assert _frames(_render(rec)) == want


def test_the_recordings_hold_streams_of_each_protocol() -> None:
    kinds = {("anthropic" if r.provider == "anthropic" else r.endpoint_kind) for r in RECORDINGS}
    assert kinds == {"anthropic", "chat", "responses"}
