"""The SQLite store: WAL, migrations once, queued writes committed in batches, reads alongside."""

from __future__ import annotations

import sqlite3

import pytest

from lynkr.store import Database


@pytest.fixture
async def db(tmp_path):
    database = await Database(tmp_path / "state.db", flush_interval=0.05).open()
    yield database
    await database.close()


async def test_wal_and_migrations_apply_once(db, tmp_path):
    stmts = ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)", "CREATE INDEX t_v ON t (v)"]
    await db.migrate("things", stmts)
    await db.migrate("things", stmts)  # idempotent
    await db.migrate("things", [*stmts, "ALTER TABLE t ADD COLUMN w INTEGER"])
    rows = await db.fetchall("SELECT family, version FROM schema_migrations ORDER BY version")
    assert [tuple(r) for r in rows] == [("things", 1), ("things", 2), ("things", 3)]
    mode = sqlite3.connect(tmp_path / "state.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_queued_writes_commit_in_a_batch_and_execute_sees_them(db):
    await db.migrate("t", ["CREATE TABLE t (v INTEGER)"])
    for i in range(100):
        db.enqueue("INSERT INTO t (v) VALUES (?)", (i,))
    rowid = await db.execute("INSERT INTO t (v) VALUES (?)", (999,))  # runs after the queue
    assert rowid == 101
    assert (await db.fetchone("SELECT count(*), max(v) FROM t"))[0:2] == (101, 999)


async def test_failed_migration_rolls_back(db):
    with pytest.raises(sqlite3.OperationalError):
        await db.migrate("bad", ["CREATE TABLE ok (x)", "CREATE TABLE broken ("])
    assert [tuple(r) for r in await db.fetchall("SELECT version FROM schema_migrations WHERE family='bad'")] == [(1,)]


async def test_transaction_is_all_or_nothing(db):
    await db.migrate("u", ["CREATE TABLE u (k TEXT PRIMARY KEY)"])
    with pytest.raises(sqlite3.IntegrityError):
        await db.transaction([("INSERT INTO u VALUES (?)", ("a",)), ("INSERT INTO u VALUES (?)", ("a",))])
    assert (await db.fetchone("SELECT count(*) FROM u"))[0] == 0


async def test_close_flushes_the_queue(tmp_path):
    database = await Database(tmp_path / "q.db", flush_interval=60).open()
    await database.migrate("q", ["CREATE TABLE q (v)"])
    database.enqueue("INSERT INTO q VALUES (1)")
    await database.close()
    assert sqlite3.connect(tmp_path / "q.db").execute("SELECT count(*) FROM q").fetchone()[0] == 1



async def test_opening_retries_a_wal_switch_sqlite_refused(tmp_path, monkeypatch):
    """Workers (--workers N) open one new database at once; SQLite may refuse the switch to WAL with
    "database is locked" without waiting out the busy timeout (a worker died at startup, now and then).
    Opening tries again instead."""
    import aiosqlite

    refusals = [sqlite3.OperationalError("database is locked")] * 2
    real = aiosqlite.Connection.execute

    def execute(self, sql, *args, **kwargs):
        if sql == "PRAGMA journal_mode=WAL" and refusals:
            raise refusals.pop()
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "execute", execute)
    db = await Database(tmp_path / "shared.db").open()
    try:
        assert not refusals
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    finally:
        await db.close()


async def test_a_database_that_cannot_be_opened_leaves_no_thread_behind(tmp_path, monkeypatch):
    import asyncio
    import threading

    import aiosqlite

    def refuse(self, sql, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    def new_threads() -> set[threading.Thread]:  # threads of earlier tests may still be ending: not counted
        return set(threading.enumerate()) - before

    before = set(threading.enumerate())
    monkeypatch.setattr(aiosqlite.Connection, "execute", refuse)
    with pytest.raises(sqlite3.OperationalError):
        await Database(tmp_path / "x.db").open()
    for _ in range(100):  # a closed connection's thread ends just after close() returns
        if not new_threads():
            break
        await asyncio.sleep(0.01)
    assert not new_threads()  # an aiosqlite thread left running keeps the process alive

