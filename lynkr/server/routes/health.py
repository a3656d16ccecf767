"""Liveness and readiness."""

from __future__ import annotations

import time

from aiohttp import web

from lynkr import __version__
from lynkr.server.keys import DISPATCHER, STATE


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
    return web.json_response({"status": "ready", "provider": primary.backend.name, "model": primary.default_model})


def setup(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
