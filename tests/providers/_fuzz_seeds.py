"""Hand-written valid bodies that seed the parser fuzz test (``test_fuzz_parsers``) for the backends
without recorded traffic (TEI, KServe/OVMS, OPEA, vLLM extras, llama.cpp native routes, TGI extras, Ollama
management routes), by provider module."""

from __future__ import annotations

from typing import Any

__all__ = ["EXTRA_SEEDS"]

#: hand-written valid bodies for parsers of backends without recordings (module -> bodies)
EXTRA_SEEDS: dict[str, list[Any]] = {
    "tei": [
        [[0.1, 0.2], [0.3, 0.4]],
        [[{"index": 1, "value": 0.5}]],
        [[[0.1, 0.2], [0.3, 0.4]]],
        [{"index": 0, "score": 0.9, "text": "a"}],
        [[{"score": 0.9, "label": "positive"}]],
        [0.5, 0.25],
        {
            "model_id": "m",
            "model_dtype": "float16",
            "model_type": {"embedding": {"pooling": "cls"}},
            "max_input_length": 512,
            "max_batch_tokens": 16384,
            "version": "1.5.0",
        },
    ],
    "kserve": [
        {
            "name": "m",
            "versions": ["1"],
            "platform": "openvino",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [1, 2]}],
        },
        {
            "model_name": "m",
            "model_version": "1",
            "id": "r1",
            "outputs": [
                {"name": "y", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]},
                {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["a"]},
            ],
        },
        {"ready": True},
    ],
    "ovms": [
        {"predictions": [[1.0, 2.0]]},
        {"outputs": {"y": [[1.0, 2.0]]}},
        {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
        {
            "m": {
                "model_version_status": [
                    {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                ]
            }
        },
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": "m",
            "choices": [{"index": 0, "text": "hi", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        },
    ],
    "opea": [
        {"id": "e1", "text": "hi", "embedding": [0.1, 0.2]},
        {"data": [{"index": 0, "embedding": [0.1, 0.2], "object": "embedding"}], "model": "m"},
        {
            "id": "r1",
            "retrieved_docs": [{"id": "d1", "text": "doc"}],
            "initial_query": "q",
            "top_n": 1,
            "search_type": "similarity",
        },
        {"id": "r1", "reranked_docs": [{"id": "d1", "text": "doc", "score": 0.5}], "initial_query": "q"},
        [{"index": 0, "score": 0.5}],
    ],
    "vllm": [
        {
            "object": "list",
            "data": [
                {"id": "m", "object": "model", "owned_by": "vllm", "root": "m", "parent": None, "max_model_len": 4096}
            ],
        },
        {"count": 2, "max_model_len": 4096, "tokens": [1, 2], "token_strs": None},
        {"prompt": "hi"},
        "Success: LoRA adapter 'a' added successfully.",
    ],
    "llamacpp": [
        {"tokens": [1, 2, 3]},
        {"tokens": [{"id": 1, "piece": "a"}]},
        {"content": "hi"},
        {
            "default_generation_settings": {"n_ctx": 2048},
            "total_slots": 1,
            "model_path": "m.gguf",
            "chat_template": "x",
            "build_info": "b1",
        },
        {
            "content": "hi",
            "stop": True,
            "stop_type": "eos",
            "tokens_predicted": 1,
            "tokens_evaluated": 2,
            "timings": {"prompt_n": 2, "predicted_n": 1},
        },
        {"status": "ok"},
    ],
    "tgi": [
        {
            "model_id": "m",
            "model_dtype": "torch.float16",
            "max_input_tokens": 1024,
            "max_total_tokens": 2048,
            "version": "2.0.0",
            "max_concurrent_requests": 128,
        },
        [{"id": 1, "text": "a", "start": 0, "stop": 1}],
        {
            "generated_text": "hi",
            "details": {"finish_reason": "eos_token", "generated_tokens": 1, "prefill": [{"id": 1, "text": "a"}]},
        },
    ],
    "ollama": [
        {
            "models": [
                {
                    "name": "m:latest",
                    "model": "m:latest",
                    "size": 1,
                    "digest": "d",
                    "details": {"family": "llama", "parameter_size": "1B", "quantization_level": "Q4"},
                    "modified_at": "2024-01-01T00:00:00Z",
                    "expires_at": "2024-01-01T00:00:00Z",
                    "size_vram": 1,
                }
            ]
        },
        {
            "modelfile": "FROM m",
            "parameters": "temperature 1",
            "template": "{{ .Prompt }}",
            "details": {"family": "llama"},
            "model_info": {"general.architecture": "llama"},
            "capabilities": ["completion", "tools"],
        },
        {"version": "0.5.0"},
        {"status": "pulling manifest"},
        {"model": "m", "embeddings": [[0.1, 0.2]], "prompt_eval_count": 2},
        {"embedding": [0.1, 0.2]},
    ],
    "gemini": [
        {"models": [{"name": "models/gemini-2.0-flash", "supportedGenerationMethods": ["generateContent"]}]},
        {"totalTokens": 5},
    ],
    "anthropic": [{"input_tokens": 5}],
}
