"""Wire helpers for the synthetic recordings of ``_variants``: the documented recording format
(fixtures/recorded/README.md), SSE framing exactly as the shared set stores it, and shared fragments."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DATE", "WEATHER_TOOL", "Variant", "rec", "sse", "sse_events_of"]


@dataclass(frozen=True)
class Variant:
    name: str
    data: dict[str, Any]
    #: sides whose check is expected to skip, with the reason we accept ("request": e.g. a history that
    #: neutral messages cannot express)
    skips: dict[str, str] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return str(self.data["provider"])


# --------------------------------------------------------------------------- wire helpers


def sse_events_of(raw: str) -> list[dict[str, Any]]:
    """The ``sse_events`` list of a raw SSE text, per the SSE spec (as the README documents)."""
    events: list[dict[str, Any]] = []
    name: str | None = None
    data: list[str] = []
    extra: dict[str, str] = {}
    for line in raw.replace("\r\n", "\n").split("\n"):
        if line == "":
            if data:
                events.append({"event": name, "data": "\n".join(data), **extra})
            name, data, extra = None, [], {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
        elif key in ("id", "retry"):
            extra[key] = value
    return events


def sse(items: list[tuple[str | None, Any]], *, space: bool = True, comments: tuple[str, ...] = ()) -> dict[str, Any]:
    """``raw_body`` + ``sse_events`` for ``(event name, payload)`` items (payload: object or raw string)."""
    parts = [f": {c}\n\n" for c in comments]
    sep = ": " if space else ":"
    for name, payload in items:
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        parts.append((f"event: {name}\n" if name else "") + f"data{sep}{data}\n\n")
    raw = "".join(parts)
    return {"sse_events": sse_events_of(raw), "raw_body": raw}


def rec(  # noqa: PLR0917 - one positional per field of the documented format, in its order
    provider: str,
    kinds: list[str],
    method: str,
    host: str,
    path: str,
    req_headers: dict[str, Any],
    req_body: Any,
    status: int,
    resp_headers: dict[str, Any],
    **response: Any,
) -> dict[str, Any]:
    if status >= 400 and "error" not in kinds:
        kinds = [*kinds, "error"]
    return {
        "provider": provider,
        "source": {"package": "infermux-variants", "version": "0", "origin": "synthetic", "interaction_index": 0},
        "kinds": kinds,
        "request": {"method": method, "host": host, "path": path, "headers": req_headers, "body": req_body},
        "response": {"status": status, "headers": resp_headers, **response},
        "notes": ["synthetic variant derived from the shared recordings' wire shapes"],
    }


DATE = "Tue, 02 Jun 2026 10:00:00 GMT"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
