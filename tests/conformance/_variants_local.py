"""Synthetic Hugging Face (TGI generate, Messages API) and Ollama recordings (see ``_variants``)."""

from __future__ import annotations

from typing import Any

from ._variant_wire import DATE, WEATHER_TOOL, Variant, rec, sse


def _hf_variants() -> list[Variant]:
    out = []
    hdrs = {
        "content-type": "application/json",
        "date": DATE,
        "x-compute-type": "cache",
        "x-request-id": "XMk4gR6bC7lYiuNKaa7dP",
        "x-sha": "e7da7f221d5bf496a48136c0cd264e630fe9fcc8",
    }
    req_h = {
        "authorization": "<redacted>",
        "content-type": "application/json",
        "user-agent": "huggingface_hub/0.30.2; python/3.12.9",
    }
    host, path = "router.huggingface.co", "/hf-inference/models/HuggingFaceH4/zephyr-7b-beta"
    gk = ["non_stream", "endpoint:tgi_generate"]
    gen = {"inputs": "The sky is", "parameters": {"max_new_tokens": 5000, "details": True}}
    verr = {
        "error": (
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4 `inputs` "
            "tokens and 5000 `max_new_tokens`"
        ),
        "error_type": "validation",
    }
    out.append(
        Variant("hf_422_validation", rec("huggingface", gk, "POST", host, path, req_h, gen, 422, hdrs, body=verr))
    )
    plain = "Failed to deserialize the JSON body into the target type: missing field `inputs` at line 1 column 28"
    out.append(
        Variant(
            "hf_422_text_plain",
            rec(
                "huggingface",
                gk,
                "POST",
                host,
                path,
                req_h,
                {"input": "x"},
                422,
                {**hdrs, "content-type": "text/plain; charset=utf-8"},
                body_text=plain,
            ),
        )
    )
    out.append(
        Variant(
            "hf_503_loading",
            rec(
                "huggingface",
                gk,
                "POST",
                host,
                path,
                req_h,
                gen,
                503,
                hdrs,
                body={"error": "Model HuggingFaceH4/zephyr-7b-beta is currently loading", "estimated_time": 20.0},
            ),
        )
    )
    out.append(
        Variant(
            "hf_429_overloaded",
            rec(
                "huggingface",
                gk,
                "POST",
                host,
                path,
                req_h,
                gen,
                429,
                hdrs,
                body={"error": "Model is overloaded", "error_type": "overloaded"},
            ),
        )
    )
    sh = {**hdrs, "content-type": "text/event-stream"}

    def tok(i: int, text: str, special: bool = False) -> dict[str, Any]:
        return {
            "index": i,
            "token": {"id": 100 + i, "text": text, "logprob": -0.5, "special": special},
            "generated_text": None,
            "details": None,
        }

    stream_gen = {"inputs": "The sky is", "parameters": {"max_new_tokens": 3, "details": True}, "stream": True}
    final = {
        **tok(3, " today"),
        "generated_text": " blue and today",
        "details": {"finish_reason": "length", "generated_tokens": 3, "seed": None},
    }
    out.append(
        Variant(
            "hf_generate_stream_length",
            rec(
                "huggingface",
                ["stream", "endpoint:tgi_generate"],
                "POST",
                host,
                path,
                req_h,
                stream_gen,
                200,
                sh,
                **sse([(None, tok(1, " blue")), (None, tok(2, " and")), (None, final)], space=False),
            ),
        )
    )
    oom = {"error": "Request failed during generation: Server error: CUDA out of memory", "error_type": "generation"}
    out.append(
        Variant(
            "hf_generate_stream_error_event",
            rec(
                "huggingface",
                ["stream", "endpoint:tgi_generate"],
                "POST",
                host,
                path,
                req_h,
                stream_gen,
                200,
                sh,
                **sse([(None, tok(1, " blue")), (None, oom)], space=False),
            ),
        )
    )
    eos = {
        **tok(2, "</s>", special=True),
        "generated_text": " blue",
        "details": {"finish_reason": "eos_token", "generated_tokens": 2, "seed": None},
    }
    out.append(
        Variant(
            "hf_generate_stream_eos",
            rec(
                "huggingface",
                ["stream", "endpoint:tgi_generate"],
                "POST",
                host,
                path,
                req_h,
                stream_gen,
                200,
                sh,
                **sse([(None, tok(1, " blue")), (None, eos)], space=False),
            ),
        )
    )
    # Messages API: tool call (TGI sends arguments as an object and a numeric id), overloaded
    cpath = path + "/v1/chat/completions"
    ck = ["chat_non_stream", "non_stream", "tools", "endpoint:chat"]
    tc = {
        "id": "0",
        "type": "function",
        "function": {"description": None, "name": "get_weather", "arguments": {"city": "Paris"}},
    }
    body = {
        "object": "chat.completion",
        "id": "",
        "created": 1780394400,
        "model": "HuggingFaceH4/zephyr-7b-beta",
        "system_fingerprint": "3.2.1-native",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "tool_calls": [tc]},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 200, "completion_tokens": 20, "total_tokens": 220},
    }
    ask = {
        "model": "HuggingFaceH4/zephyr-7b-beta",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL],
    }
    out.append(
        Variant(
            "hf_chat_tool_call_object_args",
            rec("huggingface", ck, "POST", host, cpath, req_h, ask, 200, hdrs, body=body),
        )
    )
    out.append(
        Variant(
            "hf_chat_503_overloaded",
            rec(
                "huggingface",
                ck,
                "POST",
                host,
                cpath,
                req_h,
                ask,
                503,
                hdrs,
                body={"error": "Model is overloaded", "error_type": "overloaded"},
            ),
        )
    )

    def c(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "object": "chat.completion.chunk",
            "id": "",
            "created": 1780394400,
            "model": "HuggingFaceH4/zephyr-7b-beta",
            "system_fingerprint": "3.2.1-native",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }

    items: list[tuple[str | None, Any]] = [
        (None, c({"role": "assistant", "content": "Blue"})),
        (None, c({"role": "assistant", "content": " sky"}, "eos_token")),
        (None, "[DONE]"),
    ]
    out.append(
        Variant(
            "hf_chat_stream_eos_token",
            rec(
                "huggingface",
                ["chat_stream", "stream", "endpoint:chat"],
                "POST",
                host,
                cpath,
                req_h,
                {**ask, "stream": True},
                200,
                sh,
                **sse(items, space=False),
            ),
        )
    )
    return out


def _ollama_variants() -> list[Variant]:
    out = []
    jh = {"content-type": "application/json; charset=utf-8", "date": DATE}
    nh = {"content-type": "application/x-ndjson", "date": DATE}
    req_h = {"content-type": "application/json", "user-agent": "ollama-python/0.5.1 (x86_64 linux) Python/3.12.9"}
    host = "127.0.0.1:11434"
    ck = ["chat_non_stream", "non_stream", "endpoint:chat"]
    ask = {"model": "llama9", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
    out.append(
        Variant(
            "ollama_404_model_not_found",
            rec(
                "ollama",
                ck,
                "POST",
                host,
                "/api/chat",
                req_h,
                ask,
                404,
                jh,
                body={"error": 'model "llama9" not found, try pulling it first'},
            ),
        )
    )
    out.append(
        Variant(
            "ollama_400_no_tools",
            rec(
                "ollama",
                ck,
                "POST",
                host,
                "/api/chat",
                req_h,
                {**ask, "model": "gemma:2b"},
                400,
                jh,
                body={"error": "registry.ollama.ai/library/gemma:2b does not support tools"},
            ),
        )
    )
    out.append(
        Variant(
            "ollama_500_runner",
            rec(
                "ollama",
                ck,
                "POST",
                host,
                "/api/chat",
                req_h,
                {**ask, "model": "llama3.2"},
                500,
                {**jh, "content-type": "text/plain; charset=utf-8"},
                body_text="llama runner process has terminated: signal: killed",
            ),
        )
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    call = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    base = {"model": "llama3.2", "created_at": "2026-06-02T10:00:00.123Z"}
    done = {
        "done": True,
        "done_reason": "stop",
        "total_duration": 912345678,
        "load_duration": 12345678,
        "prompt_eval_count": 160,
        "prompt_eval_duration": 45678901,
        "eval_count": 18,
        "eval_duration": 345678901,
    }
    lines = [
        {**base, "message": {"role": "assistant", "content": "", "tool_calls": [call]}, "done": False},
        {**base, "message": {"role": "assistant", "content": ""}, **done},
    ]
    treq = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": tools,
        "stream": True,
        "options": {"temperature": 0, "num_ctx": 4096},
        "keep_alive": "5m",
    }
    out.append(
        Variant(
            "ollama_stream_tool_call",
            rec(
                "ollama",
                ["chat_stream", "stream", "tools", "endpoint:chat"],
                "POST",
                host,
                "/api/chat",
                req_h,
                treq,
                200,
                nh,
                ndjson=lines,
            ),
        )
    )
    glines = [
        {**base, "response": "Once", "done": False},
        {**base, "response": " upon", "done": False},
        {**base, "response": "", **done, "done_reason": "length", "context": [1, 2, 3]},
    ]
    out.append(
        Variant(
            "ollama_generate_stream_length",
            rec(
                "ollama",
                ["stream", "endpoint:completions_legacy"],
                "POST",
                host,
                "/api/generate",
                req_h,
                {"model": "llama3.2", "prompt": "Tell a story", "options": {"num_predict": 2}},
                200,
                nh,
                ndjson=glines,
            ),
        )
    )
    elines = [
        {**base, "message": {"role": "assistant", "content": "Hel"}, "done": False},
        {"error": "an error was encountered while running the model: unexpected EOF"},
    ]
    out.append(
        Variant(
            "ollama_stream_error_line",
            rec(
                "ollama",
                ["chat_stream", "stream", "endpoint:chat"],
                "POST",
                host,
                "/api/chat",
                req_h,
                {**ask, "model": "llama3.2", "stream": True},
                200,
                nh,
                ndjson=elines,
            ),
        )
    )
    think = {
        **base,
        "message": {"role": "assistant", "content": "Paris.", "thinking": "The capital of France is Paris."},
        **done,
        "done_reason": "length",
    }
    out.append(
        Variant(
            "ollama_chat_thinking_length",
            rec(
                "ollama",
                ck,
                "POST",
                host,
                "/api/chat",
                req_h,
                {**ask, "model": "qwen3", "think": True, "options": {"num_predict": 8}},
                200,
                jh,
                body=think,
            ),
        )
    )
    old = {
        **base,
        "message": {"role": "assistant", "content": "Hi!"},
        "done": True,
        "total_duration": 1,
        "eval_count": 3,
    }
    out.append(
        Variant(
            "ollama_chat_no_done_reason",
            rec("ollama", ck, "POST", host, "/api/chat", req_h, {**ask, "model": "llama3.2"}, 200, jh, body=old),
        )
    )
    hist = {
        "model": "llava",
        "stream": False,
        "messages": [
            {
                "role": "user",
                "content": "What is in this picture?",
                "images": [
                    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
                ],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [call, {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}],
            },
            {"role": "tool", "content": "18C"},
            {"role": "tool", "content": "25C"},
        ],
        "tools": tools,
    }
    out.append(
        Variant(
            "ollama_chat_images_tool_results_request",
            rec(
                "ollama",
                ck,
                "POST",
                host,
                "/api/chat",
                req_h,
                hist,
                200,
                jh,
                body={**base, "model": "llava", "message": {"role": "assistant", "content": "A red pixel."}, **done},
            ),
        )
    )
    emb = {
        "model": "all-minilm",
        "embeddings": [[0.01, -0.02], [0.03, 0.04]],
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": 8,
    }
    out.append(
        Variant(
            "ollama_embed",
            rec(
                "ollama",
                ["non_stream", "endpoint:embeddings"],
                "POST",
                host,
                "/api/embed",
                req_h,
                {"model": "all-minilm", "input": ["a", "b"], "truncate": True},
                200,
                jh,
                body=emb,
            ),
        )
    )
    return out
