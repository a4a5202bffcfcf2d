"""Hugging Face text-generation-inference (TGI): pure wire translation, no I/O.

Two providers:

- ``PROVIDER`` (``"tgi"``): the native ``POST /generate`` / ``/generate_stream`` routes. They take a raw prompt,
  so a :class:`ChatRequest` is rendered with :func:`render_prompt` (template ``chatml`` by default; pick
  another with ``extra={"prompt_template": "llama3" | "plain"}``; every other ``extra`` key goes into
  ``parameters``). ``response_format`` becomes TGI's ``grammar``. No tools, no images.
- ``CHAT_PROVIDER`` (``"tgi_chat"``): the Messages API ``/v1/chat/completions`` (OpenAI-compatible). Prefer
  it whenever the server has a chat template: the server renders the prompt itself and supports tools.

Native extras as ``build_x``/``parse_x`` pairs for ``Endpoint.call``: ``/info``, ``/health``, ``/metrics``
(a :class:`TGIMetrics` summary), ``/tokenize``. Errors are ``{"error", "error_type"}`` with
``validation`` (422), ``generation`` (424), ``overloaded`` (429) and ``incomplete_generation`` (500); a body
that is not valid JSON for the route gets axum's ``text/plain`` 400/422.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..errors import APIStatusError, ConfigurationError
from ..types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    MessagesInput,
    ResponseFormat,
    StreamEvent,
    StreamFinish,
    Usage,
    UsageEvent,
    coerce_messages,
)
from ._base import Provider, ProviderRequest, decode_json, first_header, header
from ._common import (
    JSON_HEADERS,
    as_int,
    as_str,
    bearer_auth,
    compact,
    malformed,
    map_finish_reason,
    opt_int,
    read_error,
    refuse_reasoning_effort,
    status_error,
    text_only,
)
from ._prometheus import Sample, parse_prometheus, sample_sum, sample_value
from ._sse import SSEMessage
from ._stream import StreamParserBase
from .openai import build_compatible_chat as _openai_build_chat
from .openai import make_openai_compatible

__all__ = [
    "CHAT_PROVIDER",
    "PROVIDER",
    "GenerateStreamParser",
    "TGIInfo",
    "TGIMetrics",
    "TGIToken",
    "build_chat",
    "build_generate",
    "build_health",
    "build_info",
    "build_metrics",
    "build_tokenize",
    "classify_error",
    "grammar_for",
    "parse_generate",
    "parse_health",
    "parse_info",
    "parse_metrics",
    "parse_tokenize",
    "render_prompt",
]

NAME = "tgi"
CHAT_NAME = "tgi_chat"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
REQUEST_ID_HEADERS = ("x-request-id", "x-inference-id")
Template = Literal["chatml", "llama3", "plain"]

# --------------------------------------------------------------------------- prompt rendering


def _text_only(m: Message) -> str:
    return text_only(
        m,
        tools_error="TGI /generate takes a raw prompt: tool calls need the 'tgi_chat' provider",
        images_error="TGI /generate takes a raw prompt: images need the 'tgi_chat' provider",
    )


def render_prompt(messages: MessagesInput | Sequence[Message], template: str = "chatml") -> str:
    """Render chat messages into one prompt for ``/generate``, ending where the assistant's turn starts.

    ``chatml`` (``<|im_start|>role ... <|im_end|>``), ``llama3`` (header ids and ``<|eot_id|>``) or
    ``plain`` (``Role: text`` lines). Raises :class:`ConfigurationError` on images, tool messages or an
    unknown template.
    """
    msgs = coerce_messages(messages)
    texts = [(m.role, _text_only(m)) for m in msgs]
    if template == "chatml":
        body = "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in texts)
        return body + "<|im_start|>assistant\n"
    if template == "llama3":
        body = "".join(f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>" for role, text in texts)
        return "<|begin_of_text|>" + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    if template == "plain":
        return "".join(f"{role.capitalize()}: {text}\n\n" for role, text in texts) + "Assistant:"
    raise ConfigurationError(f"unknown prompt template {template!r}; use 'chatml', 'llama3' or 'plain'")


# --------------------------------------------------------------------------- /generate


def grammar_for(rf: ResponseFormat | None) -> dict[str, Any] | None:
    """TGI's ``grammar`` for a response format: ``{"type": "json", "value": <JSON schema>}``."""
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_schema":
        return {"type": "json", "value": dict(rf.schema or {})}
    return {"type": "json", "value": {"type": "object"}}


def build_generate(
    prompt: str,
    *,
    stream: bool = False,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    repetition_penalty: float | None = None,
    stop: Sequence[str] | None = None,
    seed: int | None = None,
    do_sample: bool | None = None,
    details: bool | None = True,
    decoder_input_details: bool | None = None,
    return_full_text: bool | None = False,
    truncate: int | None = None,
    grammar: Mapping[str, Any] | None = None,
    watermark: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProviderRequest:
    """``POST /generate`` (``/generate_stream`` when ``stream``) with ``{"inputs", "parameters"}``.

    Checks what TGI would refuse with a 422, before any I/O: ``max_new_tokens >= 1``,
    ``temperature > 0``, ``0 < top_p < 1``, ``top_k > 0``, ``repetition_penalty > 0``.
    """
    if not isinstance(prompt, str) or not prompt:
        raise ConfigurationError("TGI generate: 'inputs' must be a non-empty string")
    for name, value, ok in (
        ("max_new_tokens", max_new_tokens, lambda v: isinstance(v, int) and v >= 1),
        ("temperature", temperature, lambda v: v > 0),
        ("top_p", top_p, lambda v: 0 < v < 1),
        ("top_k", top_k, lambda v: isinstance(v, int) and v > 0),
        ("repetition_penalty", repetition_penalty, lambda v: v > 0),
    ):
        if value is not None and (isinstance(value, bool) or not ok(value)):
            raise ConfigurationError(f"TGI generate: invalid {name}={value!r}")
    params = compact(
        {
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "repetition_penalty": repetition_penalty,
            "stop": list(stop) if stop else None,
            "seed": seed,
            "do_sample": do_sample,
            "details": details,
            "decoder_input_details": decoder_input_details,
            "return_full_text": return_full_text,
            "truncate": truncate,
            "grammar": dict(grammar) if grammar is not None else None,
            "watermark": watermark,
        }
    )
    for k, v in (extra or {}).items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = v
    path = "/generate_stream" if stream else "/generate"
    return ProviderRequest(
        "POST", path, headers=dict(JSON_HEADERS), json={"inputs": prompt, "parameters": params}, stream=stream
    )


def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """A :class:`ChatRequest` as a native generate call (prompt rendered, see :func:`render_prompt`).

    ``temperature=0`` becomes greedy decoding (TGI refuses 0); ``top_p=1`` is left out (TGI wants < 1).
    ``model`` is not sent: a TGI server serves one model.
    """
    if req.tools:
        raise ConfigurationError("TGI /generate has no tools: use the 'tgi_chat' provider (Messages API)")
    refuse_reasoning_effort(req, NAME, "TGI /generate has no reasoning control")
    extra = dict(req.extra)
    template = extra.pop("prompt_template", "chatml")
    greedy = req.temperature == 0
    return build_generate(
        render_prompt(req.messages, str(template)),
        stream=stream,
        max_new_tokens=req.max_tokens,
        temperature=None if greedy else req.temperature,
        do_sample=False if greedy else None,
        top_p=None if req.top_p == 1 else req.top_p,
        stop=req.stop or None,
        seed=req.seed,
        grammar=grammar_for(req.response_format),
        extra=extra,
    )


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    v = header(headers, name)
    return int(v) if v is not None and v.strip().isdigit() else None


def _usage(details: Mapping[str, Any] | None, headers: Mapping[str, str]) -> Usage | None:
    out = _header_int(headers, "x-generated-tokens")
    inp = _header_int(headers, "x-prompt-tokens")
    if isinstance(details, Mapping):
        if out is None and "generated_tokens" in details:
            out = as_int(details.get("generated_tokens"))
        prefill = details.get("prefill")
        if inp is None and isinstance(prefill, list) and prefill:
            inp = len(prefill)
    if out is None and inp is None:
        return None
    return Usage(input_tokens=inp or 0, output_tokens=out or 0)


def parse_generate(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
    """A ``/generate`` answer (an object; the HF Inference API wraps it in a one-item list)."""
    data = decode_json(body, headers, provider=NAME, what="generate response")
    item = data[0] if isinstance(data, list) and data else data
    if not isinstance(item, Mapping) or not isinstance(item.get("generated_text"), str):
        raise malformed(NAME, "generate answer has no 'generated_text' string", data)
    details = item.get("details") if isinstance(item.get("details"), Mapping) else None
    return ChatResponse(
        text=item["generated_text"],
        finish_reason=map_finish_reason(details.get("finish_reason")) if details else None,
        usage=_usage(details, headers),
        provider=NAME,
        provider_request_id=first_header(headers, REQUEST_ID_HEADERS),
        raw=data,
    )


class GenerateStreamParser(StreamParserBase):
    """``/generate_stream``: ``data:{...}`` token events (no space after the colon). The event whose
    ``generated_text`` is not null is the terminal marker (it carries ``details.finish_reason``); special
    tokens (EOS) are not text. ``{"error", "error_type"}`` in the stream becomes a :class:`StreamError`."""

    PROVIDER = NAME
    INCOMPLETE = "{provider}: generate stream ended before the event with 'generated_text'"

    def _data(self, data: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        if data == "[DONE]":
            return
        obj = self._json(data)
        if obj.get("error") is not None:
            etype = as_str(obj.get("error_type"))
            status = {"validation": 422, "generation": 424}.get((etype or "").lower())
            self._stream_error(out, etype, as_str(obj.get("error")), status, final=True)
            return
        self._start(out)
        token = obj.get("token")
        if isinstance(token, Mapping) and not token.get("special"):
            self._text_delta(token.get("text"), out)
        if obj.get("generated_text") is not None:
            self._done = True
            details = obj.get("details") if isinstance(obj.get("details"), Mapping) else None
            finish: FinishReason | None = map_finish_reason(details.get("finish_reason")) if details else None
            if details is not None and "generated_tokens" in details:
                out.append(UsageEvent(Usage(output_tokens=as_int(details.get("generated_tokens")))))
            out.append(StreamFinish(finish))


# --------------------------------------------------------------------------- errors


def classify_error(status: int, headers: Mapping[str, str], body: bytes, *, provider: str = NAME) -> APIStatusError:
    """Typed error for a TGI answer: ``overloaded`` -> :class:`OverloadedError` (retryable, keeps the
    status, e.g. 429); ``validation`` 422 -> ``UnprocessableEntityError``; axum's text/plain rejections
    get ``error_type="invalid_body"``; HF Inference API ``{"error", "warnings"}`` bodies are read too."""
    parsed, etype, message = read_error(body)
    if etype is None and parsed is None and (message or "").startswith(("Failed to deserialize", "Failed to parse")):
        etype = "invalid_body"
    # HF Inference API while a model loads: 503 {"error": "Model ... is currently loading", "estimated_time": 20.0}
    estimated = parsed.get("estimated_time") if isinstance(parsed, Mapping) else None
    wait = float(estimated) if isinstance(estimated, (int, float)) and not isinstance(estimated, bool) else None
    return status_error(
        status,
        headers,
        body,
        provider=provider,
        parsed=parsed,
        error_type=etype,
        message=message,
        request_id_headers=REQUEST_ID_HEADERS,
        retry_after=wait if wait is not None and wait >= 0 else None,
        overloaded=(etype or "").lower() == "overloaded",
    )


#: TGI's ``--api-key`` and HF Inference Endpoints both take a bearer token.
auth_headers = bearer_auth


# --------------------------------------------------------------------------- /info /health /metrics /tokenize


@dataclass(frozen=True, slots=True)
class TGIInfo:
    model_id: str
    model_sha: str | None = None
    model_dtype: str | None = None
    model_device_type: str | None = None
    max_concurrent_requests: int | None = None
    max_best_of: int | None = None
    max_stop_sequences: int | None = None
    max_input_tokens: int | None = None
    max_total_tokens: int | None = None
    version: str | None = None
    sha: str | None = None
    docker_label: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def build_info() -> ProviderRequest:
    return ProviderRequest("GET", "/info")


def parse_info(body: bytes, headers: Mapping[str, str]) -> TGIInfo:
    """``GET /info``; ``max_input_tokens`` falls back to the older ``max_input_length``."""
    data = decode_json(body, headers, provider=NAME, what="info response")
    if not isinstance(data, Mapping) or not isinstance(data.get("model_id"), str):
        raise malformed(NAME, "/info answer has no 'model_id'", data)
    return TGIInfo(
        model_id=data["model_id"],
        model_sha=as_str(data.get("model_sha")),
        model_dtype=as_str(data.get("model_dtype")),
        model_device_type=as_str(data.get("model_device_type")),
        max_concurrent_requests=opt_int(data.get("max_concurrent_requests")),
        max_best_of=opt_int(data.get("max_best_of")),
        max_stop_sequences=opt_int(data.get("max_stop_sequences")),
        max_input_tokens=opt_int(data.get("max_input_tokens", data.get("max_input_length"))),
        max_total_tokens=opt_int(data.get("max_total_tokens")),
        version=as_str(data.get("version")),
        sha=as_str(data.get("sha")),
        docker_label=as_str(data.get("docker_label")),
        raw=dict(data),
    )


def build_health() -> ProviderRequest:
    return ProviderRequest("GET", "/health")


def parse_health(body: bytes, headers: Mapping[str, str]) -> bool:
    """``GET /health`` answers 200 with an empty body when the model is ready (errors raise before)."""
    return True


@dataclass(frozen=True, slots=True)
class TGIMetrics:
    """A summary of TGI's Prometheus metrics (``None``: the server did not export that metric)."""

    request_count: float | None
    request_success: float | None
    request_failure: float | None
    queue_size: float | None
    batch_current_size: float | None
    batch_current_max_tokens: float | None
    generated_tokens_sum: float | None
    samples: tuple[Sample, ...] = ()


def build_metrics() -> ProviderRequest:
    return ProviderRequest("GET", "/metrics")


def parse_metrics(body: bytes, headers: Mapping[str, str]) -> TGIMetrics:
    """``GET /metrics`` (Prometheus text) summarised; all samples are kept in ``samples``."""
    samples = parse_prometheus(body, provider=NAME)
    return TGIMetrics(
        request_count=sample_value(samples, "tgi_request_count"),
        request_success=sample_value(samples, "tgi_request_success"),
        request_failure=sample_sum(samples, "tgi_request_failure"),
        queue_size=sample_value(samples, "tgi_queue_size"),
        batch_current_size=sample_value(samples, "tgi_batch_current_size"),
        batch_current_max_tokens=sample_value(samples, "tgi_batch_current_max_tokens"),
        generated_tokens_sum=sample_value(samples, "tgi_request_generated_tokens_sum"),
        samples=tuple(samples),
    )


@dataclass(frozen=True, slots=True)
class TGIToken:
    id: int
    text: str
    start: int | None = None
    stop: int | None = None


def build_tokenize(text: str) -> ProviderRequest:
    if not isinstance(text, str) or not text:
        raise ConfigurationError("TGI tokenize: 'inputs' must be a non-empty string")
    return ProviderRequest("POST", "/tokenize", headers=dict(JSON_HEADERS), json={"inputs": text})


def parse_tokenize(body: bytes, headers: Mapping[str, str]) -> list[TGIToken]:
    """``POST /tokenize``: ``[{"id", "text", "start", "stop"}]``."""
    data = decode_json(body, headers, provider=NAME, what="tokenize response")
    if not isinstance(data, list):
        raise malformed(NAME, "/tokenize answer is not a list", data)
    out: list[TGIToken] = []
    for t in data:
        tid = t.get("id") if isinstance(t, Mapping) else None
        if not isinstance(tid, int) or isinstance(tid, bool) or not isinstance(t.get("text"), str):
            raise malformed(NAME, f"/tokenize answer has a bad token {t!r}", data)
        out.append(TGIToken(tid, t["text"], opt_int(t.get("start")), opt_int(t.get("stop"))))
    return out


# --------------------------------------------------------------------------- providers


def _build_messages_api(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """OpenAI chat body, except ``response_format``: TGI wants ``{"type": "json_object", "value": schema}``
    (what huggingface_hub sends; a ``json_schema`` format would be refused by TGI 2.x)."""
    preq = _openai_build_chat(req, model, stream)
    rf = req.response_format
    if rf is not None and "response_format" not in req.extra:
        grammar = grammar_for(rf)
        if grammar is None:
            preq.json.pop("response_format", None)
        else:
            preq.json["response_format"] = {"type": "json_object", "value": grammar["value"]}
    return preq


PROVIDER: Provider = Provider(
    name=NAME,
    default_base_url=DEFAULT_BASE_URL,
    build_chat=build_chat,
    parse_chat=parse_generate,
    new_stream_parser=GenerateStreamParser,
    classify_error=classify_error,
    auth_headers=auth_headers,
    request_id_headers=REQUEST_ID_HEADERS,
    models_path="/v1/models",
    capabilities=frozenset(("chat", "stream", "json", "grammar", "info", "health", "metrics", "tokenize")),
    description="Hugging Face TGI native /generate and /generate_stream (prompt rendered from messages)",
    health_path="/health",
)


def _classify_chat(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    return classify_error(status, headers, body, provider=CHAT_NAME)


CHAT_PROVIDER: Provider = replace(
    make_openai_compatible(
        CHAT_NAME,
        DEFAULT_BASE_URL + "/v1",
        description="Hugging Face TGI Messages API (/v1/chat/completions, OpenAI-compatible)",
        build_chat_fn=_build_messages_api,
        request_id_headers=REQUEST_ID_HEADERS,
        capabilities=frozenset(("chat", "stream", "tools", "json", "vision")),
        embeddings=False,
        health_path="/health",
        done_required=False,  # some TGI versions end the stream after the finish_reason chunk, no [DONE]
    ),
    classify_error=_classify_chat,  # TGI's {"error", "error_type"} bodies, also on the Messages API
)
