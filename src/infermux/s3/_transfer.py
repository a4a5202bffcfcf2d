"""Big transfers: parallel ranged downloads (from one or several endpoints) with resume and a hash check of
every part received; the upload half (multipart, parallel parts, resume) is in ``_upload``.

Each part is hashed while its bytes arrive (one pass, in the reader thread, on the chunk just received) and
written at its offset in the destination as it arrives (``os.pwrite`` of a small chunk buffer: a download
holds ``_CHUNK`` bytes per part in flight, not whole parts). A part that fails mid-body keeps the bytes already
received (and its hash state); its next try (same endpoint after the engine's backoff, or another endpoint)
asks only for the rest (``Range: bytes=<offset>-``). A part whose bytes do not match its hash is dropped and
fetched from another endpoint. A download is written to ``<dest>.infermux-partial`` (with a small state file
beside it listing the parts verified) and renamed to ``dest`` only once every part matched, so nothing
half-written is ever reported as done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import APIConnectionError, ConfigurationError, InfermuxError, MalformedResponseError
from ._upload import Progress, Uploads
from .digest import (
    MIN_PART,
    Digest,
    PartHasher,
    choose_part_size,
    hash_part,
    new_part_hasher,
    part_ranges,
)
from .errors import ChecksumMismatchError

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import S3Endpoint
    from .kit import ObjectInfo, S3Kit

__all__ = ["Progress", "TransferReport", "Transfers"]

_CHUNK = 1 << 20
_PARTIAL = ".infermux-partial"


@dataclass(slots=True)
class TransferReport:
    """What a download did: bytes and parts per endpoint, parts resumed from a byte offset, parts refetched
    after a failed part check, parts reused from an earlier interrupted run, endpoints given up on.

    ``sha256``: the whole-file SHA-256 recorded with the object (``None`` when none was); ``verified``: every
    part matched its hash; ``sha256_verified``: the SHA-256 was also recomputed over the file and matched
    (``verify_sha256=True``)."""

    key: str
    size: int = 0
    sha256: str | None = None
    verified: bool = False
    sha256_verified: bool = False
    bytes_by_endpoint: dict[str, int] = field(default_factory=dict)
    parts_by_endpoint: dict[str, int] = field(default_factory=dict)
    resumed_parts: int = 0
    refetched_parts: int = 0
    reused_parts: int = 0
    failed_endpoints: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(slots=True)
class _Part:
    index: int
    start: int
    end: int
    expected: str | None
    algo: str = "blake3"
    leaf: int | None = None
    buf: bytearray = field(default_factory=bytearray)  # in-memory reads only: allocated at the part's length
    got: int = 0  # bytes received so far (kept across attempts: the next one resumes here)
    hasher: PartHasher | None = None  # the hash of the first ``got`` bytes (kept across attempts too)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one reader thread at a time
    stop: threading.Event = field(default_factory=threading.Event)  # set: the reader thread must stop

    @property
    def length(self) -> int:
        return self.end - self.start


class Transfers(Uploads):
    """The transfer engine of an :class:`~infermux.s3.kit.S3Kit` (one per kit)."""

    def __init__(self, kit: S3Kit, *, part_size: int | None, concurrency: int, state_dir: Path) -> None:
        self.kit = kit
        self.min_part = part_size or MIN_PART
        choose_part_size(0, self.min_part)  # validates
        self.concurrency = concurrency
        self.state_dir = state_dir
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def readers(self) -> concurrent.futures.ThreadPoolExecutor:
        """Reader threads block for a whole part: their own pool, so disk writes and hashing (asyncio's
        default executor) never queue behind them. Created on first use."""
        if self._readers is None:
            self._readers = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="infermux-s3")
        return self._readers

    def close(self) -> None:
        pool, self._readers = self._readers, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def part_size_for(self, size: int) -> int:
        return choose_part_size(size, self.min_part)

    # ------------------------------------------------------------------ download

    async def sources(
        self, bucket: str, key: str, expected: Digest | None, *, everyone: bool
    ) -> tuple[list[S3Endpoint], list[S3Endpoint], ObjectInfo]:
        """(endpoints to read from now, endpoints to fall back on, the object's info). An endpoint holds the
        object when its size (and stored digest, when it has one) matches ``expected`` or the first answer."""
        kit = self.kit
        order = kit.ordered()
        if everyone:
            heads = await asyncio.gather(*(kit.head_on(ep, bucket, key) for ep in order), return_exceptions=True)
        else:
            heads = []
            for ep in order:
                try:
                    heads.append(await kit.head_on(ep, bucket, key))
                    break
                except InfermuxError as e:
                    if isinstance(e, ConfigurationError):
                        raise
                    heads.append(e)
        infos = [(ep, h) for ep, h in zip(order[: len(heads)], heads, strict=True) if not isinstance(h, BaseException)]
        if not infos:
            errs = [h for h in heads if isinstance(h, InfermuxError)]
            others = [h for h in heads if isinstance(h, BaseException) and not isinstance(h, InfermuxError)]
            if others:
                raise others[0]
            raise kit.combine(f"download of {key!r}", errs)
        ref = infos[0][1]
        want_size = expected.size if expected is not None else ref.size
        want = expected if expected is not None else ref.digest

        def matches(info: ObjectInfo) -> bool:
            if info.size != want_size:
                return False
            return info.digest is None or want is None or info.digest.same_content(want)

        now = [ep for ep, info in infos if matches(info)]
        if not now:
            raise ChecksumMismatchError(
                f"S3 download of {key!r}: no endpoint holds the expected object ({want_size} bytes,"
                f" {want.label if want else 'no digest'})",
                expected=(want.sha256 or want.root) if want else "",
            )
        ref = next(info for ep, info in infos if ep is now[0])
        tried = {ep.name for ep, _ in infos} | {
            ep.name for ep, h in zip(order[: len(heads)], heads, strict=True) if isinstance(h, BaseException)
        }
        later = [ep for ep in order if ep.name not in tried]
        return now, later, ref

    async def _fetch_part(
        self,
        ep: S3Endpoint,
        *,
        bucket: str,
        key: str,
        part: _Part,
        report: TransferReport,
        progress: Progress | None,
        alternatives: bool,
        fd: int | None = None,
    ) -> None:
        """Fetch ``part`` from ``ep`` (continuing after the bytes already received) and check its hash; with
        ``fd`` the bytes go to that file at their offset as they arrive, else into ``part.buf``."""

        loop = asyncio.get_running_loop()

        def received(n: int) -> None:  # on the loop thread
            ep.bytes_in += n
            report.bytes_by_endpoint[ep.name] = report.bytes_by_endpoint.get(ep.name, 0) + n
            if progress is not None:
                progress(n)

        def on_bytes(n: int) -> None:  # on the worker thread: live only for a progress callback (bars)
            if progress is not None:
                loop.call_soon_threadsafe(received, n)

        async def op(_client: Any) -> None:
            if part.got:
                report.resumed_parts += 1
            before = part.got
            try:
                read = functools.partial(_read_part, ep.sync_client, bucket, key, part, on_bytes, fd=fd)
                actual = await loop.run_in_executor(self.readers, read)
            finally:
                part.stop.set()  # a cancelled attempt's thread stops at its next chunk
                if progress is None:  # counted once per attempt, not with a loop wake-up per chunk
                    received(part.got - before)
            if part.expected is not None and actual != part.expected:
                if progress is not None:
                    progress(-part.got)
                part.got, part.hasher = 0, None
                report.refetched_parts += 1
                raise ChecksumMismatchError(
                    f"S3 get of {key!r}: part {part.index} (bytes {part.start}-{part.end - 1}) failed its"
                    f" {part.algo} check; dropped",
                    expected=part.expected,
                    actual=actual or "",
                    retryable=not alternatives,  # with another endpoint, refetch there rather than here
                )

        await ep.run(f"get_object {key!r} part {part.index}", op)
        report.parts_by_endpoint[ep.name] = report.parts_by_endpoint.get(ep.name, 0) + 1

    async def _fetch_parts(
        self,
        *,
        bucket: str,
        key: str,
        parts: list[_Part],
        now: list[S3Endpoint],
        later: list[S3Endpoint],
        info: ObjectInfo,
        report: TransferReport,
        progress: Progress | None,
        sink: Callable[[_Part], Awaitable[None]],
        fd: int | None = None,
    ) -> None:
        """Fetch every part with ``concurrency`` workers per live endpoint; a failed endpoint's parts go back
        to the queue (with their bytes) for the others; when none is left, the next fallback is checked."""
        queue = deque(parts)
        live = now  # mutated in place: a caller fetching part by part keeps the endpoints it learnt about
        errors: list[InfermuxError] = []

        async def worker(ep: S3Endpoint) -> None:
            while queue and ep in live:
                part = queue.popleft()
                try:
                    await self._fetch_part(
                        ep,
                        bucket=bucket,
                        key=key,
                        part=part,
                        report=report,
                        progress=progress,
                        alternatives=len(live) > 1 or bool(later),
                        fd=fd,
                    )
                except InfermuxError as e:
                    queue.appendleft(part)
                    if ep in live:
                        live.remove(ep)
                        errors.append(e)
                        report.failed_endpoints[ep.name] = f"{type(e).__name__}: {e.message}"
                    if isinstance(e, ConfigurationError):
                        raise
                    return
                await sink(part)

        while queue:
            if not live:
                while later and not live:
                    ep = later.pop(0)
                    try:
                        h = await self.kit.head_on(ep, bucket, key)
                    except InfermuxError as e:
                        errors.append(e)
                        continue
                    if h.size == info.size and (
                        h.digest is None or info.digest is None or h.digest.same_content(info.digest)
                    ):
                        live.append(ep)
                if not live:
                    raise self.kit.combine(f"download of {key!r}", errors)
            eps = list(live)  # workers interleaved across endpoints, so each starts with a part of its own
            await asyncio.gather(*(worker(ep) for _ in range(self.concurrency) for ep in eps))

    def _plan(
        self, key: str, info: ObjectInfo, expected: Digest | None, verify: bool
    ) -> tuple[Digest | None, list[_Part]]:
        digest = expected if expected is not None else (info.digest if verify else None)
        ps = digest.part_size if digest is not None else self.part_size_for(info.size)
        ranges = part_ranges(info.size, ps)
        return digest, [
            _Part(i, s, e, digest.parts[i], digest.algo, digest.leaf) if digest is not None else _Part(i, s, e, None)
            for i, (s, e) in enumerate(ranges)
        ]

    async def download(
        self,
        bucket: str,
        key: str,
        dest: Path,
        *,
        parallel_endpoints: bool,
        expected: Digest | None,
        verify: bool,
        verify_sha256: bool = False,
        progress: Progress | None,
    ) -> TransferReport:
        t0 = time.perf_counter()
        report = TransferReport(key)
        now, later, info = await self.sources(bucket, key, expected, everyone=parallel_endpoints)
        digest, parts = self._plan(key, info, expected, verify or verify_sha256)
        report.size, report.sha256 = info.size, digest.sha256 if digest else None
        if verify_sha256 and report.sha256 is None:
            raise ConfigurationError(
                f"S3 download of {key!r} with verify_sha256: the object (on {now[0].name}) has no whole-file"
                " SHA-256 recorded; upload it with file_sha256=True, or download without verify_sha256",
                provider="s3",
                endpoint=now[0].name,
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + _PARTIAL)
        state = dest.with_name(dest.name + _PARTIAL + ".json")
        done = await asyncio.to_thread(_reusable_parts, tmp, state, digest, parts)
        report.reused_parts = len(done)
        if progress is not None and done:
            progress(sum(p.length for p in parts if p.index in done))
        todo = [p for p in parts if p.index not in done and p.length > 0]
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o644)
        log = None
        # with verify_sha256: a thread hashes the file in order, each part as soon as it is in (from the page
        # cache, overlapping the transfer), so only the tail is left to hash once the last part arrives
        whole = _InOrderSha256(tmp, parts, done) if verify_sha256 and report.sha256 is not None else None
        hashing = asyncio.get_running_loop().run_in_executor(self.readers, whole.run) if whole else None
        try:
            os.ftruncate(fd, info.size)
            log = _StateLog(state, digest, keep=bool(done)) if digest is not None else None

            async def sink(part: _Part) -> None:  # the reader thread wrote and checked it already
                if log is not None:
                    log.add(part.index)
                if whole is not None:
                    whole.ready(part.index)

            await self._fetch_parts(
                parts=todo,
                bucket=bucket,
                key=key,
                now=now,
                later=later,
                info=info,
                report=report,
                progress=progress,
                sink=sink,
                fd=fd,
            )
            actual = await hashing if hashing is not None else None
        finally:
            if whole is not None and hashing is not None:
                whole.stop()  # when the fetch failed: the thread stops before its next part
                await asyncio.wait([hashing])
                if not hashing.cancelled():
                    hashing.exception()  # retrieved (raised above when the fetch succeeded)
            os.close(fd)
            if log is not None:
                log.close()
        # every part matched its hash as it arrived (the whole-file SHA-256, when the digest has one, was
        # computed by the uploader from the same bytes as the part hashes; it is rechecked with verify_sha256)
        report.verified = digest is not None
        if whole is not None:
            if actual != report.sha256:  # every part matched: the recorded SHA-256 or the local disk is wrong
                tmp.unlink(missing_ok=True)
                state.unlink(missing_ok=True)
                served = ", ".join(sorted(report.parts_by_endpoint)) or now[0].name
                raise ChecksumMismatchError(
                    f"S3 download of {key!r}: every part matched its {digest.algo if digest else ''} hash but the"
                    f" file's SHA-256 is {actual}, not the recorded {report.sha256} (parts from {served});"
                    " the object's digest is inconsistent, or the local copy changed; dropped",
                    expected=report.sha256 or "",
                    actual=actual or "",
                    provider="s3",
                    endpoint=served,
                    retryable=False,
                )
            report.sha256_verified = True
        os.replace(tmp, dest)
        state.unlink(missing_ok=True)
        report.seconds = time.perf_counter() - t0
        return report

    async def iter_object(
        self, bucket: str, key: str, *, verify: bool, progress: Progress | None
    ) -> AsyncIterator[bytes]:
        report = TransferReport(key)
        now, later, info = await self.sources(bucket, key, None, everyone=False)
        _, parts = self._plan(key, info, None, verify)
        for part in parts:
            if part.length:

                async def keep(_p: _Part) -> None:
                    return None

                await self._fetch_parts(
                    parts=[part],
                    bucket=bucket,
                    key=key,
                    now=now,
                    later=later,
                    info=info,
                    report=report,
                    progress=progress,
                    sink=keep,
                )
            data = bytes(part.buf[: part.length])  # checked against its hash (with a digest) by the reader
            part.buf = bytearray()
            yield data

    # ------------------------------------------------------------------ upload


def _read_part(
    client: Any, bucket: str, key: str, part: _Part, on_bytes: Callable[[int], None], *, fd: int | None
) -> str | None:
    """In a worker thread: fetch the rest of ``part`` (from ``part.got`` on) with a ranged GET, hashing each
    chunk as it arrives and writing it to ``fd`` at its offset (or into ``part.buf`` without ``fd``); return
    the hash of the whole part (``None`` when it has no expected hash)."""
    with part.lock:  # an earlier (cancelled) attempt's thread has finished with the part
        part.stop.clear()
        if part.got == 0:
            part.hasher = new_part_hasher(part.algo, part.leaf) if part.expected is not None else None
        if part.got < part.length:
            if fd is None and len(part.buf) != part.length:
                part.buf = bytearray(part.length)
            r = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={part.start + part.got}-{part.end - 1}")
            body = r["Body"]
            view = memoryview(part.buf if fd is None else bytearray(min(_CHUNK, part.length - part.got)))
            try:
                _fill(body, part, view, fd=fd, on_bytes=on_bytes, key=key)
            finally:
                view.release()
                body.close()
            if part.got < part.length:
                raise APIConnectionError(
                    f"S3 get of {key!r}: body ended at byte {part.start + part.got} of part {part.index}"
                )
        if part.expected is None:
            return None
        if part.hasher is None:  # pragma: no cover - set above whenever bytes are expected
            return hash_part(part.algo, part.buf, part.leaf)
        return part.hasher.hexdigest()


def _fill(
    body: Any, part: _Part, view: memoryview, *, fd: int | None, on_bytes: Callable[[int], None], key: str
) -> None:
    readinto = _reader(body)
    try:
        while part.got < part.length and not part.stop.is_set():
            want = min(_CHUNK, part.length - part.got)
            dst = view[part.got : part.got + want] if fd is None else view[:want]
            n = readinto(dst)
            if not n:
                break
            chunk = dst[:n]
            if part.hasher is not None:
                part.hasher.update(chunk)  # releases the GIL (hashlib and blake3, on big buffers)
            if fd is not None:
                try:
                    _pwrite_all(fd, chunk, part.start + part.got)
                except OSError as e:  # local (disk full...): no other endpoint or retry helps
                    raise ConfigurationError(f"S3 get of {key!r}: cannot write the download to disk: {e}") from e
            part.got += n
            on_bytes(n)
        if part.got == part.length and readinto(memoryview(bytearray(1))):
            raise MalformedResponseError(f"S3 get of {key!r}: more bytes than the range asked for")
    except OSError as e:  # a socket error read straight from the connection (not wrapped by urllib3)
        if isinstance(e, (ConnectionError, TimeoutError)):
            raise  # classified as connection failure / timeout by the endpoint
        raise APIConnectionError(f"S3 get of {key!r}: reading part {part.index} failed: {e}") from e


def _reader(body: Any) -> Callable[[memoryview], int]:
    """``readinto`` of the response body: the underlying ``http.client`` response when there is one and the
    body is not content-encoded (it reads straight into the caller's buffer; urllib3's ``readinto`` reads into
    a temporary ``bytes`` and copies), else botocore's ``StreamingBody.readinto``."""
    raw = getattr(body, "_raw_stream", None)
    fp = getattr(raw, "_fp", None)
    headers = getattr(raw, "headers", None) or {}
    if fp is not None and callable(getattr(fp, "readinto", None)) and not headers.get("content-encoding"):
        return fp.readinto  # type: ignore[no-any-return]
    return body.readinto  # type: ignore[no-any-return]


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


class _InOrderSha256:
    """The SHA-256 of a file being downloaded, computed in file order by one thread that reads each part
    back (with its own descriptor) once :meth:`ready` says it has been written and checked."""

    def __init__(self, path: Path, parts: list[_Part], done: set[int]) -> None:
        self._path, self._parts = path, parts
        self._ready = set(done) | {p.index for p in parts if p.length == 0}
        self._cond = threading.Condition()
        self._stopped = False

    def ready(self, index: int) -> None:
        with self._cond:
            self._ready.add(index)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def run(self) -> str | None:
        """In a thread: the hex SHA-256, or ``None`` when stopped first."""
        h = hashlib.sha256()
        buf = memoryview(bytearray(_CHUNK))
        fd = os.open(self._path, os.O_RDONLY)
        try:
            for p in self._parts:
                with self._cond:
                    while p.index not in self._ready and not self._stopped:
                        self._cond.wait()
                    if self._stopped:
                        return None
                off = p.start
                while off < p.end:
                    n = os.preadv(fd, [buf[: min(_CHUNK, p.end - off)]], off)
                    if not n:
                        raise ConfigurationError(f"{self._path} shrank while its SHA-256 was computed")
                    h.update(buf[:n])
                    off += n
        finally:
            os.close(fd)
        return h.hexdigest()


class _StateLog:
    """What a resumed download may reuse: a header line (the object's digest), then one line per part
    written (appended, no rewrite per part)."""

    def __init__(self, path: Path, digest: Digest, *, keep: bool) -> None:
        self._f = open(path, "a" if keep else "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        if not keep:
            self._f.write(json.dumps({"root": digest.root}) + "\n")
            self._f.flush()

    def add(self, index: int) -> None:
        self._f.write(f"{index}\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _reusable_parts(tmp: Path, state: Path, digest: Digest | None, parts: list[_Part]) -> set[int]:
    """Parts of an earlier interrupted download of the same object that still match their SHA-256."""
    if digest is None or not tmp.exists():
        return set()
    try:
        lines = state.read_text(encoding="utf-8").splitlines()
        head = json.loads(lines[0]) if lines else None
    except (OSError, ValueError):
        return set()
    if not isinstance(head, dict) or head.get("root") != digest.root:
        return set()
    ok: set[int] = set()
    with open(tmp, "rb") as f:
        for line in lines[1:]:
            i = int(line) if line.strip().isdigit() else -1
            if not 0 <= i < len(parts):
                continue
            p = parts[i]
            f.seek(p.start)
            if p.expected is not None and hash_part(p.algo, f.read(p.length), p.leaf) == p.expected:
                ok.add(i)
    return ok
