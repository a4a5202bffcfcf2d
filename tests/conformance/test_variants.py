"""Runs the recorded-traffic checks over synthetic holdout-like recordings (``_variants``): every variant is
written to a folder in the documented format, loaded back through ``INFERMUX_RECORDINGS`` like any set, and
given to the same ``check_response`` / ``check_request`` of every provider module that accepts it. A check
that skips a variant fails the test unless the variant names that skip as expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._checks import not_skipped
from ._recordings import Recording, load
from ._variants import Variant, truncated_streams, variants
from .test_recordings_format import CHECK_MODULES, check_format

pytestmark = pytest.mark.conformance

VARIANTS = variants()
_PROVIDERS = {v.provider for v in VARIANTS}


@pytest.fixture(scope="module")
def variant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("variants")
    for v in VARIANTS:
        path = root / v.provider / f"{v.name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(v.data, ensure_ascii=False, indent=1))
    return root


def _loaded(variant_dir: Path, v: Variant, monkeypatch: pytest.MonkeyPatch) -> Recording:
    monkeypatch.setenv("INFERMUX_RECORDINGS", str(variant_dir))
    recs = [r for r in load(_PROVIDERS) if r.path.stem == v.name]
    assert len(recs) == 1
    return recs[0]


def _run(rec: Recording, skips: dict[str, str]) -> int:
    ran = 0
    for module in CHECK_MODULES:
        if not module.accepts(rec):
            continue
        for side, fn in (("response", module.check_response), ("request", getattr(module, "check_request", None))):
            if fn is None:
                continue
            if side in skips:
                with pytest.raises(pytest.skip.Exception):
                    fn(rec)
                continue
            with not_skipped(f"{module.__name__}.check_{side}({rec})"):
                fn(rec)
            ran += 1
    return ran


def test_variants_cover_every_provider() -> None:
    assert {
        "openai",
        "azure-openai",
        "anthropic",
        "bedrock-anthropic",
        "deepseek",
        "gemini",
        "groq",
        "huggingface",
        "ollama",
        "vertexai",
        "vllm",
    } <= _PROVIDERS
    assert len({v.name for v in VARIANTS}) == len(VARIANTS)


@pytest.mark.parametrize("v", VARIANTS, ids=lambda v: v.name)
def test_variant(v: Variant, variant_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _loaded(variant_dir, v, monkeypatch)
    check_format(rec)
    assert _run(rec, v.skips) >= 1


CUT = truncated_streams(load(_PROVIDERS))


@pytest.mark.parametrize("v", CUT, ids=lambda v: v.name)
def test_cut_off_real_stream(v: Variant) -> None:
    """The response side of a real stream cut in half (a route a check skips is skipped here too)."""
    rec = Recording(Path(f"{v.name}.json"), v.data)
    check_format(rec)
    modules = [m for m in CHECK_MODULES if m.accepts(rec)]
    assert modules
    for module in modules:
        module.check_response(rec)
