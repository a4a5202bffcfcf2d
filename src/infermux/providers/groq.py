"""Groq (``https://api.groq.com/openai/v1``): OpenAI chat completions plus Groq's extras. Pure, no I/O.

- Timing: ``usage.queue_time/prompt_time/completion_time/total_time`` (and ``x_groq.usage`` on the final stream
  chunk) stay in ``ChatResponse.raw``; :func:`groq_timing` reads them, :class:`GroqTimingTotals` sums them per
  endpoint (fed by the caller: the core has no per-provider counter hook).
- Rate limits: :func:`parse_rate_limits` reads ``x-ratelimit-*`` / ``retry-after`` (durations such as
  ``"2m59.56s"``, ``"7.66s"``, ``"120ms"`` in seconds).
- Models: :data:`MODELS` says which model takes tools, images, JSON mode and how long its context is;
  :func:`build_chat` refuses an incompatible request with :class:`ConfigurationError` before anything is sent.
  Models not in the table (new ones, fine-tunes) pass through unchecked; add them with :func:`register_model`.
- Errors: OpenAI-shaped bodies. 429 carries ``retry-after``; **498** (flex tier capacity exceeded) and a 503
  "over capacity" become :class:`OverloadedError` (retryable: capacity comes back, unlike a bad request).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._ratelimit import parse_duration
from ..errors import APIStatusError, ConfigurationError, OverloadedError
from ..types import ChatRequest, ChatResponse, ImagePart
from ._base import Provider, ProviderRequest, header
from .openai import build_compatible_chat as _openai_build_chat
from .openai import classify_error as _openai_classify_error
from .openai import make_openai_compatible

__all__ = [
    "MODELS",
    "PROVIDER",
    "GroqModel",
    "GroqTimingTotals",
    "RateLimitInfo",
    "build_chat",
    "check_request",
    "classify_error",
    "groq_timing",
    "parse_duration",
    "parse_rate_limits",
    "register_model",
]

NAME = "groq"
DEFAULT_BASE_URL = "https://api.groq.com/openai/v1"
TIMING_FIELDS = ("queue_time", "prompt_time", "completion_time", "total_time")


# --------------------------------------------------------------------------- model compatibility


@dataclass(frozen=True, slots=True)
class GroqModel:
    """What one Groq model accepts. ``chat=False``: not a chat model (speech, TTS); ``json_schema``: structured
    outputs (``response_format: json_schema``); ``max_output``: the largest ``max_tokens`` it takes."""

    id: str
    context_window: int
    max_output: int
    tools: bool = True
    vision: bool = False
    json_mode: bool = True
    json_schema: bool = False
    chat: bool = True


def _m(*args: Any, **kw: Any) -> tuple[str, GroqModel]:
    model = GroqModel(*args, **kw)
    return model.id, model


#: Groq's models (from console.groq.com/docs/models, 2025). Deprecated ids are kept: old code still names them.
MODELS: dict[str, GroqModel] = dict(
    (
        _m("llama-3.1-8b-instant", 131072, 131072),
        _m("llama-3.3-70b-versatile", 131072, 32768),
        _m("meta-llama/llama-4-scout-17b-16e-instruct", 131072, 8192, vision=True, json_schema=True),
        _m("meta-llama/llama-4-maverick-17b-128e-instruct", 131072, 8192, vision=True, json_schema=True),
        _m("meta-llama/llama-guard-4-12b", 131072, 1024, tools=False, vision=True, json_mode=False),
        _m("gemma2-9b-it", 8192, 8192),
        _m("qwen/qwen3-32b", 131072, 40960),
        _m("openai/gpt-oss-20b", 131072, 65536, json_schema=True),
        _m("openai/gpt-oss-120b", 131072, 65536, json_schema=True),
        _m("moonshotai/kimi-k2-instruct", 131072, 16384, json_schema=True),
        _m("moonshotai/kimi-k2-instruct-0905", 262144, 16384, json_schema=True),
        _m("allam-2-7b", 4096, 4096, tools=False, json_mode=False),
        _m("llama3-8b-8192", 8192, 8192),
        _m("llama3-70b-8192", 8192, 8192),
        _m("whisper-large-v3", 448, 448, tools=False, json_mode=False, chat=False),
        _m("whisper-large-v3-turbo", 448, 448, tools=False, json_mode=False, chat=False),
        _m("distil-whisper-large-v3-en", 448, 448, tools=False, json_mode=False, chat=False),
        _m("playai-tts", 8192, 8192, tools=False, json_mode=False, chat=False),
    )
)


def register_model(model: GroqModel) -> None:
    """Add or replace a model in :data:`MODELS` (e.g. one released after this table was written)."""
    if not isinstance(model, GroqModel):
        raise ConfigurationError(f"register_model needs a GroqModel, got {type(model).__name__}")
    MODELS[model.id] = model


def _which(pred: Any) -> str:
    names = sorted(m.id for m in MODELS.values() if m.chat and pred(m))
    return ", ".join(names) or "none"


def _approx_min_tokens(req: ChatRequest) -> int:
    """A lower bound of the prompt's tokens (1 per 8 characters: real tokenizers average ~4)."""
    return sum(len(m.text) for m in req.messages) // 8


def check_request(req: ChatRequest, model: str) -> None:
    """Raise :class:`ConfigurationError` when ``model`` (a known Groq model) cannot serve ``req``."""
    info = MODELS.get(model)
    if info is None:
        return
    if not info.chat:
        raise ConfigurationError(
            f"groq model {model!r} is not a chat model (speech/TTS); chat models: {_which(lambda m: True)}"
        )
    has_image = any(isinstance(p, ImagePart) for m in req.messages if isinstance(m.content, tuple) for p in m.content)
    if has_image and not info.vision:
        raise ConfigurationError(
            f"groq model {model!r} does not take images; vision models: {_which(lambda m: m.vision)}"
        )
    if req.tools and req.tool_choice != "none" and not info.tools:
        raise ConfigurationError(
            f"groq model {model!r} does not support tool use; models with tools: {_which(lambda m: m.tools)}"
        )
    rf = req.response_format
    if rf is not None and rf.type == "json_object" and not info.json_mode:
        raise ConfigurationError(
            f"groq model {model!r} does not support JSON mode; models with it: {_which(lambda m: m.json_mode)}"
        )
    if rf is not None and rf.type == "json_schema" and not info.json_schema:
        raise ConfigurationError(
            f"groq model {model!r} does not support structured outputs (json_schema); use JSON mode"
            f" (response_format='json') or one of: {_which(lambda m: m.json_schema)}"
        )
    if req.max_tokens is not None and req.max_tokens > info.max_output:
        raise ConfigurationError(f"groq model {model!r} takes max_tokens <= {info.max_output}, got {req.max_tokens}")
    need = _approx_min_tokens(req) + (req.max_tokens or 0)
    if need > info.context_window:
        raise ConfigurationError(
            f"groq model {model!r}: the prompt (at least ~{_approx_min_tokens(req)} tokens) plus max_tokens"
            f" exceeds its context window of {info.context_window} tokens"
        )
    n = req.extra.get("n")
    if n is not None and n != 1:
        raise ConfigurationError(f"groq supports only n=1, got n={n!r}")


def build_chat(req: ChatRequest, model: str, stream: bool) -> ProviderRequest:
    """OpenAI chat body after :func:`check_request` (incompatible requests never leave the process)."""
    check_request(req, model)
    return _openai_build_chat(req, model, stream)


# --------------------------------------------------------------------------- timing


def groq_timing(response: ChatResponse | Mapping[str, Any]) -> dict[str, float]:
    """Groq's timing fields (seconds) of a response: ``queue_time``, ``prompt_time``, ``completion_time``,
    ``total_time`` where present. Accepts a :class:`ChatResponse` (reads ``raw``), a raw body or stream chunk
    (``usage`` or ``x_groq.usage``) or a usage mapping. ``{}`` when there are none (e.g. a streamed
    ``ChatResponse``, whose ``raw`` the stream API does not keep)."""
    raw: Any = response.raw if isinstance(response, ChatResponse) else response
    if not isinstance(raw, Mapping):
        return {}
    usage = raw.get("usage")
    if not isinstance(usage, Mapping):
        x_groq = raw.get("x_groq")
        usage = x_groq.get("usage") if isinstance(x_groq, Mapping) else None
    if not isinstance(usage, Mapping):
        usage = raw
    return {
        k: float(usage[k])
        for k in TIMING_FIELDS
        if isinstance(usage.get(k), (int, float)) and not isinstance(usage.get(k), bool)
    }


@dataclass(slots=True)
class GroqTimingTotals:
    """Sums of Groq timings per endpoint name: ``add(response)`` after each call, ``snapshot()`` to read."""

    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, response: ChatResponse, endpoint: str | None = None) -> dict[str, float]:
        timing = groq_timing(response)
        if timing:
            name = endpoint or response.endpoint or "?"
            slot = self.totals.setdefault(name, dict.fromkeys(TIMING_FIELDS, 0.0))
            for k, v in timing.items():
                slot[k] += v
            self.counts[name] = self.counts.get(name, 0) + 1
        return timing

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {name: {**vals, "responses": float(self.counts[name])} for name, vals in self.totals.items()}


# --------------------------------------------------------------------------- rate limits


def _int(headers: Mapping[str, str], name: str) -> int | None:
    v = header(headers, name)
    if v is None:
        return None
    try:
        return int(v.strip())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """Groq's rate-limit headers: requests are per day (RPD), tokens per minute (TPM); resets in seconds."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests: float | None = None
    reset_tokens: float | None = None
    retry_after: float | None = None

    @property
    def exhausted(self) -> bool:
        return self.remaining_requests == 0 or self.remaining_tokens == 0


def parse_rate_limits(headers: Mapping[str, str]) -> RateLimitInfo:
    """:class:`RateLimitInfo` from response headers (any field ``None`` when absent or unparseable)."""
    return RateLimitInfo(
        limit_requests=_int(headers, "x-ratelimit-limit-requests"),
        limit_tokens=_int(headers, "x-ratelimit-limit-tokens"),
        remaining_requests=_int(headers, "x-ratelimit-remaining-requests"),
        remaining_tokens=_int(headers, "x-ratelimit-remaining-tokens"),
        reset_requests=parse_duration(header(headers, "x-ratelimit-reset-requests")),
        reset_tokens=parse_duration(header(headers, "x-ratelimit-reset-tokens")),
        retry_after=parse_duration(header(headers, "retry-after")),
    )


# --------------------------------------------------------------------------- errors

_CAPACITY_STATUSES = frozenset((498,))


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """Typed error for a Groq answer: OpenAI mapping, plus 498 / 503 over-capacity -> :class:`OverloadedError`.

    A 429 without ``retry-after`` takes the nearer ``x-ratelimit-reset-*`` of the exhausted limit as its delay.
    """
    err = _openai_classify_error(status, headers, body, provider=NAME)
    if err.retry_after is None and status == 429:
        rl = parse_rate_limits(headers)
        resets = [
            r
            for r, left in ((rl.reset_requests, rl.remaining_requests), (rl.reset_tokens, rl.remaining_tokens))
            if r is not None and left == 0
        ]
        err.retry_after = max(resets) if resets else None
    text = (err.provider_message or "").lower()
    if status in _CAPACITY_STATUSES or (status == 503 and "capacity" in text):
        over = OverloadedError(
            err.message,
            provider=NAME,
            status_code=status,
            error_type=err.error_type or ("capacity_exceeded" if status == 498 else "over_capacity"),
            provider_message=err.provider_message,
            provider_request_id=err.provider_request_id,
            retry_after=err.retry_after,
            retryable=err.should_retry_header if err.should_retry_header is not None else True,
            body=err.body,
        )
        over.should_retry_header = err.should_retry_header
        return over
    return err


PROVIDER: Provider = dataclasses.replace(
    make_openai_compatible(
        NAME,
        DEFAULT_BASE_URL,
        description="Groq (OpenAI-compatible chat under /openai/v1; model compatibility checked before sending)",
        build_chat_fn=build_chat,
        request_id_headers=("x-request-id",),
        capabilities=frozenset(("chat", "stream", "tools", "json", "vision", "rate_limits", "timing")),
        embeddings=False,
    ),
    classify_error=classify_error,
    response_metrics=groq_timing,
)
