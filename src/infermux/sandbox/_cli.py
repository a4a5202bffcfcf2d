"""``python -m infermux.sandbox`` / ``infermux sandbox``: run the sandbox as a standalone server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from infermux.errors import ConfigurationError
from infermux.sandbox._runner import Sandbox
from infermux.sandbox._server import _BACKEND_MODULES, BUILTIN_BACKENDS, DEFAULT_MODELS
from infermux.sandbox._stats import DEFAULT_MAX_RECORDS

__all__ = ["build_parser", "main"]

ALL_BACKENDS = (*BUILTIN_BACKENDS, *_BACKEND_MODULES)


def build_parser(prog: str = "python -m infermux.sandbox") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            f"Protocol-faithful emulators of inference APIs ({', '.join(ALL_BACKENDS)}) with fault injection"
            " (POST /_sandbox/faults, see the README), on one HTTP server."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8089, help="port (0: any free port; the URL is printed)")
    p.add_argument("--keys", default=None, help="comma-separated accepted API keys (default: any non-empty key)")
    p.add_argument("--capacity", type=int, default=None, help="max requests in flight; extra ones get 429")
    p.add_argument("--capacity-retry-after-ms", type=int, default=100, help="retry-after-ms of capacity 429s")
    p.add_argument("--embedding-dim", type=int, default=64, help="embedding vector size (default 64)")
    p.add_argument("--latency", type=float, default=0.0, help="base latency before each response, seconds")
    p.add_argument("--token-delay", type=float, default=0.0, help="delay between stream chunks, seconds")
    p.add_argument(
        "--max-records",
        type=int,
        default=DEFAULT_MAX_RECORDS,
        help=f"requests kept in the /_sandbox/stats log, latest first out (default {DEFAULT_MAX_RECORDS})",
    )
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model ids for /v1/models")
    p.add_argument(
        "--backend",
        default="openai,anthropic",
        help=f"comma-separated emulated backends, any of: {', '.join(ALL_BACKENDS)} (default openai,anthropic)",
    )
    return p


async def _serve(sandbox: Sandbox) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with sandbox:
        print(f"infermux sandbox listening on {sandbox.base_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None, prog: str = "python -m infermux.sandbox") -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    keys = [k.strip() for k in args.keys.split(",") if k.strip()] if args.keys else None
    try:
        sandbox = Sandbox(
            args.host,
            args.port,
            keys=keys,
            capacity=args.capacity,
            capacity_retry_after_ms=args.capacity_retry_after_ms,
            embedding_dim=args.embedding_dim,
            base_latency=args.latency,
            token_delay=args.token_delay,
            models=[m.strip() for m in args.models.split(",") if m.strip()],
            backends=[b.strip() for b in args.backend.split(",") if b.strip()],
            max_records=args.max_records,
        )
        asyncio.run(_serve(sandbox))
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
