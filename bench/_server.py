"""A tiny, fast OpenAI-compatible HTTP/1.1 server for benchmarks (stdlib asyncio streams only).

Every POST gets the same fixed ``chat.completion`` JSON; a request whose JSON body has
``"stream": true`` gets an SSE stream of ``--chunks`` ``chat.completion.chunk`` events plus a usage chunk
and ``data: [DONE]`` (chunked transfer encoding, one HTTP chunk per event). ``GET`` answers a model list.
Run it as a separate process (``python bench/_server.py``) so its CPU is never counted as client CPU; it
prints ``{"port": N}`` on stdout once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-bench-0001",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "system_fingerprint": "fp_bench",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 12,
        "completion_tokens": 9,
        "total_tokens": 21,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
MODELS = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "bench"}]}


def _response(body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nContent-Length: %d\r\n" % len(body)
    return head + b"x-request-id: req-bench\r\n\r\n" + body


def _stream_response(chunks: int) -> tuple[bytes, bytes]:
    """The SSE answer as (head, the role event and the first token's event; the rest)."""
    base = {"id": "chatcmpl-bench-0002", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    for i in range(chunks):
        delta = {"content": f"tok{i} "}
        events.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    events.append({**base, "choices": [], "usage": usage})
    payloads = [b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events]
    payloads.append(b"data: [DONE]\n\n")
    out = [b"%x\r\n%s\r\n" % (len(p), p) for p in payloads]
    out.append(b"0\r\n\r\n")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + out[0] + out[1], b"".join(out[2:])


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _serve(port: int, chunks: int, first_gap: float = 0.0) -> None:
    chat = _response(json.dumps(CHAT_COMPLETION).encode())
    models = _response(json.dumps(MODELS).encode())
    stream = _stream_response(chunks)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                length, chunked = 0, False
                for line in head.split(b"\r\n")[1:]:
                    if line.startswith(b"content-length:"):
                        length = int(line[15:])
                    elif line.startswith(b"transfer-encoding:") and b"chunked" in line:
                        chunked = True
                body = await _read_chunked(reader) if chunked else await reader.readexactly(length) if length else b""
                if head.startswith(b"get "):
                    writer.write(models)
                elif b'"stream":true' in body.replace(b" ", b""):
                    if first_gap > 0:  # the first token alone, the rest later (as a model generates them)
                        writer.write(stream[0])
                        await writer.drain()
                        await asyncio.sleep(first_gap)
                    writer.write(stream[0] + stream[1] if first_gap <= 0 else stream[1])
                else:
                    writer.write(chat)
                await writer.drain()
                if b"connection: close" in head:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(main())


class BenchServer:
    """Runs this module in a child process (own session), stopped by PID on exit."""

    def __init__(self, chunks: int = 200, first_gap_ms: float = 0.0) -> None:
        self.chunks = chunks
        self.first_gap_ms = first_gap_ms
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> BenchServer:
        argv = [sys.executable, os.path.abspath(__file__), "--chunks", str(self.chunks)]
        argv += ["--first-gap-ms", str(self.first_gap_ms)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True)
        assert self.proc.stdout is not None
        self.port = int(json.loads(self.proc.stdout.readline())["port"])
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def gateway_bench_key(base: str, master: str, timeout: float = 10) -> str:
    """A virtual key of ``infermux serve`` at ``base`` with RPM/TPM limits that never bind (the gateway benches
    measure the whole admission path, not refusals); returns its secret."""
    req = urllib.request.Request(
        base + "/admin/keys",
        data=json.dumps({"name": "bench", "rpm": 100_000_000, "tpm": 10_000_000_000}).encode(),
        headers={"authorization": f"Bearer {master}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        secret: str = json.loads(r.read())["key"]
    return secret


def cpu_count_line() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {time.strftime('%Y-%m-%d %H:%M')}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--first-gap-ms", type=float, default=0.0, help="send a stream's first event alone, then wait")
    args = parser.parse_args()
    _serve(args.port, args.chunks, args.first_gap_ms / 1000)
