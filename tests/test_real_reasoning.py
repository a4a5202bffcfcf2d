"""Reasoning from a real llama.cpp server (xllamacpp + SmolLM2): a chat template whose generation prompt opens
``<think>`` (as Qwen3/DeepSeek-R1 templates do, "thinking forced open") makes llama.cpp's own parser send the
output as ``reasoning_content`` (the 135M model never closes the tag, so all of it is reasoning). infermux reads
it as ``ChatResponse.reasoning`` / ``ReasoningDelta``, and the gateway relays it to the official openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import infermux
from infermux.gateway import Gateway, GatewayServer, GatewaySettings
from infermux.local import LocalLlamaServer
from infermux.types import ReasoningDelta, TextDelta

from .conftest import _serve

pytestmark = [pytest.mark.realserver, pytest.mark.filterwarnings("error::ResourceWarning")]

THINKING_TEMPLATE = """{%- for message in messages %}
{%- if message.role == "assistant" %}
{{- '<|im_start|>assistant\\n' }}{%- if message.reasoning_content %}{{- '<think>\\n' + message.reasoning_content
+ '\\n</think>\\n\\n' }}{%- endif %}{{- message.content + '<|im_end|>\\n' }}
{%- else %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}
"""
Q = "What is the capital of France?"


@pytest.fixture(scope="module")
def thinking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLlamaServer]:
    template = Path(tmp_path_factory.mktemp("tpl")) / "thinking.jinja"
    template.write_text(THINKING_TEMPLATE, encoding="utf-8")
    yield from _serve(chat_template=template)


async def test_llamacpp_reasoning_content_body_and_stream(thinking_server: LocalLlamaServer) -> None:
    async with infermux.AsyncClient([thinking_server.endpoint_config()], trust_env=False) as c:
        r = await c.chat(Q, max_tokens=24)
        async with c.stream(Q, max_tokens=24) as s:
            events = [ev async for ev in s]
            streamed = await s.final_response()
    assert "Paris" in r.reasoning and r.text == ""  # temperature 0: the same words both ways
    assert streamed.reasoning == r.reasoning and streamed.text == r.text
    assert [e for e in events if isinstance(e, TextDelta) and e.text] == []
    assert sum(isinstance(e, ReasoningDelta) for e in events) > 3  # token by token, as llama.cpp streams it


async def test_gateway_relays_llamacpp_reasoning_to_the_openai_sdk(thinking_server: LocalLlamaServer) -> None:
    client = infermux.AsyncClient([thinking_server.endpoint_config()], trust_env=False)
    srv = GatewayServer(Gateway(client, GatewaySettings(port=0, master_key="mk-test-master-0001")))
    await srv.start()
    try:
        async with openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key="mk-test-master-0001", max_retries=0) as oc:
            msgs: Any = [{"role": "user", "content": Q}]
            opts: Any = {"include_usage": True}
            stream = await oc.chat.completions.create(
                model="smollm2", messages=msgs, max_tokens=24, stream=True, stream_options=opts
            )
            chunks = [ch async for ch in stream]
            plain = await oc.chat.completions.create(model="smollm2", messages=msgs, max_tokens=24)
    finally:
        await srv.stop(timeout=2)
    got = "".join((ch.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for ch in chunks if ch.choices)
    want = (plain.choices[0].message.model_extra or {}).get("reasoning_content")  # llama.cpp's own body, passed on
    assert "Paris" in got and got == want
    # the stream is llama.cpp's own chunks: its vendor fields (``timings``, on its usage chunk) reach the SDK too
    assert chunks[-1].usage is not None and "prompt_ms" in (chunks[-1].model_extra or {})["timings"]
