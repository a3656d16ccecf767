"""Serving the app until a signal, then draining: the gateway's process lifecycle.

First SIGTERM/SIGINT: ``/health/ready`` answers 503 at once, the listening socket closes (no new
connections), new requests on open connections get a 503 in their dialect, and in-flight requests
and streams run to completion for up to ``GRACEFUL_SHUTDOWN_TIMEOUT``; then resources close.
A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal

from aiohttp import web
from loguru import logger

from lynkr.server.keys import SETTINGS, SHEDDER, STATE

# After the drain, handlers still running get this long (never more than the drain's own timeout) before
# aiohttp cancels them: the drain has already waited, and waiting GRACEFUL_SHUTDOWN_TIMEOUT again (aiohttp
# waits its shutdown_timeout twice: for handlers to finish, then for them to cancel) would overrun it.
AFTER_DRAIN = 2.0


def tune_gc() -> None:
    """A request allocates thousands of objects (a Claude Code request parses into ~5,000), so CPython's
    default collector (a young-generation pass every 700 allocations, full passes that walk every object
    lynkr ever loaded) ran several times per request and cost ~15% of the CPU under load (py-spy). The
    objects made at startup are frozen out of collection and passes run less often; a request's
    garbage is freed by reference counting either way."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


async def serve(app: web.Application, host: str, port: int, *, reuse_port: bool = False) -> None:
    """``reuse_port``: several processes share the port (``lynkr start --workers N``)."""
    settings = app[SETTINGS]
    budget = settings.graceful_shutdown_timeout / 1000
    # not 0: aiohttp reads a shutdown_timeout of 0 as "no timeout"
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=max(0.1, min(AFTER_DRAIN, budget)))
    await runner.setup()
    # backlog: aiohttp's default (128) drops connections when an agent fleet connects at once (measured:
    # 1,000 streams opened within a second lost 5,115 SYNs and waited up to 15 s for first bytes)
    site = web.TCPSite(runner, host, port, reuse_address=True, reuse_port=reuse_port or None, backlog=4096)
    await site.start()
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            logger.warning("second {}: exiting now", signal.Signals(signum).name)
            os._exit(1)
        app[STATE]["draining"] = True
        logger.info("{}: draining ({} in flight, up to {:g} s); signal again to force exit",
                    signal.Signals(signum).name, app[SHEDDER].active, budget)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await stop.wait()
        await site.stop()  # no new connections
        shedder = app[SHEDDER]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(budget):
                await shedder.idle.wait()
        if shedder.active:
            logger.warning("{} requests still running at the drain timeout; ending them", shedder.active)
            tasks = shedder.abort()  # each ends with an error in its dialect: a stream gets an error event
            if tasks:
                await asyncio.wait(tasks, timeout=AFTER_DRAIN)
    finally:
        await runner.cleanup()
