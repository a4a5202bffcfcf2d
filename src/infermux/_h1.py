"""A lean HTTP/1.1 client on asyncio's Protocol API: the connection, its parser and the response.

:class:`H1Conn` is one keep-alive connection: it writes a request and parses the answer as bytes arrive
(status line, headers, then a body delimited by ``Content-Length``, ``chunked`` or the close). The body is
handed to the consumer in the pieces the network delivered (no whole-body buffering for streams), and reading
pauses when the consumer falls behind. Waits are bounded with one ``loop.call_at`` handle each. The pool and
the :class:`~infermux.transport.Transport` around it are in :mod:`infermux._h1pool`.

Nothing here imports :mod:`infermux.transport` at module level (it imports us): the few helpers from there
are imported where they are used, on error paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import re
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .errors import APIConnectionError, APITimeoutError

if TYPE_CHECKING:  # pragma: no cover
    from .transport import Limits

__all__ = ["H1Conn", "H1Response", "ProtocolError", "ServerDisconnected"]

_MAX_HEAD = 64 * 1024  # status line + headers
_MAX_CHUNK_LINE = 4096  # a chunk-size line (with extensions) or a trailer line
_MAX_MEMBERS = 64  # gzip members in one body
_HIGH_WATER = 256 * 1024  # bytes received but not yet taken by the consumer: pause reading above this
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_DIGITS = re.compile(rb"[0-9]{1,18}")

# connection states
IDLE, HEAD, BODY, DONE = 0, 1, 2, 3
# body framing
_NONE, _LENGTH, _CHUNKED, _CLOSE = 0, 1, 2, 3
# chunked sub-states
_SIZE, _DATA, _DATA_END, _TRAILER = 0, 1, 2, 3


class ProtocolError(Exception):
    """The server's bytes are not HTTP/1.1 we can read (internal; the transport types it)."""


class ServerDisconnected(Exception):
    """The connection closed before the response was complete (internal; the transport types it)."""


class H1Conn(asyncio.Protocol):
    """One HTTP/1.1 connection. Owned by one request at a time (the pool hands it out)."""

    __slots__ = (
        "_chunk_left",
        "_cstate",
        "_head_only",
        "_mode",
        "_remaining",
        "buf",
        "chunks",
        "closed",
        "deadline",
        "done",
        "error",
        "headers",
        "idle_since",
        "keep_alive",
        "key",
        "loop",
        "on_lost",
        "paused",
        "queued",
        "received",
        "state",
        "status",
        "timeout",
        "timer",
        "transport",
        "waiter",
        "wbuf",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Any, on_lost: Callable[[H1Conn], None]) -> None:
        self.loop = loop
        self.key = key
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.chunks: deque[bytes] = deque()
        self.queued = 0
        self.state = IDLE
        self.waiter: asyncio.Future[bool] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        self.timeout = 0.0
        self.wbuf = 0  # the write buffer's size when the timer last looked (a body still leaving moves it)
        self.error: BaseException | None = None
        self.closed = False
        self.paused = False
        self.done = False
        self.received = 0
        self.idle_since = 0.0
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = True
        self._head_only = False
        self._mode = _NONE
        self._remaining = 0
        self._cstate = _SIZE
        self._chunk_left = 0

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == BODY:
            self.received += len(data)
            self._feed_body(data)
        elif state == HEAD:
            self.received += len(data)
            self._parse_head(data)
        else:  # bytes nobody asked for (an idle connection, or after the body): it cannot be reused
            self.keep_alive = False
            if state == IDLE:
                self.close()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        state = self.state
        if state == BODY and self._mode == _CLOSE and exc is None:
            self._finish()  # the close delimits this body
        elif state in (HEAD, BODY) and self.error is None:
            why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
            self.error = ServerDisconnected(
                "the server closed the connection before the response was complete" + why
                if self.received
                else "the server closed the connection without answering" + why
            )
            self._wake()
        self.on_lost(self)

    # ------------------------------------------------------------------ request side

    def start(self, data: bytes, head_only: bool) -> None:
        """Send one request (``data``: head and body) and expect its answer."""
        self.state = HEAD
        self.received = 0
        self.wbuf = 0
        self.done = False
        self.keep_alive = True
        self._head_only = head_only
        assert self.transport is not None
        self.transport.write(data)

    def reset_idle(self, now: float) -> None:
        self.state = IDLE
        self.idle_since = now
        self.status = 0
        self.headers = {}
        self.done = False

    def close(self) -> None:
        self.keep_alive = False
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        self.keep_alive = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ waiting (bounded)

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(True)

    def _check(self) -> None:
        """The connection's one timer: expire the current wait if its deadline passed, else sleep until it.

        A wait only moves ``deadline``; the timer is re-armed when it fires early, so a request that gets
        its answer in time costs no timer of its own (most of them)."""
        self.timer = None
        fut = self.waiter
        if fut is None or fut.done() or self.closed:
            return
        loop = self.loop
        t = self.transport
        if t is not None and (size := t.get_write_buffer_size()) > 0 and size != self.wbuf:
            # still sending the request body, and it moved since the last look: the read timeout starts once it
            # has left (a server that reads nothing for a whole timeout times out as one that answers nothing)
            self.wbuf = size
            self.deadline = loop.time() + self.timeout
        if loop.time() >= self.deadline:
            fut.set_result(False)
        else:
            self.timer = loop.call_at(self.deadline, self._check)

    async def wait(self, timeout: float) -> bool:
        """Wait for news (bytes, the end, an error) for at most ``timeout`` s; False when it timed out."""
        loop = self.loop
        fut: asyncio.Future[bool] = loop.create_future()
        self.waiter = fut
        self.timeout = timeout
        self.deadline = deadline = loop.time() + timeout
        timer = self.timer
        if timer is None:
            self.timer = loop.call_at(deadline, self._check)
        elif timer.when() > deadline:  # a shorter timeout than the armed one
            timer.cancel()
            self.timer = loop.call_at(deadline, self._check)
        try:
            return await fut
        finally:
            self.waiter = None

    # ------------------------------------------------------------------ response side

    def take(self) -> bytes:
        """All body bytes received so far (the consumer's turn); resumes reading if it was paused."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.queued = 0
        if self.paused and not self.closed:
            self.paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        return data

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = ProtocolError(message)
        self.close()
        self._wake()

    def _push(self, data: bytes) -> None:
        self.chunks.append(data)
        self.queued += len(data)
        if self.queued > _HIGH_WATER and not self.paused and not self.closed:
            self.paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self.state = DONE
        self.done = True
        if self.buf:  # bytes past the end of the body: not an answer we asked for
            self.keep_alive = False
            self.buf.clear()
        self._wake()

    def _parse_head(self, data: bytes) -> None:
        buf = self.buf
        if buf:  # the head came in pieces
            buf += data
            data = bytes(buf)
            buf.clear()
        while True:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > _MAX_HEAD:
                    self._fail(f"response head over {_MAX_HEAD} bytes")
                else:
                    buf += data
                return
            lines = data[:end].decode("latin-1").split("\r\n")
            data = data[end + 4 :]
            try:
                status, headers = _parse_lines(lines)
            except ProtocolError as e:
                self._fail(str(e))
                return
            if 100 <= status < 200 and status != 101:
                continue  # 100 Continue, 103 Early Hints...: the real answer follows
            self.status = status
            self.headers = headers
            if not self._framing(status, headers, lines[0][7:8] == "0"):
                return
            self.state = BODY
            self._wake()
            if self._mode == _NONE:
                if data:
                    buf += data  # bytes after a body-less answer: _finish marks the connection unusable
                self._finish()
            elif data:
                self._feed_body(data)
            return

    def _framing(self, status: int, headers: dict[str, str], http10: bool) -> bool:
        """Keep-alive and how the body is delimited; False (after failing) on a bad Content-Length."""
        conn = headers.get("connection")
        if conn is not None:
            conn = conn.lower()
            if "close" in conn:
                self.keep_alive = False
        if http10 and (conn is None or "keep-alive" not in conn):
            self.keep_alive = False  # HTTP/1.0 closes unless told otherwise
        if self._head_only or status in (204, 304) or status < 200:
            self._mode = _NONE
            if status == 101:
                self.keep_alive = False
            return True
        te = headers.get("transfer-encoding")
        if te is not None and "chunked" in te.lower():
            self._mode, self._cstate = _CHUNKED, _SIZE
            if "content-length" in headers:  # both framings (RFC 9112 6.3): chunked wins, the connection is not reused
                self.keep_alive = False
            return True
        cl = headers.get("content-length")
        if cl is not None:
            raw = cl.strip().encode("latin-1")
            if _DIGITS.fullmatch(raw) is None:
                self._fail(f"bad Content-Length {cl[:40]!r}")
                return False
            n = int(raw)
            self._mode, self._remaining = (_LENGTH, n) if n else (_NONE, 0)
            return True
        self._mode = _CLOSE
        self.keep_alive = False
        return True

    def _feed_body(self, data: bytes) -> None:
        mode = self._mode
        if mode == _LENGTH:
            n = self._remaining
            if len(data) < n:
                self._remaining = n - len(data)
                self._push(data)
                return
            if len(data) > n:
                self.buf += data[n:]
                data = data[:n]
            self._remaining = 0
            self._push(data)
            self._finish()
        elif mode == _CHUNKED:
            self._parse_chunked(data)
        elif mode == _CLOSE:
            self._push(data)
        else:
            self.keep_alive = False

    def _parse_chunked(self, data: bytes) -> None:
        """Chunked framing, parsed in place on the bytes that arrived (a piece left incomplete waits in buf)."""
        buf = self.buf
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        pos, end = 0, len(data)
        while pos < end:
            cs = self._cstate
            if cs == _DATA:
                stop = pos + self._chunk_left
                if stop > end:  # the chunk goes on in the next read
                    self._chunk_left = stop - end
                    self._push(data[pos:] if pos else data)
                    return
                self._push(data[pos:stop])
                pos = stop
                self._cstate = _DATA_END
            elif cs == _DATA_END:
                if end - pos < 2:
                    buf += data[pos:]
                    return
                if data[pos : pos + 2] != b"\r\n":
                    self._fail("chunk not followed by CRLF")
                    return
                pos += 2
                self._cstate = _SIZE
            else:  # a chunk-size line or a trailer line
                i = data.find(b"\r\n", pos)
                if i < 0:
                    self._keep_line(data[pos:])
                    return
                line, pos = data[pos:i], i + 2
                if not self._chunk_line(line, cs):
                    if pos < end and self.state == DONE:
                        self.keep_alive = False  # bytes after the body: not an answer we asked for
                    return

    def _keep_line(self, piece: bytes) -> None:
        """The start of a size or trailer line: kept for the next read, bounded."""
        if len(piece) > _MAX_CHUNK_LINE:
            self._fail("chunk-size or trailer line too long")
        else:
            self.buf += piece

    def _chunk_line(self, line: bytes, cs: int) -> bool:
        """A chunk-size line or a trailer line; False when it ends the body or is bad."""
        if cs == _TRAILER:
            if not line:
                self._finish()
                return False
            return True  # trailers are ignored
        size = line.split(b";", 1)[0].strip()
        if _HEX.fullmatch(size) is None:
            self._fail(f"bad chunk size {line[:40]!r}")
            return False
        n = int(size, 16)
        if n == 0:
            self._cstate = _TRAILER
        else:
            self._chunk_left, self._cstate = n, _DATA
        return True


def _parse_lines(lines: list[str]) -> tuple[int, dict[str, str]]:
    """Status code and headers (names lower-cased) of a response head (decoded as latin-1), split in lines."""
    line = lines[0]
    code = line[9:12]
    if not line.startswith("HTTP/1.") or len(line) < 12 or line[12:13] not in ("", " ") or not code.isdigit():
        raise ProtocolError(f"bad status line {line[:40]!r}")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        name, sep, value = raw.partition(":")
        if not sep or not name or name[-1] in " \t" or raw[0] in " \t":
            raise ProtocolError(f"bad header line {raw[:40]!r}")
        # repeated names: the last wins (as the aiohttp transport's dict conversion does), except differing
        # Content-Lengths (RFC 9112 6.3: the body's end is ambiguous, an unrecoverable error)
        name = name.lower()
        value = value.strip(" \t")
        if name == "content-length" and headers.get(name, value) != value:
            raise ProtocolError(f"differing Content-Length values {value[:20]!r}")
        headers[name] = value
    return int(code), headers


# --------------------------------------------------------------------------- content decoding


@functools.cache
def _brotli() -> Any:
    try:
        return importlib.import_module("brotli")
    except ImportError:
        return None


def accept_encoding() -> str:
    """What we ask for: gzip and deflate always; br when a brotli module is installed (as aiohttp does)."""
    return "gzip, deflate" if _brotli() is None else "gzip, deflate, br"


class Decoder:
    """Incremental decoding of a ``Content-Encoding``; output bounded by the caller's room."""

    __slots__ = ("_br_limit", "_deflate_raw", "_members", "_obj", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._deflate_raw = False
        self._br_limit = True  # brotli's process() takes an output limit (Brotli 1.2+); False once it did not
        self._members = 1  # gzip members begun
        if name in ("gzip", "x-gzip"):
            self._obj: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif name == "deflate":
            self._obj = zlib.decompressobj(zlib.MAX_WBITS)
        elif name == "br":
            brotli = _brotli()
            if brotli is None:
                raise ProtocolError("cannot decode Content-Encoding br: install the brotli module")
            self._obj = brotli.Decompressor()
        else:  # zstd: aiohttp needs backports.zstd for it, which is not installed here either
            raise ProtocolError(f"cannot decode Content-Encoding {name[:40]!r}")

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode ``data``; more than ``room`` bytes out means over the limit (returns room + 1 or more)."""
        try:
            if self.name == "br":
                if self._br_limit:
                    try:  # the output bounded as zlib's is (a small body may expand to gigabytes)
                        return bytes(self._obj.process(data, room + 1))
                    except TypeError:  # a brotli module without output_buffer_limit: unbounded, as before
                        self._br_limit = False
                return bytes(self._obj.process(data))
            obj = self._obj
            out: bytes = obj.decompress(data, room + 1)
            if obj.eof and obj.unused_data and self.name != "deflate":
                out = self._next_members(out, room)
            return out
        except zlib.error as e:
            if self.name == "deflate" and not self._deflate_raw:  # a raw deflate stream (no zlib header)
                self._deflate_raw = True
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, room)
            raise ProtocolError(f"cannot decode the {self.name} body: {e}") from None
        except ProtocolError:
            raise
        except Exception as e:  # noqa: BLE001 - brotli's error type depends on the module installed
            raise ProtocolError(f"cannot decode the {self.name} body: {type(e).__name__}") from None

    def _next_members(self, out: bytes, room: int) -> bytes:
        """A gzip body of several members (RFC 1952 2.2, decoded whole as aiohttp does): each member after the
        first with a decompressor of its own; at most ``_MAX_MEMBERS`` (each costs a copy of what follows it)."""
        obj = self._obj
        parts = [out]
        total = len(out)
        while obj.eof and obj.unused_data and total <= room:
            self._members += 1
            if self._members > _MAX_MEMBERS:
                raise ProtocolError(f"cannot decode the {self.name} body: more than {_MAX_MEMBERS} members")
            rest = obj.unused_data
            obj = self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
            piece: bytes = obj.decompress(rest, room + 1 - total)
            parts.append(piece)
            total += len(piece)
        return b"".join(parts)

    def flush(self) -> bytes:
        if self.name == "br":
            return b""
        try:
            return bytes(self._obj.flush())
        except zlib.error as e:
            raise ProtocolError(f"cannot decode the {self.name} body: {e}") from None


def decoder_for(headers: dict[str, str]) -> Decoder | None:
    enc = headers.get("content-encoding")
    if enc is None:
        return None
    enc = enc.strip().lower()
    if enc not in _DECODED:
        return None  # identity, or an encoding we did not ask for: handed on as it came (as aiohttp does)
    return Decoder(enc)


_DECODED = frozenset({"gzip", "x-gzip", "deflate", "br", "zstd"})


# --------------------------------------------------------------------------- response


class H1Response:
    """The answer of one request: status and headers at once; the body through :meth:`read` or
    :meth:`iter_chunks`. The connection goes back to its pool once the body has arrived whole and the server
    keeps it alive; on anything else (an error, cancellation, a body left unread) it is closed."""

    __slots__ = ("_conn", "_limits", "_read_timeout", "_release", "_url", "headers", "status")

    def __init__(
        self,
        conn: H1Conn,
        url: str,
        limits: Limits,
        read_timeout: float,
        release: Callable[[H1Conn], None],
    ) -> None:
        self._conn: H1Conn | None = conn
        self._url = url
        self._limits = limits
        self._read_timeout = read_timeout
        self._release = release
        self.status = conn.status
        self.headers = conn.headers

    def __del__(self) -> None:  # dropped without read/aclose: the connection must not leak
        conn = self._conn
        if conn is not None:
            self._conn = None
            with contextlib.suppress(RuntimeError):  # its loop is closed already: the socket went with it
                conn.abort()
            self._release(conn)

    def _done(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._release(conn)

    def _error(self, e: Exception, what: str) -> APIConnectionError:
        from .transport import safe_url

        return APIConnectionError(f"connection broke while reading the {what} from {safe_url(self._url)}: {e}")

    def _too_large(self, what: str, limit: int) -> Exception:
        from .transport import too_large

        return too_large(what, limit, self._url)

    async def _pull(self, conn: H1Conn, timed_out: str) -> bytes | None:
        """The body bytes received since the last pull (waiting for some, bounded); None at the end."""
        while True:
            if conn.queued:
                return conn.take()
            if conn.done:
                return None
            if conn.error is not None:
                raise conn.error
            if not await conn.wait(self._read_timeout):
                raise APITimeoutError(timed_out)

    async def read(self) -> bytes:
        conn = self._conn
        if conn is None:
            return b""
        limit = self._limits.max_body_bytes
        try:
            if conn._mode == _LENGTH and conn._remaining + conn.queued > limit:
                # the declared length (the compressed size when encoded: so is the decoded body) is over the limit
                raise self._too_large(f"the declared body ({self.headers.get('content-length')} bytes)", limit)
            decoder = decoder_for(self.headers)
            if conn.done and decoder is None:  # the whole body came with the head: the common case
                whole = conn.take() if conn.queued else b""
                if len(whole) > limit:
                    raise self._too_large("the response body", limit)
                return whole
            parts: list[bytes] = []
            total = 0
            while (data := await self._pull(conn, "timed out reading the response body")) is not None:
                if decoder is not None:
                    data = decoder.feed(data, limit - total)
                total += len(data)
                if total > limit:
                    raise self._too_large("the response body", limit)
                parts.append(data)
            if decoder is not None:
                tail = decoder.flush()
                total += len(tail)
                if total > limit:
                    raise self._too_large("the response body", limit)
                parts.append(tail)
            return b"".join(parts)
        except (ProtocolError, ServerDisconnected) as e:
            conn.close()
            raise self._error(e, "body") from None
        except BaseException:
            conn.close()
            raise
        finally:
            self._done()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        limit = self._limits.max_stream_bytes
        total = 0
        try:
            decoder = decoder_for(self.headers)
            while (data := await self._pull(conn, "timed out waiting for the next stream chunk")) is not None:
                if decoder is not None:
                    data = decoder.feed(data, limit - total)
                total += len(data)
                if total > limit:
                    raise self._too_large("the stream", limit)
                if data:
                    yield data
            if decoder is not None and (data := decoder.flush()):
                if total + len(data) > limit:
                    raise self._too_large("the stream", limit)
                yield data
        except (ProtocolError, ServerDisconnected) as e:
            conn.close()
            raise self._error(e, "stream") from None
        except GeneratorExit:  # the consumer stopped early: reusable only if the whole body had arrived
            if not conn.done:
                conn.close()
            raise
        except BaseException:
            conn.close()
            raise
        finally:
            self._done()

    async def aclose(self) -> None:
        conn = self._conn
        if conn is not None and not conn.done:
            conn.close()  # a body left unread: the connection cannot carry another request
        self._done()
