"""Response cache: exact and semantic lookups with a verification step, per-tenant namespaces, TTL, LRU.

Use it through the client: ``AsyncClient(endpoints, cache=CacheConfig(semantic=SemanticConfig(endpoint="e5")))``.
Stores: :class:`MemoryStore` (default), :class:`~infermux.cache.sqlite.SQLiteStore` (persistent, embedded)
and :class:`~infermux.cache.redis.RedisStore` (shared by replicas; ``pip install 'infermux[redis]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core import CacheConfig, CachePlan, ResponseCache, SemanticConfig, replay
from .store import CacheEntry, CacheStore, MemoryStore
from .verify import Verdict, verify

if TYPE_CHECKING:  # pragma: no cover
    from .redis import RedisStore
    from .sqlite import SQLiteStore

__all__ = [
    "CacheConfig",
    "CacheEntry",
    "CachePlan",
    "CacheStore",
    "MemoryStore",
    "RedisStore",
    "ResponseCache",
    "SQLiteStore",
    "SemanticConfig",
    "Verdict",
    "replay",
    "verify",
]


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":
        from .sqlite import SQLiteStore

        return SQLiteStore
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(name)
