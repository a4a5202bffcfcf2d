"""Unit tests of the pure OpenAI providers (chat completions, embeddings, legacy completions, Responses API)."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from infermux.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from infermux.providers import get_provider
from infermux.providers import openai as oa
from infermux.providers import openai_responses as oar
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
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
    WireEvent,
)

JSON = {"content-type": "application/json"}
WEATHER = Tool("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})


def _req(**kw: Any) -> ChatRequest:
    return ChatRequest(messages=kw.pop("messages", (Message.user("hi"),)), **kw)


# --------------------------------------------------------------------------- build_chat


def test_build_chat_minimal_sends_no_nulls() -> None:
    pr = oa.build_chat(_req(), "gpt-4o-mini", False)
    assert (pr.method, pr.path, pr.stream) == ("POST", "/chat/completions", False)
    assert pr.headers == {"content-type": "application/json"}
    assert pr.json == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_build_chat_all_options() -> None:
    req = _req(
        messages=(
            Message.system("be brief"),
            Message.user((TextPart("what is this?"), ImagePart(url="https://x/img.png", detail="low"))),
            Message.user((ImagePart.from_bytes(b"\x89PNG", "image/png"),)),
            Message.assistant(None, [ToolCall.from_raw("call_1", "get_weather", '{"city":"Paris"}')]),
            Message.tool("call_1", "sunny"),
        ),
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=("END",),
        tools=(Tool("get_weather", "Weather", {"type": "object", "properties": {}}, strict=True),),
        tool_choice="get_weather",
        parallel_tool_calls=False,
        response_format=ResponseFormat("json_schema", schema={"type": "object"}, name="out", strict=True),
        seed=7,
        user="u1",
        metadata={"trace": "abc"},
        extra={"logprobs": True, "temperature": 0.3},
    )
    body = oa.build_chat(req, "m", False).json
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/img.png", "detail": "low"}},
            ],
        },
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}]},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {}},
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    assert body["stop"] == ["END"]
    # the official API gets max_completion_tokens (its reasoning models refuse max_tokens)
    assert (body["top_p"], body["max_completion_tokens"], body["seed"], body["user"]) == (0.9, 50, 7, "u1")
    assert "max_tokens" not in body
    assert body["parallel_tool_calls"] is False
    assert body["temperature"] == 0.3 and body["logprobs"] is True  # extra merged last
    assert "metadata" not in body  # infermux-side only
    compatible = oa.build_compatible_chat(req, "m", False).json  # OpenAI-compatible servers: max_tokens
    assert compatible["max_tokens"] == 50 and "max_completion_tokens" not in compatible
    assert {k: v for k, v in compatible.items() if k != "max_tokens"} == {
        k: v for k, v in body.items() if k != "max_completion_tokens"
    }


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_build_chat_tool_choice_strings(choice: str) -> None:
    assert oa.build_chat(_req(tools=(WEATHER,), tool_choice=choice), "m", False).json["tool_choice"] == choice


def test_build_chat_json_mode_and_stream() -> None:
    pr = oa.build_chat(_req(response_format=ResponseFormat("json_object")), "m", True)
    assert pr.json["response_format"] == {"type": "json_object"}
    assert pr.stream and pr.json["stream"] is True
    assert pr.json["stream_options"] == {"include_usage": True}


def test_chat_request_from_wire_round_trips() -> None:
    wire = {
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "tools": [
            {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_object"},
        "max_tokens": 5,
        "stop": ["x"],
        "n": 2,
        "logprobs": None,
        "stream": True,
        "metadata": {"k": "v"},
    }
    req = oa.chat_request_from_wire(wire)
    assert req.messages[0].role == "system"
    assert req.tool_choice == "f" and req.max_tokens == 5 and req.stop == ("x",)
    assert req.extra == {"n": 2, "metadata": {"k": "v"}, "max_tokens": 5}  # the wire's spelling of the limit
    body = oa.build_chat(req, "gpt-4o", False).json
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body  # sent back as it came
    assert body["tools"] == wire["tools"] and body["tool_choice"] == wire["tool_choice"]
    assert body["n"] == 2 and "logprobs" not in body and "stream" not in body


def test_chat_request_from_wire_keeps_unmodelled_shapes_raw() -> None:
    wire = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search"}],
        "tool_choice": "get_current_weather",  # TGI's bare-name form
        "response_format": {"type": "json", "value": {"properties": {}}},
    }
    req = oa.chat_request_from_wire(wire)
    assert not req.tools and req.tool_choice is None and req.response_format is None
    assert req.extra == {k: v for k, v in wire.items() if k != "messages"}
    assert oa.build_chat(req, "m", False).json == {"model": "m", **wire}


@pytest.mark.parametrize(
    "body",
    [[], {"messages": []}, {"messages": "hi"}, {"messages": [{"content": "no role"}]}, {"model": 3, "messages": [{}]}],
)
def test_chat_request_from_wire_rejects_bad_bodies(body: Any) -> None:
    with pytest.raises(ConfigurationError):
        oa.chat_request_from_wire(body)


# --------------------------------------------------------------------------- parse_chat


def _completion(**over: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}},
    }
    body.update(over)
    return json.dumps(body).encode()


def test_parse_chat_text() -> None:
    r = oa.parse_chat(_completion(), {**JSON, "x-request-id": "req_1"})
    assert (r.text, r.finish_reason, r.model, r.response_id) == ("Hello", "stop", "gpt-4o-mini", "chatcmpl-1")
    assert (r.provider, r.provider_request_id) == ("openai", "req_1")
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens) == (9, 2, 4)
    assert r.raw["id"] == "chatcmpl-1"


def test_parse_chat_tool_calls() -> None:
    msg = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
    }
    r = oa.parse_chat(_completion(choices=[{"message": msg, "finish_reason": "tool_calls"}]), JSON)
    assert r.text == "" and r.finish_reason == "tool_calls"
    assert r.tool_calls == (ToolCall("c1", "f", {"a": 1}, '{"a": 1}'),)


def test_parse_chat_json_mode_text_is_json() -> None:
    msg = {"role": "assistant", "content": '{"answer": 42}'}
    assert oa.parse_chat(_completion(choices=[{"message": msg, "finish_reason": "stop"}]), JSON).json() == {
        "answer": 42
    }


@pytest.mark.parametrize(
    ("raw", "mapped"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("weird", "other"),
    ],
)
def test_finish_reason_mapping(raw: str, mapped: str) -> None:
    body = _completion(choices=[{"message": {"content": "x"}, "finish_reason": raw}])
    assert oa.parse_chat(body, JSON).finish_reason == mapped


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", {"content-type": "text/html"}),
        (b"<html>oops</html>", {}),
        (b'{"id": "x", "choices": [{"message": {"content": "Hel', JSON),
        (b"", JSON),
        (b"[1, 2]", JSON),
        (b'{"choices": []}', JSON),
        (b'{"choices": [{"message": "text"}]}', JSON),
        (b'{"choices": [{"message": {"tool_calls": [{"id": 1}]}}]}', JSON),
        (b'{"error": {"message": "boom", "type": "server_error"}}', JSON),
    ],
)
def test_parse_chat_malformed(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(MalformedResponseError):
        oa.parse_chat(body, headers)


# --------------------------------------------------------------------------- chat streaming


def _sse(*objs: Any, done: bool = True) -> bytes:
    lines = [f"data: {o if isinstance(o, str) else json.dumps(o)}\n\n" for o in objs]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def _chunk(delta: dict[str, Any], finish: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **kw}


def _run(parser: Any, raw: bytes, size: int) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for i in range(0, len(raw), size):
        out.extend(parser.feed(raw[i : i + size]))
    return out + parser.close()


STREAM = _sse(
    {"id": "", "model": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]},  # Azure
    _chunk({"role": "assistant", "content": ""}, obfuscation="xyz"),
    _chunk({"content": "Hel"}),
    _chunk({"content": "lo ☃"}, x_groq={"id": "g"}),
    _chunk(
        {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
    _chunk({}, "tool_calls"),
    {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
)


def test_stream_events_byte_by_byte_equal_one_chunk() -> None:
    every = _run(oa.ChatStreamParser(), STREAM, len(STREAM))
    assert every == _run(oa.ChatStreamParser(), STREAM, 1)
    # the chunks with no event of their own (Azure's verdicts, the finish_reason chunk) are WireEvents, for a
    # gateway's same-protocol renderer; every other event carries its chunk
    wires = [e for e in every if isinstance(e, WireEvent)]
    assert [json.loads(w.wire[2]).get("prompt_filter_results") is not None for w in wires] == [True, False]
    one = [e for e in every if not isinstance(e, WireEvent)]
    assert all(e.wire is not None for e in one[:-1]) and one[-1].wire is None  # [DONE]: no chunk
    assert one == [
        StreamStart("c1", "m"),
        TextDelta("Hel"),
        TextDelta("lo ☃"),
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, '{"a":'),
        ToolCallDelta(0, " 1}"),
        UsageEvent(oa.parse_usage({"prompt_tokens": 3, "completion_tokens": 4})),  # type: ignore[arg-type]
        StreamFinish("tool_calls"),
    ]
    acc = StreamAccumulator()
    for e in one:
        acc.add(e)
    resp = acc.response()
    assert resp.text == "Hello ☃" and resp.finish_reason == "tool_calls"
    assert resp.tool_calls == (ToolCall("call_1", "f", {"a": 1}, '{"a": 1}'),)


def test_stream_without_done_after_finish_reason_is_incomplete() -> None:
    """Termination rule (issue 8 item 9): OpenAI always ends with [DONE]; the usage chunk comes after the
    finish_reason chunk, so a stream cut there is incomplete, not silently complete without its usage."""
    raw = _sse(_chunk({"content": "ok"}), _chunk({}, "length"), done=False)
    p = oa.ChatStreamParser()
    p.feed(raw)
    with pytest.raises(IncompleteStreamError, match=r"without \[DONE\], after its finish_reason") as exc:
        p.close()
    assert exc.value.partial_text == "ok" and exc.value.retryable
    assert _run(oa.ChatStreamParser(), raw + b"data: [DONE]\n\n", 5)[-1] == StreamFinish("length")


def test_stream_without_done_but_with_finish_reason_is_complete_where_the_rule_says_so() -> None:
    raw = _sse(_chunk({"content": "ok"}), _chunk({}, "length"), done=False)
    assert _run(oa.ChatStreamParser(done_required=False), raw, 5)[-1] == StreamFinish("length")
    tgi_chat = get_provider("tgi_chat").new_stream_parser  # TGI's Messages API: finish_reason is enough
    assert _run(tgi_chat(), raw, 5)[-1] == StreamFinish("length")
    for name in ("openai", "groq", "vllm", "llamacpp", "ollama_openai", "ovms", "opea_llm"):
        parser = get_provider(name).new_stream_parser()
        parser.feed(raw)
        with pytest.raises(IncompleteStreamError):
            parser.close()


def test_stream_cut_mid_way_is_incomplete_with_partial_text() -> None:
    raw = _sse(_chunk({"content": "Hel"}), _chunk({"content": "lo"}), done=False)
    p = oa.ChatStreamParser()
    assert [e for e in p.feed(raw) if isinstance(e, TextDelta)] == [TextDelta("Hel"), TextDelta("lo")]
    with pytest.raises(IncompleteStreamError) as exc:
        p.close()
    assert exc.value.partial_text == "Hello"


def test_stream_cut_mid_line_is_incomplete() -> None:
    raw = _sse(_chunk({"content": "Hi"}), done=False) + b'data: {"id": "c1", "choi'
    p = oa.ChatStreamParser()
    p.feed(raw)
    with pytest.raises(MalformedResponseError):  # the half line is flushed at close and is not JSON
        p.close()


def test_stream_empty_body_is_incomplete() -> None:
    with pytest.raises(IncompleteStreamError):
        oa.ChatStreamParser().close()


def test_stream_bad_json_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        oa.ChatStreamParser().feed(b"data: {not json}\n\n")


def test_stream_in_band_error() -> None:
    raw = _sse(_chunk({"content": "a"}), {"error": {"message": "overloaded", "type": "server_error"}}, done=False)
    events = _run(oa.ChatStreamParser(), raw, 3)
    assert events[-1] == StreamError("server_error", "overloaded")


def test_stream_events_after_done_are_ignored_and_finish_once() -> None:
    raw = _sse(_chunk({"content": "a"}, "stop")) + _sse(_chunk({"content": "late"}))
    events = _run(oa.ChatStreamParser(), raw, 4)
    assert [e for e in events if isinstance(e, StreamFinish)] == [StreamFinish("stop")]
    assert TextDelta("late") not in events


def test_legacy_completion_stream_chunks() -> None:
    raw = _sse({"id": "cmpl", "choices": [{"index": 0, "text": "Hi", "finish_reason": None}]})
    assert _run(oa.ChatStreamParser(), raw, 2)[1:] == [TextDelta("Hi"), StreamFinish(None)]


# --------------------------------------------------------------------------- embeddings


def test_build_embed() -> None:
    pr = oa.build_embed(EmbedRequest(["a", "b"], dimensions=64, extra={"user": "u"}), "text-embedding-3-small")
    assert (pr.method, pr.path) == ("POST", "/embeddings")
    assert pr.json == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "float",
        "dimensions": 64,
        "user": "u",
    }


def test_parse_embed_floats_and_base64_in_index_order() -> None:
    b64 = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    body = {
        "data": [{"index": 1, "embedding": b64}, {"index": 0, "embedding": [1, 2.5, 3]}],
        "model": "e",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
    r = oa.parse_embed(json.dumps(body).encode(), JSON)
    assert r.vectors == ((1.0, 2.5, 3.0), (0.5, -1.0, 2.0))
    assert r.usage is not None and r.usage.input_tokens == 5 and r.dimensions == 3


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"embedding": "!!notbase64"}]}',
        b'{"data": [{"embedding": "AAA="}]}',  # 2 bytes: not float32
        b'{"data": [{"embedding": [1, "x"]}]}',
        b'{"data": {}}',
        b'{"object": "list"}',
        b"<html></html>",
    ],
)
def test_parse_embed_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        oa.parse_embed(body, JSON)


# --------------------------------------------------------------------------- legacy completions


def test_legacy_completion_build_and_parse() -> None:
    pr = oa.build_completion("gpt-3.5-turbo-instruct", "Say hi", max_tokens=5, stop=["\n"], stream=True)
    assert pr.path == "/completions" and pr.stream
    assert pr.json == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "Say hi",
        "max_tokens": 5,
        "stop": ["\n"],
        "stream": True,
    }
    body = {"id": "cmpl-1", "choices": [{"text": " hi", "finish_reason": "length"}], "usage": {"prompt_tokens": 2}}
    r = oa.parse_completion(json.dumps(body).encode(), JSON)
    assert (r.text, r.finish_reason, r.response_id) == (" hi", "length", "cmpl-1")
    with pytest.raises(MalformedResponseError):
        oa.parse_completion(b'{"choices": [{"message": {}}]}', JSON)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (409, ConflictError, True),
        (422, UnprocessableEntityError, False),
        (429, RateLimitError, True),
        (500, InternalServerError, True),
        (503, InternalServerError, True),
        (529, OverloadedError, True),
    ],
)
def test_classify_error_table(status: int, cls: type[APIStatusError], retryable: bool) -> None:
    body = json.dumps({"error": {"message": "nope", "type": "some_type", "param": None, "code": "c"}}).encode()
    err = oa.classify_error(status, {"x-request-id": "req_9"}, body)
    assert type(err) is cls
    assert (err.status_code, err.error_type, err.provider_message) == (status, "some_type", "nope")
    assert err.provider_request_id == "req_9" and err.retryable is retryable
    assert err.should_retry_header is None and err.provider == "openai"


def test_classify_rate_limit_retry_after_ms() -> None:
    err = oa.classify_error(429, {"retry-after-ms": "1500", "retry-after": "9"}, b'{"error": {"message": "slow"}}')
    assert isinstance(err, RateLimitError) and err.retry_after == 1.5


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("TRUE", True)])
def test_classify_x_should_retry(value: str, expected: bool) -> None:
    err = oa.classify_error(400 if expected else 503, {"x-should-retry": value}, b"{}")
    assert err.should_retry_header is expected and err.retryable is expected


@pytest.mark.parametrize(
    ("body", "etype", "message"),
    [
        (b"<html><h1>502 Bad Gateway</h1></html>", None, "<html><h1>502 Bad Gateway</h1></html>"),
        (b'"plain string"', None, "plain string"),
        (b"upstream connect error", None, "upstream connect error"),
        (b'{"error": "Model is overloaded", "error_type": "overloaded"}', "overloaded", "Model is overloaded"),
        (b'{"detail": "Not Found"}', None, "Not Found"),
        (b'{"error": {"code": "DeploymentNotFound", "message": "no such deployment"}}', "DeploymentNotFound", None),
        (b"", None, None),
    ],
)
def test_classify_odd_bodies(body: bytes, etype: str | None, message: str | None) -> None:
    err = oa.classify_error(502, {}, body)
    assert isinstance(err, InternalServerError) and err.error_type == etype
    if message is not None:
        assert message in str(err)
    if etype == "DeploymentNotFound":
        assert err.provider_message == "no such deployment"


def test_classify_insufficient_quota_not_retryable() -> None:
    body = b'{"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}'
    err = oa.classify_error(429, {}, body)
    assert isinstance(err, RateLimitError) and not err.retryable


def test_provider_values() -> None:
    p = get_provider("openai")
    assert p is oa.PROVIDER and p.name == "openai" and p.default_base_url == "https://api.openai.com/v1"
    assert p.auth_headers("sk-x") == {"authorization": "Bearer sk-x"}
    assert p.provider_request_id({"x-request-id": "r"}) == "r"
    assert oa.RESPONSES_PROVIDER is oar.PROVIDER is get_provider("openai_responses")  # type: ignore[attr-defined]
    compat = oa.make_openai_compatible("vllm", "http://127.0.0.1:8000/v1")
    assert compat.parse_chat(_completion(), JSON).provider == "vllm"
    assert compat.classify_error(400, {}, b"{}").provider == "vllm"


# --------------------------------------------------------------------------- Responses API


def test_responses_build_chat() -> None:
    req = _req(
        messages=(
            Message.system("sys"),
            Message.user((TextPart("look"), ImagePart(url="https://x/i.png"))),
            Message.assistant("calling", [ToolCall.from_raw("call_1", "get_weather", '{"city":"Oslo"}')]),
            Message.tool("call_1", "rain"),
        ),
        max_tokens=100,
        temperature=0.5,
        tools=(WEATHER,),
        tool_choice="get_weather",
        response_format=ResponseFormat("json_schema", schema={"type": "object"}, name="o"),
    )
    pr = oar.build_chat(req, "gpt-4.1", True)
    assert (pr.method, pr.path, pr.stream) == ("POST", "/responses", True)
    assert pr.json == {
        "model": "gpt-4.1",
        "instructions": "sys",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "https://x/i.png"},
                ],
            },
            {"role": "assistant", "content": "calling"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
        ],
        "max_output_tokens": 100,
        "temperature": 0.5,
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER.parameters,
            }
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}}},
        "stream": True,
    }
    with pytest.raises(ConfigurationError):
        oar.build_chat(_req(stop=("x",)), "m", False)


def test_responses_parse_text_tool_calls_and_incomplete() -> None:
    body = {
        "id": "resp_1",
        "model": "gpt-4.1",
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "content": [{"type": "output_text", "text": "Hi"}, {"type": "output_text", "text": "!"}],
            },
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        ],
        "usage": {"input_tokens": 3, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 1}},
    }
    r = oar.parse_chat(json.dumps(body).encode(), JSON)
    assert (r.text, r.finish_reason, r.response_id) == ("Hi!", "tool_calls", "resp_1")
    assert r.tool_calls == (ToolCall("call_1", "f", {}, "{}"),)
    assert r.usage is not None and r.usage.cached_tokens == 1
    body.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"}, output=[])
    assert oar.parse_chat(json.dumps(body).encode(), JSON).finish_reason == "length"
    with pytest.raises(MalformedResponseError):
        oar.parse_chat(b'{"id": "x"}', JSON)


def _named(*events: tuple[str, dict[str, Any]]) -> bytes:
    return "".join(f"event: {e}\ndata: {json.dumps({'type': e, **d})}\n\n" for e, d in events).encode()


RESP_STREAM = _named(
    ("response.created", {"response": {"id": "resp_1", "model": "gpt-4.1", "status": "in_progress"}}),
    ("response.output_text.delta", {"delta": "Hel", "output_index": 0}),
    ("response.output_text.delta", {"delta": "lo", "output_index": 0}),
    ("response.output_item.added", {"output_index": 1, "item": {"type": "function_call", "call_id": "c", "name": "f"}}),
    ("response.function_call_arguments.delta", {"output_index": 1, "delta": '{"x"'}),
    ("response.function_call_arguments.delta", {"output_index": 1, "delta": ": 1}"}),
    (
        "response.output_item.done",
        {"output_index": 1, "item": {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"x": 1}'}},
    ),
    ("response.completed", {"response": {"status": "completed", "usage": {"input_tokens": 1, "output_tokens": 2}}}),
)


def test_responses_stream() -> None:
    one = _run(oar.ResponsesStreamParser(), RESP_STREAM, len(RESP_STREAM))
    assert one == _run(oar.ResponsesStreamParser(), RESP_STREAM, 1)
    assert one[0] == StreamStart("resp_1", "gpt-4.1")
    assert one[3:6] == [ToolCallStart(1, "c", "f"), ToolCallDelta(1, '{"x"'), ToolCallDelta(1, ": 1}")]
    assert one[6] == ToolCallEnd(1, ToolCall("c", "f", {"x": 1}, '{"x": 1}'))
    assert isinstance(one[-2], UsageEvent) and one[-1] == StreamFinish("tool_calls")


def test_responses_stream_incomplete_failed_and_cut() -> None:
    inc = _named(("response.incomplete", {"response": {"status": "incomplete"}}))
    assert _run(oar.ResponsesStreamParser(), inc, 3)[-1] == StreamFinish("length")
    failed = _named(("response.failed", {"response": {"error": {"code": "server_error", "message": "boom"}}}))
    assert _run(oar.ResponsesStreamParser(), failed, 3) == [StreamError("server_error", "boom")]
    cut = RESP_STREAM[: RESP_STREAM.index(b"event: response.output_item.added")]
    with pytest.raises(IncompleteStreamError) as exc:
        _run(oar.ResponsesStreamParser(), cut, 8)
    assert exc.value.partial_text == "Hello"


def test_responses_request_from_wire() -> None:
    wire = {
        "model": "gpt-4.1",
        "instructions": "sys",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
        ],
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"},
        "max_output_tokens": 10,
        "reasoning": {"effort": "low"},
        "stream": True,
    }
    req = oar.responses_request_from_wire(wire)
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool"]
    assert req.messages[2].tool_calls[0].id == "c1" and req.messages[3].tool_call_id == "c1"
    assert (req.tool_choice, req.max_tokens, req.extra) == ("f", 10, {"reasoning": {"effort": "low"}})
    body = oar.build_chat(req, "gpt-4.1", False).json
    assert body["tools"] == wire["tools"] and body["instructions"] == "sys" and body["reasoning"] == {"effort": "low"}
    with pytest.raises(ConfigurationError):
        oar.responses_request_from_wire({"input": [{"type": "reasoning", "summary": []}]})


def test_custom_tool_calls_are_tool_calls_in_chat_and_responses() -> None:
    # GPT-5 custom tools answer with free-form "input", not JSON "arguments": still a call for the caller
    chat = {
        "id": "chatcmpl-1",
        "model": "gpt-5-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_c1", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1;"}}
                    ],
                },
            }
        ],
    }
    r = oa.parse_chat(json.dumps(chat).encode(), {"content-type": "application/json"})
    assert [(c.id, c.name, c.arguments, c.raw_arguments) for c in r.tool_calls] == [
        ("call_c1", "run_sql", None, "SELECT 1;")
    ]
    item = {
        "id": "ctc_1",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "call_d4",
        "input": "SELECT 2;",
        "name": "run_sql",
    }
    resp = {
        "id": "resp_1",
        "status": "completed",
        "model": "gpt-5-mini",
        "output": [{"type": "reasoning", "id": "rs"}, item],
    }
    rr = oar.parse_chat(json.dumps(resp).encode(), {"content-type": "application/json"})
    assert [(c.id, c.name, c.raw_arguments) for c in rr.tool_calls] == [("call_d4", "run_sql", "SELECT 2;")]
    assert rr.finish_reason == "tool_calls"


def test_responses_stream_custom_tool_call_input_deltas() -> None:
    item = {"id": "ctc_1", "type": "custom_tool_call", "call_id": "call_d4", "name": "run_sql"}

    def ev(name: str, **data: Any) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

    raw = (
        ev("response.created", response={"id": "resp_1", "model": "gpt-5-mini"})
        + ev("response.output_item.added", output_index=1, item={**item, "input": ""})
        + ev("response.custom_tool_call_input.delta", output_index=1, delta="SELECT ")
        + ev("response.custom_tool_call_input.delta", output_index=1, delta="2;")
        + ev("response.output_item.done", output_index=1, item={**item, "input": "SELECT 2;"})
        + ev("response.completed", response={"id": "resp_1", "status": "completed", "output": [item]})
    ).encode()
    parser = oar.ResponsesStreamParser()
    acc = StreamAccumulator()
    for e in parser.feed(raw) + parser.close():
        acc.add(e)
    assert [(c.id, c.name, c.raw_arguments) for c in acc.tool_calls()] == [("call_d4", "run_sql", "SELECT 2;")]
    assert acc.finish_reason == "tool_calls"
