"""Hugging Face text-generation-inference (TGI) emulator: ``/generate``, ``/generate_stream``, ``/`` (compat),
``/v1/chat/completions`` (Messages API), ``/info``, ``/health``, ``/metrics``, ``/tokenize``.

Shaped like TGI 3.x (router/src/server.rs): token streams are written ``data:{...}`` with no space; the
event whose ``generated_text`` is set ends the stream; errors are ``{"error", "error_type"}`` (422
``validation``, 424 ``generation``, 429 ``overloaded`` "Model is overloaded", 500
``incomplete_generation``); a body serde cannot read gets axum's ``text/plain`` 422 (``Failed to
deserialize the JSON body into the target type: ...``), a body that is not JSON the text/plain 400.
The ``/metrics`` counters are per server (``sandbox.backend_state("tgi")``, a :class:`TgiCounters`).
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from infermux.sandbox._model import Conversation, Generation, count_tokens, generate
from infermux.sandbox._openai import parse_chat
from infermux.sandbox._server import Backend, Route
from infermux.sandbox._wire import Ctx, Dialect, Reply, dumps, register_dialect, server_state

__all__ = ["BACKEND", "MAX_STOP_SEQUENCES", "MAX_TOTAL_TOKENS", "MODEL_ID", "TgiCounters"]

MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
VERSION = "3.2.1"
MAX_STOP_SEQUENCES = 4
MAX_INPUT_TOKENS = 4095
MAX_TOTAL_TOKENS = 4096
_B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_FINISH = {"stop": "eos_token", "stop_sequence": "stop_sequence", "length": "length", "tool_calls": "eos_token"}
_TYPES = {422: "validation", 424: "generation", 429: "overloaded", 500: "incomplete_generation"}
_DEFAULT_MSG = {
    422: "Input validation error",
    424: "Request failed during generation",
    429: "Model is overloaded",
    500: "Incomplete generation",
    503: "Service Unavailable",
}
_AXUM_PREFIXES = ("Failed to parse the request body as JSON", "Failed to deserialize the JSON body")


def _error_body(
    status: int, message: str | None, error_type: str | None, _rid: str, _state: dict[str, Any]
) -> tuple[Any, dict[str, str]]:
    if message and message.startswith(_AXUM_PREFIXES):
        return message, {}  # axum's JsonRejection: text/plain
    etype = error_type or _TYPES.get(status) or ("generation" if status >= 500 else "validation")
    return {"error": message or _DEFAULT_MSG.get(status, "Error"), "error_type": etype}, {}


def _base_headers(rid: str, _started: float, _limit: int, _in_flight: int, _state: dict[str, Any]) -> dict[str, str]:
    return {"x-request-id": rid, "x-compute-type": "1-nvidia-h100", "x-sha": "f" * 40}


DIALECT = register_dialect(
    Dialect(
        "tgi",
        error_body=_error_body,
        new_request_id=lambda: "".join(secrets.choice(_B62) for _ in range(21)),
        base_headers=_base_headers,
    )
)


class TgiCounters:
    """What ``/metrics`` reports: one per server, kept in its per-server state."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.success = 0
        self.failures: dict[str, int] = {}
        self.generated = 0

    def fail(self, etype: str) -> None:
        with self.lock:
            self.requests += 1
            self.failures[etype] = self.failures.get(etype, 0) + 1

    def ok(self, tokens: int) -> None:
        with self.lock:
            self.requests += 1
            self.success += 1
            self.generated += tokens


def _counters(ctx: Ctx) -> TgiCounters:
    return server_state(ctx.state, "tgi", TgiCounters)


def _deserialize_error(ctx: Ctx, body: Any, what: str) -> Exception:
    _counters(ctx).fail("validation")
    column = len(dumps(body)) if body is not None else 1
    return ctx.error(422, f"Failed to deserialize the JSON body into the target type: {what} at line 1 column {column}")


def _validation(ctx: Ctx, message: str) -> Exception:
    _counters(ctx).fail("validation")
    return ctx.error(422, f"Input validation error: {message}")


def _number(params: dict[str, Any], name: str, ctx: Ctx, body: Any) -> float | None:
    v = params.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _deserialize_error(ctx, body, f"parameters.{name}: invalid type: {type(v).__name__}, expected f32")
    return float(v)


def _check_params(params: dict[str, Any], ctx: Ctx, body: Any) -> None:
    """TGI's validation.rs rules, with its messages."""
    mnt = params.get("max_new_tokens")
    if mnt is not None and (isinstance(mnt, bool) or not isinstance(mnt, int) or mnt < 0):
        raise _deserialize_error(ctx, body, f"parameters.max_new_tokens: invalid value: {mnt!r}, expected u32")
    if mnt == 0:
        raise _validation(ctx, "`max_new_tokens` must be strictly positive")
    for name in ("temperature", "repetition_penalty"):
        v = _number(params, name, ctx, body)
        if v is not None and v <= 0:
            raise _validation(ctx, f"`{name}` must be strictly positive")
    top_p = _number(params, "top_p", ctx, body)
    if top_p is not None and not 0 < top_p < 1:
        raise _validation(ctx, "`top_p` must be > 0.0 and < 1.0")
    top_k = params.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or top_k <= 0):
        raise _validation(ctx, "`top_k` must be strictly positive")
    stop = params.get("stop") or []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _deserialize_error(ctx, body, "parameters.stop: invalid type, expected a sequence of strings")
    if len(stop) > MAX_STOP_SEQUENCES:
        raise _validation(ctx, f"`stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. Given: {len(stop)}")


def _conversation(body: Any, ctx: Ctx) -> tuple[Conversation, dict[str, Any], str]:
    if not isinstance(body, dict):
        raise _deserialize_error(ctx, body, "invalid type: expected struct GenerateRequest")
    inputs = body.get("inputs")
    if inputs is None:
        raise _deserialize_error(ctx, body, "missing field `inputs`")
    if not isinstance(inputs, str):
        raise _deserialize_error(ctx, body, "inputs: invalid type, expected a string")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise _deserialize_error(ctx, body, "parameters: invalid type, expected struct GenerateParameters")
    if not inputs.strip():
        raise _validation(ctx, "`inputs` cannot be empty")
    _check_params(params, ctx, body)
    conv = Conversation(model=MODEL_ID, messages=[("user", inputs)], last_user_text=inputs)
    conv.max_tokens = params.get("max_new_tokens") or 100
    conv.stop = list(params.get("stop") or [])
    grammar = params.get("grammar")
    if isinstance(grammar, dict) and grammar.get("type") in ("json", "json_object"):
        value = grammar.get("value")
        conv.json_mode, conv.json_schema = True, value if isinstance(value, dict) else {}
    prompt_tokens = count_tokens(conv)
    if prompt_tokens > MAX_INPUT_TOKENS or prompt_tokens + conv.max_tokens > MAX_TOTAL_TOKENS:
        raise _validation(
            ctx,
            f"`inputs` tokens + `max_new_tokens` must be <= {MAX_TOTAL_TOKENS}. Given: {prompt_tokens} `inputs`"
            f" tokens and {conv.max_tokens} `max_new_tokens`",
        )
    return conv, params, inputs


def _token(i: int, text: str, special: bool = False) -> dict[str, Any]:
    return {
        "id": 1000 + i if not special else 2,
        "text": text,
        "logprob": -0.25 if not special else -0.01,
        "special": special,
    }


def _tokens(gen: Generation) -> list[dict[str, Any]]:
    out = [_token(i, p) for i, p in enumerate(gen.pieces)]
    if gen.finish == "stop":
        out.append(_token(len(out), "</s>", special=True))
    return out


def _timing_headers(ctx: Ctx, gen: Generation, tokens: int) -> dict[str, str]:
    return {
        **ctx.headers,
        "x-prompt-tokens": str(gen.prompt_tokens),
        "x-generated-tokens": str(tokens),
        "x-compute-characters": str(sum(len(p) for p in gen.pieces)),
        "x-queue-time": "0",
        "x-inference-time": "1",
        "x-total-time": "1",
    }


def _generation(body: Any, ctx: Ctx) -> tuple[Generation, dict[str, Any], str, list[dict[str, Any]]]:
    conv, params, inputs = _conversation(body, ctx)
    gen = generate(conv, ctx.responder)
    return gen, params, inputs, _tokens(gen)


def generate_route(body: Any, ctx: Ctx, *, wrap: bool = False) -> Reply:
    """POST /generate."""
    gen, params, inputs, tokens = _generation(body, ctx)
    text = (inputs + gen.text) if params.get("return_full_text") else gen.text
    out: dict[str, Any] = {"generated_text": text}
    if params.get("details"):
        out["details"] = {
            "finish_reason": _FINISH[gen.finish],
            "generated_tokens": len(tokens),
            "seed": params.get("seed") if params.get("do_sample") or params.get("seed") is not None else None,
            "prefill": [{"id": 1, "text": "<s>", "logprob": None}] if params.get("decoder_input_details") else [],
            "tokens": tokens,
        }
    _counters(ctx).ok(len(tokens))
    reply = ctx.json([out] if wrap else out)
    reply.headers = _timing_headers(ctx, gen, len(tokens))
    return reply


def generate_stream_route(body: Any, ctx: Ctx) -> Reply:
    """POST /generate_stream: ``data:{...}`` per token; the last one carries generated_text and details."""
    gen, params, inputs, tokens = _generation(body, ctx)
    text = (inputs + gen.text) if params.get("return_full_text") else gen.text
    events: list[tuple[str | None, str]] = []
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        ev: dict[str, Any] = {"index": i + 1, "token": tok, "generated_text": None, "details": None}
        if last:
            ev["generated_text"] = text
            ev["details"] = {
                "finish_reason": _FINISH[gen.finish],
                "generated_tokens": len(tokens),
                "seed": params.get("seed"),
            }
        events.append((None, dumps(ev)))
    _counters(ctx).ok(len(tokens))
    reply = ctx.stream(events, "sse_nospace")
    reply.headers = _timing_headers(ctx, gen, len(tokens))
    return reply


def compat_route(body: Any, ctx: Ctx) -> Reply:
    """POST /: ``stream`` picks the route; a non-stream answer is wrapped in a list (like api-inference)."""
    if isinstance(body, dict) and body.get("stream") is True:
        return generate_stream_route(body, ctx)
    return generate_route(body, ctx, wrap=True)


# --------------------------------------------------------------------------- Messages API


def _chat_base(ctx: Ctx, obj: str) -> dict[str, Any]:
    return {
        "object": obj,
        "id": "",
        "created": ctx.created,
        "model": MODEL_ID,
        "system_fingerprint": f"{VERSION}-native",
    }


def _tool_call_obj(n: int, name: str, arguments: str) -> dict[str, Any]:
    return {"id": str(n), "type": "function", "function": {"description": None, "name": name, "arguments": arguments}}


def _fix_format(body: dict[str, Any]) -> dict[str, Any]:
    """TGI's ``{"type": "json_object", "value": schema}`` as the OpenAI json_schema the shared parser reads."""
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json", "json_object") and isinstance(rf.get("value"), dict):
        return {**body, "response_format": {"type": "json_schema", "json_schema": {"schema": rf["value"]}}}
    return body


def chat_route(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/chat/completions (OpenAI-compatible, TGI flavour: ``id: ""``, ``system_fingerprint``)."""
    if isinstance(body, dict) and not body.get("model"):
        body = {**body, "model": "tgi"}
    conv = parse_chat(_fix_format(body) if isinstance(body, dict) else body, ctx)
    gen = generate(conv, ctx.responder)
    finish = {"stop_sequence": "stop", "tool_calls": "tool_calls"}.get(gen.finish, gen.finish)
    usage = {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }
    calls = [_tool_call_obj(n, c.name, c.arguments) for n, c in enumerate(gen.tool_calls)]
    _counters(ctx).ok(gen.completion_tokens)
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else gen.text}
        if calls:
            message["tool_calls"] = calls
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return ctx.json({**_chat_base(ctx, "chat.completion"), "choices": [choice], "usage": usage})
    base = _chat_base(ctx, "chat.completion.chunk")

    def chunk(delta: dict[str, Any], fin: str | None = None) -> str:
        choice = {"index": 0, "delta": {"role": "assistant", **delta}, "logprobs": None, "finish_reason": fin}
        return dumps({**base, "choices": [choice], "usage": None})

    events: list[str] = []
    if calls:
        for n, c in enumerate(gen.tool_calls):
            head = {"index": n, "id": str(n), "type": "function", "function": {"name": c.name, "arguments": ""}}
            events.append(chunk({"tool_calls": [head]}))
            events.append(chunk({"tool_calls": [{"index": n, "function": {"arguments": c.arguments}}]}))
        events.append(chunk({}, finish))
    else:
        pieces = gen.pieces or [""]
        events.extend(chunk({"content": p}, finish if i == len(pieces) - 1 else None) for i, p in enumerate(pieces))
    opts = body.get("stream_options")
    if isinstance(opts, dict) and opts.get("include_usage"):
        events.append(dumps({**base, "choices": [], "usage": usage}))
    return ctx.stream([*((None, e) for e in events), (None, "[DONE]")], "sse")


# --------------------------------------------------------------------------- info, health, metrics, tokenize


def info_route(_body: Any, ctx: Ctx) -> Reply:
    """GET /info."""
    return ctx.json(
        {
            "model_id": MODEL_ID,
            "model_sha": "f" * 40,
            "model_pipeline_tag": "text-generation",
            "model_dtype": "torch.bfloat16",
            "model_device_type": "cuda",
            "max_concurrent_requests": 128,
            "max_best_of": 2,
            "max_stop_sequences": MAX_STOP_SEQUENCES,
            "max_input_tokens": MAX_INPUT_TOKENS,
            "max_total_tokens": MAX_TOTAL_TOKENS,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": VERSION,
            "sha": "a" * 40,
            "docker_label": f"sha-{'a' * 7}",
        }
    )


def health_route(_body: Any, ctx: Ctx) -> Reply:
    """GET /health: 200 with an empty body."""
    return ctx.json("")


def metrics_route(_body: Any, ctx: Ctx) -> Reply:
    """GET /metrics: Prometheus text with the router's main counters and gauges."""
    counters = _counters(ctx)
    with counters.lock:
        lines = [
            "# TYPE tgi_request_count counter",
            f"tgi_request_count {counters.requests}",
            "# TYPE tgi_request_success counter",
            f"tgi_request_success {counters.success}",
            "# TYPE tgi_request_failure counter",
            *(f'tgi_request_failure{{err="{k}"}} {v}' for k, v in sorted(counters.failures.items())),
            "# TYPE tgi_queue_size gauge",
            "tgi_queue_size 0",
            "# TYPE tgi_batch_current_size gauge",
            "tgi_batch_current_size 0",
            "# TYPE tgi_batch_current_max_tokens gauge",
            "tgi_batch_current_max_tokens 0",
            "# TYPE tgi_request_generated_tokens histogram",
            f"tgi_request_generated_tokens_sum {counters.generated}",
            f"tgi_request_generated_tokens_count {counters.success}",
        ]
    return ctx.json("\n".join(lines) + "\n")  # a str body goes out as text/plain


def tokenize_route(body: Any, ctx: Ctx) -> Reply:
    """POST /tokenize: whitespace tokens with character offsets."""
    _conv, _params, inputs = _conversation(body, ctx)
    out, pos = [], 0
    for i, word in enumerate(inputs.split()):
        start = inputs.index(word, pos)
        pos = start + len(word)
        out.append({"id": 1000 + i, "text": word, "start": start, "stop": pos})
    return ctx.json(out)


BACKEND = Backend(
    "tgi",
    "tgi",
    routes=(
        Route("POST", "/generate", generate_route),
        Route("POST", "/generate_stream", generate_stream_route),
        Route("POST", "/", compat_route),
        Route("POST", "/v1/chat/completions", chat_route),
        Route("GET", "/info", info_route, with_body=False),
        Route("GET", "/health", health_route, with_body=False),
        Route("GET", "/metrics", metrics_route, with_body=False),
        Route("POST", "/tokenize", tokenize_route),
    ),
    state=TgiCounters,
)
