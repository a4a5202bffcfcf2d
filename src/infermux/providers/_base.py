"""What a provider module is: pure translation between infermux types and one backend's wire protocol.

A provider module does no I/O. It exposes a :class:`Provider` value (named ``PROVIDER``) that bundles:

- ``build_chat(request, model, stream) -> ProviderRequest``
- ``parse_chat(body: bytes, headers) -> ChatResponse`` (only the fields the wire carries)
- ``new_stream_parser() -> StreamParser`` (feed bytes, get :mod:`infermux.types` stream events)
- ``build_embed`` / ``parse_embed`` where the backend embeds
- ``classify_error(status, headers, body) -> APIStatusError`` (typed, with the provider's error type,
  message, request ID and the advertised retry delay)
- ``auth_headers(key) -> dict`` and the header names that carry the provider's request ID.

The endpoint engine (``infermux.endpoint``) supplies URL, keys, resilience and I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import APIStatusError, MalformedResponseError, OverloadedError, status_error_class
from ..types import ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, StreamEvent

__all__ = [
    "Provider",
    "ProviderRequest",
    "StreamParser",
    "decode_json",
    "error_from_body",
    "first_header",
    "header",
]


@dataclass(slots=True)
class ProviderRequest:
    """A request as the provider wants it. ``path`` is relative to the endpoint's base URL and may
    carry a query string; ``json`` is the body to encode (``None`` for GET); ``content`` is a raw body sent
    as-is when ``json`` is ``None`` (e.g. KServe's binary tensor extension)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    stream: bool = False
    content: bytes | None = None


class StreamParser(Protocol):
    """Incremental parser of one streamed response body."""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Parse the next chunk (any split, even mid-line); raises ``MalformedResponseError`` on bad data."""
        ...

    def close(self) -> list[StreamEvent]:
        """The body ended: flush, and raise ``IncompleteStreamError`` if the terminal marker never came."""
        ...


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    default_base_url: str
    build_chat: Callable[[ChatRequest, str, bool], ProviderRequest]
    parse_chat: Callable[[bytes, Mapping[str, str]], ChatResponse]
    new_stream_parser: Callable[[], StreamParser]
    classify_error: Callable[[int, Mapping[str, str], bytes], APIStatusError]
    auth_headers: Callable[[str], dict[str, str]]
    request_id_headers: tuple[str, ...] = ("x-request-id", "request-id")
    build_embed: Callable[[EmbedRequest, str], ProviderRequest] | None = None
    parse_embed: Callable[[bytes, Mapping[str, str]], EmbedResponse] | None = None
    #: extra native calls, e.g. llama.cpp's ``/tokenize``: name -> builder of a ProviderRequest
    models_path: str = "/models"
    #: provider-specific numbers of a response payload (e.g. Groq's queue/prompt/completion times), summed
    #: per endpoint into ``stats()["provider_metrics"]``
    response_metrics: Callable[[Any], Mapping[str, float]] | None = None
    #: native model listing; when unset, ``GET models_path`` is parsed as OpenAI's ``{"data": [{"id"}]}``
    build_models: Callable[[], ProviderRequest] | None = None
    parse_models: Callable[[bytes, Mapping[str, str]], list[str]] | None = None
    capabilities: frozenset[str] = frozenset()
    description: str = ""
    #: the route an active health probe GETs (2xx = up), relative to the server root (the base URL without a
    #: trailing ``/v1``-style version segment); ``None``: the provider has none and probes list the models
    health_path: str | None = None

    def provider_request_id(self, headers: Mapping[str, str]) -> str | None:
        return first_header(headers, self.request_id_headers)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (our transports lower-case names already)."""
    v = headers.get(name)
    if v is None:
        v = headers.get(name.lower())
    return v


def first_header(headers: Mapping[str, str], names: Iterable[str]) -> str | None:
    """The first non-empty header of ``names`` (e.g. the request-id headers a provider sends)."""
    for name in names:
        v = header(headers, name)
        if v:
            return v
    return None


_scan: Any = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009 - the C scanner (json.loads' default decoder's)
_space: Any = getattr(json.decoder, "WHITESPACE").match  # noqa: B009 - not in the type stubs


def _loads(body: bytes) -> Any:
    """``json.loads(body)``: the same values and errors, without its encoding detection and two Python frames
    for the usual body, UTF-8 text that opens with ``{`` (any other body goes to ``json.loads``)."""
    if body[:1] != b"{" or body[1:2] == b"\x00":  # not an object, or UTF-16/32: json.loads detects the encoding
        return json.loads(body)
    return loads_text(body.decode("utf-8", "surrogatepass"))  # what json.loads decodes UTF-8 with


def loads_text(s: str) -> Any:
    """``json.loads(s)`` for text: the same values and errors, without its two Python frames for an object."""
    if s[:1] != "{":
        return json.loads(s)
    try:
        obj, end = _scan(s, 0)
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", s, err.value) from None
    end = _space(s, end).end()
    if end != len(s):
        raise json.JSONDecodeError("Extra data", s, end)
    return obj


def decode_json(body: bytes, headers: Mapping[str, str], *, provider: str, what: str = "response") -> Any:
    """Decode a 2xx JSON body or raise :class:`MalformedResponseError` (never a raw ``JSONDecodeError``)."""
    ctype = (header(headers, "content-type") or "").lower()
    if ctype and "json" not in ctype:
        snippet = body[:200].decode("utf-8", "replace")
        raise MalformedResponseError(
            f"{provider} {what}: expected JSON but got content-type {ctype!r}: {snippet!r}",
            provider=provider,
            body=snippet,
        )
    try:
        return _loads(body)
    except ValueError as e:
        snippet = body[:200].decode("utf-8", "replace")
        raise MalformedResponseError(
            f"{provider} {what}: body is not valid JSON ({e}): {snippet!r}", provider=provider, body=snippet
        ) from e


def error_from_body(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    error_type: str | None,
    message: str | None,
    parsed: Any,
    retry_after: float | None,
    provider_request_id: str | None,
    retryable: bool | None = None,
    overloaded: bool = False,
) -> APIStatusError:
    """Build the typed status error from what a provider's ``classify_error`` extracted; ``overloaded``
    makes it an :class:`OverloadedError` whatever the status (e.g. a 429 that means "at capacity")."""
    cls = OverloadedError if overloaded else status_error_class(status)
    text = message or body[:300].decode("utf-8", "replace") or f"HTTP {status}"
    return cls(
        f"{provider} returned HTTP {status}" + (f" ({error_type})" if error_type else "") + f": {text}",
        provider=provider,
        status_code=status,
        error_type=error_type,
        provider_message=message,
        provider_request_id=provider_request_id,
        retry_after=retry_after,
        retryable=retryable,
        body=parsed if parsed is not None else body[:2000].decode("utf-8", "replace"),
    )
