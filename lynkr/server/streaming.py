"""Writing a translated event stream to the client: first event before headers, pings in silence.

The first event is awaited *before* the response starts (``lynkr.dispatch``), so a backend that
refuses the request still gets a real HTTP error status, a retry or a fallback. Once bytes are out,
a failure becomes an error event in the client's dialect: never a silently truncated stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from aiohttp import web
from loguru import logger

from lynkr.errors import ABORTED, LynkrError, ShuttingDown, UpstreamTimeout
from lynkr.observability.record import current_record
from lynkr.server.batching import Pending, next_batch
from lynkr.server.keys import REQUEST_ID, SHEDDER

T = TypeVar("T")
EncodeError = Callable[[LynkrError], bytes]

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class _Watch:
    """What the watchdog needs: when the client last got bytes, when the backend last sent an event."""

    __slots__ = ("last_event", "last_write", "timed_out")

    def __init__(self, now: float) -> None:
        self.last_write = self.last_event = now
        self.timed_out = False


async def stream_events(
    request: web.Request,
    first: T,
    events: AsyncGenerator[T, None],
    *,
    encode: Callable[[T], bytes],
    encode_error: EncodeError,
    ping: bytes | None,
    ping_interval: float,
    headers: dict[str, str],
    idle_timeout: float | None = None,
    tail: bytes = b"",
) -> web.StreamResponse:
    """Write ``first`` and then ``events`` as SSE; the caller has already awaited ``first``.

    One watchdog task per stream sends the pings and enforces ``idle_timeout`` (by cancelling the
    writer), so the per-event cost is a write and a timestamp."""
    resp = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    watch = _Watch(loop.time())
    task = asyncio.current_task()
    watchdog = (asyncio.create_task(_watchdog(resp, task, watch, ping, ping_interval, idle_timeout))
                if task is not None and (ping or idle_timeout) else None)
    record = current_record.get()
    pending: Pending[T] | None = None
    try:
        if record is not None:
            record.stream = True
            record.first_byte = time.perf_counter()
        # events come in runs (several per upstream read): each run goes out in one write, the first
        # one with the response headers
        items: list[T] = [first]
        while True:
            pending = next_batch(events, items)
            await resp.write(b"".join([encode(item) for item in items]))
            watch.last_event = watch.last_write = loop.time()
            items.clear()
            if pending is None:
                break
            items.append(await pending)
            pending = None
        if tail:
            await resp.write(tail)
    except ConnectionResetError:
        logger.info("client closed the stream early [{}]", request.get(REQUEST_ID))
    except asyncio.CancelledError:
        if task is None:
            raise
        if watch.timed_out:
            task.uncancel()
            who = headers.get("X-Lynkr-Provider") or "the backend"
            await _write_quietly(resp, encode_error(UpstreamTimeout(
                f"{who} went silent for {idle_timeout:g} s mid-answer (STREAM_IDLE_TIMEOUT_MS)",
                provider=headers.get("X-Lynkr-Provider", ""))))
        elif request.app[SHEDDER].aborting:
            task.uncancel()  # the drain's time ran out (LoadShedder.abort): end the stream with an error event
            await _write_quietly(resp, encode_error(ShuttingDown(ABORTED, retry_after=2)))
        else:
            raise
    except LynkrError as err:
        await _write_quietly(resp, encode_error(err))
    except Exception:
        logger.opt(exception=True).error("stream failed [{}]", request.get(REQUEST_ID))
        await _write_quietly(resp, encode_error(LynkrError("internal error in lynkr while streaming")))
    finally:
        if watchdog:
            watchdog.cancel()
        if pending is not None:
            pending.close()
        await events.aclose()
    return resp


async def _watchdog(resp: web.StreamResponse, writer: asyncio.Task[Any], watch: _Watch, ping: bytes | None,
                    ping_interval: float, idle_timeout: float | None) -> None:
    """Ping the client after ``ping_interval`` of quiet; cancel the writer after ``idle_timeout``
    without a backend event (it then ends the stream with an error event)."""
    loop = asyncio.get_running_loop()
    inf = float("inf")
    try:
        while True:
            next_ping = watch.last_write + ping_interval if ping else inf
            deadline = watch.last_event + idle_timeout if idle_timeout else inf
            now = loop.time()
            if now >= deadline:
                watch.timed_out = True
                writer.cancel()
                return
            if now >= next_ping and ping:
                await resp.write(ping)
                watch.last_write = loop.time()
                continue
            await asyncio.sleep(min(next_ping, deadline) - now)
    except (ConnectionResetError, asyncio.CancelledError):
        return


async def _write_quietly(resp: web.StreamResponse, frame: bytes) -> None:
    with contextlib.suppress(ConnectionResetError):
        await resp.write(frame)
