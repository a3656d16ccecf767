"""Routing telemetry: one SQLite row per model request, and the aggregates built from them.

Rows are written by an observer with ``Database.enqueue`` (committed in batches by the store's flusher, off
the request path) into ``routing_telemetry`` in lynkr.db, so they survive restarts and every worker of one
lynkr writes to the same table. Rows older than TELEMETRY_RETENTION_DAYS are pruned periodically.

The aggregates (``GET /v1/routing/stats``, ``GET /metrics/observability``, the dashboard) are computed in
SQL: counts and sums by provider, tier and model, and latency percentiles by the nearest-rank method
(window functions), so a reader never pulls the whole table into Python.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from lynkr.observability.metrics import cache_result, served_by
from lynkr.observability.record import RequestRecord
from lynkr.store import Database

FAMILY = "telemetry"
TABLE = "routing_telemetry"
MIGRATIONS = [
    f"""CREATE TABLE {TABLE} (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        request_id TEXT NOT NULL,
        session_id TEXT,
        client_key TEXT,
        endpoint TEXT NOT NULL,
        dialect TEXT,
        stream INTEGER NOT NULL DEFAULT 0,
        provider TEXT,
        model TEXT,
        tier TEXT,
        score INTEGER,
        reason TEXT,
        status INTEGER,
        error_type TEXT,
        latency_ms REAL,
        ttft_ms REAL,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL,
        fallback INTEGER NOT NULL DEFAULT 0,
        retries INTEGER NOT NULL DEFAULT 0,
        attempts TEXT,
        cache TEXT
    )""",
    f"CREATE INDEX {TABLE}_ts ON {TABLE} (ts)",
]

_INSERT = (
    f"INSERT INTO {TABLE} (ts, request_id, session_id, client_key, endpoint, dialect, stream, provider, model, "
    "tier, score, reason, status, error_type, latency_ms, ttft_ms, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, cost_usd, fallback, retries, attempts, cache) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PERCENTILES = (50, 95, 99)
_DAY = 86_400.0


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class Telemetry:
    def __init__(self, store: Database, *, retention_days: int = 30,
                 tracked: Callable[[str], bool] | None = None) -> None:
        self.store = store
        self.retention_days = retention_days
        self.tracked = tracked or (lambda path: True)

    async def migrate(self) -> None:
        await self.store.migrate(FAMILY, MIGRATIONS)

    # --- writing ---------------------------------------------------------------------------------

    def observe(self, r: RequestRecord) -> None:
        """The observer: queue this request's row (no I/O here)."""
        if not self.tracked(r.path):
            return
        self.store.enqueue(_INSERT, (
            r.started_at, r.request_id, r.session_id, r.client_key, r.path, r.dialect, int(r.stream),
            served_by(r) if r.attempts or r.provider else None, r.model, r.tier, r.score, r.reason, r.status,
            r.error_type, _ms(r.duration), _ms(r.ttft), r.input_tokens, r.output_tokens, r.cache_read_tokens,
            r.cache_creation_tokens, r.cost_usd, int(r.fallback), r.retries,
            orjson.dumps(r.attempts).decode() if r.attempts else None, cache_result(r),
        ))

    async def prune(self, now: float | None = None) -> int:
        """Delete rows older than the retention; returns how many went (0 days: keep everything)."""
        if self.retention_days <= 0:
            return 0
        cutoff = (now if now is not None else time.time()) - self.retention_days * _DAY
        before = await self.store.fetchone(f"SELECT COUNT(*) FROM {TABLE} WHERE ts < ?", (cutoff,))
        if not before or not before[0]:
            return 0
        await self.store.execute(f"DELETE FROM {TABLE} WHERE ts < ?", (cutoff,))
        return int(before[0])

    # --- reading ---------------------------------------------------------------------------------

    async def _latencies(self, since: float, until: float) -> list[Any]:
        """(ts, provider, tier, model, latency_ms, ttft_ms) of every row in [since, until)."""
        return await self.store.fetchall(
            f"SELECT ts, COALESCE(provider, 'none'), COALESCE(tier, 'none'), COALESCE(model, 'none'), latency_ms, "
            f"ttft_ms FROM {TABLE} WHERE ts >= ? AND ts < ?", (since, until))

    async def aggregate(self, since: float, until: float) -> dict[str, Any]:
        """Everything ``GET /v1/routing/stats`` reports for [since, until): one grouped query for the sums and
        one for the latencies (percentiles are computed from sorted values), folded here."""
        groups = await self.store.fetchall(
            "SELECT COALESCE(provider, 'none'), COALESCE(tier, 'none'), COALESCE(model, 'none'), status, "
            "error_type, cache, COUNT(*), SUM(fallback), SUM(retries), SUM(input_tokens), SUM(output_tokens), "
            "SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_usd), "
            "SUM(cost_usd IS NULL AND provider IS NOT NULL AND status < 400), SUM(latency_ms), COUNT(latency_ms), "
            f"SUM(ttft_ms), COUNT(ttft_ms) FROM {TABLE} WHERE ts >= ? AND ts < ? "
            "GROUP BY 1, 2, 3, 4, 5, 6", (since, until))
        total = _Sums()
        providers: dict[str, _Sums] = {}
        tiers: dict[str, _Sums] = {}
        models: dict[tuple[str, str], _Sums] = {}
        splits: Counter[tuple[str, str]] = Counter()
        statuses: Counter[str] = Counter()
        error_types: Counter[str] = Counter()
        hits = lookups = 0
        for row in groups:
            provider, tier, model, status, error_type, cache = row[:6]
            for sums in (total, providers.setdefault(provider, _Sums()), tiers.setdefault(tier, _Sums()),
                         models.setdefault((provider, model), _Sums())):
                sums.add(row, status)
            n = row[6]
            splits[(tier, provider)] += n
            statuses[str(status)] += n
            if error_type:
                error_types[error_type] += n
            if cache is not None:
                lookups += n
                hits += n if cache == "hit" else 0

        lat: dict[str, dict[Any, list[float]]] = {"all": {}, "provider": {}, "tier": {}, "model": {}}
        ttft: dict[str, dict[Any, list[float]]] = {"all": {}, "provider": {}, "tier": {}, "model": {}}
        for _, provider, tier, model, latency, first in await self._latencies(since, until):
            for kind, key in (("all", 1), ("provider", provider), ("tier", tier), ("model", (provider, model))):
                if latency is not None:
                    lat[kind].setdefault(key, []).append(latency)
                if first is not None:
                    ttft[kind].setdefault(key, []).append(first)

        def block(sums: _Sums, kind: str, key: Any) -> dict[str, Any]:
            return sums.as_dict(percentiles(lat[kind].get(key)), percentiles(ttft[kind].get(key)))

        n = total.requests
        return {
            "since": since,
            "until": until,
            **block(total, "all", 1),
            "by_provider": [{"provider": k, **block(v, "provider", k)} for k, v in _by_count(providers)],
            "by_tier": [{"tier": k, "share": _rate(v.requests, n), **block(v, "tier", k)} for k, v in _by_count(tiers)],
            "by_model": [{"provider": k[0], "model": k[1], **block(v, "model", k)}
                         for k, v in _by_count(models)[:100]],
            "routing_split": [{"tier": t, "provider": p, "requests": c, "share": _rate(c, n)}
                              for (t, p), c in splits.most_common()],
            "statuses": dict(sorted(statuses.items())),
            "errors_by_type": dict(error_types.most_common()),
            "fallback_reasons": await self.fallback_reasons(since, until),
            "cache": {"hits": hits, "lookups": lookups, "hit_rate": _rate(hits, lookups)} if lookups else None,
        }

    async def fallback_reasons(self, since: float, until: float, limit: int = 20) -> list[dict[str, Any]]:
        """Why fallbacks happened: the failed attempts ("provider: Error") of requests a fallback answered, or,
        when the first choice was skipped without a try (breaker open, no tool support...), what the router
        said about it."""
        rows = await self.store.fetchall(
            f"SELECT attempts, reason FROM {TABLE} WHERE ts >= ? AND ts < ? AND fallback = 1 "
            "ORDER BY ts DESC LIMIT 10000", (since, until))
        counts: Counter[str] = Counter()
        for attempts, reason in rows:
            if attempts:
                counts.update(set(orjson.loads(attempts)))
            elif reason and " after " in reason:
                counts[reason.split(" after ", 1)[1][:120]] += 1
            else:
                counts["unknown"] += 1
        return [{"reason": k, "count": v} for k, v in counts.most_common(limit)]

    async def timeline(self, since: float, until: float, bucket: float) -> list[dict[str, Any]]:
        """Per-bucket request counts, errors, tokens, cost and latency/TTFT percentiles over [since, until)."""
        rows = await self.store.fetchall(
            "SELECT CAST((ts - ?) / ? AS INTEGER) AS b, COUNT(*), SUM(status >= 400), SUM(input_tokens), "
            "SUM(output_tokens), SUM(cache_read_tokens), SUM(cost_usd), SUM(fallback) "
            f"FROM {TABLE} WHERE ts >= ? AND ts < ? GROUP BY b", (since, bucket, since, until))
        by_bucket = {r[0]: r for r in rows}
        lat: dict[int, list[float]] = {}
        ttft: dict[int, list[float]] = {}
        for ts, latency, first in await self.store.fetchall(
                f"SELECT ts, latency_ms, ttft_ms FROM {TABLE} WHERE ts >= ? AND ts < ?", (since, until)):
            b = int((ts - since) / bucket)
            if latency is not None:
                lat.setdefault(b, []).append(latency)
            if first is not None:
                ttft.setdefault(b, []).append(first)
        out = []
        for b in range(max(1, math.ceil((until - since) / bucket))):
            r = by_bucket.get(b)
            requests = r[1] if r else 0
            lp, tp = percentiles(lat.get(b)), percentiles(ttft.get(b))
            out.append({
                "t": since + b * bucket,
                "requests": requests,
                "rate_per_s": _round(requests / bucket, 4),
                "errors": (r[2] or 0) if r else 0,
                "fallbacks": (r[7] or 0) if r else 0,
                "input_tokens": (r[3] or 0) if r else 0,
                "output_tokens": (r[4] or 0) if r else 0,
                "cache_read_tokens": (r[5] or 0) if r else 0,
                "cost_usd": _money(r[6] or 0.0) if r else 0.0,
                "latency_p50": lp["p50"], "latency_p95": lp["p95"], "latency_p99": lp["p99"],
                "ttft_p50": tp["p50"], "ttft_p95": tp["p95"],
            })
        return out

    async def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.store.fetchall(
            f"SELECT ts, request_id, endpoint, stream, provider, model, tier, score, reason, status, error_type, "
            f"latency_ms, ttft_ms, input_tokens, output_tokens, cache_read_tokens, cost_usd, fallback, retries, "
            f"attempts, cache FROM {TABLE} ORDER BY ts DESC, id DESC LIMIT ?", (limit,))
        out = []
        for r in rows:
            row = dict(r)
            row["stream"] = bool(row["stream"])
            row["fallback"] = bool(row["fallback"])
            row["attempts"] = orjson.loads(row["attempts"]) if row["attempts"] else []
            out.append(row)
        return out


def percentiles(values: list[float] | None, ps: Iterable[int] = PERCENTILES) -> dict[str, float | None]:
    """Nearest-rank percentiles (and the max) of ``values``; None each when there are none."""
    if not values:
        return {**{f"p{p}": None for p in ps}, "max": None}
    ordered = sorted(values)
    n = len(ordered)
    out: dict[str, float | None] = {f"p{p}": _round(ordered[max(1, math.ceil(n * p / 100)) - 1]) for p in ps}
    out["max"] = _round(ordered[-1])
    return out


class _Sums:
    """Running sums of one group's rows (folded from the grouped query)."""

    __slots__ = ("cache_read", "cache_write", "cost", "errors", "fallbacks", "input", "latency_n", "latency_sum",
                 "output", "priced", "requests", "retries", "ttft_n", "ttft_sum", "unpriced")

    def __init__(self) -> None:
        self.requests = self.errors = self.fallbacks = self.retries = self.unpriced = 0
        self.input = self.output = self.cache_read = self.cache_write = self.latency_n = self.ttft_n = 0
        self.cost = self.latency_sum = self.ttft_sum = 0.0
        self.priced = False

    def add(self, row: Any, status: int | None) -> None:
        n = row[6]
        self.requests += n
        if status is not None and status >= 400:
            self.errors += n
        self.fallbacks += row[7] or 0
        self.retries += row[8] or 0
        self.input += row[9] or 0
        self.output += row[10] or 0
        self.cache_read += row[11] or 0
        self.cache_write += row[12] or 0
        if row[13] is not None:
            self.cost += row[13]
            self.priced = True
        self.unpriced += row[14] or 0
        self.latency_sum += row[15] or 0.0
        self.latency_n += row[16] or 0
        self.ttft_sum += row[17] or 0.0
        self.ttft_n += row[18] or 0

    def as_dict(self, latency: dict[str, Any], ttft: dict[str, Any]) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": _rate(self.errors, self.requests),
            "fallbacks": self.fallbacks,
            "retries": self.retries,
            "latency_ms": {"avg": _round(self.latency_sum / self.latency_n) if self.latency_n else None, **latency},
            "ttft_ms": {"avg": _round(self.ttft_sum / self.ttft_n) if self.ttft_n else None, **ttft},
            "tokens": {"input": self.input, "output": self.output, "cache_read": self.cache_read,
                       "cache_write": self.cache_write},
            "cost_usd": _money(self.cost) if self.priced else None,
            "unpriced_requests": self.unpriced,
        }


def _by_count(groups: dict[Any, _Sums]) -> list[tuple[Any, _Sums]]:
    return sorted(groups.items(), key=lambda kv: (-kv[1].requests, str(kv[0])))


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(float(x), digits)


def _money(x: float | None) -> float | None:
    return None if x is None else round(float(x), 8)


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None
