"""Small pure helpers shared by provider modules (no I/O; stable names, other providers import them).

- finish-reason mapping (:func:`map_finish_reason`)
- JSON body helpers (:func:`compact`, :func:`merge_extra`, :data:`JSON_HEADERS`)
- images (:func:`image_data_url`)
- tolerant readers of untrusted JSON (:func:`as_int`, :func:`as_str`, :func:`malformed`)
- error bodies (:func:`parse_error_body`, :func:`extract_error`) and headers (:func:`header_bool`)
- URLs (:func:`server_root`)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import MalformedResponseError
from ..types import FinishReason, ImagePart
from ._base import header

__all__ = [
    "FINISH_REASONS",
    "JSON_HEADERS",
    "as_int",
    "as_str",
    "compact",
    "extract_error",
    "header_bool",
    "image_data_url",
    "malformed",
    "map_finish_reason",
    "merge_extra",
    "parse_error_body",
    "server_root",
]

#: Provider finish/stop reasons (OpenAI, Anthropic, Gemini, TGI, Ollama, llama.cpp) -> neutral values.
FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos_token": "stop",
    "eos": "stop",
    "word": "stop",
    "STOP": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "limit": "length",
    "MAX_TOKENS": "length",
    "model_context_window_exceeded": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "SAFETY": "content_filter",
    "error": "error",
}

#: Headers for a JSON request body (auth headers come from the provider's ``auth_headers``).
JSON_HEADERS: Mapping[str, str] = {"content-type": "application/json"}


def map_finish_reason(raw: object) -> FinishReason | None:
    """Map a provider's finish reason; ``None``/empty stays ``None``, unknown values become ``"other"``."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        return "other"
    return FINISH_REASONS.get(raw, "other")


def compact(d: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``d`` without ``None`` values (we never send JSON nulls for unset options)."""
    return {k: v for k, v in d.items() if v is not None}


def merge_extra(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the caller's ``extra`` into ``body`` last (an explicit ``None`` in extra removes a key)."""
    for k, v in extra.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def image_data_url(part: ImagePart) -> str:
    """The image's URL, or a ``data:<media type>;base64,...`` URL for inline data."""
    return part.as_data_url()


def malformed(provider: str, message: str, body: Any = None) -> MalformedResponseError:
    """A :class:`MalformedResponseError` with the provider name in front."""
    return MalformedResponseError(f"{provider}: {message}", provider=provider, body=body)


def as_int(v: object) -> int:
    """A token count from untrusted JSON: ints (and integral floats) pass, anything else is 0."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return 0


def as_str(v: object) -> str | None:
    """A string from untrusted JSON (ints become strings, e.g. TGI's numeric tool-call ids)."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return None


def parse_error_body(body: bytes) -> Any:
    """The decoded JSON of an error body, or ``None`` when it is not JSON (HTML, text, empty)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _text_of(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)[:1000]


def extract_error(parsed: Any, body: bytes) -> tuple[str | None, str | None]:
    """``(error_type, message)`` from the usual error-body shapes.

    Handles ``{"error": {"message", "type", "code"}}``, ``{"error": "text", "error_type": ...}``,
    ``{"detail": ...}``, ``{"message": ...}``, a JSON list of those (Gemini), and non-JSON bodies (the
    text itself, HTML tags and all, is cut to 300 characters).
    """
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if isinstance(parsed, Mapping):
        err = parsed.get("error")
        if isinstance(err, Mapping):
            etype = as_str(err.get("type")) or as_str(err.get("code")) or as_str(err.get("status"))
            return etype, _text_of(err.get("message")) or _text_of(err)
        etype = as_str(parsed.get("error_type")) or as_str(parsed.get("type")) or as_str(parsed.get("code"))
        if isinstance(err, str):
            return etype, err
        for key in ("message", "detail", "msg"):
            if parsed.get(key) is not None:
                return etype, _text_of(parsed.get(key))
        return etype, None
    if isinstance(parsed, str):
        return None, parsed
    text = body[:300].decode("utf-8", "replace").strip()
    return None, text or None


def header_bool(headers: Mapping[str, str], name: str) -> bool | None:
    """A boolean header (``true``/``false``, any case, also ``1``/``0``); ``None`` when absent or odd."""
    v = header(headers, name)
    if v is None:
        return None
    v = v.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    return None


def server_root(base_url: str, api_prefix: str = "/v1") -> str:
    """The server root for native routes: ``base_url`` without a trailing ``api_prefix`` (and slash)."""
    root = base_url.rstrip("/")
    return root[: -len(api_prefix)] if root.endswith(api_prefix) else root
