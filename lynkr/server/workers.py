"""``lynkr start --workers N``: N processes, each its own app and event loop, sharing one port.

Every worker binds the port with SO_REUSEPORT (the kernel spreads connections across them). Workers are
started fresh (the ``spawn`` method: no state inherited from this process) in their own process group,
so a Ctrl-C reaches this supervisor only; it forwards SIGTERM/SIGINT to every worker, which drains as a
single lynkr does. A worker that dies unexpectedly is restarted (at most ``MAX_RESTARTS`` per minute).

Workers share the SQLite store (WAL; each process has its own writer connection, busy_timeout between
them). Rate-limit buckets, budget counters, the answer cache and breaker state are shared only through
Redis (LYNKR_REDIS_URL); without it each worker keeps its own buckets and breakers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.process import BaseProcess
from typing import Any

from loguru import logger

from lynkr.config import Settings

MAX_RESTARTS = 5


def _worker(settings: Settings, index: int) -> None:
    os.setpgrp()  # the terminal's Ctrl-C goes to the supervisor, which forwards it once
    from lynkr.cli.start import configure_logging, run_loop

    configure_logging(settings)
    logger.info("worker {} (pid {}) serving {}:{}", index, os.getpid(), settings.host, settings.port)
    run_loop(settings, reuse_port=True)


def run_workers(settings: Settings, count: int) -> int:
    ctx = multiprocessing.get_context("spawn")
    workers: dict[int, BaseProcess] = {}
    restarts: list[float] = []
    stopping = False

    def spawn(index: int) -> None:
        proc = ctx.Process(target=_worker, args=(settings, index), name=f"lynkr-worker-{index}", daemon=False)
        proc.start()
        workers[index] = proc

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        logger.info("{}: stopping {} workers", signal.Signals(signum).name, len(workers))
        for proc in workers.values():
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for i in range(count):
        spawn(i)
    if not settings.lynkr_redis_url:
        logger.warning("{} workers without LYNKR_REDIS_URL: each keeps its own rate-limit buckets, cache front and "
                       "breakers (budgets are shared through SQLite)", count)
    status = 0
    while workers:
        for index, proc in list(workers.items()):
            proc.join(timeout=0.2)
            if proc.exitcode is None:
                continue
            del workers[index]
            if stopping:
                continue
            logger.error("worker {} exited with {}", index, proc.exitcode)
            now = time.monotonic()
            restarts[:] = [t for t in restarts if now - t < 60] + [now]
            if len(restarts) > MAX_RESTARTS:
                logger.error("workers keep dying ({} restarts in a minute); stopping", MAX_RESTARTS)
                status = 1
                forward(signal.SIGTERM, None)
                continue
            spawn(index)
    return status
