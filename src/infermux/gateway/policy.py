"""Who may do what: authentication (master key, virtual keys), the model allow-list, request limits, RPM/TPM,
and budgets (the estimated cost is reserved when a request is admitted, the real cost charged when it ends).
Keys, windows and budgets live in a :class:`~.state.GatewayState` (this process, or Redis shared by every
replica). Every refusal is a :class:`GatewayError` the caller gets in its own protocol."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..types import ChatRequest, Usage
from .errors import GatewayError, Protocol
from .keys import VirtualKey, hash_key
from .limits import Admission, estimate_tokens, prompt_token_bound
from .settings import MASTER_KEY_ENV, GatewaySettings
from .state import GatewayState, LocalState, Refusal

__all__ = ["GatewayCounters", "Policy", "Principal", "RequestContext"]

_log = logging.getLogger("infermux.gateway")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the master key holder, a virtual key, or anyone (no master key configured)."""

    master: bool = False
    key: VirtualKey | None = None

    @property
    def label(self) -> str:
        return "master" if self.master else (self.key.id if self.key is not None else "anonymous")


@dataclass(slots=True)
class RequestContext:
    request_id: str
    protocol: Protocol
    principal: Principal
    body: dict[str, Any]
    #: the value of a route's trailing path parameter (``/admin/keys/{key_id}``: ``{"key_id": ...}``)
    params: dict[str, str] = field(default_factory=dict)


class GatewayCounters:
    """Plain counters of the gateway itself (the endpoints' own are in ``client.stats()``)."""

    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.streams = 0
        self.disconnects = 0
        self.auth_failures = 0
        self.rate_limited = 0
        self.settle_failures = 0  # settlements the shared store missed (their reservations expire)
        self.errors_by_status: dict[int, int] = {}
        self.started = time.time()

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "streams": self.streams,
            "client_disconnects": self.disconnects,
            "auth_failures": self.auth_failures,
            "rate_limited": self.rate_limited,
            "settle_failures": self.settle_failures,
            "errors_by_status": {str(k): v for k, v in sorted(self.errors_by_status.items())},
            "uptime_s": round(time.time() - self.started, 3),
        }


class Policy:
    """Authentication and admission for one gateway; ``models`` lists the served model names (strict mode)."""

    def __init__(
        self,
        settings: GatewaySettings,
        state: GatewayState,
        counters: GatewayCounters,
        *,
        models: Callable[[], list[str]],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.state = state
        self.counters = counters
        self.models = models
        self.wall_clock = wall_clock
        self._master_hash: tuple[str, str] | None = None  # (master key, its hash): hashed once

    @staticmethod
    def _token(request: web.BaseRequest, protocol: Protocol) -> str | None:
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        api_key = request.headers.get("x-api-key")
        first, second = (api_key, bearer) if protocol == "anthropic" else (bearer, api_key)
        return first or second or None

    async def authenticate(self, request: web.BaseRequest, protocol: Protocol) -> Principal:
        master = self.settings.master_key
        if master is None:
            return Principal()
        token = self._token(request, protocol)
        where = "x-api-key" if protocol == "anthropic" else "Authorization: Bearer"
        if not token:
            self.counters.auth_failures += 1
            raise GatewayError(401, f"missing API key: send the gateway key as {where}")
        if self._master_hash is None or self._master_hash[0] != master:
            self._master_hash = (master, hash_key(master))
        if hmac.compare_digest(hash_key(token), self._master_hash[1]):  # constant time, as secret_equal
            return Principal(master=True)
        key = await self.state.lookup(token)
        if key is None:
            self.counters.auth_failures += 1
            raise GatewayError(401, "invalid API key (unknown or revoked)")
        if key.expired(self.wall_clock()):
            self.counters.auth_failures += 1
            raise GatewayError(401, f"API key {key.id} expired")
        return Principal(key=key)

    async def check_live(self, ctx: RequestContext) -> None:
        """For routes that admit nothing (``/v1/models``, ``count_tokens``): 401 when the caller's key was
        revoked since this replica looked it up (admissions check that themselves)."""
        key = ctx.principal.key
        if key is not None and not await self.state.is_live(key):
            self.counters.auth_failures += 1
            raise GatewayError(401, "invalid API key (unknown or revoked)")

    def require_admin(self, ctx: RequestContext) -> None:
        if self.settings.master_key is None:
            raise GatewayError(403, f"the admin API needs a master key: set {MASTER_KEY_ENV}")
        if not ctx.principal.master:
            raise GatewayError(403, "this route needs the master key")

    def check_model(self, ctx: RequestContext, model: str | None) -> None:
        key = ctx.principal.key
        if key is not None and not key.allows(model):
            raise GatewayError(403, f"key {key.id} may not use model {model!r} (allowed: {', '.join(key.models)})")
        if self.settings.strict_models and model not in self.models():
            raise GatewayError(404, f"model {model!r} is not served here; models: {', '.join(self.models())}")

    async def admit(self, ctx: RequestContext, req: ChatRequest) -> Admission | None:
        s = self.settings
        if len(req.messages) > s.max_messages:
            raise GatewayError(400, f"{len(req.messages)} messages: over the gateway's limit of {s.max_messages}")
        asked = req.max_tokens if req.max_tokens is not None else req.extra.get("max_completion_tokens")
        if s.max_tokens is not None and isinstance(asked, int) and asked > s.max_tokens:
            raise GatewayError(400, f"max_tokens {asked} is over the gateway's limit of {s.max_tokens}")
        self.check_model(ctx, req.model)
        prompt, output = estimate_tokens(req)
        return await self.reserve(ctx, req.model, prompt, output, prompt_bound=prompt_token_bound(req))

    async def reserve(
        self, ctx: RequestContext, model: str | None, prompt: int, output: int, *, prompt_bound: int | None = None
    ) -> Admission | None:
        """Take one request and the estimated tokens (``prompt + output``) from the caller's key limits, and
        reserve the most the request may cost (``prompt_bound + output`` tokens at the model's price: usage
        within it never overspends the budget) against its budget (429 when a limit or the budget does not
        allow it)."""
        key = ctx.principal.key
        if key is None:
            return None
        price = self.settings.price(model)
        cost = price.cost(max(prompt, prompt_bound or 0), output) if price is not None else 0.0
        try:
            got = await self.state.reserve(key, prompt + output, cost)
        except GatewayError as e:
            if e.status_code == 401:  # revoked on another replica since this one looked the key up
                self.counters.auth_failures += 1
            raise
        if isinstance(got, Refusal) and got.kind == "budget":
            self.counters.rate_limited += 1
            raise GatewayError(
                429,
                f"budget exceeded: key {key.id} has {got.committed:.6f} of its {key.budget or 0:.6f} USD spent or"
                f" reserved by requests in flight, and this request may cost up to {cost:.6f} USD",
                error_type="insufficient_quota" if ctx.protocol == "openai" else "rate_limit_error",
                retryable=False,
            )
        if isinstance(got, Refusal):
            self.counters.rate_limited += 1
            raise GatewayError(
                429,
                f"rate limit of key {key.id} reached (rpm={key.rpm}, tpm={key.tpm}); retry in {got.retry_after:.2f}s",
                retry_after=got.retry_after,
                retryable=True,
            )
        return got

    def _used(self, model: str | None, usage: Usage | None) -> tuple[int | None, float | None]:
        """The tokens and cost to charge (``None``: unknown, the estimate is charged)."""
        if usage is None:
            return None, None
        price = self.settings.price(model)
        return usage.total_tokens, price.cost(usage.input_tokens, usage.output_tokens) if price is not None else 0.0

    def settle_local(self, adm: Admission, model: str | None, usage: Usage | None) -> bool:
        """:meth:`settle` at once when the state is this process's own (no wait: nothing to cancel, no task);
        ``False`` when the state is shared (settle with :meth:`settle`)."""
        state = self.state
        if not isinstance(state, LocalState) or type(state).settle is not LocalState.settle:
            return False
        state.settle_now(adm, *self._used(model, usage))
        return True

    async def settle(self, adm: Admission | None, model: str | None, usage: Usage | None) -> None:
        """Charge what the request used (its estimate when the usage is unknown) and give unused TPM back."""
        if adm is None:
            return
        try:
            await self.state.settle(adm, *self._used(model, usage))
        except GatewayError as e:  # the store is unreachable (already logged): the reservation expires
            self.counters.settle_failures += 1
            _log.debug("gateway: settlement of key %s failed: %s", adm.key_id, e)
