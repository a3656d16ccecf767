"""Anthropic Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from lynkr.errors import InvalidRequest, LynkrError, anthropic_error_body
from lynkr.routing.model_map import upstream_model
from lynkr.server.keys import LOG_SUFFIX, PROVIDER, SETTINGS
from lynkr.server.streaming import stream_events
from lynkr.sse import encode_sse
from lynkr.tokens import count_tokens
from lynkr.wire.anthropic import validate_count_tokens_request, validate_messages_request

PING = encode_sse("ping", {"type": "ping"})


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise InvalidRequest("request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON ({exc})") from None


def _encode(ev: dict[str, Any]) -> bytes:
    return encode_sse(ev["type"], ev)


def _encode_error(err: LynkrError) -> bytes:
    return encode_sse("error", anthropic_error_body(err))


def json_response(body: Any, headers: dict[str, str]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers=headers)


async def messages(request: web.Request) -> web.StreamResponse:
    body = validate_messages_request(await read_json(request))
    settings = request.app[SETTINGS]
    provider = request.app[PROVIDER]
    model = upstream_model(body["model"], default=provider.default_model, small_fast=settings.small_fast_model)
    headers = {"X-Lynkr-Provider": provider.backend.name, "X-Lynkr-Model": model}
    request[LOG_SUFFIX] = f" {body['model']} -> {provider.backend.name}:{model}"
    if body.get("stream") or request.query.get("stream") == "true":
        return await stream_events(
            request, provider.stream_message(body, model), encode=_encode, encode_error=_encode_error,
            ping=PING, ping_interval=settings.stream_ping_interval, headers=headers,
        )
    return json_response(await provider.create_message(body, model), headers)


async def count(request: web.Request) -> web.Response:
    body = validate_count_tokens_request(await read_json(request))
    return json_response({"input_tokens": count_tokens(body)}, {})


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count)
