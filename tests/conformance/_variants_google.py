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


def _cand(parts: list[dict[str, Any]], finish: str | None = "STOP", index: int = 0, **extra: Any) -> dict[str, Any]:
    """A model candidate (``finish`` None: a stream chunk before the last, without ``finishReason``)."""
    done = {"finishReason": finish} if finish else {}
    return {"content": {"parts": parts, "role": "model"}, **done, "index": index, **extra}


def _error(code: int, message: str, status: str, *details: dict[str, Any]) -> dict[str, Any]:
    """The response of a Google error envelope (``details`` only when given)."""
    more = {"details": list(details)} if details else {}
    return {"body": {"error": {"code": code, "message": message, "status": status, **more}}}


def _gemini_variants() -> list[Variant]:
    ask = {"contents": [{"parts": [{"text": "Weather in Paris?"}], "role": "user"}]}
    rid = {"modelVersion": "gemini-2.5-flash", "responseId": "FjXpaO-TBoC4nvgPk77D6Ak"}

    def answer(candidates: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
        return {"candidates": candidates, "usageMetadata": usage, **rid}

    def generated(name: str, req: Any, cands: list[dict[str, Any]], usage: dict[str, Any], **kw: Any) -> Variant:
        return _g(name, req, 200, {"body": answer(cands, usage)}, **kw)

    def streamed(name: str, req: Any, *chunks: dict[str, Any]) -> Variant:
        return _g(name, req, 200, sse([(None, c) for c in chunks]), method="streamGenerateContent")

    out = []
    ratings = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]
    prompt_only = {"promptTokenCount": 8, "totalTokenCount": 8}
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
        "usageMetadata": {**prompt_only, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]},
        **rid,
    }
    out.append(_g("gemini_prompt_blocked", ask, 200, {"body": blocked}))
    unsafe = [{"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}]
    out.append(generated("gemini_candidate_safety_no_content", ask, unsafe, prompt_only))
    fc: list[dict[str, Any]] = [
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
    usage = _usage_md(thoughtsTokenCount=40, totalTokenCount=60)
    out.append(generated("gemini_function_calls", {**ask, **tools}, [_cand(fc)], usage))
    two = [_cand([{"text": "Sunny."}], avgLogprobs=-0.2), _cand([{"text": "Cloudy."}], index=1, avgLogprobs=-0.4)]
    req = {**ask, "generationConfig": {"candidateCount": 2, "temperature": 0.9}}
    out.append(generated("gemini_two_candidates", req, two, _usage_md(candidatesTokenCount=4, totalTokenCount=12)))
    thought: list[dict[str, Any]] = [
        {"text": "**Considering the weather**\nThe user asks…", "thought": True},
        {"text": "It is sunny."},
    ]
    req = {**ask, "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 512}}}
    usage = _usage_md(thoughtsTokenCount=30, totalTokenCount=50)
    out.append(generated("gemini_thought_parts", req, [_cand(thought)], usage))
    empty = [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}]
    usage = {"promptTokenCount": 8, "totalTokenCount": 24, "thoughtsTokenCount": 16}
    req = {**ask, "generationConfig": {"maxOutputTokens": 16}}
    out.append(generated("gemini_max_tokens_no_parts", req, empty, usage))
    req = {
        **ask,
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
    }
    usage = _usage_md(toolUsePromptTokenCount=5, cachedContentTokenCount=4, totalTokenCount=25)
    out.append(generated("gemini_tool_use_prompt_tokens_cached", req, [_cand([{"text": "Sunny"}])], usage))
    first = answer([_cand([{"text": "It is"}], None)], prompt_only)
    last = answer([_cand([{"text": " sunny."}])], _usage_md(candidatesTokenCount=3, totalTokenCount=11))
    out.append(streamed("gemini_stream_text", ask, first, last))
    out.append(streamed("gemini_stream_function_call", {**ask, **tools}, answer([_cand(fc[:1])], _usage_md())))
    # errors
    quota = {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            }
        ],
    }
    help_link = {"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}
    help_ = {"@type": "type.googleapis.com/google.rpc.Help", "links": [help_link]}
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
    exhausted = "You exceeded your current quota, please check your plan and billing details."
    key_info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    bad_key = _error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", key_info)
    html = (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not "
        "Found)!!1</title>\n  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL "
        "<code>/v1beta/models/gemini-9:generateContent</code> was not found on this server.  <ins>That\u2019s all "
        "we know.</ins>\n"
    )
    overloaded = _error(503, "The model is overloaded. Please try again later.", "UNAVAILABLE")
    hh = {"content-type": "text/html; charset=UTF-8", "date": DATE, "server": "ESF"}
    out += [
        _g("gemini_429_retry_info", ask, 429, _error(429, exhausted, "RESOURCE_EXHAUSTED", quota, help_, retry)),
        _g("gemini_503_overloaded", ask, 503, overloaded),
        # a newer Google API's error body: a string "code" and no "status"
        _g(
            "gemini_503_string_code",
            ask,
            503,
            {"body": {"error": {"message": "high demand", "code": "service_unavailable"}}},
        ),
        _g("gemini_400_api_key_invalid", ask, 400, bad_key),
        _g("gemini_404_html", ask, 404, {"body_text": html}, model="gemini-9", headers=hh),
    ]
    # request: a history with a functionCall carrying a thoughtSignature and its functionResponse
    hist = {
        "contents": [
            ask["contents"][0],
            {"parts": fc[:1], "role": "model"},
            {"parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}}], "role": "user"},
        ],
        **tools,
    }
    name = "gemini_request_thought_signature_history"  # not neutral: kept verbatim in extra, exact round trip
    out.append(generated(name, hist, [_cand([{"text": "18C."}])], _usage_md()))
    # embedContent (single) and the key as a query parameter (older REST clients)
    req = {"content": {"parts": [{"text": "hello"}]}, "taskType": "RETRIEVAL_QUERY"}
    emb = {"body": {"embedding": {"values": [0.01, -0.02, 0.03]}}}
    out.append(_g("gemini_embed_content_single", req, 200, emb, method="embedContent", model="gemini-embedding-001"))
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
