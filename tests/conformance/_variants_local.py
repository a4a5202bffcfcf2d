"""Synthetic Hugging Face (TGI generate, Messages API) and Ollama recordings (see ``_variants``)."""

from __future__ import annotations

from typing import Any

from ._variant_wire import DATE, WEATHER_TOOL, Variant, rec, sse


def _hf_variants() -> list[Variant]:
    hdrs = {
        "content-type": "application/json",
        "date": DATE,
        "x-compute-type": "cache",
        "x-request-id": "XMk4gR6bC7lYiuNKaa7dP",
        "x-sha": "e7da7f221d5bf496a48136c0cd264e630fe9fcc8",
    }
    sh = {**hdrs, "content-type": "text/event-stream"}
    req_h = {
        "authorization": "<redacted>",
        "content-type": "application/json",
        "user-agent": "huggingface_hub/0.30.2; python/3.12.9",
    }
    host, path = "router.huggingface.co", "/hf-inference/models/HuggingFaceH4/zephyr-7b-beta"
    cpath = path + "/v1/chat/completions"

    def hf(name: str, kinds: list[str], req: Any, status: int, headers: dict[str, Any], **response: Any) -> Variant:
        route = cpath if "endpoint:chat" in kinds else path
        return Variant(name, rec("huggingface", kinds, "POST", host, route, req_h, req, status, headers, **response))

    # TGI generate: validation error (JSON and text/plain), loading, overloaded
    gk = ["non_stream", "endpoint:tgi_generate"]
    gen = {"inputs": "The sky is", "parameters": {"max_new_tokens": 5000, "details": True}}
    verr = {
        "error": (
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4 `inputs` "
            "tokens and 5000 `max_new_tokens`"
        ),
        "error_type": "validation",
    }
    th = {**hdrs, "content-type": "text/plain; charset=utf-8"}
    plain = "Failed to deserialize the JSON body into the target type: missing field `inputs` at line 1 column 28"
    loading = {"error": "Model HuggingFaceH4/zephyr-7b-beta is currently loading", "estimated_time": 20.0}
    overloaded = {"error": "Model is overloaded", "error_type": "overloaded"}

    # TGI generate stream: " blue", then what the variant ends with
    def tok(i: int, text: str, special: bool = False) -> dict[str, Any]:
        return {
            "index": i,
            "token": {"id": 100 + i, "text": text, "logprob": -0.5, "special": special},
            "generated_text": None,
            "details": None,
        }

    stream_gen = {"inputs": "The sky is", "parameters": {"max_new_tokens": 3, "details": True}, "stream": True}

    def gen_stream(name: str, *rest: dict[str, Any]) -> Variant:
        events: list[tuple[str | None, Any]] = [(None, e) for e in (tok(1, " blue"), *rest)]
        return hf(name, ["stream", "endpoint:tgi_generate"], stream_gen, 200, sh, **sse(events, space=False))

    def last(i: int, text: str, generated: str, finish: str, special: bool = False) -> dict[str, Any]:
        details = {"finish_reason": finish, "generated_tokens": i, "seed": None}
        return {**tok(i, text, special), "generated_text": generated, "details": details}

    oom = {"error": "Request failed during generation: Server error: CUDA out of memory", "error_type": "generation"}
    # Messages API: tool call (TGI sends arguments as an object and a numeric id), overloaded, stream
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

    def c(delta: dict[str, Any], finish: str | None = None) -> tuple[str | None, Any]:
        return (
            None,
            {
                "object": "chat.completion.chunk",
                "id": "",
                "created": 1780394400,
                "model": "HuggingFaceH4/zephyr-7b-beta",
                "system_fingerprint": "3.2.1-native",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                "usage": None,
            },
        )

    items = [
        c({"role": "assistant", "content": "Blue"}),
        c({"role": "assistant", "content": " sky"}, "eos_token"),
        (None, "[DONE]"),
    ]
    sk = ["chat_stream", "stream", "endpoint:chat"]
    fk = ["non_stream", "endpoint:embeddings"]
    token_level = [[[0.5, 1.0, -1.0], [1.5, 0.0, 1.0]], [[0.0, 2.0, 4.0]]]  # 2 inputs x tokens x 3 dims
    return [
        hf("hf_422_validation", gk, gen, 422, hdrs, body=verr),
        hf("hf_422_text_plain", gk, {"input": "x"}, 422, th, body_text=plain),
        hf("hf_503_loading", gk, gen, 503, hdrs, body=loading),
        hf("hf_429_overloaded", gk, gen, 429, hdrs, body=overloaded),
        gen_stream("hf_generate_stream_length", tok(2, " and"), last(3, " today", " blue and today", "length")),
        gen_stream("hf_generate_stream_error_event", oom),
        gen_stream("hf_generate_stream_eos", last(2, "</s>", " blue", "eos_token", special=True)),
        hf("hf_chat_tool_call_object_args", ck, ask, 200, hdrs, body=body),
        hf("hf_chat_503_overloaded", ck, ask, 503, hdrs, body=overloaded),
        hf("hf_chat_stream_eos_token", sk, {**ask, "stream": True}, 200, sh, **sse(items, space=False)),
        # feature extraction answers in three shapes: one flat vector, a vector per input, per-token vectors
        hf("hf_feature_extraction_flat", fk, {"inputs": "Today is a sunny day"}, 200, hdrs, body=[0.25, -0.5, 1.0]),
        hf("hf_feature_extraction_batch", fk, {"inputs": ["a", "b"]}, 200, hdrs, body=[[0.1, 0.2], [0.3, 0.4]]),
        hf("hf_feature_extraction_tokens", fk, {"inputs": ["hi there"]}, 200, hdrs, body=token_level),
    ]


def _ollama_variants() -> list[Variant]:
    jh = {"content-type": "application/json; charset=utf-8", "date": DATE}
    nh = {"content-type": "application/x-ndjson", "date": DATE}
    req_h = {"content-type": "application/json", "user-agent": "ollama-python/0.5.1 (x86_64 linux) Python/3.12.9"}

    def ollama(
        name: str,
        kinds: list[str],
        req: Any,
        status: int,
        headers: dict[str, Any],
        *,
        path: str = "/api/chat",
        **resp: Any,
    ) -> Variant:
        return Variant(name, rec("ollama", kinds, "POST", "127.0.0.1:11434", path, req_h, req, status, headers, **resp))

    ck = ["chat_non_stream", "non_stream", "endpoint:chat"]
    sk = ["chat_stream", "stream", "endpoint:chat"]
    ask = {"model": "llama9", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
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

    def said(content: str, **extra: Any) -> dict[str, Any]:
        return {**base, "message": {"role": "assistant", "content": content, **extra}}

    treq = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "stream": True,
        "options": {"temperature": 0, "num_ctx": 4096},
        "keep_alive": "5m",
    }
    tool_lines = [{**said("", tool_calls=[call]), "done": False}, {**said(""), **done}]
    glines = [
        {**base, "response": "Once", "done": False},
        {**base, "response": " upon", "done": False},
        {**base, "response": "", **done, "done_reason": "length", "context": [1, 2, 3]},
    ]
    greq = {"model": "llama3.2", "prompt": "Tell a story", "options": {"num_predict": 2}}
    elines = [
        {**said("Hel"), "done": False},
        {"error": "an error was encountered while running the model: unexpected EOF"},
    ]
    think = {**said("Paris.", thinking="The capital of France is Paris."), **done, "done_reason": "length"}
    old = {**said("Hi!"), "done": True, "total_duration": 1, "eval_count": 3}
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
        "tools": [WEATHER_TOOL],
    }
    emb = {
        "model": "all-minilm",
        "embeddings": [[0.01, -0.02], [0.03, 0.04]],
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": 8,
    }
    ereq = {"model": "all-minilm", "input": ["a", "b"], "truncate": True}
    tk = ["chat_stream", "stream", "tools", "endpoint:chat"]
    gk = ["stream", "endpoint:completions_legacy"]
    ek = ["non_stream", "endpoint:embeddings"]
    no_model = {"error": 'model "llama9" not found, try pulling it first'}
    no_tools = {"error": "registry.ollama.ai/library/gemma:2b does not support tools"}
    killed = "llama runner process has terminated: signal: killed"
    th = {**jh, "content-type": "text/plain; charset=utf-8"}
    llama, qwen = {**ask, "model": "llama3.2"}, {**ask, "model": "qwen3", "think": True, "options": {"num_predict": 8}}
    pixel = {**said("A red pixel."), "model": "llava", **done}
    return [
        ollama("ollama_404_model_not_found", ck, ask, 404, jh, body=no_model),
        ollama("ollama_400_no_tools", ck, {**ask, "model": "gemma:2b"}, 400, jh, body=no_tools),
        ollama("ollama_500_runner", ck, llama, 500, th, body_text=killed),
        ollama("ollama_stream_tool_call", tk, treq, 200, nh, ndjson=tool_lines),
        ollama("ollama_generate_stream_length", gk, greq, 200, nh, path="/api/generate", ndjson=glines),
        ollama("ollama_stream_error_line", sk, {**llama, "stream": True}, 200, nh, ndjson=elines),
        ollama("ollama_chat_thinking_length", ck, qwen, 200, jh, body=think),
        ollama("ollama_chat_no_done_reason", ck, llama, 200, jh, body=old),
        ollama("ollama_chat_images_tool_results_request", ck, hist, 200, jh, body=pixel),
        ollama("ollama_embed", ek, ereq, 200, jh, path="/api/embed", body=emb),
    ]
