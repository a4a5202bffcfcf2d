"""Every backend through the ``infermux`` CLI (config file -> AsyncClient -> provider -> emulator on 127.0.0.1):
a non-stream chat, a streamed chat, and the stats the CLI prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infermux.cli import main
from infermux.sandbox import SandboxThread

# backend -> (sandbox backends, provider, base-URL suffix, model, emulator model list)
CASES: dict[str, tuple[tuple[str, ...], str, str, str, tuple[str, ...] | None]] = {
    "openai": (("openai", "anthropic"), "openai", "/v1", "gpt-4o-mini", None),
    "openai_responses": (("openai", "anthropic"), "openai_responses", "/v1", "gpt-4o-mini", None),
    "anthropic": (("openai", "anthropic"), "anthropic", "", "claude-3-5-haiku-latest", None),
    "gemini": (("gemini",), "gemini", "/v1beta", "gemini-2.5-flash", ("gemini-2.5-flash",)),
    "groq": (("groq",), "groq", "/openai/v1", "llama-3.1-8b-instant", None),
    "ollama": (("ollama",), "ollama", "", "llama3.2", ("llama3.2:latest",)),
    "tgi": (("tgi",), "tgi", "", "tgi", None),
    "tgi_chat": (("tgi",), "tgi_chat", "/v1", "tgi", None),
    "vllm": (("vllm",), "vllm", "/v1", "meta-llama/Llama-3.2-1B-Instruct", ("meta-llama/Llama-3.2-1B-Instruct",)),
    "ovms": (("ovms",), "ovms", "/v3", "meta-llama/Llama-3.2-1B-Instruct", None),
    "opea": (("opea",), "opea", "", "chatqna", None),
    "opea_llm": (("opea",), "opea_llm", "/v1", "Intel/neural-chat-7b-v3-3", None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chat_through_cli(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backends, provider, suffix, model, models = CASES[name]
    kw = {"models": models} if models else {}
    with SandboxThread(backends=backends, **kw) as sb:
        cfg = tmp_path / "infermux.toml"
        cfg.write_text(
            f'[[endpoints]]\nname = "{name}"\nprovider = "{provider}"\nbase_url = "{sb.base_url}{suffix}"\n'
            f'model = "{model}"\napi_keys = ["test-key-123"]\n[endpoints.retry]\nmax_retries = 0\n'
        )
        assert main(["chat", "--config", str(cfg), "--no-stream", "--max-tokens", "32", "hello", "there"]) == 0
        plain = capsys.readouterr().out.strip()
        assert plain, f"{name}: empty answer"
        assert main(["chat", "--config", str(cfg), "--stats", "--max-tokens", "32", "hello", "there"]) == 0
        out, err = capsys.readouterr()
        assert out.strip() == plain, f"{name}: streamed text differs from the non-stream answer"
        stats = json.loads(err[err.index("{") :])
        assert stats[name]["successes"] == 1 and stats[name]["provider"] == provider
        reached = [r for r in sb.stats.records if r.request_id]
        assert len(reached) == 2 and len({r.request_id for r in reached}) == 2
