"""Routing strategies: in which order a group's endpoints that can start a call now are tried.

A strategy only orders the endpoints the router found *free* (available and with a slot); the router's own
rules stay around it (saturated endpoints next, least loaded first; endpoints protecting themselves last,
the one that recovers first ahead: panic routing). Strategies keep their state per group (a rotation
counter, weights, a hash ring) and are pure: no I/O, time from the clock given.

- ``ordered``: the configured order (tiers: local first, spill over to hosted).
- ``round_robin``: each call starts one further along the list.
- ``weighted``: smooth weighted round robin over integer weights derived exactly from the configured ones
  (``0.5, 0.3, 0.2`` are ``5, 3, 2``: every 10 calls go exactly 5, 3 and 2 ways), among the free endpoints.
- ``least_loaded``: fewest calls in flight and queued per slot (:meth:`Endpoint.load`), ties in order.
- ``lowest_latency``: lowest EWMA of the response time (time to first token for streams, duration for the
  rest); an endpoint never measured, or not measured for ``explore_after`` seconds, gets one call first so
  its figure stays current.
- ``prefix_affinity``: consistent hashing of the prompt's start over the group's endpoints (64 virtual
  nodes each), so calls sharing a prefix go to the same endpoint (its prefix cache hits) and adding an
  endpoint moves only the prefixes that now hash to it; while that endpoint cannot take the call, the next
  one on the ring does.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from math import lcm
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import Endpoint

__all__ = [
    "LeastLoaded",
    "LowestLatency",
    "Ordered",
    "PrefixAffinity",
    "RoundRobin",
    "Strategy",
    "Weighted",
    "exact_weights",
    "make_strategy",
    "prefix_key",
]


class Strategy(Protocol):
    name: str

    def order(
        self, free: Sequence[Endpoint], candidates: Sequence[Endpoint], key: str | None, now: float
    ) -> list[Endpoint]:
        """``free`` (a subset of ``candidates``, in configured order) in the order to try them. ``key``: the
        call's affinity key (for ``prefix_affinity``); ``now``: the clock's time."""
        ...


class Ordered:
    name = "ordered"

    def order(
        self, free: Sequence[Endpoint], candidates: Sequence[Endpoint], key: str | None, now: float
    ) -> list[Endpoint]:
        return list(free)


class RoundRobin:
    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def order(
        self, free: Sequence[Endpoint], candidates: Sequence[Endpoint], key: str | None, now: float
    ) -> list[Endpoint]:
        if len(free) < 2:
            return list(free)
        start = self._next % len(free)
        self._next += 1
        return [*free[start:], *free[:start]]


def exact_weights(weights: Mapping[str, float]) -> dict[str, int]:
    """Integer weights in exactly the configured proportions: each weight read as the decimal it is written
    as (``0.1`` is 1/10, not the nearest binary float), scaled by the denominators' least common multiple and
    divided by the numerators' greatest common divisor."""
    from fractions import Fraction  # only for weighted groups (imports decimal)

    fr = {k: Fraction(str(w)) for k, w in weights.items()}
    if not fr:
        return {}
    scale = lcm(*(f.denominator for f in fr.values()))
    ints = {k: int(f * scale) for k, f in fr.items()}
    g = 0
    for v in ints.values():
        g = _gcd(g, v)
    return {k: v // g for k, v in ints.items()} if g > 1 else ints


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


class Weighted:
    """Smooth weighted round robin (nginx's): each pick adds every free endpoint's weight to its running
    score, takes the highest score and subtracts the free endpoints' total from it. With integer weights the
    picks over any ``sum(weights)`` consecutive calls (same free set) match the weights exactly, spread out
    (``5, 1, 1`` gives ``a a b a c a a``, not five ``a`` in a row)."""

    name = "weighted"

    _UNIT = "\x00unit"  # the weight of an endpoint without one (1, scaled like the others)

    def __init__(self, weights: Mapping[str, float]) -> None:
        ints = exact_weights({**weights, self._UNIT: 1})
        self._unit = ints.pop(self._UNIT)
        self.weights = ints
        self._current: dict[str, int] = {}

    def weight(self, name: str) -> int:
        return self.weights.get(name, self._unit)

    def order(
        self, free: Sequence[Endpoint], candidates: Sequence[Endpoint], key: str | None, now: float
    ) -> list[Endpoint]:
        if len(free) < 2:
            return list(free)
        cur = self._current
        total = 0
        best: Endpoint | None = None
        for e in free:
            w = self.weight(e.name)
            total += w
            cur[e.name] = cur.get(e.name, 0) + w
            if best is None or cur[e.name] > cur[best.name]:
                best = e
        assert best is not None
        cur[best.name] -= total
        rest = sorted((e for e in free if e is not best), key=lambda e: -self.weight(e.name))
        return [best, *rest]


class LeastLoaded:
    name = "least_loaded"

    def order(
        self, free: Sequence[Endpoint], candidates: Sequence[Endpoint], key: str | None, now: float
    ) -> list[Endpoint]:
        return sorted(free, key=lambda e: e.load())


class LowestLatency:
    name = "lowest_latency"

    def __init__(self, explore_after: float = 30.0) -> None:
        self.explore_after = explore_after
        self._explored: dict[str, float] = {}

    def _stale(self, e: Endpoint, now: float) -> bool:
        seen = [t for t in (e.counters.ewma_at, self._explored.get(e.name)) if t is not None]
        return not seen or now - max(seen) >= self.explore_after

    def order(
        self, free: Sequence[Endpoint], candidates: Sequence[Endpoint], key: str | None, now: float
    ) -> list[Endpoint]:
        if len(free) < 2:
            return list(free)
        stale = [e for e in free if self._stale(e, now)]
        if stale:  # one call re-measures it; the next calls go by the figures until it answers
            self._explored[stale[0].name] = now
            first = stale[0]
            rest = sorted((e for e in free if e is not first), key=_ewma)
            return [first, *rest]
        return sorted(free, key=_ewma)


def _ewma(e: Endpoint) -> float:
    v = e.counters.ewma
    return float("inf") if v is None else v


_VNODES = 64


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


class PrefixAffinity:
    name = "prefix_affinity"

    def __init__(self) -> None:
        self._rings: dict[tuple[str, ...], tuple[list[int], list[str]]] = {}

    def ring(self, names: Sequence[str]) -> tuple[list[int], list[str]]:
        """The hash ring of ``names`` (cached): sorted points and the endpoint name at each."""
        k = tuple(names)
        ring = self._rings.get(k)
        if ring is None:
            points = sorted((_hash(f"{n}#{i}"), n) for n in names for i in range(_VNODES))
            ring = ([p for p, _ in points], [n for _, n in points])
            if len(self._rings) > 64:  # per-call endpoint lists could grow it without bound
                self._rings.clear()
            self._rings[k] = ring
        return ring

    def owners(self, key: str, names: Sequence[str]) -> list[str]:
        """Every name, in the order the ring gives for ``key`` (its owner first)."""
        hashes, owners = self.ring(names)
        start = bisect_right(hashes, _hash(key))
        out: list[str] = []
        seen: set[str] = set()
        n = len(owners)
        for i in range(n):
            name = owners[(start + i) % n]
            if name not in seen:
                seen.add(name)
                out.append(name)
                if len(out) == len(names):
                    break
        return out

    def order(
        self, free: Sequence[Endpoint], candidates: Sequence[Endpoint], key: str | None, now: float
    ) -> list[Endpoint]:
        if key is None or len(free) < 2:
            return list(free)
        by_name = {e.name: e for e in free}
        return [by_name[n] for n in self.owners(key, [e.name for e in candidates]) if n in by_name]


def make_strategy(name: str, weights: Mapping[str, float] | None = None) -> Strategy:
    if name == "ordered":
        return Ordered()
    if name == "round_robin":
        return RoundRobin()
    if name == "weighted":
        return Weighted(weights or {})
    if name == "least_loaded":
        return LeastLoaded()
    if name == "lowest_latency":
        return LowestLatency()
    if name == "prefix_affinity":
        return PrefixAffinity()
    from .errors import ConfigurationError
    from .fleet import STRATEGIES

    raise ConfigurationError(f"unknown routing strategy {name!r}; known: {', '.join(STRATEGIES)}")


def prefix_key(texts: Iterable[str], chars: int) -> str:
    """The first ``chars`` characters of ``texts`` joined (the affinity key of a prompt)."""
    out: list[str] = []
    n = 0
    for t in texts:
        out.append(t[: chars - n])
        n += len(out[-1])
        if n >= chars:
            break
        out.append("\x1e")
        n += 1
    return "".join(out)[:chars]
