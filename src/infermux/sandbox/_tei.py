"""Hugging Face text-embeddings-inference (TEI) emulator: ``/embed`` (and ``/``), ``/embed_sparse``,
``/embed_all``, ``/rerank``, ``/predict``, ``/similarity``, ``/v1/embeddings``, ``/info``, ``/health``.

Vectors are deterministic and lexical: the L2-normalised sum of one pseudo-random unit vector per lower-cased
word, so texts that share words have a higher cosine. Rerank scores are the query's word overlap; ``/predict``
is a toy sentiment classifier. Shaped like TEI 1.x (router/src/http/server.rs): errors are
``{"error", "error_type"}`` (``Validation`` 413, ``Tokenizer`` 422, ``Backend`` 424, ``Overloaded`` 429,
``Empty`` 400, ``Unhealthy`` 503); a batch above ``max_client_batch_size`` is a 413 ``Validation`` error.
"""

from __future__ import annotations

import math
import re
import secrets
from typing import Any

from infermux.sandbox._model import embed as _word_vector
from infermux.sandbox._server import Backend, Route
from infermux.sandbox._wire import Ctx, Dialect, Reply, register_dialect

__all__ = ["BACKEND", "MAX_CLIENT_BATCH_SIZE", "MODEL_ID", "text_vector"]

MODEL_ID = "BAAI/bge-small-en-v1.5"
VERSION = "1.5.0"
MAX_CLIENT_BATCH_SIZE = 32
MAX_INPUT_LENGTH = 512
_WORD = re.compile(r"[a-z0-9]+")
_TYPES = {400: "Empty", 413: "Validation", 422: "Tokenizer", 424: "Backend", 429: "Overloaded", 503: "Unhealthy"}
_DEFAULT_MSG = {429: "Model is overloaded", 503: "unhealthy", 424: "Backend error", 413: "Input validation error"}
_POSITIVE = frozenset(("good", "great", "love", "excellent", "happy", "nice", "wonderful", "best"))
_NEGATIVE = frozenset(("bad", "terrible", "hate", "awful", "sad", "poor", "worst", "horrible"))


def _error_body(
    status: int, message: str | None, error_type: str | None, _rid: str, _state: dict[str, Any]
) -> tuple[Any, dict[str, str]]:
    if message and message.startswith(("Failed to parse the request body as JSON", "Failed to deserialize")):
        return message, {}  # axum's JsonRejection: text/plain
    etype = error_type or _TYPES.get(status) or ("Backend" if status >= 500 else "Validation")
    return {"error": message or _DEFAULT_MSG.get(status, "Error"), "error_type": etype}, {}


def _base_headers(rid: str, _started: float, _limit: int, _in_flight: int, _state: dict[str, Any]) -> dict[str, str]:
    return {"x-request-id": rid, "x-compute-type": "cpu", "x-compute-time": "1"}


DIALECT = register_dialect(
    Dialect("tei", error_body=_error_body, new_request_id=lambda: secrets.token_urlsafe(16), base_headers=_base_headers)
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def text_vector(text: str, dim: int) -> list[float]:
    """The emulator's embedding: normalised sum of per-word vectors (whole text when it has no words)."""
    words = _words(text) or [text]
    acc = [0.0] * dim
    for w in words:
        for i, v in enumerate(_word_vector(w, dim)):
            acc[i] += v
    norm = math.sqrt(sum(v * v for v in acc)) or 1.0
    return [v / norm for v in acc]


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _inputs(body: Any, ctx: Ctx, key: str = "inputs") -> tuple[list[str], bool]:
    """The list of texts and whether a single string was sent; TEI's validation errors otherwise."""
    if not isinstance(body, dict) or key not in body:
        raise ctx.error(422, f"Failed to deserialize the JSON body into the target type: missing field `{key}`")
    raw = body[key]
    single = isinstance(raw, str)
    texts = [raw] if single else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ctx.error(422, f"Failed to deserialize the JSON body into the target type: {key}: invalid type")
    if not texts:
        raise ctx.error(400, "`inputs` cannot be empty", error_type="Empty")
    if len(texts) > MAX_CLIENT_BATCH_SIZE:
        raise ctx.error(
            413,
            f"batch size {len(texts)} > maximum allowed batch size {MAX_CLIENT_BATCH_SIZE}",
            error_type="Validation",
        )
    for t in texts:
        if not t:
            raise ctx.error(400, "`inputs` cannot be empty", error_type="Empty")
        if len(t.split()) > MAX_INPUT_LENGTH and not body.get("truncate"):
            raise ctx.error(
                413,
                f"`inputs` must have less than {MAX_INPUT_LENGTH} tokens. Given: {len(t.split())}",
                error_type="Validation",
            )
    return texts, single


def _dim(body: dict[str, Any], ctx: Ctx) -> int:
    dim = body.get("dimensions")
    if dim is None:
        return ctx.embedding_dim
    if not isinstance(dim, int) or isinstance(dim, bool) or not 0 < dim <= ctx.embedding_dim:
        raise ctx.error(413, f"`dimensions` must be between 1 and {ctx.embedding_dim}", error_type="Validation")
    return dim


def embed_route(body: Any, ctx: Ctx) -> Reply:
    """POST /embed (and POST / for an embedding model): ``[[float, ...], ...]``."""
    texts, _single = _inputs(body, ctx)
    dim = _dim(body, ctx)
    normalize = body.get("normalize", True) is not False
    out = []
    for t in texts:
        vec = text_vector(t, ctx.embedding_dim)[:dim]
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        scale = (1.0 / norm) if normalize else (1.0 + len(t) % 7)
        out.append([v * scale for v in vec])
    reply = ctx.json(out)
    reply.headers["x-compute-tokens"] = str(sum(len(_words(t)) or 1 for t in texts))
    return reply


def embed_sparse_route(body: Any, ctx: Ctx) -> Reply:
    """POST /embed_sparse: one ``{"index", "value"}`` per distinct word (SPLADE-like weights)."""
    texts, _single = _inputs(body, ctx)
    out = []
    for t in texts:
        counts: dict[int, int] = {}
        for w in _words(t):
            idx = int.from_bytes(w.encode()[:4].ljust(4, b"\0"), "little") % 30522
            counts[idx] = counts.get(idx, 0) + 1
        out.append([{"index": i, "value": round(math.log1p(c), 6)} for i, c in sorted(counts.items())])
    return ctx.json(out)


def embed_all_route(body: Any, ctx: Ctx) -> Reply:
    """POST /embed_all: one vector per token (word), not pooled."""
    texts, _single = _inputs(body, ctx)
    return ctx.json([[text_vector(w, ctx.embedding_dim) for w in (_words(t) or [t])] for t in texts])


def similarity_route(body: Any, ctx: Ctx) -> Reply:
    """POST /similarity ``{"inputs": {"source_sentence", "sentences"}}``: cosine per sentence."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, dict) or not isinstance(inputs.get("source_sentence"), str):
        raise ctx.error(422, "Failed to deserialize the JSON body into the target type: inputs: missing field")
    sentences, _single = _inputs(inputs, ctx, "sentences")
    src = text_vector(inputs["source_sentence"], ctx.embedding_dim)
    return ctx.json([round(_cosine(src, text_vector(s, ctx.embedding_dim)), 6) for s in sentences])


def rerank_route(body: Any, ctx: Ctx) -> Reply:
    """POST /rerank: score = the share of the query's words found in the text; best first."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise ctx.error(422, "Failed to deserialize the JSON body into the target type: missing field `query`")
    texts, _single = _inputs(body, ctx, "texts")
    query = set(_words(body["query"]))
    raw = body.get("raw_scores") is True
    out = []
    for i, t in enumerate(texts):
        share = len(query & set(_words(t))) / (len(query) or 1)
        logit = 8.0 * share - 4.0
        item: dict[str, Any] = {"index": i, "score": logit if raw else 1.0 / (1.0 + math.exp(-logit))}
        if body.get("return_text"):
            item["text"] = t
        out.append(item)
    out.sort(key=lambda r: (-r["score"], r["index"]))
    return ctx.json(out)


def _classify(text: str, raw: bool) -> list[dict[str, Any]]:
    words = _words(text)
    logit = float(sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words))
    pos = 1.0 / (1.0 + math.exp(-logit))
    scores = {"POSITIVE": logit if raw else pos, "NEGATIVE": -logit if raw else 1.0 - pos}
    return [{"score": s, "label": lab} for lab, s in sorted(scores.items(), key=lambda kv: -kv[1])]


def predict_route(body: Any, ctx: Ctx) -> Reply:
    """POST /predict: a text or a ``[text, pair]`` gives a flat list; a batch gives one list per item."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    raw = isinstance(body, dict) and body.get("raw_scores") is True

    def seq(item: Any) -> str:
        if isinstance(item, str) and item:
            return item
        if isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item):
            return " ".join(item)
        raise ctx.error(422, "Failed to deserialize the JSON body into the target type: inputs: invalid type")

    if isinstance(inputs, str) or (
        isinstance(inputs, list) and len(inputs) == 2 and all(isinstance(s, str) for s in inputs)
    ):
        return ctx.json(_classify(seq(inputs), raw))
    if not isinstance(inputs, list) or not inputs:
        raise ctx.error(422, "Failed to deserialize the JSON body into the target type: missing field `inputs`")
    if len(inputs) > MAX_CLIENT_BATCH_SIZE:
        raise ctx.error(
            413,
            f"batch size {len(inputs)} > maximum allowed batch size {MAX_CLIENT_BATCH_SIZE}",
            error_type="Validation",
        )
    return ctx.json([_classify(seq(i), raw) for i in inputs])


def openai_embeddings_route(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/embeddings (OpenAI-compatible; ``model`` is optional and echoed as the served model id)."""
    texts, _single = _inputs(body, ctx, "input")
    dim = _dim(body, ctx)
    data = [
        {"object": "embedding", "embedding": text_vector(t, ctx.embedding_dim)[:dim], "index": i}
        for i, t in enumerate(texts)
    ]
    tokens = sum(len(_words(t)) or 1 for t in texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return ctx.json({"object": "list", "data": data, "model": MODEL_ID, "usage": usage})


def info_route(_body: Any, ctx: Ctx) -> Reply:
    """GET /info."""
    return ctx.json(
        {
            "model_id": MODEL_ID,
            "model_sha": "5c38ec7c405ec4b44b94cc5a9bb96e735b38267a",
            "model_dtype": "float32",
            "model_type": {"embedding": {"pooling": "cls"}},
            "max_concurrent_requests": 512,
            "max_input_length": MAX_INPUT_LENGTH,
            "max_batch_tokens": 16384,
            "max_batch_requests": None,
            "max_client_batch_size": MAX_CLIENT_BATCH_SIZE,
            "auto_truncate": False,
            "tokenization_workers": 4,
            "version": VERSION,
            "sha": "a" * 40,
            "docker_label": "sha-" + "a" * 7,
        }
    )


def health_route(_body: Any, ctx: Ctx) -> Reply:
    """GET /health: 200 with an empty body."""
    return ctx.json("")


BACKEND = Backend(
    "tei",
    "tei",
    routes=(
        Route("POST", "/embed", embed_route),
        Route("POST", "/", embed_route),
        Route("POST", "/embed_sparse", embed_sparse_route),
        Route("POST", "/embed_all", embed_all_route),
        Route("POST", "/rerank", rerank_route),
        Route("POST", "/predict", predict_route),
        Route("POST", "/similarity", similarity_route),
        Route("POST", "/v1/embeddings", openai_embeddings_route),
        Route("GET", "/info", info_route, with_body=False),
        Route("GET", "/health", health_route, with_body=False),
    ),
)
