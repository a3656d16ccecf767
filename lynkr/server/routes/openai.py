"""OpenAI dialects: ``POST /v1/chat/completions`` (Cursor, Continue, SDKs) and ``POST /v1/responses``
(Codex). Chat clients pass straight through to a backend that speaks Chat Completions, Responses clients to one
that speaks the Responses API; otherwise both dialects are converted through the Anthropic hub, streams
translated as they arrive."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from lynkr.convert.chat_inbound import chat_request_to_hub, hub_message_to_chat, hub_stream_to_chat
from lynkr.convert.openai_chat import chat_usage as openai_usage_to_anthropic
from lynkr.convert.responses import (
    ResponsesStream,
    hub_message_to_response,
    new_id,
    response_skeleton,
    responses_request_to_hub,
)
from lynkr.convert.responses_backend import FINAL_EVENTS, PassthroughWatch, responses_usage
from lynkr.dispatch import Route
from lynkr.errors import InvalidRequest, LynkrError, openai_error_body
from lynkr.observability.record import current_record, tap_usage
from lynkr.providers.base import ResponsesBackend, speaks_chat, speaks_responses
from lynkr.server import answers
from lynkr.server.answers import ANSWERS
from lynkr.server.keys import DISPATCHER, LOG_SUFFIX, RESPONSES, SETTINGS
from lynkr.server.routes.anthropic import json_response
from lynkr.server.streaming import stream_events
from lynkr.store.sessions import capture
from lynkr.wire.body import tools_seen

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


def _data(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _error_data(err: LynkrError) -> bytes:
    return _data(openai_error_body(err))


def _raw(chunk: bytes) -> bytes:
    return chunk


def _model_request(body: Any) -> dict[str, Any]:
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
    body = tools_seen.parse(await request.read(), _model_request)
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
            if speaks_chat(route.provider):
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
        if speaks_chat(route.provider):  # same dialect: bytes pass through
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
                                   idle_timeout=settings.stream_idle_timeout_ms / 1000, outcome=opened.outcome)


def _frame(ev: dict[str, Any]) -> bytes:
    return b"event: " + ev["type"].encode() + b"\n" + _data(ev)


async def _frames(events: AsyncGenerator[dict[str, Any], None],
                  on_final: Callable[[dict[str, Any]], None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(events):
        async for ev in events:
            if ev["type"] in FINAL_EVENTS:
                on_final(ev["response"])
            yield _frame(ev)


def _hub_events(route: Route, prepared: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    events = route.provider.stream_message(prepared, route.model)
    record = current_record.get()
    return tap_usage(events, record) if record is not None else events


def _count_responses_usage(response: dict[str, Any]) -> None:
    """A passed-through Responses answer's usage, into the request record."""
    if (usage := response.get("usage")) and (record := current_record.get()) is not None:
        record.add_usage(responses_usage(usage))


# the event that ends a client's stream when its backend fails (None: the backend's own already did)
Closer = Callable[[LynkrError], dict[str, Any] | None]


def _passed_stream(backend: ResponsesBackend, model: str, body: dict[str, Any], response_id: str
                   ) -> tuple[AsyncGenerator[bytes, None], Closer]:
    """A Responses backend's stream for a Responses client: its bytes, unchanged."""
    watch = PassthroughWatch()
    skeleton = response_skeleton(body, response_id, time.time(), "in_progress")

    def observe(ev: dict[str, Any]) -> None:
        watch.observe(ev)
        if ev.get("type") in FINAL_EVENTS and isinstance(ev.get("response"), dict):
            _count_responses_usage(ev["response"])
            capture(ev["response"])  # the session transcript's answer

    return (backend.response_stream(body, model, observe=observe),
            lambda err: watch.failed(err.message, err.openai_type, skeleton))


async def responses(request: web.Request) -> web.StreamResponse:
    """Same dialect (a Responses backend): the client's body passes through with only the model mapped,
    ``previous_response_id`` included. Otherwise through the hub, which rebuilds a conversation from
    lynkr's own store of the responses it answered."""
    body = tools_seen.parse(await request.read(), _model_request)
    store = request.app[RESPONSES]
    settings = request.app[SETTINGS]
    previous = body.get("previous_response_id")
    kept = store.get(previous) if previous else None
    history = kept or []
    hub, tool_map = responses_request_to_hub(body, history)
    new_input = [{"role": "user", "content": body["input"]}] if isinstance(body["input"], str) else body["input"]
    dispatcher = request.app[DISPATCHER]
    response_id = new_id("resp")

    def through_hub() -> None:
        if previous and kept is None:
            raise InvalidRequest(f"Previous response with id '{previous}' not found.", field="previous_response_id")

    def keep(response: dict[str, Any], *, streamed: bool = False) -> None:
        store.put(response_id, history, new_input, response["output"])
        if streamed:
            capture(response)  # the session transcript's answer

    if not body.get("stream"):
        async def call(route: Route, prepared: dict[str, Any]) -> dict[str, Any]:
            if speaks_responses(route.provider):
                passed = await route.provider.create_response(body, route.model)
                _count_responses_usage(passed)
                return passed
            through_hub()
            message = await route.provider.create_message(prepared, route.model)
            if (record := current_record.get()) is not None:
                record.add_usage(message.get("usage"))
            response = hub_message_to_response(message, body=body, tool_map=tool_map, response_id=response_id)
            keep(response)
            return response

        route, response = await dispatcher.run(hub, request.headers, call)
        request[LOG_SUFFIX] = f" {body['model']} -> {route.describe()}"
        return json_response(response, route.headers())

    closers: list[Closer] = []  # one per attempt; the last one's serves

    def opener(route: Route, prepared: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        if speaks_responses(route.provider):  # same dialect: bytes pass through
            stream, close = _passed_stream(route.provider, route.model, body, response_id)
        else:
            through_hub()
            translator = ResponsesStream(body, tool_map, response_id=response_id)
            stream = _frames(translator.translate(_hub_events(route, prepared)), partial(keep, streamed=True))
            close = translator.failed
        closers.append(close)
        return stream

    opened = await dispatcher.open(hub, request.headers, opener)
    request[LOG_SUFFIX] = f" {body['model']} -> {opened.route.describe()}"
    close = closers[-1]
    async with aclosing(opened.rest):
        return await stream_events(request, opened.first, opened.rest, encode=_raw,
                                   encode_error=lambda err: _frame(ev) if (ev := close(err)) else b"", ping=PING,
                                   ping_interval=settings.stream_ping_interval, headers=opened.route.headers(),
                                   idle_timeout=settings.stream_idle_timeout_ms / 1000, outcome=opened.outcome)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/responses", responses)
