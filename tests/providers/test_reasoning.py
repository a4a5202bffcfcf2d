"""Reasoning ("thinking") kept apart from the answer text, per provider, in bodies and streams; sent back
where the provider needs it (Anthropic's signed thinking in tool-use loops). Pure functions, no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infermux.errors import MalformedResponseError
from infermux.providers import anthropic, gemini, ollama, openai
from infermux.types import (
    ChatRequest,
    Message,
    ReasoningBlock,
    ReasoningDelta,
    StreamAccumulator,
    StreamEvent,
    TextDelta,
    ToolCall,
)

JSON_H = {"content-type": "application/json"}


def run(parser: Any, raw: bytes, size: int = 7) -> tuple[list[StreamEvent], StreamAccumulator]:
    evs: list[StreamEvent] = []
    for i in range(0, len(raw), size):
        evs += parser.feed(raw[i : i + size])
    evs += parser.close()
    acc = StreamAccumulator()
    for ev in evs:
        acc.add(ev)
    return evs, acc


def sse(*objs: Any, named: bool = False) -> bytes:
    if named:
        return b"".join(f"event: {o['type']}\ndata: {json.dumps(o)}\n\n".encode() for o in objs)
    return b"".join(f"data: {json.dumps(o)}\n\n".encode() for o in objs) + b"data: [DONE]\n\n"


# --------------------------------------------------------------------------- OpenAI-compatible


def _chat_body(message: dict[str, Any]) -> bytes:
    return json.dumps(
        {"id": "c1", "model": "m", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    ).encode()


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_openai_compatible_body_reasoning(field: str) -> None:
    # DeepSeek / vLLM / llama.cpp --reasoning-format: reasoning_content; vLLM >= 0.10 / OpenRouter: reasoning
    r = openai.parse_chat(
        _chat_body({"role": "assistant", "content": "9.11 < 9.8", field: "Compare 11 and 80."}), JSON_H
    )
    assert r.text == "9.11 < 9.8"
    assert r.reasoning == "Compare 11 and 80."
    assert r.reasoning_blocks == (ReasoningBlock("Compare 11 and 80."),)
    none = openai.parse_chat(_chat_body({"role": "assistant", "content": "x", "reasoning_content": None}), JSON_H)
    assert (none.reasoning, none.reasoning_blocks) == ("", ())


def test_openai_compatible_stream_reasoning_content_deltas() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "c1",
            "model": "deepseek-reasoner",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    raw = sse(
        chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
        chunk({"content": None, "reasoning_content": "Think é"}),
        chunk({"content": None, "reasoning_content": "ing."}),
        chunk({"content": "Answer", "reasoning_content": None}),
        chunk({}, "stop"),
    )
    evs, acc = run(openai.ChatStreamParser("deepseek"), raw)
    assert [e for e in evs if isinstance(e, ReasoningDelta)] == [ReasoningDelta("Think é"), ReasoningDelta("ing.")]
    assert [e.text for e in evs if isinstance(e, TextDelta)] == ["Answer"]  # text consumers see only text
    assert acc.text == "Answer" and acc.reasoning == "Think éing."
    assert acc.response().reasoning_blocks == (ReasoningBlock("Think éing."),)


def test_openai_request_does_not_send_reasoning_back() -> None:
    # DeepSeek answers 400 when reasoning_content is sent in an input message: the neutral reasoning stays home
    m = Message.assistant("a", reasoning=[ReasoningBlock("why")])
    body = openai.build_chat(ChatRequest((Message.user("q"), m, Message.user("q2"))), "m", False).json
    assert body["messages"][1] == {"role": "assistant", "content": "a"}


# --------------------------------------------------------------------------- Ollama


def test_ollama_thinking_body_and_stream() -> None:
    msg = {"role": "assistant", "content": "Yes.", "thinking": "Is it? It is."}
    r = ollama.parse_chat(json.dumps({"model": "qwen3", "message": msg, "done": True}).encode(), JSON_H)
    assert (r.text, r.reasoning) == ("Yes.", "Is it? It is.")
    lines = [
        {"model": "qwen3", "message": {"role": "assistant", "content": "", "thinking": "Is it?"}, "done": False},
        {"model": "qwen3", "message": {"role": "assistant", "content": "", "thinking": " It is."}, "done": False},
        {"model": "qwen3", "message": {"role": "assistant", "content": "Yes."}, "done": False},
        {"model": "qwen3", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"},
    ]
    raw = "".join(json.dumps(o) + "\n" for o in lines).encode()
    evs, acc = run(ollama.PROVIDER.new_stream_parser(), raw)
    assert [e.text for e in evs if isinstance(e, ReasoningDelta)] == ["Is it?", " It is."]
    assert (acc.text, acc.reasoning, acc.finish_reason) == ("Yes.", "Is it? It is.", "stop")


# --------------------------------------------------------------------------- Gemini


def test_gemini_thought_parts_body_and_stream() -> None:
    def chunk(parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        return {"candidates": [cand], "modelVersion": "gemini-2.5-flash", "responseId": "r1"}

    thought = {"text": "**Planning** the answer", "thought": True, "thoughtSignature": "CiQB"}
    r = gemini.parse_chat(json.dumps(chunk([thought, {"text": "Hi"}], "STOP")).encode(), JSON_H)
    assert (r.text, r.reasoning) == ("Hi", "**Planning** the answer")
    assert r.reasoning_blocks == (ReasoningBlock("**Planning** the answer", signature="CiQB", protocol="gemini"),)
    raw = sse(chunk([{"text": "**Planning**", "thought": True}]), chunk([{"text": "Hi"}]), chunk([], "STOP"))
    raw = raw.replace(b"data: [DONE]\n\n", b"")
    evs, acc = run(gemini.GeminiStreamParser(), raw)
    assert [e for e in evs if isinstance(e, ReasoningDelta)] == [ReasoningDelta("**Planning**")]
    assert (acc.text, acc.reasoning) == ("Hi", "**Planning**")


# --------------------------------------------------------------------------- Anthropic


def _anthropic_stream(*blocks: tuple[dict[str, Any], list[dict[str, Any]]]) -> bytes:
    objs: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}}
    ]
    for i, (start, deltas) in enumerate(blocks):
        objs.append({"type": "content_block_start", "index": i, "content_block": start})
        objs += [{"type": "content_block_delta", "index": i, "delta": d} for d in deltas]
        objs.append({"type": "content_block_stop", "index": i})
    objs.append({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}})
    objs.append({"type": "message_stop"})
    return sse(*objs, named=True)


def test_anthropic_stream_thinking_redacted_and_tool_use_round_trip() -> None:
    raw = _anthropic_stream(
        (
            {"type": "thinking", "thinking": "", "signature": ""},
            [
                {"type": "thinking_delta", "thinking": "Need the "},
                {"type": "thinking_delta", "thinking": "weather."},
                {"type": "signature_delta", "signature": "EqQBsig=="},
            ],
        ),
        ({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"}, []),
        ({"type": "text", "text": ""}, [{"type": "text_delta", "text": "Checking."}]),
        (
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
            [{"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'}],
        ),
    )
    evs, acc = run(anthropic.AnthropicStreamParser(), raw, size=11)
    reasoning = [e for e in evs if isinstance(e, ReasoningDelta)]
    assert {e.index for e in reasoning} == {0, 1}
    resp = acc.response()
    assert resp.text == "Checking." and resp.reasoning == "Need the weather."
    assert resp.reasoning_blocks == (
        ReasoningBlock("Need the weather.", signature="EqQBsig==", protocol="anthropic"),
        ReasoningBlock("", redacted="EmwKAhgBEgy3va", protocol="anthropic"),
    )
    # the tool-use loop: the assistant turn goes back with its signed and redacted thinking first
    req = ChatRequest((Message.user("Weather in Oslo?"), resp.message(), Message.tool("toolu_1", "12 C")))
    sent = anthropic.build_chat(req, "claude", False).json["messages"][1]
    assert sent == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Need the weather.", "signature": "EqQBsig=="},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
        ],
    }
    # the wire form reads back as the same neutral message (the gateway's same-protocol path)
    back = anthropic.chat_request_from_wire(
        {"model": "claude", "max_tokens": 9, "messages": [{"role": "user", "content": "Weather in Oslo?"}, sent]}
    )
    assert back.messages[1].reasoning == resp.reasoning_blocks
    assert back.messages[1].tool_calls == (ToolCall("toolu_1", "weather", {"city": "Oslo"}, '{"city": "Oslo"}'),)
    assert "messages" not in back.extra  # expressed natively, not carried verbatim


def test_anthropic_unsigned_reasoning_is_not_sent() -> None:
    # reasoning from another provider has no signature, or one the API would refuse: neither is sent
    m = Message.assistant("a", reasoning=[ReasoningBlock("from deepseek"), ReasoningBlock("g", "CiQB", None, "gemini")])
    sent = anthropic.build_chat(ChatRequest((Message.user("q"), m, Message.user("q2"))), "c", False).json
    assert sent["messages"][1] == {"role": "assistant", "content": "a"}


def test_anthropic_thinking_delta_without_its_block_is_malformed() -> None:
    raw = _anthropic_stream(({"type": "text", "text": ""}, [{"type": "thinking_delta", "thinking": "x"}]))
    with pytest.raises(MalformedResponseError):
        run(anthropic.AnthropicStreamParser(), raw)


def test_reasoning_only_on_assistant_messages() -> None:
    from infermux.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        Message("user", "x", reasoning=(ReasoningBlock("no"),))


# --------------------------------------------------------------------------- OpenAI Responses


def test_responses_reasoning_summary_body_and_stream() -> None:
    from infermux.providers import openai_responses

    reasoning_item = {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "**Counting** the r's."}],
        "encrypted_content": "gAAAA-opaque",
    }
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "3"}]}
    body = {"id": "resp_1", "model": "gpt-5-nano", "status": "completed", "output": [reasoning_item, message]}
    r = openai_responses.parse_chat(json.dumps(body).encode(), JSON_H)
    assert (r.text, r.reasoning) == ("3", "**Counting** the r's.")
    assert r.reasoning_blocks == (ReasoningBlock("**Counting** the r's."),)  # encrypted_content: OpenAI's only
    empty = {**body, "output": [{"id": "rs_1", "type": "reasoning", "summary": []}, message]}  # as recorded
    assert openai_responses.parse_chat(json.dumps(empty).encode(), JSON_H).reasoning_blocks == ()
    events = [
        {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5-nano"}},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "**Count"},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "ing**"},
        {"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": "3"},
        {"type": "response.completed", "response": {**body, "usage": None}},
    ]
    evs, acc = run(openai_responses.ResponsesStreamParser(), sse(*events, named=True))
    assert [e for e in evs if isinstance(e, ReasoningDelta)] == [ReasoningDelta("**Count"), ReasoningDelta("ing**")]
    assert (acc.text, acc.reasoning, acc.finish_reason) == ("3", "**Counting**", "stop")
