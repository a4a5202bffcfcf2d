"""Hugging Face text-embeddings-inference (TEI): pure wire translation, no I/O.

``PROVIDER`` (``"tei"``) embeds through the native ``POST /embed`` (``Endpoint.embed``; base URL = the server
root). The other native routes are ``build_x``/``parse_x`` pairs for ``Endpoint.call``: ``/embed_sparse``,
``/embed_all``, ``/rerank`` (typed :class:`RerankResult`), ``/predict`` (:class:`Prediction`),
``/similarity``, ``/info`` (:class:`TEIInfo`), ``/health``, and the OpenAI-compatible ``/v1/embeddings``
(:func:`build_openai_embed`, same endpoint). TEI does not chat: ``build_chat`` raises ``ConfigurationError``.

Errors are ``{"error", "error_type"}`` with ``Validation`` (413, e.g. a batch above
``max_client_batch_size``), ``Tokenizer`` (422), ``Backend`` (424), ``Overloaded`` (429), ``Empty`` (400),
``Unhealthy`` (503).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from ..errors import APIStatusError, ConfigurationError
from ..types import ChatRequest, EmbedRequest, EmbedResponse
from ._base import Provider, ProviderRequest, decode_json, first_header
from ._common import (
    JSON_HEADERS,
    as_str,
    bearer_auth,
    compact,
    floats,
    malformed,
    merge_extra,
    opt_int,
    read_error,
    status_error,
)
from .openai import build_embed as _openai_build_embed
from .openai import parse_embed as _openai_parse_embed

__all__ = [
    "PROVIDER",
    "Prediction",
    "RerankResult",
    "TEIInfo",
    "build_embed",
    "build_embed_all",
    "build_embed_sparse",
    "build_health",
    "build_info",
    "build_openai_embed",
    "build_predict",
    "build_rerank",
    "build_similarity",
    "classify_error",
    "parse_embed",
    "parse_embed_all",
    "parse_embed_sparse",
    "parse_info",
    "parse_openai_embed",
    "parse_predict",
    "parse_rerank",
    "parse_similarity",
]

NAME = "tei"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
REQUEST_ID_HEADERS = ("x-request-id", "x-inference-id")
Direction = Literal["Right", "Left"]


def _texts(inputs: Sequence[str] | str, what: str) -> list[str]:
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    if not items or not all(isinstance(t, str) and t for t in items):
        raise ConfigurationError(f"TEI {what}: inputs must be one or more non-empty strings")
    return items


# --------------------------------------------------------------------------- /embed


def build_embed(req: EmbedRequest, model: str) -> ProviderRequest:
    """``POST /embed`` ``{"inputs": [...], "normalize": true}``; ``dimensions`` (Matryoshka) when set;
    ``req.extra`` adds ``truncate``, ``truncation_direction``, ``prompt_name``... (``model`` is not sent:
    one TEI server serves one model)."""
    body: dict[str, Any] = {"inputs": list(req.inputs), "normalize": True}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    merge_extra(body, req.extra)
    return ProviderRequest("POST", "/embed", headers=dict(JSON_HEADERS), json=body)


def _mean_pool(tokens: Any) -> tuple[float, ...] | None:
    """The mean of per-token vectors (``[[float, ...], ...]``, all the same length), else ``None``."""
    rows = [floats(t) for t in tokens] if isinstance(tokens, list) and tokens else []
    if not rows or not all(rows) or len({len(r) for r in rows if r}) != 1:
        return None
    vecs = [r for r in rows if r]
    return tuple(sum(col) / len(vecs) for col in zip(*vecs, strict=True))


def _matrix(data: Any, what: str) -> tuple[tuple[float, ...], ...]:
    one = floats(data)
    if one:  # one input as a bare vector (HF Inference API feature-extraction)
        return (one,)
    rows = [floats(v) for v in data] if isinstance(data, list) and data else []
    if rows and all(rows):
        return tuple(r for r in rows if r)
    pooled = [_mean_pool(v) for v in data] if isinstance(data, list) and data else []
    if pooled and all(pooled):  # token-level models: per input, one vector per token -> mean pooled
        return tuple(p for p in pooled if p)
    raise malformed(NAME, f"{what} answer is not a list of number lists", data)


def parse_embed(body: bytes, headers: Mapping[str, str]) -> EmbedResponse:
    """One vector per input, in order, from each shape TEI and the HF Inference API feature-extraction
    task answer with: ``[[float, ...], ...]`` (a vector per input); a bare ``[float, ...]`` (one input);
    ``[[[float, ...], ...], ...]`` (a token-level model: a vector per token of each input), mean-pooled
    per input (the sentence-transformers default; call ``/embed_all`` via :func:`parse_embed_all` to
    keep the token vectors)."""
    data = decode_json(body, headers, provider=NAME, what="embed response")
    return EmbedResponse(
        vectors=_matrix(data, "/embed"),
        provider=NAME,
        provider_request_id=first_header(headers, REQUEST_ID_HEADERS),
        raw=data,
    )


def build_openai_embed(req: EmbedRequest, model: str) -> ProviderRequest:
    """The OpenAI-compatible ``POST /v1/embeddings`` on the same (root) base URL."""
    preq = _openai_build_embed(req, model)
    preq.path = "/v1/embeddings"
    return preq


def parse_openai_embed(body: bytes, headers: Mapping[str, str]) -> EmbedResponse:
    return _openai_parse_embed(body, headers, provider=NAME)


def build_embed_sparse(inputs: Sequence[str] | str, *, truncate: bool | None = None) -> ProviderRequest:
    body = compact({"inputs": _texts(inputs, "embed_sparse"), "truncate": truncate})
    return ProviderRequest("POST", "/embed_sparse", headers=dict(JSON_HEADERS), json=body)


def parse_embed_sparse(body: bytes, headers: Mapping[str, str]) -> list[dict[int, float]]:
    """``[[{"index", "value"}, ...], ...]`` as one ``{index: value}`` dict per input."""
    data = decode_json(body, headers, provider=NAME, what="embed_sparse response")
    if not isinstance(data, list):
        raise malformed(NAME, "/embed_sparse answer is not a list", data)
    out: list[dict[int, float]] = []
    for row in data:
        if not isinstance(row, list):
            raise malformed(NAME, "/embed_sparse answer row is not a list", data)
        vec: dict[int, float] = {}
        for e in row:
            idx, val = (e.get("index"), e.get("value")) if isinstance(e, Mapping) else (None, None)
            if not isinstance(idx, int) or isinstance(idx, bool) or not isinstance(val, (int, float)):
                raise malformed(NAME, f"/embed_sparse entry is not {{index, value}}: {e!r}", data)
            vec[idx] = float(val)
        out.append(vec)
    return out


def build_embed_all(inputs: Sequence[str] | str, *, truncate: bool | None = None) -> ProviderRequest:
    body = compact({"inputs": _texts(inputs, "embed_all"), "truncate": truncate})
    return ProviderRequest("POST", "/embed_all", headers=dict(JSON_HEADERS), json=body)


def parse_embed_all(body: bytes, headers: Mapping[str, str]) -> list[list[tuple[float, ...]]]:
    """Token-level vectors: one matrix (tokens x dims) per input."""
    data = decode_json(body, headers, provider=NAME, what="embed_all response")
    if not isinstance(data, list) or not data:
        raise malformed(NAME, "/embed_all answer is not a non-empty list", data)
    return [list(_matrix(m, "/embed_all")) for m in data]


# --------------------------------------------------------------------------- /rerank /predict /similarity


@dataclass(frozen=True, slots=True)
class RerankResult:
    index: int
    score: float
    text: str | None = None


def build_rerank(
    query: str,
    texts: Sequence[str],
    *,
    raw_scores: bool = False,
    return_text: bool = False,
    truncate: bool | None = None,
    truncation_direction: Direction | None = None,
) -> ProviderRequest:
    if not isinstance(query, str) or not query:
        raise ConfigurationError("TEI rerank: query must be a non-empty string")
    body = compact(
        {
            "query": query,
            "texts": _texts(texts, "rerank"),
            "raw_scores": raw_scores,
            "return_text": return_text,
            "truncate": truncate,
            "truncation_direction": truncation_direction,
        }
    )
    return ProviderRequest("POST", "/rerank", headers=dict(JSON_HEADERS), json=body)


def parse_rerank(body: bytes, headers: Mapping[str, str]) -> list[RerankResult]:
    """``[{"index", "score", "text"?}]``, returned sorted by score, best first."""
    data = decode_json(body, headers, provider=NAME, what="rerank response")
    if not isinstance(data, list):
        raise malformed(NAME, "/rerank answer is not a list", data)
    out: list[RerankResult] = []
    for r in data:
        idx, score = (r.get("index"), r.get("score")) if isinstance(r, Mapping) else (None, None)
        if not isinstance(idx, int) or isinstance(idx, bool) or not isinstance(score, (int, float)):
            raise malformed(NAME, f"/rerank item is not {{index, score}}: {r!r}", data)
        out.append(RerankResult(idx, float(score), as_str(r.get("text"))))
    return sorted(out, key=lambda r: (-r.score, r.index))


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    score: float


def build_predict(
    inputs: str | Sequence[str] | Sequence[Sequence[str]], *, raw_scores: bool = False, truncate: bool | None = None
) -> ProviderRequest:
    """``POST /predict``: a text, a ``[text, text_pair]``, or a batch of either. As in TEI itself, a list of
    exactly two strings is read as ONE pair: classify two single texts as a batch of pairs or separately."""
    if not inputs or (not isinstance(inputs, str) and not all(isinstance(i, (str, list, tuple)) for i in inputs)):
        raise ConfigurationError("TEI predict: inputs must be a text, a pair of texts, or a list of those")
    wire: Any = inputs if isinstance(inputs, str) else [i if isinstance(i, str) else list(i) for i in inputs]
    body = compact({"inputs": wire, "raw_scores": raw_scores, "truncate": truncate})
    return ProviderRequest("POST", "/predict", headers=dict(JSON_HEADERS), json=body)


def _predictions(row: Any, data: Any) -> list[Prediction]:
    out = []
    for p in row:
        if (
            not isinstance(p, Mapping)
            or not isinstance(p.get("label"), str)
            or not isinstance(p.get("score"), (int, float))
        ):
            raise malformed(NAME, f"/predict item is not {{label, score}}: {p!r}", data)
        out.append(Prediction(p["label"], float(p["score"])))
    return sorted(out, key=lambda p: -p.score)


def parse_predict(body: bytes, headers: Mapping[str, str]) -> list[list[Prediction]]:
    """One list of predictions (best first) per input; a single input's flat list becomes ``[[...]]``."""
    data = decode_json(body, headers, provider=NAME, what="predict response")
    if not isinstance(data, list) or not data:
        raise malformed(NAME, "/predict answer is not a non-empty list", data)
    if all(isinstance(r, list) for r in data):
        return [_predictions(r, data) for r in data]
    return [_predictions(data, data)]


def build_similarity(source_sentence: str, sentences: Sequence[str]) -> ProviderRequest:
    """``POST /similarity`` (also the HF Inference API's sentence-similarity task payload)."""
    body = {
        "inputs": {
            "source_sentence": _texts(source_sentence, "similarity")[0],
            "sentences": _texts(sentences, "similarity"),
        }
    }
    return ProviderRequest("POST", "/similarity", headers=dict(JSON_HEADERS), json=body)


def parse_similarity(body: bytes, headers: Mapping[str, str]) -> list[float]:
    data = decode_json(body, headers, provider=NAME, what="similarity response")
    scores = floats(data)
    if scores is None:
        raise malformed(NAME, "/similarity answer is not a list of numbers", data)
    return list(scores)


# --------------------------------------------------------------------------- /info /health


@dataclass(frozen=True, slots=True)
class TEIInfo:
    model_id: str
    model_type: str  # "embedding" | "reranker" | "classifier"
    pooling: str | None = None
    model_sha: str | None = None
    model_dtype: str | None = None
    max_concurrent_requests: int | None = None
    max_input_length: int | None = None
    max_batch_tokens: int | None = None
    max_client_batch_size: int | None = None
    version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def build_info() -> ProviderRequest:
    return ProviderRequest("GET", "/info")


def parse_info(body: bytes, headers: Mapping[str, str]) -> TEIInfo:
    """``GET /info``; ``model_type`` is ``{"embedding": {"pooling": "mean"}}`` and the like."""
    data = decode_json(body, headers, provider=NAME, what="info response")
    mt = data.get("model_type") if isinstance(data, Mapping) else None
    if (
        not isinstance(data, Mapping)
        or not isinstance(data.get("model_id"), str)
        or not isinstance(mt, Mapping)
        or not mt
    ):
        raise malformed(NAME, "/info answer needs 'model_id' and a 'model_type' object", data)
    kind = next(iter(mt))
    detail = mt[kind]
    return TEIInfo(
        model_id=data["model_id"],
        model_type=str(kind),
        pooling=as_str(detail.get("pooling")) if isinstance(detail, Mapping) else None,
        model_sha=as_str(data.get("model_sha")),
        model_dtype=as_str(data.get("model_dtype")),
        max_concurrent_requests=opt_int(data.get("max_concurrent_requests")),
        max_input_length=opt_int(data.get("max_input_length")),
        max_batch_tokens=opt_int(data.get("max_batch_tokens")),
        max_client_batch_size=opt_int(data.get("max_client_batch_size")),
        version=as_str(data.get("version")),
        raw=dict(data),
    )


def build_health() -> ProviderRequest:
    return ProviderRequest("GET", "/health")


def parse_health(body: bytes, headers: Mapping[str, str]) -> bool:
    """200 means ready (503 ``Unhealthy`` raises before this is called)."""
    return True


# --------------------------------------------------------------------------- errors / provider


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """Typed error: ``Overloaded`` -> :class:`OverloadedError` (retryable); ``Validation`` 413 ->
    ``BadRequestError``; ``Tokenizer`` 422 -> ``UnprocessableEntityError``; ``Backend`` 424 (not retried);
    ``Unhealthy`` 503 (retried). Also reads the ``/v1/embeddings`` ``{"message", "code", "error_type"}`` shape."""
    parsed, etype, message = read_error(body)
    if isinstance(parsed, Mapping) and isinstance(parsed.get("error_type"), str):
        etype = parsed["error_type"]
    return status_error(
        status,
        headers,
        body,
        provider=NAME,
        parsed=parsed,
        error_type=etype,
        message=message,
        request_id_headers=REQUEST_ID_HEADERS,
        overloaded=(etype or "").lower() == "overloaded",
    )


def _no_chat(*_: Any) -> NoReturn:
    raise ConfigurationError("TEI serves embeddings, reranking and classification, not chat")


def _build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    _no_chat()


#: TEI's ``--api-key`` and HF Inference Endpoints take a bearer token.
auth_headers = bearer_auth


PROVIDER: Provider = Provider(
    name=NAME,
    default_base_url=DEFAULT_BASE_URL,
    build_chat=_build_chat,
    parse_chat=_no_chat,
    new_stream_parser=_no_chat,
    classify_error=classify_error,
    auth_headers=auth_headers,
    request_id_headers=REQUEST_ID_HEADERS,
    build_embed=build_embed,
    parse_embed=parse_embed,
    capabilities=frozenset(("embed", "embed_sparse", "embed_all", "rerank", "predict", "similarity", "info", "health")),
    description="Hugging Face TEI native /embed (+ rerank, predict, sparse, similarity, /v1/embeddings helpers)",
    health_path="/health",
)
