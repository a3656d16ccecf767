"""Reading a backend's streamed body: SSE (as JSON payloads, or as checked bytes passed through) and NDJSON.

Each reader is ``Batched`` (``lynkr.batched``): one by one with ``async for``, or a read of the body at a time
with ``read_batch``, which a translator (``lynkr.convert.translated``) and the stream writer prefer. The
reader owns the connection once it is given the call that opens it (``lynkr.providers.http.post``).
"""

from __future__ import annotations

import contextlib
import re
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import aiohttp
import orjson

from lynkr.batched import Batched
from lynkr.errors import UpstreamBadResponse
from lynkr.providers.http import Answer, opened
from lynkr.sse import NDJSONDecoder, SSEDecoder

T = TypeVar("T")
# events of one data line each, holding an object or [DONE]: what backends send, checked in one C call per read
_PLAIN_EVENTS = re.compile(rb"(?:data: (?:\{.*\}|\[DONE\])\n\n)*")  # "." stops at LF: one line


def sse_json(answer: Answer, provider: str) -> SSEJson:
    """The JSON payloads of an SSE response, until ``[DONE]`` or the end of the body (``SSEJson``)."""
    return SSEJson(answer, provider)


def sse_passthrough(answer: Answer, provider: str, inspect: Callable[[Any], None] | None = None,
                    worth: Worth | None = None) -> SSEPassthrough:
    """An SSE response's bytes unchanged, whole events only, each checked (``SSEPassthrough``)."""
    return SSEPassthrough(answer, provider, inspect, worth)


def ndjson(answer: Answer, provider: str) -> NDJSON:
    """The objects of a newline-delimited JSON response (``NDJSON``)."""
    return NDJSON(answer, provider)


class _BodyReader(Batched[T]):
    """A backend's streamed body, read a batch at a time. ``answer`` is a response, or the request that opens
    one (``post(...)``): the reader then owns the connection, opened on the first read and released at the
    end, on a failure (mapped to lynkr's errors by the call; data that is not JSON is
    ``UpstreamBadResponse``) or by ``aclose``. Subclasses say what a read gives (``_take``) and what the end
    of the body gives (``_rest``): plain methods, so a read costs no coroutine frame beyond ``read_batch``."""

    __slots__ = ("_opened", "_provider", "_released", "_resp")
    _unit = "stream event"  # what a body is made of, for the message when one is not JSON

    def __init__(self, answer: Answer, provider: str) -> None:
        super().__init__()
        self._opened = opened(answer)
        self._provider = provider
        self._resp: aiohttp.ClientResponse | None = None
        self._released = False  # the connection went back (or was closed)

    @abstractmethod
    def _take(self, chunk: bytes) -> list[T]:
        """The items this read completes, with what was held back (none: read on); sets ``ended`` when the
        body says it is over (``[DONE]``)."""

    @abstractmethod
    def _rest(self) -> list[T]:
        """The items the end of the body completes."""

    async def read_batch(self) -> list[T] | None:
        """The items the next read of the body completes (at least one), or None at the end (the connection
        then goes back)."""
        if self.ended:
            return None
        resp = self._resp if self._resp is not None else await self._open()
        try:
            read = resp.content.readany  # b"" at the end
            while chunk := await read():
                if (batch := self._take(chunk)) or self.ended:
                    return batch or None
            self.ended = True
            return self._rest() or None
        except BaseException as exc:
            await self._failed(exc)
        finally:
            if self.ended:  # [DONE], or the end of the body: the connection goes back
                await self._release()

    async def _open(self) -> aiohttp.ClientResponse:
        try:
            self._resp = await self._opened.__aenter__()
        except BaseException:
            self.ended = self._released = True
            raise
        return self._resp

    async def _failed(self, exc: BaseException) -> NoReturn:
        self.ended = self._released = True
        if isinstance(exc, orjson.JSONDecodeError):
            exc = UpstreamBadResponse(f"{self._provider} sent a {self._unit} that is not JSON ({exc})",
                                      provider=self._provider)
        await self._opened.__aexit__(type(exc), exc, exc.__traceback__)  # raises a foreign failure mapped
        raise exc from None

    async def _release(self) -> None:
        if not self._released:
            self._released = True
            if self._resp is not None:
                await self._opened.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Stop reading: the connection goes back (unread, it is closed rather than reused)."""
        self.ended = True
        await self._release()

    def __del__(self) -> None:
        # dropped unread (a wrapper that does not close what it reads): the connection is closed now, as an
        # async generator's finalizer would have done, not whenever aiohttp's response is collected
        if not self._released and self._resp is not None:
            with contextlib.suppress(Exception):  # at interpreter exit the loop may be gone
                self._resp.close()


class SSEJson(_BodyReader[Any]):
    """The JSON payloads of an SSE response, until ``[DONE]`` or the end of the body. A provider hands its
    translator this reader directly, with no layer of its own.

    As in ``SSEPassthrough``: streams whose lines end in LF are cut at blank lines with bytes operations and
    each event's data goes to ``orjson`` as bytes; a CR (or a byte order mark first) switches the rest of the
    stream to the full decoder (``lynkr.sse``)."""

    __slots__ = ("_decoder", "_held", "_started")

    def __init__(self, answer: Answer, provider: str) -> None:
        super().__init__(answer, provider)
        self._decoder: SSEDecoder | None = None
        self._held = b""
        self._started = False

    def _take(self, chunk: bytes) -> list[Any]:
        out: list[Any] = []
        if self._decoder is None:
            buf = self._held + chunk if self._held else chunk
            if (events := _cut_events(buf, self._started)) is not None:
                whole, self._held = events
                if not whole:
                    return out
                self._started = True
                for block in whole[:-2].split(b"\n\n"):
                    # the usual event, one data line, inline (this runs for every event); the rest in full
                    data: bytes | None = block[6:] if block.startswith(b"data: ") and block.find(b"\n") < 0 \
                        else _block_data(block)
                    if data:
                        if data == b"[DONE]":
                            self.ended = True
                            break
                        out.append(orjson.loads(data))
                return out
            # from here on: the full decoder; held starts at an event boundary
            self._decoder = SSEDecoder(bom=not self._started)
            chunk, self._held = buf, b""
        for ev in self._decoder.feed(chunk):
            if text := ev.data:
                if text == "[DONE]":
                    self.ended = True
                    break
                out.append(orjson.loads(text))
        return out

    def _rest(self) -> list[Any]:
        rest = self._decoder.close() if self._decoder is not None \
            else SSEDecoder(bom=not self._started).feed(self._held + b"\n\n") if self._held else []
        return [ev.json() for ev in rest if ev.data and ev.data != "[DONE]"]


class SSEPassthrough(_BodyReader[bytes]):
    """An SSE response's bytes unchanged, for a client of the same dialect, but only whole events, each one's
    data checked (JSON, or ``[DONE]``): a backend that sends garbage, or drops the connection mid-event, raises
    ``UpstreamBadResponse`` before the client sees a byte of it, so the client never gets half an event or an
    error frame glued to one. ``inspect`` sees each event's JSON and may raise (an in-band error event).
    ``worth``, when given, is found in the data of the events worth decoding (those that may carry usage or
    an error): the others are only checked to be one JSON object (``{...}``), not decoded. A read of plain
    events (one ``data:`` line each) is checked by one regular expression, and searched for ``worth`` once,
    not event by event. Each batch is one block of bytes: the whole events one read completes.

    Streams whose lines end in LF (every backend lynkr knows) are cut at blank lines with bytes operations
    only; a CR anywhere switches the rest of the stream to the full decoder (``lynkr.sse``)."""

    __slots__ = ("_decoder", "_held", "_inspect", "_sent", "_worth")

    def __init__(self, answer: Answer, provider: str, inspect: Callable[[Any], None] | None = None,
                 worth: Worth | None = None) -> None:
        super().__init__(answer, provider)
        self._inspect, self._worth = inspect, worth
        self._decoder: SSEDecoder | None = None
        self._held = b""
        self._sent = False

    def _take(self, chunk: bytes) -> list[bytes]:
        inspect, worth = self._inspect, self._worth
        if self._decoder is None:
            buf = self._held + chunk if self._held else chunk
            if (events := _cut_events(buf, self._sent)) is not None:
                whole, self._held = events
                if not whole:
                    return []
                if worth is not None and _PLAIN_EVENTS.fullmatch(whole):
                    _check_worth(whole, worth, inspect)
                else:
                    for block in whole.split(b"\n\n"):
                        if block:
                            _check_block(block, inspect, worth)
                self._sent = True
                return [whole]
            # from here on: the full decoder; held starts at an event boundary
            self._decoder = SSEDecoder(bom=not self._sent)
            chunk, self._held = buf, b""
        for ev in self._decoder.feed(chunk):
            _check_event(ev.data, inspect)
        held = self._held + chunk
        cut = max(at + len(end) if (at := held.rfind(end)) >= 0 else 0 for end in _EVENT_ENDS)
        self._held = held[cut:]
        if not cut:
            return []
        self._sent = True
        return [held[:cut]]

    def _rest(self) -> list[bytes]:
        held, inspect = self._held, self._inspect
        if self._decoder is None:
            final = bool(held.strip()) and _check_block(held, inspect)
        else:
            final = False
            for ev in self._decoder.close():
                _check_event(ev.data, inspect)
                final = True
        if final:  # a final event without its blank line
            return [held]
        if not self._sent and held.strip():
            raise UpstreamBadResponse(f"{self._provider} answered a stream request with something that is not "
                                      f"an event stream: {held[:200]!r}", provider=self._provider)
        return []


class NDJSON(_BodyReader[Any]):
    """The objects of a newline-delimited JSON response (Ollama), one per line, blank lines ignored."""

    __slots__ = ("_decoder",)
    _unit = "stream line"

    def __init__(self, answer: Answer, provider: str) -> None:
        super().__init__(answer, provider)
        self._decoder = NDJSONDecoder()

    def _take(self, chunk: bytes) -> list[Any]:
        return self._decoder.feed(chunk)

    def _rest(self) -> list[Any]:
        return self._decoder.close()


class Worth:
    """What makes a passed-through event worth decoding: one of ``markers`` in its data, not followed by
    ``null`` (a stream that asks for usage has ``"usage":null`` in every chunk). Over-matching costs a decode,
    never correctness. Found with ``bytes.find``: a regular expression for the same stepped through every
    quote of a read (~7 µs for 4 kB of chunks, two finds ~3.5)."""

    __slots__ = ("markers",)

    def __init__(self, *markers: bytes) -> None:
        self.markers = markers

    def find(self, data: bytes, start: int = 0) -> int:
        """Where the first marker not followed by null is in ``data`` (from ``start``), or -1."""
        first = -1
        for marker in self.markers:
            pos = data.find(marker, start)
            while pos >= 0 and data.startswith(_NULL, pos + len(marker)):
                pos = data.find(marker, pos + len(marker))
            if pos >= 0 and (first < 0 or pos < first):
                first = pos
        return first


_NULL = (b":null", b": null")
_EVENT_ENDS = (b"\n\n", b"\r\r", b"\r\n\r\n")
_BOM = b"\xef\xbb\xbf"


def _cut_events(buf: bytes, started: bool) -> tuple[bytes, bytes] | None:
    """What is held plus a new read, cut after its last blank line: (whole events, the rest). For streams
    whose lines end in LF, with bytes operations only; None when the rest of the stream needs the full
    decoder (``lynkr.sse``): a CR in it, or a byte order mark at its very start (not yet ``started``).
    ``bytes.find``, not ``in``: CPython's bytes.__contains__ first tries its argument as an int and formats
    a TypeError message before it searches (~2,000 instructions a test, on every read)."""
    if buf.find(b"\r") >= 0 or (not started and buf[:3] == _BOM[:len(buf[:3])]):
        return None
    cut = buf.rfind(b"\n\n") + 2
    return (buf[:cut], buf[cut:]) if cut >= 2 else (b"", buf)


def _check_worth(events: bytes, worth: Worth, inspect: Callable[[Any], None] | None) -> None:
    """Decode the plain events (``_PLAIN_EVENTS``) in which ``worth`` is found; the others are well-formed."""
    pos = 0
    while (found := worth.find(events, pos)) >= 0:
        start = events.rfind(b"\n\n", 0, found)  # -1: in the first event
        end = events.find(b"\n\n", found)
        _check_event(events[start + 8 if start >= 0 else 6:end], inspect)  # after "data: "
        pos = end + 2


def _check_block(block: bytes, inspect: Callable[[Any], None] | None, worth: Worth | None = None) -> bool:
    """Check one event's data (LF line ends); False when it has no data field."""
    data = _block_data(block)
    if not data:
        return data is not None
    if worth is None or worth.find(data) >= 0 or data == b"[DONE]":
        _check_event(data, inspect)
    elif not (data[:1] == b"{" and data.rstrip()[-1:] == b"}"):
        orjson.loads(data)  # not an object: raises what a full decode would (or lets a bare JSON value pass)
    return True


def _block_data(block: bytes) -> bytes | None:
    """The data of one event cut at its blank line (LF line ends; lines joined with LF, per the spec), or
    None when it has no data field."""
    if block.startswith(b"data:") and block.find(b"\n") < 0:  # the usual event: one data line
        return block[6:] if block[5:6] == b" " else block[5:]
    lines = [b"" if line == b"data" else line[6:] if line[5:6] == b" " else line[5:]
             for line in block.split(b"\n") if line.startswith(b"data:") or line == b"data"]
    return b"\n".join(lines) if lines else None  # a bare "data" line is an empty value, per the spec


def _check_event(data: str | bytes, inspect: Callable[[Any], None] | None) -> None:
    if data and data != "[DONE]" and data != b"[DONE]":
        parsed = orjson.loads(data)
        if inspect is not None:
            inspect(parsed)
