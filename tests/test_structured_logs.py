"""Every log line on a call's path carries the call's request ID and endpoint as record attributes (``extra``),
so a JSON formatter reads them without parsing the message; never a key. Driven through the public client API
against the sandbox (a retried call, a stream, a breaker that opens, a fallback), all at DEBUG."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

import infermux
from infermux.fleet import GroupConfig
from infermux.resilience.breaker import BreakerConfig
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox

pytestmark = [pytest.mark.timeout(60)]

KEY = "sk-structured-logs-secret-0123456789"


class JsonFormatter(logging.Formatter):
    """What an application's JSON log formatter does: the message plus the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "msg": record.getMessage(),
                "level": record.levelname,
                "request_id": getattr(record, "request_id", "MISSING"),
                "endpoint": getattr(record, "endpoint", "MISSING"),
                "attempt": getattr(record, "attempt", "MISSING"),
            }
        )


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.text.append(line)
        self.lines.append(json.loads(line))


@pytest.fixture
def logs() -> Iterator[Capture]:
    log = logging.getLogger("infermux")
    cap = Capture()
    old = log.level
    log.addHandler(cap)
    log.setLevel(logging.DEBUG)
    try:
        yield cap
    finally:
        log.removeHandler(cap)
        log.setLevel(old)


async def test_every_call_line_carries_the_request_id_and_endpoint(logs: Capture) -> None:
    async with Sandbox() as sb:

        def cfg(name: str, **kw: object) -> infermux.EndpointConfig:
            return infermux.EndpointConfig(
                name=name,
                provider="openai",
                base_url=sb.openai_base_url,
                model="gpt-4o-mini",
                api_keys=(KEY,),
                retry=RetryPolicy(max_retries=1, initial_delay=0.01, jitter="none"),
                **kw,  # type: ignore[arg-type]
            )

        eps = [cfg("a", breaker=BreakerConfig(consecutive_failures=2, open_seconds=30)), cfg("b")]
        async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c:
            sb.faults.push(Fault.status_error(503))
            await c.chat("hi", model="g", request_id="rid-retry")  # a: 503, retried, ok
            async with c.stream("hi", model="g", request_id="rid-stream") as s:
                await s.final_response()
            sb.faults.push(Fault.status_error(503), times=2)
            r = await c.chat("hi", model="g", request_id="rid-fallback")  # a fails twice: breaker opens; b answers
            assert r.endpoint == "b"

    by_rid: dict[object, list[dict[str, object]]] = {}
    for line in logs.lines:
        assert line["request_id"] != "MISSING" and line["endpoint"] != "MISSING", line  # every line has the fields
        by_rid.setdefault(line["request_id"], []).append(line)
    assert set(by_rid) == {"rid-retry", "rid-stream", "rid-fallback"}  # every line belongs to a call here
    for rid, lines in by_rid.items():
        assert all(rid in str(line["msg"]) or "circuit breaker" in str(line["msg"]) for line in lines)
    retry = by_rid["rid-retry"]
    assert [(line["endpoint"], line["attempt"]) for line in retry if "attempt" in str(line["msg"])][:2] == [
        ("a", 1),
        ("a", 1),
    ]
    opened = [line for line in by_rid["rid-fallback"] if "circuit breaker closed -> open" in str(line["msg"])]
    assert opened and opened[0]["endpoint"] == "a" and opened[0]["level"] == "WARNING"
    assert {line["endpoint"] for line in by_rid["rid-fallback"]} == {"a", "b"}
    assert all(KEY not in t for t in logs.text)
