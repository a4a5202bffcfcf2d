"""A pool of API keys for one endpoint: rotation, 429 cool-downs and disabling of rejected keys.

Key text never leaves this module except as :attr:`KeyLease.key` (excluded from its repr): keys
are identified by labels such as ``key#2:3fa9c1`` (position plus the first 6 hex digits of the
key's SHA-256), in snapshots, errors and logs alike.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigurationError, KeyPoolExhaustedError, RateLimitError
from .clock import SYSTEM_CLOCK, Clock
from .store import StateStore

__all__ = ["KeyLease", "KeyOutcome", "KeyPool"]

KeyOutcome = Literal["success", "failure", "rate_limited", "auth_failed", "neutral"]
_OUTCOMES = ("success", "failure", "rate_limited", "auth_failed", "neutral")
DEFAULT_COOLDOWN = 1.0
MAX_COOLDOWN = 300.0
_KEYLESS_LABEL = "keyless"


@dataclass(slots=True)
class KeyLease:
    """One use of one key; hand it back with :meth:`KeyPool.release`. ``key`` is ``None`` for a keyless pool."""

    key: str | None = field(repr=False)
    label: str
    index: int
    acquired_at: float
    released: bool = False
    _pool: int = field(default=0, repr=False, compare=False)


class _KeyState:
    __slots__ = (
        "auth_failed",
        "blocked_until",
        "cooldown_until",
        "disabled",
        "disabled_reason",
        "failures",
        "grams",
        "in_flight",
        "key",
        "label",
        "rate_limited",
        "requests",
        "successes",
    )

    def __init__(self, key: str, label: str) -> None:
        self.key = key
        self.label = label
        self.grams = frozenset(key[i : i + 4] for i in range(max(0, len(key) - 3)))
        self.requests = self.successes = self.failures = self.rate_limited = self.auth_failed = 0
        self.in_flight = 0
        self.cooldown_until = 0.0
        self.blocked_until = 0.0
        self.disabled = False
        self.disabled_reason: str | None = None


def key_label(index: int, key: str) -> str:
    """The public name of the key at 0-based ``index``: ``key#N:`` plus 6 hex digits of its SHA-256."""
    return f"key#{index + 1}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:6]}"


class KeyPool:
    """Hands out API keys for an endpoint.

    ``round_robin`` rotates through usable keys; ``least_loaded`` picks the usable key with the
    fewest calls in flight (ties in round-robin order). A key that got a 429 cools down for the
    advertised delay: the other keys are preferred meanwhile, but a 429 is a statement about one request,
    so when every key is cooling the one that is ready soonest is still handed out (the endpoint's adaptive
    concurrency limit paces them). A 429 that says the key's quota is used up (``exhausted=True``: a
    ``x-ratelimit-remaining-*: 0`` header) blocks that key until the advertised time; when every key is
    blocked, :meth:`acquire` raises a local :class:`RateLimitError` (no ``status_code``) whose
    ``retry_after`` says when one is free, and the caller waits. One rejected with 401/403 is disabled for
    the life of the pool. Every
    :meth:`acquire` must be followed by one :meth:`release` of its lease (a second release is ignored).
    An empty ``keys`` makes a keyless pool: leases carry ``key=None`` and nothing is ever cooled or disabled.

    With a shared :class:`~infermux.resilience.store.StateStore` (:meth:`bind_store`), cool-downs, quota blocks
    and disabled keys are written there under ``{prefix}:{label}:cool|block|off`` (labels, never key text;
    ``extend`` semantics: the later expiry wins) and those of other pools with the same keys are adopted on the
    next lease after the store's ``version`` moved (the later expiry wins again; a key disabled elsewhere is
    disabled here). A disabled record expires after ``disabled_ttl`` seconds (default one hour).
    """

    def __init__(
        self,
        keys: Sequence[str],
        *,
        strategy: Literal["round_robin", "least_loaded"] = "round_robin",
        clock: Clock = SYSTEM_CLOCK,
        name: str = "",
    ) -> None:
        if isinstance(keys, str):
            raise ConfigurationError("KeyPool: keys must be a sequence of strings, not a single string")
        if strategy not in ("round_robin", "least_loaded"):
            raise ConfigurationError(f"KeyPool: strategy must be 'round_robin' or 'least_loaded', got {strategy!r}")
        states: list[_KeyState] = []
        seen: dict[str, int] = {}
        for i, key in enumerate(keys):
            if not isinstance(key, str) or not key.strip():
                raise ConfigurationError(f"KeyPool: key #{i + 1} is empty or not a string")
            if not key.isascii() or not key.isprintable():
                # a stray newline from a file or env var; such a key cannot be sent in a header
                raise ConfigurationError(f"KeyPool: key #{i + 1} holds a control or non-ASCII character")
            if key in seen:
                raise ConfigurationError(f"KeyPool: key #{i + 1} duplicates key #{seen[key] + 1}")
            seen[key] = i
            states.append(_KeyState(key, key_label(i, key)))
        self.strategy = strategy
        self.name = name
        self._clock = clock
        self._keys = states
        self._next = 0
        self._keyless = _KeyState("", _KEYLESS_LABEL)
        self._store: StateStore | None = None
        self._prefix = ""
        self._seen_version = -1
        self.disabled_ttl = 3600.0

    def bind_store(self, store: StateStore, prefix: str) -> None:
        """Share cool-downs, quota blocks and disabled keys through ``store`` under ``prefix``."""
        if not prefix:
            raise ConfigurationError("KeyPool.bind_store: a prefix is needed")
        self._store, self._prefix, self._seen_version = store, prefix, -1

    def _sync(self) -> None:
        """Adopt the other pools' cool-downs, blocks and disabled keys (after the shared view changed)."""
        store = self._store
        if store is None or store.version == self._seen_version:
            return
        self._seen_version = store.version
        now = self._clock.now()
        for st in self._keys:
            base = f"{self._prefix}:{st.label}"
            cool, block = store.ttl(base + ":cool"), store.ttl(base + ":block")
            if cool is not None:
                st.cooldown_until = max(st.cooldown_until, now + cool)
            if block is not None:
                st.blocked_until = max(st.blocked_until, now + block)
            if not st.disabled:
                off = store.get(base + ":off")
                if off is not None:
                    st.disabled = True
                    st.disabled_reason = f"disabled by another process: {str(off)[:160]}"

    def _share(self, st: _KeyState, kind: str, value: Any, ttl: float) -> None:
        if self._store is not None and ttl > 0:
            self._store.extend(f"{self._prefix}:{st.label}:{kind}", value, ttl)

    def __repr__(self) -> str:
        return f"KeyPool(name={self.name!r}, size={self.size}, strategy={self.strategy!r})"

    @property
    def size(self) -> int:
        return len(self._keys)

    def ready_count(self) -> int:
        """How many keys could be leased right now (neither disabled nor cooling down nor blocked)."""
        self._sync()
        now = self._clock.now()
        return sum(1 for st in self._keys if not st.disabled and max(st.cooldown_until, st.blocked_until) <= now)

    def usable_count(self) -> int:
        """How many keys may be leased now (cooling keys count: only disabled and quota-blocked keys do not)."""
        self._sync()
        now = self._clock.now()
        return sum(1 for st in self._keys if not st.disabled and st.blocked_until <= now)

    def probe_key(self) -> tuple[str | None, str]:
        """``(key, label)`` of the first key not disabled (``(None, "keyless")`` when none): what a health probe
        sends. It takes no lease: a probe is not a call."""
        for st in self._keys:
            if not st.disabled:
                return st.key, st.label
        return None, _KEYLESS_LABEL

    def ready_at(self) -> float | None:
        """Clock time at which a key may be leased again when every usable key is blocked; ``None`` otherwise."""
        if not self._keys or self.usable_count() > 0:
            return None
        return self._first_unblocked()

    def _first_unblocked(self) -> float | None:
        """When the first key that is not disabled stops being blocked (``None``: every key is disabled)."""
        blocked = [st.blocked_until for st in self._keys if not st.disabled]
        return min(blocked) if blocked else None

    def acquire(self) -> KeyLease:
        """Lease a usable key. Raises KeyPoolExhaustedError (all disabled) or a local RateLimitError (every
        usable key is blocked: quota used up; ``retry_after`` says when the first is free again)."""
        self._sync()
        now = self._clock.now()
        if not self._keys:
            st = self._keyless
            st.requests += 1
            st.in_flight += 1
            return KeyLease(None, _KEYLESS_LABEL, -1, now, _pool=id(self))
        keys = self._keys
        n = len(keys)
        first = keys[self._next]
        if self.strategy == "round_robin" and not first.disabled and first.blocked_until <= now >= first.cooldown_until:
            pick = self._next  # the next key in turn is ready (the usual case: the loop below would pick it)
        else:
            order = [(self._next + i) % n for i in range(n)]
            usable = [i for i in order if not keys[i].disabled and keys[i].blocked_until <= now]
            if not usable:
                raise self._unavailable(now)
            ready = [i for i in usable if keys[i].cooldown_until <= now]
            if not ready:  # every usable key is cooling after a 429: the one ready soonest still goes
                ready = [min(usable, key=lambda i: keys[i].cooldown_until)]
            # least_loaded: the first minimum in round-robin order; round_robin: the first ready key.
            pick = min(ready, key=lambda i: keys[i].in_flight) if self.strategy == "least_loaded" else ready[0]
        self._next = (pick + 1) % n
        st = self._keys[pick]
        st.requests += 1
        st.in_flight += 1
        return KeyLease(st.key, st.label, pick, now, _pool=id(self))

    def release(
        self,
        lease: KeyLease,
        outcome: KeyOutcome,
        *,
        retry_after: float | None = None,
        reason: str | None = None,
        exhausted: bool = False,
    ) -> None:
        """End a lease. ``rate_limited`` cools the key down for ``retry_after`` seconds (default 1, at
        most 300), and with ``exhausted`` (its quota is used up) blocks it that long; ``auth_failed`` disables
        it (``reason``, e.g. the status, is shown with key text redacted). Releasing the same lease twice does
        nothing."""
        if outcome not in _OUTCOMES:
            raise ConfigurationError(f"KeyPool.release: unknown outcome {outcome!r}")
        if not isinstance(lease, KeyLease) or lease._pool != id(self):
            raise ConfigurationError("KeyPool.release: this lease was not issued by this pool")
        if retry_after is not None and (isinstance(retry_after, bool) or not isinstance(retry_after, (int, float))):
            raise ConfigurationError(f"KeyPool.release: retry_after must be a number or None, got {retry_after!r}")
        if lease.released:
            return
        lease.released = True
        st = self._keyless if lease.index < 0 else self._keys[lease.index]
        st.in_flight = max(0, st.in_flight - 1)
        if outcome == "success":
            st.successes += 1
        elif outcome == "failure":
            st.failures += 1
        elif outcome == "rate_limited":
            st.rate_limited += 1
            if lease.index >= 0:
                delay = DEFAULT_COOLDOWN if retry_after is None or math.isnan(retry_after) else retry_after
                delay = min(MAX_COOLDOWN, max(0.0, delay))
                st.cooldown_until = max(st.cooldown_until, self._clock.now() + delay)
                self._share(st, "cool", 1, delay)
                if exhausted:
                    st.blocked_until = max(st.blocked_until, self._clock.now() + delay)
                    self._share(st, "block", 1, delay)
        elif outcome == "auth_failed":
            st.auth_failed += 1
            if lease.index >= 0:
                st.disabled = True
                st.disabled_reason = _redact(reason, st) if reason else "rejected by the provider (401/403)"
                self._share(st, "off", st.disabled_reason, self.disabled_ttl)

    def snapshot(self) -> list[dict[str, Any]]:
        """Per-key counters and state, identified by label only."""
        self._sync()
        now = self._clock.now()
        return [
            {
                "label": st.label,
                "requests": st.requests,
                "successes": st.successes,
                "failures": st.failures,
                "rate_limited": st.rate_limited,
                "auth_failed": st.auth_failed,
                "in_flight": st.in_flight,
                "cooling_down_for": max(0.0, st.cooldown_until - now),
                "blocked_for": max(0.0, st.blocked_until - now),
                "disabled": st.disabled,
                "disabled_reason": st.disabled_reason,
            }
            for st in (self._keys or [self._keyless])
        ]

    def _unavailable(self, now: float) -> Exception:
        first = self._first_unblocked()
        if first is None:
            detail = "; ".join(f"{st.label}: {st.disabled_reason}" for st in self._keys)
            return KeyPoolExhaustedError(
                f"all {len(self._keys)} API keys of this endpoint were rejected (401/403): {detail}",
                endpoint=self.name or None,
                retryable=False,
            )
        wait = max(0.0, first - now)
        return RateLimitError(
            f"the quota of every API key is used up (429 with remaining 0; next ready in {wait:.3f}s)",
            endpoint=self.name or None,
            retry_after=wait,
            retryable=True,
        )


def _redact(text: str, st: _KeyState) -> str:
    """Drop every word of ``text`` that shares 4 consecutive characters with the key (masked keys included)."""
    words = text.replace(st.key, "[redacted]").split() if st.key else text.split()
    out = ["[redacted]" if any(w[i : i + 4] in st.grams for i in range(max(0, len(w) - 3))) else w for w in words]
    return " ".join(out)[:200]
