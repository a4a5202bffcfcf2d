"""The ``infermux`` CLI against a real llama.cpp server, and config loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infermux import ConfigurationError
from infermux.cli import main
from infermux.config import endpoints_from_env, load_config
from infermux.local import LocalLlamaServer

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")  # leaks fail the test


def _env(monkeypatch: pytest.MonkeyPatch, srv: LocalLlamaServer) -> None:
    monkeypatch.setenv("INFERMUX_PROVIDER", "llamacpp")
    monkeypatch.setenv("INFERMUX_BASE_URL", srv.openai_base_url)
    monkeypatch.setenv("INFERMUX_MODEL", "smollm2")


def test_chat_streams_to_stdout(
    llama_server: LocalLlamaServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, llama_server)
    assert main(["chat", "--max-tokens", "8", "--temperature", "0", "--stats", "Say", "hello"]) == 0
    out, err = capsys.readouterr()
    assert out.strip()
    assert "finish=" in err and '"successes": 1' in err


def test_chat_no_stream_models_and_stats(
    llama_server: LocalLlamaServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, llama_server)
    assert main(["chat", "--no-stream", "--max-tokens", "4", "hi"]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["models"]) == 0
    assert "default\tsmollm2" in capsys.readouterr().out
    assert main(["stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["default"]["successes"] == 1 and stats["default"]["provider"] == "llamacpp"


def test_cli_reports_typed_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("INFERMUX_PROVIDER", "openai")
    monkeypatch.setenv("INFERMUX_BASE_URL", "http://127.0.0.1:9/v1")  # discard port: connection refused
    monkeypatch.setenv("INFERMUX_MODEL", "m")
    cfg = tmp_config(
        monkeypatch,
        '[[endpoints]]\nname = "dead"\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        "[endpoints.retry]\nmax_retries = 0\n",
    )
    assert main(["chat", "--config", str(cfg), "--no-stream", "hi"]) == 2
    err = capsys.readouterr().err
    assert "APIConnectionError" in err and "endpoint=dead" in err and "retryable=True" in err


def tmp_config(monkeypatch: pytest.MonkeyPatch, text: str, suffix: str = ".toml") -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp())
    p = d / f"infermux{suffix}"
    p.write_text(text)
    return p


def test_config_file_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_config(
        monkeypatch,
        """
[[endpoints]]
name = "a"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
model = "m"
api_key_env = ["A_KEYS"]
max_concurrency = 3
overflow = "shed_lowest"
[endpoints.retry]
max_retries = 2
retry_statuses = [429, 503]
[endpoints.breaker]
consecutive_failures = 2
[endpoints.timeouts]
read = 5
""",
    )
    (a,) = load_config(p)
    assert a.retry.max_retries == 2 and a.retry.retry_statuses == frozenset({429, 503})
    assert a.breaker.consecutive_failures == 2 and a.timeouts.read == 5 and a.max_concurrency == 3
    monkeypatch.setenv("A_KEYS", "k1,k2")
    assert a.resolved_keys() == ("k1", "k2")
    monkeypatch.setenv("INFERMUX_CONFIG", str(p))
    assert [e.name for e in endpoints_from_env()] == ["a"]

    bad = tmp_config(monkeypatch, '[[endpoints]]\nname = "x"\nprovider = "openai"\nbogus = 1\n')
    with pytest.raises(ConfigurationError, match="unknown setting 'bogus'"):
        load_config(bad)
    with pytest.raises(ConfigurationError, match="invalid TOML"):
        load_config(tmp_config(monkeypatch, "[[endpoints]\n"))
    with pytest.raises(ConfigurationError, match="retry"):
        load_config(tmp_config(monkeypatch, '[[endpoints]]\nname="x"\nprovider="openai"\n[endpoints.retry]\nfoo=1\n'))
    monkeypatch.delenv("A_KEYS")
    with pytest.raises(ConfigurationError, match="A_KEYS"):
        a.resolved_keys()


def test_providers_lists_every_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from infermux.providers import available

    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    names = available()
    expected = {"openai", "anthropic", "llamacpp", "gemini", "groq", "ollama", "tgi", "tei", "vllm", "ovms", "opea"}
    assert expected <= set(names)
    for name in names:
        assert f"\n{name} " in "\n" + out
    assert out.count("capabilities:") == len(names)


def test_yaml_and_json_config(monkeypatch: pytest.MonkeyPatch) -> None:
    y = tmp_config(
        monkeypatch,
        "endpoints:\n  - name: y\n    provider: anthropic\n    model: claude\n    retry:\n      max_retries: 1\n",
        suffix=".yaml",
    )
    (ep,) = load_config(y)
    assert (ep.name, ep.provider, ep.model, ep.retry.max_retries) == ("y", "anthropic", "claude", 1)
    j = tmp_config(monkeypatch, '{"endpoints": [{"name": "j", "provider": "openai", "models": ["a", "b"]}]}', ".json")
    assert load_config(j)[0].models == ("a", "b")
    with pytest.raises(ConfigurationError, match="invalid YAML"):
        load_config(tmp_config(monkeypatch, "endpoints: [\n", suffix=".yml"))
    with pytest.raises(ConfigurationError, match="must end in"):
        load_config(tmp_config(monkeypatch, "x", suffix=".ini"))


# ---------------------------------------------------------------------- first-hour CLI behaviour


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed: connection refused


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from infermux import __version__

    with pytest.raises(SystemExit) as ei:
        main(["--version"])
    assert ei.value.code == 0 and capsys.readouterr().out.strip() == f"infermux {__version__}"


@pytest.mark.parametrize("argv", [[], ["chat"], ["models"], ["stats"], ["providers"], ["sandbox"]])
def test_help_texts_are_plain(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "usage: infermux" in out
    if argv == ["sandbox"]:
        from infermux.sandbox._cli import ALL_BACKENDS

        assert "usage: infermux sandbox" in out and "python -m" not in out
        assert len(ALL_BACKENDS) >= 10 and all(b in out for b in ALL_BACKENDS)
    if argv == ["chat"]:
        assert "--timeout" in out and "--retries" in out


@pytest.mark.parametrize("stream", [False, True])
def test_wrong_port_is_reported_at_once(
    stream: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    monkeypatch.setenv("INFERMUX_PROVIDER", "openai")
    monkeypatch.setenv("INFERMUX_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    monkeypatch.setenv("INFERMUX_MODEL", "m")
    started = time.monotonic()
    assert main(["chat", "hi"] if stream else ["chat", "--no-stream", "hi"]) == 2
    assert time.monotonic() - started < 5  # was 26 s of backoff, then "circuit breaker is open"
    err = capsys.readouterr().err
    assert "APIConnectionError" in err and "attempts=2" in err and "circuit breaker" not in err
    assert "hint: no server answered" in err


def test_retries_and_timeout_options(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from infermux.sandbox import Fault, SandboxThread

    with SandboxThread() as sb:
        monkeypatch.setenv("INFERMUX_PROVIDER", "openai")
        monkeypatch.setenv("INFERMUX_BASE_URL", sb.openai_base_url)
        monkeypatch.setenv("INFERMUX_MODEL", "gpt-4o-mini")
        monkeypatch.setenv("INFERMUX_API_KEY", "sk-test")
        sb.faults.push(Fault.status_error(503, retry_after_ms=1), times=2)
        assert main(["chat", "--no-stream", "--retries", "2", "hi"]) == 0  # two 503s, then the answer
        assert sb.stats.total == 3
        sb.faults.set_default(Fault.slow_headers(5.0))
        started = time.monotonic()
        assert main(["chat", "--no-stream", "--timeout", "0.5", "hi"]) == 2
        assert time.monotonic() - started < 3
        assert "DeadlineExceededError" in capsys.readouterr().err
        sb.faults.set_default(None)
        assert main(["models", "--timeout", "5"]) == 0
    with pytest.raises(SystemExit):
        main(["chat", "--timeout", "0", "hi"])
    with pytest.raises(SystemExit):
        main(["chat", "--retries", "-1", "hi"])
