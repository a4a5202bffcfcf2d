"""A separate Python process for tests/test_shared_state.py: one AsyncClient sharing state through Redis.

argv[1] is JSON: ``{"redis", "prefix", "endpoints": [{name, provider, base_url, keys, open_seconds}],
"health": {...} | null}``. Commands arrive as JSON lines on stdin (``{"id", "op", ...}``), each run in its own
task; every answer is one JSON line on stdout with the same ``id``. Logs go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import infermux
from infermux.errors import InfermuxError
from infermux.resilience import BreakerConfig
from infermux.resilience.health import HealthConfig


def _endpoint(d: dict[str, Any]) -> infermux.EndpointConfig:
    return infermux.EndpointConfig(
        name=d["name"],
        provider=d["provider"],
        base_url=d["base_url"],
        model=d.get("model", "gpt-4o-mini"),
        api_keys=tuple(d.get("keys", ("sk-test",))),
        retry=infermux.RetryPolicy(max_retries=0),
        breaker=BreakerConfig(consecutive_failures=3, open_seconds=d.get("open_seconds", 30.0)),
        fail_fast=True,
        adaptive_concurrency=False,
    )


async def _chat(client: infermux.AsyncClient, ep: str, n: int, pause: float = 0.0) -> list[str]:
    out = []
    for _ in range(n):
        try:
            await client.chat("hi", endpoint=ep, max_tokens=4, timeout=5.0, fail_fast=True)
            out.append("ok")
        except InfermuxError as e:
            out.append(type(e).__name__)
        if pause:
            await asyncio.sleep(pause)
    return out


async def _poll(pred: Callable[[], bool], timeout: float) -> None:
    """Until ``pred()`` holds or ``timeout`` passed: what another process does is observed, not awaited."""
    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def _run(client: infermux.AsyncClient, cmd: dict[str, Any]) -> Any:
    op = cmd["op"]
    if op == "chat":
        return await _chat(client, cmd["endpoint"], cmd.get("n", 1), cmd.get("pause", 0.0))
    if op == "chat_for":
        end, out = time.monotonic() + cmd["seconds"], []
        while time.monotonic() < end:
            out += await _chat(client, cmd["endpoint"], 1)
            await asyncio.sleep(0.01)
        return out
    if op == "probe":
        return await client.check_health()
    if op == "state":
        ep = client.endpoint(cmd["endpoint"])
        return {
            "breaker": ep.breaker.state.value,
            "adopted": ep.breaker.adopted,
            "keys": ep.keys.snapshot(),
            "attempts": ep.counters.attempts,
            "health": client.health()[ep.name],
            "store": client.state.snapshot() if hasattr(client.state, "snapshot") else None,
        }
    timeout = cmd.get("timeout", 5.0)
    if op == "wait_breaker":  # until the breaker shows the state (bounded)
        ep = client.endpoint(cmd["endpoint"])
        await _poll(lambda: ep.breaker.state.value == cmd["state"], timeout)
        return ep.breaker.state.value
    if op == "wait_health":
        await _poll(lambda: client.health()[cmd["endpoint"]]["state"] == cmd["state"], timeout)
        return client.health()[cmd["endpoint"]]
    if op == "wait_blocked":
        ep = client.endpoint(cmd["endpoint"])
        await _poll(lambda: ep.keys.snapshot()[cmd["key"]]["blocked_for"] > 0, timeout)
        return ep.keys.snapshot()[cmd["key"]]["blocked_for"]
    raise ValueError(f"unknown op {op!r}")


async def main() -> None:
    spec = json.loads(sys.argv[1])
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    health = HealthConfig(**spec["health"]) if spec.get("health") else None
    state = {"backend": "redis", "url": spec["redis"], "prefix": spec["prefix"], "timeout": 0.3, "refresh": 0.5}
    client = infermux.AsyncClient([_endpoint(e) for e in spec["endpoints"]], health=health, state=state)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def answer(cid: Any, result: Any) -> None:
        sys.stdout.write(json.dumps({"id": cid, "result": result}) + "\n")
        sys.stdout.flush()

    async def serve(cmd: dict[str, Any]) -> None:
        try:
            answer(cmd["id"], await _run(client, cmd))
        except Exception as e:  # reported to the test, which fails on it
            answer(cmd["id"], {"error": repr(e)})

    async with client:
        answer("ready", client.state.snapshot() if hasattr(client.state, "snapshot") else None)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "quit":
                break
            task = asyncio.ensure_future(serve(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
