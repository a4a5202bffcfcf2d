"""Virtual keys: created and revoked through the admin API, stored hashed in SQLite, with an audit log.

A key is shown once, when it is created (``sk-imx-...``); the database keeps its SHA-256 only (the keys are
256-bit random, so a fast hash is enough: there is nothing to brute-force). Lookups go through an in-memory
index of the hashes (loaded at start, updated on every change), and every comparison of secrets is
constant-time (:func:`hmac.compare_digest`). The audit log records who did what to which key ID, never a
secret. One process owns the file; several replicas share keys through Redis instead (:mod:`.redis_state`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigurationError

__all__ = ["KEY_PREFIX", "KeyStore", "VirtualKey", "hash_key", "new_key", "secret_equal"]

KEY_PREFIX = "sk-imx-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    models TEXT NOT NULL,
    rpm INTEGER,
    tpm INTEGER,
    budget REAL,
    spent REAL NOT NULL DEFAULT 0,
    expires_at REAL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    key_id TEXT,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


def _sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


_cached_sha256_hex = functools.lru_cache(maxsize=4096)(_sha256_hex)
#: secrets longer than this are hashed each time, not remembered (bounds the cache: 4,096 x 256 characters)
_CACHED_KEY_CHARS = 256


def hash_key(secret: str) -> str:
    """The SHA-256 (hex) a key is stored and looked up by. The last 4,096 secrets presented (of at most 256
    characters: longer ones are hashed each time, so the cache holds about 1 MB at most) are remembered with
    their hash (a request hashes its key twice: against the master key's hash and for the key index): only the
    hash is cached, never whether a key is live, so a revocation is seen by the next request as before."""
    if len(secret) <= _CACHED_KEY_CHARS:
        return _cached_sha256_hex(secret)
    return _sha256_hex(secret)


def secret_equal(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets (compared as hashes, so lengths leak nothing either)."""
    return hmac.compare_digest(hash_key(given), hash_key(expected))


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A virtual key as stored (no secret): limits are ``None`` when unlimited; ``models`` empty = any model."""

    id: str
    name: str
    key_hash: str = field(repr=False)
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    budget: float | None = None
    spent: float = 0.0
    expires_at: float | None = None
    created_at: float = 0.0
    revoked_at: float | None = None

    def allows(self, model: str | None) -> bool:
        return not self.models or (model is not None and model in self.models)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def public(self) -> dict[str, Any]:
        """What the admin API shows (never the hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "models": list(self.models),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "budget": self.budget,
            "spent": round(self.spent, 9),
            "expires_at": self.expires_at,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _opt_positive(name: str, value: Any, kind: type) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) or value <= 0:
        what = "a number" if kind is float else "an integer"
        raise ConfigurationError(f"key setting {name!r} must be {what} > 0 or null, got {value!r}")
    return kind(value)


def _models(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(m, str) and m for m in value):
        raise ConfigurationError("key setting 'models' must be a list of model names (empty: any model)")
    return tuple(value)


def new_key(
    *,
    now: float,
    name: str = "",
    models: Iterable[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    budget: float | None = None,
    expires_at: float | None = None,
) -> tuple[str, VirtualKey]:
    """A new random secret and its validated record (:class:`ConfigurationError` naming a bad setting)."""
    if not isinstance(name, str) or len(name) > 200:
        raise ConfigurationError("key setting 'name' must be a string of at most 200 characters")
    if expires_at is not None:
        expires_at = _opt_positive("expires_at", expires_at, float)
        if expires_at is not None and expires_at <= now:
            raise ConfigurationError("key setting 'expires_at' must be in the future (Unix time in seconds)")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = VirtualKey(
        id="vk_" + secrets.token_hex(8),
        name=name,
        key_hash=hash_key(secret),
        models=_models(list(models) if models is not None else None),
        rpm=_opt_positive("rpm", rpm, int),
        tpm=_opt_positive("tpm", tpm, int),
        budget=_opt_positive("budget", budget, float),
        expires_at=expires_at,
        created_at=now,
    )
    return secret, key


class KeyStore:
    """SQLite-backed virtual keys (``path`` may be ``":memory:"``) with an in-memory index by hash."""

    def __init__(self, path: str = ":memory:", *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise ConfigurationError(f"cannot open the gateway key database {path!r}: {e}") from e
        self._by_hash: dict[str, VirtualKey] = {}
        self._hash_of: dict[str, str] = {}  # key id -> hash, for the live keys
        for row in self._db.execute("SELECT * FROM keys WHERE revoked_at IS NULL"):
            key = self._row(row)
            self._by_hash[key.key_hash] = key
            self._hash_of[key.id] = key.key_hash

    @staticmethod
    def _row(row: Sequence[Any]) -> VirtualKey:
        kid, khash, name, models, rpm, tpm, budget, spent, expires, created, revoked = row
        return VirtualKey(
            kid, name, khash, tuple(json.loads(models)), rpm, tpm, budget, spent, expires, created, revoked
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ admin

    def create(
        self,
        *,
        name: str = "",
        models: Iterable[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget: float | None = None,
        expires_at: float | None = None,
        actor: str = "admin",
    ) -> tuple[str, VirtualKey]:
        """A new key: ``(secret, record)``; the secret is not kept anywhere."""
        secret, key = new_key(
            now=self._clock(), name=name, models=models, rpm=rpm, tpm=tpm, budget=budget, expires_at=expires_at
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO keys VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (key.id, key.key_hash, key.name, json.dumps(list(key.models)), key.rpm, key.tpm, key.budget,
                 0.0, key.expires_at, key.created_at, None),
            )  # fmt: skip
            self._by_hash[key.key_hash] = key
            self._hash_of[key.id] = key.key_hash
            self._audit("create", key.id, actor, {k: v for k, v in key.public().items() if k != "id"})
        return secret, key

    def revoke(self, key_id: str, *, actor: str = "admin") -> VirtualKey | None:
        """Revoke a key by ID (``None`` when there is no such live key)."""
        with self._lock:
            h = self._hash_of.get(key_id)
            if h is None:
                return None
            live = self._by_hash[h]
            revoked = replace(live, revoked_at=self._clock())
            self._db.execute("UPDATE keys SET revoked_at = ? WHERE id = ?", (revoked.revoked_at, key_id))
            del self._by_hash[live.key_hash], self._hash_of[key_id]
            self._audit("revoke", key_id, actor, {})
        return revoked

    def all(self, *, include_revoked: bool = False) -> list[VirtualKey]:
        sql = "SELECT * FROM keys" + ("" if include_revoked else " WHERE revoked_at IS NULL") + " ORDER BY created_at"
        with self._lock:
            return [self._row(r) for r in self._db.execute(sql)]

    def get(self, key_id: str) -> VirtualKey | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else self._row(row)

    # ------------------------------------------------------------------ requests

    def lookup(self, secret: str) -> VirtualKey | None:
        """The live key for ``secret`` (revoked and unknown keys: ``None``), compared in constant time."""
        digest = hash_key(secret)
        key = self._by_hash.get(digest)
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            return None
        return key

    def add_spend(self, key_id: str, cost: float) -> None:
        """Add a settled request's cost to the key's spend (persisted at once)."""
        if cost <= 0:
            return
        with self._lock:
            self._db.execute("UPDATE keys SET spent = spent + ? WHERE id = ?", (cost, key_id))
            h = self._hash_of.get(key_id)
            if h is not None:
                self._by_hash[h] = replace(self._by_hash[h], spent=self._by_hash[h].spent + cost)

    # ------------------------------------------------------------------ audit

    def audit(self, action: str, key_id: str | None, actor: str, detail: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self._audit(action, key_id, actor, detail or {})

    def _audit(self, action: str, key_id: str | None, actor: str, detail: Mapping[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO audit (at, action, key_id, actor, detail) VALUES (?,?,?,?,?)",
            (self._clock(), action, key_id, actor, json.dumps(dict(detail), default=str)),
        )

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, action, key_id, actor, detail FROM audit ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            {"seq": s, "at": at, "action": a, "key_id": k, "actor": actor, "detail": json.loads(d)}
            for s, at, a, k, actor, d in rows
        ]
