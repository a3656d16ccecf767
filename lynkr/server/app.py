"""The application factory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from lynkr import __version__, tokens
from lynkr.config import Settings
from lynkr.providers import Provider, build_provider
from lynkr.server import middlewares
from lynkr.server.keys import HTTP, PROVIDER, SETTINGS, STATE
from lynkr.server.routes import anthropic, health


def create_app(settings: Settings, *, provider: Provider | None = None) -> web.Application:
    app = web.Application(
        middlewares=[middlewares.request_context],
        client_max_size=settings.request_json_limit,
    )
    app[SETTINGS] = settings
    app[STATE] = {"started": time.monotonic(), "draining": False}
    if provider is not None:
        app[PROVIDER] = provider
    app.cleanup_ctx.append(_backend)
    app.on_response_prepare.append(middlewares.add_request_id)
    app.on_shutdown.append(_drain)
    anthropic.setup(app)
    health.setup(app)
    return app


async def _backend(app: web.Application) -> AsyncIterator[None]:
    """One pooled HTTP client for all backend calls, and the configured provider on top of it."""
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        headers={"User-Agent": f"lynkr/{__version__}"},
        trust_env=True,
    )
    app[HTTP] = http
    await asyncio.to_thread(tokens.encoding)  # load the tokenizer off the event loop, once
    if PROVIDER not in app:
        app[PROVIDER] = build_provider(app[SETTINGS].model_provider, http, app[SETTINGS])
    yield
    await http.close()


async def _drain(app: web.Application) -> None:
    app[STATE]["draining"] = True
