"""OpenVINO Model Server emulator: KServe v2 REST (with the binary data extension both ways), the
TensorFlow-Serving-style REST API, and the OpenAI-compatible ``/v3`` API.

Models come from an OVMS ``config.json`` document, per server: ``sandbox.configure_backend("ovms",
config=..., available=..., not_ready=...)`` (:func:`configure`; default :data:`DEFAULT_CONFIG`); version
directories "on disk" default to the ``specific`` policy's list, else ``[1]``. What a
model computes is picked by its name, or the last component of its ``base_path``: ``identity`` (FP32
``INPUT0`` -> ``OUTPUT0``), ``add`` (FP32 ``INPUT0 + INPUT1``), ``argmax`` (FP32 ``[N, M]`` -> INT64 ``[N]``)
or ``echo_bytes`` (BYTES ``[N]`` echoed). MediaPipe graph names are the ``/v3`` servables (chat,
completions, embeddings through :mod:`._openai`). Errors are ``{"error": "..."}``.

Do not combine with the built-in ``openai`` backend in one sandbox: both serve ``GET /v1/models/{model}``.
"""

from __future__ import annotations

import json
import math
import posixpath
import secrets
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from infermux.errors import ConfigurationError
from infermux.sandbox import _openai
from infermux.sandbox._model import Conversation, generate
from infermux.sandbox._server import Backend, Route
from infermux.sandbox._wire import Ctx, Dialect, Reply, dumps, register_dialect, server_state

__all__ = ["BACKEND", "DEFAULT_CONFIG", "OvmsState", "configure"]

_DEFAULT_ERRORS = {
    400: "Invalid request",
    404: "Model with requested name is not found",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def _error_body(
    status: int, message: str | None, _type: str | None, _rid: str, _state: dict[str, Any]
) -> tuple[Any, dict[str, str]]:
    return {"error": message or _DEFAULT_ERRORS.get(status, "Error")}, {}


register_dialect(Dialect("ovms", error_body=_error_body, base_headers=lambda rid, started, limit, in_flight, state: {}))

DEFAULT_CONFIG: dict[str, Any] = {
    "model_config_list": [
        {"config": {"name": "identity", "base_path": "/models/identity", "model_version_policy": {"all": {}}}},
        {"config": {"name": "add", "base_path": "/models/add"}},
        {"config": {"name": "argmax", "base_path": "/models/argmax"}},
        {"config": {"name": "echo_bytes", "base_path": "/models/echo_bytes"}},
    ],
    "mediapipe_config_list": [
        {"name": "meta-llama/Llama-3.2-1B-Instruct", "base_path": "/models/llm"},
        {"name": "BAAI/bge-small-en-v1.5", "base_path": "/models/embeddings"},
    ],
}
_DEFAULT_AVAILABLE = {"identity": [1, 2]}

# kind -> (inputs, outputs) as [(name, datatype, shape)]
_SIGNATURES: dict[str, tuple[list[tuple[str, str, list[int]]], list[tuple[str, str, list[int]]]]] = {
    "identity": ([("INPUT0", "FP32", [-1, -1])], [("OUTPUT0", "FP32", [-1, -1])]),
    "add": ([("INPUT0", "FP32", [-1, -1]), ("INPUT1", "FP32", [-1, -1])], [("OUTPUT0", "FP32", [-1, -1])]),
    "argmax": ([("INPUT0", "FP32", [-1, -1])], [("OUTPUT0", "INT64", [-1])]),
    "echo_bytes": ([("INPUT0", "BYTES", [-1])], [("OUTPUT0", "BYTES", [-1])]),
}
_FMT = {"BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "INT8": "b", "INT16": "h"}
_FMT.update({"INT32": "i", "INT64": "q", "FP16": "e", "FP32": "f", "FP64": "d"})


class _Model:
    def __init__(self, cfg: Mapping[str, Any], available: list[int]) -> None:
        self.name = str(cfg["name"])
        base = posixpath.basename(str(cfg.get("base_path", "")).rstrip("/"))
        self.kind = self.name if self.name in _SIGNATURES else base if base in _SIGNATURES else "identity"
        policy = cfg.get("model_version_policy") or {"latest": {"num_versions": 1}}
        if "all" in policy:
            self.versions = sorted(available)
        elif "specific" in policy:
            self.versions = sorted(v for v in available if v in policy["specific"].get("versions", []))
        else:
            self.versions = sorted(available)[-int(policy["latest"].get("num_versions", 1)) :]


def _build(cfg: Any, avail: Mapping[str, Iterable[int]]) -> tuple[dict[str, _Model], list[str]]:
    """The models and MediaPipe graph names of a ``config.json`` document; ConfigurationError when malformed."""
    try:
        if isinstance(cfg, (str, bytes)):
            cfg = json.loads(cfg)
        models: dict[str, _Model] = {}
        for entry in cfg.get("model_config_list", []):
            mc = entry["config"]
            policy = mc.get("model_version_policy") or {}
            listed = policy.get("specific", {}).get("versions") if "specific" in policy else None
            models[str(mc["name"])] = _Model(mc, [int(v) for v in avail.get(mc["name"], listed or [1])])
        graphs = [str(g["name"]) for g in cfg.get("mediapipe_config_list", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"bad OVMS config.json document: {type(exc).__name__}: {exc}") from None
    return models, graphs


class OvmsState:
    """One server's models (from a ``config.json``), MediaPipe graphs and models reported as loading."""

    def __init__(self) -> None:
        self.models, self.graphs = _build(DEFAULT_CONFIG, _DEFAULT_AVAILABLE)
        self.not_ready: frozenset[str] = frozenset()


def _state(ctx: Ctx) -> OvmsState:
    return server_state(ctx.state, "ovms", OvmsState)


def configure(
    state: dict[str, Any],
    config: Mapping[str, Any] | str | None = None,
    *,
    available: Mapping[str, Iterable[int]] | None = None,
    not_ready: Iterable[str] | None = None,
) -> None:
    """``configure_backend("ovms", ...)``: serve the models of an OVMS ``config.json`` (a mapping or its JSON
    text); ``available``: the version directories present per model (with no ``config``: applied to the
    default config); ``not_ready``: names of models reported as loading (503 / LOADING). Omitted options
    keep their current values."""
    st = server_state(state, "ovms", OvmsState)
    if not_ready is not None and (isinstance(not_ready, (str, bytes)) or not isinstance(not_ready, Iterable)):
        raise ConfigurationError(f"ovms not_ready must be a list of model names, got {not_ready!r}")
    if available is not None and not isinstance(available, Mapping):
        raise ConfigurationError(f"ovms available must map model names to versions, got {available!r}")
    if config is not None or available is not None:
        st.models, st.graphs = _build(DEFAULT_CONFIG if config is None else config, available or {})
    if not_ready is not None:
        st.not_ready = frozenset(str(n) for n in not_ready)


# --------------------------------------------------------------------------- helpers


def _model(ctx: Ctx) -> tuple[_Model, int]:
    name = ctx.path_params.get("model", "")
    model = _state(ctx).models.get(name)
    if model is None:
        raise ctx.error(404, "Model with requested name is not found")
    raw = ctx.path_params.get("version")
    if raw is None:
        if not model.versions:
            raise ctx.error(404, "Model with requested version is not found")
        return model, model.versions[-1]
    if not raw.isdigit() or int(raw) not in model.versions:
        raise ctx.error(404, "Model with requested version is not found")
    return model, int(raw)


def _check_ready(model: _Model, ctx: Ctx) -> None:
    if model.name in _state(ctx).not_ready:
        raise ctx.error(503, "Model version not available")


def _flat(nested: Any) -> tuple[list[Any], list[int]]:
    shape: list[int] = []
    out: list[Any] = []
    node = nested
    while isinstance(node, list):
        shape.append(len(node))
        node = node[0] if node else None

    def walk(x: Any) -> None:
        if isinstance(x, list):
            for y in x:
                walk(y)
        else:
            out.append(x)

    walk(nested)
    return out, shape


def _nest(flat: list[Any], shape: list[int]) -> Any:
    if not shape:
        return flat[0]
    step = math.prod(shape[1:])
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


Tensor = tuple[str, list[int], list[Any]]  # (datatype, shape, flat data)


def _compute(kind: str, inputs: dict[str, Tensor], ctx: Ctx) -> dict[str, Tensor]:
    if kind == "add":
        (_, sa, a), (_, sb, b) = inputs["INPUT0"], inputs["INPUT1"]
        if sa != sb:
            raise ctx.error(400, f"Invalid input shape - INPUT0 {sa} and INPUT1 {sb} differ")
        return {"OUTPUT0": ("FP32", sa, [x + y for x, y in zip(a, b, strict=False)])}
    if kind == "argmax":
        _, shape, data = inputs["INPUT0"]
        width = shape[1]
        rows = [data[i * width : (i + 1) * width] for i in range(shape[0])]
        return {
            "OUTPUT0": ("INT64", [shape[0]], [max(range(width), key=row.__getitem__) if row else 0 for row in rows])
        }
    dtype, shape, data = inputs["INPUT0"]
    return {"OUTPUT0": (dtype, shape, list(data))}


def _validate(model: _Model, inputs: dict[str, Tensor], ctx: Ctx) -> None:
    spec_in, _ = _SIGNATURES[model.kind]
    names = {n for n, _, _ in spec_in}
    for extra in inputs.keys() - names:
        raise ctx.error(400, f"Unexpected input name - {extra}")
    for name, dtype, shape in spec_in:
        if name not in inputs:
            raise ctx.error(400, f"Missing input with specific name - Required input: {name}")
        got_dtype, got_shape, data = inputs[name]
        if got_dtype != dtype:
            raise ctx.error(400, f"Invalid input precision - Expected: {dtype}; Actual: {got_dtype}")
        if len(got_shape) != len(shape):
            raise ctx.error(
                400, f"Invalid number of shape dimensions - Expected: {len(shape)}; Actual: {len(got_shape)}"
            )
        if len(data) != math.prod(got_shape):
            raise ctx.error(
                400, f"Invalid content size of tensor - Expected: {math.prod(got_shape)}; Actual: {len(data)}"
            )
        kinds: tuple[type, ...] = (bytes, str) if dtype == "BYTES" else (int, float)
        if not all(isinstance(v, kinds) and not isinstance(v, bool) for v in data):
            raise ctx.error(400, f"Invalid data type in tensor {name} - Expected: {dtype}")


# --------------------------------------------------------------------------- KServe v2


def _decode_bytes(raw: bytes, ctx: Ctx) -> list[Any]:
    out, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise ctx.error(400, "Invalid binary data: truncated BYTES length")
        (n,) = struct.unpack_from("<I", raw, pos)
        out.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def _read_infer(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Tensor]]:
    raw = ctx.raw_body
    hlen = ctx.request_headers.get("inference-header-content-length")
    try:
        length = int(hlen) if hlen is not None else len(raw)
        head = json.loads(raw[:length])
    except (ValueError, UnicodeDecodeError):
        raise ctx.error(400, "Invalid JSON in request body") from None
    if not isinstance(head, dict) or not isinstance(head.get("inputs"), list):
        raise ctx.error(400, "Invalid request: 'inputs' is missing or not an array")
    pos = length
    tensors: dict[str, Tensor] = {}
    for item in head["inputs"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ctx.error(400, "Invalid request: input without a name")
        dtype, shape = item.get("datatype"), item.get("shape")
        if (dtype not in _FMT and dtype != "BYTES") or not isinstance(shape, list):
            raise ctx.error(400, f"Invalid input {item['name']}: bad datatype or shape")
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            chunk, pos = raw[pos : pos + size], pos + size
            if len(chunk) != size:
                raise ctx.error(400, f"Invalid binary data size of input {item['name']}")
            if dtype == "BYTES":
                data = _decode_bytes(chunk, ctx)
            else:
                width = struct.calcsize("<" + _FMT[dtype])
                if size % width:
                    raise ctx.error(400, f"Invalid binary data size of input {item['name']}")
                data = list(struct.unpack(f"<{size // width}{_FMT[dtype]}", chunk))
        else:
            data, _ = _flat(item.get("data", []))
            if dtype == "BYTES":
                data = [d.encode() if isinstance(d, str) else d for d in data]
        tensors[item["name"]] = (dtype, [int(d) for d in shape], data)
    return head, tensors


def _wanted_outputs(head: dict[str, Any], produced: dict[str, Tensor], ctx: Ctx) -> list[tuple[str, bool]]:
    params = head.get("parameters") or {}
    default_binary = bool(params.get("binary_data_output", False))
    if not head.get("outputs"):
        return [(name, default_binary) for name in produced]
    out = []
    for o in head["outputs"]:
        name = o.get("name") if isinstance(o, dict) else None
        if name not in produced:
            raise ctx.error(400, f"Output with requested name is not found: {name}")
        out.append((name, bool((o.get("parameters") or {}).get("binary_data", default_binary))))
    return out


def infer(_body: Any, ctx: Ctx) -> Reply:
    """POST /v2/models/{model}[/versions/{version}]/infer (JSON, or the binary data extension)."""
    model, version = _model(ctx)
    _check_ready(model, ctx)
    head, inputs = _read_infer(ctx)
    _validate(model, inputs, ctx)
    produced = _compute(model.kind, inputs, ctx)
    items, raws = [], []
    for name, binary in _wanted_outputs(head, produced, ctx):
        dtype, shape, data = produced[name]
        item: dict[str, Any] = {"name": name, "shape": shape, "datatype": dtype}
        if binary:
            if dtype == "BYTES":
                blob = b"".join(struct.pack("<I", len(v)) + v for v in data)
            else:
                blob = struct.pack(f"<{len(data)}{_FMT[dtype]}", *data)
            item["parameters"] = {"binary_data_size": len(blob)}
            raws.append(blob)
        else:
            item["data"] = [v.decode("utf-8", "replace") for v in data] if dtype == "BYTES" else data
        items.append(item)
    resp: dict[str, Any] = {"model_name": model.name, "model_version": str(version), "outputs": items}
    if "id" in head:
        resp["id"] = head["id"]
    if not raws:
        return ctx.json(resp)
    text = dumps(resp).encode()
    reply = ctx.json(text + b"".join(raws))
    reply.headers["Inference-Header-Content-Length"] = str(len(text))
    return reply


def _spec(items: list[tuple[str, str, list[int]]]) -> list[dict[str, Any]]:
    return [{"name": n, "datatype": d, "shape": s} for n, d, s in items]


def model_metadata(_body: Any, ctx: Ctx) -> Reply:
    model, _ = _model(ctx)
    inputs, outputs = _SIGNATURES[model.kind]
    return ctx.json(
        {
            "name": model.name,
            "versions": [str(v) for v in model.versions],
            "platform": "OpenVINO",
            "inputs": _spec(inputs),
            "outputs": _spec(outputs),
        }
    )


def model_ready(_body: Any, ctx: Ctx) -> Reply:
    model, _ = _model(ctx)
    _check_ready(model, ctx)
    return ctx.json("")


def server_live(_body: Any, ctx: Ctx) -> Reply:
    return ctx.json("")


def server_ready(_body: Any, ctx: Ctx) -> Reply:
    if _state(ctx).not_ready:
        raise ctx.error(503, "Server not ready: some models are loading")
    return ctx.json("")


def server_metadata(_body: Any, ctx: Ctx) -> Reply:
    return ctx.json({"name": "OpenVINO Model Server", "version": "2025.2", "extensions": []})


# --------------------------------------------------------------------------- TensorFlow Serving API


def _tfs_inputs(body: Any, model: _Model, ctx: Ctx) -> tuple[dict[str, Tensor], bool]:
    spec_in, _ = _SIGNATURES[model.kind]
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise ctx.error(400, "Missing 'instances' or 'inputs' key (exactly one is required)")
    rows = "instances" in body
    raw = body["instances" if rows else "inputs"]
    names = [n for n, _, _ in spec_in]
    columns: dict[str, Any]
    if rows:
        if not isinstance(raw, list) or not raw:
            raise ctx.error(400, "'instances' must be a non-empty list")
        if all(isinstance(r, dict) for r in raw):
            columns = {n: [r.get(n) for r in raw] for n in names}
        elif len(names) == 1:
            columns = {names[0]: raw}
        else:
            raise ctx.error(400, f"Model has {len(names)} inputs: instances must be objects")
    else:
        columns = raw if isinstance(raw, dict) else {names[0]: raw} if len(names) == 1 else {}
    tensors: dict[str, Tensor] = {}
    for name, dtype, _ in spec_in:
        if columns.get(name) is None:
            raise ctx.error(400, f"Missing input with specific name - Required input: {name}")
        data, shape = _flat(columns[name])
        if dtype == "FP32" and all(isinstance(v, int) and not isinstance(v, bool) for v in data):
            data = [float(v) for v in data]
        tensors[name] = (dtype, shape, [v.encode() if isinstance(v, str) else v for v in data])
    return tensors, rows


def _tfs_value(t: Tensor) -> Any:
    _dtype, shape, data = t
    return _nest([v.decode() if isinstance(v, bytes) else v for v in data], shape)


def tfs_predict(body: Any, ctx: Ctx) -> Reply:
    """POST /v1/models/{model}[/versions/{version}]:predict (row or columnar format)."""
    model, _ = _model(ctx)
    _check_ready(model, ctx)
    inputs, rows = _tfs_inputs(body, model, ctx)
    _validate(model, inputs, ctx)
    out = _compute(model.kind, inputs, ctx)
    values = {name: _tfs_value(t) for name, t in out.items()}
    if rows:
        single = next(iter(values.values())) if len(values) == 1 else None
        if single is not None:
            return ctx.json({"predictions": single})
        count = len(next(iter(values.values())))
        return ctx.json({"predictions": [{n: v[i] for n, v in values.items()} for i in range(count)]})
    return ctx.json({"outputs": next(iter(values.values())) if len(values) == 1 else values})


def _version_status(model: _Model, ctx: Ctx, only: int | None = None) -> dict[str, Any]:
    state = "LOADING" if model.name in _state(ctx).not_ready else "AVAILABLE"
    return {
        "model_version_status": [
            {"version": str(v), "state": state, "status": {"error_code": "OK", "error_message": "OK"}}
            for v in model.versions
            if only is None or v == only
        ]
    }


def tfs_status(_body: Any, ctx: Ctx) -> Reply:
    model, version = _model(ctx)
    return ctx.json(_version_status(model, ctx, version if "version" in ctx.path_params else None))


def tfs_config(_body: Any, ctx: Ctx) -> Reply:
    return ctx.json({name: _version_status(m, ctx) for name, m in _state(ctx).models.items()})


# --------------------------------------------------------------------------- /v3 OpenAI-compatible


def _servable(body: Any, ctx: Ctx) -> None:
    if isinstance(body, dict) and body.get("model") and body["model"] not in _state(ctx).graphs:
        raise ctx.error(404, "Mediapipe graph definition with requested name is not found")


def v3_chat(body: Any, ctx: Ctx) -> Reply:
    _servable(body, ctx)
    return _openai.chat_completions(body, ctx)


def v3_embeddings(body: Any, ctx: Ctx) -> Reply:
    _servable(body, ctx)
    return _openai.embeddings(body, ctx)


def v3_completions(body: Any, ctx: Ctx) -> Reply:
    """POST /v3/completions (legacy text completion; ``prompt`` must be a string)."""
    if not isinstance(body, dict) or not body.get("model"):
        raise ctx.error(400, "model field is missing in request")
    _servable(body, ctx)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ctx.error(400, "prompt is not a string")
    conv = Conversation(model=str(body["model"]), messages=[("user", prompt)], last_user_text=prompt)
    limit = body.get("max_tokens")
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    stop = body.get("stop")
    conv.stop = (
        [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []
    )
    gen = generate(conv, ctx.responder)
    finish = "length" if gen.finish == "length" else "stop"
    base = {
        "id": "cmpl-" + secrets.token_hex(12),
        "object": "text_completion",
        "created": ctx.created,
        "model": conv.model,
    }
    usage = {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if not body.get("stream"):
        choice = {"index": 0, "text": gen.text, "logprobs": None, "finish_reason": finish}
        return ctx.json({**base, "choices": [choice], "usage": usage})
    events: list[tuple[str | None, str]] = [
        (None, dumps({**base, "choices": [{"index": 0, "text": p, "logprobs": None, "finish_reason": None}]}))
        for p in gen.pieces
    ]
    events.append(
        (None, dumps({**base, "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": finish}]}))
    )
    events.append((None, "[DONE]"))
    return ctx.stream(events)


def v3_models(_body: Any, ctx: Ctx) -> Reply:
    data = [{"id": g, "object": "model", "created": ctx.created, "owned_by": "OVMS"} for g in _state(ctx).graphs]
    return ctx.json({"object": "list", "data": data})


_M = "/v2/models/{model}"
_MV = "/v2/models/{model}/versions/{version}"
_T = "/v1/models/{model}"
_TV = "/v1/models/{model}/versions/{version}"
BACKEND = Backend(
    "ovms",
    "ovms",
    routes=(
        Route("GET", "/v2/health/live", server_live, False),
        Route("GET", "/v2/health/ready", server_ready, False),
        Route("GET", "/v2", server_metadata, False),
        Route("GET", _M, model_metadata, False),
        Route("GET", _MV, model_metadata, False),
        Route("GET", _M + "/ready", model_ready, False),
        Route("GET", _MV + "/ready", model_ready, False),
        Route("POST", _M + "/infer", infer, False),
        Route("POST", _MV + "/infer", infer, False),
        Route("POST", _T + ":predict", tfs_predict),
        Route("POST", _TV + ":predict", tfs_predict),
        Route("GET", _T, tfs_status, False),
        Route("GET", _TV, tfs_status, False),
        Route("GET", "/v1/config", tfs_config, False),
        Route("POST", "/v3/chat/completions", v3_chat),
        Route("POST", "/v3/completions", v3_completions),
        Route("POST", "/v3/embeddings", v3_embeddings),
        Route("GET", "/v3/models", v3_models, False),
    ),
    state=OvmsState,
    configure=configure,
)
