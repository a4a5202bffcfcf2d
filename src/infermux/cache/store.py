"""Cache entries and the stores that keep them: the :class:`CacheStore` protocol and :class:`MemoryStore`.

Every store keeps entries per namespace (a tenant never reads another's), expires them at ``expires_at``
(on the cache's injectable clock: ``now`` is passed in, stores never read a clock), evicts the least
recently used beyond ``max_entries``, and answers two lookups: by exact key, and the nearest stored
questions of one semantic partition (:meth:`CacheStore.nearest`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..errors import ConfigurationError
from .index import VectorIndex

__all__ = ["CacheEntry", "CacheStore", "MemoryStore", "PartitionIndexes"]


@dataclass(slots=True)
class CacheEntry:
    """One cached answer. ``response`` is plain JSON data (see :mod:`infermux.cache.core`); ``question`` and
    ``vector`` are set for semantic entries (``partition`` non-empty)."""

    namespace: str
    key: str
    response: dict[str, Any]
    created_at: float
    expires_at: float | None = None
    partition: str = ""
    question: str = ""
    vector: tuple[float, ...] | None = field(default=None, repr=False)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> str:
        return json.dumps(
            {
                "ns": self.namespace,
                "key": self.key,
                "response": self.response,
                "created": self.created_at,
                "expires": self.expires_at,
                "partition": self.partition,
                "question": self.question,
                "vector": self.vector,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> CacheEntry:
        d = json.loads(text)
        vec = d.get("vector")
        return cls(
            namespace=d["ns"],
            key=d["key"],
            response=d["response"],
            created_at=float(d["created"]),
            expires_at=None if d.get("expires") is None else float(d["expires"]),
            partition=d.get("partition") or "",
            question=d.get("question") or "",
            vector=None if vec is None else tuple(float(x) for x in vec),
        )


class CacheStore(Protocol):
    """Where cache entries live. All methods are coroutines (a store may do I/O); ``now`` is the cache's clock."""

    async def get(self, namespace: str, key: str, now: float) -> CacheEntry | None:
        """The live entry under ``key`` (an expired one is dropped); a hit counts as a use for LRU."""
        ...

    async def put(self, entry: CacheEntry, now: float) -> int:
        """Store (or replace) ``entry``; returns how many entries were evicted to make room."""
        ...

    async def nearest(
        self, namespace: str, partition: str, vector: Sequence[float], *, k: int, min_score: float, now: float
    ) -> list[tuple[float, CacheEntry]]:
        """Up to ``k`` live entries of ``partition`` whose question vector has cosine >= ``min_score``."""
        ...

    async def delete(self, namespace: str, key: str) -> bool: ...

    async def clear(self, namespace: str | None = None) -> int:
        """Drop every entry of ``namespace`` (all namespaces when ``None``); returns how many."""
        ...

    async def count(self, namespace: str | None = None) -> int: ...

    async def aclose(self) -> None: ...


class PartitionIndexes:
    """One :class:`VectorIndex` per ``(namespace, partition)``, created on first use (shared by the stores
    that keep their vectors in process: memory, SQLite, and the Redis store's local mirror)."""

    def __init__(self, *, list_size: int = 512, nprobe: int = 8) -> None:
        self._by_part: dict[tuple[str, str], VectorIndex] = {}
        self._list_size = list_size
        self._nprobe = nprobe

    def add(self, entry: CacheEntry) -> None:
        if not entry.partition or entry.vector is None:
            return
        part = (entry.namespace, entry.partition)
        idx = self._by_part.get(part)
        if idx is None:
            idx = self._by_part[part] = VectorIndex(len(entry.vector), list_size=self._list_size, nprobe=self._nprobe)
        idx.add(entry.key, entry.vector)

    def remove(self, namespace: str, partition: str, key: str) -> None:
        idx = self._by_part.get((namespace, partition))
        if idx is not None:
            idx.remove(key)
            if not len(idx):
                del self._by_part[(namespace, partition)]

    def search(
        self, namespace: str, partition: str, vector: Sequence[float], k: int, min_score: float
    ) -> list[tuple[float, str]]:
        idx = self._by_part.get((namespace, partition))
        if idx is None or len(vector) != idx.dim:
            return []
        return idx.search(vector, k, min_score)

    def drop_namespace(self, namespace: str | None) -> None:
        for part in [p for p in self._by_part if namespace is None or p[0] == namespace]:
            del self._by_part[part]


class MemoryStore:
    """The default store: a dict in LRU order plus in-process vector indexes. ``max_entries`` bounds all
    namespaces together (the least recently used entry goes first)."""

    def __init__(self, max_entries: int = 10_000, *, list_size: int = 512, nprobe: int = 8) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"MemoryStore.max_entries must be an int >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], CacheEntry] = OrderedDict()
        self._indexes = PartitionIndexes(list_size=list_size, nprobe=nprobe)

    def _drop(self, slot: tuple[str, str]) -> None:
        e = self._entries.pop(slot, None)
        if e is not None:
            self._indexes.remove(e.namespace, e.partition, e.key)

    async def get(self, namespace: str, key: str, now: float) -> CacheEntry | None:
        return self.get_now(namespace, key, now)

    def get_now(self, namespace: str, key: str, now: float) -> CacheEntry | None:
        slot = (namespace, key)
        e = self._entries.get(slot)
        if e is None:
            return None
        if e.expired(now):
            self._drop(slot)
            return None
        self._entries.move_to_end(slot)
        return e

    async def put(self, entry: CacheEntry, now: float) -> int:
        return self.put_now(entry, now)

    def put_now(self, entry: CacheEntry, now: float) -> int:
        slot = (entry.namespace, entry.key)
        self._drop(slot)
        self._indexes.add(entry)  # the index keeps the vector (float32): the entry need not hold it as floats
        self._entries[slot] = entry if entry.vector is None else replace(entry, vector=None)
        evicted = 0
        while len(self._entries) > self.max_entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            evicted += 1
        return evicted

    async def nearest(
        self, namespace: str, partition: str, vector: Sequence[float], *, k: int, min_score: float, now: float
    ) -> list[tuple[float, CacheEntry]]:
        return self.nearest_now(namespace, partition, vector, k=k, min_score=min_score, now=now)

    def nearest_now(
        self, namespace: str, partition: str, vector: Sequence[float], *, k: int, min_score: float, now: float
    ) -> list[tuple[float, CacheEntry]]:
        out = []
        for score, key in self._indexes.search(namespace, partition, vector, k, min_score):
            e = self.get_now(namespace, key, now)
            if e is not None:
                out.append((score, e))
        return out

    async def delete(self, namespace: str, key: str) -> bool:
        present = (namespace, key) in self._entries
        self._drop((namespace, key))
        return present

    async def clear(self, namespace: str | None = None) -> int:
        slots = [s for s in self._entries if namespace is None or s[0] == namespace]
        for s in slots:
            del self._entries[s]
        self._indexes.drop_namespace(namespace)
        return len(slots)

    async def count(self, namespace: str | None = None) -> int:
        if namespace is None:
            return len(self._entries)
        return sum(1 for s in self._entries if s[0] == namespace)

    async def aclose(self) -> None:
        return None
