"""One subject of bench/chaos.py under one scenario, in its own process (LiteLLM runs from its own venv).

    python bench/_chaos_worker.py SUBJECT SCENARIO URL[,BACKUP_URL] N CONCURRENCY RATE

SUBJECT: infermux | infermux-backup | openai | litellm-router. SCENARIO: A (N requests, CONCURRENCY workers,
every 2nd streamed), B (RATE new requests per second until N were issued), C (N requests at once).
Prints ``START <epoch>`` when it starts issuing, then one JSON line: per-request records
``[issued_at, ended_at, outcome, detail]`` (epoch seconds; outcome ok | wrong | failed | untyped | hung).
Every subject uses a 2 s per-attempt timeout (connect and read) and its library's defaults otherwise; the
openai SDK and LiteLLM get ``max_retries=5`` / ``num_retries=5``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

HUNG_AFTER = 90.0  # a request still running after this is recorded as hung (and cancelled)
MODEL = "gpt-4o-mini"


def prompt(i: int) -> str:
    return f"request {i}: the quick brown fox jumps over the lazy dog and keeps running"


def expected(i: int) -> str:
    return f"echo: {prompt(i)}"  # the sandbox's deterministic reply


Call = Callable[[int, bool], Awaitable[str]]


def infermux_subject(urls: list[str]) -> tuple[Call, Callable[[], Awaitable[None]], type[BaseException]]:
    import infermux
    from infermux.transport import Timeouts

    eps = [
        infermux.EndpointConfig(
            name=f"ep{i}",
            provider="openai",
            base_url=u + "/v1",
            model=MODEL,
            api_keys=("sk-bench",),
            timeouts=Timeouts(connect=2, read=2),
        )
        for i, u in enumerate(urls)
    ]
    client = infermux.AsyncClient(eps)

    async def call(i: int, stream: bool) -> str:
        msgs = [{"role": "user", "content": prompt(i)}]
        if not stream:
            return (await client.chat(msgs)).text
        parts = []
        async with client.stream(msgs) as s:
            async for t in s.text():
                parts.append(t)
        return "".join(parts)

    return call, client.aclose, infermux.InfermuxError


def openai_subject(urls: list[str]) -> tuple[Call, Callable[[], Awaitable[None]], type[BaseException]]:
    import openai

    oc = openai.AsyncOpenAI(base_url=urls[0] + "/v1", api_key="sk-bench", max_retries=5, timeout=2.0)

    async def call(i: int, stream: bool) -> str:
        msgs: Any = [{"role": "user", "content": prompt(i)}]
        if not stream:
            r = await oc.chat.completions.create(model=MODEL, messages=msgs)
            return r.choices[0].message.content or ""
        parts = []
        s = await oc.chat.completions.create(model=MODEL, messages=msgs, stream=True)
        async for chunk in s:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    return call, oc.close, openai.OpenAIError


def litellm_subject(urls: list[str]) -> tuple[Call, Callable[[], Awaitable[None]], type[BaseException]]:
    import litellm
    import openai

    litellm.suppress_debug_info = True
    router = litellm.Router(
        model_list=[
            {
                "model_name": MODEL,
                "litellm_params": {"model": f"openai/{MODEL}", "api_base": urls[0] + "/v1", "api_key": "sk-bench"},
            }
        ],
        num_retries=5,
        timeout=2,
    )

    async def call(i: int, stream: bool) -> str:
        msgs = [{"role": "user", "content": prompt(i)}]
        if not stream:
            r = await router.acompletion(model=MODEL, messages=msgs)
            return r.choices[0].message.content or ""
        parts = []
        s = await router.acompletion(model=MODEL, messages=msgs, stream=True)
        async for chunk in s:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    async def close() -> None:
        return None

    return call, close, openai.OpenAIError  # LiteLLM's exceptions subclass openai's


SUBJECTS = {
    "infermux": infermux_subject,
    "infermux-backup": infermux_subject,
    "openai": openai_subject,
    "litellm-router": litellm_subject,
}


async def one(call: Call, typed: type[BaseException], i: int, stream: bool, out: list[list[Any]]) -> None:
    t0 = time.time()
    try:
        text = await asyncio.wait_for(call(i, stream), HUNG_AFTER)
        outcome, detail = ("ok", "") if text == expected(i) else ("wrong", text[:80])
    except asyncio.TimeoutError:
        outcome, detail = "hung", ""
    except typed as e:
        outcome, detail = "failed", type(e).__name__
    except Exception as e:
        outcome, detail = "untyped", f"{type(e).__name__}: {str(e)[:80]}"
    out.append([t0, time.time(), outcome, detail])


async def main() -> None:
    subject, scenario, urls_arg, n_arg, conc_arg, rate_arg = sys.argv[1:7]
    n, conc, rate = int(n_arg), int(conc_arg), float(rate_arg)
    urls = urls_arg.split(",")
    call, close, typed = SUBJECTS[subject](urls)
    out: list[list[Any]] = []
    print(f"START {time.time()}", flush=True)
    if scenario == "A":
        queue = iter(range(n))

        async def worker() -> None:
            for i in queue:
                await one(call, typed, i, i % 2 == 1, out)

        await asyncio.gather(*(worker() for _ in range(conc)))
    elif scenario == "B":
        tasks = []
        start = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(call, typed, i, False, out)))
        await asyncio.gather(*tasks)
    else:
        await asyncio.gather(*(one(call, typed, i, False, out) for i in range(n)))
    await close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
