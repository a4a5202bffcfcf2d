"""The sync facade: :class:`Client` runs the same async engine on a private event-loop thread.

No logic is duplicated: every call is the :class:`~infermux.client.AsyncClient` coroutine, submitted to
the loop thread, and the caller's thread blocks on its result (bounded by the engine's own deadline).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .client import AsyncClient, ChatStream, ModelListing
from .endpoint import Endpoint, EndpointConfig
from .errors import ConfigurationError
from .resilience.clock import SYSTEM_CLOCK, Clock
from .transport import Transport
from .types import ChatResponse, EmbedResponse, StreamEvent, TextDelta

__all__ = ["Client", "SyncChatStream"]

T = TypeVar("T")


_POLL_S = 1.0  # how often a blocked caller checks that the loop thread is still alive
_CLOSE_S = 10.0  # bound on close(): cancelling running calls and closing the transports


class _LoopThread:
    """A private event loop on a daemon thread. Calls block the caller's thread until their coroutine ends; the
    coroutine is cancelled when the caller is interrupted (Ctrl-C) and when the loop is closed under it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._closing = False
        self._thread = threading.Thread(target=self._main, name="infermux-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def closed(self) -> bool:
        return self._closing or self.loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.closed:
            coro.close()
            raise ConfigurationError("this Client is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            while not concurrent.futures.wait((fut,), timeout=_POLL_S).done:
                if not self._thread.is_alive():
                    raise ConfigurationError("this Client's event-loop thread is gone; the call was abandoned")
            return fut.result()
        except concurrent.futures.CancelledError:
            raise ConfigurationError("this Client was closed while the call was running") from None
        finally:
            if not fut.done():  # interrupted (KeyboardInterrupt...): stop the call on the loop thread too
                fut.cancel()

    def close(self, final: Coroutine[Any, Any, Any] | None = None) -> None:
        """Cancel every call still running, run ``final`` (closing the transports), stop the loop: bounded."""
        if self.closed:
            if final is not None:
                final.close()
            return
        self._closing = True
        try:
            if self._thread.is_alive():
                fut = asyncio.run_coroutine_threadsafe(self._shutdown(final), self.loop)
                try:
                    fut.result(timeout=_CLOSE_S)
                except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                    fut.cancel()
            elif final is not None:
                final.close()
        finally:
            if self._thread.is_alive():
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=_CLOSE_S)
            if not self._thread.is_alive():
                self.loop.close()

    async def _shutdown(self, final: Coroutine[Any, Any, Any] | None) -> None:
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_S / 2)
        await self.loop.shutdown_asyncgens()  # streams that were dropped without close()
        if final is not None:
            await final


class SyncChatStream:
    """Iterator of stream events for the sync client; use it in a ``with`` block."""

    def __init__(self, inner: ChatStream, portal: _LoopThread) -> None:
        self._inner = inner
        self._portal = portal
        self.request_id = inner.request_id

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        try:
            return self._portal.run(self._inner.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def text(self) -> Iterator[str]:
        for ev in self:
            if isinstance(ev, TextDelta):
                yield ev.text

    def final_response(self) -> ChatResponse:
        return self._portal.run(self._inner.final_response())

    def close(self) -> None:
        self._portal.run(self._inner.aclose())

    def __enter__(self) -> SyncChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """Blocking twin of :class:`AsyncClient` with the same arguments and methods."""

    def __init__(
        self,
        endpoints: Sequence[EndpointConfig | Endpoint] | None = None,
        *,
        config: str | Path | None = None,
        transport: Transport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        trust_env: bool = True,
    ) -> None:
        self._portal = _LoopThread()
        try:
            self._async = AsyncClient(endpoints, config=config, transport=transport, clock=clock, trust_env=trust_env)
        except BaseException:
            self._portal.close()
            raise

    @property
    def aio(self) -> AsyncClient:
        """The underlying async client (its coroutines must run on this client's loop)."""
        return self._async

    def chat(self, messages: Any, **kw: Any) -> ChatResponse:
        return self._portal.run(self._async.chat(messages, **kw))

    def stream(self, messages: Any, **kw: Any) -> SyncChatStream:
        return SyncChatStream(self._async.stream(messages, **kw), self._portal)

    def embed(self, inputs: Any, **kw: Any) -> EmbedResponse:
        return self._portal.run(self._async.embed(inputs, **kw))

    def models(self, **kw: Any) -> ModelListing:
        return self._portal.run(self._async.models(**kw))

    def stats(self) -> dict[str, Any]:
        return self._async.stats()

    def close(self) -> None:
        """Cancel calls still running (their callers get :class:`ConfigurationError`), close the transports and
        stop the loop thread; bounded in time. Idempotent."""
        if not self._portal.closed:
            self._portal.close(self._async.aclose())

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
