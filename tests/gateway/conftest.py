"""Fixtures: a gateway (127.0.0.1, free port) in front of the sandbox emulators (OpenAI + Anthropic), and a real
Redis-compatible server for the replicas' shared state (the cache tests' launcher, reused; to be deduplicated
into the shared ``tests/_servers.py`` once that lands)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import infermux
from infermux.gateway import Gateway, GatewayServer, GatewaySettings
from infermux.resilience.clock import FakeClock
from infermux.sandbox import Sandbox
from infermux.sandbox.redis_server import RedisServer

from ..conftest import redis_server as _redis_server

MASTER = "mk-test-master-0001"
LONG_REPLY = " ".join(f"w{i}" for i in range(400))


@dataclass
class Rig:
    sb: Sandbox
    gw: Gateway
    srv: GatewayServer
    clock: FakeClock
    wall: list[float]
    clients: list[Any] = field(default_factory=list)  # SDK clients, closed with the rig

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        await self.srv.stop(timeout=2)

    @property
    def url(self) -> str:
        return self.srv.url

    @property
    def openai_url(self) -> str:
        return self.srv.url + "/v1"


def endpoints(sb: Sandbox, **kw: Any) -> list[infermux.EndpointConfig]:
    retry = infermux.RetryPolicy(max_retries=0)
    return [
        infermux.EndpointConfig(
            name="gpt",
            provider="openai",
            base_url=sb.openai_base_url,
            model="gpt-4o-mini",
            api_keys=("sk-up-1",),
            retry=retry,
            **kw,
        ),
        infermux.EndpointConfig(
            name="claude",
            provider="anthropic",
            base_url=sb.anthropic_base_url,
            model="claude-sonnet-4-20250514",
            api_keys=("sk-ant-up",),
            retry=retry,
            **kw,
        ),
    ]


async def make_rig(
    sb: Sandbox, endpoint_kw: dict[str, Any] | None = None, *, wall: list[float] | None = None, **settings: Any
) -> Rig:
    """A gateway on a free port; ``wall`` (a one-item list, shared by replicas) is its wall clock."""
    clock = FakeClock()
    wall = wall if wall is not None else [1_900_000_000.0]
    s = GatewaySettings(port=0, master_key=MASTER, **settings)
    gw = Gateway(
        infermux.AsyncClient(endpoints(sb, **(endpoint_kw or {})), trust_env=False),
        s,
        clock=clock,
        wall_clock=lambda: wall[0],
    )
    srv = GatewayServer(gw)
    await srv.start()
    return Rig(sb, gw, srv, clock, wall)


async def until(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``cond`` (every 20 ms, at most ``timeout`` seconds): for effects on other servers' tasks."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return cond()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        r = await make_rig(sb)
        try:
            yield r
        finally:
            await r.close()


@pytest.fixture
async def slow_rig() -> AsyncIterator[Rig]:
    """The emulators answer a long reply, one token every 20 ms (a stream of about 8 s)."""
    async with Sandbox(host="127.0.0.1", port=0, responder=lambda conv: LONG_REPLY, token_delay=0.02) as sb:
        r = await make_rig(sb)
        try:
            yield r
        finally:
            await r.close()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A real redis-server / valkey-server on a free 127.0.0.1 port (``infermux.sandbox.redis_server``)."""
    with _redis_server() as srv:
        yield srv.url


@pytest.fixture(scope="session")
def gw_redis_url() -> Iterator[str]:
    """A real redis-server / valkey-server on a free 127.0.0.1 port for the whole session (tests isolate
    themselves with their own ``redis_prefix``)."""
    with redis_server() as url:
        yield url


@contextlib.contextmanager
def redis_on_port(port: int, timeout: float = 10.0) -> Iterator[str]:
    """A redis/valkey server on a given 127.0.0.1 port (to bring one back where it was stopped)."""
    with RedisServer(port, startup_timeout=timeout) as srv:
        yield srv.url
