"""The protocol routes: OpenAI ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
``/v1/models``, ``/v1/responses``; Anthropic ``/v1/messages``, ``/v1/messages/count_tokens``; and
``/health``, ``/ready``.

Each translates the caller's body to the neutral types with the providers' own ``*_from_wire`` functions
(the inverse of their wire builders, so a same-protocol backend gets the fields infermux does not model
unchanged), and renders the answer back in the caller's protocol (:mod:`.render`, :mod:`.sse`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import ConfigurationError
from ..providers import anthropic as anthropic_wire
from ..providers import openai as openai_wire
from ..providers import openai_responses as responses_wire
from ..router import Budget
from ..types import ChatRequest, EmbedRequest, Message
from . import render, status
from .app import RID_KEY
from .errors import GatewayError
from .limits import estimate_tokens
from .sse import AnthropicSSE, ChatSSE, CompletionSSE, ResponsesSSE

if TYPE_CHECKING:  # pragma: no cover
    from .app import Gateway, RequestContext

__all__ = ["add_routes"]


def _stream_flag(body: Mapping[str, Any]) -> bool:
    value = body.get("stream", False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise GatewayError(400, f"'stream' must be true or false, got {value!r}")
    return value


def _include_usage(body: Mapping[str, Any]) -> bool:
    opts = body.get("stream_options")
    return isinstance(opts, Mapping) and opts.get("include_usage") is True


async def chat_completions(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.StreamResponse:
    body = ctx.body
    stream = _stream_flag(body)
    req = openai_wire.chat_request_from_wire(body)
    if isinstance(body.get("n"), int) and body["n"] != 1:
        raise GatewayError(400, "'n' other than 1 is not supported by the gateway")
    model = req.model
    return await gw.serve_chat(
        request,
        ctx,
        req,
        family=render.OPENAI_CHAT_FAMILY,
        stream=stream,
        render=lambda r: render.openai_chat(r, model),
        renderer=lambda: ChatSSE(ctx.request_id, model or "", include_usage=_include_usage(body)),
    )


async def completions(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.StreamResponse:
    body = ctx.body
    stream = _stream_flag(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise GatewayError(400, "'prompt' must be a non-empty string (one prompt per request)")
    model = body.get("model")
    known = {"model", "prompt", "stream", "stream_options", "max_tokens", "temperature", "top_p", "stop", "seed"}
    unknown = sorted(k for k, v in body.items() if k not in known and v is not None)
    if unknown:
        raise GatewayError(400, f"/v1/completions: unsupported field(s) {unknown}")
    stop = body.get("stop")
    try:
        req = ChatRequest(
            messages=(Message("user", prompt),),
            model=model,
            max_tokens=body.get("max_tokens"),
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
            seed=body.get("seed"),
        )
    except (TypeError, ValueError) as e:
        raise GatewayError(400, f"invalid completion request: {e}") from None
    return await gw.serve_chat(
        request,
        ctx,
        req,
        family=frozenset(),  # the prompt is sent as a chat turn: no same-protocol body to pass through
        stream=stream,
        render=lambda r: render.openai_completion(r, model),
        renderer=lambda: CompletionSSE(ctx.request_id, model or "", include_usage=_include_usage(body)),
    )


async def responses(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.StreamResponse:
    body = ctx.body
    stream = _stream_flag(body)
    req = responses_wire.responses_request_from_wire(body)
    model = req.model
    return await gw.serve_chat(
        request,
        ctx,
        req,
        family=render.RESPONSES_FAMILY,
        stream=stream,
        render=lambda r: render.responses_object(r, model, body),
        renderer=lambda: ResponsesSSE(ctx.request_id, model or "", body),
    )


async def messages(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.StreamResponse:
    body = ctx.body
    stream = _stream_flag(body)
    if not isinstance(body.get("max_tokens"), int):
        raise GatewayError(400, "max_tokens: field required (an integer)")
    req = anthropic_wire.chat_request_from_wire(body)
    model = req.model
    return await gw.serve_chat(
        request,
        ctx,
        req,
        family=render.ANTHROPIC_FAMILY,
        stream=stream,
        render=lambda r: render.anthropic_message(r, model),
        renderer=lambda: AnthropicSSE(ctx.request_id, model or ""),
    )


async def count_tokens(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.StreamResponse:
    """An Anthropic backend counts (``/v1/messages/count_tokens`` upstream); for other backends the
    gateway's estimate (about 4 characters per token) is returned."""
    req = anthropic_wire.chat_request_from_wire(ctx.body)
    gw.policy.check_model(ctx, req.model)
    await gw.policy.check_live(ctx)  # no admission on this route: a revocation elsewhere is checked here
    cands = [ep for ep in gw.candidates(req.model) if ep.provider.name in render.ANTHROPIC_FAMILY]
    if not cands:
        return gw.json_response({"input_tokens": estimate_tokens(req)[0]}, ctx.request_id)
    req = gw.shape(req, render.ANTHROPIC_FAMILY)
    budget = Budget(gw.client.router.endpoints[0].clock, gw.settings.request_timeout)
    n = await gw.client.router.run(
        cands,
        lambda ep, st: ep.call(
            anthropic_wire.build_count_tokens(req, ep.model_for(req.model)),
            anthropic_wire.parse_count_tokens,
            timeout=st.timeout,
            request_id=ctx.request_id,
        ),
        budget,
    )
    return gw.json_response({"input_tokens": n}, ctx.request_id)


async def embeddings(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.StreamResponse:
    body = ctx.body
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) for s in inputs):
        raise GatewayError(400, "'input' must be a string or a list of strings (token arrays are not supported)")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise GatewayError(400, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise GatewayError(400, "'model' must be a string")
    gw.policy.check_model(ctx, model)
    cands = [ep for ep in gw.candidates(model) if ep.provider.build_embed is not None]
    if not cands:
        raise GatewayError(404, f"no endpoint serving model {model!r} can embed")
    extra = {k: v for k, v in body.items() if k not in ("input", "model", "encoding_format", "dimensions")}
    if not all(ep.provider.name in render.OPENAI_CHAT_FAMILY for ep in cands):
        extra = {}
    try:
        req = EmbedRequest(tuple(inputs), model=model, dimensions=body.get("dimensions"), extra=extra)
    except ConfigurationError as e:
        raise GatewayError(400, str(e)) from None
    bound = sum(len(s.encode("utf-8", "surrogatepass")) + 4 for s in inputs)  # bytes, and BOS/EOS markers
    adm = await gw.policy.reserve(ctx, model, sum(len(s) for s in inputs) // 4 + len(inputs), 0, prompt_bound=bound)
    out = None
    try:
        budget = Budget(cands[0].clock, gw.settings.request_timeout)
        out = await gw.client.router.run(
            cands,
            lambda ep, st: ep.embed(req, timeout=st.timeout, request_id=ctx.request_id, wait=st.wait),
            budget,
        )
    finally:
        await gw.settle(adm, model, out.usage if out is not None else None)
    return gw.json_response(render.openai_embeddings(out, model, encoding), ctx.request_id, endpoint=out.endpoint)


async def models(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.StreamResponse:
    await gw.policy.check_live(ctx)
    key = ctx.principal.key
    names = [m for m in gw.models() if key is None or key.allows(m)]
    if ctx.protocol == "anthropic":
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"} for m in names]
        body = {"data": data, "has_more": False, "first_id": names[0] if names else None}
        body["last_id"] = names[-1] if names else None
    else:
        body = {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "infermux"} for m in names],
        }
    return gw.json_response(body, ctx.request_id)


async def health(gw: Gateway, request: web.BaseRequest) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"x-request-id": request[RID_KEY]})


async def ready(gw: Gateway, request: web.BaseRequest) -> web.Response:
    ok, detail = gw.readiness()
    return web.json_response(detail, status=200 if ok else 503, headers={"x-request-id": request[RID_KEY]})


def _gateway_series(gw: Gateway) -> bytes:
    """The gateway's own counters in the Prometheus text format (the endpoints' come from infermux.metrics)."""
    c = gw.counters
    lines = []
    for name, kind, value, help_ in (
        ("infermux_gateway_requests_total", "counter", c.requests, "Requests received by the gateway"),
        ("infermux_gateway_in_flight", "gauge", c.in_flight, "Requests being served"),
        ("infermux_gateway_streams_total", "counter", c.streams, "Streams relayed"),
        ("infermux_gateway_client_disconnects_total", "counter", c.disconnects, "Callers that left mid-request"),
        ("infermux_gateway_auth_failures_total", "counter", c.auth_failures, "Requests refused for their key"),
        ("infermux_gateway_rate_limited_total", "counter", c.rate_limited, "Requests over a key's limit or budget"),
        ("infermux_gateway_settle_failures_total", "counter", c.settle_failures, "Settlements the store missed"),
    ):
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"]
    name = "infermux_gateway_errors_total"
    lines += [f"# HELP {name} Error answers by HTTP status", f"# TYPE {name} counter"]
    lines += [f'{name}{{status="{k}"}} {v}' for k, v in sorted(c.errors_by_status.items())]
    return ("\n".join(lines) + "\n").encode()


async def metrics(gw: Gateway, request: web.BaseRequest, ctx: RequestContext) -> web.StreamResponse:
    """Prometheus exposition: every endpoint's series (:func:`infermux.metrics.exposition`) and the gateway's.
    Needs the master key when one is set (Prometheus: ``authorization: {credentials: ...}``)."""
    if gw.settings.master_key is not None:
        gw.policy.require_admin(ctx)
    from ..metrics import exposition

    try:
        body = exposition(gw.client) + _gateway_series(gw)
    except ConfigurationError as e:  # prometheus_client is not installed
        raise GatewayError(501, str(e)) from None
    headers = {"x-request-id": ctx.request_id}
    return web.Response(body=body, headers=headers, content_type="text/plain", charset="utf-8")


def add_routes(gw: Gateway) -> None:
    gw.route("POST", "/v1/chat/completions", functools.partial(chat_completions, gw))
    gw.route("POST", "/v1/completions", functools.partial(completions, gw))
    gw.route("POST", "/v1/responses", functools.partial(responses, gw))
    gw.route("POST", "/v1/embeddings", functools.partial(embeddings, gw))
    gw.route("GET", "/v1/models", functools.partial(models, gw))
    gw.route("POST", "/v1/messages", functools.partial(messages, gw))
    gw.route("POST", "/v1/messages/count_tokens", functools.partial(count_tokens, gw))
    gw.route("GET", "/metrics", functools.partial(metrics, gw))
    gw.route_open("GET", "/health", functools.partial(health, gw))
    gw.route_open("GET", "/ready", functools.partial(ready, gw))
    gw.route_open("GET", "/status", functools.partial(status.status_page, gw))
