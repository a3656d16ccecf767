"""Anthropic Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import web

from lynkr.errors import LynkrError, anthropic_error_body
from lynkr.observability.record import current_record
from lynkr.providers.base import ClientHints, client_hints
from lynkr.server import answers
from lynkr.server.answers import ANSWERS
from lynkr.server.keys import DISPATCHER, LOG_SUFFIX, SETTINGS
from lynkr.server.streaming import stream_events
from lynkr.sse import encode_sse
from lynkr.tokens import count_tokens
from lynkr.wire.anthropic import validate_count_tokens_request, validate_messages_request
from lynkr.wire.body import load_json, tools_seen

PING = encode_sse("ping", {"type": "ping"})


async def read_json(request: web.Request) -> Any:
    return load_json(await request.read())


def _encode(ev: dict[str, Any]) -> bytes:
    """``encode_sse(ev["type"], ev)``, inline: it runs for every event of every answer."""
    return b"event: " + ev["type"].encode() + b"\ndata: " + orjson.dumps(ev) + b"\n\n"


def _encode_error(err: LynkrError) -> bytes:
    return encode_sse("error", anthropic_error_body(err))


def json_response(body: Any, headers: dict[str, str]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers=headers)


async def messages(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    body = tools_seen.parse(raw, validate_messages_request)
    if (record := current_record.get()) is not None:
        record.request_bytes = len(raw)
    if beta := request.headers.get("anthropic-beta"):
        client_hints.set(ClientHints(anthropic_beta=beta))
    dispatcher = request.app[DISPATCHER]
    settings = request.app[SETTINGS]
    cache = request.app[ANSWERS]
    look = await answers.lookup(request, body, body, "anthropic")
    if body.get("stream") or request.query.get("stream") == "true":
        if look.hit:  # replayed as a real stream, through the same writer
            replay = cache.replay_stream(cache.hit_message(look))
            first, route_headers, rest, outcome = await anext(replay), look.headers(), replay, None
        else:
            opened = await dispatcher.open_stream(body, request.headers)
            request[LOG_SUFFIX] = f" {body['model']} -> {opened.route.describe()}"
            first, route_headers = opened.first, {**opened.route.headers(), **look.headers()}
            rest = cache.tap(look, opened.rest, first=opened.first, provider=opened.route.provider.backend.name,
                             model=opened.route.model)
            outcome = opened.outcome
        async with aclosing(rest if look.hit else opened.rest):
            return await stream_events(
                request, first, rest, encode=_encode, encode_error=_encode_error, ping=PING,
                ping_interval=settings.stream_ping_interval, headers=route_headers,
                idle_timeout=settings.stream_idle_timeout_ms / 1000, outcome=outcome,
            )
    if look.hit:
        return json_response(cache.hit_message(look), look.headers())
    route, message = await dispatcher.create_message(body, request.headers)
    request[LOG_SUFFIX] = f" {body['model']} -> {route.describe()}"
    await cache.store(look, message, provider=route.provider.backend.name, model=route.model)
    return json_response(message, {**route.headers(), **look.headers()})


async def count(request: web.Request) -> web.Response:
    body = validate_count_tokens_request(await read_json(request))
    # in a thread: the first call loads the tokenizer (~40 MB, so not at startup) and a large request
    # takes milliseconds to encode; tiktoken releases the GIL while it works
    return json_response({"input_tokens": await asyncio.to_thread(count_tokens, body)}, {})


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count)
