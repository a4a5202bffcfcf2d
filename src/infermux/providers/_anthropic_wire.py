"""Anthropic Messages request bodies as :class:`ChatRequest` (the inverse of :func:`.anthropic.build_chat`).

Re-exported as :func:`infermux.providers.anthropic.chat_request_from_wire`; pure, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..types import ChatRequest, ImagePart, Message, Part, ReasoningBlock, ResponseFormat, TextPart, Tool, ToolCall

__all__ = ["TOOL_CHOICES", "chat_request_from_wire"]

#: infermux ``tool_choice`` -> Anthropic ``tool_choice.type`` (a tool name becomes ``{"type": "tool"}``)
TOOL_CHOICES: Mapping[str, str] = {"auto": "auto", "required": "any", "none": "none"}
_WIRE_TOOL_CHOICES: Mapping[str, str] = {v: k for k, v in TOOL_CHOICES.items()}


def _bad_wire(msg: str) -> ConfigurationError:
    return ConfigurationError(f"anthropic request body: {msg}")


#: the block fields a neutral message keeps; others (cache_control, citations, is_error...) would be lost
_BLOCK_KEYS = {
    "text": {"type", "text"},
    "image": {"type", "source"},
    "tool_use": {"type", "id", "name", "input"},
    "tool_result": {"type", "tool_use_id", "content"},
    "thinking": {"type", "thinking", "signature"},
    "redacted_thinking": {"type", "data"},
}


_REASONING_BLOCKS = ("thinking", "redacted_thinking")


def _check_block_keys(b: Mapping[str, Any]) -> None:
    extra = set(b) - _BLOCK_KEYS.get(str(b.get("type")), set(b))
    if extra:
        raise _bad_wire(f"{b.get('type')} block fields {sorted(extra)} are not expressible as neutral messages")


def _part_from_block(b: Any) -> Part:
    if not isinstance(b, Mapping):
        raise _bad_wire(f"content block must be an object, got {b!r}")
    _check_block_keys(b)
    t = b.get("type")
    if t == "text" and isinstance(b.get("text"), str):
        return TextPart(b["text"])
    if t == "image" and isinstance(b.get("source"), Mapping):
        src = b["source"]
        if src.get("type") == "base64":
            return ImagePart(data=src.get("data"), media_type=src.get("media_type"))
        if src.get("type") == "url":
            return ImagePart(url=src.get("url"))
    raise _bad_wire(f"unsupported content block {str(dict(b))[:120]!r} (supported: text, image, tool_use, tool_result)")


def _tool_result_message(b: Mapping[str, Any]) -> Message:
    _check_block_keys(b)
    tid = b.get("tool_use_id")
    if not isinstance(tid, str) or not tid:
        raise _bad_wire("tool_result block needs a tool_use_id")
    c = b.get("content", "")
    if c is not None and not isinstance(c, (str, list)):
        raise _bad_wire(f"tool_result content must be a string or a list of blocks, got {str(c)[:120]!r}")
    content: str | tuple[Part, ...] = c if isinstance(c, str) else tuple(_part_from_block(x) for x in c or ())
    return Message("tool", content if content else "", tool_call_id=tid)


def _user_messages(content: Any) -> list[Message]:
    if isinstance(content, str):
        return [Message("user", content)]
    if not isinstance(content, list):
        raise _bad_wire(f"message content must be a string or a list of blocks, got {content!r}")
    out: list[Message] = []
    parts: list[Part] = []
    for b in content:
        if isinstance(b, Mapping) and b.get("type") in _REASONING_BLOCKS:
            continue  # not a user turn's (the wire messages then go to extra verbatim)
        if isinstance(b, Mapping) and b.get("type") == "tool_result":
            if parts:
                out.append(Message("user", tuple(parts)))
                parts = []
            out.append(_tool_result_message(b))
        else:
            parts.append(_part_from_block(b))
    if parts:
        out.append(Message("user", tuple(parts)))
    return out


def _assistant_message(content: Any) -> Message:
    if isinstance(content, str):
        return Message("assistant", content)
    if not isinstance(content, list):
        raise _bad_wire(f"message content must be a string or a list of blocks, got {content!r}")
    parts: list[Part] = []
    calls: list[ToolCall] = []
    reasoning: list[ReasoningBlock] = []
    for b in content:
        if isinstance(b, Mapping) and b.get("type") in _REASONING_BLOCKS:
            _check_block_keys(b)
            text, sig, data = b.get("thinking", ""), b.get("signature"), b.get("data")
            optional = (str, type(None))
            if not isinstance(text, str) or not isinstance(sig, optional) or not isinstance(data, optional):
                raise _bad_wire(f"{b.get('type')} block needs string fields: {str(dict(b))[:120]!r}")
            if b.get("type") == "redacted_thinking" and data is None:
                raise _bad_wire("redacted_thinking block needs 'data'")
            signed = sig or data is not None
            reasoning.append(
                ReasoningBlock("" if data is not None else text, sig or None, data, "anthropic" if signed else None)
            )
        elif isinstance(b, Mapping) and b.get("type") == "tool_use":
            _check_block_keys(b)
            inp = b.get("input")
            if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str) or not isinstance(inp, Mapping):
                raise _bad_wire(f"tool_use block needs id, name and an object input: {str(dict(b))[:120]!r}")
            calls.append(ToolCall(b["id"], b["name"], dict(inp), json.dumps(inp)))
        else:
            parts.append(_part_from_block(b))
    content_out = tuple(parts) if parts or not calls else None
    return Message("assistant", content_out, tool_calls=tuple(calls), reasoning=tuple(reasoning))


def _system_messages(system: Any, extra: dict[str, Any]) -> list[Message]:
    if system is None:
        return []
    if isinstance(system, str):
        return [Message("system", system)]
    if isinstance(system, list) and all(isinstance(b, Mapping) and b.get("type") == "text" for b in system):
        extra["system"] = system  # a list of blocks (cache_control...): sent back verbatim, not as one string
        return [Message("system", str(b.get("text", ""))) for b in system]
    raise _bad_wire(f"'system' must be a string or a list of text blocks, got {str(system)[:120]!r}")


def _tools_from_wire(body: dict[str, Any], extra: dict[str, Any]) -> tuple[tuple[Tool, ...], str | None, bool | None]:
    tools_raw = body.pop("tools", None)
    choice_raw = body.pop("tool_choice", None)
    plain_keys = {"name", "description", "input_schema", "strict", "type"}
    if tools_raw is not None and (
        not isinstance(tools_raw, list)
        or any(
            not isinstance(t, Mapping) or set(t) - plain_keys or t.get("type", "custom") != "custom" for t in tools_raw
        )
    ):
        # server tools (web search, computer use...) or cache_control: pass the native definitions through
        extra["tools"] = tools_raw
        if choice_raw is not None:
            extra["tool_choice"] = choice_raw
        return (), None, None
    for t in tools_raw or ():
        if not isinstance(t.get("name"), str):
            raise _bad_wire(f"tool needs a string name: {str(dict(t))[:120]!r}")
    tools = tuple(
        Tool(t["name"], t.get("description") or "", t.get("input_schema") or {"type": "object"}, t.get("strict"))
        for t in tools_raw or ()
    )
    if choice_raw is None:
        return tools, None, None
    if not isinstance(choice_raw, Mapping) or set(choice_raw) - {"type", "name", "disable_parallel_tool_use"}:
        raise _bad_wire(f"unsupported tool_choice {choice_raw!r}")
    ctype = choice_raw.get("type")
    choice = choice_raw.get("name") if ctype == "tool" else _WIRE_TOOL_CHOICES.get(str(ctype))
    if not isinstance(choice, str):
        raise _bad_wire(f"unsupported tool_choice {choice_raw!r}")
    parallel = False if choice_raw.get("disable_parallel_tool_use") else None
    return tools, choice, parallel


def _response_format_from_wire(body: dict[str, Any], extra: dict[str, Any]) -> ResponseFormat | None:
    fmt: Any = body.pop("output_format", None)  # the older beta spelling
    cfg = body.pop("output_config", None)
    if isinstance(cfg, Mapping):
        rest = {k: v for k, v in cfg.items() if k != "format"}
        if rest:
            extra["output_config"] = rest
        fmt = cfg.get("format", fmt)
    elif cfg is not None:
        extra["output_config"] = cfg
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), Mapping):
        raise _bad_wire(f"unsupported output format {str(fmt)[:120]!r}")
    return ResponseFormat("json_schema", schema=dict(fmt["schema"]))


def _check_scalars(b: Mapping[str, Any], stop: Any) -> None:
    def num(v: Any) -> bool:
        return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))

    if not isinstance(b.get("model"), (str, type(None))):
        raise _bad_wire(f"'model' must be a string, got {b.get('model')!r}")
    mt = b.get("max_tokens")
    if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool)):
        raise _bad_wire(f"'max_tokens' must be an integer, got {mt!r}")
    for k in ("temperature", "top_p"):
        if not num(b.get(k)):
            raise _bad_wire(f"{k!r} must be a number, got {b.get(k)!r}")
    if not isinstance(stop, (list, tuple)) or not all(isinstance(x, str) for x in stop):
        raise _bad_wire(f"'stop_sequences' must be a list of strings, got {stop!r}")


def _known_blocks(content: Any) -> Any:
    """``content`` with only the block types and fields a neutral message holds (a lossy view)."""
    if not isinstance(content, list):
        return content
    out = []
    for b in content:
        if isinstance(b, Mapping) and str(b.get("type")) in _BLOCK_KEYS:
            kept = {k: v for k, v in b.items() if k in _BLOCK_KEYS[str(b.get("type"))]}
            if kept.get("type") == "tool_result":
                kept["content"] = _known_blocks(kept.get("content", ""))
            out.append(kept)
    return out


def _messages_from_wire(wire_msgs: Any, extra: dict[str, Any]) -> list[Message]:
    """Neutral messages of the wire ``messages``; when the neutral form cannot render them back identically
    (block fields such as ``cache_control``/``citations``, block types such as ``document``/``thinking``),
    the wire messages also go to ``extra`` verbatim: the same provider gets them back unchanged."""
    if not isinstance(wire_msgs, list) or not wire_msgs:
        raise _bad_wire("'messages' must be a non-empty list")
    for m in wire_msgs:
        if not isinstance(m, Mapping) or m.get("role") not in ("user", "assistant"):
            raise _bad_wire(f"each message needs role 'user' or 'assistant': {str(m)[:120]!r}")

    def convert(msgs: list[Any]) -> list[Message]:
        out: list[Message] = []
        for m in msgs:
            if m["role"] == "user":
                out.extend(_user_messages(m.get("content")))
            else:
                out.append(_assistant_message(m.get("content")))
        return out

    try:
        messages = convert(wire_msgs)
    except ConfigurationError:
        messages = convert([{**m, "content": _known_blocks(m.get("content"))} for m in wire_msgs])
        extra["messages"] = wire_msgs
        return messages
    from .anthropic import render_messages  # the inverse; imported here (that module imports this one)

    try:
        same = render_messages(messages) == [dict(m) for m in wire_msgs]
    except ConfigurationError:
        same = False
    if not same:
        extra["messages"] = wire_msgs
    return messages


def chat_request_from_wire(body: Mapping[str, Any]) -> ChatRequest:
    """Inverse of :func:`build_chat`: an Anthropic Messages request body as a :class:`ChatRequest`.

    Fields infermux does not model (``thinking``, ``top_k``, server tools...) go to ``extra`` and are sent
    back verbatim; so do a ``system`` given as a list of blocks and messages the neutral form cannot render
    back identically (a same-provider round trip is lossless). ``stream`` is dropped (read it from the body
    yourself). Bad input raises :class:`ConfigurationError`.
    """
    if not isinstance(body, Mapping):
        raise _bad_wire(f"must be a JSON object, got {type(body).__name__}")
    b = dict(body)
    b.pop("stream", None)
    extra: dict[str, Any] = {}
    messages = _system_messages(b.pop("system", None), extra)
    messages.extend(_messages_from_wire(b.pop("messages", None), extra))
    tools, choice, parallel = _tools_from_wire(b, extra)
    response_format = _response_format_from_wire(b, extra)
    user = None
    meta = b.pop("metadata", None)
    if isinstance(meta, Mapping) and set(meta) <= {"user_id"}:
        user = meta.get("user_id")
    elif meta is not None:
        extra["metadata"] = meta
    stop = b.pop("stop_sequences", None) or ()
    _check_scalars(b, stop)
    extra.update((k, v) for k, v in b.items() if k not in ("model", "max_tokens", "temperature", "top_p"))
    return ChatRequest(
        messages=tuple(messages),
        model=b.get("model"),
        temperature=b.get("temperature"),
        top_p=b.get("top_p"),
        max_tokens=b.get("max_tokens"),
        stop=tuple(stop),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        response_format=response_format,
        user=user,
        extra=extra,
    )
