"""A model registry on S3: ``push`` / ``pull`` / ``ls`` / ``rm`` of ``NAME:VERSION``.

Layout under ``s3://BUCKET/PREFIX``::

    blobs/sha256/<hex>                 file contents, content-addressed (a file shared by versions is stored once)
    manifests/<name>/<version>.json    {"name", "version", "files": [{"path", "size", "sha256", "part_size", "parts"}]}

A push uploads the blobs first and writes the manifest last, and only to endpoints that hold every blob,
so a reader never sees a half-pushed version. A pull verifies every part and every file against the
manifest and resumes where an interrupted pull stopped. ``rm`` deletes the manifest first, then the blobs no
other version uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigurationError, InfermuxError
from ._transfer import Progress, TransferReport
from .digest import Digest, file_matches, hash_file_parts
from .endpoint import S3Endpoint
from .errors import ChecksumMismatchError, NoSuchKeyError, PartialWriteError
from .kit import ObjectInfo, S3Kit, WriteResult

__all__ = ["ModelRef", "PullResult", "PushResult", "Registry"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SCHEMA = 1


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    version: str

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        name, sep, version = ref.rpartition(":")
        if not sep or not _NAME.match(name) or not _VERSION.match(version) or ".." in name:
            raise ConfigurationError(f"a model reference must be NAME:VERSION (letters, digits, . _ - /), got {ref!r}")
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(slots=True)
class PushResult:
    ref: ModelRef
    files: int = 0
    bytes: int = 0
    uploaded_blobs: int = 0
    reused_blobs: int = 0
    #: blobs deleted by a concurrent ``rm`` between this push's check and its manifest, uploaded again
    healed_blobs: int = 0
    manifest: WriteResult | None = None
    blob_failures: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.manifest.status if self.manifest is not None else "failed"


@dataclass(slots=True)
class PullResult:
    ref: ModelRef
    dest: Path
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    skipped_files: int = 0
    reports: list[TransferReport] = field(default_factory=list)


def _blob_key(prefix: str, sha: str) -> str:
    return f"{prefix}/blobs/sha256/{sha}" if prefix else f"blobs/sha256/{sha}"


def _manifest_key(prefix: str, ref: ModelRef) -> str:
    tail = f"manifests/{ref.name}/{ref.version}.json"
    return f"{prefix}/{tail}" if prefix else tail


def _source_files(src: Path) -> list[tuple[str, Path]]:
    if src.is_file():
        return [(src.name, src)]
    if not src.is_dir():
        raise ConfigurationError(f"push source {src} is neither a file nor a folder")
    out = sorted(
        (p.relative_to(src).as_posix(), p)
        for p in src.rglob("*")
        if p.is_file() and not p.name.endswith((".infermux-partial", ".infermux-partial.json"))
    )
    if not out:
        raise ConfigurationError(f"push source folder {src} has no files")
    return out


def _sha(d: Digest) -> str:
    """A registry digest's whole-file SHA-256 (its blobs are addressed by it: always computed on push)."""
    if d.sha256 is None:
        raise ConfigurationError("a registry manifest entry has no whole-file sha256")
    return d.sha256


def _safe_dest(dest: Path, rel: str) -> Path:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not rel:
        raise ConfigurationError(f"manifest names an unsafe path {rel!r}")
    return dest.joinpath(*p.parts)


class Registry:
    """Models stored in ``bucket`` under ``prefix`` on the endpoints of ``kit`` (a push mirrors to all)."""

    def __init__(self, kit: S3Kit, bucket: str, prefix: str = "") -> None:
        self.kit = kit
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    async def check_bucket(self) -> None:
        """A clear :class:`~infermux.s3.errors.NoSuchBucketError` when the bucket is missing on an endpoint."""
        for ep in self.kit.endpoints:  # a GET (not HEAD): its error body names the cause (bucket, signature...)
            await ep.call("list bucket", "list_objects_v2", Bucket=self.bucket, MaxKeys=1)

    # ------------------------------------------------------------------ push

    async def push(
        self,
        src: str | os.PathLike[str],
        ref: str | ModelRef,
        *,
        progress: Callable[[str, int], Progress] | None = None,
        strict: bool = False,
    ) -> PushResult:
        """Push a file or folder as ``ref``. ``progress(label, total_bytes)`` returns a per-file callback."""
        r = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
        files = _source_files(Path(src))
        res = PushResult(r, files=len(files))
        entries: list[dict[str, Any]] = []
        holders = {ep.name for ep in self.kit.endpoints}
        for rel, path in files:
            size = path.stat().st_size
            digest = await asyncio.to_thread(
                hash_file_parts, path, self.kit.transfers.part_size_for(size), algo=self.kit.part_hash
            )
            res.bytes += size
            entries.append({"path": rel, **digest.to_json()})
            key = _blob_key(self.prefix, _sha(digest))
            have = await self._holders_of(key, digest)
            missing = [ep for ep in self.kit.endpoints if ep.name not in have and ep.name in holders]
            if not missing:
                res.reused_blobs += 1
                continue
            cb = progress(rel, size * len(missing)) if progress is not None else None
            wr = await self._upload_to(missing, path, key, digest, cb)
            res.uploaded_blobs += 1
            for name, err in wr.failed.items():
                holders.discard(name)
                res.blob_failures[name] = f"{rel}: {type(err).__name__}: {err.message}"
        manifest = {"schema": SCHEMA, "name": r.name, "version": r.version, "created": time.time(), "files": entries}
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        res.manifest = await self._put_manifest(r, body, holders)
        await self._heal(files, entries, res, progress)
        if strict and res.manifest.status != "complete":
            raise PartialWriteError(f"push of {r} is partial: {res.manifest.describe()}", result=res.manifest)
        return res

    async def _heal(
        self,
        files: list[tuple[str, Path]],
        entries: list[dict[str, Any]],
        res: PushResult,
        progress: Callable[[str, int], Progress] | None,
    ) -> None:
        """After the manifest is written, check that every blob it names is still there (an ``rm`` of another
        version sharing a blob, running at the same time, may have listed the manifests before this one was
        written and deleted the blob): re-upload any that went missing."""
        if res.manifest is None:  # pragma: no cover - set by push before this runs
            return
        written = set(res.manifest.succeeded)
        for (rel, path), entry in zip(files, entries, strict=True):
            digest = Digest.from_json(entry)
            key = _blob_key(self.prefix, _sha(digest))
            have = await self._holders_of(key, digest)
            missing = [ep for ep in self.kit.endpoints if ep.name in written and ep.name not in have]
            if not missing:
                continue
            cb = progress(rel, digest.size * len(missing)) if progress is not None else None
            wr = await self._upload_to(missing, path, key, digest, cb)
            res.healed_blobs += 1
            for name, err in wr.failed.items():  # the manifest there names a blob that is gone: say so
                res.manifest.results[name] = err
                res.blob_failures[name] = (
                    f"{rel} (re-upload after a concurrent rm): {type(err).__name__}: {err.message}"
                )

    async def _holders_of(self, key: str, digest: Digest) -> set[str]:
        async def has(ep: S3Endpoint) -> bool:
            try:
                info = await self.kit.head_on(ep, self.bucket, key)
            except NoSuchKeyError:
                return False
            except InfermuxError:
                return False
            return info.size == digest.size and (info.digest is None or info.digest.same_content(digest))

        found = await asyncio.gather(*(has(ep) for ep in self.kit.endpoints))
        return {ep.name for ep, ok in zip(self.kit.endpoints, found, strict=True) if ok}

    async def _upload_to(
        self, eps: list[S3Endpoint], path: Path, key: str, digest: Digest, cb: Progress | None
    ) -> WriteResult:
        sub = S3Kit(eps, bucket=self.bucket, mirror=True, state_dir=self.kit.transfers.state_dir)
        sub.transfers.concurrency = self.kit.transfers.concurrency
        sub.transfers.min_part = self.kit.transfers.min_part
        try:
            return await sub.upload_file(path, key, digest=digest, progress=cb)
        except InfermuxError as e:  # failed everywhere it was sent
            out = WriteResult(key, wanted=len(eps))
            errs: list[InfermuxError] = list(getattr(e, "errors", None) or [e])
            by_name = {err.endpoint: err for err in errs}
            for ep in eps:
                out.results[ep.name] = by_name.get(ep.name, e)
            return out
        finally:
            sub.transfers.close()  # the endpoints stay open: they belong to self.kit

    async def _put_manifest(self, ref: ModelRef, body: bytes, holders: set[str]) -> WriteResult:
        key = _manifest_key(self.prefix, ref)
        result = WriteResult(key, wanted=len(self.kit.endpoints))
        targets = [ep for ep in self.kit.endpoints if ep.name in holders]
        for ep in self.kit.endpoints:
            if ep.name not in holders:
                result.results[ep.name] = PartialWriteError(
                    f"manifest not written to {ep.name}: a blob is missing there", result=result, endpoint=ep.name
                )

        async def one(ep: S3Endpoint) -> ObjectInfo:
            r = await ep.call(
                "put_object manifest",
                "put_object",
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
            )
            return ObjectInfo(key, len(body), r.get("ETag"), ep.name)

        outs = await asyncio.gather(*(one(ep) for ep in targets), return_exceptions=True)
        for ep, out in zip(targets, outs, strict=True):
            if isinstance(out, BaseException) and not isinstance(out, InfermuxError):
                raise out
            result.results[ep.name] = out
        return result

    # ------------------------------------------------------------------ read side

    async def manifest(self, ref: str | ModelRef) -> dict[str, Any]:
        r = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
        key = _manifest_key(self.prefix, r)

        async def fetch(ep: S3Endpoint) -> bytes:
            out = await ep.call(f"get manifest {r}", "get_object", Bucket=self.bucket, Key=key)
            async with out["Body"] as body:
                data: bytes = await body.read()
            return data

        try:
            _, raw = await self.kit.first(f"manifest of {r}", fetch)
        except NoSuchKeyError as e:
            e.message = f"model {r} is not in s3://{self.bucket}/{self.prefix} ({e.message})"
            e.args = (e.message,)
            raise
        try:
            m = json.loads(raw)
            files = [(str(f["path"]), Digest.from_json(f)) for f in m["files"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigurationError(f"manifest of {r} is unreadable: {e}") from None
        m["_files"] = files
        return dict(m)

    async def pull(
        self,
        ref: str | ModelRef,
        dest: str | os.PathLike[str],
        *,
        parallel_endpoints: bool = False,
        progress: Callable[[str, int], Progress] | None = None,
    ) -> PullResult:
        """Pull ``ref`` into folder ``dest`` (each file verified; an interrupted pull resumes)."""
        r = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
        m = await self.manifest(r)
        out = PullResult(r, Path(dest))
        for rel, digest in m["_files"]:
            target = _safe_dest(out.dest, rel)
            out.files.append(target)
            out.bytes += digest.size
            if await asyncio.to_thread(file_matches, target, digest):
                out.skipped_files += 1
                continue
            cb = progress(rel, digest.size) if progress is not None else None
            rep = await self.kit.download_file(
                _blob_key(self.prefix, _sha(digest)),
                target,
                bucket=self.bucket,
                expected=digest,
                parallel_endpoints=parallel_endpoints,
                progress=cb,
            )
            if not rep.verified:  # pragma: no cover - expected= always verifies
                raise ChecksumMismatchError(f"{rel} of {r} could not be verified")
            out.reports.append(rep)
        return out

    async def list_models(self) -> list[ModelRef]:
        base = f"{self.prefix}/manifests/" if self.prefix else "manifests/"
        refs: set[ModelRef] = set()
        async for info in self.kit.list_objects(base, bucket=self.bucket, merged=True):  # a partial push shows
            tail = info.key[len(base) :]
            name, _, file = tail.rpartition("/")
            if name and file.endswith(".json"):
                refs.add(ModelRef(name, file[: -len(".json")]))
        return sorted(refs, key=lambda x: (x.name, x.version))

    async def remove(self, ref: str | ModelRef) -> dict[str, Any]:
        """Delete ``ref``: its manifest first (everywhere), then the blobs that no other version uses (read
        from the manifests listed after this one is gone). A push running at the same time that shares a blob
        may write its manifest after that listing; it checks its blobs once its manifest is written and
        uploads again any this ``rm`` deleted (``PushResult.healed_blobs``)."""
        r = ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)
        m = await self.manifest(r)
        mine = {_sha(d) for _, d in m["_files"]}
        res = await self.kit.delete(_manifest_key(self.prefix, r), bucket=self.bucket)
        used: set[str] = set()
        for other in await self.list_models():
            if other != r:
                used |= {_sha(d) for _, d in (await self.manifest(other))["_files"]}
        removed = sorted(mine - used)
        for sha in removed:
            await self.kit.delete(_blob_key(self.prefix, sha), bucket=self.bucket)
        return {"manifest": res.status, "blobs_removed": len(removed), "blobs_kept": len(mine & used)}
