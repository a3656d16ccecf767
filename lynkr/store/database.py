"""lynkr's SQLite home for state (telemetry, sessions, budgets, caches): one file, WAL, one writer.

* **One writer path.** Every write goes through one connection (aiosqlite runs it on its own
  thread), so writers never contend; reads use a second connection (WAL lets them run alongside).
* **Off the hot path.** ``enqueue`` queues a write and returns at once; queued writes are committed
  together, in one transaction, within ``flush_interval`` seconds (or sooner when many pile up).
  ``execute`` is for writes a caller must see committed before it answers (budgets, admin changes).
* **Survives kill -9.** WAL with ``synchronous=NORMAL``: a committed transaction is on disk before
  ``execute`` returns; a crash loses at most the writes still queued, never half a row.
* **Migrations** per table family: each module registers an ordered list of statements once;
  ``migrate`` applies the ones not yet recorded in ``schema_migrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
from loguru import logger

from lynkr.background import stop

Params = Sequence[Any] | dict[str, Any]

# sqlite3 binds int, float and str directly, but None through its adapter protocol, which for want of an
# adapter fails two attribute lookups and formats an AttributeError message: ~0.15 µs for each None, and a
# telemetry row has about ten (measured: 3.5 -> 2.0 µs a row of ten NULLs). Found in the adapter table, None
# is bound as NULL all the same.
sqlite3.register_adapter(type(None), lambda value: value)


class Database:
    def __init__(self, path: Path | str, *, flush_interval: float = 0.2, max_pending: int = 500) -> None:
        self.path = Path(path)
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._pending: list[tuple[str, Params]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    async def open(self) -> Database:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await aiosqlite.connect(self.path, isolation_level=None, timeout=5.0)
            await self._writer.execute("PRAGMA busy_timeout=5000")
            await self._wal()
            for pragma in ("synchronous=NORMAL", "foreign_keys=ON"):
                await self._writer.execute(f"PRAGMA {pragma}")
            await self._writer.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (family TEXT NOT NULL, version INTEGER NOT NULL, "
                "applied_at REAL NOT NULL, PRIMARY KEY (family, version))")
            self._reader = await aiosqlite.connect(self.path, isolation_level=None, timeout=5.0)
            await self._reader.execute("PRAGMA busy_timeout=5000")
        except BaseException:
            await self.close()  # each connection is a thread that would keep the process alive
            raise
        self._reader.row_factory = aiosqlite.Row
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"sqlite-flush:{self.path.name}")
        return self

    async def _wal(self, attempts: int = 50) -> None:
        """Switch to WAL. Workers (``--workers N``) open one new file at once, and SQLite may refuse the switch
        with "database is locked" at once, without waiting out the busy timeout, while another connection is
        making the same switch (seen: a worker died at startup). So: try again, for up to ~5 s."""
        assert self._writer is not None
        for n in range(attempts):
            try:
                await self._writer.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or n == attempts - 1:
                    raise
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        await stop(self._flusher)
        self._flusher = None
        await self.flush()
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    # --- schema ----------------------------------------------------------------------------------

    async def migrate(self, family: str, statements: Iterable[str]) -> None:
        """Apply ``statements`` (one SQL statement each; version = position, from 1) not yet applied."""
        writer = self._need_writer()
        async with self._lock:
            rows = await writer.execute_fetchall(
                "SELECT version FROM schema_migrations WHERE family = ?", (family,))
            done = {r[0] for r in rows}
            for version, sql in enumerate(statements, 1):
                if version in done:
                    continue
                await writer.execute("BEGIN IMMEDIATE")
                try:
                    # another process sharing the file (lynkr start --workers N) may have applied it meanwhile
                    applied = await writer.execute_fetchall(
                        "SELECT 1 FROM schema_migrations WHERE family = ? AND version = ?", (family, version))
                    if applied:
                        await writer.execute("COMMIT")
                        continue
                    await writer.execute(sql)
                    await writer.execute(
                        "INSERT INTO schema_migrations (family, version, applied_at) VALUES (?, ?, ?)",
                        (family, version, time.time()))
                    await writer.execute("COMMIT")
                except BaseException:
                    await writer.execute("ROLLBACK")
                    raise

    # --- writes ----------------------------------------------------------------------------------

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write now (after anything queued) and return its lastrowid."""
        writer = self._need_writer()
        async with self._lock:
            await self._flush_locked()
            cursor = await writer.execute(sql, params)
            return cursor.lastrowid or 0

    async def transaction(self, statements: Sequence[tuple[str, Params]]) -> None:
        """Several writes, all or none."""
        writer = self._need_writer()
        async with self._lock:
            await self._flush_locked()
            await writer.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    await writer.execute(sql, params)
                await writer.execute("COMMIT")
            except BaseException:
                await writer.execute("ROLLBACK")
                raise

    def enqueue(self, sql: str, params: Params = ()) -> None:
        """Queue a write to be committed shortly, in a batch; never blocks the caller."""
        self._pending.append((sql, params))
        if len(self._pending) >= self.max_pending:
            self._wake.set()

    async def flush(self) -> None:
        if self._writer is None:
            return
        async with self._lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        if not self._pending or self._writer is None:
            return
        batch, self._pending = self._pending, []
        await self._writer.execute("BEGIN IMMEDIATE")
        try:
            # one executemany per run of the same statement: each await is a hop to the writer thread
            for sql, rows in itertools.groupby(batch, key=lambda item: item[0]):
                await self._writer.executemany(sql, [params for _, params in rows])
            await self._writer.execute("COMMIT")
        except Exception:
            await self._writer.execute("ROLLBACK")
            logger.opt(exception=True).error("dropped {} queued writes to {}", len(batch), self.path.name)

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    # --- reads -----------------------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        if self._reader is None:
            raise RuntimeError("database is not open")
        return list(await self._reader.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    def _need_writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("database is not open")
        return self._writer
