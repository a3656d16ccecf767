"""``GET /dashboard``: one static page (``lynkr/server/dashboard/``, no build step) and the JSON it polls.

* ``/dashboard`` — the page; ``/dashboard/static/{name}`` — its script and stylesheet;
* ``/dashboard/api/summary?window=15m`` — totals, a timeline (about 60 intervals), routing split, breaker
  states and the most recent requests, from the routing telemetry and this process's live state.

Everything lives under ``/dashboard``, which the access layer treats as an admin path (LYNKR_ADMIN_KEY, also
accepted as HTTP Basic's password so a browser can sign in; same-origin fetches then carry it).
The page loads nothing from outside lynkr; a strict Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

import time
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from lynkr import __version__
from lynkr.errors import NotFound
from lynkr.server.routes.anthropic import json_response
from lynkr.server.routes.metrics import TELEMETRY, live_json, window

STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache"}
BUCKETS = 60
RECENT = 50


@cache
def _asset(name: str) -> bytes:
    return resources.files("lynkr.server.dashboard").joinpath(name).read_bytes()


async def page(request: web.Request) -> web.Response:
    return web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise NotFound(f"no dashboard file {name!r}")
    return web.Response(body=_asset(name), content_type=STATIC[name], charset="utf-8", headers=PAGE_HEADERS)


def bucket_seconds(span: float) -> float:
    """About BUCKETS intervals over ``span``, rounded to a readable length (5 s, 15 s, 1 min...)."""
    raw = span / BUCKETS
    for nice in (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if raw <= nice:
            return float(nice)
    return 86400.0


async def summary(request: web.Request) -> web.Response:
    since, until = window(request, default=900.0)
    bucket = bucket_seconds(until - since)
    # whole intervals, the last one ending now
    since = until - bucket * max(1, round((until - since) / bucket))
    body: dict[str, Any] = {"version": __version__, "now": time.time(), "since": since, "until": until,
                            "window_s": round(until - since, 3), "bucket_s": bucket, "live": live_json(request.app)}
    telemetry = request.app.get(TELEMETRY)
    if telemetry is None:
        body.update(telemetry="disabled", timeline=[], recent=[], totals=None)
        return json_response(body, {"Cache-Control": "no-store"})
    await telemetry.store.flush()
    body.update(telemetry="enabled", totals=await telemetry.aggregate(since, until),
                timeline=await telemetry.timeline(since, until, bucket), recent=await telemetry.recent(RECENT))
    return json_response(body, {"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/dashboard", page)
    app.router.add_get("/dashboard/static/{name}", static)
    app.router.add_get("/dashboard/api/summary", summary)
