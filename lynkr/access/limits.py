"""Rate limits (token buckets) and budgets (daily and monthly counters) per client key.

* **Rate limits**: requests per minute and tokens per minute, each a token bucket that holds a minute's
  worth and refills continuously. A request takes one request token when admitted; its tokens (input,
  cache and output, known when it ends) are taken from the token bucket afterwards, which may go into
  debt: the next request waits until the bucket is positive again. So a key averages its TPM exactly,
  without guessing a request's size up front.
* **Budgets**: requests, tokens and estimated US dollars per UTC day and per UTC month. Requests are
  counted at admission (so concurrent requests cannot overshoot a request budget); tokens and cost when
  the request ends. An exhausted budget answers 429 with ``retry-after`` = time to the period's end.
* **Where the numbers live**: per-key limit overrides and usage in SQLite (``access_limits``,
  ``access_usage``); the hot counters in memory (``MemoryCounters``) or, with ``LYNKR_REDIS_URL``, in
  Redis (``lynkr.access.redis_counters``) so several processes and machines share them.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import functools
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from loguru import logger

from lynkr.config import Settings
from lynkr.errors import BudgetExceeded, InvalidRequest, RateLimitExceeded
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


@dataclass(frozen=True)
class Limits:  # frozen, and cached_property needs a __dict__: no slots
    """One key's limits; None means no limit."""

    rpm: int | None = None
    tpm: int | None = None
    daily_requests: int | None = None
    daily_tokens: int | None = None
    daily_usd: float | None = None
    monthly_requests: int | None = None
    monthly_tokens: int | None = None
    monthly_usd: float | None = None

    @classmethod
    def defaults(cls, settings: Settings) -> Limits:
        return cls(settings.rate_limit_rpm, settings.rate_limit_tpm, settings.budget_daily_requests,
                   settings.budget_daily_tokens, settings.budget_daily_usd, settings.budget_monthly_requests,
                   settings.budget_monthly_tokens, settings.budget_monthly_usd)

    def with_overrides(self, overrides: dict[str, Any]) -> Limits:
        return Limits(**{**asdict(self), **overrides})

    @functools.cached_property
    def any(self) -> bool:
        return any(getattr(self, f) is not None for f in LIMIT_FIELDS)

    @functools.cached_property
    def budgets(self) -> bool:
        return any(v is not None for period in ("day", "month") for v in self.budget(period))

    def budget(self, period: str) -> tuple[int | None, int | None, float | None]:
        if period == "day":
            return self.daily_requests, self.daily_tokens, self.daily_usd
        return self.monthly_requests, self.monthly_tokens, self.monthly_usd


LIMIT_FIELDS = tuple(f.name for f in fields(Limits))
_FLOAT_FIELDS = {"daily_usd", "monthly_usd"}


def validate_overrides(body: Any) -> dict[str, Any]:
    """A PUT body: an object of limit fields, each a positive number or null (= no limit for this key)."""
    if not isinstance(body, dict):
        raise InvalidRequest("send a JSON object of limits, e.g. {\"rpm\": 60, \"daily_tokens\": 1000000}")
    limits = body.get("limits", body) if set(body) == {"limits"} else body
    if not isinstance(limits, dict):
        raise InvalidRequest("limits must be an object", field="limits")
    out: dict[str, Any] = {}
    for name, value in limits.items():
        if name not in LIMIT_FIELDS:
            raise InvalidRequest(f"unknown limit; use {', '.join(LIMIT_FIELDS)}", field=name)
        if value is None:
            out[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest("must be a positive number or null", field=name)
        if name not in _FLOAT_FIELDS and value != int(value):
            raise InvalidRequest("must be a whole number", field=name)
        if not 0 < value < 1e15:
            raise InvalidRequest("must be greater than 0", field=name)
        out[name] = float(value) if name in _FLOAT_FIELDS else int(value)
    return out


# --- periods ---------------------------------------------------------------------------------------


def periods(now: float) -> dict[str, tuple[str, float]]:
    """{'day': (period id, seconds until it ends), 'month': (...)} in UTC (to the second)."""
    return _periods(int(now))


@functools.lru_cache(maxsize=4)
def _periods(now: int) -> dict[str, tuple[str, float]]:
    t = datetime.fromtimestamp(now, UTC)
    day_end = calendar.timegm((t.year, t.month, t.day, 0, 0, 0)) + 86_400
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    month_end = calendar.timegm((year, month, 1, 0, 0, 0))
    return {"day": (f"d:{t:%Y-%m-%d}", float(day_end - now)), "month": (f"m:{t:%Y-%m}", float(month_end - now))}


# --- token buckets ---------------------------------------------------------------------------------


@dataclass
class Bucket:
    """Holds up to ``capacity`` tokens (a minute's worth), refilled at capacity/60 per second."""

    capacity: float
    level: float
    at: float

    def refill(self, now: float, capacity: float) -> None:
        self.capacity = capacity
        self.level = min(capacity, self.level + max(0.0, now - self.at) * capacity / 60.0)
        self.at = now

    def wait_for(self, needed: float) -> float:
        """Seconds until the bucket holds ``needed``."""
        return max(0.0, (needed - self.level) * 60.0 / self.capacity)

    def full_in(self) -> float:
        return max(0.0, (self.capacity - self.level) * 60.0 / self.capacity)


@dataclass
class Admission:
    """What the rate-limit headers say after a request was let in."""

    limits: Limits
    requests_remaining: float | None = None
    requests_reset: float = 0.0  # seconds until the request bucket is full again
    tokens_remaining: float | None = None
    tokens_reset: float = 0.0


@dataclass
class Usage:
    requests: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage, sign: int = 1) -> None:
        self.requests += sign * other.requests
        self.tokens += sign * other.tokens
        self.cost_usd += sign * other.cost_usd


def check_budgets(key_id: str, limits: Limits, used: dict[str, Usage], ends: dict[str, float]) -> None:
    """Raise BudgetExceeded when a period's budget is spent (``used``: per 'day'/'month')."""
    for period, label in (("day", "daily"), ("month", "monthly")):
        max_requests, max_tokens, max_usd = limits.budget(period)
        u = used.get(period) or Usage()
        spent = None
        if max_requests is not None and u.requests >= max_requests:
            spent = f"{u.requests} of {max_requests} requests"
        elif max_tokens is not None and u.tokens >= max_tokens:
            spent = f"{u.tokens} of {max_tokens} tokens"
        elif max_usd is not None and u.cost_usd >= max_usd:
            spent = f"${u.cost_usd:.4f} of ${max_usd:g}"
        if spent:
            raise BudgetExceeded(f"the {label} budget of key {key_id} is spent ({spent}); it resets at the end of "
                                 f"the UTC {period}", retry_after=ends[period])


class KeyRateLimited(RateLimitExceeded):
    """A key's bucket is empty; carries the bucket state for the rate-limit headers of the 429."""

    def __init__(self, message: str, *, retry_after: float, admission: Admission) -> None:
        super().__init__(message, retry_after=retry_after)
        self.admission = admission


def rate_limited(key_id: str, what: str, limit: int, wait: float, admission: Admission) -> KeyRateLimited:
    return KeyRateLimited(f"rate limit of key {key_id} reached: {limit} {what} per minute; retry in {wait:.1f} s",
                          retry_after=wait, admission=admission)


# --- headers ---------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    """OpenAI's reset format: 1s, 6m0s, 1h2m3s (sub-second as ms)."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{sec}s"


def admission_headers(a: Admission, dialect: str) -> dict[str, str]:
    """The standard rate-limit headers (OpenAI's x-ratelimit-*; Anthropic's anthropic-ratelimit-* as well
    for the Anthropic dialect), for the limits this key has."""
    h: dict[str, str] = {}
    now = time.time()
    for kind, limit, remaining, reset in (("requests", a.limits.rpm, a.requests_remaining, a.requests_reset),
                                          ("tokens", a.limits.tpm, a.tokens_remaining, a.tokens_reset)):
        if limit is None or remaining is None:
            continue
        left = str(max(0, int(remaining)))
        h[f"x-ratelimit-limit-{kind}"] = str(limit)
        h[f"x-ratelimit-remaining-{kind}"] = left
        h[f"x-ratelimit-reset-{kind}"] = _duration(reset)
        if dialect == "anthropic":
            h[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
            h[f"anthropic-ratelimit-{kind}-remaining"] = left
            h[f"anthropic-ratelimit-{kind}-reset"] = datetime.fromtimestamp(
                now + reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return h


# --- counters --------------------------------------------------------------------------------------


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
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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
