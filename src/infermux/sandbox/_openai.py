"""OpenAI protocol: chat completions (JSON and SSE), embeddings and models, shaped like api.openai.com."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from infermux.sandbox._model import Conversation, Generation, ToolSpec, embed, encode_base64, generate
from infermux.sandbox._openai_rules import (
    check_image_url,
    check_sampling,
    check_tool_name,
    content_filter_mode,
    filter_verdicts,
    reasoning_tokens,
)
from infermux.sandbox._wire import Ctx, Reply, dumps

__all__ = ["chat_completions", "embeddings", "list_models", "retrieve_model"]

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool_calls": "tool_calls"}


def _require_object(body: Any, ctx: Ctx) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ctx.error(400, "Invalid type for request body: expected an object.", code="invalid_type")
    return body


def _content_text(content: Any, ctx: Ctx, where: str) -> tuple[str, int]:
    """Text and image count of a message's content (a string, null, or a list of parts)."""
    if content is None or isinstance(content, str):
        return content or "", 0
    if not isinstance(content, list):
        raise ctx.error(400, f"Invalid type for '{where}'.", param=where, code="invalid_type")
    texts: list[str] = []
    images = 0
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("image_url", "input_image"):
            image = part.get("image_url")
            if ctx.protocol == "openai":  # api.openai.com's rules (vLLM, Groq, TGI reuse this parser)
                url = image.get("url") if isinstance(image, dict) else image
                check_image_url(url, ctx, f"{where}[{j}].image_url.url")
            images += 1
        elif kind not in ("input_audio", "file", "refusal"):
            raise ctx.error(
                400, f"Invalid value for '{where}[{j}].type'.", param=f"{where}[{j}].type", code="invalid_value"
            )
    return " ".join(texts), images


def _tools(body: dict[str, Any], ctx: Ctx) -> list[ToolSpec]:
    raw = body.get("tools") or []
    if not isinstance(raw, list):
        raise ctx.error(400, "Invalid type for 'tools': expected an array.", param="tools", code="invalid_type")
    out: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ctx.error(
                400, f"Missing required parameter: 'tools[{i}].function.name'.", param=f"tools[{i}].function.name"
            )
        if ctx.protocol == "openai":
            check_tool_name(fn["name"], ctx, f"tools[{i}].function.name")
        params = fn.get("parameters")
        out.append(ToolSpec(fn["name"], params if isinstance(params, dict) else {}))
    return out


def _apply_tool_choice(conv: Conversation, choice: Any) -> None:
    if isinstance(choice, str):
        conv.tool_choice = choice
    elif isinstance(choice, dict):
        fn: dict[str, Any] = choice["function"] if isinstance(choice.get("function"), dict) else choice
        conv.tool_choice, conv.tool_choice_name = "required", str(fn.get("name") or "") or None


def _apply_format(conv: Conversation, fmt: Any) -> None:
    if not isinstance(fmt, dict):
        return
    if fmt.get("type") == "json_object":
        conv.json_mode = True
    elif fmt.get("type") == "json_schema":
        spec: dict[str, Any] = fmt["json_schema"] if isinstance(fmt.get("json_schema"), dict) else fmt
        schema = spec.get("schema")
        conv.json_mode, conv.json_schema = True, schema if isinstance(schema, dict) else {}


def _stop_list(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []


def parse_chat(body: Any, ctx: Ctx) -> Conversation:
    """Validate a chat completion request like the real API and build the neutral conversation."""
    body = _require_object(body, ctx)
    if not body.get("model"):
        raise ctx.error(400, "you must provide a model parameter")
    messages = body.get("messages")
    if messages is None:
        raise ctx.error(
            400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    if not isinstance(messages, list):
        raise ctx.error(400, "Invalid type for 'messages': expected an array.", param="messages", code="invalid_type")
    if not messages:
        raise ctx.error(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    conv = Conversation(model=str(body["model"]))
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in _ROLES:
            roles = ", ".join(f"'{r}'" for r in _ROLES)
            raise ctx.error(
                400,
                f"Invalid value: '{role}'. Supported values are: {roles}.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        assert isinstance(msg, dict)
        text, images = _content_text(msg.get("content"), ctx, f"messages[{i}].content")
        if role in ("system", "developer"):
            conv.system = f"{conv.system} {text}".strip()
            continue
        conv.messages.append((role, text))
        last = i == len(messages) - 1
        if last and role == "user":
            conv.last_user_text, conv.images = text, images
        elif last and role in ("tool", "function"):
            conv.tool_result = text
    conv.tools = _tools(body, ctx)
    _apply_tool_choice(conv, body.get("tool_choice"))
    conv.parallel_tool_calls = body.get("parallel_tool_calls") is not False
    _apply_format(conv, body.get("response_format"))
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    conv.stop = _stop_list(body.get("stop"))
    return conv


def usage(gen: Generation, reasoning: int = 0) -> dict[str, Any]:
    """Usage; ``reasoning`` hidden tokens are part of ``completion_tokens`` (as the real API counts them)."""
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens + reasoning,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens + reasoning,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _message(gen: Generation, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": None if gen.tool_calls else gen.text,
        "refusal": None,
        "annotations": annotations or [],
    }
    if gen.tool_calls:
        msg["tool_calls"] = [
            {"id": f"call_{c.id}", "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in gen.tool_calls
        ]
    return msg


def obfuscation(event: dict[str, Any]) -> str:
    """Random padding like the real API's ``obfuscation`` field (it evens out chunk sizes)."""
    return secrets.token_urlsafe(12)[: max(1, 16 - len(dumps(event)) % 16)]


def _arg_pieces(arguments: str, size: int = 8) -> list[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


def _web_search(body: dict[str, Any], conv: Conversation, gen: Generation, ctx: Ctx) -> list[dict[str, Any]] | None:
    """``web_search_options`` (search models only, as the real API): the answer cites a result with a
    ``url_citation`` annotation (in the message; streamed as a delta of its own before the finish chunk)."""
    if body.get("web_search_options") is None:
        return None
    if "search" not in conv.model:
        raise ctx.error(400, "Web search options not supported with this model.", param="web_search_options")
    url = "https://example.org/" + hashlib.sha256(conv.last_user_text.encode()).hexdigest()[:12]
    cite = {"end_index": len(gen.text), "start_index": 0, "title": "Example result", "url": url}
    return [{"type": "url_citation", "url_citation": cite}]


def _chunks(
    gen: Generation, base: dict[str, Any], annotations: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    out: list[dict[str, Any]] = []
    if gen.tool_calls:
        for n, call in enumerate(gen.tool_calls):
            head = {
                "index": n,
                "id": f"call_{call.id}",
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            first = {"role": "assistant", "content": None, "tool_calls": [head]} if n == 0 else {"tool_calls": [head]}
            out.append(chunk(first))
            out.extend(
                chunk({"tool_calls": [{"index": n, "function": {"arguments": p}}]}) for p in _arg_pieces(call.arguments)
            )
    else:
        out.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        out.extend(chunk({"content": piece}) for piece in gen.pieces)
        if annotations:
            out.append(chunk({"annotations": annotations}))
    out.append(chunk({}, _FINISH[gen.finish]))
    return out


def _filtered(chunks: list[dict[str, Any]], base: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    """Azure's stream: a first chunk with the prompt verdicts, then verdicts on each choice; ``block``
    replaces the completion by one chunk that ends it with ``content_filter``."""
    head = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": _prompt()}
    if mode == "block":
        end = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "content_filter"}
        return [head, {**base, "choices": [{**end, "content_filter_results": filter_verdicts(True)}]}]
    for chunk in chunks:
        for choice in chunk["choices"]:
            choice["content_filter_results"] = filter_verdicts() if choice["delta"] else {}
    return [head, *chunks]


def _prompt() -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": filter_verdicts()}]


def chat_completions(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/chat/completions."""
    conv = parse_chat(body, ctx)
    check_sampling(body, ctx, body.get("reasoning_effort"))  # api.openai.com's per-model rules
    gen = generate(conv, ctx.responder)
    cites = _web_search(body, conv, gen, ctx)
    spent = reasoning_tokens(conv.model, body.get("reasoning_effort"))
    mode = content_filter_mode(ctx)
    base: dict[str, Any] = {
        "id": "chatcmpl-" + secrets.token_urlsafe(21).replace("-", "x").replace("_", "y")[:29],
        "object": "chat.completion",
        "created": ctx.created,
        "model": conv.model,
        "service_tier": "default",
        "system_fingerprint": "fp_sandbox",
    }
    if not body.get("stream"):
        choice: dict[str, Any] = {
            "index": 0,
            "message": _message(gen, cites),
            "logprobs": None,
            "finish_reason": _FINISH[gen.finish],
        }
        extra: dict[str, Any] = {}
        if mode is not None:
            extra["prompt_filter_results"] = _prompt()
            choice["content_filter_results"] = filter_verdicts(mode == "block")
            if mode == "block":
                del choice["message"]
                choice["finish_reason"] = "content_filter"
        return ctx.json({**base, "choices": [choice], **extra, "usage": usage(gen, spent)})
    base["object"] = "chat.completion.chunk"
    opts = body.get("stream_options")
    include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
    if include_usage:
        base["usage"] = None
    chunks = _chunks(gen, base, cites)
    if mode is not None:
        chunks = _filtered(chunks, base, mode)
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage(gen, spent)})
    if not (isinstance(opts, dict) and opts.get("include_obfuscation") is False):
        for chunk in chunks:
            chunk["obfuscation"] = obfuscation(chunk)
    events: list[tuple[str | None, str]] = [(None, dumps(c)) for c in chunks]
    events.append((None, "[DONE]"))
    return ctx.stream(events)


def _embedding_inputs(raw: Any, ctx: Ctx) -> list[str]:
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ctx.error(400, "'input' : input must be a string or an array of strings or tokens", param="input")
    out: list[str] = []
    for item in raw:
        if isinstance(item, str) and item:
            out.append(item)
        elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
            out.append(" ".join(str(t) for t in item))
        else:
            raise ctx.error(400, "'$.input' is invalid. Please check the API reference.", param="input")
    return out


def embeddings(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/embeddings: deterministic unit vectors (``dimensions`` or the server's default size)."""
    body = _require_object(body, ctx)
    if not body.get("model"):
        raise ctx.error(400, "you must provide a model parameter")
    if "input" not in body:
        raise ctx.error(400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    texts = _embedding_inputs(body["input"], ctx)
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise ctx.error(
            400, f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.", param="encoding_format"
        )
    dim = body.get("dimensions", ctx.embedding_dim)
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ctx.error(400, "Invalid 'dimensions': must be a positive integer.", param="dimensions")
    data = []
    for i, text in enumerate(texts):
        vec = embed(text, dim)
        data.append({"object": "embedding", "index": i, "embedding": encode_base64(vec) if fmt == "base64" else vec})
    tokens = sum(max(1, len(t.split())) for t in texts)
    return ctx.json(
        {
            "object": "list",
            "data": data,
            "model": str(body["model"]),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _model_obj(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": "infermux-sandbox"}


def list_models(ctx: Ctx) -> Reply:
    """GET /v1/models."""
    return ctx.json({"object": "list", "data": [_model_obj(m) for m in ctx.models]})


def retrieve_model(name: str, ctx: Ctx) -> Reply:
    """GET /v1/models/{model}."""
    if name not in ctx.models:
        raise ctx.error(404, f"The model '{name}' does not exist", code="model_not_found", param="model")
    return ctx.json(_model_obj(name))
