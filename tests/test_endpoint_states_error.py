"""When no endpoint of a group can serve a call, the error says why for each one: ``AllEndpointsFailedError``
carries ``.endpoints`` (breaker open / keys exhausted / saturated / health down / failed with error X) and a
message listing them, through the public client API (FakeClock, MockTransport: no sleeping, no network)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import infermux
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import AllEndpointsFailedError, EndpointStatus
from infermux.fleet import GroupConfig
from infermux.resilience.breaker import BreakerConfig
from infermux.resilience.clock import FakeClock
from infermux.resilience.health import HealthConfig
from infermux.resilience.retry import RetryPolicy
from infermux.transport import HTTPRequest, MockResponse, MockTransport

pytestmark = [pytest.mark.timeout(20)]

JSON = {"content-type": "application/json"}
KEY = "sk-states-secret-0123456789"


def completion(text: str) -> MockResponse:
    body = {"id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    return MockResponse(200, JSON, json.dumps(body).encode())


def error(status: int) -> MockResponse:
    return MockResponse(status, JSON, json.dumps({"error": {"message": "nope", "type": "server_error"}}).encode())


MODELS = MockResponse(200, JSON, b'{"object": "list", "data": [{"id": "m", "object": "model"}]}')


def probes_ok(handler: Any) -> Any:
    """``handler`` for calls; a health probe (GET of the model list) is answered 200 at once."""

    def h(r: HTTPRequest) -> Any:
        return MODELS if r.method == "GET" else handler(r)

    return h


def ep(name: str, clock: FakeClock, handler: Any, **kw: Any) -> Endpoint:
    config = EndpointConfig(
        name=name,
        provider="openai",
        base_url=f"http://{name}/v1",
        model=f"m-{name}",
        api_keys=(KEY,),
        retry=RetryPolicy(max_retries=0),
        max_queue=0,
        **kw,
    )
    return Endpoint(config, transport=MockTransport(handler), clock=clock)


async def test_every_endpoint_state_is_listed_when_no_endpoint_can_serve() -> None:
    clock = FakeClock()
    release = asyncio.Event()

    async def hang(r: HTTPRequest) -> MockResponse:
        await release.wait()
        return completion("d")

    def sick(r: HTTPRequest) -> MockResponse:
        return error(503) if r.method == "GET" else error(500)  # its probes and its calls fail

    eps = [
        ep("keys", clock, probes_ok(lambda r: error(401))),
        ep(
            "broken",
            clock,
            probes_ok(lambda r: error(503)),
            breaker=BreakerConfig(consecutive_failures=1, open_seconds=30),
        ),
        ep("sick", clock, sick),
        ep("busy", clock, probes_ok(hang), max_concurrency=1),
    ]
    async with infermux.AsyncClient(
        eps,
        groups=[GroupConfig("g", tuple(e.name for e in eps))],
        health=HealthConfig(failures=1, probe=False),
        trust_env=False,
    ) as c:
        with pytest.raises(infermux.AuthenticationError):
            await c.chat("hi", endpoint="keys")  # its only key is rejected: disabled
        with pytest.raises(infermux.InternalServerError):
            await c.chat("hi", endpoint="broken")  # its breaker opens for 30 s
        assert await c.check_health() == {"keys": True, "broken": True, "sick": False, "busy": True}
        stuck = asyncio.ensure_future(c.chat("hi", endpoint="busy"))  # holds busy's only slot
        for _ in range(5):
            await asyncio.sleep(0)

        with pytest.raises(AllEndpointsFailedError) as ei:
            await c.chat("hi", model="g", fail_fast=True, request_id="rid-1")
        release.set()
        await stuck

    err = ei.value
    states = {s.endpoint: s for s in err.endpoints}
    assert set(states) == {"keys", "broken", "sick", "busy"}
    assert all(isinstance(s, EndpointStatus) for s in err.endpoints)
    assert states["keys"].state == "keys_exhausted" and "rejected" in states["keys"].reason
    assert states["broken"].state == "breaker_open" and states["broken"].breaker == "open"
    assert states["broken"].retry_at is not None and "next probe in 30s" in states["broken"].reason
    assert states["sick"].state == "health_down" and states["sick"].health == "down"
    assert "health probes failed" in states["sick"].reason and "InternalServerError (HTTP 500)" in states["sick"].reason
    assert isinstance(states["sick"].error, infermux.InternalServerError)
    assert states["busy"].state == "saturated" and "1/1 in flight" in states["busy"].reason
    msg = str(err)
    assert msg.startswith("no endpoint could serve the call (4 endpoints): ")
    for name, s in states.items():
        assert f"{name}: {s.reason}" in msg
    assert err.request_id == "rid-1" and KEY not in msg
    ctx = err.context()["endpoints"]
    assert {d["endpoint"]: d["state"] for d in ctx} == {n: s.state for n, s in states.items()}
    assert KEY not in json.dumps(ctx)


async def test_an_endpoint_that_failed_with_an_error_is_listed_with_it() -> None:
    clock = FakeClock()
    eps = [ep("a", clock, lambda r: error(500)), ep("b", clock, lambda r: error(502))]
    async with infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False) as c:
        with pytest.raises(AllEndpointsFailedError) as ei:
            await c.chat("hi", model="g")
    assert [(s.endpoint, s.state, s.reason) for s in ei.value.endpoints] == [
        ("a", "failed", "failed with InternalServerError (HTTP 500)"),
        ("b", "failed", "failed with InternalServerError (HTTP 502)"),
    ]
    assert all(s.health is None for s in ei.value.endpoints)  # no health monitoring configured
