"""One request's story, filled in as it happens and handed to observers when it ends.

The request middleware creates a ``RequestRecord`` and puts it in a context variable; the dispatcher
(route, attempts, retries, fallbacks), the stream writer (time to first byte) and the usage tap
(tokens) fill it in; when the response is done, every registered observer is called with it
(metrics, telemetry, budgets...). Observers must be quick and must not raise: they run on the
request's task, after the client has its answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from loguru import logger


@dataclass
class RequestRecord:
    request_id: str
    method: str
    path: str
    dialect: str  # anthropic | openai
    started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)  # wall clock, for storage
    client_model: str | None = None
    request_bytes: int = 0  # the size of the client's body, when it is what the backend gets (Messages API)
    stream: bool = False
    provider: str | None = None
    model: str | None = None
    tier: str | None = None
    score: int | None = None
    reason: str | None = None
    attempts: list[str] = field(default_factory=list)  # "provider: error" per failed attempt
    retries: int = 0
    fallback: bool = False
    status: int | None = None
    error_type: str | None = None
    first_byte: float | None = None  # perf_counter when the first byte of the answer was written
    finished: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    client_key: str | None = None  # which inbound key was used (set by auth; never the key itself)
    session_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # the loop serving the request (set by the middleware): asyncio.current_task(loop), unlike current_task(),
    # makes no getpid system call on Python 3.11
    loop: asyncio.AbstractEventLoop | None = None
    # estimated dollars (lynkr.observability.prices); None: unknown price or no backend answered. Set when the
    # request ends, by the cost observer, which runs before every other observer
    cost_usd: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started

    @property
    def ttft(self) -> float | None:
        return None if self.first_byte is None else self.first_byte - self.started

    def add_usage(self, usage: dict[str, Any] | None) -> None:
        """Anthropic-shaped usage; later counts replace earlier ones (they are cumulative)."""
        if not usage:
            return
        self.input_tokens = usage.get("input_tokens") or self.input_tokens
        self.output_tokens = usage.get("output_tokens") or self.output_tokens
        self.cache_read_tokens = usage.get("cache_read_input_tokens") or self.cache_read_tokens
        self.cache_creation_tokens = usage.get("cache_creation_input_tokens") or self.cache_creation_tokens

    def note_event(self, ev: dict[str, Any]) -> None:
        """An Anthropic stream event: ``message_start`` and ``message_delta`` carry the usage."""
        t = ev["type"]
        if t == "message_delta":
            self.add_usage(ev.get("usage"))
        elif t == "message_start":
            self.add_usage(ev["message"].get("usage"))

    def note_events(self, events: list[dict[str, Any]]) -> None:
        """``note_event`` for each of a batch of events (one call per write, not per event)."""
        for ev in events:
            t = ev["type"]
            if t == "message_delta" or t == "message_start":
                self.note_event(ev)


current_record: ContextVar[RequestRecord | None] = ContextVar("lynkr_request_record", default=None)

Observer = Callable[[RequestRecord], None]


def notify(observers: list[Observer], record: RequestRecord) -> None:
    for observer in observers:
        try:
            observer(record)
        except Exception:
            logger.opt(exception=True).error("observer {} failed", getattr(observer, "__name__", observer))


async def tap_usage(
    events: AsyncIterable[dict[str, Any]], record: RequestRecord
) -> AsyncGenerator[dict[str, Any], None]:
    """Pass Anthropic events through, noting their usage in ``record``."""
    async for ev in events:
        record.note_event(ev)
        yield ev
