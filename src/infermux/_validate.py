"""Validation of public inputs: a wrong type or value is a :class:`ConfigurationError` naming the field.

Messages name the field and the type received; they show a (short) value only for fields that cannot hold a
credential, never for ``api_keys``, ``headers`` or a URL's user info and query. Also the URL helpers that
keep credentials in a ``base_url`` out of reprs, stats and errors (:func:`split_base_url`, :func:`redact_url`)
and :func:`encode_json_body` (a body that cannot be UTF-8 encoded names the field instead of raising
``UnicodeEncodeError`` deep in the engine).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import ConfigurationError

__all__ = [
    "check_base_url",
    "check_endpoint_config",
    "check_fields",
    "check_optional_str",
    "check_positive_number",
    "check_size",
    "check_str_tuple",
    "describe",
    "encode_json_body",
    "redact_url",
    "secret_header_values",
]

#: header names (lower-case) whose values are credentials: redacted from errors when a server echoes them
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "signature", "password", "credential")


def describe(value: object, *, secret: bool = False) -> str:
    """``value``'s type, and a short repr of it unless ``secret``."""
    kind = type(value).__name__
    if secret:
        return kind
    text = repr(value)
    return f"{kind} {text[:40]}{'...' if len(text) > 40 else ''}"


def check_positive_number(what: str, value: object) -> None:
    """``value`` must be a finite number > 0 (not a bool, not a string; 0 does not mean "no limit")."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{what} must be a finite number of seconds > 0, got {describe(value)}")


def check_size(what: str, value: object) -> None:
    """``value`` must be an int >= 1 (a size in bytes)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{what} must be an int >= 1 (bytes), got {describe(value)}")


def check_optional_str(what: str, value: object) -> None:
    """``value`` must be ``None`` or a non-empty string."""
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError(f"{what} must be a non-empty string or None, got {describe(value)}")


def check_str_tuple(what: str, value: object, *, secret: bool = False) -> tuple[str, ...]:
    """A string, or a list/tuple of non-empty strings, as a tuple (values shown only when not ``secret``)."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise ConfigurationError(f"{what} must be a string or a list of strings, got {describe(value, secret=secret)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise ConfigurationError(f"{what}[{i}] must be a non-empty string, got {describe(item, secret=secret)}")
    return tuple(value)


def _check_headers(where: str, headers: object) -> dict[str, str]:
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"{where}: headers must be a mapping of header name to value, got {describe(headers)}")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{where}: headers keys must be non-empty strings, got {describe(name)}")
        if not isinstance(value, str):  # the value may be a credential: its type only
            raise ConfigurationError(f"{where}: headers[{name!r}] must be a string, got {type(value).__name__}")
        if not name.isascii() or not name.isprintable() or any(c in name for c in " :\t"):
            raise ConfigurationError(f"{where}: headers: {name[:40]!r} is not a valid HTTP header name")
        if any(c in value for c in "\r\n\0"):
            raise ConfigurationError(f"{where}: headers[{name!r}] holds a line break or NUL (header injection)")
        out[name] = value
    return out


def check_base_url(where: str, base: object) -> tuple[str, str]:
    """``(base, query)``: ``base`` without trailing slash, query or fragment, and the query to send with every
    request (e.g. ``?api-version=...`` or ``?key=...``). User info (``http://user:secret@host``) is refused: give
    credentials as ``api_keys`` or ``headers`` (they are kept out of reprs and errors; a URL is not)."""
    import urllib.parse  # lazily: `import infermux` stays light

    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        shown = redact_url(base) if isinstance(base, str) else type(base).__name__
        raise ConfigurationError(f"{where}: base_url must start with http:// or https://, got {shown!r}")
    try:
        parts = urllib.parse.urlsplit(base)
        _ = parts.port  # ValueError when out of range
    except ValueError as e:
        raise ConfigurationError(f"{where}: invalid base_url {redact_url(base)!r}: {e}") from None
    if not parts.hostname or not base.isprintable() or any(c.isspace() for c in base):
        raise ConfigurationError(f"{where}: invalid base_url {redact_url(base)!r} (host, spaces)")
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"{where}: base_url {redact_url(base)!r} carries user info (user:password@); infermux does not send"
            " it: give the credential as api_keys=[...] or headers={'authorization': 'Basic ...'} instead"
        )
    clean = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")).rstrip("/")
    return clean, parts.query


def redact_url(url: object) -> str:
    """``url`` without user info, with every query value replaced by ``***`` (names kept, for debugging)."""
    import urllib.parse  # lazily: `import infermux` stays light

    if not isinstance(url, str):
        return type(url).__name__
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1][:200]
    query = "&".join(f"{p.split('=', 1)[0]}=***" if "=" in p else "***" for p in parts.query.split("&") if p)
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, query, ""))


def join_url(base: str, path: str, query: str) -> str:
    """``base + path`` with ``query`` (the base URL's own query) appended to the path's query, if any."""
    url = base + path
    if not query:
        return url
    return f"{url}{'&' if '?' in path else '?'}{query}"


def secret_header_values(headers: Mapping[str, str]) -> tuple[str, ...]:
    """Values of credential-like headers (and the token of ``Bearer X`` / ``Basic X``), to scrub from errors."""
    out: list[str] = []
    for name, value in headers.items():
        if any(w in name.lower() for w in _SECRET_HEADER_WORDS) and len(value) >= 4:
            out.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.isalpha() and len(token) >= 4:
                out.append(token.strip())
    return tuple(out)


def url_secrets(query: str) -> tuple[str, ...]:
    """The values of a base URL's query that may be credentials (a credential-like name such as ``key``,
    ``token``, ``sig``, or a long value), to scrub from errors; ``api-version=2024-...`` is left alone."""
    import urllib.parse  # lazily: `import infermux` stays light

    out: list[str] = []
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=False):
        lname = name.lower()
        if len(value) >= 4 and (len(value) >= 16 or lname == "sig" or any(w in lname for w in _SECRET_HEADER_WORDS)):
            out.append(value)
            out.append(urllib.parse.quote_plus(value))  # as it travels (and may be echoed) in the URL
    return tuple(dict.fromkeys(out))


#: what an optional request field may hold: None or one of these types (bool is never an int or a number here)
_KINDS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "mapping": (Mapping,),
}


_EXPECTED = {
    "str": "a non-empty string",
    "int": "an int",
    "number": "a number",
    "bool": "a bool",
    "mapping": "a mapping",
}


def check_fields(owner: str, obj: object, spec: Mapping[str, str]) -> None:
    """Each ``field: kind`` of ``spec`` must be ``None`` or of that kind (see ``_KINDS``)."""
    for name, kind in spec.items():
        value = getattr(obj, name)
        if value is None:
            continue
        ok = isinstance(value, _KINDS[kind]) and (kind == "bool" or not isinstance(value, bool))
        if not ok or (kind == "str" and not value):
            expected = _EXPECTED[kind]
            raise ConfigurationError(f"{owner}.{name} must be {expected} or None, got {describe(value)}")


_CHOICES = {"key_strategy": ("round_robin", "least_loaded"), "overflow": ("reject", "shed_lowest")}


def _check_optional_seconds(what: str, value: object) -> None:
    if value is not None:
        check_positive_number(what, value)


def check_endpoint_config(cfg: Any) -> None:
    """Validate and normalise an ``EndpointConfig`` in place (it is frozen: ``object.__setattr__``)."""
    from .providers._base import Provider
    from .resilience.breaker import BreakerConfig
    from .resilience.retry import RetryPolicy
    from .transport import Limits, Timeouts

    name = cfg.name
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"EndpointConfig.name must be a non-empty string, got {describe(name)}")
    where = f"endpoint {name!r}"

    def put(attr: str, value: object) -> None:
        object.__setattr__(cfg, attr, value)

    if not isinstance(cfg.provider, (str, Provider)) or not cfg.provider:
        raise ConfigurationError(
            f"{where}: provider must be a backend's short name (e.g. 'openai'), got {describe(cfg.provider)}"
        )
    if cfg.base_url is not None:
        check_base_url(where, cfg.base_url)
    check_optional_str(f"{where}: model", cfg.model)
    put("models", check_str_tuple(f"{where}: models", cfg.models))
    put("api_keys", check_str_tuple(f"{where}: api_keys", cfg.api_keys, secret=True))
    put("api_key_env", check_str_tuple(f"{where}: api_key_env", cfg.api_key_env))
    for attr, choices in _CHOICES.items():
        if getattr(cfg, attr) not in choices:
            raise ConfigurationError(f"{where}: {attr} must be one of {choices}, got {describe(getattr(cfg, attr))}")
    nested: Iterable[tuple[str, type]] = (
        ("retry", RetryPolicy),
        ("breaker", BreakerConfig),
        ("timeouts", Timeouts),
        ("limits", Limits),
    )
    for attr, cls in nested:
        if not isinstance(getattr(cfg, attr), cls):
            raise ConfigurationError(
                f"{where}: {attr} must be a {cls.__name__}(...), got {describe(getattr(cfg, attr))}"
                + (" (e.g. timeouts=Timeouts(read=30))" if attr == "timeouts" else "")
            )
    for attr, minimum in (("max_concurrency", 1), ("max_queue", 0)):
        v = getattr(cfg, attr)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise ConfigurationError(f"{where}: {attr} must be an int >= {minimum}, got {describe(v)}")
    for attr in ("queue_aging", "stream_idle_timeout"):  # None: no bound of their own
        _check_optional_seconds(f"{where}: {attr}", getattr(cfg, attr))
    for attr in ("adaptive_concurrency", "fail_fast", "resume_streams"):
        v = getattr(cfg, attr, False)
        if not isinstance(v, bool):
            raise ConfigurationError(f"{where}: {attr} must be a bool, got {describe(v)}")
    put("headers", _check_headers(where, cfg.headers))


def _bad_char_path(value: Any, path: str) -> tuple[str, int] | None:
    """Where in ``value`` (JSON data) the first string that cannot be UTF-8 encoded is, with the offset."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return path, e.start
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = _bad_char_path(k, f"{path}.<key>") or _bad_char_path(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _bad_char_path(v, f"{path}[{i}]")
            if found:
                return found
    return None


#: ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` without building an encoder per call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_C_STR: Any = getattr(json.encoder, "c_encode_basestring", None)


def _c_encoder(markers: dict[int, Any] | None) -> Any:
    """The C encoder that ``_ENCODER.iterencode`` would make (the same arguments), with ``markers`` as its
    circular-reference map (``None``: no check)."""
    enc = _ENCODER
    return _C_ENCODER(markers, enc.default, _C_STR, None, enc.key_separator, enc.item_separator, False, False, True)


def _dumps(data: Any) -> str:
    """``_ENCODER.encode(data)``; for a dict, the C encoder made here with a fresh circular-reference map (a
    failed encode can leave entries in it), without ``iterencode``'s two Python frames."""
    if _C_ENCODER is None or _C_STR is None or type(data) is not dict:
        return _ENCODER.encode(data)
    return "".join(_c_encoder({})(data, 0))


def _make_compact_dumps() -> Any:
    """One C encoder kept for every call, with no circular-reference check: for data that cannot be circular
    (parsed JSON, dicts built by infermux itself), such as every frame and body the gateway writes."""
    if _C_ENCODER is None or _C_STR is None:  # pragma: no cover - not CPython
        return _ENCODER.encode
    c_encoder, encode_str = _c_encoder(None), _C_STR

    def compact_dumps(obj: Any) -> str:
        if type(obj) is str:
            return str(encode_str(obj))
        return "".join(c_encoder(obj, 0))

    return compact_dumps


#: compact JSON, non-ASCII kept, one C encoder for every call, no circular-reference check (see above)
compact_dumps: Callable[[Any], str] = _make_compact_dumps()


def encode_json_body(data: Any) -> bytes:
    """Compact UTF-8 JSON of ``data``; a lone surrogate (or other unencodable text) is a ConfigurationError
    naming the field, e.g. ``messages[0].content``."""
    text = _dumps(data)
    try:
        return text.encode()
    except UnicodeEncodeError:
        found = _bad_char_path(data, "")
        where = f"field {found[0]!r} (character {found[1]})" if found else "the request body"
        raise ConfigurationError(
            f"{where} holds text that cannot be encoded as UTF-8 (a lone surrogate such as '\\ud800');"
            " fix the input text"
        ) from None
