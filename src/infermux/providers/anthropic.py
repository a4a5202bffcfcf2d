"""Anthropic Messages API (``POST /v1/messages``): pure translation, no I/O.

Mapping notes (infermux -> Anthropic):

- System messages (wherever they are) are joined and sent as the top-level ``system`` string.
- Consecutive messages that end up with the same wire role are merged into one message with several
  content blocks (the API rejects two user or two assistant messages in a row). ``tool`` messages become
  ``tool_result`` blocks in a *user* message, so tool results and a following user turn merge too.
- ``max_tokens`` is required by the API: when the request leaves it unset, :data:`DEFAULT_MAX_TOKENS`
  (4096) is sent.
- ``temperature`` must lie in [0, 1] here (a :class:`ConfigurationError` otherwise); ``seed`` has no
  Anthropic counterpart and is not sent; of ``user``/``metadata`` only ``user`` is sent (as
  ``metadata.user_id``: the API rejects other metadata keys).
- ``response_format``: ``json_schema`` is sent as structured outputs, ``output_config.format =
  {"type": "json_schema", "schema": ...}`` (the recorded traffic shows this GA form and the older beta
  ``output_format``); ``json_object`` (schema-less JSON mode) does not exist on this API and raises
  :class:`ConfigurationError`.
- ``extra`` is merged into the body last (``output_config`` is merged key by key).

Anthropic -> infermux:

- ``Usage.input_tokens`` = ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``
  (the API's ``input_tokens`` leaves out prompt-cache reads and writes); ``Usage.cached_tokens`` =
  ``cache_read_input_tokens``.
- Text blocks are concatenated; extended thinking (``thinking`` blocks with their ``signature``,
  ``redacted_thinking``) goes to ``ChatResponse.reasoning``/``reasoning_blocks`` (stream: ``ReasoningDelta``
  from ``thinking_delta``/``signature_delta``, one ``index`` per block); server-tool blocks stay in ``raw``.
  An assistant message's signed/redacted ``reasoning`` blocks are sent back first in its content (the API
  requires them in tool-use loops); unsigned reasoning (from another provider) is not sent.
- Stream ``ToolCallStart/Delta/End.index`` is the 0-based ordinal of the tool call in the response (like
  OpenAI's ``index``), not Anthropic's content-block index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._events import WireEvent, set_wire
from ..errors import APIStatusError, ConfigurationError, MalformedResponseError
from ..types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    Part,
    ReasoningBlock,
    ReasoningDelta,
    ResponseFormat,
    StreamEvent,
    StreamFinish,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from ._anthropic_wire import TOOL_CHOICES, chat_request_from_wire
from ._base import Provider, ProviderRequest, decode_json, first_header
from ._common import (
    as_int,
    extract_error,
    function_schema,
    map_finish_reason,
    merge_extra,
    parse_error_body,
    parse_model_ids,
    refuse_reasoning_effort,
    status_error,
    tool_arguments,
)
from ._input_rules import ANTHROPIC as ANTHROPIC_INPUTS
from ._input_rules import check_inputs
from ._sse import SSEMessage
from ._stream import StreamParserBase

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "PROVIDER",
    "AnthropicStreamParser",
    "auth_headers",
    "build_chat",
    "build_count_tokens",
    "build_models",
    "chat_request_from_wire",
    "classify_error",
    "map_stop_reason",
    "parse_chat",
    "parse_count_tokens",
    "parse_models",
    "render_messages",
]

NAME = "anthropic"
#: value of the ``anthropic-version`` header sent with every request
ANTHROPIC_VERSION = "2023-06-01"
#: ``max_tokens`` sent when the request does not set one (the API requires the field)
DEFAULT_MAX_TOKENS = 4096
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
MODELS_PATH = "/v1/models"
REQUEST_ID_HEADERS = ("request-id", "x-request-id")


def map_stop_reason(reason: str | None) -> FinishReason | None:
    """Anthropic ``stop_reason`` -> normalised finish reason: end_turn/stop_sequence -> stop, max_tokens ->
    length, tool_use -> tool_calls, refusal -> content_filter, pause_turn and unknown -> other."""
    return map_finish_reason(reason)


def auth_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def build_models() -> ProviderRequest:
    """``GET /v1/models`` with ``anthropic-version`` (required on every route) and the largest page (1000)."""
    return ProviderRequest("GET", MODELS_PATH + "?limit=1000", headers={"anthropic-version": ANTHROPIC_VERSION})


def parse_models(body: bytes, headers: Mapping[str, str]) -> list[str]:
    """Model IDs of a ``/v1/models`` answer (``{"data": [{"type": "model", "id": ...}], "has_more": ...}``)."""
    return parse_model_ids(NAME, body, headers)


# --------------------------------------------------------------------------- request building


def _image_block(p: ImagePart) -> dict[str, Any]:
    if p.data is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": p.media_type, "data": p.data}}
    return {"type": "image", "source": {"type": "url", "url": p.url}}


def _part_blocks(parts: Sequence[Part]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": p.text} if isinstance(p, TextPart) else _image_block(p) for p in parts]


def reasoning_blocks_to_wire(blocks: Sequence[ReasoningBlock]) -> list[dict[str, Any]]:
    """Signed ``thinking`` / ``redacted_thinking`` blocks for an assistant turn (unsigned ones, and those signed
    by another protocol, are left out: the API rejects a thinking block without its own signature)."""
    out: list[dict[str, Any]] = []
    for b in blocks:
        if b.protocol not in (None, NAME):
            continue
        if b.redacted is not None:
            out.append({"type": "redacted_thinking", "data": b.redacted})
        elif b.signature is not None:
            out.append({"type": "thinking", "thinking": b.text, "signature": b.signature})
    return out


def _wire_message(m: Message) -> tuple[str, str | list[dict[str, Any]]]:
    """One infermux message as (wire role, content); content stays a string when it is plain text."""
    thinking = reasoning_blocks_to_wire(m.reasoning) if m.role == "assistant" else []
    if m.role == "tool":
        content: Any = m.content if isinstance(m.content, str) else _part_blocks(m.content or ())
        return "user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": content}]
    if thinking or (m.role == "assistant" and m.tool_calls):  # blocks: signed thinking first, text, tool uses
        blocks: list[dict[str, Any]] = list(thinking)
        if isinstance(m.content, str):
            if m.content:
                blocks.append({"type": "text", "text": m.content})
        elif m.content:
            blocks.extend(_part_blocks(m.content))
        for c in m.tool_calls:
            blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_arguments(c, NAME)})
        return "assistant", blocks
    if isinstance(m.content, str):
        return m.role, m.content
    return m.role, _part_blocks(m.content or ())


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def render_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The wire ``messages`` of neutral messages (system ones left out: they go to ``system``)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        role, content = _wire_message(m)
        if out and out[-1]["role"] == role:
            out[-1]["content"] = _as_blocks(out[-1]["content"]) + _as_blocks(content)
        else:
            out.append({"role": role, "content": content})
    if not out:
        raise ConfigurationError("anthropic: the request needs at least one non-system message")
    return out


def _tool_choice(req: ChatRequest) -> dict[str, Any] | None:
    if req.tool_choice is None:
        if req.parallel_tool_calls is False and req.tools:
            return {"type": "auto", "disable_parallel_tool_use": True}
        return None
    wire = TOOL_CHOICES.get(req.tool_choice)
    choice: dict[str, Any] = {"type": wire} if wire else {"type": "tool", "name": req.tool_choice}
    if req.parallel_tool_calls is False and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    return choice


def _output_config(fmt: ResponseFormat) -> dict[str, Any] | None:
    if fmt.type == "text":
        return None
    if fmt.type == "json_object":
        raise ConfigurationError(
            "anthropic: JSON mode (response_format type 'json_object') is not supported natively by this"
            " provider; pass ResponseFormat(type='json_schema', schema=...) instead (sent as structured"
            " outputs, output_config.format)"
        )
    return {"format": {"type": "json_schema", "schema": dict(fmt.schema or {})}}


def _chat_body(req: ChatRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": req.max_tokens or DEFAULT_MAX_TOKENS}
    system = req.system_text
    if system is not None:
        body["system"] = system
    body["messages"] = render_messages(req.messages)
    if req.temperature is not None:
        if req.temperature > 1:
            raise ConfigurationError(f"anthropic: temperature must be within [0, 1], got {req.temperature}")
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.tools:
        body["tools"] = [function_schema(t, "input_schema") for t in req.tools]
    choice = _tool_choice(req)
    if choice is not None:
        body["tool_choice"] = choice
    if req.response_format is not None:
        cfg = _output_config(req.response_format)
        if cfg is not None:
            body["output_config"] = cfg
    if req.user:
        body["metadata"] = {"user_id": req.user}
    _merge_extra(body, req.extra)
    return body


def _merge_extra(body: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """``extra`` wins over what we built (``None`` removes a key); ``output_config`` is merged key by key."""
    cfg = extra.get("output_config")
    if isinstance(cfg, Mapping) and isinstance(body.get("output_config"), dict):
        extra = {**extra, "output_config": {**body["output_config"], **cfg}}
    merge_extra(body, extra)


def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """``POST /v1/messages`` for ``req`` (see the module docstring for the mapping)."""
    refuse_reasoning_effort(req, NAME, "pass extended thinking as extra={'thinking': {...}}")
    check_inputs(req, NAME, ANTHROPIC_INPUTS)
    body = _chat_body(req, model)
    if stream:
        body["stream"] = True
    headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
    return ProviderRequest("POST", MESSAGES_PATH, headers=headers, json=body, stream=stream)


_COUNT_TOKENS_KEYS = ("model", "system", "messages", "tools", "tool_choice", "thinking", "mcp_servers")


def build_count_tokens(req: ChatRequest, model: str) -> ProviderRequest:
    """``POST /v1/messages/count_tokens``: the same prompt as :func:`build_chat`, only the counted fields."""
    full = _chat_body(req, model)
    body = {k: full[k] for k in _COUNT_TOKENS_KEYS if k in full}
    headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
    return ProviderRequest("POST", COUNT_TOKENS_PATH, headers=headers, json=body)


def parse_count_tokens(body: bytes, headers: Mapping[str, str]) -> int:
    """The ``input_tokens`` of a count_tokens response."""
    data = decode_json(body, headers, provider=NAME, what="count_tokens response")
    n = data.get("input_tokens") if isinstance(data, dict) else None
    if not isinstance(n, int) or isinstance(n, bool):
        raise MalformedResponseError(
            f"anthropic count_tokens response: no integer 'input_tokens': {str(data)[:200]!r}", provider=NAME
        )
    return n


# --------------------------------------------------------------------------- responses


def _usage(u: Any) -> Usage | None:
    if not isinstance(u, Mapping):
        return None
    cache_read = as_int(u.get("cache_read_input_tokens"))
    total_in = as_int(u.get("input_tokens")) + as_int(u.get("cache_creation_input_tokens")) + cache_read
    return Usage(input_tokens=total_in, output_tokens=as_int(u.get("output_tokens")), cached_tokens=cache_read)


def _malformed(what: str, data: Any) -> MalformedResponseError:
    return MalformedResponseError(f"anthropic response: {what}: {str(data)[:200]!r}", provider=NAME, body=data)


def _tool_call_from_block(b: Mapping[str, Any]) -> ToolCall:
    cid, name, inp = b.get("id"), b.get("name"), b.get("input", {})
    if not isinstance(cid, str) or not isinstance(name, str) or not isinstance(inp, Mapping):
        raise _malformed("tool_use block needs string id/name and an object input", b)
    return ToolCall(id=cid, name=name, arguments=dict(inp), raw_arguments=json.dumps(inp))


def parse_chat(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
    """A non-stream ``/v1/messages`` response; a body of the wrong shape raises MalformedResponseError."""
    data = decode_json(body, headers, provider=NAME)
    if not isinstance(data, dict):
        raise _malformed("expected a JSON object", data)
    if data.get("type") == "error":
        raise _malformed("error object in a 2xx response", data)
    content = data.get("content")
    if not isinstance(content, list):
        raise _malformed("no 'content' list", data)
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[ReasoningBlock] = []
    for b in content:
        if not isinstance(b, Mapping):
            raise _malformed("content block is not an object", b)
        if b.get("type") in ("thinking", "redacted_thinking"):
            reasoning.append(_reasoning_block(b))
        elif b.get("type") == "text":
            if not isinstance(b.get("text"), str):
                raise _malformed("text block without a string 'text'", b)
            texts.append(b["text"])
        elif b.get("type") == "tool_use":
            calls.append(_tool_call_from_block(b))
    stop = data.get("stop_reason")
    model, rid = data.get("model"), data.get("id")
    return ChatResponse(
        text="".join(texts),
        tool_calls=tuple(calls),
        finish_reason=map_stop_reason(stop if isinstance(stop, str) else None),
        usage=_usage(data.get("usage")),
        model=model if isinstance(model, str) else None,
        provider=NAME,
        provider_request_id=first_header(headers, REQUEST_ID_HEADERS),
        response_id=rid if isinstance(rid, str) else None,
        raw=data,
        reasoning="".join(r.text for r in reasoning),
        reasoning_blocks=tuple(reasoning),
    )


def _reasoning_block(b: Mapping[str, Any]) -> ReasoningBlock:
    if b.get("type") == "redacted_thinking":
        if not isinstance(b.get("data"), str):
            raise _malformed("redacted_thinking block without a string 'data'", b)
        return ReasoningBlock("", redacted=b["data"], protocol=NAME)
    text, sig = b.get("thinking", ""), b.get("signature")
    if not isinstance(text, str) or not isinstance(sig, (str, type(None))):
        raise _malformed("thinking block needs a string 'thinking' (and 'signature')", b)
    return ReasoningBlock(text, signature=sig or None, protocol=NAME if sig else None)


# --------------------------------------------------------------------------- streaming


class AnthropicStreamParser(StreamParserBase):
    """Named-event SSE stream of ``/v1/messages`` -> infermux stream events.

    ``message_stop`` is the terminal marker (-> :class:`StreamFinish`). An ``error`` event becomes a
    :class:`StreamError`; after one, :meth:`close` does not raise (the error is the stream's outcome).
    A stream that ends otherwise without ``message_stop`` raises :class:`IncompleteStreamError`.
    """

    INCOMPLETE = "{provider} stream ended without message_stop (after {chars} characters of text)"

    __slots__ = ("_blocks", "_input_usage", "_reasoning", "_stop", "_wire_blocks")

    PROVIDER = NAME

    def __init__(self) -> None:
        super().__init__()
        # content-block index -> [tool ordinal, id, name, json pieces] for tool_use blocks
        self._blocks: dict[int, list[Any]] = {}
        self._input_usage: Usage | None = None
        self._stop: str | None = None
        self._reasoning: dict[int, int] = {}  # content-block index -> reasoning block ordinal
        self._wire_blocks: set[int] = set()  # indexes of blocks no neutral event stands for (see _block_start)

    def _data(self, data: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        obj = self._json(data)
        kind = msg.event or obj.get("type")
        handler = _HANDLERS.get(str(kind))
        if handler is not None:
            n = len(out)
            handler(self, obj, out)
            if n < len(out) and out[n] is _WIRE_MARK:  # a message no neutral event stands for: as it came
                wire = out[n] = WireEvent((NAME, str(kind), data))
                for ev in out[n + 1 :]:  # the text it starts with: in the relayed message already
                    set_wire(ev, wire.wire)
            elif kind in _RELAYED and n < len(out):  # its vendor fields (usage details, stop_details...)
                set_wire(out[n], (NAME, str(kind), data))

    def _message_start(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        m = data.get("message")
        if not isinstance(m, Mapping):
            raise _malformed("message_start without 'message'", data)
        self._input_usage = _usage(m.get("usage"))
        rid, model = m.get("id"), m.get("model")
        self._start(out, rid if isinstance(rid, str) else None, model if isinstance(model, str) else None)

    def _block_start(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        idx, block = data.get("index"), data.get("content_block")
        if not isinstance(idx, int) or not isinstance(block, Mapping):
            raise _malformed("content_block_start needs index and content_block", data)
        btype = block.get("type")
        if not isinstance(btype, str):
            raise _malformed("content_block_start: content_block needs a string 'type'", data)
        if (btype == "text" and len(block) > 2) or btype not in _MODELLED_BLOCKS:
            # citations, server tools (server_tool_use, web_search_tool_result...), unknown blocks: the same
            # protocol's renderer relays them, with their deltas and stop (the text of a text block is neutral)
            self._wire_blocks.add(idx)
            out.append(_WIRE_MARK)
            if btype == "text" and isinstance(block.get("text"), str) and block["text"]:
                self._text_delta(block["text"], out)
        elif btype == "text":
            self._text_delta(block.get("text"), out)
        elif btype == "tool_use":
            cid, name = block.get("id"), block.get("name")
            if not isinstance(cid, str) or not isinstance(name, str):
                raise _malformed("tool_use block start needs id and name", data)
            self._blocks[idx] = [self._calls, cid, name, []]
            out.append(ToolCallStart(self._calls, cid, name))
            self._calls += 1
        elif block.get("type") in ("thinking", "redacted_thinking"):
            rb = _reasoning_block(block)
            ordinal = self._reasoning[idx] = len(self._reasoning)
            out.append(ReasoningDelta(rb.text, ordinal, rb.signature, rb.redacted, rb.protocol))

    def _block_delta(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        idx, delta = data.get("index"), data.get("delta")
        if not isinstance(delta, Mapping):
            raise _malformed("content_block_delta without 'delta'", data)
        dtype = delta.get("type")
        if dtype == "text_delta":
            text = delta.get("text")
            if not isinstance(text, str):
                raise _malformed("text_delta without text", data)
            self._text_delta(text, out)
        elif dtype == "input_json_delta":
            slot = self._blocks.get(idx) if isinstance(idx, int) else None
            piece = delta.get("partial_json")
            if slot is None:  # a server tool's input (web search...): not a call for the caller
                out.append(_WIRE_MARK)
                return
            if not isinstance(piece, str):
                raise _malformed("input_json_delta without partial_json", data)
            slot[3].append(piece)
            out.append(ToolCallDelta(slot[0], piece))
        elif dtype in ("thinking_delta", "signature_delta"):
            ordinal = self._reasoning.get(idx) if isinstance(idx, int) else None
            key = "thinking" if dtype == "thinking_delta" else "signature"
            piece = delta.get(key)
            if ordinal is None or not isinstance(piece, str):
                raise _malformed(f"{dtype} without a thinking block start or a string {key!r}", data)
            if key == "thinking":
                out.append(ReasoningDelta(piece, ordinal))
            else:
                out.append(ReasoningDelta("", ordinal, piece, protocol=NAME))
        else:  # citations_delta, or a delta type infermux does not know
            out.append(_WIRE_MARK)

    def _block_stop(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        idx = data.get("index")
        if isinstance(idx, int) and idx in self._wire_blocks:
            self._wire_blocks.discard(idx)
            out.append(_WIRE_MARK)
            return
        slot = self._blocks.pop(idx, None) if isinstance(idx, int) else None
        if slot is None:
            return
        raw = "".join(slot[3]) or "{}"
        try:
            args = json.loads(raw)
        except ValueError as e:
            raise _malformed(f"tool_use input is not valid JSON ({e})", raw) from e
        if not isinstance(args, dict):
            raise _malformed("tool_use input is not a JSON object", raw)
        out.append(ToolCallEnd(slot[0], ToolCall(slot[1], slot[2], args, raw)))

    def _message_delta(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        delta = data.get("delta")
        if isinstance(delta, Mapping) and isinstance(delta.get("stop_reason"), str):
            self._stop = delta["stop_reason"]
        u = data.get("usage")
        if isinstance(u, Mapping):
            usage = _usage(u) or Usage()
            if "input_tokens" not in u and self._input_usage is not None:
                base = self._input_usage
                usage = Usage(base.input_tokens, usage.output_tokens, base.cached_tokens)
            out.append(UsageEvent(usage))

    def _message_stop(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        self._done = True
        out.append(StreamFinish(map_stop_reason(self._stop)))

    def _error(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        err = data.get("error")
        etype = err.get("type") if isinstance(err, Mapping) else None
        message = err.get("message") if isinstance(err, Mapping) else None
        etype = etype if isinstance(etype, str) else None
        self._stream_error(out, etype, message if isinstance(message, str) else json.dumps(data)[:300])


#: the messages whose neutral event carries the message as it came (``wire``): vendor fields at message level
_RELAYED = frozenset(("message_start", "message_delta"))
_MODELLED_BLOCKS = frozenset(("text", "tool_use", "thinking", "redacted_thinking"))
#: placeholder a handler appends for a message no neutral event stands for (replaced in ``_data``)
_WIRE_MARK = WireEvent((NAME, None, ""))

_HANDLERS = {
    "message_start": AnthropicStreamParser._message_start,
    "content_block_start": AnthropicStreamParser._block_start,
    "content_block_delta": AnthropicStreamParser._block_delta,
    "content_block_stop": AnthropicStreamParser._block_stop,
    "message_delta": AnthropicStreamParser._message_delta,
    "message_stop": AnthropicStreamParser._message_stop,
    "error": AnthropicStreamParser._error,
}


# --------------------------------------------------------------------------- errors


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """A typed status error from an Anthropic error response (``{"type":"error","error":{type,message}}``).

    Non-JSON bodies (an HTML page from a proxy) are tolerated. ``overloaded_error`` at any status is an
    :class:`OverloadedError`; ``x-should-retry`` sets ``should_retry_header`` and overrides ``retryable``.
    """
    parsed = parse_error_body(body)
    top: Mapping[str, Any] = parsed if isinstance(parsed, Mapping) else {}
    err: Mapping[str, Any] = top["error"] if isinstance(top.get("error"), Mapping) else {}
    etype, message, body_rid = err.get("type"), err.get("message"), top.get("request_id")
    if not err:  # not Anthropic's envelope (a proxy's HTML page, Bedrock's {"message"}): its text, as elsewhere
        message = extract_error(parsed, body)[1]
    return status_error(
        status,
        headers,
        body,
        provider=NAME,
        parsed=parsed,
        error_type=etype if isinstance(etype, str) else None,
        message=message if isinstance(message, str) else None,
        request_id_headers=REQUEST_ID_HEADERS,
        request_id=body_rid if isinstance(body_rid, str) else None,
        should_retry_header=True,
        overloaded=etype == "overloaded_error",
    )


PROVIDER = Provider(
    name=NAME,
    default_base_url="https://api.anthropic.com",
    build_chat=build_chat,
    parse_chat=parse_chat,
    new_stream_parser=AnthropicStreamParser,
    classify_error=classify_error,
    auth_headers=auth_headers,
    request_id_headers=REQUEST_ID_HEADERS,
    models_path=MODELS_PATH,
    build_models=build_models,
    parse_models=parse_models,
    capabilities=frozenset({"chat", "stream", "tools", "vision", "json", "count_tokens", "prefill"}),
    description="Anthropic Messages API (/v1/messages)",
)
