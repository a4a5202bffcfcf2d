"""OPEA (Open Platform for Enterprise AI: GenAIExamples megaservices, GenAIComps microservices): pure, no I/O.

Shapes implemented (checked against the ``opea-comps`` 1.5 wheel's ``comps/cores/proto`` and orchestrator;
older and newer releases differ, so parsers accept both where they diverged):

- Gateways (``PROVIDER``, ``opea_gateway_provider(path, name)``): ``POST /v1/chatqna`` (also ``/v1/codegen``,
  ``/v1/docsum``) with a ``ChatCompletionRequest`` body: ``messages`` (a string, or a list of
  ``{"role", "content"}`` text messages), ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``stream``
  (always sent). DocSum is sent as JSON ``{"type": "text", "messages": "<text>"}`` only (its multipart
  file upload is not supported). Non-stream answer: ``ChatCompletionResponse`` (OpenAI-like; ``usage`` is
  all zeros on real gateways, read as ``None``). Stream: SSE ending with ``data: [DONE]``, whose chunks are
  either Python byte literals ``data: b' token'`` (the 1.x orchestrator's ``token_generator``/
  ``align_generator``) or OpenAI ``chat.completion.chunk`` objects (pass-through servers); both are
  parsed by :class:`OpeaStreamParser` (any other data line is taken as plain text). No tools, no images.
- LLM microservice (``LLM_PROVIDER``): OpenAI ``POST /v1/chat/completions``, streams in either style.
- Embedding ``POST /v1/embeddings``: OpenAI ``{"input"}`` -> ``{"data": [{"embedding"}]}``, or the legacy
  ``{"text"}`` -> ``EmbedDoc`` (``{"text", "embedding"}``): :func:`build_embedding` / :func:`parse_embedding`.
- Retriever ``POST /v1/retrieval``: ``EmbedDoc`` ``{"text", "embedding", "search_type", "k"}`` ->
  ``SearchedDoc`` ``{"retrieved_docs": [{"text"}], "initial_query", "top_n"}`` (``RetrievalResponse``
  ``{"retrieved_docs": [{"text", "metadata"}]}`` also parsed).
- Reranking ``POST /v1/reranking``: ``SearchedDoc`` -> ``LLMParamsDoc`` ``{"query", "documents": [...]}``
  (``RerankingResponse`` ``{"reranked_docs": [{"text", "score"}]}`` also parsed).
- Errors are FastAPI's: ``{"detail": "..."}``, 422 ``{"detail": [{"loc", "msg", "type"}]}``, and a bare
  ``Internal Server Error`` text for unhandled 500s.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import APIStatusError, ConfigurationError
from ..types import (
    ChatRequest,
    ChatResponse,
    EmbedResponse,
    Message,
    StreamEvent,
)
from ._base import Provider, ProviderRequest, decode_json
from ._common import (
    JSON_HEADERS,
    as_int,
    as_str,
    compact,
    floats,
    malformed,
    merge_extra,
    read_error,
    refuse_reasoning_effort,
    status_error,
    text_only,
)
from ._sse import SSEMessage
from .openai import ChatStreamParser, auth_headers, make_openai_compatible, parse_chat, parse_embed

__all__ = [
    "CODEGEN_PROVIDER",
    "DOCSUM_PROVIDER",
    "LLM_PROVIDER",
    "PROVIDER",
    "Doc",
    "OpeaStreamParser",
    "RerankResult",
    "RetrievalResult",
    "build_embedding",
    "build_rerank",
    "build_retrieval",
    "classify_error",
    "opea_gateway_provider",
    "parse_embedding",
    "parse_rerank",
    "parse_retrieval",
]

NAME = "opea"
DEFAULT_BASE_URL = "http://127.0.0.1:8888"
LLM_BASE_URL = "http://127.0.0.1:9000/v1"
MessagesFormat = Literal["auto", "text", "list"]


# --------------------------------------------------------------------------- errors


def classify_error(status: int, headers: Mapping[str, str], body: bytes, *, provider: str = NAME) -> APIStatusError:
    """Typed error from FastAPI bodies (``detail`` string or 422 list) or plain text."""
    parsed, etype, message = read_error(body)
    detail = parsed.get("detail") if isinstance(parsed, Mapping) else None
    if isinstance(detail, list):
        items = [d for d in detail if isinstance(d, Mapping)]
        parts = [f"{'.'.join(str(p) for p in d.get('loc') or [])}: {d.get('msg')}" for d in items]
        etype, message = (as_str(items[0].get("type")) if items else None), "; ".join(parts) or None
    return status_error(status, headers, body, provider=provider, parsed=parsed, error_type=etype, message=message)


# --------------------------------------------------------------------------- gateway chat


def _text(m: Message) -> str:
    return text_only(
        m,
        tools_error="OPEA gateways do not support tool calls",
        images_error="OPEA gateways take text only (no images)",
    )


def _messages(req: ChatRequest, fmt: MessagesFormat) -> str | list[dict[str, str]]:
    if not req.messages:
        raise ConfigurationError("at least one message is required")
    texts = [(m.role, _text(m)) for m in req.messages]
    if fmt == "text" or (fmt == "auto" and len(texts) == 1 and texts[0][0] == "user"):
        return "\n\n".join(t for _, t in texts)
    return [{"role": r, "content": t} for r, t in texts]


def _gateway_builder(path: str, fmt: MessagesFormat, defaults: Mapping[str, Any]) -> Any:
    def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
        if req.tools:
            raise ConfigurationError("OPEA gateways do not support tools")
        if req.response_format is not None:
            raise ConfigurationError("OPEA gateways do not support response_format")
        refuse_reasoning_effort(req, "opea", "OPEA gateways have no reasoning control")
        body: dict[str, Any] = {**defaults, "messages": _messages(req, fmt)}
        body.update(
            compact(
                {
                    "model": model or None,
                    "max_tokens": req.max_tokens,
                    "temperature": req.temperature,
                    "top_p": req.top_p,
                    "stop": list(req.stop) or None,
                    "seed": req.seed,
                }
            )
        )
        body["stream"] = stream
        merge_extra(body, req.extra)
        return ProviderRequest("POST", path, headers=dict(JSON_HEADERS), json=body, stream=stream)

    return build_chat


# --------------------------------------------------------------------------- streaming


class OpeaStreamParser(ChatStreamParser):
    """SSE ended by ``data: [DONE]`` whose data are byte-literal tokens (``data: b'...'``), OpenAI chunks
    (parsed as :class:`.openai.ChatStreamParser` does) or, from some gateway versions, plain-text tokens."""

    PROVIDER = NAME
    INCOMPLETE = "{provider}: stream ended before [DONE]"

    def _data(self, data: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        if data == "[DONE]":
            self._start(out)
            super()._data(data, msg, out)
        elif data.startswith(("b'", 'b"')):
            self._token(self._bytes_literal(data), out)
        elif data.startswith("{"):
            super()._data(data, msg, out)
        else:
            self._token(msg.data, out)  # the raw data: leading spaces are part of the token

    def _token(self, text: str, out: list[StreamEvent]) -> None:
        if text:
            self._start(out)
            self._text_delta(text, out)

    def _bytes_literal(self, data: str) -> str:
        try:
            value = ast.literal_eval(data)
            if not isinstance(value, bytes):
                raise ValueError("not a bytes literal")
            return value.decode("utf-8")
        except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as e:
            raise malformed(self.provider, f"bad byte-literal stream chunk ({e}): {data[:200]!r}", data[:200]) from e


def _gateway_parse(name: str) -> Any:
    def parse(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
        resp = parse_chat(body, headers, provider=name)
        usage = resp.usage
        if usage is not None and usage.input_tokens == 0 and usage.output_tokens == 0:
            resp = dataclasses.replace(resp, usage=None)  # gateways report zeros, not counts
        return resp

    return parse


def opea_gateway_provider(
    path: str = "/v1/chatqna",
    name: str = NAME,
    *,
    messages_format: MessagesFormat = "auto",
    defaults: Mapping[str, Any] | None = None,
    default_base_url: str = DEFAULT_BASE_URL,
) -> Provider:
    """A provider for one OPEA megaservice gateway route (ChatQnA, CodeGen, DocSum, ...)."""
    if not path.startswith("/"):
        raise ConfigurationError(f"gateway path must start with '/': {path!r}")

    def _classify(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
        return classify_error(status, headers, body, provider=name)

    return Provider(
        name=name,
        default_base_url=default_base_url,
        build_chat=_gateway_builder(path, messages_format, defaults or {}),
        parse_chat=_gateway_parse(name),
        new_stream_parser=lambda: OpeaStreamParser(name),
        classify_error=_classify,
        auth_headers=auth_headers,
        request_id_headers=("x-request-id",),
        capabilities=frozenset(("chat", "stream")),
        description=f"OPEA megaservice gateway POST {path}",
    )


# --------------------------------------------------------------------------- microservices


def build_embedding(
    texts: str | Sequence[str], *, model: str | None = None, dimensions: int | None = None, legacy: bool = False
) -> ProviderRequest:
    """``POST /v1/embeddings``: OpenAI ``{"input"}``, or the legacy ``TextDoc`` ``{"text"}``."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items or not all(isinstance(t, str) and t for t in items):
        raise ConfigurationError("embedding input must be one or more non-empty strings")
    body: dict[str, Any]
    if legacy:
        body = {"text": items[0] if isinstance(texts, str) else items}
    else:
        body = compact({"input": items, "model": model, "dimensions": dimensions, "encoding_format": "float"})
    return ProviderRequest("POST", "/v1/embeddings", headers=dict(JSON_HEADERS), json=body)


def parse_embedding(body: bytes, headers: Mapping[str, str]) -> EmbedResponse:
    """OpenAI embedding list, or an ``EmbedDoc`` (one vector or a list of them)."""
    data = decode_json(body, headers, provider=NAME, what="embedding response")
    if isinstance(data, Mapping) and "data" in data:
        return parse_embed(body, headers, provider=NAME)
    emb = data.get("embedding") if isinstance(data, Mapping) else None
    vectors: list[Any] = emb if isinstance(emb, list) and emb and isinstance(emb[0], list) else [emb]
    out = [floats(v) for v in vectors]
    if not all(v is not None for v in out):
        raise malformed(NAME, "embedding response has neither 'data' nor an 'embedding' list", data)
    return EmbedResponse(vectors=tuple(v for v in out if v is not None), provider=NAME, raw=data)


@dataclass(frozen=True, slots=True)
class Doc:
    text: str
    id: str | None = None
    score: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _docs(raw: Any, what: str) -> tuple[Doc, ...]:
    if not isinstance(raw, list):
        raise malformed(NAME, f"{what} is not a list", raw)
    out = []
    for d in raw:
        if isinstance(d, str):
            out.append(Doc(d))
        elif isinstance(d, Mapping) and isinstance(d.get("text"), str):
            score = d.get("score")
            meta = d.get("metadata")
            out.append(
                Doc(
                    d["text"],
                    as_str(d.get("id")),
                    float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                    meta if isinstance(meta, Mapping) else {},
                )
            )
        else:
            raise malformed(NAME, f"{what} entry has no 'text': {d!r}", raw)
    return tuple(out)


def build_retrieval(
    text: str,
    embedding: Sequence[float],
    *,
    k: int = 4,
    search_type: str = "similarity",
    extra: Mapping[str, Any] | None = None,
) -> ProviderRequest:
    """``POST /v1/retrieval`` with an ``EmbedDoc`` (the query text and its embedding)."""
    if not text:
        raise ConfigurationError("retrieval needs the query text")
    if not embedding or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in embedding):
        raise ConfigurationError("retrieval needs a non-empty embedding of numbers")
    if k < 1:
        raise ConfigurationError("k must be >= 1")
    body = {"text": text, "embedding": [float(x) for x in embedding], "search_type": search_type, "k": k}
    merge_extra(body, extra or {})
    return ProviderRequest("POST", "/v1/retrieval", headers=dict(JSON_HEADERS), json=body)


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    docs: tuple[Doc, ...]
    initial_query: str | None = None
    top_n: int | None = None
    raw: Any = None


def parse_retrieval(body: bytes, headers: Mapping[str, str]) -> RetrievalResult:
    data = decode_json(body, headers, provider=NAME, what="retrieval response")
    if not isinstance(data, Mapping) or "retrieved_docs" not in data:
        raise malformed(NAME, "retrieval response has no 'retrieved_docs'", data)
    top_n = data.get("top_n")
    return RetrievalResult(
        _docs(data["retrieved_docs"], "retrieved_docs"),
        as_str(data.get("initial_query")),
        as_int(top_n) if top_n is not None else None,
        data,
    )


def build_rerank(query: str, docs: Sequence[str | Doc], *, top_n: int = 1) -> ProviderRequest:
    """``POST /v1/reranking`` with a ``SearchedDoc``."""
    if not query or not docs:
        raise ConfigurationError("reranking needs a query and at least one document")
    if top_n < 1:
        raise ConfigurationError("top_n must be >= 1")
    items = [{"text": d.text if isinstance(d, Doc) else d} for d in docs]
    body = {"initial_query": query, "retrieved_docs": items, "top_n": top_n}
    return ProviderRequest("POST", "/v1/reranking", headers=dict(JSON_HEADERS), json=body)


@dataclass(frozen=True, slots=True)
class RerankResult:
    query: str | None
    docs: tuple[Doc, ...]
    raw: Any = None


def parse_rerank(body: bytes, headers: Mapping[str, str]) -> RerankResult:
    """``LLMParamsDoc`` (``query`` + ``documents``; old releases: a prompt in ``query`` and no documents) or
    ``RerankingResponse`` (``reranked_docs`` with scores)."""
    data = decode_json(body, headers, provider=NAME, what="reranking response")
    if isinstance(data, Mapping) and "reranked_docs" in data:
        return RerankResult(as_str(data.get("initial_query")), _docs(data["reranked_docs"], "reranked_docs"), data)
    if isinstance(data, Mapping) and isinstance(data.get("query"), str):
        return RerankResult(data["query"], _docs(data.get("documents") or [], "documents"), data)
    raise malformed(NAME, "reranking response has neither 'reranked_docs' nor 'query'", data)


PROVIDER: Provider = opea_gateway_provider("/v1/chatqna", NAME)
CODEGEN_PROVIDER: Provider = opea_gateway_provider(
    "/v1/codegen", "opea_codegen", messages_format="text", default_base_url="http://127.0.0.1:7778"
)
DOCSUM_PROVIDER: Provider = opea_gateway_provider(
    "/v1/docsum", "opea_docsum", messages_format="text", defaults={"type": "text"}
)
LLM_PROVIDER: Provider = dataclasses.replace(
    make_openai_compatible(
        "opea_llm",
        LLM_BASE_URL,
        description="OPEA LLM text-generation microservice (OpenAI-compatible /v1/chat/completions)",
        request_id_headers=("x-request-id",),
        capabilities=frozenset(("chat", "stream", "tools", "json")),
        embeddings=False,
    ),
    new_stream_parser=lambda: OpeaStreamParser("opea_llm"),
    classify_error=lambda status, headers, body: classify_error(status, headers, body, provider="opea_llm"),
)
