"""Incremental SSE and NDJSON decoders shared by every provider (bytes in, events out, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from .._evolve import fast_init
from ..errors import MalformedResponseError

__all__ = ["MAX_EVENT_BYTES", "NDJSONDecoder", "SSEDecoder", "SSEMessage"]

_MAX_BUFFER = 16 * 1024 * 1024  # a single line larger than this is a broken stream, not a big answer
#: the default bound of one event's data (all its ``data:`` lines together)
MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSEMessage:
    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None


_new_message = fast_init(SSEMessage)  # SSEMessage(...), faster (one per event)


class SSEDecoder:
    """Server-sent events per the WHATWG spec: lines end in LF, CRLF or CR; ``data:`` lines are joined
    with LF; one leading space after the colon is dropped (TGI writes ``data:{...}`` with none);
    comment lines (``:``) are ignored; an event is dispatched at a blank line.

    Memory is bounded: an unfinished line over 16 MiB, or an event whose ``data:`` lines add up to more
    than ``max_event_bytes`` (a stream of ``data:`` lines that never ends its event), raise
    :class:`MalformedResponseError`."""

    __slots__ = ("_buf", "_data", "_data_size", "_event", "_id", "_max_event", "_pending_cr", "_retry")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buf = bytearray()
        self._max_event = max_event_bytes
        self._data_size = 0
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        out: list[SSEMessage] = []
        if not chunk:
            return out
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._pending_cr = False
        self._buf += chunk
        if len(self._buf) > _MAX_BUFFER:
            raise MalformedResponseError("SSE stream: a single line exceeds 16 MiB without a line break")
        if b"\r" not in chunk:  # LF line ends only (the buffer never keeps a CR): split once
            if b"\n" in chunk:
                *lines, rest = bytes(self._buf).split(b"\n")
                self._buf = bytearray(rest)
                for line in lines:
                    msg = self._line(line)
                    if msg is not None:
                        out.append(msg)
            return out
        self._scan(out)
        return out

    def _scan(self, out: list[SSEMessage]) -> None:
        """Take every complete line out of the buffer (LF, CRLF or CR line ends)."""
        while True:
            idx_n = self._buf.find(b"\n")
            idx_r = self._buf.find(b"\r")
            if idx_n < 0 and idx_r < 0:
                break
            if idx_r >= 0 and (idx_n < 0 or idx_r < idx_n):
                line = bytes(self._buf[:idx_r])
                if idx_r + 1 < len(self._buf):
                    cut = idx_r + 2 if self._buf[idx_r + 1 : idx_r + 2] == b"\n" else idx_r + 1
                else:
                    cut = idx_r + 1
                    self._pending_cr = True
                del self._buf[:cut]
            else:
                line = bytes(self._buf[:idx_n])
                del self._buf[: idx_n + 1]
            msg = self._line(line)
            if msg is not None:
                out.append(msg)

    def _line(self, raw: bytes) -> SSEMessage | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedResponseError(f"SSE stream: line is not UTF-8: {raw[:80]!r}") from e
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self._max_event:
                raise MalformedResponseError(
                    f"SSE stream: one event's data lines exceed {self._max_event} characters without a blank line"
                    " ending the event"
                )
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEMessage | None:
        if not self._data and self._event is None:
            return None
        msg = _new_message(self._event, "\n".join(self._data), self._id, self._retry)
        self._event = None
        self._data = []
        self._data_size = 0
        self._retry = None
        return msg

    def close(self) -> list[SSEMessage]:
        """End of body: a final event without its blank line is still dispatched (lenient, like browsers
        are not; providers' own SDKs accept it). The caller decides whether the stream was complete."""
        out: list[SSEMessage] = []
        if self._buf:
            msg = self._line(bytes(self._buf))
            self._buf.clear()
            if msg is not None:
                out.append(msg)
        msg = self._dispatch()
        if msg is not None:
            out.append(msg)
        return out


class NDJSONDecoder:
    """Newline-delimited JSON (Ollama): yields each complete line's text; blank lines are skipped."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        self._buf += chunk
        if len(self._buf) > _MAX_BUFFER:
            raise MalformedResponseError("NDJSON stream: a single line exceeds 16 MiB")
        out: list[str] = []
        while True:
            idx = self._buf.find(b"\n")
            if idx < 0:
                break
            line = bytes(self._buf[:idx]).strip()
            del self._buf[: idx + 1]
            if line:
                out.append(line.decode("utf-8", "replace"))
        return out

    def close(self) -> list[str]:
        rest = bytes(self._buf).strip()
        self._buf.clear()
        return [rest.decode("utf-8", "replace")] if rest else []
