"""The sync facade: :class:`Client` runs the same async engine on a private event-loop thread.

No logic is duplicated: every call is the :class:`~infermux.client.AsyncClient` coroutine, submitted to
the loop thread, and the caller's thread blocks on its result (bounded by the engine's own deadline).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .client import AsyncClient, ChatStream
from .endpoint import Endpoint, EndpointConfig
from .errors import ConfigurationError
from .resilience.clock import SYSTEM_CLOCK, Clock
from .transport import Transport
from .types import ChatResponse, EmbedResponse, StreamEvent, TextDelta

__all__ = ["Client", "SyncChatStream"]

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="infermux-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.loop.is_closed():
            coro.close()
            raise ConfigurationError("this Client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()


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

    def models(self, **kw: Any) -> dict[str, list[str]]:
        return self._portal.run(self._async.models(**kw))

    def stats(self) -> dict[str, Any]:
        return self._async.stats()

    def close(self) -> None:
        if not self._portal.loop.is_closed():
            self._portal.run(self._async.aclose())
            self._portal.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
