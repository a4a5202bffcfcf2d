"""Turn what botocore/aiohttp raise into typed infermux errors (one table; no guessing from message text)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    InfermuxError,
    MalformedResponseError,
    status_error_class,
)
from ..resilience.retry import parse_retry_after
from .errors import (
    AccessDeniedError,
    BucketConflictError,
    InvalidAccessKeyError,
    NoSuchBucketError,
    NoSuchKeyError,
    NoSuchUploadError,
    SignatureMismatchError,
    SlowDownError,
)

__all__ = ["classify"]

_BY_CODE: dict[str, type[APIStatusError]] = {
    "NoSuchBucket": NoSuchBucketError,
    "NoSuchKey": NoSuchKeyError,
    "NoSuchUpload": NoSuchUploadError,
    "AccessDenied": AccessDeniedError,
    "AllAccessDisabled": AccessDeniedError,
    "SignatureDoesNotMatch": SignatureMismatchError,
    "InvalidAccessKeyId": InvalidAccessKeyError,
    "SlowDown": SlowDownError,
    "ThrottlingException": SlowDownError,
    "RequestLimitExceeded": SlowDownError,
    "TooManyRequestsException": SlowDownError,
    "BucketAlreadyExists": BucketConflictError,
    "BucketAlreadyOwnedByYou": BucketConflictError,
    "BucketNotEmpty": BucketConflictError,
}
#: HEAD answers have no body, so only the status tells
_HEAD_BY_STATUS: dict[int, type[APIStatusError]] = {404: NoSuchKeyError, 403: AccessDeniedError}


def _client_error(e: Any, what: str) -> InfermuxError:
    resp = getattr(e, "response", None) or {}
    err = resp.get("Error") or {}
    meta = resp.get("ResponseMetadata") or {}
    status = int(meta.get("HTTPStatusCode") or 0) or None
    code = str(err.get("Code") or "")
    message = str(err.get("Message") or "")
    headers = {str(k).lower(): str(v) for k, v in (meta.get("HTTPHeaders") or {}).items()}
    cls: type[APIStatusError] | None = _BY_CODE.get(code)
    if cls is None and code.isdigit() and status is not None:  # a HEAD answer: only the status tells
        cls = NoSuchBucketError if status == 404 and "bucket" in what else _HEAD_BY_STATUS.get(status)
    if cls is None:
        cls = SlowDownError if status == 429 else status_error_class(status or 500)
    text = f"S3 {what} failed: HTTP {status} {code}" + (f": {message}" if message else "")
    if cls is NoSuchBucketError:
        text += " (the bucket must exist: create it first)"
    elif issubclass(cls, (SignatureMismatchError, InvalidAccessKeyError)):
        text += " (check the access key and secret for this endpoint)"
    return cls(
        text,
        status_code=status,
        error_type=code or None,
        provider_message=message or None,
        provider_request_id=meta.get("RequestId") or headers.get("x-amz-request-id"),
        retry_after=parse_retry_after(headers),
        body={"Error": dict(err)} if err else None,
        # an S3 code decides, not the status (409 BucketAlreadyExists is final, 503 SlowDown is not)
        retryable=cls.retryable if code in _BY_CODE else None,
    )


def classify(e: BaseException, what: str) -> BaseException:
    """The typed error for an exception raised while doing S3 operation ``what``. Cancellation and
    infermux errors pass through unchanged."""
    if isinstance(e, (InfermuxError, asyncio.CancelledError)):
        return e
    import aiohttp
    import botocore.exceptions as bx
    from botocore.parsers import ResponseParserError

    if isinstance(e, bx.ClientError):
        return _client_error(e, what)
    if isinstance(e, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return ConfigurationError(f"S3 {what}: no usable credentials ({e})")
    if isinstance(e, (bx.ParamValidationError, bx.UnknownKeyError)):
        return ConfigurationError(f"S3 {what}: invalid parameters: {e}")
    if isinstance(e, (bx.ConnectTimeoutError, bx.ReadTimeoutError, asyncio.TimeoutError)):
        return APITimeoutError(f"S3 {what}: timed out ({type(e).__name__})")
    if isinstance(e, bx.IncompleteReadError):
        return APIConnectionError(f"S3 {what}: the body ended early ({e})")
    if isinstance(
        e,
        (
            bx.EndpointConnectionError,
            bx.ConnectionClosedError,
            bx.HTTPClientError,
            bx.ResponseStreamingError,
            aiohttp.ClientError,
            ConnectionError,
        ),
    ):
        return APIConnectionError(f"S3 {what}: connection failed: {type(e).__name__}: {e}"[:500])
    if isinstance(e, ResponseParserError):
        return MalformedResponseError(f"S3 {what}: unreadable answer: {e}"[:500])
    if isinstance(e, bx.BotoCoreError):
        return APIConnectionError(f"S3 {what}: {type(e).__name__}: {e}"[:500])
    return e
