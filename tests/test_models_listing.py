"""``models()`` and ``infermux models`` (issue 8 item 16): Anthropic's list is asked with ``anthropic-version``
(the sandbox, like the real API, refuses it without), and one failing endpoint does not hide the others."""

from __future__ import annotations

from pathlib import Path

import pytest

import infermux
from infermux.cli import main
from infermux.endpoint import EndpointConfig
from infermux.errors import AllEndpointsFailedError, APIConnectionError, AuthenticationError
from infermux.providers import anthropic
from infermux.resilience.retry import RetryPolicy
from infermux.sandbox import DEFAULT_MODELS, Fault, Sandbox, SandboxThread

NO_RETRY = RetryPolicy(max_retries=0)


def test_anthropic_model_list_request_carries_the_version() -> None:
    req = anthropic.PROVIDER.build_models()  # type: ignore[misc]
    assert req.method == "GET" and req.path.startswith("/v1/models")
    assert req.headers["anthropic-version"] == anthropic.ANTHROPIC_VERSION


async def test_anthropic_endpoint_lists_models_from_the_sandbox() -> None:
    async with Sandbox(host="127.0.0.1", port=0, keys=["sk-ant"]) as sb:
        cfg = EndpointConfig(name="claude", provider="anthropic", base_url=sb.anthropic_base_url, api_keys=("sk-ant",))
        async with infermux.AsyncClient([cfg]) as client:
            listing = await client.models()
        assert listing == {"claude": list(DEFAULT_MODELS)} and listing.errors == {}
        assert [r.route for r in sb.stats.records] == ["GET /v1/models"]


async def test_one_failing_endpoint_does_not_hide_the_others() -> None:
    async with Sandbox(host="127.0.0.1", port=0) as sb:
        cfgs = [
            EndpointConfig(name="oa", provider="openai", base_url=sb.openai_base_url, api_keys=("k",), retry=NO_RETRY),
            EndpointConfig(name="dead", provider="openai", base_url="http://127.0.0.1:9/v1", retry=NO_RETRY),
            EndpointConfig(name="an", provider="anthropic", base_url=sb.anthropic_base_url, api_keys=("k",)),
        ]
        async with infermux.AsyncClient(cfgs) as client:
            listing = await client.models(timeout=10)
            assert set(listing) == {"oa", "an"} and listing["an"] == list(DEFAULT_MODELS)
            assert isinstance(listing.errors["dead"], APIConnectionError)
            assert listing.errors["dead"].endpoint == "dead" and "dead" in repr(listing)
            with pytest.raises(APIConnectionError):  # a named endpoint's failure is raised
                await client.models(endpoint="dead")
            sb.faults.push(Fault.status_error(401), times=2)
            with pytest.raises(AllEndpointsFailedError) as ei:  # all failed: every error, in order
                await client.models(timeout=10)
            assert [e.endpoint for e in ei.value.errors] == ["oa", "dead", "an"]
            assert isinstance(ei.value.errors[0], AuthenticationError)


def test_cli_lists_every_endpoint_and_reports_the_failing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SandboxThread(host="127.0.0.1", port=0) as sbt:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[[endpoints]]\nname = "claude"\nprovider = "anthropic"\nbase_url = "{sbt.anthropic_base_url}"\n'
            'api_keys = ["k"]\n'
            '[[endpoints]]\nname = "dead"\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
            "[endpoints.retry]\nmax_retries = 0\n"
        )
        assert main(["models", "--config", str(cfg)]) == 1
        out, err = capsys.readouterr()
        assert out.splitlines() == [f"claude\t{m}" for m in DEFAULT_MODELS]
        assert "endpoint dead: APIConnectionError" in err
        assert main(["models", "--config", str(cfg), "--endpoint", "claude"]) == 0
