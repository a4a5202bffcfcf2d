"""Google Gemini, Generative Language API v1beta: pure wire translation, no I/O.

Routes (relative to ``https://generativelanguage.googleapis.com/v1beta``; the model goes in the path):
``POST /models/{m}:generateContent``, ``:streamGenerateContent?alt=sse``, ``:embedContent``,
``:batchEmbedContents``, ``:countTokens`` and ``GET /models``. Auth: the ``x-goog-api-key`` header.

Mapping notes (infermux -> Gemini):

- System messages become ``systemInstruction.parts`` (one text part each). Assistant messages are role
  ``model``; ``tool`` messages become ``functionResponse`` parts in a ``user`` turn, named after the call they
  answer (looked up by ``tool_call_id``, else ``Message.name``); a JSON-object result is sent as the
  ``response``, any other text as ``{"output": text}``. Consecutive turns of the same role are merged.
- Images: inline data -> ``inlineData {mimeType, data}``; a URL -> ``fileData {mimeType, fileUri}``
  (mime type from ``media_type`` or guessed from the URL's extension).
- Tool call ids: Gemini's ``functionCall`` has no id (newer models may send one, which is kept); missing ids
  are synthesized as ``call_<n>`` (n = position in the response). Ids are never sent back: Gemini pairs a
  ``functionResponse`` with its call by name and order.
- ``tools`` -> ``functionDeclarations`` with ``parametersJsonSchema`` (full JSON Schema, unlike the
  OpenAPI-subset ``parameters``); ``tool_choice`` auto/none/required -> ``functionCallingConfig.mode``
  AUTO/NONE/ANY, a tool name -> ANY + ``allowedFunctionNames``. ``parallel_tool_calls``, ``user`` and
  ``metadata`` have no Gemini counterpart and are not sent.
- ``response_format``: ``json_object`` -> ``responseMimeType: application/json``; ``json_schema`` adds
  ``responseJsonSchema``. At most 5 stop sequences (an API limit; more is a :class:`ConfigurationError`).
- ``extra`` is merged into the body last; ``generationConfig`` and ``toolConfig`` are merged key by key.

Gemini -> infermux:

- Text parts are joined (``thought: true`` parts are thinking summaries, not answer text: they are the
  ``reasoning``, their ``thoughtSignature`` on the :class:`ReasoningBlock`). A ``functionCall`` part's
  ``thoughtSignature`` is the call's :attr:`ToolCall.signature`; both go back on the same parts of the
  assistant turn (Gemini 3 refuses a function-call turn of the current tool loop without it).
  ``finishReason``: STOP -> stop (tool_calls when the answer holds function calls), MAX_TOKENS -> length,
  SAFETY/RECITATION/BLOCKLIST/PROHIBITED_CONTENT/SPII/IMAGE_SAFETY -> content_filter, others -> other.
- A blocked prompt (``promptFeedback.blockReason``, no candidates) is NOT an error: it is an empty
  :class:`ChatResponse` with ``finish_reason="content_filter"`` (the block reason is in ``raw``), the same
  outcome a filtered answer has. The request is valid; the content was refused.
- ``Usage.input_tokens`` = ``promptTokenCount + toolUsePromptTokenCount``; ``output_tokens`` =
  ``candidatesTokenCount + thoughtsTokenCount`` (thinking is billed as output, like OpenAI's reasoning
  tokens); ``cached_tokens`` = ``cachedContentTokenCount``.
- Errors ``{"error": {"code", "message", "status", "details"}}`` (also a one-element JSON array of that):
  ``error_type`` is the ``status`` (RESOURCE_EXHAUSTED, INVALID_ARGUMENT...); ``retry_after`` comes from the
  ``retry-after`` header, else from the ``google.rpc.RetryInfo`` detail's ``retryDelay`` ("31s"). A 400 whose
  ``google.rpc.ErrorInfo`` reason is ``API_KEY_INVALID`` (Gemini's answer to a wrong key) is raised as
  :class:`AuthenticationError` with ``status_code`` 400 as on the wire and ``error_type`` API_KEY_INVALID.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ..errors import APIStatusError, AuthenticationError, ConfigurationError
from ..types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    ImagePart,
    Message,
    Part,
    ReasoningBlock,
    ReasoningDelta,
    StreamEvent,
    TextPart,
    ToolCall,
    Usage,
    UsageEvent,
)
from ._base import Provider, ProviderRequest, decode_json
from ._common import (
    JSON_HEADERS,
    as_int,
    as_str,
    floats,
    function_schema,
    malformed,
    merge_extra,
    parse_error_body,
    refuse_reasoning_effort,
    status_error,
    tool_arguments,
)
from ._gemini_wire import chat_request_from_wire
from ._input_rules import GEMINI as GEMINI_INPUTS
from ._input_rules import check_inputs
from ._sse import SSEMessage
from ._stream import StreamParserBase

__all__ = [
    "FINISH_REASONS",
    "PROVIDER",
    "GeminiStreamParser",
    "auth_headers",
    "build_chat",
    "build_count_tokens",
    "build_embed",
    "build_list_models",
    "chat_request_from_wire",
    "classify_error",
    "map_finish_reason",
    "model_resource",
    "parse_chat",
    "parse_count_tokens",
    "parse_embed",
    "parse_models",
    "parse_retry_delay",
]

NAME = "gemini"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
MAX_STOP_SEQUENCES = 5

#: Gemini ``finishReason`` -> neutral finish reason (unknown values -> "other").
FINISH_REASONS: Mapping[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
}
_TOOL_MODES: Mapping[str, str] = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_MODEL_RE = re.compile(r"^(?:models/|tunedModels/)?[A-Za-z0-9][A-Za-z0-9._-]*$")


def map_finish_reason(raw: object, *, has_tool_calls: bool = False) -> FinishReason | None:
    """Gemini ``finishReason`` -> neutral value; STOP with function calls in the answer -> tool_calls."""
    if raw is None or raw == "":
        return None
    reason = FINISH_REASONS.get(raw, "other") if isinstance(raw, str) else "other"
    return "tool_calls" if has_tool_calls and reason == "stop" else reason


def auth_headers(key: str) -> dict[str, str]:
    return {"x-goog-api-key": key}


def model_resource(model: str) -> str:
    """``models/<id>`` (or ``tunedModels/<id>``) for a model id; a bad id is a :class:`ConfigurationError`."""
    if not isinstance(model, str) or not _MODEL_RE.match(model):
        raise ConfigurationError(f"gemini: invalid model name {model!r} (expected e.g. 'gemini-2.5-flash')")
    return model if "/" in model else f"models/{model}"


def _route(model: str, method: str) -> str:
    return "/" + quote(model_resource(model), safe="/") + ":" + method


# --------------------------------------------------------------------------- request building


def _image(p: ImagePart) -> dict[str, Any]:
    if p.data is not None:
        return {"inlineData": {"mimeType": p.media_type, "data": p.data}}
    assert p.url is not None
    mime = p.media_type or mimetypes.guess_type(p.url.split("?")[0])[0]
    fd: dict[str, Any] = {"fileUri": p.url}
    if mime:
        fd["mimeType"] = mime
    return {"fileData": fd}


def _parts(content: str | tuple[Part, ...] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [{"text": p.text} if isinstance(p, TextPart) else _image(p) for p in content]


def _function_response(m: Message, names: Mapping[str, str]) -> dict[str, Any]:
    name = names.get(m.tool_call_id or "") or m.name
    if not name:
        raise ConfigurationError(
            f"gemini: tool message answers call {m.tool_call_id!r}, but no earlier assistant message made that"
            " call and the message has no name= (Gemini needs the function name)"
        )
    text = m.text
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    response = value if isinstance(value, dict) else {"output": text}
    return {"functionResponse": {"name": name, "response": response}}


def _contents(messages: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            role, parts = "user", [_function_response(m, names)]
        elif m.role == "assistant":
            # signed thoughts and calls go back on the parts they came on (Gemini 3 refuses a function-call
            # turn of the current tool loop without its thoughtSignature)
            role = "model"
            parts = [
                {"text": b.text, "thought": True, "thoughtSignature": b.signature}
                for b in m.reasoning
                if b.protocol == NAME and b.signature
            ]
            parts += _parts(m.content)
            for c in m.tool_calls:
                names[c.id] = c.name
                part: dict[str, Any] = {"functionCall": {"name": c.name, "args": tool_arguments(c, NAME)}}
                if c.signature:
                    part["thoughtSignature"] = c.signature
                parts.append(part)
        else:
            role, parts = "user", _parts(m.content)
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    if not out:
        raise ConfigurationError("gemini: the request needs at least one non-empty non-system message")
    return out


def _generation_config(req: ChatRequest) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if req.temperature is not None:
        cfg["temperature"] = req.temperature
    if req.top_p is not None:
        cfg["topP"] = req.top_p
    if req.max_tokens is not None:
        cfg["maxOutputTokens"] = req.max_tokens
    if req.stop:
        if len(req.stop) > MAX_STOP_SEQUENCES:
            raise ConfigurationError(f"gemini: at most {MAX_STOP_SEQUENCES} stop sequences, got {len(req.stop)}")
        cfg["stopSequences"] = list(req.stop)
    if req.seed is not None:
        cfg["seed"] = req.seed
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        cfg["responseMimeType"] = "application/json"
        if fmt.type == "json_schema":
            cfg["responseJsonSchema"] = dict(fmt.schema or {})
    return cfg


def _tools(req: ChatRequest, body: dict[str, Any]) -> None:
    if req.tools:
        decls = [function_schema(t, "parametersJsonSchema", strict=False) for t in req.tools]
        body["tools"] = [{"functionDeclarations": decls}]
    if req.tool_choice is not None:
        mode = _TOOL_MODES.get(req.tool_choice)
        fcc: dict[str, Any] = {"mode": mode} if mode else {"mode": "ANY", "allowedFunctionNames": [req.tool_choice]}
        body["toolConfig"] = {"functionCallingConfig": fcc}


def _chat_body(req: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": _contents(req.messages)}
    systems = [m.text for m in req.messages if m.role == "system"]
    if systems:
        body["systemInstruction"] = {"parts": [{"text": s} for s in systems]}
    cfg = _generation_config(req)
    if cfg:
        body["generationConfig"] = cfg
    _tools(req, body)
    extra = dict(req.extra)
    for key in ("generationConfig", "toolConfig"):
        if isinstance(extra.get(key), Mapping) and isinstance(body.get(key), dict):
            extra[key] = {**body[key], **extra[key]}
    return merge_extra(body, extra)


def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """``:generateContent``, or ``:streamGenerateContent?alt=sse`` when ``stream``."""
    refuse_reasoning_effort(req, NAME, "pass generationConfig.thinkingConfig through extra")
    check_inputs(req, NAME, GEMINI_INPUTS)
    path = _route(model, "streamGenerateContent") + "?alt=sse" if stream else _route(model, "generateContent")
    return ProviderRequest("POST", path, headers=dict(JSON_HEADERS), json=_chat_body(req), stream=stream)


def build_count_tokens(req: ChatRequest, model: str) -> ProviderRequest:
    """``:countTokens``: plain ``contents``, or a whole ``generateContentRequest`` when the prompt has a
    system instruction or tools (they count too, and only that form carries them)."""
    body = _chat_body(req)
    if set(body) == {"contents"}:
        wire: dict[str, Any] = body
    else:
        wire = {"generateContentRequest": {"model": model_resource(model), **body}}
    return ProviderRequest("POST", _route(model, "countTokens"), headers=dict(JSON_HEADERS), json=wire)


def parse_count_tokens(body: bytes, headers: Mapping[str, str]) -> int:
    """The ``totalTokens`` of a countTokens answer (absent means 0, as proto3 JSON omits zeros)."""
    data = decode_json(body, headers, provider=NAME, what="countTokens response")
    if not isinstance(data, Mapping):
        raise malformed(NAME, "countTokens answer is not a JSON object", data)
    n = data.get("totalTokens", 0)
    if not isinstance(n, int) or isinstance(n, bool):
        raise malformed(NAME, f"countTokens answer has a non-integer totalTokens: {n!r}", data)
    return n


def build_list_models(page_size: int | None = None, page_token: str | None = None) -> ProviderRequest:
    """``GET /models`` (one page)."""
    q = [f"pageSize={int(page_size)}"] if page_size else []
    if page_token:
        q.append("pageToken=" + quote(page_token, safe=""))
    return ProviderRequest("GET", "/models" + ("?" + "&".join(q) if q else ""))


def parse_models(body: bytes, headers: Mapping[str, str]) -> list[str]:
    """Model ids of a ``GET /models`` page (``models/`` prefix removed)."""
    data = decode_json(body, headers, provider=NAME, what="model list")
    items = data.get("models", []) if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise malformed(NAME, "model list has no 'models' array", data)
    names = [as_str(m.get("name")) for m in items if isinstance(m, Mapping)]
    return [n.removeprefix("models/") for n in names if n]


# --------------------------------------------------------------------------- embeddings


def build_embed(req: EmbedRequest, model: str) -> ProviderRequest:
    """One input -> ``:embedContent``; several -> ``:batchEmbedContents`` (``requests[]`` each naming the
    model). ``dimensions`` -> ``outputDimensionality``; ``extra`` (e.g. ``taskType``) goes into each request."""
    resource = model_resource(model)
    if req.dimensions is not None and req.dimensions < 1:
        raise ConfigurationError(f"gemini: dimensions must be >= 1, got {req.dimensions}")

    def one(text: str) -> dict[str, Any]:
        item: dict[str, Any] = {"model": resource, "content": {"parts": [{"text": text}]}}
        if req.dimensions is not None:
            item["outputDimensionality"] = req.dimensions
        return merge_extra(item, req.extra)

    if len(req.inputs) == 1:
        return ProviderRequest(
            "POST", _route(model, "embedContent"), headers=dict(JSON_HEADERS), json=one(req.inputs[0])
        )
    body = {"requests": [one(t) for t in req.inputs]}
    return ProviderRequest("POST", _route(model, "batchEmbedContents"), headers=dict(JSON_HEADERS), json=body)


def _values(raw: object, data: Any) -> tuple[float, ...]:
    values = floats(raw.get("values")) if isinstance(raw, Mapping) else None
    if values is None:
        raise malformed(NAME, "embedding without a numeric 'values' list", data)
    return values


def parse_embed(body: bytes, headers: Mapping[str, str]) -> EmbedResponse:
    """``{"embedding": {"values"}}`` (embedContent) or ``{"embeddings": [...]}`` (batchEmbedContents)."""
    data = decode_json(body, headers, provider=NAME, what="embedding response")
    if not isinstance(data, Mapping):
        raise malformed(NAME, "embedding answer is not a JSON object", data)
    if "embeddings" in data:
        items = data["embeddings"]
        if not isinstance(items, list) or not items:
            raise malformed(NAME, "'embeddings' is not a non-empty list", data)
        vectors = tuple(_values(e, data) for e in items)
    elif "embedding" in data:
        vectors = (_values(data["embedding"], data),)
    else:
        raise malformed(NAME, "embedding answer has neither 'embedding' nor 'embeddings'", data)
    um = data.get("usageMetadata")
    usage = Usage(input_tokens=as_int(um.get("promptTokenCount"))) if isinstance(um, Mapping) else None
    return EmbedResponse(vectors=vectors, usage=usage, provider=NAME)


# --------------------------------------------------------------------------- responses


def _usage(raw: object) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    return Usage(
        input_tokens=as_int(raw.get("promptTokenCount")) + as_int(raw.get("toolUsePromptTokenCount")),
        output_tokens=as_int(raw.get("candidatesTokenCount")) + as_int(raw.get("thoughtsTokenCount")),
        cached_tokens=as_int(raw.get("cachedContentTokenCount")),
        reasoning_tokens=as_int(raw.get("thoughtsTokenCount")),
    )


def _candidate_parts(cand: Mapping[str, Any], data: Any) -> list[Mapping[str, Any]]:
    content = cand.get("content")
    if content is None:
        return []
    parts = content.get("parts", []) if isinstance(content, Mapping) else None
    if not isinstance(parts, list) or not all(isinstance(p, Mapping) for p in parts):
        raise malformed(NAME, "candidate content has no list of part objects", data)
    return parts


def _function_call(part: Mapping[str, Any], n: int, data: Any) -> ToolCall:
    fc = part["functionCall"]
    name = fc.get("name") if isinstance(fc, Mapping) else None
    if not isinstance(name, str) or not name:
        raise malformed(NAME, "functionCall part without a name", data)
    args = fc.get("args", {})
    if not isinstance(args, Mapping):
        raise malformed(NAME, f"functionCall {name!r} args is not an object", data)
    cid = as_str(fc.get("id")) or f"call_{n}"
    sig = as_str(part.get("thoughtSignature")) or None
    return ToolCall(cid, name, dict(args), json.dumps(args, ensure_ascii=False), sig)


def _error_in_body(data: Any, headers: Mapping[str, str], body: bytes) -> None:
    if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
        code = as_int(data["error"].get("code")) or 500
        raise classify_error(code if code >= 400 else 500, headers, body)


def parse_chat(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
    """A ``GenerateContentResponse`` (first candidate) as :class:`ChatResponse`."""
    data = decode_json(body, headers, provider=NAME, what="generateContent response")
    _error_in_body(data, headers, body)
    if not isinstance(data, Mapping):
        raise malformed(NAME, "generateContent answer is not a JSON object", data)
    cands = data.get("candidates", [])
    if not isinstance(cands, list) or not all(isinstance(c, Mapping) for c in cands):
        raise malformed(NAME, "'candidates' is not a list of objects", data)
    texts: list[str] = []
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    signature: str | None = None
    finish: FinishReason | None
    if cands:
        for part in _candidate_parts(cands[0], data):
            if "functionCall" in part:
                calls.append(_function_call(part, len(calls), data))
            elif part.get("thought"):
                thoughts.append(as_str(part.get("text")) or "")
                signature = as_str(part.get("thoughtSignature")) or signature
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
        finish = map_finish_reason(cands[0].get("finishReason"), has_tool_calls=bool(calls))
    else:
        feedback = data.get("promptFeedback")
        if not (isinstance(feedback, Mapping) and feedback.get("blockReason")):
            raise malformed(NAME, "generateContent answer has no candidates and no promptFeedback.blockReason", data)
        finish = "content_filter"
    return ChatResponse(
        text="".join(texts),
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=_usage(data.get("usageMetadata")),
        model=as_str(data.get("modelVersion")),
        provider=NAME,
        response_id=as_str(data.get("responseId")),
        raw=data,
        reasoning="".join(thoughts),
        reasoning_blocks=(ReasoningBlock("".join(thoughts), signature, None, NAME if signature else None),)
        if thoughts
        else (),
    )


class GeminiStreamParser(StreamParserBase):
    """``streamGenerateContent?alt=sse``: data-only SSE, each data a ``GenerateContentResponse`` chunk.

    There is no end marker: the stream is complete when a chunk carried ``finishReason`` (or a
    ``promptFeedback.blockReason``) before the body ended; :class:`StreamFinish` is emitted at :meth:`close`
    (usage may follow the finish reason). A body that ends without one raises :class:`IncompleteStreamError`.
    A ``{"error": {...}}`` chunk becomes a :class:`StreamError` (with the HTTP ``code``).
    """

    INCOMPLETE = "{provider} stream ended without a finishReason (after {chars} characters of text)"

    PROVIDER = NAME
    __slots__ = ()

    def _data(self, text: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        data = self._json(text)
        err = data.get("error")
        if isinstance(err, Mapping):
            code = as_int(err.get("code"))
            message = as_str(err.get("message")) or text[:300]
            self._stream_error(out, as_str(err.get("status")), message, code or None, final=True)
            return
        self._start(out, as_str(data.get("responseId")), as_str(data.get("modelVersion")))
        self._chunk(data, out)

    def _chunk(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        cands = data.get("candidates", [])
        if not isinstance(cands, list):
            raise malformed(NAME, "stream chunk 'candidates' is not a list", data)
        if cands and isinstance(cands[0], Mapping):
            cand = cands[0]
            for part in _candidate_parts(cand, data):
                if "functionCall" in part:
                    self._whole_call(_function_call(part, self._calls, data), out)
                elif part.get("thought"):  # a thought summary (includeThoughts): reasoning, not answer text
                    sig = as_str(part.get("thoughtSignature")) or None
                    out.append(ReasoningDelta(as_str(part.get("text")) or "", 0, sig, None, NAME if sig else None))
                else:
                    self._text_delta(part.get("text"), out)
            reason = cand.get("finishReason")
            if reason:
                self._set_finish(map_finish_reason(reason, has_tool_calls=self._calls > 0))
        else:
            feedback = data.get("promptFeedback")
            if isinstance(feedback, Mapping) and feedback.get("blockReason"):
                self._set_finish("content_filter")
        usage = _usage(data.get("usageMetadata"))
        if usage is not None:
            out.append(UsageEvent(usage))


# --------------------------------------------------------------------------- errors


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_retry_delay(value: object) -> float | None:
    """A protobuf JSON duration (``"31s"``, ``"1.5s"``) in seconds; ``None`` when absent or odd."""
    if not isinstance(value, str):
        return None
    m = _DURATION.match(value)
    return float(m.group(1)) if m else None


def _details(err: Mapping[str, Any], suffix: str) -> list[Mapping[str, Any]]:
    details = err.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, Mapping) and str(d.get("@type", "")).endswith(suffix)]


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """A typed status error from a Google API error body (see the module docstring). Non-JSON bodies
    (an HTML page from a proxy) are tolerated."""
    parsed = parse_error_body(body)
    obj = parsed[0] if isinstance(parsed, list) and parsed else parsed
    err = obj.get("error") if isinstance(obj, Mapping) else None
    err = err if isinstance(err, Mapping) else {}
    code = err.get("code")
    # classic Google APIs: {"code": 429, "status": "RESOURCE_EXHAUSTED"}; newer ones (Interactions): a string
    # "code" such as "service_unavailable" and no "status"
    etype = as_str(err.get("status")) or (code if isinstance(code, str) and code else None)
    message = as_str(err.get("message"))
    if message is None and not err:
        text = body[:300].decode("utf-8", "replace").strip()
        message = text or None
    delays = (parse_retry_delay(info.get("retryDelay")) for info in _details(err, "google.rpc.RetryInfo"))
    reasons = {as_str(d.get("reason")) for d in _details(err, "google.rpc.ErrorInfo")}
    e = status_error(
        status,
        headers,
        body,
        provider=NAME,
        parsed=parsed,
        error_type=etype,
        message=message,
        retry_after=next((d for d in delays if d is not None), None),
    )
    if status == 400 and "API_KEY_INVALID" in reasons:
        e = AuthenticationError(
            e.message, provider=NAME, status_code=status, error_type="API_KEY_INVALID", provider_message=message,
            provider_request_id=e.provider_request_id, retry_after=e.retry_after, body=e.body, retryable=False,
        )  # fmt: skip
    return e


PROVIDER = Provider(
    name=NAME,
    default_base_url=DEFAULT_BASE_URL,
    build_chat=build_chat,
    parse_chat=parse_chat,
    new_stream_parser=GeminiStreamParser,
    classify_error=classify_error,
    auth_headers=auth_headers,
    request_id_headers=("x-request-id",),
    build_embed=build_embed,
    parse_embed=parse_embed,
    models_path="/models",
    build_models=build_list_models,
    parse_models=parse_models,
    capabilities=frozenset({"chat", "stream", "tools", "vision", "json", "embed", "count_tokens"}),
    description="Google Gemini (Generative Language API v1beta: generateContent, embedContent, countTokens)",
)
