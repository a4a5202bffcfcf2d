"""Digests of whole objects and of their parts (pure: no I/O besides reading the local file given).

An object written by the kit carries its :class:`Digest` in its user metadata (``x-amz-meta-infermux-*``),
written atomically with the object, so every download can check every part it receives, whichever
endpoint or byte range it came from. The registry keeps the same digest in its manifests.

Parts are hashed with BLAKE3 by default (``algo="blake3"``; 256-bit, a cryptographic hash like SHA-256, and
about 3.5x faster per core here, so checking every byte of a download costs little next to receiving it), or
with SHA-256 (``algo="sha256"``: the kit's ``part_hash="sha256"``; objects written before BLAKE3, with no
algorithm recorded, are SHA-256 too). The algorithm is recorded with the digest, so a download checks
whichever one an object was written with. The SHA-256 of the whole file (``sha256``) is recorded by ``put``,
the registry (its content address) and, with the kit's ``file_sha256``, by plain uploads and sync; a download
recomputes it only when asked (``verify_sha256``): every part matching its hash is the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ConfigurationError

__all__ = [
    "ALGOS",
    "MIN_PART",
    "Digest",
    "PartHasher",
    "choose_part_size",
    "digest_bytes",
    "file_matches",
    "hash_file_parts",
    "new_part_hasher",
    "part_ranges",
    "sha256_file",
]

MIB = 1 << 20
MIN_PART = 8 * MIB  # also above S3's 5 MiB multipart minimum
MAX_PARTS_IN_METADATA = 32  # 32 * 44 base64 chars keeps the metadata well under S3's 2 KiB
ALGOS = ("blake3", "sha256")
_META_SHA = "infermux-sha256"
_META_PART_SIZE = "infermux-part-size"
_META_PARTS = "infermux-parts"
_META_SIZE = "infermux-size"
_META_ALGO = "infermux-part-hash"


class PartHasher(Protocol):
    def update(self, data: Any, /) -> object: ...

    def hexdigest(self) -> str: ...


def new_part_hasher(algo: str, leaf: int | None = None) -> PartHasher:
    """A fresh hash object for ``algo`` (``"blake3"`` or ``"sha256"``; both release the GIL on big buffers),
    over ``leaf``-byte leaves when ``leaf`` is given (see :class:`LeafHasher`)."""
    if leaf is not None:
        return LeafHasher(algo, leaf)
    if algo == "sha256":
        return hashlib.sha256()
    if algo == "blake3":
        try:
            from blake3 import blake3
        except ModuleNotFoundError as e:  # pragma: no cover - the s3 extra is missing
            raise ConfigurationError("infermux.s3 needs blake3: pip install 'infermux[s3]'") from e
        h: PartHasher = blake3()
        return h
    raise ConfigurationError(f"unknown part hash {algo!r}; known: {ALGOS}")


def hash_part(algo: str, data: Any, leaf: int | None = None) -> str:
    h = new_part_hasher(algo, leaf)
    h.update(data)
    return h.hexdigest()


class LeafHasher:
    """The hash of a part made of ``leaf``-byte leaves: the ``algo`` hash of each leaf, then the ``algo`` hash
    of a fixed prefix and the leaf hashes in order. Used when the part layout was chosen after the bytes
    were hashed (a streamed upload of unknown size hashes fixed leaves as they come, then groups them into at
    most :data:`MAX_PARTS_IN_METADATA` parts); fed the bytes in order, like any hash object."""

    PREFIX = b"infermux-leaves\n"

    def __init__(self, algo: str, leaf: int) -> None:
        self._algo, self._leaf = algo, leaf
        self._cur = new_part_hasher(algo)
        self._in_cur = 0
        self._leaves: list[bytes] = []

    def update(self, data: Any, /) -> None:
        view = memoryview(data).cast("B")
        while view:
            take = min(len(view), self._leaf - self._in_cur)
            self._cur.update(view[:take])
            self._in_cur += take
            view = view[take:]
            if self._in_cur == self._leaf:
                self._leaves.append(bytes.fromhex(self._cur.hexdigest()))
                self._cur, self._in_cur = new_part_hasher(self._algo), 0

    def hexdigest(self) -> str:
        leaves = self._leaves + ([bytes.fromhex(self._cur.hexdigest())] if self._in_cur else [])
        return combine_leaves(self._algo, leaves)


def combine_leaves(algo: str, leaves: list[bytes]) -> str:
    h = new_part_hasher(algo)
    h.update(LeafHasher.PREFIX)
    h.update(b"".join(leaves))
    return h.hexdigest()


def choose_part_size(size: int, minimum: int = MIN_PART) -> int:
    """The part size for an object of ``size`` bytes: ``minimum``, grown (in MiB steps) so that the
    object has at most :data:`MAX_PARTS_IN_METADATA` parts."""
    if minimum < 5 * MIB:
        raise ConfigurationError(f"part size must be >= 5 MiB (S3 multipart minimum), got {minimum}")
    need = math.ceil(size / MAX_PARTS_IN_METADATA) if size else minimum
    return max(minimum, math.ceil(need / MIB) * MIB)


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """``[(start, end_exclusive), ...]`` covering ``size`` bytes (one empty range for an empty object)."""
    if size == 0:
        return [(0, 0)]
    return [(s, min(s + part_size, size)) for s in range(0, size, part_size)]


@dataclass(frozen=True, slots=True)
class Digest:
    """Size, SHA-256 of the whole object (``None`` when it was not computed) and the ``algo`` hash of each
    ``part_size`` slice of it (hex)."""

    size: int
    sha256: str | None
    part_size: int
    parts: tuple[str, ...]
    algo: str = "blake3"
    #: ``None``: each part hash is the hash of the part's bytes; else parts are made of ``leaf``-byte leaves
    #: (see :class:`LeafHasher`; streamed uploads)
    leaf: int | None = None

    def part_hasher(self) -> PartHasher:
        return new_part_hasher(self.algo, self.leaf)

    @property
    def root(self) -> str:
        """One hash naming the content: SHA-256 over the layout and the part hashes (no pass over the data)."""
        h = hashlib.sha256(f"{self.algo}:{self.leaf or ''}:{self.size}:{self.part_size}:".encode())
        for p in self.parts:
            h.update(bytes.fromhex(p))
        return h.hexdigest()

    def same_content(self, other: Digest) -> bool:
        """Whether both digests name the same bytes: equal whole-file SHA-256s when both have one, else
        equal part hashes (same algorithm and layout)."""
        if self.size != other.size:
            return False
        if self.sha256 is not None and other.sha256 is not None:
            return self.sha256 == other.sha256
        return self.root == other.root

    @property
    def label(self) -> str:
        """What to call the content in messages: its SHA-256 when known, else its root."""
        return f"sha256 {self.sha256}" if self.sha256 is not None else f"{self.algo} root {self.root}"

    def to_metadata(self) -> dict[str, str]:
        raw = b"".join(bytes.fromhex(p) for p in self.parts)
        out = {
            _META_SIZE: str(self.size),
            _META_PART_SIZE: str(self.part_size),
            _META_PARTS: base64.urlsafe_b64encode(raw).decode().rstrip("="),
            _META_ALGO: self.algo if self.leaf is None else f"{self.algo};leaf={self.leaf}",
        }
        if self.sha256 is not None:
            out[_META_SHA] = self.sha256
        return out

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> Digest | None:
        """The digest stored in an object's user metadata; ``None`` when the object has none (not written by
        the kit). Raises :class:`ConfigurationError` when it is present but unreadable."""
        m = {k.lower(): v for k, v in meta.items()}
        if _META_PARTS not in m:
            return None
        try:
            size, psize = int(m[_META_SIZE]), int(m[_META_PART_SIZE])
            enc = m[_META_PARTS]
            raw = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4))
        except (KeyError, ValueError, binascii.Error) as e:
            raise ConfigurationError(f"object metadata holds an unreadable infermux digest: {e}") from None
        parts = tuple(raw[i : i + 32].hex() for i in range(0, len(raw), 32))
        algo, _, leaf = m.get(_META_ALGO, "sha256").partition(";leaf=")  # no algo: written before BLAKE3
        try:
            d = cls(size, m.get(_META_SHA), psize, parts, algo, int(leaf) if leaf else None)
        except ValueError as e:
            raise ConfigurationError(f"object metadata holds an unreadable infermux digest: {e}") from None
        d.check_shape()
        return d

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "sha256": self.sha256,
            "part_size": self.part_size,
            "parts": list(self.parts),
            "part_hash": self.algo,
            **({"leaf": self.leaf} if self.leaf is not None else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Digest:
        try:
            sha = d.get("sha256")
            out = cls(
                int(d["size"]),
                None if sha is None else str(sha),
                int(d["part_size"]),
                tuple(str(p) for p in d["parts"]),
                str(d.get("part_hash", "sha256")),
                None if d.get("leaf") is None else int(d["leaf"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigurationError(f"bad digest record {dict(d)!r}: {e}") from None
        out.check_shape()
        return out

    def check_shape(self) -> None:
        if self.part_size <= 0 or len(self.parts) != len(part_ranges(self.size, self.part_size)):
            raise ConfigurationError(
                f"digest is inconsistent: {len(self.parts)} part hashes for {self.size} bytes"
                f" in {self.part_size}-byte parts"
            )
        hashes = self.parts if self.sha256 is None else (self.sha256, *self.parts)
        if any(len(p) != 64 for p in hashes):
            raise ConfigurationError("digest is inconsistent: a hash is not 64 hex characters")
        if self.algo not in ALGOS:
            raise ConfigurationError(f"digest names an unknown part hash {self.algo!r}; known: {ALGOS}")
        if self.leaf is not None and (self.leaf <= 0 or self.part_size % self.leaf):
            raise ConfigurationError(
                f"digest is inconsistent: part size {self.part_size} is not a multiple of leaf {self.leaf}"
            )

    def ranges(self) -> list[tuple[int, int]]:
        return part_ranges(self.size, self.part_size)

    def with_sha256(self, sha: str) -> Digest:
        return Digest(self.size, sha, self.part_size, self.parts, self.algo, self.leaf)

    @classmethod
    def from_leaves(cls, size: int, sha256: str | None, leaf: int, leaves: list[bytes], algo: str = "blake3") -> Digest:
        """The digest of ``size`` bytes hashed as ``leaf``-byte leaves: parts of ``leaf * 2**k`` bytes, the
        smallest such size giving at most :data:`MAX_PARTS_IN_METADATA` parts (``k == 0``: plain part hashes)."""
        group = 1
        while math.ceil(max(size, 1) / (leaf * group)) > MAX_PARTS_IN_METADATA:
            group *= 2
        if group == 1:
            return cls(size, sha256, leaf, tuple(b.hex() for b in leaves), algo)
        parts = tuple(combine_leaves(algo, leaves[i : i + group]) for i in range(0, len(leaves), group))
        return cls(size, sha256, leaf * group, parts, algo, leaf)


def digest_bytes(data: bytes, part_size: int | None = None, *, algo: str = "blake3") -> Digest:
    ps = part_size or choose_part_size(len(data))
    view = memoryview(data)
    parts = tuple(hash_part(algo, view[s:e]) for s, e in part_ranges(len(data), ps))
    return Digest(len(data), hashlib.sha256(data).hexdigest(), ps, parts, algo)


def hash_file_parts(
    path: str | os.PathLike[str],
    part_size: int | None = None,
    *,
    whole: bool = True,
    algo: str = "blake3",
    leaf: int | None = None,
) -> Digest:
    """The digest of the file at ``path`` (blocking: run it in a thread). With ``whole``, the whole-file
    SHA-256 is computed on its own thread at the same time as the part hashes (hashlib and blake3 release
    the GIL), so the wall time is about one SHA-256 pass; without it, only the (fast) part hashes."""
    size = os.path.getsize(path)
    ps = part_size or choose_part_size(size)
    ranges = part_ranges(size, ps)
    with concurrent.futures.ThreadPoolExecutor(max_workers=3, thread_name_prefix="infermux-hash") as pool:
        fut = pool.submit(sha256_file, path) if whole else None
        parts = list(pool.map(lambda r: _hash_range(path, r[0], r[1] - r[0], algo, leaf), ranges))
        sha = fut.result() if fut is not None else None
    if os.path.getsize(path) != size:
        raise ConfigurationError(f"{path} changed while it was being hashed")
    return Digest(size, sha, ps, tuple(parts), algo, leaf)


def _hash_range(path: str | os.PathLike[str], start: int, length: int, algo: str, leaf: int | None) -> str:
    h = new_part_hasher(algo, leaf)
    buf = bytearray(min(length, 4 * MIB) or 1)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        f.seek(start)
        left = length
        while left > 0:
            n = f.readinto(view[: min(len(buf), left)])
            if not n:
                raise ConfigurationError(f"{path} shrank while it was being hashed")
            h.update(view[:n])
            left -= n
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def file_matches(path: str | os.PathLike[str], digest: Digest) -> bool:
    """Whether the local file at ``path`` holds the bytes ``digest`` names (blocking: run it in a thread)."""
    if not os.path.isfile(path) or os.path.getsize(path) != digest.size:
        return False
    if digest.sha256 is not None:
        return sha256_file(path) == digest.sha256
    return (
        hash_file_parts(path, digest.part_size, whole=False, algo=digest.algo, leaf=digest.leaf).parts == digest.parts
    )
