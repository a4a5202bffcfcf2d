"""Protocol-fidelity fixes (issue 8): reasoning models and the output limit, streamed tool calls without
``index``, the SSE event bound, typed errors for wrong JSON types, reasoning usage."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from infermux.errors import ConfigurationError, MalformedResponseError
from infermux.providers import get_provider
from infermux.providers import openai as oa
from infermux.providers import openai_responses as oar
from infermux.providers._sse import SSEDecoder
from infermux.types import ChatRequest, ImagePart, Message, StreamAccumulator, TextPart, Tool, ToolCall

JSON_H = {"content-type": "application/json"}


def _req(**kw: Any) -> ChatRequest:
    return ChatRequest(messages=(Message.user("hi"),), **kw)


# --------------------------------------------------------------------------- item 2: reasoning models


@pytest.mark.parametrize("model", ["o1", "o1-mini", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5.1", "gpt-5-nano"])
def test_reasoning_models_are_recognised(model: str) -> None:
    assert oa.is_reasoning_model(model)


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "gpt-5-chat-latest", "omni-moderation"])
def test_other_models_are_not_reasoning_models(model: str) -> None:
    assert not oa.is_reasoning_model(model)


def test_official_api_gets_max_completion_tokens_compatible_servers_max_tokens() -> None:
    req = _req(max_tokens=64)
    assert oa.PROVIDER.build_chat(req, "o3-mini", False).json["max_completion_tokens"] == 64
    assert "max_tokens" not in oa.PROVIDER.build_chat(req, "gpt-4o", False).json
    for name in ("llamacpp", "vllm", "groq", "ollama_openai", "tgi_chat", "ovms", "opea_llm"):
        body = get_provider(name).build_chat(req, "llama-3.1-8b-instant", False).json
        assert body["max_tokens"] == 64 and "max_completion_tokens" not in body, name


def test_a_limit_spelled_in_extra_wins() -> None:
    body = oa.build_chat(_req(max_tokens=64, extra={"max_tokens": 10}), "gpt-4o", False).json
    assert body["max_tokens"] == 10 and "max_completion_tokens" not in body


@pytest.mark.parametrize("field", ["temperature", "top_p"])
def test_reasoning_model_refuses_sampling_before_io(field: str) -> None:
    with pytest.raises(ConfigurationError, match=f"reasoning model.*{field}=0.5"):
        oa.PROVIDER.build_chat(_req(**{field: 0.5}), "o3-mini", False)
    assert oa.PROVIDER.build_chat(_req(**{field: 1}), "o3-mini", False).json[field] == 1  # the default is fine
    assert oa.PROVIDER.build_chat(_req(**{field: 0.5}), "gpt-4o", False).json[field] == 0.5
    # a model that has reasoning_effort "none" takes sampling parameters then
    assert oa.PROVIDER.build_chat(_req(**{field: 0.5}, reasoning_effort="none"), "gpt-5.1", False).json[field] == 0.5


def test_reasoning_effort_is_sent_and_validated() -> None:
    assert oa.PROVIDER.build_chat(_req(reasoning_effort="low"), "o3", False).json["reasoning_effort"] == "low"
    assert oar.PROVIDER.build_chat(_req(reasoning_effort="high"), "o3", False).json["reasoning"] == {"effort": "high"}
    with pytest.raises(ConfigurationError, match="reasoning_effort"):
        _req(reasoning_effort="max")  # type: ignore[arg-type]
    wire = {"model": "gpt-5-nano", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"}
    req = oa.chat_request_from_wire(wire)
    assert req.reasoning_effort == "low" and oa.build_chat(req, "gpt-5-nano", False).json == wire


@pytest.mark.parametrize("name", ["anthropic", "gemini", "ollama", "tgi"])
def test_providers_without_an_effort_knob_refuse_it(name: str) -> None:
    with pytest.raises(ConfigurationError, match="reasoning_effort"):
        get_provider(name).build_chat(_req(reasoning_effort="low", max_tokens=5), "m", False)


def test_reasoning_tokens_are_read() -> None:
    usage = {
        "prompt_tokens": 11,
        "completion_tokens": 203,
        "completion_tokens_details": {"reasoning_tokens": 192},
    }
    assert oa.parse_usage(usage).reasoning_tokens == 192  # type: ignore[union-attr]
    r_usage = {"input_tokens": 5, "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 32}}
    assert oar.parse_usage(r_usage).reasoning_tokens == 32  # type: ignore[union-attr]


# --------------------------------------------------------------------------- item 3: tool calls without index


def _chunks(*deltas: dict[str, Any]) -> bytes:
    out = []
    for d in deltas:
        out.append({"id": "c1", "model": "gemini-2.0-flash", "choices": [{"index": 0, "delta": d}]})
    out.append({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return b"".join(f"data: {json.dumps(o)}\n\n".encode() for o in out) + b"data: [DONE]\n\n"


def _fold(raw: bytes) -> StreamAccumulator:
    parser = oa.ChatStreamParser()
    acc = StreamAccumulator()
    for ev in [*parser.feed(raw), *parser.close()]:
        acc.add(ev)
    return acc


def test_streamed_tool_calls_without_index_stay_apart() -> None:
    """Gemini's OpenAI-compatible endpoint: each call whole, in its own chunk, with an id and no index."""
    raw = _chunks(
        {"role": "assistant", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
        ]},
        {"tool_calls": [
            {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": '{"tz":"CET"}'}}
        ]},
    )  # fmt: skip
    calls = _fold(raw).tool_calls()
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_a", "weather", {"city": "Paris"}),
        ("call_b", "time", {"tz": "CET"}),
    ]


def test_streamed_tool_calls_without_index_in_one_chunk_and_continuations() -> None:
    raw = _chunks(
        {"tool_calls": [
            {"id": "a", "function": {"name": "f", "arguments": '{"x":'}},
            {"id": "b", "function": {"name": "g", "arguments": "{}"}},
        ]},
        {"tool_calls": [{"id": "a", "function": {"arguments": "1}"}}]},  # the same id continues its call
    )  # fmt: skip
    calls = _fold(raw).tool_calls()
    assert [(c.id, c.name, c.raw_arguments) for c in calls] == [("a", "f", '{"x":1}'), ("b", "g", "{}")]
    # no id and no index: the pieces continue the last call (proxies that drop both after the first piece)
    raw = _chunks(
        {"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x"'}}]},
        {"tool_calls": [{"function": {"arguments": ":2}"}}]},
    )
    assert [(c.id, c.raw_arguments) for c in _fold(raw).tool_calls()] == [("a", '{"x":2}')]


def test_openai_indexed_tool_calls_unchanged() -> None:
    raw = _chunks(
        {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
    )
    assert [(c.id, c.raw_arguments) for c in _fold(raw).tool_calls()] == [("a", "{}"), ("b", "{}")]


# --------------------------------------------------------------------------- item 8: SSE event bound


def test_sse_event_of_many_data_lines_is_bounded() -> None:
    dec = SSEDecoder(max_event_bytes=10_000)
    line = b"data: " + b"x" * 99 + b"\n"
    with pytest.raises(MalformedResponseError, match="one event's data lines exceed 10000"):
        for _ in range(200):  # 20 kB of data lines and never the blank line that ends the event
            dec.feed(line)
    ok = SSEDecoder(max_event_bytes=10_000)
    for _ in range(50):  # the same lines in events that end: the bound is per event
        ok.feed(line * 2 + b"\n")
    assert ok.close() == []


def test_sse_default_event_bound() -> None:
    dec = SSEDecoder()
    chunk = b"data: " + b"y" * (1 << 20) + b"\n"
    with pytest.raises(MalformedResponseError):
        for _ in range(17):
            dec.feed(chunk)


# --------------------------------------------------------------------------- item 7: examples the fuzz test found


@pytest.mark.parametrize("args", [[1, 2], 7, True, 1.5])
def test_tool_arguments_of_a_wrong_type_are_kept_not_crashed_on(args: Any) -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": args}}],
                },
            }
        ]
    }
    call = oa.parse_chat(json.dumps(body).encode(), JSON_H).tool_calls[0]
    assert call.arguments == args and call.raw_arguments == json.dumps(args)
    assert ToolCall.from_raw("c", "f", args).raw_arguments == json.dumps(args)


@pytest.mark.parametrize("bad", [[], {}, ["x"]])
def test_responses_item_type_of_a_wrong_type_is_a_typed_error(bad: Any) -> None:
    body = {"id": "r", "status": "completed", "output": [{"type": bad, "name": "f"}]}
    oar.parse_chat(json.dumps(body).encode(), JSON_H)  # an unknown item: no text, no call, no TypeError
    with pytest.raises(ConfigurationError):
        oar.responses_request_from_wire({"model": "m", "input": [{"role": bad, "content": "x"}]})


# --------------------------------------------------------------------------- item 15: inputs the APIs refuse

PNG = ImagePart(data=base64.b64encode(b"\x89PNG\r\n\x1a\n").decode(), media_type="image/png")
ALL_CHAT = ("openai", "openai_responses", "anthropic", "gemini", "ollama", "groq", "vllm", "llamacpp", "tgi_chat")


def _with_image(part: ImagePart) -> ChatRequest:
    return ChatRequest(messages=(Message.user((TextPart("what is this?"), part)),), max_tokens=5)


@pytest.mark.parametrize("name", ALL_CHAT)
@pytest.mark.parametrize(
    ("part", "what"),
    [
        (ImagePart(data="aGVsbG8=", media_type="application/pdf"), "media type"),
        (ImagePart(data="aGVsbG8=", media_type="text/html"), "media type"),
        (ImagePart(data="not base64!", media_type="image/png"), "base64"),
        (ImagePart(data="aGVsbG8", media_type="image/png"), "base64"),  # bad padding
        (ImagePart(url="ftp://example.com/cat.png"), "scheme"),
        (ImagePart(url="file:///etc/passwd"), "scheme"),
    ],
)
def test_images_every_api_refuses_are_refused_before_io(name: str, part: ImagePart, what: str) -> None:
    provider = get_provider(name)
    if name == "gemini" and part.media_type == "application/pdf":  # Gemini reads PDFs inline: documented
        provider.build_chat(_with_image(part), "gemini-2.0-flash", False)
        return
    if name == "ollama" and part.url is not None:
        what = "inline data"  # Ollama takes no image URLs at all
    with pytest.raises(ConfigurationError, match=what):
        provider.build_chat(_with_image(part), "gpt-4o", False)


@pytest.mark.parametrize(("name", "refused"), [("openai", True), ("openai_responses", True), ("anthropic", True),
                                               ("gemini", False), ("vllm", False)])  # fmt: skip
def test_tiff_is_refused_where_the_api_lists_its_types(name: str, refused: bool) -> None:
    tiff = _with_image(ImagePart(data="aGVsbG8=", media_type="image/tiff"))
    if refused or name == "gemini":
        with pytest.raises(ConfigurationError, match="image/tiff"):
            get_provider(name).build_chat(tiff, "m", False)
    else:  # a compatible server: the model decides which image/* types it reads
        get_provider(name).build_chat(tiff, "m", False)


@pytest.mark.parametrize("name", ALL_CHAT)
def test_valid_images_pass(name: str) -> None:
    parts = [PNG] if name == "ollama" else [PNG, ImagePart(url="https://example.com/cat.png")]
    for part in parts:
        get_provider(name).build_chat(_with_image(part), "gpt-4o", False)
    if name == "gemini":
        get_provider(name).build_chat(
            _with_image(ImagePart(url="gs://bucket/cat.png", media_type="image/png")), "m", False
        )


@pytest.mark.parametrize("name", ALL_CHAT)
@pytest.mark.parametrize("tool_name", ["get weather", "get/weather", "x" * 129, "émoji"])
def test_invalid_tool_names_are_refused(name: str, tool_name: str) -> None:
    req = ChatRequest(messages=(Message.user("hi"),), tools=(Tool(tool_name),), max_tokens=5)
    if name in ("vllm", "llamacpp", "tgi_chat", "groq", "ollama"):  # no documented pattern: accepted
        get_provider(name).build_chat(req, "llama-3.1-8b-instant", False)
        return
    with pytest.raises(ConfigurationError, match="invalid tool name"):
        get_provider(name).build_chat(req, "m", False)


@pytest.mark.parametrize("name", ALL_CHAT)
def test_duplicate_tool_names_are_refused(name: str) -> None:
    req = ChatRequest(messages=(Message.user("hi"),), tools=(Tool("f"), Tool("f", "again")), max_tokens=5)
    with pytest.raises(ConfigurationError, match="given twice"):
        get_provider(name).build_chat(req, "llama-3.1-8b-instant", False)


def test_tool_name_rules_differ_per_provider() -> None:
    dotted = ChatRequest(messages=(Message.user("hi"),), tools=(Tool("ns.get:weather"),), max_tokens=5)
    get_provider("gemini").build_chat(dotted, "m", False)  # Gemini allows '.' and ':'
    with pytest.raises(ConfigurationError):
        get_provider("openai").build_chat(dotted, "m", False)
    long_name = ChatRequest(messages=(Message.user("hi"),), tools=(Tool("x" * 100),), max_tokens=5)
    get_provider("anthropic").build_chat(long_name, "m", False)  # up to 128 on Anthropic
    with pytest.raises(ConfigurationError):
        get_provider("openai").build_chat(long_name, "m", False)  # 64 on OpenAI


# --------------------------------------------------------------------------- lossless same-provider round trips


@pytest.mark.parametrize(
    "messages",
    [
        [  # an assistant turn as the API returned it, sent back in the history
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello", "refusal": None, "annotations": [{"type": "url_citation"}]},
            {"role": "user", "content": "more"},
        ],
        [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "aGk=", "format": "wav"}}]}],
        [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]}],
    ],
)
def test_openai_round_trip_keeps_fields_the_neutral_form_lacks(messages: list[dict[str, Any]]) -> None:
    wire = {"model": "gpt-4o", "messages": messages, "max_completion_tokens": 5, "store": True}
    req = oa.chat_request_from_wire(wire)
    assert oa.build_chat(req, "gpt-4o", False).json == wire
    assert req.messages[-1].role == "user"  # still a usable neutral request (for other providers)


def test_openai_round_trip_of_plain_messages_stays_neutral() -> None:
    wire = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    req = oa.chat_request_from_wire(wire)
    assert "messages" not in req.extra and oa.build_chat(req, "gpt-4o", False).json == wire


def test_responses_round_trip_keeps_reasoning_items() -> None:
    wire = {
        "model": "o4-mini",
        "input": [
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "more"},
        ],
    }
    req = oar.responses_request_from_wire(wire)
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    assert oar.build_chat(req, "o4-mini", False).json == wire


# --------------------------------------------------------------------------- Gemini newer-API error bodies


def test_gemini_newer_api_error_type_is_read() -> None:
    from infermux.errors import InternalServerError
    from infermux.providers import gemini

    body = b'{"error":{"message":"The model is currently experiencing high demand.","code":"service_unavailable"}}'
    err = gemini.classify_error(503, JSON_H, body)
    assert isinstance(err, InternalServerError) and err.retryable
    assert err.error_type == "service_unavailable" and err.provider_message.startswith("The model")  # type: ignore[union-attr]
    classic = b'{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}'
    assert gemini.classify_error(429, JSON_H, classic).error_type == "RESOURCE_EXHAUSTED"
    listed = b'[{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}]'
    assert gemini.classify_error(400, JSON_H, listed).error_type == "INVALID_ARGUMENT"
