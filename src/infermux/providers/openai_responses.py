"""OpenAI Responses API (``POST /responses``): pure wire translation, no I/O.

Registered as ``"openai_responses"``; also reachable as ``infermux.providers.openai.RESPONSES_PROVIDER``.
Errors, auth and embeddings are the Chat Completions ones (same service).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from .._events import WireEvent, set_wire
from ..errors import ConfigurationError
from ..types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    Part,
    ReasoningBlock,
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from ._base import Provider, ProviderRequest, decode_json, first_header
from ._common import (
    JSON_HEADERS,
    as_int,
    as_str,
    compact,
    function_schema,
    image_data_url,
    malformed,
    map_finish_reason,
    merge_extra,
    token_usage,
)
from ._input_rules import OPENAI as OPENAI_INPUTS
from ._input_rules import check_inputs
from ._sse import SSEMessage
from ._stream import StreamParserBase
from .openai import DEFAULT_BASE_URL, REQUEST_ID_HEADERS, auth_headers, build_embed, classify_error, parse_embed

__all__ = [
    "PROVIDER",
    "ResponsesStreamParser",
    "build_chat",
    "parse_chat",
    "parse_usage",
    "responses_request_from_wire",
]

NAME = "openai_responses"
#: the wire protocol tag of this module's events on stream events (:data:`infermux.types.Wire`)
WIRE = "responses"


# --------------------------------------------------------------------------- request building


def _content(m: Message) -> str | list[dict[str, Any]]:
    if not isinstance(m.content, tuple):
        return m.content or ""
    text_type = "output_text" if m.role == "assistant" else "input_text"
    out: list[dict[str, Any]] = []
    for p in m.content:
        if isinstance(p, TextPart):
            out.append({"type": text_type, "text": p.text})
        else:
            out.append(compact({"type": "input_image", "image_url": image_data_url(p), "detail": p.detail}))
    return out


def _items(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [{"type": "function_call_output", "call_id": m.tool_call_id, "output": m.text}]
    items: list[dict[str, Any]] = []
    if m.content is not None and (m.content or not m.tool_calls):
        items.append({"role": m.role, "content": _content(m)})
    for c in m.tool_calls:
        items.append({"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.raw_arguments or "{}"})
    return items


def _tool(t: Tool) -> dict[str, Any]:
    return {"type": "function", **function_schema(t)}


def _text_format(req: ChatRequest) -> dict[str, Any] | None:
    rf = req.response_format
    if rf is None:
        return None
    if rf.type != "json_schema":
        return {"format": {"type": rf.type}}
    fmt: dict[str, Any] = {"type": "json_schema", "name": rf.name, "schema": dict(rf.schema or {})}
    if rf.strict is not None:
        fmt["strict"] = rf.strict
    return {"format": fmt}


def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """``POST /responses``: system messages become ``instructions``, the rest ``input`` items."""
    if req.stop:
        raise ConfigurationError("the OpenAI Responses API has no stop sequences (use the chat provider)")
    if req.seed is not None:
        raise ConfigurationError("the OpenAI Responses API has no seed parameter (use the chat provider)")
    check_inputs(req, NAME, OPENAI_INPUTS)
    items = [it for m in req.messages if m.role != "system" for it in _items(m)]
    choice: str | dict[str, Any] | None = req.tool_choice
    if choice is not None and choice not in ("auto", "none", "required"):
        choice = {"type": "function", "name": choice}
    body: dict[str, Any] = {"model": model, "input": items}
    body.update(
        compact(
            {
                "instructions": req.system_text,
                "max_output_tokens": req.max_tokens,
                "temperature": req.temperature,
                "top_p": req.top_p,
                "tools": [_tool(t) for t in req.tools] or None,
                "tool_choice": choice,
                "parallel_tool_calls": req.parallel_tool_calls,
                "text": _text_format(req),
                "reasoning": {"effort": req.reasoning_effort} if req.reasoning_effort else None,
                "user": req.user,
            }
        )
    )
    if stream:
        body["stream"] = True
    merge_extra(body, req.extra)
    return ProviderRequest("POST", "/responses", headers=dict(JSON_HEADERS), json=body, stream=stream)


# --------------------------------------------------------------------------- wire -> ChatRequest

_ROLE_TEXT = {"input_text", "output_text"}
_ROLES: dict[Any, Literal["user", "assistant", "system"]] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}


def _wire_content(content: Any) -> str | tuple[Part, ...]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ConfigurationError("input message content must be a string or a list of parts")
    parts: list[Part] = []
    for p in content:
        kind = p.get("type") if isinstance(p, Mapping) else None
        if kind in _ROLE_TEXT and isinstance(p.get("text"), str):
            parts.append(TextPart(p["text"]))
        elif kind == "input_image" and isinstance(p.get("image_url"), str):
            parts.append(ImagePart(url=p["image_url"], detail=p.get("detail")))
        else:
            raise ConfigurationError(f"input content part {kind!r} is not supported")
    return tuple(parts)


def _wire_item(item: Any, out: list[Message]) -> None:
    if not isinstance(item, Mapping):
        raise ConfigurationError("input items must be objects")
    kind = item.get("type", "message")
    role = _ROLES.get(as_str(item.get("role")))
    if kind == "message" and role is not None:
        out.append(Message(role, _wire_content(item.get("content"))))
    elif kind == "function_call":
        call = ToolCall.from_raw(str(item.get("call_id") or ""), str(item.get("name") or ""), item.get("arguments"))
        if out and out[-1].role == "assistant" and not isinstance(out[-1].content, tuple):
            prev = out.pop()
            out.append(Message("assistant", prev.content, tool_calls=(*prev.tool_calls, call)))
        else:
            out.append(Message("assistant", None, tool_calls=(call,)))
    elif kind == "function_call_output":
        output = item.get("output")
        out.append(
            Message.tool(str(item.get("call_id") or ""), output if isinstance(output, str) else json.dumps(output))
        )
    else:
        raise ConfigurationError(f"input item type {kind!r} is not supported")


def _wire_tools(rest: dict[str, Any], kw: dict[str, Any]) -> None:
    tools = rest.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, Mapping) and t.get("type") == "function" for t in tools):
        return
    try:
        made = tuple(
            Tool(t["name"], t.get("description") or "", t.get("parameters") or {"type": "object"}, t.get("strict"))
            for t in tools
        )
    except (KeyError, ConfigurationError):
        return
    choice = rest.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        choice = choice.get("name")
    allowed = {t.name for t in made} | {"auto", "none", "required"}
    if choice is not None and not (isinstance(choice, str) and choice in allowed):
        return  # an odd tool_choice: tools and choice both stay as they came (in extra)
    kw["tools"] = made
    del rest["tools"]
    rest.pop("tool_choice", None)
    if choice is not None:
        kw["tool_choice"] = choice


_NEUTRAL_ITEMS = frozenset(("message", "function_call", "function_call_output"))


def responses_request_from_wire(body: Mapping[str, Any]) -> ChatRequest:
    """A Responses API request body as a :class:`ChatRequest` (message, function_call and
    function_call_output items; ``instructions`` becomes a system message). Other fields go to
    ``extra``; ``stream`` and nulls are dropped. Other item types (``reasoning``...) have no neutral
    equivalent: they are left out of the messages and the whole ``input`` is kept verbatim in ``extra``, so
    the same provider gets it back unchanged. Bad shapes raise :class:`ConfigurationError`."""
    if not isinstance(body, Mapping):
        raise ConfigurationError("responses request body must be a JSON object")
    rest = {k: v for k, v in body.items() if v is not None and k != "stream"}
    messages: list[Message] = []
    if isinstance(rest.get("instructions"), str):
        messages.append(Message.system(rest.pop("instructions")))
    raw_input = rest.pop("input", None)
    if isinstance(raw_input, str):
        messages.append(Message.user(raw_input))
    elif isinstance(raw_input, list):
        for item in raw_input:
            kind = item.get("type", "message") if isinstance(item, Mapping) else None
            if isinstance(kind, str) and kind not in _NEUTRAL_ITEMS:
                rest["input"] = raw_input  # e.g. a reasoning item: sent back verbatim, left out of the neutral view
                continue
            _wire_item(item, messages)
        if not messages:
            raise ConfigurationError("responses request 'input' has no message a neutral request can hold")
    model = rest.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise ConfigurationError(f"'model' must be a string, got {type(model).__name__}")
    kw: dict[str, Any] = {"messages": tuple(messages), "model": model}
    for wire, ours in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p")):
        if isinstance(rest.get(wire), (int, float)) and not isinstance(rest.get(wire), bool):
            kw[ours] = rest.pop(wire)
    if isinstance(rest.get("user"), str):
        kw["user"] = rest.pop("user")
    if isinstance(rest.get("parallel_tool_calls"), bool):
        kw["parallel_tool_calls"] = rest.pop("parallel_tool_calls")
    _wire_tools(rest, kw)
    return ChatRequest(**kw, extra=rest)


# --------------------------------------------------------------------------- responses


def parse_usage(raw: object) -> Usage | None:
    """Responses API ``usage`` (input/output tokens, cached input tokens, reasoning tokens) as :class:`Usage`."""
    return token_usage(raw, "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


#: output items that are calls for the caller: function tools (JSON arguments) and custom tools (free text)
_CALL_ITEMS = frozenset(("function_call", "custom_tool_call"))


def _function_call(item: Mapping[str, Any]) -> ToolCall:
    call_id = as_str(item.get("call_id")) or as_str(item.get("id")) or ""
    if item.get("type") == "custom_tool_call":  # free-form input, not JSON: kept as the raw text
        text = item.get("input")
        return ToolCall(call_id, item["name"], None, text if isinstance(text, str) else "")
    return ToolCall.from_raw(call_id, item["name"], item.get("arguments"))


def _finish(resp: Mapping[str, Any], has_calls: bool) -> FinishReason | None:
    status = resp.get("status")
    if status == "completed":
        return "tool_calls" if has_calls else "stop"
    if status == "incomplete":
        details = resp.get("incomplete_details")
        # reason: max_output_tokens | content_filter; absent means the output limit (the common case)
        return map_finish_reason(details.get("reason") if isinstance(details, Mapping) else None) or "length"
    if status in ("failed", "cancelled"):
        return "error"
    return None


def _reasoning_text(item: Mapping[str, Any]) -> str:
    """The readable text of a ``reasoning`` item: its summary parts (or, for open-weight models, its
    ``reasoning_text`` content); ``encrypted_content`` stays in ``raw`` (OpenAI's own, for its API only)."""
    lists = [v for v in (item.get("summary"), item.get("content")) if isinstance(v, list)]
    parts = [p for parts in lists for p in parts if isinstance(p, Mapping)]
    return "".join(p["text"] for p in parts if isinstance(p.get("text"), str))


def _output(resp: Mapping[str, Any], provider: str) -> tuple[str, tuple[ToolCall, ...], tuple[ReasoningBlock, ...]]:
    output = resp.get("output")
    if not isinstance(output, list):
        raise malformed(provider, "response has no 'output' list", resp)
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[ReasoningBlock] = []
    for item in output:
        if not isinstance(item, Mapping):
            raise malformed(provider, f"output item is not an object: {item!r}", resp)
        if item.get("type") == "reasoning":
            text = _reasoning_text(item)
            if text:
                reasoning.append(ReasoningBlock(text))
        elif item.get("type") == "message" and isinstance(item.get("content"), list):
            texts.extend(
                p["text"]
                for p in item["content"]
                if isinstance(p, Mapping) and p.get("type") == "output_text" and isinstance(p.get("text"), str)
            )
        elif as_str(item.get("type")) in _CALL_ITEMS:
            if not isinstance(item.get("name"), str):
                raise malformed(provider, f"{item.get('type')} output item without a name", resp)
            calls.append(_function_call(item))
    return "".join(texts), tuple(calls), tuple(reasoning)


def parse_chat(body: bytes, headers: Mapping[str, str], *, provider: str = NAME) -> ChatResponse:
    """A Responses API object as :class:`ChatResponse` (``message`` text; ``function_call`` and
    ``custom_tool_call`` items as tool calls, a custom tool's free-form ``input`` as ``raw_arguments``)."""
    data = decode_json(body, headers, provider=provider)
    if not isinstance(data, Mapping):
        raise malformed(provider, f"expected a JSON object, got {type(data).__name__}", data)
    text, calls, reasoning = _output(data, provider)
    return ChatResponse(
        text=text,
        tool_calls=calls,
        finish_reason=_finish(data, bool(calls)),
        usage=parse_usage(data.get("usage")),
        model=as_str(data.get("model")),
        provider=provider,
        provider_request_id=first_header(headers, REQUEST_ID_HEADERS),
        response_id=as_str(data.get("id")),
        raw=data,
        reasoning="".join(b.text for b in reasoning),
        reasoning_blocks=reasoning,
    )


# --------------------------------------------------------------------------- streaming

_TERMINAL = frozenset(("response.completed", "response.incomplete", "response.failed"))


class ResponsesStreamParser(StreamParserBase):
    """Named-event SSE of the Responses API; ``response.completed``/``incomplete``/``failed`` end it.

    Tool calls are indexed by ``output_index``. A stream without a terminal event raises
    ``IncompleteStreamError`` from :meth:`close`.
    """

    PROVIDER = NAME
    INCOMPLETE = "{provider}: stream ended without response.completed/incomplete/failed"

    def __init__(self, provider: str | None = None) -> None:
        super().__init__(provider)
        self._reasoning_items: dict[int, int] = {}  # output_index of a reasoning item -> its block index

    def _data(self, data: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        if data == "[DONE]":
            return
        obj = self._json(data)
        kind = obj.get("type") or msg.event
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        n = len(out)
        if handler is not None:
            handler(self, obj, out)
        # the event as it came, on its events (a gateway's Responses renderer relays it once: annotations,
        # logprobs, encrypted reasoning, output items infermux does not model...); an event with no neutral
        # counterpart (response.in_progress, content_part.added...) is a WireEvent
        wire = (WIRE, msg.event, data)
        if len(out) == n:
            out.append(WireEvent(wire))
        else:
            for ev in out[n:]:
                set_wire(ev, wire)

    def _created(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        resp = obj.get("response")
        resp = resp if isinstance(resp, Mapping) else {}
        out.append(StreamStart(as_str(resp.get("id")), as_str(resp.get("model"))))

    def _output_text(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        self._text_delta(obj.get("delta"), out)

    def _reasoning_delta(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        """``response.reasoning_summary_text.delta`` / ``reasoning_text.delta``: one reasoning block per
        reasoning item (its ``output_index`` in order of appearance)."""
        delta = obj.get("delta")
        if isinstance(delta, str) and delta:
            seen = self._reasoning_items
            idx = seen.setdefault(as_int(obj.get("output_index")), len(seen))
            out.append(ReasoningDelta(delta, idx))

    def _item_added(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        item = obj.get("item")
        if isinstance(item, Mapping) and as_str(item.get("type")) in _CALL_ITEMS:
            self._calls += 1
            idx = as_int(obj.get("output_index"))
            out.append(ToolCallStart(idx, as_str(item.get("call_id")) or "", as_str(item.get("name")) or ""))
            args = item.get("input" if item.get("type") == "custom_tool_call" else "arguments")
            if isinstance(args, str) and args:
                out.append(ToolCallDelta(idx, args))

    def _args_delta(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        delta = obj.get("delta")
        if isinstance(delta, str) and delta:
            out.append(ToolCallDelta(as_int(obj.get("output_index")), delta))

    def _item_done(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        item = obj.get("item")
        if isinstance(item, Mapping) and as_str(item.get("type")) in _CALL_ITEMS and isinstance(item.get("name"), str):
            out.append(ToolCallEnd(as_int(obj.get("output_index")), _function_call(item)))

    def _terminal(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        self._done = True
        resp = obj.get("response")
        resp = resp if isinstance(resp, Mapping) else {}
        if obj.get("type") == "response.failed":
            err = resp.get("error")
            err = err if isinstance(err, Mapping) else {}
            self._stream_error(out, as_str(err.get("code")), as_str(err.get("message")) or "response failed")
            return
        usage = parse_usage(resp.get("usage"))
        if usage is not None:
            out.append(UsageEvent(usage))
        reason = _finish(resp, self._calls > 0)
        if reason is None:
            reason = "stop" if obj.get("type") == "response.completed" else "length"
        out.append(StreamFinish(reason))

    def _error(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        err = obj.get("error")
        err = err if isinstance(err, Mapping) else obj
        etype = as_str(err.get("code")) or as_str(err.get("type"))
        self._stream_error(out, etype, as_str(err.get("message")), final=True)


_HANDLERS = {
    "response.created": ResponsesStreamParser._created,
    "response.output_text.delta": ResponsesStreamParser._output_text,
    "response.reasoning_summary_text.delta": ResponsesStreamParser._reasoning_delta,
    "response.reasoning_text.delta": ResponsesStreamParser._reasoning_delta,
    "response.output_item.added": ResponsesStreamParser._item_added,
    "response.function_call_arguments.delta": ResponsesStreamParser._args_delta,
    "response.custom_tool_call_input.delta": ResponsesStreamParser._args_delta,
    "response.output_item.done": ResponsesStreamParser._item_done,
    **dict.fromkeys(_TERMINAL, ResponsesStreamParser._terminal),
    "error": ResponsesStreamParser._error,
}


PROVIDER: Provider = Provider(
    name=NAME,
    default_base_url=DEFAULT_BASE_URL,
    build_chat=build_chat,
    parse_chat=parse_chat,
    new_stream_parser=ResponsesStreamParser,
    classify_error=lambda status, headers, body: classify_error(status, headers, body, provider=NAME),
    auth_headers=auth_headers,
    request_id_headers=REQUEST_ID_HEADERS,
    build_embed=build_embed,
    parse_embed=lambda body, headers: parse_embed(body, headers, provider=NAME),
    capabilities=frozenset(("chat", "stream", "tools", "json", "vision", "embed")),
    description="OpenAI Responses API",
)
