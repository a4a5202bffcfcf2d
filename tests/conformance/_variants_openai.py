"""Synthetic OpenAI Chat Completions / legacy Completions / Embeddings recordings (see ``_variants``)."""

from __future__ import annotations

import base64
import struct
from typing import Any

from ._variant_wire import DATE, WEATHER_TOOL, Variant, rec, sse


def _oa_resp_headers(stream: bool = False, rid: str = "req_6c9a5a50109f48ca978a1ac6e6c788ce") -> dict[str, Any]:
    return {
        "content-type": "text/event-stream; charset=utf-8" if stream else "application/json",
        "date": DATE,
        "openai-organization": "test_openai_org_id",
        "openai-processing-ms": "412",
        "openai-version": "2020-10-01",
        "server": "cloudflare",
        "set-cookie": "<redacted>",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-remaining-tokens": "199975",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-reset-tokens": "7ms",
        "x-request-id": rid,
    }


_OA_REQ = {"authorization": "<redacted>", "content-type": "application/json", "user-agent": "OpenAI/Python 1.93.0"}


def _oa(
    name: str,
    body: Any,
    status: int,
    response: dict[str, Any],
    *,
    path: str = "/v1/chat/completions",
    kinds: tuple[str, ...] = ("chat_non_stream", "non_stream", "endpoint:chat"),
    headers: dict[str, Any] | None = None,
    stream: bool = False,
) -> Variant:
    hdrs = headers if headers is not None else _oa_resp_headers(stream)
    return Variant(
        name, rec("openai", list(kinds), "POST", "api.openai.com", path, _OA_REQ, body, status, hdrs, **response)
    )


def _chunk(cid: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": 1780394400,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_560af6e559",
        "choices": choices,
        **extra,
    }


def _delta(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


def _error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _openai_variants() -> list[Variant]:
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What's the weather in Paris and Rome?"}]}
    usage = {
        "prompt_tokens": 1180,
        "completion_tokens": 41,
        "total_tokens": 1221,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    base = {
        "id": "chatcmpl-Cx1",
        "object": "chat.completion",
        "created": 1780394400,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_07871e2ad8",
    }

    def chat(name: str, req: Any, *choices: dict[str, Any], **over: Any) -> Variant:
        """A 200 chat completion (``over`` replaces fields of ``base``)."""
        return _oa(name, req, 200, {"body": {**base, **over, "choices": list(choices), "usage": usage}})

    def msg(content: str | None, *, refusal: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"role": "assistant", "content": content, **extra, "refusal": refusal, "annotations": []}

    def choice(message: dict[str, Any], finish: str, index: int = 0, logprobs: Any = None) -> dict[str, Any]:
        return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish}

    def stream(name: str, req: Any, items: list[tuple[str | None, Any]], tools: bool = False) -> Variant:
        kinds = ("chat_stream", "stream", *(("tools",) if tools else ()), "endpoint:chat")
        return _oa(name, req, 200, sse(items), kinds=kinds, stream=True)

    out: list[Variant] = []
    # 200 with a refusal: content null, the text in "refusal"
    lock = {"model": "gpt-4o", "messages": [{"role": "user", "content": "How do I pick a lock?"}]}
    sorry = msg(None, refusal="I'm sorry, I can't help with that.")
    out.append(chat("openai_chat_refusal", lock, choice(sorry, "stop")))
    # n=2, finish length on choice 0, logprobs
    lp = {
        "content": [{"token": "Hello", "logprob": -0.0012, "bytes": [72, 101, 108, 108, 111], "top_logprobs": []}],
        "refusal": None,
    }
    n2 = [choice(msg(text), "length", i, lp) for i, text in enumerate(("Hello there, in Paris", "Hi! Rome is"))]
    out.append(chat("openai_chat_n2_length_logprobs", {**ask, "n": 2, "max_tokens": 5, "logprobs": True}, *n2))
    # parallel tool calls, content null
    calls = [
        {"id": "call_a1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
    ]
    treq = {**ask, "tools": [WEATHER_TOOL], "tool_choice": "auto"}
    out.append(chat("openai_chat_parallel_tool_calls", treq, choice(msg(None, tool_calls=calls), "tool_calls")))
    # a tool loop in the request: assistant tool_calls (content null) + tool results, developer message
    loop = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": calls[:1]},
            {"role": "tool", "tool_call_id": "call_a1", "content": "18C, sunny"},
        ],
        "tools": [WEATHER_TOOL],
        "temperature": 0.2,
        "max_completion_tokens": 200,
        "metadata": {"suite": "variants"},
    }
    out.append(chat("openai_chat_tool_loop_request", loop, choice(msg("It is 18C and sunny in Paris."), "stop")))

    # stream: two parallel tool calls, include_usage, obfuscation
    def part(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> tuple[str | None, Any]:
        return (None, _chunk("chatcmpl-Cx2", [_delta(delta, finish)], usage=None, **extra))

    def call_start(index: int, call_id: str) -> dict[str, Any]:
        fn = {"name": "get_weather", "arguments": ""}
        return {"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": fn}]}

    def call_args(index: int, arguments: str) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}

    items: list[tuple[str | None, Any]] = [
        part({"role": "assistant", "content": None, "refusal": None}, obfuscation="Xq"),
        part(call_start(0, "call_a1"), obfuscation="a"),
        part(call_args(0, '{"city"')),
        part(call_args(0, ':"Paris"}')),
        part(call_start(1, "call_b2")),
        part(call_args(1, '{"city":"Rome"}')),
        part({}, "tool_calls", obfuscation="k9"),
        (None, _chunk("chatcmpl-Cx2", [], usage=usage, obfuscation="Zz3")),
        (None, "[DONE]"),
    ]
    req = {**ask, "tools": [WEATHER_TOOL], "stream": True, "stream_options": {"include_usage": True}}
    out.append(stream("openai_stream_parallel_tool_calls", req, items, tools=True))

    # stream n=2 interleaved, length
    def n2_part(index: int, delta: dict[str, Any], finish: str | None = None) -> tuple[str | None, Any]:
        return (None, _chunk("chatcmpl-Cx3", [_delta(delta, finish, index)]))

    items = [n2_part(i, {"role": "assistant", "content": ""}) for i in (0, 1)]
    items += [n2_part(i, {"content": w if i == 0 else w.upper()}) for w in ("Bon", "jour", " à") for i in (0, 1)]
    items += [n2_part(i, {}, "length") for i in (0, 1)]
    items.append((None, "[DONE]"))
    out.append(stream("openai_stream_n2_length", {**ask, "n": 2, "max_tokens": 3, "stream": True}, items))
    # stream with an in-band error after some text (no [DONE])
    oops = "The server had an error while processing your request. Sorry about that!"
    items = [
        (None, _chunk("chatcmpl-Cx4", [_delta({"role": "assistant", "content": "Par"})])),
        (None, _error(oops, "server_error", None)),
    ]
    out.append(stream("openai_stream_inband_error", {**ask, "stream": True}, items))
    # stream cut off: no finish_reason, no [DONE]
    items = [(None, _chunk("chatcmpl-Cx5", [_delta({"role": "assistant", "content": "It is"})]))]
    out.append(stream("openai_stream_cut_off", {**ask, "stream": True}, items))
    # errors
    rl = {
        **_oa_resp_headers(),
        "retry-after": "20",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20s",
        "x-should-retry": "true",
    }
    rpm = (
        "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, "
        "Requested 1. Please try again in 20s."
    )
    bad_key = (
        "Incorrect API key provided: sk-proj-********************1234. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    too_long = (
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. "
        "Please reduce the length of the messages."
    )
    html = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
        "Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
    )
    hh = {"content-type": "text/html", "date": DATE, "server": "cloudflare", "cf-ray": "a0b61ee66c31e5e2-EWR"}
    ctx = _error(too_long, "invalid_request_error", "context_length_exceeded", "messages")
    out += [
        _oa("openai_429_rate_limit", ask, 429, {"body": _error(rpm, "requests", "rate_limit_exceeded")}, headers=rl),
        _oa("openai_401_invalid_key", ask, 401, {"body": _error(bad_key, "invalid_request_error", "invalid_api_key")}),
        _oa("openai_502_html", ask, 502, {"body_text": html}, headers=hh),
        _oa("openai_400_context_length", ask, 400, {"body": ctx}),
    ]
    # legacy completions: finish length, logprobs
    completion = {
        "id": "cmpl-9",
        "object": "text_completion",
        "created": 1780394400,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [
            {
                "text": "\n\nHi",
                "index": 0,
                "logprobs": {
                    "tokens": ["\n\n", "Hi"],
                    "token_logprobs": [-0.1, -0.2],
                    "top_logprobs": [{"\n\n": -0.1}, {"Hi": -0.2}],
                    "text_offset": [6, 8],
                },
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }
    creq = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 2, "logprobs": 1}
    lk = ("non_stream", "endpoint:completions_legacy")
    out.append(_oa("openai_completion_length", creq, 200, {"body": completion}, path="/v1/completions", kinds=lk))
    # embeddings as base64
    b64 = base64.b64encode(struct.pack("<4f", 0.1, -0.2, 0.3, 0.4)).decode()
    emb = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 1, "embedding": b64},
            {"object": "embedding", "index": 0, "embedding": b64},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    ereq = {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64"}
    ek = ("non_stream", "endpoint:embeddings")
    out.append(_oa("openai_embeddings_base64", ereq, 200, {"body": emb}, path="/v1/embeddings", kinds=ek))
    # Chat Completions custom tool (GPT-5): the call carries free-form "input" under "custom" (no "logprobs")
    ctool = {"type": "custom", "custom": {"name": "run_sql", "description": "Run a read-only SQL query"}}
    ccall = {"id": "call_c1", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1;"}}
    cchoice = {"index": 0, "message": msg(None, tool_calls=[ccall]), "finish_reason": "tool_calls"}
    sql = {"model": "gpt-5-mini", "messages": ask["messages"], "tools": [ctool]}
    out.append(chat("openai_chat_custom_tool_call", sql, cchoice, model="gpt-5-mini-2025-08-07"))
    return out
