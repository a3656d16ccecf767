"""Taking from an async generator everything it can give *without waiting*, in one go.

A translated stream yields several events per upstream read (``message_start``,
``content_block_start`` and a delta from one chunk; twenty deltas when a read carries twenty
chunks). Writing each one to the socket separately costs a system call and aiohttp's chunked
framing per event — about a third of the proxy's CPU. ``next_batch`` drives the generator one step
at a time and stops at the first step that would suspend (wait for I/O), handing back what it
has so far plus the pending step, so the caller writes one batch and then awaits the rest.

``Stepped`` makes any async generator a ``lynkr.batched.Batched`` stream this way, so the stream writer has
one loop. Streams that know their reads (translated OpenAI and Ollama streams, passed-through Chat
Completions) are ``Batched`` themselves and need none of this.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Generator
from typing import Any, Generic, TypeVar

from lynkr.batched import Batched

T = TypeVar("T")


class Pending(Generic[T]):
    """A step of the generator that would wait; ``await pending`` finishes it."""

    __slots__ = ("_future", "_step")

    def __init__(self, step: Generator[Any, Any, T], future: Any) -> None:
        self._step = step
        self._future = future

    def __await__(self) -> Generator[Any, Any, T]:
        return _finish(self._step, self._future)

    def close(self) -> None:
        """Abandon the step: it is ended inside the generator (so ``aclose`` works afterwards)."""
        with contextlib.suppress(GeneratorExit, StopIteration, StopAsyncIteration, RuntimeError):
            self._step.throw(GeneratorExit)


def _finish(step: Generator[Any, Any, T], future: Any) -> Generator[Any, Any, T]:
    """Hand the step's future to the event loop and keep driving the step until it returns."""
    while True:
        try:
            value = yield future
        except BaseException as exc:  # cancellation and the like go to the generator, as with await
            try:
                future = step.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        else:
            try:
                future = step.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]


def next_batch(events: AsyncGenerator[T, None], out: list[T], limit: int = 64) -> Pending[T] | None:
    """Append to ``out`` the items ``events`` yields without suspending (at most ``limit``).

    Returns None when the generator is exhausted, else the pending step to await: its result is
    the next item, or it raises StopAsyncIteration when the generator ends after that wait. What
    the generator raises is raised here, or, when items came before it, by awaiting the pending
    step (so those items are written first)."""
    for _ in range(limit):
        step = anext(events).__await__()
        try:
            future = step.send(None)
        except StopIteration as stop:
            out.append(stop.value)
            continue
        except StopAsyncIteration:
            return None
        except Exception as exc:
            if not out:
                raise
            return Pending(_raising(exc), None)  # the items before the failure go out first
        return Pending(step, future)
    return Pending(_ready_step(events), None)


def _raising(exc: Exception) -> Generator[Any, Any, Any]:
    raise exc
    yield  # a generator, so that awaiting it raises


def _ready_step(events: AsyncGenerator[T, None]) -> Generator[Any, Any, T]:
    return anext(events).__await__()


class Stepped(Batched[T]):
    """An async generator read as a ``Batched`` stream: each batch is what it gives without waiting
    (``next_batch``), after one wait for its first item. ``ended`` is known before the last batch goes out."""

    __slots__ = ("_events", "_pending")

    def __init__(self, events: AsyncGenerator[T, None]) -> None:
        super().__init__()
        self._events = events
        self._pending: Pending[T] | None = None

    def ready(self) -> list[T]:
        """What the generator gives now, without waiting (the first time; then what a read gave is taken)."""
        out: list[T] = []
        if not self.ended and self._pending is None:
            self._step(out)
        return out

    async def read_batch(self) -> list[T] | None:
        while not self.ended:
            out: list[T] = []
            pending, self._pending = self._pending, None
            if pending is not None:
                try:
                    out.append(await pending)
                except StopAsyncIteration:  # it ended after a wait (a backend's EOF in a read of its own)
                    self.ended = True
                    return None
            self._step(out)
            if out:
                return out
        return None

    def _step(self, out: list[T]) -> None:
        self._pending = next_batch(self._events, out)
        self.ended = self._pending is None

    async def aclose(self) -> None:
        self.ended = True
        if self._pending is not None:
            self._pending.close()
            self._pending = None
        await self._events.aclose()
