"""Rate-limit headers that say a key's quota is used up, and when it comes back (pure parsing, no I/O).

OpenAI, Groq and compatible servers send ``x-ratelimit-remaining-{requests,tokens}`` with
``x-ratelimit-reset-{requests,tokens}`` as a duration (``6ms``, ``1.5s``, ``1m30s``, ``2h0m0s``); Anthropic sends
``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`` with ``-reset`` as an RFC 3339
time. A 429 whose headers show a dimension at 0 is a quota refusal (the key is blocked until the reset); one
without is a refusal of that request (capacity, burst), and says nothing about the next request.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from datetime import datetime

__all__ = ["parse_duration", "parse_retry_after", "quota_block_seconds"]

_DIMENSIONS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
    ("anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"),
    ("anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"),
)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str | None) -> float | None:
    """A Go-style duration (``"2m59.56s"``, ``"7.66s"``, ``"120ms"``, ``"1h2m"``) or plain seconds (``"12"``)
    in seconds; ``None`` when absent or not a duration (header values are untrusted)."""
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    try:
        v = float(s)
    except ValueError:
        pass
    else:
        return v if v >= 0 and v == v and v != float("inf") else None
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total if pos == len(s) and pos > 0 else None


def _reset_seconds(value: str, now: float) -> float | None:
    d = parse_duration(value)
    if d is not None:
        return d
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    return max(0.0, at.timestamp() - now)


def quota_block_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """How long the key is out of quota (the latest reset of the dimensions at 0), or ``None`` when no
    dimension is at 0. A dimension at 0 whose reset cannot be read gives ``0.0`` (the caller falls back to the
    response's ``retry-after``)."""
    wall = time.time() if now is None else now
    block: float | None = None
    for remaining, reset in _DIMENSIONS:
        if headers.get(remaining, "").strip() != "0":
            continue
        secs = _reset_seconds(headers.get(reset, ""), wall)
        block = max(block or 0.0, secs or 0.0)
    return block


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The server's requested delay in seconds, from ``retry-after-ms`` (preferred, fractional
    milliseconds), or ``retry-after`` as delta-seconds or an HTTP date. ``None`` when absent or
    unparseable; negative values clamp to 0. ``now`` is wall-clock seconds (for HTTP dates)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            v = float(ms)
        except ValueError:
            v = float("nan")
        if v == v and v not in (float("inf"), float("-inf")):
            return max(0.0, v / 1000.0)
    ra = headers.get("retry-after")
    if ra is None:
        return None
    ra = ra.strip()
    try:
        v = float(ra)
        if v != v or v in (float("inf"), float("-inf")):
            return None
        return max(0.0, v)
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    wall = time.time() if now is None else now
    return max(0.0, dt.timestamp() - wall)
