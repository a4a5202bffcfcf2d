"""Streaming uploads of unknown size (iterator / async iterator) against real SeaweedFS and moto."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from infermux.s3 import S3Credentials, S3EndpointConfig, S3Kit, _stream, digest

from .conftest import FAST_RETRY, Servers

MIB = 1 << 20
PART = 5 * MIB  # the S3 minimum, so a few parts stay small


def _data(size: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 32 * 1024  # 1 MiB, unique per seed
    out = (block * (size // len(block) + 1))[:size]
    return out[:-4] + seed.to_bytes(4, "big")


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _achunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for c in _chunks(data, size):
        yield c


async def _roundtrip(kit: S3Kit, key: str, data: bytes, tmp_path: Path) -> None:
    rep = await kit.download_file(key, tmp_path / "out")
    assert rep.verified and (tmp_path / "out").read_bytes() == data
    keys = [o.key async for o in kit.list_objects(key)]
    assert keys == [key]  # no temporary key left behind


@pytest.mark.parametrize("name", ["a", "moto"])
async def test_stream_upload_from_iterators_of_unknown_size(
    servers: Servers, bucket: str, tmp_path: Path, name: str
) -> None:
    async with S3Kit(servers.configs(names=(name,)), bucket=bucket, part_size=PART, concurrency=2) as kit:
        await kit.create_bucket()
        data = _data(3 * PART + 12345, seed=1)  # 4 parts, the last one short
        w = await kit.upload_stream(_chunks(data, MIB + 7), "s/sync.bin", metadata={"who": "me"})  # uneven chunks
        assert w.ok and w.succeeded == [name]
        info = await kit.head("s/sync.bin")
        assert info.size == len(data) and info.metadata["who"] == "me"
        assert info.digest is not None and info.digest.part_size == PART and info.digest.leaf is None
        await _roundtrip(kit, "s/sync.bin", data, tmp_path)

        data2 = _data(2 * PART, seed=2)  # exactly two parts
        assert (await kit.upload_stream(_achunks(data2, 3 * MIB), "s/async.bin", content_type="x/y")).ok
        await _roundtrip(kit, "s/async.bin", data2, tmp_path)

        # shorter than one part: one plain put, digest with the whole-file SHA-256
        small = _data(1000, seed=3)
        assert (await kit.upload_stream(_achunks(small, 100), "s/small.bin")).ok
        d = (await kit.head("s/small.bin")).digest
        assert d is not None and d.sha256 == hashlib.sha256(small).hexdigest()
        assert await kit.get("s/small.bin") == small
        assert (await kit.upload_stream(iter(()), "s/empty.bin")).ok and await kit.get("s/empty.bin") == b""


async def test_stream_upload_memory_is_bounded_and_mirrored(servers: Servers, bucket: str, tmp_path: Path) -> None:
    conc = 2
    data = _data(7 * PART, seed=4)
    sent = 0
    ahead = 0

    def progress(n: int) -> None:
        nonlocal sent
        sent += n

    def source() -> Iterator[bytes]:
        nonlocal ahead
        for i, c in enumerate(_chunks(data, MIB)):
            ahead = max(ahead, i * MIB - sent)  # bytes taken from the source and not yet stored everywhere
            yield c

    async with S3Kit(servers.configs(names=("a", "b")), bucket=bucket, part_size=PART, concurrency=conc) as kit:
        await kit.create_bucket()
        w = await kit.upload_stream(source(), "big.bin", mirror=True, progress=progress)
        assert w.ok and sorted(w.succeeded) == ["a", "b"] and sent == len(data)
        # the parts in flight, the one waiting for a slot and the one filling; never the whole stream
        assert 0 < ahead <= (conc + 2) * PART < len(data)
        rep = await kit.download_file("big.bin", tmp_path / "out", parallel_endpoints=True)
        assert rep.verified and len(rep.parts_by_endpoint) == 2 and (tmp_path / "out").read_bytes() == data


@pytest.mark.parametrize("name", ["b", "moto"])
async def test_stream_over_the_metadata_part_limit_groups_leaves_and_copies_in_parts(
    servers: Servers, bucket: str, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # limits lowered so a few MiB take the paths of a multi-GiB stream: more parts than the digest can list
    # (grouped: 2 leaves per digest part) and a copy above CopyObject's limit (UploadPartCopy)
    monkeypatch.setattr(digest, "MAX_PARTS_IN_METADATA", 2)
    monkeypatch.setattr(_stream, "COPY_LIMIT", 1)
    monkeypatch.setattr(_stream, "COPY_PART", PART)
    data = _data(3 * PART + 999, seed=5)
    async with S3Kit(servers.configs(names=(name,)), bucket=bucket, part_size=PART, concurrency=3) as kit:
        await kit.create_bucket()
        assert (await kit.upload_stream(_achunks(data, 2 * MIB), "g.bin")).ok
        d = (await kit.head("g.bin")).digest
        assert d is not None and d.leaf == PART and d.part_size == 2 * PART and len(d.parts) == 2
        await _roundtrip(kit, "g.bin", data, tmp_path)


async def test_stream_upload_failures(servers: Servers, bucket: str) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * PART
        yield b"y" * PART
        raise RuntimeError("source broke")

    async with S3Kit(servers.configs(names=("a",)), bucket=bucket, part_size=PART) as kit:
        await kit.create_bucket()
        with pytest.raises(RuntimeError, match="source broke"):  # the source's own error, as it is
            await kit.upload_stream(broken(), "broken.bin")
        assert [o.key async for o in kit.list_objects("")] == []  # nothing half-written appears
    # one mirror refuses (wrong secret): a partial write, never reported complete
    bad = S3EndpointConfig(
        "bad", servers.b.endpoint_url, credentials=S3Credentials("AKIATESTKEYB0000002", "wrong"), retry=FAST_RETRY
    )
    async with S3Kit([*servers.configs(names=("a",)), bad], bucket=bucket, part_size=PART, mirror=True) as kit:
        w = await kit.upload_stream(_chunks(_data(2 * PART, seed=6), MIB), "half.bin")
        assert w.status == "partial" and w.succeeded == ["a"] and "bad" in w.failed
