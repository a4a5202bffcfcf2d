"""Prometheus exposition: scrape the text after real engine activity (MockTransport, FakeClock) and check the
series by name, labels and value; keys never appear; ``import infermux`` does not import prometheus_client."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.fleet import GroupConfig
from infermux.metrics import PrometheusCollector, exposition
from infermux.resilience.clock import FakeClock
from infermux.resilience.health import HealthConfig
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport

pytestmark = [pytest.mark.timeout(20)]

JSON = {"content-type": "application/json"}
KEY = "sk-metrics-secret-0123456789"


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(s: dict[Any, float], name: str, **labels: str) -> float:
    return s[(name, tuple(sorted(labels.items())))]


async def test_scraped_series_match_the_engine_counters() -> None:
    clock = FakeClock()
    plan = iter([503, 200, 429, 200, 200])

    async def handler(r: HTTPRequest) -> MockResponse:
        await clock.sleep(0.2)
        if r.headers.get("accept") == "text/event-stream":
            await clock.sleep(0.3)
            chunks = [{"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}]
            data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return MockResponse(200, {"content-type": "text/event-stream"}, data.encode())
        status = next(plan, 200)
        if status != 200:
            body = {"error": {"message": "busy", "type": "server_error"}}
            return MockResponse(status, {**JSON, "retry-after-ms": "10"}, json.dumps(body).encode())
        body = {
            "id": "c",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }
        return MockResponse(200, JSON, json.dumps(body).encode())

    a = Endpoint(
        EndpointConfig(
            name="a",
            provider="openai",
            base_url="http://a/v1",
            model="gpt-x",
            api_keys=(KEY,),
            retry=RetryPolicy(max_retries=2, initial_delay=0.01, jitter="none"),
        ),
        transport=MockTransport(handler),
        clock=clock,
    )
    b = Endpoint(
        EndpointConfig(
            name="b", provider="openai", base_url="http://b/v1", model="gpt-y", retry=RetryPolicy(max_retries=0)
        ),
        transport=MockTransport(lambda r: MockResponse(500, JSON, b'{"error": {"message": "down"}}')),
        clock=clock,
    )
    async with infermux.AsyncClient(
        [b, a], groups=[GroupConfig("g", ("b", "a"))], health=HealthConfig(probe=False), trust_env=False
    ) as c:
        await c.chat("hi", model="g")  # b fails (500), a: 503 then 200
        await c.chat("hi", model="g")  # b fails, a: 429 then 200
        async with c.stream("hi", endpoint="a") as s:
            await s.final_response()
        text = exposition(c)

    assert KEY not in text.decode() and KEY[:12] not in text.decode()
    s = samples(text)
    ea = {"endpoint": "a", "model": "gpt-x"}
    eb = {"endpoint": "b", "model": "gpt-y"}
    assert value(s, "infermux_requests_total", **ea, outcome="success") == 3
    assert value(s, "infermux_requests_total", **eb, outcome="error") == 2
    assert value(s, "infermux_request_errors_total", **eb, error="InternalServerError") == 2
    assert value(s, "infermux_attempts_total", **ea) == 5
    assert value(s, "infermux_retries_total", **ea) == 2
    assert value(s, "infermux_attempt_failures_total", **ea, error="RateLimitError") == 1
    assert value(s, "infermux_fallbacks_total", **eb) == 2
    assert value(s, "infermux_tokens_total", **ea, type="input") == 14
    assert value(s, "infermux_tokens_total", **ea, type="output") == 4
    assert value(s, "infermux_request_duration_seconds_count", **ea) == 3
    assert value(s, "infermux_request_duration_seconds_bucket", **ea, le="0.1") == 0
    assert value(s, "infermux_request_duration_seconds_bucket", **ea, le="+Inf") == 3
    assert value(s, "infermux_time_to_first_token_seconds_count", **ea) == 1
    assert value(s, "infermux_time_to_first_token_seconds_sum", **ea) == pytest.approx(0.5)
    assert value(s, "infermux_time_to_first_token_seconds_bucket", **ea, le="0.5") == 1
    assert value(s, "infermux_in_flight", **ea) == 0
    assert value(s, "infermux_queue_depth", **ea, priority="NORMAL") == 0
    assert value(s, "infermux_concurrency_limit", **ea) >= 1
    assert value(s, "infermux_breaker_state", **ea, state="closed") == 1
    assert value(s, "infermux_breaker_state", **ea, state="open") == 0
    assert value(s, "infermux_health_up", **ea) == 1
    label = a.keys.snapshot()[0]["label"]
    assert label.startswith("key#1:")
    assert value(s, "infermux_key_requests_total", **ea, key=label, outcome="success") == 3
    assert value(s, "infermux_key_requests_total", **ea, key=label, outcome="rate_limited") == 1
    assert value(s, "infermux_stream_resumes_total", **ea) == 0


def test_collector_registers_on_a_registry_and_reads_live_state() -> None:
    clock = FakeClock()
    e = Endpoint(EndpointConfig(name="e", provider="openai", base_url="http://e/v1"), clock=clock)
    reg = CollectorRegistry()
    reg.register(PrometheusCollector([e]))
    assert b'infermux_requests_total{endpoint="e",model="",outcome="success"} 0.0' in generate_latest(reg)
    e.counters.successes = 4
    assert b'infermux_requests_total{endpoint="e",model="",outcome="success"} 4.0' in generate_latest(reg)
    assert b"infermux_health_up" not in generate_latest(reg).replace(b"# HELP infermux_health_up", b"").replace(
        b"# TYPE infermux_health_up", b""
    )  # endpoints without a client: no health series


def test_import_infermux_does_not_import_prometheus_client() -> None:
    code = "import sys, infermux, infermux.client; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
