"""``infermux models push|pull|ls|rm``: the model registry from the command line.

Credentials come from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_DEFAULT_REGION`` or from
``--s3-config FILE`` (TOML/JSON: ``[[endpoints]]`` tables with ``name``, ``endpoint_url``, ``region``,
``access_key_id``, ``secret_access_key``, ``checksums``..., and at the top level ``part_hash = "blake3" | "sha256"``,
the hash of each part of what is pushed; ``--part-hash`` overrides it). Long transfers show tqdm progress bars on a
terminal; any failure is one line on stderr and exit status 2 (3 for a push that reached only some endpoints).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, InfermuxError
from .config import S3EndpointConfig, parse_store_url
from .digest import ALGOS

__all__ = ["main"]

EXIT_ERROR, EXIT_PARTIAL = 2, 3


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="infermux models", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", required=True, help="s3://BUCKET/PREFIX")
        p.add_argument("--endpoint-url", action="append", default=[], help="S3 endpoint (repeat to mirror)")
        p.add_argument("--s3-config", help="TOML/JSON file with [[endpoints]] (credentials per endpoint)")
        p.add_argument("--region", help="region (default AWS_DEFAULT_REGION or us-east-1)")
        p.add_argument(
            "--checksums",
            choices=("when_supported", "when_required"),
            default=None,
            help="when_required for stores without the new checksum headers (older MinIO, Ceph)",
        )
        p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("push", help="push a GGUF file or a model folder as NAME:VERSION")
    p.add_argument("src")
    p.add_argument("ref", metavar="NAME:VERSION")
    p.add_argument(
        "--part-hash",
        choices=ALGOS,
        default=None,
        help="hash of each part (default blake3, or part_hash in --s3-config; pulls check either)",
    )
    common(p)
    p = sub.add_parser("pull", help="pull NAME:VERSION into a folder (verified, resumable)")
    p.add_argument("ref", metavar="NAME:VERSION")
    p.add_argument("dest")
    p.add_argument("--parallel-endpoints", action="store_true", help="read from every endpoint at once")
    common(p)
    p = sub.add_parser("ls", help="list models and versions")
    common(p)
    p = sub.add_parser("rm", help="remove NAME:VERSION (blobs used by other versions stay)")
    p.add_argument("ref", metavar="NAME:VERSION")
    common(p)
    return ap


def _config_file(args: argparse.Namespace) -> dict[str, Any]:
    if not args.s3_config:
        return {}
    from ..config import _read_file

    data = _read_file(Path(args.s3_config))
    if not isinstance(data, dict):
        raise ConfigurationError(f"{args.s3_config}: must hold a table with an 'endpoints' list")
    return data


def kit_options(args: argparse.Namespace) -> dict[str, Any]:
    """Kit settings from ``--s3-config`` (top-level ``part_hash``) and the flags (which win)."""
    part_hash = getattr(args, "part_hash", None) or _config_file(args).get("part_hash", "blake3")
    if part_hash not in ALGOS:
        raise ConfigurationError(f"{args.s3_config}: part_hash must be one of {ALGOS}, got {part_hash!r}")
    return {"part_hash": part_hash}


def endpoint_configs(args: argparse.Namespace) -> list[S3EndpointConfig]:
    """Endpoints from ``--s3-config`` and/or ``--endpoint-url`` (credentials from the AWS_* variables)."""
    out: list[S3EndpointConfig] = []
    if args.s3_config:
        data = _config_file(args)
        items = data.get("endpoints")
        if not isinstance(items, list) or not items:
            raise InfermuxError(f"{args.s3_config}: needs a non-empty 'endpoints' list")
        out.extend(S3EndpointConfig.from_dict(d) for d in items)
    for i, url in enumerate(args.endpoint_url):
        out.append(S3EndpointConfig(name=f"s3-{i + 1}", endpoint_url=url, region=args.region))
    if args.checksums:
        from dataclasses import replace

        out = [replace(c, checksums=args.checksums) for c in out]
    if not out:
        raise ConfigurationError("give at least one --endpoint-url (or --s3-config)")
    return out


@contextlib.contextmanager
def _bars(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]] | None]:
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bars: list[Any] = []

    def make(label: str, total: int) -> Callable[[int], None]:
        bar = tqdm(
            total=total,
            desc=label[-40:],
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            leave=True,
            disable=None,
        )
        bars.append(bar)
        return bar.update  # type: ignore[no-any-return]

    try:
        yield make
    finally:
        for b in bars:
            b.close()


async def _run(args: argparse.Namespace) -> int:
    from .kit import S3Kit
    from .registry import ModelRef, Registry

    if getattr(args, "ref", None):
        ModelRef.parse(args.ref)  # a bad reference fails before anything is sent
    bucket, prefix = parse_store_url(args.store)
    cfgs = endpoint_configs(args)
    async with S3Kit(cfgs, bucket=bucket, mirror=True, **kit_options(args)) as kit:
        reg = Registry(kit, bucket, prefix)
        await reg.check_bucket()
        with _bars(not args.no_progress) as bars:
            if args.cmd == "push":
                res = await reg.push(args.src, args.ref, progress=bars)
                m = res.manifest
                line = (
                    f"pushed {res.ref}: {res.files} files, {res.bytes} bytes, {res.uploaded_blobs} blobs uploaded,"
                    f" {res.reused_blobs} already stored; {m.describe() if m else 'no manifest'}"
                )
                print(line)
                if res.status != "complete":
                    print(
                        f"infermux models: error: push of {res.ref} is {res.status}: {m.describe() if m else ''}",
                        file=sys.stderr,
                    )
                    return EXIT_PARTIAL
            elif args.cmd == "pull":
                pr = await reg.pull(args.ref, args.dest, parallel_endpoints=args.parallel_endpoints, progress=bars)
                print(
                    f"pulled {pr.ref} into {pr.dest}: {len(pr.files)} files, {pr.bytes} bytes verified"
                    f" ({pr.skipped_files} already present)"
                )
            elif args.cmd == "ls":
                for ref in await reg.list_models():
                    print(f"{ref.name}\t{ref.version}")
            else:
                print(json.dumps({"removed": args.ref, **await reg.remove(args.ref)}))
    return 0


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    try:
        return asyncio.run(_run(args))
    except InfermuxError as e:
        msg = " ".join(str(e).split())
        print(f"infermux models: error: {type(e).__name__}: {msg}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"infermux models: error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
