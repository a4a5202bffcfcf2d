"""The S3 kit against real servers: two SeaweedFS instances and moto, SigV4 enforced on all three."""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.request
from pathlib import Path

import pytest

from infermux.errors import AllEndpointsFailedError, ConfigurationError
from infermux.s3 import (
    ChecksumMismatchError,
    Digest,
    NoSuchBucketError,
    NoSuchKeyError,
    S3Credentials,
    S3EndpointConfig,
    S3Kit,
    SignatureMismatchError,
)

from .conftest import FAST_RETRY, KEY_A, Servers

MIB = 1 << 20


def _file(tmp_path: Path, name: str, size: int, seed: int = 0) -> Path:
    p = tmp_path / name
    rnd = hashlib.sha256(str(seed).encode()).digest() * 32  # 1 KiB pattern, unique per seed
    block = rnd * 1024
    with open(p, "wb") as f:
        left = size
        while left:
            f.write(block[: min(left, len(block))])
            left -= min(left, len(block))
        f.write(seed.to_bytes(4, "big"))  # content differs per seed even for equal patterns
    return p


async def test_object_operations_on_each_real_server(servers: Servers, bucket: str) -> None:
    for name in ("a", "b", "moto"):
        async with S3Kit(servers.configs(names=(name,)), bucket=bucket, state_dir=None) as kit:
            assert (await kit.create_bucket()).ok
            w = await kit.put("dir/hello.txt", b"hello world", content_type="text/plain", metadata={"who": "me"})
            assert w.ok and w.succeeded == [name]
            info = await kit.head("dir/hello.txt")
            assert info.size == 11 and info.metadata["who"] == "me"
            assert info.digest is not None and info.digest.sha256 == hashlib.sha256(b"hello world").hexdigest()
            assert await kit.get("dir/hello.txt") == b"hello world"
            assert (await kit.copy("dir/hello.txt", "dir/copy.txt")).ok
            assert await kit.get("dir/copy.txt") == b"hello world"
            assert (await kit.head("dir/copy.txt")).digest == info.digest  # the digest travels with the copy
            for i in range(5):
                await kit.put(f"many/{i:02d}", bytes([i]) * 10)
            keys = [o.key async for o in kit.list_objects("many/", page_size=2)]  # 3 pages
            assert keys == [f"many/{i:02d}" for i in range(5)]
            assert (await kit.delete("dir/copy.txt")).ok
            assert not await kit.exists("dir/copy.txt")
            with pytest.raises(NoSuchKeyError) as ei:
                await kit.get("dir/copy.txt")
            assert ei.value.endpoint == name and ei.value.status_code == 404 and not ei.value.retryable
            with pytest.raises(NoSuchBucketError, match="bucket must exist") as eb:
                await kit.put("x", b"x", bucket="no-such-bucket-here")
            assert eb.value.error_type == "NoSuchBucket" and not eb.value.retryable


async def test_wrong_secret_is_a_typed_auth_error_not_a_breaker_failure(servers: Servers, bucket: str) -> None:
    good = servers.configs(names=("a", "moto"))
    for cfg in good:
        bad = S3EndpointConfig(
            cfg.name,
            cfg.endpoint_url,
            credentials=S3Credentials(cfg.credentials.access_key_id, "wrong-secret"),  # type: ignore[union-attr]
            retry=cfg.retry,
        )
        async with S3Kit([bad], bucket=bucket) as kit:
            for _ in range(4):
                with pytest.raises(SignatureMismatchError) as ei:
                    await kit.put("k", b"v")
            err = ei.value
            assert err.status_code == 403 and err.error_type == "SignatureDoesNotMatch" and not err.retryable
            assert err.endpoint == cfg.name and "wrong-secret" not in str(err)
            ep = kit.endpoint(cfg.name)
            assert ep.engine.counters.attempts == 4  # not retried
            assert ep.breaker_state.value == "closed"  # a 403 is the caller's problem, not the endpoint's


def _fetch(req: urllib.request.Request) -> tuple[int, bytes]:
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


async def test_presigned_urls_work_without_credentials(servers: Servers, bucket: str, tmp_path: Path) -> None:
    async with S3Kit(servers.configs(names=("a",)), bucket=bucket) as kit:
        await kit.create_bucket()
        await kit.put("p/obj", b"presigned body")
        url = await kit.presign("p/obj", expires=60)
        assert await asyncio.to_thread(_fetch, urllib.request.Request(url)) == (200, b"presigned body")
        put_url = await kit.presign("p/up", method="put", expires=60)
        req = urllib.request.Request(put_url, data=b"uploaded", method="PUT")
        req.add_header("Content-Type", "application/octet-stream")
        assert (await asyncio.to_thread(_fetch, req))[0] == 200
        assert await kit.get("p/up", verify=False) == b"uploaded"
        # an object written by another client has no digest: downloaded, and reported as not verified
        rep = await kit.download_file("p/up", tmp_path / "up")
        assert not rep.verified and rep.sha256 is None and (tmp_path / "up").read_bytes() == b"uploaded"
        with pytest.raises(ConfigurationError):
            await kit.presign("p/obj", expires=0)


async def test_mirrored_multipart_upload_and_parallel_download_from_three_stores(
    servers: Servers, bucket: str, tmp_path: Path
) -> None:
    src = _file(tmp_path, "model.bin", 21 * MIB + 123)
    async with S3Kit(servers.configs(), bucket=bucket, mirror=True, part_size=5 * MIB, state_dir=tmp_path) as kit:
        await kit.create_bucket()
        seen: list[int] = []
        w = await kit.upload_file(src, "m/model.bin", progress=seen.append)
        assert w.status == "complete" and sorted(w.succeeded) == ["a", "b", "moto"]
        assert sum(seen) == 3 * src.stat().st_size
        for name in ("a", "b", "moto"):
            info = await kit.head_on(kit.endpoint(name), bucket, "m/model.bin")
            assert info.size == src.stat().st_size and info.etag and info.etag.endswith('-5"')  # 5 parts
        rep = await kit.download_file("m/model.bin", tmp_path / "out.bin", parallel_endpoints=True)
        assert rep.verified and (tmp_path / "out.bin").read_bytes() == src.read_bytes()
        assert len(rep.parts_by_endpoint) >= 2, rep  # the parts came from several stores at once
        assert sum(rep.parts_by_endpoint.values()) == 5
        chunks = [c async for c in kit.iter_object("m/model.bin")]
        assert len(chunks) == 5 and b"".join(chunks) == src.read_bytes()


async def test_routing_strategies_spread_or_pin_reads(servers: Servers, bucket: str) -> None:
    for strategy, expect_spread in (("round_robin", True), ("failover", False), ("least_loaded", True)):
        async with S3Kit(servers.configs(names=("a", "b")), bucket=bucket, mirror=True, strategy=strategy) as kit:  # type: ignore[arg-type]
            await kit.create_bucket()
            await kit.put("r/obj", b"data")
            used = {(await kit.head("r/obj")).endpoint for _ in range(6)}
            assert (used == {"a", "b"}) if expect_spread else (used == {"a"}), (strategy, used)


async def test_download_checks_an_expected_digest(servers: Servers, bucket: str, tmp_path: Path) -> None:
    async with S3Kit(servers.configs(names=("a",)), bucket=bucket) as kit:
        await kit.create_bucket()
        await kit.put("d/x", b"abc" * 1000)
        wrong = Digest(3000, "0" * 64, 8 * MIB, ("0" * 64,))
        with pytest.raises(ChecksumMismatchError):
            await kit.download_file("d/x", tmp_path / "x", expected=wrong)
        assert not (tmp_path / "x").exists()  # nothing half-written is left as the destination


async def test_no_endpoint_holding_the_key(servers: Servers, bucket: str) -> None:
    async with S3Kit(servers.configs(names=("a", "b")), bucket=bucket) as kit:
        await kit.create_bucket()
        with pytest.raises(NoSuchKeyError, match="every endpoint"):
            await kit.head("missing")
    async with S3Kit(
        [
            *servers.configs(names=("a",)),
            S3EndpointConfig("dead", "http://127.0.0.1:9", credentials=S3Credentials(*KEY_A), retry=FAST_RETRY),
        ],
        bucket=bucket,
        strategy="failover",
    ) as kit:
        with pytest.raises(AllEndpointsFailedError) as ei:
            await kit.head("missing")
        kinds = {type(e).__name__ for e in ei.value.errors}
        # the dead endpoint: connection refused, retried by the engine until its breaker opened
        assert "NoSuchKeyError" in kinds and kinds & {"APIConnectionError", "CircuitOpenError"}


async def test_folder_sync_both_ways_moves_only_changed_files(servers: Servers, bucket: str, tmp_path: Path) -> None:
    from infermux.s3.sync import sync_down, sync_up

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 100)
    (src / "sub" / "b.txt").write_bytes(b"b" * 200)
    async with S3Kit(servers.configs(names=("a", "b")), bucket=bucket, mirror=True, state_dir=tmp_path) as kit:
        await kit.create_bucket()
        r1 = await sync_up(kit, src, "folder")
        assert sorted(r1.transferred) == ["a.txt", "sub/b.txt"] and r1.unchanged == []
        r2 = await sync_up(kit, src, "folder")
        assert r2.transferred == [] and sorted(r2.unchanged) == ["a.txt", "sub/b.txt"]
        (src / "a.txt").write_bytes(b"A" * 100)  # same size, new content
        r3 = await sync_up(kit, src, "folder")
        assert r3.transferred == ["a.txt"]
        dst = tmp_path / "dst"
        d1 = await sync_down(kit, "folder", dst)
        assert sorted(d1.transferred) == ["a.txt", "sub/b.txt"]
        assert (dst / "a.txt").read_bytes() == b"A" * 100 and (dst / "sub" / "b.txt").read_bytes() == b"b" * 200
        d2 = await sync_down(kit, "folder", dst)
        assert d2.transferred == [] and len(d2.unchanged) == 2
        os.remove(dst / "a.txt")
        d3 = await sync_down(kit, "folder", dst)
        assert d3.transferred == ["a.txt"]


async def test_concurrent_puts_share_the_engine_queue(servers: Servers, bucket: str) -> None:
    async with S3Kit(servers.configs(names=("a",), max_concurrency=2), bucket=bucket) as kit:
        await kit.create_bucket()
        await asyncio.gather(*(kit.put(f"c/{i}", b"x" * i) for i in range(12)))
        st = kit.stats()["a"]
        assert st["successes"] >= 13 and st["failures"] == {} and st["in_flight"] == 0


async def test_list_objects_merged_when_mirrors_diverge(servers: Servers, bucket: str) -> None:
    async with S3Kit(servers.configs(names=("a", "b")), bucket=bucket, strategy="failover") as kit:
        await kit.create_bucket()
        await kit.put("d/both", b"1", mirror=True)
        async with S3Kit(servers.configs(names=("a",)), bucket=bucket) as only_a:
            await only_a.put("d/a-only", b"2")
        async with S3Kit(servers.configs(names=("b",)), bucket=bucket) as only_b:
            await only_b.put("d/b-only", b"3")
            await only_b.put("d/zz", b"4")
        assert [o.key async for o in kit.list_objects("d/")] == ["d/a-only", "d/both"]  # the primary's view
        merged = [(o.key, o.endpoint) async for o in kit.list_objects("d/", merged=True, page_size=1)]
        assert merged == [("d/a-only", "a"), ("d/b-only", "b"), ("d/both", "a"), ("d/zz", "b")]
