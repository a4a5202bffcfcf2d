"""The per-endpoint resilience engine's state machines: retry decisions, circuit breaker, priority
admission queue and API-key pool. All are pure (no I/O) and read time through an injectable clock."""

from __future__ import annotations

from .breaker import BreakerConfig, BreakerState, CircuitBreaker, is_breaker_failure
from .clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock
from .deadline import Deadline
from .keypool import KeyLease, KeyOutcome, KeyPool
from .queue import PriorityGate
from .retry import (
    DEFAULT_RETRY_STATUSES,
    NO_RETRY,
    RetryDecision,
    RetryPolicy,
    backoff_delay,
    decide,
    is_retryable,
    parse_retry_after,
)
from .store import MemoryStore, StateStore

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "NO_RETRY",
    "SYSTEM_CLOCK",
    "BreakerConfig",
    "BreakerState",
    "CircuitBreaker",
    "Clock",
    "Deadline",
    "FakeClock",
    "KeyLease",
    "KeyOutcome",
    "KeyPool",
    "MemoryStore",
    "PriorityGate",
    "RetryDecision",
    "RetryPolicy",
    "StateStore",
    "SystemClock",
    "backoff_delay",
    "decide",
    "is_breaker_failure",
    "is_retryable",
    "parse_retry_after",
]
