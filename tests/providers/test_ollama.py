"""Ollama provider: request building, response/stream parsing, model-management helpers and errors (pure, no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infermux.errors import (
    BadRequestError,
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
)
from infermux.providers import get_provider
from infermux.providers import ollama as ol
from infermux.types import (
    ChatRequest,
    EmbedRequest,
    ImagePart,
    Message,
    ResponseFormat,
    StreamAccumulator,
    StreamError,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallEnd,
    UsageEvent,
)

JSON = {"content-type": "application/json; charset=utf-8"}
NDJSON = {"content-type": "application/x-ndjson"}
WEATHER = Tool("get_weather", "Weather of a city", {"type": "object", "properties": {"city": {"type": "string"}}})


def body(req: ChatRequest, stream: bool = False) -> dict[str, Any]:
    preq = ol.build_chat(req, "llama3.2", stream)
    assert preq.method == "POST" and preq.path == "/api/chat" and preq.stream is stream
    return dict(preq.json)


def feed(parser: Any, raw: bytes, size: int = 7) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(raw), size):
        out += parser.feed(raw[i : i + size])
    return out + parser.close()


def ndjson(*objs: Any) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


# --------------------------------------------------------------------------- registry


def test_registry_names_resolve() -> None:
    assert get_provider("ollama") is ol.PROVIDER
    assert get_provider("ollama_openai") is ol.OPENAI_PROVIDER
    assert ol.PROVIDER.default_base_url == "http://127.0.0.1:11434"
    assert ol.OPENAI_PROVIDER.default_base_url == "http://127.0.0.1:11434/v1"
    assert {"chat", "stream", "tools", "vision", "json", "embed", "pull"} <= ol.PROVIDER.capabilities


# --------------------------------------------------------------------------- request building


def test_stream_flag_always_sent_and_options_mapped() -> None:
    req = ChatRequest(
        (Message.system("be brief"), Message.user("hi")),
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        stop=("END",),
        seed=7,
        user="u1",
    )
    b = body(req)
    assert b["stream"] is False
    assert body(req, stream=True)["stream"] is True
    assert b["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert b["options"] == {"temperature": 0.2, "top_p": 0.9, "num_predict": 64, "stop": ["END"], "seed": 7}
    assert "user" not in b and "tools" not in b and "format" not in b


def test_minimal_request_has_no_options() -> None:
    assert body(ChatRequest((Message.user("hi"),))) == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
    }


def test_extra_merges_options_key_by_key_and_keep_alive() -> None:
    extra = ol.ollama_extra(keep_alive="10m", think=False, num_ctx=8192, temperature=None)
    assert extra == {"keep_alive": "10m", "think": False, "options": {"num_ctx": 8192, "temperature": None}}
    b = body(ChatRequest((Message.user("hi"),), temperature=0.5, seed=1, extra=extra))
    assert b["keep_alive"] == "10m" and b["think"] is False
    assert b["options"] == {"seed": 1, "num_ctx": 8192}  # None removed temperature


@pytest.mark.parametrize(
    ("fmt", "wire"),
    [
        (ResponseFormat("json_object"), "json"),
        (ResponseFormat("json_schema", schema={"type": "object", "properties": {"a": {"type": "integer"}}}), None),
        (ResponseFormat("text"), "absent"),
    ],
)
def test_response_format_becomes_format(fmt: ResponseFormat, wire: Any) -> None:
    b = body(ChatRequest((Message.user("hi"),), response_format=fmt))
    if wire == "absent":
        assert "format" not in b
    elif wire is None:
        assert b["format"] == dict(fmt.schema or {})
    else:
        assert b["format"] == wire


def test_images_are_base64_and_text_parts_joined() -> None:
    img = ImagePart.from_bytes(b"\x89PNG\r\n", "image/png")
    b = body(ChatRequest((Message.user([TextPart("what is"), TextPart(" this?"), img]),)))
    assert b["messages"] == [{"role": "user", "content": "what is this?", "images": [img.data]}]
    data_url = ImagePart(url="data:image/jpeg;base64,AAAA")
    assert body(ChatRequest((Message.user([data_url]),)))["messages"][0]["images"] == ["AAAA"]


def test_image_url_is_a_configuration_error() -> None:
    req = ChatRequest((Message.user([ImagePart(url="https://example.com/cat.png")]),))
    with pytest.raises(ConfigurationError, match="inline data"):
        ol.build_chat(req, "llava", False)


def test_tool_calls_sent_as_objects_and_tool_name_resolved() -> None:
    call = ToolCall.from_raw("call_1", "get_weather", '{"city": "Paris"}')
    req = ChatRequest(
        (Message.user("weather?"), Message.assistant(None, [call]), Message.tool("call_1", "sunny")),
        tools=(WEATHER,),
    )
    b = body(req)
    assert b["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    }
    assert b["messages"][2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}
    assert b["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": dict(WEATHER.parameters),
            },
        }
    ]


def test_tool_call_with_non_object_arguments_is_a_configuration_error() -> None:
    call = ToolCall.from_raw("c", "get_weather", "[1, 2]")
    req = ChatRequest((Message.user("x"), Message.assistant(None, [call]), Message.tool("c", "r")))
    with pytest.raises(ConfigurationError, match="JSON object"):
        ol.build_chat(req, "m", False)


def test_tool_choice_mapping() -> None:
    other = Tool("other")
    assert "tools" not in body(ChatRequest((Message.user("x"),), tools=(WEATHER,), tool_choice="none"))
    named = body(ChatRequest((Message.user("x"),), tools=(WEATHER, other), tool_choice="other"))
    assert [t["function"]["name"] for t in named["tools"]] == ["other"]
    required = body(ChatRequest((Message.user("x"),), tools=(WEATHER, other), tool_choice="required"))
    assert len(required["tools"]) == 2


def test_generate_embed_and_admin_builders() -> None:
    g = ol.build_generate(
        "llama3", "hi", system="sys", images=["AAAA"], format="json", options={"seed": 1}, stream=True
    )
    assert g.path == "/api/generate" and g.stream
    assert g.json == {
        "model": "llama3",
        "stream": True,
        "prompt": "hi",
        "system": "sys",
        "images": ["AAAA"],
        "format": "json",
        "options": {"seed": 1},
    }
    assert ol.build_generate("llama3", keep_alive=0).json == {"model": "llama3", "stream": False, "keep_alive": 0}
    e = ol.build_embed(EmbedRequest(("a", "b"), dimensions=8, extra={"truncate": False, "keep_alive": "1m"}), "m")
    assert (e.path, e.json) == (
        "/api/embed",
        {"model": "m", "input": ["a", "b"], "dimensions": 8, "truncate": False, "keep_alive": "1m"},
    )
    assert ol.build_embeddings_legacy("m", "p").json == {"model": "m", "prompt": "p"}
    assert ol.build_pull("qwen3").json == {"model": "qwen3", "stream": True}
    assert ol.build_show("m").json == {"model": "m"}
    assert (ol.build_list_models().method, ol.build_list_models().path) == ("GET", "/api/tags")
    assert (ol.build_ps().path, ol.build_version().path) == ("/api/ps", "/api/version")
    for bad in (lambda: ol.build_pull(""), lambda: ol.build_show(""), lambda: ol.build_generate("")):
        with pytest.raises(ConfigurationError):
            bad()


# --------------------------------------------------------------------------- responses


CHAT_BODY = {
    "model": "llama3.2",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": "Hello!"},
    "done_reason": "stop",
    "done": True,
    "total_duration": 100,
    "prompt_eval_count": 12,
    "eval_count": 3,
}


def test_parse_chat() -> None:
    r = ol.parse_chat(json.dumps(CHAT_BODY).encode(), JSON)
    assert (r.text, r.finish_reason, r.model, r.provider) == ("Hello!", "stop", "llama3.2", "ollama")
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (12, 3)
    assert r.response_id is None and r.raw["total_duration"] == 100


def test_parse_chat_length_and_cached_prompt_without_count() -> None:
    data = {**CHAT_BODY, "done_reason": "length"}
    del data["prompt_eval_count"]  # Ollama omits it when the whole prompt came from its cache
    r = ol.parse_chat(json.dumps(data).encode(), JSON)
    assert r.finish_reason == "length"
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (0, 3)


def test_parse_chat_tool_calls_objects_and_stable_ids() -> None:
    calls = [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"id": "call_server", "function": {"index": 1, "name": "get_weather", "arguments": {"city": "Rome"}}},
    ]
    data = {**CHAT_BODY, "message": {"role": "assistant", "content": "", "tool_calls": calls}}
    raw = json.dumps(data).encode()
    r = ol.parse_chat(raw, JSON)
    assert r.finish_reason == "tool_calls"
    assert [c.arguments for c in r.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert r.tool_calls[0].id.startswith("call_") and r.tool_calls[1].id == "call_server"
    assert ol.parse_chat(raw, JSON).tool_calls[0].id == r.tool_calls[0].id  # stable
    assert json.loads(r.tool_calls[0].raw_arguments) == {"city": "Paris"}


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (b"<html>oops</html>", {"content-type": "text/html"}),
        (b'{"model": "x", "done": true', JSON),
        (b"[1, 2]", JSON),
        (b'{"model": "x", "done": true}', JSON),  # no message
        (b'{"message": {"content": "", "tool_calls": [{"function": {}}]}}', JSON),
        (b'{"message": {"content": "", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}}', JSON),
    ],
)
def test_parse_chat_malformed(raw: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(MalformedResponseError):
        ol.parse_chat(raw, headers)


def test_parse_chat_200_with_error_body_is_typed() -> None:
    with pytest.raises(MalformedResponseError) as ei:
        ol.parse_chat(b'{"error": "model \\"x\\" not found, try pulling it first"}', JSON)
    assert ei.value.error_type == "model_not_found"
    assert ei.value.provider_message == 'model "x" not found, try pulling it first'


def test_parse_generate_and_embed() -> None:
    gen = {
        "model": "llama3",
        "response": "A joke",
        "done": True,
        "done_reason": "stop",
        "context": [1],
        "eval_count": 2,
    }
    r = ol.parse_generate(json.dumps(gen).encode(), JSON)
    assert (r.text, r.finish_reason, r.usage and r.usage.output_tokens) == ("A joke", "stop", 2)
    with pytest.raises(MalformedResponseError):
        ol.parse_generate(b'{"done": true}', JSON)
    emb = {"model": "m", "embeddings": [[0.1, 0.2], [1, -1]], "prompt_eval_count": 4}
    e = ol.parse_embed(json.dumps(emb).encode(), JSON)
    assert e.vectors == ((0.1, 0.2), (1.0, -1.0)) and e.usage is not None and e.usage.input_tokens == 4
    for bad in (b'{"embeddings": 1}', b'{"embeddings": [["x"]]}'):
        with pytest.raises(MalformedResponseError):
            ol.parse_embed(bad, JSON)
    legacy = ol.parse_embeddings_legacy(b'{"embedding": [0.5, 0.25]}', JSON)
    assert legacy.vectors == ((0.5, 0.25),)


# --------------------------------------------------------------------------- streaming


def chat_chunk(text: str, **kw: Any) -> dict[str, Any]:
    return {
        "model": "llama3.2",
        "created_at": "t",
        "message": {"role": "assistant", "content": text},
        "done": False,
        **kw,
    }


FINAL = {**chat_chunk(""), "done": True, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 2}


def test_chat_stream_events_and_accumulation() -> None:
    raw = ndjson(chat_chunk("Hel"), chat_chunk("lo é"), FINAL)
    events = feed(ol.NDJSONStreamParser(), raw, size=3)
    assert isinstance(events[0], StreamStart) and events[0].model == "llama3.2"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo é"]
    assert isinstance(events[-2], UsageEvent) and events[-2].usage.input_tokens == 5
    assert events[-1] == StreamFinish("stop")
    acc = StreamAccumulator()
    for e in events:
        acc.add(e)
    assert acc.text == "Hello é" and acc.finished


def test_chat_stream_tool_calls_match_non_stream() -> None:
    calls = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    tool_chunk = chat_chunk("")
    tool_chunk["message"]["tool_calls"] = calls
    events = feed(ol.NDJSONStreamParser(), ndjson(tool_chunk, FINAL))
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert len(ends) == 1 and ends[0].call.arguments == {"city": "Paris"}
    assert events[-1] == StreamFinish("tool_calls")
    acc = StreamAccumulator()
    for e in events:
        acc.add(e)
    whole = {**FINAL, "message": {"role": "assistant", "content": "", "tool_calls": calls}}
    assert acc.tool_calls() == ol.parse_chat(json.dumps(whole).encode(), JSON).tool_calls


def test_stream_without_done_is_incomplete() -> None:
    with pytest.raises(IncompleteStreamError) as ei:
        feed(ol.NDJSONStreamParser(), ndjson(chat_chunk("par"), chat_chunk("tial")))
    assert ei.value.partial_text == "partial"


def test_stream_error_line_and_malformed_line() -> None:
    events = feed(ol.NDJSONStreamParser(), ndjson(chat_chunk("a"), {"error": "llama runner process has terminated"}))
    err = events[-1]
    assert isinstance(err, StreamError) and err.message == "llama runner process has terminated"
    assert err.error_type == "server_error"
    with pytest.raises(MalformedResponseError):
        feed(ol.NDJSONStreamParser(), b'{"model": "x", "message": {"content": "a"}, "do\n')
    with pytest.raises(MalformedResponseError):
        feed(ol.NDJSONStreamParser(), b"[1]\n")


def test_generate_stream() -> None:
    raw = ndjson(
        {"model": "m", "response": "A", "done": False},
        {"model": "m", "response": " B", "done": False},
        {"model": "m", "response": "", "done": True, "done_reason": "length", "eval_count": 2},
    )
    events: list[StreamEvent] = feed(ol.NDJSONStreamParser("generate"), raw)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "A B"
    assert events[-1] == StreamFinish("length")
    with pytest.raises(ConfigurationError):
        ol.NDJSONStreamParser("embed")


# --------------------------------------------------------------------------- admin routes


def test_tags_ps_show_version() -> None:
    tags = {
        "models": [
            {
                "name": "llama3.2:latest",
                "model": "llama3.2:latest",
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 2019393189,
                "digest": "abc",
                "details": {"family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
            }
        ]
    }
    [m] = ol.parse_list_models(json.dumps(tags).encode(), JSON)
    assert (m.name, m.size, m.family, m.parameter_size, m.quantization_level) == (
        "llama3.2:latest",
        2019393189,
        "llama",
        "3.2B",
        "Q4_K_M",
    )
    ps = {"models": [{"name": "m:latest", "size": 10, "size_vram": 10, "expires_at": "2025-01-01T00:05:00Z"}]}
    [p] = ol.parse_ps(json.dumps(ps).encode(), JSON)
    assert (p.size_vram, p.expires_at) == (10, "2025-01-01T00:05:00Z")
    with pytest.raises(MalformedResponseError):
        ol.parse_list_models(b'{"models": [{"size": 1}]}', JSON)
    show = {"capabilities": ["completion", "tools"], "details": {}, "model_info": {"llama.context_length": 131072}}
    info = ol.parse_show(json.dumps(show).encode(), JSON)
    assert info.capabilities == ("completion", "tools") and info.context_length == 131072
    assert ol.parse_version(b'{"version": "0.12.6"}', JSON) == "0.12.6"
    with pytest.raises(MalformedResponseError):
        ol.parse_version(b"{}", JSON)


def test_pull_progress_parser() -> None:
    raw = ndjson(
        {"status": "pulling manifest"},
        {"status": "pulling abc", "digest": "sha256:abc", "total": 100, "completed": 50},
        {"status": "pulling abc", "digest": "sha256:abc", "total": 100, "completed": 100},
        {"status": "success"},
    )
    items = feed(ol.PullProgressParser(), raw, size=5)
    assert [i.status for i in items] == ["pulling manifest", "pulling abc", "pulling abc", "success"]
    assert items[1] == ol.PullProgress("pulling abc", "sha256:abc", 100, 50)
    assert items[-1].success
    assert ol.parse_pull(b'{"status":"success"}', JSON)[-1].success


def test_pull_errors() -> None:
    with pytest.raises(NotFoundError) as ei:
        ol.parse_pull(ndjson({"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}), {})
    assert ei.value.provider_message == "pull model manifest: file does not exist"
    with pytest.raises(InternalServerError):
        ol.parse_pull(ndjson({"error": "max retries exceeded: connection reset"}), {})
    with pytest.raises(IncompleteStreamError, match="pulling manifest"):
        ol.parse_pull(ndjson({"status": "pulling manifest"}), {})


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "raw", "cls", "etype", "message"),
    [
        (404, b'{"error":"model \\"x\\" not found, try pulling it first"}', NotFoundError, "model_not_found", None),
        (404, b'{"error":"model \'x\' not found"}', NotFoundError, "model_not_found", None),
        (400, b'{"error":"model is required"}', BadRequestError, "invalid_request", "model is required"),
        (400, b'{"error":"\\"nomic\\" does not support chat"}', BadRequestError, "not_supported", None),
        (500, b'{"error":"llama runner process has terminated"}', InternalServerError, "server_error", None),
        (503, b'{"error":"server busy, please try again.  maximum pending requests exceeded"}', InternalServerError,
         "server_busy", None),
        (502, b"<html>Bad Gateway</html>", InternalServerError, "server_error", "<html>Bad Gateway</html>"),
    ],
)  # fmt: skip
def test_classify_error(status: int, raw: bytes, cls: type, etype: str, message: str | None) -> None:
    err = ol.classify_error(status, {"content-type": "application/json"}, raw)
    assert type(err) is cls and err.status_code == status and err.error_type == etype
    expected = message or json.loads(raw)["error"]
    assert err.provider_message == expected and expected in str(err)
    assert err.retryable is (status >= 500)


def test_classify_429_with_retry_after() -> None:
    err = ol.classify_error(429, {"retry-after": "2"}, b'{"error":"too many requests"}')
    assert isinstance(err, RateLimitError) and err.retry_after == 2.0 and err.error_type == "rate_limit"


def test_openai_compatible_provider_parses_openai_shapes() -> None:
    preq = ol.OPENAI_PROVIDER.build_chat(ChatRequest((Message.user("hi"),)), "llama3.2", False)
    assert preq.path == "/chat/completions"
    err = ol.OPENAI_PROVIDER.classify_error(
        404, {}, b'{"error":{"message":"model \\"x\\" not found","type":"not_found_error","param":null,"code":null}}'
    )
    assert isinstance(err, NotFoundError) and err.provider == "ollama_openai" and err.error_type == "not_found_error"
