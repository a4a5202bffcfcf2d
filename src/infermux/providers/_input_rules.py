"""Inputs a provider's API documents as invalid, refused before any I/O (pure, no I/O).

Each provider states what it takes; a request that breaks its rules raises :class:`ConfigurationError` in
``build_chat`` (never sent, never retried) naming the provider, the field and the rule:

- images: the media type must be one the provider lists (all: an ``image/*`` type); inline data must be
  valid base64; a URL must use a scheme the provider fetches (``http``/``https``; Gemini also ``gs://``
  file URIs), never ``ftp://``, ``file://`` or others;
- tools: names must match the provider's pattern and length, and be unique within a request (a call names
  its tool: two tools of one name make the call ambiguous, and Anthropic refuses them).

=============  ==================================  =====================================================
provider       image media types                   tool name
=============  ==================================  =====================================================
openai (+Azure, Responses)  png, jpeg, gif, webp   ``^[a-zA-Z0-9_-]{1,64}$``
anthropic      jpeg, png, gif, webp                ``^[a-zA-Z0-9_-]{1,128}$``
gemini         png, jpeg, webp, heic, heif (+ pdf,  letter or ``_`` first, then ``a-zA-Z0-9_.:-``, 64 at most
               text/plain, audio, video inline)
compatible     any ``image/*`` (the model decides)  unique and non-empty only
=============  ==================================  =====================================================
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..types import ChatRequest, ImagePart

__all__ = ["ANTHROPIC", "COMPATIBLE", "GEMINI", "OPENAI", "InputRules", "check_inputs"]


@dataclass(frozen=True, slots=True)
class InputRules:
    """What one provider accepts; ``image_types=None``: any ``image/*`` type; ``tool_name=None``: any name."""

    image_types: frozenset[str] | None
    url_schemes: frozenset[str] = frozenset(("http", "https"))
    tool_name: re.Pattern[str] | None = None
    tool_name_rule: str = ""
    #: other inline media the API reads through the same part (Gemini: PDFs, plain text, audio, video)
    other_media: re.Pattern[str] | None = None


_WEB = frozenset(("http", "https"))
OPENAI = InputRules(
    frozenset(("image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp")),
    _WEB,
    re.compile(r"[a-zA-Z0-9_-]{1,64}"),
    "letters, digits, '_' and '-', 64 at most",
)
ANTHROPIC = InputRules(
    frozenset(("image/jpeg", "image/png", "image/gif", "image/webp")),
    _WEB,
    re.compile(r"[a-zA-Z0-9_-]{1,128}"),
    "letters, digits, '_' and '-', 128 at most",
)
GEMINI = InputRules(
    frozenset(("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")),
    frozenset(("http", "https", "gs")),
    re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}"),
    "a letter or '_' first, then letters, digits, '_', '.', ':' or '-', 64 at most",
    re.compile(r"application/pdf|text/plain|audio/[\w.+-]+|video/[\w.+-]+"),
)
COMPATIBLE = InputRules(None, _WEB)


def _check_image(p: ImagePart, provider: str, rules: InputRules, where: str) -> None:
    if p.url is not None:
        scheme = urlsplit(p.url).scheme.lower()
        if scheme not in rules.url_schemes:
            allowed = ", ".join(sorted(f"{s}://" for s in rules.url_schemes))
            raise ConfigurationError(
                f"{provider}: {where}: image URL scheme {scheme + '://' if scheme else '(none)'} is not fetched by"
                f" this API (use {allowed}, or inline data): {p.url[:80]!r}"
            )
        return
    media = (p.media_type or "").lower()
    ok = media.startswith("image/") if rules.image_types is None else media in rules.image_types
    ok = ok or bool(rules.other_media and rules.other_media.fullmatch(media))
    if not ok:
        allowed = "any image/* type" if rules.image_types is None else ", ".join(sorted(rules.image_types))
        raise ConfigurationError(f"{provider}: {where}: image media type {p.media_type!r} is not supported ({allowed})")
    try:
        base64.b64decode(p.data or "", validate=True)
    except ValueError as e:
        raise ConfigurationError(f"{provider}: {where}: image data is not valid base64 ({e})") from None


def _check_tools(req: ChatRequest, provider: str, rules: InputRules) -> None:
    seen: set[str] = set()
    for i, t in enumerate(req.tools):
        if rules.tool_name is not None and not rules.tool_name.fullmatch(t.name):
            raise ConfigurationError(f"{provider}: tools[{i}]: invalid tool name {t.name!r} ({rules.tool_name_rule})")
        if t.name in seen:
            raise ConfigurationError(
                f"{provider}: tools[{i}]: tool name {t.name!r} is given twice (names must be unique)"
            )
        seen.add(t.name)


def check_inputs(req: ChatRequest, provider: str, rules: InputRules) -> None:
    """Raise :class:`ConfigurationError` for the first input of ``req`` that ``rules`` refuse."""
    for i, m in enumerate(req.messages):
        if isinstance(m.content, tuple):
            for j, p in enumerate(m.content):
                if isinstance(p, ImagePart):
                    _check_image(p, provider, rules, f"messages[{i}].content[{j}]")
    _check_tools(req, provider, rules)
