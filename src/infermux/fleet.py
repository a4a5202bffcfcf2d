"""Model groups: one logical model name served by several endpoints, a routing strategy, and fallback groups
chosen by the class of the error (pure configuration and classification, no I/O).

A call whose ``model`` names a group goes to the group's endpoints (each with its own configured model), in
the order its strategy gives (see :mod:`infermux.strategies`); when the group cannot answer, the error's
class picks the next groups to try from ``fallbacks``:

=================== ===================================================================================
key                 which errors
=================== ===================================================================================
``context_window``  the prompt does not fit the model's context (``context_length_exceeded``, llama.cpp's
                    ``exceed_context_size_error``, Anthropic's "prompt is too long"...)
``content_policy``  a refusal by a content filter (an error, or a response with
                    ``finish_reason="content_filter"``)
an error class name ``RateLimitError``, ``AuthenticationError``... (its subclasses too)
``retryable``       any retryable failure (outage, overload, rate limits, timeouts)
``any``             any failure another endpoint may answer (not invalid input)
=================== ===================================================================================

The most specific key wins, in that order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import errors as _errors
from .errors import (
    APIStatusError,
    BadRequestError,
    ConfigurationError,
    InfermuxError,
    MalformedResponseError,
    UnprocessableEntityError,
)
from .hedging import HedgeConfig, hedge_from_dict

__all__ = ["CATEGORIES", "STRATEGIES", "GroupConfig", "error_category", "fallback_keys", "group_from_dict"]

STRATEGIES = ("ordered", "round_robin", "weighted", "least_loaded", "lowest_latency", "prefix_affinity")
CATEGORIES = ("context_window", "content_policy", "retryable", "any")

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "exceed_context_size",
    "context window",
    "context_window",
    "maximum context length",
    "context length",
    "prompt is too long",
    "input is too long",
    "too many tokens",
    "exceeds the context",
    "input token count",
    "string_above_max_length",
)
_POLICY_MARKERS = (
    "content_policy",
    "content_filter",
    "content management policy",
    "responsible ai",
    "safety system",
    "moderation",
    "prohibited_content",
    "blocked by safety",
)


def _error_text(err: InfermuxError) -> str:
    parts = [err.error_type or "", err.provider_message or ""]
    body = err.body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            parts += [str(inner.get("code") or ""), str(inner.get("type") or "")]
    elif isinstance(body, str):
        parts.append(body[:500])
    return " ".join(parts).lower()


def error_category(err: InfermuxError) -> str | None:
    """``"context_window"`` or ``"content_policy"`` when the error says so (by the provider's error code, type
    or message), else ``None``. Only answers about the request (4xx, or a 2xx carrying an error) qualify."""
    if isinstance(err, _errors.AllEndpointsFailedError) and err.errors:
        err = err.errors[-1]
    status = err.status_code
    answered = isinstance(err, (BadRequestError, UnprocessableEntityError, MalformedResponseError)) or (
        isinstance(err, APIStatusError) and status is not None and 400 <= status < 500 and status != 429
    )
    if not answered:
        return None
    text = _error_text(err)
    if any(m in text for m in _CONTEXT_MARKERS):
        return "context_window"
    if any(m in text for m in _POLICY_MARKERS):
        return "content_policy"
    return None


def fallback_keys(err: InfermuxError) -> list[str]:
    """The ``fallbacks`` keys that apply to ``err``, most specific first."""
    keys: list[str] = []
    cat = error_category(err)
    if cat is not None:
        keys.append(cat)
    keys += [c.__name__ for c in type(err).__mro__ if isinstance(c, type) and issubclass(c, InfermuxError)]
    if err.retryable:
        keys.append("retryable")
    if not isinstance(err, (ConfigurationError, BadRequestError, UnprocessableEntityError)) or cat is not None:
        keys.append("any")
    return keys


def _is_error_class(name: str) -> bool:
    cls = getattr(_errors, name, None)
    return isinstance(cls, type) and issubclass(cls, InfermuxError)


def _names(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ConfigurationError(f"{where} must be a non-empty list of names, got {value!r}")
    bad = [v for v in value if not isinstance(v, str) or not v]
    if bad:
        raise ConfigurationError(f"{where} must hold names (strings), got {bad[0]!r}")
    if len(set(value)) != len(value):
        raise ConfigurationError(f"{where} names an entry twice: {list(value)!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """A logical model ``name`` served by ``endpoints`` (endpoint names; each must have a default ``model``).

    ``strategy``: one of :data:`STRATEGIES`; ``weights``: endpoint name -> weight > 0 for ``weighted``
    (default 1; fractions are kept exact); ``fallbacks``: error class key -> group names to try next, in
    order (see the module docstring); ``affinity_chars``: how much of the prompt's start ``prefix_affinity``
    hashes; ``hedge``: hedged requests (:class:`~infermux.hedging.HedgeConfig`, or its settings as a mapping,
    or ``True`` for the defaults). ``failover``: a stream that breaks after content reached the caller continues
    on another endpoint of the group (mid-stream failover, see :mod:`infermux._failover`; per call
    ``stream(failover=...)``); ``stream_idle_timeout``: replaces the members' ``EndpointConfig.stream_idle_timeout``
    for calls to the group (``None``: each member's own)."""

    name: str
    endpoints: tuple[str, ...]
    strategy: str = "ordered"
    weights: Mapping[str, float] = field(default_factory=dict)
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    affinity_chars: int = 512
    hedge: HedgeConfig | None = None
    failover: bool = True
    stream_idle_timeout: float | None = None

    def __post_init__(self) -> None:
        where = f"group {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"a group needs a name (a non-empty string), got {self.name!r}")
        object.__setattr__(self, "endpoints", _names(f"{where}: endpoints", self.endpoints))
        if self.strategy not in STRATEGIES:
            raise ConfigurationError(f"{where}: strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if not isinstance(self.weights, Mapping):
            raise ConfigurationError(f"{where}: weights must be a mapping of endpoint name to number")
        for name, w in self.weights.items():
            if name not in self.endpoints:
                raise ConfigurationError(f"{where}: weights name {name!r}, which is not one of its endpoints")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
                raise ConfigurationError(f"{where}: weight of {name!r} must be a finite number > 0, got {w!r}")
        if not isinstance(self.fallbacks, Mapping):
            raise ConfigurationError(f"{where}: fallbacks must be a mapping of error class to group names")
        fb: dict[str, tuple[str, ...]] = {}
        for key, groups in self.fallbacks.items():
            if key not in CATEGORIES and not (isinstance(key, str) and _is_error_class(key)):
                raise ConfigurationError(
                    f"{where}: fallbacks key {key!r} is neither one of {', '.join(CATEGORIES)} nor an infermux"
                    " error class name (e.g. 'RateLimitError')"
                )
            names = (groups,) if isinstance(groups, str) else groups
            fb[key] = _names(f"{where}: fallbacks[{key!r}]", names)
            if self.name in fb[key]:
                raise ConfigurationError(f"{where}: fallbacks[{key!r}] names the group itself")
        object.__setattr__(self, "fallbacks", fb)
        a = self.affinity_chars
        if isinstance(a, bool) or not isinstance(a, int) or a < 1:
            raise ConfigurationError(f"{where}: affinity_chars must be an int >= 1, got {a!r}")
        _check_stream_options(where, self.failover, self.stream_idle_timeout)
        self._check_hedge(where)

    def _check_hedge(self, where: str) -> None:
        if self.hedge is None:
            return
        try:
            object.__setattr__(self, "hedge", hedge_from_dict(self.hedge))
        except ConfigurationError as e:
            raise ConfigurationError(f"{where}: {e}") from None

    def fallbacks_for(self, err: InfermuxError) -> tuple[str, ...]:
        """The fallback groups for ``err``: those of the most specific key that is configured."""
        for key in fallback_keys(err):
            groups = self.fallbacks.get(key)
            if groups:
                return groups
        return ()


def _check_stream_options(where: str, failover: object, idle: object) -> None:
    if not isinstance(failover, bool):
        raise ConfigurationError(f"{where}: failover must be a bool, got {failover!r}")
    if idle is not None and (
        isinstance(idle, bool) or not isinstance(idle, (int, float)) or not math.isfinite(idle) or idle <= 0
    ):
        raise ConfigurationError(f"{where}: stream_idle_timeout must be a number of seconds > 0 or None, got {idle!r}")


def group_from_dict(d: Mapping[str, Any]) -> GroupConfig:
    """A :class:`GroupConfig` from plain data (a config file's ``[[groups]]`` table)."""
    known = set(GroupConfig.__dataclass_fields__)
    unknown = [k for k in d if k not in known]
    name = d.get("name")
    label = repr(name) if isinstance(name, str) else "(without a valid name)"
    if unknown:
        raise ConfigurationError(f"group {label}: unknown setting {unknown[0]!r}; known: {sorted(known)}")
    if "name" not in d or "endpoints" not in d:
        raise ConfigurationError(f"group {label} needs 'name' and 'endpoints'")
    kw = dict(d)
    if isinstance(kw["endpoints"], list):
        kw["endpoints"] = tuple(kw["endpoints"])
    if isinstance(kw.get("fallbacks"), Mapping):
        kw["fallbacks"] = {k: tuple(v) if isinstance(v, list) else v for k, v in kw["fallbacks"].items()}
    return GroupConfig(**kw)
