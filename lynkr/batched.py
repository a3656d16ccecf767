"""Streams that hand out what one upstream read gives, all at once.

A backend's answer arrives a read at a time, and one read completes several items (SSE events, translated
events). ``Batched`` streams say so: ``read_batch()`` gives the items of the next read (at least one; None
at the end) and ``ready()`` those already read and not yet taken. The stream writer takes one step per
read from such a stream instead of stepping an async generator once per item (``lynkr.server.streaming``).
They are async generators too (``async for``, ``anext``, ``aclose``), so any other consumer works unchanged.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator
from typing import Any, TypeVar

T = TypeVar("T")


class Batched(AsyncGenerator[T, None]):
    """Items read but not taken wait in ``_buffer``; subclasses say how to read and how to stop."""

    __slots__ = ("_buffer", "ended")

    def __init__(self) -> None:
        self._buffer: list[T] = []
        self.ended = False  # the last items are read: what the caller holds is the end of it

    def ready(self) -> list[T]:
        """The items read and not yet taken (no waiting)."""
        out, self._buffer = self._buffer, []
        return out

    @abstractmethod
    async def read_batch(self) -> list[T] | None:
        """The items of the next read (at least one), or None at the end."""

    def __aiter__(self) -> Batched[T]:
        return self

    async def __anext__(self) -> T:
        if not self._buffer:
            batch = await self.read_batch()
            if batch is None:
                raise StopAsyncIteration
            self._buffer = batch
        return self._buffer.pop(0)

    async def asend(self, value: None) -> T:
        return await self.__anext__()

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> T:
        await self.aclose()
        raise val if val is not None else typ

    @abstractmethod
    async def aclose(self) -> None:
        """Stop: nothing more is read, and what the stream holds is let go."""
