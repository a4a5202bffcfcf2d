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


def _events(*items: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """``sse()`` of Responses events: each named by its type, numbered in order (``sequence_number``)."""
    return sse([(kind, {"type": kind, "sequence_number": n, **fields}) for n, (kind, fields) in enumerate(items)])


def _added(index: int, item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("response.output_item.added", {"output_index": index, "item": item})


def _done(index: int, item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("response.output_item.done", {"output_index": index, "item": item})


def _responses_variants() -> list[Variant]:
    ask = {"model": "o4-mini", "input": "Weather in Paris?", "tools": [_RTOOL]}

    def answer(name: str, req: Any, response: dict[str, Any]) -> Variant:
        kinds = ("non_stream", "responses_api", "endpoint:responses")
        return _oa(name, req, 200, {"body": response}, path="/v1/responses", kinds=kinds)

    def stream(name: str, events: dict[str, Any], req: Any = None) -> Variant:
        req = {**ask, "stream": True} if req is None else req
        kinds = ("stream", "responses_api", "endpoint:responses")
        return _oa(name, req, 200, events, path="/v1/responses", kinds=kinds, stream=True)

    out: list[Variant] = []
    refusal = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": "I can't help with that."}],
    }
    lock = {"model": "o4-mini", "input": "Help me pick a lock"}
    essay = {"model": "o4-mini", "input": "Write an essay", "max_output_tokens": 16}
    limit = {"reason": "max_output_tokens"}
    cut = _resp_obj("incomplete", [_REASONING], incomplete_details=limit, max_output_tokens=16)
    out += [
        answer("responses_reasoning_function_call", ask, _resp_obj("completed", [_REASONING, _FCALL], tools=[_RTOOL])),
        answer("responses_refusal", lock, _resp_obj("completed", [_REASONING, refusal])),
        answer("responses_incomplete_max_output", essay, cut),
    ]
    # stream: reasoning item, then a function call with argument deltas
    created = _resp_obj("in_progress", [], usage=None, tools=[_RTOOL])
    start = ("response.created", {"response": created})
    fc_added = {**_FCALL, "status": "in_progress", "arguments": ""}
    fc_args = {"item_id": "fc_01", "output_index": 1}
    ev = _events(
        start,
        ("response.in_progress", {"response": created}),
        _added(0, _REASONING),
        _done(0, _REASONING),
        _added(1, fc_added),
        ("response.function_call_arguments.delta", {**fc_args, "delta": '{"city":', "obfuscation": "x"}),
        ("response.function_call_arguments.delta", {**fc_args, "delta": '"Paris"}', "obfuscation": "y"}),
        ("response.function_call_arguments.done", {**fc_args, "arguments": '{"city":"Paris"}'}),
        _done(1, _FCALL),
        ("response.completed", {"response": _resp_obj("completed", [_REASONING, _FCALL], tools=[_RTOOL])}),
    )
    out.append(stream("responses_stream_function_call", ev))
    # stream that fails
    crash = {"code": "server_error", "message": "The model failed to generate a response."}
    failed = _resp_obj("failed", [], usage=None, error=crash)
    out.append(stream("responses_stream_failed", _events(start, ("response.failed", {"response": failed}))))
    # stream with an error event
    oops = {"code": "server_error", "message": "An error occurred while processing your request.", "param": None}
    out.append(stream("responses_stream_error_event", _events(start, ("error", oops))))
    # stream: text with a refusal delta and an incomplete end (content filter)
    msg = {"id": "msg_2", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    text = [{"type": "output_text", "text": "Sure, here", "annotations": []}]
    inc = _resp_obj(
        "incomplete",
        [{**msg, "status": "incomplete", "content": text}],
        incomplete_details={"reason": "content_filter"},
    )
    at_text = {"item_id": "msg_2", "output_index": 0, "content_index": 0}
    ev = _events(
        start,
        _added(0, msg),
        ("response.output_text.delta", {**at_text, "delta": "Sure, ", "logprobs": []}),
        ("response.output_text.delta", {**at_text, "delta": "here", "logprobs": []}),
        ("response.incomplete", {"response": inc}),
    )
    out.append(stream("responses_stream_incomplete_content_filter", ev))
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
    at_call = {"item_id": "ctc_01", "output_index": 0}
    ev = _events(
        start,
        _added(0, {**ctc, "status": "in_progress", "input": ""}),
        ("response.custom_tool_call_input.delta", {**at_call, "delta": "SELECT COUNT(*) "}),
        ("response.custom_tool_call_input.delta", {**at_call, "delta": "FROM users;\n"}),
        ("response.custom_tool_call_input.done", {**at_call, "input": ctc["input"]}),
        _done(0, ctc),
        ("response.completed", {"response": _resp_obj("completed", [ctc], tools=[ctool])}),
    )
    cask = {"model": "gpt-5-mini", "input": "Count the users", "tools": [ctool], "stream": True}
    out.append(stream("responses_stream_custom_tool_call", ev, cask))
    return out
