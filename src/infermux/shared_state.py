"""State shared by several processes: breaker transitions, key cool-downs, quota blocks and disabled keys, and
health verdicts, kept in Redis (or Valkey). ``pip install 'infermux[redis]'``; redis-py is imported on first use.

:class:`RedisStateStore` is a :class:`~infermux.resilience.store.StateStore` whose reads and writes touch only
a local view (a :class:`~infermux.resilience.store.MemoryStore`): the engine's hot path never waits on Redis.
A background task on the client's loop keeps the view and Redis in step:

- **push**: every local write is queued (coalesced per key) and sent at once in one pipeline, with a
  ``PUBLISH`` of the key's name on ``{prefix}:changes``. TTLs travel as Redis' own expiries (``PX``), so
  no wall or monotonic time crosses processes. Cool-downs and quota blocks are written with an atomic Lua
  script that keeps the later expiry (``extend``): two processes blocking the same key never shorten it.
- **pull**: a subscriber fetches each key another process announced (one ``GET`` + ``PTTL``), and every
  ``refresh`` seconds a full ``SCAN`` of ``{prefix}:*`` reconciles the view (a missed message, an expiry).

**Consistency model.** Each record is last-writer-wins, except cool-downs and quota blocks (the later expiry
wins, exactly, in Redis). Another process's write is seen after one pub/sub delivery plus one round trip
(about a millisecond on one host), and at the latest after ``refresh`` seconds (default 1) plus the
``timeout``. Nothing is exact across processes except those expiries and ``incr`` totals: the breaker that
published an OPEN probes and the others wait one more open period for its verdict (two that both published
may both probe), and calls already admitted when a remote OPEN arrives still run.

**Redis away.** A failed or slow (``timeout``) Redis call ends the session: one warning is logged, the view
goes on as this process's local state (requests never wait on or fail because of Redis), writes stay
queued (coalesced, at most ``max_pending`` keys), and the task reconnects with backoff (0.1 s doubling up to
``retry_max``). When Redis is back the queued writes are pushed first (so what this process learned while
alone reaches the others), then the view is reconciled from Redis, and an info line says so. A Redis that
came back empty (restarted without persistence: its ``{prefix}!epoch`` marker changed) first gets this
process's whole live view written back with ``SET NX`` (what another process wrote since stays).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import math
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ConfigurationError
from .resilience.clock import SYSTEM_CLOCK, Clock
from .resilience.store import MemoryStore, StateStore, check_ttl

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import Endpoint
    from .health import HealthMonitor

__all__ = ["RedisStateStore", "StateConfig", "attach_state", "open_state"]

_log = logging.getLogger("infermux")
T = TypeVar("T")
_SCAN_COUNT = 500
_MAX_SCAN_ROUNDS = 10_000
_EXPIRY_SLACK = 0.05  # a pulled expiry this close to the view's is the same record (round-trip jitter)

# KEYS[1] the key; ARGV[1] the value, ARGV[2] the TTL in ms. Keep the later expiry (a persistent key stays).
_EXTEND_LUA = """
local cur = redis.call('PTTL', KEYS[1])
if cur == -1 or cur >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def _redis() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError:  # pragma: no cover - redis ships with the test extra
        raise ConfigurationError("the redis state store needs redis-py: pip install 'infermux[redis]'") from None
    return aioredis


def _shown(url: str) -> str:
    """The URL without a password."""
    return re.sub(r"//([^/@]*)@", "//***@", url)


@dataclass(slots=True)
class _Op:
    kind: str  # set | extend | del | incr
    raw: str = ""
    delta: int = 0


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Where shared state lives: ``backend`` ``"memory"`` (this process only) or ``"redis"`` (``url``
    required); ``prefix`` namespaces the keys (one per fleet sharing state); ``timeout`` bounds every Redis
    call; ``refresh`` is the period of the full reconciliation (the staleness bound without pub/sub)."""

    backend: str = "memory"
    url: str | None = None
    prefix: str = "infermux:state"
    timeout: float = 0.5
    refresh: float = 1.0
    retry_max: float = 2.0

    def __post_init__(self) -> None:
        if self.backend not in ("memory", "redis"):
            raise ConfigurationError(f"state.backend must be 'memory' or 'redis', got {self.backend!r}")
        if self.backend == "redis" and (not isinstance(self.url, str) or not self.url.startswith(("redis", "unix"))):
            raise ConfigurationError("state.url must be a redis:// (rediss://, unix://) URL when backend='redis'")
        if not isinstance(self.prefix, str) or not self.prefix or any(c in self.prefix for c in "*?[] "):
            raise ConfigurationError(
                f"state.prefix must be a non-empty string without glob characters, got {self.prefix!r}"
            )
        for name in ("timeout", "refresh", "retry_max"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigurationError(f"state.{name} must be a finite number > 0, got {v!r}")


def open_state(
    spec: StateConfig | Mapping[str, Any] | StateStore | None, *, clock: Clock = SYSTEM_CLOCK
) -> StateStore | None:
    """The store a ``state`` setting describes (a :class:`StateConfig`, its fields as a dict, or a ready store)."""
    if spec is None or isinstance(spec, (MemoryStore, RedisStateStore)):
        return spec
    if isinstance(spec, Mapping):
        try:
            spec = StateConfig(**spec)
        except TypeError as e:
            raise ConfigurationError(f"bad state settings: {e}") from None
    if isinstance(spec, StateConfig):
        if spec.backend == "memory":
            return MemoryStore(clock=clock)
        assert spec.url is not None
        return RedisStateStore(
            spec.url,
            prefix=spec.prefix,
            timeout=spec.timeout,
            refresh=spec.refresh,
            retry_max=spec.retry_max,
            clock=clock,
        )
    if isinstance(spec, StateStore):
        return spec
    raise ConfigurationError(f"state must be a StateConfig, a dict or a StateStore, got {type(spec).__name__}")


def attach_state(store: StateStore, endpoints: Sequence[Endpoint], monitor: HealthMonitor) -> None:
    """Share the breakers, key pools and health verdicts of ``endpoints`` through ``store`` (keys
    ``breaker:{endpoint}``, ``keys:{endpoint}:{key label}:...``, ``health:{endpoint}``)."""
    for ep in endpoints:
        ep.breaker.bind_store(store, f"breaker:{ep.name}")
        ep.keys.bind_store(store, f"keys:{ep.name}")
        monitor._state[ep.name].bind_store(store, f"health:{ep.name}")
    if isinstance(store, RedisStateStore):
        eps = list(endpoints)

        def changed() -> None:
            for ep in eps:
                _ = ep.breaker.state  # an adopted transition wakes the callers waiting on the breaker
                monitor.state(ep)  # judged again: the router's kept verdict must not hide a shared "down"

        store.add_listener(changed)


class RedisStateStore:
    """A :class:`~infermux.resilience.store.StateStore` shared through Redis (see the module docstring).

    ``url`` like ``redis://127.0.0.1:6379/0`` (or ``client=`` a ready ``redis.asyncio`` client with
    ``decode_responses=True``). :meth:`start` runs the sync task on the running loop (the client does it on
    its first call); :meth:`wait_synced` waits, bounded, for the first reconciliation; :meth:`aclose` pushes
    what is queued (bounded by ``timeout``) and stops."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "infermux:state",
        timeout: float = 0.5,
        refresh: float = 1.0,
        retry_max: float = 2.0,
        max_pending: int = 10_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError("RedisStateStore needs exactly one of url= or client=")
        cfg = StateConfig("redis", url or "redis://client", prefix, timeout, refresh, retry_max)
        self.url = _shown(url or "redis://client")
        self._url = url
        self._client = client
        self.prefix, self.timeout, self.refresh, self.retry_max = cfg.prefix, cfg.timeout, cfg.refresh, cfg.retry_max
        self.max_pending = max_pending
        self.channel = f"{cfg.prefix}:changes"
        self.origin = uuid.uuid4().hex[:16]
        self._clock = clock
        self._view = MemoryStore(clock=clock)
        self._pending: dict[str, _Op] = {}
        self._listeners: list[Callable[[], None]] = []
        self._r: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._synced: asyncio.Event | None = None
        self._warned = False
        self._backoff = 0.1
        self._closing = False
        self._epoch: str | None = None
        self.connected = False
        self.counters = {"pushed": 0, "pulled": 0, "outages": 0, "errors": 0, "dropped": 0, "reconnects": 0}

    def __repr__(self) -> str:
        return f"RedisStateStore(url={self.url!r}, prefix={self.prefix!r}, connected={self.connected})"

    # ------------------------------------------------------------------ the synchronous view (hot path)

    @property
    def version(self) -> int:
        return self._view.version

    def get(self, key: str) -> Any | None:
        return self._view.get(key)

    def ttl(self, key: str) -> float | None:
        return self._view.ttl(key)

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        check_ttl(ttl, "RedisStateStore.set")
        raw = _encode(value)
        self._view.set(key, value, ttl)
        self._queue(key, _Op("set", raw))

    def extend(self, key: str, value: Any, ttl: float) -> None:
        check_ttl(ttl, "RedisStateStore.extend")
        raw = _encode(value)
        before = self._view.version
        self._view.extend(key, value, ttl)
        if self._view.version != before:  # the local view changed: Redis keeps the later of both (Lua)
            self._queue(key, _Op("extend", raw))

    def delete(self, key: str) -> None:
        self._view.delete(key)
        self._queue(key, _Op("del"))

    def incr(self, key: str, amount: int = 1) -> int:
        """Counted locally at once and added in Redis (``INCRBY``) on the next push; the view then takes
        Redis' total. Exact in Redis, eventually consistent in each view."""
        value = self._view.incr(key, amount)
        op = self._pending.get(key)
        if op is not None and op.kind == "incr":
            op.delta += amount
        elif op is not None:  # a set/extend still queued: send the value the view now holds
            self._queue(key, _Op("set", _encode(value)))
        else:
            self._queue(key, _Op("incr", delta=amount))
        return value

    def add_listener(self, callback: Callable[[], None]) -> None:
        """``callback()`` runs on the loop after writes of other processes changed the view."""
        self._listeners.append(callback)

    def snapshot(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "url": self.url,
            "prefix": self.prefix,
            "connected": self.connected,
            "pending": len(self._pending),
            "keys": len(self._view),
            **self.counters,
        }

    def _queue(self, key: str, op: _Op) -> None:
        if key not in self._pending and len(self._pending) >= self.max_pending:
            self._pending.pop(next(iter(self._pending)))  # the oldest queued write stays local only
            self.counters["dropped"] += 1
        self._pending[key] = op
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run the sync task on the running loop (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        loop = asyncio.get_running_loop()
        self._closing = False
        self._wake, self._synced = asyncio.Event(), asyncio.Event()
        if self._pending:
            self._wake.set()
        self._task = loop.create_task(self._run(), name=f"infermux-state-{self.prefix}")

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Start if needed and wait (at most ``timeout``, default ``4 * self.timeout``) for the first
        reconciliation with Redis; ``False`` when it did not happen in time (the view stays local)."""
        self.start()
        assert self._synced is not None
        await _wait_event(self._synced, 4 * self.timeout if timeout is None else timeout)
        return self._synced.is_set()

    async def sync_now(self) -> None:
        """Push what is queued and reconcile the view with Redis now (raises on a Redis failure)."""
        r = self._conn()
        await self._flush(r)
        await self._pull_all(r)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        self._closing = True
        if task is not None:
            loop = asyncio.get_running_loop()
            end = loop.time() + 4 * self.timeout
            while not task.done() and loop.time() < end:
                task.cancel()  # again if a cancellation was lost in a library's await
                await asyncio.wait({task}, timeout=0.05)
        r, self._r = self._r, None
        if r is None:
            return
        if self._pending and self.connected:
            try:
                await self._flush(r)
            except Exception as e:  # noqa: BLE001 - Redis went away at close: this process's last writes stay local
                _log.info(
                    "shared state: %d writes not pushed to Redis %s at close (%s)", len(self._pending), self.url, e
                )
        self.connected = False
        with contextlib.suppress(Exception):
            await self._bounded(r.aclose())

    # ------------------------------------------------------------------ the sync task

    def _conn(self) -> Any:
        if self._r is None:
            self._r = self._client or _redis().from_url(
                self._url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout, decode_responses=True
            )
        return self._r

    async def _bounded(self, aw: Awaitable[T], factor: float = 4.0) -> T:
        """``aw`` bounded by ``factor * timeout`` (``TimeoutError``); never swallows a cancellation."""
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(self.timeout * factor):
                return await aw
        return await asyncio.wait_for(aw, self.timeout * factor)  # pragma: no cover - Python 3.10

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure of Redis: go on locally, reconnect later
                self._went_down(e)
                await self._drop_conn()
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, self.retry_max)

    async def _drop_conn(self) -> None:
        """Forget the connection pool after a failure (a fresh one reconnects cleanly)."""
        if self._client is not None or self._r is None:
            return
        r, self._r = self._r, None
        with contextlib.suppress(Exception):
            await self._bounded(r.aclose(), 1.0)

    async def _session(self) -> None:
        r = self._conn()
        await self._bounded(r.ping(), 1.0)
        ps = r.pubsub()
        try:
            await self._bounded(ps.subscribe(self.channel), 1.0)
            pushed = len(self._pending) + await self._reseed_if_lost(r)
            await self._flush(r)  # what this process learned while away first; the Lua keeps later expiries
            await self._pull_all(r)
            self._came_up(pushed)
            tasks = [asyncio.ensure_future(self._listen(r, ps)), asyncio.ensure_future(self._writer(r))]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.wait(tasks)  # a cancellation of this task still propagates
                for t in tasks:  # retrieved: one that failed while this task was cancelled is not reported
                    if not t.cancelled():
                        t.exception()
            for t in done:
                t.result()  # raises what ended the session
        finally:
            with contextlib.suppress(Exception):
                await self._bounded(ps.aclose(), 1.0)

    async def _reseed_if_lost(self, r: Any) -> int:
        """When Redis lost its data (restarted empty: the epoch marker changed), write back this process's view
        (``SET NX``: what another process wrote since stays); the number of records written back."""
        marker = f"{self.prefix}!epoch"
        await self._bounded(r.set(marker, uuid.uuid4().hex, nx=True))
        epoch = await self._bounded(r.get(marker))
        lost, self._epoch = self._epoch is not None and epoch != self._epoch, epoch
        if not lost:
            return 0
        pipe = r.pipeline(transaction=False)
        now = self._clock.now()
        n = 0
        for key in self._view.live_keys():
            present, expires = self._view.expiry(key)
            if present and key not in self._pending:
                ms = None if expires is None else max(1, math.ceil((expires - now) * 1000))
                pipe.set(f"{self.prefix}:{key}", _encode(self._view.get(key)), px=ms, nx=True)
                n += 1
        if n:
            await self._bounded(pipe.execute())
        return n

    def _came_up(self, pushed: int) -> None:
        self.connected = True
        self._backoff = 0.1
        if self._warned:
            self._warned = False
            self.counters["reconnects"] += 1
            _log.info(
                "shared state: Redis %s is reachable again; pushed %d local writes and re-synced", self.url, pushed
            )
        if self._synced is not None:
            self._synced.set()

    def _went_down(self, e: BaseException) -> None:
        self.connected = False
        self.counters["errors"] += 1
        if self._warned:
            _log.debug("shared state: Redis %s still unreachable: %s", self.url, type(e).__name__)
            return
        self._warned = True
        self.counters["outages"] += 1
        if self._synced is not None:
            self._synced.set()  # no one waits for a Redis that is not there
        _log.warning(
            "shared state: Redis %s unreachable (%s: %s); going on with this process's local state until it is back",
            self.url,
            type(e).__name__,
            str(e)[:200] or "timed out",
        )

    async def _listen(self, r: Any, ps: Any) -> None:
        while True:
            msg = await self._bounded(
                ps.get_message(ignore_subscribe_messages=True, timeout=self.refresh), 1.0 + self.refresh / self.timeout
            )
            if msg is None or not isinstance(msg.get("data"), str):
                continue
            origin, _, key = msg["data"].partition("|")
            if origin != self.origin and key:
                await self._fetch(r, [f"{self.prefix}:{key}"])

    async def _writer(self, r: Any) -> None:
        assert self._wake is not None
        last_pull = self._clock.now()
        while True:
            await _wait_event(self._wake, self.refresh)
            self._wake.clear()
            await self._flush(r)
            if self._clock.now() - last_pull >= self.refresh:
                await self._pull_all(r)
                last_pull = self._clock.now()

    async def _flush(self, r: Any) -> None:
        if not self._pending:
            return
        batch = dict(self._pending)
        pipe = r.pipeline(transaction=False)
        now = self._clock.now()
        sent: list[tuple[str, _Op, int]] = []
        for key, op in batch.items():
            if self._command(pipe, key, op, now):
                sent.append((key, op, 2 * len(sent)))  # the op's result; its PUBLISH follows
                pipe.publish(self.channel, f"{self.origin}|{key}")
            elif self._pending.get(key) is op:
                del self._pending[key]  # expired before it could be pushed: nothing left to say
        results = await self._bounded(pipe.execute()) if sent else []
        for key, op, i in sent:
            if self._pending.get(key) is op:
                del self._pending[key]
                if op.kind == "incr" and isinstance(results[i], int):
                    _, expires = self._view.expiry(key)
                    self._view.set_until(key, results[i], expires)
        self.counters["pushed"] += len(sent)

    def _command(self, pipe: Any, key: str, op: _Op, now: float) -> bool:
        """Queue the Redis command of one write on ``pipe``; ``False`` when there is nothing to send."""
        rk = f"{self.prefix}:{key}"
        if op.kind == "del":
            pipe.delete(rk)
        elif op.kind == "incr":
            pipe.incrby(rk, op.delta)
        else:
            present, expires = self._view.expiry(key)
            if not present:
                return False
            ms = None if expires is None else max(1, math.ceil((expires - now) * 1000))
            if op.kind == "extend" and ms is not None:
                pipe.eval(_EXTEND_LUA, 1, rk, op.raw, ms)
            else:
                pipe.set(rk, op.raw, px=ms)
        return True

    async def _fetch(self, r: Any, keys: list[str]) -> builtins.set[str]:
        """Fetch ``keys`` (full Redis names) into the view; the view names of those present."""
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.get(k)
            pipe.pttl(k)
        res = await self._bounded(pipe.execute())
        cut = len(self.prefix) + 1
        changed = False
        present: builtins.set[str] = builtins.set()
        for i, k in enumerate(keys):
            key = k[cut:]
            raw, pttl = res[2 * i], res[2 * i + 1]
            if raw is not None:
                present.add(key)
            changed |= self._apply(key, raw, pttl)
        self.counters["pulled"] += len(keys)
        if changed:
            self._notify()
        return present

    async def _pull_all(self, r: Any) -> None:
        seen: builtins.set[str] = builtins.set()
        cursor: int | str = 0
        for _ in range(_MAX_SCAN_ROUNDS):
            cursor, names = await self._bounded(r.scan(cursor, match=f"{self.prefix}:*", count=_SCAN_COUNT))
            if names:
                seen |= await self._fetch(r, list(names))
            if int(cursor) == 0:
                break
        gone = [k for k in self._view.live_keys() if k not in seen and k not in self._pending]
        for k in gone:  # deleted (or expired) in Redis, and not a local write waiting to be pushed
            self._view.delete(k)
        if gone:
            self._notify()

    def _apply(self, key: str, raw: Any, pttl: Any) -> bool:
        if key in self._pending:
            return False  # a local write is on its way; Redis gets it next
        present, expires = self._view.expiry(key)
        if raw is None or pttl == -2:
            if present:
                self._view.delete(key)
                return True
            return False
        try:
            value = json.loads(raw)
        except ValueError:
            self.counters["errors"] += 1
            return False
        until = None if not isinstance(pttl, int) or pttl < 0 else self._clock.now() + pttl / 1000
        if present and self._view.get(key) == value and _same_expiry(until, expires):
            return False
        self._view.set_until(key, value, until)
        return True

    def _notify(self) -> None:
        for cb in list(self._listeners):
            try:
                cb()
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the sync task
                _log.exception("shared state: a change listener failed")


def _encode(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise ConfigurationError(f"shared state values must be JSON data: {e}") from None


def _same_expiry(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= _EXPIRY_SLACK


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` passed (``asyncio.wait``: a cancellation is never swallowed)."""
    if event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
