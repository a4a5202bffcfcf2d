"""The default transport: :class:`H1Transport`, a keep-alive pool of :class:`~infermux._h1.H1Conn` per event loop.

One pool of idle connections per (scheme, host, port), reused last-in first-out. ``max_connections`` bounds the
connections in use at once (all hosts), ``max_connections_per_host`` (0: no bound) those to one host; a request
over the bound waits for a free one within ``Timeouts.connect``. A connection goes back to the pool only after
a whole body arrived on it and the server did not say ``Connection: close``; it leaves the pool when the server
closes it, when it idled longer than ``keepalive_timeout``, or at :meth:`H1Transport.aclose`.

A pooled connection the server closed while it idled leaves the pool as soon as the close is seen (the
protocol's ``connection_lost``), so it is not used. If the close crosses a request (it fails before one byte of
the answer arrives), an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) is sent once more on a
fresh connection, as aiohttp does; a POST is not (the server may have acted on it): it fails with a retryable
:class:`~infermux.errors.APIConnectionError`, and the engine's retry layer decides, counting it as an attempt
(``tests/test_chaos.py`` checks that no attempt reaches a server twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import urllib.parse
from collections import deque
from typing import TYPE_CHECKING, Any

from ._h1 import HEAD, IDLE, H1Conn, H1Response, ProtocolError, ServerDisconnected, accept_encoding
from .errors import APIConnectionError, APITimeoutError, ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    from .transport import HTTPRequest, HTTPResponse

__all__ = ["H1Transport"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_OURS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te"})
_EMPTY_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_LOWER: dict[str, str] = {}  # header name -> lower-cased, for names already checked to be tokens
_BIG_BODY = 64 * 1024  # written apart from the head instead of copied onto it


@functools.cache
def _ssl_default() -> Any:
    import ssl

    return ssl.create_default_context()


class _Target:
    """A URL parsed once: where to connect and the start of the request head."""

    __slots__ = ("host", "key", "port", "prefix", "tls", "url")

    def __init__(self, url: str) -> None:
        from .transport import safe_url

        try:
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname
            port = parts.port
        except ValueError as e:
            raise ConfigurationError(f"invalid URL {safe_url(url)!r}: {type(e).__name__}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not host:
            raise ConfigurationError(f"invalid URL {safe_url(url)!r}: need http(s)://host/...")
        self.tls = scheme == "https"
        default = 443 if self.tls else 80
        self.host = host
        self.port = port or default
        self.key = (scheme, host, self.port)
        self.url = url
        shown = f"[{host}]" if ":" in host else host
        if port is not None and port != default:
            shown = f"{shown}:{port}"
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        if not path.isascii() or any(c in path for c in " \t\r\n\x00"):
            path = urllib.parse.quote(path, safe="!#$%&'()*+,/:;=?@[]~")
        self.prefix = f" {path} HTTP/1.1\r\nHost: {shown}\r\n"


def _bad_header(target: _Target) -> ConfigurationError:
    from .transport import safe_url

    return ConfigurationError(
        f"invalid request to {safe_url(target.url)}: a header name or value that cannot be sent"
        " (check API keys and headers)"
    )


def _header_lines(headers: dict[str, str], target: _Target) -> dict[str, str]:
    """The caller's headers as lines, by lower-cased name (one line per name: the last wins); those we set
    ourselves (Host, Content-Length, Connection...) are left out; CR, LF or NUL in a value, or a name that is
    not a token, is a :class:`ConfigurationError` (header injection)."""
    out: dict[str, str] = {}
    for k, v in headers.items():
        lk = _LOWER.get(k)
        if lk is None:
            if _TOKEN.fullmatch(k) is None:
                raise _bad_header(target)
            lk = k.lower()
            if len(_LOWER) < 4096:
                _LOWER[k] = lk
        if lk in _OURS:
            continue
        if "\r" in v or "\n" in v or "\x00" in v:
            raise _bad_header(target)
        out[lk] = f"{k}: {v}\r\n"
    return out


class _HostPool:
    __slots__ = ("active", "idle")

    def __init__(self) -> None:
        self.idle: list[H1Conn] = []
        self.active = 0  # in use or connecting


class H1Transport:
    """HTTP/1.1 keep-alive client on asyncio's Protocol API (uvloop or asyncio); one pool per event loop.

    ``ssl``: the context for https (default: :func:`ssl.create_default_context`, with SNI and verification).
    """

    def __init__(
        self,
        *,
        max_connections: int = 256,
        max_connections_per_host: int = 0,
        ssl: ssl.SSLContext | None = None,
        keepalive_timeout: float = 15.0,
    ) -> None:
        self._limit = max_connections if max_connections > 0 else 1 << 30
        self._limit_per_host = max_connections_per_host if max_connections_per_host > 0 else 1 << 30
        self._idle_cap = min(self._limit, self._limit_per_host, 1024)
        self._ssl = ssl
        self._keepalive = keepalive_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pools: dict[Any, _HostPool] = {}
        self._targets: dict[str, _Target] = {}
        self._conns: set[H1Conn] = set()
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._active = 0
        self._woken = 0  # waiters woken for a free connection that have not run yet
        self._accept_encoding = accept_encoding()

    # ------------------------------------------------------------------ the request

    def _encode(self, request: HTTPRequest, target: _Target) -> tuple[bytes, bytes | None]:
        method = request.method
        if method not in _METHODS and _TOKEN.fullmatch(method) is None:
            raise _bad_header(target)
        out = _header_lines(request.headers, target)
        body = request.body
        if body is not None:
            out["content-length"] = f"Content-Length: {len(body)}\r\n"
        elif method in _EMPTY_BODY_METHODS:
            out["content-length"] = "Content-Length: 0\r\n"
        if "accept" not in out:
            out["accept"] = "Accept: */*\r\n"
        if "accept-encoding" not in out:
            out["accept-encoding"] = f"Accept-Encoding: {self._accept_encoding}\r\n"
        try:
            head = f"{method}{target.prefix}{''.join(out.values())}\r\n".encode()
        except UnicodeEncodeError:
            raise _bad_header(target) from None
        if not body:
            return head, None
        if len(body) > _BIG_BODY:
            return head, body
        return head + body, None

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            target = _Target(url)
            if len(self._targets) >= 512:
                self._targets.clear()
            self._targets[url] = target
        return target

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        target = self._targets.get(request.url) or self._target(request.url)
        head, big = self._encode(request, target)
        head_only = request.method == "HEAD"
        timeouts = request.timeouts
        retried = False
        while True:
            pool = self._pools.get(target.key)
            # the common case, without a wait (not ahead of requests already waiting for a connection)
            conn = None if retried or pool is None or self._waiters or self._woken else self._take_idle(pool)
            if conn is not None:
                reused = True
            else:
                conn, reused = await self._acquire(target, timeouts.connect, retried)
            try:
                conn.start(head, head_only)
                if big is not None:
                    assert conn.transport is not None
                    conn.transport.write(big)
                while conn.state == HEAD:
                    if conn.error is not None:
                        raise conn.error
                    if not await conn.wait(timeouts.read):
                        raise APITimeoutError(f"timed out waiting for the answer of {self._shown(target)}")
            except ServerDisconnected as e:
                conn.close()
                self._release(conn)
                if reused and not retried and conn.received == 0 and request.method in _IDEMPOTENT:
                    retried = True  # a pooled connection the server had closed: once more on a fresh one
                    continue
                raise APIConnectionError(f"could not get an answer from {self._shown(target)}: {e}") from None
            except ProtocolError as e:
                conn.close()
                self._release(conn)
                raise APIConnectionError(f"bad HTTP answer from {self._shown(target)}: {e}") from None
            except BaseException:  # a timeout, cancellation: the connection is in an unknown state
                conn.close()
                self._release(conn)
                raise
            return H1Response(conn, request.url, request.limits, timeouts.read, self._release)

    @staticmethod
    def _shown(target: _Target) -> str:
        from .transport import safe_url

        return safe_url(target.url)

    # ------------------------------------------------------------------ the pool

    def _take_idle(self, pool: _HostPool) -> H1Conn | None:
        """The most recently returned idle connection that is still fit (counted in use), or None (also when the
        bounds of connections in use are reached: an idle connection counts once taken, as a new one would)."""
        idle = pool.idle
        if self._active >= self._limit or pool.active >= self._limit_per_host:
            return None
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if conn.loop.time() - conn.idle_since > self._keepalive:
                conn.close()
                continue
            pool.active += 1
            self._active += 1
            return conn
        return None

    async def _acquire(self, target: _Target, connect_timeout: float, fresh: bool) -> tuple[H1Conn, bool]:
        pool = self._pools.get(target.key)
        if pool is None:
            pool = self._pools[target.key] = _HostPool()
        loop = self._loop
        assert loop is not None
        deadline = 0.0
        # first come, first served: a newcomer queues behind the requests already waiting (under one bound for
        # all hosts; with per-host bounds the first waiter may be blocked by its host alone)
        queue = bool(self._waiters or self._woken) and self._limit_per_host >= 1 << 30
        while True:
            if not queue:
                if not fresh and (conn := self._take_idle(pool)) is not None:
                    return conn, True
                if self._active < self._limit and pool.active < self._limit_per_host:
                    break
            queue = False
            if not deadline:
                deadline = loop.time() + connect_timeout
            if not await self._wait_slot(loop, deadline):
                raise APITimeoutError(
                    f"timed out waiting for a free connection to {self._shown(target)}"
                    f" (max_connections={self._limit}) within the connect timeout"
                )
        pool.active += 1
        self._active += 1
        try:
            conn = await self._connect(loop, target, connect_timeout)
        except BaseException:
            pool.active -= 1
            self._active -= 1
            self._wake()
            raise
        return conn, False

    async def _wait_slot(self, loop: asyncio.AbstractEventLoop, deadline: float) -> bool:
        fut: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(fut)
        handle = loop.call_at(deadline, _expire, fut)
        try:
            ok = await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.result():
                self._woken -= 1
                self._wake()  # we were handed a slot we will not use: pass it on
            raise
        finally:
            handle.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)
        if ok:
            self._woken -= 1
        return ok

    def _wake(self) -> None:
        """A connection came free: wake the first waiter (every waiter under per-host bounds). Until it runs,
        it counts in ``_woken``, so that no newcomer takes what it was woken for."""
        waiters = self._waiters
        every = self._limit_per_host < 1 << 30  # per-host bounds: the first waiter may not be the one that can go
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                self._woken += 1
                if not every:
                    return

    async def _connect(self, loop: asyncio.AbstractEventLoop, target: _Target, timeout: float) -> H1Conn:
        ctx = (self._ssl or _ssl_default()) if target.tls else None
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: H1Conn(loop, target.key, self._lost),
                    target.host,
                    target.port,
                    ssl=ctx,
                    server_hostname=target.host if ctx is not None else None,
                ),
                timeout,
            )
        except asyncio.TimeoutError:
            raise APITimeoutError(f"timed out connecting to {self._shown(target)}") from None
        except OSError as e:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise APIConnectionError(f"could not reach {self._shown(target)}: {type(e).__name__}: {e}") from None
        except UnicodeError:  # a host name IDNA cannot encode (the resolver's): as the aiohttp transport says it
            raise ConfigurationError(f"invalid URL {self._shown(target)!r}: host name {target.host[:80]!r}") from None
        self._conns.add(conn)
        return conn

    def _release(self, conn: H1Conn) -> None:
        """The request on ``conn`` is over: back to the pool if the server keeps it and the body arrived."""
        pool = self._pools.get(conn.key)
        if pool is None or conn.loop is not self._loop:  # a connection of a pool dropped since (loop change)
            conn.close()
            return
        pool.active -= 1
        self._active -= 1
        if conn.done and conn.keep_alive and not conn.closed and conn.error is None and len(pool.idle) < self._idle_cap:
            if conn.queued:
                conn.take()  # a remainder the consumer left: it had arrived whole, dropped
            conn.reset_idle(conn.loop.time())
            pool.idle.append(conn)
        else:
            conn.close()
        if self._waiters:
            self._wake()

    def _lost(self, conn: H1Conn) -> None:
        self._conns.discard(conn)
        if conn.state == IDLE:
            pool = self._pools.get(conn.key)
            if pool is not None and conn in pool.idle:
                pool.idle.remove(conn)

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """A new event loop: the connections of the old one cannot be used from it (dropped, closed if possible)."""
        for conn in list(self._conns):
            with contextlib.suppress(RuntimeError):  # the old loop is closed: its transports went with it
                conn.abort()
        self._conns.clear()
        self._pools.clear()
        self._waiters.clear()
        self._active = 0
        self._woken = 0
        self._loop = loop

    async def aclose(self) -> None:
        """Close every connection (pooled or in use)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
            return
        conns = list(self._conns)
        for pool in self._pools.values():
            pool.idle.clear()
        for conn in conns:
            conn.close()
        if conns:
            await asyncio.sleep(0)  # let the transports finish closing (their sockets close in a callback)


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)
