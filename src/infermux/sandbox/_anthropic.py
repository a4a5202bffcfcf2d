"""Anthropic protocol: POST /v1/messages (JSON and named-event SSE), count_tokens and models."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
from typing import Any

from infermux.sandbox._model import Conversation, Generation, ToolSpec, count_tokens, generate
from infermux.sandbox._openai_rules import is_base64
from infermux.sandbox._wire import Ctx, Reply, dumps

__all__ = ["count_message_tokens", "create_message", "list_models"]

_STOP = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens", "tool_calls": "tool_use"}
_B62 = string.ascii_letters + string.digits


def _anthropic_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_B62) for _ in range(24))


def _blocks_text(content: Any, ctx: Ctx, where: str) -> tuple[str, int, str | None]:
    """Text, image count, and tool-result text (None if the content holds no tool_result) of a message."""
    if isinstance(content, str):
        return content, 0, None
    if not isinstance(content, list):
        raise ctx.error(400, f"{where}: Input should be a valid list")
    texts: list[str] = []
    results: list[str] = []
    images = 0
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind is None:
            raise ctx.error(400, f"{where}.{j}: Input should be a valid dictionary or object")
        assert isinstance(block, dict)
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image":
            _check_image(block.get("source"), ctx, f"{where}.{j}.image.source")
            images += 1
        elif kind == "tool_result":
            inner = block.get("content")
            results.append(
                inner if isinstance(inner, str) else _blocks_text(inner or [], ctx, f"{where}.{j}.content")[0]
            )
    return " ".join(texts), images, (" ".join(results) if results else None)


_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _check_image(source: Any, ctx: Ctx, where: str) -> None:
    """An image source as the Messages API validates it (base64 of a listed type, or an http(s) URL)."""
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        if source.get("media_type") not in _MEDIA_TYPES:
            listed = ", ".join(f"'{m}'" for m in _MEDIA_TYPES[:-1]) + f" or '{_MEDIA_TYPES[-1]}'"
            raise ctx.error(400, f"{where}.base64.media_type: Input should be {listed}")
        if not is_base64(source.get("data")):
            raise ctx.error(400, f"{where}.base64.data: Invalid base64 data")
    elif kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or url.split(":", 1)[0].lower() not in ("http", "https"):
            raise ctx.error(400, f"{where}.url.url: URL scheme should be 'http' or 'https'")
    else:
        raise ctx.error(400, f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags")


def _system(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return " ".join(str(b.get("text", "")) for b in raw if isinstance(b, dict))
    return ""


def _tools(body: dict[str, Any], conv: Conversation, ctx: Ctx) -> None:
    names: set[str] = set()
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise ctx.error(400, f"tools.{i}.custom.name: Field required")
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", tool["name"]):
            raise ctx.error(400, f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        if tool["name"] in names:
            raise ctx.error(400, "tools: Tool names must be unique.")
        names.add(tool["name"])
        if "type" in tool and tool["type"] not in ("custom", None):
            continue  # server tools (web_search...) are accepted and never called
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise ctx.error(400, f"tools.{i}.custom.input_schema: Field required")
        conv.tools.append(ToolSpec(tool["name"], schema))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        conv.tool_choice = {"any": "required", "tool": "required", "none": "none"}.get(str(kind), "auto")
        if kind == "tool":
            conv.tool_choice_name = str(choice.get("name") or "") or None
        conv.parallel_tool_calls = not choice.get("disable_parallel_tool_use", False)


def parse_messages(body: Any, ctx: Ctx, *, need_max_tokens: bool = True) -> Conversation:
    """Validate a Messages request the way the real API does and build the neutral conversation."""
    if not isinstance(body, dict):
        raise ctx.error(400, "Input should be a valid dictionary or object")
    for name in ("model", "messages", *(("max_tokens",) if need_max_tokens else ())):
        if name not in body:
            raise ctx.error(400, f"{name}: Field required")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise ctx.error(400, "messages: Input should be a valid list")
    if not messages:
        raise ctx.error(400, "messages: at least one message is required")
    limit = body.get("max_tokens")
    if need_max_tokens and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ctx.error(400, "max_tokens: Input should be greater than or equal to 1")
    conv = Conversation(model=str(body["model"]), system=_system(body.get("system")))
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    parsed: list[tuple[str, str, int, str | None]] = []
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role == "system":
            raise ctx.error(
                400,
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                'not "system" as an input message role.',
            )
        if role not in ("user", "assistant"):
            raise ctx.error(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        assert isinstance(msg, dict)
        text, images, result = _blocks_text(msg.get("content"), ctx, f"messages.{i}.content")
        conv.messages.append((role, text if result is None else f"{text} {result}".strip()))
        parsed.append((role, text, images, result))
    _last_turns(conv, parsed, ctx)
    _tools(body, conv, ctx)
    stops = body.get("stop_sequences")
    conv.stop = [s for s in stops if isinstance(s, str)] if isinstance(stops, list) else []
    return conv


def _last_turns(conv: Conversation, parsed: list[tuple[str, str, int, str | None]], ctx: Ctx) -> None:
    """The question is the last user turn; a final assistant turn after it is a prefill the model continues."""
    role, text, images, result = parsed[-1]
    if role == "assistant" and result is None and len(parsed) >= 2 and parsed[-2][0] == "user":
        if text != text.rstrip():
            raise ctx.error(400, "messages: final assistant content cannot end with trailing whitespace")
        conv.prefill = text
        _, text, images, result = parsed[-2]
        role = "user"
    if role == "user":
        conv.last_user_text, conv.images, conv.tool_result = text, images, result


def _thinking_budget(body: dict[str, Any], ctx: Ctx) -> int | None:
    """The extended-thinking budget of a request (``thinking: {"type": "enabled", "budget_tokens": N}``),
    validated as the real API does; ``None`` when thinking is off."""
    cfg = body.get("thinking")
    if cfg is None:
        return None
    if not isinstance(cfg, dict) or cfg.get("type") not in ("enabled", "disabled", "adaptive"):
        raise ctx.error(400, "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled'")
    if cfg["type"] == "disabled":
        return None
    budget = cfg.get("budget_tokens", 1024 if cfg["type"] == "adaptive" else None)
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise ctx.error(400, "thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise ctx.error(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    limit = body.get("max_tokens")
    if isinstance(limit, int) and limit <= budget:
        raise ctx.error(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
    if body.get("temperature") not in (None, 1):
        raise ctx.error(400, "`temperature` may only be set to 1 when thinking is enabled.")
    return budget


def _sign(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest() * 3).decode()


def _thinking_block(conv: Conversation) -> dict[str, Any]:
    text = f"The user wrote {conv.last_user_text!r}; answer briefly." if conv.tool_result is None else "Use the result."
    return {"type": "thinking", "thinking": text, "signature": _sign(text)}


def _check_thinking_turns(messages: list[Any], ctx: Ctx) -> None:
    """With thinking on, as the real API: a thinking block sent back must carry the signature it was given, and
    the last assistant turn that called tools must start with its thinking (tool-use loops)."""
    last_tools: int | None = None
    for i, msg in enumerate(messages):
        content = msg.get("content") if msg.get("role") == "assistant" else None
        if not isinstance(content, list):
            continue
        for j, b in enumerate(content):
            if (
                isinstance(b, dict)
                and b.get("type") == "thinking"
                and b.get("signature") != _sign(str(b.get("thinking")))
            ):
                raise ctx.error(400, f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
        if any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content):
            last_tools = i
    if last_tools is None:
        return
    first = messages[last_tools]["content"][0]
    kind = first.get("type") if isinstance(first, dict) else None
    if kind not in ("thinking", "redacted_thinking"):
        raise ctx.error(
            400,
            f"messages.{last_tools}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{kind}`."
            " When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding"
            " the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks"
            " from previous turns. To avoid this requirement, disable `thinking`.",
        )


def _usage(gen: Generation, thinking: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": gen.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": gen.completion_tokens + thinking,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def _content(gen: Generation, cite: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    if gen.tool_calls:
        return [
            {"type": "tool_use", "id": f"toolu_01{c.id}", "name": c.name, "input": json.loads(c.arguments)}
            for c in gen.tool_calls
        ]
    if cite:  # the answer cites what it was given (a document with citations on, web search results)
        return [{"type": "text", "text": gen.text, "citations": cite}]
    return [{"type": "text", "text": gen.text}]


def _documents(messages: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """The ``document`` blocks of the request, numbered as the API does (document_index: in order of appearance)."""
    docs = [
        b
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        for b in m["content"]
        if isinstance(b, dict) and b.get("type") == "document"
    ]
    return list(enumerate(docs))


def _citations(body: dict[str, Any], ctx: Ctx) -> list[dict[str, Any]]:
    """As the real API: a plain-text document sent with ``citations: {"enabled": true}`` is cited by character
    range (its first sentence here); documents must all have citations on or all off."""
    docs = _documents(body["messages"])
    enabled = [isinstance(d.get("citations"), dict) and d["citations"].get("enabled") is True for _, d in docs]
    if any(enabled) and not all(enabled):
        raise ctx.error(400, "Citations must be enabled for all documents or none of them.")
    out: list[dict[str, Any]] = []
    for i, doc in docs:
        src = doc.get("source")
        if not enabled[i] or not isinstance(src, dict) or src.get("type") != "text":
            continue
        data = str(src.get("data", ""))
        end = data.find(".") + 1 or len(data)
        out.append(
            {
                "type": "char_location",
                "cited_text": data[:end],
                "document_index": i,
                "document_title": doc.get("title"),
                "start_char_index": 0,
                "end_char_index": end,
            }
        )
    return out


def _web_search(body: dict[str, Any], conv: Conversation) -> list[dict[str, Any]] | None:
    """With the ``web_search`` server tool, the real API searches first: a ``server_tool_use`` block, its
    ``web_search_tool_result``, then an answer citing the results (``web_search_result_location``)."""
    tools = body.get("tools") or []
    if not any(isinstance(t, dict) and str(t.get("type", "")).startswith("web_search_") for t in tools):
        return None
    tid = _anthropic_id("srvtoolu_01")
    digest = hashlib.sha256(conv.last_user_text.encode()).hexdigest()
    url = f"https://example.org/{digest[:12]}"
    return [
        {"type": "server_tool_use", "id": tid, "name": "web_search", "input": {"query": conv.last_user_text[:80]}},
        {
            "type": "web_search_tool_result",
            "tool_use_id": tid,
            "content": [
                {
                    "type": "web_search_result",
                    "title": "Example result",
                    "url": url,
                    "encrypted_content": _sign(url),
                    "page_age": "April 30, 2025",
                }
            ],
        },
    ]


def _stream_events(message: dict[str, Any], gen: Generation) -> list[tuple[str, dict[str, Any]]]:
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "stop_details": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for n, block in enumerate(message["content"]):
        head: dict[str, Any]
        deltas: list[dict[str, Any]]
        if block["type"] == "thinking":
            head = {"type": "thinking", "thinking": "", "signature": ""}
            text = block["thinking"]
            deltas = [{"type": "thinking_delta", "thinking": text[i : i + 16]} for i in range(0, len(text), 16)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] in ("tool_use", "server_tool_use"):
            head = {**block, "input": {}}
            args = json.dumps(block["input"])
            pieces = [""] + [args[i : i + 8] for i in range(0, len(args), 8)]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        elif block["type"] != "text":  # web_search_tool_result: whole in its start
            head, deltas = block, []
        else:  # as the real API: the block starts empty, citations come as citations_delta events
            head = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in gen.pieces]
            deltas += [{"type": "citations_delta", "citation": c} for c in block.get("citations") or ()]
        events.append(("content_block_start", {"type": "content_block_start", "index": n, "content_block": head}))
        if n == 0:
            events.append(("ping", {"type": "ping"}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": n, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": n}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"], "stop_details": None}
    usage = {
        "input_tokens": gen.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": message["usage"]["output_tokens"],
    }
    if "server_tool_use" in message["usage"]:
        usage["server_tool_use"] = message["usage"]["server_tool_use"]
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def create_message(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/messages."""
    conv = parse_messages(body, ctx)
    budget = _thinking_budget(body, ctx)
    if budget is not None:
        _check_thinking_turns(body["messages"], ctx)
    cite = _citations(body, ctx)
    gen = generate(conv, ctx.responder)
    thinking = _thinking_block(conv) if budget is not None else None
    search = _web_search(body, conv) if not gen.tool_calls else None
    if search is not None:
        result = search[1]["content"][0]
        cite.append(
            {
                "type": "web_search_result_location",
                "cited_text": gen.text[:40],
                "url": result["url"],
                "title": result["title"],
                "encrypted_index": _sign(result["url"])[:24],
            }
        )
    content = ([thinking] if thinking else []) + (search or []) + _content(gen, cite)
    spent = len(thinking["thinking"].split()) if thinking else 0
    usage = _usage(gen, spent)
    if search is not None:
        usage["server_tool_use"] = {"web_search_requests": 1}
    message: dict[str, Any] = {
        "model": conv.model,
        "id": _anthropic_id("msg_01"),
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": _STOP[gen.finish],
        "stop_sequence": gen.stop_sequence,
        "stop_details": None,
        "usage": usage,
    }
    if not body.get("stream"):
        return ctx.json(message)
    reply = ctx.stream([(name, dumps(data)) for name, data in _stream_events(message, gen)])
    reply.headers["cache-control"] = "no-cache"
    return reply


def count_message_tokens(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/messages/count_tokens."""
    return ctx.json({"input_tokens": count_tokens(parse_messages(body, ctx, need_max_tokens=False))})


def list_models(ctx: Ctx) -> Reply:
    """GET /v1/models as Anthropic answers it (requests carrying ``anthropic-version``)."""
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in ctx.models]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return ctx.json({"data": data, "has_more": False, "first_id": first, "last_id": last})
