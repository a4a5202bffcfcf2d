"""Per-key request and token rate limits (in-process), and the token estimate a request is admitted on.

Each virtual key with ``rpm``/``tpm`` gets two token buckets (capacity = the per-minute limit, refilled
continuously). A request takes 1 from the RPM bucket and its *estimate* (prompt tokens estimated from the
body + the output tokens it may use) from the TPM bucket when it is admitted; when it ends, the TPM bucket
is settled with the real usage (the difference is given back or taken). A refusal says how long until the
request would fit (``retry_after``). Time comes from an injectable :class:`~infermux.resilience.clock.Clock`.
These buckets hold per process; with ``state = "redis"`` the same windows live in Redis, shared by every
replica (:mod:`.redis_state`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..resilience.clock import SYSTEM_CLOCK, Clock
from ..types import ChatRequest, ImagePart

__all__ = ["Admission", "KeyLimiter", "TokenBucket", "estimate_tokens", "prompt_token_bound"]

#: output tokens assumed for a request that sets no max_tokens, when a TPM limit applies
DEFAULT_OUTPUT_ESTIMATE = 1024


def estimate_tokens(req: ChatRequest, *, default_output: int = DEFAULT_OUTPUT_ESTIMATE) -> tuple[int, int]:
    """``(prompt, output)`` token estimates: about 4 characters per token of the messages' text (plus a few
    per message), and ``max_tokens`` (or ``default_output``)."""
    chars = sum(len(m.text) + len(m.role) + 8 for m in req.messages)
    chars += sum(len(t.name) + len(t.description) + len(str(t.parameters)) for t in req.tools)
    return max(1, chars // 4), req.max_tokens or default_output


#: tokens an image may count for (OpenAI's high-detail tiles of a large image: about 1,100; Anthropic: ~1,600)
IMAGE_TOKEN_BOUND = 2000
#: tokens a chat template adds per message (role markers; ChatML and Llama 3 use 5) and once (the reply's header)
MESSAGE_TOKEN_BOUND = 8
TEMPLATE_TOKEN_BOUND = 4


def prompt_token_bound(req: ChatRequest) -> int:
    """An upper bound of the prompt's tokens, for budget reservations: byte-level tokenizers (BPE over UTF-8, as
    most models use) never make more tokens than bytes, so the text's UTF-8 bytes, plus the template's markers
    per message, plus :data:`IMAGE_TOKEN_BOUND` per image, plus the tools' and response schema's JSON. About four
    times the usual count for English: the unused part of a reservation is given back when the request settles."""
    n = TEMPLATE_TOKEN_BOUND
    for m in req.messages:
        n += MESSAGE_TOKEN_BOUND + len(m.text.encode("utf-8", "surrogatepass")) + len(m.name or "")
        if isinstance(m.content, tuple):
            n += IMAGE_TOKEN_BOUND * sum(isinstance(p, ImagePart) for p in m.content)
        for call in m.tool_calls:
            n += MESSAGE_TOKEN_BOUND + len(call.name) + len(call.raw_arguments.encode("utf-8", "surrogatepass"))
    for t in req.tools:
        n += MESSAGE_TOKEN_BOUND + len(json.dumps([t.name, t.description, t.parameters], default=str).encode())
    if req.response_format is not None and req.response_format.schema is not None:
        n += len(json.dumps(req.response_format.schema, default=str).encode())
    return n


class TokenBucket:
    """``capacity`` tokens, refilled at ``capacity`` per ``period`` seconds; may go negative on settlement."""

    __slots__ = ("_at", "_level", "capacity", "clock", "rate")

    def __init__(self, capacity: float, period: float = 60.0, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / period
        self.clock = clock
        self._level = self.capacity
        self._at = clock.now()

    def _refill(self) -> None:
        now = self.clock.now()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
        self._at = now

    @property
    def level(self) -> float:
        self._refill()
        return self._level

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (0: now). A request larger than the capacity waits for a
        full bucket (it is not refused forever)."""
        self._refill()
        need = min(amount, self.capacity) - self._level
        return 0.0 if need <= 0 else need / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self._level -= amount

    def give(self, amount: float) -> None:
        self._refill()
        self._level = min(self.capacity, self._level + amount)


@dataclass(slots=True)
class Admission:
    """What a request reserved: settle it with the real token count when it ends."""

    key_id: str
    reserved_tokens: int
    cost: float = 0.0  # estimated cost reserved against the key's budget (USD)
    #: the shared store's handle of the reservation (Redis: its ID), and the key's TPM limit when admitted
    reservation: str | None = None
    tpm: int | None = None
    #: admitted without limits because the shared store was unreachable (fail-open): nothing to settle
    unlimited: bool = False


class KeyLimiter:
    """RPM/TPM buckets per key ID, created on first use."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._rpm: dict[str, TokenBucket] = {}
        self._tpm: dict[str, TokenBucket] = {}

    def _bucket(self, table: dict[str, TokenBucket], key_id: str, limit: int) -> TokenBucket:
        b = table.get(key_id)
        if b is None or b.capacity != limit:
            b = table[key_id] = TokenBucket(limit, clock=self.clock)
        return b

    def admit(self, key_id: str, rpm: int | None, tpm: int | None, tokens: int) -> Admission | float:
        """Reserve one request and ``tokens`` for ``key_id``; or the seconds to wait when a limit is reached."""
        rb = self._bucket(self._rpm, key_id, rpm) if rpm else None
        tb = self._bucket(self._tpm, key_id, tpm) if tpm else None
        wait = rb.wait_for(1) if rb is not None else 0.0
        if tb is not None:
            wait = max(wait, tb.wait_for(tokens))
        if wait > 0:
            return wait
        # both buckets were refilled just now (wait_for): take without reading the clock again
        if rb is not None:
            rb._level -= 1
        if tb is not None:
            tb._level -= tokens
        return Admission(key_id, tokens if tb is not None else 0)

    def settle(self, admission: Admission, used_tokens: int | None) -> None:
        """Replace the reservation by the real usage (``None``: unknown, the reservation stands)."""
        tb = self._tpm.get(admission.key_id)
        if tb is None or used_tokens is None or not admission.reserved_tokens:
            return
        diff = admission.reserved_tokens - used_tokens
        if diff > 0:
            tb.give(diff)
        elif diff < 0:
            tb.take(-diff)
