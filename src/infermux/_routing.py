"""One call's way through the router: the groups it may use, the endpoints tried, fallbacks, and its route.

:class:`Routing` is an async iterator of ``(endpoint, step)``. The caller tries each endpoint and reports
back (:meth:`Routing.failed`, :meth:`Routing.refusal`, :meth:`Routing.succeeded`) before asking for the
next one; when the current group has nothing left (or its error is not one another endpoint can fix), the
error's class picks the next fallback group of the call's first group. :meth:`Routing.outcome` is the
final error (or a kept refusal) once nothing is left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._evolve import STAMPED, evolve
from .errors import (
    CircuitOpenError,
    DeadlineExceededError,
    EndpointStatus,
    InfermuxError,
    KeyPoolExhaustedError,
    QueueFullError,
    RateLimitError,
)
from .fleet import GroupConfig
from .resilience.health import HealthState
from .strategies import Strategy, make_strategy
from .types import Priority, RouteHop

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import Endpoint
    from .health import HealthMonitor
    from .router import Budget, Router, Step

__all__ = ["Group", "Routing", "Target", "with_route"]


@dataclass(slots=True)
class Group:
    """A configured group: its endpoints and its strategies' state (one per strategy name, made on use, so a
    per-call override keeps its own rotation)."""

    config: GroupConfig
    endpoints: list[Endpoint]
    _strategies: dict[str, Strategy] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    def strategy(self, name: str | None) -> Strategy:
        name = name or self.config.strategy
        s = self._strategies.get(name)
        if s is None:
            s = self._strategies[name] = make_strategy(name, self.config.weights)
        return s


@dataclass(slots=True)
class Target:
    """What one call is routed over: its group (or none), the candidate endpoints, the strategy, and
    ``key(chars)``: the call's prompt prefix for ``prefix_affinity`` (computed only when needed)."""

    group: Group | None
    endpoints: list[Endpoint]
    strategy: Strategy | None
    key: Callable[[int], str | None] | None

    def affinity_key(self) -> str | None:
        if self.key is None or self.strategy is None or self.strategy.name != "prefix_affinity":
            return None
        chars = self.group.config.affinity_chars if self.group is not None else 512
        return self.key(chars)


class Routing:
    """One call's routing state (see the module docstring)."""

    __slots__ = (
        "_current",
        "_done",
        "_fail_fast",
        "_group",
        "_left",
        "_priority",
        "_seen",
        "_skip",
        "_tried",
        "_yielded",
        "budget",
        "errors",
        "hops",
        "refused",
        "root",
        "router",
    )

    def __init__(
        self, router: Router, target: Target, budget: Budget | None, *, fail_fast: bool, priority: Priority
    ) -> None:
        self.router = router
        self.root = target
        self.budget = budget
        self._fail_fast = fail_fast
        self._priority = priority
        self.hops: list[list[Any]] = []  # [endpoint, group, outcome, reason, attempts], frozen in route()
        self.errors: list[InfermuxError] = []
        self.refused: Any = None  # a content filter's answer kept while fallback groups are tried
        self._group: str | None = None
        self._tried: set[str] = set()
        self._done = False  # the current group cannot help further (an error another endpoint cannot fix)
        self._left: Endpoint | None = None  # the endpoint just left (counted as a fallback once another is tried)
        self._skip: set[str] = set()  # endpoints already sent the call as a hedge (not tried again)
        self._seen: dict[str, Endpoint] = {}  # every candidate of the groups routed over, in order
        self._current: Target = target
        self._yielded: set[str] = set()  # endpoints handed out so far

    def route(self) -> tuple[RouteHop, ...]:
        return tuple(RouteHop(*h) for h in self.hops)

    def __aiter__(self) -> AsyncGenerator[tuple[Endpoint, Any], None]:
        return self._iterate()

    async def _iterate(self) -> AsyncGenerator[tuple[Endpoint, Any], None]:
        router, budget = self.router, self.budget
        target: Target | None = self.root
        while target is not None:
            self._current = target
            self._group = target.group.name if target.group is not None else None
            if self._group is not None:
                self._tried.add(self._group)
            self._done = False
            for e in target.endpoints:
                self._seen.setdefault(e.name, e)
            await router.await_capacity(target.endpoints, budget, self._priority)
            reserve = 1 if self._fallbacks_left() else 0
            try:
                for ep, step in router.steps(
                    target.endpoints,
                    budget,
                    fail_fast=self._fail_fast,
                    strategy=target.strategy,
                    key=target.affinity_key(),
                    reserve=reserve,
                ):
                    if ep.name in self._skip:
                        continue
                    if self._left is not None:
                        self._left.counters.fallbacks += 1
                        self._left = None
                    self._yielded.add(ep.name)
                    yield ep, step
                    if self._done:
                        break
            except DeadlineExceededError as e:  # the budget ran out between endpoints
                self.errors.append(e)
                return
            target = self._next_target()

    def hand_out(self, ep: Endpoint) -> None:
        """Note ``ep`` as a candidate handed out (the bookkeeping of :meth:`_iterate`, for the router's one-step
        path: a call to one endpoint outside a group, not hedged)."""
        self._seen[ep.name] = ep
        self._yielded.add(ep.name)

    def may_continue(self, ep: Endpoint) -> bool:
        """Whether another endpoint may be tried after ``ep``: one of the current target not handed out yet, or
        a fallback group not tried yet."""
        done = self._yielded | self._skip  # handed out, or sent the call as a hedge
        left = any(e is not ep and e.name not in done for e in self._current.endpoints)
        return left or self._fallbacks_left()

    def _fallbacks_left(self) -> bool:
        g = self.root.group
        return g is not None and any(n not in self._tried for ns in g.config.fallbacks.values() for n in ns)

    def _next_target(self) -> Target | None:
        """The next fallback group for the last failure (or the kept refusal), else ``None``."""
        g = self.root.group
        if g is None:
            return None
        if self.refused is not None and (not self.errors or self._refused_last()):
            names = g.config.fallbacks.get("content_policy", ())
            why = "content_policy"
        elif self.errors:
            err = self.errors[-1]
            names = g.config.fallbacks_for(err)
            why = next((k for k in _keys(err) if g.config.fallbacks.get(k)), "")
        else:
            return None
        for name in names:
            if name not in self._tried:
                if self.hops:
                    self.hops[-1][3] = f"fallback ({why}) to group {name!r}"
                return self.router.group_target(name, self.root)
        return None

    def _refused_last(self) -> bool:
        return bool(self.hops) and self.hops[-1][2] == "content_filter"

    # ------------------------------------------------------------------ hedging (infermux._hedge)

    @property
    def stopped(self) -> bool:
        """The current group cannot help further (the last error is one no other endpoint can fix)."""
        return self._done

    def hedge_step(self, primary: Endpoint) -> tuple[Endpoint, Step] | None:
        """Where a hedge of the call running at ``primary`` can go now: the least loaded other endpoint of
        the current target that is usable with a free slot (``None`` when there is none: a hedge would only
        queue or add load where none is spare), with its share of the call's budget. It is then not tried
        again by this routing."""
        from .router import Step as _Step

        target = self.root
        others = [e for e in target.endpoints if e is not primary and e.name not in self._skip]
        free = [e for e in others if self.router.usable(e) and e.has_capacity()]
        if not free:
            return None
        ep = min(free, key=lambda e: e.load())
        left = len(others) + (1 if self._fallbacks_left() else 0)
        try:
            timeout, share = self.budget.share(ep, left) if self.budget is not None else (None, False)
        except DeadlineExceededError:  # the call's time is spent: no hedge (the running leg has its own deadline)
            return None
        self._skip.add(ep.name)
        return ep, _Step(False, timeout, share)

    def lost(self, ep: Endpoint, winner: Endpoint | None) -> None:
        """``ep``'s leg of a hedged call was cancelled: ``winner`` answered first (``None``: the call ended
        otherwise: the other leg's error no endpoint can fix, or the caller's cancellation)."""
        why = f"{winner.name!r} answered first" if winner is not None else "cancelled: the call ended without it"
        self.hops.append([ep.name, self._group, "hedge_lost", why, 0])

    # ------------------------------------------------------------------ what the caller reports

    def failed(self, ep: Endpoint, err: InfermuxError, reason: str | None = None) -> None:
        """``ep`` failed with ``err``; ``reason`` replaces the hop's default one (``"next endpoint"``)."""
        from .router import can_fall_back

        self.errors.append(err)
        movable = can_fall_back(err)
        reason = (reason or "next endpoint") if movable else "not retryable elsewhere"
        self.hops.append([ep.name, self._group, type(err).__name__, reason, err.attempts or 0])
        self._left = ep
        if not movable:
            self._done = True

    def refusal(self, ep: Endpoint, result: Any) -> bool:
        """``result`` is a content filter's refusal: whether to try a ``content_policy`` fallback group (the
        refusal is kept and returned when none answers)."""
        g = self.root.group
        names = g.config.fallbacks.get("content_policy", ()) if g is not None else ()
        if not any(n not in self._tried for n in names):
            return False
        self.refused = result
        self.hops.append([ep.name, self._group, "content_filter", "refused", getattr(result, "attempts", 0)])
        self._left = ep
        self._done = True
        return True

    def succeeded(self, ep: Endpoint, result: Any) -> Any:
        self.hops.append([ep.name, self._group, "ok", None, getattr(result, "attempts", 0)])
        return self.with_route(result)

    def with_route(self, result: Any) -> Any:
        return with_route(result, self.route())

    def outcome(self) -> Any:
        """Nothing answered: the kept refusal (with its route), else raise the final error (with the route)."""
        if self.refused is not None:
            return self.with_route(self.refused)
        from .router import Router, can_fall_back

        if self.hops and self.hops[-1][3] in ("next endpoint", "failover mid-stream"):
            self.hops[-1][3] = "no endpoint left"
        errors = self.errors
        if not errors:  # pragma: no cover - a target always has an endpoint
            raise DeadlineExceededError("no endpoint could be tried")
        last = errors[-1]
        err = last if not can_fall_back(last) else Router.all_failed(errors, self.statuses())
        err.route = self.route()
        raise err

    def statuses(self) -> list[EndpointStatus]:
        """Every candidate endpoint's state now, with its last error of this call (see :class:`EndpointStatus`)."""
        last: dict[str, InfermuxError] = {}
        for e in self.errors:
            if e.endpoint is not None:
                last[e.endpoint] = e
        health = self.router.health
        return [endpoint_status(ep, last.get(name), health) for name, ep in self._seen.items()]


def with_route(result: Any, route: tuple[RouteHop, ...]) -> Any:
    """``result`` with its ``route`` (a response dataclass with a ``route`` field; anything else as it is)."""
    if type(result) in STAMPED or (
        dataclasses.is_dataclass(result) and not isinstance(result, type) and hasattr(result, "route")
    ):
        return evolve(result, route=route)
    return result


def endpoint_status(ep: Endpoint, err: InfermuxError | None, health: HealthMonitor | None) -> EndpointStatus:
    """Why ``ep`` could not serve a call that failed there with ``err`` (``None``: it was not tried)."""
    verdict = None if health is None else health.verdict(ep)
    breaker = ep.breaker.state.value
    where: dict[str, Any] = {
        "error": err,
        "breaker": breaker,
        "health": None if verdict is None else verdict.state.value,
    }
    failed = "" if err is None else type(err).__name__ + (f" (HTTP {err.status_code})" if err.status_code else "")
    if err is None:
        return EndpointStatus(ep.name, "not_tried", "not tried: the call's timeout ran out first", **where)
    if isinstance(err, CircuitOpenError) or err.breaker_state == "open":
        retry_at = ep.breaker.retry_at
        when = "" if retry_at is None else f", next probe in {max(0.0, retry_at - ep.clock.now()):.3g}s"
        after = "" if isinstance(err, CircuitOpenError) else f" after {failed}"
        return EndpointStatus(ep.name, "breaker_open", f"circuit breaker open{when}{after}", retry_at=retry_at, **where)
    if isinstance(err, KeyPoolExhaustedError):
        return EndpointStatus(ep.name, "keys_exhausted", "every API key was rejected (401/403)", **where)
    if isinstance(err, RateLimitError) and err.status_code is None:  # the key pool's own refusal
        why = "every API key's quota is used up" + (f", retry in {err.retry_after:.3g}s" if err.retry_after else "")
        return EndpointStatus(ep.name, "keys_exhausted", why, **where)
    if isinstance(err, QueueFullError):
        gate = ep.gate
        why = f"saturated: {gate.in_flight}/{gate.max_concurrency} in flight, queue full ({gate.waiting} waiting)"
        return EndpointStatus(ep.name, "saturated", why, **where)
    if verdict is not None and verdict.state is HealthState.DOWN:
        return EndpointStatus(ep.name, "health_down", f"health down ({verdict.reason}); failed with {failed}", **where)
    return EndpointStatus(ep.name, "failed", f"failed with {failed}", **where)


def _keys(err: InfermuxError) -> list[str]:
    from .fleet import fallback_keys

    return fallback_keys(err)
