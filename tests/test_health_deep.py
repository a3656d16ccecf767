"""GET /health/ready?deep=true: each backend's reachability and latency, without a model call; 503 only when
MODEL_PROVIDER's backend is down."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from lynkr.server import create_app
from tests.conftest import SECRET, make_settings, openai_settings
from tests.fakes.openai_server import EXTRAS
from tests.fakes.script import Failure
from tests.observability_support import ollama_fallback


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def deep(client) -> tuple[int, dict]:
    resp = await client.get("/health/ready", params={"deep": "true"})
    return resp.status, await resp.json()


async def test_every_backend_ok(openai_upstream, ollama_upstream, aiohttp_client):
    settings = openai_settings(openai_upstream, **ollama_fallback(ollama_upstream.url))
    client = await aiohttp_client(create_app(settings))
    status, body = await deep(client)
    assert status == 200 and body["status"] == "ready" and body["provider"] == "openai"
    backends = {b["provider"]: b for b in body["backends"]}
    assert set(backends) == {"openai", "ollama"}
    for b in backends.values():
        assert b["status"] == "ok" and b["reachable"] is True and b["latency_ms"] >= 0
        assert b["listing"] == "ok" and b["models"] >= 1
    # the probes asked for model lists, never for a completion: no tokens spent
    assert openai_upstream.script.requests == [] and ollama_upstream.script.requests == []
    assert ("/v1/models", None) in openai_upstream.server.app[EXTRAS].requests
    assert ("/api/tags", None) in ollama_upstream.server.app[EXTRAS].requests
    # the plain readiness check does not probe
    plain = await (await client.get("/health/ready")).json()
    assert plain["status"] == "ready" and "backends" not in plain


async def test_a_fallback_down_is_reported_but_ready(openai_upstream, aiohttp_client):
    settings = openai_settings(openai_upstream, **ollama_fallback(closed_port_url()))
    client = await aiohttp_client(create_app(settings))
    status, body = await deep(client)
    assert status == 200 and body["status"] == "ready"
    backends = {b["provider"]: b for b in body["backends"]}
    assert backends["openai"]["status"] == "ok"
    down = backends["ollama"]
    assert down["status"] == "down" and down["reachable"] is False and down["listing"] == "failed"
    assert down["reach_error"] and down["listing_error"]


async def test_primary_down_is_503(aiohttp_client):
    settings = make_settings(model_provider="openai", openai_api_key=SECRET,
                             openai_endpoint=closed_port_url() + "/v1/chat/completions")
    client = await aiohttp_client(create_app(settings))
    status, body = await deep(client)
    assert status == 503 and body["status"] == "not_ready"
    assert body["backends"][0]["status"] == "down"


async def test_rejected_key_is_down_and_masked(openai_upstream, aiohttp_client):
    openai_upstream.server.app[EXTRAS].fail["/v1/models"] = Failure(
        401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}})
    client = await aiohttp_client(create_app(openai_settings(openai_upstream)))
    resp = await client.get("/health/ready?deep=1")
    text = await resp.text()
    assert resp.status == 503
    assert SECRET not in text and "[REDACTED]" in text
    backend = (await resp.json())["backends"][0]
    assert backend["reachable"] is True and backend["listing"] == "failed"


async def test_a_silent_backend_times_out(aiohttp_server, aiohttp_client):
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", hang)
    silent = await aiohttp_server(app)
    settings = make_settings(model_provider="openai", openai_api_key=SECRET, health_check_timeout_ms=200,
                             openai_endpoint=str(silent.make_url("/v1/chat/completions")))
    client = await aiohttp_client(create_app(settings))
    status, body = await deep(client)
    never.set()
    assert status == 503
    backend = body["backends"][0]
    assert backend["reachable"] is False and "no answer within 0.2 s" in backend["reach_error"]
    assert "no answer within 0.2 s" in backend["listing_error"]
