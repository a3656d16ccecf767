"""Routing and resilience, made visible: the routing dry-run, breaker states and resets, shedding."""

from __future__ import annotations

from aiohttp import web

from lynkr.errors import NotFound
from lynkr.server.keys import DISPATCHER, SHEDDER
from lynkr.server.routes.anthropic import json_response, read_json
from lynkr.wire.anthropic import validate_messages_request


async def analyze(request: web.Request) -> web.Response:
    """The routing decision for a posted Messages body, without calling any backend."""
    body = validate_messages_request(await read_json(request))
    plan = request.app[DISPATCHER].plan(body, request.headers)
    first = plan.routes[0]
    return json_response({
        **plan.decision.as_dict(),
        "provider": first.provider.backend.name,
        "model": first.model,
        "reason": first.reason,
        "chain": [{"provider": r.provider.backend.name, "model": r.model, "reason": r.reason} for r in plan.routes],
        "skipped": plan.skipped,
    }, {})


async def circuit_breakers(request: web.Request) -> web.Response:
    return json_response(request.app[DISPATCHER].breaker_states(), {})


async def reset_breakers(request: web.Request) -> web.Response:
    breakers = request.app[DISPATCHER].breakers
    name = request.query.get("provider")
    if name is not None and name not in breakers:
        raise NotFound(f"no circuit breaker for provider {name!r}; known: {', '.join(breakers)}")
    for breaker in [breakers[name]] if name else breakers.values():
        breaker.reset()
    return json_response({"reset": [name] if name else list(breakers)}, {})


async def load_shedding(request: web.Request) -> web.Response:
    return json_response(request.app[SHEDDER].snapshot(), {})


def setup(app: web.Application) -> None:
    app.router.add_post("/routing/analyze", analyze)
    app.router.add_get("/metrics/circuit-breakers", circuit_breakers)
    app.router.add_post("/v1/admin/circuit-breakers/reset", reset_breakers)
    app.router.add_get("/metrics/load-shedding", load_shedding)
