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

from lynkr.batched import Batched
from lynkr.dispatch import StreamOutcome
from lynkr.errors import ABORTED, LynkrError, ShuttingDown, UpstreamError, UpstreamTimeout
from lynkr.observability.record import current_record
from lynkr.resilience.deadlines import Timer, timers_of
from lynkr.server.batching import Stepped
from lynkr.server.keys import REQUEST_ID, SHEDDER

T = TypeVar("T")
EncodeError = Callable[[LynkrError], bytes]

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class EventStreamResponse(web.StreamResponse):
    """A streamed answer whose headers go out with its first write, not in a packet (and a system call) of
    their own, as aiohttp's ``web.Response`` does: the writer writes the first batch as soon as the response
    is prepared. (The end of the body stays a write of its own: written with the last batch, a client that
    stops reading at the very end would leave the writer no clean way to end the stream.)"""

    _send_headers_immediately = False


class _Watchdog:
    """Pings the client after ``ping_interval`` without a write, and cancels the writer after
    ``idle_timeout`` without a backend event (it then ends the stream with an error event). A timer
    (``lynkr.resilience.deadlines``), re-armed only when it fires: the per-event cost is two timestamps; a
    task per stream cost a task switch to start and another to cancel."""

    __slots__ = ("_loop", "_ping_task", "_timer", "_timers", "idle_timeout", "last_event", "last_write", "ping",
                 "ping_interval", "resp", "timed_out", "writer")

    def __init__(self, loop: asyncio.AbstractEventLoop, resp: web.StreamResponse, writer: asyncio.Task[Any],
                 ping: bytes | None, ping_interval: float, idle_timeout: float | None) -> None:
        self._loop, self._timers = loop, timers_of(loop)
        self.resp, self.writer = resp, writer
        self.ping, self.ping_interval, self.idle_timeout = ping, ping_interval, idle_timeout
        self.last_write = self.last_event = loop.time()
        self.timed_out = False
        self._ping_task: asyncio.Task[None] | None = None
        self._timer: Timer | None = None
        self._arm()

    def _arm(self) -> None:
        next_ping = self.last_write + self.ping_interval if self.ping else float("inf")
        deadline = self.last_event + self.idle_timeout if self.idle_timeout else float("inf")
        self._timer = self._timers.call_at(min(next_ping, deadline), self._fire)

    def _fire(self) -> None:
        now = self._loop.time()
        if self.idle_timeout and now >= self.last_event + self.idle_timeout:
            self.timed_out = True
            self.writer.cancel()
            return
        if self.ping and now >= self.last_write + self.ping_interval and self._ping_task is None:
            self._ping_task = self._loop.create_task(self._send_ping(self.ping))
            return  # re-armed once the ping is written
        self._arm()

    async def _send_ping(self, frame: bytes) -> None:
        try:
            await self.resp.write(frame)
        except (ConnectionResetError, asyncio.CancelledError):
            return
        self.last_write = self._loop.time()
        self._ping_task = None
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timers.cancel(self._timer)
        if self._ping_task is not None:
            self._ping_task.cancel()


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
    outcome: StreamOutcome[T] | None = None,
) -> web.StreamResponse:
    """Write ``first`` and then ``events`` as SSE; the caller has already awaited ``first``.

    A timer per stream (``_Watchdog``) sends the pings and enforces ``idle_timeout`` (by cancelling the
    writer), so the per-event cost is a write and a timestamp. ``outcome`` (the dispatcher's) sees every
    item and hears how the backend's stream ended: its end, its error, or its silence."""
    observe = outcome.observe if outcome is not None else None
    if observe is not None:
        observe([first])  # before anything can fail: the first event carries the input tokens
    rid = request.get(REQUEST_ID)
    resp = EventStreamResponse(status=200, headers={**SSE_HEADERS, **headers, **({"X-Request-ID": rid} if rid else {})})
    await resp.prepare(request)
    shedder = request.app[SHEDDER]
    shedder.streams += 1  # till the finally below: nothing awaits in between
    loop = request.task.get_loop()
    task = asyncio.current_task(loop)  # with the loop given: no getpid system call (Python 3.11)
    watch = _Watchdog(loop, resp, task, ping, ping_interval, idle_timeout) if task and (ping or idle_timeout) \
        else None
    record = current_record.get()
    # a stream that does not know its reads is stepped: what it gives without waiting comes at once
    stream = events if isinstance(events, Batched) else Stepped(events)
    waiting = False  # on the backend (not on a write the client is slow to take): a timeout then is its stall
    try:
        if record is not None:
            record.stream = True
            record.first_byte = time.perf_counter()
        # events come in runs (several per upstream read): each run goes out in one write, the first
        # one with the response headers
        batch: list[T] | None = [first, *stream.ready()]  # the rest of the first read
        seen = 1  # items already observed
        while batch is not None:
            if observe is not None and len(batch) > seen:
                observe(batch[seen:] if seen else batch)
            seen = 0
            ended = stream.ended
            if ended and outcome is not None:
                outcome.ended()  # the backend's stream is over, whatever happens to the last write
            await resp.write(b"".join([encode(item) for item in batch]))
            if watch is not None:
                watch.last_event = watch.last_write = loop.time()
            if ended:
                break
            waiting = True
            batch = await stream.read_batch()
            waiting = False
            if batch is None and outcome is not None:  # it ended after a wait, with nothing more to say
                outcome.ended()
    except ConnectionResetError:
        logger.info("client closed the stream early [{}]", request.get(REQUEST_ID))
    except asyncio.CancelledError:
        if task is None:
            raise
        if watch is not None and watch.timed_out:
            task.uncancel()
            if outcome is not None and waiting:
                outcome.stalled()
            who = headers.get("X-Lynkr-Provider") or "the backend"
            await _write_quietly(resp, encode_error(UpstreamTimeout(
                f"{who} went silent for {idle_timeout:g} s mid-answer (STREAM_IDLE_TIMEOUT_MS)",
                provider=headers.get("X-Lynkr-Provider", ""))))
        elif shedder.aborting:
            task.uncancel()  # the drain's time ran out (LoadShedder.abort): end the stream with an error event
            await _write_quietly(resp, encode_error(ShuttingDown(ABORTED, retry_after=2)))
        else:
            raise
    except LynkrError as err:
        if outcome is not None and isinstance(err, UpstreamError):
            outcome.failed(err)
        await _write_quietly(resp, encode_error(err))
    except Exception:
        logger.opt(exception=True).error("stream failed [{}]", request.get(REQUEST_ID))
        await _write_quietly(resp, encode_error(LynkrError("internal error in lynkr while streaming")))
    finally:
        shedder.streams -= 1
        if outcome is not None:
            outcome.release()
        if watch is not None:
            watch.stop()
        await stream.aclose()
    return resp


async def _write_quietly(resp: web.StreamResponse, frame: bytes) -> None:
    with contextlib.suppress(ConnectionResetError):
        await resp.write(frame)
