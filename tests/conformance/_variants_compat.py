"""Synthetic Azure OpenAI, DeepSeek, vLLM and Groq recordings (see ``_variants``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._variant_wire import DATE, WEATHER_TOOL, Variant, rec, sse

_CHAT = ["chat_non_stream", "non_stream", "endpoint:chat"]
_STREAM = ["chat_stream", "stream", "endpoint:chat"]


def _kinds(req: dict[str, Any]) -> list[str]:
    """The chat kinds of a request: streamed or not."""
    return list(_STREAM if req.get("stream") else _CHAT)


def _route(
    provider: str, host: str, path: str, req_h: dict[str, Any], kinds: list[str] | None = None
) -> Callable[..., Variant]:
    """The variant maker of one route: ``(name, req, status, headers, **response)``; kinds follow ``stream``."""

    def make(name: str, req: dict[str, Any], status: int, headers: dict[str, Any], **response: Any) -> Variant:
        k = _kinds(req) if kinds is None else kinds
        return Variant(name, rec(provider, k, "POST", host, path, req_h, req, status, headers, **response))

    return make


def _azure_variants() -> list[Variant]:
    path = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    req_h = {"api-key": "<redacted>", "content-type": "application/json", "user-agent": "AzureOpenAI/Python 1.93.0"}
    aad = {"authorization": "<redacted>", "content-type": "application/json", "user-agent": "AzureOpenAI/Python 1.93.0"}

    azure = _route("azure-openai", "myresource.openai.azure.com", path, req_h)
    azure_aad = _route("azure-openai", "myresource.openai.azure.com", path, aad)

    hdrs = {
        "apim-request-id": "6840c617-4911-4abd-9e02-194b788af85f",
        "content-type": "application/json",
        "date": DATE,
        "x-ms-region": "East US 2",
        "x-ratelimit-remaining-requests": "119",
        "x-ratelimit-remaining-tokens": "119986",
        "x-request-id": "ceebacd4-7104-4f62-9590-7d679358ff3c",
    }
    ask = {"messages": [{"role": "user", "content": "Tell me a story"}], "model": "gpt-4o-mini"}
    cf_ok = {
        "hate": {"filtered": False, "severity": "safe"},
        "self_harm": {"filtered": False, "severity": "safe"},
        "sexual": {"filtered": False, "severity": "safe"},
        "violence": {"filtered": False, "severity": "safe"},
    }
    cf_bad = {**cf_ok, "violence": {"filtered": True, "severity": "high"}}
    err = {
        "error": {
            "message": (
                "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
                "Please modify your prompt and retry."
            ),
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {**cf_bad, "jailbreak": {"filtered": False, "detected": False}},
            },
        }
    }
    body: dict[str, Any] = {
        "choices": [
            {
                "content_filter_results": cf_ok,
                "finish_reason": "length",
                "index": 0,
                "logprobs": None,
                "message": {"annotations": [], "content": "Once upon a", "refusal": None, "role": "assistant"},
            }
        ],
        "created": 1780394400,
        "id": "chatcmpl-Az1",
        "model": "gpt-4o-mini-2024-07-18",
        "object": "chat.completion",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": cf_ok}],
        "system_fingerprint": "fp_b705f0c291",
        "usage": {
            "completion_tokens": 3,
            "prompt_tokens": 12,
            "total_tokens": 15,
            "completion_tokens_details": {"reasoning_tokens": 0},
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }
    stopped = {**body, "choices": [{**body["choices"][0], "finish_reason": "stop"}]}

    def ch(delta: dict[str, Any], finish: str | None, cf: dict[str, Any]) -> tuple[str | None, Any]:
        choice = {"content_filter_results": cf, "delta": delta, "finish_reason": finish, "index": 0, "logprobs": None}
        return (
            None,
            {
                "choices": [choice],
                "created": 1780394400,
                "id": "chatcmpl-Az2",
                "model": "gpt-4o-mini-2024-07-18",
                "object": "chat.completion.chunk",
                "system_fingerprint": "fp_b705f0c291",
            },
        )

    prompt_filter = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": cf_ok}],
    }
    items = [
        (None, prompt_filter),
        ch({"content": "", "refusal": None, "role": "assistant"}, None, {}),
        ch({"content": "The battle"}, None, cf_ok),
        ch({}, "content_filter", cf_bad),
        (None, "[DONE]"),
    ]
    sh = {**hdrs, "content-type": "text/event-stream"}
    rl = {
        "apim-request-id": "7a3d",
        "content-type": "application/json",
        "date": DATE,
        "retry-after": "6",
        "retry-after-ms": "5500",
        "x-ms-region": "East US 2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-remaining-tokens": "0",
    }
    body429 = {
        "error": {
            "code": "429",
            "message": (
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
                "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."
            ),
        }
    }
    filtered = {
        **body,
        "choices": [
            {"content_filter_results": cf_bad, "finish_reason": "content_filter", "index": 0, "logprobs": None}
        ],
    }
    return [
        azure("azure_chat_filtered_without_message", ask, 200, hdrs, body=filtered),
        azure("azure_400_content_filter", ask, 400, hdrs, body=err),
        azure("azure_chat_length_filters", {**ask, "max_tokens": 3}, 200, hdrs, body=body),
        azure("azure_stream_content_filter", {**ask, "stream": True}, 200, sh, **sse(items)),
        azure("azure_429_retry_after_ms", ask, 429, rl, body=body429),
        azure_aad("azure_chat_entra_id_auth", ask, 200, hdrs, body=stopped),
    ]


def _deepseek_variants() -> list[Variant]:
    hdrs = {
        "content-type": "text/event-stream; charset=utf-8",
        "date": DATE,
        "server": "CW",
        "x-ds-trace-id": "facf2a6f701bdbda57e96dac345ddaba",
    }
    req_h = {"authorization": "<redacted>", "content-type": "application/json", "user-agent": "OpenAI/Python 1.93.0"}
    deepseek = _route("deepseek", "api.deepseek.com", "/chat/completions", req_h)

    def c(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> tuple[str | None, Any]:
        return (
            None,
            {
                "id": "b8f2",
                "object": "chat.completion.chunk",
                "created": 1780394400,
                "model": "deepseek-reasoner",
                "system_fingerprint": "fp_7e0991cad4_prod0820_fp8_kvcache",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                "usage": usage,
            },
        )

    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 30,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 25},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 10,
    }
    items = [
        c({"role": "assistant", "content": None, "reasoning_content": ""}),
        c({"content": None, "reasoning_content": "The user greets."}),
        c({"content": "Hello", "reasoning_content": None}),
        c({"content": "!", "reasoning_content": None}),
        c({"content": "", "reasoning_content": None}, "stop", usage),
        (None, "[DONE]"),
    ]
    # DeepSeek keeps the connection alive with SSE comments while the request is queued
    keepalive = sse(items, comments=("keep-alive", "keep-alive"))
    body = {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    e402 = {
        "error": {
            "message": "Insufficient Balance",
            "type": "unknown_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }
    jh = {**hdrs, "content-type": "application/json"}
    return [
        deepseek("deepseek_stream_reasoning_keepalive", body, 200, hdrs, **keepalive),
        deepseek("deepseek_402_insufficient_balance", {**body, "stream": False}, 402, jh, body=e402),
    ]


def _vllm_variants() -> list[Variant]:
    hdrs = {"content-length": "383", "content-type": "application/json", "date": DATE, "server": "uvicorn"}
    req_h = {"content-type": "application/json", "user-agent": "OpenAI/Python 1.51.2"}

    vllm = _route("vllm", "localhost:8000", "/v1/chat/completions", req_h)
    vllm_embed = _route("vllm", "localhost:8000", "/v1/embeddings", req_h, ["non_stream", "endpoint:embeddings"])
    model = "meta-llama/Llama-3.2-1B-Instruct"
    ask = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "model": model}
    old = {
        "object": "error",
        "message": (
            "This model's maximum context length is 2048 tokens. However, you requested 2100 tokens (100 in the "
            "messages, 2000 in the completion). Please reduce the length of the messages or completion."
        ),
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    new = {
        "error": {
            "message": "The model `llama` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }
    tc = {
        "id": "chatcmpl-tool-5b2c",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    body = {
        "id": "chatcmpl-8d1",
        "object": "chat.completion",
        "created": 1780394400,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "reasoning_content": None, "content": None, "tool_calls": [tc]},
                "logprobs": None,
                "finish_reason": "tool_calls",
                "stop_reason": 128008,
            }
        ],
        "usage": {"prompt_tokens": 180, "total_tokens": 200, "completion_tokens": 20, "prompt_tokens_details": None},
        "prompt_logprobs": None,
    }

    def c(delta: dict[str, Any], finish: str | None = None, **kw: Any) -> tuple[str | None, Any]:
        ch = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **kw}
        return (
            None,
            {
                "id": "chatcmpl-9a",
                "object": "chat.completion.chunk",
                "created": 1780394400,
                "model": model,
                "choices": [ch],
            },
        )

    items = [
        c({"role": "assistant", "content": ""}),
        c({"content": "Sunny"}),
        c({"content": "."}, "stop", stop_reason=None),
        (None, "[DONE]"),
    ]
    emb = {
        "id": "embd-1",
        "object": "list",
        "created": 1780394400,
        "model": "BAAI/bge-small-en-v1.5",
        "data": [{"index": 0, "object": "embedding", "embedding": [0.1, -0.2, 0.3]}],
        "usage": {"prompt_tokens": 3, "total_tokens": 3, "completion_tokens": 0, "prompt_tokens_details": None},
    }
    ereq = {"input": ["hi"], "model": "BAAI/bge-small-en-v1.5", "encoding_format": "float"}
    tools = {**ask, "tools": [WEATHER_TOOL], "tool_choice": "auto"}
    sh = {**hdrs, "content-type": "text/event-stream; charset=utf-8"}
    nf_h = {**hdrs, "x-request-id": "chatcmpl-3f1e"}
    empty = {
        "object": "error",
        "message": "[{'type': 'too_short', 'loc': ('body', 'messages'), 'msg': 'List should have at least 1 item'}]",
        "type": "Bad Request",
        "param": None,
        "code": 422,
    }
    return [
        vllm("vllm_422_empty_messages", {**ask, "messages": []}, 422, hdrs, body=empty),
        vllm("vllm_400_object_error", {**ask, "max_tokens": 2000}, 400, hdrs, body=old),
        vllm("vllm_404_nested_error", {**ask, "model": "llama"}, 404, nf_h, body=new),
        vllm("vllm_chat_tool_call", tools, 200, {**hdrs, "x-request-id": "chatcmpl-8d1"}, body=body),
        vllm("vllm_chat_stream", {**ask, "stream": True}, 200, sh, **sse(items)),
        vllm_embed("vllm_embeddings_floats", ereq, 200, hdrs, body=emb),
    ]


def _groq_variants() -> list[Variant]:
    hdrs = {
        "content-type": "application/json",
        "date": DATE,
        "server": "cloudflare",
        "vary": "Origin",
        "x-groq-region": "us-east-1",
        "x-ratelimit-limit-requests": "14400",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-requests": "14399",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-requests": "6s",
        "x-ratelimit-reset-tokens": "1m2.5s",
        "x-request-id": "req_01jmefve36eajb6c1x6k8ppv5m",
    }
    req_h = {"authorization": "<redacted>", "content-type": "application/json", "user-agent": "Groq/Python 0.25.0"}
    groq = _route("groq", "api.groq.com", "/openai/v1/chat/completions", req_h)

    ask = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "model": "llama-3.3-70b-versatile"}
    e429 = {
        "error": {
            "message": (
                "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01` service tier "
                "`on_demand` on tokens per minute (TPM): Limit 6000, Used 5800, Requested 400. Please try again in "
                "2s."
            ),
            "type": "tokens",
            "code": "rate_limit_exceeded",
        }
    }
    e400 = {
        "error": {
            "message": (
                "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details."
            ),
            "type": "invalid_request_error",
            "code": "tool_use_failed",
            "failed_generation": '<function=get_weather>{"city": "Paris"}</function>',
        }
    }
    usage = {
        "queue_time": 0.05,
        "prompt_tokens": 220,
        "prompt_time": 0.011,
        "completion_tokens": 20,
        "completion_time": 0.04,
        "total_tokens": 240,
        "total_time": 0.051,
    }
    tc = {"id": "call_7qzt", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    body = {
        "id": "chatcmpl-5e1",
        "object": "chat.completion",
        "created": 1780394400,
        "model": "llama-3.3-70b-versatile",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "tool_calls": [tc]},
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": usage,
        "usage_breakdown": None,
        "system_fingerprint": "fp_3f3b593e33",
        "x_groq": {"id": "req_01jmefve36eajb6c1x6k8ppv5m"},
        "service_tier": "on_demand",
    }

    def c(delta: dict[str, Any], finish: str | None = None, **kw: Any) -> tuple[str | None, Any]:
        return (
            None,
            {
                "id": "chatcmpl-5e2",
                "object": "chat.completion.chunk",
                "created": 1780394400,
                "model": "llama-3.3-70b-versatile",
                "system_fingerprint": "fp_3f3b593e33",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **kw,
            },
        )

    items = [
        c({"role": "assistant", "content": ""}, x_groq={"id": "req_01jmefve36eajb6c1x6k8ppv5m"}),
        c({"content": "Sunny and"}),
        c({}, "length", x_groq={"id": "req_01jmefve36eajb6c1x6k8ppv5m", "usage": usage}),
        (None, "[DONE]"),
    ]
    tools = {**ask, "tools": [WEATHER_TOOL]}
    sh = {**hdrs, "content-type": "text/event-stream"}
    return [
        groq("groq_429_retry_after", ask, 429, {**hdrs, "retry-after": "2"}, body=e429),
        groq("groq_400_tool_use_failed", tools, 400, hdrs, body=e400),
        groq("groq_chat_tool_call", {**tools, "tool_choice": "auto"}, 200, hdrs, body=body),
        groq("groq_stream_length_x_groq_usage", {**ask, "stream": True, "max_tokens": 3}, 200, sh, **sse(items)),
    ]
