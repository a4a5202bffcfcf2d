"""Folder sync: a local folder to an S3 prefix and back, moving only files whose content changed.

"Changed" is decided by content, not timestamps: a file is skipped when the other side has the same size
and the same content by the digest the kit stores with every object (the same whole-file SHA-256, or the
same part hashes; a file hashed with another ``part_hash`` or part size is rehashed the stored way). Uploads
are mirrored when the kit mirrors, and a file is re-sent if any endpoint lacks it or holds other content.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import ConfigurationError
from ._transfer import Progress
from .digest import Digest, file_matches, hash_file_parts
from .errors import NoSuchKeyError
from .kit import S3Kit

__all__ = ["SyncResult", "sync_down", "sync_up"]

_SKIP_SUFFIXES = (".infermux-partial", ".infermux-partial.json")


@dataclass(slots=True)
class SyncResult:
    transferred: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _key(prefix: str, rel: str) -> str:
    p = prefix.strip("/")
    return f"{p}/{rel}" if p else rel


def _local_files(folder: Path) -> list[tuple[str, Path]]:
    return sorted(
        (p.relative_to(folder).as_posix(), p)
        for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(_SKIP_SUFFIXES)
    )


async def _same(path: Path, stored: Digest, local: Digest) -> bool:
    """Whether the object whose digest is ``stored`` holds the bytes of ``path`` (hashed as ``local``): when
    the two were hashed differently (another ``part_hash``, part size, or a SHA-256 on one side only), the
    file is hashed again the stored way rather than sent again."""
    if stored.same_content(local):
        return True
    if stored.sha256 is not None and local.sha256 is not None:
        return False  # both whole-file SHA-256s known, and they differ
    if (stored.algo, stored.part_size, stored.leaf) == (local.algo, local.part_size, local.leaf):
        return False  # same layout, different part hashes
    return await asyncio.to_thread(file_matches, path, stored)


async def sync_up(
    kit: S3Kit,
    folder: str | os.PathLike[str],
    prefix: str,
    *,
    bucket: str | None = None,
    delete: bool = False,
    progress: Progress | None = None,
) -> SyncResult:
    """Upload the files of ``folder`` that are missing or different under ``prefix``; with ``delete``,
    remove objects under ``prefix`` that have no local file."""
    root = Path(folder)
    if not await asyncio.to_thread(root.is_dir):
        raise ConfigurationError(f"sync source {root} is not a folder")
    b = kit._bucket(bucket)
    out = SyncResult()
    files = await asyncio.to_thread(_local_files, root)
    for rel, path in files:
        size = (await asyncio.to_thread(path.stat)).st_size
        digest = await asyncio.to_thread(
            hash_file_parts, path, kit.transfers.part_size_for(size), whole=kit.file_sha256, algo=kit.part_hash
        )
        key = _key(prefix, rel)
        same = True
        for ep in kit.endpoints if kit.mirror else kit.ordered()[:1]:
            try:
                info = await kit.head_on(ep, b, key)
            except NoSuchKeyError:
                same = False
                break
            if info.size != size or info.digest is None or not await _same(path, info.digest, digest):
                same = False
                break
        if same:
            out.unchanged.append(rel)
            continue
        await kit.upload_file(path, key, bucket=b, digest=digest, progress=progress)
        out.transferred.append(rel)
    if delete:
        local = {rel for rel, _ in files}
        base = _key(prefix, "")
        async for info in kit.list_objects(base, bucket=b):
            rel = info.key[len(base) :]
            if rel not in local:
                await kit.delete(info.key, bucket=b)
                out.deleted.append(rel)
    return out


async def sync_down(
    kit: S3Kit,
    prefix: str,
    folder: str | os.PathLike[str],
    *,
    bucket: str | None = None,
    delete: bool = False,
    progress: Progress | None = None,
) -> SyncResult:
    """Download the objects under ``prefix`` whose local copy is missing or different (every download is
    verified); with ``delete``, remove local files that have no object."""
    root = Path(folder)
    b = kit._bucket(bucket)
    base = _key(prefix, "")
    out = SyncResult()
    remote = [info async for info in kit.list_objects(base, bucket=b)]
    for listed in remote:
        rel = listed.key[len(base) :]
        parts = PurePosixPath(rel).parts
        if not rel or ".." in parts or rel.startswith("/"):
            raise ConfigurationError(f"object key {listed.key!r} cannot be a local path")
        target = root.joinpath(*parts)
        d = (await kit.head(listed.key, bucket=b)).digest
        if d is not None and await asyncio.to_thread(file_matches, target, d):
            out.unchanged.append(rel)
            continue
        await kit.download_file(listed.key, target, bucket=b, progress=progress)
        out.transferred.append(rel)
    if delete:
        keep = {info.key[len(base) :] for info in remote}
        for rel, path in await asyncio.to_thread(_local_files, root):
            if rel not in keep:
                path.unlink()
                out.deleted.append(rel)
    return out
