"""The public clients: :class:`AsyncClient` (asyncio) and :class:`Client` (a sync facade over the same engine).

Example::

    async with infermux.AsyncClient([infermux.EndpointConfig(name="local", provider="llamacpp",
                                                           base_url="http://127.0.0.1:8080/v1", model="smollm2")]) as c:
        r = await c.chat("Say hi", max_tokens=16)
        async with c.stream("Count to 3") as s:
            async for text in s.text():
                print(text, end="")

An :class:`AsyncClient` belongs to the event loop of its first call until :meth:`AsyncClient.aclose`; a call
from another loop raises :class:`ConfigurationError` instead of leaking the first loop's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

from .endpoint import Endpoint, EndpointConfig, StreamInfo, build_endpoints
from .errors import ConfigurationError, DeadlineExceededError, InfermuxError
from .providers import ProviderRequest
from .providers._common import parse_model_ids
from .resilience.clock import SYSTEM_CLOCK, Clock
from .router import Budget, Router, can_fall_back
from .transport import Transport
from .types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    MessagesInput,
    Priority,
    ResponseFormat,
    StreamAccumulator,
    StreamEvent,
    TextDelta,
    Tool,
    check_call_options,
    coerce_messages,
)

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["AsyncClient", "ChatParams", "ChatStream", "ModelListing", "build_chat_request"]

_UNSET: Any = object()


def _coerce_tool(t: Tool | Mapping[str, Any]) -> Tool:
    if isinstance(t, Tool):
        return t
    fn = t.get("function", t) if t.get("type", "function") == "function" else None
    if not isinstance(fn, Mapping) or "name" not in fn:
        raise ConfigurationError(f"a tool must be a Tool or an OpenAI-style function dict, got {dict(t)!r}")
    return Tool(
        name=fn["name"],
        description=fn.get("description", ""),
        parameters=fn.get("parameters") or fn.get("input_schema") or {"type": "object", "properties": {}},
        strict=fn.get("strict"),
    )


def _coerce_format(rf: ResponseFormat | Mapping[str, Any] | str | None) -> ResponseFormat | None:
    if rf is None or isinstance(rf, ResponseFormat):
        return rf
    if isinstance(rf, str):
        if rf in ("json", "json_object"):
            return ResponseFormat("json_object")
        raise ConfigurationError(f"response_format string must be 'json' or 'json_object', got {rf!r}")
    t = rf.get("type")
    if t == "json_object":
        return ResponseFormat("json_object")
    if t == "json_schema":
        js = rf.get("json_schema", rf)
        return ResponseFormat(
            "json_schema", schema=js.get("schema"), name=js.get("name", "response"), strict=js.get("strict")
        )
    if t == "text":
        return None
    raise ConfigurationError(f"unsupported response_format {dict(rf)!r}")


class ModelListing(dict[str, list[str]]):
    """What :meth:`AsyncClient.models` returns: model IDs by endpoint name for the endpoints that answered,
    and ``errors``: the typed error of each endpoint that did not (so one failing endpoint hides nothing)."""

    def __init__(self, ids: Mapping[str, list[str]], errors: Mapping[str, InfermuxError]) -> None:
        super().__init__(ids)
        self.errors: dict[str, InfermuxError] = dict(errors)

    def __repr__(self) -> str:
        return f"ModelListing({dict(self)!r}, errors={ {k: type(e).__name__ for k, e in self.errors.items()}!r})"


class ChatParams(TypedDict, total=False):
    """The chat parameters :meth:`AsyncClient.chat` and :meth:`AsyncClient.stream` take as keywords (those of
    :func:`build_chat_request`)."""

    model: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: str | Sequence[str] | None
    tools: Iterable[Tool | Mapping[str, Any]] | None
    tool_choice: str | None
    parallel_tool_calls: bool | None
    response_format: ResponseFormat | Mapping[str, Any] | str | None
    seed: int | None
    user: str | None
    metadata: Mapping[str, str] | None
    extra: Mapping[str, Any] | None
    extra_headers: Mapping[str, str] | None
    max_retries: int | None


_CHAT_PARAMS = frozenset(ChatParams.__annotations__)


def _check_params(method: str, params: Mapping[str, Any]) -> None:
    """A wrong keyword is a ``TypeError`` naming the public method, as Python's own would."""
    for name in params:
        if name not in _CHAT_PARAMS:
            raise TypeError(f"{method}() got an unexpected keyword argument {name!r}")


def build_chat_request(
    messages: MessagesInput | ChatRequest,
    *,
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
) -> ChatRequest:
    """Build a validated :class:`ChatRequest` from friendly arguments (strings, OpenAI-style dicts...).

    ``extra`` goes into the JSON body, ``extra_headers`` are sent as HTTP headers on every attempt and
    ``max_retries`` replaces the endpoint's retry count for this call (see :class:`ChatRequest`)."""
    if isinstance(messages, ChatRequest):
        return messages
    check_call_options(extra_headers or {}, max_retries)
    msgs = coerce_messages(messages)
    try:
        return ChatRequest(
            messages=msgs,
            model=model,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
            tools=tuple(_coerce_tool(t) for t in tools or ()),
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=_coerce_format(response_format),
            seed=seed,
            user=user,
            metadata=dict(metadata) if isinstance(metadata, Mapping) else metadata or {},  # else: refused, named
            extra=dict(extra) if isinstance(extra, Mapping) else extra or {},
            extra_headers=dict(extra_headers or {}),
            max_retries=max_retries,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        if isinstance(e, ConfigurationError):
            raise
        raise ConfigurationError(f"invalid chat parameters ({type(e).__name__}: {e})") from None


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
        self._done = False
        self._on_start = on_start
        self._finalizer: weakref.finalize[Any, Any] | None = None

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
            latency_s=info.latency_s,
            attempts=max(1, info.attempts),
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


class AsyncClient:
    """A client over one or more endpoints, with routing and fallback in the configured order.

    ``endpoints`` may be :class:`EndpointConfig` or ready :class:`Endpoint` objects. Without endpoints,
    ``config`` (a TOML/YAML file path) is read; without both, the environment (see
    :func:`infermux.config.endpoints_from_env`) when ``trust_env`` is true.
    """

    def __init__(
        self,
        endpoints: Sequence[EndpointConfig | Endpoint] | None = None,
        *,
        config: str | Path | None = None,
        transport: Transport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        trust_env: bool = True,
    ) -> None:
        from . import config as _config

        if endpoints is None:
            if config is not None:
                endpoints = _config.load_config(config)
            elif trust_env:
                endpoints = _config.endpoints_from_env()
            if not endpoints:
                raise ConfigurationError(
                    "no endpoints configured: pass endpoints=[EndpointConfig(...)], config='infermux.toml',"
                    " or set INFERMUX_CONFIG / INFERMUX_BASE_URL"
                )
        self._endpoints = build_endpoints(endpoints, transport=transport, clock=clock)
        self.router = Router(self._endpoints)
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind_loop(self) -> None:
        """Tie this client to the running loop on its first call; refuse any other loop until aclose()."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise ConfigurationError(
                "this AsyncClient is used by another event loop than the one of its first call (two"
                " asyncio.run() calls?): create the client inside the loop that uses it, or aclose() it"
                " before that loop ends (then it can be used again)"
            )

    @property
    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)

    def endpoint(self, name: str) -> Endpoint:
        return self.router.get(name)

    async def chat(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        endpoint: str | None = None,
        priority: Priority = Priority.NORMAL,
        timeout: float | None = None,
        request_id: str | None = None,
        fail_fast: bool = False,
        **params: Unpack[ChatParams],
    ) -> ChatResponse:
        """One chat completion. ``params`` are :func:`build_chat_request`'s (model, temperature,
        max_tokens, stop, tools, tool_choice, response_format, seed, user, metadata, extra, extra_headers,
        max_retries), see :class:`ChatParams`.
        ``timeout`` bounds the whole call, fallbacks included; ``fail_fast`` refuses at once instead of waiting
        while every endpoint protects itself (breaker open, key quota used up)."""
        _check_params("AsyncClient.chat", params)
        self._bind_loop()
        req = build_chat_request(messages, **params)
        rid = request_id or uuid.uuid4().hex
        cands = self.router.candidates(model=req.model, endpoint=endpoint)
        budget = Budget(self._clock, timeout)
        return await self.router.run(
            cands,
            lambda ep, st: ep.chat(
                req, priority=priority, timeout=st.timeout, request_id=rid, wait=st.wait, share=st.share
            ),
            budget,
            fail_fast=fail_fast,
            priority=priority,
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
        resume: bool | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatStream:
        """A streamed chat completion (use ``async with`` / ``async for``). Falls back to the next endpoint
        only while no content has reached the caller; after that a broken stream is resumed on its endpoint
        (``resume``, default each endpoint's ``resume_streams``; see :meth:`Endpoint.stream`). ``params`` as
        in :meth:`chat`."""
        _check_params("AsyncClient.stream", params)
        req = build_chat_request(messages, **params)
        rid = request_id or uuid.uuid4().hex
        cands = self.router.candidates(model=req.model, endpoint=endpoint)
        budget = Budget(self._clock, timeout)
        stream = ChatStream(rid, on_start=self._bind_loop)
        stream.attach(
            self._stream_events(
                stream.info, req, cands, priority=priority, budget=budget, rid=rid, fail_fast=fail_fast, resume=resume
            )
        )
        return stream

    async def _stream_events(
        self,
        info: StreamInfo,
        req: ChatRequest,
        cands: list[Endpoint],
        *,
        priority: Priority,
        budget: Budget,
        rid: str,
        fail_fast: bool,
        resume: bool | None,
    ) -> AsyncGenerator[StreamEvent, None]:
        errors: list[InfermuxError] = []
        await self.router.await_capacity(cands, budget, priority)
        try:
            for ep, st in self.router.steps(cands, budget, fail_fast=fail_fast):
                delivered = False
                try:
                    events_ = ep.stream(
                        req,
                        priority=priority,
                        timeout=st.timeout,
                        request_id=rid,
                        wait=st.wait,
                        share=st.share,
                        resume=resume,
                        info=info,
                    )
                    async with aclosing(events_) as events:
                        async for ev in events:
                            delivered = True
                            yield ev
                    return
                except InfermuxError as e:
                    errors.append(e)
                    if delivered or not can_fall_back(e):
                        raise
        except DeadlineExceededError as e:
            if not errors:
                raise
            errors.append(e)
        raise self.router.all_failed(errors)

    async def embed(
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
    ) -> EmbedResponse:
        """Embed one text or several: ``.vectors`` holds one vector per input, in order."""
        self._bind_loop()
        if isinstance(inputs, EmbedRequest):
            req = inputs
        else:
            seq: Any = inputs
            if not isinstance(inputs, (str, list, tuple)) and isinstance(inputs, Iterable):
                seq = tuple(inputs)  # a generator...; anything else is refused by EmbedRequest, naming the field
            check_call_options(extra_headers or {}, max_retries)
            req = EmbedRequest(
                seq,
                model=model,
                dimensions=dimensions,
                extra={} if extra is None else extra,
                extra_headers=dict(extra_headers or {}),
                max_retries=max_retries,
            )
        rid = request_id or uuid.uuid4().hex
        cands = self.router.candidates(model=req.model, endpoint=endpoint)
        budget = Budget(self._clock, timeout)
        return await self.router.run(
            cands,
            lambda ep, st: ep.embed(
                req, priority=priority, timeout=st.timeout, request_id=rid, wait=st.wait, share=st.share
            ),
            budget,
            fail_fast=fail_fast,
            priority=priority,
        )

    async def models(self, *, endpoint: str | None = None, timeout: float | None = None) -> ModelListing:
        """Model IDs each endpoint lists (its native model list, or ``GET .../models``), by endpoint name.

        Every endpoint is asked, concurrently, each with its own error: an endpoint that fails is absent from
        the mapping and its error is in ``listing.errors``. Raises when ``endpoint`` names one that failed, or
        when every endpoint failed (:class:`AllEndpointsFailedError` when there were several). ``timeout``
        bounds the whole listing."""
        self._bind_loop()
        eps = [self.router.get(endpoint)] if endpoint else self._endpoints
        budget = Budget(self._clock, timeout)
        results = await asyncio.gather(*(self._list_models(ep, budget) for ep in eps), return_exceptions=True)
        ids: dict[str, list[str]] = {}
        errors: dict[str, InfermuxError] = {}
        for ep, res in zip(eps, results, strict=True):
            if isinstance(res, InfermuxError):
                errors[ep.name] = res
            elif isinstance(res, BaseException):
                raise res  # a bug or a cancellation, not an endpoint's answer
            else:
                ids[ep.name] = res
        if not ids:
            raise self.router.all_failed(list(errors.values()))
        return ModelListing(ids, errors)

    async def _list_models(self, ep: Endpoint, budget: Budget) -> list[str]:
        prov = ep.provider
        timeout = budget.share(ep, 1)[0]  # endpoints are asked concurrently: each may use all that is left
        if prov.build_models is not None and prov.parse_models is not None:
            return await ep.call(prov.build_models(), prov.parse_models, timeout=timeout)
        parse = functools.partial(parse_model_ids, prov.name)
        return await ep.call(ProviderRequest("GET", prov.models_path), parse, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        """A plain-data snapshot of every endpoint's counters, queue, breaker and keys."""
        return {ep.name: ep.stats() for ep in self._endpoints}

    async def aclose(self) -> None:
        """Close every endpoint's connections; the client may then be used again, from any loop."""
        for ep in self._endpoints:
            await ep.aclose()
        self._loop = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def __getattr__(name: str) -> Any:
    if name == "Client":
        from ._sync import Client

        return Client
    raise AttributeError(name)
