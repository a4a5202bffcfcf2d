"""Loads recorded provider traffic (format: ../shared/fixtures/recorded/README.md).

The folder comes from ``INFERMUX_RECORDINGS`` (default: the shared folder beside the checkout), so the
same tests run unchanged on any other set of recordings in the same format.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "recorded"


def recordings_dir() -> Path:
    return Path(os.environ.get("INFERMUX_RECORDINGS") or _DEFAULT)


def recordings_problem() -> str | None:
    """Why the recorded-traffic tests cannot run here (folder missing or without recordings), else ``None``."""
    root = recordings_dir()
    source = "INFERMUX_RECORDINGS" if os.environ.get("INFERMUX_RECORDINGS") else "the default ../shared folder"
    if not root.is_dir():
        return f"recordings folder {root} (from {source}) does not exist"
    if next((p for p in root.rglob("*.json") if p.name != "manifest.json"), None) is None:
        return f"recordings folder {root} (from {source}) holds no recordings (*.json)"
    return None


@dataclass(frozen=True)
class Recording:
    path: Path
    data: dict[str, Any]

    @property
    def provider(self) -> str:
        return str(self.data["provider"])

    @property
    def kinds(self) -> list[str]:
        return list(self.data.get("kinds") or [])

    @property
    def request(self) -> dict[str, Any]:
        return dict(self.data["request"])

    @property
    def response(self) -> dict[str, Any]:
        return dict(self.data["response"])

    @property
    def endpoint_kind(self) -> str | None:
        for k in self.kinds:
            if k.startswith("endpoint:"):
                return k.split(":", 1)[1]
        return None

    def response_bytes(self) -> bytes:
        """The response body as the wire carried it (decoded): SSE raw text, NDJSON lines, JSON or text."""
        r = self.response
        if "raw_body" in r:
            return str(r["raw_body"]).encode()
        if "ndjson" in r:
            return "".join(json.dumps(o) + "\n" for o in r["ndjson"]).encode()
        if "body" in r:
            return json.dumps(r["body"]).encode()
        if "body_text" in r:
            return str(r["body_text"]).encode()
        return b""

    def response_headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in (self.response.get("headers") or {}).items():
            out[k.lower()] = v[-1] if isinstance(v, list) else str(v)
        return out

    def __str__(self) -> str:
        return f"{self.provider}/{self.path.name}"


def load(providers: set[str]) -> list[Recording]:
    """Every recording of the given recorded-provider names, sorted by path (empty if the folder is absent)."""
    root = recordings_dir()
    out: list[Recording] = []
    if not root.is_dir():
        return out
    for p in sorted(root.rglob("*.json")):
        if p.name == "manifest.json":
            continue
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("provider") in providers and "request" in data:
            out.append(Recording(p, data))
    return out
