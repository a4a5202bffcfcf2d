"""A small, pure parser of the Prometheus text exposition format (``GET /metrics``), no I/O.

Only what clients of inference servers need: samples (name, labels, value) and a few lookups. Comments
(``# HELP``/``# TYPE``), timestamps and exemplars are skipped; bad lines raise ``MalformedResponseError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import MalformedResponseError

__all__ = ["Sample", "parse_prometheus", "sample_sum", "sample_value"]


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


def _bad(line: str, why: str) -> MalformedResponseError:
    return MalformedResponseError(f"prometheus metrics: {why}: {line[:200]!r}")


def _labels(text: str, line: str) -> dict[str, str]:
    """``a="x",b="y\\"z"`` -> dict (escapes: ``\\\\``, ``\\"``, ``\\n``)."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= n or text[eq + 1] != '"':
            raise _bad(line, "bad label")
        name = text[i:eq].strip()
        j, buf = eq + 2, []
        while j < n and text[j] != '"':
            if text[j] == "\\" and j + 1 < n:
                buf.append({"n": "\n", "\\": "\\", '"': '"'}.get(text[j + 1], "\\" + text[j + 1]))
                j += 2
                continue
            buf.append(text[j])
            j += 1
        if j >= n:
            raise _bad(line, "unterminated label value")
        out[name] = "".join(buf)
        i = j + 1
    return out


def _value(text: str, line: str) -> float:
    token = text.strip().split()[0] if text.strip() else ""
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if token in special:
        return special[token]
    try:
        return float(token)
    except ValueError:
        raise _bad(line, "bad sample value") from None


def parse_prometheus(text: str | bytes) -> list[Sample]:
    """Every sample in a Prometheus text exposition, in order."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace >= 0 and (space < 0 or brace < space):
            close = line.rfind("}")
            if close < brace:
                raise _bad(line, "unbalanced braces")
            name, labels, rest = line[:brace], _labels(line[brace + 1 : close], line), line[close + 1 :]
        else:
            name, _, rest = line.partition(" ")
            labels = {}
        if not name or not rest.strip():
            raise _bad(line, "sample without a value")
        out.append(Sample(name.strip(), _value(rest.split("#")[0], line), labels))
    return out


def sample_value(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    """The first sample named ``name`` whose labels include ``labels``; ``None`` when absent."""
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def sample_sum(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    """The sum of every sample named ``name`` (e.g. a counter split by labels); ``None`` when absent."""
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found) if found else None
