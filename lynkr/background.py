"""Background tasks (flush, refresh and sweep loops): how they end."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (None: not started) and wait until each has ended; their cancellation is no error."""
    started = [t for t in tasks if t is not None]
    for task in started:
        task.cancel()
    for task in started:
        with contextlib.suppress(asyncio.CancelledError):
            await task
