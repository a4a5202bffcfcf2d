"""Synthetic Gemini API and Vertex AI generateContent recordings (see ``_variants``)."""

from __future__ import annotations

from typing import Any

from ._variant_wire import DATE, Variant, rec, sse

_G_HDRS = {
    "content-type": "application/json; charset=UTF-8",
    "date": DATE,
    "server": "scaffolding on HTTPServer2",
    "server-timing": "gfet4t7; dur=812",
    "vary": ["Origin", "X-Origin", "Referer"],
    "x-content-type-options": "nosniff",
}
_G_REQ = {
    "content-type": "application/json",
    "user-agent": "google-genai-sdk/1.32.0 gl-python/3.12.9",
    "x-goog-api-key": "<redacted>",
}


def _g(
    name: str,
    body: Any,
    status: int,
    response: dict[str, Any],
    *,
    method: str = "generateContent",
    headers: dict[str, Any] | None = None,
    model: str = "gemini-2.5-flash",
    skips: dict[str, str] | None = None,
    query: str = "",
) -> Variant:
    stream = method == "streamGenerateContent"
    kinds = ["chat_stream", "stream", "endpoint:chat"] if stream else ["chat_non_stream", "non_stream", "endpoint:chat"]
    if method.endswith("mbedContents") or method == "embedContent":
        kinds = ["non_stream", "endpoint:embeddings"]
    hdrs = headers if headers is not None else ({**_G_HDRS, "content-type": "text/event-stream"} if stream else _G_HDRS)
    path = f"/v1beta/models/{model}:{method}" + (query or ("?alt=sse" if stream else ""))
    return Variant(
        name,
        rec("gemini", kinds, "POST", "generativelanguage.googleapis.com", path, _G_REQ, body, status, hdrs, **response),
        skips or {},
    )


def _usage_md(**kw: Any) -> dict[str, Any]:
    return {
        "promptTokenCount": 8,
        "candidatesTokenCount": 12,
        "totalTokenCount": 20,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
        **kw,
    }


def _gemini_variants() -> list[Variant]:
    out = []
    ask = {"contents": [{"parts": [{"text": "Weather in Paris?"}], "role": "user"}]}
    rid = {"modelVersion": "gemini-2.5-flash", "responseId": "FjXpaO-TBoC4nvgPk77D6Ak"}
    ratings = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]
    out.append(
        _g(
            "gemini_prompt_blocked",
            ask,
            200,
            {
                "body": {
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
                    "usageMetadata": {
                        "promptTokenCount": 8,
                        "totalTokenCount": 8,
                        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
                    },
                    **rid,
                }
            },
        )
    )
    out.append(
        _g(
            "gemini_candidate_safety_no_content",
            ask,
            200,
            {
                "body": {
                    "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}],
                    "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
                    **rid,
                }
            },
        )
    )
    fc = [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB0e2Kb7z1"},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
    ]
    tools = {
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Get the current weather",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city": {"type": "STRING"}},
                            "required": ["city"],
                        },
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    }
    out.append(
        _g(
            "gemini_function_calls",
            {**ask, **tools},
            200,
            {
                "body": {
                    "candidates": [{"content": {"parts": fc, "role": "model"}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": _usage_md(thoughtsTokenCount=40, totalTokenCount=60),
                    **rid,
                }
            },
        )
    )
    two = [
        {
            "content": {"parts": [{"text": "Sunny."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
            "avgLogprobs": -0.2,
        },
        {
            "content": {"parts": [{"text": "Cloudy."}], "role": "model"},
            "finishReason": "STOP",
            "index": 1,
            "avgLogprobs": -0.4,
        },
    ]
    out.append(
        _g(
            "gemini_two_candidates",
            {**ask, "generationConfig": {"candidateCount": 2, "temperature": 0.9}},
            200,
            {
                "body": {
                    "candidates": two,
                    "usageMetadata": _usage_md(candidatesTokenCount=4, totalTokenCount=12),
                    **rid,
                }
            },
        )
    )
    thought = [{"text": "**Considering the weather**\nThe user asks…", "thought": True}, {"text": "It is sunny."}]
    out.append(
        _g(
            "gemini_thought_parts",
            {**ask, "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 512}}},
            200,
            {
                "body": {
                    "candidates": [
                        {"content": {"parts": thought, "role": "model"}, "finishReason": "STOP", "index": 0}
                    ],
                    "usageMetadata": _usage_md(thoughtsTokenCount=30, totalTokenCount=50),
                    **rid,
                }
            },
        )
    )
    out.append(
        _g(
            "gemini_max_tokens_no_parts",
            {**ask, "generationConfig": {"maxOutputTokens": 16}},
            200,
            {
                "body": {
                    "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 24, "thoughtsTokenCount": 16},
                    **rid,
                }
            },
        )
    )
    out.append(
        _g(
            "gemini_tool_use_prompt_tokens_cached",
            {
                **ask,
                "systemInstruction": {"parts": [{"text": "Be terse."}]},
                "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
            },
            200,
            {
                "body": {
                    "candidates": [
                        {"content": {"parts": [{"text": "Sunny"}], "role": "model"}, "finishReason": "STOP", "index": 0}
                    ],
                    "usageMetadata": _usage_md(
                        toolUsePromptTokenCount=5, cachedContentTokenCount=4, totalTokenCount=25
                    ),
                    **rid,
                }
            },
        )
    )
    chunks: list[tuple[str | None, Any]] = [
        (
            None,
            {
                "candidates": [{"content": {"parts": [{"text": "It is"}], "role": "model"}, "index": 0}],
                "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
                **rid,
            },
        ),
        (
            None,
            {
                "candidates": [
                    {"content": {"parts": [{"text": " sunny."}], "role": "model"}, "finishReason": "STOP", "index": 0}
                ],
                "usageMetadata": _usage_md(candidatesTokenCount=3, totalTokenCount=11),
                **rid,
            },
        ),
    ]
    out.append(_g("gemini_stream_text", ask, 200, sse(chunks), method="streamGenerateContent"))
    chunks = [
        (
            None,
            {
                "candidates": [{"content": {"parts": fc[:1], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": _usage_md(),
                **rid,
            },
        )
    ]
    out.append(_g("gemini_stream_function_call", {**ask, **tools}, 200, sse(chunks), method="streamGenerateContent"))
    # errors
    e429 = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
            ],
        }
    }
    out.append(_g("gemini_429_retry_info", ask, 429, {"body": e429}))
    out.append(
        _g(
            "gemini_503_overloaded",
            ask,
            503,
            {
                "body": {
                    "error": {
                        "code": 503,
                        "message": "The model is overloaded. Please try again later.",
                        "status": "UNAVAILABLE",
                    }
                }
            },
        )
    )
    bad_key = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        }
    }
    out.append(_g("gemini_400_api_key_invalid", ask, 400, {"body": bad_key}))
    html = (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not "
        "Found)!!1</title>\n  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL "
        "<code>/v1beta/models/gemini-9:generateContent</code> was not found on this server.  <ins>That\u2019s all "
        "we know.</ins>\n"
    )
    out.append(
        _g(
            "gemini_404_html",
            ask,
            404,
            {"body_text": html},
            model="gemini-9",
            headers={"content-type": "text/html; charset=UTF-8", "date": DATE, "server": "ESF"},
        )
    )
    # request: a history with a functionCall carrying a thoughtSignature and its functionResponse
    hist = {
        "contents": [
            ask["contents"][0],
            {"parts": fc[:1], "role": "model"},
            {"parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}}], "role": "user"},
        ],
        **tools,
    }
    out.append(
        _g(
            "gemini_request_thought_signature_history",
            hist,
            200,
            {
                "body": {
                    "candidates": [
                        {"content": {"parts": [{"text": "18C."}], "role": "model"}, "finishReason": "STOP", "index": 0}
                    ],
                    "usageMetadata": _usage_md(),
                    **rid,
                }
            },
            skips={"request": "thoughtSignature parts are not expressible as neutral messages"},
        )
    )
    # embedContent (single) and the key as a query parameter (older REST clients)
    out.append(
        _g(
            "gemini_embed_content_single",
            {"content": {"parts": [{"text": "hello"}]}, "taskType": "RETRIEVAL_QUERY"},
            200,
            {"body": {"embedding": {"values": [0.01, -0.02, 0.03]}}},
            method="embedContent",
            model="gemini-embedding-001",
        )
    )
    # Vertex AI publisher route, OAuth
    vh = {
        "authorization": "<redacted>",
        "content-type": "application/json",
        "user-agent": "google-genai-sdk/1.32.0 gl-python/3.10.18",
    }
    vpath = (
        "/v1beta1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    vb = {
        "candidates": [{"content": {"role": "model", "parts": fc}, "finishReason": "STOP", "avgLogprobs": -0.1}],
        "usageMetadata": {**_usage_md(totalTokenCount=20), "trafficType": "ON_DEMAND"},
        "modelVersion": "gemini-2.5-flash",
        "createTime": "2026-06-02T10:00:00.000000Z",
        "responseId": "FjXpaO",
    }
    out.append(
        Variant(
            "vertex_function_calls",
            rec(
                "vertexai",
                ["chat_non_stream", "non_stream", "endpoint:chat"],
                "POST",
                "us-central1-aiplatform.googleapis.com",
                vpath,
                vh,
                {**ask, **tools},
                200,
                _G_HDRS,
                body=vb,
            ),
        )
    )
    return out
