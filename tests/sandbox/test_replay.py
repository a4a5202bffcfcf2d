"""Replay recorded real requests against the sandbox and compare the response *structure* with the recording.

Bounded: at most 4 recordings per (provider, endpoint, stream) group, sorted, 20 in all. Content differs by
design (the sandbox echoes); what must match is the shape: top-level/nested keys, the event grammar, and the
headers clients read.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from infermux.sandbox import Sandbox
from tests.conformance._recordings import Recording, load

pytestmark = pytest.mark.conformance

PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")
PER_GROUP = {"/v1/chat/completions": 4, "/v1/responses": 3, "/v1/messages": 3}
# Fields that depend on the answer's content or on account/region features the sandbox does not model.
CONTENT_KEYS = {"choices.0.message.tool_calls", "choices.0.message.function_call", "choices.0.delta.tool_calls"}
OPTIONAL_KEYS = {"container", "diagnostics", "tool_usage", "access_programs", "routing", "prompt_filter_results"}
HEADERS = ("x-request-id", "request-id", "openai-processing-ms", "openai-version", "content-type")
HEADER_PREFIXES = ("x-ratelimit-limit-", "x-ratelimit-remaining-", "x-ratelimit-reset-", "anthropic-ratelimit-")


def _path(rec: Recording) -> str:
    return str(rec.request["path"]).split("?")[0]


def _selected() -> list[Recording]:
    """Per group, recordings spread evenly over the sorted list (so several source packages are covered)."""
    groups: dict[tuple[str, str, bool], list[Recording]] = {}
    for rec in load({"openai", "anthropic"}):
        resp = rec.response
        if resp["status"] != 200 or not rec.request.get("body") or _path(rec) not in PATHS:
            continue
        if "prompt_filter_results" in rec.response_bytes().decode():  # Azure-fronted recordings
            continue
        groups.setdefault((rec.provider, _path(rec), "sse_events" in resp), []).append(rec)
    out: list[Recording] = []
    for (_, path, _), recs in sorted(groups.items()):
        n = min(PER_GROUP[path], len(recs))
        out += [recs[(i * len(recs)) // n] for i in range(n)]
    return out[:20]


RECORDINGS = _selected()


def keys(obj: Any, prefix: str = "") -> set[str]:
    """Key paths of an object: top level, plus inside choices[0], message, delta and usage."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(prefix + k)
            if k in ("usage", "message", "delta") or (prefix == "" and k == "choices"):
                out |= keys(v, f"{prefix}{k}.")
    elif isinstance(obj, list) and obj and isinstance(obj[0], dict):
        out |= keys(obj[0], prefix + "0.")
    return out


def missing(expected: Any, got: Any) -> set[str]:
    return {k for k in keys(expected) - keys(got) if k not in CONTENT_KEYS and k.split(".")[-1] not in OPTIONAL_KEYS}


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name = data = None
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].removeprefix(" ")
        if data is not None:
            events.append((name, data))
    return events


def grammar(events: list[tuple[str | None, str]]) -> list[str]:
    """The event sequence with content-dependent repetition folded away."""
    out: list[str] = []
    for name, data in events:
        if name is None:
            tag = "DONE" if data == "[DONE]" else ("usage" if json.loads(data).get("choices") == [] else "chunk")
        elif name.startswith("content_block_"):
            tag = "block"
        elif name.startswith("response.") and name not in ("response.created", "response.in_progress"):
            tag = "item" if name not in ("response.completed", "response.incomplete") else name
        else:
            tag = name
        if tag != "ping" and (not out or out[-1] != tag):
            out.append(tag)
    return out


def test_selection_is_bounded_and_covers_each_group() -> None:
    if not RECORDINGS:
        pytest.skip("no recordings available")
    groups = {(r.provider, _path(r), "sse_events" in r.response) for r in RECORDINGS}
    assert len(RECORDINGS) <= 20
    assert ("openai", "/v1/chat/completions", True) in groups and ("anthropic", "/v1/messages", True) in groups


@pytest.mark.parametrize("rec", RECORDINGS, ids=lambda r: r.path.stem[-60:])
async def test_replay_structure(sb: Sandbox, rec: Recording) -> None:
    anthropic = rec.provider == "anthropic"
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"} if anthropic else {"authorization": "Bearer k"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(sb.base_url + _path(rec), json=rec.request["body"], headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        got_headers = {k.lower() for k in r.headers}
        raw = (await r.read()).decode()
    recorded_headers = rec.response_headers()
    for name in recorded_headers:
        if name in HEADERS or name.startswith(HEADER_PREFIXES):
            assert name in got_headers, f"missing header {name}"
    assert recorded_headers["content-type"].split(";")[0] in r.headers["content-type"]
    if "body" in rec.response:
        assert missing(rec.response["body"], json.loads(raw)) == set()
        return
    expected = [(e.get("event"), e["data"]) for e in rec.response["sse_events"]]
    got = parse_sse(raw)
    assert grammar(got) == grammar(expected)
    for name, data in got:
        if data != "[DONE]" and name is not None:
            assert json.loads(data)["type"] == name  # named events repeat their name in the payload
    exp_keys = set().union(*(keys(json.loads(d)) for _, d in expected if d != "[DONE]"))
    got_keys = set().union(*(keys(json.loads(d)) for _, d in got if d != "[DONE]"))
    assert {k for k in exp_keys - got_keys if k not in CONTENT_KEYS and k.split(".")[-1] not in OPTIONAL_KEYS} == set()
