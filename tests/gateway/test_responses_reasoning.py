"""The gateway's ``/v1/responses`` in front of a backend of another protocol that reasons (vLLM with a reasoning
parser): the reasoning reaches the official openai SDK as ``reasoning`` output items with a summary, streamed as
the real API streams one (``response.reasoning_summary_part.added``, ``reasoning_summary_text.delta``/``.done``,
``reasoning_summary_part.done``), and in the non-stream answer."""

from __future__ import annotations

from typing import Any

import openai

import infermux
from infermux.gateway import Gateway, GatewayServer, GatewaySettings
from infermux.gateway.sse import ResponsesSSE
from infermux.sandbox import Sandbox
from infermux.types import ReasoningDelta, StreamFinish, StreamStart, TextDelta, ToolCallDelta, ToolCallStart

from .conftest import MASTER

MODEL = "meta-llama/Llama-3.2-1B-Instruct"
WANT = "The user asked 'hello vllm'. I will answer."


async def test_openai_sdk_responses_get_reasoning_items_from_a_vllm_backend() -> None:
    async with Sandbox(host="127.0.0.1", port=0, backends=("vllm",)) as sb:
        sb.configure_backend("vllm", reasoning_parser="deepseek_r1")
        cfg = infermux.EndpointConfig("v", "vllm", base_url=sb.base_url + "/v1", model=MODEL)
        gw = Gateway(infermux.AsyncClient([cfg], trust_env=False), GatewaySettings(port=0, master_key=MASTER))
        srv = GatewayServer(gw)
        await srv.start()
        try:
            async with openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key=MASTER, max_retries=0, timeout=20) as c:
                async with c.responses.stream(model=MODEL, input="hello vllm") as s:
                    events: list[Any] = [ev async for ev in s]
                    final = await s.get_final_response()
                plain = await c.responses.create(model=MODEL, input="hello vllm")
        finally:
            await srv.stop(timeout=2)
    kinds = [ev.type for ev in events]
    order = [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",  # the message
    ]
    firsts = [kinds.index(k, kinds.index(order[i - 1]) + 1 if i else 0) for i, k in enumerate(order)]
    assert firsts == sorted(firsts)
    deltas = "".join(ev.delta for ev in events if ev.type == "response.reasoning_summary_text.delta")
    assert deltas == WANT
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    for resp in (final, plain):
        assert [o.type for o in resp.output] == ["reasoning", "message"]
        item = resp.output[0]
        assert isinstance(item, openai.types.responses.ResponseReasoningItem)
        assert [(p.type, p.text) for p in item.summary] == [("summary_text", WANT)]
        assert resp.output_text == "echo: hello vllm"
    assert final.output[0].id == events[kinds.index("response.output_item.added")].item.id


def test_responses_renderer_leaves_out_text_less_reasoning_and_keeps_item_order() -> None:
    r = ResponsesSSE("r1", "m", {})
    events = [
        StreamStart("x", "m"),
        ReasoningDelta("", 0, signature="sig", protocol="anthropic"),  # a signature alone: no item
        ReasoningDelta("Think", 1),
        ReasoningDelta("ing.", 1),
        TextDelta("Hi."),
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, "{}"),
        StreamFinish("tool_calls"),
    ]
    wire = b"".join(r.feed(ev) for ev in events) + r.close()
    assert wire.count(b"event: response.output_item.added") == 3
    assert b'"item":{"id":"rs_r1_1","type":"reasoning","summary":[{"type":"summary_text","text":"Thinking."}]}' in wire
    assert b"rs_r1_0" not in wire and b"sig" not in wire
