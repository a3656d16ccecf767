"""Incremental decoders for the streaming wire formats, and the SSE encoder.

Decoders take bytes exactly as they arrive from the socket (split anywhere, even inside a UTF-8
character or between ``\\r`` and ``\\n``) and return whole events. No regex over raw SSE text: lines
are split once and fields parsed per the WHATWG event-stream rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str
    id: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data)


_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    """Server-sent events, per the WHATWG spec (comments, multi-line data, CR/LF/CRLF)."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_pending_cr", "_started")

    def __init__(self, *, bom: bool = True) -> None:
        """``bom=False``: decoding starts mid-stream, where a byte order mark is an ordinary character."""
        self._buf = b""
        self._pending_cr = False
        self._started = not bom  # a UTF-8 byte order mark may open the stream; it is not data
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:  # an empty read must not forget a CR still waiting for its LF
            return []
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        buf = self._buf + chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf  # could still be a byte order mark cut short
                return []
            self._started = True
            buf = buf.removeprefix(_BOM)
        if buf.find(b"\r") >= 0:  # not ``in``: see lynkr.providers.readers._cut_events
            if buf.endswith(b"\r"):
                self._pending_cr = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        events: list[SSEEvent] = []
        data = self._data
        for raw in lines:
            # the two lines every event has, inline (a "data:" field, the blank line that ends the event);
            # the rest through _line
            if raw.startswith(b"data:"):
                data.append(raw[6:].decode("utf-8", "replace") if raw[5:6] == b" "
                            else raw[5:].decode("utf-8", "replace"))  # bad bytes become U+FFFD, per the spec
                continue
            if raw:
                ev = self._line(raw.decode("utf-8", "replace"))
            elif data or self._event is not None:
                ev = SSEEvent(self._event, "\n".join(data), self._id)
                self._event, self._data = None, []
                data = self._data
            else:
                continue
            if ev is not None:
                events.append(ev)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line still counts."""
        events = self.feed(b"\n") if self._buf else []
        ev = self._line("")
        if ev is not None:
            events.append(ev)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data and self._event is None:
                return None
            ev = SSEEvent(self._event, "\n".join(self._data), self._id)
            self._event, self._data = None, []
            return ev
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


class NDJSONDecoder:
    """Newline-delimited JSON (Ollama): one object per line, blank lines ignored."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[Any]:
        buf = self._buf + chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        return [orjson.loads(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        rest, self._buf = self._buf, b""
        return [orjson.loads(rest)] if rest.strip() else []


def encode_sse(event: str | None, data: Any) -> bytes:
    """One SSE frame; ``data`` is JSON-encoded unless already bytes."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"
