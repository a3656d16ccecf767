"""Admin API for client keys: their limits (overrides of the defaults), usage, and the cache's numbers.

    GET    /v1/admin/keys                      every key lynkr knows (configured or with overrides)
    GET    /v1/admin/keys/{key_id}/limits      effective limits, overrides, defaults, usage this day/month
    PUT    /v1/admin/keys/{key_id}/limits      set overrides: {"rpm": 60, "daily_usd": 5, "tpm": null, ...}
    DELETE /v1/admin/keys/{key_id}/limits      back to the defaults
    GET    /v1/admin/cache                     prompt / semantic cache counters of this instance
"""

from __future__ import annotations

import re

from aiohttp import web

from lynkr.access.limits import validate_overrides
from lynkr.errors import InvalidRequest
from lynkr.server.access import ACCESS
from lynkr.server.answers import ANSWERS
from lynkr.server.routes.anthropic import json_response, read_json

KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _key_id(request: web.Request) -> str:
    key_id = request.match_info["key_id"]
    if not KEY_ID.match(key_id):
        raise InvalidRequest("a key id is 1-64 letters, digits, - _ or .", field="key_id")
    return key_id


async def list_keys(request: web.Request) -> web.Response:
    control = request.app[ACCESS]
    return json_response({"object": "list", "data": [await control.describe(k) for k in control.known_keys()]}, {})


async def get_limits(request: web.Request) -> web.Response:
    return json_response(await request.app[ACCESS].describe(_key_id(request)), {})


async def put_limits(request: web.Request) -> web.Response:
    key_id = _key_id(request)
    overrides = validate_overrides(await read_json(request))
    control = request.app[ACCESS]
    await control.set_overrides(key_id, overrides)
    return json_response(await control.describe(key_id), {})


async def delete_limits(request: web.Request) -> web.Response:
    key_id = _key_id(request)
    control = request.app[ACCESS]
    await control.delete_overrides(key_id)
    return json_response(await control.describe(key_id), {})


async def cache_stats(request: web.Request) -> web.Response:
    cache = request.app[ANSWERS]
    return json_response({"prompt_cache": cache.enabled, "semantic_cache": cache.semantic is not None,
                          "threshold": cache.threshold, **cache.stats}, {})


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/admin/keys", list_keys)
    app.router.add_get("/v1/admin/keys/{key_id}/limits", get_limits)
    app.router.add_put("/v1/admin/keys/{key_id}/limits", put_limits)
    app.router.add_delete("/v1/admin/keys/{key_id}/limits", delete_limits)
    app.router.add_get("/v1/admin/cache", cache_stats)
