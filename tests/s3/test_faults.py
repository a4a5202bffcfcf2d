"""Faults against real servers: a store killed mid-upload and mid-download, a proxy that corrupts or cuts
bytes, the breaker of a dead store opening and closing again after restart, partial mirrored writes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from infermux.errors import InfermuxError
from infermux.resilience import BreakerConfig, BreakerState, FakeClock
from infermux.s3 import ChecksumMismatchError, PartialWriteError, S3Credentials, S3EndpointConfig, S3Kit
from infermux.s3.servers import SeaweedServer

from ._proxy import MisbehavingProxy
from .conftest import FAST_RETRY, KEY_A, PATIENT_RETRY, Servers
from .test_kit_real import MIB, _file


def _killer(server: SeaweedServer, after_bytes: int) -> Callable[[int], None]:
    """A progress callback that crashes ``server`` once ``after_bytes`` have moved."""
    moved = 0

    def cb(n: int) -> None:
        nonlocal moved
        moved += n
        if moved >= after_bytes and server.proc is not None:
            server.kill()

    return cb


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


async def test_corrupted_bytes_are_detected_and_refetched_from_another_endpoint(
    servers: Servers, bucket: str, tmp_path: Path
) -> None:
    proxy = await MisbehavingProxy(servers.a.endpoint_url).start()
    try:
        bad = S3EndpointConfig("bad", proxy.endpoint_url, credentials=S3Credentials(*KEY_A), retry=FAST_RETRY)
        good = servers.configs(names=("b",))[0]
        src = _file(tmp_path, "obj", 12 * MIB, seed=1)
        async with S3Kit([bad, good], bucket=bucket, mirror=True, strategy="failover", part_size=5 * MIB) as kit:
            await kit.create_bucket()
            assert (await kit.upload_file(src, "o/obj")).ok  # writes pass through the proxy untouched
            proxy.mode = "corrupt"
            rep = await kit.download_file("o/obj", tmp_path / "out")
            assert proxy.touched >= 1 and rep.refetched_parts >= 1, rep
            assert "ChecksumMismatchError" in rep.failed_endpoints["bad"]
            assert rep.verified and _sha(tmp_path / "out") == _sha(src)
            assert rep.parts_by_endpoint.get("b") == 3 - rep.parts_by_endpoint.get("bad", 0)
            assert await kit.get("o/obj") == src.read_bytes()  # the streaming read fails over the same way
        # with no other endpoint: retried, then a typed error; corrupt bytes never reach the destination
        async with S3Kit([bad], bucket=bucket, part_size=5 * MIB, concurrency=1) as kit:
            with pytest.raises(ChecksumMismatchError) as ei:
                await kit.download_file("o/obj", tmp_path / "out2")
            # the engine retries a malformed (here: corrupt) answer max_malformed_retries times
            assert ei.value.endpoint == "bad" and ei.value.attempts == 1 + FAST_RETRY.max_malformed_retries
            assert not (tmp_path / "out2").exists()
            assert kit.endpoint("bad").stats()["failures"] == {"ChecksumMismatchError": 1}
    finally:
        await proxy.close()


async def test_a_body_cut_mid_part_resumes_from_the_byte_offset(servers: Servers, bucket: str, tmp_path: Path) -> None:
    proxy = await MisbehavingProxy(servers.a.endpoint_url).start()
    try:
        ep = S3EndpointConfig("a-proxy", proxy.endpoint_url, credentials=S3Credentials(*KEY_A), retry=FAST_RETRY)
        src = _file(tmp_path, "obj", 11 * MIB, seed=2)
        async with S3Kit([ep], bucket=bucket, part_size=5 * MIB, concurrency=1) as kit:
            await kit.create_bucket()
            await kit.upload_file(src, "c/obj")
            proxy.mode, proxy.cuts_left, proxy.cut_after = "cut", 2, 1 * MIB + 7
            rep = await kit.download_file("c/obj", tmp_path / "out")
        assert rep.verified and _sha(tmp_path / "out") == _sha(src)
        assert rep.resumed_parts == 2 and proxy.touched == 2
        assert rep.bytes_by_endpoint == {"a-proxy": src.stat().st_size}  # no byte was fetched twice
        assert f"bytes={1 * MIB + 7}-{5 * MIB - 1}" in proxy.ranges  # asked for the rest of part 0 only
    finally:
        await proxy.close()


async def test_store_killed_mid_download_fails_over_and_resumes(servers: Servers, bucket: str, tmp_path: Path) -> None:
    src = _file(tmp_path, "obj", 26 * MIB, seed=3)
    async with S3Kit(
        servers.configs(names=("a", "b")),
        bucket=bucket,
        mirror=True,
        strategy="failover",
        part_size=5 * MIB,
        concurrency=2,
    ) as kit:
        await kit.create_bucket()
        assert (await kit.upload_file(src, "k/obj")).ok
        rep = await kit.download_file("k/obj", tmp_path / "out", progress=_killer(servers.a, 6 * MIB))
    assert servers.a.proc is None  # it was really killed mid-transfer
    assert rep.verified and _sha(tmp_path / "out") == _sha(src)
    assert "a" in rep.failed_endpoints and rep.parts_by_endpoint["b"] >= 1
    assert sum(rep.parts_by_endpoint.values()) == 6


async def test_store_killed_mid_multipart_upload_fails_over(servers: Servers, bucket: str, tmp_path: Path) -> None:
    src = _file(tmp_path, "obj", 26 * MIB, seed=4)
    async with S3Kit(
        servers.configs(names=("a", "b")),
        bucket=bucket,
        strategy="failover",
        part_size=5 * MIB,
        concurrency=1,
        state_dir=tmp_path / "state",
    ) as kit:
        await kit.create_bucket()
        w = await kit.upload_file(src, "u/obj", progress=_killer(servers.a, 10 * MIB))
        assert servers.a.proc is None
        assert w.status == "complete" and w.succeeded == ["b"] and "a" in w.failed  # one copy wanted, one made
        rep = await kit.download_file("u/obj", tmp_path / "out")
    assert rep.verified and _sha(tmp_path / "out") == _sha(src)
    assert rep.parts_by_endpoint == {"b": 6}


async def test_upload_resumes_after_the_store_restarts(servers: Servers, bucket: str, tmp_path: Path) -> None:
    src = _file(tmp_path, "obj", 26 * MIB, seed=5)
    state = tmp_path / "state"
    cfgs = servers.configs(names=("a",))
    async with S3Kit(cfgs, bucket=bucket, part_size=5 * MIB, concurrency=1, state_dir=state) as kit:
        await kit.create_bucket()
        with pytest.raises(InfermuxError):
            await kit.upload_file(src, "r/obj", progress=_killer(servers.a, 10 * MIB))
    assert list(state.glob("upload-*.json")), "the unfinished upload's state is kept"
    servers.wait_serving(servers.a)
    cfgs = servers.configs(names=("a",), retry=PATIENT_RETRY)
    async with S3Kit(cfgs, bucket=bucket, part_size=5 * MIB, concurrency=1, state_dir=state) as kit:
        w = await kit.upload_file(src, "r/obj")
        assert w.ok
        sent = kit.endpoint("a").bytes_out
        assert 0 < sent <= src.stat().st_size - 10 * MIB, sent  # the parts stored before the crash were kept
        assert not list(state.glob("upload-*.json"))
        rep = await kit.download_file("r/obj", tmp_path / "out")
    assert rep.verified and _sha(tmp_path / "out") == _sha(src)


async def test_download_resumes_after_an_interruption(servers: Servers, bucket: str, tmp_path: Path) -> None:
    src = _file(tmp_path, "obj", 26 * MIB, seed=6)
    cfgs = servers.configs(names=("a",))
    async with S3Kit(cfgs, bucket=bucket, part_size=5 * MIB, concurrency=1) as kit:
        await kit.create_bucket()
        await kit.upload_file(src, "d/obj", file_sha256=True)
        with pytest.raises(InfermuxError):  # the in-order SHA-256 thread stops with the failed download
            await kit.download_file(
                "d/obj", tmp_path / "out", verify_sha256=True, progress=_killer(servers.a, 11 * MIB)
            )
    assert not (tmp_path / "out").exists() and (tmp_path / "out.infermux-partial").exists()
    servers.wait_serving(servers.a)
    cfgs = servers.configs(names=("a",), retry=PATIENT_RETRY)
    async with S3Kit(cfgs, bucket=bucket, part_size=5 * MIB, concurrency=1) as kit:
        rep = await kit.download_file("d/obj", tmp_path / "out", verify_sha256=True)  # reused parts hashed too
    assert rep.reused_parts >= 2 and rep.verified and _sha(tmp_path / "out") == _sha(src)
    assert rep.sha256_verified and rep.sha256 == _sha(src)
    assert rep.bytes_by_endpoint["a"] <= src.stat().st_size - 10 * MIB
    assert not (tmp_path / "out.infermux-partial").exists()


async def test_breaker_opens_for_a_dead_store_and_closes_after_restart(servers: Servers, bucket: str) -> None:
    clock = FakeClock()
    changes: list[tuple[str, BreakerState, BreakerState]] = []
    cfgs = servers.configs(names=("a", "b"), breaker=BreakerConfig(consecutive_failures=2, open_seconds=30.0))
    async with S3Kit(
        cfgs,
        bucket=bucket,
        mirror=True,
        strategy="failover",
        clock=clock,
        on_breaker_change=lambda n, o, s: changes.append((n, o, s)),
    ) as kit:
        await kit.create_bucket()
        await kit.put("b/obj", b"payload")
        servers.a.kill()
        for _ in range(3):
            assert (await kit.head("b/obj")).endpoint == "b"  # failed over
        a = kit.endpoint("a")
        assert a.breaker_state is BreakerState.OPEN and ("a", BreakerState.CLOSED, BreakerState.OPEN) in changes
        assert [e.name for e in kit.ordered()] == ["b", "a"]  # the open endpoint goes last
        attempts = a.engine.counters.attempts
        with pytest.raises(InfermuxError) as ei:
            await kit.head_on(a, bucket, "b/obj")
        assert type(ei.value).__name__ == "CircuitOpenError" and a.engine.counters.attempts == attempts  # no I/O
        servers.wait_serving(servers.a)
        clock.advance(31)  # the open period passes: the next call is a probe
        assert (await kit.head("b/obj")).endpoint == "a"
        assert a.breaker_state is BreakerState.CLOSED
        assert ("a", BreakerState.HALF_OPEN, BreakerState.CLOSED) in changes


async def test_mirrored_writes_report_partial_success(servers: Servers, bucket: str, tmp_path: Path) -> None:
    async with S3Kit(servers.configs(names=("a", "b")), bucket=bucket, mirror=True, part_size=5 * MIB) as kit:
        await kit.create_bucket()
        servers.b.kill()
        w = await kit.put("p/obj", b"x" * 100)
        assert w.status == "partial" and not w.ok and w.succeeded == ["a"] and list(w.failed) == ["b"]
        assert "partial (1 of 2 copies)" in w.describe()
        with pytest.raises(PartialWriteError) as ei:
            await kit.put("p/obj2", b"y", strict=True)
        assert ei.value.result.succeeded == ["a"]
        src = _file(tmp_path, "big", 11 * MIB, seed=7)
        wu = await kit.upload_file(src, "p/big")
        assert wu.status == "partial" and wu.succeeded == ["a"]
        assert await kit.get("p/big") == src.read_bytes()  # the copy that was written is whole
