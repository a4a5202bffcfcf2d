"""vLLM provider unit tests: both error shapes, native builders/parsers, Prometheus parsing, guided decoding,
the launch spec."""

from __future__ import annotations

import json
import math

import pytest

from infermux.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    MalformedResponseError,
    NotFoundError,
)
from infermux.providers import get_provider, vllm
from infermux.types import ChatResponse

JSON = {"content-type": "application/json"}


def test_registry() -> None:
    p = get_provider("vllm")
    assert p is vllm.PROVIDER and p.default_base_url == "http://127.0.0.1:8000/v1"
    assert {"chat", "stream", "embed", "tokenize", "lora", "metrics"} <= p.capabilities
    assert p.build_embed is not None
    assert vllm.server_root("http://h:8000/v1/") == "http://h:8000"


@pytest.mark.parametrize(
    "body",
    [
        {
            "object": "error",
            "message": "The model `x` does not exist.",
            "type": "NotFoundError",
            "param": None,
            "code": 404,
        },
        {"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "param": None, "code": 404}},
    ],
    ids=["top_level", "nested"],
)
def test_error_shapes(body: dict[str, object]) -> None:
    err = vllm.classify_error(404, {}, json.dumps(body).encode())
    assert isinstance(err, NotFoundError) and err.provider == "vllm"
    assert err.error_type == "NotFoundError" and err.provider_message == "The model `x` does not exist."


def test_unauthorized_and_bad_request() -> None:
    err = vllm.PROVIDER.classify_error(401, {}, b'{"error":"Unauthorized"}')
    assert isinstance(err, AuthenticationError) and err.provider_message == "Unauthorized"
    body = {
        "object": "error",
        "message": "maximum context length is 2048 tokens",
        "type": "BadRequestError",
        "code": 400,
    }
    err = vllm.PROVIDER.classify_error(400, {}, json.dumps(body).encode())
    assert isinstance(err, BadRequestError) and not err.retryable and err.error_type == "BadRequestError"


def test_stop_reason() -> None:
    body = {
        "id": "chat-1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "a"},
                "finish_reason": "stop",
                "stop_reason": "###",
            }
        ],
    }
    resp = vllm.PROVIDER.parse_chat(json.dumps(body).encode(), JSON)
    assert resp.text == "a" and vllm.stop_reason(resp) == "###"
    body["choices"][0]["stop_reason"] = 128001  # type: ignore[index]
    assert vllm.stop_reason(vllm.PROVIDER.parse_chat(json.dumps(body).encode(), JSON)) == 128001
    assert vllm.stop_reason(ChatResponse(text="", raw=None)) is None


def test_models_with_lora() -> None:
    body = {
        "object": "list",
        "data": [
            {
                "id": "base",
                "object": "model",
                "owned_by": "vllm",
                "root": "base",
                "parent": None,
                "max_model_len": 4096,
            },
            {
                "id": "sql",
                "object": "model",
                "owned_by": "vllm",
                "root": "/l/sql",
                "parent": "base",
                "max_model_len": None,
            },
        ],
    }
    cards = vllm.parse_models(json.dumps(body).encode(), JSON)
    assert cards[0] == vllm.ModelCard("base", "base", None, 4096, "vllm") and not cards[0].is_lora
    assert cards[1].is_lora and cards[1].parent == "base" and cards[1].root == "/l/sql"
    assert vllm.build_models().path == "/v1/models"
    with pytest.raises(MalformedResponseError):
        vllm.parse_models(b'{"data": [{"object": "model"}]}', JSON)


def test_tokenize_builders_and_parsers() -> None:
    pr = vllm.build_tokenize("m", "hello world", add_special_tokens=False)
    assert (pr.method, pr.path, pr.json) == (
        "POST",
        "/tokenize",
        {"model": "m", "prompt": "hello world", "add_special_tokens": False},
    )
    pr = vllm.build_tokenize("m", messages=[{"role": "user", "content": "hi"}], add_generation_prompt=True)
    assert pr.json == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": True}
    with pytest.raises(ConfigurationError):
        vllm.build_tokenize("m")
    with pytest.raises(ConfigurationError):
        vllm.build_tokenize("m", "x", messages="y")
    with pytest.raises(ConfigurationError):
        vllm.build_tokenize("", "x")
    tok = vllm.parse_tokenize(b'{"count": 3, "max_model_len": 2048, "tokens": [1, 2, 3], "token_strs": null}', JSON)
    assert tok == vllm.Tokenized((1, 2, 3), 3, 2048)
    with pytest.raises(MalformedResponseError):
        vllm.parse_tokenize(b'{"tokens": ["a"]}', JSON)
    assert vllm.build_detokenize("m", [1, 2]).json == {"model": "m", "tokens": [1, 2]}
    with pytest.raises(ConfigurationError):
        vllm.build_detokenize("m", [-1])
    assert vllm.parse_detokenize(b'{"prompt": "hello world"}', JSON) == "hello world"
    with pytest.raises(MalformedResponseError):
        vllm.parse_detokenize(b"{}", JSON)


def test_health_and_lora() -> None:
    assert vllm.build_health().path == "/health" and vllm.parse_health(b"", {})
    pr = vllm.build_load_lora("sql", "/adapters/sql")
    assert (pr.path, pr.json) == ("/v1/load_lora_adapter", {"lora_name": "sql", "lora_path": "/adapters/sql"})
    assert vllm.build_unload_lora("sql").json == {"lora_name": "sql"}
    with pytest.raises(ConfigurationError):
        vllm.build_load_lora("sql", " ")
    with pytest.raises(ConfigurationError):
        vllm.build_unload_lora("")
    ok = "Success: LoRA adapter 'sql' added successfully."
    assert vllm.parse_lora_reply(ok.encode(), {}) == ok
    assert vllm.parse_lora_reply(json.dumps(ok).encode(), JSON) == ok
    with pytest.raises(MalformedResponseError):
        vllm.parse_lora_reply(b"<html>", {})


METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 2.0
vllm:num_requests_running{engine="1",model_name="m"} 1.0
vllm:num_requests_waiting{model_name="m"} 4.0 1700000000000
vllm:gpu_cache_usage_perc{model_name="m"} 0.25
vllm:prompt_tokens_total{model_name="m"} 1234.0
vllm:generation_tokens_total{model_name="m"} 567.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 9.0
weird{path="a\\"b\\\\c\\nd", x = "y"} NaN
no_labels -Inf
"""


def test_parse_prometheus() -> None:
    m = vllm.parse_prometheus(METRICS)
    assert m["vllm:num_requests_running"] == [
        ({"engine": "0", "model_name": "m"}, 2.0),
        ({"engine": "1", "model_name": "m"}, 1.0),
    ]
    assert m["vllm:num_requests_waiting"] == [({"model_name": "m"}, 4.0)]  # timestamp dropped
    assert m["vllm:e2e_request_latency_seconds_bucket"][0] == ({"le": "+Inf", "model_name": "m"}, 9.0)
    labels, value = m["weird"][0]
    assert labels == {"path": 'a"b\\c\nd', "x": "y"} and math.isnan(value)
    assert m["no_labels"] == [({}, -math.inf)]
    s = vllm.summarize_metrics(m)
    assert (s.num_requests_running, s.num_requests_waiting, s.kv_cache_usage) == (3.0, 4.0, 0.25)
    assert (s.prompt_tokens_total, s.generation_tokens_total) == (1234.0, 567.0)
    newer = vllm.parse_metrics(b'vllm:kv_cache_usage_perc{model_name="m"} 0.5\n', {})
    assert newer.kv_cache_usage == 0.5 and newer.num_requests_running is None


@pytest.mark.parametrize("line", ["vllm:x{a=1} 2", "vllm:x 1 2 3", "vllm:x abc", '{a="b"} 1', 'x{a="b} 1'])
def test_parse_prometheus_malformed(line: str) -> None:
    with pytest.raises(MalformedResponseError):
        vllm.parse_prometheus(line)


def test_guided_extra() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert vllm.guided_extra(json_schema=schema) == {"guided_json": schema}
    assert vllm.guided_extra(json_schema=json.dumps(schema), backend="xgrammar") == {
        "guided_json": schema,
        "guided_decoding_backend": "xgrammar",
    }
    assert vllm.guided_extra(regex=r"\d+") == {"guided_regex": r"\d+"}
    assert vllm.guided_extra(choice=("yes", "no"), style="structured_outputs") == {
        "structured_outputs": {"choice": ["yes", "no"]}
    }
    assert vllm.guided_extra(grammar="root ::= 'a'", style="structured_outputs", backend="guidance") == {
        "structured_outputs": {"grammar": "root ::= 'a'", "backend": "guidance"}
    }
    for bad in (
        {},
        {"regex": "a", "choice": ["a"]},
        {"regex": "("},
        {"choice": []},
        {"choice": "yes"},
        {"json_schema": "{not json"},
        {"json_schema": [1]},
        {"grammar": "  "},
        {"regex": "a", "style": "other"},
    ):
        with pytest.raises(ConfigurationError):
            vllm.guided_extra(**bad)  # type: ignore[arg-type]


def test_launch_spec_argv() -> None:
    spec = vllm.VllmLaunchSpec(
        "meta-llama/Llama-3.1-8B-Instruct",
        quantization="awq",
        tensor_parallel_size=2,
        max_model_len=8192,
        gpu_memory_utilization=0.9,
        lora_modules={"sql": "/adapters/sql"},
        served_model_name="llama",
        dtype="bfloat16",
        port=8001,
        extra_args=("--enforce-eager",),
    )
    assert spec.argv() == [
        "vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--host", "127.0.0.1", "--port", "8001",
        "--quantization", "awq", "--tensor-parallel-size", "2", "--max-model-len", "8192",
        "--gpu-memory-utilization", "0.9", "--dtype", "bfloat16", "--served-model-name", "llama",
        "--enable-lora", "--lora-modules", "sql=/adapters/sql", "--enforce-eager",
    ]  # fmt: skip
    assert vllm.VllmLaunchSpec("m").argv() == ["vllm", "serve", "m", "--host", "127.0.0.1", "--port", "8000"]
    assert "--api-key" in vllm.VllmLaunchSpec("m", api_key="k").argv()
    assert "k" not in repr(vllm.VllmLaunchSpec("m", api_key="k"))


@pytest.mark.parametrize(
    "kw",
    [
        {"tensor_parallel_size": 0},
        {"tensor_parallel_size": True},
        {"quantization": "int3"},
        {"max_model_len": 0},
        {"gpu_memory_utilization": 1.5},
        {"dtype": "int8"},
        {"port": 70000},
        {"lora_modules": {"a=b": "/p"}},
        {"lora_modules": {"a": "/p"}, "enable_lora": False},
        {"extra_args": "--enforce-eager"},
    ],
)
def test_launch_spec_rejects_nonsense(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        vllm.VllmLaunchSpec("m", **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        vllm.VllmLaunchSpec("")
