"""Choosing endpoints for a call and falling back across them.

The router picks candidates (by endpoint name, else the endpoints that serve the model, else all, in the
configured order) and tries them in turn. A failure moves on to the next endpoint unless it is the
caller's fault (invalid input), so an outage, an open breaker, a full queue or exhausted keys on one
endpoint do not fail the call while another endpoint can serve it.

Rules (see the README's "What every call goes through"):

- **Available first.** Endpoints that can start a call now (breaker closed or a free half-open probe, a key not
  blocked, a free slot under the adaptive concurrency limit) are tried first, in the configured order; then
  those that are only saturated, least loaded first (so their queues fill evenly and every endpoint's capacity
  is used); then those that protect themselves, the one that recovers first ahead.
- **Wait only where nothing else can serve.** An endpoint is told to fail fast while a later candidate can
  serve now, so the router moves on at once; the last one that could serve (or, when none can, the one that
  recovers first: *panic routing*) is told to wait out its protective state within the deadline, so traffic
  still flows at the probe's pace instead of every call failing.
- **One queue for the group.** When every endpoint that can serve is saturated, a call (below HIGH priority)
  waits in the router's FIFO and goes to the first endpoint that frees a slot, rather than joining one
  endpoint's queue: the endpoints' capacity is shared like one server pool's, none idles while another has a
  backlog. The wait is bounded by the call's deadline.
- **Time is kept for the fallbacks.** With a caller ``timeout``, an endpoint gets an equal share of what is
  left (``remaining / endpoints left``); running out of a share is an attempt timeout for that endpoint (a
  breaker failure: a hanging endpoint is unhealthy) and the router moves on with the rest. The last endpoint
  gets all that remains. Without a ``timeout`` each endpoint uses its own retry policy's deadline.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .endpoint import Endpoint
from .errors import (
    AllEndpointsFailedError,
    BadRequestError,
    ConfigurationError,
    DeadlineExceededError,
    InfermuxError,
    UnprocessableEntityError,
)
from .resilience.clock import Clock
from .types import Priority

__all__ = ["Budget", "Router", "Step", "can_fall_back"]

T = TypeVar("T")


def can_fall_back(error: InfermuxError) -> bool:
    """Whether another endpoint may succeed where this one failed (not when the input itself is invalid)."""
    return not isinstance(error, (ConfigurationError, BadRequestError, UnprocessableEntityError))


@dataclass(frozen=True, slots=True)
class Step:
    """How one endpoint is tried: ``wait`` out its protective states or fail fast; its ``timeout``, and whether
    that timeout is only a ``share`` of the caller's (running out of it is then the endpoint's failure)."""

    wait: bool
    timeout: float | None
    share: bool


class Budget:
    """The caller's ``timeout`` for one call, shared by every endpoint the router tries (not per endpoint)."""

    __slots__ = ("at", "clock", "timeout")

    def __init__(self, clock: Clock, timeout: float | None) -> None:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout != timeout or timeout <= 0
        ):
            raise ConfigurationError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
        self.clock = clock
        self.timeout = timeout
        self.at = None if timeout is None else clock.now() + timeout

    def share(self, ep: Endpoint, endpoints_left: int) -> tuple[float | None, bool]:
        """``(seconds for ep, whether that is a share)``; raises once nothing is left."""
        if self.at is None:
            return None, False
        rem = self.at - self.clock.now()
        if rem <= 0:
            raise DeadlineExceededError(
                f"the call's timeout of {self.timeout:.3g}s ran out before endpoint {ep.name!r} could be tried",
                endpoint=ep.name,
                provider=ep.provider.name,
            )
        if endpoints_left <= 1:
            return rem, False
        return rem / endpoints_left, True


class Router:
    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        if not endpoints:
            raise ConfigurationError("a client needs at least one endpoint")
        self.endpoints = list(endpoints)
        self._by_name = {e.name: e for e in self.endpoints}
        self._waiters: deque[asyncio.Future[None]] = deque()
        if len(self.endpoints) > 1:
            for e in self.endpoints:
                e.gate.on_free.append(self._slot_freed)

    def _slot_freed(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    async def await_capacity(
        self, candidates: Sequence[Endpoint], budget: Budget | None, priority: Priority = Priority.NORMAL
    ) -> None:
        """With several endpoints that can serve and all of them saturated, wait (FIFO) until one has a free slot.
        Returns at once for one endpoint, for HIGH priority (it queues at an endpoint, ahead of others), when
        an endpoint is free, or when the budget is spent (the endpoint then applies its own deadline)."""
        if priority is Priority.HIGH or len(candidates) < 2:
            return
        loop = asyncio.get_running_loop()
        bound = sum(e.config.max_queue for e in candidates)
        while True:
            up = [e for e in candidates if e.available()]
            # nothing can serve now: the steps' panic routing decides; or one can start it now; or the shared queue
            # is as long as the endpoints' queues together (then an endpoint's own bound applies)
            if not up or any(e.has_capacity() for e in up) or len(self._waiters) >= bound:
                return
            wait = 1.0  # re-check at least every second (breaker and key states change without a free slot)
            for e in candidates:  # ...and when an endpoint that protects itself may take calls again
                at = e.available_at()
                if at is not None:
                    wait = min(wait, max(0.0, at - e.clock.now()))
            if budget is not None and budget.at is not None:
                wait = min(wait, budget.at - budget.clock.now())
                if wait <= 0:
                    return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, wait)
            except asyncio.TimeoutError:
                pass
            finally:
                if not fut.done():
                    fut.cancel()

    def get(self, name: str) -> Endpoint:
        ep = self._by_name.get(name)
        if ep is None:
            raise ConfigurationError(f"unknown endpoint {name!r}; configured: {', '.join(self._by_name)}")
        return ep

    def candidates(self, *, model: str | None = None, endpoint: str | None = None) -> list[Endpoint]:
        if endpoint is not None:
            return [self.get(endpoint)]
        if model is not None:
            serving = [e for e in self.endpoints if model in e.config.models or model == e.config.model]
            if serving:
                return serving
        return list(self.endpoints)

    @staticmethod
    def plan(candidates: Sequence[Endpoint]) -> list[Endpoint]:
        """The order to try: endpoints that can start a call now (configured order), then the saturated ones
        (least loaded first), then the ones protecting themselves (by when they recover)."""
        if len(candidates) == 1:
            return list(candidates)
        up = [e for e in candidates if e.available()]
        free = [e for e in up if e.has_capacity()]
        busy = sorted((e for e in up if not e.has_capacity()), key=lambda e: e.load())
        down = sorted((e for e in candidates if not e.available()), key=lambda e: e.breaker.retry_at or 0.0)
        return free + busy + down

    def steps(
        self, candidates: Sequence[Endpoint], budget: Budget | None = None, *, fail_fast: bool = False
    ) -> Iterator[tuple[Endpoint, Step]]:
        """Each endpoint to try, in order, with how to try it (evaluated when the previous one has failed)."""
        order = self.plan(candidates)
        for i, ep in enumerate(order):
            wait = not fail_fast and not any(e.available() for e in order[i + 1 :])
            timeout, share = budget.share(ep, len(order) - i) if budget is not None else (None, False)
            yield ep, Step(wait, timeout, share)

    async def run(
        self,
        candidates: Sequence[Endpoint],
        fn: Callable[[Endpoint, Step], Awaitable[T]],
        budget: Budget | None = None,
        *,
        fail_fast: bool = False,
        priority: Priority = Priority.NORMAL,
    ) -> T:
        errors: list[InfermuxError] = []
        await self.await_capacity(candidates, budget, priority)
        try:
            for ep, step in self.steps(candidates, budget, fail_fast=fail_fast):
                try:
                    return await fn(ep, step)
                except InfermuxError as e:
                    errors.append(e)
                    if not can_fall_back(e):
                        raise
        except DeadlineExceededError as e:  # the budget ran out between endpoints
            if errors:
                errors.append(e)
                raise self.all_failed(errors) from None
            raise
        raise self.all_failed(errors)

    @staticmethod
    def all_failed(errors: list[InfermuxError]) -> InfermuxError:
        if len(errors) == 1:
            return errors[0]
        summary = "; ".join(f"{e.endpoint}: {type(e).__name__}" for e in errors)
        return AllEndpointsFailedError(
            f"all {len(errors)} endpoints failed ({summary})",
            errors=errors,
            request_id=errors[-1].request_id,
            model=errors[-1].model,
        )
