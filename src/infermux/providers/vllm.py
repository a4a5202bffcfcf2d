"""vLLM's OpenAI-compatible server: chat, completions and embeddings via the :mod:`.openai` functions, plus
vLLM's native routes as pure builder/parser pairs. No I/O.

The native builders' paths are relative to the **server root** (``server_root(base_url)``, i.e. without
``/v1``): ``/health``, ``/tokenize``, ``/detokenize``, ``/metrics``, ``/v1/models``, ``/v1/load_lora_adapter``,
``/v1/unload_lora_adapter``; send them through an endpoint whose base URL is the root.

Errors: vLLM answers ``{"object": "error", "message", "type", "param", "code"}`` at top level (most
versions) or wrapped in ``{"error": {...}}`` (newer ones); both are parsed. With ``--api-key`` an
unauthenticated ``/v1/*`` call gets 401 ``{"error": "Unauthorized"}``. A LoRA adapter is selected by using
its name as the model. Choices carry vLLM's ``stop_reason`` (the matched stop string or token id): see
:func:`stop_reason`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import APIStatusError, ConfigurationError
from ..types import ChatRequest, ChatResponse, coerce_messages
from ._base import Provider, ProviderRequest, decode_json
from ._common import JSON_HEADERS, as_str, malformed, opt_int, server_root
from ._prometheus import parse_prometheus as _parse_samples
from ._prometheus import samples_by_name
from .openai import build_compatible_chat as _openai_build_chat
from .openai import classify_error as _openai_classify_error
from .openai import make_openai_compatible

__all__ = [
    "PROVIDER",
    "QUANTIZATIONS",
    "ModelCard",
    "Tokenized",
    "VllmLaunchSpec",
    "VllmMetrics",
    "build_detokenize",
    "build_health",
    "build_load_lora",
    "build_metrics",
    "build_models",
    "build_tokenize",
    "build_unload_lora",
    "classify_error",
    "guided_extra",
    "parse_detokenize",
    "parse_health",
    "parse_lora_reply",
    "parse_metrics",
    "parse_models",
    "parse_prometheus",
    "parse_tokenize",
    "server_root",
    "stop_reason",
    "summarize_metrics",
]

NAME = "vllm"
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """Typed error for both of vLLM's body shapes (top-level ``object: error`` or nested ``error``)."""
    return _openai_classify_error(status, headers, body, provider=NAME)


def stop_reason(response: ChatResponse) -> str | int | None:
    """vLLM's ``choices[0].stop_reason``: the stop string or stop token id that ended generation (``None``
    for EOS, length, or when absent)."""
    raw = response.raw
    choices = raw.get("choices") if isinstance(raw, Mapping) else None
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    value = first.get("stop_reason")
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------- /health, /v1/models


def build_health() -> ProviderRequest:
    """``GET /health``: 200 with an empty body when the engine is alive."""
    return ProviderRequest("GET", "/health")


def parse_health(body: bytes, headers: Mapping[str, str]) -> bool:
    """``True`` for the 2xx answer (an error status raises the typed error before this is called)."""
    return True


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One ``/v1/models`` entry. A LoRA adapter has ``parent`` (its base model) and ``root`` (its path)."""

    id: str
    root: str | None = None
    parent: str | None = None
    max_model_len: int | None = None
    owned_by: str | None = None

    @property
    def is_lora(self) -> bool:
        return self.parent is not None


def build_models() -> ProviderRequest:
    return ProviderRequest("GET", "/v1/models")


def parse_models(body: bytes, headers: Mapping[str, str]) -> list[ModelCard]:
    data = decode_json(body, headers, provider=NAME, what="model list")
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise malformed(NAME, "/v1/models answer has no 'data' list", data)
    out: list[ModelCard] = []
    for it in items:
        if not isinstance(it, Mapping) or not isinstance(it.get("id"), str):
            raise malformed(NAME, f"/v1/models entry without an id: {it!r}", data)
        out.append(
            ModelCard(
                id=it["id"],
                root=as_str(it.get("root")),
                parent=as_str(it.get("parent")),
                max_model_len=opt_int(it.get("max_model_len")),
                owned_by=as_str(it.get("owned_by")),
            )
        )
    return out


# --------------------------------------------------------------------------- tokenize


@dataclass(frozen=True, slots=True)
class Tokenized:
    tokens: tuple[int, ...]
    count: int
    max_model_len: int | None


def build_tokenize(
    model: str,
    prompt: str | None = None,
    *,
    messages: Any = None,
    add_special_tokens: bool | None = None,
    add_generation_prompt: bool | None = None,
) -> ProviderRequest:
    """``POST /tokenize`` of a ``prompt`` or of chat ``messages`` (the chat template applied), exactly one."""
    if not model or not isinstance(model, str):
        raise ConfigurationError("vllm tokenize needs a model name")
    if (prompt is None) == (messages is None):
        raise ConfigurationError("vllm tokenize takes exactly one of prompt= or messages=")
    body: dict[str, Any] = {"model": model}
    if prompt is not None:
        if not isinstance(prompt, str):
            raise ConfigurationError(f"vllm tokenize prompt must be a string, got {type(prompt).__name__}")
        body["prompt"] = prompt
    else:
        chat = _openai_build_chat(ChatRequest(messages=coerce_messages(messages)), model, False)
        body["messages"] = chat.json["messages"]
        if add_generation_prompt is not None:
            body["add_generation_prompt"] = add_generation_prompt
    if add_special_tokens is not None:
        body["add_special_tokens"] = add_special_tokens
    return ProviderRequest("POST", "/tokenize", headers=dict(JSON_HEADERS), json=body)


def _int_list(raw: object, what: str, data: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
        raise malformed(NAME, f"{what} is not a list of integers", data)
    return tuple(raw)


def parse_tokenize(body: bytes, headers: Mapping[str, str]) -> Tokenized:
    data = decode_json(body, headers, provider=NAME, what="tokenize response")
    if not isinstance(data, Mapping):
        raise malformed(NAME, "/tokenize answer is not an object", data)
    tokens = _int_list(data.get("tokens"), "/tokenize 'tokens'", data)
    count = opt_int(data.get("count"))
    return Tokenized(
        tokens=tokens,
        count=count if count is not None else len(tokens),
        max_model_len=opt_int(data.get("max_model_len")),
    )


def build_detokenize(model: str, tokens: Sequence[int]) -> ProviderRequest:
    if not model or not isinstance(model, str):
        raise ConfigurationError("vllm detokenize needs a model name")
    toks = list(tokens)
    if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in toks):
        raise ConfigurationError("vllm detokenize tokens must be non-negative integers")
    return ProviderRequest("POST", "/detokenize", headers=dict(JSON_HEADERS), json={"model": model, "tokens": toks})


def parse_detokenize(body: bytes, headers: Mapping[str, str]) -> str:
    data = decode_json(body, headers, provider=NAME, what="detokenize response")
    prompt = data.get("prompt") if isinstance(data, Mapping) else None
    if not isinstance(prompt, str):
        raise malformed(NAME, "/detokenize answer has no 'prompt' string", data)
    return prompt


# --------------------------------------------------------------------------- LoRA


def build_load_lora(lora_name: str, lora_path: str) -> ProviderRequest:
    """``POST /v1/load_lora_adapter`` (the server needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``); afterwards
    use ``lora_name`` as the model."""
    for what, v in (("lora_name", lora_name), ("lora_path", lora_path)):
        if not isinstance(v, str) or not v.strip():
            raise ConfigurationError(f"vllm load_lora_adapter needs a non-empty {what}")
    return ProviderRequest(
        "POST",
        "/v1/load_lora_adapter",
        headers=dict(JSON_HEADERS),
        json={"lora_name": lora_name, "lora_path": lora_path},
    )


def build_unload_lora(lora_name: str) -> ProviderRequest:
    if not isinstance(lora_name, str) or not lora_name.strip():
        raise ConfigurationError("vllm unload_lora_adapter needs a non-empty lora_name")
    return ProviderRequest("POST", "/v1/unload_lora_adapter", headers=dict(JSON_HEADERS), json={"lora_name": lora_name})


def parse_lora_reply(body: bytes, headers: Mapping[str, str]) -> str:
    """The plain-text ``Success: ...`` message of a LoRA load/unload."""
    text = body.decode("utf-8", "replace").strip()
    if text.startswith('"') and text.endswith('"'):  # some versions JSON-encode the string
        with contextlib.suppress(ValueError):
            text = str(json.loads(text))
    if not text.startswith("Success"):
        raise malformed(NAME, f"unexpected LoRA adapter answer: {text[:200]!r}", text[:200])
    return text


# --------------------------------------------------------------------------- /metrics


def parse_prometheus(text: str | bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text exposition (v0.0.4) as ``{metric: [(labels, value), ...]}`` in file order (the shared
    :func:`._prometheus.parse_prometheus`, grouped). A malformed sample raises MalformedResponseError."""
    return samples_by_name(_parse_samples(text, provider=NAME))


@dataclass(frozen=True, slots=True)
class VllmMetrics:
    """The headline engine numbers (summed over label sets, e.g. several models or engines)."""

    num_requests_running: float | None = None
    num_requests_waiting: float | None = None
    kv_cache_usage: float | None = None  # 0..1 (vllm:kv_cache_usage_perc, older vllm:gpu_cache_usage_perc)
    prompt_tokens_total: float | None = None
    generation_tokens_total: float | None = None
    raw: Mapping[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict, repr=False)


def _sum(metrics: Mapping[str, list[tuple[dict[str, str], float]]], *names: str) -> float | None:
    for name in names:
        samples = metrics.get(name)
        if samples:
            return sum(v for _, v in samples)
    return None


def summarize_metrics(metrics: Mapping[str, list[tuple[dict[str, str], float]]]) -> VllmMetrics:
    return VllmMetrics(
        num_requests_running=_sum(metrics, "vllm:num_requests_running"),
        num_requests_waiting=_sum(metrics, "vllm:num_requests_waiting"),
        kv_cache_usage=_sum(metrics, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        prompt_tokens_total=_sum(metrics, "vllm:prompt_tokens_total", "vllm:prompt_tokens"),
        generation_tokens_total=_sum(metrics, "vllm:generation_tokens_total", "vllm:generation_tokens"),
        raw=metrics,
    )


def build_metrics() -> ProviderRequest:
    return ProviderRequest("GET", "/metrics")


def parse_metrics(body: bytes, headers: Mapping[str, str]) -> VllmMetrics:
    return summarize_metrics(parse_prometheus(body))


# --------------------------------------------------------------------------- guided decoding

_GUIDED_KEYS = ("json", "regex", "choice", "grammar")


def _guided_value(kind: str, value: Any) -> Any:
    """Validate one guided-decoding constraint; returns its wire value."""
    if kind == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as e:
                raise ConfigurationError(f"guided json_schema string is not JSON: {e}") from e
        if not isinstance(value, Mapping):
            raise ConfigurationError("guided json_schema must be a JSON Schema object")
        return dict(value)
    if kind == "regex":
        if not isinstance(value, str) or not value:
            raise ConfigurationError("guided regex must be a non-empty string")
        try:
            re.compile(value)
        except re.error as e:
            raise ConfigurationError(f"guided regex does not compile: {e}") from e
        return value
    if kind == "choice":
        if isinstance(value, str) or not value or not all(isinstance(c, str) and c for c in value):
            raise ConfigurationError("guided choice must be a non-empty list of non-empty strings")
        return list(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("guided grammar must be a non-empty string (EBNF/GBNF/Lark)")
    return value


def guided_extra(
    *,
    json_schema: Mapping[str, Any] | str | None = None,
    regex: str | None = None,
    choice: Sequence[str] | None = None,
    grammar: str | None = None,
    style: str = "guided",
    backend: str | None = None,
) -> dict[str, Any]:
    """The ``extra`` dict for vLLM guided decoding, exactly one constraint given. ``style="guided"`` renders
    ``guided_json``/``guided_regex``/``guided_choice``/``guided_grammar`` (+ ``guided_decoding_backend``);
    ``style="structured_outputs"`` renders newer vLLM's ``{"structured_outputs": {...}}``."""
    if style not in ("guided", "structured_outputs"):
        raise ConfigurationError(f"guided style must be 'guided' or 'structured_outputs', got {style!r}")
    given = {k: v for k, v in zip(_GUIDED_KEYS, (json_schema, regex, choice, grammar), strict=True) if v is not None}
    if len(given) != 1:
        raise ConfigurationError(
            f"guided decoding takes exactly one of json_schema/regex/choice/grammar, got {sorted(given)}"
        )
    kind, raw = next(iter(given.items()))
    value = _guided_value(kind, raw)
    if style == "guided":
        out: dict[str, Any] = {f"guided_{kind}": value}
        if backend is not None:
            out["guided_decoding_backend"] = backend
        return out
    so: dict[str, Any] = {kind: value}
    if backend is not None:
        so["backend"] = backend
    return {"structured_outputs": so}


# --------------------------------------------------------------------------- launch spec

#: ``--quantization`` values vLLM accepts (common ones; ``extra_args`` is the escape hatch for others).
QUANTIZATIONS = frozenset(
    (
        "awq",
        "awq_marlin",
        "gptq",
        "gptq_marlin",
        "gptq_marlin_24",
        "marlin",
        "fp8",
        "fbgemm_fp8",
        "modelopt",
        "modelopt_fp4",
        "bitsandbytes",
        "gguf",
        "compressed-tensors",
        "experts_int8",
        "deepspeedfp",
        "tpu_int8",
        "aqlm",
        "hqq",
        "ipex",
        "quark",
        "moe_wna16",
        "torchao",
        "mxfp4",
        "petit_nvfp4",
    )
)
_DTYPES = frozenset(("auto", "half", "float16", "bfloat16", "float", "float32"))


@dataclass(frozen=True, slots=True)
class VllmLaunchSpec:
    """How to start ``vllm serve``; :meth:`argv` renders the command line after validating the values."""

    model: str
    quantization: str | None = None
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    lora_modules: Mapping[str, str] = field(default_factory=dict)
    enable_lora: bool | None = None
    served_model_name: str | Sequence[str] | None = None
    dtype: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = field(default=None, repr=False)
    extra_args: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigurationError("VllmLaunchSpec.model must be a non-empty model id or path")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise ConfigurationError(
                f"unknown vLLM quantization {self.quantization!r}; known: {', '.join(sorted(QUANTIZATIONS))}"
            )
        tp = self.tensor_parallel_size
        if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
            raise ConfigurationError(f"tensor_parallel_size must be an int >= 1, got {tp!r}")
        mml = self.max_model_len
        if mml is not None and (isinstance(mml, bool) or not isinstance(mml, int) or mml < 1):
            raise ConfigurationError(f"max_model_len must be a positive int, got {mml!r}")
        gmu = self.gpu_memory_utilization
        if gmu is not None and (isinstance(gmu, bool) or not isinstance(gmu, (int, float)) or not 0 < gmu <= 1):
            raise ConfigurationError(f"gpu_memory_utilization must be within (0, 1], got {gmu!r}")
        if self.dtype is not None and self.dtype not in _DTYPES:
            raise ConfigurationError(f"unknown dtype {self.dtype!r}; known: {', '.join(sorted(_DTYPES))}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigurationError(f"port must be within 1..65535, got {self.port!r}")
        if not isinstance(self.host, str) or not self.host:
            raise ConfigurationError("host must be a non-empty string")
        for name, path in self.lora_modules.items():
            if not name or not path or "=" in name or any(c.isspace() for c in name):
                raise ConfigurationError(f"bad LoRA module {name!r}={path!r} (name without '=' or spaces, and a path)")
        if self.lora_modules and self.enable_lora is False:
            raise ConfigurationError("lora_modules given but enable_lora=False")
        if isinstance(self.extra_args, str):
            raise ConfigurationError("extra_args must be a sequence of strings, not one string")

    def argv(self) -> list[str]:
        """``["vllm", "serve", model, ...]`` with only the options that are set."""
        out = ["vllm", "serve", self.model, "--host", self.host, "--port", str(self.port)]
        if self.quantization:
            out += ["--quantization", self.quantization]
        if self.tensor_parallel_size != 1:
            out += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.max_model_len is not None:
            out += ["--max-model-len", str(self.max_model_len)]
        if self.gpu_memory_utilization is not None:
            out += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        if self.dtype:
            out += ["--dtype", self.dtype]
        if self.served_model_name:
            names = (
                [self.served_model_name] if isinstance(self.served_model_name, str) else list(self.served_model_name)
            )
            out += ["--served-model-name", *names]
        if self.enable_lora or (self.lora_modules and self.enable_lora is None):
            out.append("--enable-lora")
        if self.lora_modules:
            out += ["--lora-modules", *(f"{k}={v}" for k, v in self.lora_modules.items())]
        if self.api_key:
            out += ["--api-key", self.api_key]
        out += [str(a) for a in self.extra_args]
        return out


PROVIDER: Provider = dataclasses.replace(
    make_openai_compatible(
        NAME,
        DEFAULT_BASE_URL,
        description="vLLM OpenAI-compatible server (chat, completions, embeddings; native routes as pure helpers)",
        request_id_headers=("x-request-id",),
        capabilities=frozenset(
            (
                "chat",
                "stream",
                "tools",
                "json",
                "vision",
                "embed",
                "completions",
                "tokenize",
                "detokenize",
                "lora",
                "metrics",
                "health",
                "guided",
            )
        ),
        health_path="/health",
    ),
    classify_error=classify_error,
)
