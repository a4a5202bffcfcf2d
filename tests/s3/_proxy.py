"""A small HTTP proxy in front of a real S3 server that misbehaves on object reads: it flips a byte in
GET bodies (``corrupt``) or cuts GET bodies after some bytes (``cut``). Requests pass through unchanged
(the Host header is kept, so SigV4 signatures still verify upstream)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}


@dataclass
class MisbehavingProxy:
    upstream: str
    mode: str = "pass"  # pass | corrupt | cut
    cut_after: int = 1 << 20
    cuts_left: int = 0  # how many GET bodies to cut (mode "cut")
    min_body: int = 64  # only bodies at least this long are touched (not manifests' small JSON)
    ranges: list[str] = field(default_factory=list)
    touched: int = 0
    _runner: Any = None
    _session: Any = None
    port: int = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> MisbehavingProxy:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        if request.method == "GET" and "range" in {k.lower() for k in headers}:
            self.ranges.append(request.headers["Range"])
        async with self._session.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=io.BytesIO(body) if body else None,
            skip_auto_headers=("Content-Type", "User-Agent", "Accept-Encoding"),
        ) as r:
            data = await r.read()
            status = r.status
            out_headers = {k: v for k, v in r.headers.items() if k.lower() not in _HOP}
        is_body = request.method == "GET" and status in (200, 206) and len(data) >= self.min_body
        if is_body and self.mode == "corrupt":
            self.touched += 1
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0xFF
            data = bytes(flipped)
        if is_body and self.mode == "cut" and self.cuts_left > 0 and len(data) > self.cut_after:
            self.cuts_left -= 1
            self.touched += 1
            resp = web.StreamResponse(status=status, headers=out_headers)
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: self.cut_after])
            assert request.transport is not None
            request.transport.abort()  # the connection drops mid-body
            return resp
        if request.method == "HEAD":  # keep the object's size (there is no body to measure)
            head = web.StreamResponse(status=status, headers=out_headers)
            head.content_length = int(r.headers.get("Content-Length", "0"))
            await head.prepare(request)
            return head
        return web.Response(status=status, headers=out_headers, body=data)
