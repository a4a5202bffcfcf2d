"""S3 endpoint settings: where, which credentials, and the resilience knobs of the core engine."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigurationError
from ..resilience.breaker import BreakerConfig
from ..resilience.retry import RetryPolicy

__all__ = ["S3Credentials", "S3EndpointConfig", "parse_store_url"]

#: S3 retries fast and often (503 SlowDown is routine): a shorter backoff than the chat default
S3_RETRY = RetryPolicy(max_retries=4, initial_delay=0.2, factor=2.0, max_delay=5.0, deadline=600.0)
S3_BREAKER = BreakerConfig(consecutive_failures=3, minimum_calls=10, open_seconds=10.0)


@dataclass(frozen=True, slots=True)
class S3Credentials:
    """An access key pair (and optional session token). Never shown in reprs, logs or errors."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class S3EndpointConfig:
    """One S3-compatible endpoint (AWS, MinIO, Ceph, SeaweedFS, moto...).

    Credentials: ``credentials`` if given, else the env vars named by ``access_key_env`` /
    ``secret_key_env`` / ``session_token_env`` (defaults: the standard ``AWS_*`` variables), read when the
    endpoint is opened. ``region`` defaults to ``AWS_DEFAULT_REGION`` or ``us-east-1``.

    ``checksums``: ``"when_supported"`` sends a flexible checksum header with every part and object
    (``checksum_algorithm``: CRC32, the cheapest for both sides, or SHA256), checked by the store before it
    keeps the bytes; ``"when_required"`` sends them only where the S3 API requires it (boto3 < 1.36
    behaviour), for stores that reject or mishandle them (older MinIO, Ceph RGW, some appliances). Downloads
    are verified against the kit's own digests either way.
    """

    name: str
    endpoint_url: str | None = None
    region: str | None = None
    credentials: S3Credentials | None = field(default=None, repr=False)
    access_key_env: str = "AWS_ACCESS_KEY_ID"
    secret_key_env: str = "AWS_SECRET_ACCESS_KEY"
    session_token_env: str = "AWS_SESSION_TOKEN"
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    checksums: Literal["when_supported", "when_required"] = "when_supported"
    checksum_algorithm: Literal["CRC32", "SHA256"] = "CRC32"
    retry: RetryPolicy = S3_RETRY
    breaker: BreakerConfig = S3_BREAKER
    max_concurrency: int = 16
    max_queue: int = 4096
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigurationError("S3EndpointConfig.name must be a non-empty string")
        if self.endpoint_url is not None:
            parts = urllib.parse.urlsplit(self.endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError(
                    f"S3 endpoint {self.name!r}: endpoint_url must be http(s)://host[:port], got {self.endpoint_url!r}"
                )
        if self.addressing_style not in ("path", "virtual", "auto"):
            raise ConfigurationError(f"S3 endpoint {self.name!r}: addressing_style must be path, virtual or auto")
        if self.checksums not in ("when_supported", "when_required"):
            raise ConfigurationError(f"S3 endpoint {self.name!r}: checksums must be when_supported or when_required")
        if self.checksum_algorithm not in ("CRC32", "SHA256"):
            raise ConfigurationError(f"S3 endpoint {self.name!r}: checksum_algorithm must be CRC32 or SHA256")
        if self.max_concurrency < 1:
            raise ConfigurationError(f"S3 endpoint {self.name!r}: max_concurrency must be >= 1")
        for t in ("connect_timeout", "read_timeout"):
            if not getattr(self, t) > 0:
                raise ConfigurationError(f"S3 endpoint {self.name!r}: {t} must be > 0")

    def resolved_region(self, env: Mapping[str, str] | None = None) -> str:
        e = os.environ if env is None else env
        return self.region or e.get("AWS_DEFAULT_REGION") or e.get("AWS_REGION") or "us-east-1"

    def resolved_credentials(self, env: Mapping[str, str] | None = None) -> S3Credentials | None:
        """The credentials to sign with; ``None`` means anonymous (unsigned) requests."""
        if self.credentials is not None:
            return self.credentials
        e = os.environ if env is None else env
        ak, sk = e.get(self.access_key_env), e.get(self.secret_key_env)
        if ak and sk:
            return S3Credentials(ak, sk, e.get(self.session_token_env) or None)
        if ak or sk:
            missing = self.secret_key_env if ak else self.access_key_env
            raise ConfigurationError(f"S3 endpoint {self.name!r}: {missing} is not set (the other half of the key is)")
        return None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> S3EndpointConfig:
        """From plain data (a config file table); ``access_key_id``/``secret_access_key`` become credentials."""
        data = dict(d)
        ak, sk = data.pop("access_key_id", None), data.pop("secret_access_key", None)
        token = data.pop("session_token", None)
        if ak or sk:
            if not (ak and sk):
                raise ConfigurationError(
                    f"S3 endpoint {d.get('name')!r}: give both access_key_id and secret_access_key"
                )
            data["credentials"] = S3Credentials(str(ak), str(sk), token)
        for k, cls_ in (("retry", RetryPolicy), ("breaker", BreakerConfig)):
            if isinstance(data.get(k), Mapping):
                data[k] = cls_(**data[k])
        try:
            return cls(**data)
        except TypeError as e:
            raise ConfigurationError(f"S3 endpoint {d.get('name')!r}: {e}") from None


def parse_store_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix without slashes at the ends)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigurationError(f"a store must look like s3://BUCKET/PREFIX, got {url!r}")
    return parts.netloc, parts.path.strip("/")
