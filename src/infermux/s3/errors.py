"""Typed S3 errors: each subclasses the infermux error that gives it the right retry and breaker behaviour.

==========================  ==============================  =========  ===============
S3 answer                   class                           retryable  breaker failure
==========================  ==============================  =========  ===============
404 NoSuchBucket            :class:`NoSuchBucketError`      no         no
404 NoSuchKey / HEAD 404    :class:`NoSuchKeyError`         no         no
404 NoSuchUpload            :class:`NoSuchUploadError`      no         no
403 AccessDenied            :class:`AccessDeniedError`      no         no
403 SignatureDoesNotMatch   :class:`SignatureMismatchError` no         no
403 InvalidAccessKeyId      :class:`InvalidAccessKeyError`  no         no
503 SlowDown / 429          :class:`SlowDownError`          yes        no (throttling)
5xx                         ``InternalServerError``         yes        yes
connection / timeout        ``APIConnectionError``          yes        yes
bytes whose SHA-256 differ  :class:`ChecksumMismatchError`  yes        no (refetched elsewhere)
==========================  ==============================  =========  ===============

A mirrored write where some endpoints failed is :class:`PartialWriteError` only when the caller asked for
every copy (``strict=True``); otherwise the :class:`~infermux.s3.kit.WriteResult` says ``partial``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

if TYPE_CHECKING:  # pragma: no cover
    from .kit import WriteResult

__all__ = [
    "AccessDeniedError",
    "BucketConflictError",
    "ChecksumMismatchError",
    "InvalidAccessKeyError",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "NoSuchUploadError",
    "PartialWriteError",
    "S3Error",
    "SignatureMismatchError",
    "SlowDownError",
]


class S3Error(APIError):
    """Marker base of the S3-specific errors (each also subclasses the matching infermux status error)."""


class NoSuchBucketError(NotFoundError, S3Error):
    """The bucket does not exist on this endpoint (create it first)."""


class NoSuchKeyError(NotFoundError, S3Error):
    """The object does not exist on this endpoint."""


class NoSuchUploadError(NotFoundError, S3Error):
    """The multipart upload ID is unknown (completed, aborted or expired)."""


class AccessDeniedError(PermissionDeniedError, S3Error):
    """The credentials are valid but not allowed to do this."""


class SignatureMismatchError(AuthenticationError, S3Error):
    """The request signature does not match: the secret key is wrong (or the clock/region is off)."""


class InvalidAccessKeyError(AuthenticationError, S3Error):
    """The access key ID is unknown to this endpoint."""


class SlowDownError(RateLimitError, S3Error):
    """503 SlowDown (or 429): the store throttles; retried with backoff, never a breaker failure."""


class BucketConflictError(ConflictError, S3Error):
    """409 on a bucket (already exists / not empty): retrying the same request cannot help."""

    retryable = False


class ChecksumMismatchError(MalformedResponseError, S3Error):
    """Bytes received (or stored) do not have the SHA-256 the digest promises; they are never kept."""

    def __init__(self, message: str, *, expected: str = "", actual: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.expected = expected
        self.actual = actual


class PartialWriteError(S3Error):
    """A mirrored write reached some endpoints but not all, and the caller required every copy.

    ``result`` holds the per-endpoint outcome (what was written where, and each failure)."""

    retryable = True

    def __init__(self, message: str, *, result: WriteResult, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.result = result
