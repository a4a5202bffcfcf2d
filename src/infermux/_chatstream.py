"""A streamed chat call as the caller holds it: :class:`ChatStream` (an async iterator of stream events and an
async context manager), and the closing of streams dropped unfinished."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from .endpoint import StreamInfo
from .types import ChatResponse, RouteHop, StreamAccumulator, StreamEvent, TextDelta

__all__ = ["ChatStream"]


_CLOSING: set[asyncio.Task[None]] = set()  # closes of abandoned streams, kept alive until they end


def _close_abandoned(source: AsyncGenerator[StreamEvent, None], loop: asyncio.AbstractEventLoop) -> None:
    """Finalizer of a :class:`ChatStream` dropped unfinished: close its source on its own loop, now (not when
    the cyclic garbage collector gets to it), so its queue slot and connection are released."""

    def spawn() -> None:
        task = loop.create_task(source.aclose())
        _CLOSING.add(task)
        task.add_done_callback(_closed)

    if loop.is_closed():
        return
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        spawn()
    else:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: its shutdown closed the source
            loop.call_soon_threadsafe(spawn)


def _closed(task: asyncio.Task[None]) -> None:
    _CLOSING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an error while abandoning is not the caller's concern


class ChatStream:
    """One streamed chat call: an async iterator of :mod:`infermux.types` stream events, and an async
    context manager that releases the connection on exit. :meth:`final_response` gives the same
    :class:`ChatResponse` a non-stream call would. A stream dropped before its end (``break`` without
    ``async with``) is closed as soon as it is garbage, which releases its queue slot: its event source
    refers to :attr:`info`, never back to the stream, so reference counting frees a dropped stream at once."""

    def __init__(
        self,
        request_id: str,
        source: AsyncGenerator[StreamEvent, None] | None = None,
        *,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self._source: AsyncGenerator[StreamEvent, None] | None = source
        self._acc = StreamAccumulator()
        self.request_id = request_id
        self.info = StreamInfo(request_id=request_id)
        self.cached: str | None = None  # "exact" / "semantic" when replayed from the response cache
        self._done = False
        self._on_start = on_start
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.route_hops: list[RouteHop] = []  # filled by the event source (it holds this list, not the stream)

    @property
    def route(self) -> tuple[RouteHop, ...]:
        """The endpoints tried so far, in order, and why each was left (see :class:`RouteHop`)."""
        return tuple(self.route_hops)

    @property
    def endpoint(self) -> str | None:
        """The endpoint serving (or that last served) this stream."""
        return self.info.endpoint

    @property
    def provider(self) -> str | None:
        return self.info.provider

    def attach(self, source: AsyncGenerator[StreamEvent, None]) -> None:
        self._source = source

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._done or self._source is None:
            raise StopAsyncIteration
        if self._finalizer is None:
            if self._on_start is not None:
                self._on_start()
            self._finalizer = weakref.finalize(self, _close_abandoned, self._source, asyncio.get_running_loop())
            self._finalizer.atexit = False
        try:
            ev = await self._source.__anext__()
        except StopAsyncIteration:
            self._done = True
            self._finalizer.detach()
            raise
        except BaseException:
            self._done = True
            await self.aclose()
            raise
        self._acc.add(ev)
        return ev

    async def text(self) -> AsyncIterator[str]:
        """Only the text deltas."""
        async for ev in self:
            if isinstance(ev, TextDelta):
                yield ev.text

    async def final_response(self) -> ChatResponse:
        """Consume what is left and return the accumulated response."""
        async for _ in self:
            pass
        info = self.info
        return self._acc.response(
            request_id=self.request_id,
            endpoint=info.endpoint,
            provider=info.provider,
            provider_request_id=info.provider_request_id,
            latency_s=0.0 if self.cached else info.latency_s,
            attempts=0 if self.cached else max(1, info.attempts),
            route=tuple(self.route_hops),
            cached=self.cached,
        )

    async def aclose(self) -> None:
        self._done = True
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._source is not None:
            await self._source.aclose()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
