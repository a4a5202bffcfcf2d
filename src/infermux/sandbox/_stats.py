"""What reached the sandbox: per-route and per-fault counts, concurrency, and the latest requests' IDs.

The request log is a ring buffer of ``max_records`` entries (default :data:`DEFAULT_MAX_RECORDS`): a sandbox
left running keeps bounded memory. Counters (``total``, ``routes``, ``faults``) count every request; the
log keeps the latest ones and ``dropped`` says how many older records were discarded.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

from infermux.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_RECORDS", "RequestRecord", "SandboxStats"]

#: requests kept in the log by default (about 300 bytes each: a few MB at most)
DEFAULT_MAX_RECORDS = 10_000

# Headers read for the attempt number, first match wins (ours, then the OpenAI/Anthropic SDKs' retry count).
ATTEMPT_HEADERS = ("x-infermux-attempt", "x-stainless-retry-count")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the server saw it."""

    route: str  # "POST /v1/chat/completions"
    request_id: str | None  # the client's X-Request-ID
    attempt: int | None  # from x-infermux-attempt, else x-stainless-retry-count
    idempotency_key: str | None
    server_request_id: str  # the id the sandbox answered with
    fault: str | None  # fault label applied ("status:429", "reset"...), None if none
    fault_source: str | None  # header / queue / outage / capacity / default / random
    received_at: float


class SandboxStats:
    """Counters and a bounded request log (the latest ``max_records``); thread-safe reads (``snapshot()``
    returns plain JSON-able data)."""

    def __init__(self, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        if not isinstance(max_records, int) or isinstance(max_records, bool) or max_records < 1:
            raise ConfigurationError(f"max_records must be an int >= 1, got {max_records!r}")
        self.max_records = max_records
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._routes: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._records: deque[RequestRecord] = deque(maxlen=self.max_records)
            self._total = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.completed = 0
            self._hung_up: deque[str | None] = deque(maxlen=self.max_records)
            self._hung_up_total = 0

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self._routes[rec.route] += 1
            if rec.fault is not None:
                self._faults[rec.fault] += 1
            self._records.append(rec)  # the oldest record drops out once max_records are kept
            self._total += 1

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.completed += 1

    def hung_up(self, request_id: str | None) -> None:
        """A client closed its connection before its answer was sent whole (noticed while stalling before the
        headers, ``slow_headers``, or when reading the request or writing the answer)."""
        with self._lock:
            self._hung_up.append(request_id)
            self._hung_up_total += 1

    @property
    def hung_up_total(self) -> int:
        """Requests whose client closed the connection before the answer was sent whole, all of them."""
        with self._lock:
            return self._hung_up_total

    @property
    def hung_up_ids(self) -> list[str | None]:
        """The client X-Request-ID of the latest ``max_records`` of those requests, oldest first."""
        with self._lock:
            return list(self._hung_up)

    @property
    def total(self) -> int:
        """Requests received on protocol routes (control routes are not counted), all of them."""
        with self._lock:
            return self._total

    @property
    def dropped(self) -> int:
        """Records discarded from the log (the oldest ones) to keep it within ``max_records``."""
        with self._lock:
            return self._total - len(self._records)

    @property
    def routes(self) -> dict[str, int]:
        with self._lock:
            return dict(self._routes)

    @property
    def faults(self) -> dict[str, int]:
        with self._lock:
            return dict(self._faults)

    @property
    def records(self) -> list[RequestRecord]:
        """The latest ``max_records`` requests, oldest first."""
        with self._lock:
            return list(self._records)

    def request_ids(self) -> list[str | None]:
        """The client X-Request-ID of every logged request, in arrival order (None where absent)."""
        return [r.request_id for r in self.records]

    def duplicates(self) -> dict[str, int]:
        """Client request IDs seen more than once with the same attempt number (a request sent twice)."""
        seen = Counter((r.request_id, r.attempt) for r in self.records if r.request_id is not None)
        return {rid: n for (rid, _), n in seen.items() if n > 1}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._total,
                "max_records": self.max_records,
                "dropped": self._total - len(self._records),
                "routes": dict(self._routes),
                "faults": dict(self._faults),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "completed": self.completed,
                "hung_up": self._hung_up_total,
                "requests": [asdict(r) for r in self._records],
            }
