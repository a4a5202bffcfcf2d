"""Groq emulator: OpenAI chat completions under ``/openai/v1`` with Groq's extras.

- ``POST /openai/v1/chat/completions`` (JSON and SSE), ``GET /openai/v1/models`` and ``/openai/v1/models/{model}``.
- ``usage`` carries ``queue_time``/``prompt_time``/``completion_time``/``total_time``; responses and stream chunks
  carry ``x_groq`` (``id``; the final chunk also ``usage``), headers ``x-request-id`` and ``x-groq-region``.
- ``x-ratelimit-*`` headers count down per served chat request (requests per window, tokens per window); an
  exhausted quota answers 429 ``rate_limit_exceeded`` with ``retry-after``. Each sandbox has its own quota
  (per-server state); set it with ``sandbox.configure_backend("groq", requests=..., tokens=...,
  requests_window=..., tokens_window=..., clock=...)`` (see :func:`configure`); ``sandbox.reset()`` refills it
  with the defaults.
- Bearer auth is required (any key, or one of the sandbox's ``keys``); errors are OpenAI-shaped
  (``{"error": {"message", "type", "code"}}``). Model checks follow Groq's catalogue (vision, tools, JSON mode).

Independent of :mod:`infermux.providers` on purpose (the provider is tested against it).
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infermux.errors import ConfigurationError
from infermux.sandbox import _openai
from infermux.sandbox._model import Conversation, Generation, generate
from infermux.sandbox._server import DEFAULT_MODELS, Backend, Route
from infermux.sandbox._wire import Ctx, Dialect, JsonReply, ProtocolError, Reply, dumps, register_dialect, server_state

__all__ = ["BACKEND", "GroqQuota", "configure"]

GROQ = "groq"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_ERR_TYPES = {429: "requests", 498: "capacity_exceeded", 503: "service_unavailable"}
_ERR_DEFAULT = {
    400: "Bad request.",
    401: "Invalid API Key",
    404: "Unknown request URL. Please check the URL for typos, or see the docs at https://console.groq.com/docs/",
    413: "Request Entity Too Large",
    429: "Rate limit reached. Please try again later.",
    498: "Flex tier capacity exceeded. The flex tier is at capacity; please try again later.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable: Groq is currently over capacity. Please try again later.",
}


@dataclass(frozen=True, slots=True)
class _Model:
    context: int
    max_output: int
    owner: str
    tools: bool = True
    vision: bool = False
    json_mode: bool = True
    chat: bool = True


_MODELS: dict[str, _Model] = {
    "llama-3.1-8b-instant": _Model(131072, 131072, "Meta"),
    "llama-3.3-70b-versatile": _Model(131072, 32768, "Meta"),
    "meta-llama/llama-4-scout-17b-16e-instruct": _Model(131072, 8192, "Meta", vision=True),
    "meta-llama/llama-4-maverick-17b-128e-instruct": _Model(131072, 8192, "Meta", vision=True),
    "meta-llama/llama-guard-4-12b": _Model(131072, 1024, "Meta", tools=False, vision=True, json_mode=False),
    "gemma2-9b-it": _Model(8192, 8192, "Google"),
    "qwen/qwen3-32b": _Model(131072, 40960, "Alibaba Cloud"),
    "openai/gpt-oss-20b": _Model(131072, 65536, "OpenAI"),
    "openai/gpt-oss-120b": _Model(131072, 65536, "OpenAI"),
    "moonshotai/kimi-k2-instruct": _Model(131072, 16384, "Moonshot AI"),
    "allam-2-7b": _Model(4096, 4096, "SDAIA", tools=False, json_mode=False),
    "llama3-8b-8192": _Model(8192, 8192, "Meta"),
    "whisper-large-v3": _Model(448, 448, "OpenAI", tools=False, json_mode=False, chat=False),
    "whisper-large-v3-turbo": _Model(448, 448, "OpenAI", tools=False, json_mode=False, chat=False),
}


# --------------------------------------------------------------------------- rate-limit quota


class GroqQuota:
    """Fixed-window quotas like Groq's: requests per ``requests_window`` s (RPD: a day) and tokens per
    ``tokens_window`` s (TPM: a minute), full at the start. Thread-safe; ``clock`` is injectable.
    One per sandbox, kept in its per-server state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.limit_requests, self.limit_tokens = 14400, 6000
        self.requests_window, self.tokens_window = 86400.0, 60.0
        self.clock: Callable[[], float] = time.monotonic
        self.configure()

    def configure(
        self,
        *,
        requests: int | None = None,
        tokens: int | None = None,
        requests_window: float | None = None,
        tokens_window: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Change the given settings (the others stay) and refill both windows."""
        with self._lock:
            if requests is not None:
                self.limit_requests = requests
            if tokens is not None:
                self.limit_tokens = tokens
            if requests_window is not None:
                self.requests_window = requests_window
            if tokens_window is not None:
                self.tokens_window = tokens_window
            if clock is not None:
                self.clock = clock
            now = self.clock()
            self._req_start, self._tok_start = now, now
            self.used_requests, self.used_tokens = 0, 0

    def _roll(self, now: float) -> None:
        if now - self._req_start >= self.requests_window:
            self._req_start, self.used_requests = now, 0
        if now - self._tok_start >= self.tokens_window:
            self._tok_start, self.used_tokens = now, 0

    def admit(self, prompt_tokens: int) -> tuple[str, float] | None:
        """``None`` when a request with ``prompt_tokens`` may run now, else ``(limit kind, seconds to wait)``."""
        with self._lock:
            now = self.clock()
            self._roll(now)
            if self.used_requests >= self.limit_requests:
                return "requests", self._req_start + self.requests_window - now
            if self.used_tokens + prompt_tokens > self.limit_tokens:
                return "tokens", self._tok_start + self.tokens_window - now
            return None

    def consume(self, tokens: int) -> None:
        with self._lock:
            self._roll(self.clock())
            self.used_requests += 1
            self.used_tokens += tokens

    def headers(self) -> dict[str, str]:
        with self._lock:
            now = self.clock()
            self._roll(now)
            return {
                "x-ratelimit-limit-requests": str(self.limit_requests),
                "x-ratelimit-limit-tokens": str(self.limit_tokens),
                "x-ratelimit-remaining-requests": str(max(0, self.limit_requests - self.used_requests)),
                "x-ratelimit-remaining-tokens": str(max(0, self.limit_tokens - self.used_tokens)),
                "x-ratelimit-reset-requests": _go_duration(self._req_start + self.requests_window - now),
                "x-ratelimit-reset-tokens": _go_duration(self._tok_start + self.tokens_window - now),
            }


def _go_duration(seconds: float) -> str:
    """Groq's duration format: ``"2m59.56s"``, ``"7.66s"``, ``"120ms"``."""
    s = max(0.0, seconds)
    if s < 1:
        return f"{round(s * 1000)}ms"
    minutes, rest = divmod(s, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return out + f"{round(rest, 2):g}s"


def _quota(state: dict[str, Any]) -> GroqQuota:
    return server_state(state, GROQ, GroqQuota)


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"groq {name} must be an int >= 0, got {value!r}")
    return value


def _seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigurationError(f"groq {name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _clock(value: Any) -> Callable[[], float] | None:
    """A ``() -> float`` callable, or a clock object with ``now()`` (``infermux.resilience.FakeClock``)."""
    if value is None:
        return None
    now = getattr(value, "now", None)
    fn = now if callable(now) else value
    if not callable(fn):
        raise ConfigurationError(f"groq clock must be callable or have a now() method, got {value!r}")
    probe = fn()
    if isinstance(probe, bool) or not isinstance(probe, (int, float)):
        raise ConfigurationError(f"groq clock must return seconds as a number, got {probe!r}")
    clock: Callable[[], float] = fn
    return clock


def configure(
    state: dict[str, Any],
    *,
    requests: int | None = None,
    tokens: int | None = None,
    requests_window: float | None = None,
    tokens_window: float | None = None,
    clock: Any = None,
) -> None:
    """``configure_backend("groq", ...)``: this server's quota (defaults 14400 requests per 86400 s, 6000 tokens
    per 60 s, :func:`time.monotonic`). Only the given options change; the quota is refilled. ``clock``: a
    ``() -> float`` or an object with ``now()`` such as ``infermux.resilience.FakeClock``."""
    _quota(state).configure(
        requests=_count("requests", requests),
        tokens=_count("tokens", tokens),
        requests_window=_seconds("requests_window", requests_window),
        tokens_window=_seconds("tokens_window", tokens_window),
        clock=_clock(clock),
    )


# --------------------------------------------------------------------------- wire dialect


def _request_id() -> str:
    return "req_" + "".join(secrets.choice(_CROCKFORD) for _ in range(26))


def _error_body(
    status: int, message: str | None, error_type: str | None, _rid: str, _state: dict[str, Any]
) -> tuple[Any, dict[str, str]]:
    etype = (
        error_type or _ERR_TYPES.get(status) or ("internal_server_error" if status >= 500 else "invalid_request_error")
    )
    err: dict[str, Any] = {"message": message or _ERR_DEFAULT.get(status, "Error"), "type": etype}
    if status == 429:
        err["code"] = "rate_limit_exceeded"
    return {"error": err}, {}


def _base_headers(rid: str, started: float, limit: int, in_flight: int, state: dict[str, Any]) -> dict[str, str]:
    return {
        "x-request-id": rid,
        "x-groq-region": "us-east-1",
        "cache-control": "private, max-age=0, no-store",
        **_quota(state).headers(),
    }


register_dialect(Dialect(GROQ, error_body=_error_body, new_request_id=_request_id, base_headers=_base_headers))


def _fail(
    ctx: Ctx,
    status: int,
    message: str,
    *,
    etype: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProtocolError:
    err: dict[str, Any] = {"message": message, "type": etype}
    if code is not None:
        err["code"] = code
    if param is not None:
        err["param"] = param
    return ProtocolError(JsonReply(status, {"error": err}, {**ctx.headers, **(headers or {})}))


def _bearer(headers: Mapping[str, str]) -> str:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _check_auth(headers: Mapping[str, str], keys: frozenset[str] | None, ctx: Ctx) -> None:
    key = _bearer(headers)
    if not key or (keys is not None and key not in keys):
        raise _fail(ctx, 401, "Invalid API Key", code="invalid_api_key")


# --------------------------------------------------------------------------- chat


def _model(name: str, ctx: Ctx) -> _Model:
    info = _MODELS.get(name)
    if info is not None:
        return info
    if ctx.models != DEFAULT_MODELS and name in ctx.models:  # extra models the sandbox was started with
        return _Model(131072, 32768, "sandbox", vision=True)
    raise _fail(ctx, 404, f"The model `{name}` does not exist or you do not have access to it.", code="model_not_found")


def _check_model(body: dict[str, Any], conv: Conversation, info: _Model, ctx: Ctx) -> None:
    name = conv.model
    if not info.chat:
        raise _fail(ctx, 400, f"The model `{name}` does not support chat completions", code="model_not_supported")
    if not info.vision and any(
        isinstance(m, dict)
        and isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
        for m in body.get("messages") or []
    ):
        raise _fail(ctx, 400, "messages[0].content must be a string", param="messages")
    if conv.tools and not info.tools:
        raise _fail(ctx, 400, f"tool calling is not supported with model `{name}`", param="tools")
    if conv.json_mode and not info.json_mode:
        raise _fail(ctx, 400, f"json mode is not supported with model `{name}`", param="response_format")
    if conv.max_tokens is not None and conv.max_tokens > info.max_output:
        raise _fail(
            ctx,
            400,
            f"`max_tokens` must be less than or equal to `{info.max_output}`, the maximum value for `max_tokens`"
            " is less than the `context_window` for this model",
            param="max_tokens",
        )
    n = body.get("n")
    if n is not None and n != 1:
        raise _fail(ctx, 400, "'n' : number must be at most 1", param="n")


def _usage(gen: Generation) -> dict[str, Any]:
    prompt_time = round(gen.prompt_tokens * 0.00012, 9)
    completion_time = round(gen.completion_tokens / 800.0, 9)
    return {
        "queue_time": 0.012345678,
        "prompt_tokens": gen.prompt_tokens,
        "prompt_time": prompt_time,
        "completion_tokens": gen.completion_tokens,
        "completion_time": completion_time,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
        "total_time": round(prompt_time + completion_time, 9),
    }


def _message(gen: Generation) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant"}
    if gen.tool_calls:
        msg["tool_calls"] = [
            {"id": f"call_{c.id}", "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in gen.tool_calls
        ]
    else:
        msg["content"] = gen.text
    return msg


def _finish(gen: Generation) -> str:
    return {"stop_sequence": "stop"}.get(gen.finish, gen.finish)


Events = list[tuple[str | None, str]]


def _stream_events(gen: Generation, base: dict[str, Any], rid: str, include_usage: bool) -> Events:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}

    chunks = [chunk({"role": "assistant", "content": ""}, x_groq={"id": rid})]
    if gen.tool_calls:
        calls = [
            {
                "id": f"call_{c.id}",
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
                "index": i,
            }
            for i, c in enumerate(gen.tool_calls)
        ]
        chunks.append(chunk({"tool_calls": calls}))  # Groq sends each call whole, in one chunk
    else:
        chunks.extend(chunk({"content": piece}) for piece in gen.pieces)
    usage = _usage(gen)
    chunks.append(chunk({}, _finish(gen), x_groq={"id": rid, "usage": usage}))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage, "x_groq": {"id": rid}})
    events: Events = [(None, dumps(c)) for c in chunks]
    return [*events, (None, "[DONE]")]


def chat_completions(body: Any, ctx: Ctx) -> Reply:
    """POST /openai/v1/chat/completions."""
    conv = _openai.parse_chat(body, ctx)
    info = _model(conv.model, ctx)
    _check_model(body, conv, info, ctx)
    gen = generate(conv, ctx.responder)
    quota = _quota(ctx.state)
    blocked = quota.admit(gen.prompt_tokens)
    if blocked is not None:
        kind, wait = blocked
        limit = quota.limit_requests if kind == "requests" else quota.limit_tokens
        what = "requests per day (RPD)" if kind == "requests" else "tokens per minute (TPM)"
        raise _fail(
            ctx,
            429,
            f"Rate limit reached for model `{conv.model}` in organization `org_sandbox` service tier `on_demand`"
            f" on {what}: Limit {limit}. Please try again in {_go_duration(wait)}."
            " Visit https://console.groq.com/docs/rate-limits for more information.",
            etype=kind,
            code="rate_limit_exceeded",
            headers={**quota.headers(), "retry-after": str(max(1, math.ceil(wait)))},
        )
    quota.consume(gen.prompt_tokens + gen.completion_tokens)
    headers = {**ctx.headers, **quota.headers()}
    base: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4()}",
        "object": "chat.completion",
        "created": ctx.created,
        "model": conv.model,
        "system_fingerprint": "fp_" + secrets.token_hex(5),
    }
    if not body.get("stream"):
        choice = {"index": 0, "message": _message(gen), "logprobs": None, "finish_reason": _finish(gen)}
        out = {**base, "choices": [choice], "usage": _usage(gen), "x_groq": {"id": ctx.request_id}}
        out["service_tier"] = "on_demand"
        reply: Reply = ctx.json(out)
    else:
        base["object"] = "chat.completion.chunk"
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        reply = ctx.stream(_stream_events(gen, base, ctx.request_id, include_usage))
    reply.headers = headers
    return reply


# --------------------------------------------------------------------------- models


def _model_obj(name: str, info: _Model) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": 1693721698,
        "owned_by": info.owner,
        "active": True,
        "context_window": info.context,
        "public_apps": None,
        "max_completion_tokens": info.max_output,
    }


def list_models(_body: Any, ctx: Ctx) -> Reply:
    """GET /openai/v1/models."""
    return ctx.json({"object": "list", "data": [_model_obj(n, m) for n, m in _MODELS.items()]})


def retrieve_model(_body: Any, ctx: Ctx) -> Reply:
    """GET /openai/v1/models/{model}."""
    name = ctx.path_params.get("model", "")
    return ctx.json(_model_obj(name, _model(name, ctx)))


BACKEND = Backend(
    GROQ,
    GROQ,
    routes=(
        Route("POST", "/openai/v1/chat/completions", chat_completions),
        Route("GET", "/openai/v1/models", list_models, with_body=False),
        Route("GET", "/openai/v1/models/{model:.+}", retrieve_model, with_body=False),
    ),
    check_auth=_check_auth,
    state=GroqQuota,
    configure=configure,
)
