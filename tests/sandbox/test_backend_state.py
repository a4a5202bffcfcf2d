"""Backend emulator state is per server: two sandboxes of one backend in one process never share quotas,
adapters, counters or options; ``configure_backend`` sets one sandbox's options (typed errors for anything
wrong); ``reset()`` and ``POST /_sandbox/reset`` forget it all. Raw aiohttp/urllib on 127.0.0.1 only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from infermux.errors import ConfigurationError
from infermux.resilience.clock import FakeClock
from infermux.sandbox import Fault, Sandbox, SandboxApp, SandboxThread

pytestmark = pytest.mark.timeout(30)

GROQ_KEY = "gsk_k"
GROQ_CHAT = "/openai/v1/chat/completions"
GROQ_BODY = {"model": "llama-3.1-8b-instant", "messages": [{"role": "user", "content": "hi there"}]}
VLLM_MODEL = "meta-llama/Llama-3.2-1B-Instruct"
MSGS = [{"role": "user", "content": "hello"}]


async def call(
    sb: Sandbox, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """(status, headers with lower-case names, JSON body or text) of one request to ``sb``."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.request(method, sb.base_url + path, json=body, headers=headers or {}) as resp,
    ):
        text = await resp.text()
        out = json.loads(text) if resp.content_type == "application/json" and text else text
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, out


def groq_chat(sb: Sandbox) -> Any:
    return call(sb, "POST", GROQ_CHAT, GROQ_BODY, {"authorization": f"Bearer {GROQ_KEY}"})


@pytest.fixture
async def two_groq() -> AsyncIterator[tuple[Sandbox, Sandbox]]:
    async with Sandbox(backends=("groq",)) as a, Sandbox(backends=("groq",)) as b:
        yield a, b


@pytest.fixture
async def two_vllm() -> AsyncIterator[tuple[Sandbox, Sandbox]]:
    async with Sandbox(backends=("vllm",)) as a, Sandbox(backends=("vllm",)) as b:
        yield a, b


# --------------------------------------------------------------------------- isolation


async def test_exhausting_one_groq_quota_leaves_the_other_alone(two_groq: tuple[Sandbox, Sandbox]) -> None:
    a, b = two_groq
    a.configure_backend("groq", requests=1, requests_window=60.0)
    status, headers, _ = await groq_chat(a)
    assert status == 200 and headers["x-ratelimit-remaining-requests"] == "0"
    status, headers, body = await groq_chat(a)
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded" and 1 <= int(headers["retry-after"]) <= 60
    for left in ("14399", "14398"):
        status, headers, _ = await groq_chat(b)
        assert status == 200
        assert headers["x-ratelimit-limit-requests"] == "14400" and headers["x-ratelimit-remaining-requests"] == left
    assert a.backend_state("groq").used_requests == 1 and b.backend_state("groq").used_requests == 2
    # the model list (not a chat) reports each server's own remaining quota in its headers
    _, headers, _ = await call(a, "GET", "/openai/v1/models", headers={"authorization": f"Bearer {GROQ_KEY}"})
    assert headers["x-ratelimit-remaining-requests"] == "0"


async def test_groq_quota_window_follows_an_injected_fake_clock(two_groq: tuple[Sandbox, Sandbox]) -> None:
    a, b = two_groq
    clock = FakeClock()
    a.configure_backend("groq", requests=1, requests_window=10.0, clock=clock)
    assert (await groq_chat(a))[0] == 200
    status, headers, _ = await groq_chat(a)
    assert status == 429 and headers["retry-after"] == "10" and headers["x-ratelimit-reset-requests"] == "10s"
    clock.advance(4.0)
    status, headers, _ = await groq_chat(a)
    assert status == 429 and headers["retry-after"] == "6"
    clock.advance(6.0)  # the window rolls over: the quota is full again
    status, headers, _ = await groq_chat(a)
    assert status == 200 and headers["x-ratelimit-remaining-requests"] == "0"
    # a plain () -> float callable works too; configuring refills, and only the given options change
    now = [0.0]
    a.configure_backend("groq", clock=lambda: now[0])
    assert a.backend_state("groq").limit_requests == 1 and (await groq_chat(a))[0] == 200
    assert (await groq_chat(a))[0] == 429
    now[0] = 10.0
    assert (await groq_chat(a))[0] == 200
    assert (await groq_chat(b))[0] == 200  # b never saw any of it


async def test_a_lora_adapter_loaded_in_one_vllm_is_unknown_in_the_other(two_vllm: tuple[Sandbox, Sandbox]) -> None:
    a, b = two_vllm
    status, _, text = await call(a, "POST", "/v1/load_lora_adapter", {"lora_name": "sql", "lora_path": "/l/sql"})
    assert status == 200 and text == "Success: LoRA adapter 'sql' added successfully."
    chat = {"model": "sql", "messages": [{"role": "user", "content": "one two"}]}
    status, _, body = await call(a, "POST", "/v1/chat/completions", chat)
    assert status == 200 and body["model"] == "sql"
    status, _, body = await call(b, "POST", "/v1/chat/completions", chat)
    assert status == 404 and body == {
        "object": "error",
        "message": "The model `sql` does not exist.",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }
    assert [m["id"] for m in (await call(a, "GET", "/v1/models"))[2]["data"]] == [VLLM_MODEL, "sql"]
    assert [m["id"] for m in (await call(b, "GET", "/v1/models"))[2]["data"]] == [VLLM_MODEL]
    # the same adapter name can be loaded in b: a's registry is not b's
    status, _, _ = await call(b, "POST", "/v1/load_lora_adapter", {"lora_name": "sql", "lora_path": "/other"})
    assert status == 200
    assert a.backend_state("vllm").loras == {"sql": "/l/sql"} and b.backend_state("vllm").loras == {"sql": "/other"}
    # counters and vocabulary are per server too
    _, _, metrics_a = await call(a, "GET", "/metrics")
    _, _, metrics_b = await call(b, "GET", "/metrics")
    assert f'vllm:prompt_tokens_total{{engine="0",model_name="{VLLM_MODEL}"}} 2.0' in metrics_a
    assert f'vllm:prompt_tokens_total{{engine="0",model_name="{VLLM_MODEL}"}} 0.0' in metrics_b
    _, _, tok = await call(a, "POST", "/tokenize", {"model": VLLM_MODEL, "prompt": "alpha beta"})
    status, _, body = await call(b, "POST", "/detokenize", {"model": VLLM_MODEL, "tokens": tok["tokens"]})
    assert status == 400 and "out of vocabulary" in body["message"]


async def test_vllm_error_style_is_per_server_and_reaches_fault_replies(two_vllm: tuple[Sandbox, Sandbox]) -> None:
    a, b = two_vllm
    a.configure_backend("vllm", error_style="nested", max_model_len=8)
    status, _, body = await call(a, "POST", "/v1/chat/completions", {"model": "nope", "messages": MSGS})
    assert status == 404 and body["error"]["type"] == "NotFoundError" and "object" not in body
    a.faults.push(Fault.status_error(503))
    b.faults.push(Fault.status_error(503))
    status, _, body = await call(a, "GET", "/v1/models")
    assert status == 503 and set(body) == {"error"} and body["error"]["code"] == 503
    status, _, body = await call(b, "GET", "/v1/models")
    assert status == 503 and body["object"] == "error" and body["code"] == 503
    assert (await call(a, "GET", "/v1/models"))[2]["data"][0]["max_model_len"] == 8
    assert (await call(b, "GET", "/v1/models"))[2]["data"][0]["max_model_len"] == 2048


async def test_tgi_metrics_count_each_server_alone() -> None:
    async with Sandbox(backends=("tgi",)) as a, Sandbox(backends=("tgi",)) as b:
        gen = {"inputs": "one two three", "parameters": {"max_new_tokens": 2}}
        assert (await call(a, "POST", "/generate", gen))[0] == 200
        assert (await call(a, "POST", "/generate", {"inputs": "x", "parameters": {"max_new_tokens": 0}}))[0] == 422
        counters = a.backend_state("tgi")
        assert (counters.requests, counters.success, counters.generated, counters.failures) == (
            2,
            1,
            2,
            {"validation": 1},
        )
        _, _, metrics = await call(b, "GET", "/metrics")
        assert "tgi_request_count 0\n" in metrics and "tgi_request_success 0\n" in metrics
        assert 'tgi_request_failure{err="validation"}' not in metrics
        _, _, metrics = await call(a, "GET", "/metrics")
        assert "tgi_request_count 2\n" in metrics and 'tgi_request_failure{err="validation"} 1' in metrics


# --------------------------------------------------------------------------- reset


async def test_reset_and_the_control_route_forget_backend_state(two_vllm: tuple[Sandbox, Sandbox]) -> None:
    a, _ = two_vllm
    for how in ("method", "route"):
        a.configure_backend("vllm", error_style="nested")
        await call(a, "POST", "/v1/load_lora_adapter", {"lora_name": "sql", "lora_path": "/l"})
        assert a.backend_state("vllm").loras == {"sql": "/l"}
        if how == "method":
            a.reset()
        else:
            assert (await call(a, "POST", "/_sandbox/reset"))[0] == 200
        status, _, body = await call(a, "POST", "/v1/chat/completions", {"model": "sql", "messages": MSGS})
        assert status == 404 and body["object"] == "error"  # adapter gone, top-level errors again
        assert a.backend_state("vllm").loras == {} and a.stats.total == 1


def test_sandbox_thread_configures_its_backend_from_sync_code() -> None:
    with SandboxThread(backends=("ovms",)) as sbt:
        url = sbt.base_url + "/v2/health/ready"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200
        sbt.configure_backend("ovms", not_ready=["identity"])
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(url, timeout=5)
        ei.value.close()
        assert ei.value.code == 503
        assert sbt.backend_state("ovms").not_ready == frozenset({"identity"})
        sbt.reset()
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200


async def test_ovms_config_as_json_text_and_partial_updates() -> None:
    cfg = {"model_config_list": [{"config": {"name": "only", "base_path": "/models/add"}}]}
    async with Sandbox(backends=("ovms",)) as sb:
        sb.configure_backend("ovms", config=json.dumps(cfg))
        assert (await call(sb, "GET", "/v2/models/only/ready"))[0] == 200
        assert (await call(sb, "GET", "/v2/models/identity/ready"))[0] == 404
        sb.configure_backend("ovms", not_ready=["only"])  # the config stays
        assert (await call(sb, "GET", "/v2/models/only/ready"))[0] == 503
        sb.configure_backend("ovms", available={"identity": [1, 2, 3]})  # default config, these versions
        _, _, meta = await call(sb, "GET", "/v2/models/identity")
        assert meta["versions"] == ["1", "2", "3"]


# --------------------------------------------------------------------------- configure_backend errors


def app(*backends: str) -> SandboxApp:
    return SandboxApp(backends=backends)


@pytest.mark.parametrize(
    ("backends", "name", "options", "match"),
    [
        (("groq",), "nope", {}, "unknown sandbox backend 'nope'"),
        (("groq",), "vllm", {}, "not served by this sandbox"),
        (("openai", "anthropic"), "openai", {}, "has no options"),
        (("tgi",), "tgi", {"x": 1}, "has no options"),
        (("ollama",), "ollama", {}, "has no options"),
        (("groq",), "groq", {"rpm": 3}, "bad options for sandbox backend 'groq'"),
        (("groq",), "groq", {"requests": -1}, "requests must be an int >= 0"),
        (("groq",), "groq", {"requests": True}, "requests must be an int"),
        (("groq",), "groq", {"tokens_window": 0}, "tokens_window must be a number of seconds > 0"),
        (("groq",), "groq", {"clock": "now"}, "clock must be callable"),
        (("groq",), "groq", {"clock": lambda: "t"}, "clock must return seconds"),
        (("vllm",), "vllm", {"error_style": "flat"}, "error_style must be"),
        (("vllm",), "vllm", {"max_model_len": 0}, "max_model_len must be an int >= 1"),
        (("vllm",), "vllm", {"state": {}}, "bad options"),
        (("ovms",), "ovms", {"config": {"model_config_list": [{"nope": 1}]}}, "bad OVMS config.json"),
        (("ovms",), "ovms", {"config": "{not json"}, "bad OVMS config.json"),
        (("ovms",), "ovms", {"not_ready": "identity"}, "not_ready must be a list"),
        (("ovms",), "ovms", {"available": [1]}, "available must map"),
        (("opea",), "opea", {"stream_style": "ndjson"}, "stream_style must be"),
        (("opea",), "opea", {"corpus": []}, "corpus must be a non-empty list"),
        (("opea",), "opea", {"corpus": "one doc"}, "corpus must be a list"),
    ],
)
def test_configure_backend_refuses_bad_requests(
    backends: tuple[str, ...], name: str, options: dict[str, Any], match: str
) -> None:
    sandbox = app(*backends)
    with pytest.raises(ConfigurationError, match=match):
        sandbox.configure_backend(name, **options)


def test_a_refused_configuration_changes_nothing() -> None:
    sandbox = app("ovms", "groq")
    before = sandbox.backend_state("ovms").models
    with pytest.raises(ConfigurationError):
        sandbox.configure_backend("ovms", config={"model_config_list": [{"config": {}}]})
    assert sandbox.backend_state("ovms").models is before and "identity" in before
    with pytest.raises(ConfigurationError):
        sandbox.configure_backend("groq", requests=5, tokens=-1)
    assert sandbox.backend_state("groq").limit_requests == 14400


def test_backend_state_errors_and_identity() -> None:
    sandbox = app("openai", "vllm")
    with pytest.raises(ConfigurationError, match="keeps no per-server state"):
        sandbox.backend_state("openai")
    with pytest.raises(ConfigurationError, match="not served"):
        sandbox.backend_state("groq")
    with pytest.raises(ConfigurationError, match="unknown sandbox backend"):
        sandbox.backend_state("bogus")
    state = sandbox.backend_state("vllm")
    assert sandbox.backend_state("vllm") is state and app("vllm").backend_state("vllm") is not state
    sandbox.reset()
    assert sandbox.backend_state("vllm") is not state
