"""Liveness and readiness."""

from __future__ import annotations

import time

from aiohttp import web

from lynkr import __version__
from lynkr.observability.health import probe_all
from lynkr.server.keys import DISPATCHER, SETTINGS, STATE


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


async def live(request: web.Request) -> web.Response:
    started = request.app[STATE]["started"]
    return web.json_response({"status": "alive", "uptime_s": round(time.monotonic() - started, 1)})


async def ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.get("draining"):
        return web.json_response({"status": "not_ready", "reason": "shutting down"}, status=503)
    primary = request.app[DISPATCHER].primary
    if request.query.get("deep", "").lower() in ("1", "true", "yes"):
        return await deep_ready(request)
    return web.json_response({"status": "ready", "provider": primary.backend.name, "model": primary.default_model})


async def deep_ready(request: web.Request) -> web.Response:
    """Each backend's reachability and latency (lynkr.observability.health); 503 only when MODEL_PROVIDER's
    backend is down — another backend down is reported, and requests fall back around it."""
    dispatcher = request.app[DISPATCHER]
    timeout = request.app[SETTINGS].health_check_timeout_ms / 1000
    backends = await probe_all(dispatcher.providers, timeout)
    primary = dispatcher.primary.backend.name
    down = next((b["status"] == "down" for b in backends if b["provider"] == primary), False)
    return web.json_response({"status": "not_ready" if down else "ready", "provider": primary,
                              "model": dispatcher.primary.default_model, "backends": backends},
                             status=503 if down else 200)


def setup(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
