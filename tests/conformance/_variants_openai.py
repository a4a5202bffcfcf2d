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


def _openai_variants() -> list[Variant]:
    out: list[Variant] = []
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
    # 200 with a refusal: content null, the text in "refusal"
    out.append(
        _oa(
            "openai_chat_refusal",
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "How do I pick a lock?"}]},
            200,
            {
                "body": {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": None,
                                "refusal": "I'm sorry, I can't help with that.",
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            },
        )
    )
    # n=2, finish length on choice 0, logprobs
    lp = {
        "content": [{"token": "Hello", "logprob": -0.0012, "bytes": [72, 101, 108, 108, 111], "top_logprobs": []}],
        "refusal": None,
    }
    out.append(
        _oa(
            "openai_chat_n2_length_logprobs",
            {**ask, "n": 2, "max_tokens": 5, "logprobs": True},
            200,
            {
                "body": {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": "Hello there, in Paris",
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": lp,
                            "finish_reason": "length",
                        },
                        {
                            "index": 1,
                            "message": {
                                "role": "assistant",
                                "content": "Hi! Rome is",
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": lp,
                            "finish_reason": "length",
                        },
                    ],
                    "usage": usage,
                }
            },
        )
    )
    # parallel tool calls, content null
    calls = [
        {"id": "call_a1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
    ]
    out.append(
        _oa(
            "openai_chat_parallel_tool_calls",
            {**ask, "tools": [WEATHER_TOOL], "tool_choice": "auto"},
            200,
            {
                "body": {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": None,
                                "tool_calls": calls,
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": "tool_calls",
                        }
                    ],
                    "usage": usage,
                }
            },
        )
    )
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
    out.append(
        _oa(
            "openai_chat_tool_loop_request",
            loop,
            200,
            {
                "body": {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": "It is 18C and sunny in Paris.",
                                "refusal": None,
                                "annotations": [],
                            },
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            },
        )
    )
    # stream: two parallel tool calls, include_usage, obfuscation
    sk = "chatcmpl-Cx2"
    items: list[tuple[str | None, Any]] = [
        (
            None,
            _chunk(
                sk,
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": None, "refusal": None},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                usage=None,
                obfuscation="Xq",
            ),
        ),
        (
            None,
            _chunk(
                sk,
                [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_a1",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""},
                                }
                            ]
                        },
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                usage=None,
                obfuscation="a",
            ),
        ),
        (
            None,
            _chunk(
                sk,
                [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                usage=None,
            ),
        ),
        (
            None,
            _chunk(
                sk,
                [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ':"Paris"}'}}]},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                usage=None,
            ),
        ),
        (
            None,
            _chunk(
                sk,
                [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 1,
                                    "id": "call_b2",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""},
                                }
                            ]
                        },
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                usage=None,
            ),
        ),
        (
            None,
            _chunk(
                sk,
                [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 1, "function": {"arguments": '{"city":"Rome"}'}}]},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                usage=None,
            ),
        ),
        (
            None,
            _chunk(
                sk,
                [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}],
                usage=None,
                obfuscation="k9",
            ),
        ),
        (None, _chunk(sk, [], usage=usage, obfuscation="Zz3")),
        (None, "[DONE]"),
    ]
    stream_kinds = ("chat_stream", "stream", "tools", "endpoint:chat")
    req = {**ask, "tools": [WEATHER_TOOL], "stream": True, "stream_options": {"include_usage": True}}
    out.append(_oa("openai_stream_parallel_tool_calls", req, 200, sse(items), kinds=stream_kinds, stream=True))
    # stream n=2 interleaved, length
    items = [
        (
            None,
            _chunk(
                "chatcmpl-Cx3",
                [{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}],
            ),
        )
        for i in (0, 1)
    ]
    for word in ("Bon", "jour", " à"):
        for i in (0, 1):
            items.append(
                (
                    None,
                    _chunk(
                        "chatcmpl-Cx3",
                        [
                            {
                                "index": i,
                                "delta": {"content": word if i == 0 else word.upper()},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ],
                    ),
                )
            )
    items += [
        (None, _chunk("chatcmpl-Cx3", [{"index": i, "delta": {}, "logprobs": None, "finish_reason": "length"}]))
        for i in (0, 1)
    ]
    items.append((None, "[DONE]"))
    out.append(
        _oa(
            "openai_stream_n2_length",
            {**ask, "n": 2, "max_tokens": 3, "stream": True},
            200,
            sse(items),
            kinds=("chat_stream", "stream", "endpoint:chat"),
            stream=True,
        )
    )
    # stream with an in-band error after some text (no [DONE])
    items = [
        (
            None,
            _chunk(
                "chatcmpl-Cx4",
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "Par"},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            ),
        ),
        (
            None,
            {
                "error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
    ]
    out.append(
        _oa(
            "openai_stream_inband_error",
            {**ask, "stream": True},
            200,
            sse(items),
            kinds=("chat_stream", "stream", "endpoint:chat"),
            stream=True,
        )
    )
    # stream cut off: no finish_reason, no [DONE]
    items = [
        (
            None,
            _chunk(
                "chatcmpl-Cx5",
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "It is"},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            ),
        )
    ]
    out.append(
        _oa(
            "openai_stream_cut_off",
            {**ask, "stream": True},
            200,
            sse(items),
            kinds=("chat_stream", "stream", "endpoint:chat"),
            stream=True,
        )
    )
    # errors
    rl = {
        **_oa_resp_headers(),
        "retry-after": "20",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20s",
        "x-should-retry": "true",
    }
    out.append(
        _oa(
            "openai_429_rate_limit",
            ask,
            429,
            {
                "body": {
                    "error": {
                        "message": (
                            "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): "
                            "Limit 3, Used "
                            "3, Requested 1. Please try again in 20s."
                        ),
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                }
            },
            headers=rl,
        )
    )
    out.append(
        _oa(
            "openai_401_invalid_key",
            ask,
            401,
            {
                "body": {
                    "error": {
                        "message": (
                            "Incorrect API key provided: sk-proj-********************1234. You can find your API key "
                            "at "
                            "https://platform.openai.com/account/api-keys."
                        ),
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                }
            },
        )
    )
    html = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
        "Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
    )
    out.append(
        _oa(
            "openai_502_html",
            ask,
            502,
            {"body_text": html},
            headers={
                "content-type": "text/html",
                "date": DATE,
                "server": "cloudflare",
                "cf-ray": "a0b61ee66c31e5e2-EWR",
            },
        )
    )
    out.append(
        _oa(
            "openai_400_context_length",
            ask,
            400,
            {
                "body": {
                    "error": {
                        "message": (
                            "This model's maximum context length is 128000 tokens. However, your messages resulted "
                            "in 130512 "
                            "tokens. Please reduce the length of the messages."
                        ),
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                }
            },
        )
    )
    # legacy completions: finish length, logprobs
    out.append(
        _oa(
            "openai_completion_length",
            {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 2, "logprobs": 1},
            200,
            {
                "body": {
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
            },
            path="/v1/completions",
            kinds=("non_stream", "endpoint:completions_legacy"),
        )
    )
    # embeddings as base64

    b64 = base64.b64encode(struct.pack("<4f", 0.1, -0.2, 0.3, 0.4)).decode()
    out.append(
        _oa(
            "openai_embeddings_base64",
            {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64"},
            200,
            {
                "body": {
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": 1, "embedding": b64},
                        {"object": "embedding", "index": 0, "embedding": b64},
                    ],
                    "model": "text-embedding-3-small",
                    "usage": {"prompt_tokens": 2, "total_tokens": 2},
                }
            },
            path="/v1/embeddings",
            kinds=("non_stream", "endpoint:embeddings"),
        )
    )
    # Chat Completions custom tool (GPT-5): the call carries free-form "input" under "custom"
    ctool = {"type": "custom", "custom": {"name": "run_sql", "description": "Run a read-only SQL query"}}
    ccall = {"id": "call_c1", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1;"}}
    out.append(
        _oa(
            "openai_chat_custom_tool_call",
            {"model": "gpt-5-mini", "messages": ask["messages"], "tools": [ctool]},
            200,
            {
                "body": {
                    **base,
                    "model": "gpt-5-mini-2025-08-07",
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": None,
                                "tool_calls": [ccall],
                                "refusal": None,
                                "annotations": [],
                            },
                            "finish_reason": "tool_calls",
                        }
                    ],
                    "usage": usage,
                }
            },
        )
    )
    return out
