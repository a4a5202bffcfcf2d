"""The sync facade: :class:`Client` runs the same async engine on a private event-loop thread.

No logic is duplicated: every call is the :class:`~infermux.client.AsyncClient` coroutine, created and run
on the loop thread, and the caller's thread blocks on its result (bounded by the engine's own deadline).
Everything that touches engine state (``stats()`` included) runs on the loop thread. A client that is never
closed is closed when it is garbage collected (its thread, loop and connections do not leak).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .client import AsyncClient, ChatStream, ModelListing
from .endpoint import Endpoint, EndpointConfig
from .errors import ConfigurationError
from .fleet import GroupConfig
from .health import HealthCallback
from .resilience.clock import SYSTEM_CLOCK, Clock
from .resilience.health import HealthConfig
from .transport import Transport
from .types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    MessagesInput,
    Priority,
    ReasoningEffort,
    ResponseFormat,
    RouteHop,
    StreamEvent,
    TextDelta,
    Tool,
)

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
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()  # stopped by close(): free the selector and its descriptors here

    @property
    def closed(self) -> bool:
        return self._closing or self.loop.is_closed()

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on the loop thread and block until it ends. The awaitable is created there, so an
        interrupt (Ctrl-C) wherever it lands in this method leaves nothing running: before the submission
        nothing was scheduled; after it, ``finally`` cancels the future, and :meth:`_start` starts nothing
        for a cancelled future or cancels the task it started."""
        if self.closed:
            raise ConfigurationError("this Client is closed")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            try:
                self.loop.call_soon_threadsafe(self._start, make, fut)
            except RuntimeError:  # closed by another thread between the check and the submission
                raise ConfigurationError("this Client is closed") from None
            while not concurrent.futures.wait((fut,), timeout=_POLL_S).done:
                if not self._thread.is_alive():
                    raise ConfigurationError("this Client's event-loop thread is gone; the call was abandoned")
            return fut.result()
        except concurrent.futures.CancelledError:
            raise ConfigurationError("this Client was closed while the call was running") from None
        finally:
            if not fut.done():  # interrupted (KeyboardInterrupt...): stop the call on the loop thread too
                fut.cancel()

    def _start(self, make: Callable[[], Awaitable[T]], fut: concurrent.futures.Future[T]) -> None:
        """On the loop thread: start ``make()`` as a task tied to ``fut`` both ways (result; cancellation)."""
        if fut.cancelled():
            return
        try:
            task = asyncio.ensure_future(make())
        except Exception as e:  # noqa: BLE001 - a bad argument while creating the coroutine: the caller's error
            if fut.set_running_or_notify_cancel():
                fut.set_exception(e)
            return

        def deliver(t: asyncio.Future[T]) -> None:
            exc = None if t.cancelled() else t.exception()  # retrieved even when nobody waits any more
            if not fut.set_running_or_notify_cancel():
                return  # the caller gave up; it cancelled the task too
            if t.cancelled():
                fut.set_exception(concurrent.futures.CancelledError())
            elif exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(t.result())

        def cancel(f: concurrent.futures.Future[T]) -> None:
            if f.cancelled():
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    self.loop.call_soon_threadsafe(task.cancel)

        task.add_done_callback(deliver)
        fut.add_done_callback(cancel)  # runs at once when the caller cancelled meanwhile

    def close(self, final: Coroutine[Any, Any, Any] | None = None) -> None:
        """Cancel every call still running, run ``final`` (closing the transports), stop the loop: bounded."""
        if self.closed:
            if final is not None:
                final.close()
            return
        self._closing = True
        if threading.current_thread() is self._thread:  # a finalizer run by the GC on the loop thread itself
            task = self.loop.create_task(self._shutdown(final))
            task.add_done_callback(lambda _: self.loop.stop())
            return
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
                with contextlib.suppress(RuntimeError):  # the loop thread closed it just now
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

    def __init__(self, inner: ChatStream, portal: _LoopThread, owner: Client) -> None:
        self._inner = inner
        self._portal = portal
        self._owner = owner  # the client must outlive its streams (its finalizer stops the loop)
        self.request_id = inner.request_id

    @property
    def endpoint(self) -> str | None:
        return self._inner.endpoint

    @property
    def route(self) -> tuple[RouteHop, ...]:
        return self._inner.route

    @property
    def provider(self) -> str | None:
        return self._inner.provider

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        try:
            return self._portal.run(self._inner.__anext__)
        except StopAsyncIteration:
            raise StopIteration from None

    def text(self) -> Iterator[str]:
        for ev in self:
            if isinstance(ev, TextDelta):
                yield ev.text

    def final_response(self) -> ChatResponse:
        return self._portal.run(self._inner.final_response)

    def close(self) -> None:
        """Release the stream's connection and queue slot (a no-op once the client is closed: its close
        already ended every stream)."""
        if not self._portal.closed:
            self._portal.run(self._inner.aclose)

    def __enter__(self) -> SyncChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_client(portal: _LoopThread, client: AsyncClient) -> None:
    portal.close(client.aclose())


class Client:
    """Blocking twin of :class:`AsyncClient` with the same arguments and methods.

    Close it (``with`` or :meth:`close`); one that is dropped unclosed is closed by the garbage collector."""

    def __init__(
        self,
        endpoints: Sequence[EndpointConfig | Endpoint] | None = None,
        *,
        config: str | Path | None = None,
        transport: Transport | str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        trust_env: bool = True,
        groups: Sequence[GroupConfig] | None = None,
        health: HealthConfig | None = None,
        on_health_change: HealthCallback | None = None,
        cache: Any = None,
        batching: Any = None,
        telemetry: Any = None,
        state: Any = None,
    ) -> None:
        self._portal = _LoopThread()
        try:
            self._async = AsyncClient(
                endpoints,
                config=config,
                transport=transport,
                clock=clock,
                trust_env=trust_env,
                groups=groups,
                health=health,
                on_health_change=on_health_change,
                cache=cache,
                batching=batching,
                telemetry=telemetry,
                state=state,
            )
        except BaseException:
            self._portal.close()
            raise
        self._finalizer = weakref.finalize(self, _close_client, self._portal, self._async)

    @property
    def state(self) -> Any:
        """The state store shared with other processes (``None`` without one; :mod:`infermux.shared_state`)."""
        return self._async.state

    @property
    def aio(self) -> AsyncClient:
        """The underlying async client (its coroutines must run on this client's loop)."""
        return self._async

    def chat(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        endpoint: str | None = None,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        fail_fast: bool = False,
        endpoints: Sequence[str] | None = None,
        strategy: str | None = None,
        hedge: bool | float | None = None,
        model: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        tools: Iterable[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: ResponseFormat | Mapping[str, Any] | str | None = None,
        seed: int | None = None,
        user: str | None = None,
        metadata: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        max_retries: int | None = None,
        reasoning_effort: ReasoningEffort | None = None,
    ) -> ChatResponse:
        """One chat completion; the arguments are :meth:`AsyncClient.chat`'s."""
        return self._portal.run(
            lambda: self._async.chat(
                messages,
                endpoint=endpoint,
                priority=priority,
                timeout=timeout,
                request_id=request_id,
                fail_fast=fail_fast,
                endpoints=endpoints,
                strategy=strategy,
                hedge=hedge,
                model=model,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_tokens,
                stop=stop,
                tools=tools,
                tool_choice=tool_choice,
                parallel_tool_calls=parallel_tool_calls,
                response_format=response_format,
                seed=seed,
                user=user,
                metadata=metadata,
                extra=extra,
                extra_headers=extra_headers,
                max_retries=max_retries,
                reasoning_effort=reasoning_effort,
            )
        )

    def stream(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        endpoint: str | None = None,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        fail_fast: bool = False,
        endpoints: Sequence[str] | None = None,
        strategy: str | None = None,
        hedge: bool | float | None = None,
        model: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        tools: Iterable[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: ResponseFormat | Mapping[str, Any] | str | None = None,
        seed: int | None = None,
        user: str | None = None,
        metadata: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        max_retries: int | None = None,
        resume: bool | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        failover: bool | None = None,
    ) -> SyncChatStream:
        """A streamed chat completion (use ``with`` and iterate); the arguments are :meth:`chat`'s."""
        inner = self._async.stream(
            messages,
            endpoint=endpoint,
            priority=priority,
            timeout=timeout,
            request_id=request_id,
            fail_fast=fail_fast,
            resume=resume,
            failover=failover,
            endpoints=endpoints,
            strategy=strategy,
            hedge=hedge,
            model=model,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            stop=stop,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=response_format,
            seed=seed,
            user=user,
            metadata=metadata,
            extra=extra,
            extra_headers=extra_headers,
            max_retries=max_retries,
            reasoning_effort=reasoning_effort,
        )
        return SyncChatStream(inner, self._portal, self)

    def embed(
        self,
        inputs: str | Sequence[str] | EmbedRequest,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        dimensions: int | None = None,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        fail_fast: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        max_retries: int | None = None,
        endpoints: Sequence[str] | None = None,
        strategy: str | None = None,
        hedge: bool | float | None = None,
    ) -> EmbedResponse:
        """Embed one text or several (``.vectors``: one vector per input); see :meth:`AsyncClient.embed`."""
        return self._portal.run(
            lambda: self._async.embed(
                inputs,
                model=model,
                endpoint=endpoint,
                dimensions=dimensions,
                priority=priority,
                timeout=timeout,
                request_id=request_id,
                extra=extra,
                fail_fast=fail_fast,
                extra_headers=extra_headers,
                max_retries=max_retries,
                endpoints=endpoints,
                strategy=strategy,
                hedge=hedge,
            )
        )

    def models(self, *, endpoint: str | None = None, timeout: float | None = None) -> ModelListing:
        """Model IDs each endpoint lists, by endpoint name (failures in ``.errors``); see
        :meth:`AsyncClient.models`."""
        return self._portal.run(lambda: self._async.models(endpoint=endpoint, timeout=timeout))

    def stats(self) -> dict[str, Any]:
        """Every endpoint's stats, read on the loop thread (reading may move a breaker from OPEN to HALF_OPEN:
        that transition and its callback belong to the engine's thread, never the caller's)."""
        if self._portal.closed:
            return self._async.stats()  # no loop runs any more: nothing to race with
        return self._portal.run(self._stats)

    async def _stats(self) -> dict[str, Any]:
        return self._async.stats()

    def health(self) -> dict[str, dict[str, Any]]:
        """Every endpoint's health (read on the loop thread); see :meth:`AsyncClient.health`."""
        if self._portal.closed:
            return self._async.health()
        return self._portal.run(self._health)

    async def _health(self) -> dict[str, Any]:
        return self._async.health()

    def check_health(self) -> dict[str, bool]:
        """Probe every endpoint once now; see :meth:`AsyncClient.check_health`."""
        return self._portal.run(self._async.check_health)

    def close(self) -> None:
        """Cancel calls still running (their callers get :class:`ConfigurationError`), close the transports and
        stop the loop thread; bounded in time. Idempotent."""
        self._finalizer()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
