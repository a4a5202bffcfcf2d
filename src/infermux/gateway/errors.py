"""Errors as the caller's protocol shapes them: status, JSON body, and headers (``x-request-id``, and on 429
and 503 ``retry-after`` / ``retry-after-ms`` from the upstream's advertised delay; ``x-should-retry`` says
whether the same request may succeed later, which the official SDKs honour).

OpenAI: ``{"error": {"message", "type", "param", "code"}}``. Anthropic: ``{"type": "error", "error": {"type",
"message"}, "request_id"}``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from ..errors import (
    AllEndpointsFailedError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CircuitOpenError,
    ConfigurationError,
    InfermuxError,
    KeyPoolExhaustedError,
    MalformedResponseError,
    OverloadedError,
    QueueFullError,
    RequestShedError,
    ResponseTooLargeError,
)

__all__ = ["GatewayError", "Protocol", "error_body", "error_headers", "from_exception"]

Protocol = Literal["openai", "anthropic"]

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class GatewayError(InfermuxError):
    """An error the gateway itself answers with (auth, limits, unknown model...): ``status_code`` and
    ``error_type`` are what the caller sees; ``headers`` are added to the response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status, error_type=error_type, retry_after=retry_after, retryable=retryable
        )
        self.headers = dict(headers or {})


def default_type(protocol: Protocol, status: int) -> str:
    table = _ANTHROPIC_TYPES if protocol == "anthropic" else _OPENAI_TYPES
    if status in table:
        return table[status]
    if protocol == "anthropic":
        return "overloaded_error" if status in (503, 529) else "api_error"
    return "server_error"


def _status_of(err: InfermuxError, protocol: Protocol) -> int:
    if isinstance(err, GatewayError) and err.status_code is not None:
        return err.status_code
    if isinstance(err, ConfigurationError):
        return 400
    if isinstance(err, OverloadedError):
        return 529 if protocol == "anthropic" else 503
    if isinstance(err, APIStatusError) and err.status_code is not None:
        status = err.status_code
        if status in (401, 403):  # the upstream refused the gateway's own credentials: not the caller's fault
            return 502
        if status == 408:
            return 504
        if 400 <= status < 600:
            return status
        return 502
    if isinstance(err, APITimeoutError):
        return 504
    if isinstance(err, (APIConnectionError, MalformedResponseError, ResponseTooLargeError, KeyPoolExhaustedError)):
        return 502
    if isinstance(err, (CircuitOpenError, QueueFullError, RequestShedError)):
        return 503
    return 500


def from_exception(err: InfermuxError, protocol: Protocol) -> tuple[int, str, str, float | None, bool]:
    """``(status, error_type, message, retry_after, retryable)`` for the caller. An
    :class:`AllEndpointsFailedError` answers as its last endpoint's error did (the message lists them all)."""
    shown = err
    if isinstance(err, AllEndpointsFailedError) and err.errors:
        shown = err.errors[-1]
    status = _status_of(shown, protocol)
    etype = default_type(protocol, status)
    if isinstance(shown, GatewayError) and shown.error_type:
        etype = shown.error_type
    elif status == 502 and isinstance(shown, APIStatusError) and shown.status_code in (401, 403):
        etype = "upstream_auth_error" if protocol == "openai" else "api_error"
    retry_after = shown.retry_after if shown.retry_after is not None else err.retry_after
    message = err.message if isinstance(err, GatewayError) else str(err)
    return status, etype, message, retry_after, bool(err.retryable)


def error_headers(request_id: str, retry_after: float | None, retryable: bool, status: int) -> dict[str, str]:
    headers = {"x-request-id": request_id}
    if retry_after is not None and retry_after >= 0 and math.isfinite(retry_after) and status in (429, 503, 529):
        headers["retry-after"] = str(max(0, math.ceil(retry_after)))
        headers["retry-after-ms"] = str(max(0, round(retry_after * 1000)))
    if status >= 408:
        headers["x-should-retry"] = "true" if retryable else "false"
    return headers


def error_body(protocol: Protocol, status: int, error_type: str, message: str, request_id: str) -> dict[str, Any]:
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    code: Any = status
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}
