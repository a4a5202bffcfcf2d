"""TEI provider: /embed and the native extras (sparse, all, rerank, predict, similarity, info), errors."""

from __future__ import annotations

import json

import pytest

from infermux.errors import (
    BadRequestError,
    ConfigurationError,
    InternalServerError,
    MalformedResponseError,
    OverloadedError,
    UnprocessableEntityError,
)
from infermux.providers import get_provider, tei
from infermux.types import ChatRequest, EmbedRequest, Message

JSON = {"content-type": "application/json"}


def test_registry_and_capabilities() -> None:
    assert get_provider("tei") is tei.PROVIDER is get_provider("huggingface_tei")
    assert {"embed", "rerank", "predict"} <= tei.PROVIDER.capabilities
    with pytest.raises(ConfigurationError, match="not chat"):
        tei.PROVIDER.build_chat(ChatRequest((Message.user("x"),)), "m", False)


def test_build_embed() -> None:
    p = tei.build_embed(EmbedRequest(("a", "b"), dimensions=8, extra={"truncate": True, "prompt_name": "query"}), "m")
    assert (p.method, p.path) == ("POST", "/embed")
    assert p.json == {
        "inputs": ["a", "b"],
        "normalize": True,
        "dimensions": 8,
        "truncate": True,
        "prompt_name": "query",
    }
    assert "normalize" not in tei.build_embed(EmbedRequest(("a",), extra={"normalize": None}), "m").json
    o = tei.build_openai_embed(EmbedRequest(("a",)), "bge")
    assert o.path == "/v1/embeddings" and o.json["model"] == "bge" and o.json["input"] == ["a"]


def test_parse_embed_batch_and_bare_vector() -> None:
    r = tei.parse_embed(b"[[0.6, 0.8], [1, 0]]", {**JSON, "x-request-id": "q"})
    assert r.vectors == ((0.6, 0.8), (1.0, 0.0)) and r.dimensions == 2 and r.provider_request_id == "q"
    bare = tei.parse_embed(b"[0.1, 0.2, 0.3]", JSON)  # HF Inference API feature-extraction of one string
    assert bare.vectors == ((0.1, 0.2, 0.3),)
    oa = tei.parse_openai_embed(b'{"data":[{"index":1,"embedding":[2]},{"index":0,"embedding":[1]}]}', JSON)
    assert oa.vectors == ((1.0,), (2.0,)) and oa.provider == "tei"


@pytest.mark.parametrize("body", [b"[]", b"[[]]", b'[["a"]]', b'{"x": 1}', b"[[1], 2]", b"<html>"])
def test_parse_embed_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        tei.parse_embed(body, JSON)


def test_sparse_and_all() -> None:
    assert tei.build_embed_sparse("x", truncate=True).json == {"inputs": ["x"], "truncate": True}
    sparse = tei.parse_embed_sparse(b'[[{"index": 5, "value": 0.5}, {"index": 9, "value": 1}], []]', JSON)
    assert sparse == [{5: 0.5, 9: 1.0}, {}]
    with pytest.raises(MalformedResponseError):
        tei.parse_embed_sparse(b'[[{"index": "5", "value": 1}]]', JSON)
    assert tei.build_embed_all(["a"]).path == "/embed_all"
    assert tei.parse_embed_all(b"[[[1, 2], [3, 4]]]", JSON) == [[(1.0, 2.0), (3.0, 4.0)]]
    with pytest.raises(ConfigurationError):
        tei.build_embed_sparse([""])


def test_rerank() -> None:
    p = tei.build_rerank("q", ["a", "b"], return_text=True, truncate=True)
    assert p.path == "/rerank"
    assert p.json == {"query": "q", "texts": ["a", "b"], "raw_scores": False, "return_text": True, "truncate": True}
    body = b'[{"index": 0, "score": 0.1}, {"index": 1, "score": 0.9, "text": "b"}]'
    assert tei.parse_rerank(body, JSON) == [tei.RerankResult(1, 0.9, "b"), tei.RerankResult(0, 0.1)]
    with pytest.raises(MalformedResponseError):
        tei.parse_rerank(b'[{"index": 0}]', JSON)
    with pytest.raises(ConfigurationError):
        tei.build_rerank("", ["a"])
    with pytest.raises(ConfigurationError):
        tei.build_rerank("q", [])


def test_predict_single_pair_and_batch() -> None:
    assert tei.build_predict("hi").json == {"inputs": "hi", "raw_scores": False}
    assert tei.build_predict([("a", "b")]).json["inputs"] == [["a", "b"]]
    flat = b'[{"label": "NEG", "score": 0.2}, {"label": "POS", "score": 0.8}]'
    assert tei.parse_predict(flat, JSON) == [[tei.Prediction("POS", 0.8), tei.Prediction("NEG", 0.2)]]
    batch = b'[[{"label": "A", "score": 1}], [{"label": "B", "score": 0.5}]]'
    assert [[p.label for p in row] for row in tei.parse_predict(batch, JSON)] == [["A"], ["B"]]
    with pytest.raises(MalformedResponseError):
        tei.parse_predict(b'[{"label": 1, "score": 1}]', JSON)
    with pytest.raises(ConfigurationError):
        tei.build_predict([])


def test_similarity_and_info() -> None:
    p = tei.build_similarity("s", ["a", "b"])
    assert p.json == {"inputs": {"source_sentence": "s", "sentences": ["a", "b"]}}
    assert tei.parse_similarity(b"[0.5, 1]", JSON) == [0.5, 1.0]
    with pytest.raises(MalformedResponseError):
        tei.parse_similarity(b'{"x": 1}', JSON)
    info = {
        "model_id": "BAAI/bge",
        "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}}},
        "max_client_batch_size": 32,
        "max_input_length": 512,
        "version": "1.5.0",
    }
    parsed = tei.parse_info(json.dumps(info).encode(), JSON)
    assert (parsed.model_type, parsed.pooling, parsed.max_client_batch_size) == ("reranker", None, 32)
    emb = tei.parse_info(b'{"model_id": "x", "model_type": {"embedding": {"pooling": "mean"}}}', JSON)
    assert (emb.model_type, emb.pooling) == ("embedding", "mean")
    with pytest.raises(MalformedResponseError):
        tei.parse_info(b'{"model_id": "x"}', JSON)


def test_classify_errors() -> None:
    big = tei.classify_error(
        413, JSON, b'{"error":"batch size 40 > maximum allowed batch size 32","error_type":"Validation"}'
    )
    assert isinstance(big, BadRequestError) and big.error_type == "Validation" and not big.retryable
    tok = tei.classify_error(422, JSON, b'{"error":"tokenizer failed","error_type":"Tokenizer"}')
    assert isinstance(tok, UnprocessableEntityError)
    over = tei.classify_error(
        429, {**JSON, "retry-after": "1"}, b'{"error":"Model is overloaded","error_type":"Overloaded"}'
    )
    assert isinstance(over, OverloadedError) and over.retryable and over.retry_after == 1.0
    backend = tei.classify_error(424, JSON, b'{"error":"cuda error","error_type":"Backend"}')
    assert backend.status_code == 424 and not backend.retryable
    unhealthy = tei.classify_error(503, JSON, b'{"error":"unhealthy","error_type":"Unhealthy"}')
    assert isinstance(unhealthy, InternalServerError) and unhealthy.retryable
    compat = tei.classify_error(413, JSON, b'{"message":"batch too big","code":413,"error_type":"Validation"}')
    assert compat.error_type == "Validation" and compat.provider_message == "batch too big"
    text = tei.classify_error(422, {"content-type": "text/plain"}, b"Failed to deserialize the JSON body")
    assert isinstance(text, UnprocessableEntityError) and text.provider_message == "Failed to deserialize the JSON body"
