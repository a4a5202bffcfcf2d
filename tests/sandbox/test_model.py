"""The deterministic model: tokens, stop/max_tokens, tool arguments from schemas, embeddings, responder."""

from __future__ import annotations

import json
import math

import aiohttp

from infermux.sandbox import Conversation, Sandbox, example_from_schema
from infermux.sandbox._model import ToolSpec, embed, generate, split_tokens


def test_split_tokens_joins_back() -> None:
    for text in ("echo: a  b\tc", "  lead", "", "one"):
        assert "".join(split_tokens(text)) == text
    assert split_tokens("echo: a b") == ["echo:", " a", " b"]


def test_generate_stop_then_length() -> None:
    conv = Conversation(model="m", messages=[("user", "x y z")], last_user_text="x y z")
    assert generate(conv).text == "echo: x y z" and generate(conv).finish == "stop"
    conv.stop = ["y"]
    g = generate(conv)
    assert (g.text, g.finish, g.stop_sequence) == ("echo: x ", "stop_sequence", "y")
    conv.stop, conv.max_tokens = [], 2
    g = generate(conv)
    assert (g.text, g.finish, g.completion_tokens) == ("echo: x", "length", 2)


def test_example_from_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "n": {"type": ["number", "null"]},
            "b": {"type": "boolean"},
            "e": {"enum": ["x", "y"]},
            "a": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
            "o": {"type": "object", "properties": {"deep": {"type": "string"}}, "required": ["deep"]},
            "opt": {"type": "string"},
        },
        "required": ["s", "i", "n", "b", "e", "a", "o"],
    }
    assert example_from_schema(schema) == {
        "s": "example",
        "i": 1,
        "n": 1.5,
        "b": True,
        "e": "x",
        "a": [1, 1],
        "o": {"deep": "example"},
    }
    assert "opt" in example_from_schema(schema, all_properties=True)
    assert example_from_schema({}) is None


def test_tool_choice_rules() -> None:
    tools = [
        ToolSpec("a", {}),
        ToolSpec("b", {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
    ]
    conv = Conversation(model="m", last_user_text="please call b, then call a", tools=tools)
    assert [c.name for c in generate(conv).tool_calls] == ["b", "a"]
    conv.parallel_tool_calls = False
    assert [c.name for c in generate(conv).tool_calls] == ["b"]
    conv.tool_choice = "none"
    assert generate(conv).tool_calls == []
    conv = Conversation(model="m", last_user_text="hi", tools=tools, tool_choice="required", tool_choice_name="b")
    (call,) = generate(conv).tool_calls
    assert json.loads(call.arguments) == {"q": "example"}


def test_embeddings_deterministic_and_normalised() -> None:
    a, b = embed("hello", 64), embed("hello", 64)
    assert a == b and a != embed("world", 64)
    assert math.isclose(math.fsum(v * v for v in a), 1.0, rel_tol=1e-9)
    assert len(embed("x", 3)) == 3


async def test_custom_responder_and_latency() -> None:
    seen: list[Conversation] = []

    def responder(conv: Conversation) -> str:
        seen.append(conv)
        return f"{conv.model} says {len(conv.messages)}"

    async with Sandbox(responder=responder, embedding_dim=16) as sb, aiohttp.ClientSession() as s:
        body = {"model": "mx", "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "u"}]}
        async with s.post(
            sb.openai_base_url + "/chat/completions", json=body, headers={"authorization": "Bearer k"}
        ) as r:
            doc = await r.json()
        async with s.post(
            sb.openai_base_url + "/embeddings", json={"model": "e", "input": "x"}, headers={"authorization": "Bearer k"}
        ) as r:
            emb = await r.json()
    assert doc["choices"][0]["message"]["content"] == "mx says 1"
    assert seen[0].system == "sys" and seen[0].last_user_text == "u"
    assert len(emb["data"][0]["embedding"]) == 16
