"""The infermux error tree.

Every failure a caller can see is an :class:`InfermuxError`. The tree has four branches::

    InfermuxError
    ├── ConfigurationError                  bad configuration or bad input, raised before any I/O
    ├── APIError                            something went wrong talking to a provider
    │   ├── APIStatusError                  the provider answered with an HTTP error status
    │   │   ├── BadRequestError             400
    │   │   ├── AuthenticationError         401
    │   │   ├── PermissionDeniedError       403
    │   │   ├── NotFoundError               404
    │   │   ├── RequestTimeoutStatusError   408
    │   │   ├── ConflictError               409
    │   │   ├── UnprocessableEntityError    422
    │   │   ├── RateLimitError              429 (``retry_after`` parsed from the headers)
    │   │   ├── InternalServerError         5xx
    │   │   └── OverloadedError             529 (and in-band "overloaded" errors)
    │   ├── APIConnectionError              could not connect / connection dropped
    │   │   └── APITimeoutError             a timeout elapsed (connect, read or the overall deadline)
    │   │       ├── DeadlineExceededError   the per-request deadline ran out across attempts
    │   │       └── StreamIdleTimeoutError  a stream sent no chunk within its idle timeout (connection open)
    │   ├── MalformedResponseError          a 2xx whose body is not what the protocol promises
    │   │   └── IncompleteStreamError       a stream that ended without its terminal marker
    │   └── ResponseTooLargeError           a body or stream over the endpoint's ``Limits`` (not retried)
    └── ResilienceError                     the client itself refused to send the request
        ├── CircuitOpenError                the endpoint's breaker is open (``retry_at``)
        ├── QueueFullError                  the endpoint's queue rejected the newcomer
        ├── RequestShedError                a waiting request was shed for a higher-priority one
        ├── KeyPoolExhaustedError           every API key is disabled (401/403) for this endpoint
        └── AllEndpointsFailedError         every endpoint tried by the router failed

Every error carries where it happened (provider, endpoint, model), our request ID and the
provider's, the HTTP status when there was one, the provider's own error type and message,
and ``retryable``: whether sending the same request again may succeed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AllEndpointsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConflictError",
    "DeadlineExceededError",
    "EndpointStatus",
    "IncompleteStreamError",
    "InfermuxError",
    "InternalServerError",
    "KeyPoolExhaustedError",
    "MalformedResponseError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "QueueFullError",
    "RateLimitError",
    "RequestShedError",
    "RequestTimeoutStatusError",
    "ResilienceError",
    "ResponseTooLargeError",
    "StreamIdleTimeoutError",
    "UnprocessableEntityError",
    "status_error_class",
]

_CONTEXT_FIELDS = (
    "provider",
    "endpoint",
    "model",
    "request_id",
    "provider_request_id",
    "status_code",
    "error_type",
    "provider_message",
)


class InfermuxError(Exception):
    """Base of every error infermux raises.

    Context fields default to ``None`` and are filled in by the layer that knows them
    (see :meth:`with_context`); ``retryable`` says whether the same request may succeed later.
    """

    retryable: bool = False
    #: the provider's ``x-should-retry`` header when it sent one (overrides the status-based retry rule)
    should_retry_header: bool | None = None
    #: the endpoint's circuit-breaker state when the call gave up ("open" when the breaker opened during the
    #: call's own retries and the deadline could not wait for a probe); ``None`` when it played no part
    breaker_state: str | None = None
    #: the endpoints the router tried, in order, and why it left each (``infermux.types.RouteHop`` values);
    #: empty when the error did not come through the router
    route: tuple[Any, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        endpoint: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
        provider_request_id: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
        provider_message: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        body: Any = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.endpoint = endpoint
        self.model = model
        self.request_id = request_id
        self.provider_request_id = provider_request_id
        self.status_code = status_code
        self.error_type = error_type
        self.provider_message = provider_message
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after
        self.body = body
        self.attempts = attempts

    def with_context(self, **fields: Any) -> InfermuxError:
        """Fill in context fields that are still unset; returns ``self`` for ``raise e.with_context(...)``."""
        for name, value in fields.items():
            if value is not None and getattr(self, name, None) is None:
                setattr(self, name, value)
        return self

    def context(self) -> dict[str, Any]:
        """The context fields as a plain dict (for logs, metrics and the gateway's error bodies)."""
        out: dict[str, Any] = {f: getattr(self, f) for f in _CONTEXT_FIELDS}
        out["retryable"] = self.retryable
        out["retry_after"] = self.retry_after
        out["attempts"] = self.attempts
        out["breaker_state"] = self.breaker_state
        out["route"] = [hop.to_dict() for hop in self.route]
        return out

    def __str__(self) -> str:
        parts = [self.message]
        where = [
            f"{k}={v}"
            for k, v in (
                ("provider", self.provider),
                ("endpoint", self.endpoint),
                ("model", self.model),
                ("status", self.status_code),
                ("request_id", self.request_id),
                ("provider_request_id", self.provider_request_id),
                ("attempts", self.attempts),
            )
            if v is not None
        ]
        where.append(f"retryable={self.retryable}")
        parts.append("[" + ", ".join(where) + "]")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigurationError(InfermuxError, ValueError):
    """Invalid configuration or invalid request input, detected before anything is sent."""


class APIError(InfermuxError):
    """A failure while talking to a provider."""


class APIStatusError(APIError):
    """The provider answered with an HTTP error status (4xx/5xx)."""


class BadRequestError(APIStatusError):
    """HTTP 400: the request is invalid for this provider. Retrying the same request cannot help."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the key is valid but not allowed to do this."""


class NotFoundError(APIStatusError):
    """HTTP 404: unknown route or model."""


class RequestTimeoutStatusError(APIStatusError):
    """HTTP 408: the server timed out waiting for the request."""

    retryable = True


class ConflictError(APIStatusError):
    """HTTP 409: a conflicting request (the OpenAI API uses it for transient lock conflicts)."""

    retryable = True


class UnprocessableEntityError(APIStatusError):
    """HTTP 422: the request is well-formed but semantically invalid."""


class RateLimitError(APIStatusError):
    """HTTP 429: rate limited; ``retry_after`` holds the advertised delay in seconds when known."""

    retryable = True


class InternalServerError(APIStatusError):
    """HTTP 5xx: the provider failed."""

    retryable = True


class OverloadedError(InternalServerError):
    """HTTP 529 (Anthropic) or an in-band ``overloaded`` error: the provider is over capacity."""

    retryable = True


class APIConnectionError(APIError):
    """Could not connect, or the connection broke before a complete response arrived."""

    retryable = True


class APITimeoutError(APIConnectionError):
    """A timeout elapsed (connect, first byte, read between chunks)."""

    retryable = True


class DeadlineExceededError(APITimeoutError):
    """The per-request deadline ran out, counting every attempt and every wait between them."""

    retryable = False


class StreamIdleTimeoutError(APITimeoutError):
    """A stream that had started sending content sent no chunk within its idle timeout
    (``EndpointConfig.stream_idle_timeout``) while its connection stayed open: the server stalled mid-stream.
    The text the attempt had received is in ``partial_text``."""

    retryable = True

    def __init__(self, message: str, *, partial_text: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial_text = partial_text


class MalformedResponseError(APIError):
    """The provider answered 2xx but the body is not what its protocol promises (HTML, truncated JSON...)."""

    retryable = True


class IncompleteStreamError(MalformedResponseError):
    """A stream ended without its protocol's terminal marker; the partial output is in ``partial_text``."""

    retryable = True

    def __init__(self, message: str, *, partial_text: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial_text = partial_text


class ResponseTooLargeError(APIError):
    """A response body (or the total of a stream) exceeded the endpoint's :class:`~infermux.transport.Limits`.

    Not retried: the same request would most likely overflow the same way. Another endpoint may answer it
    (the router falls back). ``limit`` is the bound in bytes that was exceeded.
    """

    retryable = False

    def __init__(self, message: str, *, limit: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.limit = limit


class ResilienceError(InfermuxError):
    """The client refused or gave up on the request on its own, to protect itself or the provider."""


class CircuitOpenError(ResilienceError):
    """The endpoint's circuit breaker is open; ``retry_at`` (monotonic seconds) is when it probes again."""

    retryable = True

    def __init__(self, message: str, *, retry_at: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_at = retry_at


class QueueFullError(ResilienceError):
    """The endpoint's queue is full and the overflow policy rejected this request."""

    retryable = True


class RequestShedError(QueueFullError):
    """This request waited in the queue and was shed to make room for a higher-priority one."""

    retryable = True


class KeyPoolExhaustedError(ResilienceError):
    """No API key of the endpoint can be used: all were rejected by the provider (401/403)."""

    retryable = False


EndpointState = Literal["failed", "breaker_open", "health_down", "keys_exhausted", "saturated", "not_tried"]


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """Why one endpoint could not serve a routed call (an item of :attr:`AllEndpointsFailedError.endpoints`).

    ``state``: ``breaker_open`` (its circuit breaker refused or opened; ``retry_at``: its next probe, on the
    endpoint's clock), ``keys_exhausted`` (every API key disabled, or every key's quota used up), ``saturated``
    (its queue was full), ``health_down`` (health monitoring found it down; it was tried anyway and failed),
    ``failed`` (it answered with ``error``) or ``not_tried`` (the call's timeout ran out first); ``reason``: the
    same in words; ``breaker`` / ``health``: its breaker and health states then (``health`` is ``None`` without
    health monitoring)."""

    endpoint: str
    state: EndpointState
    reason: str
    error: InfermuxError | None = field(default=None, repr=False, compare=False)
    breaker: str | None = None
    health: str | None = None
    retry_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "state": self.state,
            "reason": self.reason,
            "error": None if self.error is None else type(self.error).__name__,
            "breaker": self.breaker,
            "health": self.health,
            "retry_at": self.retry_at,
        }


class AllEndpointsFailedError(ResilienceError):
    """Every endpoint the router tried failed; ``errors`` holds each endpoint's error in order and, for a routed
    call, ``endpoints`` every candidate endpoint's state (:class:`EndpointStatus`: breaker open, keys exhausted,
    saturated, health down, failed with an error, not tried), which the message lists too."""

    def __init__(
        self,
        message: str,
        *,
        errors: list[InfermuxError] | None = None,
        endpoints: Sequence[EndpointStatus] = (),
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.errors: list[InfermuxError] = list(errors or [])
        self.endpoints: tuple[EndpointStatus, ...] = tuple(endpoints)
        self.retryable = any(e.retryable for e in self.errors)

    def context(self) -> dict[str, Any]:
        out = super().context()
        out["endpoints"] = [s.to_dict() for s in self.endpoints]
        return out


_STATUS_CLASSES: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutStatusError,
    409: ConflictError,
    413: BadRequestError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    529: OverloadedError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The error class for an HTTP status (one table, no guessing from message text)."""
    cls = _STATUS_CLASSES.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return InternalServerError
    return APIStatusError
