"""Admin API (master key only): virtual keys, the audit log, and ``/stats``.

- ``POST /admin/keys`` ``{"name", "models": [...], "rpm", "tpm", "budget", "expires_at" | "expires_in"}`` ->
  201 with the key's record and, once only, its secret (``"key"``)
- ``GET /admin/keys`` (``?include_revoked=true``) -> the records, never a secret or a hash
- ``DELETE /admin/keys/{id}`` -> the revoked record (404 when there is no such live key)
- ``GET /admin/audit`` (``?limit=N``) -> the latest audit entries (who did what to which key ID; no secrets)
- ``GET /stats`` -> the gateway's counters and every endpoint's stats (``client.stats()``)
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import ConfigurationError
from .errors import GatewayError

if TYPE_CHECKING:  # pragma: no cover
    from .app import Gateway, RequestContext

__all__ = ["add_routes"]

_CREATE_FIELDS = frozenset(("name", "models", "rpm", "tpm", "budget", "expires_at", "expires_in"))


async def create_key(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.Response:
    gw.policy.require_admin(ctx)
    body = ctx.body
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise GatewayError(400, f"unknown key setting(s) {unknown}; known: {sorted(_CREATE_FIELDS)}")
    expires_at = body.get("expires_at")
    expires_in = body.get("expires_in")
    if expires_in is not None:
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, (int, float))
            or not math.isfinite(expires_in)
            or expires_in <= 0
        ):
            raise GatewayError(400, f"'expires_in' must be a number of seconds > 0, got {expires_in!r}")
        expires_at = gw.wall_clock() + expires_in
    try:
        secret, key = await gw.state.create(
            name=body.get("name", ""),
            models=body.get("models"),
            rpm=body.get("rpm"),
            tpm=body.get("tpm"),
            budget=body.get("budget"),
            expires_at=expires_at,
            actor=ctx.principal.label,
        )
    except ConfigurationError as e:
        raise GatewayError(400, str(e)) from None
    return gw.json_response({**key.public(), "key": secret}, ctx.request_id, status=201)


async def list_keys(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.Response:
    gw.policy.require_admin(ctx)
    revoked = request.query.get("include_revoked", "").lower() in ("1", "true", "yes")
    keys = [k.public() for k in await gw.state.list_keys(include_revoked=revoked)]
    return gw.json_response({"data": keys}, ctx.request_id)


async def revoke_key(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.Response:
    gw.policy.require_admin(ctx)
    key_id = ctx.params["key_id"]
    key = await gw.state.revoke(key_id, actor=ctx.principal.label)
    if key is None:
        raise GatewayError(404, f"no live key with ID {key_id!r}")
    return gw.json_response(key.public(), ctx.request_id)


async def audit(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.Response:
    gw.policy.require_admin(ctx)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise GatewayError(400, "'limit' must be an integer") from None
    if not 1 <= limit <= 10_000:
        raise GatewayError(400, "'limit' must be within 1..10000")
    return gw.json_response({"data": await gw.state.audit_log(limit)}, ctx.request_id)


async def stats(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.Response:
    gw.policy.require_admin(ctx)
    body: dict[str, Any] = {"gateway": gw.counters.snapshot(), "endpoints": gw.client.stats()}
    body["ready"] = gw.readiness()[1]
    return gw.json_response(body, ctx.request_id)


def add_routes(gw: Gateway) -> None:
    gw.route("POST", "/admin/keys", functools.partial(create_key, gw))
    gw.route("GET", "/admin/keys", functools.partial(list_keys, gw))
    gw.route("DELETE", "/admin/keys/{key_id}", functools.partial(revoke_key, gw))
    gw.route("GET", "/admin/audit", functools.partial(audit, gw))
    gw.route("GET", "/stats", functools.partial(stats, gw))
