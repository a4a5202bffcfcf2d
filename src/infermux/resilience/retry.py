"""Retry policy and pure retry decisions (no I/O, no sleeping: the endpoint sleeps on its clock)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

__all__ = ["parse_retry_after"]


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
