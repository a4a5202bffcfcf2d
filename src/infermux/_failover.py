"""Mid-stream failover: a stream that broke after content reached the caller goes on at another endpoint.

The client routes a stream like any call while no content has reached the caller. After that, a break
(connection cut, stream ended without its terminal marker, no chunk within the idle timeout, an in-band error
event) is first resumed on its own endpoint when that is worth it (a transient break on an endpoint that is still
healthy: once, see :meth:`Endpoint.stream`); otherwise, when ``failover`` is on (by default inside a group), the
router's next endpoint gets the original request plus the delivered text as a partial assistant turn
(:func:`~infermux._resume.continuation_request`: prefill where the provider continues one, else a "continue"
instruction), and its stream is spliced onto the caller's: its start is dropped, a repeat of the delivered text
is dropped (:class:`~infermux._resume.OverlapFilter`), a :class:`StreamResumed` event names the old and the new
endpoint, and usage events carry the sum of every part. Tool calls cut mid-stream are restarted: the new
endpoint streams them again from index 0 and the ``StreamResumed`` says ``tool_calls_restarted``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._resume import OverlapFilter, continuation_request, is_content
from .errors import InfermuxError
from .router import can_fall_back
from .types import (
    ChatRequest,
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    StreamResumed,
    StreamStart,
    TextDelta,
    Usage,
    UsageEvent,
)

if TYPE_CHECKING:  # pragma: no cover
    from ._routing import Routing
    from .endpoint import Endpoint, StreamInfo

__all__ = ["FAILOVER_REASON", "CallSplice", "StreamCall", "add_usage"]

FAILOVER_REASON = "failover mid-stream"


def add_usage(a: Usage | None, b: Usage | None) -> Usage | None:
    """The sum of two parts' usage (``None`` when neither reported any)."""
    if a is None or b is None:
        return a or b
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
    )


class CallSplice:
    """The caller's view of one stream call across endpoints (and across the resumes of each endpoint).

    Tracks what reached the caller (text, tool calls), splices the next endpoint's stream after a failover
    and keeps usage summed over the parts: a part's usage is what its stream reported, or, for a part cut
    before it reported any, one output token per content delta it delivered (an estimate; the provider
    never said how many input tokens it read)."""

    __slots__ = (
        "_done",
        "_overlap",
        "_part_deltas",
        "_part_usage",
        "_pending",
        "_started",
        "content",
        "deltas",
        "part_content",
        "texts",
        "tools",
    )

    def __init__(self) -> None:
        self.texts: list[str] = []  # the text delivered to the caller, in pieces
        self.content = False  # content reached the caller
        self.part_content = False  # ... from the current endpoint
        self.tools = False  # tool-call content reached the caller since the last restart
        self.deltas = 0  # text deltas delivered (about the tokens generated so far)
        self._started = False  # the caller had its StreamStart
        self._overlap: OverlapFilter | None = None
        self._pending: StreamResumed | None = None  # the seam event, sent before the new endpoint's first event
        self._done: Usage | None = None  # usage of the finished parts
        self._part_usage: Usage | None = None  # usage reported by the current part
        self._part_deltas = 0  # content deltas of the current part

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def _close_part(self) -> None:
        usage = self._part_usage
        if usage is None and self._part_deltas:
            usage = Usage(output_tokens=self._part_deltas)
        self._done = add_usage(self._done, usage)
        self._part_usage, self._part_deltas = None, 0

    def failover(self, from_endpoint: str, to_endpoint: str, reason: str) -> None:
        """The next events come from ``to_endpoint``, continuing the delivered text."""
        if self.part_content:
            self._close_part()
        self.part_content = False
        text = self.text
        self.texts = [text]
        self._overlap = OverlapFilter(text, prefill=True)  # a repeat is dropped, anything else continues
        restart = self.tools
        self.tools = False
        self._pending = StreamResumed(from_endpoint, to_endpoint, 1, len(text), reason, tool_calls_restarted=restart)

    def feed(self, ev: StreamEvent) -> list[StreamEvent]:
        """What the caller sees of ``ev`` (possibly nothing)."""
        if type(ev) is TextDelta and self._pending is None and (self._overlap is None or self._overlap.settled):
            return self._deliver(ev)  # the common case: text of a stream that has not broken
        out: list[StreamEvent] = []
        if self._pending is not None:
            out.append(self._pending)
            self._pending = None
        ov = self._overlap
        if ov is not None and isinstance(ev, ReasoningDelta):
            return out  # the next endpoint reasons again: the caller keeps the reasoning it already has
        if isinstance(ev, StreamStart):
            if not self._started:
                self._started = True
                out.append(ev)
            return out
        if isinstance(ev, StreamResumed):  # the endpoint resumed the stream itself: a new part
            self._close_part()
            out.append(ev)
            return out
        if isinstance(ev, UsageEvent):
            self._part_usage = ev.usage
            total = add_usage(self._done, ev.usage)
            out.append(ev if self._done is None or total is None else UsageEvent(total, raw=ev.raw))
            return out
        if ov is not None and not ov.settled:
            if isinstance(ev, TextDelta):
                piece = ov.text(ev.text)
                if not piece:
                    return out
                ev = TextDelta(piece)
            elif isinstance(ev, StreamFinish) or is_content(ev):
                rest = ov.finish()
                if rest:
                    out.extend(self._deliver(TextDelta(rest)))
        out.extend(self._deliver(ev))
        return out

    def _deliver(self, ev: StreamEvent) -> list[StreamEvent]:
        if is_content(ev):
            self.content = self.part_content = True
            self._part_deltas += 1
            if isinstance(ev, TextDelta):
                self.texts.append(ev.text)
                self.deltas += 1
            else:
                self.tools = True
        return [ev]


class StreamCall:
    """One stream call's failover state over its routing (used by :func:`infermux._hedge.routed_stream`, the
    stream loop): the caller's splice, where the stream last broke, the attempts of every endpoint and the
    call's start. ``failover``: ``None`` is on for a call to a group whose ``failover`` is on, off otherwise."""

    __slots__ = ("broke", "failover", "idle", "routing", "spent", "splice", "started")

    def __init__(self, routing: Routing, failover: bool | None) -> None:
        group = routing.root.group.config if routing.root.group is not None else None
        self.failover = group is not None and group.failover if failover is None else bool(failover)
        self.idle = group.stream_idle_timeout if group is not None else None
        self.routing = routing
        self.splice = CallSplice()
        self.broke: tuple[str, str] | None = None  # (endpoint, error class) where the caller's stream last broke
        self.spent = 0  # attempts of the endpoints done
        self.started = routing.router.clock.now()

    def request(self, ep: Endpoint, req: ChatRequest) -> ChatRequest:
        """What ``ep`` is sent: ``req``, or after a break its continuation (and the seam is announced)."""
        if self.broke is None:
            return req
        splice = self.splice
        prefill = "prefill" in ep.provider.capabilities
        request = continuation_request(req, splice.text, prefill=prefill, tokens=splice.deltas)
        splice.failover(self.broke[0], ep.name, self.broke[1])
        return request

    def options(self, ep: Endpoint) -> dict[str, Any]:
        """The failover arguments of :meth:`Endpoint.stream` for ``ep``."""
        return {"idle_timeout": self.idle, "failover": self._fitness(ep) if self.failover else None}

    def _fitness(self, ep: Endpoint) -> Callable[[], bool | None]:
        """``failover()`` for :meth:`Endpoint.stream`, asked at a break: ``None`` when no other endpoint can
        continue the stream, else whether ``ep`` is still fit to resume it itself (the router finds it usable)."""
        routing = self.routing

        def fit() -> bool | None:
            return routing.router.usable(ep) if routing.may_continue(ep) else None

        return fit

    def feed(self, ev: StreamEvent) -> list[StreamEvent]:
        return self.splice.feed(ev)

    def ended(self, info: StreamInfo) -> int:
        """An endpoint's part ended (``info.attempts``: its attempts): ``info`` gets the call's total; returns
        the endpoint's own."""
        here = info.attempts
        self.spent += here
        info.attempts = self.spent
        return here

    def failed(self, ep: Endpoint, err: InfermuxError) -> bool:
        """Report ``ep``'s failure to the routing: ``True`` when the call goes on at the next endpoint (before
        any content, or failing over), ``False`` when it ends with ``err`` (its route set)."""
        routing, splice = self.routing, self.splice
        if not splice.content:
            routing.failed(ep, err)
            return True
        if not (self.failover and can_fall_back(err)):  # content reached the caller: it ends here
            routing.failed(ep, err)
            err.route = routing.route()
            return False
        routing.failed(ep, err, FAILOVER_REASON)
        if splice.part_content or self.broke is None:
            self.broke = (ep.name, type(err).__name__)
        return True

    def succeeded(self, ep: Endpoint, info: StreamInfo, here: int) -> None:
        if self.broke is not None:  # the caller waited for every part
            info.latency_s = self.routing.router.clock.now() - self.started
        self.routing.succeeded(ep, _Attempts(here))


class _Attempts:
    """What :meth:`Routing.succeeded` reads of a stream's result: the endpoint's attempts."""

    __slots__ = ("attempts",)

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
