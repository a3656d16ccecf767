"""The application factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial

import aiohttp
from aiohttp import web
from loguru import logger

from lynkr import __version__
from lynkr.config import Settings
from lynkr.dispatch import Dispatcher
from lynkr.errors import ConfigError
from lynkr.providers import Provider, build_provider, configured_backends
from lynkr.resilience.shedding import LoadShedder
from lynkr.server import access, answers, breakers, middlewares
from lynkr.server.keys import ACCESS_LOG, DISPATCHER, HTTP, OBSERVERS, RESPONSES, SETTINGS, SHEDDER, STATE, STORE
from lynkr.server.response_store import ResponseStore
from lynkr.server.routes import admin, anthropic, health, keys_admin, openai, openai_models, openapi, sessions
from lynkr.server.routes import dashboard as dashboard_routes
from lynkr.server.routes import metrics as metrics_routes
from lynkr.store import Database


def create_app(settings: Settings, *, providers: dict[str, Provider] | None = None) -> web.Application:
    """The gateway as an aiohttp app; ``providers`` replaces the configured backends (tests)."""
    app = web.Application(
        # only when on: a middleware is one more frame on every resumption of every stream
        middlewares=[middlewares.request_context,
                     *([sessions.transcripts] if settings.session_transcripts_enabled else [])],
        client_max_size=settings.request_json_limit,
    )
    app[SETTINGS] = settings
    app[ACCESS_LOG] = settings.log_level.upper() in ("TRACE", "DEBUG", "INFO")
    app[STATE] = {"started": time.monotonic(), "draining": False}
    app[SHEDDER] = LoadShedder(settings.load_shedding_active_requests_threshold,
                               settings.load_shedding_memory_threshold)
    app[RESPONSES] = ResponseStore()
    app[OBSERVERS] = []
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(partial(_backends, providers=providers))
    access.setup(app)  # Redis (LYNKR_REDIS_URL), keys, limits, budgets
    answers.setup(app)  # prompt and semantic caches
    breakers.setup(app)  # breaker state shared through Redis, when set
    app.on_shutdown.append(_drain)
    anthropic.setup(app)
    health.setup(app)
    admin.setup(app)
    openai_models.setup(app)
    openai.setup(app)
    metrics_routes.setup(app)  # metrics, telemetry, cost, traces: observers of every request
    dashboard_routes.setup(app)
    sessions.setup(app)
    keys_admin.setup(app)
    openapi.setup(app)  # last: it describes every route registered before it
    return app


async def _store(app: web.Application) -> AsyncIterator[None]:
    """The state database (lynkr.db in LYNKR_DATA_DIR): opened once, flushed and closed on exit."""
    app[STORE] = await Database(app[SETTINGS].lynkr_data_dir / "lynkr.db").open()
    yield
    await app[STORE].close()


async def _backends(app: web.Application, *, providers: dict[str, Provider] | None) -> AsyncIterator[None]:
    """One pooled HTTP client for all backend calls, and the configured providers on top of it."""
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        headers={"User-Agent": f"lynkr/{__version__}"},
        # proxies come from the environment once per backend (providers.http.proxy_for), not per call:
        # trust_env makes aiohttp look up .netrc and proxies in a thread on every request (~0.4 ms CPU)
        trust_env=False,
        # no cookie jar: backends authenticate with headers, and a cookie one answer sets (Cloudflare's, in
        # front of OpenAI and OpenRouter) would go out with every caller's requests; a jar holding them also
        # costs ~6 µs of matching per request
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    app[HTTP] = http
    settings = app[SETTINGS]
    if providers is None:
        providers = _build_providers(settings, http)
    app[DISPATCHER] = Dispatcher(settings, providers)
    yield
    await http.close()


def _build_providers(settings: Settings, http: aiohttp.ClientSession) -> dict[str, Provider]:
    """MODEL_PROVIDER's backend, and every other configured one (for /v1/models and embeddings).
    Only the chat backend may stop startup; another that cannot be built is logged and left out."""
    providers: dict[str, Provider] = {settings.model_provider: build_provider(settings.model_provider, http, settings)}
    for name in configured_backends(settings):
        if name not in providers:
            try:
                providers[name] = build_provider(name, http, settings)
            except ConfigError as err:
                logger.warning("backend {} is configured but left out: {}", name, err.message)
    return providers


async def _drain(app: web.Application) -> None:
    app[STATE]["draining"] = True
