"""Uploads of the S3 kit: single PUT or multipart with parallel parts (streamed from disk), resumed from
a small state file after an interruption. Each part read for sending is checked against the digest in the
object's metadata (the file must not have changed since it was hashed) and its checksum (CRC32 by default)
is sent for the store to check where it can: read, checked and sent in one worker thread."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import hashlib
import json
import os
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .digest import Digest, hash_file_parts, hash_part
from .errors import ChecksumMismatchError, NoSuchUploadError

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import S3Endpoint
    from .kit import ObjectInfo, S3Kit, WriteResult

Progress = Callable[[int], None]


async def _bounded(items: Iterable[Any], fn: Callable[[Any], Awaitable[None]], limit: int) -> None:
    """Run ``fn`` over ``items`` with at most ``limit`` in flight; the first error stops new starts and is
    raised once the ones in flight have finished."""
    todo = deque(items)
    failure: list[BaseException] = []

    async def worker() -> None:
        while todo and not failure:
            item = todo.popleft()
            try:
                await fn(item)
            except BaseException as e:
                failure.append(e)
                raise

    results = await asyncio.gather(*(worker() for _ in range(max(1, min(limit, len(todo))))), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r


def _pread(path: Path, start: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(length)
    if len(data) != length:
        raise ConfigurationError(f"{path} changed while it was being uploaded (short read at {start})")
    return data


def _read_part(path: Path, digest: Digest, index: int, *, store_check: str | None) -> tuple[bytes, str]:
    """In a thread: part ``index`` of ``path``, checked against its hash in ``digest``, and its checksum
    for the store (``store_check``: ``"CRC32"`` or ``"SHA256"``; base64, empty when ``None``)."""
    start, end = digest.ranges()[index]
    data = _pread(path, start, end - start)
    if hash_part(digest.algo, data, digest.leaf) != digest.parts[index]:
        raise ConfigurationError(f"{path} changed since it was hashed; upload it again")
    return data, (store_checksum(store_check, data) if store_check else "")


def _send_part(
    client: Any, src: Path, digest: Digest, n: int, *, check: str | None, params: dict[str, Any]
) -> tuple[dict[str, Any], str, int]:
    """In a worker thread: read part ``n``, check it against ``digest``, send it with the blocking client."""
    data, checksum = _read_part(src, digest, n - 1, store_check=check)
    p = dict(params)
    if check:
        p[f"Checksum{check}"] = checksum  # the store checks the bytes against it
    r: dict[str, Any] = client.upload_part(Body=data, **p)
    return r, checksum, len(data)


def store_checksum(algorithm: str, data: bytes) -> str:
    """The value of ``x-amz-checksum-<algorithm>`` for ``data`` (base64 of the big-endian digest)."""
    if algorithm == "CRC32":
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _store_check(ep: S3Endpoint) -> str | None:
    """The checksum the store checks each part against, ``None`` when the endpoint sends none."""
    return ep.config.checksum_algorithm if ep.config.checksums == "when_supported" else None


async def complete_multipart(
    ep: S3Endpoint, bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]]
) -> None:
    """Complete a multipart upload with its parts (in part-number order), through the endpoint's engine."""
    await ep.call(
        f"complete_multipart_upload {key!r}",
        "complete_multipart_upload",
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": parts},
    )


async def abort_multipart_quietly(ep: S3Endpoint, bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload, best effort and bounded (5 s): the endpoint may be down, and S3 lifecycle rules
    expire abandoned uploads. Never raises, so the error that stopped the upload is the one the caller sees."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ep.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id), 5.0)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


class Uploads:
    """The upload half of :class:`~infermux.s3._transfer.Transfers`."""

    kit: S3Kit
    concurrency: int
    state_dir: Path

    @property
    def readers(self) -> concurrent.futures.ThreadPoolExecutor:  # pragma: no cover - defined by Transfers
        raise NotImplementedError

    def part_size_for(self, size: int) -> int:  # pragma: no cover - defined by Transfers
        raise NotImplementedError

    def _state_path(self, ep: S3Endpoint, bucket: str, key: str, digest: Digest) -> Path:
        ident = f"{ep.name}|{ep.config.endpoint_url}|{bucket}|{key}|{digest.root}"
        return self.state_dir / f"upload-{hashlib.sha256(ident.encode()).hexdigest()[:32]}.json"

    async def upload(
        self,
        bucket: str,
        key: str,
        src: Path,
        *,
        metadata: dict[str, str],
        mirror: bool | None,
        strict: bool,
        digest: Digest | None,
        file_sha256: bool,
        progress: Progress | None,
    ) -> WriteResult:
        if not await asyncio.to_thread(src.is_file):
            raise ConfigurationError(f"upload source {src} is not a file")
        if digest is None:  # the part hashes (parallel), and the whole-file SHA-256 beside them if asked for
            size = (await asyncio.to_thread(src.stat)).st_size
            digest = await asyncio.to_thread(
                hash_file_parts, src, self.part_size_for(size), whole=file_sha256, algo=self.kit.part_hash
            )
        meta = {**metadata, **digest.to_metadata()}
        d = digest

        async def one(ep: S3Endpoint) -> ObjectInfo:
            return await self._upload_to(ep, bucket=bucket, key=key, src=src, digest=d, meta=meta, progress=progress)

        result = await self.kit.write(f"upload of {key!r}", key, one, mirror=mirror, strict=strict)
        if result.succeeded:  # an upload left unfinished on an endpoint we failed over from: clean it up
            for name in result.failed:
                await self._abandon(self.kit.endpoint(name), bucket, key, d)
        return result

    async def _abandon(self, ep: S3Endpoint, bucket: str, key: str, digest: Digest) -> None:
        path = self._state_path(ep, bucket, key, digest)
        st = _read_json(path)
        path.unlink(missing_ok=True)
        if st and st.get("upload_id"):
            await abort_multipart_quietly(ep, bucket, key, st["upload_id"])

    async def _upload_to(
        self,
        ep: S3Endpoint,
        *,
        bucket: str,
        key: str,
        src: Path,
        digest: Digest,
        meta: dict[str, str],
        progress: Progress | None,
    ) -> ObjectInfo:
        check = _store_check(ep)
        field = f"Checksum{check}" if check else ""
        ranges = digest.ranges()
        if len(ranges) == 1:
            return await self._put_single(
                ep, bucket=bucket, key=key, src=src, digest=digest, meta=meta, progress=progress
            )
        state_path = self._state_path(ep, bucket, key, digest)
        upload_id, done = await self._start_multipart(
            ep, bucket=bucket, key=key, meta=meta, state_path=state_path, ranges=ranges, check=check
        )
        if check:  # some stores (SeaweedFS) do not list part checksums; Complete needs them for every part
            for n, entry in done.items():
                if field not in entry:
                    _, entry[field] = await asyncio.to_thread(_read_part, src, digest, n - 1, store_check=check)
        if progress is not None and done:
            progress(sum(ranges[n - 1][1] - ranges[n - 1][0] for n in done))

        loop = asyncio.get_running_loop()

        async def send(n: int) -> None:
            p: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": n}
            # read, check and send in one worker thread with the blocking client (as downloads read): it kept
            # ahead of aiohttp on the event loop on this busy 2-core machine (bench/s3.py)
            call = functools.partial(_send_part, ep.sync_client, src, digest, n, check=check, params=p)

            async def op(_client: Any) -> tuple[dict[str, Any], str, int]:
                return await loop.run_in_executor(self.readers, call)

            r, checksum, length = await ep.run(f"upload_part {key!r} #{n}", op)
            ep.bytes_out += length
            entry = {"PartNumber": n, "ETag": r["ETag"]}
            if check:
                entry[field] = checksum
            done[n] = entry
            if progress is not None:
                progress(length)

        await _bounded([n for n in range(1, len(ranges) + 1) if n not in done], send, self.concurrency)
        await complete_multipart(ep, bucket, key, upload_id, [done[n] for n in sorted(done)])
        state_path.unlink(missing_ok=True)
        info = await self.kit.head_on(ep, bucket, key)
        if info.size != digest.size or (info.digest is not None and not info.digest.same_content(digest)):
            raise ChecksumMismatchError(
                f"S3 upload of {key!r} to {ep.name}: the stored object ({info.size} bytes) does not match the source",
                expected=digest.sha256 or digest.root,
            )
        return info

    async def _put_single(
        self,
        ep: S3Endpoint,
        *,
        bucket: str,
        key: str,
        src: Path,
        digest: Digest,
        meta: dict[str, str],
        progress: Progress | None,
    ) -> ObjectInfo:
        from .kit import ObjectInfo

        check = _store_check(ep)
        data, checksum = await asyncio.to_thread(_read_part, src, digest, 0, store_check=check)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": data, "Metadata": meta}
        if check:
            params[f"Checksum{check}"] = checksum
        r = await ep.call(f"put_object {key!r}", "put_object", **params)
        ep.bytes_out += len(data)
        if progress is not None:
            progress(len(data))
        return ObjectInfo(key, digest.size, r.get("ETag"), ep.name, digest, meta)

    async def _start_multipart(
        self,
        ep: S3Endpoint,
        *,
        bucket: str,
        key: str,
        meta: dict[str, str],
        state_path: Path,
        ranges: list[tuple[int, int]],
        check: str | None,
    ) -> tuple[str, dict[int, dict[str, Any]]]:
        """The upload ID and the parts already stored: those of an unfinished earlier upload (resume), or a
        new multipart upload."""
        upload_id = (_read_json(state_path) or {}).get("upload_id")
        if upload_id:
            try:
                return str(upload_id), await self._uploaded_parts(ep, bucket, key, upload_id, ranges)
            except NoSuchUploadError:
                pass
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Metadata": meta}
        if check:
            params["ChecksumAlgorithm"] = check
        r = await ep.call(f"create_multipart_upload {key!r}", "create_multipart_upload", **params)
        upload_id = str(r["UploadId"])
        _write_json(state_path, {"upload_id": upload_id, "key": key, "bucket": bucket, "endpoint": ep.name})
        return upload_id, {}

    async def _uploaded_parts(
        self, ep: S3Endpoint, bucket: str, key: str, upload_id: str, ranges: list[tuple[int, int]]
    ) -> dict[int, dict[str, Any]]:
        """Parts an earlier run already stored (sizes checked), from ListParts (paginated)."""
        out: dict[int, dict[str, Any]] = {}
        marker = 0
        while True:
            r = await ep.call(
                f"list_parts {key!r}", "list_parts", Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
            )
            for p in r.get("Parts") or ():
                n = int(p["PartNumber"])
                if 1 <= n <= len(ranges) and int(p.get("Size", -1)) == ranges[n - 1][1] - ranges[n - 1][0]:
                    entry = {"PartNumber": n, "ETag": p["ETag"]}
                    for f in ("ChecksumCRC32", "ChecksumSHA256"):
                        if p.get(f):
                            entry[f] = p[f]
                    out[n] = entry
            if not r.get("IsTruncated"):
                return out
            marker = int(r.get("NextPartNumberMarker") or 0)
