"""Scrubbing credentials out of errors: some servers echo the key, header or URL query they rejected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._validate import secret_header_values, url_secrets
from .errors import IncompleteStreamError, InfermuxError

__all__ = ["redact_error", "scrub", "secrets_of"]

REDACTED = "[redacted]"


def secrets_of(static_headers: Mapping[str, str], base_query: str) -> tuple[str, ...]:
    """An endpoint's credentials other than its API keys: credential-like header values and URL query values."""
    found = secret_header_values(static_headers) + url_secrets(base_query)
    return tuple(sorted(set(found), key=len, reverse=True))  # longest first: "Bearer X" before "X"


def scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (str, or dicts/lists/tuples of them) with every secret replaced by ``[redacted]``."""
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, REDACTED)
        return value
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
