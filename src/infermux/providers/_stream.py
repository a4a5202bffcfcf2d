"""The skeleton every provider stream parser shares (bytes in, :mod:`infermux.types` events out, no I/O).

A decoder (SSE or NDJSON) splits the body into messages; a subclass turns each non-blank one into events
in :meth:`StreamParserBase._data`. The stream is complete when the subclass saw its terminal marker
(``_done``), emitted a :class:`StreamError` (``_errored``: the error is the outcome), or saw a finish reason
before the body ended (``_finish_seen``: :meth:`close` then emits the :class:`StreamFinish`); otherwise
:meth:`close` raises :class:`IncompleteStreamError` with the text received so far.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from .._evolve import fast_init
from ..errors import IncompleteStreamError
from ..types import (
    FinishReason,
    StreamError,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from ._common import json_object
from ._sse import NDJSONDecoder, SSEDecoder, SSEMessage

_new_text_delta = fast_init(TextDelta)  # TextDelta(...), faster (one per chunk)

__all__ = ["StreamParserBase"]


class StreamParserBase:
    """Base of the stream parsers; see the module docstring. Subclasses implement :meth:`_data`."""

    #: the provider name when none is given to the constructor
    PROVIDER: ClassVar[str] = ""
    #: the IncompleteStreamError message; ``{provider}`` and ``{chars}`` (text received) are filled in
    INCOMPLETE: ClassVar[str] = "{provider}: stream ended without its terminal marker"

    __slots__ = ("_calls", "_decoder", "_done", "_errored", "_finish", "_finish_seen", "_started", "_text", "provider")

    def __init__(self, provider: str | None = None, decoder: SSEDecoder | NDJSONDecoder | None = None) -> None:
        self.provider = provider or self.PROVIDER
        self._decoder = SSEDecoder() if decoder is None else decoder
        self._done = False  # terminal marker (or a final error) seen: later data is ignored
        self._errored = False  # a StreamError was emitted
        self._started = False
        self._finish: FinishReason | None = None
        self._finish_seen = False
        self._text: list[str] = []
        self._calls = 0  # tool calls seen so far (the next call's index)

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Parse the next chunk (any split, even mid-line); raises ``MalformedResponseError`` on bad data."""
        return self._handle(self._decoder.feed(chunk))

    def close(self) -> list[StreamEvent]:
        """The body ended: flush, and raise ``IncompleteStreamError`` unless the stream was complete."""
        out = self._handle(self._decoder.close())
        if self._done or self._errored:
            return out
        if not self._finish_seen:
            text = "".join(self._text)
            raise IncompleteStreamError(
                self.INCOMPLETE.format(provider=self.provider, chars=len(text)),
                provider=self.provider,
                partial_text=text,
            )
        self._done = True
        out.append(StreamFinish(self._finish))
        return out

    def iter_feed(self, chunk: bytes) -> Iterator[StreamEvent]:
        """:meth:`feed`, one message at a time: a message's events are out before the next message is parsed
        (a network read that holds a whole stream does not delay its first event by the parsing of the rest)."""
        out: list[StreamEvent] = []
        for item in self._decoder.feed(chunk):
            self._one(item, out)
            if out:
                yield from out
                out.clear()

    def _handle(self, items: list[SSEMessage] | list[str]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for item in items:
            self._one(item, out)
        return out

    def _one(self, item: SSEMessage | str, out: list[StreamEvent]) -> None:
        msg = item if isinstance(item, SSEMessage) else SSEMessage(None, item)
        data = msg.data.strip()
        if data and not self._done:
            self._data(data, msg, out)

    def _data(self, data: str, msg: SSEMessage, out: list[StreamEvent]) -> None:
        """One non-blank message (``data`` is its stripped text) -> events appended to ``out``."""
        raise NotImplementedError

    def _json(self, data: str) -> Mapping[str, Any]:
        return json_object(data, self.provider)

    def _start(self, out: list[StreamEvent], response_id: str | None = None, model: str | None = None) -> None:
        if not self._started:
            self._started = True
            out.append(StreamStart(response_id, model))

    def _text_delta(self, text: object, out: list[StreamEvent]) -> None:
        if isinstance(text, str) and text:
            self._text.append(text)
            out.append(_new_text_delta(text))

    def _set_finish(self, reason: FinishReason | None) -> None:
        self._finish, self._finish_seen = reason, True

    def _whole_call(self, call: ToolCall, out: list[StreamEvent]) -> None:
        """A tool call that arrives complete: ``ToolCallStart``, one delta with all arguments, ``ToolCallEnd``."""
        i = self._calls
        self._calls += 1
        out += [ToolCallStart(i, call.id, call.name), ToolCallDelta(i, call.raw_arguments), ToolCallEnd(i, call)]

    def _stream_error(
        self,
        out: list[StreamEvent],
        error_type: str | None,
        message: str | None,
        status: int | None = None,
        *,
        final: bool = False,
    ) -> None:
        """An in-band error event; ``final``: nothing after it is parsed."""
        self._errored = True
        self._done = self._done or final
        out.append(StreamError(error_type, message or "stream error", status))
