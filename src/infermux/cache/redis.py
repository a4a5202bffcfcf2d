"""A cache store on Redis (or Valkey), shared by every replica of an application. ``pip install 'infermux[redis]'``.

Plain Redis has no vector search (Debian's Redis 7 has none), so the lookup is split:

- **exact**: one ``GET`` of ``{prefix}:e:{namespace}:{key}`` (the entry as JSON);
- **semantic**: every replica keeps an in-process vector index (the memory store's) mirrored from an
  append-only Redis stream ``{prefix}:log`` in which every write records ``put`` (with the float32 vector)
  or ``del``. Before a semantic search the replica reads the stream records it has not seen yet (one
  ``XRANGE``, usually empty), searches locally, then fetches the few candidate entries with one ``MGET``.

So a semantic lookup costs two round trips whatever the number of entries, and an exact one costs one.
LRU is kept in a sorted set (``{prefix}:lru``, scored by the time of last use on the cache's clock):
beyond ``max_entries`` the least recently used entries are deleted (and logged for the mirrors). Expiry is
checked against the cache's clock on every read; Redis' own key expiry (``PX``) is set as well, so expired
entries do not linger. The stream is capped at ``log_max`` records (approximate trim): a replica started
after older records were trimmed cannot find those entries semantically (exact hits still work). Redis
failures become
:class:`CacheStoreError` (the cache then counts them and the call goes on without the cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import APIConnectionError, ConfigurationError
from .index import numpy
from .store import CacheEntry, PartitionIndexes

__all__ = ["CacheStoreError", "RedisStore"]

_SEP = "\x1f"


class CacheStoreError(APIConnectionError):
    """The cache store (Redis) failed or could not be reached."""


def _redis() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError:  # pragma: no cover - redis ships with the test extra
        raise ConfigurationError("RedisStore needs redis-py: pip install 'infermux[redis]'") from None
    return aioredis


class RedisStore:
    """See the module docstring. ``url`` like ``redis://127.0.0.1:6379/0``, or a ready ``redis.asyncio`` client."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "infermux:cache",
        max_entries: int = 100_000,
        log_max: int = 1_000_000,
        timeout: float = 2.0,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError("RedisStore needs exactly one of url= or client=")
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"RedisStore.max_entries must be an int >= 1, got {max_entries!r}")
        self._r = (
            client
            if client is not None
            else _redis().from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        )
        self._owns = client is None
        self.prefix = prefix
        self.max_entries = max_entries
        self.log_max = max(log_max, 2 * max_entries)
        self._mirror = PartitionIndexes()
        self._last_id = "0-0"
        self._log = f"{prefix}:log"
        self._lru = f"{prefix}:lru"

    def _ekey(self, namespace: str, key: str) -> str:
        return f"{self.prefix}:e:{namespace}:{key}"

    async def _do(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except Exception as e:
            import redis.exceptions

            if isinstance(e, redis.exceptions.RedisError | OSError):
                raise CacheStoreError(f"redis cache store: {what} failed: {e}", retryable=True) from e
            raise

    # ------------------------------------------------------------------ protocol

    async def get(self, namespace: str, key: str, now: float) -> CacheEntry | None:
        raw = await self._do("GET", self._r.get(self._ekey(namespace, key)))
        return await self._live(raw, now)

    async def _live(self, raw: bytes | None, now: float) -> CacheEntry | None:
        if raw is None:
            return None
        e = CacheEntry.from_json(raw)
        if e.expired(now):
            await self._remove([(e.namespace, e.key, e.partition)])
            return None
        await self._do("ZADD", self._r.zadd(self._lru, {f"{e.namespace}{_SEP}{e.key}{_SEP}{e.partition}": now}))
        return e

    async def put(self, entry: CacheEntry, now: float) -> int:
        np = numpy()
        vec = b"" if entry.vector is None else np.asarray(entry.vector, dtype="<f4").tobytes()
        ttl_ms = None if entry.expires_at is None else max(1, int((entry.expires_at - now) * 1000))
        member = f"{entry.namespace}{_SEP}{entry.key}{_SEP}{entry.partition}"
        pipe = self._r.pipeline(transaction=True)
        pipe.set(self._ekey(entry.namespace, entry.key), entry.to_json(), px=ttl_ms)
        pipe.zadd(self._lru, {member: now})
        fields = {"op": "put", "ns": entry.namespace, "key": entry.key, "part": entry.partition, "vec": vec}
        pipe.xadd(self._log, fields, maxlen=self.log_max, approximate=True)
        pipe.zcard(self._lru)
        res = await self._do("PUT", pipe.execute())
        over = int(res[-1]) - self.max_entries
        if over <= 0:
            return 0
        popped = await self._do("ZPOPMIN", self._r.zpopmin(self._lru, over))
        victims = []
        for m, _score in popped:
            ns, key, part = (m.decode() if isinstance(m, bytes) else m).split(_SEP)
            victims.append((ns, key, part))
        await self._remove(victims)
        return len(victims)

    async def _remove(self, items: Sequence[tuple[str, str, str]]) -> int:
        if not items:
            return 0
        pipe = self._r.pipeline(transaction=True)
        for ns, key, part in items:
            pipe.delete(self._ekey(ns, key))
            pipe.zrem(self._lru, f"{ns}{_SEP}{key}{_SEP}{part}")
            pipe.xadd(
                self._log, {"op": "del", "ns": ns, "key": key, "part": part}, maxlen=self.log_max, approximate=True
            )
        res = await self._do("DELETE", pipe.execute())
        return sum(int(r) for r in res[0::3])

    async def _sync(self) -> None:
        """Apply the stream records this replica has not seen to its local vector mirror."""
        while True:
            recs = await self._do("XRANGE", self._r.xrange(self._log, min=f"({self._last_id}", count=5000))
            for rid, f in recs:
                self._last_id = rid.decode() if isinstance(rid, bytes) else rid
                fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in f.items()}
                ns, key, part = (fields[n].decode() for n in ("ns", "key", "part"))
                op = fields["op"].decode()
                if op == "put" and part and fields.get("vec"):
                    np = numpy()
                    vec = np.frombuffer(fields["vec"], dtype="<f4")
                    self._mirror.add(CacheEntry(ns, key, {}, 0.0, partition=part, vector=tuple(vec.tolist())))
                elif op == "del":
                    self._mirror.remove(ns, part, key)
                elif op == "clear":
                    self._mirror.drop_namespace(ns or None)
            if len(recs) < 5000:
                return

    async def nearest(
        self, namespace: str, partition: str, vector: Sequence[float], *, k: int, min_score: float, now: float
    ) -> list[tuple[float, CacheEntry]]:
        await self._sync()
        hits = self._mirror.search(namespace, partition, vector, k, min_score)
        if not hits:
            return []
        raws = await self._do("MGET", self._r.mget([self._ekey(namespace, key) for _, key in hits]))
        out = []
        for (score, key), raw in zip(hits, raws, strict=True):
            e = await self._live(raw, now)
            if e is None:
                self._mirror.remove(namespace, partition, key)
            else:
                out.append((score, e))
        return out

    async def delete(self, namespace: str, key: str) -> bool:
        raw = await self._do("GET", self._r.get(self._ekey(namespace, key)))
        if raw is None:
            return False
        e = CacheEntry.from_json(raw)
        return await self._remove([(namespace, key, e.partition)]) > 0

    async def _members(self, namespace: str | None) -> list[tuple[str, str, str]]:
        out = []
        async for m in self._r.zscan_iter(self._lru, count=1000):
            ns, key, part = (m[0].decode() if isinstance(m[0], bytes) else m[0]).split(_SEP)
            if namespace is None or ns == namespace:
                out.append((ns, key, part))
        return out

    async def clear(self, namespace: str | None = None) -> int:
        items = await self._do("ZSCAN", self._members(namespace))
        n = 0
        for i in range(0, len(items), 500):
            n += await self._remove(items[i : i + 500])
        await self._do("XADD", self._r.xadd(self._log, {"op": "clear", "ns": namespace or "", "key": "", "part": ""}))
        return n

    async def count(self, namespace: str | None = None) -> int:
        if namespace is None:
            return int(await self._do("ZCARD", self._r.zcard(self._lru)))
        return len(await self._do("ZSCAN", self._members(namespace)))

    async def aclose(self) -> None:
        if self._owns:
            await self._r.aclose()
