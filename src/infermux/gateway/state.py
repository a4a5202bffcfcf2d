"""Where the gateway keeps what its replicas must agree on: virtual keys, RPM/TPM windows and budgets.

:class:`GatewayState` is the interface the policy and the admin API use (async, so a network store fits);
:class:`LocalState` keeps everything in this process and its SQLite file (one replica), and
:class:`~infermux.gateway.redis_state.RedisState` keeps it in Redis, shared by every replica (``state =
"redis"`` in ``[gateway]``). Both reserve a request's estimate when it is admitted and settle it with the
real usage when it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..resilience.clock import Clock
from .keys import KeyStore, VirtualKey
from .limits import Admission, KeyLimiter

__all__ = ["GatewayState", "LocalState", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was not admitted: a rate limit (``retry_after`` seconds until it fits) or the budget
    (``committed`` USD already spent or reserved)."""

    kind: Literal["rate", "budget"]
    retry_after: float = 0.0
    committed: float = 0.0


class GatewayState(Protocol):
    """Keys, limits and budgets (see the module docstring)."""

    name: str

    async def lookup(self, secret: str) -> VirtualKey | None: ...

    async def is_live(self, key: VirtualKey) -> bool:
        """Whether ``key`` (found by :meth:`lookup`, perhaps cached) is still live (not revoked)."""
        ...

    async def create(self, *, actor: str, **settings: Any) -> tuple[str, VirtualKey]: ...

    async def revoke(self, key_id: str, *, actor: str) -> VirtualKey | None: ...

    async def list_keys(self, *, include_revoked: bool = False) -> list[VirtualKey]: ...

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]: ...

    async def reserve(self, key: VirtualKey, tokens: int, cost: float) -> Admission | Refusal:
        """Take one request and ``tokens`` from the key's RPM/TPM windows and reserve ``cost`` (USD) against
        its budget, all or nothing."""
        ...

    async def settle(self, adm: Admission, used_tokens: int | None, cost: float | None) -> None:
        """Replace the reservation with the real usage (``None``: unknown; the estimate stands)."""
        ...

    async def aclose(self) -> None: ...


class LocalState:
    """One process: keys in SQLite (:class:`KeyStore`), token buckets in memory (:class:`KeyLimiter`), and the
    reserved cost of the requests in flight in a dict."""

    name = "local"

    def __init__(self, keys: KeyStore, *, clock: Clock, wall_clock: Callable[[], float]) -> None:
        self.keys = keys
        self.limiter = KeyLimiter(clock=clock)
        self.wall_clock = wall_clock
        self._reserved: dict[str, float] = {}  # key id -> estimated cost of its requests in flight

    async def lookup(self, secret: str) -> VirtualKey | None:
        return self.keys.lookup(secret)

    async def is_live(self, key: VirtualKey) -> bool:
        return True  # lookups read the live index itself: nothing is cached

    async def create(self, *, actor: str, **settings: Any) -> tuple[str, VirtualKey]:
        return self.keys.create(actor=actor, **settings)

    async def revoke(self, key_id: str, *, actor: str) -> VirtualKey | None:
        return self.keys.revoke(key_id, actor=actor)

    async def list_keys(self, *, include_revoked: bool = False) -> list[VirtualKey]:
        return self.keys.all(include_revoked=include_revoked)

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.keys.audit_log(limit)

    async def reserve(self, key: VirtualKey, tokens: int, cost: float) -> Admission | Refusal:
        if key.budget is not None:
            committed = key.spent + self._reserved.get(key.id, 0.0)  # the index keeps ``spent`` current
            if committed + cost > key.budget or committed >= key.budget:
                return Refusal("budget", committed=committed)
        got = self.limiter.admit(key.id, key.rpm, key.tpm, tokens)
        if not isinstance(got, Admission):
            return Refusal("rate", retry_after=got)
        got.cost = cost
        self._reserved[key.id] = self._reserved.get(key.id, 0.0) + cost
        return got

    async def settle(self, adm: Admission, used_tokens: int | None, cost: float | None) -> None:
        self.settle_now(adm, used_tokens, cost)

    def settle_now(self, adm: Admission, used_tokens: int | None, cost: float | None) -> None:
        """:meth:`settle` without a wait (nothing here waits: the gateway settles inline, no task needed)."""
        self._reserved[adm.key_id] = max(0.0, self._reserved.get(adm.key_id, 0.0) - adm.cost)
        self.limiter.settle(adm, used_tokens)
        charged = cost if cost is not None else adm.cost  # unknown usage: the estimate is charged
        self.keys.add_spend(adm.key_id, charged)

    async def aclose(self) -> None:
        self.keys.close()
