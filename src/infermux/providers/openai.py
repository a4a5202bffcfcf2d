"""OpenAI Chat Completions, Embeddings and legacy Completions: pure wire translation, no I/O.

The same functions serve every OpenAI-compatible server (llama.cpp, vLLM, Groq...): build one with
:func:`make_openai_compatible`. The Responses API lives in :mod:`.openai_responses` (also reachable as
``RESPONSES_PROVIDER`` here).
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .._events import WireEvent
from .._evolve import fast_init
from ..errors import APIStatusError, ConfigurationError, IncompleteStreamError
from ..types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    ReasoningBlock,
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from ._base import Provider, ProviderRequest, decode_json, first_header
from ._common import (
    JSON_HEADERS,
    as_int,
    as_str,
    bearer_auth,
    compact,
    extract_error,
    floats,
    malformed,
    map_finish_reason,
    merge_extra,
    read_error,
    status_error,
    token_usage,
)
from ._input_rules import COMPATIBLE as COMPATIBLE_INPUTS
from ._input_rules import OPENAI as OPENAI_INPUTS
from ._input_rules import check_inputs
from ._openai_wire import (
    LIMIT_KEYS,
    chat_request_from_wire,
    render_message,
    render_response_format,
    render_tool,
    render_tool_choice,
)
from ._sse import SSEMessage
from ._stream import StreamParserBase

__all__ = [
    "PROVIDER",
    "ChatStreamParser",
    "auth_headers",
    "build_chat",
    "build_compatible_chat",
    "build_completion",
    "build_embed",
    "chat_request_from_wire",
    "classify_error",
    "content_filter_results",
    "is_reasoning_model",
    "make_openai_compatible",
    "parse_chat",
    "parse_completion",
    "parse_embed",
    "parse_usage",
]

NAME = "openai"
#: the wire protocol tag of this module's chunks on stream events (:data:`infermux.types.Wire`)
WIRE = "openai_chat"
#: tags an event the parser has just built with its chunk (``wire``: a frozen field, set once, before anyone
#: sees the event; :func:`infermux._events.set_wire` without the Python call on the hot path)
_setattr = object.__setattr__
DEFAULT_BASE_URL = "https://api.openai.com/v1"
REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id")


# --------------------------------------------------------------------------- request building


#: a JSON object: a dict (checked first, in C) or any other Mapping
_MAP = (dict, Mapping)
_new_chat_response = fast_init(ChatResponse)  # ChatResponse(...), faster (one per call)
_REASONING_MODEL = re.compile(r"^(?:o\d+(?:$|-)|gpt-5(?!.*-chat))")


def is_reasoning_model(model: str) -> bool:
    """OpenAI's reasoning models (``o1``, ``o3-mini``, ``o4-mini``, ``gpt-5``, ``gpt-5.1``...; not the
    ``gpt-5*-chat`` ones): they refuse ``max_tokens`` and a non-default ``temperature``/``top_p``."""
    known = _REASONING.get(model)
    if known is None:
        known = bool(_REASONING_MODEL.match(model.rsplit("/", 1)[-1]))
        if len(_REASONING) >= 1024:  # model names come from callers: bounded
            _REASONING.clear()
        _REASONING[model] = known
    return known


_REASONING: dict[str, bool] = {}  # is_reasoning_model's answers by model name (the same on every call)


def _chat_body(req: ChatRequest, model: str, stream: bool, limit_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [render_message(m) for m in req.messages]}
    if not any(k in req.extra for k in LIMIT_KEYS) and req.max_tokens is not None:
        body[limit_key] = req.max_tokens
    body.update(
        compact(
            {
                "temperature": req.temperature,
                "top_p": req.top_p,
                "reasoning_effort": req.reasoning_effort,
                "stop": list(req.stop) or None,
                "tools": [render_tool(t) for t in req.tools] or None,
                "tool_choice": render_tool_choice(req.tool_choice) if req.tool_choice is not None else None,
                "parallel_tool_calls": req.parallel_tool_calls,
                "response_format": render_response_format(req.response_format) if req.response_format else None,
                "seed": req.seed,
                "user": req.user,
            }
        )
    )
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return merge_extra(body, req.extra)


def build_compatible_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """``POST /chat/completions`` for OpenAI-compatible servers (llama.cpp, vLLM, Groq, Ollama, TGI, OVMS,
    OPEA...): the output limit is sent as ``max_tokens``, the one name every such server knows. Only options
    that are set are sent; ``req.extra`` is merged last."""
    check_inputs(req, "openai-compatible", COMPATIBLE_INPUTS)
    body = _chat_body(req, model, stream, "max_tokens")
    return ProviderRequest("POST", "/chat/completions", headers=dict(JSON_HEADERS), json=body, stream=stream)


def _check_reasoning_model(req: ChatRequest, model: str) -> None:
    if not is_reasoning_model(model) or req.reasoning_effort == "none":
        return
    for name, value in (("temperature", req.temperature), ("top_p", req.top_p)):
        if value is not None and value != 1:
            raise ConfigurationError(
                f"openai: {model!r} is a reasoning model and refuses {name}={value} (only the default 1 is"
                f" supported; leave {name} unset, or use reasoning_effort='none' where the model has it)"
            )


def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """``POST /chat/completions`` on the official OpenAI API (and Azure OpenAI).

    The output limit goes out as ``max_completion_tokens`` (every current OpenAI chat model takes it; the
    reasoning models, see :func:`is_reasoning_model`, refuse ``max_tokens``); a reasoning model's request
    with a ``temperature``/``top_p`` other than 1 is refused with :class:`ConfigurationError` before I/O, as
    the API would refuse it. ``reasoning_effort`` is sent as is. A ``max_tokens`` given in ``extra`` is
    sent instead (a recorded request keeps its spelling). Only options that are set are sent; ``req.extra``
    is merged last. OpenAI-compatible servers use :func:`build_compatible_chat` (``max_tokens``).
    """
    _check_reasoning_model(req, model)
    check_inputs(req, NAME, OPENAI_INPUTS)
    body = _chat_body(req, model, stream, "max_completion_tokens")
    return ProviderRequest("POST", "/chat/completions", headers=dict(JSON_HEADERS), json=body, stream=stream)


auth_headers = bearer_auth


# --------------------------------------------------------------------------- responses


def parse_usage(raw: object) -> Usage | None:
    """OpenAI ``usage`` (prompt/completion tokens, cached prompt tokens, reasoning tokens) as :class:`Usage`."""
    return token_usage(raw, "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")


def _first_choice(data: Any, provider: str) -> Mapping[str, Any]:
    if not isinstance(data, _MAP):
        raise malformed(provider, f"expected a JSON object, got {type(data).__name__}", data)
    if "choices" not in data and data.get("error") is not None:  # e.g. Azure's content filter answers 200 + error body
        etype, msg = extract_error(data, b"")
        err = malformed(provider, f"2xx response carries an error ({etype}): {msg}", data)
        err.error_type, err.provider_message = etype, msg
        if etype in ("content_filter", "invalid_request_error"):
            err.retryable = False
        raise err
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], _MAP):
        raise malformed(provider, "response has no 'choices' (expected a non-empty list of objects)", data)
    return choices[0]


def _tool_calls(message: Mapping[str, Any], provider: str) -> tuple[ToolCall, ...]:
    raw = message.get("tool_calls")
    out: list[ToolCall] = []
    if isinstance(raw, list):
        for c in raw:
            custom = c.get("custom") if isinstance(c, _MAP) and c.get("type") == "custom" else None
            if isinstance(custom, _MAP) and isinstance(custom.get("name"), str):  # custom tool: free-form input
                text = custom.get("input")
                out.append(
                    ToolCall(as_str(c.get("id")) or "", custom["name"], None, text if isinstance(text, str) else "")
                )
                continue
            fn = c.get("function") if isinstance(c, _MAP) else None
            if not isinstance(fn, _MAP) or not isinstance(fn.get("name"), str):
                raise malformed(provider, f"tool call without function name: {c!r}", c)
            out.append(ToolCall.from_raw(as_str(c.get("id")) or "", fn["name"], fn.get("arguments")))
    fc = message.get("function_call")  # legacy "functions" API
    if not out and isinstance(fc, _MAP) and isinstance(fc.get("name"), str):
        out.append(ToolCall.from_raw("", fc["name"], fc.get("arguments")))
    return tuple(out)


def _content_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some compatible servers answer with parts
        return "".join(p.get("text", "") for p in content if isinstance(p, _MAP) and isinstance(p.get("text"), str))
    return str(content)


def _response(
    data: Mapping[str, Any],
    choice: Mapping[str, Any],
    headers: Mapping[str, str],
    provider: str,
    *,
    text: str,
    tool_calls: tuple[ToolCall, ...] = (),
    reasoning: str = "",
) -> ChatResponse:
    return _new_chat_response(
        text=text,
        tool_calls=tool_calls,
        finish_reason=map_finish_reason(choice.get("finish_reason")),
        usage=parse_usage(data.get("usage")),
        model=as_str(data.get("model")),
        provider=provider,
        provider_request_id=first_header(headers, REQUEST_ID_HEADERS),
        response_id=as_str(data.get("id")) or None,
        raw=data,
        reasoning=reasoning,
        reasoning_blocks=(ReasoningBlock(reasoning),) if reasoning else (),
    )


def reasoning_text(obj: Mapping[str, Any]) -> str:
    """The reasoning of an OpenAI-compatible message or delta: ``reasoning_content`` (vLLM, DeepSeek, llama.cpp
    server with ``--reasoning-format``) or ``reasoning`` (vLLM >= 0.10, OpenRouter, Groq), '' when none."""
    r = obj.get("reasoning_content")
    if not isinstance(r, str):
        r = obj.get("reasoning")
    return r if isinstance(r, str) else ""


def parse_chat(body: bytes, headers: Mapping[str, str], *, provider: str = NAME) -> ChatResponse:
    """A chat completion body as :class:`ChatResponse`; bad shapes raise ``MalformedResponseError``.

    Content filtering (Azure OpenAI): a choice that ends with ``finish_reason: "content_filter"`` and
    carries no ``message`` is a response with ``text == ""`` and ``finish_reason == "content_filter"``; the
    verdicts stay in ``raw`` (``choices[0].content_filter_results``, ``prompt_filter_results``), see
    :func:`content_filter_results`. A prompt refused by the filter (HTTP 200 or 400 with an ``error`` whose
    code is ``content_filter``) raises a non-retryable error carrying ``error_type="content_filter"``."""
    data = decode_json(body, headers, provider=provider)
    choice = _first_choice(data, provider)
    message = choice.get("message")
    if message is None and choice.get("finish_reason") == "content_filter":
        # Azure OpenAI: the output was filtered away; why is in choices[0].content_filter_results
        return _response(data, choice, headers, provider, text="")
    if not isinstance(message, _MAP):
        raise malformed(provider, "choices[0].message is missing or not an object", data)
    text = _content_text(message.get("content"))
    calls = _tool_calls(message, provider)
    return _response(data, choice, headers, provider, text=text, tool_calls=calls, reasoning=reasoning_text(message))


def content_filter_results(response: ChatResponse) -> dict[str, Any]:
    """Azure OpenAI's content-filter verdicts of a non-stream response: ``{"prompt": [...], "completion":
    {...}}`` (``prompt_filter_results`` and ``choices[0].content_filter_results``; empty when absent)."""
    raw = response.raw if isinstance(response.raw, _MAP) else {}
    out: dict[str, Any] = {}
    if isinstance(raw.get("prompt_filter_results"), list):
        out["prompt"] = raw["prompt_filter_results"]
    choices = raw.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], _MAP) else {}
    if isinstance(first.get("content_filter_results"), _MAP):
        out["completion"] = first["content_filter_results"]
    return out


# --------------------------------------------------------------------------- streaming


class ChatStreamParser(StreamParserBase):
    """Data-only SSE of chat (and legacy completion) chunks, terminated by ``data: [DONE]``.

    Emits ``StreamStart`` once, text/tool-call deltas of choice 0, ``UsageEvent`` for usage chunks
    (also Groq's ``x_groq.usage``) and exactly one ``StreamFinish``.

    Termination rule (``done_required``): by default ``[DONE]`` is required, as OpenAI, Azure, Groq, vLLM,
    llama.cpp, Ollama and OVMS always send it: the usage chunk comes after the ``finish_reason`` chunk, so a
    stream cut between them would otherwise pass as complete with its usage lost; without ``[DONE]``
    :meth:`close` raises ``IncompleteStreamError`` (with the text so far) even after a ``finish_reason``.
    With ``done_required=False`` (TGI's Messages API, which some versions end without ``[DONE]``) a
    ``finish_reason`` is enough.
    """

    PROVIDER = NAME
    INCOMPLETE = "{provider}: stream ended before [DONE] and without a finish_reason"

    def __init__(self, provider: str | None = None, *, done_required: bool = True) -> None:
        super().__init__(provider)
        self.done_required = done_required
        self._tools_started: set[int] = set()
        self._tool_ids: dict[str, int] = {}  # call id -> index (for calls sent without "index")
        self._last_tool: int | None = None

    def _data(self, data: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        if data == "[DONE]":
            self._done = True
            out.append(StreamFinish(self._finish))
            return
        n = len(out)
        obj = self._json(data)
        self._chunk(obj, out)
        # the chunk as it came, on each of its events (a gateway's OpenAI chat renderer relays it once: vendor
        # fields, annotations, logprobs, obfuscation... reach an OpenAI caller unchanged); a chunk with no event
        # of its own (a finish_reason or vendor-only chunk) is a WireEvent
        wire = (WIRE, None, data)
        k = len(out) - n
        if k == 1:  # the common case: one event per chunk
            _setattr(out[n], "wire", wire)
            if type(out[n]) is UsageEvent and obj.get("choices"):
                # usage on a chunk that says more (Groq's x_groq on the finish chunk): relayed even to a caller
                # who did not ask for usage chunks
                out.append(WireEvent(wire))
        elif k == 0:
            out.append(WireEvent(wire))
        else:
            for i in range(n, len(out)):
                _setattr(out[i], "wire", wire)

    def close(self) -> list[StreamEvent]:
        """The body ended: see the termination rule in the class docstring."""
        if not self.done_required:
            return super().close()
        out = self._handle(self._decoder.close())
        if self._done or self._errored:
            return out
        text = "".join(self._text)
        seen = "after its finish_reason (the usage chunk may be lost)" if self._finish_seen else "mid-answer"
        raise IncompleteStreamError(
            f"{self.provider}: stream ended without [DONE], {seen}", provider=self.provider, partial_text=text
        )

    def _chunk(self, obj: Mapping[str, Any], out: list[StreamEvent]) -> None:
        if "error" in obj and "choices" not in obj:
            etype, message = extract_error(obj, b"")
            err = obj.get("error")
            code = err.get("code") if isinstance(err, _MAP) else None
            self._stream_error(out, etype, message, code if isinstance(code, int) else None)
            return
        choices = obj.get("choices")
        if obj.get("id") or choices:
            self._start(out, as_str(obj.get("id")) or None, as_str(obj.get("model")) or None)
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, _MAP) and choice.get("index", 0) == 0:
                    self._choice(choice, out)
        usage = obj.get("usage")
        x_groq = obj.get("x_groq")
        if not isinstance(usage, _MAP) and isinstance(x_groq, _MAP):
            usage = x_groq.get("usage")
        parsed = parse_usage(usage)
        if parsed is not None:
            out.append(UsageEvent(parsed, raw=usage))

    def _choice(self, choice: Mapping[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, _MAP):
            delta = {}
        text = delta.get("content")
        if text is None and isinstance(choice.get("text"), str):  # legacy /completions chunk
            text = choice["text"]
        reasoning = reasoning_text(delta)
        if reasoning:
            out.append(ReasoningDelta(reasoning))
        self._text_delta(text, out)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                if isinstance(call, _MAP):
                    fn = call.get("function")
                    custom = call.get("custom")
                    if fn is None and isinstance(custom, _MAP):  # custom tool: "input" pieces
                        fn = {"name": custom.get("name"), "arguments": custom.get("input")}
                    fn = fn if isinstance(fn, _MAP) else {}
                    self._tool_delta(self._call_index(call), call.get("id"), fn, out)
        if isinstance(delta.get("function_call"), _MAP):
            self._tool_delta(0, None, delta["function_call"], out)
        if choice.get("finish_reason") is not None:
            self._set_finish(map_finish_reason(choice["finish_reason"]))

    def _call_index(self, call: Mapping[str, Any]) -> int:
        """The index of a streamed tool-call piece. OpenAI sends ``index``; Gemini's OpenAI-compatible
        endpoint and some proxies send each call with its own ``id`` and no ``index``: a new id is a new
        call, a piece without index and id continues the last call."""
        index = call.get("index")
        cid = as_str(call.get("id"))
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            idx = index
        elif cid and cid in self._tool_ids:
            idx = self._tool_ids[cid]
        elif cid or self._last_tool is None:
            idx = max(self._tools_started, default=-1) + 1
        else:
            idx = self._last_tool
        if cid:
            self._tool_ids.setdefault(cid, idx)
        self._last_tool = idx
        return idx

    def _tool_delta(self, idx: int, call_id: object, fn: Mapping[str, Any], out: list[StreamEvent]) -> None:
        name = fn.get("name")
        if idx not in self._tools_started and (call_id or name):
            self._tools_started.add(idx)
            out.append(ToolCallStart(idx, as_str(call_id) or "", name if isinstance(name, str) else ""))
        args = fn.get("arguments")
        if isinstance(args, _MAP):
            args = json.dumps(args)
        if isinstance(args, str) and args:
            out.append(ToolCallDelta(idx, args))


# --------------------------------------------------------------------------- embeddings


def build_embed(req: EmbedRequest, model: str) -> ProviderRequest:
    """``POST /embeddings`` asking for float vectors."""
    body: dict[str, Any] = {"model": model, "input": list(req.inputs), "encoding_format": "float"}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    merge_extra(body, req.extra)
    return ProviderRequest("POST", "/embeddings", headers=dict(JSON_HEADERS), json=body)


def _vector(raw: object, provider: str) -> tuple[float, ...]:
    if isinstance(raw, str):
        try:
            data = base64.b64decode(raw, validate=True)
        except ValueError as e:
            raise malformed(provider, "embedding is a string but not valid base64") from e
        if len(data) % 4:
            raise malformed(provider, f"base64 embedding has {len(data)} bytes, not a multiple of 4 (float32)")
        return struct.unpack(f"<{len(data) // 4}f", data)
    vector = floats(raw)
    if vector is None:
        raise malformed(provider, "embedding must be a list of numbers or a base64 string")
    return vector


def parse_embed(body: bytes, headers: Mapping[str, str], *, provider: str = NAME) -> EmbedResponse:
    """Embedding vectors ordered by ``index`` (float lists or base64 little-endian float32)."""
    data = decode_json(body, headers, provider=provider, what="embeddings response")
    items = data.get("data") if isinstance(data, _MAP) else None
    if not isinstance(items, list) or not all(isinstance(it, _MAP) for it in items):
        raise malformed(provider, "embeddings response has no 'data' list of objects", data)
    ordered = sorted(enumerate(items), key=lambda p: (as_int(p[1].get("index", p[0])), p[0]))
    usage = data.get("usage")
    return EmbedResponse(
        vectors=tuple(_vector(it.get("embedding"), provider) for _, it in ordered),
        model=as_str(data.get("model")),
        usage=Usage(input_tokens=as_int(usage.get("prompt_tokens"))) if isinstance(usage, _MAP) else None,
        provider=provider,
        provider_request_id=first_header(headers, REQUEST_ID_HEADERS),
        raw=data,
    )


# --------------------------------------------------------------------------- legacy completions


def build_completion(
    model: str,
    prompt: str | list[str],
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stop: list[str] | None = None,
    seed: int | None = None,
    stream: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> ProviderRequest:
    """Legacy ``POST /completions`` (plain prompt in, text out); parse with :func:`parse_completion`,
    stream with :class:`ChatStreamParser` (it understands ``choices[].text`` chunks)."""
    body: dict[str, Any] = {"model": model, "prompt": prompt}
    body.update(
        compact({"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "stop": stop, "seed": seed})
    )
    if stream:
        body["stream"] = True
    merge_extra(body, extra or {})
    return ProviderRequest("POST", "/completions", headers=dict(JSON_HEADERS), json=body, stream=stream)


def parse_completion(body: bytes, headers: Mapping[str, str], *, provider: str = NAME) -> ChatResponse:
    """A legacy completion (``choices[0].text``) as :class:`ChatResponse`."""
    data = decode_json(body, headers, provider=provider)
    choice = _first_choice(data, provider)
    text = choice.get("text")
    if not isinstance(text, str):
        raise malformed(provider, "choices[0].text is missing or not a string", data)
    return _response(data, choice, headers, provider, text=text)


# --------------------------------------------------------------------------- errors

#: error types that mean "retrying the same request cannot succeed" even on a normally retryable status
_NOT_RETRYABLE_TYPES = frozenset(("insufficient_quota", "not_supported_error", "billing_hard_limit_reached"))


def classify_error(status: int, headers: Mapping[str, str], body: bytes, *, provider: str = NAME) -> APIStatusError:
    """The typed error for an HTTP error answer (JSON, text or HTML body; ``x-should-retry`` honoured)."""
    parsed, etype, message = read_error(body)
    return status_error(
        status,
        headers,
        body,
        provider=provider,
        parsed=parsed,
        error_type=etype,
        message=message,
        request_id_headers=REQUEST_ID_HEADERS,
        retryable=False if etype in _NOT_RETRYABLE_TYPES or status == 501 else None,
        should_retry_header=True,
    )


# --------------------------------------------------------------------------- providers


def make_openai_compatible(
    name: str,
    default_base_url: str,
    *,
    description: str = "",
    build_chat_fn: Callable[[ChatRequest, str, bool], ProviderRequest] = build_compatible_chat,
    request_id_headers: tuple[str, ...] = REQUEST_ID_HEADERS,
    capabilities: frozenset[str] = frozenset(),
    embeddings: bool = True,
    health_path: str | None = None,
    done_required: bool = True,
) -> Provider:
    """A :class:`Provider` speaking OpenAI chat completions (and embeddings) under another name;
    ``done_required``: the stream termination rule of :class:`ChatStreamParser`."""

    def _parse_chat(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
        return parse_chat(body, headers, provider=name)

    def _parse_embed(body: bytes, headers: Mapping[str, str]) -> EmbedResponse:
        return parse_embed(body, headers, provider=name)

    def _classify(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
        return classify_error(status, headers, body, provider=name)

    return Provider(
        name=name,
        default_base_url=default_base_url,
        build_chat=build_chat_fn,
        parse_chat=_parse_chat,
        new_stream_parser=lambda: ChatStreamParser(name, done_required=done_required),
        classify_error=_classify,
        auth_headers=auth_headers,
        request_id_headers=request_id_headers,
        build_embed=build_embed if embeddings else None,
        parse_embed=_parse_embed if embeddings else None,
        capabilities=capabilities,
        description=description,
        health_path=health_path,
    )


PROVIDER: Provider = make_openai_compatible(
    NAME,
    DEFAULT_BASE_URL,
    description="OpenAI Chat Completions and Embeddings",
    build_chat_fn=build_chat,
    capabilities=frozenset(("chat", "stream", "tools", "json", "vision", "embed", "completions")),
)


def __getattr__(name: str) -> Any:
    if name == "RESPONSES_PROVIDER":  # lazy: the Responses API module imports this one
        from .openai_responses import PROVIDER as responses

        return responses
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
