"""Access control in the server: the middleware (who is calling, may they, are they within their limits),
the rate-limit headers on every answer, the observer that charges tokens, and the shared Redis client.

``authorize`` runs in the request middleware (lynkr.server.middlewares.request_context), after the request
record is made and before admission (load shedding) and the handler. So a refused request is rendered like
any other error and recorded with its key id, and an unauthenticated flood never reaches the shedder's count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from loguru import logger

from lynkr.access.control import LIMITED_PATHS, AccessControl, Caller
from lynkr.access.limits import Admission, KeyRateLimited, admission_headers
from lynkr.errors import ConfigError
from lynkr.observability.record import current_record
from lynkr.server.keys import AUTHORIZE, OBSERVERS, SETTINGS, STORE
from lynkr.server.middlewares import dialect

SESSION_HEADERS = ("X-Claude-Code-Session-Id", "x-session-id")


@dataclass
class Shared:
    """Connections shared by the caches, limits and breakers: Redis when LYNKR_REDIS_URL is set."""

    redis: Any = None  # redis.asyncio.Redis
    instance: str = ""


SHARED = web.AppKey("shared", Shared)
ACCESS = web.AppKey("access", AccessControl)
CALLER = web.RequestKey("caller", Caller)
ADMISSION = web.RequestKey("admission", Admission)


def session_id(headers: Any) -> str | None:
    for name in SESSION_HEADERS:
        if value := headers.get(name):
            return str(value)[:200]
    return None


async def authorize(request: web.Request) -> None:
    """Who is calling, may they, and are they within their limits: raises the typed error if not."""
    control = request.app[ACCESS]
    caller = control.authenticate(request.path, request.headers)
    if caller is None:
        return
    request[CALLER] = caller
    record = current_record.get()
    if record is not None:
        record.client_key = caller.key_id
        record.session_id = session_id(request.headers)
    if request.method == "POST" and request.path in LIMITED_PATHS and control.limits_for(caller.key_id).any:
        try:
            admission = await control.admit(caller)
        except KeyRateLimited as err:
            err.headers.update(admission_headers(err.admission, dialect(request.path)))
            raise
        if admission is not None:
            request[ADMISSION] = admission


async def add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the key's rate-limit state on every answer it gets (streamed ones too); and no
    header value carries a control character (a client's model name is echoed in X-Lynkr-Model: a newline
    in it must not become a header injection, nor make aiohttp drop the connection)."""
    admission = request.get(ADMISSION)
    if admission is not None and response.status < 400:
        response.headers.update(admission_headers(admission, dialect(request.path)))
    if "".join(response.headers.values()).isprintable():  # one check in C for the usual answer
        return
    bad = [(name, value) for name, value in response.headers.items() if not value.isprintable()]
    for name, value in bad:
        response.headers[name] = "".join(c if c.isprintable() else "?" for c in value)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the Redis client (LYNKR_REDIS_URL), checked with a PING at startup."""
    import secrets

    settings = app[SETTINGS]
    shared = app[SHARED] = Shared(instance=secrets.token_hex(6))
    if settings.lynkr_redis_url is not None:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        shared.redis = Redis.from_url(settings.lynkr_redis_url.get_secret_value())
        try:
            await shared.redis.ping()
        except RedisError as exc:
            await shared.redis.aclose()
            raise ConfigError(f"LYNKR_REDIS_URL: cannot use Redis ({exc})") from None
        logger.info("shared state (cache, rate limits, budgets, breakers) in Redis")
    yield
    if shared.redis is not None:
        await shared.redis.aclose()


async def access_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the access control (keys, limits, counters), and its observer."""
    control = await AccessControl.open(app[SETTINGS], app[STORE], app[SHARED].redis)
    app[ACCESS] = control
    app[OBSERVERS].append(control.observe)
    yield
    await control.close()


def setup(app: web.Application) -> None:
    app[AUTHORIZE] = authorize
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(access_ctx)
    app.on_response_prepare.append(add_rate_headers)
