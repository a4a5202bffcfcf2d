"""Synthetic Azure OpenAI, DeepSeek, vLLM and Groq recordings (see ``_variants``)."""

from __future__ import annotations

from typing import Any

from ._variant_wire import DATE, WEATHER_TOOL, Variant, rec, sse


def _azure_variants() -> list[Variant]:
    out: list[Variant] = []
    path = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    req_h = {"api-key": "<redacted>", "content-type": "application/json", "user-agent": "AzureOpenAI/Python 1.93.0"}
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
    host = "myresource.openai.azure.com"
    ck = ["chat_non_stream", "non_stream", "endpoint:chat"]
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
    out.append(
        Variant(
            "azure_400_content_filter", rec("azure-openai", ck, "POST", host, path, req_h, ask, 400, hdrs, body=err)
        )
    )
    body = {
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
    out.append(
        Variant(
            "azure_chat_length_filters",
            rec("azure-openai", ck, "POST", host, path, req_h, {**ask, "max_tokens": 3}, 200, hdrs, body=body),
        )
    )

    def ch(delta: dict[str, Any], finish: str | None, cf: dict[str, Any]) -> dict[str, Any]:
        return {
            "choices": [
                {"content_filter_results": cf, "delta": delta, "finish_reason": finish, "index": 0, "logprobs": None}
            ],
            "created": 1780394400,
            "id": "chatcmpl-Az2",
            "model": "gpt-4o-mini-2024-07-18",
            "object": "chat.completion.chunk",
            "system_fingerprint": "fp_b705f0c291",
        }

    items: list[tuple[str | None, Any]] = [
        (
            None,
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": cf_ok}],
            },
        ),
        (None, ch({"content": "", "refusal": None, "role": "assistant"}, None, {})),
        (None, ch({"content": "The battle"}, None, cf_ok)),
        (None, ch({}, "content_filter", cf_bad)),
        (None, "[DONE]"),
    ]
    sh = {**hdrs, "content-type": "text/event-stream"}
    out.append(
        Variant(
            "azure_stream_content_filter",
            rec(
                "azure-openai",
                ["chat_stream", "stream", "endpoint:chat"],
                "POST",
                host,
                path,
                req_h,
                {**ask, "stream": True},
                200,
                sh,
                **sse(items),
            ),
        )
    )
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
    out.append(
        Variant(
            "azure_429_retry_after_ms", rec("azure-openai", ck, "POST", host, path, req_h, ask, 429, rl, body=body429)
        )
    )
    aad = {"authorization": "<redacted>", "content-type": "application/json", "user-agent": "AzureOpenAI/Python 1.93.0"}
    out.append(
        Variant(
            "azure_chat_entra_id_auth",
            rec(
                "azure-openai",
                ck,
                "POST",
                host,
                path,
                aad,
                ask,
                200,
                hdrs,
                body={**body, "choices": [{**body["choices"][0], "finish_reason": "stop"}]},
            ),
        )
    )
    return out


def _deepseek_variants() -> list[Variant]:
    hdrs = {
        "content-type": "text/event-stream; charset=utf-8",
        "date": DATE,
        "server": "CW",
        "x-ds-trace-id": "facf2a6f701bdbda57e96dac345ddaba",
    }
    req_h = {"authorization": "<redacted>", "content-type": "application/json", "user-agent": "OpenAI/Python 1.93.0"}

    def c(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
        return {
            "id": "b8f2",
            "object": "chat.completion.chunk",
            "created": 1780394400,
            "model": "deepseek-reasoner",
            "system_fingerprint": "fp_7e0991cad4_prod0820_fp8_kvcache",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        }

    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 30,
        "total_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 25},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 10,
    }
    items: list[tuple[str | None, Any]] = [
        (None, c({"role": "assistant", "content": None, "reasoning_content": ""})),
        (None, c({"content": None, "reasoning_content": "The user greets."})),
        (None, c({"content": "Hello", "reasoning_content": None})),
        (None, c({"content": "!", "reasoning_content": None})),
        (None, c({"content": "", "reasoning_content": None}, "stop", usage)),
        (None, "[DONE]"),
    ]
    body = {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    ks = ["chat_stream", "stream", "endpoint:chat"]
    # DeepSeek keeps the connection alive with SSE comments while the request is queued
    v1 = rec(
        "deepseek",
        ks,
        "POST",
        "api.deepseek.com",
        "/chat/completions",
        req_h,
        body,
        200,
        hdrs,
        **sse(items, comments=("keep-alive", "keep-alive")),
    )
    e402 = {
        "error": {
            "message": "Insufficient Balance",
            "type": "unknown_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }
    v2 = rec(
        "deepseek",
        ["chat_non_stream", "non_stream", "endpoint:chat"],
        "POST",
        "api.deepseek.com",
        "/chat/completions",
        req_h,
        {**body, "stream": False},
        402,
        {**hdrs, "content-type": "application/json"},
        body=e402,
    )
    return [Variant("deepseek_stream_reasoning_keepalive", v1), Variant("deepseek_402_insufficient_balance", v2)]


def _vllm_variants() -> list[Variant]:
    hdrs = {"content-length": "383", "content-type": "application/json", "date": DATE, "server": "uvicorn"}
    req_h = {"content-type": "application/json", "user-agent": "OpenAI/Python 1.51.2"}
    model = "meta-llama/Llama-3.2-1B-Instruct"
    ask = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "model": model}
    ck = ["chat_non_stream", "non_stream", "endpoint:chat"]
    out = []
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
    out.append(
        Variant(
            "vllm_400_object_error",
            rec(
                "vllm",
                ck,
                "POST",
                "localhost:8000",
                "/v1/chat/completions",
                req_h,
                {**ask, "max_tokens": 2000},
                400,
                hdrs,
                body=old,
            ),
        )
    )
    new = {
        "error": {
            "message": "The model `llama` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }
    out.append(
        Variant(
            "vllm_404_nested_error",
            rec(
                "vllm",
                ck,
                "POST",
                "localhost:8000",
                "/v1/chat/completions",
                req_h,
                {**ask, "model": "llama"},
                404,
                {**hdrs, "x-request-id": "chatcmpl-3f1e"},
                body=new,
            ),
        )
    )
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
    out.append(
        Variant(
            "vllm_chat_tool_call",
            rec(
                "vllm",
                ck,
                "POST",
                "localhost:8000",
                "/v1/chat/completions",
                req_h,
                {**ask, "tools": [WEATHER_TOOL], "tool_choice": "auto"},
                200,
                {**hdrs, "x-request-id": "chatcmpl-8d1"},
                body=body,
            ),
        )
    )

    def c(delta: dict[str, Any], finish: str | None = None, **kw: Any) -> dict[str, Any]:
        ch = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **kw}
        return {
            "id": "chatcmpl-9a",
            "object": "chat.completion.chunk",
            "created": 1780394400,
            "model": model,
            "choices": [ch],
        }

    items: list[tuple[str | None, Any]] = [
        (None, c({"role": "assistant", "content": ""})),
        (None, c({"content": "Sunny"})),
        (None, c({"content": "."}, "stop", stop_reason=None)),
        (None, "[DONE]"),
    ]
    out.append(
        Variant(
            "vllm_chat_stream",
            rec(
                "vllm",
                ["chat_stream", "stream", "endpoint:chat"],
                "POST",
                "localhost:8000",
                "/v1/chat/completions",
                req_h,
                {**ask, "stream": True},
                200,
                {**hdrs, "content-type": "text/event-stream; charset=utf-8"},
                **sse(items),
            ),
        )
    )
    emb = {
        "id": "embd-1",
        "object": "list",
        "created": 1780394400,
        "model": "BAAI/bge-small-en-v1.5",
        "data": [{"index": 0, "object": "embedding", "embedding": [0.1, -0.2, 0.3]}],
        "usage": {"prompt_tokens": 3, "total_tokens": 3, "completion_tokens": 0, "prompt_tokens_details": None},
    }
    out.append(
        Variant(
            "vllm_embeddings_floats",
            rec(
                "vllm",
                ["non_stream", "endpoint:embeddings"],
                "POST",
                "localhost:8000",
                "/v1/embeddings",
                req_h,
                {"input": ["hi"], "model": "BAAI/bge-small-en-v1.5", "encoding_format": "float"},
                200,
                hdrs,
                body=emb,
            ),
        )
    )
    return out


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
    path = "/openai/v1/chat/completions"
    ask = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "model": "llama-3.3-70b-versatile"}
    ck = ["chat_non_stream", "non_stream", "endpoint:chat"]
    out = []
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
    out.append(
        Variant(
            "groq_429_retry_after",
            rec("groq", ck, "POST", "api.groq.com", path, req_h, ask, 429, {**hdrs, "retry-after": "2"}, body=e429),
        )
    )
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
    out.append(
        Variant(
            "groq_400_tool_use_failed",
            rec(
                "groq", ck, "POST", "api.groq.com", path, req_h, {**ask, "tools": [WEATHER_TOOL]}, 400, hdrs, body=e400
            ),
        )
    )
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
    out.append(
        Variant(
            "groq_chat_tool_call",
            rec(
                "groq",
                ck,
                "POST",
                "api.groq.com",
                path,
                req_h,
                {**ask, "tools": [WEATHER_TOOL], "tool_choice": "auto"},
                200,
                hdrs,
                body=body,
            ),
        )
    )

    def c(delta: dict[str, Any], finish: str | None = None, **kw: Any) -> dict[str, Any]:
        return {
            "id": "chatcmpl-5e2",
            "object": "chat.completion.chunk",
            "created": 1780394400,
            "model": "llama-3.3-70b-versatile",
            "system_fingerprint": "fp_3f3b593e33",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **kw,
        }

    items: list[tuple[str | None, Any]] = [
        (None, c({"role": "assistant", "content": ""}, x_groq={"id": "req_01jmefve36eajb6c1x6k8ppv5m"})),
        (None, c({"content": "Sunny and"})),
        (None, c({}, "length", x_groq={"id": "req_01jmefve36eajb6c1x6k8ppv5m", "usage": usage})),
        (None, "[DONE]"),
    ]
    out.append(
        Variant(
            "groq_stream_length_x_groq_usage",
            rec(
                "groq",
                ["chat_stream", "stream", "endpoint:chat"],
                "POST",
                "api.groq.com",
                path,
                req_h,
                {**ask, "stream": True, "max_tokens": 3},
                200,
                {**hdrs, "content-type": "text/event-stream"},
                **sse(items),
            ),
        )
    )
    return out
