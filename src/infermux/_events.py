"""Stream events: what a chat stream yields, provider-neutral (re-exported by :mod:`infermux.types`).

Each event may carry ``wire``: the upstream message it came from, as ``(protocol, SSE event name, data)``, set by
a provider's stream parser where the message holds what the neutral events do not model (vendor fields, citations,
server-tool blocks...). A gateway renderer of the same protocol re-emits it as it came; one of another protocol,
and :class:`StreamAccumulator`, ignore it. An upstream message with no neutral counterpart at all becomes a
:class:`WireEvent`. ``wire`` is ``None`` (and costs nothing) elsewhere; it takes no part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .types import ChatResponse, FinishReason, ReasoningBlock, ToolCall, Usage

__all__ = [
    "ReasoningDelta",
    "StreamAccumulator",
    "StreamError",
    "StreamEvent",
    "StreamFinish",
    "StreamResumed",
    "StreamStart",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "UsageEvent",
    "Wire",
    "WireEvent",
]

#: an upstream stream message: (protocol, SSE event name or None, data text). Protocols: "openai_chat"
#: (``chat.completion.chunk`` data lines), "anthropic" (Messages named events).
Wire = tuple[str, str | None, str]


@dataclass(frozen=True, slots=True)
class StreamStart:
    """First event of a stream: the provider's response id and model, when it sends them."""

    response_id: str | None = None
    model: str | None = None
    type: Literal["start"] = "start"
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    type: Literal["text_delta"] = "text_delta"
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning, apart from the answer text (``ChatStream.text()`` never yields it).
    ``index``: the 0-based ordinal of the reasoning block (Anthropic can send several). ``signature``, ``redacted``
    and ``protocol`` as in :class:`ReasoningBlock`; the opaque ones arrive whole, usually with ``text == ''``."""

    text: str
    index: int = 0
    signature: str | None = None
    redacted: str | None = None
    protocol: str | None = None
    type: Literal["reasoning_delta"] = "reasoning_delta"
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str
    type: Literal["tool_call_start"] = "tool_call_start"
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    index: int
    arguments_delta: str
    type: Literal["tool_call_delta"] = "tool_call_delta"
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    index: int
    call: ToolCall
    type: Literal["tool_call_end"] = "tool_call_end"
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """Token usage reported in the stream; ``raw`` is the provider's usage object when it carries more
    (e.g. Groq's timing fields), for ``Provider.response_metrics``."""

    usage: Usage
    type: Literal["usage"] = "usage"
    raw: Any = field(default=None, compare=False, repr=False)
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StreamFinish:
    """The protocol's terminal marker was seen. Every complete stream ends with exactly one."""

    reason: FinishReason | None
    type: Literal["finish"] = "finish"
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error the provider reported inside the stream (e.g. Anthropic ``event: error``)."""

    error_type: str | None
    message: str
    status_code: int | None = None
    type: Literal["error"] = "error"
    wire: Wire | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StreamResumed:
    """The stream broke after content reached the caller and was resumed: the request was sent again (with the
    delivered text as a partial assistant turn where the provider supports prefill) and the new stream continues
    this one with no text repeated. ``from_endpoint``/``to_endpoint`` name where it broke and where it goes on
    (another endpoint of the group: mid-stream failover). ``tool_calls_restarted``: tool calls streamed before
    the break are void (one was cut mid-arguments, or the new endpoint cannot continue them); the new stream
    sends its tool calls again from index 0 (:class:`StreamAccumulator` drops the old ones)."""

    from_endpoint: str | None
    to_endpoint: str | None
    attempt: int
    delivered_chars: int
    reason: str = ""
    type: Literal["resumed"] = "resumed"
    tool_calls_restarted: bool = False
    wire: Wire | None = field(default=None, compare=False, repr=False)  # always None: made by infermux


@dataclass(frozen=True, slots=True)
class WireEvent:
    """An upstream stream message that no neutral event stands for (an Anthropic ``citations_delta``, a
    ``server_tool_use`` or ``web_search_tool_result`` block, a block type infermux does not know, an OpenAI chunk
    with only vendor fields): re-emitted by a gateway renderer of ``wire``'s protocol, ignored by the others."""

    wire: Wire
    type: Literal["wire"] = "wire"


StreamEvent = (
    StreamStart
    | TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageEvent
    | StreamFinish
    | StreamError
    | StreamResumed
    | WireEvent
)


class StreamAccumulator:
    """Folds stream events into the same :class:`ChatResponse` a non-stream call returns.

    Tool calls are assembled from start/delta events; a ``ToolCallEnd`` replaces the assembled
    call with the provider's final one.
    """

    __slots__ = (
        "_calls",
        "_reasoning",
        "_texts",
        "finish_reason",
        "finished",
        "model",
        "response_id",
        "usage",
        "usage_raw",
    )

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._calls: dict[int, list[Any]] = {}
        self._reasoning: dict[int, list[Any]] = {}  # block index -> [text pieces, signature, redacted]
        self.finish_reason: FinishReason | None = None
        self.finished = False
        self.usage: Usage | None = None
        self.usage_raw: Any = None
        self.model: str | None = None
        self.response_id: str | None = None

    @property
    def text(self) -> str:
        return "".join(self._texts)

    def add(self, ev: StreamEvent) -> None:
        if isinstance(ev, TextDelta):
            self._texts.append(ev.text)
        elif isinstance(ev, ReasoningDelta):
            slot = self._reasoning.setdefault(ev.index, [[], None, None, None])
            slot[0].append(ev.text)
            slot[3] = ev.protocol or slot[3]
            if ev.signature is not None:
                slot[1] = (slot[1] or "") + ev.signature
            if ev.redacted is not None:
                slot[2] = (slot[2] or "") + ev.redacted
        elif isinstance(ev, ToolCallStart):
            self._calls[ev.index] = [ev.id, ev.name, [], None]
        elif isinstance(ev, ToolCallDelta):
            slot = self._calls.setdefault(ev.index, ["", "", [], None])
            slot[2].append(ev.arguments_delta)
        elif isinstance(ev, ToolCallEnd):
            slot = self._calls.setdefault(ev.index, [ev.call.id, ev.call.name, [], None])
            slot[3] = ev.call
        elif isinstance(ev, UsageEvent):
            self.usage = ev.usage
            self.usage_raw = ev.raw
        elif isinstance(ev, StreamFinish):
            self.finished = True
            if ev.reason is not None:
                self.finish_reason = ev.reason
        elif isinstance(ev, StreamStart):
            self.response_id = ev.response_id or self.response_id
            self.model = ev.model or self.model
        elif isinstance(ev, StreamResumed) and ev.tool_calls_restarted:
            self._calls.clear()

    @property
    def reasoning(self) -> str:
        return "".join("".join(slot[0]) for _, slot in sorted(self._reasoning.items()))

    def reasoning_blocks(self) -> tuple[ReasoningBlock, ...]:
        return tuple(
            ReasoningBlock("".join(p), sig, red, pr) for _, (p, sig, red, pr) in sorted(self._reasoning.items())
        )

    def tool_calls(self) -> tuple[ToolCall, ...]:
        out = []
        for _, (cid, name, parts, final) in sorted(self._calls.items()):
            out.append(final if final is not None else ToolCall.from_raw(cid, name, "".join(parts)))
        return tuple(out)

    def response(self, **fields: Any) -> ChatResponse:
        return ChatResponse(
            text=self.text,
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason,
            usage=self.usage,
            model=fields.pop("model", None) or self.model,
            response_id=self.response_id,
            reasoning=self.reasoning,
            reasoning_blocks=self.reasoning_blocks(),
            **fields,
        )


def set_wire(ev: StreamEvent, wire: Wire) -> None:
    """Attach the upstream message ``wire`` to ``ev``, an event its parser has just built and no one has seen yet
    (no copy: a parser tags the first event of a message; :class:`StreamResumed` has no ``wire``)."""
    object.__setattr__(ev, "wire", wire)
