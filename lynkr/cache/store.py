"""Where cached answers live: SQLite (the default; an in-process front answers repeats without a
query, writes are queued off the hot path) or Redis (shared by every instance using it).

Entries are JSON objects; expiry is absolute (unix seconds); ``max_entries`` bounds each store,
least recently used first out.
"""

from __future__ import annotations

import base64
import math
import time
from array import array
from collections import OrderedDict
from typing import Any, Protocol

import orjson

from lynkr.store import Database

MIGRATIONS = [
    "CREATE TABLE prompt_cache (key TEXT PRIMARY KEY, entry TEXT NOT NULL, created REAL NOT NULL, "
    "expires REAL NOT NULL, last_access REAL NOT NULL)",
    "CREATE INDEX prompt_cache_access ON prompt_cache (last_access)",
    "CREATE TABLE semantic_cache (id INTEGER PRIMARY KEY, partition TEXT NOT NULL, vector BLOB NOT NULL, "
    "entry TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL)",
    "CREATE INDEX semantic_cache_partition ON semantic_cache (partition, expires)",
]

PRUNE_EVERY = 64  # puts between two prunes of the SQLite tables


def normalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else []


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two unit vectors (0 when their sizes differ: another embeddings model)."""
    if len(a) != len(b) or not a:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True))


def pack(vector: list[float]) -> bytes:
    return array("f", vector).tobytes()


def unpack(data: bytes) -> list[float]:
    out = array("f")
    out.frombytes(data)
    return out.tolist()


class ExactStore(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, entry: dict[str, Any], ttl: float) -> None: ...


class SemanticStore(Protocol):
    async def candidates(self, partition: str) -> list[tuple[list[float], dict[str, Any]]]: ...

    async def add(self, partition: str, vector: list[float], entry: dict[str, Any], ttl: float) -> None: ...


class SqliteExactStore:
    def __init__(self, db: Database, max_entries: int) -> None:
        self.db = db
        self.max_entries = max_entries
        self.front: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._puts = 0

    async def open(self) -> SqliteExactStore:
        await self.db.migrate("cache", MIGRATIONS)
        return self

    async def get(self, key: str) -> dict[str, Any] | None:
        now = time.time()
        hit = self.front.get(key)
        if hit is not None:
            if hit[0] > now:
                self.front.move_to_end(key)
                self.db.enqueue("UPDATE prompt_cache SET last_access = ? WHERE key = ?", (now, key))
                return hit[1]
            del self.front[key]
        row = await self.db.fetchone("SELECT entry, expires FROM prompt_cache WHERE key = ? AND expires > ?",
                                     (key, now))
        if row is None:
            return None
        entry: dict[str, Any] = orjson.loads(row[0])
        self._remember(key, row[1], entry)
        self.db.enqueue("UPDATE prompt_cache SET last_access = ? WHERE key = ?", (now, key))
        return entry

    def _remember(self, key: str, expires: float, entry: dict[str, Any]) -> None:
        self.front[key] = (expires, entry)
        self.front.move_to_end(key)
        while len(self.front) > self.max_entries:
            self.front.popitem(last=False)

    async def put(self, key: str, entry: dict[str, Any], ttl: float) -> None:
        now = time.time()
        self._remember(key, now + ttl, entry)
        self.db.enqueue("INSERT OR REPLACE INTO prompt_cache (key, entry, created, expires, last_access) "
                        "VALUES (?, ?, ?, ?, ?)", (key, orjson.dumps(entry).decode(), now, now + ttl, now))
        self._puts += 1
        if self._puts % PRUNE_EVERY == 0:
            self.prune(now)

    def prune(self, now: float) -> None:
        self.db.enqueue("DELETE FROM prompt_cache WHERE expires <= ?", (now,))
        self.db.enqueue("DELETE FROM prompt_cache WHERE key IN (SELECT key FROM prompt_cache ORDER BY last_access "
                        "DESC LIMIT -1 OFFSET ?)", (self.max_entries,))
        self.db.enqueue("DELETE FROM semantic_cache WHERE expires <= ?", (now,))


class SqliteSemanticStore:
    """Entries per *partition* (the request without its last question); candidates are compared in Python
    (a partition holds a handful of paraphrase candidates, not a corpus). Adds are committed at once:
    they happen after the answer went out, and the next paraphrase must find them."""

    def __init__(self, db: Database, max_entries: int) -> None:
        self.db = db
        self.max_entries = max_entries
        self._puts = 0

    async def open(self) -> SqliteSemanticStore:
        await self.db.migrate("cache", MIGRATIONS)
        return self

    async def candidates(self, partition: str) -> list[tuple[list[float], dict[str, Any]]]:
        rows = await self.db.fetchall("SELECT vector, entry FROM semantic_cache WHERE partition = ? AND expires > ?",
                                      (partition, time.time()))
        return [(unpack(r[0]), orjson.loads(r[1])) for r in rows]

    async def add(self, partition: str, vector: list[float], entry: dict[str, Any], ttl: float) -> None:
        now = time.time()
        await self.db.execute(
            "INSERT INTO semantic_cache (partition, vector, entry, created, expires) VALUES (?, ?, ?, ?, ?)",
            (partition, pack(vector), orjson.dumps(entry).decode(), now, now + ttl))
        self._puts += 1
        if self._puts % PRUNE_EVERY == 0:
            self.db.enqueue("DELETE FROM semantic_cache WHERE expires <= ?", (now,))
            self.db.enqueue("DELETE FROM semantic_cache WHERE id IN (SELECT id FROM semantic_cache ORDER BY id DESC "
                            "LIMIT -1 OFFSET ?)", (self.max_entries,))


class RedisExactStore:
    def __init__(self, redis: Any, max_entries: int, prefix: str = "lynkr") -> None:
        self.redis = redis
        self.max_entries = max_entries
        self.prefix = prefix
        self.index = f"{prefix}:pc:index"

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(f"{self.prefix}:pc:{key}")
        if raw is None:
            return None
        await self.redis.zadd(self.index, {key: time.time()})
        entry: dict[str, Any] = orjson.loads(raw)
        return entry

    async def put(self, key: str, entry: dict[str, Any], ttl: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{self.prefix}:pc:{key}", orjson.dumps(entry), px=max(1, int(ttl * 1000)))
            pipe.zadd(self.index, {key: time.time()})
            pipe.zcard(self.index)
            *_, size = await pipe.execute()
        if size > self.max_entries:
            evicted = await self.redis.zpopmin(self.index, size - self.max_entries)
            if evicted:
                await self.redis.delete(*(f"{self.prefix}:pc:{_s(k)}" for k, _ in evicted))


class RedisSemanticStore:
    def __init__(self, redis: Any, max_entries: int, prefix: str = "lynkr") -> None:
        self.redis = redis
        self.max_entries = max_entries
        self.prefix = prefix

    async def candidates(self, partition: str) -> list[tuple[list[float], dict[str, Any]]]:
        now = time.time()
        raw = await self.redis.hgetall(f"{self.prefix}:sc:{partition}")
        out = []
        for value in raw.values():
            item = orjson.loads(value)
            if item["x"] > now:
                out.append((unpack(base64.b64decode(item["v"])), item["e"]))
        return out

    async def add(self, partition: str, vector: list[float], entry: dict[str, Any], ttl: float) -> None:
        now = time.time()
        key = f"{self.prefix}:sc:{partition}"
        item = {"v": base64.b64encode(pack(vector)).decode(), "e": entry, "x": now + ttl}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, f"{now:.6f}", orjson.dumps(item))
            pipe.pexpire(key, max(1, int(ttl * 1000)))
            pipe.hlen(key)
            *_, size = await pipe.execute()
        if size > self.max_entries:  # oldest first (fields are timestamps)
            fields = sorted(_s(f) for f in await self.redis.hkeys(key))
            await self.redis.hdel(key, *fields[: size - self.max_entries])


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
