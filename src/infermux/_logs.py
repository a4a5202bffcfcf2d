"""Structured fields of infermux's log records.

Every record the ``infermux`` logger emits on a call's path carries, as record attributes (``extra``), the
``request_id`` of the call (``None`` on lines no single call caused: health transitions, probes, a breaker
moving to half-open with time), the ``endpoint`` and the ``attempt`` number (``None`` when not about one
attempt), so a JSON formatter reads them as ``record.request_id``... without parsing the message. Keys never
appear: an attempt is named by its key's label (``key#1:3f2a9c``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["fields"]


def fields(endpoint: str | None, request_id: str | None, attempt: int | None = None, **more: Any) -> dict[str, Any]:
    """The ``extra`` of one log record."""
    return {"request_id": request_id, "endpoint": endpoint, "attempt": attempt, **more}
