"""Unit tests of the pure Gemini (Generative Language API) provider (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infermux.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from infermux.providers import get_provider
from infermux.providers.gemini import (
    PROVIDER,
    build_chat,
    build_count_tokens,
    build_embed,
    build_list_models,
    chat_request_from_wire,
    classify_error,
    map_finish_reason,
    model_resource,
    parse_chat,
    parse_count_tokens,
    parse_embed,
    parse_models,
    parse_retry_delay,
)
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
    ToolCallStart,
    Usage,
    UsageEvent,
)

JSON_H = {"content-type": "application/json; charset=UTF-8"}
WEATHER = Tool("get_weather", "Weather by city", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = Tool("get_time", "", {"type": "object", "properties": {}})


def body_of(req: ChatRequest, stream: bool = False) -> dict[str, Any]:
    pr = build_chat(req, "gemini-2.5-flash", stream)
    assert pr.method == "POST" and pr.stream is stream
    assert isinstance(pr.json, dict)
    return pr.json


def jbytes(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def feed_all(raw: bytes, chunk: int = 7) -> list[StreamEvent]:
    p = PROVIDER.new_stream_parser()
    out: list[StreamEvent] = []
    for i in range(0, len(raw), chunk):
        out += p.feed(raw[i : i + chunk])
    return out + p.close()


def sse(*chunks: Any) -> bytes:
    return b"".join(b"data: " + jbytes(c) + b"\r\n\r\n" for c in chunks)


# --------------------------------------------------------------------------- registry / routes


def test_registry_and_aliases() -> None:
    assert get_provider("gemini") is PROVIDER
    assert get_provider("google") is PROVIDER
    assert PROVIDER.default_base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert PROVIDER.auth_headers("k") == {"x-goog-api-key": "k"}
    assert {"chat", "stream", "tools", "vision", "json", "embed"} <= PROVIDER.capabilities


def test_paths_put_the_model_in_the_url() -> None:
    req = ChatRequest((Message.user("hi"),))
    assert build_chat(req, "gemini-2.5-flash", False).path == "/models/gemini-2.5-flash:generateContent"
    assert build_chat(req, "models/gemini-2.5-flash", True).path == (
        "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert build_chat(req, "tunedModels/my-model", False).path == "/tunedModels/my-model:generateContent"
    assert model_resource("gemini-embedding-001") == "models/gemini-embedding-001"


@pytest.mark.parametrize("bad", ["", "a b", "x/../y", "m?alt=json", "models/", "a:generateContent"])
def test_bad_model_name_is_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        build_chat(ChatRequest((Message.user("hi"),)), bad, False)


# --------------------------------------------------------------------------- request building


def test_messages_system_images_and_merging() -> None:
    req = ChatRequest(
        (
            Message.system("be brief"),
            Message.user("hello"),
            Message.user((TextPart("look"), ImagePart(data="AAAA", media_type="image/png"))),
            Message.user((ImagePart(url="https://example.com/cat.jpg"),)),
            Message.assistant("sure"),
            Message.system("and polite"),
        )
    )
    b = body_of(req)
    assert b["systemInstruction"] == {"parts": [{"text": "be brief"}, {"text": "and polite"}]}
    assert b["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "hello"},
                {"text": "look"},
                {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
            ],
        },
        {"role": "model", "parts": [{"text": "sure"}]},
    ]
    assert "generationConfig" not in b and "tools" not in b


def test_generation_config_and_json_modes() -> None:
    req = ChatRequest(
        (Message.user("x"),), temperature=1.5, top_p=0.9, max_tokens=64, stop=("END",), seed=7,
        response_format=ResponseFormat("json_schema", {"type": "object", "properties": {"a": {"type": "integer"}}}),
    )  # fmt: skip
    cfg = body_of(req)["generationConfig"]
    assert cfg == {
        "temperature": 1.5,
        "topP": 0.9,
        "maxOutputTokens": 64,
        "stopSequences": ["END"],
        "seed": 7,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }
    plain = body_of(ChatRequest((Message.user("x"),), response_format=ResponseFormat("json_object")))
    assert plain["generationConfig"] == {"responseMimeType": "application/json"}


def test_too_many_stop_sequences() -> None:
    with pytest.raises(ConfigurationError, match="at most 5"):
        body_of(ChatRequest((Message.user("x"),), stop=("a", "b", "c", "d", "e", "f")))


def test_extra_merges_generation_config_key_by_key() -> None:
    req = ChatRequest(
        (Message.user("x"),),
        max_tokens=10,
        extra={"generationConfig": {"topK": 3}, "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT"}]},
    )
    b = body_of(req)
    assert b["generationConfig"] == {"maxOutputTokens": 10, "topK": 3}
    assert b["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT"}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ("get_time", {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
    ],
)
def test_tools_and_tool_choice(choice: str, expected: dict[str, Any]) -> None:
    b = body_of(ChatRequest((Message.user("x"),), tools=(WEATHER, TIME), tool_choice=choice))
    assert b["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "Weather by city", "parametersJsonSchema": WEATHER.parameters},
                {"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {}}},
            ]
        }
    ]
    assert b["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_round_trip_names_function_responses() -> None:
    call = ToolCall.from_raw("call_0", "get_weather", '{"city": "Paris"}')
    req = ChatRequest(
        (
            Message.user("weather?"),
            Message.assistant("checking", tool_calls=(call,)),
            Message.tool("call_0", '{"temp": 21}'),
            Message.tool("call_0", "plain text result"),
            Message.user("thanks"),
        ),
        tools=(WEATHER,),
    )
    contents = body_of(req)["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"text": "checking"}, {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"output": "plain text result"}}},
            {"text": "thanks"},
        ],
    }


def test_tool_message_without_known_call_needs_a_name() -> None:
    with pytest.raises(ConfigurationError, match="function name"):
        body_of(ChatRequest((Message.user("x"), Message.tool("nope", "r"))))
    named = Message("tool", "r", name="get_time", tool_call_id="nope")
    assert body_of(ChatRequest((Message.user("x"), named)))["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "get_time", "response": {"output": "r"}}
    }


def test_bad_tool_arguments_and_system_only() -> None:
    bad = ToolCall("c1", "get_weather", None, "not json")
    with pytest.raises(ConfigurationError, match="JSON object"):
        body_of(ChatRequest((Message.user("x"), Message.assistant(tool_calls=(bad,)))))
    with pytest.raises(ConfigurationError, match="non-system"):
        body_of(ChatRequest((Message.system("only"),)))


def test_count_tokens_request_forms() -> None:
    simple = build_count_tokens(ChatRequest((Message.user("one two"),)), "gemini-2.5-flash")
    assert simple.path == "/models/gemini-2.5-flash:countTokens"
    assert simple.json == {"contents": [{"role": "user", "parts": [{"text": "one two"}]}]}
    full = build_count_tokens(ChatRequest((Message.system("s"), Message.user("u")), tools=(TIME,)), "gemini-2.5-flash")
    inner = full.json["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash" and "systemInstruction" in inner and "tools" in inner
    assert parse_count_tokens(jbytes({"totalTokens": 12}), JSON_H) == 12
    assert parse_count_tokens(jbytes({}), JSON_H) == 0
    with pytest.raises(MalformedResponseError):
        parse_count_tokens(jbytes({"totalTokens": "x"}), JSON_H)


def test_list_models() -> None:
    assert build_list_models().path == "/models"
    assert build_list_models(50, "tok/=").path == "/models?pageSize=50&pageToken=tok%2F%3D"
    body = {"models": [{"name": "models/gemini-2.5-flash"}, {"name": "models/text-embedding-004"}]}
    assert parse_models(jbytes(body), JSON_H) == ["gemini-2.5-flash", "text-embedding-004"]
    with pytest.raises(MalformedResponseError):
        parse_models(jbytes({"models": "x"}), JSON_H)


# --------------------------------------------------------------------------- responses


def response(parts: list[dict[str, Any]], finish: str | None = "STOP", **extra: Any) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 7, "thoughtsTokenCount": 11, "totalTokenCount": 23}
    return {"candidates": [cand], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash", "responseId": "r1"}


def test_parse_chat_text_usage_and_thoughts() -> None:
    body = response([{"text": "thinking...", "thought": True}, {"text": "Hello"}, {"text": " world"}])
    body["usageMetadata"]["cachedContentTokenCount"] = 2
    r = parse_chat(jbytes(body), JSON_H)
    assert r.text == "Hello world"
    assert r.finish_reason == "stop"
    assert r.usage == Usage(input_tokens=5, output_tokens=18, cached_tokens=2, reasoning_tokens=11)
    assert (r.model, r.response_id, r.provider) == ("gemini-2.5-flash", "r1", "gemini")


def test_parse_chat_function_calls_get_stable_ids() -> None:
    body = response(
        [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time"}},
            {"functionCall": {"name": "get_time", "args": {}, "id": "server-id"}},
        ]
    )
    r = parse_chat(jbytes(body), JSON_H)
    assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [
        ("call_0", "get_weather", {"city": "Paris"}),
        ("call_1", "get_time", {}),
        ("server-id", "get_time", {}),
    ]
    assert r.finish_reason == "tool_calls"
    assert json.loads(r.tool_calls[0].raw_arguments) == {"city": "Paris"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "other"),
        ("OTHER", "other"),
        ("SOMETHING_NEW", "other"),
        (None, None),
    ],
)
def test_finish_reasons(raw: str | None, expected: str | None) -> None:
    assert map_finish_reason(raw) == expected


def test_blocked_prompt_is_a_content_filter_response() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}
    r = parse_chat(jbytes(body), JSON_H)
    assert (r.text, r.finish_reason, r.tool_calls) == ("", "content_filter", ())
    assert r.raw["promptFeedback"]["blockReason"] == "SAFETY"


def test_safety_finish_without_content() -> None:
    body = {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": []}]}
    r = parse_chat(jbytes(body), JSON_H)
    assert (r.text, r.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"<html>502</html>", {"content-type": "text/html"}),
        (b'{"candidates": [{"content": {"parts": [{"te', JSON_H),
        (b'{"candidates": "nope"}', JSON_H),
        (b"{}", JSON_H),
        (b"[1, 2]", JSON_H),
        (b'{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}', JSON_H),
        (b'{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": [1]}}]}}]}', JSON_H),
    ],
)
def test_malformed_chat_bodies(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(MalformedResponseError):
        parse_chat(body, headers)


def test_error_object_in_a_200_body_is_typed() -> None:
    body = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    with pytest.raises(InternalServerError) as ei:
        parse_chat(jbytes(body), JSON_H)
    assert ei.value.error_type == "UNAVAILABLE"


# --------------------------------------------------------------------------- streaming


def test_stream_text_usage_and_finish_in_any_split() -> None:
    raw = sse(
        {
            "candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "abc",
        },
        {"candidates": [{"content": {"parts": [{"text": "lo ✓"}], "role": "model"}, "index": 0}]},
        {
            "candidates": [{"content": {"parts": [{"text": "!"}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
        },
    )
    for size in (1, 5, 64, len(raw)):
        events = feed_all(raw, size)
        assert events[0] == StreamStart("abc", "gemini-2.5-flash")
        assert isinstance(events[-1], StreamFinish) and events[-1].reason == "stop"
        acc = StreamAccumulator()
        for ev in events:
            acc.add(ev)
        assert acc.text == "Hello ✓!"
        assert acc.usage == Usage(3, 4)
        assert [type(e) for e in events].count(StreamFinish) == 1
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello ✓!"


def test_stream_function_calls() -> None:
    raw = sse(
        {
            "candidates": [
                {
                    "content": {"parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5},
        }
    )
    events = feed_all(raw)
    assert ToolCallStart(0, "call_0", "get_weather") in events
    end = next(e for e in events if isinstance(e, ToolCallEnd))
    assert end.call.arguments == {"city": "Oslo"}
    acc = StreamAccumulator()
    for ev in events:
        acc.add(ev)
    assert acc.finish_reason == "tool_calls"
    assert acc.tool_calls()[0].name == "get_weather"


def test_stream_without_finish_reason_is_incomplete() -> None:
    raw = sse({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]})
    with pytest.raises(IncompleteStreamError) as ei:
        feed_all(raw)
    assert ei.value.partial_text == "partial"
    with pytest.raises(IncompleteStreamError):
        feed_all(b"")


def test_stream_error_chunk_and_malformed_data() -> None:
    raw = sse({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    events = feed_all(raw)
    assert events == [StreamError("RESOURCE_EXHAUSTED", "quota", 429)]
    with pytest.raises(MalformedResponseError):
        feed_all(b'data: {"candidates": [\n\n')
    with pytest.raises(MalformedResponseError):
        feed_all(b"data: [1]\n\n")


def test_stream_blocked_prompt_finishes_with_content_filter() -> None:
    events = feed_all(sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}))
    assert isinstance(events[-1], StreamFinish) and events[-1].reason == "content_filter"


def test_usage_event_is_emitted_per_chunk_and_last_wins() -> None:
    raw = sse(
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": {"promptTokenCount": 2}},
        {
            "candidates": [{"finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1},
        },
    )
    events = feed_all(raw)
    assert [e for e in events if isinstance(e, UsageEvent)][-1].usage == Usage(2, 1)
    assert isinstance(events[-1], StreamFinish) and events[-1].reason == "length"


# --------------------------------------------------------------------------- embeddings


def test_build_embed_single_and_batch() -> None:
    one = build_embed(
        EmbedRequest(("hello",), dimensions=8, extra={"taskType": "RETRIEVAL_QUERY"}), "gemini-embedding-001"
    )
    assert one.path == "/models/gemini-embedding-001:embedContent"
    assert one.json == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "hello"}]},
        "outputDimensionality": 8,
        "taskType": "RETRIEVAL_QUERY",
    }
    many = build_embed(EmbedRequest(("a", "b")), "gemini-embedding-001")
    assert many.path == "/models/gemini-embedding-001:batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in many.json["requests"]] == ["a", "b"]
    assert all(r["model"] == "models/gemini-embedding-001" for r in many.json["requests"])
    with pytest.raises(ConfigurationError):
        build_embed(EmbedRequest(("a",), dimensions=0), "gemini-embedding-001")


def test_parse_embed_shapes() -> None:
    single = parse_embed(jbytes({"embedding": {"values": [0.5, -1, 2]}}), JSON_H)
    assert single.vectors == ((0.5, -1.0, 2.0),) and single.usage is None
    batch = parse_embed(
        jbytes({"embeddings": [{"values": [1.0]}, {"values": [2.0]}], "usageMetadata": {"promptTokenCount": 4}}),
        JSON_H,
    )
    assert batch.vectors == ((1.0,), (2.0,)) and batch.usage == Usage(input_tokens=4)
    for bad in ({}, {"embeddings": []}, {"embedding": {"values": ["x"]}}, {"embeddings": [{"values": None}]}):
        with pytest.raises(MalformedResponseError):
            parse_embed(jbytes(bad), JSON_H)


# --------------------------------------------------------------------------- errors


def gerr(code: int, status: str, message: str, details: list[Any] | None = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        err["details"] = details
    return jbytes({"error": err})


def test_429_retry_info_gives_retry_after() -> None:
    body = gerr(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota",
        [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"},
        ],
    )
    e = classify_error(429, JSON_H, body)
    assert isinstance(e, RateLimitError)
    assert (e.error_type, e.provider_message, e.retry_after) == (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota",
        31.0,
    )
    assert classify_error(429, {**JSON_H, "retry-after": "2"}, body).retry_after == 2.0


@pytest.mark.parametrize(("value", "expected"), [("31s", 31.0), ("1.5s", 1.5), ("0s", 0.0), ("31", None), (5, None)])
def test_parse_retry_delay(value: object, expected: float | None) -> None:
    assert parse_retry_delay(value) == expected


def test_bad_api_key_is_authentication_error_with_wire_status() -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}
    ]
    e = classify_error(
        400, JSON_H, gerr(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details)
    )
    assert isinstance(e, AuthenticationError)
    assert (e.status_code, e.error_type, e.retryable) == (400, "API_KEY_INVALID", False)
    assert e.provider_message == "API key not valid. Please pass a valid API key."
    # the same status without the ErrorInfo reason stays a plain bad request
    plain = classify_error(400, JSON_H, gerr(400, "INVALID_ARGUMENT", "* contents: contents is not specified"))
    assert type(plain) is BadRequestError and plain.error_type == "INVALID_ARGUMENT"


def test_json_array_error_body() -> None:
    body = b'[{"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}]'
    e = classify_error(404, JSON_H, body)
    assert (
        isinstance(e, NotFoundError) and e.error_type == "NOT_FOUND" and e.provider_message == "models/x is not found"
    )


@pytest.mark.parametrize(
    ("status", "gstatus", "cls"),
    [
        (403, "PERMISSION_DENIED", PermissionDeniedError),
        (500, "INTERNAL", InternalServerError),
        (503, "UNAVAILABLE", InternalServerError),
        (504, "DEADLINE_EXCEEDED", InternalServerError),
    ],
)
def test_status_classes(status: int, gstatus: str, cls: type[Exception]) -> None:
    e = classify_error(status, JSON_H, gerr(status, gstatus, "m"))
    assert type(e) is cls and e.error_type == gstatus and e.status_code == status


def test_html_error_body_is_tolerated() -> None:
    e = classify_error(502, {"content-type": "text/html"}, b"<html><body>Bad Gateway</body></html>")
    assert isinstance(e, InternalServerError) and e.error_type is None
    assert "Bad Gateway" in (e.provider_message or "")


# --------------------------------------------------------------------------- wire -> ChatRequest


def test_chat_request_from_wire_round_trip() -> None:
    call = ToolCall.from_raw("call_0", "get_weather", {"city": "Paris"})
    req = ChatRequest(
        (
            Message.system("be brief"),
            Message.user((TextPart("hi"), ImagePart(data="AAAA", media_type="image/png"))),
            Message.assistant(tool_calls=(call,)),
            Message.tool("call_0", '{"temp": 21}'),
        ),
        temperature=0.5,
        max_tokens=20,
        stop=("X",),
        tools=(WEATHER,),
        tool_choice="get_weather",
        response_format=ResponseFormat("json_object"),
    )
    wire = body_of(req)
    back = chat_request_from_wire(wire, model="gemini-2.5-flash")
    assert back.model == "gemini-2.5-flash"
    assert (back.temperature, back.max_tokens, back.stop, back.tool_choice) == (0.5, 20, ("X",), "get_weather")
    assert back.response_format == ResponseFormat("json_object")
    assert back.tools == (WEATHER,)
    assert back.messages[2].tool_calls[0].arguments == {"city": "Paris"}
    assert back.messages[3].role == "tool" and back.messages[3].tool_call_id == "call_0"
    assert body_of(back) == wire


def test_chat_request_from_wire_snake_case_and_errors() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "AA=="}}]}],
        "system_instruction": {"parts": [{"text": "s"}]},
        "generation_config": {"top_k": 4},
    }
    req = chat_request_from_wire(body)
    assert req.messages[0] == Message.system("s")
    assert req.extra == {"generationConfig": {"top_k": 4}}
    for bad in ({}, {"contents": []}, {"contents": [{"parts": [{"executableCode": {}}]}]}):
        with pytest.raises(ConfigurationError):
            chat_request_from_wire(bad)
    with pytest.raises(ConfigurationError):
        chat_request_from_wire({"contents": [{"role": "bot", "parts": [{"text": "x"}]}]})


def test_chat_request_from_wire_keeps_sdk_shaped_tools_verbatim() -> None:
    # google-genai sends an OpenAPI "parameters" schema with upper-case types and may add googleSearch:
    # neither is a neutral Tool, so both stay in extra (with toolConfig) and render back unchanged.
    tools = [
        {"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {}}}]},
        {"googleSearch": {}},
    ]
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": tools,
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    }
    req = chat_request_from_wire(body)
    assert req.tools == () and req.extra["tools"] == tools
    assert body_of(req) == body
    # the same tools in our own spelling still become neutral tools
    ours = body_of(ChatRequest((Message.user("hi"),), tools=(WEATHER,), tool_choice="auto"))
    assert chat_request_from_wire(ours).tools == (WEATHER,)


def test_chat_request_from_wire_keeps_parts_it_cannot_model() -> None:
    # a thinking model's functionCall carries a thoughtSignature that must be sent back: not neutral, so the
    # contents travel verbatim in extra (neither dropped nor refused) and the round trip is exact
    for part, kept in (
        ({"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "CiQB0e2K"}, ["f"]),
        ({"text": "plan", "thought": True}, []),
    ):
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [part]}]}
        req = chat_request_from_wire(body, model="m")
        assert req.extra["contents"] == body["contents"]
        assert [c.name for m in req.messages for c in m.tool_calls] == kept  # thoughts are not in the neutral view
        assert build_chat(req, "m", False).json == body
