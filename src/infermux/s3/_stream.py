"""Streaming uploads of unknown size: bytes from an iterator or async iterator go out as multipart parts as
each part fills, with bounded memory (at most ``concurrency + 1`` part buffers per upload, whatever the size).

An object's digest travels in its metadata, which S3 fixes when an upload starts, and a stream's digest is
only known at its end. So the parts go to a temporary key (``<key>.infermux-stream-<id>``; a multipart
upload in progress is not listed) and, once complete, the object is copied server-side to ``key`` with its
digest (``CopyObject``, or ``UploadPartCopy`` above 5 GiB) and the temporary key deleted: ``key`` appears
with its digest or not at all. Each part is hashed (BLAKE3, as a leaf of the digest) as it fills; the part
layout of the digest is chosen at the end (leaves grouped so it fits in metadata, see
:class:`~infermux.s3.digest.LeafHasher`). A stream shorter than one part is one ``put``.

A stream cannot be replayed: a part is retried on its endpoint (the engine's retries, from the part's buffer),
but an endpoint that fails for good is dropped (its upload aborted), and the write fails over to no other
endpoint once bytes have been consumed. Mirrored, every part goes to every endpoint still alive; the
result says which endpoints hold the object.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, InfermuxError
from ._upload import Progress, abort_multipart_quietly, complete_multipart, store_checksum
from .digest import Digest, hash_part
from .errors import ChecksumMismatchError, PartialWriteError

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import S3Endpoint
    from .kit import ObjectInfo, S3Kit, WriteResult

__all__ = ["COPY_LIMIT", "COPY_PART", "upload_stream"]

_log = logging.getLogger("infermux.s3")

COPY_LIMIT = 5 * 1024**3  # CopyObject's limit; above it the copy is multipart (UploadPartCopy)
COPY_PART = 1024**3  # part size of such a copy

Source = Iterable[bytes] | AsyncIterable[bytes]


async def _chunks(source: Source) -> AsyncIterator[bytes]:
    """The chunks of an async iterable, or of a plain iterable pulled in a worker thread (it may block)."""
    if isinstance(source, AsyncIterable):
        async for chunk in source:
            yield chunk
        return
    if not isinstance(source, Iterable) or isinstance(source, (bytes, bytearray, memoryview, str)):
        raise ConfigurationError("upload_stream needs an iterable or async iterable of bytes (use put for bytes)")
    it: Iterator[bytes] = iter(source)

    def pull() -> bytes | None:
        return next(it, None)

    while True:
        got: bytes | None = await asyncio.to_thread(pull)
        if got is None:
            return
        yield got


async def _parts(source: Source, part_size: int) -> AsyncGenerator[bytes, None]:
    """Fixed ``part_size`` buffers (the last one shorter) from chunks of any size."""
    buf = bytearray()
    async for chunk in _chunks(source):
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise ConfigurationError(f"upload_stream: the source yielded {type(chunk).__name__}, not bytes")
        buf += chunk
        while len(buf) >= part_size:
            yield bytes(buf[:part_size])
            del buf[:part_size]
    if buf:
        yield bytes(buf)


class _Target:
    """One endpoint's side of a streamed upload."""

    def __init__(self, ep: S3Endpoint, upload_id: str) -> None:
        self.ep = ep
        self.upload_id = upload_id
        self.parts: dict[int, dict[str, Any]] = {}
        self.error: InfermuxError | None = None

    @property
    def check(self) -> str | None:
        c = self.ep.config
        return c.checksum_algorithm if c.checksums == "when_supported" else None


async def upload_stream(
    kit: S3Kit,
    bucket: str,
    key: str,
    source: Source,
    *,
    metadata: dict[str, str],
    content_type: str | None,
    mirror: bool | None,
    strict: bool,
    progress: Progress | None,
) -> WriteResult:
    from .kit import WriteResult

    part_size = kit.transfers.min_part
    parts = _parts(source, part_size)
    try:
        first = await anext(parts, None)
        if first is None or len(first) < part_size:  # the whole stream fits in one part: a plain put
            data = first or b""
            result = await kit.put(
                key, data, bucket=bucket, metadata=metadata, content_type=content_type, mirror=mirror, strict=strict
            )
            if progress is not None:
                progress(len(data))
            return result
        everyone = kit.mirror if mirror is None else mirror
        up = _StreamUpload(kit, bucket, key, WriteResult(key, wanted=len(kit.endpoints) if everyone else 1), progress)
        try:
            await up.start(everyone=everyone)
            size, leaves, sha = await up.send_all(first, parts)
            digest = Digest.from_leaves(size, sha, part_size, leaves, kit.part_hash)
            await up.finish_all(digest, {**metadata, **digest.to_metadata()}, content_type)
        finally:
            await asyncio.gather(*(up.abort(t) for t in up.targets if t.upload_id))
        result = up.result
    finally:
        await parts.aclose()
    if result.status == "failed":
        raise kit.combine(f"stream upload of {key!r}", list(result.failed.values()))
    if strict and result.status != "complete":
        raise PartialWriteError(f"S3 stream upload of {key!r} is partial: {result.describe()}", result=result)
    return result


class _StreamUpload:
    def __init__(self, kit: S3Kit, bucket: str, key: str, result: WriteResult, progress: Progress | None) -> None:
        self.kit, self.bucket, self.key, self.result, self.progress = kit, bucket, key, result, progress
        self.tmp = f"{key}.infermux-stream-{uuid.uuid4().hex[:12]}"
        self.targets: list[_Target] = []

    async def start(self, *, everyone: bool) -> None:
        """Multipart uploads started on every endpoint (mirrored) or on the first that takes one."""
        kit, result = self.kit, self.result

        async def create(ep: S3Endpoint) -> _Target:
            params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.tmp}
            if ep.config.checksums == "when_supported":
                params["ChecksumAlgorithm"] = ep.config.checksum_algorithm
            r = await ep.call(f"create_multipart_upload {self.tmp!r}", "create_multipart_upload", **params)
            return _Target(ep, str(r["UploadId"]))

        if everyone:
            outs = await asyncio.gather(*(create(ep) for ep in kit.endpoints), return_exceptions=True)
            for ep, out in zip(kit.endpoints, outs, strict=True):
                if isinstance(out, _Target):
                    self.targets.append(out)
                elif isinstance(out, InfermuxError):
                    result.results[ep.name] = out
                else:
                    raise out
        else:
            for ep in kit.ordered():
                try:
                    self.targets.append(await create(ep))
                    break
                except InfermuxError as e:
                    if isinstance(e, ConfigurationError):
                        raise
                    result.results[ep.name] = e
        if not self.targets:
            raise kit.combine(f"stream upload of {self.key!r}", list(result.failed.values()))

    async def _send_one(self, t: _Target, n: int, data: bytes) -> None:
        if t.error is not None:
            return
        check = t.check
        p: dict[str, Any] = {"Bucket": self.bucket, "Key": self.tmp, "UploadId": t.upload_id, "PartNumber": n}
        loop = asyncio.get_running_loop()

        def send() -> dict[str, Any]:  # in a worker thread with the blocking client, as upload_file sends
            if check:
                p[f"Checksum{check}"] = store_checksum(check, data)
            out: dict[str, Any] = t.ep.sync_client.upload_part(Body=data, **p)
            return out

        async def op(_client: Any) -> dict[str, Any]:
            return await loop.run_in_executor(self.kit.transfers.readers, send)

        try:
            r = await t.ep.run(f"upload_part {self.key!r} #{n}", op)
        except InfermuxError as e:
            if isinstance(e, ConfigurationError):
                raise
            if t.error is None:  # dropped: the stream cannot be replayed to it
                t.error = e
                self.result.results[t.ep.name] = e
            return
        t.ep.bytes_out += len(data)
        entry = {"PartNumber": n, "ETag": r["ETag"]}
        if check:
            entry[f"Checksum{check}"] = p[f"Checksum{check}"]
        t.parts[n] = entry

    async def send_all(self, first: bytes, parts: AsyncIterator[bytes]) -> tuple[int, list[bytes], str | None]:
        """Send every part to every live target, at most ``concurrency`` parts in flight (so at most that
        many buffers, plus the one filling); return the size, the leaf hashes and, with the kit's
        ``file_sha256``, the whole stream's SHA-256 (fed each part in order, in the same thread pass)."""
        slots = asyncio.Semaphore(self.kit.transfers.concurrency)
        algo = self.kit.part_hash
        whole = hashlib.sha256() if self.kit.file_sha256 else None

        def hash_leaf(data: bytes) -> bytes:
            if whole is not None:
                whole.update(data)
            return bytes.fromhex(hash_part(algo, data))

        leaves: list[bytes] = []
        tasks: list[asyncio.Task[None]] = []
        size = 0

        async def send(n: int, data: bytes) -> None:
            try:
                await asyncio.gather(*(self._send_one(t, n, data) for t in self.targets))
                if self.progress is not None:
                    self.progress(len(data))
            finally:
                slots.release()

        n, data = 1, first
        try:
            while True:
                leaves.append(await asyncio.to_thread(hash_leaf, data))
                size += len(data)
                await slots.acquire()
                for task in tasks:  # a part that failed in a way no endpoint can absorb stops the stream
                    if task.done() and task.exception() is not None:
                        await task
                tasks.append(asyncio.get_running_loop().create_task(send(n, data)))
                if all(t.error is not None for t in self.targets):
                    break
                nxt = await anext(parts, None)
                if nxt is None:
                    break
                n, data = n + 1, nxt
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        errors = [t.error for t in self.targets if t.error is not None]
        if len(errors) == len(self.targets):
            raise self.kit.combine(f"stream upload of {self.key!r}", errors)
        return size, leaves, None if whole is None else whole.hexdigest()

    async def finish_all(self, digest: Digest, meta: dict[str, str], content_type: str | None) -> None:
        live = [t for t in self.targets if t.error is None]
        outs = await asyncio.gather(
            *(self._finish(t, digest, meta, content_type) for t in live), return_exceptions=True
        )
        for t, out in zip(live, outs, strict=True):
            if isinstance(out, BaseException) and not isinstance(out, InfermuxError):
                raise out
            self.result.results[t.ep.name] = out

    async def _finish(self, t: _Target, digest: Digest, meta: dict[str, str], content_type: str | None) -> ObjectInfo:
        """Complete the temporary object, copy it to ``key`` with its digest, delete it, check what is stored."""
        ep, bucket, tmp, key = t.ep, self.bucket, self.tmp, self.key
        await complete_multipart(ep, bucket, tmp, t.upload_id, [t.parts[n] for n in sorted(t.parts)])
        t.upload_id = ""  # completed: nothing to abort
        try:
            extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
            if digest.size <= COPY_LIMIT:
                await ep.call(
                    f"copy_object {tmp!r} -> {key!r}",
                    "copy_object",
                    Bucket=bucket,
                    Key=key,
                    CopySource={"Bucket": bucket, "Key": tmp},
                    MetadataDirective="REPLACE",
                    Metadata=meta,
                    **extra,
                )
            else:
                await self._copy_multipart(ep, digest.size, {"Metadata": meta, **extra})
        finally:
            try:
                await ep.call(f"delete_object {tmp!r}", "delete_object", Bucket=bucket, Key=tmp)
            except InfermuxError as e:  # the object itself is fine: a leftover temporary key, said in the log
                _log.warning("S3 stream upload of %r: temporary %r left on %s: %s", key, tmp, ep.name, e)
        info = await self.kit.head_on(ep, bucket, key)
        if info.size != digest.size or info.digest is None or not info.digest.same_content(digest):
            raise ChecksumMismatchError(
                f"S3 stream upload of {key!r} to {ep.name}: the stored object ({info.size} bytes) does not match"
                f" the {digest.size} bytes streamed",
                expected=digest.root,
                endpoint=ep.name,
            )
        return info

    async def _copy_multipart(self, ep: S3Endpoint, size: int, params: dict[str, Any]) -> None:
        bucket, key = self.bucket, self.key
        r = await ep.call(
            f"create_multipart_upload {key!r}", "create_multipart_upload", Bucket=bucket, Key=key, **params
        )
        upload_id = str(r["UploadId"])
        try:
            parts = []
            for n, start in enumerate(range(0, size, COPY_PART), 1):
                out = await ep.call(
                    f"upload_part_copy {key!r} #{n}",
                    "upload_part_copy",
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=n,
                    CopySource={"Bucket": bucket, "Key": self.tmp},
                    CopySourceRange=f"bytes={start}-{min(start + COPY_PART, size) - 1}",
                )
                parts.append({"PartNumber": n, "ETag": out["CopyPartResult"]["ETag"]})
            await complete_multipart(ep, bucket, key, upload_id, parts)
        except BaseException:
            await abort_multipart_quietly(ep, bucket, key, upload_id)  # the error that stopped it is raised
            raise

    async def abort(self, t: _Target) -> None:
        """Abort an upload that was not completed (best effort: the endpoint may be down; S3 lifecycle rules
        expire abandoned uploads)."""
        if not t.upload_id:
            return
        await abort_multipart_quietly(t.ep, self.bucket, self.tmp, t.upload_id)
        t.upload_id = ""
