"""One S3 endpoint: an aiobotocore client plus the core engine (``infermux.endpoint.Endpoint``).

Every S3 request goes through :meth:`S3Endpoint.run`, which hands it to ``Endpoint.run``: the endpoint's
priority queue, circuit breaker, retry policy with backoff and overall deadline are the core's, not a copy.
botocore's own retries are switched off (one attempt per call), so nothing retries twice. The core
``Endpoint`` needs a provider; S3 is not a chat protocol, so it gets a small provider value whose chat
functions refuse with :class:`ConfigurationError` (it is never registered in ``infermux.providers``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from ..endpoint import Attempt, Endpoint, EndpointConfig
from ..errors import APIStatusError, ConfigurationError, InfermuxError, status_error_class
from ..providers import Provider, ProviderRequest
from ..resilience.breaker import BreakerState
from ..resilience.clock import SYSTEM_CLOCK, Clock
from ..transport import HTTPRequest, HTTPResponse
from ..types import Priority
from ._classify import classify
from .config import S3EndpointConfig

__all__ = ["S3Endpoint"]

T = TypeVar("T")


def _no_chat(*_: Any) -> Any:
    raise ConfigurationError("an S3 endpoint stores objects; it does not chat or embed")


def _status(status: int, _headers: Mapping[str, str], body: bytes) -> APIStatusError:
    return status_error_class(status)(f"S3 HTTP {status}: {body[:200]!r}", status_code=status)


S3_PROVIDER = Provider(
    name="s3",
    default_base_url="https://s3.amazonaws.com",
    build_chat=cast(Callable[..., ProviderRequest], _no_chat),
    parse_chat=_no_chat,
    new_stream_parser=_no_chat,
    classify_error=_status,
    auth_headers=lambda _key: {},
    request_id_headers=("x-amz-request-id",),
    description="S3-compatible object storage (infermux.s3; no chat)",
)


class _NoHTTP:
    """The core endpoint's transport seam is unused: S3 traffic goes through botocore's signer."""

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        raise ConfigurationError("S3 endpoints send through their botocore client, not the chat transport")

    async def aclose(self) -> None:
        return None


class S3Endpoint:
    """An S3 endpoint with its own client, credentials, breaker, retry policy, queue and counters.

    Use inside ``async with`` (or :meth:`open` / :meth:`aclose`); the botocore client belongs to the
    event loop that opened it.
    """

    def __init__(
        self,
        config: S3EndpointConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_breaker_change: Callable[[str, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.engine = Endpoint(
            EndpointConfig(
                name=config.name,
                provider=cast(str, S3_PROVIDER),  # get_provider passes a Provider value through
                base_url=config.endpoint_url or S3_PROVIDER.default_base_url,
                retry=config.retry,
                breaker=config.breaker,
                max_concurrency=config.max_concurrency,
                max_queue=config.max_queue,
                adaptive_concurrency=True,
                fail_fast=True,  # an open breaker fails at once: the kit fails over to another endpoint
            ),
            transport=_NoHTTP(),
            clock=clock,
            on_breaker_change=on_breaker_change,
        )
        self.bytes_in = 0
        self.bytes_out = 0
        self._client: Any = None
        self._sync: Any = None
        self._stack: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        return f"S3Endpoint(name={self.name!r}, endpoint_url={self.config.endpoint_url!r})"

    async def open(self) -> S3Endpoint:
        if self._client is not None:
            return self
        try:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session
        except ModuleNotFoundError as e:  # pragma: no cover - the s3 extra is missing
            raise ConfigurationError("infermux.s3 needs aiobotocore: pip install 'infermux[s3]'") from e
        c = self.config
        creds = c.resolved_credentials()
        kw: dict[str, Any] = {}
        if creds is not None:
            kw = {
                "aws_access_key_id": creds.access_key_id,
                "aws_secret_access_key": creds.secret_access_key,
                "aws_session_token": creds.session_token,
            }
        cfg = AioConfig(
            signature_version="s3v4" if creds is not None else _unsigned(),
            s3={"addressing_style": c.addressing_style, "payload_signing_enabled": False},
            retries={"total_max_attempts": 1},  # the core engine retries
            connect_timeout=c.connect_timeout,
            read_timeout=c.read_timeout,
            max_pool_connections=max(c.max_concurrency, 4),
            request_checksum_calculation=c.checksums,
            response_checksum_validation="when_required",  # the kit checks SHA-256 digests itself
            tcp_keepalive=True,
        )
        stack = contextlib.AsyncExitStack()
        session = get_session()
        self._client = await stack.enter_async_context(
            session.create_client("s3", endpoint_url=c.endpoint_url, region_name=c.resolved_region(), config=cfg, **kw)
        )
        # aiohttp honours "Expect: 100-continue" (botocore adds it to bodies over 1 MB) with a wait per part;
        # the kit already knows the body is wanted and checks every answer, so the body goes at once
        self._client.meta.events.register_last("before-send.s3", _drop_expect)
        self._stack = stack
        try:
            self._sync = await asyncio.to_thread(self._make_sync_client, cfg, kw)
        except BaseException:
            await self.aclose()
            raise
        return self

    def _make_sync_client(self, cfg: Any, kw: dict[str, Any]) -> Any:
        """A blocking botocore client (same endpoint, credentials and settings) for the bulk byte path:
        ranged GETs read in worker threads (hashing and disk writes there too) keep up with multi-threaded
        clients on a busy machine, where one event loop thread falls behind (see bench/s3.py)."""
        import botocore.session
        from botocore.config import Config

        settings = {
            k: getattr(cfg, k)
            for k in (
                "signature_version",
                "s3",
                "retries",
                "connect_timeout",
                "read_timeout",
                "max_pool_connections",
                "tcp_keepalive",
                "request_checksum_calculation",
                "response_checksum_validation",
            )
        }
        session = botocore.session.get_session()
        c = self.config
        return session.create_client(
            "s3", endpoint_url=c.endpoint_url, region_name=c.resolved_region(), config=Config(**settings), **kw
        )

    @property
    def sync_client(self) -> Any:
        if self._sync is None:
            raise ConfigurationError(f"S3 endpoint {self.name!r} is not open (use 'async with')")
        return self._sync

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.close()
        if stack is not None:
            await stack.aclose()
        await self.engine.aclose()

    async def __aenter__(self) -> S3Endpoint:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def client(self) -> Any:
        if self._client is None:
            raise ConfigurationError(f"S3 endpoint {self.name!r} is not open (use 'async with')")
        return self._client

    @property
    def load(self) -> int:
        """Calls in flight plus waiting: what least-loaded routing compares."""
        gate = self.engine.gate
        return gate.in_flight + sum(gate.depth_by_priority().values())

    @property
    def breaker_state(self) -> BreakerState:
        return self.engine.breaker.state

    async def run(
        self,
        what: str,
        operation: Callable[[Any], Awaitable[T]],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> T:
        """Run ``operation(client)`` (one S3 call, or a call plus reading its body) through the engine;
        every failure comes out as a typed :class:`InfermuxError` naming this endpoint and ``what``."""
        client = self.client

        async def op(_attempt: Attempt) -> T:
            try:
                return await operation(client)
            except Exception as e:
                err = classify(e, what)
                if err is e:
                    raise
                raise err from e

        try:
            return await self.engine.run(op, priority=priority, timeout=timeout, request_id=request_id)
        except InfermuxError as e:
            e.with_context(endpoint=self.name, provider="s3")
            raise

    async def call(self, what: str, method: str, /, **params: Any) -> Any:
        """One plain S3 API call (``method`` is the botocore name, e.g. ``"head_object"``)."""

        async def op(client: Any) -> Any:
            return await getattr(client, method)(**params)

        return await self.run(what, op)

    def stats(self) -> dict[str, Any]:
        out = self.engine.stats()
        out.update({"bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "endpoint_url": self.config.endpoint_url})
        return out


def _drop_expect(request: Any, **_: Any) -> None:
    request.headers.pop("Expect", None)


def _unsigned() -> Any:
    from botocore import UNSIGNED

    return UNSIGNED
