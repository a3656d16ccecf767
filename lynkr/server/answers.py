"""The answer caches in the server: built at startup (cleanup_ctx), and the small helpers route handlers
call so they stay thin (``lookup`` before dispatching, ``replay`` on a hit, ``AnswerCache.store`` /
``AnswerCache.tap`` after)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import web
from loguru import logger

from lynkr.cache.service import AnswerCache, Lookup
from lynkr.cache.store import (
    ExactStore,
    RedisExactStore,
    RedisSemanticStore,
    SemanticStore,
    SqliteExactStore,
    SqliteSemanticStore,
)
from lynkr.convert.anthropic_stream import fold_events
from lynkr.convert.openai_chat import chat_stream_to_anthropic, chat_to_anthropic
from lynkr.dispatch import Dispatcher, Route
from lynkr.errors import LynkrError, NotConfigured, UpstreamBadResponse
from lynkr.server.access import CALLER, SHARED
from lynkr.server.keys import DISPATCHER, SETTINGS, STORE
from lynkr.sse import SSEDecoder
from lynkr.store.sessions import answer_sink, capture

ANSWERS = web.AppKey("answers", AnswerCache)


def embedder(dispatcher: Dispatcher) -> Any:
    """Text -> vector from the configured embeddings backend (the POST /v1/embeddings machinery)."""
    route = dispatcher.embeddings_route(None)

    async def embed(text: str) -> list[float]:
        body = await route.provider.create_embeddings({"input": text, "model": route.model}, route.model)
        try:
            vector = body["data"][0]["embedding"]
        except (KeyError, IndexError, TypeError):
            raise UpstreamBadResponse("embeddings answer without data[0].embedding",
                                      provider=route.provider.backend.name) from None
        if not isinstance(vector, list) or not vector:
            raise UpstreamBadResponse("embeddings answer is not a float list", provider=route.provider.backend.name)
        return [float(x) for x in vector]

    logger.info("semantic cache: embeddings from {}", route.describe())
    return embed


async def answers_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    redis = app[SHARED].redis
    exact: ExactStore | None = None
    semantic: SemanticStore | None = None
    if settings.prompt_cache_enabled:
        exact = (RedisExactStore(redis, settings.prompt_cache_max_entries) if redis is not None
                 else await SqliteExactStore(app[STORE], settings.prompt_cache_max_entries).open())
    embed = None
    if settings.semantic_cache_enabled:
        try:
            embed = embedder(app[DISPATCHER])
        except NotConfigured as err:
            logger.warning("semantic cache is off: {}", err.message)
        else:
            semantic = (RedisSemanticStore(redis, settings.semantic_cache_max_entries) if redis is not None
                        else await SqliteSemanticStore(app[STORE], settings.semantic_cache_max_entries).open())
    app[ANSWERS] = AnswerCache(settings, exact, semantic, embed)
    yield


def scope(request: web.Request, dialect: str) -> dict[str, Any]:
    """What separates two identical bodies' answers: dialect, the caller's key, Anthropic betas."""
    caller = request.get(CALLER)
    return {"dialect": dialect, "key": caller.key_id if caller else None,
            "beta": request.headers.get("anthropic-beta")}


async def lookup(request: web.Request, keyed: dict[str, Any], hub: dict[str, Any], dialect: str) -> Lookup:
    return await request.app[ANSWERS].lookup(keyed, hub, lambda: scope(request, dialect))


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(answers_ctx)


async def store_chat(request: web.Request, look: Lookup, completion: dict[str, Any], route: Route) -> None:
    """Keep a Chat Completions answer (in the hub shape, like every cached answer)."""
    if look.key is None or look.hit:
        return
    try:
        message = chat_to_anthropic(completion, model=str(completion.get("model") or route.model))
    except LynkrError:
        return
    await request.app[ANSWERS].store(look, message, provider=route.provider.backend.name, model=route.model)


def tap_chat_bytes(request: web.Request, look: Lookup, chunks: AsyncGenerator[bytes, None], *,
                   route: Route, model: str) -> AsyncGenerator[bytes, None]:
    """A passed-through Chat Completions stream (bytes, unchanged): when it ends with ``[DONE]``, fold it into
    the answer for the cache and the session transcript. ``chunks`` itself when neither wants it."""
    if answer_sink.get() is None and (look.key is None or look.hit):
        return chunks
    return _kept_chat_bytes(request, look, chunks, route=route, model=model)


async def _kept_chat_bytes(request: web.Request, look: Lookup, chunks: AsyncGenerator[bytes, None], *,
                           route: Route, model: str) -> AsyncGenerator[bytes, None]:
    seen: list[bytes] = []
    async with aclosing(chunks):
        async for chunk in chunks:
            seen.append(chunk)
            yield chunk
    decoder = SSEDecoder()
    events = decoder.feed(b"".join(seen)) + decoder.close()
    if not events or events[-1].data.strip() != "[DONE]":
        return  # cut short: not a complete answer
    try:
        parsed = [orjson.loads(e.data) for e in events[:-1] if e.data.strip()]

        async def replay() -> AsyncGenerator[dict[str, Any], None]:
            for item in parsed:
                yield item

        message = fold_events([ev async for ev in chat_stream_to_anthropic(replay(), model=model)])
    except (orjson.JSONDecodeError, LynkrError, ValueError):
        return
    capture(message)
    await request.app[ANSWERS].store(look, message, provider=route.provider.backend.name, model=route.model)
