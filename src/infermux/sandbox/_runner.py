"""Running the sandbox: in-process on the caller's loop (:class:`Sandbox`) or on a thread (:class:`SandboxThread`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from infermux.errors import ConfigurationError
from infermux.sandbox._faults import FaultController
from infermux.sandbox._model import Responder
from infermux.sandbox._server import BUILTIN_BACKENDS, DEFAULT_MODELS, SandboxApp
from infermux.sandbox._stats import DEFAULT_MAX_RECORDS, SandboxStats

__all__ = ["Sandbox", "SandboxThread"]


class Sandbox:
    """An OpenAI + Anthropic emulator with fault injection, served on ``host:port`` (port 0: any free port).

    ``async with Sandbox() as sb:`` then point clients at ``sb.openai_base_url`` / ``sb.anthropic_base_url``,
    and drive failures through ``sb.faults``; ``sb.stats`` tells what reached the server. Emulated backends
    keep their state (quotas, adapters, counters, options) in this sandbox only: :meth:`configure_backend`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keys: Iterable[str] | None = None,
        responder: Responder | None = None,
        embedding_dim: int = 64,
        models: Iterable[str] = DEFAULT_MODELS,
        base_latency: float = 0.0,
        token_delay: float = 0.0,
        capacity: int | None = None,
        capacity_retry_after_ms: int = 100,
        shutdown_timeout: float = 1.0,
        backends: Iterable[str] = BUILTIN_BACKENDS,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        """``max_records``: how many of the latest requests ``stats`` keeps in its log (a ring buffer)."""
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be 0-65535, got {port}")
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self.server = SandboxApp(
            keys=keys,
            responder=responder,
            embedding_dim=embedding_dim,
            models=models,
            base_latency=base_latency,
            token_delay=token_delay,
            capacity=capacity,
            capacity_retry_after_ms=capacity_retry_after_ms,
            backends=backends,
            max_records=max_records,
        )
        self._runner: web.AppRunner | None = None

    @property
    def faults(self) -> FaultController:
        return self.server.faults

    @property
    def stats(self) -> SandboxStats:
        return self.server.stats

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the Anthropic SDK's base_url)."""
        if self._runner is None:
            raise ConfigurationError("the sandbox is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        """``http://host:port/v1`` (the OpenAI SDK's base_url)."""
        return self.base_url + "/v1"

    def reset(self) -> None:
        """Clear every fault and mode, zero the stats and forget backend state (quotas, adapters, options)."""
        self.server.reset()

    def configure_backend(self, name: str, **options: Any) -> None:
        """Set options of one emulated backend of this sandbox only (see :meth:`SandboxApp.configure_backend`)."""
        self.server.configure_backend(name, **options)

    def backend_state(self, name: str) -> Any:
        """This sandbox's live state object of backend ``name`` (counters, loaded adapters...)."""
        return self.server.backend_state(name)

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self.server.app, access_log=None, shutdown_timeout=self.shutdown_timeout)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class SandboxThread:
    """A :class:`Sandbox` on a background thread with its own event loop, for sync code and sync SDK clients.

    Takes the same arguments as :class:`Sandbox`. ``faults``, ``stats`` and ``configure_backend`` are thread-safe.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        self.sandbox = Sandbox(host, port, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    faults = property(lambda self: self.sandbox.faults, doc="The sandbox's FaultController.")
    stats = property(lambda self: self.sandbox.stats, doc="The sandbox's SandboxStats.")
    base_url = property(lambda self: self.sandbox.base_url, doc="http://host:port")
    openai_base_url = property(lambda self: self.sandbox.openai_base_url, doc="http://host:port/v1")
    anthropic_base_url = property(lambda self: self.sandbox.anthropic_base_url, doc="http://host:port")

    def reset(self) -> None:
        self.sandbox.reset()

    def configure_backend(self, name: str, **options: Any) -> None:
        """Set options of one emulated backend of this sandbox (safe to call from any thread)."""
        self.sandbox.configure_backend(name, **options)

    def backend_state(self, name: str) -> Any:
        """This sandbox's live state object of backend ``name``."""
        return self.sandbox.backend_state(name)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.sandbox.start())
        except BaseException as exc:  # noqa: BLE001 - re-raised in start()'s caller
            self._error = exc
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.sandbox.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="infermux-sandbox", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise ConfigurationError("the sandbox thread did not start in time")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        self._thread = None
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> SandboxThread:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
