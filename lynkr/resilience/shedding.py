"""Load shedding: refuse new model requests quickly when lynkr is saturated, before it falls over.

Model endpoints only; health and metrics are never shed. Refusals come in the caller's dialect
(Anthropic 529 ``overloaded_error``, OpenAI 503) with ``retry-after``, which every coding agent
honours. Memory is read from /proc at most once a second.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from lynkr.errors import Overloaded

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def memory_limit_bytes() -> int | None:
    """The cgroup memory limit when there is one, else the machine's memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                value = f.read().strip()
            if value.isdigit() and int(value) < 1 << 60:
                return int(value)
        except OSError:
            continue
    try:
        return os.sysconf("SC_PHYS_PAGES") * _PAGE
    except (ValueError, OSError, AttributeError):
        return None


@dataclass
class LoadShedder:
    max_active: int = 0  # 0: no limit
    memory_fraction: float = 0.0  # 0: no limit; else the share of the memory limit lynkr may hold
    retry_after: int = 5
    active: int = 0
    shed: int = 0
    streams: int = 0  # streamed answers being written (counted by lynkr.server.streaming)
    _limit: int | None = field(default=None, repr=False)
    _checked: float = 0.0
    _over_memory: bool = False

    idle: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # set while nothing is in flight
    tasks: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)  # the requests in flight
    aborting: bool = False  # the drain ran out of time: the requests still in flight are being ended

    def __post_init__(self) -> None:
        if self.memory_fraction > 1:  # accept 85 as well as 0.85
            self.memory_fraction /= 100
        self._limit = memory_limit_bytes() if self.memory_fraction else None
        self.idle.set()

    def enter(self, task: asyncio.Task[Any] | None = None) -> None:
        """Admit one request, running in ``task`` (or raise Overloaded)."""
        self.check()
        self.active += 1
        self.idle.clear()
        if task is not None:
            self.tasks.add(task)

    def leave(self, task: asyncio.Task[Any] | None = None) -> None:
        self.active -= 1
        if not self.active:
            self.idle.set()
        if task is not None:
            self.tasks.discard(task)

    def abort(self) -> set[asyncio.Task[Any]]:
        """End every request in flight (the drain's time is up): each is cancelled, and ends with an error
        in its dialect (``aborting`` tells the handlers the cancellation is this). Returns their tasks."""
        self.aborting = True
        tasks = set(self.tasks)
        for task in tasks:
            task.cancel()
        return tasks

    def check(self) -> None:
        """Raise Overloaded when a new request must be refused."""
        if self.max_active and self.active >= self.max_active:
            self.shed += 1
            raise Overloaded(f"lynkr is at its limit of {self.max_active} concurrent requests; retry shortly",
                             retry_after=self.retry_after)
        if self._limit and self._memory_high():
            self.shed += 1
            raise Overloaded("lynkr is near its memory limit; retry shortly", retry_after=self.retry_after)

    def _memory_high(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            rss = rss_bytes()
            self._over_memory = bool(rss and self._limit and rss > self._limit * self.memory_fraction)
        return self._over_memory

    def snapshot(self) -> dict[str, object]:
        rss = rss_bytes()
        return {"activeRequests": self.active, "totalShed": self.shed, "rssBytes": rss,
                "thresholds": {"activeRequests": self.max_active or None,
                               "memoryFraction": self.memory_fraction or None, "memoryLimitBytes": self._limit}}
