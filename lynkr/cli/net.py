"""Small HTTP probes for the CLI (setup, doctor, code): one request, an answer or a reason, never an
exception. The gateway's own I/O seam is ``lynkr.providers.http``; this one serves the commands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """``status`` 0 means no HTTP answer at all; ``error`` then says why."""

    url: str
    status: int = 0
    data: Any = None
    text: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reached(self) -> bool:
        return self.status != 0

    def message(self) -> str:
        """What the server said went wrong, for error lines."""
        if not self.reached:
            return self.error
        data = self.data
        if isinstance(data, dict):
            err = data.get("error", data.get("message"))
            if isinstance(err, dict):
                err = err.get("message") or err
            if err:
                return f"HTTP {self.status}: {err}"
        return f"HTTP {self.status}: {self.text[:200].strip() or '(empty body)'}"


def describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"not a valid URL: {exc}"
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def session(timeout: float) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        yield http


async def fetch(method: str, url: str, *, headers: dict[str, str] | None = None, body: Any = None,
                timeout: float = 5.0) -> Reply:
    try:
        async with session(timeout) as http, http.request(method, url, headers=headers, json=body) as resp:
            text = await resp.text(errors="replace")
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = None
            return Reply(url, resp.status, data, text)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        return Reply(url, error=describe(exc))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one async step of a command from synchronous code (questionary runs its own loop per prompt)."""
    return asyncio.run(coro)
