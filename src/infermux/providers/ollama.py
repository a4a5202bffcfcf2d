"""Ollama: the native ``/api/*`` protocol (``PROVIDER``) and its OpenAI-compatible ``/v1`` routes
(``OPENAI_PROVIDER``). Pure translation, no I/O.

Native routes (base URL ``http://127.0.0.1:11434``): ``POST /api/chat`` (the Provider's chat/stream),
``POST /api/embed`` (embeddings), and pure ``build_x``/``parse_x`` pairs for ``/api/generate``,
``/api/embeddings`` (legacy), ``/api/tags``, ``/api/show``, ``/api/pull``, ``/api/ps`` and ``/api/version``
to send with ``Endpoint.call(preq, parse)``.

Mapping notes (infermux -> Ollama):

- ``stream`` is always sent (the server streams when it is absent). ``temperature``, ``top_p``, ``seed``,
  ``stop`` and ``max_tokens`` (as ``num_predict``) go into ``options``; ``response_format`` becomes ``format``
  (``"json"`` or the JSON schema). ``extra`` is merged last, its ``options`` key by key (see :func:`ollama_extra`
  for ``keep_alive``, ``think`` and model options such as ``num_ctx``).
- Message content is a string; image parts go to ``images`` as base64 (image URLs are not supported by the
  server: :class:`ConfigurationError`). Assistant tool calls are sent with arguments as JSON *objects*; tool
  results carry ``tool_name`` (looked up from the call they answer).
- Ollama has no ``tool_choice``: ``"none"`` sends no tools, a tool name sends only that tool, ``"auto"`` and
  ``"required"`` send them all (the server cannot be forced to call one). ``parallel_tool_calls``, ``user``
  and ``metadata`` are not sent.

Ollama -> infermux: tool-call arguments arrive as objects; servers that send no call ``id`` get a stable one
(a hash of position, name and arguments), so a stream and a non-stream answer agree. ``done_reason`` ``stop``
with tool calls is reported as ``tool_calls`` (as Ollama's own ``/v1`` layer does). Usage: ``prompt_eval_count``
in, ``eval_count`` out. Errors are ``{"error": "<text>"}`` without a type: ``error_type`` is derived from the
status and text (``model_not_found``, ``invalid_request``, ``server_busy``...).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import APIStatusError, ConfigurationError, IncompleteStreamError
from ..types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    ImagePart,
    Message,
    ReasoningBlock,
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    TextPart,
    Tool,
    ToolCall,
    Usage,
    UsageEvent,
)
from ._base import Provider, ProviderRequest, decode_json
from ._common import (
    JSON_HEADERS,
    as_int,
    as_str,
    bearer_auth,
    compact,
    extract_error,
    floats,
    function_schema,
    json_object,
    malformed,
    map_finish_reason,
    merge_extra,
    read_error,
    refuse_reasoning_effort,
    status_error,
    tool_arguments,
)
from ._input_rules import COMPATIBLE as COMPATIBLE_INPUTS
from ._input_rules import check_inputs
from ._sse import NDJSONDecoder, SSEMessage
from ._stream import StreamParserBase
from .openai import make_openai_compatible

__all__ = [
    "OPENAI_PROVIDER",
    "PROVIDER",
    "ModelEntry",
    "NDJSONStreamParser",
    "PullProgress",
    "PullProgressParser",
    "ShowInfo",
    "auth_headers",
    "build_chat",
    "build_embed",
    "build_embeddings_legacy",
    "build_generate",
    "build_list_models",
    "build_ps",
    "build_pull",
    "build_show",
    "build_version",
    "classify_error",
    "ollama_extra",
    "parse_chat",
    "parse_embed",
    "parse_embeddings_legacy",
    "parse_generate",
    "parse_list_models",
    "parse_ps",
    "parse_pull",
    "parse_show",
    "parse_version",
    "stable_tool_call_id",
]

NAME = "ollama"
DEFAULT_BASE_URL = "http://127.0.0.1:11434"


#: Ollama itself has no auth; a key is sent as Bearer (ollama.com and reverse proxies expect that).
auth_headers = bearer_auth


def ollama_extra(
    *, keep_alive: str | float | None = None, think: bool | str | None = None, **options: Any
) -> dict[str, Any]:
    """A ``ChatRequest.extra`` for Ollama-only fields: ``keep_alive`` (``"5m"``, seconds, ``-1``), ``think``,
    and model ``options`` (``num_ctx``, ``top_k``, ``repeat_penalty``...)."""
    out: dict[str, Any] = compact({"keep_alive": keep_alive, "think": think})
    if options:
        out["options"] = dict(options)
    return out


# --------------------------------------------------------------------------- request building


def _images(parts: Iterable[TextPart | ImagePart]) -> list[str]:
    out: list[str] = []
    for p in parts:
        if isinstance(p, ImagePart):
            if p.data is None:
                raise ConfigurationError(
                    f"ollama: images must be inline data (ImagePart(data=...) or a data: URL), not a URL: {p.url!r}"
                )
            out.append(p.data)
    return out


def _message(m: Message, names: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.text}
    if isinstance(m.content, tuple):
        images = _images(m.content)
        if images:
            out["images"] = images
    if m.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": tool_arguments(c, NAME)}} for c in m.tool_calls]
    if m.role == "tool" and m.tool_call_id is not None:
        name = names.get(m.tool_call_id)
        if name:
            out["tool_name"] = name
    return out


def _messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for m in messages:
        for c in m.tool_calls:
            names[c.id] = c.name
        out.append(_message(m, names))
    return out


def _tool(t: Tool) -> dict[str, Any]:
    return {"type": "function", "function": function_schema(t, strict=False)}


def _tools(req: ChatRequest) -> list[dict[str, Any]] | None:
    if req.tool_choice == "none":
        return None
    tools = req.tools
    if req.tool_choice not in (None, "auto", "required"):
        tools = tuple(t for t in tools if t.name == req.tool_choice)
    return [_tool(t) for t in tools] or None


def _options(req: ChatRequest) -> dict[str, Any]:
    return compact(
        {
            "temperature": req.temperature,
            "top_p": req.top_p,
            "num_predict": req.max_tokens,
            "stop": list(req.stop) or None,
            "seed": req.seed,
        }
    )


def _merge(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` last; its ``options`` are merged into ours key by key (a ``None`` value removes one)."""
    opts = extra.get("options")
    if isinstance(opts, Mapping):
        merged = merge_extra(dict(body.get("options") or {}), opts)
        extra = {**extra, "options": merged or None}
    return merge_extra(body, extra)


def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """``POST /api/chat``."""
    refuse_reasoning_effort(req, NAME, "pass Ollama's 'think' through extra (ollama_extra)")
    check_inputs(req, NAME, COMPATIBLE_INPUTS)
    body: dict[str, Any] = {"model": model, "messages": _messages(req.messages), "stream": stream}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_object":
        body["format"] = "json"
    elif fmt is not None and fmt.type == "json_schema":
        body["format"] = dict(fmt.schema or {})
    opts = _options(req)
    if opts:
        body["options"] = opts
    _merge(body, req.extra)
    return ProviderRequest("POST", "/api/chat", headers=dict(JSON_HEADERS), json=body, stream=stream)


def build_generate(
    model: str,
    prompt: str | None = None,
    *,
    system: str | None = None,
    images: Iterable[str] = (),
    format: str | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    stream: bool = False,
    raw: bool | None = None,
    suffix: str | None = None,
    keep_alive: str | float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProviderRequest:
    """``POST /api/generate`` (a prompt, no chat history). ``prompt=None`` only loads the model; with
    ``keep_alive=0`` it unloads it. Parse with :func:`parse_generate`; stream with ``NDJSONStreamParser("generate")``.
    """
    if not model:
        raise ConfigurationError("ollama generate: model must not be empty")
    body: dict[str, Any] = {"model": model, "stream": stream}
    body.update(
        compact(
            {
                "prompt": prompt,
                "system": system,
                "images": list(images) or None,
                "format": dict(format) if isinstance(format, Mapping) else format,
                "options": dict(options) if options else None,
                "raw": raw,
                "suffix": suffix,
                "keep_alive": keep_alive,
            }
        )
    )
    _merge(body, extra or {})
    return ProviderRequest("POST", "/api/generate", headers=dict(JSON_HEADERS), json=body, stream=stream)


# --------------------------------------------------------------------------- responses


def stable_tool_call_id(index: int, name: str, arguments: str) -> str:
    """A deterministic id for a call the server sent without one (same call, same id, stream or not)."""
    digest = hashlib.sha256(f"{index}\x00{name}\x00{arguments}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def _tool_call(raw: Any, index: int) -> ToolCall:
    fn = raw.get("function") if isinstance(raw, Mapping) else None
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        raise malformed(NAME, f"tool call without function name: {raw!r}", raw)
    args = fn.get("arguments")
    if args is not None and not isinstance(args, (Mapping, str)):
        raise malformed(NAME, f"tool call arguments must be an object: {raw!r}", raw)
    call = ToolCall.from_raw("", fn["name"], args)
    call_id = as_str(raw.get("id")) or stable_tool_call_id(index, call.name, call.raw_arguments)
    return ToolCall(call_id, call.name, call.arguments, call.raw_arguments)


def _usage(obj: Mapping[str, Any]) -> Usage | None:
    if "prompt_eval_count" not in obj and "eval_count" not in obj:
        return None
    return Usage(input_tokens=as_int(obj.get("prompt_eval_count")), output_tokens=as_int(obj.get("eval_count")))


def _finish(obj: Mapping[str, Any], has_tool_calls: bool) -> FinishReason | None:
    reason = obj.get("done_reason")
    if reason in (None, "") and obj.get("done") is True:
        reason = "stop"
    mapped = map_finish_reason(reason)
    return "tool_calls" if has_tool_calls and mapped == "stop" else mapped


def _object(body: bytes, headers: Mapping[str, str], what: str) -> Mapping[str, Any]:
    data = decode_json(body, headers, provider=NAME, what=what)
    if not isinstance(data, Mapping):
        raise malformed(NAME, f"{what} is not a JSON object", data)
    if data.get("error") is not None:
        _, message = extract_error(data, b"")
        err = malformed(NAME, f"2xx {what} carries an error: {message}", data)
        err.error_type, err.provider_message = _error_type(200, message), message
        raise err
    return data


def parse_chat(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
    """A non-stream ``/api/chat`` answer as :class:`ChatResponse` (``message.thinking`` -> ``reasoning``)."""
    data = _object(body, headers, "chat response")
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise malformed(NAME, "chat response has no 'message' object", data)
    raw_calls = message.get("tool_calls")
    calls = tuple(_tool_call(c, i) for i, c in enumerate(raw_calls)) if isinstance(raw_calls, list) else ()
    content = message.get("content")
    thinking = message.get("thinking")
    thinking = thinking if isinstance(thinking, str) else ""
    return ChatResponse(
        text=content if isinstance(content, str) else "",
        tool_calls=calls,
        finish_reason=_finish(data, bool(calls)),
        usage=_usage(data),
        model=as_str(data.get("model")),
        provider=NAME,
        raw=data,
        reasoning=thinking,
        reasoning_blocks=(ReasoningBlock(thinking),) if thinking else (),
    )


def parse_generate(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
    """A non-stream ``/api/generate`` answer (``response`` text; ``context`` tokens stay in ``raw``)."""
    data = _object(body, headers, "generate response")
    text = data.get("response")
    if not isinstance(text, str):
        raise malformed(NAME, "generate response has no 'response' string", data)
    return ChatResponse(
        text=text,
        finish_reason=_finish(data, False),
        usage=_usage(data),
        model=as_str(data.get("model")),
        provider=NAME,
        raw=data,
    )


class NDJSONStreamParser(StreamParserBase):
    """Ollama's NDJSON stream of ``/api/chat`` (``kind="chat"``: ``message.content`` deltas) or
    ``/api/generate`` (``kind="generate"``: ``response`` deltas). The object with ``"done": true`` is the
    terminal marker (it carries ``done_reason`` and the token counts); a body that ends without it raises
    ``IncompleteStreamError``. An ``{"error": ...}`` line becomes a :class:`StreamError`."""

    INCOMPLETE = "{provider}: stream ended without its 'done': true object"

    def __init__(self, kind: str = "chat") -> None:
        if kind not in ("chat", "generate"):
            raise ConfigurationError(f"ollama stream kind must be 'chat' or 'generate', got {kind!r}")
        super().__init__(NAME, NDJSONDecoder())
        self.kind = kind

    def _data(self, line: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        obj = json_object(line, NAME, "stream line")
        if obj.get("error") is not None:
            _, message = extract_error(obj, b"")
            self._stream_error(out, _error_type(500, message), message, final=True)
            return
        self._start(out, None, as_str(obj.get("model")) or None)
        text: Any = obj.get("response")
        calls: Any = None
        if self.kind == "chat":
            msg_obj = obj.get("message")
            msg_obj = msg_obj if isinstance(msg_obj, Mapping) else {}
            text, calls = msg_obj.get("content"), msg_obj.get("tool_calls")
            thinking = msg_obj.get("thinking")
            if isinstance(thinking, str) and thinking:
                out.append(ReasoningDelta(thinking))
        self._text_delta(text, out)
        if isinstance(calls, list):
            for raw in calls:
                self._whole_call(_tool_call(raw, self._calls), out)
        if obj.get("done") is True:
            self._done = True
            usage = _usage(obj)
            if usage is not None:
                out.append(UsageEvent(usage))
            out.append(StreamFinish(_finish(obj, self._calls > 0)))


# --------------------------------------------------------------------------- embeddings


def build_embed(req: EmbedRequest, model: str) -> ProviderRequest:
    """``POST /api/embed`` (``truncate``, ``keep_alive`` and ``options`` via ``req.extra``)."""
    body: dict[str, Any] = {"model": model, "input": list(req.inputs)}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    _merge(body, req.extra)
    return ProviderRequest("POST", "/api/embed", headers=dict(JSON_HEADERS), json=body)


def _vector(raw: object) -> tuple[float, ...]:
    vector = floats(raw)
    if vector is None:
        raise malformed(NAME, "an embedding must be a list of numbers")
    return vector


def parse_embed(body: bytes, headers: Mapping[str, str]) -> EmbedResponse:
    """``{"model", "embeddings": [[...]], "prompt_eval_count"}`` as :class:`EmbedResponse`."""
    data = _object(body, headers, "embed response")
    vectors = data.get("embeddings")
    if not isinstance(vectors, list):
        raise malformed(NAME, "embed response has no 'embeddings' list", data)
    return EmbedResponse(
        vectors=tuple(_vector(v) for v in vectors),
        model=as_str(data.get("model")),
        usage=Usage(input_tokens=as_int(data.get("prompt_eval_count"))) if "prompt_eval_count" in data else None,
        provider=NAME,
        raw=data,
    )


def build_embeddings_legacy(model: str, prompt: str, *, keep_alive: str | float | None = None) -> ProviderRequest:
    """Legacy ``POST /api/embeddings`` (one prompt, one vector; superseded by ``/api/embed``)."""
    if not model or not isinstance(prompt, str):
        raise ConfigurationError("ollama embeddings: model and a string prompt are required")
    body = compact({"model": model, "prompt": prompt, "keep_alive": keep_alive})
    return ProviderRequest("POST", "/api/embeddings", headers=dict(JSON_HEADERS), json=body)


def parse_embeddings_legacy(body: bytes, headers: Mapping[str, str]) -> EmbedResponse:
    """``{"embedding": [...]}`` as a one-vector :class:`EmbedResponse`."""
    data = _object(body, headers, "embeddings response")
    return EmbedResponse(vectors=(_vector(data.get("embedding")),), provider=NAME, raw=data)


# --------------------------------------------------------------------------- models: tags, show, ps, version


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model of ``/api/tags`` or ``/api/ps`` (``details`` holds family, parameter_size, quantization...)."""

    name: str
    digest: str | None
    size: int
    details: Mapping[str, Any]
    modified_at: str | None = None
    expires_at: str | None = None
    size_vram: int | None = None

    @property
    def family(self) -> str | None:
        return as_str(self.details.get("family"))

    @property
    def parameter_size(self) -> str | None:
        return as_str(self.details.get("parameter_size"))

    @property
    def quantization_level(self) -> str | None:
        return as_str(self.details.get("quantization_level"))


def build_list_models() -> ProviderRequest:
    """``GET /api/tags``: the models pulled on the server."""
    return ProviderRequest("GET", "/api/tags")


def _models(body: bytes, headers: Mapping[str, str], what: str) -> list[ModelEntry]:
    data = _object(body, headers, what)
    items = data.get("models")
    if not isinstance(items, list) or not all(isinstance(m, Mapping) for m in items):
        raise malformed(NAME, f"{what} has no 'models' list of objects", data)
    out: list[ModelEntry] = []
    for m in items:
        name = as_str(m.get("name")) or as_str(m.get("model"))
        if not name:
            raise malformed(NAME, f"{what}: a model has no name: {m!r}", data)
        details = m.get("details")
        vram = m.get("size_vram")
        out.append(
            ModelEntry(
                name=name,
                digest=as_str(m.get("digest")),
                size=as_int(m.get("size")),
                details=dict(details) if isinstance(details, Mapping) else {},
                modified_at=as_str(m.get("modified_at")),
                expires_at=as_str(m.get("expires_at")),
                size_vram=as_int(vram) if vram is not None else None,
            )
        )
    return out


def parse_list_models(body: bytes, headers: Mapping[str, str]) -> list[ModelEntry]:
    return _models(body, headers, "/api/tags answer")


def build_ps() -> ProviderRequest:
    """``GET /api/ps``: the models loaded in memory now."""
    return ProviderRequest("GET", "/api/ps")


def parse_ps(body: bytes, headers: Mapping[str, str]) -> list[ModelEntry]:
    return _models(body, headers, "/api/ps answer")


@dataclass(frozen=True, slots=True)
class ShowInfo:
    """``/api/show``: what a model can do (``capabilities``: completion, tools, vision, embedding, thinking...)."""

    capabilities: tuple[str, ...]
    details: Mapping[str, Any]
    model_info: Mapping[str, Any]
    parameters: str
    template: str
    raw: Any = None

    @property
    def context_length(self) -> int | None:
        for key, value in self.model_info.items():
            if key.endswith(".context_length") and as_int(value):
                return as_int(value)
        return None


def build_show(model: str) -> ProviderRequest:
    if not model:
        raise ConfigurationError("ollama show: model must not be empty")
    return ProviderRequest("POST", "/api/show", headers=dict(JSON_HEADERS), json={"model": model})


def parse_show(body: bytes, headers: Mapping[str, str]) -> ShowInfo:
    data = _object(body, headers, "/api/show answer")
    caps = data.get("capabilities")
    details, info = data.get("details"), data.get("model_info")
    return ShowInfo(
        capabilities=tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else (),
        details=dict(details) if isinstance(details, Mapping) else {},
        model_info=dict(info) if isinstance(info, Mapping) else {},
        parameters=as_str(data.get("parameters")) or "",
        template=as_str(data.get("template")) or "",
        raw=data,
    )


def build_version() -> ProviderRequest:
    return ProviderRequest("GET", "/api/version")


def parse_version(body: bytes, headers: Mapping[str, str]) -> str:
    data = _object(body, headers, "/api/version answer")
    version = as_str(data.get("version"))
    if not version:
        raise malformed(NAME, "/api/version answer has no 'version'", data)
    return version


# --------------------------------------------------------------------------- pull


@dataclass(frozen=True, slots=True)
class PullProgress:
    """One progress line of ``/api/pull``: ``status`` (``pulling manifest``, ``pulling <digest>``,
    ``verifying sha256 digest``, ``writing manifest``, ``success``) and byte counts while downloading."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None

    @property
    def success(self) -> bool:
        return self.status == "success"


def build_pull(model: str, *, stream: bool = True, insecure: bool | None = None) -> ProviderRequest:
    """``POST /api/pull``; parse a whole body with :func:`parse_pull` or feed a :class:`PullProgressParser`."""
    if not model:
        raise ConfigurationError("ollama pull: model must not be empty")
    body = compact({"model": model, "stream": stream, "insecure": insecure})
    return ProviderRequest("POST", "/api/pull", headers=dict(JSON_HEADERS), json=body, stream=stream)


class PullProgressParser:
    """Incremental ``/api/pull`` NDJSON: ``feed`` returns :class:`PullProgress` items; an ``{"error": ...}``
    line raises the typed error (``NotFoundError`` for a model the registry does not have, else
    ``InternalServerError``); :meth:`close` raises ``IncompleteStreamError`` unless ``success`` was seen."""

    def __init__(self) -> None:
        self._lines = NDJSONDecoder()
        self.done = False
        self.last: PullProgress | None = None

    def feed(self, chunk: bytes) -> list[PullProgress]:
        return self._handle(self._lines.feed(chunk))

    def close(self) -> list[PullProgress]:
        out = self._handle(self._lines.close())
        if not self.done:
            last = self.last.status if self.last else "nothing"
            raise IncompleteStreamError(f"{NAME}: pull ended before 'success' (last status: {last})", provider=NAME)
        return out

    def _handle(self, lines: list[str]) -> list[PullProgress]:
        out: list[PullProgress] = []
        for line in lines:
            obj = json_object(line, NAME, "pull progress line")
            if obj.get("error") is not None:
                _, message = extract_error(obj, b"")
                missing = "does not exist" in (message or "") or "not found" in (message or "")
                status = 404 if missing else 500
                raise classify_error(status, {}, json.dumps({"error": message}).encode())
            status_text = as_str(obj.get("status"))
            if status_text is None:
                raise malformed(NAME, f"pull progress line has no 'status': {line[:200]!r}", obj)
            total, completed = obj.get("total"), obj.get("completed")
            progress = PullProgress(
                status_text,
                as_str(obj.get("digest")),
                as_int(total) if total is not None else None,
                as_int(completed) if completed is not None else None,
            )
            self.last = progress
            self.done = self.done or progress.success
            out.append(progress)
        return out


def parse_pull(body: bytes, headers: Mapping[str, str]) -> list[PullProgress]:
    """A whole ``/api/pull`` body (NDJSON progress, or the single ``{"status": "success"}`` of
    ``stream: false``): every progress item, the last being ``success``; errors raise as in the parser."""
    parser = PullProgressParser()
    return parser.feed(body) + parser.close()


# --------------------------------------------------------------------------- errors


def _error_type(status: int, message: str | None) -> str:
    text = (message or "").lower()
    if "not found" in text and "model" in text:
        return "model_not_found"
    if "does not support" in text:
        return "not_supported"
    if "server busy" in text or "maximum pending requests" in text:
        return "server_busy"
    if status == 429:
        return "rate_limit"
    if status in (400, 413, 422):
        return "invalid_request"
    if status in (401, 403):
        return "unauthorized"
    if status == 404:
        return "not_found"
    return "server_error" if status >= 500 else "error"


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """The typed error for ``{"error": "<text>"}`` (or a text/HTML body from a proxy in front of Ollama)."""
    parsed, _, message = read_error(body)
    return status_error(
        status,
        headers,
        body,
        provider=NAME,
        parsed=parsed,
        error_type=_error_type(status, message),
        message=message,
        request_id_headers=(),
        retryable=False if status == 501 else None,
    )


# --------------------------------------------------------------------------- providers

PROVIDER: Provider = Provider(
    name=NAME,
    default_base_url=DEFAULT_BASE_URL,
    build_chat=build_chat,
    parse_chat=parse_chat,
    new_stream_parser=lambda: NDJSONStreamParser("chat"),
    classify_error=classify_error,
    auth_headers=auth_headers,
    request_id_headers=("x-request-id",),
    build_embed=build_embed,
    parse_embed=parse_embed,
    models_path="/v1/models",  # the OpenAI-shaped list (AsyncClient.models); native: build_list_models()
    capabilities=frozenset(
        ("chat", "stream", "tools", "vision", "json", "embed", "generate", "pull", "show", "tags", "ps", "version")
    ),
    description="Ollama native API (/api/chat, /api/embed; generate, tags, show, pull, ps, version as helpers)",
    health_path="/api/version",
)

OPENAI_PROVIDER: Provider = make_openai_compatible(
    "ollama_openai",
    DEFAULT_BASE_URL + "/v1",
    description="Ollama's OpenAI-compatible /v1 routes (chat completions, embeddings, models)",
    capabilities=frozenset(("chat", "stream", "tools", "vision", "json", "embed")),
    health_path="/api/version",
)
