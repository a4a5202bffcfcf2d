"""Keys, RPM/TPM windows and budgets in Redis (or Valkey), shared by every replica (``state = "redis"``).

Layout (``P`` = ``redis_prefix``)::

    P:k:{id}        the key's record as JSON (no secret; the SHA-256 of it)    P:keys   ZSET of ids by creation
    P:h:{sha256}    -> id, present while the key is live (deleted on revoke)   P:audit  LIST of JSON entries
    P:rpm:{id}      HASH {l: level, a: at ms}: the RPM token bucket             P:audit:seq
    P:tpm:{id}      the same for tokens per minute
    P:spent:{id}    settled spend, integer nano-USD
    P:held:{id}     reserved, not yet settled spend (nano-USD); P:rz:{id} ZSET reservation -> deadline (ms),
                    P:ra:{id} HASH reservation -> reserved nano-USD

**Admission** is one Lua script (one round trip, atomic on the server): it checks that the key is still live
(``P:h:{sha}`` exists: a revocation on any replica refuses the next request everywhere), reaps expired
reservations, checks the budget (``spent + held + this reservation <= budget``) and both buckets, and only when
all pass takes one request and the estimated tokens and records the reservation. **Settlement** is another:
it removes the reservation, charges the real cost (or the reservation when the usage is unknown) and gives
unused TPM back. Since every admission sees every replica's reservations, the spend can exceed the budget only
by what a request uses beyond its reservation (the policy reserves an upper bound of the prompt, see
:func:`.limits.prompt_token_bound`, plus ``max_tokens``).

A reservation whose request died without settling (the replica crashed or lost Redis) expires after
``reservation_ttl`` (the request timeout plus a minute): the next admission of that key charges it in full
(the upstream may have served it). A late settlement of a reaped reservation charges only the difference.

Time is the replicas' wall clock (``wall_clock``, injectable), in milliseconds, so every replica's windows
agree to within their clock skew. The scripts name keys they build from their arguments, so the store is one
Redis (or Valkey) primary, not Redis Cluster. Lookups cache a live key's record for :data:`KEY_CACHE_TTL` seconds (its
fields never change except revocation, which the admission script checks on every request, and the routes
that admit nothing, ``/v1/models`` and ``count_tokens``, with one ``EXISTS``).

Every Redis call is bounded: ``redis_timeout`` for the connect and each read, twice that for a pooled
connection when all are busy, four times it for the whole call; no client-side retries. When Redis cannot be
reached, ``fail_mode = "closed"`` answers 503 (retryable, with ``retry-after``) to every virtual-key request
and admin call; ``"open"`` serves keys this replica has looked up before, without limits or budget (their
spend is not recorded), and refuses unknown keys with 503. Either way one warning is logged per outage, and
one line when Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar

from ..errors import ConfigurationError
from ..resilience.clock import SYSTEM_CLOCK, Clock
from .errors import GatewayError
from .keys import VirtualKey, hash_key, new_key
from .limits import Admission
from .state import Refusal

__all__ = ["KEY_CACHE_TTL", "RedisState", "StateUnavailableError"]

_log = logging.getLogger("infermux.gateway")
T = TypeVar("T")

#: seconds a replica keeps a live key's record without asking Redis again
KEY_CACHE_TTL = 5.0
_NANO = 1_000_000_000
_AUDIT_MAX = 10_000

# bucket helpers shared by both scripts: level at ``now`` (ms) of a bucket of ``cap`` per minute
_BUCKET = """
local function level(key, cap, now)
  local v = redis.call('HMGET', key, 'l', 'a')
  local l, a = tonumber(v[1]), tonumber(v[2])
  if l == nil then return cap, now end
  local dt = now - a
  if dt < 0 then dt = 0 end
  l = l + dt * cap / 60000
  if l > cap then l = cap end
  return l, math.max(a, now)
end
local function store(key, cap, l, at)
  redis.call('HSET', key, 'l', tostring(l), 'a', tostring(at))
  redis.call('PEXPIRE', key, math.ceil((cap - l) * 60000 / cap) + 1000)
end
"""

# KEYS: h, rpm, tpm, spent, held, rz, ra
# ARGV: now_ms, rpm, tpm, tokens, cost, budget (-1: none), rid, deadline_ms
_ADMIT = (
    _BUCKET
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'revoked'} end
local now = tonumber(ARGV[1])
local rpm, tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cost, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
-- reservations of requests that never settled: their estimate is charged
local dead = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)
for _, r in ipairs(dead) do
  local amt = tonumber(redis.call('HGET', KEYS[7], r) or '0')
  redis.call('HDEL', KEYS[7], r)
  redis.call('ZREM', KEYS[6], r)
  redis.call('DECRBY', KEYS[5], amt)
  redis.call('INCRBY', KEYS[4], amt)
end
if budget >= 0 then
  local committed = tonumber(redis.call('GET', KEYS[4]) or '0') + tonumber(redis.call('GET', KEYS[5]) or '0')
  if committed >= budget or committed + cost > budget then return {'budget', tostring(committed)} end
end
local wait = 0
local rl, ra, tl, ta
if rpm > 0 then
  rl, ra = level(KEYS[2], rpm, now)
  if rl < 1 then wait = math.max(wait, (1 - rl) * 60000 / rpm) end
end
if tpm > 0 then
  tl, ta = level(KEYS[3], tpm, now)
  local need = math.min(tokens, tpm) - tl
  if need > 0 then wait = math.max(wait, need * 60000 / tpm) end
end
if wait > 0 then return {'rate', tostring(wait)} end
if rpm > 0 then store(KEYS[2], rpm, rl - 1, ra) end
if tpm > 0 then store(KEYS[3], tpm, tl - tokens, ta) end
if budget >= 0 then
  redis.call('ZADD', KEYS[6], tonumber(ARGV[8]), ARGV[7])
  redis.call('HSET', KEYS[7], ARGV[7], cost)
  redis.call('INCRBY', KEYS[5], cost)
end
return {'ok'}
"""
)

# KEYS: tpm, spent, held, rz, ra
# ARGV: now_ms, tpm, reserved_tokens, used_tokens (-1: unknown), rid ('' : none), estimate, actual (-1: unknown)
_SETTLE = (
    _BUCKET
    + """
local now, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local reserved, used = tonumber(ARGV[3]), tonumber(ARGV[4])
if tpm > 0 and used >= 0 and reserved > 0 and reserved ~= used then
  local l, a = level(KEYS[1], tpm, now)
  l = l + reserved - used
  if l > tpm then l = tpm end
  store(KEYS[1], tpm, l, a)
end
local estimate, actual = tonumber(ARGV[6]), tonumber(ARGV[7])
local held = false
if ARGV[5] ~= '' then
  local amt = redis.call('HGET', KEYS[5], ARGV[5])
  if amt then
    held = true
    redis.call('HDEL', KEYS[5], ARGV[5])
    redis.call('ZREM', KEYS[4], ARGV[5])
    if redis.call('DECRBY', KEYS[3], tonumber(amt)) <= 0 then redis.call('DEL', KEYS[3]) end
  end
end
local charge = actual
if actual < 0 then charge = estimate end
if ARGV[5] ~= '' and not held then charge = charge - estimate end  -- reaped: the estimate is already charged
if charge ~= 0 then redis.call('INCRBY', KEYS[2], charge) end
return charge
"""
)

# KEYS: h; ARGV: the record keys' prefix ("P:k:"). The live key's record, in one round trip.
_LOOKUP = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('GET', ARGV[1] .. id)
"""

# KEYS: seq, list; ARGV: entry JSON (without seq), max
_AUDIT = """
local seq = redis.call('INCR', KEYS[1])
redis.call('LPUSH', KEYS[2], seq .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return seq
"""

# KEYS: k, h, keys, seq, audit; ARGV: record JSON, hash? id, created, audit JSON, max
_CREATE = """
if redis.call('SET', KEYS[2], ARGV[2], 'NX') == false then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[2])
""" + _AUDIT.replace("KEYS[1]", "KEYS[4]").replace("KEYS[2]", "KEYS[5]").replace("ARGV[1]", "ARGV[4]").replace(
    "ARGV[2]", "ARGV[5]"
)

# KEYS: k, h, seq, audit; ARGV: old record JSON, new record JSON, audit JSON, max
_REVOKE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
""" + _AUDIT.replace("KEYS[1]", "KEYS[3]").replace("KEYS[2]", "KEYS[4]").replace("ARGV[1]", "ARGV[3]").replace(
    "ARGV[2]", "ARGV[4]"
)


class StateUnavailableError(GatewayError):
    """The shared state store (Redis) could not be reached in time: 503, worth retrying."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(503, message, retry_after=retry_after, retryable=True)


def _record(key: VirtualKey) -> str:
    return json.dumps(
        {
            "id": key.id,
            "name": key.name,
            "hash": key.key_hash,
            "models": list(key.models),
            "rpm": key.rpm,
            "tpm": key.tpm,
            "budget": key.budget,
            "expires_at": key.expires_at,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        },
        sort_keys=True,
    )


def _key(raw: str | bytes, spent_nano: Any = None) -> VirtualKey:
    d = json.loads(raw)
    spent = int(spent_nano) / _NANO if spent_nano is not None else 0.0
    return VirtualKey(
        d["id"], d["name"], d["hash"], tuple(d["models"]), d["rpm"], d["tpm"], d["budget"], spent,
        d["expires_at"], d["created_at"], d["revoked_at"],
    )  # fmt: skip


def _nano(usd: float) -> int:
    """USD as integer nano-USD, rounded up (a reservation never falls short by rounding)."""
    return math.ceil(usd * _NANO - 1e-6) if usd > 0 else 0


class RedisState:
    """See the module docstring. ``client`` is a ready ``redis.asyncio.Redis`` (tests); else one is built from
    ``url`` with bounded timeouts, a bounded connection pool and no client-side retries."""

    name = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "infermux:gw",
        timeout: float = 0.5,
        fail_open: bool = False,
        reservation_ttl: float = 660.0,
        wall_clock: Callable[[], float] = time.time,
        clock: Clock = SYSTEM_CLOCK,
        max_connections: int = 64,
        client: Any = None,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError("RedisState needs exactly one of url= or client=")
        self.prefix = prefix
        self.timeout = timeout
        self.fail_open = fail_open
        self.reservation_ttl = reservation_ttl
        self.wall_clock = wall_clock
        self.clock = clock  # monotonic: the age of cached key records
        self._owns = client is None
        self._r = client if client is not None else self._connect(str(url), timeout, max_connections)
        self._lookup = self._r.register_script(_LOOKUP)
        self._admit = self._r.register_script(_ADMIT)
        self._settle = self._r.register_script(_SETTLE)
        self._create = self._r.register_script(_CREATE)
        self._revoke = self._r.register_script(_REVOKE)
        self._cache: dict[str, tuple[VirtualKey, float]] = {}  # sha256 -> (record, fetched at on self.clock)
        self.down_since: float | None = None  # wall time of the first failure of the current outage
        self.errors = 0  # Redis calls that failed
        self.unlimited = 0  # requests served without limits (fail-open)
        self._orphans: set[asyncio.Future[None]] = set()  # releases of admissions whose caller left
        self.orphans_unreleased = 0

    @staticmethod
    def _connect(url: str, timeout: float, max_connections: int) -> Any:
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError:  # pragma: no cover - redis ships with the test extra
            raise ConfigurationError("state = 'redis' needs redis-py: pip install 'infermux[redis]'") from None
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=2 * timeout,  # waiting for a pooled connection (all busy under a burst)
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # ------------------------------------------------------------------ bounded calls, outage bookkeeping

    async def _call(self, what: str, coro: Coroutine[Any, Any, T]) -> T:
        """Run one Redis call within the timeout; a failure is a :class:`StateUnavailableError` (logged once
        per outage)."""
        import redis.exceptions

        try:
            # the client's own timeouts bound each step; this bounds the whole call (pool wait + connect + read)
            result = await asyncio.wait_for(coro, 4 * self.timeout)
        except (redis.exceptions.RedisError, OSError, asyncio.TimeoutError) as e:
            # connection errors and timeouts, and the server refusing (READONLY, OOM...): the store is unusable
            self.errors += 1
            if self.down_since is None:
                self.down_since = self.wall_clock()
                mode = "open: known keys are served without limits" if self.fail_open else "closed: 503"
                _log.warning("gateway: Redis unreachable (%s: %s); failing %s", what, type(e).__name__, mode)
            raise StateUnavailableError(
                f"the gateway's shared key/limit store (Redis) is unreachable ({what}: {type(e).__name__}:"
                f" {e}); retry shortly"
            ) from e
        if self.down_since is not None:
            _log.warning("gateway: Redis reachable again after %.1fs", self.wall_clock() - self.down_since)
            self.down_since = None
        return result

    async def check(self) -> None:
        """One PING (a :class:`StateUnavailableError` when Redis cannot be reached): ``infermux serve`` says at
        start whether its Redis answers."""
        await self._call("ping", self._r.ping())

    @property
    def reachable(self) -> bool:
        """As of the last Redis call (no call is made here)."""
        return self.down_since is None

    # ------------------------------------------------------------------ keys

    async def lookup(self, secret: str) -> VirtualKey | None:
        digest = hash_key(secret)
        hit = self._cache.get(digest)
        now = self.clock.now()
        if hit is not None and now - hit[1] < KEY_CACHE_TTL:
            return hit[0]
        try:
            raw = await self._call("key lookup", self._lookup(keys=[self._k("h", digest)], args=[self._k("k", "")]))
        except StateUnavailableError:
            if self.fail_open and hit is not None:
                return hit[0]  # known to this replica: served (a revocation during the outage is not seen)
            raise
        if raw is None:
            self._cache.pop(digest, None)
            return None
        key = _key(raw)
        if key.revoked_at is not None or key.key_hash != digest:
            self._cache.pop(digest, None)
            return None
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[digest] = (key, now)
        return key

    async def is_live(self, key: VirtualKey) -> bool:
        """One ``EXISTS`` (fail-open with Redis down: the cached key counts as live)."""
        try:
            live = bool(await self._call("key check", self._r.exists(self._k("h", key.key_hash))))
        except StateUnavailableError:
            if self.fail_open:
                return True
            raise
        if not live:
            self._cache.pop(key.key_hash, None)
        return live

    async def create(self, *, actor: str, **settings: Any) -> tuple[str, VirtualKey]:
        secret, key = new_key(now=self.wall_clock(), **settings)
        detail = {k: v for k, v in key.public().items() if k != "id"}
        entry = self._entry("create", key.id, actor, detail)
        keys = [self._k("k", key.id), self._k("h", key.key_hash), self._k("keys"), *self._audit_keys()]
        args = [_record(key), key.id, key.created_at, entry, _AUDIT_MAX]
        ok = await self._call("create key", self._create(keys=keys, args=args))
        if not ok:  # pragma: no cover - a 256-bit collision
            raise GatewayError(500, "key creation collided with an existing key; try again", retryable=True)
        return secret, key

    async def revoke(self, key_id: str, *, actor: str) -> VirtualKey | None:
        for _ in range(3):  # compare-and-set against a concurrent revocation
            old = await self._call("revoke key", self._r.get(self._k("k", key_id)))
            if old is None:
                return None
            key = _key(old)
            if key.revoked_at is not None:
                return None
            revoked = replace(key, revoked_at=self.wall_clock())
            keys = [self._k("k", key_id), self._k("h", key.key_hash), *self._audit_keys()]
            args = [_s(old), _record(revoked), self._entry("revoke", key_id, actor, {}), _AUDIT_MAX]
            if await self._call("revoke key", self._revoke(keys=keys, args=args)):
                self._cache.pop(key.key_hash, None)
                return revoked
        return None

    async def get(self, key_id: str) -> VirtualKey | None:
        raw, spent = await self._call(
            "key read", self._r.mget([self._k("k", key_id), self._k("spent", key_id)])
        )  # fmt: skip
        return None if raw is None else _key(raw, spent)

    async def list_keys(self, *, include_revoked: bool = False) -> list[VirtualKey]:
        ids = [_s(i) for i in await self._call("list keys", self._r.zrange(self._k("keys"), 0, -1))]
        if not ids:
            return []
        names = [self._k("k", i) for i in ids] + [self._k("spent", i) for i in ids]
        vals = await self._call("list keys", self._r.mget(names))
        pairs = zip(vals[: len(ids)], vals[len(ids) :], strict=True)
        out = [_key(raw, spent) for raw, spent in pairs if raw is not None]
        return [k for k in out if include_revoked or k.revoked_at is None]

    def _audit_keys(self) -> list[str]:
        return [self._k("audit", "seq"), self._k("audit")]

    def _entry(self, action: str, key_id: str | None, actor: str, detail: dict[str, Any]) -> str:
        return json.dumps(
            {"at": self.wall_clock(), "action": action, "key_id": key_id, "actor": actor, "detail": detail},
            default=str,
        )

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self._call("audit log", self._r.lrange(self._k("audit"), 0, limit - 1))
        out = []
        for row in rows:
            seq, _, body = _s(row).partition(" ")
            out.append({"seq": int(seq), **json.loads(body)})
        return out

    # ------------------------------------------------------------------ limits and budgets

    async def reserve(self, key: VirtualKey, tokens: int, cost: float) -> Admission | Refusal:
        task = asyncio.ensure_future(self._reserve(key, tokens, cost))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # the caller left while the script was on its way: an admission it answers with is released at once
            task.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, task: asyncio.Future[Admission | Refusal]) -> None:
        if task.cancelled() or task.exception() is not None:  # an outage (already logged) or a revoked key
            return
        adm = task.result()
        if isinstance(adm, Admission) and not adm.unlimited:
            release = asyncio.ensure_future(self.settle(adm, 0, 0.0))
            self._orphans.add(release)
            release.add_done_callback(self._orphan_released)

    def _orphan_released(self, task: asyncio.Future[None]) -> None:
        self._orphans.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.orphans_unreleased += 1  # its reservation expires (reservation_ttl)

    async def _reserve(self, key: VirtualKey, tokens: int, cost: float) -> Admission | Refusal:
        now_ms = int(self.wall_clock() * 1000)
        rid = secrets.token_hex(8)
        cost_n = _nano(cost)
        budget_n = -1 if key.budget is None else round(key.budget * _NANO)
        k = key.id
        keys = [self._k("h", key.key_hash), self._k("rpm", k), self._k("tpm", k), self._k("spent", k),
                self._k("held", k), self._k("rz", k), self._k("ra", k)]  # fmt: skip
        args = [now_ms, key.rpm or 0, key.tpm or 0, tokens, cost_n, budget_n, rid,
                now_ms + int(self.reservation_ttl * 1000)]  # fmt: skip
        try:
            res = await self._call("admission", self._admit(keys=keys, args=args))
        except StateUnavailableError:
            if not self.fail_open:
                raise
            self.unlimited += 1
            return Admission(k, 0, cost, unlimited=True)
        verdict = _s(res[0])
        if verdict == "revoked":
            self._cache.pop(key.key_hash, None)
            raise GatewayError(401, "invalid API key (unknown or revoked)")
        if verdict == "budget":
            return Refusal("budget", committed=float(_s(res[1])) / _NANO)  # Lua may write 1e+15
        if verdict == "rate":
            return Refusal("rate", retry_after=float(_s(res[1])) / 1000)
        return Admission(
            k, tokens if key.tpm else 0, cost, reservation=rid if key.budget is not None else None, tpm=key.tpm
        )

    async def settle(self, adm: Admission, used_tokens: int | None, cost: float | None) -> None:
        if adm.unlimited:
            return
        k = adm.key_id
        keys = [self._k("tpm", k), self._k("spent", k), self._k("held", k), self._k("rz", k), self._k("ra", k)]
        args = [int(self.wall_clock() * 1000), adm.tpm or 0, adm.reserved_tokens,
                -1 if used_tokens is None else used_tokens, adm.reservation or "", _nano(adm.cost),
                -1 if cost is None else _nano(cost)]  # fmt: skip
        await self._call("settlement", self._settle(keys=keys, args=args))

    async def aclose(self) -> None:
        if self._orphans:  # each is one bounded call
            await asyncio.wait(set(self._orphans), timeout=5 * self.timeout)
        if self._owns:
            await self._r.aclose()
            await self._r.connection_pool.disconnect()  # a pool handed to Redis() is not closed by it


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
