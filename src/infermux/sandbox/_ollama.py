"""Ollama emulator: the native ``/api/*`` routes (NDJSON streams, ``{"error": "..."}`` bodies, no auth) and the
OpenAI-compatible ``/v1`` routes (chat completions, embeddings and models, served by :mod:`._openai`).

Known models are the sandbox's ``models`` (``"llama3.2"`` means ``"llama3.2:latest"``), or
:data:`DEFAULT_OLLAMA_MODELS` when the sandbox runs on its default (OpenAI/Anthropic) model list; ``/api/pull``
adds a model. Pulled and loaded models are remembered per ``models`` tuple object (sandboxes created on the
default list share them). Triggers: names with ``embed``/``minilm`` are embedding-only models (chat on them is a
400), ``llava``/``vision`` names are vision models, and pulling a name that starts with ``missing`` fails like a
name the registry does not have. Fault injection answers with the native error shape on every route.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from infermux.sandbox import _openai
from infermux.sandbox._model import Conversation, Generation, ToolSpec, embed, generate
from infermux.sandbox._server import DEFAULT_MODELS, Backend, Route
from infermux.sandbox._wire import OPENAI, Ctx, Dialect, Reply, dumps, register_dialect, server_state

__all__ = ["BACKEND", "DEFAULT_OLLAMA_MODELS", "OLLAMA", "VERSION", "OllamaState"]

OLLAMA = "ollama"
VERSION = "0.12.6"
DEFAULT_OLLAMA_MODELS = ("llama3.2:latest", "llava:latest", "nomic-embed-text:latest")
_DEFAULT_ERRORS = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "server busy, please try again.  maximum pending requests exceeded",
}
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$")
_ROLES = ("system", "user", "assistant", "tool")


def _error_body(
    status: int, message: str | None, _type: str | None, _rid: str, _state: dict[str, Any]
) -> tuple[Any, dict[str, str]]:
    return {"error": message or _DEFAULT_ERRORS.get(status, "internal server error")}, {}


register_dialect(Dialect(OLLAMA, error_body=_error_body, base_headers=lambda rid, started, limit, in_flight, state: {}))


# --------------------------------------------------------------------------- server state


@dataclass
class OllamaState:
    """One server's pulled models and loaded models (with their expiry)."""

    pulled: set[str] = field(default_factory=set)
    loaded: dict[str, datetime] = field(default_factory=dict)


def _state(ctx: Ctx) -> OllamaState:
    """This server's Ollama state (each Sandbox has its own ``ctx.state``)."""
    return server_state(ctx.state, OLLAMA, OllamaState)


def _full(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _known(ctx: Ctx) -> list[str]:
    base = DEFAULT_OLLAMA_MODELS if ctx.models == DEFAULT_MODELS else ctx.models
    out = [_full(m) for m in base]
    out += sorted(m for m in _state(ctx).pulled if m not in out)
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _embedding_only(name: str) -> bool:
    return "embed" in name or "minilm" in name


def _details(name: str) -> dict[str, Any]:
    family = re.match(r"[a-z]*", name.rsplit("/", maxsplit=1)[-1].lower())
    fam = (family.group(0) if family else "") or "llama"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": fam,
        "families": [fam],
        "parameter_size": "137M" if _embedding_only(name) else "3.2B",
        "quantization_level": "F16" if _embedding_only(name) else "Q4_K_M",
    }


def _size(name: str) -> int:
    return 274_302_450 if _embedding_only(name) else 2_019_393_189


def _model(body: Any, ctx: Ctx, *, message: str | None = None) -> str:
    """The request's model as given (responses echo it), known to the server (404 otherwise)."""
    if not isinstance(body, dict):
        raise ctx.error(400, "invalid request body: expected a JSON object")
    name = body.get("model") or body.get("name")
    if not isinstance(name, str) or not name:
        raise ctx.error(400, "model is required")
    if _full(name) not in _known(ctx):
        raise ctx.error(404, message.format(name) if message else f'model "{name}" not found, try pulling it first')
    return name


def _load(ctx: Ctx, name: str, keep_alive: Any) -> bool:
    """Mark ``name`` loaded (``/api/ps``) or unload it on ``keep_alive: 0``; returns whether it was unloaded."""
    state, name = _state(ctx), _full(name)
    if keep_alive in (0, "0", "0s", "0m"):
        state.loaded.pop(name, None)
        return True
    state.loaded[name] = datetime.now(timezone.utc) + timedelta(minutes=5)
    return False


# --------------------------------------------------------------------------- request -> Conversation


def _images(raw: Any, ctx: Ctx) -> int:
    if raw is None:
        return 0
    if not isinstance(raw, list):
        raise ctx.error(400, "json: cannot unmarshal images into Go value of type []api.ImageData")
    for item in raw:
        try:
            base64.b64decode(item if isinstance(item, str) else "!", validate=True)
        except (binascii.Error, ValueError):
            raise ctx.error(400, "illegal base64 data at input byte 0") from None
    return len(raw)


def _options(body: dict[str, Any], conv: Conversation, ctx: Ctx) -> None:
    opts = body.get("options") or {}
    if not isinstance(opts, dict):
        raise ctx.error(400, "json: cannot unmarshal options into Go value of type map[string]interface {}")
    limit = opts.get("num_predict")
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
    stop = opts.get("stop")
    conv.stop = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    fmt = body.get("format")
    if fmt == "json":
        conv.json_mode = True
    elif isinstance(fmt, dict):
        conv.json_mode, conv.json_schema = True, fmt
    elif fmt not in (None, ""):
        raise ctx.error(400, f"invalid format: {dumps(fmt)}")


def _tools(raw: Any, ctx: Ctx) -> list[ToolSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ctx.error(400, "json: cannot unmarshal tools into Go value of type api.Tools")
    out: list[ToolSpec] = []
    for tool in raw:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ctx.error(400, "invalid tool: function.name is required")
        params = fn.get("parameters")
        out.append(ToolSpec(fn["name"], params if isinstance(params, dict) else {}))
    return out


def _chat_conversation(body: dict[str, Any], model: str, ctx: Ctx) -> Conversation:
    messages = body.get("messages") or []
    if not isinstance(messages, list):
        raise ctx.error(400, "json: cannot unmarshal messages into Go value of type []api.Message")
    conv = Conversation(model=model)
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in _ROLES:
            raise ctx.error(400, f"invalid role {role!r} in messages[{i}]")
        assert isinstance(msg, dict)
        content = msg.get("content") or ""
        if not isinstance(content, str):
            raise ctx.error(400, "json: cannot unmarshal array into Go struct field Message.content of type string")
        images = _images(msg.get("images"), ctx)
        if role == "system":
            conv.system = f"{conv.system} {content}".strip()
            continue
        conv.messages.append((role, content))
        if i == len(messages) - 1:
            if role == "user":
                conv.last_user_text, conv.images = content, images
            elif role == "tool":
                conv.tool_result = content
    conv.tools = _tools(body.get("tools"), ctx)
    _options(body, conv, ctx)
    return conv


# --------------------------------------------------------------------------- responses


def _timings(gen: Generation) -> dict[str, Any]:
    return {
        "total_duration": 1_000_000 + 20_000_000 * (gen.completion_tokens + 1),
        "load_duration": 1_000_000,
        "prompt_eval_count": gen.prompt_tokens,
        "prompt_eval_duration": 5_000_000 * gen.prompt_tokens,
        "eval_count": gen.completion_tokens,
        "eval_duration": 20_000_000 * gen.completion_tokens,
    }


def _done_reason(gen: Generation) -> str:
    return "length" if gen.finish == "length" else "stop"


def _wire_calls(gen: Generation) -> list[dict[str, Any]]:
    return [
        {"function": {"index": i, "name": c.name, "arguments": json.loads(c.arguments)}}
        for i, c in enumerate(gen.tool_calls)
    ]


def _ndjson(objs: list[dict[str, Any]], ctx: Ctx) -> Reply:
    return ctx.stream([(None, dumps(o)) for o in objs], "ndjson")


def _chunk(model: str, message: dict[str, Any], done: bool, **tail: Any) -> dict[str, Any]:
    return {"model": model, "created_at": _now(), "message": message, **tail, "done": done}


def chat(body: Any, ctx: Ctx) -> Reply:
    """POST /api/chat (streams unless ``"stream": false``)."""
    model = _model(body, ctx)
    if _embedding_only(model):
        raise ctx.error(400, f'"{model}" does not support chat')
    conv = _chat_conversation(body, model, ctx)
    unloaded = _load(ctx, model, body.get("keep_alive"))
    empty = {"role": "assistant", "content": ""}
    if not conv.messages and not conv.system:  # an empty request only loads (or unloads) the model
        return ctx.json(_chunk(model, empty, True, done_reason="unload" if unloaded else "load"))
    gen = generate(conv, ctx.responder)
    final: dict[str, Any] = {"role": "assistant", "content": gen.text}
    if gen.tool_calls:
        final["tool_calls"] = _wire_calls(gen)
    tail = {"done_reason": _done_reason(gen), **_timings(gen)}
    if body.get("stream", True) is False:
        return ctx.json(_chunk(model, final, True, **tail))
    objs = [_chunk(model, {"role": "assistant", "content": p}, False) for p in gen.pieces]
    if gen.tool_calls:
        objs.append(_chunk(model, {"role": "assistant", "content": "", "tool_calls": final["tool_calls"]}, False))
    objs.append(_chunk(model, empty, True, **tail))
    return _ndjson(objs, ctx)


def generate_route(body: Any, ctx: Ctx) -> Reply:
    """POST /api/generate: ``prompt`` (+ ``system``, ``images``, ``format``, ``options``, ``suffix``)."""
    model = _model(body, ctx)
    if _embedding_only(model):
        raise ctx.error(400, f'"{model}" does not support generate')
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise ctx.error(400, "json: cannot unmarshal prompt into Go struct field GenerateRequest.prompt of type string")
    unloaded = _load(ctx, model, body.get("keep_alive"))
    if not prompt:
        reason = "unload" if unloaded else "load"
        return ctx.json({"model": model, "created_at": _now(), "response": "", "done": True, "done_reason": reason})
    conv = Conversation(model=model, system=str(body.get("system") or ""), last_user_text=prompt)
    conv.messages.append(("user", prompt))
    conv.images = _images(body.get("images"), ctx)
    _options(body, conv, ctx)
    gen = generate(conv, ctx.responder)
    context = list(range(1, gen.prompt_tokens + gen.completion_tokens + 1))
    tail = {"done": True, "done_reason": _done_reason(gen), "context": context, **_timings(gen)}
    if body.get("stream", True) is False:
        return ctx.json({"model": model, "created_at": _now(), "response": gen.text, **tail})
    objs: list[dict[str, Any]] = [
        {"model": model, "created_at": _now(), "response": p, "done": False} for p in gen.pieces
    ]
    objs.append({"model": model, "created_at": _now(), "response": "", **tail})
    return _ndjson(objs, ctx)


def _embed_inputs(raw: Any, ctx: Ctx) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        return list(raw)
    raise ctx.error(400, "invalid input type")


def embed_route(body: Any, ctx: Ctx) -> Reply:
    """POST /api/embed: ``input`` (a string or a list), ``dimensions`` truncates and re-normalises."""
    model = _model(body, ctx)
    texts = _embed_inputs(body.get("input"), ctx)
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
        raise ctx.error(400, "dimensions must be a positive integer")
    if any(not t for t in texts):
        raise ctx.error(400, "input cannot be empty")
    _load(ctx, model, body.get("keep_alive"))
    vectors = [embed(t, dims or ctx.embedding_dim) for t in texts]
    tokens = sum(max(1, len(t.split())) for t in texts)
    return ctx.json(
        {
            "model": model,
            "embeddings": vectors,
            "total_duration": 1_000_000 * (len(texts) + 1),
            "load_duration": 1_000_000,
            "prompt_eval_count": tokens,
        }
    )


def embeddings_legacy(body: Any, ctx: Ctx) -> Reply:
    """POST /api/embeddings (legacy): ``prompt`` -> ``{"embedding": [...]}``."""
    model = _model(body, ctx)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ctx.error(400, "prompt must be a string")
    _load(ctx, model, body.get("keep_alive"))
    return ctx.json({"embedding": embed(prompt, ctx.embedding_dim) if prompt else []})


# --------------------------------------------------------------------------- model management


def _entry(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "size": _size(name), "digest": _digest(name), "details": _details(name)}


def tags(_body: Any, ctx: Ctx) -> Reply:
    """GET /api/tags."""
    modified = "2025-01-01T00:00:00.000000000Z"
    return ctx.json({"models": [{**_entry(m), "modified_at": modified} for m in _known(ctx)]})


def ps(_body: Any, ctx: Ctx) -> Reply:
    """GET /api/ps: the models loaded by earlier requests (``keep_alive: 0`` unloads)."""
    out = []
    for name, expires in sorted(_state(ctx).loaded.items()):
        out.append(
            {**_entry(name), "expires_at": expires.isoformat(), "size_vram": _size(name), "context_length": 4096}
        )
    return ctx.json({"models": out})


def show(body: Any, ctx: Ctx) -> Reply:
    """POST /api/show."""
    model = _model(body, ctx, message="model '{}' not found")
    details = _details(model)
    fam = details["family"]
    if _embedding_only(model):
        caps = ["embedding"]
    else:
        caps = ["completion", "tools"] + (["vision"] if "llava" in model or "vision" in model else [])
    return ctx.json(
        {
            "license": "sandbox",
            "modelfile": f"# Modelfile generated by the infermux sandbox\nFROM {model}\n",
            "parameters": 'stop                           "<|eot_id|>"',
            "template": "{{ .Prompt }}",
            "details": details,
            "model_info": {
                "general.architecture": fam,
                "general.parameter_count": 3_212_749_888,
                f"{fam}.context_length": 131072,
                f"{fam}.embedding_length": ctx.embedding_dim,
            },
            "capabilities": caps,
            "modified_at": "2025-01-01T00:00:00Z",
        }
    )


def pull(body: Any, ctx: Ctx) -> Reply:
    """POST /api/pull: NDJSON progress ending in ``{"status": "success"}`` (unless ``"stream": false``)."""
    if not isinstance(body, dict):
        raise ctx.error(400, "invalid request body: expected a JSON object")
    name = body.get("model") or body.get("name")
    if not isinstance(name, str) or not _NAME_OK.match(name):
        raise ctx.error(400, "invalid model name")
    stream = body.get("stream", True) is not False
    if name.startswith("missing"):
        message = "pull model manifest: file does not exist"
        if not stream:
            raise ctx.error(500, message)
        return _ndjson([{"status": "pulling manifest"}, {"error": message}], ctx)
    full = _full(name)
    digest = "sha256:" + _digest(full)
    total = _size(full)
    objs: list[dict[str, Any]] = [{"status": "pulling manifest"}]
    for done in (0, total // 3, 2 * total // 3, total):
        objs.append({"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": done})
    objs += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
    _state(ctx).pulled.add(full)
    return _ndjson(objs, ctx) if stream else ctx.json({"status": "success"})


def version(_body: Any, ctx: Ctx) -> Reply:
    """GET /api/version."""
    return ctx.json({"version": VERSION})


def root(_body: Any, ctx: Ctx) -> Reply:
    """GET /: the plain-text liveness answer."""
    return ctx.json("Ollama is running")


# --------------------------------------------------------------------------- OpenAI-compatible /v1


def _v1(ctx: Ctx, body: Any) -> Ctx:
    octx = replace(ctx, protocol=OPENAI, models=tuple(_known(ctx)))
    name = body.get("model") if isinstance(body, dict) else None
    if isinstance(name, str) and name and _full(name) not in octx.models:
        msg = f'model "{body["model"]}" not found, try pulling it first'
        raise octx.error(404, msg, error_type="not_found_error")
    return octx


def v1_chat(body: Any, ctx: Ctx) -> Reply:
    return _openai.chat_completions(body, _v1(ctx, body))


def v1_embeddings(body: Any, ctx: Ctx) -> Reply:
    return _openai.embeddings(body, _v1(ctx, body))


def v1_models(_body: Any, ctx: Ctx) -> Reply:
    data = [{"id": m, "object": "model", "created": 1735689600, "owned_by": "library"} for m in _known(ctx)]
    return ctx.json({"object": "list", "data": data})


BACKEND = Backend(
    OLLAMA,
    OLLAMA,
    routes=(
        Route("POST", "/api/chat", chat),
        Route("POST", "/api/generate", generate_route),
        Route("POST", "/api/embed", embed_route),
        Route("POST", "/api/embeddings", embeddings_legacy),
        Route("GET", "/api/tags", tags, with_body=False),
        Route("GET", "/api/ps", ps, with_body=False),
        Route("POST", "/api/show", show),
        Route("POST", "/api/pull", pull),
        Route("GET", "/api/version", version, with_body=False),
        Route("GET", "/", root, with_body=False),
        Route("POST", "/v1/chat/completions", v1_chat),
        Route("POST", "/v1/embeddings", v1_embeddings),
        Route("GET", "/v1/models", v1_models, with_body=False),
    ),
    check_auth=None,
    state=OllamaState,
)
