"""The per-endpoint resilience engine: every attempt passes queue -> breaker -> key -> retry, and the caller is
served first.

Rules (the README's "What every call goes through" tells the same):

- A call fails only when its deadline cannot be met or its error is not retryable. While the endpoint protects
  itself (breaker open, every key's quota used up) the call *waits*, bounded by its deadline and the queue
  bound, unless it fails fast (``fail_fast``, or the router knows another endpoint can serve it now).
- Local waits spend no retry: the retry budget counts attempts that reached the server, less failed half-open
  probes (a probe is sent on behalf of every waiter; it is part of waiting out the outage, bounded by the deadline).
- When the call gives up, the caller gets the last error the server gave (``breaker_state`` noted on it), not a
  ``CircuitOpenError`` that hides it; the counters count every failed attempt by its real class.
- Running out of the endpoint's *share* of the caller's timeout (the router keeps time for fallbacks) is an
  attempt timeout: a breaker failure, since a hanging endpoint is unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

from ._ids import new_request_id
from ._logs import fields
from ._ratelimit import quota_block_seconds
from ._redact import redact_error
from ._stats import EndpointCounters
from .errors import (
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CircuitOpenError,
    DeadlineExceededError,
    IncompleteStreamError,
    InfermuxError,
    MalformedResponseError,
    OverloadedError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    RequestShedError,
)
from .providers import Provider
from .resilience.adaptive import AdaptiveLimit
from .resilience.breaker import BreakerState, CircuitBreaker, Permit, is_breaker_failure
from .resilience.clock import Clock
from .resilience.deadline import Deadline
from .resilience.keypool import KeyLease, KeyPool
from .resilience.queue import PriorityGate
from .resilience.retry import RetryPolicy, decide
from .types import Priority

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import EndpointConfig
    from .otel import CallObserver

__all__ = ["Attempt", "Call", "EngineCore"]

T = TypeVar("T")
_log = logging.getLogger("infermux")


@dataclass(slots=True)
class Attempt:
    """What one try of an operation gets: the request ID, attempt number, its API key and the deadline."""

    request_id: str
    number: int
    key: str | None = field(repr=False)
    key_label: str
    deadline_at: float | None  # on the endpoint's clock
    started_at: float = 0.0  # on the endpoint's clock
    response_headers: Mapping[str, str] = field(default_factory=dict)
    stream: bool = False  # a stream's attempt (its chunks are its forward progress)


@dataclass(slots=True)
class Call:
    """One caller's request on this endpoint across its attempts."""

    rid: str
    model: str | None
    pol: RetryPolicy
    deadline: Deadline
    started: float
    priority: Priority
    wait: bool = True  # wait out protective states (False: fail fast, another endpoint can serve now)
    share: bool = False  # the deadline is this endpoint's share of the caller's timeout
    number: int = 0  # attempts sent to the server
    probes: int = 0  # of which failed half-open probes: sent on behalf of every waiter, not charged as retries
    malformed: int = 0
    admitted: bool = False  # the current attempt passed admission (an error before it is final)
    last_error: InfermuxError | None = None  # the last error the server gave
    observer: CallObserver | None = None  # the call's trace (infermux.otel), None when telemetry is off


def _outcome_for_key(error: BaseException) -> Literal["success", "failure", "rate_limited", "auth_failed", "neutral"]:
    if isinstance(error, (AuthenticationError, PermissionDeniedError)):
        return "auth_failed"  # by class: some providers (Gemini) reject a bad key with 400 API_KEY_INVALID
    if isinstance(error, APIStatusError):
        if error.status_code == 429:
            return "rate_limited"
        if error.status_code in (401, 403):
            return "auth_failed"
        if error.status_code is not None and error.status_code >= 500:
            return "failure"
        return "neutral"
    return "failure" if is_breaker_failure(error) else "neutral"


class EngineCore:
    """The per-endpoint resilience engine: queue -> breaker -> key -> retry around any async operation.

    :class:`~infermux.endpoint.Endpoint` builds the state (config, provider, clock, key pool, breaker, gate,
    adaptive limit, counters) and adds the provider calls on top."""

    config: EndpointConfig
    name: str
    provider: Provider
    clock: Clock
    keys: KeyPool
    breaker: CircuitBreaker
    gate: PriorityGate
    adaptive: AdaptiveLimit | None
    counters: EndpointCounters
    _rand: Callable[[], float]
    _changed: asyncio.Event | None
    _holding: int
    _secrets: tuple[str, ...]
    _breaker_listeners: list[Callable[[str, BreakerState, BreakerState], None]]
    _cause: str | None  # the request whose attempt's outcome the breaker is recording (for the log)

    def _breaker_changed(self, old: BreakerState, new: BreakerState) -> None:
        level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
        _log.log(
            level,
            "endpoint %s: circuit breaker %s -> %s",
            self.name,
            old.value,
            new.value,
            extra=fields(self.name, self._cause),
        )
        if self._changed is not None:  # wake the callers waiting on the breaker
            self._changed.set()
            self._changed = None
        for listener in self._breaker_listeners:
            listener(self.name, old, new)

    @property
    def recording_request(self) -> str | None:
        """The request whose attempt's outcome the breaker is recording now (``None`` outside): a breaker
        listener's way to tell which call caused a transition."""
        return self._cause

    def add_breaker_listener(self, listener: Callable[[str, BreakerState, BreakerState], None]) -> None:
        """Call ``listener(endpoint_name, old, new)`` on every breaker transition (after those given before)."""
        self._breaker_listeners.append(listener)

    def available(self) -> bool:
        """Could a call start here now: breaker CLOSED (or a free HALF_OPEN probe) and a key not blocked."""
        return self.breaker.available() and (self.keys.size == 0 or self.keys.usable_count() > 0)

    def available_at(self) -> float | None:
        """When an endpoint that is not :meth:`available` may be again (breaker probe time, first key reset), on
        its clock; ``None`` when it is available now or the time is unknown (a probe in flight, keys disabled)."""
        if self.available():
            return None
        times = [t for t in (self.breaker.retry_at, self.keys.ready_at()) if t is not None]
        return max(times) if times else None

    def has_capacity(self) -> bool:
        """Would a call start at once (a free slot under the current, possibly adaptive, limit; nobody queued)?"""
        gate = self.gate
        return gate.in_flight < gate.max_concurrency and gate.waiting == 0

    def load(self) -> float:
        """Calls in flight and queued per slot of the current limit (for spreading work over busy endpoints)."""
        gate = self.gate
        return (gate.in_flight + gate.waiting + self._holding) / gate.max_concurrency

    # ------------------------------------------------------------------ the engine

    async def run(
        self,
        operation: Callable[[Attempt], Awaitable[T]],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        model: str | None = None,
        policy: RetryPolicy | None = None,
        wait: bool | None = None,
        share: bool = False,
        observer: CallObserver | None = None,
    ) -> T:
        """Run ``operation`` under this endpoint's queue, breaker, key pool and retry policy.

        ``timeout`` overrides the policy's overall deadline for this call. While the endpoint protects itself
        (breaker open, every key's quota used up) the call waits, bounded by its deadline, unless ``wait`` is
        false (default: not ``config.fail_fast``). ``share``: ``timeout`` is only this endpoint's share of the
        caller's budget (the router keeps time for the next endpoint), so running out of it is an attempt
        timeout, a health signal. ``observer``: the call's trace (its attempts become span events). Raises a
        typed :class:`InfermuxError` carrying this endpoint's context when the deadline cannot be met or the
        error is not retryable.
        """
        call = self._begin(request_id, timeout, model, policy, priority, wait=wait, share=share)
        call.observer = observer
        try:
            while True:
                try:
                    result = await self._attempt(operation, call)
                except InfermuxError as err:
                    delay = self._after_error(err, call, final=False)
                    if delay is None:
                        raise
                    await self.clock.sleep(delay)
                    continue
                self._count_success(call.started)
                return result
        except InfermuxError:
            raise  # counted by _after_error
        except BaseException as err:
            self.counters.ended(err)
            raise

    def _begin(
        self,
        request_id: str | None,
        timeout: float | None,
        model: str | None,
        policy: RetryPolicy | None,
        priority: Priority,
        *,
        wait: bool | None = None,
        share: bool = False,
    ) -> Call:
        pol = policy or self.config.retry
        deadline = Deadline(self.clock, timeout if timeout is not None else pol.deadline)
        self.counters.requests += 1
        w = not self.config.fail_fast if wait is None else bool(wait)
        return Call(
            request_id or new_request_id(),
            model,
            pol,
            deadline,
            self.clock.now(),
            priority,
            w,
            share and timeout is not None,
        )

    def _after_error(self, err: InfermuxError, call: Call, *, final: bool) -> float | None:
        """Put this endpoint's context on ``err``; return the wait before the next attempt, or ``None`` (the
        error is final and counted). ``final``: retrying is not allowed (content reached the caller)."""
        redact_error(err, self._secrets)  # also errors raised outside an attempt (a stream splice's partial text)
        err.with_context(provider=self.provider.name, endpoint=self.name, model=call.model, request_id=call.rid)
        if err.attempts is None or err is not call.last_error:
            err.attempts = call.number
        delay = None
        if call.admitted and err is not call.last_error:
            call.last_error = err
            self.counters.attempt_failed(err)
            if not final:
                delay = self._retry_delay(err, call)
            if call.observer is not None:
                call.observer.attempt_failed(self, call.number, err, delay)
            if _log.isEnabledFor(logging.DEBUG):
                then = "giving up" if delay is None else f"retrying in {delay:.3g}s"
                _log.debug(
                    "endpoint %s: request %s attempt %d failed: %s (%s)",
                    self.name,
                    call.rid,
                    call.number,
                    type(err).__name__,
                    then,
                    extra=fields(self.name, call.rid, call.number),
                )
        if delay is None:
            self.counters.failure(err)
        else:
            self.counters.retries += 1
        return delay

    def _count_success(self, started: float, *, stream: bool = False) -> None:
        self.counters.successes += 1
        now = self.clock.now()
        self.counters.observe_latency(now - started, now, stream=stream)

    def _retry_delay(self, err: InfermuxError, call: Call) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up. A 429 on one key is retried at
        once when another key of the pool is ready (the advertised delay applies to the limited key)."""
        if isinstance(err, MalformedResponseError) and not isinstance(err, IncompleteStreamError):
            call.malformed += 1
            if call.malformed > call.pol.max_malformed_retries:
                return None
        if (
            isinstance(err, RateLimitError)
            and err.status_code == 429
            and call.number - call.probes <= call.pol.max_retries
            and self.keys.ready_count() > 0
            and getattr(err, "should_retry_header", None) is not False
        ):
            return 0.0
        decision = decide(
            call.pol,
            err,
            retry_number=call.number - call.probes,  # a failed probe spends no retry: it is part of the wait
            elapsed=self.clock.now() - call.started,
            rand=self._rand,
        )
        rem = call.deadline.remaining()
        if not decision.retry or (rem is not None and decision.delay >= rem):
            return None
        return decision.delay

    # ------------------------------------------------------------------ admission: queue -> breaker -> key

    async def _admit(self, call: Call) -> tuple[KeyLease, Permit]:
        """Take a queue slot, a breaker permit and a key lease, waiting out protective states (bounded by the
        deadline) unless the call fails fast. The caller owns the slot (``gate.release()``), the permit and the
        lease (one ``_record_*`` call ends both). Local waits spend no retry."""
        call.admitted = False
        while True:
            if not self.breaker.available():
                await self._hold_for_breaker(call)
                continue
            await self._acquire_slot(call)
            permit = self.breaker.acquire()
            if permit is None:
                self.gate.release()
                continue
            try:
                lease = self.keys.acquire()
            except RateLimitError as blocked:  # every key's quota is used up: wait for the first to be free
                self.breaker.record_ignored(permit)
                self.gate.release()
                await self._hold(call, blocked.retry_after or 0.0, blocked)
                continue
            except BaseException:
                self.breaker.record_ignored(permit)  # nothing was sent: no evidence about the endpoint
                self.gate.release()
                raise
            call.admitted = True
            call.number += 1
            self.counters.attempts += 1
            return lease, permit

    async def _acquire_slot(self, call: Call) -> None:
        try:
            await self.gate.acquire(call.priority, timeout=call.deadline.remaining())
        except RequestShedError:
            self.counters.shed += 1
            raise
        except QueueFullError:
            self.counters.queue_rejected += 1
            raise
        except DeadlineExceededError as e:
            if call.last_error is not None:
                e.__cause__ = call.last_error
            raise

    async def _hold_for_breaker(self, call: Call) -> None:
        retry_at = self.breaker.retry_at
        wait = None if retry_at is None else max(0.0, retry_at - self.clock.now())
        refusal = CircuitOpenError(
            f"circuit breaker of endpoint {self.name!r} is open"
            + (f"; next probe in {wait:.3g}s" if wait is not None else "; a probe is in flight"),
            retry_at=retry_at,
            retry_after=wait,
        )
        await self._hold(call, wait, refusal)

    async def _hold(self, call: Call, wait: float | None, refusal: InfermuxError) -> None:
        """Wait (up to ``wait`` seconds, ``None``: until the breaker changes, at most 1 s at a time) for the
        endpoint to take calls again, or raise: the last real error of this call (with the breaker's state on
        it) when it has one, else ``refusal``. Fails at once when the call fails fast, when the deadline would
        run out first, or when too many callers wait already (the queue bound)."""
        rem = call.deadline.remaining()
        can_wait = call.wait and (rem is None or wait is None or wait < rem) and (rem is None or rem > 0)
        if can_wait and self._holding + self.gate.waiting >= self.config.max_queue:
            can_wait = False
            refusal = QueueFullError(
                f"endpoint {self.name!r}: {self._holding} calls wait for it to recover"
                f" (max_queue={self.config.max_queue})"
            )
        if not can_wait:
            if isinstance(refusal, CircuitOpenError):
                self.counters.circuit_rejections += 1
            last = call.last_error
            if last is not None:
                last.breaker_state = self.breaker.state.value
                raise last
            raise refusal
        self.counters.waits += 1
        bound = 1.0 if wait is None else wait
        if rem is not None:
            bound = min(bound, rem)
        self._holding += 1
        try:
            await self._sleep_or_change(max(0.0, bound))
        finally:
            self._holding -= 1

    async def _sleep_or_change(self, delay: float) -> None:
        """Sleep ``delay`` seconds on the clock, waking early when the breaker changes state."""
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = asyncio.ensure_future(self._changed.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait((changed, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            sleeper.cancel()

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, operation: Callable[[Attempt], Awaitable[T]], call: Call) -> T:
        lease, permit = await self._admit(call)
        try:
            attempt = self._new_attempt(call, lease)
            try:
                result = await call.deadline.run(operation(attempt))
            except BaseException as err:
                failure = self._attempt_failed(err, call, lease, permit, attempt)
                if failure is err:
                    raise
                raise failure from err
            self._record_success(lease, permit, attempt)
            return result
        finally:
            self.gate.release()

    def _attempt_failed(
        self, err: BaseException, call: Call, lease: KeyLease, permit: Permit, attempt: Attempt
    ) -> BaseException:
        """Record a failed attempt; returns the exception the caller should see (a share overrun becomes an
        attempt timeout)."""
        failure = self._share_timeout(err, call)
        if permit.probe:
            call.probes += 1
        self._record_failure(failure, lease, permit, attempt)
        return failure

    def _share_timeout(self, err: BaseException, call: Call) -> BaseException:
        """Running out of this endpoint's share of the caller's timeout is an attempt timeout (the endpoint is
        slow or hanging: a breaker failure, and the router moves on); the caller's own deadline is not."""
        if not (call.share and isinstance(err, DeadlineExceededError)):
            return err
        out = APITimeoutError(
            f"endpoint {self.name!r} did not answer within its {call.deadline.total:.3g}s share of the call's"
            " timeout (time is kept for the other endpoints)",
            retryable=True,
        )
        out.__cause__ = err
        return out

    def _new_attempt(self, call: Call, lease: KeyLease, *, stream: bool = False) -> Attempt:
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "endpoint %s: request %s attempt %d (key %s)",
                self.name,
                call.rid,
                call.number,
                lease.label,
                extra=fields(self.name, call.rid, call.number, key=lease.label),
            )
        now = self.clock.now()
        self.counters.attempt_started(now, stream=stream)
        if call.observer is not None:
            call.observer.attempt(self, call.number)
        return Attempt(call.rid, call.number, lease.key, lease.label, call.deadline.at, started_at=now, stream=stream)

    def _record_success(self, lease: KeyLease, permit: Permit, attempt: Attempt) -> None:
        self.counters.attempt_ended(self.clock.now(), answered=True, stream=attempt.stream)
        self.keys.release(lease, "success")
        self._cause = attempt.request_id
        try:
            self.breaker.record_success(permit)
        finally:
            self._cause = None
        if self.adaptive is not None:
            self.adaptive.on_success()
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "endpoint %s: request %s attempt %d ok",
                self.name,
                attempt.request_id,
                attempt.number,
                extra=fields(self.name, attempt.request_id, attempt.number),
            )

    def _record_failure(self, err: BaseException, lease: KeyLease, permit: Permit, attempt: Attempt) -> None:
        if isinstance(err, InfermuxError):
            redact_error(err, self._secrets)
        # a status error or a malformed body is an answer (progress); a cut, a timeout, a cancellation is not
        answered = isinstance(err, (APIStatusError, MalformedResponseError))
        self.counters.attempt_ended(self.clock.now(), answered=answered, stream=attempt.stream)
        outcome = _outcome_for_key(err)
        # the server's own capacity signal (not our key pool's local refusal, which has no status)
        overloaded = isinstance(err, (RateLimitError, OverloadedError)) and err.status_code is not None
        if self.adaptive is not None and overloaded:
            self.adaptive.on_overload(attempt.started_at, self.gate.in_flight)
        retry_after = err.retry_after if isinstance(err, InfermuxError) else None
        block = quota_block_seconds(attempt.response_headers) if outcome == "rate_limited" else None
        if block:  # the key's quota is used up: blocked until its reset (else only this request was refused)
            retry_after = block
        self.keys.release(lease, outcome, retry_after=retry_after, exhausted=block is not None)
        self._cause = attempt.request_id
        try:
            if is_breaker_failure(err):
                self.breaker.record_failure(permit)
            elif isinstance(err, InfermuxError) and not isinstance(err, DeadlineExceededError):
                self.breaker.record_neutral(permit)  # the server answered (e.g. a 4xx)
            else:
                self.breaker.record_ignored(permit)  # cancelled, abandoned, out of time: no evidence either way
        finally:
            self._cause = None
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "endpoint %s: request %s attempt %d failed: %s",
                self.name,
                attempt.request_id,
                attempt.number,
                type(err).__name__,
                extra=fields(self.name, attempt.request_id, attempt.number),
            )
