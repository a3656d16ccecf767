"""Where the rate-limit and budget numbers live: per-key overrides and usage history in SQLite
(``LimitsStore``), and the hot counters of this process (``MemoryCounters``; ``lynkr.access.redis_counters``
keeps them in Redis instead). The policy they apply is ``lynkr.access.limits``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from loguru import logger

from lynkr.access.limits import (
    Admission,
    Bucket,
    Limits,
    Usage,
    check_budgets,
    periods,
    rate_limited,
)
from lynkr.background import stop
from lynkr.store import Database

MIGRATIONS = [
    "CREATE TABLE access_limits (key_id TEXT PRIMARY KEY, overrides TEXT NOT NULL, updated_at REAL NOT NULL)",
    "CREATE TABLE access_usage (key_id TEXT NOT NULL, period TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0, "
    "tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0, updated_at REAL NOT NULL, "
    "PRIMARY KEY (key_id, period))",
]

UPSERT_USAGE = (
    "INSERT INTO access_usage (key_id, period, requests, tokens, cost_usd, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key_id, period) DO UPDATE SET requests = requests + excluded.requests, "
    "tokens = tokens + excluded.tokens, cost_usd = cost_usd + excluded.cost_usd, updated_at = excluded.updated_at")


class Counters(Protocol):
    """Where the hot numbers live: in this process, or in Redis."""

    async def admit(self, key_id: str, limits: Limits) -> Admission: ...

    async def charge(self, key_id: str, limits: Limits, tokens: int, cost_usd: float) -> None: ...

    async def usage(self, key_id: str) -> dict[str, dict[str, Any]]: ...

    async def close(self) -> None: ...


class LimitsStore:
    """Per-key overrides and usage history in SQLite (the store every instance on this machine shares).
    Usage is added up in memory and written as one upsert per key and period every ``push_every`` seconds
    (a crash forgets at most that long of counting, never a limit change)."""

    def __init__(self, db: Database, *, push_every: float = 1.0) -> None:
        self.db = db
        self.push_every = push_every
        self._unpushed: dict[tuple[str, str], Usage] = {}
        self._pusher: asyncio.Task[None] | None = None

    async def open(self) -> LimitsStore:
        await self.db.migrate("access", MIGRATIONS)
        self._pusher = asyncio.create_task(self._push_loop(), name="usage-push")
        return self

    async def close(self) -> None:
        await stop(self._pusher)
        self.push()
        await self.db.flush()

    def push(self) -> None:
        """Queue the usage counted since the last push (one upsert per key and period)."""
        pending, self._unpushed = self._unpushed, {}
        now = time.time()
        for (key_id, period), u in pending.items():
            self.db.enqueue(UPSERT_USAGE, (key_id, period, u.requests, u.tokens, u.cost_usd, now))

    async def _push_loop(self) -> None:
        while True:
            await asyncio.sleep(self.push_every)
            self.push()

    async def overrides(self) -> dict[str, dict[str, Any]]:
        rows = await self.db.fetchall("SELECT key_id, overrides FROM access_limits")
        return {r[0]: orjson.loads(r[1]) for r in rows}

    async def set_overrides(self, key_id: str, overrides: dict[str, Any]) -> None:
        # committed before the admin API answers: it survives a crash the moment the caller hears "ok"
        await self.db.execute(
            "INSERT INTO access_limits (key_id, overrides, updated_at) VALUES (?, ?, ?) ON CONFLICT (key_id) "
            "DO UPDATE SET overrides = excluded.overrides, updated_at = excluded.updated_at",
            (key_id, orjson.dumps(overrides).decode(), time.time()))

    async def delete_overrides(self, key_id: str) -> None:
        await self.db.execute("DELETE FROM access_limits WHERE key_id = ?", (key_id,))

    def record_usage(self, key_id: str, period: str, used: Usage) -> None:
        total = self._unpushed.get((key_id, period))
        if total is None:
            total = self._unpushed[(key_id, period)] = Usage()
        total.add(used)

    async def usage_rows(self, period_ids: list[str], key_id: str | None = None) -> dict[tuple[str, str], Usage]:
        marks = ",".join("?" * len(period_ids))
        sql = f"SELECT key_id, period, requests, tokens, cost_usd FROM access_usage WHERE period IN ({marks})"
        params: list[Any] = list(period_ids)
        if key_id is not None:
            sql += " AND key_id = ?"
            params.append(key_id)
        rows = await self.db.fetchall(sql, params)
        return {(r[0], r[1]): Usage(r[2], r[3], r[4]) for r in rows}


@dataclass
class _KeyUsage:
    period: str
    stored: Usage = field(default_factory=Usage)  # in SQLite at the last refresh
    pending: Usage = field(default_factory=Usage)  # counted here since


class MemoryCounters:
    """Buckets in this process; budget counters in this process, written to SQLite off the hot path and
    re-read every ``refresh`` seconds so processes sharing the store converge on the same totals."""

    def __init__(self, store: LimitsStore, *, refresh: float = 2.0) -> None:
        self.store = store
        self.refresh_interval = refresh
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.usage_by_key: dict[tuple[str, str], _KeyUsage] = {}  # (key_id, 'day'|'month')
        self._task: asyncio.Task[None] | None = None

    def start(self) -> MemoryCounters:
        self._task = asyncio.create_task(self._refresh_loop(), name="limits-refresh")
        return self

    async def close(self) -> None:
        await stop(self._task)

    def _bucket(self, key_id: str, kind: str, capacity: int, now: float) -> Bucket:
        b = self.buckets.get((key_id, kind))
        if b is None:
            b = self.buckets[(key_id, kind)] = Bucket(capacity, capacity, now)
        b.refill(now, capacity)
        return b

    async def _used(self, key_id: str, now: float) -> dict[str, _KeyUsage]:
        current = periods(now)
        out: dict[str, _KeyUsage] = {}
        missing: list[str] = []
        for name, (pid, _) in current.items():
            ku = self.usage_by_key.get((key_id, name))
            if ku is None or ku.period != pid:
                missing.append(name)
            else:
                out[name] = ku
        if missing:
            rows = await self.store.usage_rows([current[n][0] for n in missing], key_id)
            for name in missing:
                pid = current[name][0]
                ku = self.usage_by_key.get((key_id, name))
                if ku is None or ku.period != pid:  # another coroutine may have loaded it meanwhile
                    ku = self.usage_by_key[(key_id, name)] = _KeyUsage(pid, rows.get((key_id, pid), Usage()))
                out[name] = ku
        return out

    async def admit(self, key_id: str, limits: Limits) -> Admission:
        now = time.time()
        adm = Admission(limits)
        if limits.budgets:
            used = await self._used(key_id, now)
            totals = {}
            for name, ku in used.items():
                t = Usage()
                t.add(ku.stored)
                t.add(ku.pending)
                totals[name] = t
            check_budgets(key_id, limits, totals, {n: end for n, (_, end) in periods(now).items()})
        now_m = time.monotonic()
        rb = self._bucket(key_id, "requests", limits.rpm, now_m) if limits.rpm else None
        tb = self._bucket(key_id, "tokens", limits.tpm, now_m) if limits.tpm else None
        if rb is not None:
            adm.requests_remaining, adm.requests_reset = rb.level, rb.full_in()
        if tb is not None:
            adm.tokens_remaining, adm.tokens_reset = tb.level, tb.full_in()
        if rb is not None and limits.rpm and rb.level < 1:
            raise rate_limited(key_id, "requests", limits.rpm, rb.wait_for(1), adm)
        if tb is not None and limits.tpm and tb.level <= 0:
            raise rate_limited(key_id, "tokens", limits.tpm, tb.wait_for(1), adm)
        if rb is not None:
            rb.level -= 1
            adm.requests_remaining, adm.requests_reset = rb.level, rb.full_in()
        self._count(key_id, Usage(requests=1), now)
        return adm

    async def charge(self, key_id: str, limits: Limits, tokens: int, cost_usd: float) -> None:
        if limits.tpm and tokens:
            self._bucket(key_id, "tokens", limits.tpm, time.monotonic()).level -= tokens
        if tokens or cost_usd:
            self._count(key_id, Usage(tokens=tokens, cost_usd=cost_usd), time.time())

    def _count(self, key_id: str, delta: Usage, now: float) -> None:
        for name, (pid, _) in periods(now).items():
            ku = self.usage_by_key.get((key_id, name))
            if ku is not None and ku.period == pid:
                ku.pending.add(delta)
            self.store.record_usage(key_id, pid, delta)

    async def usage(self, key_id: str) -> dict[str, dict[str, Any]]:
        now = time.time()
        used = await self._used(key_id, now)
        out: dict[str, dict[str, Any]] = {}
        for name, (pid, end) in periods(now).items():
            t = Usage()
            t.add(used[name].stored)
            t.add(used[name].pending)
            out[name] = {"period": pid[2:], "requests": t.requests, "tokens": t.tokens,
                         "cost_usd": round(t.cost_usd, 6), "resets_in_s": round(end)}
        return out

    async def refresh(self) -> None:
        """Re-read the stored totals (other processes' counts included) for the keys seen here."""
        if not self.usage_by_key:
            return
        snapshot = {k: Usage(v.pending.requests, v.pending.tokens, v.pending.cost_usd)
                    for k, v in self.usage_by_key.items()}
        self.store.push()
        await self.store.db.flush()  # our own counts are in the rows read next
        pids = sorted({v.period for v in self.usage_by_key.values()})
        rows = await self.store.usage_rows(pids)
        for k, ku in self.usage_by_key.items():
            if k in snapshot:
                ku.pending.add(snapshot[k], -1)
            ku.stored = rows.get((k[0], ku.period), Usage())

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except Exception:
                logger.opt(exception=True).warning("budget counters: refresh from the store failed")
