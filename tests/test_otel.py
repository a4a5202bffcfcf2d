"""OpenTelemetry (infermux.otel) through the public client API against the sandbox: a span per call named and
attributed after the GenAI semantic conventions, attempts as span events, and the GenAI client metrics read with
the SDK's in-memory exporter and reader. Off by default: ``import infermux`` and a client without ``telemetry``
import no OpenTelemetry module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import infermux
from infermux.fleet import GroupConfig
from infermux.otel import DURATION_BUCKETS, Telemetry
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox

pytestmark = [pytest.mark.timeout(60)]

MODEL = "gpt-4o-mini"
KEY = "sk-otel-secret-0123456789abcdef"


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.telemetry = Telemetry(tracer_provider=tp, meter_provider=MeterProvider(metric_readers=[self.reader]))

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb


def client(sb: Sandbox, otel: Otel, **kw: Any) -> infermux.AsyncClient:
    ep = infermux.EndpointConfig(
        name="sb",
        provider="openai",
        base_url=sb.openai_base_url,
        model=MODEL,
        api_keys=(KEY,),
        retry=RetryPolicy(max_retries=2, initial_delay=0.01, jitter="none"),
    )
    return infermux.AsyncClient([ep], trust_env=False, telemetry=otel.telemetry, **kw)


async def test_chat_span_and_metrics_follow_the_genai_conventions(sandbox: Sandbox) -> None:
    otel = Otel()
    async with client(sandbox, otel) as c:
        r = await c.chat("Say hi", max_tokens=8, temperature=0.0, request_id="rid-chat-1")
    (span,) = otel.spans.get_finished_spans()
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    a = dict(span.attributes or {})
    port = int(sandbox.base_url.rsplit(":", 1)[1])
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "openai"
    assert a["gen_ai.request.model"] == MODEL and a["gen_ai.response.model"] == r.model
    assert a["gen_ai.request.max_tokens"] == 8 and a["gen_ai.request.temperature"] == 0.0
    assert r.usage is not None
    assert a["gen_ai.usage.input_tokens"] == r.usage.input_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == r.usage.output_tokens > 0
    assert a["gen_ai.response.finish_reasons"] == (r.finish_reason,)
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == port
    assert a["infermux.request_id"] == "rid-chat-1" and a["infermux.endpoint"] == "sb"
    assert "error.type" not in a and span.status.status_code is StatusCode.UNSET
    assert [e.name for e in span.events] == ["infermux.attempt"]
    assert KEY not in json.dumps({k: str(v) for k, v in a.items()})

    m = otel.metrics()
    (dur,) = m["gen_ai.client.operation.duration"]
    assert dur.count == 1 and 0 < dur.sum < 10 and list(dur.explicit_bounds) == list(DURATION_BUCKETS)
    assert dur.attributes["gen_ai.operation.name"] == "chat" and dur.attributes["server.port"] == port
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in m["gen_ai.client.token.usage"]}
    assert tokens == {"input": r.usage.input_tokens, "output": r.usage.output_tokens}
    assert "gen_ai.client.operation.time_to_first_chunk" not in m  # streams only


async def test_stream_span_records_time_to_first_chunk(sandbox: Sandbox) -> None:
    otel = Otel()
    async with client(sandbox, otel) as c, c.stream("Count to 3", max_tokens=16) as s:
        final = await s.final_response()
    (span,) = otel.spans.get_finished_spans()
    a = dict(span.attributes or {})
    assert span.name == f"chat {MODEL}" and a["gen_ai.response.model"] == final.model
    assert 0 < a["gen_ai.response.time_to_first_chunk"] < 10
    assert final.usage is not None and a["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    m = otel.metrics()
    (ttfc,) = m["gen_ai.client.operation.time_to_first_chunk"]
    (dur,) = m["gen_ai.client.operation.duration"]
    assert ttfc.count == 1 and 0 < ttfc.sum <= dur.sum


async def test_embeddings_span(sandbox: Sandbox) -> None:
    otel = Otel()
    async with client(sandbox, otel) as c:
        r = await c.embed(["a", "b"], model="text-embedding-3-small")
    (span,) = otel.spans.get_finished_spans()
    a = dict(span.attributes or {})
    assert span.name == "embeddings text-embedding-3-small" and a["gen_ai.operation.name"] == "embeddings"
    assert len(r.vectors) == 2 and a["gen_ai.response.model"] == r.model
    assert r.usage is not None and a["gen_ai.usage.input_tokens"] == r.usage.input_tokens
    assert "gen_ai.usage.output_tokens" not in a  # embeddings have input tokens only
    m = otel.metrics()
    (dur,) = m["gen_ai.client.operation.duration"]
    assert dur.attributes["gen_ai.operation.name"] == "embeddings"
    assert [p.attributes["gen_ai.token.type"] for p in m["gen_ai.client.token.usage"]] == ["input"]


async def test_a_fallback_shows_both_endpoints_and_the_route(sandbox: Sandbox) -> None:
    otel = Otel()
    eps = [
        infermux.EndpointConfig(
            name=name,
            provider="openai",
            base_url=sandbox.openai_base_url,
            model=MODEL,
            api_keys=(KEY,),
            retry=RetryPolicy(max_retries=0),
        )
        for name in ("a", "b")
    ]
    groups = [GroupConfig("fleet", ("a", "b"))]
    async with infermux.AsyncClient(eps, groups=groups, trust_env=False, telemetry=otel.telemetry) as c:
        sandbox.faults.push(Fault.status_error(500))
        r = await c.chat("hi", model="fleet", max_tokens=4)
    (span,) = otel.spans.get_finished_spans()
    a = dict(span.attributes or {})
    assert r.endpoint == "b" and span.name == "chat fleet" and a["gen_ai.request.model"] == "fleet"
    assert a["gen_ai.response.model"] == r.model and a["infermux.endpoint"] == "b"
    assert a["infermux.route"] == ("a:InternalServerError", "b:ok")
    events = [(e.name, (e.attributes or {})["infermux.endpoint"]) for e in span.events]
    assert events == [("infermux.attempt", "a"), ("infermux.attempt.failed", "a"), ("infermux.attempt", "b")]


async def test_an_abandoned_stream_ends_its_span_without_an_error(sandbox: Sandbox) -> None:
    otel = Otel()
    async with client(sandbox, otel) as c, c.stream("Count to 10 slowly", max_tokens=32) as s:
        async for _ in s.text():
            break  # the caller has what it needs
    (span,) = otel.spans.get_finished_spans()
    a = dict(span.attributes or {})
    assert a["infermux.stream.abandoned"] is True and "error.type" not in a
    assert span.status.status_code is StatusCode.UNSET and a["gen_ai.response.time_to_first_chunk"] > 0
    (dur,) = otel.metrics()["gen_ai.client.operation.duration"]
    assert "error.type" not in dur.attributes


async def test_a_retry_is_two_attempt_events_and_an_error_sets_error_type(sandbox: Sandbox) -> None:
    otel = Otel()
    async with client(sandbox, otel) as c:
        sandbox.faults.push(Fault.status_error(503))
        await c.chat("hi", max_tokens=4)
        sandbox.faults.push(Fault.status_error(400))
        with pytest.raises(infermux.BadRequestError):
            await c.chat("hi", max_tokens=4)
    ok, bad = otel.spans.get_finished_spans()
    assert [e.name for e in ok.events] == ["infermux.attempt", "infermux.attempt.failed", "infermux.attempt"]
    failed = dict(ok.events[1].attributes or {})
    assert failed["error.type"] == "InternalServerError" and failed["http.response.status_code"] == 503
    assert failed["infermux.retryable"] is True and failed["infermux.attempt"] == 1 and "infermux.retry_in_s" in failed
    assert ok.status.status_code is StatusCode.UNSET and "error.type" not in (ok.attributes or {})

    assert bad.status.status_code is StatusCode.ERROR
    assert (bad.attributes or {})["error.type"] == "BadRequestError"
    assert [e.name for e in bad.events] == ["infermux.attempt", "infermux.attempt.failed"]
    assert "infermux.retry_in_s" not in (bad.events[1].attributes or {})
    points = otel.metrics()["gen_ai.client.operation.duration"]
    errs = sorted(str(p.attributes.get("error.type")) for p in points)
    assert errs == ["BadRequestError", "None"]


def test_off_by_default_and_import_stays_light() -> None:
    code = (
        "import sys, infermux\n"
        "c = infermux.AsyncClient([infermux.EndpointConfig(name='a', provider='openai',"
        " base_url='http://127.0.0.1:9/v1', model='m')], trust_env=False)\n"
        "assert c._otel is None\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'infermux.otel'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_telemetry_is_validated() -> None:
    ep = infermux.EndpointConfig(name="a", provider="openai", base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(infermux.ConfigurationError, match="telemetry"):
        infermux.AsyncClient([ep], trust_env=False, telemetry="yes")  # type: ignore[arg-type]
    with pytest.raises(infermux.ConfigurationError, match=r"Telemetry\.traces"):
        Telemetry(traces="no")  # type: ignore[arg-type]
