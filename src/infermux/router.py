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
  left (``remaining / endpoints left``, one more share kept while a fallback group may follow); running out
  of a share is an attempt timeout for that endpoint (a breaker failure: a hanging endpoint is unhealthy) and
  the router moves on with the rest. The last endpoint gets all that remains. Without a ``timeout`` each
  endpoint uses its own retry policy's deadline.
- **Groups and strategies.** A call whose model names a group (:class:`~infermux.fleet.GroupConfig`) goes to
  the group's endpoints; the group's strategy (or the call's) orders the *free* ones (see
  :mod:`infermux.strategies`); the rules above stay around it. Endpoints that health monitoring finds down
  are skipped like open breakers (and used like them when nothing else is left).
- **Hedging.** With a group's ``hedge`` (or a call's), the first endpoint's call is also sent to another free
  endpoint of the group after the hedge delay, within a budget; the first good answer wins and the other leg is
  cancelled (:mod:`infermux.hedging`, :mod:`infermux._hedge`); the rules above go on as usual when both fail.
- **Fallback groups.** When a group cannot answer, the class of its error picks the next groups
  (:meth:`GroupConfig.fallbacks_for`); a ``content_filter`` answer does the same when ``content_policy``
  fallbacks are configured (the refusal is returned if none answers). Every response and error carries its
  ``route`` (:class:`~infermux.types.RouteHop`: each endpoint tried, in order, and why it was left).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ._evolve import fast_init
from ._hedge import HedgePlan, race
from ._routing import Group, Routing, Target, with_route
from .endpoint import Endpoint
from .errors import (
    AllEndpointsFailedError,
    BadRequestError,
    ConfigurationError,
    DeadlineExceededError,
    EndpointStatus,
    InfermuxError,
    UnprocessableEntityError,
)
from .fleet import GroupConfig
from .hedging import HedgeConfig, Hedger
from .resilience.clock import Clock
from .strategies import Strategy, make_strategy
from .types import Priority, RouteHop

if TYPE_CHECKING:  # pragma: no cover
    from .health import HealthMonitor

__all__ = ["Budget", "Group", "Router", "Routing", "Step", "Target", "can_fall_back"]

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


_new_step = fast_init(Step)  # Step(...), faster (one per call)
_new_hop = fast_init(RouteHop)


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
        """``(seconds for ep, whether that is a share)``; raises once nothing is left. ``endpoints_left``
        counts ``ep`` and every endpoint (or reserved share) after it."""
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
    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        groups: Sequence[GroupConfig] = (),
        *,
        health: HealthMonitor | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not endpoints:
            raise ConfigurationError("a client needs at least one endpoint")
        self.endpoints = list(endpoints)
        self._by_name = {e.name: e for e in self.endpoints}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.health = health
        self.clock = clock or self.endpoints[0].clock
        self.groups: dict[str, Group] = {}
        self.hedgers: dict[str, Hedger] = {}  # by group name (or "endpoints:a,b" for calls outside a group)
        for cfg in groups:
            self._add_group(cfg)
        for g in self.groups.values():
            for names in g.config.fallbacks.values():
                missing = [n for n in names if n not in self.groups]
                if missing:
                    raise ConfigurationError(
                        f"group {g.name!r}: fallback group {missing[0]!r} is not configured"
                        f" (groups: {', '.join(self.groups)})"
                    )
        self._loose: dict[str, Strategy] = {}  # strategies of calls outside any group (per-call override)
        if len(self.endpoints) > 1:
            for e in self.endpoints:
                e.gate.on_free.append(self._slot_freed)

    def _add_group(self, g: GroupConfig) -> None:
        if not isinstance(g, GroupConfig):
            raise ConfigurationError(f"groups must be GroupConfig values, got {type(g).__name__}")
        if g.name in self.groups:
            raise ConfigurationError(f"two groups are named {g.name!r}")
        members: list[Endpoint] = []
        for name in g.endpoints:
            ep = self._by_name.get(name)
            if ep is None:
                raise ConfigurationError(
                    f"group {g.name!r}: unknown endpoint {name!r}; configured: {', '.join(self._by_name)}"
                )
            if not ep.config.model:
                raise ConfigurationError(
                    f"group {g.name!r}: endpoint {name!r} has no default model (each member of a group answers"
                    " with its own model: set EndpointConfig.model)",
                    endpoint=name,
                )
            members.append(ep)
        self.groups[g.name] = Group(g, members)
        if g.hedge is not None and g.hedge.enabled:
            self._check_hedging_name()
            self.hedgers[g.name] = Hedger(g.name, g.hedge, self.clock)

    def _check_hedging_name(self) -> None:
        if "hedging" in self._by_name:
            raise ConfigurationError(
                "endpoint name 'hedging' is reserved in stats() while hedging is used", endpoint="hedging"
            )

    def hedging(self, target: Target, hedge: bool | float | None) -> HedgePlan | None:
        """How a call routed over ``target`` hedges: ``hedge`` ``None`` follows its group's configuration,
        ``False`` opts out, ``True`` opts in (the group's configuration, else the defaults of
        :class:`~infermux.hedging.HedgeConfig`), a number opts in with that fixed delay in seconds. The budget
        and counters are the group's (for a call outside a group: those of its list of endpoints)."""
        delay = None if hedge is None or isinstance(hedge, bool) else HedgeConfig(delay=hedge).delay  # validated
        if hedge is False or len(target.endpoints) < 2:
            return None
        if target.group is None:
            key, cfg = "endpoints:" + ",".join(e.name for e in target.endpoints), None
        else:
            key, cfg = target.group.name, target.group.config.hedge
        h = self.hedgers.get(key)
        if hedge is None:  # the group's own setting
            return HedgePlan(h) if h is not None and cfg is not None and cfg.enabled else None
        if h is None:
            self._check_hedging_name()
            if len(self.hedgers) > 256:  # per-call endpoint lists could grow it without bound
                self.hedgers = {k: v for k, v in self.hedgers.items() if k in self.groups}
            cfg = HedgeConfig() if cfg is None else dataclasses.replace(cfg, enabled=True)
            h = self.hedgers[key] = Hedger(key, cfg, self.clock)
        return HedgePlan(h, delay)

    def hedge_stats(self) -> dict[str, dict[str, object]]:
        """Hedging counters and state per group (and per list of endpoints of calls outside a group)."""
        return {k: h.stats() for k, h in self.hedgers.items()}

    def _slot_freed(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def usable(self, ep: Endpoint) -> bool:
        """Could a call start at ``ep`` now: :meth:`Endpoint.available` and not found down by health checks."""
        return ep.available() and not (self.health is not None and self.health.is_down(ep))

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
            up = [e for e in candidates if self.usable(e)]
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
                await asyncio.wait((fut,), timeout=wait)  # not wait_for: it can swallow a cancellation before 3.12
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
            group = self.groups.get(model)
            if group is not None:
                return list(group.endpoints)
            serving = [e for e in self.endpoints if model in e.config.models or model == e.config.model]
            if serving:
                return serving
        return list(self.endpoints)

    def target(
        self,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        endpoints: Sequence[str] | None = None,
        strategy: str | None = None,
        key: Callable[[int], str | None] | None = None,
    ) -> Target:
        """What a call is routed over: its group (when ``model`` names one), the endpoints (``endpoint``, or
        the per-call list ``endpoints``, else the group's or those serving ``model``) and the strategy (the
        call's ``strategy``, else the group's). ``key(chars)`` gives the prompt prefix for affinity."""
        group = self.groups.get(model) if model is not None else None
        if endpoint is not None and endpoints is not None:
            raise ConfigurationError("give endpoint= (one) or endpoints= (a list), not both")
        if endpoints is not None:
            if isinstance(endpoints, str) or not isinstance(endpoints, Sequence) or not endpoints:
                raise ConfigurationError(f"endpoints must be a non-empty list of endpoint names, got {endpoints!r}")
            cands = [self.get(n) for n in dict.fromkeys(endpoints)]
        elif endpoint is not None:
            cands = [self.get(endpoint)]
        else:
            cands = self.candidates(model=model)
        strat: Strategy | None = None
        if group is not None:
            strat = group.strategy(strategy)
        elif strategy is not None:
            strat = self._loose.get(strategy)
            if strat is None:
                strat = self._loose[strategy] = make_strategy(strategy)
        return Target(group, cands, strat, key)

    def group_target(self, name: str, base: Target) -> Target:
        """The target of fallback group ``name`` for a call first routed as ``base``."""
        group = self.groups[name]
        return Target(group, list(group.endpoints), group.strategy(None), base.key)

    def plan(
        self, candidates: Sequence[Endpoint], strategy: Strategy | None = None, key: str | None = None
    ) -> list[Endpoint]:
        """The order to try: endpoints that can start a call now (in the strategy's order, else the configured
        one), then the saturated ones (least loaded first), then the ones protecting themselves or found down
        (by when they recover)."""
        if len(candidates) == 1:
            return list(candidates)
        up = [e for e in candidates if self.usable(e)]
        free = [e for e in up if e.has_capacity()]
        if strategy is not None and len(free) > 1:
            free = strategy.order(free, candidates, key, self.clock.now())
        busy = sorted((e for e in up if not e.has_capacity()), key=lambda e: e.load())
        down = sorted((e for e in candidates if e not in up), key=lambda e: e.breaker.retry_at or 0.0)
        return free + busy + down

    def steps(
        self,
        candidates: Sequence[Endpoint],
        budget: Budget | None = None,
        *,
        fail_fast: bool = False,
        strategy: Strategy | None = None,
        key: str | None = None,
        reserve: int = 0,
    ) -> Iterator[tuple[Endpoint, Step]]:
        """Each endpoint to try, in order, with how to try it (evaluated when the previous one has failed).
        ``reserve``: shares of the budget kept for what may follow (fallback groups)."""
        order = self.plan(candidates, strategy, key)
        for i, ep in enumerate(order):
            wait = not (fail_fast or ep.config.fail_fast) and not any(self.usable(e) for e in order[i + 1 :])
            left = len(order) - i + reserve
            timeout, share = budget.share(ep, left) if budget is not None else (None, False)
            yield ep, Step(wait, timeout, share)

    def routing(
        self,
        target: Target | Sequence[Endpoint],
        budget: Budget | None = None,
        *,
        fail_fast: bool = False,
        priority: Priority = Priority.NORMAL,
    ) -> Routing:
        """One call's way through the router (iterate it for ``(endpoint, step)``; see :class:`Routing`)."""
        if not isinstance(target, Target):
            target = Target(None, list(target), None, None)
        return Routing(self, target, budget, fail_fast=fail_fast, priority=priority)

    async def run(
        self,
        target: Target | Sequence[Endpoint],
        fn: Callable[[Endpoint, Step], Awaitable[T]],
        budget: Budget | None = None,
        *,
        fail_fast: bool = False,
        priority: Priority = Priority.NORMAL,
        refused: Callable[[T], bool] | None = None,
        hedge: HedgePlan | None = None,
    ) -> T:
        """Call ``fn`` on the endpoints in turn until one answers; ``refused(result)``: the answer is a content
        filter's refusal (a ``content_policy`` fallback group is tried, the refusal returned if none answers).
        With ``hedge`` (:meth:`hedging`), the first endpoint is hedged (see :mod:`infermux._hedge`).
        The result (a response dataclass with a ``route`` field) and the error carry the route."""
        root = target if isinstance(target, Target) else None
        if hedge is None and root is not None and root.group is None and len(root.endpoints) == 1:
            # one endpoint, no group (no fallbacks, no content_policy fallback for a refusal), no hedge: its one
            # step without the routing's async generator; the Routing is made only when the call fails (the
            # same step, route and errors as the loop below)
            ep = root.endpoints[0]
            try:
                timeout, share = budget.share(ep, 1) if budget is not None else (None, False)
            except DeadlineExceededError as e:  # the budget ran out before the endpoint could be tried
                routing = self.routing(root, budget, fail_fast=fail_fast, priority=priority)
                routing.hand_out(ep)
                routing.errors.append(e)
                return routing.outcome()  # type: ignore[no-any-return]
            try:
                result = await fn(ep, _new_step(not (fail_fast or ep.config.fail_fast), timeout, share))
            except InfermuxError as e:
                routing = self.routing(root, budget, fail_fast=fail_fast, priority=priority)
                routing.hand_out(ep)
                routing.failed(ep, e)
                return routing.outcome()  # type: ignore[no-any-return]
            return with_route(result, (_new_hop(ep.name, None, "ok", None, getattr(result, "attempts", 0)),))  # type: ignore[no-any-return]
        routing = self.routing(target, budget, fail_fast=fail_fast, priority=priority)
        # closed here when the call returns early: left to the garbage collector, an unfinished async generator
        # is closed through the loop's finalizer hook (a thread-safe wake-up of the loop, a task: per call)
        async with aclosing(routing.__aiter__()) as steps:
            async for ep, step in steps:
                at = ep
                try:
                    if hedge is not None:
                        plan, hedge = hedge, None
                        won = await race(routing, plan, ep, step, fn)
                        if won is None:
                            continue
                        at, result = won
                    else:
                        result = await fn(ep, step)
                except InfermuxError as e:
                    routing.failed(at, e)
                    continue
                if refused is not None and refused(result) and routing.refusal(at, result):
                    continue
                return routing.succeeded(at, result)  # type: ignore[no-any-return]
        return routing.outcome()  # type: ignore[no-any-return]

    @staticmethod
    def all_failed(errors: list[InfermuxError], endpoints: Sequence[EndpointStatus] = ()) -> InfermuxError:
        """The error of a call that no endpoint answered: the only error, else an :class:`AllEndpointsFailedError`
        (with ``endpoints``, every candidate's state, when the router knows them)."""
        if len(errors) == 1:
            return errors[0]
        if endpoints:
            summary = "; ".join(f"{s.endpoint}: {s.reason}" for s in endpoints)
            message = f"no endpoint could serve the call ({len(endpoints)} endpoints): {summary}"
        else:
            summary = "; ".join(f"{e.endpoint}: {type(e).__name__}" for e in errors)
            message = f"all {len(errors)} endpoints failed ({summary})"
        return AllEndpointsFailedError(
            message,
            errors=errors,
            endpoints=endpoints,
            request_id=errors[-1].request_id,
            model=errors[-1].model,
        )
