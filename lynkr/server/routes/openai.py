"""OpenAI dialects: ``POST /v1/chat/completions`` (Cursor, Continue, SDKs) and ``POST /v1/responses``
(Codex). Chat clients pass straight through to a backend that speaks Chat Completions; otherwise
both dialects are converted through the Anthropic hub, streams translated as they arrive."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson
from aiohttp import web

from lynkr.convert.chat_inbound import chat_request_to_hub, hub_message_to_chat, hub_stream_to_chat
from lynkr.convert.responses import ResponsesStream, hub_message_to_response, new_id, responses_request_to_hub
from lynkr.errors import InvalidRequest, LynkrError, openai_error_body
from lynkr.providers.base import ChatCompletionsBackend
from lynkr.server.keys import DISPATCHER, LOG_SUFFIX, RESPONSES, SETTINGS
from lynkr.server.routes.anthropic import json_response, read_json
from lynkr.server.streaming import stream_events

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


def _data(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _error_data(err: LynkrError) -> bytes:
    return _data(openai_error_body(err))


def _raw(chunk: bytes) -> bytes:
    return chunk


async def _chain(first: Any, rest: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    yield first
    async for item in rest:
        yield item


async def _object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model must be a non-empty string", field="model")
    return body


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await _object(request)
    dispatcher = request.app[DISPATCHER]
    settings = request.app[SETTINGS]
    route = dispatcher.route(body)
    request[LOG_SUFFIX] = f" {body['model']} -> {route.describe()}"
    stream = bool(body.get("stream"))
    if isinstance(route.provider, ChatCompletionsBackend):
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise InvalidRequest("messages must be a non-empty array", field="messages")
        if not stream:
            return json_response(await route.provider.chat_completion(body, route.model), route.headers())
        raw = await dispatcher.open_chat_passthrough(route, body)
        async with aclosing(raw.rest):
            return await stream_events(request, raw.first, raw.rest, encode=_raw, encode_error=_error_data,
                                       ping=None, ping_interval=settings.stream_ping_interval, headers=route.headers())

    hub = chat_request_to_hub(body)
    if not stream:
        route, message = await dispatcher.create_message(hub)
        return json_response(hub_message_to_chat(message, model=body["model"]), route.headers())
    opened = await dispatcher.open_stream(hub)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    async with aclosing(opened.rest):
        chunks = hub_stream_to_chat(_chain(opened.first, opened.rest), model=body["model"], include_usage=include_usage)
        first = await anext(chunks)
        return await stream_events(request, first, chunks, encode=_data, encode_error=_error_data, ping=PING,
                                   ping_interval=settings.stream_ping_interval, headers=opened.route.headers(),
                                   tail=DONE)


async def responses(request: web.Request) -> web.StreamResponse:
    body = await _object(request)
    store = request.app[RESPONSES]
    history: list[dict[str, Any]] = []
    if body.get("previous_response_id"):
        found = store.get(body["previous_response_id"])
        if found is None:
            raise InvalidRequest(f"Previous response with id '{body['previous_response_id']}' not found.",
                                 field="previous_response_id")
        history = found
    hub, tool_map = responses_request_to_hub(body, history)
    new_input = [{"role": "user", "content": body["input"]}] if isinstance(body["input"], str) else body["input"]
    dispatcher = request.app[DISPATCHER]
    response_id = new_id("resp")
    if not body.get("stream"):
        route, message = await dispatcher.create_message(hub)
        request[LOG_SUFFIX] = f" {body['model']} -> {route.describe()}"
        response = hub_message_to_response(message, body=body, tool_map=tool_map, response_id=response_id)
        store.put(response_id, history, new_input, response["output"])
        return json_response(response, route.headers())

    opened = await dispatcher.open_stream(hub)
    request[LOG_SUFFIX] = f" {body['model']} -> {opened.route.describe()}"
    translator = ResponsesStream(body, tool_map, response_id=response_id)
    async with aclosing(opened.rest):
        events = translator.translate(_chain(opened.first, opened.rest))
        first = await anext(events)

        def encode(ev: dict[str, Any]) -> bytes:
            if ev["type"] in ("response.completed", "response.incomplete"):
                store.put(response_id, history, new_input, ev["response"]["output"])
            return b"event: " + ev["type"].encode() + b"\n" + _data(ev)

        def encode_error(err: LynkrError) -> bytes:
            ev = translator.failed(err)
            return b"event: " + ev["type"].encode() + b"\n" + _data(ev)

        return await stream_events(request, first, events, encode=encode, encode_error=encode_error, ping=PING,
                                   ping_interval=request.app[SETTINGS].stream_ping_interval,
                                   headers=opened.route.headers())


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/responses", responses)
