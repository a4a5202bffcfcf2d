"""Synthetic OpenAI Responses API recordings (see ``_variants``)."""

from __future__ import annotations

from typing import Any

from ._variant_wire import Variant, sse
from ._variants_openai import _oa


def _resp_obj(status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_0a1b",
        "object": "response",
        "created_at": 1780394400,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "o4-mini-2025-04-16",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": "medium", "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 75,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 150,
            "output_tokens_details": {"reasoning_tokens": 128},
            "total_tokens": 225,
        },
        "user": None,
        "metadata": {},
        **extra,
    }


_REASONING = {"id": "rs_01", "type": "reasoning", "summary": []}
_FCALL = {
    "id": "fc_01",
    "type": "function_call",
    "status": "completed",
    "arguments": '{"city":"Paris"}',
    "call_id": "call_Rt1",
    "name": "get_weather",
}
_RTOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def _responses_variants() -> list[Variant]:
    out: list[Variant] = []
    rk = ("non_stream", "responses_api", "endpoint:responses")
    sk = ("stream", "responses_api", "endpoint:responses")
    ask = {"model": "o4-mini", "input": "Weather in Paris?", "tools": [_RTOOL]}
    out.append(
        _oa(
            "responses_reasoning_function_call",
            ask,
            200,
            {"body": _resp_obj("completed", [_REASONING, _FCALL], tools=[_RTOOL])},
            path="/v1/responses",
            kinds=rk,
        )
    )
    refusal = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": "I can't help with that."}],
    }
    out.append(
        _oa(
            "responses_refusal",
            {"model": "o4-mini", "input": "Help me pick a lock"},
            200,
            {"body": _resp_obj("completed", [_REASONING, refusal])},
            path="/v1/responses",
            kinds=rk,
        )
    )
    out.append(
        _oa(
            "responses_incomplete_max_output",
            {"model": "o4-mini", "input": "Write an essay", "max_output_tokens": 16},
            200,
            {
                "body": _resp_obj(
                    "incomplete", [_REASONING], incomplete_details={"reason": "max_output_tokens"}, max_output_tokens=16
                )
            },
            path="/v1/responses",
            kinds=rk,
        )
    )
    # stream: reasoning item, then a function call with argument deltas
    created = _resp_obj("in_progress", [], usage=None, tools=[_RTOOL])
    fc_added = {**_FCALL, "status": "in_progress", "arguments": ""}
    ev: list[tuple[str | None, Any]] = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": created}),
        ("response.in_progress", {"type": "response.in_progress", "sequence_number": 1, "response": created}),
        (
            "response.output_item.added",
            {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": _REASONING},
        ),
        (
            "response.output_item.done",
            {"type": "response.output_item.done", "sequence_number": 3, "output_index": 0, "item": _REASONING},
        ),
        (
            "response.output_item.added",
            {"type": "response.output_item.added", "sequence_number": 4, "output_index": 1, "item": fc_added},
        ),
        (
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 5,
                "item_id": "fc_01",
                "output_index": 1,
                "delta": '{"city":',
                "obfuscation": "x",
            },
        ),
        (
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 6,
                "item_id": "fc_01",
                "output_index": 1,
                "delta": '"Paris"}',
                "obfuscation": "y",
            },
        ),
        (
            "response.function_call_arguments.done",
            {
                "type": "response.function_call_arguments.done",
                "sequence_number": 7,
                "item_id": "fc_01",
                "output_index": 1,
                "arguments": '{"city":"Paris"}',
            },
        ),
        (
            "response.output_item.done",
            {"type": "response.output_item.done", "sequence_number": 8, "output_index": 1, "item": _FCALL},
        ),
        (
            "response.completed",
            {
                "type": "response.completed",
                "sequence_number": 9,
                "response": _resp_obj("completed", [_REASONING, _FCALL], tools=[_RTOOL]),
            },
        ),
    ]
    out.append(
        _oa(
            "responses_stream_function_call",
            {**ask, "stream": True},
            200,
            sse(ev),
            path="/v1/responses",
            kinds=sk,
            stream=True,
        )
    )
    # stream that fails
    failed = _resp_obj(
        "failed", [], usage=None, error={"code": "server_error", "message": "The model failed to generate a response."}
    )
    ev = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": created}),
        ("response.failed", {"type": "response.failed", "sequence_number": 1, "response": failed}),
    ]
    out.append(
        _oa(
            "responses_stream_failed",
            {**ask, "stream": True},
            200,
            sse(ev),
            path="/v1/responses",
            kinds=sk,
            stream=True,
        )
    )
    # stream with an error event
    ev = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": created}),
        (
            "error",
            {
                "type": "error",
                "sequence_number": 1,
                "code": "server_error",
                "message": "An error occurred while processing your request.",
                "param": None,
            },
        ),
    ]
    out.append(
        _oa(
            "responses_stream_error_event",
            {**ask, "stream": True},
            200,
            sse(ev),
            path="/v1/responses",
            kinds=sk,
            stream=True,
        )
    )
    # stream: text with a refusal delta and an incomplete end (content filter)
    msg = {"id": "msg_2", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    inc = _resp_obj(
        "incomplete",
        [
            {
                **msg,
                "status": "incomplete",
                "content": [{"type": "output_text", "text": "Sure, here", "annotations": []}],
            }
        ],
        incomplete_details={"reason": "content_filter"},
    )
    ev = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": created}),
        (
            "response.output_item.added",
            {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0, "item": msg},
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 2,
                "item_id": "msg_2",
                "output_index": 0,
                "content_index": 0,
                "delta": "Sure, ",
                "logprobs": [],
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 3,
                "item_id": "msg_2",
                "output_index": 0,
                "content_index": 0,
                "delta": "here",
                "logprobs": [],
            },
        ),
        ("response.incomplete", {"type": "response.incomplete", "sequence_number": 4, "response": inc}),
    ]
    out.append(
        _oa(
            "responses_stream_incomplete_content_filter",
            {**ask, "stream": True},
            200,
            sse(ev),
            path="/v1/responses",
            kinds=sk,
            stream=True,
        )
    )
    # a custom (free-form grammar) tool called in a stream: custom_tool_call_input deltas
    ctool = {"type": "custom", "name": "run_sql", "description": "Run a read-only SQL query and return rows."}
    ctc = {
        "id": "ctc_01",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "call_d4JQ",
        "input": "SELECT COUNT(*) FROM users;\n",
        "name": "run_sql",
    }
    ev = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": created}),
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": 1,
                "output_index": 0,
                "item": {**ctc, "status": "in_progress", "input": ""},
            },
        ),
        (
            "response.custom_tool_call_input.delta",
            {
                "type": "response.custom_tool_call_input.delta",
                "sequence_number": 2,
                "item_id": "ctc_01",
                "output_index": 0,
                "delta": "SELECT COUNT(*) ",
            },
        ),
        (
            "response.custom_tool_call_input.delta",
            {
                "type": "response.custom_tool_call_input.delta",
                "sequence_number": 3,
                "item_id": "ctc_01",
                "output_index": 0,
                "delta": "FROM users;\n",
            },
        ),
        (
            "response.custom_tool_call_input.done",
            {
                "type": "response.custom_tool_call_input.done",
                "sequence_number": 4,
                "item_id": "ctc_01",
                "output_index": 0,
                "input": ctc["input"],
            },
        ),
        (
            "response.output_item.done",
            {"type": "response.output_item.done", "sequence_number": 5, "output_index": 0, "item": ctc},
        ),
        (
            "response.completed",
            {
                "type": "response.completed",
                "sequence_number": 6,
                "response": _resp_obj("completed", [ctc], tools=[ctool]),
            },
        ),
    ]
    cask = {"model": "gpt-5-mini", "input": "Count the users", "tools": [ctool], "stream": True}
    out.append(
        _oa("responses_stream_custom_tool_call", cask, 200, sse(ev), path="/v1/responses", kinds=sk, stream=True)
    )
    return out
