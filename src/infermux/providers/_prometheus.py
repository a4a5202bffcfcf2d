"""A small, pure parser of the Prometheus text exposition format (``GET /metrics``), no I/O.

One sample per line: ``name{label="value",...} value [timestamp] [# {exemplar labels} value [ts]]``.
Comments (``# HELP``/``# TYPE``), timestamps and exemplars are skipped; label values are unescaped
(``\\\\``, ``\\"``, ``\\n``); ``+Inf``/``-Inf``/``NaN`` are floats. A line that is not a valid sample (bad
metric or label name, unterminated label value, no value, a bad value or timestamp, extra tokens) raises
``MalformedResponseError`` carrying the provider name when one is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import MalformedResponseError

__all__ = ["Sample", "parse_prometheus", "sample_sum", "sample_value", "samples_by_name"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,?)\s*')
_ESCAPE = re.compile(r'\\[\\"n]')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
_TIMESTAMP = re.compile(r"-?\d+")


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


def _bad(line: str, why: str, provider: str | None) -> MalformedResponseError:
    prefix = f"{provider}: " if provider else ""
    return MalformedResponseError(
        f"{prefix}prometheus metrics: {why}: {line[:200]!r}", provider=provider, body=line[:200]
    )


def _labels(line: str, pos: int, provider: str | None) -> tuple[dict[str, str], int]:
    """The label set opening at ``line[pos] == "{"``; returns it and the index after the closing brace."""
    out: dict[str, str] = {}
    pos += 1
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if line.startswith("}", pos):
            return out, pos + 1
        m = _LABEL.match(line, pos)
        if m is None:
            raise _bad(line, "bad label set", provider)
        out[m.group(1)] = _ESCAPE.sub(lambda e: _UNESCAPE[e.group(0)], m.group(2))
        pos = m.end()
        if not m.group(3) and not line.startswith("}", pos):
            raise _bad(line, "bad label set", provider)


def _sample(line: str, provider: str | None) -> Sample:
    m = _NAME.match(line)
    if m is None:
        raise _bad(line, "bad metric name", provider)
    labels: dict[str, str] = {}
    pos = m.end()
    if line.startswith("{", pos):
        labels, pos = _labels(line, pos, provider)
    rest, _, exemplar = line[pos:].partition("#")
    if exemplar and not exemplar.strip().startswith("{"):
        raise _bad(line, "bad exemplar", provider)
    tokens = rest.split()
    if not rest[:1].isspace() or not 1 <= len(tokens) <= 2:
        raise _bad(line, "expected 'name[{labels}] value [timestamp]'", provider)
    if len(tokens) == 2 and not _TIMESTAMP.fullmatch(tokens[1]):
        raise _bad(line, "bad timestamp", provider)
    try:
        value = float(tokens[0])  # also +Inf, -Inf, NaN
    except ValueError:
        raise _bad(line, "bad sample value", provider) from None
    return Sample(m.group(0), value, labels)


def parse_prometheus(text: str | bytes, *, provider: str | None = None) -> list[Sample]:
    """Every sample in a Prometheus text exposition, in order."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(_sample(line, provider))
    return out


def samples_by_name(samples: Iterable[Sample]) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``{metric: [(labels, value), ...]}`` in file order."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for s in samples:
        out.setdefault(s.name, []).append((dict(s.labels), s.value))
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
