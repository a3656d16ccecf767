"""Access control as one object: which key a request carries, what that key may do, what it has used."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from loguru import logger

from lynkr.access.cost import estimate_usd
from lynkr.access.counters import Counters, LimitsStore, MemoryCounters
from lynkr.access.keys import ANONYMOUS, KeyRing, presented_keys
from lynkr.access.limits import Admission, Limits
from lynkr.background import stop
from lynkr.config import Settings
from lynkr.errors import AuthenticationFailed, PermissionDenied
from lynkr.observability.record import RequestRecord
from lynkr.store import Database

# Which paths need which key. Health and the API description are open; admin paths need LYNKR_ADMIN_KEY;
# everything else (model endpoints, /v1/models, count_tokens, sessions, unknown paths) needs a client key.
OPEN_PATHS = frozenset({"/health", "/health/live", "/health/ready", "/v1/health", "/openapi.json"})
ADMIN_PREFIXES = ("/v1/admin/", "/dashboard", "/metrics", "/routing/", "/v1/routing/", "/v1/config",
                  "/v1/providers", "/v1/health/")
# the requests rate limits and budgets count (count_tokens and model listings are free)
LIMITED_PATHS = frozenset({"/v1/messages", "/v1/chat/completions", "/chat/completions", "/v1/responses",
                           "/responses", "/v1/embeddings", "/embeddings"})
ADMIN_ID = "admin"


def classify(path: str) -> str:
    """'open', 'admin' or 'client'."""
    if path in OPEN_PATHS:
        return "open"
    if path.startswith(ADMIN_PREFIXES):
        return "admin"
    return "client"


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    admin: bool = False


_ANONYMOUS = Caller(ANONYMOUS)

REDIS_LIMITS = "lynkr:limits"  # hash: key id -> overrides (JSON), when LYNKR_REDIS_URL is set


class AccessControl:
    def __init__(self, settings: Settings, keyring: KeyRing, store: LimitsStore, counters: Counters,
                 redis: Any = None, *, refresh: float = 2.0) -> None:
        self.keyring = keyring
        self.defaults = Limits.defaults(settings)
        self.store = store
        self.counters = counters
        self.redis = redis
        self.overrides: dict[str, dict[str, Any]] = {}
        self._merged: dict[str, tuple[dict[str, Any], Limits]] = {}
        self.refresh_interval = refresh
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, db: Database, redis: Any = None) -> AccessControl:
        store = await LimitsStore(db).open()
        counters: Counters
        if redis is not None:
            from lynkr.access.redis_counters import RedisCounters

            counters = RedisCounters(redis, store)
        else:
            counters = MemoryCounters(store).start()
        control = cls(settings, KeyRing.from_settings(settings), store, counters, redis)
        if redis is not None:  # overrides set before Redis was configured (or after it was emptied) carry over
            for key_id, over in (await store.overrides()).items():
                await redis.hsetnx(REDIS_LIMITS, key_id, orjson.dumps(over))
        await control.reload_overrides()
        control._refresher = asyncio.create_task(control._refresh_loop(), name="limits-overrides")
        return control

    async def close(self) -> None:
        await stop(self._refresher)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.counters.close()
        await self.store.close()

    # --- who is calling --------------------------------------------------------------------------

    def authenticate(self, path: str, headers: Mapping[str, str]) -> Caller | None:
        """The caller of ``path``, or AuthenticationFailed / PermissionDenied; None for open paths."""
        kind = classify(path)
        if kind == "open":
            return None
        ring = self.keyring
        if kind != "admin" and not ring.enabled and not ring.admin_enabled:
            return _ANONYMOUS  # local mode, no keys at all: nothing to read from the headers
        presented = presented_keys(headers)
        if kind == "admin":
            if ring.is_admin(presented):
                return Caller(ADMIN_ID, admin=True)
            if not ring.admin_enabled:
                if not ring.enabled:
                    return Caller(ADMIN_ID, admin=True)  # local mode: no keys at all, loopback only
                raise PermissionDenied("admin endpoints are disabled: set LYNKR_ADMIN_KEY to use them")
            if ring.client(presented) is not None:
                raise PermissionDenied("this endpoint needs the admin key (LYNKR_ADMIN_KEY), not a client key")
            raise self._unauthenticated(presented, "the admin key (LYNKR_ADMIN_KEY)", path)
        if not ring.enabled:
            return Caller(ADMIN_ID, admin=True) if ring.is_admin(presented) else Caller(ANONYMOUS)
        found = ring.client(presented)
        if found is not None:
            return Caller(found.id)
        if ring.is_admin(presented):
            return Caller(ADMIN_ID, admin=True)
        raise self._unauthenticated(presented, "a key from LYNKR_API_KEYS", path)

    @staticmethod
    def _unauthenticated(presented: list[str], wanted: str, path: str) -> AuthenticationFailed:
        headers = {"WWW-Authenticate": 'Basic realm="lynkr admin"'} if path.startswith("/dashboard") else {}
        if not presented:
            return AuthenticationFailed(f"missing API key: send {wanted} as x-api-key or Authorization: Bearer",
                                        headers=headers)
        return AuthenticationFailed(f"invalid API key: lynkr expects {wanted}", headers=headers)

    # --- limits ----------------------------------------------------------------------------------

    def limits_for(self, key_id: str) -> Limits:
        over = self.overrides.get(key_id)
        if not over:
            return self.defaults
        cached = self._merged.get(key_id)
        if cached is None or cached[0] is not over:  # recomputed only when the overrides object changes
            cached = self._merged[key_id] = (over, self.defaults.with_overrides(over))
        return cached[1]

    async def admit(self, caller: Caller) -> Admission | None:
        limits = self.limits_for(caller.key_id)
        if not limits.any:
            return None
        return await self.counters.admit(caller.key_id, limits)

    def observe(self, record: RequestRecord) -> None:
        """Observer (app[OBSERVERS]): charge a finished request's tokens and estimated cost to its key.
        A request lynkr answered from its own cache cost no backend anything and is charged nothing."""
        if record.client_key is None or record.path not in LIMITED_PATHS:
            return
        limits = self.limits_for(record.client_key)
        if not limits.any or record.extra.get("cache") == "hit":
            return
        tokens = record.input_tokens + record.output_tokens + record.cache_read_tokens + record.cache_creation_tokens
        cost = estimate_usd(record)
        if not tokens and not cost:
            return
        task = asyncio.ensure_future(self._charge(record.client_key, limits, tokens, cost))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _charge(self, key_id: str, limits: Limits, tokens: int, cost: float) -> None:
        try:
            await self.counters.charge(key_id, limits, tokens, cost)
        except Exception:
            logger.opt(exception=True).error("could not charge {} tokens to key {}", tokens, key_id)

    # --- admin -----------------------------------------------------------------------------------

    def known_keys(self) -> list[str]:
        return sorted({*self.keyring.ids, *self.overrides})

    async def describe(self, key_id: str) -> dict[str, Any]:
        return {"key_id": key_id, "configured": key_id in self.keyring.ids,
                "limits": asdict(self.limits_for(key_id)), "overrides": self.overrides.get(key_id, {}),
                "defaults": asdict(self.defaults), "usage": await self.counters.usage(key_id)}

    async def set_overrides(self, key_id: str, overrides: dict[str, Any]) -> None:
        await self.store.set_overrides(key_id, overrides)
        if self.redis is not None:
            await self.redis.hset(REDIS_LIMITS, key_id, orjson.dumps(overrides))
        self.overrides[key_id] = overrides

    async def delete_overrides(self, key_id: str) -> None:
        await self.store.delete_overrides(key_id)
        if self.redis is not None:
            await self.redis.hdel(REDIS_LIMITS, key_id)
        self.overrides.pop(key_id, None)

    async def reload_overrides(self) -> None:
        """Overrides set through another instance: from Redis when shared, else from the SQLite store."""
        if self.redis is not None:
            raw = await self.redis.hgetall(REDIS_LIMITS)
            self.overrides = {(k.decode() if isinstance(k, bytes) else k): orjson.loads(v) for k, v in raw.items()}
        else:
            self.overrides = await self.store.overrides()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.reload_overrides()
            except Exception:
                logger.opt(exception=True).warning("limits: reloading per-key overrides failed")
