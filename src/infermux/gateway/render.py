"""Neutral results rendered in the caller's protocol: OpenAI chat / completions / embeddings / Responses, and
Anthropic Messages (non-stream bodies; the streams are in :mod:`.sse`).

When the backend speaks the caller's protocol, the handlers send the backend's own body instead (see
:func:`passthrough_body`), so fields infermux does not model (annotations, thinking blocks, vendor fields)
reach the caller unchanged.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Mapping
from typing import Any

from ..types import ChatResponse, EmbedResponse, FinishReason, ReasoningBlock, ToolCall, Usage

__all__ = [
    "ANTHROPIC_FAMILY",
    "OPENAI_CHAT_FAMILY",
    "RESPONSES_FAMILY",
    "anthropic_message",
    "anthropic_stop_reason",
    "openai_chat",
    "openai_completion",
    "openai_embeddings",
    "openai_finish_reason",
    "openai_usage",
    "passthrough_body",
    "responses_object",
]

#: backends whose chat body is OpenAI's chat.completion (the providers built on :mod:`..providers.openai`)
OPENAI_CHAT_FAMILY = frozenset(("openai", "llamacpp", "groq", "vllm", "ollama_openai", "tgi_chat", "ovms", "opea_llm"))
ANTHROPIC_FAMILY = frozenset(("anthropic",))
RESPONSES_FAMILY = frozenset(("openai_responses",))

_OPENAI_FINISH: dict[str | None, str] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
_OPENAI_FINISH["content_filter"] = "content_filter"
_ANTHROPIC_STOP: dict[str | None, str] = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_ANTHROPIC_STOP["content_filter"] = "refusal"


def openai_finish_reason(reason: FinishReason | None) -> str:
    return _OPENAI_FINISH.get(reason, "stop")


def anthropic_stop_reason(reason: FinishReason | None) -> str:
    return _ANTHROPIC_STOP.get(reason, "end_turn")


def passthrough_body(resp: ChatResponse, family: frozenset[str]) -> dict[str, Any] | None:
    """The backend's own JSON body when its provider is of ``family`` (the caller's protocol), else ``None``."""
    if resp.provider in family and isinstance(resp.raw, dict):
        return resp.raw
    return None


def openai_usage(u: Usage | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def _openai_tool_calls(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.raw_arguments or "{}"}}
        for c in calls
    ]


def _id(prefix: str, resp: ChatResponse | EmbedResponse) -> str:
    rid = getattr(resp, "response_id", None)
    return rid if isinstance(rid, str) and rid else f"{prefix}{resp.request_id or ''}"


def openai_chat(resp: ChatResponse, model: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": resp.text if resp.text or not resp.tool_calls else None}
    if resp.tool_calls:
        message["tool_calls"] = _openai_tool_calls(resp.tool_calls)
    if resp.reasoning:  # the OpenAI-compatible servers' field (vLLM, DeepSeek, llama.cpp)
        message["reasoning_content"] = resp.reasoning
    message["refusal"] = None
    return {
        "id": _id("chatcmpl-", resp),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or resp.model or "",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": openai_finish_reason(resp.finish_reason),
            }
        ],
        "usage": openai_usage(resp.usage),
    }


def openai_completion(resp: ChatResponse, model: str | None) -> dict[str, Any]:
    return {
        "id": _id("cmpl-", resp),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model or resp.model or "",
        "choices": [
            {"index": 0, "text": resp.text, "logprobs": None, "finish_reason": openai_finish_reason(resp.finish_reason)}
        ],
        "usage": openai_usage(resp.usage),
    }


def openai_embeddings(resp: EmbedResponse, model: str | None, encoding: str) -> dict[str, Any]:
    def vector(v: tuple[float, ...]) -> list[float] | str:
        if encoding == "base64":
            return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode("ascii")
        return list(v)

    tokens = resp.usage.input_tokens if resp.usage is not None else 0
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vector(v)} for i, v in enumerate(resp.vectors)],
        "model": model or resp.model or "",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def anthropic_usage(u: Usage | None) -> dict[str, Any]:
    if u is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {
        "input_tokens": max(0, u.input_tokens - u.cached_tokens),
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def tool_input(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as the JSON object Anthropic's ``tool_use.input`` must be."""
    if isinstance(call.arguments, Mapping):
        return dict(call.arguments)
    try:
        parsed = json.loads(call.raw_arguments) if call.raw_arguments else {}
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": call.raw_arguments}


def anthropic_message(resp: ChatResponse, model: str | None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [
        {"type": "redacted_thinking", "data": b.redacted}
        if b.redacted is not None
        else {"type": "thinking", "thinking": b.text, "signature": b.signature or ""}
        for b in resp.reasoning_blocks
    ]
    if resp.text or not resp.tool_calls:
        content.append({"type": "text", "text": resp.text})
    content += [
        {"type": "tool_use", "id": c.id or f"toolu_{i}", "name": c.name, "input": tool_input(c)}
        for i, c in enumerate(resp.tool_calls)
    ]
    return {
        "id": _id("msg_", resp),
        "type": "message",
        "role": "assistant",
        "model": model or resp.model or "",
        "content": content,
        "stop_reason": anthropic_stop_reason(resp.finish_reason),
        "stop_sequence": None,
        "usage": anthropic_usage(resp.usage),
    }


def responses_usage(u: Usage | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def reasoning_item(rid: str, index: int, text: str) -> dict[str, Any]:
    """A ``reasoning`` output item whose summary is the readable reasoning (as the real API with
    ``reasoning.summary``; the opaque parts of another protocol, signatures and redacted blocks, stay out)."""
    return {"id": f"rs_{rid}_{index}", "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def responses_items(
    text: str, calls: tuple[ToolCall, ...], rid: str, status: str, reasoning: tuple[ReasoningBlock, ...] = ()
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [reasoning_item(rid, i, b.text) for i, b in enumerate(reasoning) if b.text]
    if text or not calls:
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        items.append({"id": f"msg_{rid}", "type": "message", "status": status, "role": "assistant", "content": [part]})
    items += [
        {
            "id": f"fc_{rid}_{i}",
            "type": "function_call",
            "status": "completed",
            "call_id": c.id,
            "name": c.name,
            "arguments": c.raw_arguments or "{}",
        }
        for i, c in enumerate(calls)
    ]
    return items


def _reasoning_blocks(resp: ChatResponse) -> tuple[ReasoningBlock, ...]:
    if resp.reasoning_blocks or not resp.reasoning:
        return resp.reasoning_blocks
    return (ReasoningBlock(resp.reasoning),)


def responses_object(resp: ChatResponse, model: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
    incomplete = resp.finish_reason == "length"
    status = "incomplete" if incomplete else "completed"
    rid = resp.request_id or ""
    return {
        "id": _id("resp_", resp),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model or resp.model or "",
        "output": responses_items(resp.text, resp.tool_calls, rid, status, _reasoning_blocks(resp)),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "temperature": body.get("temperature"),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "usage": responses_usage(resp.usage),
        "metadata": body.get("metadata") or {},
    }
