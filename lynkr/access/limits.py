"""Rate limits (token buckets) and budgets (daily and monthly counters) per client key.

* **Rate limits**: requests per minute and tokens per minute, each a token bucket that holds a minute's
  worth and refills continuously. A request takes one request token when admitted; its tokens (input,
  cache and output, known when it ends) are taken from the token bucket afterwards, which may go into
  debt: the next request waits until the bucket is positive again. So a key averages its TPM exactly,
  without guessing a request's size up front.
* **Budgets**: requests, tokens and estimated US dollars per UTC day and per UTC month. Requests are
  counted at admission (so concurrent requests cannot overshoot a request budget); tokens and cost when
  the request ends. An exhausted budget answers 429 with ``retry-after`` = time to the period's end.
* **Where the numbers live** (``lynkr.access.counters``): per-key limit overrides and usage in SQLite
  (``access_limits``, ``access_usage``); the hot counters in memory (``MemoryCounters``) or, with
  ``LYNKR_REDIS_URL``, in Redis (``lynkr.access.redis_counters``) so several processes and machines share
  them. This module is the policy: limits, periods, buckets, budgets and the headers that report them.
"""

from __future__ import annotations

import calendar
import functools
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from lynkr.config import Settings
from lynkr.errors import BudgetExceeded, InvalidRequest, RateLimitExceeded


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
