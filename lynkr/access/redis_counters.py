"""Rate-limit buckets and budget counters in Redis: every lynkr pointed at the same ``LYNKR_REDIS_URL``
shares them. Each admission is one Lua script call (atomic: refill, check, take), each charge another;
the clock is Redis's own (``TIME``), so machines with skewed clocks still agree.

Usage is also written to SQLite (``LimitsStore.record_usage``) as this instance's durable history.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from lynkr.access.counters import LimitsStore
from lynkr.access.limits import Admission, Limits, Usage, check_budgets, periods, rate_limited

# KEYS: request bucket, token bucket, day usage, month usage
# ARGV: rpm, tpm, day ttl (s), month ttl (s), then the day's and the month's budgets (requests, tokens, usd;
# 0: none). Status: 0 admitted, 1 no request token, 2 token bucket in debt, 3 day budget, 4 month budget.
# buckets are hashes {level, at(ms)}; usage hashes {requests, tokens, cost}
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local function level(key, cap)
  if cap <= 0 then return -1 end
  local v = redis.call('HMGET', key, 'level', 'at')
  local lv, at = tonumber(v[1]), tonumber(v[2])
  if lv == nil then return cap end
  return math.min(cap, lv + math.max(0, now - at) * cap / 60000)
end
local r = level(KEYS[1], rpm)
local k = level(KEYS[2], tpm)
local day = redis.call('HMGET', KEYS[3], 'requests', 'tokens', 'cost')
local month = redis.call('HMGET', KEYS[4], 'requests', 'tokens', 'cost')
local function spent(u, base)
  for i = 1, 3 do
    local cap = tonumber(ARGV[base + i])
    if cap > 0 and tonumber(u[i] or '0') >= cap then return true end
  end
  return false
end
local status = 0
if spent(day, 4) then status = 3 elseif spent(month, 7) then status = 4
elseif rpm > 0 and r < 1 then status = 1 elseif tpm > 0 and k <= 0 then status = 2 end
if status == 0 then
  if rpm > 0 then r = r - 1 end
  redis.call('HINCRBY', KEYS[3], 'requests', 1)
  redis.call('HINCRBY', KEYS[4], 'requests', 1)
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[4]))
end
if rpm > 0 then redis.call('HSET', KEYS[1], 'level', tostring(r), 'at', now); redis.call('PEXPIRE', KEYS[1], 120000) end
if tpm > 0 then redis.call('HSET', KEYS[2], 'level', tostring(k), 'at', now); redis.call('PEXPIRE', KEYS[2], 120000) end
return {status, tostring(r), tostring(k), day[1] or '0', day[2] or '0', day[3] or '0',
        month[1] or '0', month[2] or '0', month[3] or '0'}
"""

# KEYS: token bucket, day usage, month usage; ARGV: tpm, tokens, cost, day ttl, month ttl
CHARGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2])
if tpm > 0 and tokens > 0 then
  local v = redis.call('HMGET', KEYS[1], 'level', 'at')
  local lv, at = tonumber(v[1]), tonumber(v[2])
  if lv == nil then lv = tpm else lv = math.min(tpm, lv + math.max(0, now - at) * tpm / 60000) end
  redis.call('HSET', KEYS[1], 'level', tostring(lv - tokens), 'at', now)
  redis.call('PEXPIRE', KEYS[1], 120000 + math.ceil(math.max(0, tokens - lv) * 60000 / tpm))
end
for i = 2, 3 do
  redis.call('HINCRBY', KEYS[i], 'tokens', tokens)
  redis.call('HINCRBYFLOAT', KEYS[i], 'cost', ARGV[3])
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[i + 2]))
end
return 1
"""


class RedisCounters:
    def __init__(self, redis: Redis, store: LimitsStore, prefix: str = "lynkr") -> None:
        self.redis = redis
        self.store = store
        self.prefix = prefix
        self._admit = redis.register_script(ADMIT)
        self._charge = redis.register_script(CHARGE)

    def _keys(self, key_id: str, now: float) -> tuple[list[str], dict[str, tuple[str, float]]]:
        p = periods(now)
        return [f"{self.prefix}:rl:{key_id}:requests", f"{self.prefix}:rl:{key_id}:tokens",
                f"{self.prefix}:usage:{key_id}:{p['day'][0]}", f"{self.prefix}:usage:{key_id}:{p['month'][0]}"], p

    @staticmethod
    def _ttls(p: dict[str, tuple[str, float]]) -> list[int]:
        return [int(p["day"][1]) + 86_400, int(p["month"][1]) + 86_400]  # kept a day past the period

    async def admit(self, key_id: str, limits: Limits) -> Admission:
        now = time.time()
        keys, p = self._keys(key_id, now)
        budgets = [v or 0 for period in ("day", "month") for v in limits.budget(period)]
        res = await self._admit(keys=keys, args=[limits.rpm or 0, limits.tpm or 0, *self._ttls(p), *budgets])
        status = int(res[0])
        if status in (3, 4):
            used = {"day": Usage(int(res[3]), int(res[4]), float(res[5])),
                    "month": Usage(int(res[6]), int(res[7]), float(res[8]))}
            check_budgets(key_id, limits, used, {n: end for n, (_, end) in p.items()})
        adm = Admission(limits)
        r, k = float(res[1]), float(res[2])
        if limits.rpm:
            adm.requests_remaining = r
            adm.requests_reset = max(0.0, (limits.rpm - r) * 60 / limits.rpm)
        if limits.tpm:
            adm.tokens_remaining = k
            adm.tokens_reset = max(0.0, (limits.tpm - k) * 60 / limits.tpm)
        if status == 1 and limits.rpm:
            raise rate_limited(key_id, "requests", limits.rpm, (1 - r) * 60 / limits.rpm, adm)
        if status == 2 and limits.tpm:
            raise rate_limited(key_id, "tokens", limits.tpm, (1 - k) * 60 / limits.tpm, adm)
        for pid, _ in p.values():
            self.store.record_usage(key_id, pid, Usage(requests=1))
        return adm

    async def charge(self, key_id: str, limits: Limits, tokens: int, cost_usd: float) -> None:
        if not tokens and not cost_usd:
            return
        now = time.time()
        keys, p = self._keys(key_id, now)
        await self._charge(keys=[keys[1], keys[2], keys[3]],
                           args=[limits.tpm or 0, tokens, repr(float(cost_usd)), *self._ttls(p)])
        for pid, _ in p.values():
            self.store.record_usage(key_id, pid, Usage(tokens=tokens, cost_usd=cost_usd))

    async def usage(self, key_id: str) -> dict[str, dict[str, Any]]:
        now = time.time()
        keys, p = self._keys(key_id, now)
        out: dict[str, dict[str, Any]] = {}
        for name, key in (("day", keys[2]), ("month", keys[3])):
            v = await self.redis.hmget(key, ["requests", "tokens", "cost"])
            out[name] = {"period": p[name][0][2:], "requests": int(v[0] or 0), "tokens": int(v[1] or 0),
                         "cost_usd": round(float(v[2] or 0), 6), "resets_in_s": round(p[name][1])}
        return out

    async def close(self) -> None:
        return None
