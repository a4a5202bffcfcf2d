"""Unit tests of the pure Anthropic Messages provider (no I/O)."""

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
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
)
from infermux.providers import get_provider
from infermux.providers.anthropic import (
    DEFAULT_MAX_TOKENS,
    PROVIDER,
    build_chat,
    build_count_tokens,
    chat_request_from_wire,
    classify_error,
    parse_chat,
    parse_count_tokens,
)
from infermux.types import (
    ChatRequest,
    ImagePart,
    Message,
    ReasoningBlock,
    ReasoningDelta,
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
    Usage,
    UsageEvent,
)

JSON_H = {"content-type": "application/json", "request-id": "req_123"}
WEATHER = Tool("get_weather", "Weather by city", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = Tool("get_time", "", {"type": "object", "properties": {}})


def body_of(req: ChatRequest, stream: bool = False) -> dict[str, Any]:
    pr = build_chat(req, "claude-x", stream)
    assert isinstance(pr.json, dict)
    return pr.json


# --------------------------------------------------------------------------- provider value


def test_provider_registry_and_basics() -> None:
    assert get_provider("anthropic") is PROVIDER
    assert get_provider("claude") is PROVIDER
    assert PROVIDER.name == "anthropic"
    assert PROVIDER.default_base_url == "https://api.anthropic.com"
    assert PROVIDER.auth_headers("k-1") == {"x-api-key": "k-1"}
    assert PROVIDER.request_id_headers == ("request-id", "x-request-id")
    assert PROVIDER.provider_request_id({"request-id": "r1", "x-request-id": "r2"}) == "r1"


def test_build_chat_basics_and_headers() -> None:
    pr = build_chat(ChatRequest((Message.user("hi"),)), "claude-x", False)
    assert (pr.method, pr.path, pr.stream) == ("POST", "/v1/messages", False)
    assert pr.headers["anthropic-version"] == "2023-06-01"
    assert pr.headers["content-type"] == "application/json"
    assert pr.json == {
        "model": "claude-x",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert DEFAULT_MAX_TOKENS == 4096
    spr = build_chat(ChatRequest((Message.user("hi"),), max_tokens=10), "m", True)
    assert spr.stream is True
    assert spr.json["stream"] is True
    assert spr.json["max_tokens"] == 10


def test_system_extraction_and_role_merging() -> None:
    req = ChatRequest(
        (
            Message.system("be brief"),
            Message.user("a"),
            Message.user((TextPart("b"), TextPart("c"))),
            Message.system("and kind"),
            Message.assistant("x"),
            Message.assistant("y"),
        )
    )
    b = body_of(req)
    assert b["system"] == "be brief\n\nand kind"
    assert b["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "text", "text": "c"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]},
    ]


def test_only_system_messages_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="non-system"):
        build_chat(ChatRequest((Message.system("s"),)), "m", False)


def test_images_base64_and_url() -> None:
    req = ChatRequest(
        (
            Message.user(
                (
                    TextPart("what?"),
                    ImagePart(data="QUJD", media_type="image/png"),
                    ImagePart(url="https://x.test/a.jpg"),
                    ImagePart(url="data:image/jpeg;base64,Zm9v"),
                )
            ),
        )
    )
    assert body_of(req)["messages"][0]["content"] == [
        {"type": "text", "text": "what?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "Zm9v"}},
    ]


def test_tools_tool_calls_and_merged_tool_results() -> None:
    calls = (
        ToolCall.from_raw("t1", "get_weather", '{"city": "Paris"}'),
        ToolCall.from_raw("t2", "get_time", {"tz": "UTC"}),
    )
    req = ChatRequest(
        (
            Message.user("weather and time?"),
            Message.assistant("Let me check.", tool_calls=calls),
            Message.tool("t1", "sunny"),
            Message.tool("t2", "noon"),
            Message.user("thanks"),
        ),
        tools=(WEATHER, TIME),
    )
    b = body_of(req)
    assert b["tools"] == [
        {"name": "get_weather", "description": "Weather by city", "input_schema": dict(WEATHER.parameters)},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in b
    assert b["messages"] == [
        {"role": "user", "content": "weather and time?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "get_time", "input": {"tz": "UTC"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "noon"},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


def test_assistant_tool_call_without_text_and_bad_arguments() -> None:
    call = ToolCall.from_raw("t1", "get_weather", None)
    b = body_of(ChatRequest((Message.user("q"), Message.assistant(None, [call])), tools=(WEATHER,)))
    assert b["messages"][1]["content"] == [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]
    bad = ToolCall.from_raw("t9", "get_weather", "{not json")
    with pytest.raises(ConfigurationError, match="JSON object"):
        build_chat(ChatRequest((Message.user("q"), Message.assistant(None, [bad]))), "m", False)


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ("get_weather", None, {"type": "tool", "name": "get_weather"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("get_weather", False, {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        (None, None, None),
    ],
)
def test_tool_choice_forms(choice: str | None, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    b = body_of(ChatRequest((Message.user("q"),), tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=parallel))
    assert b.get("tool_choice") == expected


def test_sampling_stop_metadata_and_extra() -> None:
    req = ChatRequest(
        (Message.user("q"),),
        temperature=0.3,
        top_p=0.9,
        max_tokens=77,
        stop=("END", "STOP"),
        seed=7,
        user="u-42",
        metadata={"trace": "x"},
        extra={"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 99},
    )
    b = body_of(req)
    assert b["temperature"] == 0.3
    assert b["top_p"] == 0.9
    assert b["stop_sequences"] == ["END", "STOP"]
    assert b["metadata"] == {"user_id": "u-42"}
    assert b["top_k"] == 5
    assert b["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert b["max_tokens"] == 99  # extra is merged last
    assert "seed" not in b


def test_extra_none_removes_a_built_key() -> None:
    b = body_of(ChatRequest((Message.user("q"),), temperature=0.5, extra={"temperature": None}))
    assert "temperature" not in b


def test_temperature_above_one_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match=r"\[0, 1\]"):
        build_chat(ChatRequest((Message.user("q"),), temperature=1.5), "m", False)


def test_response_format_json_schema_uses_structured_outputs() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    req = ChatRequest(
        (Message.user("q"),),
        response_format=ResponseFormat("json_schema", schema=schema),
        extra={"output_config": {"effort": "low"}},
    )
    b = body_of(req)
    assert b["output_config"] == {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}
    plain = body_of(ChatRequest((Message.user("q"),), response_format=ResponseFormat("text")))
    assert "output_config" not in plain


def test_json_mode_without_schema_is_a_clear_error() -> None:
    req = ChatRequest((Message.user("q"),), response_format=ResponseFormat("json_object"))
    with pytest.raises(ConfigurationError, match=r"JSON mode .* not supported natively"):
        build_chat(req, "m", False)


def test_count_tokens() -> None:
    req = ChatRequest((Message.system("s"), Message.user("q")), tools=(WEATHER,), temperature=0.2, max_tokens=5)
    pr = build_count_tokens(req, "claude-x")
    assert (pr.method, pr.path) == ("POST", "/v1/messages/count_tokens")
    assert pr.headers["anthropic-version"] == "2023-06-01"
    assert set(pr.json) == {"model", "system", "messages", "tools"}
    assert parse_count_tokens(b'{"input_tokens": 32}', JSON_H) == 32
    with pytest.raises(MalformedResponseError):
        parse_count_tokens(b'{"tokens": 32}', JSON_H)
    with pytest.raises(MalformedResponseError):
        parse_count_tokens(b"<html>", {"content-type": "text/html"})


# --------------------------------------------------------------------------- wire -> ChatRequest


def test_chat_request_from_wire_round_trip() -> None:
    wire = {
        "model": "claude-x",
        "max_tokens": 100,
        "system": "sys",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "hot"},
                    {"type": "text", "text": "and?"},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/i.png"}},
                ],
            },
        ],
        "tools": [{"name": "get_weather", "description": "w", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stop_sequences": ["X"],
        "temperature": 0.5,
        "metadata": {"user_id": "u1"},
        "top_k": 3,
        "stream": True,
    }
    req = chat_request_from_wire(wire)
    assert req.model == "claude-x"
    assert req.tool_choice == "required"
    assert req.parallel_tool_calls is False
    assert req.user == "u1"
    assert req.extra == {"top_k": 3}
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool", "user"]
    assert req.messages[2].tool_calls[0].arguments == {"city": "Rome"}
    out = build_chat(req, "claude-x", True).json
    assert out == wire


def test_chat_request_from_wire_structured_outputs_both_spellings() -> None:
    schema = {"type": "object", "properties": {}}
    for key, value in (
        ("output_config", {"format": {"type": "json_schema", "schema": schema}}),
        ("output_format", {"type": "json_schema", "schema": schema}),
    ):
        req = chat_request_from_wire(
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}], key: value}
        )
        assert req.response_format == ResponseFormat("json_schema", schema=schema)
        assert body_of(req)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_chat_request_from_wire_passes_native_tools_and_system_blocks_through() -> None:
    wire = {
        "model": "m",
        "max_tokens": 5,
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "q"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "auto"},
    }
    req = chat_request_from_wire(wire)
    assert req.tools == ()
    assert req.system_text == "s"
    out = build_chat(req, "m", False).json
    assert out["tools"] == wire["tools"]
    assert out["tool_choice"] == wire["tool_choice"]
    assert out["system"] == wire["system"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"model": "m"},
        {"model": "m", "messages": [{"role": "system", "content": "x"}]},
        {"model": "m", "messages": [{"role": "user", "content": 5}]},
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
        {"model": "m", "messages": [{"role": "user", "content": "q"}], "temperature": "hot"},
        {"model": "m", "messages": [{"role": "user", "content": "q"}], "max_tokens": "10"},
        {"model": "m", "messages": [{"role": "user", "content": "q"}], "tool_choice": {"type": "weird"}},
        {"model": "m", "messages": [{"role": "user", "content": "q"}], "output_format": {"type": "json_object"}},
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
    ],
)
def test_chat_request_from_wire_rejects_bad_input(body: Any) -> None:
    with pytest.raises(ConfigurationError):
        chat_request_from_wire(body)


# --------------------------------------------------------------------------- parse_chat


def _msg(content: list[dict[str, Any]], stop: str | None = "end_turn", **usage: int) -> bytes:
    return json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": content,
            "stop_reason": stop,
            "usage": usage or {"input_tokens": 3, "output_tokens": 4},
        }
    ).encode()


def test_parse_text_response() -> None:
    body = _msg(
        [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
        input_tokens=10,
        cache_creation_input_tokens=5,
        cache_read_input_tokens=20,
        output_tokens=7,
    )
    r = parse_chat(body, JSON_H)
    assert r.text == "Hello"
    assert r.finish_reason == "stop"
    assert r.usage == Usage(input_tokens=35, output_tokens=7, cached_tokens=20)
    assert (r.model, r.response_id, r.provider_request_id, r.provider) == ("claude-x", "msg_1", "req_123", "anthropic")
    assert r.raw["id"] == "msg_1"


def test_parse_tool_use_and_thinking_response() -> None:
    body = _msg(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "tu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        stop="tool_use",
    )
    r = parse_chat(body, JSON_H)
    assert r.text == "Calling."
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls == (ToolCall("tu_1", "get_weather", {"city": "Oslo"}, '{"city": "Oslo"}'),)
    assert r.raw["content"][0]["type"] == "thinking"
    assert r.reasoning == "hmm" and r.reasoning_blocks == (
        ReasoningBlock("hmm", signature="sig", protocol="anthropic"),
    )


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "other"),
        ("brand_new", "other"),
        (None, None),
    ],
)
def test_stop_reason_mapping(stop: str | None, reason: str | None) -> None:
    assert parse_chat(_msg([{"type": "text", "text": "x"}], stop=stop), JSON_H).finish_reason == reason


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", {"content-type": "text/html"}),
        (b'{"id": "msg_1", "content": [{"type": "text", "te', JSON_H),
        (b"[1, 2]", JSON_H),
        (b'{"id": "msg_1"}', JSON_H),
        (b'{"content": [{"type": "text"}]}', JSON_H),
        (b'{"content": [{"type": "tool_use", "id": "x", "name": "f", "input": "nope"}]}', JSON_H),
        (b'{"content": ["text"]}', JSON_H),
        (b'{"type": "error", "error": {"type": "api_error", "message": "boom"}}', JSON_H),
    ],
)
def test_parse_chat_malformed(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(MalformedResponseError):
        parse_chat(body, headers)


# --------------------------------------------------------------------------- streaming


def _sse(events: list[tuple[str, dict[str, Any]]], pad: bool = True) -> bytes:
    out = []
    for name, data in events:
        text = json.dumps(data, separators=(",", ":"))
        if pad:  # real traffic pads the JSON with spaces before the closing brace
            text = text[:-1] + " " * 9 + "}"
        out.append(f"event: {name}\ndata: {text}\n\n")
    return "".join(out).encode()


STREAM_EVENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_s",
                "model": "claude-x",
                "content": [],
                "usage": {"input_tokens": 12, "cache_read_input_tokens": 8, "output_tokens": 1},
            },
        },
    ),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hé"}}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "llo ✓"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "tu_1", "name": "get_weather", "input": {}},
        },
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'},
        },
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": 'ris"}'}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


def _feed_all(raw: bytes, step: int | None) -> list[StreamEvent]:
    p = PROVIDER.new_stream_parser()
    evs: list[StreamEvent] = []
    if step is None:
        evs += p.feed(raw)
    else:
        for i in range(0, len(raw), step):
            evs += p.feed(raw[i : i + step])
    evs += p.close()
    return evs


def test_stream_events_and_split_independence() -> None:
    raw = _sse(STREAM_EVENTS)
    whole = _feed_all(raw, None)
    assert _feed_all(raw, 1) == whole
    assert _feed_all(raw, 5) == whole
    assert _feed_all(raw.replace(b"\n", b"\r\n"), 3) == whole
    assert whole == [
        StreamStart("msg_s", "claude-x"),
        ReasoningDelta("", 0),
        ReasoningDelta("hm", 0),
        ReasoningDelta("", 0, signature="s", protocol="anthropic"),
        TextDelta("Hé"),
        TextDelta("llo ✓"),
        ToolCallStart(0, "tu_1", "get_weather"),
        ToolCallDelta(0, ""),
        ToolCallDelta(0, '{"city": "Pa'),
        ToolCallDelta(0, 'ris"}'),
        ToolCallEnd(0, ToolCall("tu_1", "get_weather", {"city": "Paris"}, '{"city": "Paris"}')),
        UsageEvent(Usage(input_tokens=20, output_tokens=30, cached_tokens=8)),
        StreamFinish("tool_calls"),
    ]
    acc = StreamAccumulator()
    for ev in whole:
        acc.add(ev)
    resp = acc.response()
    assert resp.text == "Héllo ✓"
    assert resp.tool_calls[0].arguments == {"city": "Paris"}
    assert resp.finish_reason == "tool_calls"
    assert resp.response_id == "msg_s"


def test_stream_message_delta_with_cumulative_input_usage() -> None:
    evs = [
        STREAM_EVENTS[0],
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"input_tokens": 13, "output_tokens": 5},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    out = _feed_all(_sse(evs), 4)
    assert UsageEvent(Usage(input_tokens=13, output_tokens=5)) in out
    assert out[-1] == StreamFinish("stop")


def test_stream_without_message_stop_is_incomplete() -> None:
    raw = _sse(STREAM_EVENTS[:9])
    p = PROVIDER.new_stream_parser()
    evs = p.feed(raw)
    assert [e.text for e in evs if isinstance(e, TextDelta)] == ["Hé", "llo ✓"]
    with pytest.raises(IncompleteStreamError) as ei:
        p.close()
    assert ei.value.partial_text == "Héllo ✓"
    assert ei.value.provider == "anthropic"


def test_stream_last_event_without_blank_line_still_counts() -> None:
    raw = _sse(STREAM_EVENTS)
    assert raw.endswith(b"\n\n")
    evs = _feed_all(raw[:-2], 7)
    assert evs[-1] == StreamFinish("tool_calls")


def test_stream_in_band_overloaded_error() -> None:
    raw = _sse(STREAM_EVENTS[:8]) + _sse(
        [("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]
    )
    evs = _feed_all(raw, 2)  # close() does not raise after an error event
    assert evs[-1] == StreamError("overloaded_error", "Overloaded")
    assert not any(isinstance(e, StreamFinish) for e in evs)


@pytest.mark.parametrize(
    "raw",
    [
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_del\n\n',
        b"event: message_start\ndata: [1, 2]\n\n",
        b'event: message_start\ndata: {"type": "message_start"}\n\n',
        b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0}\n\n',
        b"<html><body>oops</body></html>\n\n",
    ],
)
def test_stream_malformed(raw: bytes) -> None:
    p = PROVIDER.new_stream_parser()
    with pytest.raises(MalformedResponseError):
        p.feed(raw)
        p.close()


def test_stream_bad_tool_json_is_malformed() -> None:
    evs = [
        STREAM_EVENTS[0],
        STREAM_EVENTS[10],
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"a"'}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ]
    with pytest.raises(MalformedResponseError, match="tool_use input"):
        _feed_all(_sse(evs), None)


def test_stream_ignores_unknown_events_and_data_after_stop() -> None:
    raw = _sse([("future_event", {"type": "future_event"}), *STREAM_EVENTS]) + b"event: ping\ndata: {bad\n\n"
    assert _feed_all(raw, 11)[-1] == StreamFinish("tool_calls")


# --------------------------------------------------------------------------- errors


def _err(etype: str, msg: str = "m", rid: str | None = "req_body") -> bytes:
    d: dict[str, Any] = {"type": "error", "error": {"type": etype, "message": msg}}
    if rid:
        d["request_id"] = rid
    return json.dumps(d).encode()


@pytest.mark.parametrize(
    ("status", "etype", "cls", "retryable"),
    [
        (400, "invalid_request_error", BadRequestError, False),
        (401, "authentication_error", AuthenticationError, False),
        (403, "permission_error", PermissionDeniedError, False),
        (404, "not_found_error", NotFoundError, False),
        (429, "rate_limit_error", RateLimitError, True),
        (500, "api_error", InternalServerError, True),
        (529, "overloaded_error", OverloadedError, True),
        (503, "overloaded_error", OverloadedError, True),
        (400, "overloaded_error", OverloadedError, True),  # overloaded at any status, retryable by default
    ],
)
def test_classify_error_table(status: int, etype: str, cls: type[Exception], retryable: bool) -> None:
    e = classify_error(status, {"content-type": "application/json"}, _err(etype, "details here"))
    assert type(e) is cls
    assert e.status_code == status
    assert e.error_type == etype
    assert e.provider_message == "details here"
    assert e.provider == "anthropic"
    assert e.retryable is retryable
    assert e.provider_request_id == "req_body"
    assert e.should_retry_header is None
    assert "details here" in str(e)


def test_classify_429_retry_after_and_request_id_header() -> None:
    e = classify_error(429, {"retry-after": "17", "request-id": "req_hdr"}, _err("rate_limit_error"))
    assert isinstance(e, RateLimitError)
    assert e.retry_after == 17.0
    assert e.provider_request_id == "req_hdr"


def test_classify_x_should_retry_overrides() -> None:
    e = classify_error(500, {"x-should-retry": "false"}, _err("api_error"))
    assert isinstance(e, InternalServerError)
    assert e.should_retry_header is False
    assert e.retryable is False
    e2 = classify_error(400, {"x-should-retry": "true"}, _err("invalid_request_error"))
    assert e2.should_retry_header is True
    assert e2.retryable is True
    e3 = classify_error(503, {"x-should-retry": "false"}, _err("overloaded_error"))
    assert isinstance(e3, OverloadedError)
    assert e3.retryable is False


def test_classify_tolerates_html_and_empty_bodies() -> None:
    e = classify_error(502, {"content-type": "text/html"}, b"<html><h1>502 Bad Gateway</h1></html>")
    assert isinstance(e, InternalServerError)
    assert e.error_type is None
    assert "502 Bad Gateway" in str(e)
    e2 = classify_error(529, {}, b"")
    assert isinstance(e2, OverloadedError)
    assert e2.retryable is True


def test_chat_request_from_wire_keeps_block_fields_it_cannot_model() -> None:
    # cache_control, citations, is_error, thinking blocks have no neutral counterpart: neither dropped nor
    # refused; the wire messages travel verbatim in extra, so wire -> neutral -> wire is exact
    blocks = (
        {"type": "text", "text": "doc", "cache_control": {"type": "ephemeral"}},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "timeout", "is_error": True},
        {"type": "thinking", "thinking": "hmm", "signature": "Eq"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}},
    )
    for block in blocks:
        messages = [{"role": "user", "content": [block, {"type": "text", "text": "x"}]}]
        body = {"model": "m", "max_tokens": 5, "messages": messages}
        req = chat_request_from_wire(body)
        assert req.extra["messages"] == messages
        assert build_chat(req, "m", False).json == body
    listed = {"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    listed["messages"] = [{"role": "user", "content": "x"}]
    req = chat_request_from_wire(listed)
    assert req.system_text == "a\n\nb" and build_chat(req, "m", False).json == listed  # the list survives
    plain = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}
    assert chat_request_from_wire(plain).messages[0].text == "x"


def test_classify_error_non_envelope_bodies_keep_their_text() -> None:
    html = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
    err = classify_error(500, {"content-type": "text/html"}, html)
    assert err.provider_message == html.decode() and err.error_type is None
    bedrock = classify_error(400, {"x-amzn-requestid": "r1"}, b'{"message": "Malformed input request"}')
    assert bedrock.provider_message == "Malformed input request"
    envelope = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}'
    over = classify_error(529, {}, envelope)
    assert (over.provider_message, over.error_type, over.provider_request_id) == (
        "Overloaded",
        "overloaded_error",
        "req_1",
    )
