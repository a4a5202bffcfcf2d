"""SHA-256 as an option beside the BLAKE3 default, against real servers: part hashes (``part_hash``), the
whole-file SHA-256 recorded on plain uploads, streams and sync (``file_sha256``) and rechecked on download
(``verify_sha256``), and the ``--part-hash`` flag / ``part_hash`` config key of ``infermux models push``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from infermux.cli import main
from infermux.errors import ConfigurationError
from infermux.s3 import ChecksumMismatchError, S3Credentials, S3EndpointConfig, S3Kit
from infermux.s3.digest import hash_file_parts
from infermux.s3.sync import sync_up

from ._proxy import MisbehavingProxy
from .conftest import FAST_RETRY, KEY_A, Servers
from .test_kit_real import MIB, _file


def _leftovers(folder: Path, prefix: str) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(prefix)]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


async def test_sha256_parts_and_blake3_parts_in_one_store_both_verify_and_refetch_corrupt_bytes(
    servers: Servers, bucket: str, tmp_path: Path
) -> None:
    proxy = await MisbehavingProxy(servers.a.endpoint_url).start()
    try:
        bad = S3EndpointConfig("bad", proxy.endpoint_url, credentials=S3Credentials(*KEY_A), retry=FAST_RETRY)
        moto = servers.configs(names=("moto",))[0]
        src_s = _file(tmp_path, "s", 12 * MIB, seed=21)
        src_b = _file(tmp_path, "b", 12 * MIB, seed=22)
        kw: dict[str, object] = {"bucket": bucket, "mirror": True, "strategy": "failover", "part_size": 5 * MIB}
        async with S3Kit([bad, moto], part_hash="sha256", **kw) as kit:  # type: ignore[arg-type]
            await kit.create_bucket()
            assert (await kit.upload_file(src_s, "o/sha")).ok
            assert (
                await kit.upload_stream(
                    iter([src_s.read_bytes()[i : i + MIB] for i in range(0, src_s.stat().st_size, MIB)]), "o/st"
                )
            ).ok
            assert (await kit.put("o/small", b"tiny")).ok
        async with S3Kit([bad, moto], **kw) as kit:  # type: ignore[arg-type]  # the default: BLAKE3
            assert (await kit.upload_file(src_b, "o/b3")).ok
        # both kinds in one store; a reader at the default setting checks each with its own algorithm
        async with S3Kit([bad, moto], **kw) as kit:  # type: ignore[arg-type]
            infos = {k: await kit.head(k) for k in ("o/sha", "o/st", "o/small", "o/b3")}
            algos = {k: i.digest.algo for k, i in infos.items() if i.digest is not None}
            assert algos == {"o/sha": "sha256", "o/st": "sha256", "o/small": "sha256", "o/b3": "blake3"}
            sha_parts = hash_file_parts(src_s, 5 * MIB, whole=False, algo="sha256").parts
            assert infos["o/sha"].digest is not None and infos["o/sha"].digest.parts == sha_parts
            proxy.mode = "corrupt"  # every GET through "bad" now has a flipped byte
            for key, src in (("o/sha", src_s), ("o/b3", src_b), ("o/st", src_s)):
                proxy.touched = 0
                rep = await kit.download_file(key, tmp_path / f"out-{key[2:]}")
                assert proxy.touched >= 1 and rep.refetched_parts >= 1, (key, rep)
                assert "ChecksumMismatchError" in rep.failed_endpoints["bad"], rep
                assert rep.verified and _sha(tmp_path / f"out-{key[2:]}") == _sha(src)
                assert rep.parts_by_endpoint.get("moto", 0) >= 1
            assert await kit.get("o/small") == b"tiny"
        # only the corrupting endpoint: a SHA-256-part object is refused with a typed error, nothing written
        async with S3Kit([bad], bucket=bucket, part_size=5 * MIB, concurrency=1) as kit:
            with pytest.raises(ChecksumMismatchError, match="sha256 check") as ei:
                await kit.download_file("o/sha", tmp_path / "never")
            assert ei.value.endpoint == "bad" and not (tmp_path / "never").exists()
    finally:
        await proxy.close()


async def test_file_sha256_recorded_on_upload_stream_and_sync_and_rechecked_on_download(
    servers: Servers, bucket: str, tmp_path: Path
) -> None:
    src = _file(tmp_path, "f", 11 * MIB, seed=23)
    want = _sha(src)
    async with S3Kit(servers.configs(names=("a",)), bucket=bucket, part_size=5 * MIB, state_dir=tmp_path) as kit:
        await kit.create_bucket()
        await kit.upload_file(src, "plain")  # default: part hashes only
        assert (await kit.head("plain")).digest.sha256 is None  # type: ignore[union-attr]
        with pytest.raises(ConfigurationError, match="no whole-file SHA-256") as ei:
            await kit.download_file("plain", tmp_path / "x", verify_sha256=True)
        assert ei.value.endpoint == "a" and not (tmp_path / "x").exists()
        assert (await kit.download_file("plain", tmp_path / "x")).sha256_verified is False

        await kit.upload_file(src, "withsha", file_sha256=True)
        assert (await kit.head("withsha")).digest.sha256 == want  # type: ignore[union-attr]
        rep = await kit.download_file("withsha", tmp_path / "y", verify_sha256=True)
        assert rep.verified and rep.sha256_verified and rep.sha256 == want and _sha(tmp_path / "y") == want

        kit.file_sha256 = True  # the kit-wide setting: streams and sync record it too
        chunks = [src.read_bytes()[i : i + MIB] for i in range(0, src.stat().st_size, MIB)]
        await kit.upload_stream(iter(chunks), "stream")
        assert (await kit.head("stream")).digest.sha256 == want  # type: ignore[union-attr]
        (tmp_path / "dir").mkdir()
        (tmp_path / "dir" / "f").write_bytes(src.read_bytes())
        assert (await sync_up(kit, tmp_path / "dir", "synced")).transferred == ["f"]
        assert (await kit.head("synced/f")).digest.sha256 == want  # type: ignore[union-attr]
        assert (await kit.download_file("synced/f", tmp_path / "z", verify_sha256=True)).sha256_verified

        # a recorded SHA-256 that the bytes do not have (the parts all match): caught only by verify_sha256
        wrong = hash_file_parts(src, 5 * MIB, whole=False).with_sha256("0" * 64)
        await kit.upload_file(src, "lying", digest=wrong)
        assert (await kit.download_file("lying", tmp_path / "l1")).verified
        with pytest.raises(ChecksumMismatchError, match="file's SHA-256") as ce:
            await kit.download_file("lying", tmp_path / "l2", verify_sha256=True)
        assert ce.value.actual == want and ce.value.retryable is False and ce.value.endpoint == "a"
        assert not (tmp_path / "l2").exists() and not _leftovers(tmp_path, "l2.")


def test_models_push_part_hash_flag_and_config_key(
    servers: Servers, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    cfg = servers.configs(names=("a",))[0]
    assert cfg.credentials is not None
    monkeypatch.setenv("HOME", str(tmp_path))

    async def mk() -> None:
        async with S3Kit([cfg], bucket=bucket) as kit:
            await kit.create_bucket()

    asyncio.run(mk())
    conf = tmp_path / "s3.json"
    endpoint = {
        "name": "a",
        "endpoint_url": servers.a.endpoint_url,
        "access_key_id": cfg.credentials.access_key_id,
        "secret_access_key": cfg.credentials.secret_access_key,
    }
    conf.write_text(json.dumps({"part_hash": "sha256", "endpoints": [endpoint]}))
    store = ["--store", f"s3://{bucket}/m", "--s3-config", str(conf), "--no-progress"]
    gguf = _file(tmp_path, "tiny.gguf", 1 * MIB, seed=24)
    assert main(["models", "push", str(gguf), "t:cfg", *store]) == 0  # part_hash from the config file
    assert main(["models", "push", str(gguf), "t:flag", "--part-hash", "blake3", *store]) == 0  # the flag wins
    conf.write_text(json.dumps({"endpoints": [endpoint]}))
    assert main(["models", "push", str(gguf), "t:default", *store]) == 0

    async def manifests() -> dict[str, str]:
        async with S3Kit([cfg], bucket=bucket) as kit:
            out = {}
            for v in ("cfg", "flag", "default"):
                m = json.loads(await kit.get(f"m/manifests/t/{v}.json"))
                out[v] = m["files"][0]["part_hash"]
            return out

    assert asyncio.run(manifests()) == {"cfg": "sha256", "flag": "blake3", "default": "blake3"}
    assert main(["models", "pull", "t:cfg", str(tmp_path / "dl"), *store]) == 0
    assert (tmp_path / "dl" / "tiny.gguf").read_bytes() == gguf.read_bytes()
    capsys.readouterr()
    conf.write_text(json.dumps({"part_hash": "md5", "endpoints": [endpoint]}))
    assert main(["models", "push", str(gguf), "t:bad", *store]) == 2
    assert "part_hash must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["models", "push", str(gguf), "t:bad", "--part-hash", "md5", *store])


def test_kit_rejects_an_unknown_part_hash() -> None:
    with pytest.raises(ConfigurationError, match="part_hash"):
        S3Kit([S3EndpointConfig("x", "http://127.0.0.1:9")], part_hash="md5")


async def test_sync_up_after_switching_part_hash_sends_nothing_unchanged(
    servers: Servers, bucket: str, tmp_path: Path
) -> None:
    folder = tmp_path / "dir"
    folder.mkdir()
    _file(folder, "one", 6 * MIB, seed=25)
    _file(folder, "two", 1000, seed=26)
    cfgs = servers.configs(names=("a",))
    async with S3Kit(cfgs, bucket=bucket, part_size=5 * MIB, state_dir=tmp_path) as kit:
        await kit.create_bucket()
        assert (await sync_up(kit, folder, "p")).transferred == ["one", "two"]
    async with S3Kit(cfgs, bucket=bucket, part_size=5 * MIB, state_dir=tmp_path, part_hash="sha256") as kit:
        res = await sync_up(kit, folder, "p")  # stored with BLAKE3 parts, compared after hashing that way
        assert res.transferred == [] and res.unchanged == ["one", "two"]
        _file(folder, "one", 6 * MIB, seed=27)  # changed content, same size: sent, now with SHA-256 parts
        assert (await sync_up(kit, folder, "p")).transferred == ["one"]
        assert (await kit.head("p/one")).digest.algo == "sha256"  # type: ignore[union-attr]
