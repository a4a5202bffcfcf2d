"""Configuration from a TOML/YAML file or from environment variables (read in this module only).

File shape (TOML; YAML the same keys)::

    [[endpoints]]
    name = "local"
    provider = "llamacpp"
    base_url = "http://127.0.0.1:8080/v1"
    model = "smollm2"
    api_key_env = ["LOCAL_KEY"]        # names of env vars holding keys (comma-separated values allowed)
    max_concurrency = 8
    overflow = "shed_lowest"
    [endpoints.retry]                  # RetryPolicy fields
    max_retries = 3
    [endpoints.breaker]                # BreakerConfig fields
    consecutive_failures = 5
    [endpoints.timeouts]               # connect / read seconds
    read = 60
    [endpoints.limits]                 # response size bounds in bytes (default 128 MiB each)
    max_body_bytes = 67108864

    [[groups]]                         # a logical model served by several endpoints (infermux.fleet)
    name = "chat"
    endpoints = ["local", "hosted"]
    strategy = "weighted"              # ordered, round_robin, weighted, least_loaded, lowest_latency, prefix_affinity
    weights = { local = 3, hosted = 0.5 }
    [groups.fallbacks]                 # error class -> groups to try next
    context_window = ["long"]

    [health]                           # HealthConfig fields: active probes, forward progress
    interval = 10
    stall_after = 60

    [state]                            # shared by processes (infermux.shared_state.StateConfig fields)
    backend = "redis"
    url = "redis://127.0.0.1:6379/0"
    prefix = "infermux:state:prod"

Environment (when no endpoints and no file are given): ``INFERMUX_CONFIG`` (a file path), else one endpoint
from ``INFERMUX_PROVIDER`` (default ``openai``), ``INFERMUX_BASE_URL``, ``INFERMUX_MODEL`` and
``INFERMUX_API_KEY`` (comma-separated for a key pool), else ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``
endpoints for the hosted APIs.

Error messages name the file, the endpoint and the setting, never a setting's value where it may be a
credential (``api_keys``, ``headers``, the ``base_url`` query): see ``infermux._validate``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .endpoint import EndpointConfig
from .errors import ConfigurationError
from .fleet import GroupConfig, group_from_dict
from .resilience.breaker import BreakerConfig
from .resilience.health import HealthConfig
from .resilience.retry import RetryPolicy
from .shared_state import StateConfig
from .transport import Limits, Timeouts

__all__ = ["Fleet", "endpoint_from_dict", "endpoints_from_env", "load_config", "load_fleet"]

_NESTED = {"retry": RetryPolicy, "breaker": BreakerConfig, "timeouts": Timeouts, "limits": Limits}


def _label(d: Mapping[str, Any]) -> str:
    """How an entry is named in messages: its ``name`` when it is a plain short string."""
    name = d.get("name")
    return repr(name) if isinstance(name, str) and len(name) <= 80 else "(without a valid name)"


def endpoint_from_dict(d: Mapping[str, Any]) -> EndpointConfig:
    """Build an :class:`EndpointConfig` from plain data, with a clear error for unknown or bad fields."""
    kw: dict[str, Any] = {}
    fields = set(EndpointConfig.__dataclass_fields__)
    for key, raw in d.items():
        value = raw
        if key not in fields:
            raise ConfigurationError(f"endpoint {_label(d)}: unknown setting {key!r}; known: {sorted(fields)}")
        cls = _NESTED.get(key)
        if cls is not None:
            if not isinstance(value, Mapping):
                raise ConfigurationError(f"endpoint {_label(d)}: {key} must be a table")
            try:
                table = dict(value)
                if key == "retry" and "retry_statuses" in table:
                    table["retry_statuses"] = frozenset(table["retry_statuses"])
                value = cls(**table)
            except TypeError as e:
                raise ConfigurationError(f"endpoint {_label(d)}: bad {key} settings: {e}") from e
        elif isinstance(value, list):
            value = tuple(value)
        kw[key] = value
    for required in ("name", "provider"):
        if required not in kw:  # the settings' names only: their values may be keys or auth headers
            raise ConfigurationError(f"endpoint {_label(d)} needs {required!r} (it has: {', '.join(map(str, d))})")
    try:
        return EndpointConfig(**kw)
    except TypeError as e:
        raise ConfigurationError(f"endpoint {_label(d)}: {e}") from e


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"cannot read config file {path}: {e}") from e
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except ValueError as e:
            raise ConfigurationError(f"{path}: invalid TOML: {e}") from None  # the error may hold the file text
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError as e:
            raise ConfigurationError("YAML config needs PyYAML: pip install 'infermux[yaml]'") from e
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:  # not str(e): PyYAML quotes the offending line, which may hold a key
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or type(e).__name__
            raise ConfigurationError(f"{path}: invalid YAML{at}: {str(problem)[:80]}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as e:
            raise ConfigurationError(f"{path}: invalid JSON: {e}") from None  # the error may hold the file text
    raise ConfigurationError(f"{path}: config files must end in .toml, .yaml, .yml or .json")


@dataclass(frozen=True, slots=True)
class Fleet:
    """What a config file describes: endpoints, model groups and the health configuration."""

    endpoints: list[EndpointConfig]
    groups: list[GroupConfig] = field(default_factory=list)
    health: HealthConfig | None = None
    state: StateConfig | None = None


def load_fleet(path: str | Path) -> Fleet:
    """Endpoints, ``[[groups]]`` and ``[health]`` of a config file (unknown top-level tables are refused)."""
    data = _read_file(Path(path))
    endpoints = _endpoints(path, data)
    assert isinstance(data, Mapping)
    # [gateway] is read by `infermux serve` (infermux.gateway.settings); a client ignores it
    unknown = [k for k in data if k not in ("endpoints", "groups", "health", "state", "gateway")]
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown top-level setting {unknown[0]!r}; known: endpoints, groups, health, state, gateway"
        )
    raw_groups = data.get("groups", [])
    if not isinstance(raw_groups, list) or not all(isinstance(g, Mapping) for g in raw_groups):
        raise ConfigurationError(f"{path}: 'groups' must be a list of tables ([[groups]])")
    groups = [group_from_dict(g) for g in raw_groups]
    raw_health = data.get("health")
    health = None
    if raw_health is not None:
        if not isinstance(raw_health, Mapping):
            raise ConfigurationError(f"{path}: 'health' must be a table ([health])")
        try:
            health = HealthConfig(**raw_health)
        except TypeError as e:
            raise ConfigurationError(f"{path}: bad health settings: {e}") from e
    raw_state = data.get("state")
    state = None
    if raw_state is not None:
        if not isinstance(raw_state, Mapping):
            raise ConfigurationError(f"{path}: 'state' must be a table ([state])")
        try:
            state = StateConfig(**raw_state)
        except TypeError as e:
            raise ConfigurationError(f"{path}: bad state settings: {e}") from e
    return Fleet(endpoints, groups, health, state)


def load_config(path: str | Path) -> list[EndpointConfig]:
    """The endpoints of a config file (see :func:`load_fleet` for groups and health too)."""
    return _endpoints(path, _read_file(Path(path)))


def _endpoints(path: str | Path, data: Any) -> list[EndpointConfig]:
    items = data.get("endpoints") if isinstance(data, Mapping) else None
    if not isinstance(items, list) or not items:
        raise ConfigurationError(f"{path}: needs a non-empty 'endpoints' list")
    bad = [i for i, d in enumerate(items) if not isinstance(d, Mapping)]
    if bad:
        got = type(items[bad[0]]).__name__
        raise ConfigurationError(f"{path}: endpoints[{bad[0]}] must be a table of settings, got {got}")
    return [endpoint_from_dict(d) for d in items]


def endpoints_from_env(env: Mapping[str, str] | None = None) -> list[EndpointConfig]:
    e = os.environ if env is None else env
    if e.get("INFERMUX_CONFIG"):
        return load_config(e["INFERMUX_CONFIG"])
    if e.get("INFERMUX_BASE_URL") or e.get("INFERMUX_PROVIDER"):
        keys = tuple(k.strip() for k in e.get("INFERMUX_API_KEY", "").split(",") if k.strip())
        return [
            EndpointConfig(
                name=e.get("INFERMUX_ENDPOINT_NAME", "default"),
                provider=e.get("INFERMUX_PROVIDER", "openai"),
                base_url=e.get("INFERMUX_BASE_URL") or None,
                model=e.get("INFERMUX_MODEL") or None,
                api_keys=keys,
            )
        ]
    out: list[EndpointConfig] = []
    if e.get("OPENAI_API_KEY"):
        out.append(
            EndpointConfig(
                name="openai", provider="openai", model=e.get("INFERMUX_MODEL") or None, api_key_env=("OPENAI_API_KEY",)
            )
        )
    if e.get("ANTHROPIC_API_KEY"):
        out.append(EndpointConfig(name="anthropic", provider="anthropic", api_key_env=("ANTHROPIC_API_KEY",)))
    return out
