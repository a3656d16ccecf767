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
from typing import TypeVar

from aiohttp import web
from loguru import logger

from lynkr.errors import LynkrError, UpstreamTimeout
from lynkr.observability.record import current_record
from lynkr.resilience.shedding import ABORTED, ShuttingDown
from lynkr.server.keys import REQUEST_ID, SHEDDER

T = TypeVar("T")
EncodeError = Callable[[LynkrError], bytes]

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


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
    """Write ``first`` and then ``events`` as SSE; the caller has already awaited ``first``."""
    resp = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    last_write = loop.time()
    pinger = asyncio.create_task(_pings(resp, ping, ping_interval, lambda: last_write)) if ping else None
    record = current_record.get()
    try:
        await resp.write(encode(first))
        last_write = loop.time()
        if record is not None:
            record.stream = True
            record.first_byte = time.perf_counter()
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    ev = await anext(events)
            except StopAsyncIteration:
                break
            except TimeoutError:
                who = headers.get("X-Lynkr-Provider") or "the backend"
                raise UpstreamTimeout(f"{who} went silent for {idle_timeout:g} s mid-answer "
                                      "(STREAM_IDLE_TIMEOUT_MS)", provider=headers.get("X-Lynkr-Provider", "")
                                      ) from None
            await resp.write(encode(ev))
            last_write = loop.time()
        if tail:
            await resp.write(tail)
    except ConnectionResetError:
        logger.info("client closed the stream early [{}]", request.get(REQUEST_ID))
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not request.app[SHEDDER].aborting or task is None:
            raise
        task.uncancel()  # the drain's time ran out (LoadShedder.abort): end the stream with an error event
        await _write_quietly(resp, encode_error(ShuttingDown(ABORTED, retry_after=2)))
    except LynkrError as err:
        await _write_quietly(resp, encode_error(err))
    except Exception:
        logger.opt(exception=True).error("stream failed [{}]", request.get(REQUEST_ID))
        await _write_quietly(resp, encode_error(LynkrError("internal error in lynkr while streaming")))
    finally:
        if pinger:
            pinger.cancel()
        await events.aclose()
    return resp


async def _pings(resp: web.StreamResponse, frame: bytes, interval: float, last: Callable[[], float]) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            wait = interval - (loop.time() - last())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await resp.write(frame)
            await asyncio.sleep(interval)
    except (ConnectionResetError, asyncio.CancelledError):
        return


async def _write_quietly(resp: web.StreamResponse, frame: bytes) -> None:
    with contextlib.suppress(ConnectionResetError):
        await resp.write(frame)
