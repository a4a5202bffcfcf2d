"""Same-protocol streams through the gateway are faithful: what infermux does not model (Anthropic citations,
server-tool blocks, usage details, stop_details; OpenAI chunks' system_fingerprint, service_tier, obfuscation,
logprobs...) reaches the caller as the backend sent it. Checked byte for byte on the wire (ids and random padding
normalised) and event for event with the official SDKs, against a direct call to the emulator."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import httpx
import openai

import infermux
from infermux.fleet import GroupConfig
from infermux.gateway import Gateway, GatewayServer, GatewaySettings
from infermux.gateway.sse import AnthropicSSE, ChatSSE, ResponsesSSE
from infermux.providers import anthropic as anthropic_provider
from infermux.providers import openai as openai_provider
from infermux.sandbox import Fault, Sandbox
from infermux.types import StreamEvent, StreamResumed, TextDelta, WireEvent

from .conftest import MASTER, Rig

CLAUDE = "claude-sonnet-4-20250514"
DOC: Any = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green. The sky is blue."},
    "title": "Colours",
    "citations": {"enabled": True},
}
ASK: Any = [{"role": "user", "content": [DOC, {"type": "text", "text": "What colour is the grass?"}]}]
VERSION = {"anthropic-version": "2023-06-01"}
SEARCH: Any = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}]

_IDS = re.compile(r'"(id|tool_use_id|obfuscation|item_id)":"[^"]*"')
_CREATED = re.compile(rb'"(created|created_at|completed_at)":\d+(\.\d+)?')


def _norm(body: bytes) -> bytes:
    """The wire body with per-call values (ids, obfuscation padding, the second it was made) blanked, pings left
    out."""
    body = _CREATED.sub(rb'"\1":0', _IDS.sub(lambda m: f'"{m.group(1)}":"-"', body.decode()).encode())
    return b"".join(f for f in body.split(b"\n\n") if f and not f.startswith(b"event: ping"))


def _dump(obj: Any) -> Any:
    """An SDK event as plain data, ids and padding blanked."""
    if isinstance(obj, dict):
        blank = ("id", "tool_use_id", "obfuscation", "created", "created_at", "completed_at", "item_id")
        return {k: "-" if k in blank else _dump(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dump(v) for v in obj]
    return obj


async def _post(url: str, path: str, body: Any, headers: dict[str, str]) -> bytes:
    async with httpx.AsyncClient(timeout=20) as c:
        r = await c.post(url + path, json=body, headers=headers)
        assert r.status_code == 200, r.text
        return r.content


# ------------------------------------------------------------------ Anthropic


async def test_anthropic_stream_with_citations_and_web_search_is_byte_faithful(rig: Rig) -> None:
    body = {"model": CLAUDE, "max_tokens": 256, "messages": ASK, "tools": SEARCH, "stream": True}
    direct = await _post(rig.sb.anthropic_base_url, "/v1/messages", body, {"x-api-key": "k", **VERSION})
    via = await _post(rig.url, "/v1/messages", body, {"x-api-key": MASTER, **VERSION})
    for kind in (b"citations_delta", b"server_tool_use", b"web_search_tool_result", b"stop_details"):
        assert kind in direct  # the emulator sends them, as the real API does
    assert b"web_search_requests" in direct and b"service_tier" in direct
    assert _norm(via) == _norm(direct)


async def test_anthropic_sdk_sees_the_same_events_and_message_as_direct(rig: Rig) -> None:
    direct = anthropic.AsyncAnthropic(base_url=rig.sb.anthropic_base_url, api_key="k", max_retries=0, timeout=20)
    via = anthropic.AsyncAnthropic(base_url=rig.url, api_key=MASTER, max_retries=0, timeout=20)
    rig.clients += [direct, via]
    got: list[Any] = []
    for client in (direct, via):
        async with client.messages.stream(model=CLAUDE, max_tokens=256, messages=ASK, tools=SEARCH) as s:
            events = [_dump(ev.model_dump()) async for ev in s]
            final = _dump((await s.get_final_message()).model_dump())
        got.append((events, final))
    (events, final), (events_via, final_via) = got
    assert events_via == events and final_via == final
    assert [b["type"] for b in final["content"]] == ["server_tool_use", "web_search_tool_result", "text"]
    cites = final["content"][2]["citations"]
    assert [c["type"] for c in cites] == ["char_location", "web_search_result_location"]
    assert cites[0]["cited_text"] == "The grass is green."
    assert final["usage"]["server_tool_use"]["web_search_requests"] == 1
    # non-stream: the backend's own body (as before), the same again
    plain = await via.messages.create(model=CLAUDE, max_tokens=256, messages=ASK, tools=SEARCH)
    assert _dump(plain.model_dump())["content"] == final["content"]


async def test_anthropic_caller_of_an_openai_backend_gets_no_foreign_wire(rig: Rig) -> None:
    # the gateway's Anthropic renderer in front of an OpenAI backend: the chunks' vendor fields stay out
    body = {"model": "gpt-4o-mini", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    via = await _post(rig.url, "/v1/messages", body, {"x-api-key": MASTER, **VERSION})
    assert b"event: message_start" in via and b"message_stop" in via
    assert b"obfuscation" not in via and b"system_fingerprint" not in via and b"chat.completion" not in via


# ------------------------------------------------------------------ OpenAI


async def test_openai_stream_is_byte_faithful(rig: Rig) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "tell me about colours"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    direct = await _post(rig.sb.openai_base_url, "/chat/completions", body, {"authorization": "Bearer k"})
    via = await _post(rig.openai_url, "/chat/completions", body, {"authorization": f"Bearer {MASTER}"})
    for field in (b"system_fingerprint", b"service_tier", b"obfuscation", b"refusal"):
        assert field in direct
    assert _norm(via) == _norm(direct)


async def test_openai_search_annotations_reach_the_sdk_as_sent() -> None:
    # web_search_options on a search model: the emulator (as the real API) streams a url_citation annotation in
    # a delta of its own; the gateway relays it (and passes the request field through: one protocol)
    model = "gpt-4o-mini-search-preview"
    async with Sandbox() as sb:
        cfg = infermux.EndpointConfig("s", "openai", base_url=sb.openai_base_url, model=model, api_keys=("k",))
        srv = GatewayServer(
            Gateway(infermux.AsyncClient([cfg], trust_env=False), GatewaySettings(port=0, master_key=MASTER))
        )
        await srv.start()
        try:
            body: Any = {"model": model, "messages": [{"role": "user", "content": "news?"}], "web_search_options": {}}
            body |= {"stream": True, "stream_options": {"include_usage": True}}
            direct = await _post(sb.openai_base_url, "/chat/completions", body, {"authorization": "Bearer k"})
            via = await _post(srv.url + "/v1", "/chat/completions", body, {"authorization": f"Bearer {MASTER}"})
            async with openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key=MASTER, max_retries=0, timeout=20) as c:
                kw: Any = {k: v for k, v in body.items() if k not in ("model", "messages", "stream")}
                stream = await c.chat.completions.create(model=model, messages=body["messages"], stream=True, **kw)
                chunks = [ch async for ch in stream]
        finally:
            await srv.stop(timeout=2)
    assert b'"annotations":[{"type":"url_citation"' in direct
    assert _norm(via) == _norm(direct)
    notes = [a for ch in chunks if ch.choices for a in (ch.choices[0].delta.model_extra or {}).get("annotations", [])]
    assert [n["url_citation"]["title"] for n in notes] == ["Example result"]


async def test_openai_sdk_sees_the_same_chunks_as_direct(rig: Rig) -> None:
    direct = openai.AsyncOpenAI(base_url=rig.sb.openai_base_url, api_key="k", max_retries=0, timeout=20)
    via = openai.AsyncOpenAI(base_url=rig.openai_url, api_key=MASTER, max_retries=0, timeout=20)
    rig.clients += [direct, via]
    msgs: Any = [{"role": "user", "content": "call get_weather for Paris"}]
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    got = []
    for client in (direct, via):
        s = await client.chat.completions.create(
            model="gpt-4o-mini", messages=msgs, tools=tools, stream=True, stream_options={"include_usage": True}
        )
        got.append([_dump(c.model_dump()) async for c in s])
    assert got[1] == got[0]
    assert got[0][0]["system_fingerprint"] == "fp_sandbox" and got[0][-1]["usage"]["total_tokens"] > 0
    assert any(c["choices"] and c["choices"][0]["delta"].get("tool_calls") for c in got[0])


# ------------------------------------------------------------------ renderers (no network)


def _feed(renderer: Any, events: list[StreamEvent]) -> bytes:
    return b"".join(renderer.feed(ev) for ev in events) + renderer.close()


def _anthropic_events(wire: bytes) -> list[StreamEvent]:
    p = anthropic_provider.AnthropicStreamParser()
    return p.feed(wire) + p.close()


UPSTREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":'
    b'"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,'
    b'"output_tokens":1,"service_tier":"standard"}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text",'
    b'"text":"","citations":[]}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    b'"text":"Green."}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"citations_delta",'
    b'"citation":{"type":"char_location","cited_text":"g","document_index":0,"start_char_index":0,'
    b'"end_char_index":1}}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":'
    b'{"type":"mystery_block","x":1}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"mystery_delta"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null,'
    b'"stop_details":null},"usage":{"output_tokens":2}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def test_anthropic_renderer_relays_unknown_blocks_and_a_text_block_with_citations() -> None:
    events = _anthropic_events(UPSTREAM)
    # the text block with citations (start, citations_delta, stop) and the unknown block (start, delta, stop)
    assert sum(isinstance(e, WireEvent) for e in events) == 6
    assert _feed(AnthropicSSE("r", "c"), events) == UPSTREAM


def test_anthropic_relayed_text_block_that_starts_with_text_is_not_doubled() -> None:
    wire = UPSTREAM.replace(b'"text":"","citations":[]', b'"text":"Gr","citations":[]')
    events = _anthropic_events(wire)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "GrGreen."  # the neutral text
    assert _feed(AnthropicSSE("r", "c"), events) == wire  # the caller's: as it came, "Gr" once


def test_anthropic_renderer_renumbers_relayed_blocks_after_a_resume() -> None:
    # a resumed part: the caller already has block 0 (text); the new part's blocks go on from index 1
    r = AnthropicSSE("r", "c")
    head = r.feed(TextDelta("Hi. "))
    events = _anthropic_events(UPSTREAM)
    out = head + b"".join(r.feed(e) for e in [StreamResumed("a", "b", 1, 4), *events[1:]])
    assert b'"index":1,"content_block":{"type":"text","text":"","citations":[]}' in out
    assert b'"index":1,"delta":{"type":"citations_delta"' in out
    assert b'"index":2,"content_block":{"type":"mystery_block","x":1}' in out
    assert out.count(b"event: message_start") == 1


def test_other_protocols_renderers_ignore_wire_events() -> None:
    events = _anthropic_events(UPSTREAM)
    chat = _feed(ChatSSE("r", "m"), events)
    assert b"citations" not in chat and b"mystery" not in chat and b'"content":"Green."' in chat
    resp = _feed(ResponsesSSE("r", "m", {}), events)
    assert b"citations" not in resp and b"mystery" not in resp and b"Green." in resp
    p = openai_provider.ChatStreamParser()
    chunk = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"x"}}],"x_groq":{"id":"q"}}\n\n'
    ant = _feed(AnthropicSSE("r", "m"), p.feed(chunk + b"data: [DONE]\n\n") + p.close())
    assert b"x_groq" not in ant and b'"text":"x"' in ant


def test_a_finish_chunk_that_carries_usage_is_relayed_once_with_or_without_include_usage() -> None:
    # Groq: usage in x_groq on the finish_reason chunk (no usage-only chunk after it)
    chunks = [
        b'{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}',
        b'{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"q","usage":'
        b'{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}}',
    ]
    wire = b"".join(b"data: " + c + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    for include_usage in (False, True):
        p = openai_provider.ChatStreamParser("groq")
        assert _feed(ChatSSE("r", "m", include_usage=include_usage), p.feed(wire) + p.close()) == wire


def test_openai_renderer_relays_each_chunk_once_and_its_vendor_fields() -> None:
    chunks = [
        b'{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant",'
        b'"content":"","reasoning_content":"hm"},"logprobs":null,"finish_reason":null}],"system_fingerprint":"fp"}',
        b'{"id":"c","choices":[{"index":0,"delta":{"content":"Hi","annotations":[{"type":"url_citation"}]},'
        b'"logprobs":{"content":[{"token":"Hi","logprob":-0.1}]}}],"timings":{"predicted_ms":3}}',
        b'{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"q"}}',
        b'{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
    ]
    wire = b"".join(b"data: " + c + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    p = openai_provider.ChatStreamParser()
    events = p.feed(wire) + p.close()
    assert _feed(ChatSSE("r", "m", include_usage=True), events) == wire
    # without include_usage the usage chunk stays out (infermux asked the backend for it, the caller did not)
    assert _feed(ChatSSE("r", "m"), events) == wire.replace(b"data: " + chunks[3] + b"\n\n", b"")


async def test_relayed_openai_stream_fails_over_mid_stream() -> None:
    # a group of two OpenAI emulators, the first cut mid-stream: the SDK gets the backend's chunks as they came
    # (vendor fields kept), the text once, and one finish chunk
    full = "one two three four five six seven"
    async with Sandbox(responder=lambda conv: full) as a, Sandbox(responder=lambda conv: full) as b:
        eps = [
            infermux.EndpointConfig(
                name=n,
                provider="openai",
                base_url=sb.openai_base_url,
                model="gpt-4o-mini",
                api_keys=("sk-up",),
                retry=infermux.RetryPolicy(max_retries=0),
            )
            for n, sb in (("a", a), ("b", b))
        ]
        client = infermux.AsyncClient(eps, groups=[GroupConfig("g", ("a", "b"))], trust_env=False)
        srv = GatewayServer(Gateway(client, GatewaySettings(port=0, master_key=MASTER)))
        await srv.start()
        a.faults.set_default(Fault.stream_cut(4))
        try:
            async with openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key=MASTER, max_retries=0, timeout=20) as c:
                msgs: Any = [{"role": "user", "content": "count to seven"}]
                chunks = [ch async for ch in await c.chat.completions.create(model="g", messages=msgs, stream=True)]
        finally:
            await srv.stop(timeout=2)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == full  # b answers it all again: the repeat of what was delivered is dropped
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    assert chunks[0].system_fingerprint == "fp_sandbox" and chunks[-1].system_fingerprint == "fp_sandbox"
    assert len({ch.id for ch in chunks}) >= 2  # the chunks of both backends, each as it came


# ------------------------------------------------------------------ Responses


async def test_responses_stream_is_relayed_as_it_came() -> None:
    # an openai_responses backend behind /v1/responses: the events as the backend sent them (the emulator's
    # reasoning item with encrypted_content, logprobs, annotations...), to the byte and to the SDK
    model = "o4-mini"
    async with Sandbox() as sb:
        cfg = infermux.EndpointConfig(
            "r", "openai_responses", base_url=sb.openai_base_url, model=model, api_keys=("k",)
        )
        gw = Gateway(infermux.AsyncClient([cfg], trust_env=False), GatewaySettings(port=0, master_key=MASTER))
        srv = GatewayServer(gw)
        await srv.start()
        try:
            body: Any = {"model": model, "input": "hello there", "stream": True}
            direct = await _post(sb.openai_base_url, "/responses", body, {"authorization": "Bearer k"})
            via = await _post(srv.url + "/v1", "/responses", body, {"authorization": f"Bearer {MASTER}"})
            got = []
            for url, key in ((sb.openai_base_url, "k"), (srv.url + "/v1", MASTER)):
                c = openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=20)
                async with c, c.responses.stream(model=model, input="hello there") as s:
                    events = [_dump(ev.model_dump(warnings=False)) async for ev in s]
                    final = _dump((await s.get_final_response()).model_dump(warnings=False))
                got.append((events, final))
        finally:
            await srv.stop(timeout=2)
    assert b"encrypted_content" in direct and b"response.in_progress" in direct
    assert _norm(via) == _norm(direct)
    assert got[1] == got[0]
    assert [o["type"] for o in got[0][1]["output"]] == ["reasoning", "message"]


def _responses_sse(rid: str, text: str, *, complete: bool) -> bytes:
    def ev(name: str, obj: dict[str, Any]) -> bytes:
        import json as _json

        return f"event: {name}\ndata: {_json.dumps(obj)}\n\n".encode()

    item: dict[str, Any] = {"id": f"msg_{rid}", "type": "message", "status": "in_progress", "role": "assistant"}
    resp: dict[str, Any] = {"id": f"resp_{rid}", "object": "response", "status": "in_progress", "model": "m"}
    out = ev("response.created", {"type": "response.created", "sequence_number": 0, "response": {**resp, "output": []}})
    out += ev(
        "response.output_item.added",
        {
            "type": "response.output_item.added",
            "sequence_number": 1,
            "output_index": 0,
            "item": {**item, "content": []},
        },
    )
    delta = {"item_id": f"msg_{rid}", "output_index": 0, "content_index": 0}
    out += ev(
        "response.output_text.delta",
        {"type": "response.output_text.delta", "sequence_number": 2, **delta, "delta": text},
    )
    if complete:
        part = {"type": "output_text", "text": text, "annotations": []}
        done = {**item, "status": "completed", "content": [part]}
        out += ev(
            "response.output_item.done",
            {"type": "response.output_item.done", "sequence_number": 3, "output_index": 0, "item": done},
        )
        final = {**resp, "status": "completed", "output": [done]}
        out += ev("response.completed", {"type": "response.completed", "sequence_number": 4, "response": final})
    return out


def test_responses_relay_after_a_same_protocol_failover_is_one_response() -> None:
    """A Responses stream that fails over mid-stream to another openai_responses backend: the caller must see one
    response (one response.created, sequence numbers that go on rising), not the second backend's events as they
    came (its own response.created and sequence numbers from 0 again, and a response.completed holding only the
    continuation text)."""
    from infermux.providers import openai_responses

    a = openai_responses.ResponsesStreamParser().feed(_responses_sse("a", "Hel", complete=False))
    pb = openai_responses.ResponsesStreamParser()
    b = pb.feed(_responses_sse("b", "lo", complete=True)) + pb.close()
    out = _feed(ResponsesSSE("r", "m", {}), [*a, StreamResumed("a", "b", 1, 3), *b]).decode()
    assert out.count("event: response.created") == 1
    seqs = [int(s) for s in re.findall(r'"sequence_number": ?(\d+)', out)]
    assert seqs == sorted(set(seqs)), seqs
