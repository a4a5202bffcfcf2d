"""Retry policy and pure retry decisions (no I/O, no sleeping: the endpoint sleeps on its clock).

The endpoint engine asks :func:`decide` after each failed attempt and sleeps the returned delay on
its :class:`~infermux.resilience.clock.Clock`; nothing here reads time or sleeps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .._ratelimit import parse_retry_after
from ..errors import (
    APIStatusError,
    ConfigurationError,
    DeadlineExceededError,
    InfermuxError,
    KeyPoolExhaustedError,
)

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "NO_RETRY",
    "RetryDecision",
    "RetryPolicy",
    "backoff_delay",
    "decide",
    "is_retryable",
    "parse_retry_after",
]

DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_JITTERS = ("full", "equal", "none")
#: Jitter added on top of a server-advertised delay: at most this fraction of it (never below it).
RETRY_AFTER_JITTER = 0.1


def _finite_nonneg(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"RetryPolicy.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How an endpoint retries a failed request.

    ``max_retries`` counts retries after the first attempt. Delays grow as
    ``initial_delay * factor**(n-1)`` capped at ``max_delay``, with jitter. ``deadline`` bounds all
    attempts and waits together (``None``: unbounded). A server's ``Retry-After`` replaces the backoff
    when ``respect_retry_after``; one above ``max_retry_after`` is not waited for and the error is raised.
    """

    max_retries: int = 5
    initial_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: Literal["full", "equal", "none"] = "full"
    deadline: float | None = 600.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    respect_retry_after: bool = True
    max_retry_after: float = 120.0
    #: a 2xx whose body is not the protocol's (truncated JSON, an HTML page) may already be billed: it is
    #: retried at most this many times per request (an incomplete *stream* follows the normal retry rule)
    max_malformed_retries: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(f"RetryPolicy.max_retries must be an int >= 0, got {self.max_retries!r}")
        _finite_nonneg("initial_delay", self.initial_delay)
        _finite_nonneg("max_delay", self.max_delay)
        _finite_nonneg("max_retry_after", self.max_retry_after)
        _finite_nonneg("factor", self.factor)
        if self.factor < 1:
            raise ConfigurationError(f"RetryPolicy.factor must be >= 1, got {self.factor!r}")
        if self.jitter not in _JITTERS:
            raise ConfigurationError(f"RetryPolicy.jitter must be one of {_JITTERS}, got {self.jitter!r}")
        if self.deadline is not None:
            _finite_nonneg("deadline", self.deadline)
            if self.deadline == 0:
                raise ConfigurationError("RetryPolicy.deadline must be > 0 (or None for no deadline)")
        try:
            statuses = frozenset(self.retry_statuses)
        except TypeError:
            raise ConfigurationError(
                f"RetryPolicy.retry_statuses must be a set of HTTP status codes, got {self.retry_statuses!r}"
            ) from None
        bad = [s for s in statuses if isinstance(s, bool) or not isinstance(s, int) or not 100 <= s <= 599]
        if bad:
            raise ConfigurationError(f"RetryPolicy.retry_statuses holds invalid HTTP statuses: {sorted(map(str, bad))}")
        object.__setattr__(self, "retry_statuses", statuses)
        m = self.max_malformed_retries
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise ConfigurationError(f"RetryPolicy.max_malformed_retries must be an int >= 0, got {m!r}")
        if not isinstance(self.respect_retry_after, bool):
            raise ConfigurationError("RetryPolicy.respect_retry_after must be a bool")


NO_RETRY = RetryPolicy(max_retries=0)


def backoff_delay(policy: RetryPolicy, retry_number: int, rand: Callable[[], float] = random.random) -> float:
    """The jittered exponential backoff before retry ``retry_number`` (1 for the first retry)."""
    n = max(1, retry_number)
    try:
        grown = policy.initial_delay * policy.factor ** (n - 1)
    except OverflowError:
        grown = math.inf
    base = min(policy.max_delay, grown)
    if policy.jitter == "none":
        return base
    r = min(1.0, max(0.0, rand()))
    if policy.jitter == "full":
        return r * base
    return base / 2 + r * base / 2


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or give up (``reason`` says why)."""

    retry: bool
    delay: float
    reason: str


def is_retryable(policy: RetryPolicy, error: BaseException) -> bool:
    """Whether sending the same request again may succeed, under ``policy``.

    For HTTP status errors the server's ``x-should-retry`` header (``error.should_retry_header``)
    wins when present; then an explicit per-instance ``retryable`` set by the provider; then the
    status must be in ``policy.retry_statuses``. Other infermux errors use their ``retryable``;
    anything that is not an :class:`~infermux.errors.InfermuxError` (including cancellation) is not
    retried.
    """
    if not isinstance(error, InfermuxError):
        return False
    if isinstance(error, (DeadlineExceededError, ConfigurationError, KeyPoolExhaustedError)):
        return False
    if isinstance(error, APIStatusError):
        header = getattr(error, "should_retry_header", None)
        if header is not None:
            return bool(header)
        if "retryable" in vars(error):  # set explicitly by whoever built the error
            return bool(error.retryable)
        if error.status_code is not None:
            return error.status_code in policy.retry_statuses
    return bool(error.retryable)


def decide(
    policy: RetryPolicy,
    error: BaseException,
    *,
    retry_number: int,
    elapsed: float,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """Decide whether to retry after ``error``.

    ``retry_number`` is the number the next retry would have (1 for the first retry); ``elapsed`` is
    the time spent on this request so far (all attempts and waits), for the policy's deadline.
    """
    if not is_retryable(policy, error):
        return RetryDecision(False, 0.0, f"not retryable: {type(error).__name__}")
    if retry_number > policy.max_retries:
        return RetryDecision(False, 0.0, f"max_retries ({policy.max_retries}) reached")
    retry_after = getattr(error, "retry_after", None)
    if policy.respect_retry_after and isinstance(retry_after, (int, float)) and not math.isnan(retry_after):
        if retry_after > policy.max_retry_after:
            return RetryDecision(
                False,
                0.0,
                f"server asked to wait {retry_after:g}s, above max_retry_after ({policy.max_retry_after:g}s)",
            )
        delay = max(float(retry_after), 0.0)
        if policy.jitter != "none" and delay > 0:
            r = min(1.0, max(0.0, rand()))
            delay = min(delay * (1 + RETRY_AFTER_JITTER * r), max(delay, policy.max_retry_after))
        reason = f"retry-after {retry_after:g}s"
    else:
        delay = backoff_delay(policy, retry_number, rand)
        reason = f"backoff {delay:.3f}s"
    if policy.deadline is not None and elapsed + delay >= policy.deadline:
        return RetryDecision(
            False, 0.0, f"deadline: {elapsed:.3f}s elapsed + {delay:.3f}s wait >= {policy.deadline:g}s"
        )
    return RetryDecision(True, delay, reason)
