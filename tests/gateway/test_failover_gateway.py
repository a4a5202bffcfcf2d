"""Mid-stream failover behind the gateway: the official openai SDK streams from a group of two sandbox emulators
whose first one breaks mid-stream. Text continues on the other (one clean stream for the SDK); a stream with tools
does not fail over (an SDK cannot be told to drop a tool call it already received), it ends with an error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

import infermux
from infermux.fleet import GroupConfig
from infermux.gateway import Gateway, GatewayServer, GatewaySettings
from infermux.sandbox import Fault, Sandbox

from .conftest import MASTER
from .test_sdk_sandbox import WEATHER

pytestmark = pytest.mark.timeout(30)


def posts(sb: Sandbox) -> int:
    return sum(n for route, n in sb.stats.snapshot()["routes"].items() if route.startswith("POST"))


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[Sandbox, Sandbox, openai.AsyncOpenAI]]:
    async with Sandbox() as a, Sandbox() as b:
        retry = infermux.RetryPolicy(max_retries=0)
        eps = [
            infermux.EndpointConfig(
                name=n,
                provider="anthropic",
                base_url=sb.anthropic_base_url,
                model="claude-sonnet-4-20250514",
                api_keys=("sk-up",),
                retry=retry,
            )
            for n, sb in (("a", a), ("b", b))
        ]
        client = infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False)
        srv = GatewayServer(Gateway(client, GatewaySettings(port=0, master_key=MASTER)))
        await srv.start()
        sdk = openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key=MASTER, max_retries=0, timeout=20)
        try:
            yield a, b, sdk
        finally:
            await sdk.close()
            await srv.stop(timeout=2)


async def test_text_stream_fails_over_behind_the_gateway(fleet: tuple[Sandbox, Sandbox, openai.AsyncOpenAI]) -> None:
    a, b, sdk = fleet
    a.faults.set_default(Fault.stream_cut(5))
    stream = await sdk.chat.completions.create(
        model="g", messages=[{"role": "user", "content": "one two three four five six"}], stream=True
    )
    chunks = [ch async for ch in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "echo: one two three four five six"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert posts(a) == 1 and posts(b) == 1


async def test_tool_stream_does_not_fail_over_behind_the_gateway(
    fleet: tuple[Sandbox, Sandbox, openai.AsyncOpenAI],
) -> None:
    a, b, sdk = fleet
    a.faults.set_default(Fault.stream_cut(4))  # message_start, the tool_use block start, a first delta; cut
    stream = await sdk.chat.completions.create(
        model="g",
        messages=[{"role": "user", "content": "Please call get_weather for Paris"}],
        tools=[WEATHER],  # type: ignore[list-item]
        stream=True,
    )
    names: list[str] = []
    with pytest.raises(openai.APIError):
        async for ch in stream:
            for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
                if tc.function is not None and tc.function.name:
                    names.append(tc.function.name)
    assert names == ["get_weather"] and posts(b) == 0  # one call started, never a second one appended
