"""Neutral stream events rendered as the caller's protocol's SSE, one frame per event as it arrives.

Each renderer turns one :mod:`infermux.types` stream event into the bytes to write now (often one frame,
sometimes none: usage is held for the end) and writes the protocol's terminal marker when the stream
finishes. ``error()`` renders an error that happens after the response headers were sent (in-band).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from .._validate import compact_dumps
from ..types import (
    ReasoningDelta,
    StreamAccumulator,
    StreamEvent,
    StreamFinish,
    StreamResumed,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageEvent,
    Wire,
    WireEvent,
)
from .render import (
    anthropic_stop_reason,
    anthropic_usage,
    openai_finish_reason,
    openai_usage,
    reasoning_item,
    responses_items,
    responses_object,
    tool_input,
)

__all__ = ["AnthropicSSE", "ChatSSE", "CompletionSSE", "ResponsesSSE", "StreamRenderer", "dumps"]


#: the one encoder of every frame and body: compact, non-ASCII kept, one C encoder kept (``json.dumps`` with
#: options builds an encoder per call); no circular-reference check, as what it encodes is parsed JSON or the
#: gateway's own dicts
dumps = compact_dumps


#: a text no model sends, rendered where a text delta's text goes to make the stream's text frame template
_MARK = "\x00infermux-text\x00"
_MARK_JSON = dumps(_MARK).encode()
_SEQ_END = b"0}\n\n"  # a Responses frame's end when its sequence_number (its last field) is 0


def data_frame(obj: Any) -> bytes:
    return f"data: {dumps(obj)}\n\n".encode()


def event_frame(name: str, obj: Any) -> bytes:
    return f"event: {name}\ndata: {dumps(obj)}\n\n".encode()


def wire_frame(wire: Wire, data: str | None = None) -> bytes:
    """An upstream message as it came (``data``: its text with a field changed, for a renumbered block)."""
    text = wire[2] if data is None else data
    if "\n" in text:  # a multi-line data field: each line is a data line
        text = text.replace("\n", "\ndata: ")
    return f"event: {wire[1]}\ndata: {text}\n\n".encode() if wire[1] else f"data: {text}\n\n".encode()


class StreamRenderer:
    """Base: ``feed(event) -> bytes`` while streaming, ``close() -> bytes`` after the source ended,
    ``error(status, type, message) -> bytes`` for an in-band error."""

    def __init__(self, request_id: str, model: str) -> None:
        self.request_id = request_id
        self.model = model
        self.created = int(time.time())
        self.done = False
        self.usage: Usage | None = None
        self.acc = StreamAccumulator()

    def feed(self, ev: StreamEvent) -> bytes:
        self.acc.add(ev)
        if isinstance(ev, UsageEvent):
            self.usage = ev.usage
            return self._usage(ev)
        if self.done:
            return b""
        return self._event(ev)

    def _usage(self, ev: UsageEvent) -> bytes:
        """A usage event (held for the end: nothing to write now, unless overridden)."""
        return b""

    def _event(self, ev: StreamEvent) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> bytes:
        """After the source ended: the terminal frames if no StreamFinish came (should not happen)."""
        return b"" if self.done else self._event(StreamFinish(self.acc.finish_reason))

    def error(self, status: int, error_type: str, message: str) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError


class ChatSSE(StreamRenderer):
    """OpenAI ``chat.completion.chunk`` frames, ``data: [DONE]`` at the end; usage in a last chunk with
    empty ``choices`` when the caller asked for it (``stream_options.include_usage``)."""

    OBJECT = "chat.completion.chunk"
    #: the wire protocol whose chunks are relayed as they came (see :mod:`infermux._events`); None: none
    WIRE: str | None = "openai_chat"

    def __init__(self, request_id: str, model: str, *, include_usage: bool = False) -> None:
        super().__init__(request_id, model)
        self.include_usage = include_usage
        self._started = False
        self._args_sent: set[int] = set()
        self._calls_started: set[int] = set()
        self._relayed: Wire | None = None  # the upstream chunk last relayed (its other events are in it)
        self._relaying = False  # the last content went out as upstream chunks (so did their finish chunk)
        self._usage_sent = False
        self._text_parts: tuple[bytes, bytes] | None = None  # a text frame's bytes before and after the text

    def _usage(self, ev: UsageEvent) -> bytes:
        w = ev.wire
        if w is None or w[0] != self.WIRE or self.done or not self.include_usage or w is self._relayed:
            return b""
        self._relayed, self._usage_sent = w, True  # the upstream's usage chunk, as it came
        return wire_frame(w)

    def _chunk(self, choice: Mapping[str, Any] | None, **extra: Any) -> bytes:
        obj: dict[str, Any] = {
            "id": f"chatcmpl-{self.request_id}",
            "object": self.OBJECT,
            "created": self.created,
            "model": self.model,
            "choices": [] if choice is None else [choice],
        }
        obj.update(extra)
        return data_frame(obj)

    def _delta(self, delta: Mapping[str, Any], finish: str | None = None) -> bytes:
        return self._chunk({"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish})

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._delta({"role": "assistant", "content": ""})

    def _tool_start(self, index: int, call_id: str, name: str) -> bytes:
        self._calls_started.add(index)
        fn = {"name": name, "arguments": ""}
        return self._delta({"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": fn}]})

    def _args(self, index: int, text: str) -> bytes:
        self._args_sent.add(index)
        return self._delta({"tool_calls": [{"index": index, "function": {"arguments": text}}]})

    def _relay(self, w: Wire) -> bytes:
        """A same-protocol backend's chunk, as it came (once: its other events are in it)."""
        if w is self._relayed:
            return b""
        self._relayed = w
        self._relaying = self._started = True
        return wire_frame(w)

    def _end(self, ev: StreamFinish) -> bytes:
        self.done = True
        out = b""
        if not self._relaying:  # else the upstream's finish chunk went out with its chunks
            out = self._start() + self._finish(openai_finish_reason(ev.reason or self.acc.finish_reason))
        if self.include_usage and self.usage is not None and not self._usage_sent:
            out += self._chunk(None, usage=openai_usage(self.usage))
        return out + b"data: [DONE]\n\n"

    def _event(self, ev: StreamEvent) -> bytes:
        w = ev.wire
        if w is not None and w[0] == self.WIRE:
            return self._relay(w)
        if isinstance(ev, WireEvent):
            return b""
        if isinstance(ev, StreamFinish):
            return self._end(ev)
        self._relaying = False
        if isinstance(ev, StreamStart):
            return self._start()
        head = self._start()
        if isinstance(ev, TextDelta):
            return head + self._text(ev.text)
        if isinstance(ev, ReasoningDelta):
            return head + self._reasoning(ev)
        if isinstance(ev, ToolCallStart):
            return head + self._tool_start(ev.index, ev.id, ev.name)
        if isinstance(ev, ToolCallDelta):
            return head + self._args(ev.index, ev.arguments_delta)
        if isinstance(ev, ToolCallEnd):  # a provider that sends whole calls: start and arguments at once
            out = head
            if ev.index not in self._calls_started:
                out += self._tool_start(ev.index, ev.call.id, ev.call.name)
            if ev.index not in self._args_sent:
                out += self._args(ev.index, ev.call.raw_arguments or "{}")
            return out
        return head  # StreamResumed: the seam is invisible to an OpenAI client

    def _text(self, text: str) -> bytes:
        """A text delta's frame: the stream's frame template (rendered once, by :meth:`_text_frame`, around a
        marker) with the text's JSON in it; byte for byte what :meth:`_text_frame` renders for ``text``."""
        parts = self._text_parts
        if parts is None:
            head, _, tail = self._text_frame(_MARK).rpartition(_MARK_JSON)
            parts = self._text_parts = (head, tail)
        return parts[0] + dumps(text).encode() + parts[1]

    def _text_frame(self, text: str) -> bytes:
        return self._delta({"content": text})

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        """``reasoning_content`` deltas, as vLLM, DeepSeek and llama.cpp send them (signatures and redacted
        blocks have no OpenAI-compatible form: left out)."""
        return self._delta({"reasoning_content": ev.text}) if ev.text else b""

    def _finish(self, reason: str) -> bytes:
        return self._delta({}, reason)

    def error(self, status: int, error_type: str, message: str) -> bytes:
        self.done = True
        return data_frame({"error": {"message": message, "type": error_type, "param": None, "code": status}})


class CompletionSSE(ChatSSE):
    """Legacy ``text_completion`` chunks (``choices[].text``), ``data: [DONE]`` at the end."""

    OBJECT = "text_completion"
    WIRE = None  # the prompt went as a chat turn: its chunks are not completions

    def _start(self) -> bytes:
        self._started = True
        return b""

    def _text_frame(self, text: str) -> bytes:
        return self._chunk({"index": 0, "text": text, "logprobs": None, "finish_reason": None})

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        return b""  # legacy completions have no reasoning field

    def _finish(self, reason: str) -> bytes:
        return self._chunk({"index": 0, "text": "", "logprobs": None, "finish_reason": reason})


class AnthropicSSE(StreamRenderer):
    """Anthropic named events: ``message_start``, one content block per text run or tool call
    (``content_block_start`` / ``_delta`` / ``_stop``), ``message_delta`` (stop reason, usage), ``message_stop``."""

    def __init__(self, request_id: str, model: str) -> None:
        super().__init__(request_id, model)
        self._started = False
        self._block = -1  # index of the open content block, -1: none
        self._block_kind: str | None = None
        self._tool_blocks: dict[int, int] = {}  # tool ordinal -> content block index
        self._tool_args: set[int] = set()
        self._thinking: int | None = None  # ReasoningDelta.index of the open thinking block
        self._wire_blocks: dict[int, int] = {}  # upstream index -> index here, of blocks relayed as they came
        self._final: Wire | None = None  # the upstream's message_delta (its usage details, stop_details...)
        self._relayed: Wire | None = None  # the upstream message last relayed
        self._text_parts: dict[int, tuple[bytes, bytes]] = {}  # block index -> its text frame around the text

    def _usage(self, ev: UsageEvent) -> bytes:
        w = ev.wire
        self._final = w if w is not None and w[0] == "anthropic" else None
        return b""

    def _relay(self, w: Wire) -> bytes:
        """An upstream Anthropic message as it came; a block's index renumbered where this stream's differs."""
        kind = w[1]
        if kind == "message_start":
            if self._started:
                return b""  # a later part's (resumed or failed over): the caller has its message
            self._started = True
            return wire_frame(w)
        if kind not in ("content_block_start", "content_block_delta", "content_block_stop"):
            return self._start() + wire_frame(w)
        obj = json.loads(w[2])
        up = obj.get("index")
        out = self._start()
        if kind == "content_block_start":
            out += self._close_block()
            self._block += 1
            block = obj.get("content_block")
            self._block_kind = "text" if isinstance(block, Mapping) and block.get("type") == "text" else "wire"
            self._wire_blocks[up] = at = self._block
        else:
            at = self._wire_blocks.get(up, self._block if self._block_kind is not None else -1)
            if at < 0 or (kind == "content_block_stop" and (up not in self._wire_blocks or at != self._block)):
                return out  # its block was not relayed (a resumed part's), or is already closed
            if kind == "content_block_stop":
                del self._wire_blocks[up]
                self._block_kind = None
        if at == up:
            return out + wire_frame(w)
        obj["index"] = at
        return out + wire_frame(w, dumps(obj))

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": f"msg_{self.request_id}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event_frame("message_start", {"type": "message_start", "message": message})

    def _close_block(self) -> bytes:
        if self._block_kind is None:
            return b""
        self._block_kind = None
        return event_frame("content_block_stop", {"type": "content_block_stop", "index": self._block})

    def _open_block(self, kind: str, block: Mapping[str, Any]) -> bytes:
        out = self._close_block()
        self._block += 1
        self._block_kind = kind
        frame = {"type": "content_block_start", "index": self._block, "content_block": block}
        return out + event_frame("content_block_start", frame)

    def _delta(self, index: int, delta: Mapping[str, Any]) -> bytes:
        return event_frame("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _text_delta(self, index: int, text: str) -> bytes:
        """A ``text_delta`` frame from the block's template (rendered once around a marker), byte for byte the
        frame :meth:`_delta` renders."""
        parts = self._text_parts.get(index)
        if parts is None:
            frame = self._delta(index, {"type": "text_delta", "text": _MARK})
            head, _, tail = frame.rpartition(_MARK_JSON)
            parts = self._text_parts[index] = (head, tail)
        return parts[0] + dumps(text).encode() + parts[1]

    def _tool_open(self, ordinal: int, call_id: str, name: str) -> bytes:
        out = self._open_block("tool_use", {"type": "tool_use", "id": call_id, "name": name, "input": {}})
        self._tool_blocks[ordinal] = self._block
        return out

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        """A thinking block per reasoning index (``thinking_delta`` text, ``signature_delta``), or a whole
        ``redacted_thinking`` block."""
        out = b""
        if ev.protocol not in (None, "anthropic"):  # another protocol's signature: the text only
            ev = ReasoningDelta(ev.text, ev.index)
        if ev.redacted is not None:
            self._thinking = None
            out += self._open_block("redacted_thinking", {"type": "redacted_thinking", "data": ev.redacted})
            return out + self._close_block()
        if self._block_kind != "thinking" or self._thinking != ev.index:
            out += self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            self._thinking = ev.index
        if ev.text:
            out += self._delta(self._block, {"type": "thinking_delta", "thinking": ev.text})
        if ev.signature:
            out += self._delta(self._block, {"type": "signature_delta", "signature": ev.signature})
        return out

    def _event(self, ev: StreamEvent) -> bytes:
        w = ev.wire
        if w is not None and (w[0] == "anthropic" or type(ev) is WireEvent):
            # the upstream message: relayed when it is Anthropic's and says what no neutral event does (a
            # message_start, a block infermux does not model); once (the text a relayed block starts with)
            if w is self._relayed:
                return b""
            if type(ev) is WireEvent or not self._started:
                if w[0] != "anthropic":
                    return b""
                self._relayed = w
                return self._relay(w)
        out = self._start()
        if isinstance(ev, ReasoningDelta):
            return out + self._reasoning(ev)
        if isinstance(ev, TextDelta):
            if self._block_kind != "text":
                out += self._open_block("text", {"type": "text", "text": ""})
            return out + self._text_delta(self._block, ev.text)
        if isinstance(ev, ToolCallStart):
            return out + self._tool_open(ev.index, ev.id, ev.name)
        if isinstance(ev, ToolCallDelta) and ev.index in self._tool_blocks:
            self._tool_args.add(ev.index)
            return out + self._delta(
                self._tool_blocks[ev.index], {"type": "input_json_delta", "partial_json": ev.arguments_delta}
            )
        if isinstance(ev, ToolCallEnd):
            return out + self._tool_end(ev)
        if isinstance(ev, StreamFinish):
            return out + self._end(ev)
        return out

    def _tool_end(self, ev: ToolCallEnd) -> bytes:
        """A provider that sends whole calls: the block and its input at once."""
        out = b""
        if ev.index not in self._tool_blocks:
            out += self._tool_open(ev.index, ev.call.id, ev.call.name)
        if ev.index not in self._tool_args:
            self._tool_args.add(ev.index)
            js = dumps(tool_input(ev.call))
            out += self._delta(self._tool_blocks[ev.index], {"type": "input_json_delta", "partial_json": js})
        return out

    def _end(self, ev: StreamFinish) -> bytes:
        self.done = True
        out = self._close_block()
        if self._final is not None:  # the upstream's own (same protocol): its usage details, stop_details...
            out += wire_frame(self._final)
        else:
            stop = anthropic_stop_reason(ev.reason or self.acc.finish_reason)
            delta = {"stop_reason": stop, "stop_sequence": None}
            usage = anthropic_usage(self.usage)
            out += event_frame("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + event_frame("message_stop", {"type": "message_stop"})

    def error(self, status: int, error_type: str, message: str) -> bytes:
        self.done = True
        return event_frame("error", {"type": "error", "error": {"type": error_type, "message": message}})


class ResponsesSSE(StreamRenderer):
    """OpenAI Responses named events with ``sequence_number``: ``response.created``, a message item with
    ``output_text`` deltas, function-call items with argument deltas, ``response.completed`` (or
    ``.incomplete``) carrying the whole response."""

    def __init__(self, request_id: str, model: str, body: Mapping[str, Any]) -> None:
        super().__init__(request_id, model)
        self.body = body
        self._seq = 0
        self._started = False
        self._n = -1  # output index of the open item
        self._open: str | None = None  # "message" / "function_call" / "reasoning"
        self._text: list[str] = []
        self._reasoning = -1  # ReasoningDelta.index of the open reasoning item
        self._relayed: Wire | None = None  # the upstream event last relayed (its other events are in it)
        self._calls: dict[int, list[str]] = {}  # tool ordinal -> [call_id, name, args...]
        self._delta_parts: tuple[int, bytes, bytes] | None = None  # (item's output index, text frame parts)
        self._seam = False  # the stream was resumed (failed over): nothing more is relayed as it came

    def feed(self, ev: StreamEvent) -> bytes:
        """A same-protocol backend's events are relayed as they came (its own ``response.completed`` too);
        after a seam to another backend the stream goes on rendered (new items, numbered after the relayed ones)."""
        w = ev.wire
        if type(ev) is StreamResumed:  # a seam: whatever comes next is rendered, even from a Responses backend
            self._seam = True  # (its events as they came would open a second response, numbered from 0 again)
        if w is not None and w[0] == "responses" and not self._seam:
            if self.done:
                return b""
            self.acc.add(ev)
            if type(ev) is UsageEvent:
                self.usage = ev.usage
            elif type(ev) is StreamFinish:
                self.done = True
            if w is self._relayed:
                return b""
            self._relayed, self._started = w, True
            self._seq += 1  # what this stream renders after a seam is numbered after the relayed events
            if w[1] == "response.output_item.added":
                self._n += 1
            return wire_frame(w)
        return super().feed(ev)

    def _ev(self, obj: dict[str, Any]) -> bytes:
        obj["sequence_number"] = self._seq
        self._seq += 1
        return event_frame(str(obj["type"]), obj)

    def _text_delta(self, text: str) -> bytes:
        """An ``output_text.delta`` frame from the open item's template (rendered once around a marker, with
        ``sequence_number`` last), byte for byte what :meth:`_text_delta_frame` renders."""
        parts = self._delta_parts
        if parts is None or parts[0] != self._n:
            frame = event_frame("response.output_text.delta", self._text_delta_obj(_MARK, 0))
            head, _, rest = frame.rpartition(_MARK_JSON)
            parts = self._delta_parts = (self._n, head, rest[: -len(_SEQ_END)])
        seq = self._seq
        self._seq += 1
        return parts[1] + dumps(text).encode() + parts[2] + str(seq).encode() + _SEQ_END[1:]

    def _text_delta_frame(self, text: str) -> bytes:
        return self._ev(self._text_delta_obj(text, None))

    def _text_delta_obj(self, text: str, seq: int | None) -> dict[str, Any]:
        obj = {"type": "response.output_text.delta", "item_id": self._item_id(), "output_index": self._n}
        obj.update(content_index=0, delta=text, logprobs=[])
        if seq is not None:
            obj["sequence_number"] = seq
        return obj

    def _snapshot(self, status: str) -> dict[str, Any]:
        from ..types import ChatResponse

        resp = ChatResponse(
            text=self.acc.text,
            tool_calls=self.acc.tool_calls(),
            finish_reason=self.acc.finish_reason,
            usage=self.usage,
            request_id=self.request_id,
            reasoning_blocks=self.acc.reasoning_blocks(),
        )
        obj = responses_object(resp, self.model, self.body)
        obj["id"] = f"resp_{self.request_id}"
        if status != "done":
            obj.update(status=status, output=[], usage=None, incomplete_details=None)
        return obj

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        snap = self._snapshot("in_progress")
        return self._ev({"type": "response.created", "response": snap}) + self._ev(
            {"type": "response.in_progress", "response": snap}
        )

    def _item_id(self) -> str:
        if self._open == "reasoning":
            return f"rs_{self.request_id}_{self._reasoning}"
        return f"msg_{self.request_id}" if self._open == "message" else f"fc_{self.request_id}_{self._n}"

    def _reasoning_delta(self, ev: ReasoningDelta) -> bytes:
        """A reasoning item per reasoning block, its text as the summary (``reasoning_summary_part`` and
        ``reasoning_summary_text`` events, as the real API streams a summary); text-less pieces (another
        protocol's signature, a redacted block) have no form here."""
        out = b""
        if self._open != "reasoning" or self._reasoning != ev.index:
            if not ev.text:
                return out
            out += self._close()
            self._n += 1
            self._open, self._reasoning, self._text = "reasoning", ev.index, []
            item = {"id": self._item_id(), "type": "reasoning", "summary": []}
            out += self._ev({"type": "response.output_item.added", "output_index": self._n, "item": item})
            ids = {"item_id": self._item_id(), "output_index": self._n, "summary_index": 0}
            part = {"type": "summary_text", "text": ""}
            out += self._ev({"type": "response.reasoning_summary_part.added", **ids, "part": part})
        if ev.text:
            self._text.append(ev.text)
            ids = {"item_id": self._item_id(), "output_index": self._n, "summary_index": 0}
            out += self._ev({"type": "response.reasoning_summary_text.delta", **ids, "delta": ev.text})
        return out

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        out = b""
        ids = {"item_id": self._item_id(), "output_index": self._n}
        if self._open == "reasoning":
            text = "".join(self._text)
            at = {**ids, "summary_index": 0}
            out += self._ev({"type": "response.reasoning_summary_text.done", **at, "text": text})
            summary = {"type": "summary_text", "text": text}
            out += self._ev({"type": "response.reasoning_summary_part.done", **at, "part": summary})
            item = reasoning_item(self.request_id, self._reasoning, text)
        elif self._open == "message":
            text = "".join(self._text)
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
            out += self._ev({"type": "response.output_text.done", **ids, "content_index": 0, "text": text})
            out += self._ev({"type": "response.content_part.done", **ids, "content_index": 0, "part": part})
            item = responses_items(text, (), self.request_id, "completed")[0]
        else:
            call_id, name, *args = next(reversed(self._calls.values()))
            arguments = "".join(args) or "{}"
            out += self._ev({"type": "response.function_call_arguments.done", **ids, "arguments": arguments})
            item = {"id": ids["item_id"], "type": "function_call", "status": "completed", "call_id": call_id}
            item.update(name=name, arguments=arguments)
        self._open = None
        return out + self._ev({"type": "response.output_item.done", "output_index": self._n, "item": item})

    def _event(self, ev: StreamEvent) -> bytes:
        if isinstance(ev, WireEvent):
            return b""
        out = self._start()
        if isinstance(ev, ReasoningDelta):
            return out + self._reasoning_delta(ev)
        if isinstance(ev, TextDelta):
            if self._open != "message":
                out += self._close()
                self._n += 1
                self._open = "message"
                self._text = []
                item: dict[str, Any] = {"id": self._item_id(), "type": "message", "status": "in_progress"}
                item.update(role="assistant", content=[])
                out += self._ev({"type": "response.output_item.added", "output_index": self._n, "item": item})
                part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
                ids = {"item_id": self._item_id(), "output_index": self._n, "content_index": 0}
                out += self._ev({"type": "response.content_part.added", **ids, "part": part})
            self._text.append(ev.text)
            return out + self._text_delta(ev.text)
        if isinstance(ev, (ToolCallStart, ToolCallEnd)) and ev.index not in self._calls:
            out += self._close()
            call_id, name = (ev.id, ev.name) if isinstance(ev, ToolCallStart) else (ev.call.id, ev.call.name)
            self._calls[ev.index] = [call_id, name]
            self._n += 1
            self._open = "function_call"
            item = {"id": self._item_id(), "type": "function_call", "status": "in_progress", "call_id": call_id}
            item.update(name=name, arguments="")
            out += self._ev({"type": "response.output_item.added", "output_index": self._n, "item": item})
        if isinstance(ev, (ToolCallDelta, ToolCallEnd)) and ev.index in self._calls:
            slot = self._calls[ev.index]
            piece = ev.arguments_delta if isinstance(ev, ToolCallDelta) else ("" if slot[2:] else ev.call.raw_arguments)
            if piece:
                slot.append(piece)
                ids = {"item_id": self._item_id(), "output_index": self._n}
                out += self._ev({"type": "response.function_call_arguments.delta", **ids, "delta": piece})
            return out
        if isinstance(ev, StreamFinish):
            self.done = True
            out += self._close()
            final = self._snapshot("done")
            final["id"] = f"resp_{self.request_id}"
            return out + self._ev({"type": f"response.{final['status']}", "response": final})
        return out

    def error(self, status: int, error_type: str, message: str) -> bytes:
        self.done = True
        return self._ev({"type": "error", "code": error_type, "message": message, "param": None})
