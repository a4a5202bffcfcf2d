"""Unit tests of the pure llama.cpp provider. Bodies below have the shapes a real llama.cpp server
(xllamacpp 2026.10, SmolLM2-135M) returned; only the fields we read are kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infermux.errors import (
    AuthenticationError,
    BadRequestError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
)
from infermux.providers import get_provider
from infermux.providers import llamacpp as lc
from infermux.types import ChatRequest, Message, StreamError, StreamEvent, StreamFinish, TextDelta, Tool, UsageEvent

JSON = {"content-type": "application/json; charset=utf-8"}


def _b(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _run(parser: Any, raw: bytes, size: int) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for i in range(0, len(raw), size):
        out.extend(parser.feed(raw[i : i + size]))
    return out + parser.close()


def test_provider_reuses_openai_protocol() -> None:
    p = get_provider("llama.cpp")
    assert p is lc.PROVIDER and p.name == "llamacpp" and p.default_base_url == "http://127.0.0.1:8080/v1"
    pr = p.build_chat(ChatRequest((Message.user("hi"),), max_tokens=3), "smollm2", True)
    assert pr.path == "/chat/completions" and pr.json["stream_options"] == {"include_usage": True}
    body = {
        "choices": [{"finish_reason": "length", "index": 0, "message": {"role": "assistant", "content": "Hi"}}],
        "id": "chatcmpl-x",
        "model": "smollm2",
        "usage": {"completion_tokens": 3, "prompt_tokens": 31, "prompt_tokens_details": {"cached_tokens": 0}},
        "timings": {"prompt_n": 31},
    }
    r = p.parse_chat(_b(body), JSON)
    assert (r.text, r.finish_reason, r.provider) == ("Hi", "length", "llamacpp")
    raw = (
        b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],'
        b'"id":"chatcmpl-v","model":"smollm2","object":"chat.completion.chunk"}\n\n'
        b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Welcome"}}],"id":"chatcmpl-v"}\n\n'
        b'data: {"choices":[{"finish_reason":"length","index":0,"delta":{}}],"id":"chatcmpl-v"}\n\n'
        b'data: {"choices":[],"id":"chatcmpl-v","usage":{"completion_tokens":3,"prompt_tokens":31}}\n\n'
        b"data: [DONE]\n\n"
    )
    events = _run(p.new_stream_parser(), raw, 3)
    assert TextDelta("Welcome") in events and events[-1] == StreamFinish("length")


def test_named_tool_choice_becomes_required_with_only_that_tool() -> None:
    tools = (Tool("a"), Tool("b"))
    body = lc.build_chat(ChatRequest((Message.user("x"),), tools=tools, tool_choice="b"), "m", False).json
    assert body["tool_choice"] == "required"
    assert [t["function"]["name"] for t in body["tools"]] == ["b"]
    body = lc.build_chat(ChatRequest((Message.user("x"),), tools=tools, tool_choice="auto"), "m", False).json
    assert body["tool_choice"] == "auto" and len(body["tools"]) == 2


@pytest.mark.parametrize(
    ("base", "root"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080"),
        ("http://h:1/openai/v1", "http://h:1/openai"),
        ("http://h:1", "http://h:1"),
        ("http://h:1/v10", "http://h:1/v10"),
    ],
)
def test_server_root(base: str, root: str) -> None:
    assert lc.server_root(base) == root


# --------------------------------------------------------------------------- errors (real llama.cpp bodies)


@pytest.mark.parametrize(
    ("status", "body", "cls", "etype", "retryable"),
    [
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "request (401 tokens) exceeds the available context size (256 tokens)",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 401,
                    "n_ctx": 256,
                }
            },
            BadRequestError,
            "exceed_context_size_error",
            False,
        ),
        (
            501,
            {
                "error": {
                    "code": 501,
                    "message": "This server does not support embeddings. Start it with `--embeddings`",
                    "type": "not_supported_error",
                }
            },
            InternalServerError,
            "not_supported_error",
            False,
        ),
        (
            503,
            {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}},
            InternalServerError,
            "unavailable_error",
            True,
        ),
        (
            404,
            {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}},
            NotFoundError,
            "not_found_error",
            False,
        ),
        (
            401,
            {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}},
            AuthenticationError,
            "authentication_error",
            False,
        ),
        (
            500,
            {
                "error": {
                    "code": 500,
                    "message": "The model produced output that does not match",
                    "type": "server_error",
                }
            },
            InternalServerError,
            "server_error",
            True,
        ),
    ],
)
def test_classify_llamacpp_errors(status: int, body: Any, cls: type, etype: str, retryable: bool) -> None:
    err = lc.PROVIDER.classify_error(status, JSON, _b(body))
    assert type(err) is cls and err.error_type == etype and err.retryable is retryable
    assert err.provider == "llamacpp" and err.provider_message == body["error"]["message"]


# --------------------------------------------------------------------------- native routes


def test_health() -> None:
    pr = lc.build_health()
    assert (pr.method, pr.path, pr.json) == ("GET", "/health", None)
    assert lc.parse_health(200, JSON, b'{"status":"ok"}') is True
    loading = b'{"error":{"message":"Loading model","type":"unavailable_error","code":503}}'
    with pytest.raises(InternalServerError) as exc:
        lc.parse_health(503, JSON, loading)
    assert exc.value.retryable and exc.value.provider_message == "Loading model"
    with pytest.raises(MalformedResponseError):
        lc.parse_health(200, JSON, b'{"status":"loading"}')


def test_props() -> None:
    assert lc.build_props().path == "/props"
    props = {"default_generation_settings": {"n_ctx": 256}, "total_slots": 1, "model_alias": "smollm2"}
    assert lc.parse_props(_b(props), JSON) == props
    with pytest.raises(MalformedResponseError):
        lc.parse_props(b"[]", JSON)


def test_tokenize_detokenize() -> None:
    pr = lc.build_tokenize("Hello world")
    assert (pr.method, pr.path, pr.json) == ("POST", "/tokenize", {"content": "Hello world", "add_special": False})
    assert lc.build_tokenize("x", add_special=True).json["add_special"] is True
    assert lc.parse_tokenize(b'{"tokens":[19556,905]}', JSON) == [19556, 905]
    pieces = b'{"tokens":[{"id":19556,"piece":"Hello"},{"id":905,"piece":" world"}]}'
    assert lc.parse_tokenize(pieces, JSON) == [19556, 905]
    pr = lc.build_detokenize([19556, 905])
    assert (pr.path, pr.json) == ("/detokenize", {"tokens": [19556, 905]})
    assert lc.parse_detokenize(b'{"content":"Hello world"}', JSON) == "Hello world"
    for bad in (b'{"tokens": "x"}', b'{"tokens": [1.5]}', b"<html>", b'{"tokens": [true]}'):
        with pytest.raises(MalformedResponseError):
            lc.parse_tokenize(bad, JSON)
    with pytest.raises(MalformedResponseError):
        lc.parse_detokenize(b'{"tokens": []}', JSON)


def test_build_completion() -> None:
    pr = lc.build_completion(
        "The capital of France is", n_predict=8, temperature=0, stop=[","], seed=1, extra={"top_k": 1}
    )
    assert (pr.method, pr.path, pr.stream) == ("POST", "/completion", False)
    assert pr.json == {
        "prompt": "The capital of France is",
        "n_predict": 8,
        "temperature": 0,
        "stop": [","],
        "seed": 1,
        "top_k": 1,
    }
    assert lc.build_completion("p", stream=True).json == {"prompt": "p", "stream": True}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"stop_type": "limit"}, "length"),
        ({"stop_type": "word", "stopping_word": ","}, "stop"),
        ({"stop_type": "eos"}, "stop"),
        ({"stopped_limit": True, "stopped_eos": False}, "length"),  # older servers
        ({"stopped_eos": True}, "stop"),
        ({"stopped_word": True}, "stop"),
    ],
)
def test_parse_completion(fields: dict[str, Any], reason: str) -> None:
    body = {
        "index": 0,
        "content": " Paris.",
        "stop": True,
        "model": "smollm2",
        "tokens_predicted": 8,
        "tokens_evaluated": 5,
        "timings": {"cache_n": 2, "prompt_n": 5},
        **fields,
    }
    r = lc.parse_completion(_b(body), JSON)
    assert (r.text, r.finish_reason, r.model, r.provider) == (" Paris.", reason, "smollm2", "llamacpp")
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens) == (5, 8, 2)


@pytest.mark.parametrize("body", [b'{"index": 0}', b"[]", b"not json", b'{"content": 5}'])
def test_parse_completion_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        lc.parse_completion(body, JSON)


NATIVE_STREAM = (
    b'data: {"index":0,"content":" Paris","tokens":[7042],"stop":false,"tokens_predicted":1,"tokens_evaluated":5}\n\n'
    b'data: {"index":0,"content":".","tokens":[30],"stop":false,"tokens_predicted":2,"tokens_evaluated":5}\n\n'
    b'data: {"index":0,"content":"","tokens":[],"stop":true,"model":"smollm2","tokens_predicted":2,'
    b'"tokens_evaluated":5,"stop_type":"limit","timings":{"cache_n":4}}\n\n'
)


def test_native_stream_chunked_equal_and_terminal() -> None:
    one = _run(lc.CompletionStreamParser(), NATIVE_STREAM, len(NATIVE_STREAM))
    assert one == _run(lc.CompletionStreamParser(), NATIVE_STREAM, 1)
    assert one[:2] == [TextDelta(" Paris"), TextDelta(".")]
    assert isinstance(one[2], UsageEvent) and one[2].usage.output_tokens == 2 and one[2].usage.cached_tokens == 4
    assert one[3] == StreamFinish("length") and len(one) == 4


def test_native_stream_without_stop_true_is_incomplete() -> None:
    cut = NATIVE_STREAM[: NATIVE_STREAM.rindex(b"data:")]
    with pytest.raises(IncompleteStreamError) as exc:
        _run(lc.CompletionStreamParser(), cut, 10)
    assert exc.value.partial_text == " Paris."


def test_native_stream_error_and_bad_json() -> None:
    raw = b'data: {"error":{"code":500,"message":"slot failed","type":"server_error"}}\n\n'
    assert _run(lc.CompletionStreamParser(), raw, 4) == [StreamError("server_error", "slot failed", 500)]
    with pytest.raises(MalformedResponseError):
        lc.CompletionStreamParser().feed(b"data: {oops\n\n")
