"""Running the gateway: :class:`GatewayServer` (start on host:port, graceful stop) and ``infermux serve``.

Graceful shutdown (SIGTERM, SIGINT, or :meth:`GatewayServer.stop`): stop accepting connections, answer 503
(``connection: close``) to requests on kept-alive connections, wait up to ``shutdown_timeout`` for the
requests in flight, then cancel what is left (a stream still open gets an in-band error event first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import ConfigurationError, InfermuxError
from .app import Gateway
from .settings import MASTER_KEY_ENV, GatewaySettings, settings_from_dict

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Fleet

__all__ = ["GatewayServer", "load_gateway_config", "main"]

_log = logging.getLogger("infermux.gateway")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GatewayServer:
    """``async with GatewayServer(gateway) as srv:`` serves on ``srv.url`` until the block ends."""

    def __init__(self, gateway: Gateway, host: str | None = None, port: int | None = None) -> None:
        s = gateway.settings
        self.gateway = gateway
        self.host = s.host if host is None else host
        self.port = s.port if port is None else port
        if not s.auth_required and not s.allow_open and not _loopback(self.host):
            raise ConfigurationError(
                f"refusing to serve on {self.host} without a master key: set {MASTER_KEY_ENV}, or allow_open = true"
                " in [gateway] to serve without authentication"
            )
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        runner = web.ServerRunner(self.gateway.make_server(), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise ConfigurationError(f"cannot listen on {self.host}:{self.port}: {e.strerror or e}") from None
        self._runner, self._site = runner, site
        self.port = int(runner.addresses[0][1])

    async def stop(self, timeout: float | None = None) -> int:
        """Drain and close; returns how many requests had to be cancelled at the deadline."""
        runner, self._runner = self._runner, None
        if runner is None:
            return 0
        if self._site is not None:
            await self._site.stop()  # stop accepting; open connections stay until drained
        cancelled = await self.gateway.drain(self.gateway.settings.shutdown_timeout if timeout is None else timeout)
        await runner.cleanup()
        await self.gateway.aclose()
        return cancelled

    async def __aenter__(self) -> GatewayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def load_gateway_config(path: str | Path) -> tuple[Fleet, GatewaySettings]:
    """What one config file describes: the fleet (``[[endpoints]]``, ``[[groups]]``, ``[health]``) and the
    gateway settings (``[gateway]``)."""
    from ..config import _read_file, load_fleet

    fleet = load_fleet(path)
    data = _read_file(Path(path))
    return fleet, settings_from_dict(data.get("gateway") if isinstance(data, dict) else None)


def _parser(prog: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Serve OpenAI- and Anthropic-compatible routes over infermux (master key: "
        f"{MASTER_KEY_ENV}). Without --config, the embedded local model is served.",
    )
    ap.add_argument("--config", help="TOML/YAML/JSON file: [[endpoints]] and an optional [gateway] table")
    ap.add_argument("--host", default=None, help="address to bind (default: [gateway] host, else 127.0.0.1)")
    ap.add_argument("--port", type=int, default=None, help="port (default: [gateway] port, else 8080; 0: any free)")
    ap.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop: uvloop (pip install 'infermux[gateway]') or asyncio's; auto: uvloop when installed",
    )
    return ap


def run_on_loop(main: Coroutine[Any, Any, int], choice: str = "auto") -> int:
    """Run ``main`` on uvloop (about 10 % less CPU per request here: see the README's Gateway figures) when
    ``choice`` is "uvloop", or "auto" and uvloop is installed; else on asyncio's default loop."""
    uvloop: Any = None
    if choice != "asyncio" and sys.platform != "win32":
        try:
            import uvloop
        except ModuleNotFoundError:
            if choice == "uvloop":
                main.close()
                raise ConfigurationError("--loop uvloop needs uvloop: pip install 'infermux[gateway]'") from None
    if uvloop is None:
        return asyncio.run(main)
    result: int = uvloop.run(main)
    return result


async def _serve(gateway: Gateway, host: str | None, port: int | None) -> int:
    server = GatewayServer(gateway, host, port)
    await server.start()
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]  # "uvloop" or "asyncio"
    print(f"infermux gateway ({loop_name} event loop) listening on {server.url}", file=sys.stderr, flush=True)
    if not gateway.settings.auth_required:
        print(f"infermux: warning: no {MASTER_KEY_ENV}: serving without authentication", file=sys.stderr)
    if gateway.settings.state == "redis":
        from .redis_state import RedisState

        if isinstance(gateway.state, RedisState):
            try:
                await gateway.state.check()
            except InfermuxError as e:
                print(f"infermux: warning: {e} (fail_mode = {gateway.settings.fail_mode})", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("infermux gateway: draining...", file=sys.stderr, flush=True)
        cancelled = await server.stop()
        print(f"infermux gateway: stopped ({cancelled} request(s) cancelled at the deadline)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "infermux serve") -> int:
    args = _parser(prog).parse_args(argv)
    from ..client import AsyncClient

    try:
        if args.config:
            fleet, settings = load_gateway_config(args.config)
            ctx: Any = contextlib.nullcontext(fleet)
        else:
            from ..local import LocalLlamaServer

            settings = GatewaySettings()
            print("infermux: starting the embedded local model (llama.cpp + SmolLM2-135M)...", file=sys.stderr)
            ctx = _local_fleet(LocalLlamaServer(embedding=True))
        settings = settings.with_env()
        with ctx as f:

            async def run() -> int:
                client = AsyncClient(f.endpoints, groups=f.groups, health=f.health, state=f.state, trust_env=False)
                return await _serve(Gateway(client, settings), args.host, args.port)

            return run_on_loop(run(), args.loop)
    except InfermuxError as e:
        print(f"infermux serve: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


@contextlib.contextmanager
def _local_fleet(srv: Any) -> Any:
    from ..config import Fleet

    with srv:
        yield Fleet([srv.endpoint_config()])
