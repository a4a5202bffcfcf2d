"""vLLM emulator: the OpenAI-compatible server (``vllm serve``) and its native routes.

Routes: ``POST /v1/chat/completions`` (JSON and SSE), ``/v1/completions``, ``/v1/embeddings``, ``GET /v1/models``
(``root``, ``parent``, ``max_model_len``), ``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter``
(plain-text ``Success: ...``), ``GET /health`` (200, empty body), ``POST /tokenize`` (prompt or messages form),
``/detokenize``, ``GET /metrics`` (Prometheus text: running requests, prompt/generation token counters...).

Like vLLM: no auth unless the sandbox has ``keys`` (``--api-key``), then only ``/v1/*`` needs
``Authorization: Bearer <key>`` (401 ``{"error": "Unauthorized"}``); errors are ``{"object": "error", "message",
"type", "param", "code"}`` (or nested in ``"error"`` with ``configure_backend("vllm", error_style="nested")``,
as newer vLLM); choices carry ``stop_reason``; responses have no request-id or rate-limit headers. The served
model is the sandbox's ``models`` when given, else ``meta-llama/Llama-3.2-1B-Instruct``; loaded LoRA adapters
are accepted as model names. Adapters, counters and the token vocabulary are per-server state
(``sandbox.backend_state("vllm")``, a :class:`VllmState`); ``sandbox.reset()`` forgets them.

Independent of :mod:`infermux.providers` on purpose.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from infermux.errors import ConfigurationError
from infermux.sandbox import _openai
from infermux.sandbox._model import Conversation, Generation, count_tokens, embed, encode_base64, generate
from infermux.sandbox._server import DEFAULT_MODELS, Backend, Route
from infermux.sandbox._wire import Ctx, Dialect, JsonReply, ProtocolError, Reply, dumps, register_dialect, server_state

__all__ = ["BACKEND", "DEFAULT_VLLM_MODEL", "VllmState", "configure"]

VLLM = "vllm"
DEFAULT_VLLM_MODEL = "meta-llama/Llama-3.2-1B-Instruct"
_TYPES = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError", 501: "NotImplementedError"}


@dataclass
class VllmState:
    """One vLLM server's state: options, loaded LoRA adapters, /metrics counters, the token vocabulary."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    loras: dict[str, str] = field(default_factory=dict)  # name -> path
    max_model_len: int = 2048
    error_style: str = "top_level"
    reasoning_parser: str | None = None  # vllm serve --reasoning-parser: answers carry reasoning_content
    prompt_tokens: int = 0
    generation_tokens: int = 0
    successes: dict[str, int] = field(default_factory=dict)  # finished_reason -> count
    vocab: dict[str, int] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)


def _state(state: dict[str, Any]) -> VllmState:
    return server_state(state, VLLM, VllmState)


_REASONING_PARSERS = ("deepseek_r1", "qwen3", "granite", "glm45", "gpt_oss", "mistral")


def configure(
    state: dict[str, Any],
    *,
    max_model_len: int | None = None,
    error_style: str | None = None,
    reasoning_parser: str | None = None,
) -> None:
    """``configure_backend("vllm", ...)``: ``max_model_len`` of the served model (default 2048);
    ``error_style`` ``"top_level"`` (default) or ``"nested"`` (newer vLLM); ``reasoning_parser`` as
    ``vllm serve --reasoning-parser`` (e.g. ``"deepseek_r1"``): chat answers then carry the model's reasoning
    in ``reasoning_content`` (message and stream deltas, before the content). Only the given options change."""
    if reasoning_parser is not None and reasoning_parser not in _REASONING_PARSERS:
        raise ConfigurationError(f"vllm reasoning_parser must be one of {_REASONING_PARSERS}, got {reasoning_parser!r}")
    if max_model_len is not None and (
        isinstance(max_model_len, bool) or not isinstance(max_model_len, int) or max_model_len < 1
    ):
        raise ConfigurationError(f"vllm max_model_len must be an int >= 1, got {max_model_len!r}")
    if error_style is not None and error_style not in ("top_level", "nested"):
        raise ConfigurationError(f"vllm error_style must be 'top_level' or 'nested', got {error_style!r}")
    st = _state(state)
    with st.lock:
        if max_model_len is not None:
            st.max_model_len = max_model_len
        if error_style is not None:
            st.error_style = error_style
        if reasoning_parser is not None:
            st.reasoning_parser = reasoning_parser


# --------------------------------------------------------------------------- wire dialect


def _error_body(
    status: int, message: str | None, error_type: str | None, _rid: str, state: dict[str, Any]
) -> tuple[Any, dict[str, str]]:
    etype = error_type or _TYPES.get(status) or ("InternalServerError" if status >= 500 else "BadRequestError")
    err = {"message": message or "Error", "type": etype, "param": None, "code": status}
    if _state(state).error_style == "nested":
        return {"error": err}, {}
    return {"object": "error", **err}, {}


register_dialect(
    Dialect(
        VLLM,
        error_body=_error_body,
        new_request_id=lambda: uuid.uuid4().hex,
        base_headers=lambda rid, started, limit, in_flight, state: {},
    )
)


def _fail(ctx: Ctx, status: int, message: str, etype: str | None = None) -> ProtocolError:
    body, _ = _error_body(status, message, etype, ctx.request_id, ctx.state)
    return ProtocolError(JsonReply(status, body, dict(ctx.headers)))


_UNAUTHORIZED = "_vllm_unauthorized"


def _check_auth(headers: Any, keys: frozenset[str] | None, ctx: Ctx) -> None:
    """vLLM's ``--api-key`` middleware guards only ``/v1/*``; the verdict is left for the ``/v1`` handlers."""
    if keys is None:
        return
    auth = headers.get("authorization", "")
    if not any(auth == f"Bearer {k}" for k in keys):
        ctx.path_params[_UNAUTHORIZED] = "1"


def _v1(ctx: Ctx) -> None:
    if ctx.path_params.get(_UNAUTHORIZED):
        raise ProtocolError(JsonReply(401, {"error": "Unauthorized"}, dict(ctx.headers)))


# --------------------------------------------------------------------------- models


def _base_models(ctx: Ctx) -> tuple[str, ...]:
    return (DEFAULT_VLLM_MODEL,) if ctx.models == DEFAULT_MODELS or not ctx.models else ctx.models


def _check_model(name: Any, ctx: Ctx) -> str:
    model = str(name or "")
    if model in _base_models(ctx) or model in _state(ctx.state).loras:
        return model
    raise _fail(ctx, 404, f"The model `{model}` does not exist.", "NotFoundError")


def list_models(_body: Any, ctx: Ctx) -> Reply:
    """GET /v1/models: the served model(s), then loaded LoRA adapters (``parent`` = the base model)."""
    _v1(ctx)
    base = _base_models(ctx)

    def card(mid: str, root: str, parent: str | None, mml: int | None) -> dict[str, Any]:
        perm = {"id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission", "created": ctx.created}
        perm.update({"allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True})
        perm.update({"allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False})
        perm.update({"organization": "*", "group": None, "is_blocking": False})
        return {
            "id": mid,
            "object": "model",
            "created": ctx.created,
            "owned_by": "vllm",
            "root": root,
            "parent": parent,
            "max_model_len": mml,
            "permission": [perm],
        }

    st = _state(ctx.state)
    with st.lock:
        mml, loras = st.max_model_len, sorted(st.loras.items())
    data = [card(m, m, None, mml) for m in base]
    data += [card(name, path, base[0], None) for name, path in loras]
    return ctx.json({"object": "list", "data": data})


def load_lora(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/load_lora_adapter {"lora_name", "lora_path"}."""
    _v1(ctx)
    name = body.get("lora_name") if isinstance(body, dict) else None
    path = body.get("lora_path") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
        raise _fail(ctx, 400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
    st = _state(ctx.state)
    with st.lock:
        if name in st.loras:
            raise _fail(ctx, 400, f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput")
        st.loras[name] = path
    return JsonReply(200, f"Success: LoRA adapter '{name}' added successfully.", dict(ctx.headers))


def unload_lora(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/unload_lora_adapter {"lora_name"}."""
    _v1(ctx)
    name = body.get("lora_name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise _fail(ctx, 400, "'lora_name' needs to be provided to unload a LoRA adapter.", "InvalidUserInput")
    st = _state(ctx.state)
    with st.lock:
        if st.loras.pop(name, None) is None:
            raise _fail(ctx, 404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
    return JsonReply(200, f"Success: LoRA adapter '{name}' removed successfully.", dict(ctx.headers))


# --------------------------------------------------------------------------- generation


def _account(gen: Generation, ctx: Ctx) -> None:
    st = _state(ctx.state)
    with st.lock:
        st.prompt_tokens += gen.prompt_tokens
        st.generation_tokens += gen.completion_tokens
        reason = "length" if gen.finish == "length" else "stop"
        st.successes[reason] = st.successes.get(reason, 0) + 1


def _check_length(gen: Generation, max_tokens: int | None, ctx: Ctx) -> None:
    want = gen.prompt_tokens + (max_tokens or 0)
    mml = _state(ctx.state).max_model_len
    if want > mml:
        raise _fail(
            ctx,
            400,
            f"This model's maximum context length is {mml} tokens. However, you requested {want}"
            f" tokens ({gen.prompt_tokens} in the messages, {max_tokens or 0} in the completion). Please reduce"
            " the length of the messages or completion.",
        )


def _finish(gen: Generation) -> tuple[str, str | None]:
    """vLLM's ``finish_reason`` and ``stop_reason`` (the matched stop string)."""
    if gen.finish == "stop_sequence":
        return "stop", gen.stop_sequence
    return gen.finish, None


def _usage(gen: Generation) -> dict[str, Any]:
    total = gen.prompt_tokens + gen.completion_tokens
    return {
        "prompt_tokens": gen.prompt_tokens,
        "total_tokens": total,
        "completion_tokens": gen.completion_tokens,
        "prompt_tokens_details": None,
    }


def _tool_calls(gen: Generation) -> list[dict[str, Any]]:
    return [
        {"id": f"chatcmpl-tool-{c.id}", "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in gen.tool_calls
    ]


def _reasoning(conv: Conversation, ctx: Ctx) -> str | None:
    """The reasoning a model served with ``--reasoning-parser`` sends before its answer (None without one)."""
    if _state(ctx.state).reasoning_parser is None:
        return None
    about = conv.tool_result if conv.tool_result is not None else conv.last_user_text
    return f"The user asked {about!r}. I will answer."


def _chat_chunks(
    gen: Generation, base: dict[str, Any], include_usage: bool, reasoning: str | None = None
) -> list[tuple[str | None, str]]:
    def chunk(delta: dict[str, Any], finish: str | None = None, stop: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if finish is not None:
            choice["stop_reason"] = stop
        return {**base, "choices": [choice]}

    out = [chunk({"role": "assistant", "content": ""})]
    if reasoning:
        words = reasoning.split(" ")
        pieces = [w + " " for w in words[:-1]] + [words[-1]]
        out += [chunk({"reasoning_content": p}) for p in pieces]
    if gen.tool_calls:
        out += [chunk({"tool_calls": [{"index": i, **c}]}) for i, c in enumerate(_tool_calls(gen))]
    else:
        out += [chunk({"content": p}) for p in gen.pieces]
    finish, stop = _finish(gen)
    out.append(chunk({}, finish, stop))
    if include_usage:
        out.append({**base, "choices": [], "usage": _usage(gen)})
    events: list[tuple[str | None, str]] = [(None, dumps(c)) for c in out]
    return [*events, (None, "[DONE]")]


def chat_completions(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/chat/completions."""
    _v1(ctx)
    conv = _openai.parse_chat(body, ctx)
    _check_model(conv.model, ctx)
    gen = generate(conv, ctx.responder)
    _check_length(gen, conv.max_tokens, ctx)
    _account(gen, ctx)
    base: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": ctx.created,
        "model": conv.model,
    }
    if body.get("stream"):
        base["object"] = "chat.completion.chunk"
        opts = body.get("stream_options")
        usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        return ctx.stream(_chat_chunks(gen, base, usage, _reasoning(conv, ctx)))
    finish, stop = _finish(gen)
    message: dict[str, Any] = {"role": "assistant", "reasoning_content": _reasoning(conv, ctx)}
    message["content"] = None if gen.tool_calls else gen.text
    message["tool_calls"] = _tool_calls(gen)
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish, "stop_reason": stop}
    return ctx.json({**base, "choices": [choice], "usage": _usage(gen), "prompt_logprobs": None})


def completions(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/completions: the prompt is the user text (``echo: <prompt>``)."""
    _v1(ctx)
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
        raise _fail(ctx, 400, "'prompt' must be a string")
    model = _check_model(body.get("model"), ctx)
    conv = Conversation(model=model, messages=[("user", body["prompt"])], last_user_text=body["prompt"])
    limit = body.get("max_tokens", 16)  # vLLM's /v1/completions default
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else 16
    conv.stop = [s for s in (body.get("stop") or []) if isinstance(s, str)]
    gen = generate(conv, ctx.responder)
    _check_length(gen, conv.max_tokens, ctx)
    _account(gen, ctx)
    finish, stop = _finish(gen)
    base = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": ctx.created, "model": model}
    if body.get("stream"):
        chunks = [
            {**base, "choices": [{"index": 0, "text": p, "logprobs": None, "finish_reason": None}]} for p in gen.pieces
        ]
        last = {"index": 0, "text": "", "logprobs": None, "finish_reason": finish, "stop_reason": stop}
        chunks.append({**base, "choices": [last]})
        return ctx.stream([*((None, dumps(c)) for c in chunks), (None, "[DONE]")])
    choice = {"index": 0, "text": gen.text, "logprobs": None, "finish_reason": finish, "stop_reason": stop}
    choice["prompt_logprobs"] = None
    return ctx.json({**base, "choices": [choice], "usage": _usage(gen)})


def embeddings(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/embeddings (float or base64; vLLM adds ``id`` and ``created``)."""
    _v1(ctx)
    if not isinstance(body, dict):
        raise _fail(ctx, 400, "request body must be a JSON object")
    model = _check_model(body.get("model"), ctx)
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise _fail(ctx, 400, "'input' must be a non-empty string or list of non-empty strings")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise _fail(ctx, 400, f"encoding_format must be 'float' or 'base64', got {fmt!r}")
    dim = ctx.embedding_dim
    data = []
    for i, text in enumerate(texts):
        vec = embed(text, dim)
        data.append({"index": i, "object": "embedding", "embedding": encode_base64(vec) if fmt == "base64" else vec})
    tokens = sum(len(_words(t)) for t in texts)
    st = _state(ctx.state)
    with st.lock:
        st.prompt_tokens += tokens
    usage = {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0, "prompt_tokens_details": None}
    out = {"id": f"embd-{uuid.uuid4().hex}", "object": "list", "created": ctx.created, "model": model}
    return ctx.json({**out, "data": data, "usage": usage})


# --------------------------------------------------------------------------- tokenize


def _words(text: str) -> list[str]:
    """The emulator's tokens: whitespace words (the sandbox model counts prompts the same way)."""
    return text.split()


def _ids(words: list[str], ctx: Ctx) -> list[int]:
    out = []
    st = _state(ctx.state)
    with st.lock:
        for w in words:
            tid = st.vocab.get(w)
            if tid is None:
                tid = st.vocab[w] = len(st.words) + 1000
                st.words.append(w)
            out.append(tid)
    return out


def tokenize(body: Any, ctx: Ctx) -> Reply:
    """POST /tokenize: ``{"model", "prompt"}`` or ``{"model", "messages"}``; counts agree with chat usage."""
    if not isinstance(body, dict):
        raise _fail(ctx, 400, "request body must be a JSON object")
    _check_model(body.get("model"), ctx)
    if "messages" in body:
        conv = _openai.parse_chat(body, ctx)
        words = conv.system.split() + [w for _, text in conv.messages for w in text.split()]
        count = count_tokens(conv)
        ids = _ids(words, ctx) + [1] * (count - len(words))  # image / tool placeholder tokens
    elif isinstance(body.get("prompt"), str):
        ids = _ids(_words(body["prompt"]), ctx)
    else:
        raise _fail(ctx, 400, "either 'prompt' (a string) or 'messages' is required")
    mml = _state(ctx.state).max_model_len
    return ctx.json({"count": len(ids), "max_model_len": mml, "tokens": ids, "token_strs": None})


def detokenize(body: Any, ctx: Ctx) -> Reply:
    """POST /detokenize ``{"model", "tokens"}`` -> ``{"prompt"}``."""
    if not isinstance(body, dict):
        raise _fail(ctx, 400, "request body must be a JSON object")
    _check_model(body.get("model"), ctx)
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        raise _fail(ctx, 400, "'tokens' must be a list of integers")
    st = _state(ctx.state)
    with st.lock:
        bad = [t for t in tokens if not 1000 <= t < 1000 + len(st.words) and t != 1]
        words = [st.words[t - 1000] for t in tokens if t != 1] if not bad else []
    if bad:
        raise _fail(ctx, 400, f"Token id {bad[0]} is out of vocabulary")
    return ctx.json({"prompt": " ".join(words)})


# --------------------------------------------------------------------------- health, metrics


def health(_body: Any, ctx: Ctx) -> Reply:
    """GET /health: 200 with an empty body."""
    return JsonReply(200, "", dict(ctx.headers))


def metrics(_body: Any, ctx: Ctx) -> Reply:
    """GET /metrics in Prometheus text format (counters from the requests this server served)."""
    model = _base_models(ctx)[0]
    lab = f'engine="0",model_name="{model}"'
    running = max(0, ctx.in_flight - 1)  # minus this /metrics request
    st = _state(ctx.state)
    with st.lock:
        prompt, gen = st.prompt_tokens, st.generation_tokens
        successes = dict(st.successes)
    lines = [
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{lab}}} {float(running)}",
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{{{lab}}} 0.0",
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{{{lab}}} {min(1.0, running / 256)}",
        "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
        "# TYPE vllm:prompt_tokens_total counter",
        f"vllm:prompt_tokens_total{{{lab}}} {float(prompt)}",
        f"vllm:prompt_tokens_created{{{lab}}} {time.time()}",
        "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
        "# TYPE vllm:generation_tokens_total counter",
        f"vllm:generation_tokens_total{{{lab}}} {float(gen)}",
        "# HELP vllm:request_success_total Count of successfully processed requests.",
        "# TYPE vllm:request_success_total counter",
        *(
            f'vllm:request_success_total{{{lab},finished_reason="{r}"}} {float(n)}'
            for r, n in sorted(successes.items())
        ),
    ]
    return JsonReply(200, "\n".join(lines) + "\n", dict(ctx.headers))  # a str body is sent as text/plain


BACKEND = Backend(
    VLLM,
    VLLM,
    routes=(
        Route("POST", "/v1/chat/completions", chat_completions),
        Route("POST", "/v1/completions", completions),
        Route("POST", "/v1/embeddings", embeddings),
        Route("GET", "/v1/models", list_models, with_body=False),
        Route("POST", "/v1/load_lora_adapter", load_lora),
        Route("POST", "/v1/unload_lora_adapter", unload_lora),
        Route("POST", "/tokenize", tokenize),
        Route("POST", "/detokenize", detokenize),
        Route("GET", "/health", health, with_body=False),
        Route("GET", "/metrics", metrics, with_body=False),
    ),
    check_auth=_check_auth,
    state=VllmState,
    configure=configure,
)
