"""A stream translator as a pure state machine, driven over its input by one small async iterator.

``Translation.feed(item)`` turns one input item (a Chat Completions chunk, say) into the events it completes
and ``end()`` gives the closing events; neither does I/O. ``TranslatedStream`` drives one over an async input
and is an async generator of events like any other translator, so every consumer works unchanged. It can
also hand out a whole read's worth of events at once (``lynkr.batched``): when its input is read a batch at a
time too (the body readers of ``lynkr.providers.readers``), the stream writer then takes one step per upstream
read instead of one per event (``lynkr.server.streaming``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any, Protocol

from lynkr.batched import Batched
from lynkr.convert.hub import close_input

Event = dict[str, Any]


class Translation(Protocol):
    complete: bool  # the answer is whole: the rest of the input is not read

    def feed(self, item: Any) -> list[Event]: ...

    def end(self) -> list[Event]: ...


class TranslatedStream(Batched[Event]):
    """``translation`` driven over ``source``; the source is closed when the stream ends, fails or is closed
    (an input reading a backend's answer holds its connection until then)."""

    __slots__ = ("_batched", "_done", "_error", "_next", "_read", "_source", "_translation")

    def __init__(self, source: AsyncIterable[Any], translation: Translation) -> None:
        super().__init__()
        self._source = source
        self._translation = translation
        # an input read in batches also says when it has given its last (``ended``: [DONE] or the end of the
        # body), so the closing events can come with the last read's
        self._batched = source if isinstance(source, Batched) else None
        self._read = self._batched.read_batch if self._batched is not None else None
        self._next = source.__aiter__().__anext__ if self._batched is None else None
        self._error: Exception | None = None  # raised once the events before it are taken
        self._done = False  # nothing more is read: the input is closed

    async def read_batch(self) -> list[Event] | None:
        """What ``ready`` has, else the events of the input's next read (at least one); None at the end.
        A failure after some events of a read comes on the next call, once those are taken."""
        if self._buffer:
            return self.ready()
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        if self._done:
            return None
        translation = self._translation
        feed = translation.feed
        try:
            while True:
                items = await self._read() if self._read is not None else await self._one()
                out: list[Event] = []
                for item in items or ():
                    try:
                        out += feed(item)
                    except Exception as exc:
                        if not out:
                            raise
                        self._error = exc
                        await self._stop()
                        return out
                    if translation.complete:  # nothing after this counts (Ollama's done line)
                        break
                if items is None or translation.complete or (self._batched is not None and self._batched.ended):
                    out += translation.end()  # with the last read's events, when the input says it was the last
                    self.ended = True
                    await self._stop()
                    return out
                if out:
                    return out
        except BaseException:
            await self._stop()
            raise

    async def _one(self) -> list[Any] | None:
        try:
            return [await self._next()]  # type: ignore[misc]
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        """The end of the stream for whoever reads it (what was not taken is dropped); the input is closed."""
        self._buffer, self._error = [], None
        await self._stop()

    async def _stop(self) -> None:
        if not self._done:
            self._done = True
            await close_input(self._source)
