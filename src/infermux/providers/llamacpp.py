"""llama.cpp server (``llama-server`` / xllamacpp): pure wire translation, no I/O.

Chat and embeddings use the server's OpenAI-compatible ``/v1`` routes (the :mod:`.openai` functions).
The native routes (``/health``, ``/completion``, ``/tokenize``, ``/detokenize``, ``/props``) live at the
server root: build their URL from :func:`server_root` of the base URL. Errors are
``{"error": {"code", "message", "type"}}`` (e.g. ``exceed_context_size_error`` 400,
``not_supported_error`` 501, ``unavailable_error`` 503 while the model loads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..errors import APIStatusError
from ..types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    StreamEvent,
    StreamFinish,
    Usage,
    UsageEvent,
)
from ._base import Provider, ProviderRequest, decode_json
from ._common import JSON_HEADERS, as_int, as_str, compact, malformed, map_finish_reason, merge_extra, server_root
from ._sse import SSEMessage
from ._stream import StreamParserBase
from .openai import build_compatible_chat as _openai_build_chat
from .openai import classify_error as _openai_classify_error
from .openai import make_openai_compatible

__all__ = [
    "PROVIDER",
    "CompletionStreamParser",
    "build_chat",
    "build_completion",
    "build_detokenize",
    "build_health",
    "build_props",
    "build_tokenize",
    "classify_error",
    "parse_completion",
    "parse_detokenize",
    "parse_health",
    "parse_props",
    "parse_tokenize",
    "server_root",
]

NAME = "llamacpp"
DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"


def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """OpenAI chat body; a named ``tool_choice`` (which llama.cpp ignores) becomes ``"required"`` with
    only that tool offered, which forces the same call."""
    if req.tool_choice is not None and req.tool_choice not in ("auto", "none", "required"):
        only = tuple(t for t in req.tools if t.name == req.tool_choice)
        req = dataclasses.replace(req, tools=only, tool_choice="required")
    return _openai_build_chat(req, model, stream)


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """Typed error for a llama.cpp error answer (OpenAI-shaped body)."""
    return _openai_classify_error(status, headers, body, provider=NAME)


# --------------------------------------------------------------------------- /health, /props


def build_health() -> ProviderRequest:
    """``GET /health`` (server root): 200 ``{"status": "ok"}``; 503 while loading (see :func:`parse_health`)."""
    return ProviderRequest("GET", "/health")


def parse_health(status: int, headers: Mapping[str, str], body: bytes) -> bool:
    """``True`` when ready; a non-2xx answer raises the typed error (503 loading -> InternalServerError)."""
    if status >= 400:
        raise classify_error(status, headers, body)
    data = decode_json(body, headers, provider=NAME, what="health response")
    if not isinstance(data, Mapping) or data.get("status") != "ok":
        raise malformed(NAME, f"unexpected /health answer: {data!r}", data)
    return True


def build_props() -> ProviderRequest:
    return ProviderRequest("GET", "/props")


def parse_props(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The server properties (``default_generation_settings``, ``total_slots``, ``chat_template``...)."""
    data = decode_json(body, headers, provider=NAME, what="props response")
    if not isinstance(data, dict):
        raise malformed(NAME, "/props answer is not a JSON object", data)
    return data


# --------------------------------------------------------------------------- tokenize


def build_tokenize(text: str, add_special: bool = False) -> ProviderRequest:
    return ProviderRequest(
        "POST", "/tokenize", headers=dict(JSON_HEADERS), json={"content": text, "add_special": add_special}
    )


def parse_tokenize(body: bytes, headers: Mapping[str, str]) -> list[int]:
    """Token ids (also accepts the ``with_pieces`` shape ``[{"id", "piece"}]``)."""
    data = decode_json(body, headers, provider=NAME, what="tokenize response")
    tokens = data.get("tokens") if isinstance(data, Mapping) else None
    if not isinstance(tokens, list):
        raise malformed(NAME, "/tokenize answer has no 'tokens' list", data)
    out: list[int] = []
    for t in tokens:
        tid = t.get("id") if isinstance(t, Mapping) else t
        if not isinstance(tid, int) or isinstance(tid, bool):
            raise malformed(NAME, f"/tokenize answer has a non-integer token {t!r}", data)
        out.append(tid)
    return out


def build_detokenize(tokens: list[int]) -> ProviderRequest:
    return ProviderRequest("POST", "/detokenize", headers=dict(JSON_HEADERS), json={"tokens": list(tokens)})


def parse_detokenize(body: bytes, headers: Mapping[str, str]) -> str:
    data = decode_json(body, headers, provider=NAME, what="detokenize response")
    content = data.get("content") if isinstance(data, Mapping) else None
    if not isinstance(content, str):
        raise malformed(NAME, "/detokenize answer has no 'content' string", data)
    return content


# --------------------------------------------------------------------------- native /completion


def build_completion(
    prompt: str,
    *,
    n_predict: int | None = None,
    temperature: float | None = None,
    stop: list[str] | None = None,
    stream: bool = False,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProviderRequest:
    """Native ``POST /completion`` (raw prompt, no chat template)."""
    body: dict[str, Any] = {"prompt": prompt}
    body.update(compact({"n_predict": n_predict, "temperature": temperature, "stop": stop, "seed": seed}))
    if stream:
        body["stream"] = True
    merge_extra(body, extra or {})
    return ProviderRequest("POST", "/completion", headers=dict(JSON_HEADERS), json=body, stream=stream)


def _finish(obj: Mapping[str, Any]) -> FinishReason | None:
    stop_type = obj.get("stop_type")  # "eos" | "word" | "limit" | "none" (newer servers)
    if isinstance(stop_type, str) and stop_type != "none":
        return map_finish_reason(stop_type)
    if obj.get("stopped_limit"):
        return "length"
    if obj.get("stopped_eos") or obj.get("stopped_word"):
        return "stop"
    return None


def _usage(obj: Mapping[str, Any]) -> Usage:
    timings = obj.get("timings")  # timings.cache_n: prompt tokens reused from the KV cache
    return Usage(
        input_tokens=as_int(obj.get("tokens_evaluated")),
        output_tokens=as_int(obj.get("tokens_predicted")),
        cached_tokens=as_int(timings.get("cache_n")) if isinstance(timings, Mapping) else 0,
    )


def parse_completion(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
    """A native completion (``content``, ``stop_type``, token counts) as :class:`ChatResponse`."""
    data = decode_json(body, headers, provider=NAME, what="completion response")
    if not isinstance(data, Mapping) or not isinstance(data.get("content"), str):
        raise malformed(NAME, "/completion answer has no 'content' string", data)
    return ChatResponse(
        text=data["content"],
        finish_reason=_finish(data),
        usage=_usage(data),
        model=as_str(data.get("model")),
        provider=NAME,
        raw=data,
    )


class CompletionStreamParser(StreamParserBase):
    """Native ``/completion`` stream: ``data: {"content": "...", "stop": false}`` chunks; the object with
    ``"stop": true`` is the terminal marker (it carries ``stop_type`` and token counts)."""

    PROVIDER = NAME
    INCOMPLETE = "{provider}: /completion stream ended without a 'stop': true chunk"

    def _data(self, data: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        obj = self._json(data)
        err = obj.get("error")
        if isinstance(err, Mapping):
            code = err.get("code")
            status = code if isinstance(code, int) else None
            self._stream_error(out, as_str(err.get("type")), as_str(err.get("message")), status, final=True)
            return
        self._text_delta(obj.get("content"), out)
        if obj.get("stop") is True:
            self._done = True
            out.append(UsageEvent(_usage(obj)))
            out.append(StreamFinish(_finish(obj)))


PROVIDER: Provider = make_openai_compatible(
    NAME,
    DEFAULT_BASE_URL,
    description="llama.cpp server (OpenAI-compatible /v1 routes; native routes as pure helpers)",
    build_chat_fn=build_chat,
    request_id_headers=("x-request-id",),
    capabilities=frozenset(
        ("chat", "stream", "tools", "json", "embed", "tokenize", "detokenize", "props", "health", "prefill")
    ),
    health_path="/health",
)
