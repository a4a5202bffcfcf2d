"""The race of a hedged call (configuration, budget and delay: :mod:`infermux.hedging`).

The call starts on its first endpoint as usual. If no answer came within the group's hedge delay, and the
budget has a token, and another endpoint of the group can start it now, the same call is sent there too.
The first *good* answer wins (for a stream: its first content chunk); a leg that fails is recorded in the
route like any failed endpoint and the other leg is awaited; the loser is cancelled, which closes its
connection (the request was in flight) and counts it as ``cancelled`` at its endpoint: a cancellation is no
breaker evidence, so a loser is never a breaker failure. When every leg failed, the router goes on with the
endpoints not tried yet, as without hedging.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import InfermuxError

if TYPE_CHECKING:  # pragma: no cover
    from ._routing import Routing
    from .endpoint import Endpoint, StreamInfo
    from .hedging import Hedger
    from .otel import CallObserver
    from .router import Step
    from .types import ChatRequest, Priority, StreamEvent

__all__ = ["HedgePlan", "race", "routed_stream"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HedgePlan:
    """How one call hedges: the group's state and, when the call gives one, its own fixed delay."""

    hedger: Hedger
    delay: float | None = None

    def begin(self) -> float:
        d = self.hedger.begin()
        return d if self.delay is None else self.delay


@dataclass(slots=True)
class _Leg(Generic[T]):
    ep: Endpoint
    task: asyncio.Future[T]
    started: float
    hedge: bool
    settled: bool = False


async def race(
    routing: Routing,
    plan: HedgePlan,
    ep: Endpoint,
    step: Step,
    start: Callable[[Endpoint, Step], Awaitable[T]],
    *,
    discard: Callable[[T], Awaitable[None]] | None = None,
) -> tuple[Endpoint, T] | None:
    """Run ``start(ep, step)``, hedged; ``(winner, result)``, or ``None`` when every leg failed (each failure
    is reported to ``routing``). ``discard(result)`` releases an answer that lost (an opened stream)."""
    clock = routing.router.clock
    hedger = plan.hedger
    legs: list[_Leg[T]] = [_Leg(ep, asyncio.ensure_future(start(ep, step)), clock.now(), False)]
    winner: _Leg[T] | None = None
    timer: asyncio.Future[None] | None = asyncio.ensure_future(clock.sleep(plan.begin()))
    try:
        while True:
            running = [leg for leg in legs if not leg.settled]
            if not running:
                return None
            waiting: set[asyncio.Future[Any]] = {leg.task for leg in running}
            if timer is not None:
                waiting.add(timer)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            winner = _settle(routing, running)
            if winner is not None:
                hedger.tracker.observe(clock.now() - winner.started)
                if winner.hedge:
                    hedger.counters.won += 1
                return winner.ep, winner.task.result()
            if routing.stopped:  # an error no other endpoint can fix (invalid input): the other leg is moot
                return None
            if timer is not None and timer.done():
                timer = None
                alt = routing.hedge_step(ep) if any(not leg.settled for leg in legs) else None
                if hedger.may_fire(alt is not None) and alt is not None:
                    legs.append(_Leg(alt[0], asyncio.ensure_future(start(*alt)), clock.now(), True))
    finally:
        if timer is not None:
            timer.cancel()
        await _end_losers(routing, legs, winner, discard)


def _settle(routing: Routing, running: list[_Leg[T]]) -> _Leg[T] | None:
    """Mark the legs that ended: the first that answered (in launch order), else report the failures."""
    for leg in running:
        if not leg.task.done():
            continue
        leg.settled = True
        err = leg.task.exception()
        if err is None:
            return leg
        if not isinstance(err, InfermuxError):
            raise err  # a bug, or the caller's cancellation reached the leg: not an endpoint's answer
        routing.failed(leg.ep, err)
    return None


async def _end_losers(
    routing: Routing, legs: list[_Leg[T]], winner: _Leg[T] | None, discard: Callable[[T], Awaitable[None]] | None
) -> None:
    """Cancel the legs still running (their connections close) and release answers that came too late."""
    rest = [leg for leg in legs if leg is not winner and (not leg.settled or leg.task.exception() is None)]
    for leg in rest:
        leg.task.cancel()
    if rest:
        await asyncio.wait([leg.task for leg in rest])
    for leg in rest:
        routing.lost(leg.ep, winner.ep if winner is not None else None)
        if leg.task.cancelled() or discard is None:
            continue
        if leg.task.exception() is None:
            await discard(leg.task.result())


# ---------------------------------------------------------------------- streams

_END: Any = object()  # a stream that ended without any content event


def _copy_info(src: StreamInfo, dst: StreamInfo) -> None:
    for f in dataclasses.fields(src):
        setattr(dst, f.name, getattr(src, f.name))


async def routed_stream(
    routing: Routing,
    plan: HedgePlan | None,
    req: ChatRequest,
    info: StreamInfo,
    *,
    priority: Priority,
    rid: str,
    resume: bool | None,
    observer: CallObserver | None = None,
    failover: bool | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """A stream call through the router: the next endpoint while no content reached the caller, and after that,
    with ``failover`` (:class:`~infermux._failover.StreamCall`), the next endpoint continuing the delivered text;
    with a ``plan``, the first endpoint is hedged until the first content event. ``observer``: the call's trace
    (every leg's attempts are its span events)."""
    from ._failover import StreamCall
    from .endpoint import StreamInfo

    call = StreamCall(routing, failover)

    async def open_leg(
        ep: Endpoint, st: Step, leg_info: StreamInfo, request: ChatRequest
    ) -> tuple[AsyncGenerator[StreamEvent, None], StreamEvent]:
        gen = ep.stream(
            request,
            priority=priority,
            timeout=st.timeout,
            request_id=rid,
            wait=st.wait,
            share=st.share,
            resume=resume,
            info=leg_info,
            observer=observer,
            **call.options(ep),
        )
        try:
            first = await anext(gen, _END)
        except BaseException:
            await gen.aclose()
            raise
        return gen, first

    async def close_leg(opened: tuple[AsyncGenerator[StreamEvent, None], StreamEvent]) -> None:
        await opened[0].aclose()

    infos: dict[str, StreamInfo] = {}

    def start(e: Endpoint, s: Step) -> Awaitable[tuple[AsyncGenerator[StreamEvent, None], StreamEvent]]:
        infos[e.name] = StreamInfo(request_id=rid)
        return open_leg(e, s, infos[e.name], req)  # hedged: only while nothing was delivered

    async with aclosing(routing.__aiter__()) as steps:  # closed at once when the call ends (see Router.run)
        async for ep, st in steps:
            at, leg_info = ep, info
            info.attempts = 0
            try:
                try:
                    if plan is not None:
                        hedged, plan = plan, None
                        won = await race(routing, hedged, ep, st, start, discard=close_leg)
                        if won is None:
                            continue
                        at, (gen, first) = won
                        leg_info = infos[at.name]
                    else:
                        gen, first = await open_leg(ep, st, info, call.request(ep, req))
                    async with aclosing(gen) as events:
                        if first is not _END:
                            _copy_info(leg_info, info)
                            for out in call.feed(first):
                                yield out
                            async for ev in events:
                                for out in call.feed(ev):
                                    yield out
                finally:
                    if leg_info is not info:
                        _copy_info(leg_info, info)
                    here = call.ended(info)
            except InfermuxError as e:
                if call.failed(at, e):
                    continue
                raise
            call.succeeded(at, info, here)
            return
    routing.outcome()  # raises the final error
