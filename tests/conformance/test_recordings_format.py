"""Every recording in ``INFERMUX_RECORDINGS`` follows the documented format (fixtures/recorded/README.md)
and reaches at least one provider's conformance checks; an empty or absent folder is an explicit skip."""

from __future__ import annotations

import json

import pytest

from . import (
    test_anthropic_recorded,
    test_gemini_recorded,
    test_groq_recorded,
    test_huggingface_recorded,
    test_ollama_recorded,
    test_openai_recorded,
    test_vllm_recorded,
)
from ._recordings import Recording, recordings_dir

pytestmark = pytest.mark.conformance

#: the per-provider check modules: each has ``accepts(rec)`` and ``check_response(rec)`` (most also ``check_request``)
CHECK_MODULES = (
    test_openai_recorded,
    test_anthropic_recorded,
    test_gemini_recorded,
    test_groq_recorded,
    test_vllm_recorded,
    test_huggingface_recorded,
    test_ollama_recorded,
)
_CREDENTIALS = {"authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie"}
_BODY_FIELDS = ("body", "sse_events", "ndjson", "body_text")


def _all() -> list[Recording]:
    root = recordings_dir()
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.rglob("*.json")):
        if p.name in ("manifest.json", "split_log.json"):
            continue
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as e:  # reported by test_recording_format, not a collection error
            out.append(Recording(p, {"unreadable": str(e)}))
            continue
        if isinstance(data, dict) and data.get("request") is not None:
            out.append(Recording(p, data))
    return out


ALL = _all()


def check_format(rec: Recording) -> None:
    """The documented shape of one recording (see fixtures/recorded/README.md)."""
    d = rec.data
    assert "unreadable" not in d, d.get("unreadable")
    assert isinstance(d.get("response"), dict) and isinstance(d.get("request"), dict)
    assert isinstance(d.get("provider"), str) and d["provider"]
    assert isinstance(d.get("kinds"), list) and all(isinstance(k, str) for k in d["kinds"])
    req, resp = d["request"], d["response"]
    assert isinstance(req.get("method"), str) and isinstance(req.get("path"), str) and req["path"].startswith("/")
    assert isinstance(resp.get("status"), int) and 100 <= resp["status"] < 600
    for side in (req, resp):
        for name, value in (side.get("headers") or {}).items():
            assert name == name.lower(), name
            assert isinstance(value, (str, list)), (name, value)
            if name in _CREDENTIALS and isinstance(value, str):
                assert value == "<redacted>", name
    present = [f for f in _BODY_FIELDS if f in resp]
    assert len(present) <= 1, present
    if "sse_events" in resp:
        assert isinstance(resp.get("raw_body"), str)
        assert all(isinstance(e, dict) and isinstance(e.get("data"), str) for e in resp["sse_events"])
    if "ndjson" in resp:
        assert isinstance(resp["ndjson"], list)
    if resp["status"] >= 400:
        assert "error" in rec.kinds


def _id(rec: Recording) -> str:
    return f"{rec.data.get('provider', '?')}/{rec.path.name}"


@pytest.mark.parametrize("rec", ALL, ids=_id)
def test_recording_format(rec: Recording) -> None:
    check_format(rec)


@pytest.mark.parametrize("rec", ALL, ids=_id)
def test_recording_reaches_a_check(rec: Recording) -> None:
    if "unreadable" in rec.data:
        pytest.skip("unreadable file (reported by test_recording_format)")
    if not any(m.accepts(rec) for m in CHECK_MODULES):
        pytest.skip(f"no conformance checks for provider {rec.provider!r}")
