"""Google Gemini protocol (Generative Language API): generateContent (JSON and SSE), countTokens,
embedContent, batchEmbedContents and the model list, under ``/v1beta`` and ``/v1``.

Faithful to the real service where it matters to clients: camelCase and snake_case request fields are both
accepted (as the real API does; google-genai mixes them), errors are Google's
``{"error": {"code", "message", "status", "details"}}`` with a ``google.rpc.RetryInfo`` on 429, auth is the
``x-goog-api-key`` header or the ``?key=`` query parameter (missing: 403 PERMISSION_DENIED; unknown key: 400
INVALID_ARGUMENT with ``ErrorInfo.reason = API_KEY_INVALID``), and no request-id header is sent (the real API
sends none). ``streamGenerateContent?alt=sse`` (what every SDK sends) answers data-only SSE; without ``alt``
(or ``alt=json``) it answers one JSON array of the same response chunks, as the real API does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import time
from collections.abc import Mapping
from typing import Any

from infermux.sandbox._model import Conversation, Generation, ToolSpec, count_tokens, embed, generate
from infermux.sandbox._openai_rules import is_base64
from infermux.sandbox._server import Backend, Route
from infermux.sandbox._wire import Ctx, Dialect, JsonReply, ProtocolError, Reply, dumps, register_dialect

__all__ = ["BACKEND", "DEFAULT_RETRY_DELAY", "GEMINI"]

GEMINI = "gemini"
#: ``RetryInfo.retryDelay`` of an injected 429 (the real service advertises tens of seconds)
DEFAULT_RETRY_DELAY = "1s"
_B64URL = string.ascii_letters + string.digits + "-_"
_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    501: ("UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}  # fmt: skip
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or "
    "other form of API consumer identity to call this API."
)
_BAD_KEY = "API key not valid. Please pass a valid API key."
_FINISH = {"stop": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def _status_of(status: int) -> tuple[str, str]:
    if status in _STATUS:
        return _STATUS[status]
    return _STATUS[503] if status in (502, 529) else _STATUS[500 if status >= 500 else 400]


def _error_body(
    status: int, message: str | None, error_type: str | None, _rid: str, _state: dict[str, Any]
) -> tuple[Any, dict[str, str]]:
    gstatus, default = _status_of(status)
    err: dict[str, Any] = {"code": status, "message": message or default, "status": error_type or gstatus}
    if status == 429:
        err["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaValue": "10",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": DEFAULT_RETRY_DELAY},
        ]
    return {"error": err}, {}


def _response_id() -> str:
    return "".join(secrets.choice(_B64URL) for _ in range(23))


def _base_headers(_rid: str, started: float, _limit: int, _in_flight: int, _state: dict[str, Any]) -> dict[str, str]:
    return {
        "server": "scaffolding on HTTPServer2",
        "server-timing": f"gfet4t7; dur={max(1, int((time.monotonic() - started) * 1000))}",
        "vary": "Origin, X-Origin, Referer",
        "x-content-type-options": "nosniff",
        "x-frame-options": "SAMEORIGIN",
        "x-xss-protection": "0",
    }


register_dialect(Dialect(GEMINI, error_body=_error_body, new_request_id=_response_id, base_headers=_base_headers))


def check_auth(headers: Mapping[str, str], keys: frozenset[str] | None, ctx: Ctx) -> None:
    """The ``x-goog-api-key`` header, else the ``key`` query parameter (both are accepted by the real API)."""
    key = headers.get("x-goog-api-key", "").strip() or ctx.query.get("key", "").strip()
    if not key:
        raise ctx.error(403, _NO_KEY)
    if keys is not None and key not in keys:
        err = {
            "code": 400,
            "message": _BAD_KEY,
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": _BAD_KEY},
            ],
        }
        raise ProtocolError(JsonReply(400, {"error": err}, dict(ctx.headers)))


# --------------------------------------------------------------------------- request parsing


def _get(d: Mapping[str, Any], camel: str) -> Any:
    """A field by its camelCase name or its snake_case twin (the API accepts both)."""
    if camel in d:
        return d[camel]
    return d.get("".join("_" + c.lower() if c.isupper() else c for c in camel))


def _obj(d: Mapping[str, Any], camel: str, ctx: Ctx, where: str) -> dict[str, Any]:
    """An optional object field (``{}`` when absent); another JSON type is the API's 400."""
    v = _get(d, camel)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ctx.error(400, f"Invalid value at '{where}' ({type(v).__name__}), must be an object")
    return v


def _lower_types(schema: Any) -> Any:
    """OpenAPI-style ``"type": "OBJECT"`` (google-genai's Schema) -> JSON Schema's lower-case types."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _model(ctx: Ctx) -> str:
    return ctx.path_params.get("model", "")


#: inline media types a Gemini model takes (images, and the documents/audio/video it also reads)
_INLINE_TYPES = re.compile(r"(image/(png|jpeg|webp|heic|heif)|application/pdf|text/plain|audio/.+|video/.+)")
_FUNCTION_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}")


def _check_blob(blob: Mapping[str, Any], ctx: Ctx, where: str) -> None:
    mime = str(_get(blob, "mimeType"))
    if not _INLINE_TYPES.fullmatch(mime.lower()):
        raise ctx.error(400, f"Unsupported MIME type: {mime}")
    if not is_base64(blob.get("data")):
        data = str(blob.get("data"))[:40]
        raise ctx.error(400, f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for \"{data}\"")


def _check_file(fd: Mapping[str, Any], ctx: Ctx, where: str) -> None:
    uri = str(_get(fd, "fileUri") or "")
    if uri.split(":", 1)[0].lower() not in ("http", "https", "gs"):
        raise ctx.error(400, f"* GenerateContentRequest.{where}.file_uri: Invalid URI {uri[:80]!r}")


def _check_function_name(name: str, ctx: Ctx, where: str) -> None:
    if not _FUNCTION_NAME.fullmatch(name):
        raise ctx.error(
            400,
            f"* GenerateContentRequest.{where}.name: Invalid function name. Must start with a letter or an"
            " underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes"
            " (-), with a maximum length of 64.",
        )


def _content(c: Any, ctx: Ctx, where: str) -> tuple[str, str, int, str | None]:
    """(role, text, images, function-response text or None) of one Content."""
    if not isinstance(c, dict):
        raise ctx.error(400, f"Invalid value at '{where}', must be an object")
    role = c.get("role") or "user"
    if role not in ("user", "model", "function", "tool"):
        raise ctx.error(400, "Please use a valid role: user, model.")
    parts = c.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ctx.error(400, f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
    texts: list[str] = []
    results: list[str] = []
    images = 0
    for j, p in enumerate(parts):
        if not isinstance(p, dict):
            raise ctx.error(400, f"Invalid value at '{where}.parts[{j}]', must be an object")
        if isinstance(p.get("text"), str):
            if not p.get("thought"):
                texts.append(p["text"])
        elif isinstance(_get(p, "inlineData"), dict):
            blob = _get(p, "inlineData")
            if not _get(blob, "mimeType") or not isinstance(blob.get("data"), str):
                raise ctx.error(400, f"* GenerateContentRequest.{where}.parts[{j}].inline_data: missing data")
            _check_blob(blob, ctx, f"{where}.parts[{j}].inline_data")
            images += 1
        elif isinstance(_get(p, "fileData"), dict):
            _check_file(_get(p, "fileData"), ctx, f"{where}.parts[{j}].file_data")
            images += 1
        elif isinstance(_get(p, "functionResponse"), dict):
            fr = _get(p, "functionResponse")
            results.append(dumps(fr.get("response", {})))
        elif not isinstance(_get(p, "functionCall"), dict):
            raise ctx.error(400, f"Invalid value at '{where}.parts[{j}]': unsupported part")
    return role, " ".join(texts), images, (" ".join(results) if results else None)


def _generation_config(body: dict[str, Any], conv: Conversation, ctx: Ctx) -> None:
    cfg = _obj(body, "generationConfig", ctx, "generation_config")
    temp = cfg.get("temperature")
    if temp is not None and (isinstance(temp, bool) or not isinstance(temp, (int, float)) or not 0 <= temp <= 2):
        raise ctx.error(400, "* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]")
    limit = _get(cfg, "maxOutputTokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ctx.error(400, "* GenerateContentRequest.generation_config.max_output_tokens: must be positive")
        conv.max_tokens = limit
    stops = _get(cfg, "stopSequences") or []
    if not isinstance(stops, list) or len(stops) > 5 or not all(isinstance(x, str) for x in stops):
        raise ctx.error(400, "* GenerateContentRequest.generation_config.stop_sequences: at most 5 strings allowed")
    conv.stop = list(stops)
    mime = _get(cfg, "responseMimeType")
    schema = _get(cfg, "responseJsonSchema") or _get(cfg, "responseSchema")
    if schema is not None and mime != "application/json":
        raise ctx.error(400, "* GenerateContentRequest.generation_config.response_mime_type: must be application/json")
    conv.json_mode = mime == "application/json"
    conv.json_schema = _lower_types(schema) if isinstance(schema, dict) else None


def _tools(body: dict[str, Any], conv: Conversation, ctx: Ctx) -> None:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise ctx.error(400, "Invalid value at 'tools', must be a list")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise ctx.error(400, f"Invalid value at 'tools[{i}]', must be an object")
        decls = _get(tool, "functionDeclarations") or []
        if not isinstance(decls, list):
            raise ctx.error(400, f"Invalid value at 'tools[{i}].function_declarations', must be a list")
        for j, d in enumerate(decls):
            if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
                raise ctx.error(400, f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: required")
            _check_function_name(d["name"], ctx, f"tools[{i}].function_declarations[{j}]")
            schema = _get(d, "parametersJsonSchema") or d.get("parameters") or {"type": "object"}
            if not isinstance(schema, dict):
                raise ctx.error(400, f"Invalid value at 'tools[{i}].function_declarations[{j}].parameters'")
            conv.tools.append(ToolSpec(d["name"], _lower_types(schema)))
    fcc = _obj(_obj(body, "toolConfig", ctx, "tool_config"), "functionCallingConfig", ctx, "function_calling_config")
    mode = str(fcc.get("mode") or "AUTO").upper()
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        raise ctx.error(400, f"Invalid value at 'tool_config.function_calling_config.mode' (\"{mode}\")")
    conv.tool_choice = {"ANY": "required", "NONE": "none"}.get(mode, "auto")
    allowed = _get(fcc, "allowedFunctionNames") or []
    if not isinstance(allowed, list) or not all(isinstance(x, str) for x in allowed):
        raise ctx.error(400, "Invalid value at 'tool_config.function_calling_config.allowed_function_names'")
    if allowed:
        if mode != "ANY":
            raise ctx.error(400, "allowed_function_names may only be set when the function calling mode is ANY.")
        conv.tools = [t for t in conv.tools if t.name in allowed]
        if len(allowed) == 1:
            conv.tool_choice_name = allowed[0]


#: the thinking models that sign their function calls (``thoughtSignature``), and those that enforce it
_SIGNING = ("gemini-2.5", "gemini-3")
_ENFORCING = ("gemini-3",)
#: the value Google documents for a call that has no signature (history from another model)
SKIP_SIGNATURE = "skip_thought_signature_validator"


def thought_signature(name: str, args: Any) -> str:
    """The emulator's (deterministic, opaque) signature of a function call."""
    digest = hashlib.sha256(f"{name}:{json.dumps(args, sort_keys=True)}".encode()).digest()
    return base64.b64encode(digest * 2).decode()


def _check_signatures(contents: list[Any], model: str, ctx: Ctx) -> None:
    """As Gemini 3: in the current turn (the model turns after the last user text), each step's first
    ``functionCall`` part must carry the ``thoughtSignature`` it was given (parallel calls: only the first is
    signed); a missing one is a 400, one it did not give out is "Corrupted"."""
    if not model.startswith(_ENFORCING):
        return
    start = 0
    for i, c in enumerate(contents):
        parts = c.get("parts") if isinstance(c, dict) else None
        if (c.get("role") or "user") == "user" and any(isinstance(p, dict) and "text" in p for p in parts or ()):
            start = i + 1
    for c in contents[start:]:
        if c.get("role") != "model":
            continue
        calls = [(j, p) for j, p in enumerate(c["parts"]) if isinstance(_get(p, "functionCall"), dict)]
        if not calls:
            continue
        j, part = calls[0]
        fc = _get(part, "functionCall")
        sig = _get(part, "thoughtSignature")
        if not sig:
            raise ctx.error(
                400,
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to"
                " work correctly, and missing thought_signature may lead to degraded model performance. Additional"
                f" data, function call `default_api:{fc.get('name')}` , position {j + 1}. Please refer to"
                " https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
            )
        if sig != SKIP_SIGNATURE and _bytes(sig) != _bytes(
            thought_signature(str(fc.get("name")), fc.get("args") or {})
        ):
            raise ctx.error(400, "Corrupted thought signature.")


def _bytes(sig: Any) -> bytes | None:
    """A bytes field's value as proto JSON reads it (standard or URL-safe base64, as SDKs send it)."""
    try:
        text = str(sig).replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        return None


def parse_request(body: Any, ctx: Ctx) -> Conversation:
    """Validate a GenerateContentRequest as the real API does and build the neutral conversation."""
    if not isinstance(body, dict):
        raise ctx.error(400, "Invalid JSON payload received. Expected an object.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise ctx.error(400, "* GenerateContentRequest.contents: contents is not specified")
    conv = Conversation(model=_model(ctx))
    system = _get(body, "systemInstruction")
    if isinstance(system, dict):
        conv.system = _content({**system, "role": "user"}, ctx, "system_instruction")[1]
    elif isinstance(system, str):
        conv.system = system
    for i, c in enumerate(contents):
        role, text, images, result = _content(c, ctx, f"contents[{i}]")
        conv.messages.append((role, text if result is None else f"{text} {result}".strip()))
        if i == len(contents) - 1 and role != "model":
            conv.last_user_text, conv.images, conv.tool_result = text, images, result
    _check_signatures(contents, conv.model, ctx)
    _generation_config(body, conv, ctx)
    _tools(body, conv, ctx)
    return conv


# --------------------------------------------------------------------------- responses


def _usage(gen: Generation, *, final: bool = True) -> dict[str, Any]:
    out = gen.completion_tokens if final else 0
    usage: dict[str, Any] = {"promptTokenCount": gen.prompt_tokens}
    if out:
        usage["candidatesTokenCount"] = out
    usage["totalTokenCount"] = gen.prompt_tokens + out
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": gen.prompt_tokens}]
    return usage


def _parts(gen: Generation, model: str = "") -> list[dict[str, Any]]:
    if gen.tool_calls:
        parts: list[dict[str, Any]] = [
            {"functionCall": {"name": c.name, "args": json.loads(c.arguments)}} for c in gen.tool_calls
        ]
        if model.startswith(_SIGNING):  # a thinking model signs the first call of a step (as the real API)
            fc = parts[0]["functionCall"]
            parts[0]["thoughtSignature"] = thought_signature(fc["name"], fc["args"])
        return parts
    return [{"text": gen.text}]


def _chunk(conv: Conversation, ctx: Ctx, parts: list[dict[str, Any]], gen: Generation, last: bool) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if last:
        cand["finishReason"] = _FINISH[gen.finish]
    cand["index"] = 0
    return {
        "candidates": [cand],
        "usageMetadata": _usage(gen, final=last),
        "modelVersion": conv.model,
        "responseId": ctx.request_id,
    }


def generate_content(body: Any, ctx: Ctx) -> Reply:
    """POST /v1beta/models/{model}:generateContent."""
    conv = parse_request(body, ctx)
    gen = generate(conv, ctx.responder)
    parts = _parts(gen, conv.model)
    cand = {"content": {"parts": parts, "role": "model"}, "finishReason": _FINISH[gen.finish], "index": 0}
    return ctx.json(
        {"candidates": [cand], "usageMetadata": _usage(gen), "modelVersion": conv.model, "responseId": ctx.request_id}
    )


def stream_generate_content(body: Any, ctx: Ctx) -> Reply:
    """POST /v1beta/models/{model}:streamGenerateContent: GenerateContentResponse chunks, the last carrying
    finishReason and the full usage. ``?alt=sse``: data-only SSE (the body then simply ends); no ``alt`` or
    ``alt=json``: one JSON array of the chunks (``application/json``)."""
    alt = ctx.query.get("alt", "json")
    if alt not in ("sse", "json"):
        raise ctx.error(400, f"Invalid value at 'alt' ({alt}): the emulator answers alt=sse or alt=json")
    conv = parse_request(body, ctx)
    gen = generate(conv, ctx.responder)
    if gen.tool_calls:
        chunks = [_chunk(conv, ctx, _parts(gen, conv.model), gen, True)]
    else:
        pieces = gen.pieces or [""]
        chunks = [_chunk(conv, ctx, [{"text": p}], gen, i == len(pieces) - 1) for i, p in enumerate(pieces)]
    if alt == "json":
        return ctx.json(chunks)
    return ctx.stream([(None, dumps(c)) for c in chunks])


def _count_body(body: Any, ctx: Ctx) -> Conversation:
    if isinstance(body, dict) and isinstance(_get(body, "generateContentRequest"), dict):
        return parse_request(_get(body, "generateContentRequest"), ctx)
    if isinstance(body, dict) and body.get("contents") in (None, []):
        raise ctx.error(400, "* CountTokensRequest.contents: contents is not specified")
    return parse_request(body, ctx)


def count_tokens_route(body: Any, ctx: Ctx) -> Reply:
    """POST /v1beta/models/{model}:countTokens (``contents`` or ``generateContentRequest``)."""
    n = count_tokens(_count_body(body, ctx))
    return ctx.json({"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]})


def _embed_one(req: Any, ctx: Ctx, where: str) -> tuple[list[float], int]:
    if not isinstance(req, dict) or not isinstance(req.get("content"), dict):
        raise ctx.error(400, f"* {where}.content: content is not specified")
    parts = req["content"].get("parts")
    texts = [p["text"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not texts:
        raise ctx.error(400, f"* {where}.content.parts: at least one text part is required")
    dim = _get(req, "outputDimensionality")
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
        raise ctx.error(400, f"* {where}.output_dimensionality: must be positive")
    text = " ".join(texts)
    return embed(text, dim or ctx.embedding_dim), max(1, len(text.split()))


def embed_content(body: Any, ctx: Ctx) -> Reply:
    """POST /v1beta/models/{model}:embedContent."""
    vec, _ = _embed_one(body, ctx, "EmbedContentRequest")
    return ctx.json({"embedding": {"values": vec}})


def batch_embed_contents(body: Any, ctx: Ctx) -> Reply:
    """POST /v1beta/models/{model}:batchEmbedContents; each request must name the URL's model."""
    reqs = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(reqs, list) or not reqs:
        raise ctx.error(400, "* BatchEmbedContentsRequest.requests: requests is not specified")
    want = "models/" + _model(ctx)
    out: list[dict[str, Any]] = []
    tokens = 0
    for i, r in enumerate(reqs):
        if isinstance(r, dict) and r.get("model") not in (None, want):
            raise ctx.error(
                400, f"* BatchEmbedContentsRequest.requests[{i}].model: the model must be {want}, got {r['model']}"
            )
        vec, n = _embed_one(r, ctx, f"BatchEmbedContentsRequest.requests[{i}]")
        out.append({"values": vec})
        tokens += n
    usage = {"promptTokenCount": tokens, "promptTokenDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
    return ctx.json({"embeddings": out, "usageMetadata": usage})


def _model_info(name: str) -> dict[str, Any]:
    embedding = "embed" in name
    methods = ["embedContent", "batchEmbedContents"] if embedding else ["generateContent", "countTokens"]
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name,
        "description": f"Sandbox emulation of {name}",
        "inputTokenLimit": 2048 if embedding else 1048576,
        "outputTokenLimit": 1 if embedding else 65536,
        "supportedGenerationMethods": methods,
    }


def list_models(_body: Any, ctx: Ctx) -> Reply:
    """GET /v1beta/models (one page holding every configured model)."""
    return ctx.json({"models": [_model_info(m) for m in ctx.models]})


def get_model(_body: Any, ctx: Ctx) -> Reply:
    """GET /v1beta/models/{model}."""
    name = _model(ctx)
    if name not in ctx.models:
        raise ctx.error(404, f"models/{name} is not found for API version v1beta, or is not supported.")
    return ctx.json(_model_info(name))


def _routes() -> tuple[Route, ...]:
    out: list[Route] = []
    for ver in ("v1beta", "v1"):
        base = f"/{ver}/models/{{model}}"
        out += [
            Route("POST", base + ":generateContent", generate_content),
            Route("POST", base + ":streamGenerateContent", stream_generate_content),
            Route("POST", base + ":countTokens", count_tokens_route),
            Route("POST", base + ":embedContent", embed_content),
            Route("POST", base + ":batchEmbedContents", batch_embed_contents),
            Route("GET", f"/{ver}/models", list_models, with_body=False),
            Route("GET", base, get_model, with_body=False),
        ]
    return tuple(out)


BACKEND = Backend(GEMINI, GEMINI, routes=_routes(), check_auth=check_auth)
