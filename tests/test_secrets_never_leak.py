"""Credentials never leak (issue 8 items 1 and 13).

A marker secret is planted in every field that can hold a credential (api_keys, credential headers including
``authorization``, the base_url query, env var values) and every error path reachable here is driven: config
files (TOML/YAML/JSON, valid and broken), env configuration, HTTP errors from the sandbox and from an adversarial
loopback server that echo the credentials back (status errors, HTML 200, SSE error events, a cut stream),
connection failures, the CLI, reprs of every public object, ``stats()``, tracebacks with their causes and
DEBUG logs of every logger. The marker must never appear."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

import infermux
from infermux.config import endpoints_from_env, load_config
from infermux.endpoint import Endpoint, EndpointConfig
from infermux.errors import ConfigurationError, InfermuxError
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import Fault, Sandbox, SandboxThread
from infermux.transport import MockResponse, MockTransport, Timeouts

pytestmark = [pytest.mark.timeout(60)]

MARK = "MARKERSECRET"
KEY = f"sk-{MARK}-apikey-0001"  # api_keys
KEY2 = f"sk-{MARK}-apikey-0002"
HDR_KEY = f"{MARK}-azure-style-api-key"  # headers={"api-key": ...}
TOKEN = f"{MARK}-custom-token"  # headers={"x-custom-token": ...}
BEARER = f"{MARK}-bearer-token"  # headers={"authorization": "Bearer ..."}
QUERY = f"{MARK}-query-key"  # base_url ...?key=...
USERINFO = f"{MARK}-password"  # http://user:...@host
ENV_KEY = f"sk-{MARK}-from-env"
NO_RETRY = RetryPolicy(max_retries=1, initial_delay=0.001, max_delay=0.001)


def assert_clean(*things: object) -> None:
    for t in things:
        text = t if isinstance(t, str) else repr(t)
        assert MARK not in text, text


def assert_error_clean(err: BaseException) -> None:
    texts: list[object] = [str(err), repr(err), "".join(traceback.format_exception(err))]
    if isinstance(err, InfermuxError):
        texts += [err.message, err.args, err.body, err.provider_message, err.context()]
        texts += [getattr(err, "partial_text", "")]
        for sub in getattr(err, "errors", ()):
            assert_error_clean(sub)
    assert_clean(*texts)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterable[None]:
    """Every logger at DEBUG for the whole test; nothing logged may hold the marker."""
    caplog.set_level(logging.DEBUG)
    yield
    for rec in caplog.records:
        assert_clean(rec.getMessage(), rec.args, rec.exc_text or "")
        if rec.exc_info and rec.exc_info[1] is not None:
            assert_error_clean(rec.exc_info[1])


# ---------------------------------------------------------------------- config files


def _entry(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "name": "e",
        "provider": "openai",
        "base_url": f"http://127.0.0.1:1/v1?key={QUERY}",
        "model": "m",
        "api_keys": [KEY],
        "headers": {"authorization": f"Bearer {BEARER}", "api-key": HDR_KEY},
    }
    e.update(over)
    return {k: v for k, v in e.items() if v is not None}


def _toml(entry: dict[str, Any]) -> str:
    lines = ["[[endpoints]]"]
    for k, v in entry.items():
        if isinstance(v, dict):
            continue
        lines.append(f"{k} = {json.dumps(v)}")
    for k, v in entry.items():
        if isinstance(v, dict):
            lines.append(f"[endpoints.{k}]")
            lines += [f"{json.dumps(hk)} = {json.dumps(hv)}" for hk, hv in v.items()]
    return "\n".join(lines) + "\n"


def _yaml(entry: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump({"endpoints": [entry]}))


BAD_ENTRIES = {
    "no-name": _entry(name=None),
    "no-provider": _entry(provider=None),
    "unknown-setting": _entry(secret_setting=KEY),
    "bad-key-type": _entry(api_keys=[KEY, 5]),
    "bad-header-type": _entry(headers={"authorization": f"Bearer {BEARER}", "api-key": 5}),
    "header-injection": _entry(headers={"authorization": f"Bearer {BEARER}\r\nx: 1"}),
    "userinfo": _entry(base_url=f"http://user:{USERINFO}@127.0.0.1:1/v1?key={QUERY}"),
    "not-http": _entry(base_url=f"ftp://user:{USERINFO}@host/v1?key={QUERY}"),
    "bad-port": _entry(base_url=f"http://127.0.0.1:99999/v1?key={QUERY}"),
    "unknown-provider": _entry(provider="nope"),
    "bad-timeouts": _entry(timeouts={"read": 0}),
}


@pytest.mark.parametrize("fmt", ["toml", "yaml", "json"])
@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_config_file_errors_never_print_a_secret(tmp_path: Path, fmt: str, case: str) -> None:
    entry = BAD_ENTRIES[case]
    text = {"toml": _toml, "yaml": _yaml, "json": lambda e: json.dumps({"endpoints": [e]})}[fmt](entry)
    path = tmp_path / f"c.{fmt}"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as ei:
        for cfg in load_config(path):
            Endpoint(cfg)
    assert_error_clean(ei.value)


BROKEN_FILES = {
    "toml": [f'[[endpoints]]\nname = "e"\napi_keys = ["{KEY}"\n', f'[[endpoints]]\nkey = "{KEY}" trailing\n'],
    "yaml": [
        f"endpoints:\n  - name: e\n    api_keys: [{KEY}\n",
        f"endpoints:\n  - api_keys: {KEY}\n   bad: indent: {KEY}\n",
        f'endpoints:\n  - headers: {{authorization: "Bearer {BEARER}\n',
    ],
    "json": [f'{{"endpoints": [{{"api_keys": ["{KEY}",]}}]}}', f'{{"endpoints": [{{"api_keys": "{KEY}\u0001"}}]}}'],
}


@pytest.mark.parametrize(("fmt", "i"), [(f, i) for f, texts in BROKEN_FILES.items() for i in range(len(texts))])
def test_unparseable_config_files_never_quote_the_secret(tmp_path: Path, fmt: str, i: int) -> None:
    path = tmp_path / f"c.{fmt}"
    path.write_text(BROKEN_FILES[fmt][i])
    with pytest.raises(ConfigurationError) as ei:
        load_config(path)
    assert_error_clean(ei.value)
    assert any(w in str(ei.value) for w in ("line", "char", "end of document"))  # still says where


def test_config_entries_that_are_not_tables_are_described_by_type(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"endpoints": [[KEY, BEARER], KEY]}))
    with pytest.raises(ConfigurationError) as ei:
        load_config(path)
    assert_error_clean(ei.value)
    assert "endpoints[0]" in str(ei.value) and "list" in str(ei.value)


# ---------------------------------------------------------------------- env configuration


def test_env_configuration_reprs_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "INFERMUX_PROVIDER": "openai",
        "INFERMUX_BASE_URL": f"http://127.0.0.1:1/v1?key={QUERY}",
        "INFERMUX_API_KEY": f"{KEY},{KEY2}",
    }
    [cfg] = endpoints_from_env(env)
    ep = Endpoint(cfg)
    assert_clean(cfg, ep, ep.stats(), ep.keys, ep.keys.snapshot(), ep.breaker, ep.gate, str(cfg))
    with pytest.raises(ConfigurationError) as ei:
        endpoints_from_env({**env, "INFERMUX_BASE_URL": f"http://u:{USERINFO}@127.0.0.1:1/v1"})
    assert_error_clean(ei.value)

    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEY)
    monkeypatch.setenv("MY_KEYS", f"{KEY}, {KEY2}")
    cfgs = [*endpoints_from_env(), EndpointConfig(name="mine", provider="groq", api_key_env=("MY_KEYS",))]
    client = infermux.AsyncClient(cfgs)
    assert_clean(cfgs, client.endpoints, client.stats(), json.dumps(client.stats(), default=str))


# ---------------------------------------------------------------------- HTTP errors that echo the credentials


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(host="127.0.0.1", port=0) as sandbox:
        yield sandbox


def _sb_configs(sb: Sandbox) -> list[EndpointConfig]:
    common: dict[str, Any] = {"model": "gpt-4o-mini", "retry": NO_RETRY}
    return [
        EndpointConfig(
            name="oa",
            provider="openai",
            base_url=f"{sb.openai_base_url}?key={QUERY}",
            api_keys=(KEY,),
            headers={"api-key": HDR_KEY, "x-custom-token": TOKEN},
            **common,
        ),
        EndpointConfig(
            name="oa-bearer",
            provider="openai",
            base_url=sb.openai_base_url,
            headers={"authorization": f"Bearer {BEARER}"},
            **common,
        ),
        EndpointConfig(
            name="an",
            provider="anthropic",
            base_url=sb.anthropic_base_url,
            api_keys=(KEY2,),
            headers={"x-custom-token": TOKEN},
            **{**common, "model": "claude-sonnet-4-20250514"},
        ),
    ]


#: what a server echoing each endpoint's credentials back would say (only what that endpoint sent it)
ECHOES = {
    "oa": f"key {KEY} / api-key {HDR_KEY} / token {TOKEN} / url ?key={QUERY} was rejected",
    "oa-bearer": f"authorization: Bearer {BEARER} was rejected",
    "an": f"x-api-key {KEY2} / token {TOKEN} was rejected",
}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 529])
@pytest.mark.parametrize("stream", [False, True])
async def test_sandbox_errors_that_echo_every_secret_are_scrubbed(sb: Sandbox, status: int, stream: bool) -> None:
    async with infermux.AsyncClient(_sb_configs(sb)) as client:
        for ep in client.endpoints:
            sb.faults.clear()  # a non-retried error leaves the second one queued
            sb.faults.push(Fault.status_error(status, message=ECHOES[ep.name], retry_after_ms=1), times=2)
            with pytest.raises(InfermuxError) as ei:
                if stream:
                    async with client.stream("hi", endpoint=ep.name, max_tokens=5) as s:
                        await s.final_response()
                else:
                    await client.chat("hi", endpoint=ep.name, max_tokens=5)
            assert ei.value.status_code == status
            assert_error_clean(ei.value)
            assert "[redacted]" in str(ei.value)
        assert_clean(client.stats(), client.endpoints, json.dumps(client.stats(), default=str))
        # the requests really carried the secrets: the scrubbing is not vacuous
        assert sb.stats.total >= 3


async def test_successful_calls_and_model_listing_leave_no_trace(sb: Sandbox) -> None:
    async with infermux.AsyncClient(_sb_configs(sb)) as client:
        for ep in client.endpoints:
            r = await client.chat("hi", endpoint=ep.name, max_tokens=5)
            assert_clean(r, r.raw)
            async with client.stream("hi", endpoint=ep.name, max_tokens=5) as s:
                assert_clean(await s.final_response(), s)
        listing = await client.models()
        assert_clean(listing, listing.errors, client.stats())


class EchoServer:
    """An adversarial server: echoes the raw request (URL with its query, every header) back in what it answers.
    The first path segment picks the answer: s401, html200, sse_error, sse_cut."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":", 1)[1]))
            echo = head.decode("latin-1").replace("\r\n", " | ").replace('"', "'")
            mode = head.split(b" ", 2)[1].decode().split("/")[1]
            if mode == "s401":
                body = json.dumps({"error": {"message": f"bad credentials: {echo}", "type": "invalid_request_error"}})
                status, ctype = "401 Unauthorized", "application/json"
            elif mode == "html200":
                body, status, ctype = f"<html>{echo}</html>", "200 OK", "text/html"
            elif mode == "sse_error":
                body = f"data: {json.dumps({'error': {'message': echo, 'type': 'server_error'}})}\n\n"
                status, ctype = "200 OK", "text/event-stream"
            else:  # sse_cut: the "answer" quotes the request, then the stream ends without [DONE]
                chunk = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": echo}}],
                }
                body, status, ctype = f"data: {json.dumps(chunk)}\n\n", "200 OK", "text/event-stream"
            data = body.encode()
            writer.write(f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(data)}\r\n\r\n".encode())
            writer.write(data)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> EchoServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.mark.parametrize(
    ("mode", "stream"), [("s401", False), ("html200", False), ("sse_error", True), ("sse_cut", True)]
)
@pytest.mark.parametrize("auth", ["api_keys", "authorization"])
async def test_adversarial_echo_server_never_gets_a_secret_into_an_error(mode: str, stream: bool, auth: str) -> None:
    async with EchoServer() as srv:
        creds: dict[str, Any] = (
            {"api_keys": (KEY,), "headers": {"api-key": HDR_KEY, "x-custom-token": TOKEN}}
            if auth == "api_keys"
            else {"headers": {"authorization": f"Bearer {BEARER}"}}
        )
        cfg = EndpointConfig(
            name="echo",
            provider="openai",
            base_url=f"http://127.0.0.1:{srv.port}/{mode}/v1?key={QUERY}&api-version=2024",
            model="m",
            retry=NO_RETRY,
            timeouts=Timeouts(connect=2, read=2),
            **creds,
        )
        async with infermux.AsyncClient([cfg]) as client:
            with pytest.raises(InfermuxError) as ei:
                if stream:
                    async with client.stream("hi") as s:
                        await s.final_response()
                else:
                    await client.chat("hi")
            assert_error_clean(ei.value)
            if mode != "sse_cut":  # there the echo is the "answer" the caller received, not in the error
                assert "[redacted]" in str(ei.value) or "[redacted]" in repr(ei.value.body)
            assert_clean(client.stats(), client.endpoints)


async def test_connection_errors_never_show_the_url_query() -> None:
    cfg = EndpointConfig(
        name="dead",
        provider="openai",
        base_url=f"http://127.0.0.1:9/v1?key={QUERY}",  # the discard port: connection refused
        model="m",
        api_keys=(KEY,),
        retry=NO_RETRY,
    )
    async with infermux.AsyncClient([cfg]) as client:
        with pytest.raises(infermux.APIConnectionError) as ei:
            await client.chat("hi")
        assert_error_clean(ei.value)
        with pytest.raises(InfermuxError) as ei2:
            await client.models()
        assert_error_clean(ei2.value)


async def test_mock_transport_request_reprs_hide_url_query_and_headers() -> None:
    transport = MockTransport(lambda r: MockResponse(500, {}, b"{}"))
    cfg = EndpointConfig(name="m", provider="openai", base_url=f"http://mock/v1?key={QUERY}", model="m",
                         api_keys=(KEY,), headers={"authorization": f"Bearer {BEARER}"}, retry=NO_RETRY)  # fmt: skip
    async with infermux.AsyncClient([cfg], transport=transport) as client:
        with pytest.raises(infermux.InternalServerError):
            await client.chat("hi")
    assert transport.requests and f"key={QUERY}" in transport.requests[0].url  # the query is sent...
    assert_clean(transport.requests)  # ...but never shown


# ---------------------------------------------------------------------- base_url credentials (item 13)


def test_base_url_query_is_redacted_in_reprs_and_stats_and_still_sent() -> None:
    cfg = EndpointConfig(name="q", provider="openai", base_url=f"https://h.example/v1/?api-key={QUERY}&v=1", model="m")
    ep = Endpoint(cfg)
    assert_clean(cfg, ep, ep.stats(), ep.shown_url)
    assert ep.stats()["base_url"] == "https://h.example/v1?api-key=***&v=***"
    assert ep.base_url == "https://h.example/v1"
    assert "api-key=***" in repr(cfg)


@pytest.mark.parametrize(
    "url", [f"http://user:{USERINFO}@127.0.0.1:1/v1", f"https://{USERINFO}@h.example/v1", "http://user@h.example/v1"]
)
def test_base_url_user_info_is_refused_clearly(url: str) -> None:
    with pytest.raises(ConfigurationError) as ei:
        Endpoint(EndpointConfig(name="u", provider="openai", base_url=url, model="m"))
    assert "user info" in str(ei.value) and "api_keys" in str(ei.value)
    assert_error_clean(ei.value)


def test_cli_prints_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from infermux.cli import main

    with SandboxThread(host="127.0.0.1", port=0) as sbt:
        path = tmp_path / "c.toml"
        entries = [
            _entry(name="ok", base_url=f"{sbt.openai_base_url}?key={QUERY}"),
            _entry(name="down", base_url=f"http://127.0.0.1:9/v1?key={QUERY}", retry={"max_retries": 0}),
        ]
        path.write_text("".join(_toml(e) for e in entries))
        sbt.faults.push(Fault.status_error(401, message=f"{KEY} {HDR_KEY} Bearer {BEARER} ?key={QUERY}"))
        assert main(["models", "--config", str(path), "--endpoint", "ok"]) == 2  # the 401, reported
        assert main(["models", "--config", str(path)]) == 1  # one endpoint listed, the other's error
        assert main(["stats", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "ok\t" in out and "down" in err
    assert_clean(out, err)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a sk-abcdefghijkl b", "a [redacted] b"),
        ("quoted 'sk-abcdefg'", "quoted '[redacted]'"),  # the head of a key cut by a snippet limit
        ("defghijkl' and more", "[redacted]' and more"),  # its tail, where a snippet starts mid-key
        ("sk-abcdefghijkl sk-abcdefgh", "[redacted] [redacted]"),
        ("sk-abcd is too short to tell", "sk-abcd is too short to tell"),
        ({"k": ["x sk-abcdefghijkl"]}, {"k": ["x [redacted]"]}),
    ],
)
def test_scrub_removes_whole_and_cut_secrets(text: Any, expected: Any) -> None:
    from infermux._redact import scrub

    assert scrub(text, ("sk-abcdefghijkl",)) == expected


def test_only_credential_like_query_values_are_scrubbed_from_errors() -> None:
    from infermux._validate import url_secrets

    found = url_secrets(f"api-version=2024-10-21&key={QUERY}&sig=abcd%2Bef&x=short&blob={'z' * 20}")
    assert QUERY in found and "abcd+ef" in found and "z" * 20 in found
    assert "2024-10-21" not in found and "short" not in found
