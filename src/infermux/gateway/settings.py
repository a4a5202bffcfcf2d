"""Gateway settings: the ``[gateway]`` table of the library's config file (beside ``[[endpoints]]``).

::

    [gateway]
    host = "127.0.0.1"
    port = 8080
    keys_db = "infermux-keys.sqlite3"   # keys and the audit log (SQLite, state = "local"); ":memory:" by default
    max_body_bytes = 16777216           # request bodies over this get 413
    max_messages = 1000                 # more messages in one request: 400
    max_tokens = 32768                  # a request asking for more output tokens: 400
    request_timeout = 600               # bounds each call, fallbacks included (seconds)
    shutdown_timeout = 30               # drain deadline on SIGTERM / Ctrl-C (seconds)
    stream_write_timeout = 60           # a stream whose caller reads nothing this long is dropped (seconds)
    strict_models = false               # true: a model no endpoint lists gets 404 (else any endpoint serves it)
    state = "local"                     # "redis": keys, RPM/TPM and budgets shared by every replica (redis_url)
    redis_url = "redis://127.0.0.1:6379/0"
    redis_prefix = "infermux:gw"        # every Redis key of the gateway starts with this
    redis_timeout = 0.5                 # each Redis connect and read (s); a whole call, pool wait included: 4x
    fail_mode = "closed"                # Redis unreachable: "closed" answers 503, "open" serves known keys unlimited
    status_page = "admin"               # GET /status: "admin" (master key), "open" (anyone) or "off"
    [gateway.prices."gpt-4o-mini"]      # USD per million tokens, for virtual keys' budgets
    input = 0.15
    output = 0.6

The master key is read from the environment variable ``INFERMUX_MASTER_KEY`` only (never from the file).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..errors import ConfigurationError

__all__ = ["MASTER_KEY_ENV", "GatewaySettings", "Price", "settings_from_dict"]

MASTER_KEY_ENV = "INFERMUX_MASTER_KEY"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input / output tokens."""

    input: float = 0.0
    output: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


def _positive(name: str, value: object, *, integer: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"gateway setting {name} must be {kind} > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """How the gateway serves; validated on construction (:class:`ConfigurationError` naming the setting)."""

    host: str = "127.0.0.1"
    port: int = 8080
    master_key: str | None = field(default=None, repr=False)
    keys_db: str = ":memory:"
    max_body_bytes: int = 16 * 1024 * 1024
    max_messages: int = 1000
    max_tokens: int | None = 32768
    request_timeout: float | None = 600.0
    shutdown_timeout: float = 30.0
    #: a stream whose caller reads nothing for this long (one write blocked by backpressure) is dropped
    stream_write_timeout: float = 60.0
    strict_models: bool = False
    #: serve without any key on a non-loopback address (no master key set): refused unless true
    allow_open: bool = False
    #: who may see ``GET /status`` (HTML): "admin" (the master key), "open" (anyone) or "off"
    status_page: str = "admin"
    prices: Mapping[str, Price] = field(default_factory=dict)
    #: where virtual keys, RPM/TPM windows and budgets live: "local" (SQLite + this process) or "redis" (shared)
    state: str = "local"
    redis_url: str | None = field(default=None, repr=False)  # may carry a password (redis://:pw@host)
    redis_prefix: str = "infermux:gw"
    redis_timeout: float = 0.5
    #: Redis unreachable: "closed" refuses virtual-key requests (503), "open" serves keys this replica already
    #: knows without limits (one warning per outage)
    fail_mode: str = "closed"

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigurationError(f"gateway setting host must be a non-empty string, got {self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigurationError(f"gateway setting port must be an integer 0-65535, got {self.port!r}")
        if self.master_key is not None and (not isinstance(self.master_key, str) or len(self.master_key) < 8):
            raise ConfigurationError(f"{MASTER_KEY_ENV} must be a string of at least 8 characters")
        if not isinstance(self.keys_db, str) or not self.keys_db:
            raise ConfigurationError("gateway setting keys_db must be a file path or ':memory:'")
        _positive("max_body_bytes", self.max_body_bytes, integer=True)
        _positive("max_messages", self.max_messages, integer=True)
        _positive("max_tokens", self.max_tokens, integer=True, allow_none=True)
        _positive("request_timeout", self.request_timeout, allow_none=True)
        _positive("shutdown_timeout", self.shutdown_timeout)
        _positive("stream_write_timeout", self.stream_write_timeout)
        for name in ("strict_models", "allow_open"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"gateway setting {name} must be true or false")
        if self.state not in ("local", "redis"):
            raise ConfigurationError(f"gateway setting state must be 'local' or 'redis', got {self.state!r}")
        if self.state == "redis" and (not isinstance(self.redis_url, str) or "://" not in self.redis_url):
            raise ConfigurationError("gateway setting redis_url must be a URL like redis://127.0.0.1:6379/0")
        if not isinstance(self.redis_prefix, str) or not self.redis_prefix:
            raise ConfigurationError("gateway setting redis_prefix must be a non-empty string")
        _positive("redis_timeout", self.redis_timeout)
        if self.fail_mode not in ("closed", "open"):
            raise ConfigurationError(f"gateway setting fail_mode must be 'closed' or 'open', got {self.fail_mode!r}")
        if self.status_page not in ("admin", "open", "off"):
            raise ConfigurationError(
                f"gateway setting status_page must be 'admin', 'open' or 'off', got {self.status_page!r}"
            )
        if not isinstance(self.prices, Mapping) or not all(isinstance(p, Price) for p in self.prices.values()):
            raise ConfigurationError("gateway setting prices must map model names to Price values")

    @property
    def auth_required(self) -> bool:
        return self.master_key is not None

    def with_env(self, env: Mapping[str, str] | None = None) -> GatewaySettings:
        """These settings with the master key from ``INFERMUX_MASTER_KEY`` (when set)."""
        e = os.environ if env is None else env
        key = e.get(MASTER_KEY_ENV) or None
        return self if key is None else replace(self, master_key=key)

    @property
    def reservation_ttl(self) -> float:
        """How long a request's reservation is held before it counts as dead (its estimate is then charged):
        the request timeout (or an hour) plus a minute."""
        return (self.request_timeout or 3600.0) + 60.0

    def price(self, model: str | None) -> Price | None:
        return self.prices.get(model) if model else None


def _price(model: str, raw: Any) -> Price:
    if not isinstance(raw, Mapping) or set(raw) - {"input", "output"}:
        raise ConfigurationError(f"gateway price of {model!r} must be a table with 'input' and 'output' (USD/1M)")
    vals = {k: raw.get(k, 0.0) for k in ("input", "output")}
    for k, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v):
            raise ConfigurationError(f"gateway price {k} of {model!r} must be a number >= 0, got {v!r}")
    return Price(float(vals["input"]), float(vals["output"]))


def settings_from_dict(d: Mapping[str, Any] | None) -> GatewaySettings:
    """Settings from the ``[gateway]`` table (unknown keys are refused by name; ``master_key`` is env-only)."""
    if d is None:
        return GatewaySettings()
    if not isinstance(d, Mapping):
        raise ConfigurationError("the [gateway] section must be a table of settings")
    known = {f.name for f in fields(GatewaySettings)} - {"master_key"}
    unknown = sorted(set(d) - known)
    if "master_key" in d:
        raise ConfigurationError(f"the master key is read from the environment ({MASTER_KEY_ENV}), not the file")
    if unknown:
        raise ConfigurationError(f"[gateway]: unknown setting(s) {unknown}; known: {sorted(known)}")
    kw = dict(d)
    if "prices" in kw:
        raw = kw["prices"]
        if not isinstance(raw, Mapping):
            raise ConfigurationError("[gateway] prices must be a table of model -> {input, output}")
        kw["prices"] = {str(m): _price(str(m), p) for m, p in raw.items()}
    return GatewaySettings(**kw)
