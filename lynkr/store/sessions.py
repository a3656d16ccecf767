"""Session transcripts: each request and answer of a session, in SQLite, kept for a while.

A session is what Claude Code names with ``X-Claude-Code-Session-Id`` (others with ``x-session-id``).
Agents resend the whole conversation every turn, so a turn stores only the messages the previous turn
of the session had not (``messages_from`` says where they start); a transcript is read back whole.
Writes are queued off the hot path (``Database.enqueue``); rows older than the retention are deleted
by a periodic sweep.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any

import orjson
from loguru import logger

from lynkr.background import stop
from lynkr.store import Database

MIGRATIONS = [
    "CREATE TABLE session_turns (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, at REAL NOT NULL, "
    "request_id TEXT, client_key TEXT, path TEXT NOT NULL, status INTEGER, model TEXT, provider TEXT, "
    "stream INTEGER NOT NULL DEFAULT 0, messages_from INTEGER NOT NULL DEFAULT 0, request TEXT NOT NULL, "
    "response TEXT, input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX session_turns_session ON session_turns (session_id, id)",
    "CREATE INDEX session_turns_at ON session_turns (at)",
]

# the answer of a streamed request, folded by whoever saw its events (lynkr.cache.service.AnswerCache.tap,
# the Responses stream); set per request by the transcript middleware
answer_sink: ContextVar[list[Any] | None] = ContextVar("lynkr_answer_sink", default=None)


def capture(answer: Any) -> None:
    sink = answer_sink.get()
    if sink is not None:
        sink.append(answer)


def _digest(items: list[Any]) -> bytes:
    return hashlib.sha256(orjson.dumps(items)).digest()


class SessionStore:
    def __init__(self, db: Database, *, retention_days: float, remember: int = 10_000) -> None:
        self.db = db
        self.retention = retention_days * 86_400
        self._last: OrderedDict[str, tuple[int, bytes]] = OrderedDict()  # session -> (messages, digest)
        self._remember = remember
        self._sweeper: asyncio.Task[None] | None = None

    async def open(self, *, sweep_every: float = 3600.0) -> SessionStore:
        await self.db.migrate("sessions", MIGRATIONS)
        await self.sweep()
        self._sweeper = asyncio.create_task(self._sweep_loop(sweep_every), name="sessions-sweep")
        return self

    async def close(self) -> None:
        await stop(self._sweeper)

    def record(self, session_id: str, *, request_id: str | None, client_key: str | None, path: str,
               status: int | None, model: str | None, provider: str | None, stream: bool,
               request: dict[str, Any], response: Any, input_tokens: int = 0, output_tokens: int = 0) -> None:
        """Queue one turn. Messages the session's previous turn already stored are left out."""
        key = "messages" if isinstance(request.get("messages"), list) else None
        start = 0
        if key is not None:
            messages: list[Any] = request[key]
            last = self._last.get(session_id)
            if last is not None and last[0] <= len(messages) and _digest(messages[: last[0]]) == last[1]:
                start = last[0]
            self._last[session_id] = (len(messages), _digest(messages))
            self._last.move_to_end(session_id)
            while len(self._last) > self._remember:
                self._last.popitem(last=False)
            request = {**request, key: messages[start:]}
        self.db.enqueue(
            "INSERT INTO session_turns (session_id, at, request_id, client_key, path, status, model, provider, stream, "
            "messages_from, request, response, input_tokens, output_tokens) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, time.time(), request_id, client_key, path, status, model, provider, int(stream), start,
             orjson.dumps(request).decode(), None if response is None else orjson.dumps(response).decode(),
             input_tokens, output_tokens))

    async def turns(self, session_id: str, client_key: str | None = None) -> list[dict[str, Any]]:
        """The session's turns, oldest first; only ``client_key``'s when given."""
        await self.db.flush()  # a transcript read right after a turn shows it
        sql = ("SELECT id, at, request_id, client_key, path, status, model, provider, stream, messages_from, request, "
               "response, input_tokens, output_tokens FROM session_turns WHERE session_id = ?")
        params: list[Any] = [session_id]
        if client_key is not None:
            sql += " AND client_key IS ?"
            params.append(client_key)
        rows = await self.db.fetchall(sql + " ORDER BY id", params)
        return [{"turn": n, "at": r[1], "request_id": r[2], "client_key": r[3], "path": r[4], "status": r[5],
                 "model": r[6], "provider": r[7], "stream": bool(r[8]), "messages_from": r[9],
                 "request": orjson.loads(r[10]), "response": None if r[11] is None else orjson.loads(r[11]),
                 "usage": {"input_tokens": r[12], "output_tokens": r[13]}} for n, r in enumerate(rows, 1)]

    async def sweep(self, now: float | None = None) -> None:
        cutoff = (now if now is not None else time.time()) - self.retention
        await self.db.execute("DELETE FROM session_turns WHERE at < ?", (cutoff,))

    async def _sweep_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.sweep()
            except Exception:
                logger.opt(exception=True).warning("sessions: retention sweep failed")
