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
from lynkr.convert.openai_chat import chat_usage as openai_usage_to_anthropic
from lynkr.convert.responses import ResponsesStream, hub_message_to_response, new_id, responses_request_to_hub
from lynkr.dispatch import Route
from lynkr.errors import InvalidRequest, LynkrError, openai_error_body
from lynkr.observability.record import current_record
from lynkr.providers.base import ChatCompletionsBackend
from lynkr.server import answers
from lynkr.server.answers import ANSWERS
from lynkr.server.keys import DISPATCHER, LOG_SUFFIX, RESPONSES, SETTINGS
from lynkr.server.routes.anthropic import json_response, read_json
from lynkr.server.streaming import stream_events
from lynkr.store.sessions import capture

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


def _data(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _error_data(err: LynkrError) -> bytes:
    return _data(openai_error_body(err))


def _raw(chunk: bytes) -> bytes:
    return chunk


async def _object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model must be a non-empty string", field="model")
    return body


async def _sse(chunks: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(chunks):
        async for chunk in chunks:
            yield _data(chunk)
    yield DONE


def _count_chat_usage(event: dict[str, Any]) -> None:
    """A passed-through Chat Completions answer's (or stream chunk's) usage, into the request record."""
    usage = event.get("usage")
    if usage and (record := current_record.get()) is not None:
        record.add_usage(openai_usage_to_anthropic(usage))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await _object(request)
    hub = chat_request_to_hub(body)  # validates the request, and is what routing reads
    dispatcher = request.app[DISPATCHER]
    settings = request.app[SETTINGS]
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    cache = request.app[ANSWERS]
    look = await answers.lookup(request, body, hub, "chat")

    if not body.get("stream"):
        if look.hit:
            return json_response(hub_message_to_chat(cache.hit_message(look), model=body["model"]), look.headers())

        async def call(route: Route, prepared: dict[str, Any]) -> dict[str, Any]:
            if isinstance(route.provider, ChatCompletionsBackend):
                completion = await route.provider.chat_completion(body, route.model)
                _count_chat_usage(completion)
                return completion
            message = await route.provider.create_message(prepared, route.model)
            return hub_message_to_chat(message, model=body["model"])

        route, completion = await dispatcher.run(hub, request.headers, call)
        request[LOG_SUFFIX] = f" {body['model']} -> {route.describe()}"
        await answers.store_chat(request, look, completion, route)
        return json_response(completion, {**route.headers(), **look.headers()})

    if look.hit:
        replay = _sse(hub_stream_to_chat(cache.replay_stream(cache.hit_message(look)), model=body["model"],
                                         include_usage=include_usage))
        async with aclosing(replay):
            return await stream_events(request, await anext(replay), replay, encode=_raw, encode_error=_error_data,
                                       ping=None, ping_interval=settings.stream_ping_interval,
                                       headers=look.headers(), idle_timeout=None)

    def opener(route: Route, prepared: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        if isinstance(route.provider, ChatCompletionsBackend):  # same dialect: bytes pass through
            raw = route.provider.chat_stream(body, route.model, observe=_count_chat_usage)
            return answers.tap_chat_bytes(request, look, raw, route=route, model=body["model"])
        events = cache.tap(look, route.provider.stream_message(prepared, route.model),
                           provider=route.provider.backend.name, model=route.model)
        return _sse(hub_stream_to_chat(events, model=body["model"], include_usage=include_usage))

    opened = await dispatcher.open(hub, request.headers, opener)
    request[LOG_SUFFIX] = f" {body['model']} -> {opened.route.describe()}"
    async with aclosing(opened.rest):
        return await stream_events(request, opened.first, opened.rest, encode=_raw, encode_error=_error_data,
                                   ping=None, ping_interval=settings.stream_ping_interval,
                                   headers={**opened.route.headers(), **look.headers()},
                                   idle_timeout=settings.stream_idle_timeout_ms / 1000)


def _frame(ev: dict[str, Any]) -> bytes:
    return b"event: " + ev["type"].encode() + b"\n" + _data(ev)


async def responses(request: web.Request) -> web.StreamResponse:
    body = await _object(request)
    store = request.app[RESPONSES]
    settings = request.app[SETTINGS]
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
        route, message = await dispatcher.create_message(hub, request.headers)
        request[LOG_SUFFIX] = f" {body['model']} -> {route.describe()}"
        response = hub_message_to_response(message, body=body, tool_map=tool_map, response_id=response_id)
        store.put(response_id, history, new_input, response["output"])
        return json_response(response, route.headers())

    translators: list[ResponsesStream] = []

    def opener(route: Route, prepared: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        translators.append(ResponsesStream(body, tool_map, response_id=response_id))
        return translators[-1].translate(route.provider.stream_message(prepared, route.model))

    opened = await dispatcher.open(hub, request.headers, opener)
    request[LOG_SUFFIX] = f" {body['model']} -> {opened.route.describe()}"
    translator = translators[-1]

    def encode(ev: dict[str, Any]) -> bytes:
        if ev["type"] in ("response.completed", "response.incomplete"):
            store.put(response_id, history, new_input, ev["response"]["output"])
            capture(ev["response"])  # the session transcript's answer
        return _frame(ev)

    async with aclosing(opened.rest):
        return await stream_events(request, opened.first, opened.rest, encode=encode,
                                   encode_error=lambda err: _frame(translator.failed(err)), ping=PING,
                                   ping_interval=settings.stream_ping_interval, headers=opened.route.headers(),
                                   idle_timeout=settings.stream_idle_timeout_ms / 1000)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/responses", responses)
