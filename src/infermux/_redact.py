"""Scrubbing credentials out of errors: some servers echo the key, header or URL query they rejected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._validate import secret_header_values, url_secrets
from .errors import IncompleteStreamError, InfermuxError

__all__ = ["redact_error", "scrub", "secrets_of"]

REDACTED = "[redacted]"


def secrets_of(static_headers: Mapping[str, str], base_query: str, keys: Sequence[str] = ()) -> tuple[str, ...]:
    """An endpoint's credentials: its API keys, credential-like header values and URL query values."""
    found = tuple(keys) + secret_header_values(static_headers) + url_secrets(base_query)
    return tuple(sorted(set(found), key=len, reverse=True))  # longest first: "Bearer X" before "X"


#: a secret's first (or last) this many characters anywhere in a text are redacted too, with as much of the
#: secret as follows (precedes) them: error texts quote bodies cut at N characters, which can cut an echoed key
_MIN_PARTIAL = 8


def _scrub_heads(text: str, secret: str) -> str:
    head, start = secret[:_MIN_PARTIAL], 0
    while (i := text.find(head, start)) != -1:
        n = _MIN_PARTIAL
        while n < len(secret) and i + n < len(text) and text[i + n] == secret[n]:
            n += 1
        text = text[:i] + REDACTED + text[i + n :]
        start = i + len(REDACTED)
    return text


def _scrub_tails(text: str, secret: str) -> str:
    tail, end = secret[-_MIN_PARTIAL:], len(text)
    while (i := text.rfind(tail, 0, end)) != -1:
        stop, n = i + _MIN_PARTIAL, _MIN_PARTIAL
        while n < len(secret) and i - 1 >= 0 and text[i - 1] == secret[-n - 1]:
            i, n = i - 1, n + 1
        text = text[:i] + REDACTED + text[stop:]
        end = i
    return text


def _scrub_text(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    for s in secrets:
        if len(s) > _MIN_PARTIAL:
            text = _scrub_tails(_scrub_heads(text, s), s)
    return text


def scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (str, or dicts/lists/tuples of them) with every secret replaced by ``[redacted]``, also a
    secret cut short at either end of a text (a quoted body truncated in the middle of an echoed key)."""
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v, secrets) for v in value)
    return value


def redact_error(err: InfermuxError, secrets: tuple[str, ...]) -> None:
    """Remove ``secrets`` from an error's text and body, in place."""
    if not secrets:
        return
    err.message = scrub(err.message, secrets)
    err.args = scrub(err.args, secrets)
    err.provider_message = scrub(err.provider_message, secrets)
    err.body = scrub(err.body, secrets)
    if isinstance(err, IncompleteStreamError):
        err.partial_text = scrub(err.partial_text, secrets)
