"""Request id, error rendering (each inbound API in its own error shape), and the access log line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from loguru import logger

from lynkr.convert.anthropic_stream import random_hex
from lynkr.errors import (
    ABORTED,
    ClientError,
    LynkrError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    OverloadedOpenAI,
    RequestTooLarge,
    ShuttingDown,
    anthropic_error_body,
    error_headers,
    openai_error_body,
)
from lynkr.observability.record import RequestRecord, current_record, notify
from lynkr.server.keys import ACCESS_LOG, AUTHORIZE, LOG_SUFFIX, OBSERVERS, REQUEST_ID, SHEDDER, STATE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def dialect(path: str) -> str:
    return "anthropic" if path.startswith("/v1/messages") else "openai"


def render_error(request: web.Request, err: LynkrError) -> web.Response:
    rid = request.get(REQUEST_ID)
    body = anthropic_error_body(err, rid) if dialect(request.path) == "anthropic" else openai_error_body(err)
    return web.json_response(body, status=err.status, headers=error_headers(err))


def _from_http_exception(exc: web.HTTPException) -> LynkrError:
    if exc.status == 404:
        return NotFound(f"no route for this path; lynkr serves /v1/messages (got {exc.reason})")
    if exc.status == 405:
        return MethodNotAllowed(f"method not allowed: {exc.reason}")
    if exc.status == 413:
        return RequestTooLarge("request body is larger than REQUEST_JSON_LIMIT allows")
    err = ClientError(exc.text or exc.reason)
    err.status = exc.status  # type: ignore[misc]
    return err


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request, in one middleware (each middleware is one more frame on every resumption of every
    stream): accept or mint X-Request-ID and answer with it; record the request (lynkr.observability.record)
    and hand the record to the observers; check the caller (``AUTHORIZE``: lynkr.server.access); admit model requests
    (load shedding, ``Admitted``); render every failure in the caller's API shape; log one line."""
    app = request.app
    path = request.path
    rid = request.headers.get("X-Request-ID") or "req_" + random_hex()
    request[REQUEST_ID] = rid
    record = RequestRecord(rid, request.method, path, dialect(path))
    record.loop = request.task.get_loop()
    token = current_record.set(record)
    try:
        try:
            await app[AUTHORIZE](request)
            if path.startswith(MODEL_PATHS):
                with Admitted(app, record.dialect, asyncio.current_task(record.loop)):
                    resp = await handler(request)
            else:
                resp = await handler(request)
        except LynkrError as err:
            record.error_type = err.anthropic_type
            resp = render_error(request, err)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            http_err = _from_http_exception(exc)
            record.error_type = http_err.anthropic_type
            resp = render_error(request, http_err)
        except Exception:
            logger.opt(exception=True).error("unhandled error on {} {} [{}]", request.method, path, rid)
            record.error_type = "api_error"
            resp = render_error(request, LynkrError(f"internal error in lynkr; see its log for request {rid}"))
    finally:
        current_record.reset(token)
    if not resp.prepared:  # a stream carries it from the start (lynkr.server.streaming)
        resp.headers["X-Request-ID"] = rid
    record.status = resp.status
    record.finished = time.perf_counter()
    if app[ACCESS_LOG]:
        logger.bind(request_id=rid).info("{} {} {} {:.0f}ms [{}]{}", request.method, path, resp.status,
                                         (record.finished - record.started) * 1000, rid, request.get(LOG_SUFFIX, ""))
    notify(app[OBSERVERS], record)
    return resp


MODEL_PATHS = ("/v1/messages", "/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/chat/completions",
               "/responses")


class Admitted:
    """``with Admitted(app):`` around a model request: refused while draining or overloaded, counted while in
    flight (the drain waits for the count to reach zero). Health, metrics and admin paths are not counted."""

    __slots__ = ("shedder", "task")

    def __init__(self, app: web.Application, dialect: str, task: asyncio.Task[Any] | None) -> None:
        if app[STATE]["draining"]:
            raise ShuttingDown("lynkr is shutting down; retry (another instance will answer)", retry_after=2)
        self.shedder = app[SHEDDER]
        self.task = task
        try:
            self.shedder.enter(self.task)
        except Overloaded as err:  # Anthropic's 529 overloaded_error; OpenAI clients get a 503
            if dialect == "openai":
                raise OverloadedOpenAI(err.message, retry_after=err.retry_after) from None
            raise

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self.shedder.leave(self.task)
        if kind is not None and issubclass(kind, asyncio.CancelledError) and self.shedder.aborting \
                and self.task is not None:
            self.task.uncancel()  # the drain's time ran out (LoadShedder.abort): answer with an error, not a cut
            raise ShuttingDown(ABORTED, retry_after=2) from None

