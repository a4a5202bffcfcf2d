"""OPEA provider unit tests: gateway request bodies, both stream styles, FastAPI error bodies, and the
embedding/retrieval/reranking microservice shapes (from opea-comps' proto classes). No I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infermux.errors import (
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    UnprocessableEntityError,
)
from infermux.providers import get_provider, opea
from infermux.types import ChatRequest, ImagePart, Message, StreamAccumulator, StreamFinish, TextDelta, Tool

JSON = {"content-type": "application/json"}


def test_registry() -> None:
    assert get_provider("opea") is opea.PROVIDER and get_provider("opea_llm") is opea.LLM_PROVIDER
    assert opea.PROVIDER.default_base_url == "http://127.0.0.1:8888"
    assert opea.LLM_PROVIDER.build_embed is None


def test_gateway_bodies() -> None:
    one = opea.PROVIDER.build_chat(ChatRequest((Message.user("What is OPEA?"),), max_tokens=64), "m", False)
    assert one.path == "/v1/chatqna" and not one.stream
    assert one.json == {"messages": "What is OPEA?", "model": "m", "max_tokens": 64, "stream": False}
    many = opea.PROVIDER.build_chat(
        ChatRequest((Message.system("be brief"), Message.user("hi")), temperature=0.1, extra={"top_k": 5}), "m", True
    )
    assert many.json["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert many.json["stream"] is True and many.json["top_k"] == 5 and many.stream
    doc = opea.DOCSUM_PROVIDER.build_chat(ChatRequest((Message.system("s"), Message.user("long text"))), "m", False)
    assert doc.path == "/v1/docsum" and doc.json["type"] == "text" and doc.json["messages"] == "s\n\nlong text"
    assert opea.CODEGEN_PROVIDER.build_chat(ChatRequest((Message.user("def f"),)), "", False).json == {
        "messages": "def f",
        "stream": False,
    }
    custom = opea.opea_gateway_provider("/v1/translation", "tr", defaults={"language_from": "en"})
    assert custom.build_chat(ChatRequest((Message.user("x"),)), "m", False).json["language_from"] == "en"


@pytest.mark.parametrize(
    "req",
    [
        ChatRequest((Message.user("x"),), tools=(Tool("f", "", {"type": "object"}),)),
        ChatRequest((Message("user", (ImagePart(url="http://x/y.png"),)),)),
        ChatRequest((Message.user("x"),), response_format="json_object"),  # type: ignore[arg-type]
    ],
)
def test_gateway_rejects_unsupported(req: ChatRequest) -> None:
    with pytest.raises(ConfigurationError):
        opea.PROVIDER.build_chat(req, "m", False)
    with pytest.raises(ConfigurationError):
        opea.opea_gateway_provider("v1/x")


def test_gateway_parse_zero_usage_is_none() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "chatqna",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "OPEA is..."},
                "finish_reason": "stop",
                "metadata": None,
            }
        ],
        "usage": {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0},
    }
    r = opea.PROVIDER.parse_chat(json.dumps(body).encode(), JSON)
    assert r.text == "OPEA is..." and r.usage is None and r.finish_reason == "stop" and r.provider == "opea"
    with pytest.raises(MalformedResponseError):
        opea.PROVIDER.parse_chat(b'{"choices": []}', JSON)


def feed_all(parser: Any, data: bytes, step: int = 7) -> tuple[StreamAccumulator, list[Any]]:
    acc, events = StreamAccumulator(), []
    for i in range(0, len(data), step):
        events += parser.feed(data[i : i + step])
    events += parser.close()
    for ev in events:
        acc.add(ev)
    return acc, events


def test_stream_byte_literals() -> None:
    tokens = [" Hello", " wörld", "\n", " it's", ' "q"', " \\n"]
    data = "".join(f"data: {t.encode()!r}\n\n" for t in tokens) + "data: [DONE]\n\n"
    acc, events = feed_all(opea.OpeaStreamParser(), data.encode())
    assert acc.text == "".join(tokens) and isinstance(events[-1], StreamFinish)
    assert sum(isinstance(e, TextDelta) for e in events) == len(tokens)


def test_stream_openai_chunks_and_plain_text() -> None:
    def chunk(delta: dict[str, Any], fin: str | None = None) -> str:
        obj = {"id": "c1", "model": "chatqna", "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]}
        return "data: " + json.dumps(obj) + "\n\n"

    data = chunk({"role": "assistant", "content": "Hi"}) + chunk({"content": " there"}) + chunk({}, "length")
    acc, events = feed_all(opea.OpeaStreamParser(), (data + "data: [DONE]\n\n").encode(), step=5)
    assert acc.text == "Hi there" and acc.finish_reason == "length" and events[0].response_id == "c1"
    acc2, _ = feed_all(opea.OpeaStreamParser(), b"data: plain\n\ndata:  text\n\ndata: [DONE]\n\n")
    assert acc2.text == "plain text"


@pytest.mark.parametrize(
    ("data", "exc"),
    [
        (b"data: b' Hel\n\n", MalformedResponseError),
        (b"data: b'\\xff'\n\ndata: [DONE]\n\n", MalformedResponseError),
        (b'data: {"choices": [\n\n', MalformedResponseError),
        (b"data: b' Hello'\n\n", IncompleteStreamError),
    ],
)
def test_stream_errors(data: bytes, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        feed_all(opea.OpeaStreamParser(), data)


def test_classify_fastapi_errors() -> None:
    body = {"detail": [{"type": "missing", "loc": ["body", "messages"], "msg": "Field required", "input": {}}]}
    e = opea.classify_error(422, JSON, json.dumps(body).encode())
    assert isinstance(e, UnprocessableEntityError) and e.error_type == "missing"
    assert e.provider_message == "body.messages: Field required"
    n = opea.PROVIDER.classify_error(404, JSON, b'{"detail": "Not Found"}')
    assert isinstance(n, NotFoundError) and n.provider_message == "Not Found"
    s = opea.LLM_PROVIDER.classify_error(500, {"content-type": "text/plain"}, b"Internal Server Error")
    assert isinstance(s, InternalServerError) and s.provider == "opea_llm" and s.retryable


def test_embedding_shapes() -> None:
    assert opea.build_embedding("q").json == {"input": ["q"], "encoding_format": "float"}
    assert opea.build_embedding("q", legacy=True).json == {"text": "q"}
    with pytest.raises(ConfigurationError):
        opea.build_embedding([])
    oa = {"object": "list", "data": [{"index": 0, "object": "embedding", "embedding": [0.5, 1]}], "model": "bge"}
    assert opea.parse_embedding(json.dumps(oa).encode(), JSON).vectors == ((0.5, 1.0),)
    doc = {"id": "x", "text": "q", "embedding": [0.1, 0.2], "search_type": "similarity", "k": 4}
    assert opea.parse_embedding(json.dumps(doc).encode(), JSON).vectors == ((0.1, 0.2),)
    many = {"text": ["a", "b"], "embedding": [[1, 2], [3, 4]]}
    assert opea.parse_embedding(json.dumps(many).encode(), JSON).vectors == ((1.0, 2.0), (3.0, 4.0))
    with pytest.raises(MalformedResponseError):
        opea.parse_embedding(b'{"embedding": "x"}', JSON)


def test_retrieval_and_rerank_shapes() -> None:
    req = opea.build_retrieval("q", [0.1, 0.2], k=2)
    assert req.path == "/v1/retrieval" and req.json == {
        "text": "q",
        "embedding": [0.1, 0.2],
        "search_type": "similarity",
        "k": 2,
    }
    for bad in (("", [1.0]), ("q", []), ("q", ["x"])):
        with pytest.raises(ConfigurationError):
            opea.build_retrieval(*bad)  # type: ignore[arg-type]
    searched = {
        "id": "s",
        "retrieved_docs": [{"id": "d1", "text": "A"}, {"text": "B"}],
        "initial_query": "q",
        "top_n": 1,
    }
    r = opea.parse_retrieval(json.dumps(searched).encode(), JSON)
    assert [d.text for d in r.docs] == ["A", "B"] and r.docs[0].id == "d1" and r.initial_query == "q" and r.top_n == 1
    newer = {"retrieved_docs": [{"text": "A", "metadata": {"source": "x"}}]}
    assert opea.parse_retrieval(json.dumps(newer).encode(), JSON).docs[0].metadata == {"source": "x"}
    with pytest.raises(MalformedResponseError):
        opea.parse_retrieval(b'{"docs": []}', JSON)
    rr = opea.build_rerank("q", ["A", opea.Doc("B")], top_n=2)
    assert rr.json == {"initial_query": "q", "retrieved_docs": [{"text": "A"}, {"text": "B"}], "top_n": 2}
    with pytest.raises(ConfigurationError):
        opea.build_rerank("q", [])
    llm_params = {"query": "q", "documents": ["B", "A"], "max_tokens": 1024}
    assert [d.text for d in opea.parse_rerank(json.dumps(llm_params).encode(), JSON).docs] == ["B", "A"]
    old = {"query": "### Search results: ... ### Question: q", "max_tokens": 1024}
    assert opea.parse_rerank(json.dumps(old).encode(), JSON).docs == ()
    scored = {"reranked_docs": [{"text": "B", "score": 0.9}]}
    assert opea.parse_rerank(json.dumps(scored).encode(), JSON).docs[0].score == 0.9
    with pytest.raises(MalformedResponseError):
        opea.parse_rerank(b'{"documents": ["x"]}', JSON)
