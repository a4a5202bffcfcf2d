"""OpenTelemetry traces and metrics of a client's calls, after the GenAI semantic conventions (extra ``[otel]``:
``opentelemetry-api`` and ``opentelemetry-sdk``). Off by default: a client given no ``telemetry`` never imports
OpenTelemetry and its calls pay one ``is None`` test each::

    from infermux.otel import Telemetry

    client = infermux.AsyncClient(endpoints, telemetry=Telemetry())  # the global providers; or pass yours

Each ``chat``, ``stream`` and ``embed`` call that reaches a provider (not a cache hit) is one CLIENT span named
``chat {model}`` / ``embeddings {model}`` (``{model}``: the requested model or group) with ``gen_ai.operation.name``,
``gen_ai.provider.name`` (and the older ``gen_ai.system``, same value), ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.response.id``, ``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens``
/ ``output_tokens``, ``server.address`` / ``server.port`` of the endpoint that answered (or failed last), the
request parameters set (``gen_ai.request.max_tokens``, ``temperature``, ``top_p``, ``seed``) and, on failure,
``error.type`` (the infermux error class) with an ERROR status. infermux adds ``infermux.request_id``,
``infermux.endpoint`` and ``infermux.route`` (the endpoints tried, in order). Every attempt sent to a server is a
span event ``infermux.attempt`` (endpoint, attempt number, server), a failed one also ``infermux.attempt.failed``
(``error.type``, ``http.response.status_code``, ``infermux.retryable``, ``infermux.retry_in_s`` when it is retried).

Metrics (histograms, the conventions' units and bucket advice): ``gen_ai.client.operation.duration`` (s),
``gen_ai.client.token.usage`` (``{token}``, ``gen_ai.token.type`` input/output) and, for streams,
``gen_ai.client.operation.time_to_first_chunk`` (s, to the first content reaching the caller). Their attributes:
operation, provider, request and response model, server address and port, and ``error.type`` on failures.
Durations are measured on the client's clock (a ``FakeClock`` in tests). Prompts and answers are never recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from .errors import ConfigurationError, InfermuxError
from .types import StreamFinish, StreamStart, TextDelta, ToolCallDelta, ToolCallStart, UsageEvent

if TYPE_CHECKING:  # pragma: no cover
    from ._engine import EngineCore
    from .endpoint import Endpoint
    from .resilience.clock import Clock
    from .types import ChatRequest, RouteHop, StreamEvent

__all__ = ["CallObserver", "CallTrace", "Instrumentation", "Telemetry"]

#: the conventions' advice for the duration and time-to-first-chunk histograms (seconds) and token counts
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

#: infermux provider name -> the conventions' ``gen_ai.provider.name`` (others are reported by their own name)
_PROVIDER_NAMES = {"openai": "openai", "openai_responses": "openai", "gemini": "gcp.gemini"}


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Turn OpenTelemetry on for a client. ``tracer_provider`` / ``meter_provider``: the providers to use
    (``None``: OpenTelemetry's global ones); ``traces`` / ``metrics``: either may be switched off."""

    tracer_provider: Any = None
    meter_provider: Any = None
    traces: bool = True
    metrics: bool = True

    def __post_init__(self) -> None:
        for name in ("traces", "metrics"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"Telemetry.{name} must be a bool, got {getattr(self, name)!r}")


class CallObserver(Protocol):
    """What the engine tells a call's trace: each attempt sent, and each failed one (``delay``: the wait before
    the next attempt, ``None`` when the endpoint gives up)."""

    def attempt(self, ep: EngineCore, number: int) -> None: ...

    def attempt_failed(self, ep: EngineCore, number: int, err: InfermuxError, delay: float | None) -> None: ...


def _server(ep: Endpoint) -> tuple[str, str | None, int | None]:
    """``(gen_ai.provider.name, server.address, server.port)`` of an endpoint."""
    prov = _PROVIDER_NAMES.get(ep.provider.name, ep.provider.name)
    try:
        u = urlsplit(ep.base_url)
        port = u.port or {"https": 443, "http": 80}.get(u.scheme)
    except ValueError:  # pragma: no cover - base URLs are validated when the endpoint is built
        return prov, None, None
    return prov, u.hostname, port


class Instrumentation:
    """One client's tracer, meter and instruments (made when the client is built with ``telemetry``)."""

    def __init__(self, config: Telemetry | bool, endpoints: Sequence[Endpoint], clock: Clock) -> None:
        if config is True:
            config = Telemetry()
        if not isinstance(config, Telemetry):
            raise ConfigurationError(f"telemetry must be a Telemetry, True or None, got {config!r}")
        try:
            from opentelemetry import metrics, trace
        except ModuleNotFoundError as e:
            raise ConfigurationError("OpenTelemetry needs opentelemetry-api: pip install 'infermux[otel]'") from e
        from . import __version__

        self.clock = clock
        self.kind = trace.SpanKind.CLIENT
        self.status = trace.Status
        self.error_code = trace.StatusCode.ERROR
        self.servers = {ep.name: _server(ep) for ep in endpoints}
        self.tracer: Any = None
        if config.traces:
            tp = config.tracer_provider or trace.get_tracer_provider()
            self.tracer = tp.get_tracer("infermux", __version__)
        self.duration: Any = None
        self.tokens: Any = None
        self.ttfc: Any = None
        if config.metrics:
            mp = config.meter_provider or metrics.get_meter_provider()
            meter = mp.get_meter("infermux", __version__)
            self.duration = meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )
            self.tokens = meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
            )
            self.ttfc = meter.create_histogram(
                "gen_ai.client.operation.time_to_first_chunk",
                unit="s",
                description="Time to receive the first chunk of a streamed response.",
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )

    def begin(
        self, operation: str, model: str | None, request_id: str, request: ChatRequest | None = None
    ) -> CallTrace:
        return CallTrace(self, operation, model, request_id, request)


class CallTrace:
    """One call's span and measurements (a :class:`CallObserver`); :meth:`finish` ends it, once."""

    __slots__ = (
        "_done",
        "_finish_reasons",
        "_first_chunk",
        "_inst",
        "_operation",
        "_request_model",
        "_response_id",
        "_response_model",
        "_started",
        "_usage",
        "endpoint",
        "span",
    )

    def __init__(
        self, inst: Instrumentation, operation: str, model: str | None, request_id: str, request: ChatRequest | None
    ) -> None:
        self._inst = inst
        self._operation = operation
        self._request_model = model
        self._started = inst.clock.now()
        self._first_chunk: float | None = None
        self._done = False
        self._usage: tuple[int, int] | None = None
        self._response_model: str | None = None
        self._response_id: str | None = None
        self._finish_reasons: list[str] = []
        self.endpoint: str | None = None
        self.span: Any = None
        if inst.tracer is not None:
            attrs: dict[str, Any] = {"gen_ai.operation.name": operation, "infermux.request_id": request_id}
            if model:
                attrs["gen_ai.request.model"] = model
            if request is not None:
                for name, value in (
                    ("max_tokens", request.max_tokens),
                    ("temperature", request.temperature),
                    ("top_p", request.top_p),
                    ("seed", request.seed),
                ):
                    if value is not None:
                        attrs[f"gen_ai.request.{name}"] = value
                if request.stop:
                    attrs["gen_ai.request.stop_sequences"] = list(request.stop)
            name = f"{operation} {model}" if model else operation
            self.span = inst.tracer.start_span(name, kind=inst.kind, attributes=attrs)

    # ------------------------------------------------------------------ the engine's reports

    def _where(self, ep: EngineCore, number: int) -> dict[str, Any]:
        prov, host, port = self._inst.servers.get(ep.name) or (ep.provider.name, None, None)
        attrs: dict[str, Any] = {"infermux.endpoint": ep.name, "infermux.attempt": number, "gen_ai.provider.name": prov}
        if host is not None:
            attrs["server.address"] = host
        if port is not None:
            attrs["server.port"] = port
        return attrs

    def attempt(self, ep: EngineCore, number: int) -> None:
        self.endpoint = ep.name
        if self.span is not None:
            self.span.add_event("infermux.attempt", self._where(ep, number))

    def attempt_failed(self, ep: EngineCore, number: int, err: InfermuxError, delay: float | None) -> None:
        if self.span is None:
            return
        attrs = self._where(ep, number)
        attrs["error.type"] = type(err).__qualname__
        attrs["infermux.retryable"] = bool(err.retryable)
        if err.status_code is not None:
            attrs["http.response.status_code"] = err.status_code
        if delay is not None:
            attrs["infermux.retry_in_s"] = delay
        self.span.add_event("infermux.attempt.failed", attrs)

    # ------------------------------------------------------------------ a stream's events

    def stream_event(self, ev: StreamEvent) -> None:
        """An event that reached the caller (the first content one marks the time to first chunk)."""
        if isinstance(ev, (TextDelta, ToolCallStart, ToolCallDelta)):
            if self._first_chunk is None:
                now = self._inst.clock.now()
                self._first_chunk = now
                if self._inst.ttfc is not None:
                    self._inst.ttfc.record(now - self._started, self._metric_attrs(None))
        elif isinstance(ev, UsageEvent):
            self._usage = (ev.usage.input_tokens, ev.usage.output_tokens)
        elif isinstance(ev, StreamStart):
            self._response_model = ev.model or self._response_model
            self._response_id = ev.response_id or self._response_id
        elif isinstance(ev, StreamFinish) and ev.reason is not None:
            self._finish_reasons = [str(ev.reason)]

    # ------------------------------------------------------------------ the end

    def finish(
        self,
        result: Any = None,
        error: BaseException | None = None,
        *,
        endpoint: str | None = None,
        route: tuple[RouteHop, ...] = (),
    ) -> None:
        """End the span and record the metrics: ``result`` (a response) or ``error``; ``endpoint``: who served
        (else the last endpoint attempted); ``route``: the hops (else the result's or the error's)."""
        if self._done:
            return
        self._done = True
        if result is not None:
            endpoint = getattr(result, "endpoint", None) or endpoint
            route = route or getattr(result, "route", ())
            self._take_result(result)
        if isinstance(error, InfermuxError):
            endpoint = endpoint or error.endpoint
            route = route or error.route
        self.endpoint = endpoint or self.endpoint
        abandoned = isinstance(error, GeneratorExit)  # the caller stopped reading a stream: not a failure
        if abandoned:
            error = None
        inst = self._inst
        attrs = self._metric_attrs(None if error is None else _error_type(error))
        if inst.duration is not None:
            inst.duration.record(inst.clock.now() - self._started, attrs)
        if inst.tokens is not None and self._usage is not None and error is None:
            kinds = ("input",) if self._operation == "embeddings" else ("input", "output")  # embeddings: input only
            for kind, n in zip(kinds, self._usage, strict=False):
                inst.tokens.record(n, {**attrs, "gen_ai.token.type": kind})
        if self.span is not None:
            self._end_span(attrs, route, error, abandoned=abandoned)

    def _take_result(self, result: Any) -> None:
        self._response_model = getattr(result, "model", None) or self._response_model
        self._response_id = getattr(result, "response_id", None) or self._response_id
        usage = getattr(result, "usage", None)
        if usage is not None:
            self._usage = (usage.input_tokens, usage.output_tokens)
        reason = getattr(result, "finish_reason", None)
        if reason is not None:
            self._finish_reasons = [str(reason)]

    def _end_span(
        self, attrs: dict[str, Any], route: tuple[RouteHop, ...], error: BaseException | None, *, abandoned: bool
    ) -> None:
        span = self.span
        span.set_attributes(attrs)
        extra: dict[str, Any] = {}
        if self.endpoint is not None:
            extra["infermux.endpoint"] = self.endpoint
        if route:
            extra["infermux.route"] = [f"{h.endpoint}:{h.outcome}" for h in route]
        if self._response_id:
            extra["gen_ai.response.id"] = self._response_id
        if self._finish_reasons:
            extra["gen_ai.response.finish_reasons"] = self._finish_reasons
        if self._usage is not None:
            extra["gen_ai.usage.input_tokens"] = self._usage[0]
            if self._operation != "embeddings":
                extra["gen_ai.usage.output_tokens"] = self._usage[1]
        if self._first_chunk is not None:
            extra["gen_ai.response.time_to_first_chunk"] = self._first_chunk - self._started
        if abandoned:
            extra["infermux.stream.abandoned"] = True
        span.set_attributes(extra)
        if error is not None:
            span.set_status(self._inst.status(self._inst.error_code, _describe(error)))
        span.end()

    def _metric_attrs(self, err_type: str | None) -> dict[str, Any]:
        attrs: dict[str, Any] = {"gen_ai.operation.name": self._operation}
        if self._request_model:
            attrs["gen_ai.request.model"] = self._request_model
        if self._response_model:
            attrs["gen_ai.response.model"] = self._response_model
        server = self._inst.servers.get(self.endpoint) if self.endpoint is not None else None
        if server is not None:
            prov, host, port = server
            attrs["gen_ai.provider.name"] = attrs["gen_ai.system"] = prov
            if host is not None:
                attrs["server.address"] = host
            if port is not None:
                attrs["server.port"] = port
        if err_type is not None:
            attrs["error.type"] = err_type
        return attrs


def _error_type(error: BaseException) -> str:
    """``error.type``: the infermux error class, ``cancelled`` for a cancellation, else the exception's class."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return type(error).__qualname__


def _describe(error: BaseException) -> str:
    """A span status description: the error's message without its context (which are attributes)."""
    if isinstance(error, InfermuxError):
        return error.message
    return type(error).__qualname__
