"""OpenAI chat request shapes, both ways (pure, no I/O): neutral -> wire (``render_*``, used by
:func:`.openai.build_chat`) and wire -> neutral (:func:`chat_request_from_wire`, re-exported by
:mod:`.openai`), kept together so the round trip is checked against the same renderers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigurationError
from ..types import (
    REASONING_EFFORTS,
    ChatRequest,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    Tool,
    coerce_messages,
)
from ._common import compact, function_schema, image_data_url

__all__ = [
    "LIMIT_KEYS",
    "chat_request_from_wire",
    "render_message",
    "render_part",
    "render_response_format",
    "render_tool",
    "render_tool_choice",
]


def render_part(p: Part) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    return {"type": "image_url", "image_url": compact({"url": image_data_url(p), "detail": p.detail})}


def render_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if isinstance(m.content, tuple):
        out["content"] = [render_part(p) for p in m.content]
    elif m.content is not None:
        out["content"] = m.content
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.raw_arguments or "{}"}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def render_tool(t: Tool) -> dict[str, Any]:
    return {"type": "function", "function": function_schema(t)}


def render_tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def render_response_format(rf: ResponseFormat) -> dict[str, Any]:
    if rf.type != "json_schema":
        return {"type": rf.type}
    js: dict[str, Any] = {"name": rf.name, "schema": dict(rf.schema or {})}
    if rf.strict is not None:
        js["strict"] = rf.strict
    return {"type": "json_schema", "json_schema": js}


#: the two spellings of the output-token limit; one given in ``extra`` replaces the builder's own
LIMIT_KEYS = ("max_completion_tokens", "max_tokens")


# --------------------------------------------------------------------------- wire -> ChatRequest


_WIRE_DROPPED = frozenset(("stream", "stream_options"))


def _lossless(wire: Any, make: Callable[[Any], Any], render: Callable[[Any], Any]) -> Any:
    """``make(wire)`` when rendering it back gives exactly ``wire``; else ``None`` (keep it raw in extra)."""
    try:
        value = make(wire)
    except (ConfigurationError, KeyError, TypeError, AttributeError, ValueError):
        return None
    return value if render(value) == wire else None


def _wire_tool(d: Any) -> Tool:
    fn = d["function"]
    if d.get("type") != "function":
        raise ValueError("not a function tool")
    return Tool(
        name=fn["name"], description=fn.get("description") or "", parameters=fn["parameters"], strict=fn.get("strict")
    )


def _wire_response_format(d: Any) -> ResponseFormat:
    if d.get("type") == "json_schema":
        js = d["json_schema"]
        return ResponseFormat("json_schema", schema=js["schema"], name=js["name"], strict=js.get("strict"))
    return ResponseFormat(d["type"])


def _wire_tool_choice(v: Any) -> str:
    if isinstance(v, str) and v in ("auto", "none", "required"):
        return v
    return str(v["function"]["name"])


_PART_TYPES = frozenset(("text", "image_url"))


def _known_parts(m: Any) -> Any:
    """A wire message with only the content parts a neutral message holds (text, images)."""
    if not isinstance(m, Mapping) or not isinstance(m.get("content"), list):
        return m
    parts = [p for p in m["content"] if isinstance(p, Mapping) and p.get("type") in _PART_TYPES]
    return {**m, "content": parts or ""}


def _wire_messages(raw: Any, rest: dict[str, Any]) -> tuple[Message, ...]:
    """Neutral messages of the wire ``messages``. When they cannot render back identically (fields such as
    ``annotations``/``refusal``/``audio``, part types such as ``input_audio``/``file``), the wire messages
    also go to ``rest`` (extra) verbatim, so the same provider gets them back unchanged."""
    if not isinstance(raw, list) or not raw:
        raise ConfigurationError("'messages' must be a non-empty list")
    fixed = [{**m, "role": "system"} if isinstance(m, Mapping) and m.get("role") == "developer" else m for m in raw]
    try:
        try:
            msgs = coerce_messages(fixed)
        except ConfigurationError:
            msgs = coerce_messages([_known_parts(m) for m in fixed])
    except (KeyError, TypeError, AttributeError) as e:
        raise ConfigurationError(f"invalid message in 'messages': {e!r}") from e
    normalized = [{k: v for k, v in m.items() if v is not None} for m in fixed]
    if [render_message(m) for m in msgs] != normalized:
        rest["messages"] = raw
    return msgs


def _wire_tools_and_format(rest: dict[str, Any], kw: dict[str, Any]) -> None:
    """Move ``tools``/``tool_choice``/``response_format`` from ``rest`` to ``kw`` when lossless."""
    if isinstance(rest.get("tools"), list):
        tools = [_lossless(t, _wire_tool, render_tool) for t in rest["tools"]]
        if all(t is not None for t in tools):
            kw["tools"] = tuple(tools)
            del rest["tools"]
            if "tool_choice" in rest:
                choice = _lossless(rest["tool_choice"], _wire_tool_choice, render_tool_choice)
                if choice is not None:
                    kw["tool_choice"] = choice
                    del rest["tool_choice"]
    if isinstance(rest.get("response_format"), Mapping):
        rf = _lossless(rest["response_format"], _wire_response_format, render_response_format)
        if rf is not None:
            kw["response_format"] = rf
            del rest["response_format"]


def chat_request_from_wire(body: Mapping[str, Any]) -> ChatRequest:
    """An OpenAI chat-completions request body as a :class:`ChatRequest` (the inverse of :func:`build_chat`).

    Fields we model are mapped when that is lossless (``build_chat`` renders them back identically);
    everything else, including ``metadata``, ``n``, ``logprobs`` and odd shapes of ``tools``, goes to
    ``extra`` unchanged. ``stream``/``stream_options`` are dropped (the caller chooses streaming) and so
    are JSON nulls; ``developer`` messages become ``system``. The output limit (``max_completion_tokens``
    or ``max_tokens``) is read into ``max_tokens`` and also kept in ``extra`` under the wire's own name,
    so the same provider gets it back as it came. Messages that the neutral form cannot render back
    identically (extra fields such as ``annotations``, other part types) are also kept verbatim in ``extra``:
    a same-provider round trip (wire -> neutral -> wire) is lossless. Raises :class:`ConfigurationError`.
    """
    if not isinstance(body, Mapping):
        raise ConfigurationError("chat request body must be a JSON object")
    rest = {k: v for k, v in body.items() if v is not None and k not in _WIRE_DROPPED}
    kw: dict[str, Any] = {"messages": _wire_messages(rest.pop("messages", None), rest)}
    model = rest.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise ConfigurationError("'model' must be a string")
    kw["model"] = model
    for key, typ in (("temperature", (int, float)), ("top_p", (int, float)), ("seed", int), ("user", str)):
        if isinstance(rest.get(key), typ) and not isinstance(rest.get(key), bool):
            kw[key] = rest.pop(key)
    for key in LIMIT_KEYS:  # the wire's spelling stays in extra too: it is sent back as it came
        limit = rest.get(key)
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1 and "max_tokens" not in kw:
            kw["max_tokens"] = limit
    if isinstance(rest.get("reasoning_effort"), str) and rest["reasoning_effort"] in REASONING_EFFORTS:
        kw["reasoning_effort"] = rest.pop("reasoning_effort")
    if isinstance(rest.get("parallel_tool_calls"), bool):
        kw["parallel_tool_calls"] = rest.pop("parallel_tool_calls")
    stop = rest.get("stop")
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        kw["stop"] = tuple(rest.pop("stop"))
    _wire_tools_and_format(rest, kw)
    return ChatRequest(**kw, extra=rest)
