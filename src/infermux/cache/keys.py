"""What identifies a chat request for the cache: exact keys, semantic partitions, and what is never cached.

Pure functions, no I/O. The exact key is a SHA-256 of a canonical JSON of everything that shapes the answer
(messages, model, sampling parameters, tools, response format, stop, seed, extra fields); the namespace is
kept beside it by the stores (never inside a shared key space), so one tenant never reads another's entry.

The semantic key of a request is split in two:

- the *question*: the text of the last user turn (what is embedded and verified);
- the *partition*: a digest of everything else (system prompt, earlier turns, model, parameters). A
  semantic match is looked for only inside the same partition, so the same question asked in another
  conversation, to another model or with other parameters never hits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..types import ChatRequest, ImagePart, Message, TextPart

__all__ = ["exact_key", "request_digest", "response_cacheable", "semantic_parts", "uncacheable_reason"]


def _part(p: TextPart | ImagePart) -> Any:
    if isinstance(p, TextPart):
        return ["t", p.text]
    return ["i", p.url, hashlib.sha256((p.data or "").encode()).hexdigest() if p.data else None, p.media_type]


def _message(m: Message) -> Any:
    content: Any = m.content if isinstance(m.content, str) or m.content is None else [_part(p) for p in m.content]
    calls = [[c.id, c.name, c.raw_arguments] for c in m.tool_calls]
    return [m.role, content, m.name, calls, m.tool_call_id]


def _params(req: ChatRequest, model: str) -> dict[str, Any]:
    rf = req.response_format
    return {
        "model": model,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "max_tokens": req.max_tokens,
        "stop": list(req.stop),
        "tools": [[t.name, t.description, t.parameters, t.strict] for t in req.tools],
        "tool_choice": req.tool_choice,
        "parallel_tool_calls": req.parallel_tool_calls,
        "response_format": None if rf is None else [rf.type, rf.schema, rf.name, rf.strict],
        "seed": req.seed,
        "extra": dict(req.extra),
        # extra headers may select an organisation, a project or a credential: never shared across them
        "headers": hashlib.sha256(repr(sorted(req.extra_headers.items())).encode()).hexdigest(),
    }


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def request_digest(req: ChatRequest, model: str) -> str:
    """SHA-256 of the whole normalized request (``user`` and ``metadata`` excluded: they do not shape it)."""
    return _digest({"messages": [_message(m) for m in req.messages], **_params(req, model)})


def exact_key(req: ChatRequest, model: str) -> str:
    """The exact-cache key of ``req`` sent to ``model`` (the namespace is kept apart by the store)."""
    return "x:" + request_digest(req, model)


def semantic_parts(req: ChatRequest, model: str) -> tuple[str, str] | None:
    """``(question, partition)`` when ``req`` ends with a user turn of plain text, else ``None``."""
    last = req.messages[-1]
    if last.role != "user":
        return None
    if isinstance(last.content, tuple) and any(not isinstance(p, TextPart) for p in last.content):
        return None
    question = last.text.strip()
    if not question:
        return None
    context = [_message(m) for m in req.messages[:-1]]
    return question, "p:" + _digest({"context": context, "last_name": last.name, **_params(req, model)})


def uncacheable_reason(req: ChatRequest, *, allow_sampled: bool) -> str | None:
    """Why ``req``'s answer must not be cached or served from the cache (``None``: it may be).

    Never cached: tool-calling turns (tools offered, or tool calls/results in the conversation) and, unless
    ``allow_sampled``, requests whose temperature is not 0 (``None`` means the provider's default, which is
    sampled for every provider here)."""
    if req.tools:
        return "tools"
    if any(m.role == "tool" or m.tool_calls for m in req.messages):
        return "tool_turn"
    if not allow_sampled and req.temperature != 0:
        return "sampled"
    return None


def response_cacheable(finish_reason: str | None, tool_calls: int) -> bool:
    """A complete, tool-free answer (``stop`` or ``length``) may be stored."""
    return tool_calls == 0 and finish_reason in ("stop", "length")
