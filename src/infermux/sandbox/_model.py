"""The sandbox's deterministic "model": a reply is a pure function of the request.

Both protocols translate their request into a :class:`Conversation`, ask :func:`generate` for a
:class:`Generation`, and render that in their own wire format, so stream and non-stream answers (and their
token counts) always agree.

Default behaviour: the reply is ``"echo: <last user text>"`` plus ``" (N image[s])"`` when the last user
message holds images. Tools are called when the tool choice requires one, or when the last user message says
``call <toolname>`` (several mentions: parallel calls). JSON mode replies with a JSON object.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Conversation",
    "Generation",
    "Responder",
    "ToolCallOut",
    "ToolSpec",
    "count_tokens",
    "embed",
    "example_from_schema",
    "generate",
    "split_tokens",
]

_TOKEN = re.compile(r"\s*\S+")
_TRIGGER = re.compile(r"\bcall\s+([A-Za-z0-9_.:-]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    schema: dict[str, Any]


@dataclass(slots=True)
class Conversation:
    """A protocol-neutral view of a chat request."""

    model: str
    messages: list[tuple[str, str]] = field(default_factory=list)  # (role, flattened text)
    system: str = ""
    last_user_text: str = ""  # text of the last message when it is a plain user message
    tool_result: str | None = None  # content of the last message when it is a tool result
    images: int = 0  # images in the last user message
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str = "auto"  # auto | none | required
    tool_choice_name: str | None = None
    parallel_tool_calls: bool = True
    json_mode: bool = False
    json_schema: dict[str, Any] | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    prefill: str | None = None  # a final assistant turn the model continues (Anthropic prefill)


Responder = Callable[[Conversation], str]


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str  # a JSON object, as text


@dataclass(frozen=True, slots=True)
class Generation:
    """What the model answered; ``pieces`` are the stream deltas of ``text`` (they join to it)."""

    text: str
    pieces: list[str]
    tool_calls: list[ToolCallOut]
    finish: str  # stop | length | stop_sequence | tool_calls
    stop_sequence: str | None
    prompt_tokens: int
    completion_tokens: int


def split_tokens(text: str) -> list[str]:
    """Whitespace tokens, each keeping its leading whitespace, so they join back to the text."""
    pieces = _TOKEN.findall(text)
    tail = text[len("".join(pieces)) :]
    if tail and pieces:
        pieces[-1] += tail
    elif tail:
        pieces = [tail]
    return pieces


def count_tokens(conv: Conversation) -> int:
    """Prompt tokens: whitespace tokens of every message and the system text, 1 per image, at least 1."""
    words = len(conv.system.split()) + sum(len(text.split()) for _, text in conv.messages)
    return max(1, words + conv.images + len(conv.tools))


def example_from_schema(schema: Any, *, all_properties: bool = False) -> Any:
    """A placeholder value that satisfies a simple JSON schema (required properties only, unless asked)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_from_schema(options[0], all_properties=all_properties)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    simple: dict[str, Any] = {"string": "example", "integer": 1, "number": 1.5, "boolean": True, "null": None}
    if kind in simple:
        return simple[kind]
    if kind == "array":
        count = int(schema.get("minItems") or 0)
        return [example_from_schema(schema.get("items"), all_properties=all_properties) for _ in range(count)]
    if kind == "object":
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        required = required if isinstance(required, list) else []
        names = list(props) if all_properties else [n for n in required if isinstance(n, str)]
        return {n: example_from_schema(props.get(n, {}), all_properties=all_properties) for n in names}
    return None


def _tools_to_call(conv: Conversation) -> list[ToolSpec]:
    if not conv.tools or conv.tool_choice == "none":
        return []
    by_name = {t.name: t for t in conv.tools}
    if conv.tool_choice_name is not None:
        return [by_name[conv.tool_choice_name]] if conv.tool_choice_name in by_name else []
    chosen: list[ToolSpec] = []
    if conv.tool_result is None:
        for name in _TRIGGER.findall(conv.last_user_text):
            tool = by_name.get(name.rstrip(".,:;!?"))
            if tool is not None and tool not in chosen:
                chosen.append(tool)
    if not chosen and conv.tool_choice == "required":
        chosen = [conv.tools[0]]
    return chosen if conv.parallel_tool_calls else chosen[:1]


def default_reply(conv: Conversation) -> str:
    """``echo: <last user text>`` (or the tool result), with the image count of the last user message."""
    if conv.tool_result is not None:
        text = f"tool result: {conv.tool_result}"
    else:
        text = f"echo: {conv.last_user_text}".rstrip()
    if conv.images:
        text += f" ({conv.images} image{'s' if conv.images != 1 else ''})"
    if conv.json_schema is not None:
        value = example_from_schema(conv.json_schema, all_properties=True)
        return json.dumps(value if value is not None else {"reply": text})
    if conv.json_mode:
        return json.dumps({"reply": text})
    return text


def generate(conv: Conversation, responder: Responder | None = None) -> Generation:
    """The deterministic answer to ``conv``: tool calls, or text cut by stop sequences and max_tokens."""
    prompt = count_tokens(conv)
    tools = _tools_to_call(conv)
    if tools:
        calls = [
            ToolCallOut(
                id=uuid.uuid4().hex[:24], name=t.name, arguments=json.dumps(example_from_schema(t.schema) or {})
            )
            for t in tools
        ]
        used = sum(len(c.arguments.split()) + 1 for c in calls)
        return Generation("", [], calls, "tool_calls", None, prompt, used)
    text = (responder or default_reply)(conv)
    if conv.prefill and text.startswith(conv.prefill):
        text = text[len(conv.prefill) :]  # the answer continues the partial assistant turn
    finish, stop_seq = "stop", None
    hits = [(text.find(s), s) for s in conv.stop if s and s in text]
    if hits:
        pos, stop_seq = min(hits)
        text, finish = text[:pos], "stop_sequence"
    pieces = split_tokens(text)
    if conv.max_tokens is not None and len(pieces) > conv.max_tokens:
        pieces = pieces[: conv.max_tokens]
        text, finish, stop_seq = "".join(pieces), "length", None
    return Generation(text, pieces, [], finish, stop_seq, prompt, len(pieces))


def embed(text: str, dim: int) -> list[float]:
    """A deterministic L2-normalised vector for ``text`` (sha256 in counter mode, mapped to [-1, 1])."""
    raw = b""
    counter = 0
    while len(raw) < dim * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{dim}I", raw[: dim * 4])
    vec = [i / 2147483647.5 - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def encode_base64(vec: list[float]) -> str:
    """Little-endian float32, base64: OpenAI's ``encoding_format: "base64"``."""
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
