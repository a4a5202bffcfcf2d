"""Small pure helpers shared by provider modules (no I/O; stable names, other providers import them).

- finish-reason mapping (:func:`map_finish_reason`)
- request helpers (:func:`compact`, :func:`merge_extra`, :data:`JSON_HEADERS`, :func:`bearer_auth`,
  :func:`function_schema`, :func:`tool_arguments`, :func:`text_only`, :func:`image_data_url`)
- tolerant readers of untrusted JSON (:func:`as_int`, :func:`as_str`, :func:`opt_int`, :func:`floats`,
  :func:`token_usage`, :func:`json_object`, :func:`malformed`)
- error answers (:func:`parse_error_body`, :func:`extract_error`, :func:`read_error`, :func:`status_error`)
  and headers (:func:`header_bool`)
- URLs (:func:`server_root`)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._evolve import fast_init
from .._ratelimit import parse_retry_after
from ..errors import APIStatusError, ConfigurationError, MalformedResponseError
from ..types import ChatRequest, FinishReason, ImagePart, Message, TextPart, Tool, ToolCall, Usage
from ._base import decode_json, error_from_body, first_header, header, loads_text

__all__ = [
    "FINISH_REASONS",
    "JSON_HEADERS",
    "as_int",
    "as_str",
    "bearer_auth",
    "compact",
    "extract_error",
    "floats",
    "function_schema",
    "header_bool",
    "image_data_url",
    "json_object",
    "malformed",
    "map_finish_reason",
    "merge_extra",
    "opt_int",
    "parse_error_body",
    "read_error",
    "refuse_reasoning_effort",
    "server_root",
    "status_error",
    "text_only",
    "token_usage",
    "tool_arguments",
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


def bearer_auth(key: str) -> dict[str, str]:
    """``Authorization: Bearer <key>`` (OpenAI and most servers with an ``--api-key`` option)."""
    return {"authorization": f"Bearer {key}"}


def function_schema(tool: Tool, params_key: str = "parameters", *, strict: bool = True) -> dict[str, Any]:
    """A function declaration: ``name``, ``description`` when set, the JSON Schema under ``params_key``
    and ``strict`` when set (and ``strict`` is True: the wire has the field)."""
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out[params_key] = dict(tool.parameters)
    if strict and tool.strict is not None:
        out["strict"] = tool.strict
    return out


def tool_arguments(call: ToolCall, provider: str) -> dict[str, Any]:
    """A tool call's arguments as a JSON object, for wires that send them as objects, not strings."""
    args = call.arguments
    if args is None and call.raw_arguments:
        try:
            args = json.loads(call.raw_arguments)
        except ValueError:
            args = None
    if not isinstance(args, Mapping):
        raise ConfigurationError(
            f"{provider}: tool call {call.id!r} ({call.name}) needs arguments that are a JSON object,"
            f" got {call.raw_arguments!r}"
        )
    return dict(args)


def text_only(m: Message, *, tools_error: str, images_error: str) -> str:
    """The text of a message for a wire that takes plain text (a raw prompt): tool calls, tool results
    and images raise :class:`ConfigurationError` with the given messages."""
    if m.tool_calls or m.role == "tool":
        raise ConfigurationError(tools_error)
    if isinstance(m.content, tuple) and any(not isinstance(p, TextPart) for p in m.content):
        raise ConfigurationError(images_error)
    return m.text


def refuse_reasoning_effort(req: ChatRequest, provider: str, hint: str) -> None:
    """:class:`ConfigurationError` when ``req`` sets ``reasoning_effort`` on a wire without that knob (rather
    than dropping it silently); ``hint`` names the provider's own field to pass through ``extra``."""
    if req.reasoning_effort is not None:
        raise ConfigurationError(
            f"{provider}: reasoning_effort={req.reasoning_effort!r} has no equivalent on this API; {hint}"
        )


def image_data_url(part: ImagePart) -> str:
    """The image's URL, or a ``data:<media type>;base64,...`` URL for inline data."""
    return part.as_data_url()


def malformed(provider: str, message: str, body: Any = None) -> MalformedResponseError:
    """A :class:`MalformedResponseError` with the provider name in front."""
    return MalformedResponseError(f"{provider}: {message}", provider=provider, body=body)


def as_int(v: object) -> int:
    """A token count from untrusted JSON: ints (and integral floats) pass, anything else is 0."""
    if type(v) is int:
        return v
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return 0


def opt_int(v: object) -> int | None:
    """An optional integer from untrusted JSON (``None`` unless it is a real int)."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def floats(v: object) -> tuple[float, ...] | None:
    """A vector from untrusted JSON: a list of numbers as floats, else ``None``."""
    if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return tuple(float(x) for x in v)
    return None


_new_usage = fast_init(Usage)  # Usage(...), faster (one per call)


def token_usage(
    raw: object,
    input_key: str,
    output_key: str,
    details_key: str | None = None,
    output_details_key: str | None = None,
) -> Usage | None:
    """:class:`Usage` from a usage object with counts under ``input_key``/``output_key``, cached prompt
    tokens under ``details_key.cached_tokens`` and reasoning tokens under
    ``output_details_key.reasoning_tokens``; ``None`` when ``raw`` is not an object."""
    if not isinstance(raw, (dict, Mapping)):  # a dict is checked first, in C
        return None
    details = raw.get(details_key) if details_key else None
    out_details = raw.get(output_details_key) if output_details_key else None
    return _new_usage(
        input_tokens=as_int(raw.get(input_key)),
        output_tokens=as_int(raw.get(output_key)),
        cached_tokens=as_int(details.get("cached_tokens")) if isinstance(details, (dict, Mapping)) else 0,
        reasoning_tokens=(
            as_int(out_details.get("reasoning_tokens")) if isinstance(out_details, (dict, Mapping)) else 0
        ),
    )


def json_object(text: str, provider: str, what: str = "stream data") -> Mapping[str, Any]:
    """One JSON object of a stream (an SSE data field, an NDJSON line) or :class:`MalformedResponseError`."""
    try:
        obj = loads_text(text)
    except ValueError as e:
        raise malformed(provider, f"{what} is not JSON ({e}): {text[:200]!r}", text[:200]) from e
    if not isinstance(obj, (dict, Mapping)):
        raise malformed(provider, f"{what} is not a JSON object: {text[:200]!r}", text[:200])
    return obj


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


def read_error(body: bytes) -> tuple[Any, str | None, str | None]:
    """``(parsed body, error_type, message)`` of an error answer (see :func:`extract_error`)."""
    parsed = parse_error_body(body)
    etype, message = extract_error(parsed, body)
    return parsed, etype, message


def status_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    parsed: Any,
    error_type: str | None,
    message: str | None,
    request_id_headers: Sequence[str] = ("x-request-id",),
    request_id: str | None = None,
    retry_after: float | None = None,
    retryable: bool | None = None,
    should_retry_header: bool = False,
    overloaded: bool = False,
) -> APIStatusError:
    """The typed error of an HTTP error answer, from what ``classify_error`` read off the body.

    ``retry_after`` comes from the ``retry-after`` headers, else the given one (e.g. from the body); the
    provider request id from the first of ``request_id_headers``, else ``request_id``. With
    ``should_retry_header`` an ``x-should-retry`` header is recorded and overrides ``retryable``.
    """
    should = header_bool(headers, "x-should-retry") if should_retry_header else None
    from_headers = parse_retry_after(headers)
    err = error_from_body(
        status,
        headers,
        body,
        provider=provider,
        error_type=error_type,
        message=message,
        parsed=parsed,
        retry_after=from_headers if from_headers is not None else retry_after,
        provider_request_id=first_header(headers, request_id_headers) or request_id,
        retryable=should if should is not None else retryable,
        overloaded=overloaded,
    )
    if should is not None:
        err.should_retry_header = should
    return err


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


def parse_model_ids(provider: str, body: bytes, headers: Mapping[str, str]) -> list[str]:
    """The model IDs of an OpenAI-shaped list ``{"data": [{"id": ...}]}`` (also Anthropic's ``/v1/models``)."""
    data = decode_json(body, headers, provider=provider, what="model list")
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise MalformedResponseError(f"{provider} model list has no 'data' array", provider=provider)
    return [str(m.get("id")) for m in items if isinstance(m, dict)]
