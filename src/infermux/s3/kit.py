"""``S3Kit``: several S3 endpoints behind one object API, with routing, failover and mirrored writes.

Reads go to the endpoints in routing order (round-robin, least-loaded or primary-with-failover; an
endpoint whose breaker is open goes last) and fail over to the next endpoint holding the object.
Writes go to one endpoint (failing over) or, mirrored, to every endpoint, with a result per endpoint.
Transfers (multipart upload, parallel ranged download, resume, verification) live in ``_transfer``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import AllEndpointsFailedError, ConfigurationError, InfermuxError, NotFoundError
from ..resilience.breaker import BreakerState
from ..resilience.clock import SYSTEM_CLOCK, Clock
from ._transfer import Progress, TransferReport, Transfers
from ._upload import store_checksum
from .config import S3EndpointConfig
from .digest import ALGOS, Digest, digest_bytes
from .endpoint import S3Endpoint
from .errors import NoSuchKeyError, PartialWriteError

__all__ = ["ObjectInfo", "S3Kit", "Strategy", "WriteResult"]

Strategy = Literal["round_robin", "least_loaded", "failover"]
_STRATEGIES = ("round_robin", "least_loaded", "failover")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None = None
    endpoint: str | None = None
    digest: Digest | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    last_modified: Any = None


@dataclass(slots=True)
class WriteResult:
    """The outcome of a write on each endpoint it was sent to: an :class:`ObjectInfo` or the error.

    ``status`` is ``"complete"`` (every endpoint), ``"partial"`` (some) or ``"failed"`` (none); a partial
    write is never reported as complete."""

    key: str
    results: dict[str, ObjectInfo | InfermuxError] = field(default_factory=dict)
    #: copies asked for: every endpoint for a mirrored write, one for a write that fails over
    wanted: int = 1

    @property
    def succeeded(self) -> list[str]:
        return [n for n, r in self.results.items() if isinstance(r, ObjectInfo)]

    @property
    def failed(self) -> dict[str, InfermuxError]:
        return {n: r for n, r in self.results.items() if isinstance(r, InfermuxError)}

    @property
    def status(self) -> Literal["complete", "partial", "failed"]:
        n = len(self.succeeded)
        if n == 0:
            return "failed"
        return "complete" if n >= self.wanted else "partial"

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def describe(self) -> str:
        bad = "; ".join(f"{n}: {type(e).__name__}: {e.message}" for n, e in self.failed.items())
        return f"{self.key}: {self.status} ({len(self.succeeded)} of {self.wanted} copies)" + (
            f"; failed: {bad}" if bad else ""
        )


class S3Kit:
    """Several S3 endpoints, one API. ``async with S3Kit([...], bucket="models") as kit:``.

    ``strategy`` orders endpoints for reads and single writes; ``mirror=True`` makes every write go to
    every endpoint. ``part_size`` (>= 5 MiB) and ``concurrency`` (parts in flight per endpoint) shape
    transfers; ``state_dir`` keeps what a resumed upload needs (default ``~/.cache/infermux/s3``).

    Integrity settings of what the kit writes: ``part_hash`` (``"blake3"``, the fast default, or ``"sha256"``)
    hashes each part for the object's digest; ``file_sha256`` also records the whole file's SHA-256 on a
    plain :meth:`upload_file`, :meth:`upload_stream` or sync (one more hash pass over the file, run beside
    the part hashes before the upload starts; :meth:`put` and the registry always record it). Downloads
    check whichever part hash an object was written with.
    """

    def __init__(
        self,
        endpoints: Sequence[S3EndpointConfig | S3Endpoint],
        *,
        bucket: str | None = None,
        strategy: Strategy = "round_robin",
        mirror: bool = False,
        part_size: int | None = None,
        concurrency: int = 8,
        part_hash: str = "blake3",
        file_sha256: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        on_breaker_change: Callable[[str, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        if not endpoints:
            raise ConfigurationError("S3Kit needs at least one endpoint")
        if strategy not in _STRATEGIES:
            raise ConfigurationError(f"S3Kit strategy must be one of {_STRATEGIES}, got {strategy!r}")
        if concurrency < 1:
            raise ConfigurationError("S3Kit concurrency must be >= 1")
        if part_hash not in ALGOS:
            raise ConfigurationError(f"S3Kit part_hash must be one of {ALGOS}, got {part_hash!r}")
        self.part_hash = part_hash
        self.file_sha256 = file_sha256
        self.endpoints: list[S3Endpoint] = [
            e if isinstance(e, S3Endpoint) else S3Endpoint(e, clock=clock, on_breaker_change=on_breaker_change)
            for e in endpoints
        ]
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"S3 endpoint names must be unique, got {names}")
        self.bucket = bucket
        self.strategy: Strategy = strategy
        self.mirror = mirror
        self._rr = itertools.count()
        self.clock = clock
        base = Path(state_dir) if state_dir is not None else Path.home() / ".cache" / "infermux" / "s3"
        self.transfers = Transfers(self, part_size=part_size, concurrency=concurrency, state_dir=base)

    async def __aenter__(self) -> S3Kit:
        try:
            for e in self.endpoints:
                await e.open()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self.transfers.close()
        for e in self.endpoints:
            await e.aclose()

    # ------------------------------------------------------------------ routing

    def endpoint(self, name: str) -> S3Endpoint:
        for e in self.endpoints:
            if e.name == name:
                return e
        raise ConfigurationError(f"no S3 endpoint named {name!r}; known: {[e.name for e in self.endpoints]}")

    def ordered(self) -> list[S3Endpoint]:
        """Endpoints in the order a read tries them; those whose breaker is open go last."""
        eps = list(self.endpoints)
        if self.strategy == "round_robin":
            k = next(self._rr) % len(eps)
            eps = eps[k:] + eps[:k]
        elif self.strategy == "least_loaded":
            k = next(self._rr) % len(eps)
            rot = eps[k:] + eps[:k]
            eps = sorted(rot, key=lambda e: e.load)
        return sorted(eps, key=lambda e: e.breaker_state is BreakerState.OPEN)

    def _bucket(self, bucket: str | None) -> str:
        b = bucket or self.bucket
        if not b:
            raise ConfigurationError("no bucket given (pass bucket= to the call or to S3Kit)")
        return b

    async def first(
        self, what: str, fn: Callable[[S3Endpoint], Awaitable[Any]], order: Sequence[S3Endpoint] | None = None
    ) -> tuple[S3Endpoint, Any]:
        """Try ``fn`` on each endpoint in routing order; the first success wins. When all fail: the
        not-found error if every endpoint said "not found", else :class:`AllEndpointsFailedError`."""
        errors: list[InfermuxError] = []
        for ep in order if order is not None else self.ordered():
            try:
                return ep, await fn(ep)
            except InfermuxError as e:
                if isinstance(e, ConfigurationError):
                    raise
                errors.append(e)
        raise self.combine(what, errors)

    def combine(self, what: str, errors: list[InfermuxError]) -> InfermuxError:
        if len(errors) == 1:
            return errors[0]
        if errors and all(isinstance(e, NotFoundError) for e in errors):
            first = errors[0]
            first.message += f" (on every endpoint: {', '.join(str(e.endpoint) for e in errors)})"
            first.args = (first.message,)
            return first
        detail = "; ".join(f"{e.endpoint}: {type(e).__name__}" for e in errors)
        return AllEndpointsFailedError(f"S3 {what} failed on every endpoint ({detail})", errors=errors)

    async def write(
        self,
        what: str,
        key: str,
        fn: Callable[[S3Endpoint], Awaitable[ObjectInfo]],
        *,
        mirror: bool | None,
        strict: bool,
    ) -> WriteResult:
        """A write: mirrored to every endpoint at once, or to the first endpoint that takes it."""
        result = WriteResult(key)
        if self.mirror if mirror is None else mirror:
            result.wanted = len(self.endpoints)
            outs = await asyncio.gather(*(fn(ep) for ep in self.endpoints), return_exceptions=True)
            for ep, out in zip(self.endpoints, outs, strict=True):
                if isinstance(out, BaseException) and not isinstance(out, InfermuxError):
                    raise out
                result.results[ep.name] = out
        else:
            for ep in self.ordered():
                try:
                    result.results[ep.name] = await fn(ep)
                    break
                except InfermuxError as e:
                    if isinstance(e, ConfigurationError):
                        raise
                    result.results[ep.name] = e
            else:
                raise self.combine(what, list(result.failed.values()))
        if result.status == "failed":
            raise self.combine(what, list(result.failed.values()))
        if strict and result.status != "complete":
            raise PartialWriteError(f"S3 {what} is partial: {result.describe()}", result=result)
        return result

    # ------------------------------------------------------------------ object operations

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        bucket: str | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        mirror: bool | None = None,
        strict: bool = False,
    ) -> WriteResult:
        """Store ``data`` (held in memory; use :meth:`upload_file` for big files) with its SHA-256 digest."""
        b = self._bucket(bucket)
        digest = digest_bytes(data, self.transfers.part_size_for(len(data)), algo=self.part_hash)
        meta = {**(metadata or {}), **digest.to_metadata()}

        async def one(ep: S3Endpoint) -> ObjectInfo:
            params: dict[str, Any] = {"Bucket": b, "Key": key, "Body": data, "Metadata": meta}
            if content_type:
                params["ContentType"] = content_type
            if ep.config.checksums == "when_supported":
                algo = ep.config.checksum_algorithm
                params[f"Checksum{algo}"] = store_checksum(algo, data)
            r = await ep.call("put_object", "put_object", **params)
            ep.bytes_out += len(data)
            return ObjectInfo(key, len(data), r.get("ETag"), ep.name, digest, meta)

        return await self.write("put", key, one, mirror=mirror, strict=strict)

    async def head(self, key: str, *, bucket: str | None = None) -> ObjectInfo:
        b = self._bucket(bucket)
        _, info = await self.first("head", lambda ep: self.head_on(ep, b, key))
        return info  # type: ignore[no-any-return]

    async def head_on(self, ep: S3Endpoint, bucket: str, key: str) -> ObjectInfo:
        r = await ep.call("head_object", "head_object", Bucket=bucket, Key=key)
        meta = dict(r.get("Metadata") or {})
        return ObjectInfo(
            key,
            int(r.get("ContentLength", 0)),
            r.get("ETag"),
            ep.name,
            Digest.from_metadata(meta),
            meta,
            r.get("LastModified"),
        )

    async def exists(self, key: str, *, bucket: str | None = None) -> bool:
        try:
            await self.head(key, bucket=bucket)
        except NoSuchKeyError:
            return False
        return True

    async def get(self, key: str, *, bucket: str | None = None, verify: bool = True) -> bytes:
        """The whole object in memory, every part checked against its digest (small objects)."""
        sink = bytearray()
        async for chunk in self.iter_object(key, bucket=bucket, verify=verify):
            sink += chunk
        return bytes(sink)

    def iter_object(
        self, key: str, *, bucket: str | None = None, verify: bool = True, progress: Progress | None = None
    ) -> AsyncIterator[bytes]:
        """Stream an object in order, one verified part at a time (never the whole object in memory),
        failing over and resuming from the byte offset already received."""
        return self.transfers.iter_object(self._bucket(bucket), key, verify=verify, progress=progress)

    async def download_file(
        self,
        key: str,
        dest: str | os.PathLike[str],
        *,
        bucket: str | None = None,
        parallel_endpoints: bool = False,
        expected: Digest | None = None,
        verify: bool = True,
        verify_sha256: bool = False,
        progress: Progress | None = None,
    ) -> TransferReport:
        """Download to ``dest`` with parallel ranged GETs (from every endpoint holding the object when
        ``parallel_endpoints``), verified part by part, resumable (``dest`` appears only when complete).

        ``verify_sha256`` also recomputes the whole file's SHA-256 once every part is in (one more pass over
        the file, from the page cache) and checks it against the one recorded with the object; an object
        with none recorded is a :class:`ConfigurationError` before anything is fetched."""
        return await self.transfers.download(
            self._bucket(bucket),
            key,
            Path(dest),
            parallel_endpoints=parallel_endpoints,
            expected=expected,
            verify=verify,
            verify_sha256=verify_sha256,
            progress=progress,
        )

    async def upload_file(
        self,
        src: str | os.PathLike[str],
        key: str,
        *,
        bucket: str | None = None,
        metadata: dict[str, str] | None = None,
        mirror: bool | None = None,
        strict: bool = False,
        digest: Digest | None = None,
        file_sha256: bool | None = None,
        progress: Progress | None = None,
    ) -> WriteResult:
        """Upload a file (multipart with parallel parts above one part size; streamed from disk), resuming an
        upload an earlier run left unfinished. ``file_sha256`` (default: the kit's setting) records the
        whole file's SHA-256 in the object's digest too."""
        return await self.transfers.upload(
            self._bucket(bucket),
            key,
            Path(src),
            metadata=metadata or {},
            mirror=mirror,
            strict=strict,
            digest=digest,
            file_sha256=self.file_sha256 if file_sha256 is None else file_sha256,
            progress=progress,
        )

    async def upload_stream(
        self,
        source: Iterable[bytes] | AsyncIterable[bytes],
        key: str,
        *,
        bucket: str | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        mirror: bool | None = None,
        strict: bool = False,
        progress: Progress | None = None,
    ) -> WriteResult:
        """Upload bytes of unknown size from an iterator or async iterator (a plain iterator is pulled in a
        worker thread): multipart as each part fills, at most ``concurrency + 2`` parts in memory; the object
        appears under ``key`` only once complete, with its digest (see :mod:`infermux.s3._stream`)."""
        from ._stream import upload_stream

        return await upload_stream(
            self,
            self._bucket(bucket),
            key,
            source,
            metadata=metadata or {},
            content_type=content_type,
            mirror=mirror,
            strict=strict,
            progress=progress,
        )

    async def list_objects(
        self, prefix: str = "", *, bucket: str | None = None, page_size: int = 1000, merged: bool = False
    ) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix`` (paginated), in key order.

        By default one endpoint's view (routing order; a failure mid-listing continues on the next endpoint
        after the last key already returned): when mirrors diverge (a partial write, an endpoint that was
        down), keys present only elsewhere are missing. With ``merged=True`` every endpoint is listed and
        the key-ordered union is returned (each key once, as the first endpoint in routing order that has
        it reports it); a failure of any endpoint then raises, since the union would be incomplete."""
        b = self._bucket(bucket)
        if merged:
            async for info in self._list_merged(b, prefix, page_size):
                yield info
            return
        last: str | None = None
        errors: list[InfermuxError] = []
        for ep in self.ordered():
            try:
                async for info in self._list_on(ep, b, prefix, page_size, last):
                    last = info.key
                    yield info
                return
            except InfermuxError as e:
                if isinstance(e, ConfigurationError):
                    raise
                errors.append(e)
        raise self.combine("list", errors)

    async def _list_merged(self, bucket: str, prefix: str, page_size: int) -> AsyncIterator[ObjectInfo]:
        """A k-way merge of every endpoint's listing (each already in key order): one page per endpoint in
        memory at a time."""
        streams = [self._list_on(ep, bucket, prefix, page_size, None) for ep in self.ordered()]
        heads: list[ObjectInfo | None] = [await anext(s, None) for s in streams]
        last: str | None = None
        while live := [(h.key, k, h) for k, h in enumerate(heads) if h is not None]:
            key, i, info = min(live, key=lambda t: (t[0], t[1]))  # lowest key; on a tie, routing order
            heads[i] = await anext(streams[i], None)
            if key != last:
                last = key
                yield info

    async def _list_on(
        self, ep: S3Endpoint, bucket: str, prefix: str, page_size: int, start_after: str | None
    ) -> AsyncIterator[ObjectInfo]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
            if token:
                params["ContinuationToken"] = token
            elif start_after:
                params["StartAfter"] = start_after
            page = await ep.call("list_objects_v2", "list_objects_v2", **params)
            for o in page.get("Contents") or ():
                yield ObjectInfo(
                    o["Key"], int(o.get("Size", 0)), o.get("ETag"), ep.name, last_modified=o.get("LastModified")
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def delete(self, key: str, *, bucket: str | None = None, strict: bool = False) -> WriteResult:
        """Delete from every endpoint (a missing object counts as deleted)."""
        b = self._bucket(bucket)

        async def one(ep: S3Endpoint) -> ObjectInfo:
            await ep.call("delete_object", "delete_object", Bucket=b, Key=key)
            return ObjectInfo(key, 0, None, ep.name)

        return await self.write("delete", key, one, mirror=True, strict=strict)

    async def copy(self, src_key: str, dst_key: str, *, bucket: str | None = None, strict: bool = False) -> WriteResult:
        """Server-side copy on every endpoint holding ``src_key`` (metadata and digest kept)."""
        b = self._bucket(bucket)

        async def one(ep: S3Endpoint) -> ObjectInfo:
            await ep.call(
                "copy_object",
                "copy_object",
                Bucket=b,
                Key=dst_key,
                CopySource={"Bucket": b, "Key": src_key},
                MetadataDirective="COPY",
            )
            return await self.head_on(ep, b, dst_key)

        holders = [ep for ep in self.endpoints if await _holds(self, ep, b, src_key)]
        if not holders:
            raise NoSuchKeyError(f"S3 copy: {src_key!r} is on no endpoint", status_code=404)
        result = WriteResult(dst_key, wanted=len(holders))
        outs = await asyncio.gather(*(one(ep) for ep in holders), return_exceptions=True)
        for ep, out in zip(holders, outs, strict=True):
            if isinstance(out, BaseException) and not isinstance(out, InfermuxError):
                raise out
            result.results[ep.name] = out
        if result.status == "failed":
            raise self.combine("copy", list(result.failed.values()))
        if strict and not result.ok:
            raise PartialWriteError(f"S3 copy is partial: {result.describe()}", result=result)
        return result

    async def presign(
        self, key: str, *, bucket: str | None = None, method: Literal["get", "put"] = "get", expires: int = 3600
    ) -> str:
        """A presigned URL (on the first endpoint in routing order) that needs no credentials to use."""
        if method not in ("get", "put"):
            raise ConfigurationError(f"presign method must be 'get' or 'put', got {method!r}")
        if not 1 <= expires <= 604800:
            raise ConfigurationError("presign expires must be 1..604800 seconds")
        ep = self.ordered()[0]
        params = {"Bucket": self._bucket(bucket), "Key": key}
        url: str = await ep.client.generate_presigned_url(f"{method}_object", Params=params, ExpiresIn=expires)
        return url

    async def create_bucket(self, bucket: str | None = None) -> WriteResult:
        """Create the bucket on every endpoint (an existing bucket owned by us counts as created)."""
        b = self._bucket(bucket)

        async def one(ep: S3Endpoint) -> ObjectInfo:
            try:
                await ep.call("create_bucket", "create_bucket", Bucket=b)
            except InfermuxError as e:
                if e.error_type not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            return ObjectInfo(b, 0, None, ep.name)

        return await self.write("create_bucket", b, one, mirror=True, strict=False)

    def stats(self) -> dict[str, Any]:
        return {e.name: e.stats() for e in self.endpoints}


async def _holds(kit: S3Kit, ep: S3Endpoint, bucket: str, key: str) -> bool:
    try:
        await kit.head_on(ep, bucket, key)
    except InfermuxError:
        return False
    return True
