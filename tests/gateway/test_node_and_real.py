"""The gateway in front of the REAL llama.cpp server (xllamacpp + SmolLM2) with the official openai and anthropic
Python SDKs, and the official openai npm SDK under Node against both the real server and the emulators.

The npm package is installed by the ``node_openai`` fixture into ``.tmp/node-gateway`` (git-ignored) with
``npm install``; the tests are skipped, loudly, only when ``node``/``npm`` are missing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import infermux
from infermux.gateway import Gateway, GatewayServer, GatewaySettings
from infermux.local import LocalLlamaServer
from infermux.sandbox import Sandbox

from .conftest import MASTER, endpoints

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / ".tmp" / "node-gateway"
SCRIPT = Path(__file__).parent / "node" / "sdk_check.mjs"
PREFILL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "'


@pytest.fixture(scope="session")
def node_openai() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        msg = "NODE IS MISSING: the official openai npm SDK check of the gateway did NOT run (install node and npm)"
        print(f"\n!!! {msg}", file=sys.stderr)
        pytest.skip(msg)
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        (NODE_DIR / "package.json").write_text('{"name": "infermux-gateway-check", "private": true, "type": "module"}')
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", "openai@6"],
            cwd=NODE_DIR,
            check=True,
            timeout=180,
        )
    return NODE_DIR


async def run_node(node_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    script = node_dir / "sdk_check.mjs"
    script.write_text(SCRIPT.read_text())  # beside node_modules, so `import "openai"` resolves
    proc = await asyncio.create_subprocess_exec(
        "node", str(script), env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()[-2000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@pytest.fixture
async def real_gateway(llama_server_embed: LocalLlamaServer) -> AsyncIterator[GatewayServer]:
    cfg = llama_server_embed.endpoint_config(retry=infermux.RetryPolicy(max_retries=0, deadline=60))
    gw = Gateway(infermux.AsyncClient([cfg], trust_env=False), GatewaySettings(port=0, master_key=MASTER))
    async with GatewayServer(gw) as srv:
        yield srv


@pytest.mark.realserver
async def test_python_sdks_against_real_llamacpp(real_gateway: GatewayServer) -> None:
    srv = real_gateway
    async with openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key=MASTER, max_retries=0, timeout=60) as c:
        q = [{"role": "user", "content": "What is the capital of France?"}]
        r = await c.chat.completions.create(model="smollm2", messages=q, max_tokens=12, temperature=0)
        text = r.choices[0].message.content
        assert text and r.usage is not None and 0 < r.usage.completion_tokens <= 12
        # same protocol: unmodeled request fields (logprobs) and vendor response fields (timings) pass through
        r2 = await c.chat.completions.create(
            model="smollm2",
            messages=q,
            max_tokens=4,
            temperature=0,
            logprobs=True,
            top_logprobs=2,
        )
        assert r2.choices[0].logprobs is not None and r2.choices[0].logprobs.content
        assert "timings" in (r2.model_extra or {})
        s = await c.chat.completions.create(model="smollm2", messages=q, max_tokens=12, temperature=0, stream=True)
        assert "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices]) == text
        e = await c.embeddings.create(model="smollm2", input=["Paris", "a cat"])
        assert len(e.data) == 2 and len(e.data[0].embedding) == 576
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
        msgs = [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": PREFILL}]
        t = await c.chat.completions.create(
            model="smollm2",
            messages=msgs,
            tools=tools,
            tool_choice="required",
            max_tokens=60,
            temperature=0,
        )
        assert t.choices[0].message.tool_calls and t.choices[0].message.tool_calls[0].function.name == "get_weather"
        with pytest.raises(openai.InternalServerError) as e500:  # a real 500 of llama.cpp (prefill + "auto")
            await c.chat.completions.create(
                model="smollm2", messages=msgs, tools=tools, tool_choice="auto", max_tokens=30
            )
        assert e500.value.status_code == 500 and "endpoint=local" in e500.value.message
        with pytest.raises(openai.BadRequestError):  # a real 400: the prompt is over the context size
            await c.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "word " * 5000}])
        long = await c.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Count to 300."}], max_tokens=400, stream=True
        )
        async for ch in long:
            if ch.choices and ch.choices[0].delta.content:
                break
        await long.close()
    async with anthropic.AsyncAnthropic(base_url=srv.url, api_key=MASTER, max_retries=0, timeout=60) as a:
        m = await a.messages.create(model="smollm2", max_tokens=12, messages=[{"role": "user", "content": "Hi!"}])
        assert m.content[0].type == "text" and m.content[0].text and m.usage.output_tokens > 0
        async with a.messages.stream(
            model="smollm2", max_tokens=12, messages=[{"role": "user", "content": "Hi!"}]
        ) as st:
            assert "".join([x async for x in st.text_stream]) == m.content[0].text
    stats = srv.gateway.client.stats()["local"]
    assert stats["cancelled"] == 1 and stats["in_flight"] == 0


@pytest.mark.realserver
async def test_node_sdk_against_real_llamacpp(node_openai: Path, real_gateway: GatewayServer) -> None:
    out = await run_node(node_openai, {"BASE_URL": real_gateway.url + "/v1", "KEY": MASTER, "MODEL": "smollm2"})
    assert out["chat"] and out["stream"] == out["chat"] and out["finish"] in ("stop", "length")
    assert out["embeddings"] == [2, 576] and out["unauth"] == 401 and out["left_stream"] is True


async def test_node_sdk_against_emulators(node_openai: Path) -> None:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        gw = Gateway(infermux.AsyncClient(endpoints(sb), trust_env=False), GatewaySettings(port=0, master_key=MASTER))
        async with GatewayServer(gw) as srv:
            for model in ("gpt-4o-mini", "claude-sonnet-4-20250514"):
                env = {"BASE_URL": srv.url + "/v1", "KEY": MASTER, "MODEL": model, "TOOLS": "1"}
                env.update(SANDBOX_URL=sb.base_url, EMBED_MODEL="gpt-4o-mini")
                out = await run_node(node_openai, env)
                assert out["chat"] == "echo: What is the capital of France?" and out["stream"] == out["chat"]
                assert out["tool"] == "get_weather" and out["unauth"] == 401
                assert out["rate_limited"] == [429, "4"] and out["server_error"] == 503
                assert out["embeddings"] == [2, 64]


def test_serve_cli_with_config_and_sigterm(tmp_path: Path) -> None:
    """`infermux serve --config FILE --port 0` in a child process: serves, then drains and exits on SIGTERM."""
    import signal
    import urllib.request

    from infermux.sandbox import SandboxThread

    with SandboxThread() as sb:
        cfg = tmp_path / "gw.toml"
        cfg.write_text(
            f'[gateway]\nmax_messages = 5\n\n[[endpoints]]\nname = "gpt"\nprovider = "openai"\n'
            f'base_url = "{sb.sandbox.openai_base_url}"\nmodel = "gpt-4o-mini"\napi_keys = ["k"]\n'
            '\n[[groups]]\nname = "fast"\nendpoints = ["gpt"]\n'
        )
        env = {**os.environ, "INFERMUX_MASTER_KEY": MASTER, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "infermux.cli", "serve", "--config", str(cfg), "--port", "0"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert "listening on http://127.0.0.1:" in line, line
            url = line.strip().rsplit(" ", 1)[-1]
            body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
            req = urllib.request.Request(
                url + "/v1/chat/completions",
                body,
                {"authorization": f"Bearer {MASTER}", "content-type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert json.load(resp)["choices"][0]["message"]["content"] == "echo: hi"
            grouped = urllib.request.Request(  # a model group of the same file serves too
                url + "/v1/chat/completions",
                body.replace(b"gpt-4o-mini", b"fast"),
                {"authorization": f"Bearer {MASTER}", "content-type": "application/json"},
            )
            with urllib.request.urlopen(grouped, timeout=10) as resp:
                assert json.load(resp)["choices"][0]["message"]["content"] == "echo: hi"
            ready = urllib.request.Request(url + "/ready")
            with urllib.request.urlopen(ready, timeout=10) as resp:
                assert json.load(resp)["models"] == {"fast": ["gpt"], "gpt-4o-mini": ["gpt"]}
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
            assert "draining" in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
