"""OpenAI Responses API: POST /v1/responses, JSON and the named-event stream (with sequence_number)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from infermux.sandbox._model import Conversation, Generation, ToolSpec, generate
from infermux.sandbox._openai import obfuscation
from infermux.sandbox._openai_rules import (
    check_image_url,
    check_sampling,
    check_tool_name,
    content_filter_mode,
    filter_verdicts,
    is_reasoning_model,
    reasoning_tokens,
)
from infermux.sandbox._wire import Ctx, Reply, dumps

__all__ = ["create_response"]

_ROLES = ("user", "assistant", "system", "developer")


def _part_text(content: Any, ctx: Ctx, where: str) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        raise ctx.error(400, f"Invalid type for '{where}'.", param=where, code="invalid_type")
    texts, images = [], 0
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_image":
            if part.get("image_url") is not None:
                check_image_url(part.get("image_url"), ctx, f"{where}.image_url")
            images += 1
    return " ".join(texts), images


def _read_input(raw: Any, conv: Conversation, ctx: Ctx) -> None:
    if isinstance(raw, str):
        conv.messages.append(("user", raw))
        conv.last_user_text = raw
        return
    if not isinstance(raw, list) or not raw:
        raise ctx.error(400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ctx.error(400, f"Invalid type for 'input[{i}]'.", param=f"input[{i}]", code="invalid_type")
        last = i == len(raw) - 1
        kind = item.get("type", "message")
        if kind == "function_call_output":
            out = item.get("output")
            conv.messages.append(("tool", out if isinstance(out, str) else dumps(out)))
            conv.tool_result = conv.messages[-1][1] if last else None
            continue
        if kind != "message":
            continue  # function_call, reasoning, ... items: history only
        role = item.get("role")
        if role not in _ROLES:
            raise ctx.error(400, f"Invalid value: '{role}'.", param=f"input[{i}].role", code="invalid_value")
        text, images = _part_text(item.get("content"), ctx, f"input[{i}].content")
        if role in ("system", "developer"):
            conv.system = f"{conv.system} {text}".strip()
            continue
        conv.messages.append((role, text))
        if last and role == "user":
            conv.last_user_text, conv.images, conv.tool_result = text, images, None


def _parse(body: Any, ctx: Ctx) -> Conversation:
    if not isinstance(body, dict):
        raise ctx.error(400, "Invalid type for request body: expected an object.", code="invalid_type")
    if not body.get("model"):
        raise ctx.error(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    conv = Conversation(model=str(body["model"]))
    if isinstance(body.get("instructions"), str):
        conv.system = body["instructions"]
    _read_input(body.get("input"), conv, ctx)
    for i, tool in enumerate(body.get("tools") or []):
        if isinstance(tool, dict) and tool.get("type") == "function":
            if not isinstance(tool.get("name"), str):
                raise ctx.error(400, f"Missing required parameter: 'tools[{i}].name'.", param=f"tools[{i}].name")
            check_tool_name(tool["name"], ctx, f"tools[{i}].name")
            params = tool.get("parameters")
            conv.tools.append(ToolSpec(tool["name"], params if isinstance(params, dict) else {}))
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        conv.tool_choice = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        conv.tool_choice, conv.tool_choice_name = "required", str(choice.get("name") or "") or None
    conv.parallel_tool_calls = body.get("parallel_tool_calls") is not False
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        conv.json_mode = True
        if fmt.get("type") == "json_schema":
            conv.json_schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {}
    limit = body.get("max_output_tokens")
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    check_sampling(body, ctx, _effort(body), limit_key=None)
    return conv


def _effort(body: dict[str, Any]) -> Any:
    reasoning = body.get("reasoning")
    return reasoning.get("effort") if isinstance(reasoning, dict) else None


def _items(gen: Generation) -> list[dict[str, Any]]:
    if gen.tool_calls:
        return [
            {
                "id": f"fc_{c.id}",
                "type": "function_call",
                "status": "completed",
                "arguments": c.arguments,
                "call_id": f"call_{c.id}",
                "name": c.name,
            }
            for c in gen.tool_calls
        ]
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": gen.text}
    status = "incomplete" if gen.finish == "length" else "completed"
    return [
        {
            "id": "msg_" + secrets.token_hex(24),
            "type": "message",
            "status": status,
            "content": [part],
            "role": "assistant",
        }
    ]


def _content_filters(mode: str) -> list[dict[str, Any]]:
    """Azure OpenAI's ``content_filters`` of a response (the prompt's and the completion's verdicts)."""
    return [
        {"blocked": False, "source_type": "prompt", "content_filter_results": filter_verdicts()},
        {
            "blocked": mode == "block",
            "source_type": "completion",
            "content_filter_results": filter_verdicts(mode == "block"),
        },
    ]


def _response(body: dict[str, Any], conv: Conversation, gen: Generation, ctx: Ctx) -> dict[str, Any]:
    mode = content_filter_mode(ctx)
    blocked = mode == "block"
    spent = reasoning_tokens(conv.model, _effort(body))
    incomplete = gen.finish == "length" or blocked
    reason = "content_filter" if blocked else "max_output_tokens"
    extra: dict[str, Any] = {"content_filters": _content_filters(mode)} if mode else {}
    return {
        "id": "resp_" + secrets.token_hex(25),
        "object": "response",
        "created_at": ctx.created,
        "status": "incomplete" if incomplete else "completed",
        "background": False,
        "billing": {"payer": "developer"},
        "completed_at": int(time.time()),
        "error": None,
        "frequency_penalty": body.get("frequency_penalty", 0.0),
        "incomplete_details": {"reason": reason} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": conv.model,
        "moderation": None,
        "output": [] if blocked else _reasoning_item(conv) + _items(gen),
        "parallel_tool_calls": conv.parallel_tool_calls,
        "presence_penalty": body.get("presence_penalty", 0.0),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "prompt_cache_retention": "in_memory",
        "reasoning": {"effort": _effort(body), "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": gen.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": gen.completion_tokens + spent,
            "output_tokens_details": {"reasoning_tokens": spent},
            "total_tokens": gen.prompt_tokens + gen.completion_tokens + spent,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
        **extra,
    }


def _reasoning_item(conv: Conversation) -> list[dict[str, Any]]:
    """A reasoning model's first output item: its (encrypted, summary-less) reasoning, as the real API sends."""
    if not is_reasoning_model(conv.model):
        return []
    sealed = base64.b64encode(hashlib.sha256(conv.last_user_text.encode()).digest() * 4).decode()
    return [{"id": "rs_" + secrets.token_hex(25), "type": "reasoning", "content": [], "encrypted_content": sealed,
             "summary": []}]  # fmt: skip


def _item_events(item: dict[str, Any], n: int, gen: Generation) -> list[dict[str, Any]]:
    """Events for one output item, from output_item.added to output_item.done (sequence numbers added later)."""
    if item["type"] == "reasoning":
        return [
            {"type": "response.output_item.added", "output_index": n, "item": item},
            {"type": "response.output_item.done", "output_index": n, "item": item},
        ]
    if item["type"] == "function_call":
        args = item["arguments"]
        out: list[dict[str, Any]] = [
            {
                "type": "response.output_item.added",
                "output_index": n,
                "item": {**item, "status": "in_progress", "arguments": ""},
            }
        ]
        out += [
            {
                "type": "response.function_call_arguments.delta",
                "item_id": item["id"],
                "output_index": n,
                "delta": args[i : i + 8],
            }
            for i in range(0, len(args), 8)
        ]
        out.append(
            {
                "type": "response.function_call_arguments.done",
                "item_id": item["id"],
                "output_index": n,
                "arguments": args,
            }
        )
        return [*out, {"type": "response.output_item.done", "output_index": n, "item": item}]
    ids = {"item_id": item["id"], "output_index": n, "content_index": 0}
    empty = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    out = [
        {
            "type": "response.output_item.added",
            "output_index": n,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **ids, "part": empty},
    ]
    for p in gen.pieces:
        delta = {"type": "response.output_text.delta", **ids, "delta": p, "logprobs": []}
        out.append({**delta, "obfuscation": obfuscation(delta)})
    out.append({"type": "response.output_text.done", **ids, "text": gen.text, "logprobs": []})
    out.append({"type": "response.content_part.done", **ids, "part": item["content"][0]})
    return [*out, {"type": "response.output_item.done", "output_index": n, "item": item}]


def create_response(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/responses."""
    conv = _parse(body, ctx)
    gen = generate(conv, ctx.responder)
    final = _response(body, conv, gen, ctx)
    if not body.get("stream"):
        return ctx.json(final)
    start = {**final, "status": "in_progress", "completed_at": None, "output": [], "incomplete_details": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    for n, item in enumerate(final["output"]):
        events += _item_events(item, n, gen)
    events.append({"type": f"response.{final['status']}", "response": final})
    for seq, ev in enumerate(events):
        ev["sequence_number"] = seq
    return ctx.stream([(str(ev["type"]), dumps(ev)) for ev in events])
