"""Provider-neutral requests, responses and stream events.

Public values are frozen, slotted dataclasses: cheap to build, immutable, and validated once in
``__post_init__`` so that a bad request fails with a :class:`~infermux.errors.ConfigurationError`
before anything is sent.
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

from ._validate import check_fields, check_str_tuple
from .errors import ConfigurationError, MalformedResponseError

__all__ = [
    "REASONING_EFFORTS",
    "ChatRequest",
    "ChatResponse",
    "EmbedRequest",
    "EmbedResponse",
    "FinishReason",
    "ImagePart",
    "Message",
    "MessagesInput",
    "Part",
    "Priority",
    "ReasoningBlock",
    "ReasoningDelta",
    "ReasoningEffort",
    "ResponseFormat",
    "RouteHop",
    "StreamAccumulator",
    "StreamError",
    "StreamEvent",
    "StreamFinish",
    "StreamResumed",
    "StreamStart",
    "TextDelta",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "Usage",
    "UsageEvent",
    "Wire",
    "WireEvent",
    "coerce_messages",
]

Role = Literal["system", "user", "assistant", "tool"]
_ROLES = frozenset(("system", "user", "assistant", "tool"))

#: Normalised finish reasons. Providers' own values are mapped onto these; the original is kept in
#: ``ChatResponse.raw``.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
REASONING_EFFORTS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh")


class Priority(enum.IntEnum):
    """Queue priority of a request on an endpoint. Lower value is served first."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


# --------------------------------------------------------------------------- content parts


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ConfigurationError(f"TextPart.text must be str, got {type(self.text).__name__}")


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image given by URL (``url``) or inline as base64 (``data`` + ``media_type``).

    A ``data:`` URL passed as ``url`` is split into ``data`` and ``media_type``.
    """

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    type: Literal["image"] = "image"

    def __post_init__(self) -> None:
        if self.url and self.url.startswith("data:"):
            head, _, payload = self.url.partition(",")
            if ";base64" not in head or not payload:
                raise ConfigurationError("ImagePart data: URL must be base64-encoded ('data:<type>;base64,...')")
            object.__setattr__(self, "media_type", head[5:].split(";")[0] or "application/octet-stream")
            object.__setattr__(self, "data", payload)
            object.__setattr__(self, "url", None)
        if (self.url is None) == (self.data is None):
            raise ConfigurationError("ImagePart needs exactly one of url= or data=")
        if self.data is not None and not self.media_type:
            raise ConfigurationError("ImagePart with data= needs media_type= (e.g. 'image/png')")

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str, detail: Literal["auto", "low", "high"] | None = None) -> ImagePart:
        return cls(data=base64.b64encode(raw).decode("ascii"), media_type=media_type, detail=detail)

    def as_data_url(self) -> str:
        if self.url is not None:
            return self.url
        return f"data:{self.media_type};base64,{self.data}"


Part = TextPart | ImagePart


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigurationError("Tool.name must be a non-empty string")
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type", "object") != "object":
            raise ConfigurationError(f"Tool {self.name!r}: parameters must be a JSON Schema of type 'object'")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for. ``arguments`` is the parsed JSON (``None`` if it did not parse);
    ``raw_arguments`` the exact string the provider sent. ``signature``: Gemini's ``thoughtSignature`` of the
    ``functionCall`` part (2.5 / 3 thinking models), sent back on the same part in the next turn (Gemini 3
    refuses a tool loop without it; keep the call on the assistant :class:`Message`, see
    :meth:`ChatResponse.message`); other protocols ignore it."""

    id: str
    name: str
    arguments: Any
    raw_arguments: str
    signature: str | None = field(default=None, compare=False)

    @classmethod
    def from_raw(cls, id: str, name: str, raw_arguments: object) -> ToolCall:
        if raw_arguments is None or raw_arguments == "":
            return cls(id=id, name=name, arguments={}, raw_arguments=raw_arguments or "")
        if isinstance(raw_arguments, Mapping):
            return cls(id=id, name=name, arguments=dict(raw_arguments), raw_arguments=json.dumps(raw_arguments))
        if not isinstance(raw_arguments, str):  # a list/number/bool where a JSON text belongs: kept as JSON
            try:
                text = json.dumps(raw_arguments)
            except (TypeError, ValueError) as e:
                raise ConfigurationError(f"tool call {name!r}: arguments must be a JSON text or object") from e
            return cls(id=id, name=name, arguments=raw_arguments, raw_arguments=text)
        try:
            parsed: Any = json.loads(raw_arguments)
        except ValueError:
            parsed = None
        return cls(id=id, name=name, arguments=parsed, raw_arguments=raw_arguments)


# --------------------------------------------------------------------------- reasoning


@dataclass(frozen=True, slots=True)
class ReasoningBlock:
    """Reasoning ("thinking") of an answer, not part of its text. ``text`` is the readable reasoning; ``signature``
    an opaque token the provider signed it with (Anthropic thinking, Gemini ``thoughtSignature``); ``redacted`` the
    payload of a block sent encrypted (Anthropic ``redacted_thinking``; ``text`` is ''); ``protocol`` the wire the
    signature is valid on (sent back there only). Anthropic needs signed blocks back in tool-use loops: keep them
    on the assistant :class:`Message` (``reasoning=``, see :meth:`ChatResponse.message`)."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    protocol: str | None = None


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. ``content`` is text or a tuple of parts; an assistant message may carry
    ``tool_calls``; a ``tool`` message answers the call ``tool_call_id``. An assistant message may carry the
    ``reasoning`` blocks of the turn (sent back where the provider wants them: Anthropic's signed thinking)."""

    role: Role
    content: str | tuple[Part, ...] | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    reasoning: tuple[ReasoningBlock, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ConfigurationError(f"Message.role must be one of {sorted(_ROLES)}, got {self.role!r}")
        if isinstance(self.content, list):
            object.__setattr__(self, "content", tuple(self.content))
        if isinstance(self.content, tuple):
            for p in self.content:
                if not isinstance(p, (TextPart, ImagePart)):
                    raise ConfigurationError(f"Message content parts must be TextPart or ImagePart, got {p!r}")
        elif self.content is not None and not isinstance(self.content, str):
            raise ConfigurationError(f"Message.content must be str, parts or None, got {type(self.content).__name__}")
        if self.role == "tool" and not self.tool_call_id:
            raise ConfigurationError("A 'tool' message needs tool_call_id (the id of the call it answers)")
        if self.tool_calls and self.role != "assistant":
            raise ConfigurationError("Only assistant messages carry tool_calls")
        if isinstance(self.reasoning, list):
            object.__setattr__(self, "reasoning", tuple(self.reasoning))
        odd = any(not isinstance(b, ReasoningBlock) for b in self.reasoning)
        if self.reasoning and (self.role != "assistant" or odd):
            raise ConfigurationError("Only assistant messages carry reasoning, as a tuple of ReasoningBlock")
        if self.content is None and not self.tool_calls:
            raise ConfigurationError(f"A {self.role!r} message needs content")

    @property
    def text(self) -> str:
        """The text of the message (parts' text joined), '' when there is none."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, content: str | Sequence[Part]) -> Message:
        return cls("user", content if isinstance(content, str) else tuple(content))

    @classmethod
    def assistant(
        cls, text: str | None = None, tool_calls: Sequence[ToolCall] = (), reasoning: Sequence[ReasoningBlock] = ()
    ) -> Message:
        return cls("assistant", text, tool_calls=tuple(tool_calls), reasoning=tuple(reasoning))

    @classmethod
    def tool(cls, tool_call_id: str, content: str) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id)


def _part_from_dict(d: Mapping[str, Any]) -> Part:
    t = d.get("type")
    if t == "text":
        return TextPart(str(d["text"]))
    if t == "image_url":  # OpenAI shape
        iu = d["image_url"]
        url = iu if isinstance(iu, str) else iu["url"]
        return ImagePart(url=url, detail=None if isinstance(iu, str) else iu.get("detail"))
    if t == "image":
        return ImagePart(url=d.get("url"), data=d.get("data"), media_type=d.get("media_type"), detail=d.get("detail"))
    raise ConfigurationError(f"Unknown content part type {t!r} (expected 'text', 'image' or 'image_url')")


def _message_from_dict(d: Mapping[str, Any]) -> Message:
    if "role" not in d:
        raise ConfigurationError(f"Message dict needs a 'role': {dict(d)!r}")
    content = d.get("content")
    if isinstance(content, list):
        content = tuple(_part_from_dict(p) for p in content)
    calls = tuple(
        ToolCall.from_raw(c["id"], c["function"]["name"], c["function"].get("arguments"))
        if "function" in c
        else ToolCall.from_raw(c["id"], c["name"], c.get("arguments"))
        for c in d.get("tool_calls") or ()
    )
    return Message(d["role"], content, name=d.get("name"), tool_calls=calls, tool_call_id=d.get("tool_call_id"))


MessagesInput = str | Message | Mapping[str, Any] | Iterable[Message | Mapping[str, Any]]


def coerce_messages(messages: MessagesInput) -> tuple[Message, ...]:
    """Accept a prompt string, one message, OpenAI-style dicts or :class:`Message` objects."""
    if isinstance(messages, str):
        return (Message("user", messages),)
    if isinstance(messages, Message):
        return (messages,)
    try:
        if isinstance(messages, Mapping):
            return (_message_from_dict(messages),)
        out = tuple(m if isinstance(m, Message) else _message_from_dict(m) for m in messages)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
        if isinstance(e, ConfigurationError):
            raise
        raise ConfigurationError(
            f"messages must be a string, a Message or OpenAI-style message dicts ({type(e).__name__}: {e})"
        ) from None
    if not out:
        raise ConfigurationError("messages must not be empty")
    return out


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``json_object`` (JSON mode) or ``json_schema`` (with ``schema``)."""

    type: Literal["text", "json_object", "json_schema"] = "json_object"
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool | None = None

    def __post_init__(self) -> None:
        if self.type == "json_schema" and not isinstance(self.schema, Mapping):
            raise ConfigurationError("ResponseFormat(type='json_schema') needs schema=")


_CHAT_FIELD_KINDS = {
    "model": "str",
    "temperature": "number",
    "top_p": "number",
    "max_tokens": "int",
    "tool_choice": "str",
    "parallel_tool_calls": "bool",
    "seed": "int",
    "user": "str",
    "metadata": "mapping",
    "extra": "mapping",
}


def check_call_options(extra_headers: object, max_retries: object) -> None:
    """Validate the per-call options ``extra_headers`` and ``max_retries`` (see :class:`ChatRequest`)."""
    if not isinstance(extra_headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra_headers.items()
    ):
        raise ConfigurationError("extra_headers must be a mapping of header names to string values")
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
    ):
        raise ConfigurationError(f"max_retries must be an int >= 0 or None, got {max_retries!r}")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A provider-neutral chat request. ``model=None`` means the endpoint's default model.

    ``extra`` is merged into the provider's JSON body last (escape hatch for provider-only fields).
    Two per-call options are not part of the body: ``extra_headers`` (HTTP headers sent on every attempt,
    over the endpoint's and the provider's own) and ``max_retries`` (replaces the endpoint's
    ``RetryPolicy.max_retries`` for this call; ``0``: one attempt).
    """

    messages: tuple[Message, ...]
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None  # "auto" | "none" | "required" | a tool name
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    user: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold credentials
    max_retries: int | None = None
    #: reasoning models' effort (OpenAI ``reasoning_effort``, Responses ``reasoning.effort``); providers
    #: without such a knob refuse it with ConfigurationError rather than drop it
    reasoning_effort: ReasoningEffort | None = None

    def __post_init__(self) -> None:
        check_call_options(self.extra_headers, self.max_retries)
        if self.reasoning_effort is not None and self.reasoning_effort not in REASONING_EFFORTS:
            raise ConfigurationError(
                f"reasoning_effort must be one of {list(REASONING_EFFORTS)}, got {self.reasoning_effort!r}"
            )
        if isinstance(self.messages, list):
            object.__setattr__(self, "messages", tuple(self.messages))
        if not self.messages:
            raise ConfigurationError("ChatRequest.messages must not be empty")
        check_fields("ChatRequest", self, _CHAT_FIELD_KINDS)
        object.__setattr__(self, "stop", check_str_tuple("ChatRequest.stop", self.stop))
        if isinstance(self.tools, list):
            object.__setattr__(self, "tools", tuple(self.tools))
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise ConfigurationError(f"temperature must be within [0, 2], got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigurationError(f"top_p must be within (0, 1], got {self.top_p}")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens < 1):
            raise ConfigurationError(f"max_tokens must be a positive int, got {self.max_tokens!r}")
        if self.tool_choice is not None:
            if not self.tools and self.tool_choice != "none":
                raise ConfigurationError("tool_choice given without tools")
            names = {t.name for t in self.tools}
            if self.tool_choice not in ("auto", "none", "required") and self.tool_choice not in names:
                raise ConfigurationError(
                    f"tool_choice must be 'auto', 'none', 'required' or a tool name ({sorted(names)}),"
                    f" got {self.tool_choice!r}"
                )

    @property
    def system_text(self) -> str | None:
        """All system messages' text joined (for providers that take the system prompt apart)."""
        texts = [m.text for m in self.messages if m.role == "system"]
        return "\n\n".join(texts) if texts else None


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    inputs: tuple[str, ...]
    model: str | None = None
    dimensions: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # as in ChatRequest
    max_retries: int | None = None

    def __post_init__(self) -> None:
        check_call_options(self.extra_headers, self.max_retries)
        if isinstance(self.inputs, str):
            object.__setattr__(self, "inputs", (self.inputs,))
        elif isinstance(self.inputs, list):
            object.__setattr__(self, "inputs", tuple(self.inputs))
        elif not isinstance(self.inputs, tuple):
            got = type(self.inputs).__name__
            raise ConfigurationError(f"EmbedRequest.inputs must be a string or a list of strings, got {got}")
        check_fields("EmbedRequest", self, {"model": "str", "dimensions": "int", "extra": "mapping"})
        if self.dimensions is not None and self.dimensions < 1:
            raise ConfigurationError(f"EmbedRequest.dimensions must be >= 1, got {self.dimensions}")
        if not self.inputs:
            raise ConfigurationError("EmbedRequest.inputs must not be empty")
        for i, s in enumerate(self.inputs):
            if not isinstance(s, str) or not s:
                raise ConfigurationError(f"EmbedRequest.inputs[{i}] must be a non-empty string")


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class RouteHop:
    """One endpoint a call was sent to, in order: ``outcome`` is ``"ok"`` for the one that answered, else the
    error class that made the router leave it; ``reason`` says why it moved on (plain data, no secrets)."""

    endpoint: str
    group: str | None
    outcome: str
    reason: str | None = None
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "group": self.group,
            "outcome": self.outcome,
            "reason": self.reason,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. ``cached_tokens`` are part of ``input_tokens``; ``reasoning_tokens`` (a reasoning
    model's hidden thinking, when the provider reports it) are part of ``output_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """The result of a chat call (streamed or not). ``raw`` is the provider's payload (the parsed
    JSON body, or for a stream the list of decoded events)."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    model: str | None = None
    provider: str | None = None
    endpoint: str | None = None
    request_id: str | None = None
    provider_request_id: str | None = None
    response_id: str | None = None
    latency_s: float | None = None
    attempts: int = 1
    raw: Any = None
    #: the endpoints the router tried, in order, and why it left each (:class:`RouteHop`)
    route: tuple[RouteHop, ...] = ()
    cached: Literal["exact", "semantic"] | None = None  # served from the response cache (see infermux.cache)
    #: the model's reasoning ("thinking") as readable text, '' when none (not part of ``text``)
    reasoning: str = ""
    #: the reasoning as the provider sent it, block by block, with signatures (see :class:`ReasoningBlock`)
    reasoning_blocks: tuple[ReasoningBlock, ...] = ()

    def message(self) -> Message:
        """This answer as the assistant :class:`Message` to append to the conversation for the next turn
        (text, tool calls and reasoning blocks: Anthropic needs the signed thinking back in tool-use loops)."""
        return Message(
            "assistant",
            self.text if self.text or not self.tool_calls else None,
            tool_calls=self.tool_calls,
            reasoning=self.reasoning_blocks,
        )

    def json(self) -> Any:
        """Parse the reply ``text`` as JSON (for JSON mode / ``response_format``). To serialize the whole
        response use :meth:`to_dict`. Raises :class:`~infermux.errors.MalformedResponseError` (not retryable)
        when the reply is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError as e:
            raise MalformedResponseError(
                f"the reply text is not JSON ({e}); ChatResponse.json() parses the reply of a JSON-mode call,"
                " to serialize the whole response use to_dict()",
                provider=self.provider,
                endpoint=self.endpoint,
                model=self.model,
                request_id=self.request_id,
                provider_request_id=self.provider_request_id,
                retryable=False,
            ) from None

    def to_dict(self, *, raw: bool = True) -> dict[str, Any]:
        """The response as plain JSON-ready data (``json.dumps(r.to_dict())`` works); ``raw=False`` leaves
        out the provider's payload."""
        return plain_fields(self, skip=() if raw else ("raw",))


@dataclass(frozen=True, slots=True)
class EmbedResponse:
    vectors: tuple[tuple[float, ...], ...]
    model: str | None = None
    usage: Usage | None = None
    provider: str | None = None
    endpoint: str | None = None
    request_id: str | None = None
    provider_request_id: str | None = None
    latency_s: float | None = None
    attempts: int = 1
    raw: Any = None
    #: the endpoints the router tried, in order, and why it left each (:class:`RouteHop`)
    route: tuple[RouteHop, ...] = ()

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0

    def to_dict(self, *, raw: bool = True) -> dict[str, Any]:
        """The response as plain JSON-ready data; ``raw=False`` leaves out the provider's payload."""
        return plain_fields(self, skip=() if raw else ("raw",))


def plain_fields(obj: Any, *, skip: Sequence[str] = ()) -> dict[str, Any]:
    """A dataclass instance's fields (but those in ``skip``) as JSON-ready data, see :func:`to_plain`."""
    return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj) if f.name not in skip}


def to_plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses become dicts, enums their value, tuples lists; anything else
    JSON cannot hold becomes its ``str``."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain_fields(value)
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return str(value)


# the stream events live in ._events (re-exported here; imported last: they use the types above)
from ._events import (  # noqa: E402
    ReasoningDelta,
    StreamAccumulator,
    StreamError,
    StreamEvent,
    StreamFinish,
    StreamResumed,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageEvent,
    Wire,
    WireEvent,
)
