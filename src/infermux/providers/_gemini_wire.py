"""Gemini ``generateContent`` request bodies as :class:`ChatRequest` (the inverse of :func:`.gemini.build_chat`).

Both JSON spellings are read (``camelCase`` as the REST API documents it, ``snake_case`` as the Python SDK
sends it). Re-exported as :func:`infermux.providers.gemini.chat_request_from_wire`; pure, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..types import ChatRequest, ImagePart, Message, Part, ResponseFormat, TextPart, Tool, ToolCall
from ._common import as_str, function_schema

__all__ = ["chat_request_from_wire"]


def _bad_wire(msg: str) -> ConfigurationError:
    return ConfigurationError(f"gemini request body: {msg}")


def _pick(d: Mapping[str, Any], camel: str, snake: str) -> Any:
    return d.get(camel, d.get(snake))


def _wire_part(p: Any) -> Part | dict[str, Any]:
    if not isinstance(p, Mapping):
        raise _bad_wire(f"part must be an object, got {p!r}")
    if len(p) != 1:  # thought / thoughtSignature / videoMetadata... have no neutral counterpart
        raise _bad_wire(f"part fields {sorted(p)} are not expressible as neutral messages")
    if isinstance(p.get("text"), str):
        return TextPart(p["text"])
    blob = _pick(p, "inlineData", "inline_data")
    if isinstance(blob, Mapping):
        return ImagePart(data=blob.get("data"), media_type=_pick(blob, "mimeType", "mime_type"))
    fd = _pick(p, "fileData", "file_data")
    if isinstance(fd, Mapping):
        return ImagePart(url=_pick(fd, "fileUri", "file_uri"), media_type=_pick(fd, "mimeType", "mime_type"))
    for key in ("functionCall", "function_call", "functionResponse", "function_response"):
        if isinstance(p.get(key), Mapping):
            return {key.replace("_c", "C").replace("_r", "R"): p[key]}
    raise _bad_wire(f"unsupported part {str(dict(p))[:120]!r} (supported: text, inlineData, fileData, function parts)")


_PART_KEYS = ("text", "inlineData", "inline_data", "fileData", "file_data", "functionCall", "function_call",
              "functionResponse", "function_response")  # fmt: skip


def _known_parts(c: Any) -> Any:
    """A content with thought parts left out and other parts reduced to their one neutral field."""
    if not isinstance(c, Mapping) or not isinstance(c.get("parts"), list):
        return c
    parts = []
    for p in c["parts"]:
        if not isinstance(p, Mapping) or p.get("thought") is True:
            continue
        kept = {k: p[k] for k in _PART_KEYS if k in p}
        if len(kept) == 1:
            parts.append(kept)
    return {**c, "parts": parts}


def _wire_turn(c: Any, out: list[Message], calls_by_name: dict[str, list[str]]) -> None:
    if not isinstance(c, Mapping) or not isinstance(c.get("parts"), list):
        raise _bad_wire(f"each content needs a 'parts' list: {str(c)[:120]!r}")
    role = c.get("role", "user")
    parts: list[Part] = []
    calls: list[ToolCall] = []
    for raw in c["parts"]:
        p = _wire_part(raw)
        if isinstance(p, (TextPart, ImagePart)):
            parts.append(p)
        elif "functionCall" in p:
            fc = p["functionCall"]
            cid = as_str(fc.get("id")) or f"call_{sum(len(v) for v in calls_by_name.values())}"
            calls_by_name.setdefault(str(fc.get("name")), []).append(cid)
            args = fc.get("args") or {}
            if not isinstance(args, Mapping):
                raise _bad_wire(f"functionCall args must be an object, got {args!r}")
            calls.append(ToolCall.from_raw(cid, str(fc.get("name")), dict(args)))
        else:
            fr = p["functionResponse"]
            name = str(fr.get("name"))
            pending = calls_by_name.get(name) or [as_str(fr.get("id")) or f"call_{name}"]
            resp = fr.get("response")
            text = (
                json.dumps(resp) if not (isinstance(resp, Mapping) and set(resp) == {"output"}) else str(resp["output"])
            )
            out.append(Message("tool", text, name=name, tool_call_id=pending.pop(0)))
    if role == "model":
        if parts or calls:
            out.append(Message("assistant", tuple(parts) if parts or not calls else None, tool_calls=tuple(calls)))
    elif role in ("user", "function", "tool"):
        if parts:
            out.append(Message("user", tuple(parts)))
    else:
        raise _bad_wire(f"content role must be 'user' or 'model', got {role!r}")


def chat_request_from_wire(body: Mapping[str, Any], model: str | None = None) -> ChatRequest:
    """The :class:`ChatRequest` a ``generateContent`` body asks for (the model is in the URL: pass it).
    Fields without a neutral counterpart (safetySettings, topK, cachedContent...) go to ``extra``; so do
    ``contents`` whose parts the neutral messages cannot hold (thought parts, thoughtSignature...), verbatim,
    with a neutral view that leaves them out: a same-provider round trip is lossless.
    A body that does not fit raises :class:`ConfigurationError`."""
    if not isinstance(body, Mapping):
        raise _bad_wire(f"must be a JSON object, got {type(body).__name__}")
    try:
        return _from_wire(body, model)
    except (TypeError, AttributeError) as e:  # a field of the wrong JSON type somewhere
        raise _bad_wire(f"a field has the wrong type ({e})") from e


def _wire_config(rest: dict[str, Any], kw: dict[str, Any]) -> None:
    """``generationConfig`` -> ChatRequest fields in ``kw``; what is left stays in ``rest`` (extra)."""
    cfg = dict(rest.pop("generationConfig", None) or rest.pop("generation_config", None) or {})
    rest.pop("generation_config", None)
    for key, snake, name in (
        ("temperature", "temperature", "temperature"), ("topP", "top_p", "top_p"),
        ("maxOutputTokens", "max_output_tokens", "max_tokens"), ("seed", "seed", "seed"),
        ("stopSequences", "stop_sequences", "stop"),
    ):  # fmt: skip
        v = cfg.pop(key, cfg.pop(snake, None))
        if v is not None:
            kw[name] = tuple(v) if name == "stop" else v
    mime = cfg.pop("responseMimeType", cfg.pop("response_mime_type", None))
    schema = cfg.pop("responseJsonSchema", cfg.pop("response_json_schema", None))
    if mime == "application/json":
        kw["response_format"] = (
            ResponseFormat("json_schema", schema) if isinstance(schema, Mapping) else ResponseFormat()
        )
    elif schema is not None:
        cfg["responseJsonSchema"] = schema
    if cfg:
        rest["generationConfig"] = cfg


def _wire_tools(rest: dict[str, Any], kw: dict[str, Any]) -> None:
    """``tools`` (function declarations only) and ``toolConfig`` -> ``kw["tools"]`` / ``kw["tool_choice"]``.

    Tools that :func:`.gemini.build_chat` would not render back identically (an OpenAPI ``parameters``
    schema as the SDKs send it, ``googleSearch``/``codeExecution`` tools...) stay in ``rest`` verbatim,
    and so does their ``toolConfig``."""
    raw = rest.get("tools")
    if raw is None:
        return
    tools = _declared_tools(raw)
    decls = [function_schema(t, "parametersJsonSchema", strict=False) for t in tools or ()]
    if not tools or [{"functionDeclarations": decls}] != raw:
        if not isinstance(raw, list):
            raise _bad_wire(f"'tools' must be a list, got {str(raw)[:120]!r}")
        return  # kept verbatim in extra, with toolConfig
    del rest["tools"]
    kw["tools"] = tools
    tc = rest.pop("toolConfig", None) or rest.pop("tool_config", None)
    rest.pop("tool_config", None)
    fcc = _pick(tc, "functionCallingConfig", "function_calling_config") if isinstance(tc, Mapping) else None
    if isinstance(fcc, Mapping) and fcc.get("mode"):
        allowed = _pick(fcc, "allowedFunctionNames", "allowed_function_names") or []
        mode = str(fcc["mode"]).upper()
        if mode == "ANY" and len(allowed) == 1:
            kw["tool_choice"] = allowed[0]
        else:
            kw["tool_choice"] = {"AUTO": "auto", "NONE": "none"}.get(mode, "required")


def _declared_tools(raw: Any) -> tuple[Tool, ...] | None:
    """The function declarations of ``tools`` as :class:`Tool` values; ``None`` when some tool is not a
    plain ``functionDeclarations`` list or a declaration does not fit :class:`Tool`."""
    if not isinstance(raw, list):
        return None
    tools: list[Tool] = []
    for t in raw:
        decls = _pick(t, "functionDeclarations", "function_declarations") if isinstance(t, Mapping) else None
        if not isinstance(decls, list) or len(t) != 1:
            return None
        for d in decls:
            params = _pick(d, "parametersJsonSchema", "parameters_json_schema") if isinstance(d, Mapping) else None
            if not isinstance(d, Mapping) or not isinstance(params or {}, Mapping):
                return None
            try:
                tools.append(
                    Tool(str(d.get("name")), str(d.get("description") or ""), dict(params or {"type": "object"}))
                )
            except ConfigurationError:
                return None
    return tuple(tools)


def _from_wire(body: Mapping[str, Any], model: str | None) -> ChatRequest:
    rest = dict(body)
    contents = rest.pop("contents", None)
    if not isinstance(contents, list) or not contents:
        raise _bad_wire("'contents' must be a non-empty list")
    messages: list[Message] = []
    system = rest.pop("systemInstruction", None) or rest.pop("system_instruction", None)
    rest.pop("system_instruction", None)
    if isinstance(system, Mapping):
        texts = [p for p in map(_wire_part, system.get("parts") or []) if isinstance(p, TextPart)]
        messages += [Message("system", p.text) for p in texts]
    calls: dict[str, list[str]] = {}
    try:
        for c in contents:
            _wire_turn(c, messages, calls)
    except ConfigurationError:
        # parts the neutral form cannot hold (thought, thoughtSignature, videoMetadata...): a lossy neutral
        # view without them, and the contents verbatim in extra so the same provider gets them back unchanged
        messages = [m for m in messages if m.role == "system"]
        calls.clear()
        for c in contents:
            _wire_turn(_known_parts(c), messages, calls)
        rest["contents"] = contents
    kw: dict[str, Any] = {}
    _wire_config(rest, kw)
    _wire_tools(rest, kw)
    return ChatRequest(tuple(messages), model=model, extra=rest, **kw)
