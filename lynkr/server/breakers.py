"""Circuit-breaker state shared through Redis (LYNKR_REDIS_URL): when one instance opens a backend's
breaker, every instance skips that backend until the open period ends; a close (the backend answered
again) is shared the same way.

Each instance keeps its own ``CircuitBreaker`` objects (the dispatcher asks them synchronously, on the
hot path); this module swaps them for ``SharedBreaker`` (same class, plus a hook on state changes), which
publishes changes on a Redis channel and keeps the current open state under a key that expires with
it, so an instance that starts later learns it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, fields
from typing import Any

import orjson
from aiohttp import web
from loguru import logger

from lynkr.background import stop
from lynkr.resilience.breaker import CircuitBreaker
from lynkr.server.access import SHARED
from lynkr.server.keys import DISPATCHER

CHANNEL = "lynkr:breakers"


@dataclass
class SharedBreaker(CircuitBreaker):
    on_change: Callable[[SharedBreaker, str], None] | None = None
    applying: bool = False  # a change that came from another instance is not published back

    def _move(self, state: str) -> None:
        super()._move(state)
        if self.on_change is not None and not self.applying:
            self.on_change(self, state)

    def apply(self, state: str, remaining: float) -> None:
        """Adopt another instance's state: open for ``remaining`` more seconds, or closed."""
        self.applying = True
        try:
            if state == "open" and remaining > 0:
                if self.state != "open":
                    self._move("open")
                self.opened_at = self.clock() - max(0.0, self.open_timeout - remaining)
            elif state == "closed" and self.state != "closed":
                self._move("closed")
        finally:
            self.applying = False


class BreakerSync:
    def __init__(self, redis: Any, breakers: dict[str, CircuitBreaker], instance: str, prefix: str = "lynkr") -> None:
        self.redis = redis
        self.instance = instance
        self.prefix = prefix
        self.breakers: dict[str, SharedBreaker] = {}
        for name, b in breakers.items():
            shared = SharedBreaker(**{f.name: getattr(b, f.name) for f in fields(CircuitBreaker)})
            shared.on_change = self._changed
            breakers[name] = self.breakers[name] = shared
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None

    def _key(self, name: str) -> str:
        return f"{self.prefix}:breaker:{name}"

    def _changed(self, breaker: SharedBreaker, state: str) -> None:
        if state not in ("open", "closed"):
            return
        task = asyncio.ensure_future(self._publish(breaker.name, state, breaker.open_timeout))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, name: str, state: str, timeout: float) -> None:
        until = time.time() + timeout
        msg = orjson.dumps({"name": name, "state": state, "until": until, "by": self.instance})
        try:
            if state == "open":
                await self.redis.set(self._key(name), msg, px=max(1, int(timeout * 1000)))
            else:
                await self.redis.delete(self._key(name))
            await self.redis.publish(CHANNEL, msg)
        except Exception:
            logger.opt(exception=True).warning("breakers: could not share {}'s state {}", name, state)

    def _apply(self, raw: bytes | str) -> None:
        msg = orjson.loads(raw)
        breaker = self.breakers.get(msg.get("name"))
        if breaker is None or msg.get("by") == self.instance:
            return
        breaker.apply(msg["state"], float(msg["until"]) - time.time())
        logger.info("breakers: {} is {} (shared by another instance)", breaker.name, breaker.state)

    async def start(self) -> BreakerSync:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        for name in self.breakers:  # open periods that started before this instance did
            raw = await self.redis.get(self._key(name))
            if raw is not None:
                self._apply(raw)
        self._listener = asyncio.create_task(self._listen(pubsub), name="breakers-sync")
        return self

    async def _listen(self, pubsub: Any) -> None:
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    try:
                        self._apply(message["data"])
                    except (ValueError, KeyError, TypeError):
                        logger.warning("breakers: ignored a malformed message on {}", CHANNEL)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def close(self) -> None:
        await stop(self._listener)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def breakers_ctx(app: web.Application) -> AsyncIterator[None]:
    shared = app[SHARED]
    sync = None
    if shared.redis is not None:
        sync = await BreakerSync(shared.redis, app[DISPATCHER].breakers, shared.instance).start()
    yield
    if sync is not None:
        await sync.close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(breakers_ctx)
