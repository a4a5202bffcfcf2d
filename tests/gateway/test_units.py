"""Pure parts of the gateway: our renderings parse back with infermux's own provider parsers (the same code that
reads the real APIs), settings validation, and the layering rules (the core never imports the gateway)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infermux.errors import ConfigurationError
from infermux.gateway import GatewaySettings, settings_from_dict
from infermux.gateway.render import anthropic_message, openai_chat, responses_object
from infermux.gateway.sse import AnthropicSSE, ChatSSE, ResponsesSSE
from infermux.providers import anthropic, openai, openai_responses
from infermux.types import (
    ChatResponse,
    StreamAccumulator,
    StreamEvent,
    StreamFinish,
    StreamStart,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageEvent,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "infermux"
CALL = ToolCall.from_raw("call_1", "get_weather", '{"city": "Paris"}')
RESP = ChatResponse(
    text="It is sunny.", tool_calls=(CALL,), finish_reason="tool_calls", usage=Usage(10, 5, 2), request_id="r1"
)
EVENTS: list[StreamEvent] = [
    StreamStart("x", "m"),
    TextDelta("It is "),
    TextDelta("sunny."),
    ToolCallStart(0, "call_1", "get_weather"),
    ToolCallDelta(0, '{"city": '),
    ToolCallDelta(0, '"Paris"}'),
    UsageEvent(Usage(10, 5, 2)),
    StreamFinish("tool_calls"),
]
H = {"content-type": "application/json"}


def test_bodies_parse_back_with_the_provider_parsers() -> None:
    for body, parse in (
        (openai_chat(RESP, "m"), openai.parse_chat),
        (anthropic_message(RESP, "m"), anthropic.parse_chat),
        (responses_object(RESP, "m", {}), openai_responses.parse_chat),
    ):
        back = parse(json.dumps(body).encode(), H)
        assert back.text == RESP.text and back.finish_reason == "tool_calls"
        assert [(c.id, c.name, c.arguments) for c in back.tool_calls] == [("call_1", "get_weather", {"city": "Paris"})]
        assert back.usage == Usage(10, 5, 2)


@pytest.mark.parametrize(
    ("renderer", "parser"),
    [
        (lambda: ChatSSE("r1", "m", include_usage=True), openai.ChatStreamParser),
        (lambda: AnthropicSSE("r1", "m"), anthropic.AnthropicStreamParser),
        (lambda: ResponsesSSE("r1", "m", {}), openai_responses.PROVIDER.new_stream_parser),
    ],
)
def test_streams_parse_back_with_the_provider_parsers(renderer: object, parser: object) -> None:
    r = renderer()  # type: ignore[operator]
    wire = b"".join(r.feed(ev) for ev in EVENTS) + r.close()
    p = parser()  # type: ignore[operator]
    acc = StreamAccumulator()
    for i in range(0, len(wire), 7):  # any split, as the network delivers it
        for ev in p.feed(wire[i : i + 7]):
            acc.add(ev)
    for ev in p.close():
        acc.add(ev)
    assert acc.finished and acc.text == "It is sunny." and acc.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in acc.tool_calls()] == [("get_weather", {"city": "Paris"})]
    assert acc.usage is not None and acc.usage.output_tokens == 5


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="max_messages"):
        GatewaySettings(max_messages=0)
    with pytest.raises(ConfigurationError, match="unknown setting"):
        settings_from_dict({"max_mesages": 3})
    with pytest.raises(ConfigurationError, match="environment"):
        settings_from_dict({"master_key": "x" * 20})
    with pytest.raises(ConfigurationError, match="price"):
        settings_from_dict({"prices": {"m": {"input": -1}}})
    s = settings_from_dict({"port": 0, "prices": {"m": {"input": 1, "output": 2}}})
    assert s.price("m") is not None and s.price("m").cost(1_000_000, 1_000_000) == 3.0  # type: ignore[union-attr]
    assert s.with_env({"INFERMUX_MASTER_KEY": "mk-long-enough"}).auth_required
    assert "mk-long" not in repr(s.with_env({"INFERMUX_MASTER_KEY": "mk-long-enough"}))


def test_refuses_open_gateway_on_a_public_address() -> None:
    import infermux
    from infermux.gateway import Gateway, GatewayServer

    ep = infermux.EndpointConfig(name="x", provider="openai", base_url="http://127.0.0.1:9/v1", model="m")
    gw = Gateway(infermux.AsyncClient([ep], trust_env=False), GatewaySettings(host="0.0.0.0"))
    with pytest.raises(ConfigurationError, match="without a master key"):
        GatewayServer(gw)
    gw.keys.close()


def test_import_infermux_does_not_load_the_gateway() -> None:
    code = (
        "import sys, infermux; infermux.AsyncClient; infermux.Client;"
        "print(sorted(m for m in sys.modules if m.startswith('infermux.gateway') or m == 'aiohttp.web'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_core_never_imports_the_gateway() -> None:
    import re

    imports = re.compile(r"^\s*(from|import)\s+(\.+gateway|infermux\.gateway)\b", re.MULTILINE)
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "gateway" not in p.parts
        and p.name != "cli.py"  # `infermux serve` hands over to infermux.gateway.server (lazily)
        and imports.search(p.read_text())
    ]
    assert offenders == []
    assert imports.search((SRC / "cli.py").read_text())  # the check sees an import where there is one


def test_unmodeled_fields_pass_only_to_the_callers_protocol() -> None:
    import infermux
    from infermux.gateway import Gateway
    from infermux.gateway.render import ANTHROPIC_FAMILY, OPENAI_CHAT_FAMILY

    eps = [
        infermux.EndpointConfig(name="g", provider="openai", base_url="http://127.0.0.1:9/v1", model="gpt"),
        infermux.EndpointConfig(name="c", provider="anthropic", base_url="http://127.0.0.1:9", model="claude"),
    ]
    gw = Gateway(infermux.AsyncClient(eps, trust_env=False))
    wire = {"messages": [{"role": "user", "content": "x"}], "logprobs": True, "max_completion_tokens": 7}
    to_gpt = gw.shape(openai.chat_request_from_wire({**wire, "model": "gpt"}), OPENAI_CHAT_FAMILY)
    assert to_gpt.extra == {"logprobs": True, "max_completion_tokens": 7}  # sent upstream as the caller spelled it
    to_claude = gw.shape(openai.chat_request_from_wire({**wire, "model": "claude"}), OPENAI_CHAT_FAMILY)
    assert to_claude.extra == {} and to_claude.max_tokens == 7
    thinking = {"model": "claude", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}
    thinking["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    kept = gw.shape(anthropic.chat_request_from_wire(thinking), ANTHROPIC_FAMILY)
    assert kept.extra == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    body = anthropic.build_chat(kept, "claude", False).json
    assert body["thinking"] == thinking["thinking"]  # sent upstream unchanged
    gw.keys.close()


@pytest.mark.parametrize("choice", ["auto", "asyncio", "uvloop"])
def test_serve_event_loop_choice(choice: str) -> None:
    """`infermux serve --loop`: uvloop when asked (or on auto when installed), else asyncio's own loop."""
    import asyncio
    import importlib.util

    from infermux.gateway.server import run_on_loop

    has_uvloop = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not has_uvloop:
        pytest.skip("uvloop is not installed (pip install 'infermux[gateway]')")

    async def main() -> int:
        return 7 if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else 3

    expected = 7 if choice == "uvloop" or (choice == "auto" and has_uvloop) else 3
    assert run_on_loop(main(), choice) == expected
