"""SHA-256 digests of whole objects and of their parts (pure: no I/O besides reading the local file given).

An object written by the kit carries its :class:`Digest` in its user metadata (``x-amz-meta-infermux-*``),
written atomically with the object, so every download can check every part it receives, whichever
endpoint or byte range it came from. The registry keeps the same digest in its manifests.
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
from typing import Any

from ..errors import ConfigurationError

__all__ = ["MIN_PART", "Digest", "choose_part_size", "digest_bytes", "hash_file_parts", "part_ranges", "sha256_file"]

MIB = 1 << 20
MIN_PART = 8 * MIB  # also above S3's 5 MiB multipart minimum
MAX_PARTS_IN_METADATA = 32  # 32 * 44 base64 chars keeps the metadata well under S3's 2 KiB
_META_SHA = "infermux-sha256"
_META_PART_SIZE = "infermux-part-size"
_META_PARTS = "infermux-parts"
_META_SIZE = "infermux-size"


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
    """Size, SHA-256 of the whole object and of each ``part_size`` slice of it (hex)."""

    size: int
    sha256: str
    part_size: int
    parts: tuple[str, ...]

    def to_metadata(self) -> dict[str, str]:
        raw = b"".join(bytes.fromhex(p) for p in self.parts)
        return {
            _META_SHA: self.sha256,
            _META_SIZE: str(self.size),
            _META_PART_SIZE: str(self.part_size),
            _META_PARTS: base64.urlsafe_b64encode(raw).decode().rstrip("="),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> Digest | None:
        """The digest stored in an object's user metadata; ``None`` when the object has none (not written by
        the kit). Raises :class:`ConfigurationError` when it is present but unreadable."""
        m = {k.lower(): v for k, v in meta.items()}
        if _META_SHA not in m:
            return None
        try:
            size, psize = int(m[_META_SIZE]), int(m[_META_PART_SIZE])
            enc = m[_META_PARTS]
            raw = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4))
        except (KeyError, ValueError, binascii.Error) as e:
            raise ConfigurationError(f"object metadata holds an unreadable infermux digest: {e}") from None
        parts = tuple(raw[i : i + 32].hex() for i in range(0, len(raw), 32))
        d = cls(size, m[_META_SHA], psize, parts)
        d.check_shape()
        return d

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256, "part_size": self.part_size, "parts": list(self.parts)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Digest:
        try:
            out = cls(int(d["size"]), str(d["sha256"]), int(d["part_size"]), tuple(str(p) for p in d["parts"]))
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
        if any(len(p) != 64 for p in (self.sha256, *self.parts)):
            raise ConfigurationError("digest is inconsistent: a SHA-256 is not 64 hex characters")

    def ranges(self) -> list[tuple[int, int]]:
        return part_ranges(self.size, self.part_size)


def digest_bytes(data: bytes, part_size: int | None = None) -> Digest:
    ps = part_size or choose_part_size(len(data))
    parts = tuple(hashlib.sha256(data[s:e]).hexdigest() for s, e in part_ranges(len(data), ps))
    return Digest(len(data), hashlib.sha256(data).hexdigest(), ps, parts)


def hash_file_parts(path: str | os.PathLike[str], part_size: int | None = None) -> Digest:
    """The digest of the file at ``path`` (blocking: run it in a thread). The whole-file SHA-256 and the part
    SHA-256s are computed at the same time on separate threads (hashlib releases the GIL), each reading the
    file itself, so the wall time is about one pass on a machine with two cores."""
    size = os.path.getsize(path)
    ps = part_size or choose_part_size(size)
    ranges = part_ranges(size, ps)
    with concurrent.futures.ThreadPoolExecutor(max_workers=3, thread_name_prefix="infermux-hash") as pool:
        whole = pool.submit(sha256_file, path)
        parts = list(pool.map(lambda r: _hash_range(path, r[0], r[1] - r[0]), ranges))
        sha = whole.result()
    if os.path.getsize(path) != size:
        raise ConfigurationError(f"{path} changed while it was being hashed")
    return Digest(size, sha, ps, tuple(parts))


def _hash_range(path: str | os.PathLike[str], start: int, length: int) -> str:
    h = hashlib.sha256()
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
