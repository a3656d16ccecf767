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

    async def percentiles(self, column: str, group: str, since: float, until: float,
                          ps: Iterable[int] = PERCENTILES) -> dict[Any, dict[str, Any]]:
        """Nearest-rank percentiles of ``column`` per ``group`` (an SQL expression) over [since, until)."""
        ps = tuple(ps)
        ranks = ", ".join(f"(n * {p} + 99) / 100" for p in ps)
        rows = await self.store.fetchall(
            f"WITH v AS (SELECT {group} AS g, {column} AS x FROM {TABLE} "
            f"           WHERE ts >= ? AND ts < ? AND {column} IS NOT NULL), "
            "r AS (SELECT g, x, ROW_NUMBER() OVER (PARTITION BY g ORDER BY x) AS rn, "
            "             COUNT(*) OVER (PARTITION BY g) AS n FROM v) "
            f"SELECT g, n, rn, x FROM r WHERE rn IN ({ranks}) OR rn = n",
            (since, until))
        by_group: dict[Any, dict[int, float]] = {}
        counts: dict[Any, int] = {}
        for g, n, rn, x in rows:
            by_group.setdefault(g, {})[rn] = x
            counts[g] = n
        out: dict[Any, dict[str, Any]] = {}
        for g, values in by_group.items():
            n = counts[g]
            out[g] = {f"p{p}": _round(values.get(max(1, math.ceil(n * p / 100)))) for p in ps}
            out[g]["max"] = _round(values.get(n))
        return out

    async def aggregate(self, since: float, until: float) -> dict[str, Any]:
        """Everything ``GET /v1/routing/stats`` reports for [since, until)."""
        window = (since, until)
        where = "WHERE ts >= ? AND ts < ?"
        sums = ("COUNT(*) AS requests, COALESCE(SUM(status >= 400), 0) AS errors, "
                "COALESCE(SUM(fallback), 0) AS fallbacks, COALESCE(SUM(retries), 0) AS retries, "
                "COALESCE(SUM(input_tokens), 0) AS input_tokens, COALESCE(SUM(output_tokens), 0) AS output_tokens, "
                "COALESCE(SUM(cache_read_tokens), 0) AS cache_read_tokens, "
                "COALESCE(SUM(cache_write_tokens), 0) AS cache_write_tokens, "
                "SUM(cost_usd) AS cost_usd, COALESCE(SUM(cost_usd IS NULL AND provider IS NOT NULL "
                "AND status < 400), 0) AS unpriced, AVG(latency_ms) AS avg_latency_ms, AVG(ttft_ms) AS avg_ttft_ms, "
                "COALESCE(SUM(cache = 'hit'), 0) AS cache_hits, COALESCE(SUM(cache IS NOT NULL), 0) AS cache_lookups")
        total = await self.store.fetchone(f"SELECT {sums} FROM {TABLE} {where}", window)
        providers = await self.store.fetchall(
            f"SELECT COALESCE(provider, 'none') AS key, {sums} FROM {TABLE} {where} GROUP BY key "
            "ORDER BY requests DESC", window)
        tiers = await self.store.fetchall(
            f"SELECT COALESCE(tier, 'none') AS key, {sums} FROM {TABLE} {where} GROUP BY key "
            "ORDER BY requests DESC", window)
        models = await self.store.fetchall(
            f"SELECT COALESCE(provider, 'none') AS provider, COALESCE(model, 'none') AS model, {sums} FROM {TABLE} "
            f"{where} GROUP BY provider, model ORDER BY requests DESC LIMIT 100", window)
        splits = await self.store.fetchall(
            f"SELECT COALESCE(tier, 'none') AS tier, COALESCE(provider, 'none') AS provider, COUNT(*) AS requests "
            f"FROM {TABLE} {where} GROUP BY tier, provider ORDER BY requests DESC", window)
        statuses = await self.store.fetchall(
            f"SELECT status, COUNT(*) FROM {TABLE} {where} GROUP BY status ORDER BY status", window)
        error_types = await self.store.fetchall(
            f"SELECT error_type, COUNT(*) AS n FROM {TABLE} {where} AND error_type IS NOT NULL "
            "GROUP BY error_type ORDER BY n DESC", window)
        latency = await self.percentiles("latency_ms", "COALESCE(provider, 'none')", since, until)
        ttft = await self.percentiles("ttft_ms", "COALESCE(provider, 'none')", since, until)
        tier_latency = await self.percentiles("latency_ms", "COALESCE(tier, 'none')", since, until)
        tier_ttft = await self.percentiles("ttft_ms", "COALESCE(tier, 'none')", since, until)
        model_key = "COALESCE(provider, 'none') || ' ' || COALESCE(model, 'none')"
        model_latency = await self.percentiles("latency_ms", model_key, since, until)
        model_ttft = await self.percentiles("ttft_ms", model_key, since, until)
        latency_all = (await self.percentiles("latency_ms", "1", since, until)).get(1)
        ttft_all = (await self.percentiles("ttft_ms", "1", since, until)).get(1)
        reasons = await self.fallback_reasons(since, until)

        def block(row: Any, *, latency_p: dict[str, Any] | None = None,
                  ttft_p: dict[str, Any] | None = None) -> dict[str, Any]:
            n = row["requests"]
            return {
                "requests": n,
                "errors": row["errors"],
                "error_rate": _rate(row["errors"], n),
                "fallbacks": row["fallbacks"],
                "retries": row["retries"],
                "latency_ms": {"avg": _round(row["avg_latency_ms"]), **(latency_p or _empty())},
                "ttft_ms": {"avg": _round(row["avg_ttft_ms"]), **(ttft_p or _empty())},
                "tokens": {"input": row["input_tokens"], "output": row["output_tokens"],
                           "cache_read": row["cache_read_tokens"], "cache_write": row["cache_write_tokens"]},
                "cost_usd": _money(row["cost_usd"]),
                "unpriced_requests": row["unpriced"],
            }

        assert total is not None
        n = total["requests"]
        return {
            "since": since,
            "until": until,
            **block(total, latency_p=latency_all, ttft_p=ttft_all),
            "by_provider": [{"provider": r["key"], **block(r, latency_p=latency.get(r["key"]),
                                                           ttft_p=ttft.get(r["key"]))} for r in providers],
            "by_tier": [{"tier": r["key"], "share": _rate(r["requests"], n),
                         **block(r, latency_p=tier_latency.get(r["key"]), ttft_p=tier_ttft.get(r["key"]))}
                        for r in tiers],
            "by_model": [{"provider": r["provider"], "model": r["model"],
                          **block(r, latency_p=model_latency.get(f"{r['provider']} {r['model']}"),
                                  ttft_p=model_ttft.get(f"{r['provider']} {r['model']}"))} for r in models],
            "routing_split": [{"tier": r["tier"], "provider": r["provider"], "requests": r["requests"],
                               "share": _rate(r["requests"], n)} for r in splits],
            "statuses": {str(s): c for s, c in statuses},
            "errors_by_type": {t: c for t, c in error_types},
            "fallback_reasons": reasons,
            "cache": {"hits": total["cache_hits"], "lookups": total["cache_lookups"],
                      "hit_rate": _rate(total["cache_hits"], total["cache_lookups"])}
            if total["cache_lookups"] else None,
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
        group = f"CAST((ts - {since!r}) / {bucket!r} AS INTEGER)"
        rows = await self.store.fetchall(
            f"SELECT {group} AS b, COUNT(*) AS requests, COALESCE(SUM(status >= 400), 0) AS errors, "
            "COALESCE(SUM(input_tokens), 0) AS input_tokens, COALESCE(SUM(output_tokens), 0) AS output_tokens, "
            "COALESCE(SUM(cache_read_tokens), 0) AS cache_read_tokens, COALESCE(SUM(cost_usd), 0) AS cost_usd, "
            "COALESCE(SUM(fallback), 0) AS fallbacks "
            f"FROM {TABLE} WHERE ts >= ? AND ts < ? GROUP BY b", (since, until))
        latency = await self.percentiles("latency_ms", group, since, until)
        ttft = await self.percentiles("ttft_ms", group, since, until)
        by_bucket = {r["b"]: r for r in rows}
        out = []
        for b in range(max(1, math.ceil((until - since) / bucket))):
            r = by_bucket.get(b)
            lat, tt = latency.get(b, {}), ttft.get(b, {})
            out.append({
                "t": since + b * bucket,
                "requests": r["requests"] if r else 0,
                "rate_per_s": _round((r["requests"] if r else 0) / bucket, 4),
                "errors": r["errors"] if r else 0,
                "fallbacks": r["fallbacks"] if r else 0,
                "input_tokens": r["input_tokens"] if r else 0,
                "output_tokens": r["output_tokens"] if r else 0,
                "cache_read_tokens": r["cache_read_tokens"] if r else 0,
                "cost_usd": _money(r["cost_usd"]) if r else 0.0,
                "latency_p50": lat.get("p50"), "latency_p95": lat.get("p95"), "latency_p99": lat.get("p99"),
                "ttft_p50": tt.get("p50"), "ttft_p95": tt.get("p95"),
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


def _empty() -> dict[str, None]:
    return {f"p{p}": None for p in PERCENTILES} | {"max": None}


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(float(x), digits)


def _money(x: float | None) -> float | None:
    return None if x is None else round(float(x), 8)


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None
