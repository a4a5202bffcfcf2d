"""The S3 kit: several S3-compatible endpoints behind one verified, resumable, failing-over object API,
and a model registry on top (``pip install 'infermux[s3]'``). The core never imports this package.

    async with S3Kit([S3EndpointConfig("a", "http://127.0.0.1:8333"), ...], bucket="models", mirror=True) as kit:
        await kit.upload_file("model.gguf", "m/model.gguf")          # mirrored, result per endpoint
        report = await kit.download_file("m/model.gguf", "out.gguf", parallel_endpoints=True)
"""

from __future__ import annotations

from ._transfer import TransferReport
from .config import S3Credentials, S3EndpointConfig, parse_store_url
from .digest import Digest
from .endpoint import S3Endpoint
from .errors import (
    AccessDeniedError,
    BucketConflictError,
    ChecksumMismatchError,
    InvalidAccessKeyError,
    NoSuchBucketError,
    NoSuchKeyError,
    NoSuchUploadError,
    PartialWriteError,
    S3Error,
    SignatureMismatchError,
    SlowDownError,
)
from .kit import ObjectInfo, S3Kit, Strategy, WriteResult

__all__ = [
    "AccessDeniedError",
    "BucketConflictError",
    "ChecksumMismatchError",
    "Digest",
    "InvalidAccessKeyError",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "NoSuchUploadError",
    "ObjectInfo",
    "PartialWriteError",
    "S3Credentials",
    "S3Endpoint",
    "S3EndpointConfig",
    "S3Error",
    "S3Kit",
    "SignatureMismatchError",
    "SlowDownError",
    "Strategy",
    "TransferReport",
    "WriteResult",
    "parse_store_url",
]
