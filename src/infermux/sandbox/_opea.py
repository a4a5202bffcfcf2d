"""OPEA emulator: ChatQnA/CodeGen/DocSum megaservice gateways and the embedding, retriever, reranking and
LLM microservices, all on one port (real deployments put each on its own).

Streams end with ``data: [DONE]``; their chunks are OpenAI ``chat.completion.chunk`` objects by default, or
the 1.x orchestrator's byte literals (``data: b' token'``) when the server is configured with
``sandbox.configure_backend("opea", stream_style="bytes")`` or the request sends ``x-opea-stream-style: bytes``.
Errors are FastAPI's:
``{"detail": "..."}``, 422 ``{"detail": [{"type", "loc", "msg", "input"}]}``, plain-text 500.
The retriever searches a small in-memory corpus (:data:`CORPUS`) by cosine similarity of the sandbox's
deterministic embeddings, so a query equal to a document finds it first; reranking scores word overlap.

Do not combine with the built-in ``openai`` backend in one sandbox (both serve ``/v1/chat/completions``).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from infermux.errors import ConfigurationError
from infermux.sandbox import _openai
from infermux.sandbox._model import Conversation, Generation, embed, generate
from infermux.sandbox._server import Backend, Route
from infermux.sandbox._wire import Ctx, Dialect, JsonReply, ProtocolError, Reply, dumps, register_dialect, server_state

__all__ = ["BACKEND", "CORPUS", "OpeaState", "configure"]

CORPUS = (
    "OPEA is the Open Platform for Enterprise AI, a Linux Foundation project.",
    "ChatQnA is a retrieval-augmented chatbot built from OPEA microservices.",
    "The retriever microservice searches a vector database for similar documents.",
    "The reranking microservice orders retrieved documents by relevance to the question.",
    "Text generation inference serves large language models over HTTP.",
    "Intel Gaudi accelerators run deep learning training and inference.",
)
_DEFAULT_LLM = "Intel/neural-chat-7b-v3-3"


def _error_body(
    status: int, message: str | None, _type: str | None, _rid: str, _state: dict[str, Any]
) -> tuple[Any, dict[str, str]]:
    if status == 500 and message is None:
        return "Internal Server Error", {}
    if status == 422 and message is None:
        return {"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]}, {}
    return {"detail": message or {404: "Not Found", 429: "Too Many Requests"}.get(status, "Error")}, {}


register_dialect(Dialect("opea", error_body=_error_body, base_headers=lambda rid, started, limit, in_flight, state: {}))


@dataclass
class OpeaState:
    """One server's settings: the default stream style and the retriever's corpus."""

    stream_style: str = "openai"
    corpus: tuple[str, ...] = CORPUS


def _state(ctx: Ctx) -> OpeaState:
    return server_state(ctx.state, "opea", OpeaState)


def configure(state: dict[str, Any], *, stream_style: str | None = None, corpus: Iterable[str] | None = None) -> None:
    """``configure_backend("opea", ...)``: the default stream style (``"openai"``, the default, or ``"bytes"``)
    and the retriever corpus (default :data:`CORPUS`). Omitted options keep their current values."""
    if stream_style is not None and stream_style not in ("openai", "bytes"):
        raise ConfigurationError(f"opea stream_style must be 'openai' or 'bytes', got {stream_style!r}")
    docs: tuple[str, ...] | None = None
    if corpus is not None:
        if isinstance(corpus, (str, bytes)) or not isinstance(corpus, Iterable):
            raise ConfigurationError("opea corpus must be a list of documents (strings)")
        docs = tuple(corpus)
        if not docs or not all(isinstance(d, str) and d for d in docs):
            raise ConfigurationError("opea corpus must be a non-empty list of non-empty strings")
    st = server_state(state, "opea", OpeaState)
    if stream_style is not None:
        st.stream_style = stream_style
    if docs is not None:
        st.corpus = docs


def _invalid(ctx: Ctx, errors: list[dict[str, Any]]) -> ProtocolError:
    return ProtocolError(JsonReply(422, {"detail": errors}, dict(ctx.headers)))


def _missing(ctx: Ctx, body: Any, *fields: str) -> ProtocolError:
    return _invalid(
        ctx, [{"type": "missing", "loc": ["body", f], "msg": "Field required", "input": body} for f in fields]
    )


def _object(body: Any, ctx: Ctx) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid(
            ctx, [{"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary"}]
        )
    return body


def _conversation(body: dict[str, Any], ctx: Ctx, model: str) -> Conversation:
    msgs = body.get("messages")
    if msgs is None:
        raise _missing(ctx, body, "messages")
    conv = Conversation(model=model)
    if isinstance(msgs, str):
        msgs = [{"role": "user", "content": msgs}]
    if not isinstance(msgs, list) or not msgs:
        raise _invalid(
            ctx, [{"type": "string_type", "loc": ["body", "messages"], "msg": "Input should be a valid string"}]
        )
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise _invalid(
                ctx, [{"type": "string_type", "loc": ["body", "messages", i], "msg": "Input should be a valid string"}]
            )
        if m["role"] == "system":
            conv.system = f"{conv.system} {m['content']}".strip()
        else:
            conv.messages.append((m["role"], m["content"]))
    if conv.messages and conv.messages[-1][0] == "user":
        conv.last_user_text = conv.messages[-1][1]
    limit = body.get("max_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _invalid(
            ctx, [{"type": "greater_than", "loc": ["body", "max_tokens"], "msg": "Input should be greater than 0"}]
        )
    conv.max_tokens = limit
    stop = body.get("stop")
    conv.stop = (
        [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []
    )
    return conv


def _style(ctx: Ctx) -> str:
    style = ctx.request_headers.get("x-opea-stream-style", _state(ctx).stream_style)
    return style if style in ("openai", "bytes") else "openai"


def _stream(gen: Generation, model: str, ctx: Ctx) -> Reply:
    finish = "length" if gen.finish == "length" else "stop"
    if _style(ctx) == "bytes":
        events: list[tuple[str | None, str]] = [(None, repr(p.encode("utf-8"))) for p in gen.pieces]
    else:
        base = {"id": "chatcmpl-" + secrets.token_hex(11), "object": "chat.completion.chunk", "created": ctx.created}
        base["model"] = model

        def chunk(delta: dict[str, Any], fin: str | None = None) -> tuple[str | None, str]:
            return None, dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]})

        events = [chunk({"role": "assistant", "content": p}) for p in gen.pieces]
        events.append(chunk({}, finish))
    events.append((None, "[DONE]"))
    return ctx.stream(events)


def _gateway(name: str, *, text_only: bool = False) -> Any:
    def handler(body: Any, ctx: Ctx) -> Reply:
        body = _object(body, ctx)
        if text_only and body.get("type") not in (None, "text"):
            raise ctx.error(400, f"{name}: only 'type': 'text' JSON requests are supported here")
        conv = _conversation(body, ctx, name)
        gen = generate(conv, ctx.responder)
        if body.get("stream", True):
            return _stream(gen, name, ctx)
        return ctx.json(
            {
                "id": "chatcmpl-" + secrets.token_hex(11),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": gen.text, "audio": None},
                        "finish_reason": "length" if gen.finish == "length" else "stop",
                        "metadata": None,
                    }
                ],
                "usage": {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0},
            }
        )

    return handler


def llm_chat(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/chat/completions (the LLM microservice): OpenAI-compatible; ``messages`` may be a string."""
    body = dict(_object(body, ctx))
    if isinstance(body.get("messages"), str):
        body["messages"] = [{"role": "user", "content": body["messages"]}]
    if "messages" not in body:
        raise _missing(ctx, body, "messages")
    body["model"] = body.get("model") or _DEFAULT_LLM
    if body.get("stream") and _style(ctx) == "bytes":
        conv = _conversation(body, ctx, body["model"])
        return _stream(generate(conv, ctx.responder), body["model"], ctx)
    return _openai.chat_completions(body, ctx)


def embeddings(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/embeddings: OpenAI ``{"input"}``, or the legacy ``{"text"}`` answered with an EmbedDoc."""
    body = _object(body, ctx)
    if "input" in body:
        return _openai.embeddings({**body, "model": body.get("model") or "BAAI/bge-base-en-v1.5"}, ctx)
    text = body.get("text")
    if text is None:
        raise _missing(ctx, body, "input")
    if not isinstance(text, (str, list)) or not text:
        raise _invalid(ctx, [{"type": "string_type", "loc": ["body", "text"], "msg": "Input should be a valid string"}])
    vec: Any = [embed(t, ctx.embedding_dim) for t in text] if isinstance(text, list) else embed(text, ctx.embedding_dim)
    doc = {"id": secrets.token_hex(16), "text": text, "embedding": vec, "search_type": "similarity", "k": 4}
    doc.update({"distance_threshold": None, "fetch_k": 20, "lambda_mult": 0.5, "score_threshold": 0.2})
    return ctx.json(doc)


def retrieval(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/retrieval: EmbedDoc -> SearchedDoc; RetrievalRequest (``input``) -> RetrievalResponse."""
    body = _object(body, ctx)
    emb = body.get("embedding")
    if isinstance(emb, dict) and isinstance(emb.get("data"), list) and emb["data"]:
        emb = emb["data"][0].get("embedding")
    if emb is None:
        raise _missing(ctx, body, "embedding")
    if not isinstance(emb, list) or not emb or not all(isinstance(x, (int, float)) for x in emb):
        raise _invalid(
            ctx, [{"type": "list_type", "loc": ["body", "embedding"], "msg": "Input should be a valid list"}]
        )
    k = body.get("k", 4)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise _invalid(ctx, [{"type": "greater_than", "loc": ["body", "k"], "msg": "Input should be greater than 0"}])
    corpus = _state(ctx).corpus
    scored = sorted(
        ((sum(a * b for a, b in zip(emb, embed(doc, len(emb)), strict=True)), i) for i, doc in enumerate(corpus)),
        key=lambda p: (-p[0], p[1]),
    )[:k]
    if "text" in body:
        docs = [{"id": secrets.token_hex(16), "text": corpus[i], "downstream_black_list": []} for _, i in scored]
        return ctx.json(
            {"id": secrets.token_hex(16), "retrieved_docs": docs, "initial_query": body["text"], "top_n": 1}
        )
    return ctx.json({"retrieved_docs": [{"text": corpus[i], "metadata": {"score": s}} for s, i in scored]})


_WORD = re.compile(r"\w+")


def _overlap(query: str, text: str) -> float:
    q, t = set(_WORD.findall(query.lower())), set(_WORD.findall(text.lower()))
    return len(q & t) / len(q | t) if q | t else 0.0


def reranking(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/reranking: SearchedDoc -> LLMParamsDoc (``documents``); RerankingRequest -> reranked_docs."""
    body = _object(body, ctx)
    query = body.get("initial_query", body.get("input"))
    docs = body.get("retrieved_docs")
    if not isinstance(query, str) or docs is None:
        raise _missing(ctx, body, *(f for f in ("initial_query", "retrieved_docs") if f not in body))
    texts = [d if isinstance(d, str) else d.get("text") if isinstance(d, dict) else None for d in docs or []]
    if not isinstance(docs, list) or not all(isinstance(t, str) for t in texts):
        raise _invalid(ctx, [{"type": "missing", "loc": ["body", "retrieved_docs"], "msg": "Field required"}])
    top_n = body.get("top_n", 1)
    if not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1:
        raise _invalid(
            ctx, [{"type": "greater_than", "loc": ["body", "top_n"], "msg": "Input should be greater than 0"}]
        )
    ranked = sorted(((_overlap(query, t), i, t) for i, t in enumerate(texts) if t), key=lambda p: (-p[0], p[1]))[:top_n]
    if "initial_query" in body:
        doc: dict[str, Any] = {"id": secrets.token_hex(16), "model": None, "query": query, "max_tokens": 1024}
        doc.update(
            {"top_k": 10, "top_p": 0.95, "temperature": 0.01, "stream": True, "documents": [t for _, _, t in ranked]}
        )
        return ctx.json(doc)
    return ctx.json({"reranked_docs": [{"text": t, "score": s} for s, _, t in ranked]})


BACKEND = Backend(
    "opea",
    "opea",
    routes=(
        Route("POST", "/v1/chatqna", _gateway("chatqna")),
        Route("POST", "/v1/codegen", _gateway("codegen")),
        Route("POST", "/v1/docsum", _gateway("docsum", text_only=True)),
        Route("POST", "/v1/chat/completions", llm_chat),
        Route("POST", "/v1/embeddings", embeddings),
        Route("POST", "/v1/retrieval", retrieval),
        Route("POST", "/v1/reranking", reranking),
    ),
    state=OpeaState,
    configure=configure,
)
