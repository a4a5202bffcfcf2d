"""One endpoint = a provider + a base URL + API keys + its own resilience state and counters.

Every call goes: priority queue slot -> circuit breaker -> API key -> transport -> provider parse, inside a
retry loop bounded by the policy's attempts and an overall deadline (the engine is in ``_engine``). Between
attempts the slot is given back, so a request that sleeps on backoff does not hold concurrency.
:meth:`Endpoint.run` is the generic engine (any async operation, not only HTTP); :meth:`chat`,
:meth:`stream`, :meth:`embed` and :meth:`call` are built on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._engine import Attempt, Call, EngineCore
from ._evolve import evolve
from ._redact import secrets_of
from ._resume import StreamSplice, is_content, resumed_request
from ._stats import EndpointCounters
from ._validate import check_base_url, check_endpoint_config, encode_json_body, join_url, redact_url
from .errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    IncompleteStreamError,
    InfermuxError,
    InternalServerError,
    OverloadedError,
    StreamIdleTimeoutError,
    status_error_class,
)
from .providers import Provider, ProviderRequest, get_provider
from .resilience.adaptive import AdaptiveLimit
from .resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker
from .resilience.clock import SYSTEM_CLOCK, Clock
from .resilience.deadline import ChunkTimer, Deadline
from .resilience.keypool import KeyPool
from .resilience.queue import PriorityGate
from .resilience.retry import RetryPolicy, is_retryable
from .transport import HTTPRequest, HTTPResponse, Limits, Timeouts, Transport, make_transport, safe_url
from .types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    Priority,
    StreamAccumulator,
    StreamError,
    StreamEvent,
    StreamFinish,
    StreamResumed,
)

if TYPE_CHECKING:  # pragma: no cover
    from .otel import CallObserver

__all__ = ["Attempt", "Endpoint", "EndpointConfig", "StreamInfo"]

T = TypeVar("T")
R = TypeVar("R", ChatResponse, EmbedResponse)
_log = logging.getLogger("infermux")
_log.addHandler(logging.NullHandler())  # a library does not print unless the application configures logging
_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Static description of an endpoint. Keys come from ``api_keys`` and/or the env vars named in
    ``api_key_env`` (read once, when the endpoint is built); they never appear in reprs or errors.
    ``base_url`` may carry a query (sent with every request; its values are redacted like keys) but no user
    info. Every field is validated on construction (:class:`ConfigurationError` naming the field)."""

    name: str
    provider: str
    base_url: str | None = None
    model: str | None = None
    models: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    api_key_env: tuple[str, ...] = ()
    key_strategy: Literal["round_robin", "least_loaded"] = "round_robin"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    max_concurrency: int = 64
    max_queue: int = 1024
    overflow: Literal["reject", "shed_lowest"] = "reject"
    queue_aging: float | None = 30.0
    adaptive_concurrency: bool = True  # cut the in-flight limit on 429/529, regrow it on successes (AIMD)
    timeouts: Timeouts = field(default_factory=Timeouts)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold credentials
    #: refuse at once (CircuitOpenError, or the call's last real error) instead of waiting while the endpoint
    #: protects itself (breaker open, every key's quota used up); the router always moves on at once when
    #: another endpoint can serve now
    fail_fast: bool = False
    #: resume a stream that broke after text reached the caller (per call: ``resume=``)
    resume_streams: bool = True
    #: seconds a stream that has started sending content may go without a chunk while its connection stays
    #: open (a stalled server) before the attempt fails with StreamIdleTimeoutError (``None``: only
    #: ``timeouts.read`` bounds it); a group's ``stream_idle_timeout`` overrides it for calls to the group
    stream_idle_timeout: float | None = 30.0
    limits: Limits = field(default_factory=Limits)  # response size bounds

    def __post_init__(self) -> None:
        check_endpoint_config(self)

    def __repr__(self) -> str:  # keys and header values never; the URL's query values redacted
        url = None if self.base_url is None else redact_url(self.base_url)
        return (
            f"EndpointConfig(name={self.name!r}, provider={self.provider!r}, base_url={url!r}, model={self.model!r},"
            f" api_keys=<{len(self.api_keys)}>, api_key_env={self.api_key_env!r}, headers={sorted(self.headers)!r})"
        )

    def resolved_keys(self) -> tuple[str, ...]:
        keys = list(self.api_keys)
        for var in self.api_key_env:
            val = os.environ.get(var)
            if not val:
                raise ConfigurationError(f"endpoint {self.name!r}: environment variable {var} (an API key) is not set")
            keys.extend(k.strip() for k in val.split(",") if k.strip())
        return tuple(dict.fromkeys(keys))


@dataclass(slots=True)
class StreamInfo:
    """What a finished (or failed) stream call knows beyond its events: filled in by :meth:`Endpoint.stream`."""

    endpoint: str | None = None
    provider: str | None = None
    request_id: str | None = None
    provider_request_id: str | None = None
    attempts: int = 0
    latency_s: float | None = None
    resumed: int = 0


class Endpoint(EngineCore):
    """A provider endpoint with its own queue, breaker, key pool, retry policy and counters."""

    def __init__(
        self,
        config: EndpointConfig,
        *,
        transport: Transport | str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rand: Callable[[], float] = random.random,
        on_breaker_change: Callable[[str, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        """``on_breaker_change(endpoint_name, old, new)`` is called on every breaker transition (also logged)."""
        self.config = config
        self._breaker_listeners = [] if on_breaker_change is None else [on_breaker_change]
        self._cause = None
        self.name = config.name
        self.provider: Provider = get_provider(config.provider)
        self.base_url, self._base_query = check_base_url(
            f"endpoint {config.name!r}", config.base_url or self.provider.default_base_url
        )
        self.clock = clock
        self._rand = rand
        self._owns_transport = transport is None or isinstance(transport, str)
        self.transport: Transport = (
            make_transport(transport or "h1", max_connections=max(config.max_concurrency, 1) * 2)
            if transport is None or isinstance(transport, str)
            else transport
        )
        keys = config.resolved_keys()
        self.keys = KeyPool(keys, strategy=config.key_strategy, clock=clock, name=config.name)
        self._changed: asyncio.Event | None = None
        self._holding = 0
        self.breaker = CircuitBreaker(
            config.breaker, clock=clock, name=config.name, on_state_change=self._breaker_changed
        )
        self.gate = PriorityGate(
            config.max_concurrency,
            config.max_queue,
            overflow=config.overflow,
            aging_seconds=config.queue_aging,
            clock=clock,
        )
        self.adaptive = (
            AdaptiveLimit(self.gate, config.max_concurrency, clock=clock, initial_limit=min(16, config.max_concurrency))
            if config.adaptive_concurrency
            else None
        )
        self.counters = EndpointCounters()
        self._static_headers = {k.lower(): v for k, v in config.headers.items()}
        self._secrets = secrets_of(self._static_headers, self._base_query, keys)

    def __repr__(self) -> str:
        return f"Endpoint(name={self.name!r}, provider={self.provider.name!r}, base_url={self.shown_url!r})"

    @property
    def shown_url(self) -> str:
        """The base URL as reprs, stats and logs show it (query values redacted)."""
        return redact_url(join_url(self.base_url, "", self._base_query))

    def model_for(self, request_model: str | None) -> str:
        model = request_model or self.config.model
        if not model:
            raise ConfigurationError(
                f"endpoint {self.name!r}: no model given and the endpoint has no default model", endpoint=self.name
            )
        return model

    # ------------------------------------------------------------------ HTTP plumbing

    @property
    def base_query(self) -> str:
        """The query of the configured base URL (sent with every request; its values are secrets)."""
        return self._base_query

    def http_request(self, preq: ProviderRequest, attempt: Attempt) -> HTTPRequest:
        headers = dict(self._static_headers)
        if attempt.key is not None:
            headers.update(self.provider.auth_headers(attempt.key))
        headers.update(preq.headers)
        headers["x-request-id"] = attempt.request_id
        headers["x-infermux-attempt"] = str(attempt.number)
        body = None
        if preq.json is not None:
            body = encode_json_body(preq.json)
            headers.setdefault("content-type", "application/json")
        elif preq.content is not None:
            body = preq.content
        if preq.stream:
            headers.setdefault("accept", "text/event-stream")
        url = join_url(self.base_url, preq.path, self._base_query)
        return HTTPRequest(preq.method, url, headers, body, self.config.timeouts, self.config.limits)

    def _note_headers(self, headers: Mapping[str, str]) -> None:
        for k, v in headers.items():
            if k.startswith(_RATE_LIMIT_PREFIXES):
                self.counters.rate_limit_headers[k] = v

    async def _send(self, preq: ProviderRequest, attempt: Attempt) -> HTTPResponse:
        resp = await self.transport.send(self.http_request(preq, attempt))
        attempt.response_headers = resp.headers
        self._note_headers(resp.headers)
        status = resp.status
        if status < 300:
            return resp
        try:
            body = await resp.read()
        except InfermuxError:
            body = b""
        finally:
            await resp.aclose()
        raise self._status_error(status, resp.headers, body)

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> InfermuxError:
        """The typed error for a non-2xx answer. A 3xx is not followed (the request carries the key): it is a
        non-retryable :class:`APIStatusError` naming the new location, never a parse failure of its body."""
        prov = self.provider
        if status < 400:
            location = headers.get("location")
            where = f" to {safe_url(location)}" if location else ""
            return status_error_class(status)(
                f"{prov.name} answered HTTP {status} (a redirect{where}); redirects are not followed:"
                " point base_url at the final address",
                status_code=status,
                provider_request_id=prov.provider_request_id(headers),
                retryable=False,
            )
        try:
            return prov.classify_error(status, headers, body)
        except Exception as e:  # noqa: BLE001 - a provider bug must still surface as the typed status error
            err = status_error_class(status)(
                f"{prov.name} returned HTTP {status}: {body[:300].decode('utf-8', 'replace')}",
                status_code=status,
                provider_request_id=prov.provider_request_id(headers),
            )
            err.__cause__ = e
            return err

    async def call(
        self,
        preq: ProviderRequest,
        parse: Callable[[bytes, Mapping[str, str]], T],
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        model: str | None = None,
    ) -> T:
        """Send a provider request (any route, e.g. llama.cpp ``/tokenize``) through the engine; ``parse``
        turns the 2xx body into a result."""

        async def op(attempt: Attempt) -> T:
            resp = await self._send(preq, attempt)
            return parse(await resp.read(), resp.headers)

        return await self.run(op, priority=priority, timeout=timeout, request_id=request_id, model=model)

    # ------------------------------------------------------------------ chat / embed

    def _call_policy(self, max_retries: int | None) -> RetryPolicy | None:
        """The retry policy of a call that sets its own ``max_retries`` (``None``: the endpoint's)."""
        return None if max_retries is None else replace(self.config.retry, max_retries=max_retries)

    @staticmethod
    def _with_headers(preq: ProviderRequest, extra: Mapping[str, str]) -> ProviderRequest:
        """``preq`` with a call's ``extra_headers`` added last (they win over the provider's own)."""
        if not extra:
            return preq
        return replace(preq, headers={**preq.headers, **{k.lower(): v for k, v in extra.items()}})

    def _add_provider_metrics(self, raw: Any) -> None:
        extract = self.provider.response_metrics
        if extract is not None and raw is not None:
            metrics = self.counters.provider_metrics
            for k, v in extract(raw).items():
                metrics[k] = metrics.get(k, 0.0) + v

    def _stamp(self, resp: R, model: str, attempt: Attempt, started: float) -> R:
        """Count a parsed response's usage and put this call's context on it (model, endpoint, IDs, latency,
        attempts), the same for chat and embeddings."""
        self.counters.add_usage(resp.usage)
        return evolve(
            resp,
            model=resp.model or model,
            provider=self.provider.name,
            endpoint=self.name,
            request_id=attempt.request_id,
            provider_request_id=resp.provider_request_id or self.provider.provider_request_id(attempt.response_headers),
            latency_s=self.clock.now() - started,
            attempts=attempt.number,
        )

    async def chat(
        self,
        request: ChatRequest,
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        wait: bool | None = None,
        share: bool = False,
        observer: CallObserver | None = None,
    ) -> ChatResponse:
        model = self.model_for(request.model)
        preq = self._with_headers(self.provider.build_chat(request, model, False), request.extra_headers)
        started = self.clock.now()

        async def op(attempt: Attempt) -> ChatResponse:
            resp = await self._send(preq, attempt)
            body = await resp.read()
            parsed = self.provider.parse_chat(body, resp.headers)
            self._add_provider_metrics(parsed.raw)
            return self._stamp(parsed, model, attempt, started)

        policy = self._call_policy(request.max_retries)
        return await self.run(
            op,
            priority=priority,
            timeout=timeout,
            request_id=request_id,
            model=model,
            wait=wait,
            share=share,
            policy=policy,
            observer=observer,
        )

    async def embed(
        self,
        request: EmbedRequest,
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        wait: bool | None = None,
        share: bool = False,
        observer: CallObserver | None = None,
    ) -> EmbedResponse:
        build, parse = self.provider.build_embed, self.provider.parse_embed
        if build is None or parse is None:
            raise ConfigurationError(
                f"provider {self.provider.name!r} (endpoint {self.name!r}) does not support embeddings",
                endpoint=self.name,
                provider=self.provider.name,
            )
        model = self.model_for(request.model)
        preq = self._with_headers(build(request, model), request.extra_headers)
        started = self.clock.now()

        async def op(attempt: Attempt) -> EmbedResponse:
            resp = await self._send(preq, attempt)
            return self._stamp(parse(await resp.read(), resp.headers), model, attempt, started)

        policy = self._call_policy(request.max_retries)
        return await self.run(
            op,
            priority=priority,
            timeout=timeout,
            request_id=request_id,
            model=model,
            wait=wait,
            share=share,
            policy=policy,
            observer=observer,
        )

    async def stream(
        self,
        request: ChatRequest,
        *,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        wait: bool | None = None,
        share: bool = False,
        resume: bool | None = None,
        info: StreamInfo | None = None,
        observer: CallObserver | None = None,
        idle_timeout: float | None = None,
        failover: Callable[[], bool | None] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream events.

        Events that carry no content (start, role-only, usage) are held back until the first content event,
        so a stream that fails before any content (an in-band ``overloaded_error`` right after
        ``message_start``, a cut, a 5xx) is retried like any call. Once content reached the caller, a
        retryable break (cut, incomplete, in-band error) is *resumed* when ``resume`` (default
        ``config.resume_streams``) and only text was delivered: the request is sent again (with the delivered
        text as a partial assistant turn where the provider supports prefill), the repeated text is dropped,
        and a :class:`StreamResumed` event marks the seam. Otherwise the error is raised after the partial
        events. Every stream must meet its provider's termination rule (the protocol's terminal marker, e.g.
        OpenAI's ``[DONE]``; a finish reason only where the provider documents it: Gemini, TGI's Messages API;
        see each provider's parser), else it is an :class:`IncompleteStreamError`. ``info`` is filled with
        the call's request IDs, attempts and latency.

        ``idle_timeout`` (default ``config.stream_idle_timeout``) bounds the wait for each chunk once content
        has started (a stalled server: :class:`StreamIdleTimeoutError`). ``failover`` is the client's mid-stream
        failover: called at a break after content, it answers ``None`` when no other endpoint can continue the
        stream (it is then resumed here as usual), else whether this endpoint is still healthy: the break is
        then resumed here only once, only when it is transient (a cut, a stream ended early, an in-band 5xx
        that is not an overload) and the endpoint healthy; otherwise the error is raised at once (no backoff
        here) for the caller to continue elsewhere.
        """
        model = self.model_for(request.model)
        prefill = "prefill" in self.provider.capabilities
        preq = self._with_headers(self.provider.build_chat(request, model, True), request.extra_headers)
        policy = self._call_policy(request.max_retries)
        call = self._begin(request_id, timeout, model, policy, priority, wait=wait, share=share)
        call.observer = observer
        info = info if info is not None else StreamInfo()
        info.endpoint, info.provider, info.request_id = self.name, self.provider.name, call.rid
        may_resume = self.config.resume_streams if resume is None else bool(resume)
        idle = self.config.stream_idle_timeout if idle_timeout is None else idle_timeout
        splice = StreamSplice(prefill=prefill)
        try:
            while True:
                splice.new_attempt()
                try:
                    async with aclosing(self._stream_attempt(preq, call, info, idle)) as events:
                        async for ev in events:
                            first = not splice.content
                            for out in splice.feed(ev):
                                if first and splice.content:  # the first content reaches the caller
                                    first = False
                                    now = self.clock.now()
                                    self.counters.observe_ttft(now - call.started, now)
                                yield out
                    for out in splice.end():
                        yield out
                except InfermuxError as err:
                    content = splice.content
                    resumable = content and may_resume and _resumable(err, splice, call, failover)
                    delay = self._after_error(err, call, final=content and not resumable)
                    if delay is None:
                        raise
                    await self.clock.sleep(delay)
                    if resumable:
                        text = splice.resume()
                        again = resumed_request(request, text, prefill=prefill, tokens=splice.deltas)
                        preq = self._with_headers(self.provider.build_chat(again, model, True), request.extra_headers)
                        info.resumed += 1
                        self.counters.resumes += 1
                        yield StreamResumed(self.name, self.name, call.number + 1, len(text), type(err).__name__)
                    continue
                self._count_success(call.started, stream=True)
                return
        except InfermuxError:
            raise  # counted by _after_error
        except BaseException as err:  # cancelled, or the caller stopped reading (GeneratorExit)
            self.counters.ended(err)
            raise
        finally:
            info.attempts = call.number
            info.latency_s = self.clock.now() - call.started

    async def _stream_attempt(
        self, preq: ProviderRequest, call: Call, info: StreamInfo, idle: float | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        lease, permit = await self._admit(call)
        deadline = call.deadline
        try:
            attempt = self._new_attempt(call, lease, stream=True)
            acc = StreamAccumulator()
            try:
                resp = await deadline.run(self._send(preq, attempt))
                info.provider_request_id = self.provider.provider_request_id(resp.headers)
                async with aclosing(self._read_stream(resp, deadline, acc, idle)) as events:
                    async for ev in events:
                        yield ev
                if not acc.finished:
                    raise IncompleteStreamError(
                        "stream ended without its terminal marker", partial_text=acc.text, provider=self.provider.name
                    )
            except BaseException as err:
                failure = self._attempt_failed(err, call, lease, permit, attempt)
                if failure is err:
                    raise
                raise failure from err
            self._add_provider_metrics(acc.usage_raw)
            self.counters.add_usage(acc.usage)
            self._record_success(lease, permit, attempt)
        finally:
            self.gate.release()

    async def _read_stream(
        self, resp: HTTPResponse, deadline: Deadline, acc: StreamAccumulator, idle: float | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        chunks: Any = None

        def stalled() -> StreamIdleTimeoutError:
            return StreamIdleTimeoutError(
                f"the stream sent no chunk for {idle:g}s after content started (stream_idle_timeout) while the"
                " connection stayed open: the server stalled mid-stream",
                partial_text=acc.text,
            )

        timer = ChunkTimer(deadline, stalled)  # timer.cap: the idle timeout, once content has started
        try:
            parser = self.provider.new_stream_parser()
            # one message's events at a time where the parser can (the first event is not held back while the
            # rest of a network read that holds many is parsed)
            feed: Callable[[bytes], Iterable[StreamEvent]] = getattr(parser, "iter_feed", parser.feed)
            chunks = resp.iter_chunks().__aiter__()
            while True:
                try:
                    chunk = await timer.wait(chunks.__anext__())
                except StopAsyncIteration:
                    break
                self.counters.progressed(self.clock.now())
                for ev in feed(chunk):
                    self._check_stream_event(ev, acc)
                    if timer.cap is None and idle is not None and is_content(ev):
                        timer.cap = idle
                    yield ev
            for ev in parser.close():
                self._check_stream_event(ev, acc)
                yield ev
        finally:
            timer.close()
            try:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                await resp.aclose()

    def _check_stream_event(self, ev: StreamEvent, acc: StreamAccumulator) -> None:
        if isinstance(ev, StreamError):
            status = ev.status_code
            if status is None and ev.error_type and "overloaded" in ev.error_type:
                status = 529
            cls = status_error_class(status or 500)
            raise cls(
                f"{self.provider.name} reported an error mid-stream ({ev.error_type}): {ev.message}",
                status_code=status,
                error_type=ev.error_type,
                provider_message=ev.message,
            )
        acc.add(ev)
        if isinstance(ev, StreamFinish):
            acc.finished = True

    # ------------------------------------------------------------------ state

    def stats(self) -> dict[str, Any]:
        snap = self.counters.snapshot()
        snap.update(
            {
                "endpoint": self.name,
                "provider": self.provider.name,
                "base_url": self.shown_url,
                "model": self.config.model,
                "in_flight": self.gate.in_flight,
                "queue_depth": self.gate.depth_by_priority(),
                "queue": self.gate.snapshot(),
                "breaker": self.breaker.snapshot(),
                "concurrency": self.adaptive.snapshot() if self.adaptive is not None else None,
                "keys": self.keys.snapshot(),
                "time": time.time(),
            }
        )
        return snap

    async def aclose(self) -> None:
        if self._owns_transport:
            await self.transport.aclose()


def _resumable(
    err: InfermuxError, splice: StreamSplice, call: Call, failover: Callable[[], bool | None] | None
) -> bool:
    """Whether a break after content is resumed on this endpoint: only text was delivered and the error is
    retryable; when another endpoint can continue (``failover()`` is not ``None``), only once, for a
    transient break, while this endpoint is healthy."""
    if splice.tool_content or not is_retryable(call.pol, err):
        return False
    fit = None if failover is None else failover()
    return fit is None or (splice.resumes == 0 and transient_break(err) and fit)


def transient_break(err: InfermuxError) -> bool:
    """Whether a stream break looks transient, worth resuming on the same endpoint before moving on: a cut or
    reset connection, a stream that ended without its terminal marker, an in-band 5xx. Not a stall (idle
    timeout) or any other timeout, nor an overload or rate limit: the endpoint is then unfit to continue."""
    if isinstance(err, (APITimeoutError, OverloadedError)) or err.status_code in (429, 503, 529):
        return False
    return isinstance(err, (APIConnectionError, IncompleteStreamError, InternalServerError))


def build_endpoints(
    configs: Sequence[EndpointConfig | Endpoint],
    *,
    transport: Transport | str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Endpoint]:
    out: list[Endpoint] = []
    seen: set[str] = set()
    for c in configs:
        ep = c if isinstance(c, Endpoint) else Endpoint(c, transport=transport, clock=clock)
        if ep.name in seen:
            raise ConfigurationError(f"two endpoints are named {ep.name!r}")
        seen.add(ep.name)
        out.append(ep)
    return out
