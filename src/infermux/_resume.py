"""Resuming a stream that broke after text reached the caller (pure logic, no I/O).

A stream cut after content was delivered is re-sent. Where the provider continues a trailing assistant turn
(``"prefill"`` in its capabilities: Anthropic, llama.cpp), the request carries the delivered text as that turn
and the new stream is its continuation. Elsewhere the original request is sent again and the new stream is
expected to start by repeating the delivered text (deterministic decoding, or a server that ignores the
partial turn). Either way :class:`OverlapFilter` drops a repeated prefix, so the caller sees one stream with no
duplicated text. A resent stream that diverges from what was delivered cannot be spliced: without prefill that
is an :class:`~infermux.errors.IncompleteStreamError` (the caller keeps the partial text), never a silently
wrong answer.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import IncompleteStreamError
from .types import (
    ChatRequest,
    Message,
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)

__all__ = [
    "CONTINUE_INSTRUCTION",
    "OverlapFilter",
    "StreamSplice",
    "continuation_request",
    "is_content",
    "prefill_text",
    "resumed_request",
]

#: the user turn that asks a provider without prefill to go on with a partial answer (mid-stream failover)
CONTINUE_INSTRUCTION = (
    "Your previous reply was cut off. Continue it exactly where it stopped, without repeating any of it and"
    " without commenting on the interruption."
)

_CONTENT = (ToolCallStart, ToolCallDelta, ToolCallEnd)


def is_content(ev: StreamEvent) -> bool:
    """Whether an event carries answer content (start, role-only, usage and keep-alive events do not)."""
    return (isinstance(ev, TextDelta) and ev.text != "") or isinstance(ev, _CONTENT)


def prefill_text(delivered: str) -> str:
    """The partial assistant turn to send: the delivered text without trailing whitespace (Anthropic refuses a
    final assistant turn that ends with whitespace; the continuation then starts with it again)."""
    return delivered.rstrip()


def spend_tokens(request: ChatRequest, tokens: int) -> ChatRequest:
    """``request`` with its ``max_tokens`` lowered by ``tokens`` already generated (at least 1 is left), so that
    a continued answer is not longer than the caller asked for."""
    if request.max_tokens is None or tokens <= 0:
        return request
    return replace(request, max_tokens=max(1, request.max_tokens - tokens))


def resumed_request(request: ChatRequest, delivered: str, *, prefill: bool, tokens: int = 0) -> ChatRequest:
    """The request that continues a stream after ``delivered`` text (a trailing assistant turn with prefill).
    A request that already ends with a partial assistant turn (the caller's own prefill, or an earlier resume)
    has the delivered text appended to that turn: the model continues one turn, never two in a row. With
    prefill, ``max_tokens`` is lowered by ``tokens`` (the content deltas delivered: one token each on
    OpenAI-compatible servers, so never more than were generated)."""
    if not prefill or not prefill_text(delivered):
        return request
    request = spend_tokens(request, tokens)
    msgs = request.messages
    last = msgs[-1] if msgs else None
    if last is not None and last.role == "assistant" and isinstance(last.content, str) and not last.tool_calls:
        turn = prefill_text(last.content + delivered)
        return replace(request, messages=(*msgs[:-1], Message(role="assistant", content=turn)))
    return replace(request, messages=(*msgs, Message(role="assistant", content=prefill_text(delivered))))


def continuation_request(request: ChatRequest, delivered: str, *, prefill: bool, tokens: int = 0) -> ChatRequest:
    """The request that continues, on another endpoint, a stream that broke after ``delivered`` text: the
    original messages plus the delivered text as a partial assistant turn, which a provider with prefill
    continues; for one without, followed by a user turn asking to continue (:data:`CONTINUE_INSTRUCTION`)."""
    if not prefill_text(delivered):
        return request
    if prefill:
        return resumed_request(request, delivered, prefill=True, tokens=tokens)
    request = spend_tokens(request, tokens)
    turns = (Message(role="assistant", content=delivered), Message(role="user", content=CONTINUE_INSTRUCTION))
    return replace(request, messages=(*request.messages, *turns))


class OverlapFilter:
    """Maps the text of a resumed stream so that the caller never sees the delivered text twice.

    The new stream may repeat the whole delivered text (a server that ignores the partial turn, or a resend
    without prefill), or, with prefill, continue the partial turn (repeating only the whitespace that was cut
    from its end). Text is held back while it may still be such a repeat; the repeat is dropped and what follows
    passes through. Text that repeats nothing is a continuation with prefill; without prefill it means the resent
    request produced different text, which cannot be spliced: IncompleteStreamError (not retryable).
    """

    __slots__ = ("_buf", "_candidates", "_delivered", "_matching", "_prefill")

    def __init__(self, delivered: str, *, prefill: bool) -> None:
        self._delivered = delivered
        self._prefill = prefill
        tail = delivered[len(prefill_text(delivered)) :] if prefill else ""
        cands = [delivered] + ([tail] if tail else [])
        self._candidates = [c for c in cands if c]
        self._buf = ""
        self._matching = bool(self._candidates)

    @property
    def settled(self) -> bool:
        """True once the filter lets every event through unchanged."""
        return not self._matching

    def _diverged(self) -> IncompleteStreamError:
        return IncompleteStreamError(
            "the stream broke after text was delivered, and the resent request produced different text;"
            " it cannot be spliced without duplicating or losing text",
            partial_text=self._delivered,
            retryable=False,
        )

    def text(self, piece: str) -> str:
        """The part of ``piece`` the caller should see (``""``: held back or dropped)."""
        if not self._matching:
            return piece
        buf = self._buf + piece
        live = [c for c in self._candidates if c.startswith(buf) or buf.startswith(c)]
        if not live:
            self._matching, self._buf = False, ""
            if not self._prefill:
                raise self._diverged()
            return buf  # a continuation of the partial turn
        longest = max(live, key=len)
        if buf.startswith(longest):  # the repeat is complete: pass what follows it
            self._matching, self._buf = False, ""
            return buf[len(longest) :]
        self._buf = buf
        return ""

    def finish(self) -> str:
        """The resumed stream ended: text still held back (a continuation shorter than the repeat check)."""
        if not self._matching:
            return ""
        self._matching, buf = False, self._buf
        self._buf = ""
        if not buf or self._delivered.startswith(buf):
            if buf and not self._prefill:
                raise IncompleteStreamError(
                    "the resent stream ended before repeating the delivered text",
                    partial_text=self._delivered,
                    retryable=False,
                )
            return ""
        return buf


class StreamSplice:
    """The caller's view of one stream call across its attempts.

    Events are held back until the first content event (so a stream that fails before any content can be
    retried without the caller seeing two starts); after :meth:`resume` a new attempt's start event, its
    repetition of the delivered text and its reasoning (the caller has the first attempt's) are dropped.
    :attr:`content` says whether content reached the caller, :attr:`tool_content` whether any of it was a tool
    call (such streams are not resumed). Reasoning is held with the start events until the first content.
    """

    __slots__ = ("_delivered", "_held", "_overlap", "_prefill", "content", "deltas", "resumes", "tool_content")

    def __init__(self, *, prefill: bool) -> None:
        self._prefill = prefill
        self._held: list[StreamEvent] = []
        self._delivered: list[str] = []
        self._overlap: OverlapFilter | None = None
        self.content = False
        self.tool_content = False
        self.deltas = 0  # text deltas delivered (about the tokens generated so far)
        self.resumes = 0

    def new_attempt(self) -> None:
        self._held.clear()

    def resume(self) -> str:
        """Start matching the next attempt against the delivered text; returns that text."""
        text = "".join(self._delivered)
        self.resumes += 1
        self._delivered = [text]
        self._overlap = OverlapFilter(text, prefill=self._prefill)
        return text

    def feed(self, ev: StreamEvent) -> list[StreamEvent]:
        """What the caller should see of ``ev`` (possibly nothing, or held events first)."""
        if self.resumes and isinstance(ev, ReasoningDelta):
            return []  # a resent request reasons again: one copy (the delivered one) is the caller's
        ov = self._overlap
        if ov is not None and not ov.settled:
            if isinstance(ev, StreamStart):
                return []
            if isinstance(ev, TextDelta):
                text = ov.text(ev.text)
                if not text:
                    return []
                ev = TextDelta(text)
        out: list[StreamEvent] = []
        if not self.content:
            if not is_content(ev):
                self._held.append(ev)
                return out
            self.content = True
            out.extend(self._held)
            self._held.clear()
        elif isinstance(ev, StreamStart):
            return out
        if isinstance(ev, StreamFinish) and ov is not None:
            rest = ov.finish()
            if rest:
                self._delivered.append(rest)
                out.append(TextDelta(rest))
        if isinstance(ev, TextDelta):
            self._delivered.append(ev.text)
            self.deltas += 1
        elif is_content(ev):
            self.tool_content = True
        out.append(ev)
        return out

    def end(self) -> list[StreamEvent]:
        """The attempt completed: events still held (a stream with no content at all)."""
        held = self._held
        self._held = []
        return held
