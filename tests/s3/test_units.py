"""Pure parts of the S3 kit (no server): digests, configuration, error classification, write results."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from blake3 import blake3

from infermux.errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    InternalServerError,
    MalformedResponseError,
)
from infermux.resilience import RetryPolicy, is_breaker_failure, is_retryable
from infermux.s3 import (
    AccessDeniedError,
    BucketConflictError,
    ChecksumMismatchError,
    Digest,
    NoSuchBucketError,
    NoSuchKeyError,
    ObjectInfo,
    S3Credentials,
    S3EndpointConfig,
    SignatureMismatchError,
    SlowDownError,
    WriteResult,
    parse_store_url,
)
from infermux.s3._classify import classify
from infermux.s3.digest import MIB, choose_part_size, digest_bytes, file_matches, hash_file_parts, part_ranges
from infermux.s3.registry import ModelRef


def test_part_layout_and_digest_roundtrip(tmp_path: Path) -> None:
    assert part_ranges(0, 5) == [(0, 0)]
    assert part_ranges(11, 5) == [(0, 5), (5, 10), (10, 11)]
    assert choose_part_size(10) == 8 * MIB
    assert choose_part_size(10_000 * MIB) == 313 * MIB  # at most 32 parts, whole MiB
    with pytest.raises(ConfigurationError, match="5 MiB"):
        choose_part_size(10, 1 * MIB)
    data = bytes(range(256)) * 50_000  # 12.8 MB
    d = digest_bytes(data, 5 * MIB)
    assert d.sha256 == hashlib.sha256(data).hexdigest() and len(d.parts) == 3 and d.algo == "blake3"
    assert d.parts[1] == blake3(data[5 * MIB : 10 * MIB]).hexdigest()
    p = tmp_path / "f"
    p.write_bytes(data)
    assert hash_file_parts(p, 5 * MIB) == d
    fast = hash_file_parts(p, 5 * MIB, whole=False)  # what a plain upload computes: no whole-file pass
    assert fast.sha256 is None and fast.parts == d.parts and fast.root == d.root and fast.same_content(d)
    assert Digest.from_metadata(fast.to_metadata()) == fast
    assert file_matches(p, fast) and file_matches(p, d)
    p.write_bytes(data[:-1] + b"!")
    assert not file_matches(p, fast) and not file_matches(p, d)
    # objects and manifests written before BLAKE3 (SHA-256 parts, no algorithm recorded) still read and check
    old = digest_bytes(data, 5 * MIB, algo="sha256")
    assert old.parts[1] == hashlib.sha256(data[5 * MIB : 10 * MIB]).hexdigest()
    legacy_meta = {k: v for k, v in old.to_metadata().items() if k != "infermux-part-hash"}
    assert Digest.from_metadata(legacy_meta) == old
    assert Digest.from_json({k: v for k, v in old.to_json().items() if k != "part_hash"}) == old
    assert old.same_content(d)  # both have the whole-file SHA-256
    assert not old.same_content(fast)  # different part hashes and no whole-file SHA-256 to compare
    meta = d.to_metadata()
    assert sum(len(k) + len(v) for k, v in meta.items()) < 2048  # fits S3's user-metadata limit
    assert Digest.from_metadata({k.title(): v for k, v in meta.items()}) == d  # header case does not matter
    assert Digest.from_json(d.to_json()) == d
    assert Digest.from_metadata({"other": "x"}) is None
    with pytest.raises(ConfigurationError, match="inconsistent"):
        Digest.from_metadata({**meta, "infermux-size": "1"})
    with pytest.raises(ConfigurationError, match="unreadable"):
        Digest.from_metadata({**meta, "infermux-part-size": "x"})
    big = Digest(10_000 * MIB, "0" * 64, choose_part_size(10_000 * MIB), ("0" * 64,) * 32)
    assert sum(len(v) for v in big.to_metadata().values()) < 2048


def _client_error(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "RID", "HTTPHeaders": headers or {}},
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    ("status", "code", "what", "cls", "retryable", "breaker"),
    [
        (404, "NoSuchKey", "get", NoSuchKeyError, False, False),
        (404, "NoSuchBucket", "put", NoSuchBucketError, False, False),
        (404, "404", "head_object", NoSuchKeyError, False, False),
        (404, "404", "head_bucket", NoSuchBucketError, False, False),
        (403, "AccessDenied", "get", AccessDeniedError, False, False),
        (403, "SignatureDoesNotMatch", "get", SignatureMismatchError, False, False),
        (503, "SlowDown", "put", SlowDownError, True, False),
        (429, "TooManyRequests", "put", SlowDownError, True, False),
        (500, "InternalError", "put", InternalServerError, True, True),
        (409, "BucketAlreadyExists", "create", BucketConflictError, False, False),
    ],
)
def test_s3_answers_become_typed_errors(  # noqa: PLR0917 - parametrized
    status: int, code: str, what: str, cls: type[Exception], retryable: bool, breaker: bool
) -> None:
    err = classify(_client_error(status, code, "msg", {"retry-after": "2"}), what)
    assert type(err) is cls
    assert is_retryable(RetryPolicy(), err) is retryable
    assert is_breaker_failure(err) is breaker  # a 403 or a throttle never opens the breaker
    assert err.status_code == status and err.provider_request_id == "RID"  # type: ignore[attr-defined]
    if code == "SlowDown":
        assert err.retry_after == 2.0  # type: ignore[attr-defined]


def test_transport_failures_become_typed_errors() -> None:
    import aiohttp
    import botocore.exceptions as bx

    assert type(classify(bx.EndpointConnectionError(endpoint_url="http://x"), "get")) is APIConnectionError
    assert type(classify(bx.ReadTimeoutError(endpoint_url="http://x"), "get")) is APITimeoutError
    assert type(classify(aiohttp.ClientPayloadError("cut"), "get")) is APIConnectionError
    assert type(classify(bx.NoCredentialsError(), "get")) is ConfigurationError
    assert type(classify(bx.ParamValidationError(report="bad"), "get")) is ConfigurationError
    other = KeyError("x")
    assert classify(other, "get") is other  # a bug in our code is not disguised as an S3 error
    cm = ChecksumMismatchError("bad bytes")
    # retried (max_malformed_retries) but, like every malformed answer, not a breaker signal: the kit itself
    # stops reading from an endpoint that served corrupt bytes for the rest of that transfer
    assert isinstance(cm, MalformedResponseError) and cm.retryable and not is_breaker_failure(cm)


def test_endpoint_config_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    c = S3EndpointConfig("a", "http://127.0.0.1:9000")
    assert c.resolved_credentials({}) is None  # anonymous
    creds = c.resolved_credentials({"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"})
    assert creds == S3Credentials("AK", "SK") and "SK" not in repr(creds) and "SK" not in repr(c)
    with pytest.raises(ConfigurationError, match="AWS_SECRET_ACCESS_KEY is not set"):
        c.resolved_credentials({"AWS_ACCESS_KEY_ID": "AK"})
    assert c.resolved_region({"AWS_DEFAULT_REGION": "eu-west-1"}) == "eu-west-1"
    assert c.resolved_region({}) == "us-east-1"
    for bad in (
        {"endpoint_url": "ftp://x"},
        {"addressing_style": "odd"},
        {"checksums": "always"},
        {"checksum_algorithm": "MD5"},
    ):
        with pytest.raises(ConfigurationError):
            S3EndpointConfig("a", **bad)  # type: ignore[arg-type]
    d = S3EndpointConfig.from_dict(
        {
            "name": "x",
            "endpoint_url": "http://h:1",
            "access_key_id": "k",
            "secret_access_key": "s",
            "checksums": "when_required",
            "checksum_algorithm": "SHA256",
            "retry": {"max_retries": 1},
        }
    )
    assert d.credentials == S3Credentials("k", "s") and d.checksums == "when_required" and d.retry.max_retries == 1
    assert d.checksum_algorithm == "SHA256" and S3EndpointConfig("y").checksum_algorithm == "CRC32"
    with pytest.raises(ConfigurationError, match="both"):
        S3EndpointConfig.from_dict({"name": "x", "access_key_id": "k"})
    with pytest.raises(ConfigurationError):
        S3EndpointConfig.from_dict({"name": "x", "bogus": 1})
    assert parse_store_url("s3://bkt/a/b/") == ("bkt", "a/b")
    with pytest.raises(ConfigurationError):
        parse_store_url("http://bkt/a")


def test_model_refs_and_write_results() -> None:
    assert ModelRef.parse("org/model:v1.2") == ModelRef("org/model", "v1.2")
    for bad in ("model", "model:", ":v1", "../x:v1", "a b:v1", "m:v/1"):
        with pytest.raises(ConfigurationError):
            ModelRef.parse(bad)
    w = WriteResult("k", wanted=2)
    assert w.status == "failed" and not w.ok
    w.results["a"] = ObjectInfo("k", 1)
    assert w.status == "partial" and not w.ok
    w.results["b"] = APIConnectionError("down", endpoint="b")
    assert w.status == "partial" and w.failed["b"].endpoint == "b" and "1 of 2 copies" in w.describe()
    w.results["b"] = ObjectInfo("k", 1)
    assert w.status == "complete" and w.ok


def test_core_import_stays_light_and_never_imports_s3() -> None:
    code = (
        "import sys, infermux, infermux.client, infermux.cli; "
        "bad = [m for m in sys.modules if m.startswith(('infermux.s3', 'aiobotocore', 'botocore', 'boto3', 'tqdm'))]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_leaf_digests_match_plain_hashing_of_the_same_layout() -> None:
    """A streamed upload's digest groups leaf hashes; a download checks a part by feeding its bytes, in chunks
    of any size, to a LeafHasher: both must agree, and differ from hashing the part whole."""
    from infermux.s3.digest import LeafHasher, hash_part

    leaf = 5 * MIB
    data = bytes(range(256)) * (4 * leaf // 256 + 10)  # 4 full leaves and a short one
    leaves = [bytes.fromhex(hash_part("blake3", data[i : i + leaf])) for i in range(0, len(data), leaf)]
    d = Digest.from_leaves(len(data), None, leaf, leaves)
    assert (d.part_size, d.leaf, len(d.parts)) == (leaf, None, 5)  # fits as plain parts
    assert d.parts[1] == hash_part("blake3", data[leaf : 2 * leaf])
    import infermux.s3.digest as dg

    old = dg.MAX_PARTS_IN_METADATA
    dg.MAX_PARTS_IN_METADATA = 2
    try:
        g = Digest.from_leaves(len(data), None, leaf, leaves)
    finally:
        dg.MAX_PARTS_IN_METADATA = old
    assert (g.part_size, g.leaf, len(g.parts)) == (4 * leaf, leaf, 2)
    for step in (1000, MIB + 3, 4 * leaf):
        h = LeafHasher("blake3", leaf)
        for i in range(0, 4 * leaf, step):
            h.update(data[i : min(i + step, 4 * leaf)])
        assert h.hexdigest() == g.parts[0]
    assert hash_part("blake3", data[4 * leaf :], leaf) == g.parts[1]
    assert g.parts[0] != hash_part("blake3", data[: 4 * leaf])
    assert Digest.from_metadata(g.to_metadata()) == g and Digest.from_json(g.to_json()) == g
