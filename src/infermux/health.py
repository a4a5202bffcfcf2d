"""Health monitoring of a client's endpoints: active probes, passive evidence, forward progress.

Each endpoint is probed every ``interval`` seconds (with ``jitter``), bounded by ``timeout``, on its
provider's health route (``GET /health`` for llama.cpp, vLLM, TGI, TEI; ``/v2/health/ready`` for OVMS;
``/api/version`` for Ollama) or, for providers without one (hosted APIs), a model listing. A probe is not a
call: it takes no queue slot, no breaker permit and no key lease, and is not counted in ``stats()``.
The state machine is :class:`infermux.resilience.health.EndpointHealth`; this module does the I/O, keeps
one per endpoint, calls ``on_change(endpoint, old, new, reason)`` when an endpoint goes down or comes back
(the alerting hook), and tells the router which endpoints are down (skipped like open breakers; when all
are, panic routing still uses them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._engine import Attempt
from ._logs import fields
from ._validate import join_url
from .errors import DeadlineExceededError, InfermuxError
from .providers import ProviderRequest
from .resilience.breaker import BreakerState
from .resilience.deadline import Deadline
from .resilience.health import EndpointHealth, HealthConfig, HealthState, HealthVerdict
from .transport import HTTPRequest, Timeouts

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import Endpoint

__all__ = ["HealthCallback", "HealthMonitor"]

_log = logging.getLogger("infermux")
_VERSION_SEGMENT = re.compile(r"/v\d+/?$")

#: ``on_change(endpoint_name, old_state, new_state, reason)``
HealthCallback = Callable[[str, HealthState, HealthState, "str | None"], None]


def server_root(base_url: str) -> str:
    """The base URL without a trailing version segment (``/v1``, ``/v3``): where health routes live."""
    return _VERSION_SEGMENT.sub("", base_url.rstrip("/"))


def probe_request(ep: Endpoint, timeout: float) -> HTTPRequest:
    """The HTTP request of one health probe of ``ep`` (its provider's health route, else its model list)."""
    prov = ep.provider
    if prov.health_path is not None:
        preq = ProviderRequest("GET", prov.health_path)
    elif prov.build_models is not None:
        preq = prov.build_models()
    else:
        preq = ProviderRequest("GET", prov.models_path)
    key, label = ep.keys.probe_key()  # a probe takes no lease: it is not a call
    attempt = Attempt(f"health-{uuid.uuid4().hex[:12]}", 0, key, label, None)
    req = ep.http_request(preq, attempt)
    req.timeouts = Timeouts(connect=timeout, read=timeout)
    if prov.health_path is not None:
        req.url = join_url(server_root(ep.base_url), prov.health_path, ep.base_query)
    return req


class HealthMonitor:
    """Health of a set of endpoints, each judged and probed on its own clock. ``gate``: whether the router
    skips endpoints that are down (a client without a health configuration still reports passive health but
    does not gate on it).

    Routing asks :meth:`is_down` for every candidate of every call: an *up* verdict is kept until the earliest
    time it could change by itself (a stream running would reach ``stall_after``), and dropped at once on any
    change of its inputs (a breaker transition, a probe result), so the hot path is a dict lookup and a clock
    read. A *down* verdict is not kept: progress (a chunk, an answer) may end a stall at any moment."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        config: HealthConfig | None = None,
        *,
        rand: Callable[[], float] = random.random,
        on_change: HealthCallback | Sequence[HealthCallback] | None = None,
        gate: bool = True,
    ) -> None:
        self.config = config or HealthConfig(probe=False)
        self.gate = gate
        self._rand = rand
        self._eps = {e.name: e for e in endpoints}
        self._state = {e.name: EndpointHealth(self.config, e.clock) for e in endpoints}
        if on_change is None:
            self._callbacks: list[HealthCallback] = []
        elif callable(on_change):
            self._callbacks = [on_change]
        else:
            self._callbacks = list(on_change)
        self._tasks: list[asyncio.Task[None]] = []
        self.changes = 0
        self._up_until: dict[str, float] = {}  # endpoint -> until when its up verdict holds (clock time)
        self._verdicts: dict[str, HealthVerdict] = {}  # endpoint -> its last verdict
        for ep in endpoints:
            ep.add_breaker_listener(self._breaker_changed)

    def _breaker_changed(self, name: str, old: BreakerState, new: BreakerState) -> None:
        ep = self._eps.get(name)
        if ep is not None:
            self.state(ep, cause=ep.recording_request)  # judged again at once (and the kept verdict replaced)

    def add_callback(self, cb: HealthCallback) -> None:
        self._callbacks.append(cb)

    # ------------------------------------------------------------------ state

    def state(self, ep: Endpoint, *, cause: str | None = None) -> HealthState:
        """The endpoint's health now (evaluated on the spot; a change fires the callbacks). ``cause``: the
        request that brought the evidence (for the log line of a change)."""
        h = self._state[ep.name]
        now = ep.clock.now()
        c = ep.counters
        stalled = c.stalled_for(now)
        verdict, changed = h.update(
            breaker_open=ep.breaker.state is BreakerState.OPEN, stalled_for=stalled, running=c.streams_running
        )
        self._verdicts[ep.name] = verdict
        if verdict.state is HealthState.UP:
            stall = self.config.stall_after
            self._up_until[ep.name] = math.inf if stall is None else now + (stall - stalled)
        else:
            self._up_until.pop(ep.name, None)
        if changed:
            self.changes += 1
            old = HealthState.DOWN if verdict.state is HealthState.UP else HealthState.UP
            level = logging.WARNING if verdict.state is HealthState.DOWN else logging.INFO
            _log.log(
                level,
                "endpoint %s: health %s -> %s (%s)",
                ep.name,
                old.value,
                verdict.state.value,
                verdict.reason,
                extra=fields(ep.name, cause),
            )
            for cb in list(self._callbacks):
                try:
                    cb(ep.name, old, verdict.state, verdict.reason)
                except Exception:  # noqa: BLE001 - an alerting hook's bug must not fail the call that noticed the change
                    _log.exception("endpoint %s: health callback %r failed", ep.name, cb, extra=fields(ep.name, cause))
        return verdict.state

    def verdict(self, ep: Endpoint) -> HealthVerdict:
        """The endpoint's health now, with why it is down (evaluated like :meth:`state`)."""
        self.state(ep)
        return self._verdicts[ep.name]

    def is_down(self, ep: Endpoint) -> bool:
        """Whether the router should skip ``ep`` (only when gating)."""
        if not self.gate:
            return False
        until = self._up_until.get(ep.name)
        if until is not None and ep.clock.now() < until:
            return False  # up, and nothing that could change it happened since it was judged
        return ep.name in self._state and self.state(ep) is HealthState.DOWN

    def report(self) -> dict[str, dict[str, Any]]:
        """Every endpoint's health as plain data."""
        out: dict[str, dict[str, Any]] = {}
        for name, ep in self._eps.items():
            now = ep.clock.now()
            st = self.state(ep)
            h = self._state[name]
            c = ep.counters
            verdict = h.verdict(
                breaker_open=ep.breaker.state is BreakerState.OPEN,
                stalled_for=c.stalled_for(now),
                running=c.streams_running,
            )
            out[name] = {
                "state": st.value,
                "reason": verdict.reason,
                "for_s": now - h.since,
                "gated": self.gate,
                "breaker": ep.breaker.state.value,
                "attempts_running": c.attempts_running,
                "streams_running": c.streams_running,
                "stalled_for_s": c.stalled_for(now),
                "last_progress_ago_s": None if c.last_progress is None else now - c.last_progress,
                "probe": {
                    "enabled": self.config.probe,
                    "count": h.probes,
                    "ok": h.last_probe_ok,
                    "error": h.last_probe_error,
                    "seconds": h.last_probe_seconds,
                    "ago_s": None if h.last_probe_at is None else now - h.last_probe_at,
                    "consecutive_failures": h.consecutive_failures,
                },
            }
        return out

    # ------------------------------------------------------------------ probes

    async def probe(self, ep: Endpoint) -> bool:
        """Probe ``ep`` once now (bounded by ``timeout``); record and return whether it answered 2xx."""
        timeout = self.config.timeout
        started = ep.clock.now()
        ok, error = False, None
        try:  # Deadline, not asyncio.wait_for: before 3.12 wait_for can swallow a cancellation (aclose)
            resp = await Deadline(ep.clock, timeout).run(self._send(ep, timeout))
            ok = resp < 300
            error = None if ok else f"HTTP {resp}"
        except DeadlineExceededError:
            error = f"no answer within {timeout:g}s"
        except InfermuxError as e:
            error = type(e).__name__ + (f" (HTTP {e.status_code})" if e.status_code else "")
        except (OSError, ValueError) as e:  # a transport failure the transport did not type
            error = type(e).__name__
        self._state[ep.name].record_probe(ok, error=error, seconds=ep.clock.now() - started)
        self.state(ep)  # judged again at once (and the kept verdict replaced)
        return ok

    async def _send(self, ep: Endpoint, timeout: float) -> int:
        resp = await ep.transport.send(probe_request(ep, timeout))
        try:
            await resp.read()
        finally:
            await resp.aclose()
        return resp.status

    async def probe_all(self) -> dict[str, bool]:
        """Probe every endpoint once, concurrently."""
        eps = list(self._eps.values())
        results = await asyncio.gather(*(self.probe(ep) for ep in eps))
        return {ep.name: ok for ep, ok in zip(eps, results, strict=True)}

    def start(self) -> None:
        """Start the probe loops on the running loop (when probes are enabled; idempotent)."""
        if not self.config.probe or self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop(ep), name=f"infermux-health-{ep.name}") for ep in self._eps.values()]

    async def _loop(self, ep: Endpoint) -> None:
        cfg = self.config
        while True:
            delay = cfg.interval * (1.0 + cfg.jitter * (2.0 * self._rand() - 1.0))
            await ep.clock.sleep(delay)
            try:
                await self.probe(ep)
            except Exception:  # noqa: BLE001 - a bug in a probe must not end the endpoint's monitoring: log it, probe again
                _log.exception("endpoint %s: health probe failed unexpectedly", ep.name, extra=fields(ep.name, None))

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
