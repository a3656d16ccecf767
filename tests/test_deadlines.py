"""Request timers on one loop timer (lynkr.resilience.deadlines): they fire in order and on time, cancelled
ones never fire and are swept out, and a deadline behaves as ``asyncio.timeout`` does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lynkr.resilience.deadlines import Timers, timers_of


async def test_timers_fire_in_order_and_cancelled_ones_never() -> None:
    loop = asyncio.get_running_loop()
    timers, fired = Timers(loop), []
    now = loop.time()
    for name, at in (("c", 0.06), ("a", 0.02), ("b", 0.04), ("a2", 0.02)):  # an earlier one re-arms the timer
        timers.call_at(now + at, lambda name=name: fired.append((name, loop.time() - now)))
    gone = timers.call_at(now + 0.03, lambda: fired.append(("cancelled", 0)))
    timers.cancel(gone)
    timers.cancel(gone)  # twice is once
    await asyncio.sleep(0.15)
    assert [name for name, _ in fired] == ["a", "a2", "b", "c"]
    assert all(took >= at - 0.001 for (_, took), at in zip(fired, (0.02, 0.02, 0.04, 0.06), strict=True))
    assert len(timers) == 0


async def test_cancelled_timers_are_swept() -> None:
    timers = Timers(asyncio.get_running_loop())
    entries = [timers.call_later(60, lambda: None) for _ in range(1000)]
    for timer in entries[:-1]:
        timers.cancel(timer)
    assert len(timers) == 1 and len(timers._heap) < 200  # swept once they outnumbered the live ones
    timers.cancel(entries[-1])
    assert len(timers) == 0  # the loop timer stays armed, for the next request; when it fires it finds nothing


async def test_a_failing_callback_is_reported_and_the_others_still_run() -> None:
    loop = asyncio.get_running_loop()
    timers, fired, reported = Timers(loop), [], []
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))
    try:
        timers.call_later(0.01, lambda: 1 / 0)
        timers.call_later(0.01, lambda: fired.append(1))
        await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(None)
    assert fired == [1] and isinstance(reported[0], ZeroDivisionError)


async def test_a_deadline_is_a_timeout() -> None:
    loop = asyncio.get_running_loop()
    timers, task = timers_of(loop), asyncio.current_task()
    assert task is not None and timers_of(loop) is timers
    with pytest.raises(TimeoutError), timers.deadline(0.02, task):
        await asyncio.sleep(5)
    assert task.cancelling() == 0  # the cancellation was taken back
    with timers.deadline(0.02, task):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # a deadline left in time never fires
    assert len(timers) == 0


async def test_a_deadline_keeps_a_cancellation_that_is_not_its_own() -> None:
    timers = timers_of(asyncio.get_running_loop())
    started = asyncio.Event()

    async def waiter() -> Any:
        task = asyncio.current_task()
        assert task is not None
        with timers.deadline(10, task):
            started.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(waiter())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(timers) == 0
