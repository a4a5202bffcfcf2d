"""The model registry and its CLI against real servers (two SeaweedFS instances and moto)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infermux.cli import main
from infermux.resilience import FakeClock
from infermux.s3 import NoSuchKeyError, S3Kit
from infermux.s3.registry import ModelRef, Registry

from .conftest import Servers
from .test_kit_real import MIB, _file


def _model(tmp_path: Path, seed: int) -> Path:
    d = tmp_path / f"model{seed}"
    (d / "tokenizer").mkdir(parents=True)
    _file(d, "model.safetensors", 6 * MIB, seed=seed)
    (d / "config.json").write_text(json.dumps({"seed": seed}))
    (d / "tokenizer" / "vocab.txt").write_text("shared vocabulary\n")  # the same in every version
    return d


async def test_push_pull_ls_rm_with_shared_blobs(servers: Servers, bucket: str, tmp_path: Path) -> None:
    async with S3Kit(servers.configs(), bucket=bucket, mirror=True, part_size=5 * MIB, state_dir=tmp_path) as kit:
        await kit.create_bucket()
        reg = Registry(kit, bucket, "reg")
        p1 = await reg.push(_model(tmp_path, 1), "org/tiny:v1")
        assert p1.status == "complete" and p1.files == 3 and p1.uploaded_blobs == 3 and p1.reused_blobs == 0
        p2 = await reg.push(_model(tmp_path, 2), "org/tiny:v2")
        assert p2.uploaded_blobs == 2 and p2.reused_blobs == 1  # the vocabulary is stored once
        blobs = [o.key async for o in kit.list_objects("reg/blobs/")]
        assert len(blobs) == 5
        assert await reg.list_models() == [ModelRef("org/tiny", "v1"), ModelRef("org/tiny", "v2")]
        out = tmp_path / "pulled"
        pr = await reg.pull("org/tiny:v1", out, parallel_endpoints=True)
        assert sorted(p.relative_to(out).as_posix() for p in pr.files) == [
            "config.json",
            "model.safetensors",
            "tokenizer/vocab.txt",
        ]
        for rel in ("config.json", "model.safetensors", "tokenizer/vocab.txt"):
            assert (out / rel).read_bytes() == (tmp_path / "model1" / rel).read_bytes()
        assert all(r.verified for r in pr.reports)
        again = await reg.pull("org/tiny:v1", out)
        assert again.skipped_files == 3 and again.reports == []  # verified copies are not fetched again
        rm = await reg.remove("org/tiny:v1")
        assert rm == {"manifest": "complete", "blobs_removed": 2, "blobs_kept": 1}
        assert await reg.list_models() == [ModelRef("org/tiny", "v2")]
        assert len([o async for o in kit.list_objects("reg/blobs/")]) == 3
        with pytest.raises(NoSuchKeyError, match=r"model org/tiny:v1 is not in"):
            await reg.pull("org/tiny:v1", tmp_path / "gone")
        pr2 = await reg.pull("org/tiny:v2", tmp_path / "v2")
        assert (tmp_path / "v2" / "tokenizer" / "vocab.txt").read_text() == "shared vocabulary\n"
        assert len(pr2.files) == 3


async def test_manifest_is_written_last_and_only_where_every_blob_is(
    servers: Servers, bucket: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    async with S3Kit(
        servers.configs(names=("a", "b")), bucket=bucket, mirror=True, state_dir=tmp_path, clock=clock
    ) as kit:
        await kit.create_bucket()
        reg = Registry(kit, bucket, "")
        servers.b.kill()
        res = await reg.push(_model(tmp_path, 3), "m:1")
        assert res.status == "partial" and res.manifest is not None
        assert res.manifest.succeeded == ["a"] and "b" in res.manifest.failed and "b" in res.blob_failures
        servers.wait_serving(servers.b)
        clock.advance(60)  # b's breaker opened while it was down; its open period passes
        assert await reg.list_models() == [ModelRef("m", "1")]
        with pytest.raises(NoSuchKeyError):  # b has no manifest: a reader there sees no half-pushed version
            await kit.head_on(kit.endpoint("b"), bucket, "manifests/m/1.json")
        again = await reg.push(tmp_path / "model3", "m:1")  # completing it later uploads only what b lacks
        assert again.status == "complete" and again.uploaded_blobs == 3 and again.reused_blobs == 0
        assert (await kit.head_on(kit.endpoint("b"), bucket, "manifests/m/1.json")).size > 0


def test_models_cli_push_pull_ls_rm(
    servers: Servers, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    cfg = servers.configs(names=("a",))[0]
    assert cfg.credentials is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", cfg.credentials.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", cfg.credentials.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("HOME", str(tmp_path))  # upload state goes under ~/.cache
    store = ["--store", f"s3://{bucket}/models", "--endpoint-url", servers.a.endpoint_url, "--no-progress"]

    assert main(["models", "ls", *store]) == 2  # the bucket does not exist yet: one clear line
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "NoSuchBucketError" in err and "bucket must exist" in err

    async def mk() -> None:
        async with S3Kit([cfg], bucket=bucket) as kit:
            await kit.create_bucket()

    asyncio.run(mk())
    gguf = _file(tmp_path, "tiny.gguf", 1 * MIB, seed=9)
    assert main(["models", "push", str(gguf), "tiny:q4", *store]) == 0
    assert "pushed tiny:q4: 1 files" in capsys.readouterr().out
    assert main(["models", "ls", *store]) == 0
    assert capsys.readouterr().out == "tiny\tq4\n"
    assert main(["models", "pull", "tiny:q4", str(tmp_path / "dl"), *store]) == 0
    assert (tmp_path / "dl" / "tiny.gguf").read_bytes() == gguf.read_bytes()
    assert main(["models", "rm", "tiny:q4", *store]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["blobs_removed"] == 1
    assert main(["models", "pull", "nope:1", str(tmp_path / "x"), *store]) == 2
    assert "NoSuchKeyError" in capsys.readouterr().err
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    assert main(["models", "ls", *store]) == 2
    assert "SignatureMismatchError" in capsys.readouterr().err
    assert main(["models", "push", str(gguf), "bad ref", *store]) == 2
    assert "NAME:VERSION" in capsys.readouterr().err


async def test_rm_racing_a_push_that_shares_a_blob(
    servers: Servers, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rm v1`` runs between ``push v2`` finding the shared blob already stored (so not uploading it) and
    writing v2's manifest: rm sees no v2 manifest and deletes the blob. The push must notice and store it
    again, so v2 stays pullable."""
    async with S3Kit(servers.configs(names=("a", "moto")), bucket=bucket, mirror=True, part_size=5 * MIB) as kit:
        await kit.create_bucket()
        reg = Registry(kit, bucket, "reg")
        await reg.push(_model(tmp_path, 1), "org/race:v1")
        real_put = Registry._put_manifest
        removed: list[dict[str, object]] = []

        async def rm_first(self: Registry, ref: ModelRef, body: bytes, holders: set[str]) -> object:
            removed.append(await Registry(kit, bucket, "reg").remove("org/race:v1"))
            return await real_put(self, ref, body, holders)

        monkeypatch.setattr(Registry, "_put_manifest", rm_first)
        p2 = await reg.push(_model(tmp_path, 2), "org/race:v2")
        monkeypatch.undo()
        assert removed == [{"manifest": "complete", "blobs_removed": 3, "blobs_kept": 0}]  # the shared one too
        pr = await reg.pull("org/race:v2", tmp_path / "v2")  # before the fix: NoSuchKeyError on the shared blob
        assert all(r.verified for r in pr.reports) and len(pr.files) == 3
        assert (tmp_path / "v2" / "tokenizer" / "vocab.txt").read_text() == "shared vocabulary\n"
        assert p2.reused_blobs == 1 and p2.healed_blobs == 1 and p2.status == "complete"
