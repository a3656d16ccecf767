"""Session transcripts: recorded by the ``transcripts`` middleware, read with ``GET /v1/sessions/{id}``.

A client key reads only the turns it made itself; the admin key (or anyone, with no keys configured)
reads every turn of the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web
from loguru import logger

from lynkr.access.control import LIMITED_PATHS
from lynkr.errors import LynkrError, NotFound
from lynkr.observability.record import current_record
from lynkr.server.access import CALLER
from lynkr.server.keys import SETTINGS, STORE
from lynkr.server.middlewares import Handler
from lynkr.server.routes.anthropic import json_response
from lynkr.store import Database
from lynkr.store.sessions import SessionStore, answer_sink

SESSIONS = web.AppKey("sessions", SessionStore)


@web.middleware
async def transcripts(request: web.Request, handler: Handler) -> web.StreamResponse:
    record = current_record.get()
    if request.method != "POST" or request.path not in LIMITED_PATHS or record is None or not record.session_id \
            or SESSIONS not in request.app:
        return await handler(request)
    sink: list[Any] = []
    token = answer_sink.set(sink)
    resp: web.StreamResponse | None = None
    failure: LynkrError | None = None
    try:
        resp = await handler(request)
    except LynkrError as err:
        failure = err
        raise
    finally:
        answer_sink.reset(token)
        # neither an answer nor lynkr's error (cancelled, e.g. by a drain that ran out of time): nothing to record
        if resp is not None or failure is not None:
            try:
                await _record(request, record, resp, failure, sink)
            except Exception:
                logger.opt(exception=True).error("sessions: could not record a turn of {}", record.session_id)
    return resp


async def _record(request: web.Request, record: Any, resp: web.StreamResponse | None, failure: LynkrError | None,
                  sink: list[Any]) -> None:
    try:
        raw = await request.read()  # what the handler read: aiohttp keeps it
    except web.HTTPException:  # a body lynkr refused to read (too large): nothing to record
        return
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return
    answer: Any = None
    streamed = resp is not None and not isinstance(resp, web.Response)
    if failure is not None:
        answer = {"error": {"type": failure.anthropic_type, "message": failure.message}}
    elif sink:
        answer = sink[-1]
    elif isinstance(resp, web.Response) and resp.body is not None and resp.content_type == "application/json":
        try:
            answer = orjson.loads(resp.body)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError):
            answer = None
    request.app[SESSIONS].record(
        record.session_id, request_id=record.request_id, client_key=record.client_key, path=request.path,
        status=failure.status if failure is not None else (resp.status if resp is not None else None),
        model=record.model, provider=record.provider, stream=streamed, request=body, response=answer,
        input_tokens=record.input_tokens, output_tokens=record.output_tokens)


async def get_session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    if SESSIONS not in request.app:
        raise NotFound("session transcripts are off (SESSION_TRANSCRIPTS_ENABLED=false)")
    caller = request.get(CALLER)
    only = None if caller is None or caller.admin else caller.key_id
    turns = await request.app[SESSIONS].turns(session_id, only)
    if not turns:
        raise NotFound(f"no session {session_id!r} (or none of its turns were made with this key)")
    return json_response({"id": session_id, "object": "session", "turns": turns}, {})


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.session_transcripts_enabled:
        yield
        return
    own: Database | None = None
    db = app[STORE]
    if settings.session_db_path is not None:
        own = db = await Database(settings.session_db_path.expanduser()).open()
    store = app[SESSIONS] = await SessionStore(db, retention_days=settings.session_retention_days).open()
    yield
    await store.close()
    if own is not None:
        await own.close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(sessions_ctx)
    app.router.add_get("/v1/sessions/{session_id}", get_session)
