"""Every request's timers on one loop timer.

Each model request has a deadline for its backend's first answer, and each stream a watchdog (pings, idle
timeout). Nearly all of them are cancelled long before they are due. One loop timer per timer cost a
``TimerHandle`` and a libuv timer to start and to stop, and ``asyncio.timeout`` two more system calls on
Python 3.11 (``get_running_loop`` and ``current_task`` each call ``getpid``). Here a timer is an entry in
a heap: starting one is a ``heappush``, cancelling one a flag. The loop timer is armed for the earliest
entry only, and cancelled entries are swept out once they outnumber the live ones.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any


class Timer:
    """One entry: ``callback()`` at ``when`` (loop time) unless cancelled first."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False


class Timers:
    """The timers of one event loop. ``call_at``/``call_later`` as the loop's own, plus ``deadline``."""

    __slots__ = ("_armed", "_at", "_cancelled", "_heap", "_order", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()  # ties run in the order they were set, and never compare Timers
        self._armed: asyncio.TimerHandle | None = None
        self._at = math.inf
        self._cancelled = 0

    def call_at(self, when: float, callback: Callable[[], Any]) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        if when < self._at:
            self._arm(when)
        return timer

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer:
        return self.call_at(self.loop.time() + delay, callback)

    def cancel(self, timer: Timer) -> None:
        if not timer.cancelled:
            timer.cancelled = True
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled > len(self._heap) // 2:
                self._sweep()

    def deadline(self, seconds: float, task: asyncio.Task[Any]) -> Deadline:
        """``with timers.deadline(s, task):`` raises TimeoutError in ``task`` after ``s`` seconds, as
        ``asyncio.timeout(s)`` does (the task is cancelled; the cancellation becomes the TimeoutError)."""
        return Deadline(self, seconds, task)

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled

    def _arm(self, when: float) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._at = when
        self._armed = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._armed, self._at = None, math.inf
        heap, now = self._heap, self.loop.time()
        due: list[Timer] = []
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if timer.cancelled:
                self._cancelled -= 1
            else:
                timer.cancelled = True  # it has run: a later cancel() is a no-op
                due.append(timer)
        if heap:
            self._arm(heap[0][0])
        for timer in due:
            try:
                timer.callback()
            except Exception as exc:  # as the loop's own timers: one callback's error is its own
                self.loop.call_exception_handler({"message": "timer callback failed", "exception": exc})

    def _sweep(self) -> None:
        self._heap = [entry for entry in self._heap if not entry[2].cancelled]
        heapq.heapify(self._heap)
        self._cancelled = 0
        if not self._heap and self._armed is not None:
            self._armed.cancel()
            self._armed, self._at = None, math.inf


class Deadline:
    """See ``Timers.deadline``. ``expired`` once it has fired."""

    __slots__ = ("_cancelling", "_task", "_timer", "_timers", "expired")

    def __init__(self, timers: Timers, seconds: float, task: asyncio.Task[Any]) -> None:
        self._timers, self._task, self.expired = timers, task, False
        self._cancelling = task.cancelling()
        self._timer = timers.call_later(seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self._timers.cancel(self._timer)
        # as asyncio.timeout: the cancellation is ours to turn into TimeoutError unless another came too
        if self.expired and self._task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
            raise TimeoutError from exc


_timers: Timers | None = None


def timers_of(loop: asyncio.AbstractEventLoop) -> Timers:
    """The timers of ``loop`` (one loop per process serves requests; tests make a loop each)."""
    global _timers
    if _timers is None or _timers.loop is not loop:
        _timers = Timers(loop)
    return _timers
