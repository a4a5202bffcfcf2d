"""A persistent, embedded cache store on SQLite (stdlib ``sqlite3``, WAL mode).

Entries live in one table (namespace, key, JSON answer, question, float32 vector, expiry, an LRU tick).
Exact lookups are one indexed ``SELECT``; semantic lookups use the same in-process vector index as the
memory store, loaded from the table the first time a partition is searched and kept in step by this
store's writes. One process owns a database file (several processes would each miss the others' new
semantic entries until restart; exact lookups stay correct). Calls are short synchronous SQLite
statements on the event loop (sub-millisecond on a local file).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .index import numpy
from .store import CacheEntry, PartitionIndexes

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    ns TEXT NOT NULL, key TEXT NOT NULL, partition TEXT NOT NULL, question TEXT NOT NULL,
    vector BLOB, response TEXT NOT NULL, created REAL NOT NULL, expires REAL, used INTEGER NOT NULL,
    PRIMARY KEY (ns, key)
);
CREATE INDEX IF NOT EXISTS entries_used ON entries (used);
CREATE INDEX IF NOT EXISTS entries_part ON entries (ns, partition);
"""


def _blob(vector: tuple[float, ...] | None) -> bytes | None:
    if vector is None:
        return None
    np = numpy()
    return bytes(np.asarray(vector, dtype="<f4").tobytes())


def _unblob(raw: bytes | None) -> tuple[float, ...] | None:
    if raw is None:
        return None
    np = numpy()
    return tuple(float(x) for x in np.frombuffer(raw, dtype="<f4"))


class SQLiteStore:
    """See the module docstring. ``path`` may be ``":memory:"`` (tests)."""

    def __init__(self, path: str | Path, *, max_entries: int = 100_000) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"SQLiteStore.max_entries must be an int >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise ConfigurationError(f"cannot open the SQLite cache at {str(path)!r}: {e}") from None
        self._lock = threading.Lock()  # the sync Client runs the engine on another thread
        row = self._db.execute("SELECT COALESCE(MAX(used), 0) FROM entries").fetchone()
        self._tick = int(row[0])
        self._indexes = PartitionIndexes()
        self._loaded: set[tuple[str, str]] = set()

    def _next(self) -> int:
        self._tick += 1
        return self._tick

    def _entry(self, row: Sequence[Any]) -> CacheEntry:
        ns, key, part, question, vec, response, created, expires = row
        return CacheEntry(
            namespace=ns,
            key=key,
            response=json.loads(response),
            created_at=created,
            expires_at=expires,
            partition=part,
            question=question,
            vector=_unblob(vec),
        )

    def _delete_rows(self, where: str, args: Sequence[Any]) -> int:
        rows = self._db.execute(f"SELECT ns, key, partition FROM entries WHERE {where}", args).fetchall()
        for ns, key, part in rows:
            self._indexes.remove(ns, part, key)
        self._db.execute(f"DELETE FROM entries WHERE {where}", args)
        return len(rows)

    _COLS = "ns, key, partition, question, vector, response, created, expires"

    async def get(self, namespace: str, key: str, now: float) -> CacheEntry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._COLS} FROM entries WHERE ns = ? AND key = ?", (namespace, key)
            ).fetchone()
            if row is None:
                return None
            e = self._entry(row)
            if e.expired(now):
                self._delete_rows("ns = ? AND key = ?", (namespace, key))
                return None
            self._db.execute("UPDATE entries SET used = ? WHERE ns = ? AND key = ?", (self._next(), namespace, key))
            return e

    async def put(self, entry: CacheEntry, now: float) -> int:
        with self._lock:
            self._load(entry.namespace, entry.partition)
            self._indexes.remove(entry.namespace, entry.partition, entry.key)
            self._db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.namespace,
                    entry.key,
                    entry.partition,
                    entry.question,
                    _blob(entry.vector),
                    json.dumps(entry.response, separators=(",", ":")),
                    entry.created_at,
                    entry.expires_at,
                    self._next(),
                ),
            )
            self._indexes.add(entry)
            over = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] - self.max_entries
            if over <= 0:
                return 0
            return self._delete_rows("rowid IN (SELECT rowid FROM entries ORDER BY used LIMIT ?)", (over,))

    def _load(self, namespace: str, partition: str) -> None:
        if not partition or (namespace, partition) in self._loaded:
            return
        self._loaded.add((namespace, partition))
        rows = self._db.execute(
            f"SELECT {self._COLS} FROM entries WHERE ns = ? AND partition = ? AND vector IS NOT NULL",
            (namespace, partition),
        ).fetchall()
        for row in rows:
            self._indexes.add(self._entry(row))

    async def nearest(
        self, namespace: str, partition: str, vector: Sequence[float], *, k: int, min_score: float, now: float
    ) -> list[tuple[float, CacheEntry]]:
        with self._lock:
            self._load(namespace, partition)
            hits = self._indexes.search(namespace, partition, vector, k, min_score)
        out = []
        for score, key in hits:
            e = await self.get(namespace, key, now)
            if e is not None:
                out.append((score, e))
        return out

    async def delete(self, namespace: str, key: str) -> bool:
        with self._lock:
            return self._delete_rows("ns = ? AND key = ?", (namespace, key)) > 0

    async def clear(self, namespace: str | None = None) -> int:
        with self._lock:
            self._loaded = {p for p in self._loaded if namespace is not None and p[0] != namespace}
            self._indexes.drop_namespace(namespace)
            if namespace is None:
                n = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                self._db.execute("DELETE FROM entries")
                return int(n)
            n = self._db.execute("SELECT COUNT(*) FROM entries WHERE ns = ?", (namespace,)).fetchone()[0]
            self._db.execute("DELETE FROM entries WHERE ns = ?", (namespace,))
            return int(n)

    async def count(self, namespace: str | None = None) -> int:
        with self._lock:
            if namespace is None:
                return int(self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM entries WHERE ns = ?", (namespace,)).fetchone()[0])

    async def aclose(self) -> None:
        with self._lock:
            self._db.close()
