"""OpenVINO Model Server (OVMS): pure wire translation, no I/O.

- Chat, legacy completions and embeddings: the OpenAI-compatible API under ``/v3`` (``PROVIDER``; base URL
  ``http://host:8000/v3``; :func:`build_completion` for ``/v3/completions``).
- KServe v2 REST (health, model ready/metadata, typed tensor ``infer`` with the binary extension): the
  pure helpers of :mod:`.kserve`, re-exported here.
- TensorFlow-Serving-style REST: :func:`build_tfs_predict` / :func:`parse_tfs_predict`,
  :func:`build_tfs_status` / :func:`parse_tfs_status`, :func:`build_tfs_config` / :func:`parse_tfs_config`.
- Server configuration: :class:`OvmsModelConfig` renders and parses OVMS's ``config.json``.

KServe and TFS routes live at the server root: send them through an endpoint whose base URL is
:func:`server_root` of the ``/v3`` one. Errors are ``{"error": "..."}`` (400 bad input, 404 unknown
model/version, 500, 503 not ready) on every API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from ..errors import APIStatusError, ConfigurationError
from ..types import ChatResponse
from ._base import Provider, ProviderRequest, decode_json
from ._common import JSON_HEADERS, as_str, malformed, merge_extra
from ._common import server_root as _server_root
from .kserve import (
    InferResult,
    ModelMetadata,
    RequestedOutput,
    Tensor,
    build_infer,
    build_model_metadata,
    build_model_ready,
    build_server_live,
    build_server_ready,
    parse_infer,
    parse_model_metadata,
    parse_ready,
)
from .openai import build_completion as _openai_build_completion
from .openai import classify_error as _openai_classify_error
from .openai import make_openai_compatible
from .openai import parse_completion as _openai_parse_completion

__all__ = [
    "DEFAULT_BASE_URL",
    "FORMATS",
    "PROVIDER",
    "InferResult",
    "ModelMetadata",
    "ModelSpec",
    "ModelVersionStatus",
    "OvmsModelConfig",
    "RequestedOutput",
    "Tensor",
    "TfsPrediction",
    "VersionPolicy",
    "build_completion",
    "build_infer",
    "build_model_metadata",
    "build_model_ready",
    "build_server_live",
    "build_server_ready",
    "build_tfs_config",
    "build_tfs_predict",
    "build_tfs_status",
    "classify_error",
    "parse_completion",
    "parse_infer",
    "parse_model_metadata",
    "parse_ready",
    "parse_tfs_config",
    "parse_tfs_predict",
    "parse_tfs_status",
    "server_root",
]

NAME = "ovms"
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v3"


def server_root(base_url: str) -> str:
    """The server root for KServe/TFS routes: ``base_url`` without a trailing ``/v3``."""
    return _server_root(base_url, "/v3")


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """Typed error for an OVMS error answer (``{"error": "..."}``; OpenAI-shaped bodies also handled)."""
    return _openai_classify_error(status, headers, body, provider=NAME)


def build_completion(model: str, prompt: str, **kw: Any) -> ProviderRequest:
    """``POST /v3/completions`` (relative to the ``/v3`` base URL); see :func:`.openai.build_completion`."""
    return _openai_build_completion(model, prompt, **kw)


def parse_completion(body: bytes, headers: Mapping[str, str]) -> ChatResponse:
    return _openai_parse_completion(body, headers, provider=NAME)


# --------------------------------------------------------------------------- TensorFlow Serving API


def _tfs_path(model: str, version: str | int | None) -> str:
    if not model:
        raise ConfigurationError("model name must not be empty")
    path = f"/v1/models/{quote(model, safe='')}"
    return path if version in (None, "") else f"{path}/versions/{quote(str(version), safe='')}"


def build_tfs_predict(
    model: str,
    *,
    instances: list[Any] | None = None,
    inputs: Any = None,
    version: str | int | None = None,
    signature_name: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProviderRequest:
    """``POST /v1/models/{m}[/versions/{v}]:predict`` with exactly one of ``instances`` (row format) or
    ``inputs`` (columnar format)."""
    if (instances is None) == (inputs is None):
        raise ConfigurationError("give exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    if instances is not None and not isinstance(instances, list):
        raise ConfigurationError("'instances' must be a list")
    body: dict[str, Any] = {"instances": instances} if instances is not None else {"inputs": inputs}
    if signature_name is not None:
        body["signature_name"] = signature_name
    merge_extra(body, extra or {})
    return ProviderRequest("POST", _tfs_path(model, version) + ":predict", headers=dict(JSON_HEADERS), json=body)


@dataclass(frozen=True, slots=True)
class TfsPrediction:
    """``predictions`` for the row format, ``outputs`` for the columnar one (the other is ``None``)."""

    predictions: list[Any] | None
    outputs: Any
    raw: Any = None


def parse_tfs_predict(body: bytes, headers: Mapping[str, str]) -> TfsPrediction:
    data = decode_json(body, headers, provider=NAME, what="predict response")
    if isinstance(data, Mapping) and isinstance(data.get("predictions"), list):
        return TfsPrediction(data["predictions"], None, data)
    if isinstance(data, Mapping) and "outputs" in data:
        return TfsPrediction(None, data["outputs"], data)
    raise malformed(NAME, "predict response has neither 'predictions' nor 'outputs'", data)


def build_tfs_status(model: str, version: str | int | None = None) -> ProviderRequest:
    return ProviderRequest("GET", _tfs_path(model, version))


@dataclass(frozen=True, slots=True)
class ModelVersionStatus:
    version: int
    state: str  # START | LOADING | AVAILABLE | UNLOADING | END
    error_code: str
    error_message: str


def _statuses(data: Any) -> tuple[ModelVersionStatus, ...]:
    items = data.get("model_version_status") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise malformed(NAME, "status answer has no 'model_version_status' list", data)
    out = []
    for it in items:
        if not isinstance(it, Mapping):
            raise malformed(NAME, f"bad model_version_status entry {it!r}", data)
        raw_st = it.get("status")
        st: Mapping[str, Any] = raw_st if isinstance(raw_st, Mapping) else {}
        try:
            version = int(it.get("version"))  # type: ignore[arg-type]  # TFS sends it as a string
        except (TypeError, ValueError):
            raise malformed(NAME, f"bad version in model_version_status: {it.get('version')!r}", data) from None
        out.append(
            ModelVersionStatus(
                version, str(it.get("state")), as_str(st.get("error_code")) or "", as_str(st.get("error_message")) or ""
            )
        )
    return tuple(out)


def parse_tfs_status(body: bytes, headers: Mapping[str, str]) -> tuple[ModelVersionStatus, ...]:
    return _statuses(decode_json(body, headers, provider=NAME, what="model status"))


def build_tfs_config() -> ProviderRequest:
    return ProviderRequest("GET", "/v1/config")


def parse_tfs_config(body: bytes, headers: Mapping[str, str]) -> dict[str, tuple[ModelVersionStatus, ...]]:
    """``GET /v1/config``: every served model's version statuses."""
    data = decode_json(body, headers, provider=NAME, what="config status")
    if not isinstance(data, Mapping):
        raise malformed(NAME, "/v1/config answer is not an object", data)
    return {str(name): _statuses(st) for name, st in data.items()}


# --------------------------------------------------------------------------- config.json

#: model formats OVMS loads (it detects them from the files of each version directory; "auto": unknown)
FORMATS = frozenset(("openvino", "onnx", "tensorflow", "tflite", "paddle", "pytorch", "auto"))
_KNOWN_KEYS = ("name", "base_path", "target_device", "batch_size", "shape", "nireq", "plugin_config")


@dataclass(frozen=True, slots=True)
class VersionPolicy:
    """``model_version_policy``: the ``latest`` N versions, ``specific`` ones, or ``all``."""

    kind: Literal["latest", "specific", "all"] = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("latest", "specific", "all"):
            raise ConfigurationError(f"unknown model_version_policy {self.kind!r}")
        if self.kind == "latest" and self.num_versions < 1:
            raise ConfigurationError("model_version_policy latest.num_versions must be >= 1")
        if self.kind == "specific" and not self.versions:
            raise ConfigurationError("model_version_policy specific.versions must not be empty")

    def to_json(self) -> dict[str, Any]:
        if self.kind == "latest":
            return {"latest": {"num_versions": self.num_versions}}
        if self.kind == "specific":
            return {"specific": {"versions": list(self.versions)}}
        return {"all": {}}

    @classmethod
    def from_json(cls, raw: Any) -> VersionPolicy:
        if not isinstance(raw, Mapping) or len(raw) != 1:
            raise ConfigurationError(f"model_version_policy must have one of latest/specific/all: {raw!r}")
        kind, val = next(iter(raw.items()))
        val = val if isinstance(val, Mapping) else {}
        if kind == "latest":
            return cls("latest", int(val.get("num_versions", 1)))
        if kind == "specific":
            vs = val.get("versions")
            if not isinstance(vs, list):
                raise ConfigurationError("model_version_policy specific.versions must be a list")
            return cls("specific", versions=tuple(int(v) for v in vs))
        if kind == "all":
            return cls("all")
        raise ConfigurationError(f"unknown model_version_policy {kind!r}")

    def select(self, available: Iterable[int]) -> tuple[int, ...]:
        """The versions served out of those present, ascending."""
        have = sorted(set(available))
        if self.kind == "latest":
            return tuple(have[-self.num_versions :])
        if self.kind == "specific":
            return tuple(v for v in have if v in self.versions)
        return tuple(have)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One ``model_config_list`` entry. ``versions`` maps each version directory under ``base_path`` to its
    model format (OVMS serves several versions and formats side by side; config.json does not carry
    formats, OVMS detects them from the files)."""

    name: str
    base_path: str
    versions: Mapping[int, str] = field(default_factory=lambda: {1: "openvino"})
    version_policy: VersionPolicy | None = None
    target_device: str | None = None
    batch_size: int | str | None = None
    shape: str | Mapping[str, str] | None = None
    nireq: int | None = None
    plugin_config: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigurationError("model name must be a non-empty string")
        if not self.base_path:
            raise ConfigurationError(f"model {self.name!r}: base_path must not be empty")
        if not self.versions:
            raise ConfigurationError(f"model {self.name!r}: versions must not be empty")
        for v, fmt in self.versions.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigurationError(f"model {self.name!r}: version {v!r} must be an int >= 1")
            if fmt not in FORMATS:
                raise ConfigurationError(
                    f"model {self.name!r}: unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))})"
                )
        if self.nireq is not None and self.nireq < 1:
            raise ConfigurationError(f"model {self.name!r}: nireq must be >= 1")
        if self.served_versions() == ():
            raise ConfigurationError(f"model {self.name!r}: the version policy selects none of {sorted(self.versions)}")

    def served_versions(self) -> tuple[int, ...]:
        return (self.version_policy or VersionPolicy()).select(self.versions)

    def to_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"name": self.name, "base_path": self.base_path}
        for key in ("target_device", "batch_size", "nireq"):
            if getattr(self, key) is not None:
                cfg[key] = getattr(self, key)
        if self.shape is not None:
            cfg["shape"] = self.shape if isinstance(self.shape, str) else dict(self.shape)
        if self.version_policy is not None:
            cfg["model_version_policy"] = self.version_policy.to_json()
        if self.plugin_config is not None:
            cfg["plugin_config"] = dict(self.plugin_config)
        cfg.update(self.extra)
        return cfg


@dataclass(frozen=True, slots=True)
class OvmsModelConfig:
    """OVMS's ``config.json``: models (with versions and formats) and MediaPipe graphs (e.g. LLM servables)."""

    models: tuple[ModelSpec, ...]
    mediapipe: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "mediapipe", tuple(self.mediapipe))
        names = [m.name for m in self.models]
        for g in self.mediapipe:
            if not isinstance(g, Mapping) or not isinstance(g.get("name"), str) or not g["name"]:
                raise ConfigurationError(f"mediapipe_config_list entry needs a 'name': {g!r}")
            names.append(g["name"])
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigurationError(f"duplicate servable names in OVMS config: {', '.join(dupes)}")

    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise ConfigurationError(f"no model {name!r} in the OVMS config")

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_config_list": [{"config": m.to_config()} for m in self.models]}
        if self.mediapipe:
            out["mediapipe_config_list"] = [dict(g) for g in self.mediapipe]
        return out

    def dumps(self) -> str:
        return json.dumps(self.render(), indent=2)

    @classmethod
    def parse(
        cls, raw: Mapping[str, Any] | str | bytes, *, versions: Mapping[str, Mapping[int, str]] | None = None
    ) -> OvmsModelConfig:
        """Parse a config.json. Its version directories are not in the file: take them from ``versions``
        (model name -> {version: format}), else the ``specific`` policy's list, else ``{1: "auto"}``."""
        if isinstance(raw, (str, bytes)):
            try:
                raw = json.loads(raw)
            except ValueError as e:
                raise ConfigurationError(f"OVMS config is not valid JSON: {e}") from e
        if not isinstance(raw, Mapping) or not isinstance(raw.get("model_config_list", []), list):
            raise ConfigurationError("OVMS config must be an object with a 'model_config_list' list")
        models = []
        for entry in raw.get("model_config_list", []):
            cfg = entry.get("config") if isinstance(entry, Mapping) else None
            if not isinstance(cfg, Mapping) or not isinstance(cfg.get("name"), str):
                raise ConfigurationError(f"model_config_list entry needs config.name: {entry!r}")
            models.append(_spec_from_config(cfg, (versions or {}).get(cfg["name"])))
        graphs = raw.get("mediapipe_config_list", [])
        if not isinstance(graphs, list):
            raise ConfigurationError("'mediapipe_config_list' must be a list")
        return cls(tuple(models), tuple(graphs))


def _spec_from_config(cfg: Mapping[str, Any], versions: Mapping[int, str] | None) -> ModelSpec:
    policy = VersionPolicy.from_json(cfg["model_version_policy"]) if "model_version_policy" in cfg else None
    if versions is None:
        listed = policy.versions if policy is not None and policy.kind == "specific" else (1,)
        versions = dict.fromkeys(listed, "auto")
    extra = {k: v for k, v in cfg.items() if k not in _KNOWN_KEYS and k != "model_version_policy"}
    return ModelSpec(
        name=cfg["name"],
        base_path=str(cfg.get("base_path") or ""),
        versions=dict(versions),
        version_policy=policy,
        target_device=cfg.get("target_device"),
        batch_size=cfg.get("batch_size"),
        shape=cfg.get("shape"),
        nireq=cfg.get("nireq"),
        plugin_config=cfg.get("plugin_config"),
        extra=extra,
    )


PROVIDER: Provider = make_openai_compatible(
    NAME,
    DEFAULT_BASE_URL,
    description="OpenVINO Model Server: OpenAI-compatible /v3 (chat, completions, embeddings); KServe v2 and "
    "TFS REST as pure helpers",
    request_id_headers=(),
    capabilities=frozenset(("chat", "stream", "tools", "vision", "json", "embed", "completions", "kserve", "tfs")),
    health_path="/v2/health/ready",
)
