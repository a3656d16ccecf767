"""LYNKR_REDIS_URL against a real redis-server: several lynkr instances share rate limits, budgets, the answer
cache and circuit-breaker state. Skipped, with the reason, only where redis-server is not installed."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from lynkr.server import create_app
from tests.conftest import claude_request, openai_settings
from tests.fakes.script import Answer, Failure
from tests.procs_support import Lynkr, needs_redis, redis_server

pytestmark = needs_redis

ALICE, BOB, ADMIN = "sk-alice-00000000", "sk-bob-111111111", "sk-admin-2222222"


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture
async def flushed(redis_url):
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    return redis_url


def counter():
    n = 0

    def respond(body):
        nonlocal n
        n += 1
        return Answer(text=f"answer {n}", prompt_tokens=10, completion_tokens=5)

    return respond


async def test_two_lynkr_processes_share_a_rate_limit_and_a_cache_entry(flushed, openai_upstream, tmp_path):
    openai_upstream.script.respond_with(counter())
    env = {"MODEL_PROVIDER": "openai", "OPENAI_API_KEY": "sk-up", "OPENAI_ENDPOINT": openai_upstream.url +
           "/v1/chat/completions", "LYNKR_API_KEYS": f"alice={ALICE},bob={BOB}", "LYNKR_ADMIN_KEY": ADMIN,
           "LYNKR_REDIS_URL": flushed, "PROMPT_CACHE_ENABLED": "true"}
    a = Lynkr({**env, "LYNKR_DATA_DIR": str(tmp_path / "a")}, cwd=tmp_path)
    b = Lynkr({**env, "LYNKR_DATA_DIR": str(tmp_path / "b")}, cwd=tmp_path)  # no SQLite in common
    with a, b:
        async with aiohttp.ClientSession() as http:
            async def post(server, key, body):
                async with http.post(server.url + "/v1/messages", json=body, headers={"x-api-key": key}) as resp:
                    return resp.status, resp.headers.copy(), await resp.json()

            # a limit set through one instance applies on the other (overrides live in Redis too)
            async with http.put(a.url + "/v1/admin/keys/alice/limits", json={"rpm": 3},
                                headers={"x-api-key": ADMIN}) as resp:
                assert resp.status == 200
            for _ in range(100):  # other instances reload overrides every 2 s
                async with http.get(b.url + "/v1/admin/keys/alice/limits", headers={"x-api-key": ADMIN}) as resp:
                    if (await resp.json())["limits"]["rpm"] == 3:
                        break
                await asyncio.sleep(0.05)
            statuses = []
            for n, server in enumerate((a, b, a, b)):  # 3 requests a minute, whichever instance they reach
                statuses.append((await post(server, ALICE, claude_request(
                    messages=[{"role": "user", "content": f"q{n}"}])))[0])
            assert statuses == [200, 200, 200, 429]
            status, headers, body = await post(a, ALICE, claude_request())
            assert status == 429 and int(headers["retry-after"]) >= 1, headers
            assert body["error"]["type"] == "rate_limit_error"

            # a cache entry stored by one instance is a hit on the other
            status, headers, first = await post(a, BOB, claude_request(messages=[{"role": "user", "content": "x"}]))
            assert status == 200 and headers["X-Lynkr-Cache"] == "miss"
            status, headers, second = await post(b, BOB, claude_request(messages=[{"role": "user", "content": "x"}]))
            assert status == 200 and headers["X-Lynkr-Cache"] == "hit; exact"
            assert second["content"] == first["content"]
    assert len(openai_upstream.script.requests) == 4  # three of alice's, one of bob's


async def two_apps(redis_url, upstream, aiohttp_client, tmp_path, **extra):
    clients = []
    for name in ("a", "b"):
        settings = openai_settings(upstream, lynkr_redis_url=redis_url, lynkr_api_keys=f"alice={ALICE}",
                                   lynkr_admin_key=ADMIN, lynkr_data_dir=tmp_path / name, **extra)
        clients.append(await aiohttp_client(create_app(settings)))
    return clients


async def test_budgets_and_token_buckets_are_shared(flushed, openai_upstream, aiohttp_client, tmp_path):
    openai_upstream.script.respond_with(lambda body: Answer(text="ok", prompt_tokens=300, completion_tokens=300))
    a, b = await two_apps(flushed, openai_upstream, aiohttp_client, tmp_path, budget_daily_requests=3,
                          rate_limit_tpm=1000)
    h = {"x-api-key": ALICE}
    assert (await a.post("/v1/messages", json=claude_request(), headers=h)).status == 200
    await asyncio.sleep(0)  # the token charge runs after the answer
    for _ in range(50):
        usage = await (await b.get("/v1/admin/keys/alice/limits", headers={"x-api-key": ADMIN})).json()
        if usage["usage"]["day"]["tokens"]:
            break
        await asyncio.sleep(0.02)
    assert usage["usage"]["day"] == {**usage["usage"]["day"], "requests": 1, "tokens": 600}
    assert (await b.post("/v1/messages", json=claude_request(), headers=h)).status == 200  # 1200 tokens: in debt
    for _ in range(50):
        resp = await a.post("/v1/messages", json=claude_request(), headers=h)
        if resp.status == 429:
            break
        await asyncio.sleep(0.02)
    assert resp.status == 429 and "tokens per minute" in (await resp.json())["error"]["message"]


async def test_daily_budget_is_shared(flushed, openai_upstream, aiohttp_client, tmp_path):
    openai_upstream.script.respond_with(counter())
    a, b = await two_apps(flushed, openai_upstream, aiohttp_client, tmp_path, budget_daily_requests=3)
    h = {"x-api-key": ALICE}
    assert [(await c.post("/v1/messages", json=claude_request(), headers=h)).status for c in (a, b, a)] == [200] * 3
    resp = await b.post("/v1/messages", json=claude_request(), headers=h)
    assert resp.status == 429 and resp.headers["x-should-retry"] == "false"


async def test_an_open_breaker_is_shared(flushed, openai_upstream, aiohttp_client, tmp_path):
    openai_upstream.script.respond_with(lambda body: Failure(500, {"error": {"message": "down"}}))
    a, b = await two_apps(flushed, openai_upstream, aiohttp_client, tmp_path, circuit_breaker_failure_threshold=2,
                          circuit_breaker_timeout=60_000)
    h = {"x-api-key": ALICE}
    for _ in range(2):
        assert (await a.post("/v1/messages", json=claude_request(), headers=h)).status == 500
    calls = len(openai_upstream.script.requests)
    for _ in range(100):
        states = await (await b.get("/metrics/circuit-breakers", headers={"x-api-key": ADMIN})).json()
        if states[0]["state"] == "open":
            break
        await asyncio.sleep(0.02)
    assert states[0]["state"] == "open"
    resp = await b.post("/v1/messages", json=claude_request(), headers=h)
    assert resp.status == 529 and "circuit open" in (await resp.json())["error"]["message"]
    assert len(openai_upstream.script.requests) == calls  # b never tried the backend
    # a reset on one instance closes it on the other
    await b.post("/v1/admin/circuit-breakers/reset", headers={"x-api-key": ADMIN})
    for _ in range(100):
        states = await (await a.get("/metrics/circuit-breakers", headers={"x-api-key": ADMIN})).json()
        if states[0]["state"] == "closed":
            break
        await asyncio.sleep(0.02)
    assert states[0]["state"] == "closed"


async def test_semantic_cache_in_redis(flushed, openai_upstream, aiohttp_client, aiohttp_server, tmp_path):
    from tests.fakes import bow_embeddings

    embedder = await aiohttp_server(bow_embeddings.make_app())
    openai_upstream.script.respond_with(counter())
    a, b = await two_apps(flushed, openai_upstream, aiohttp_client, tmp_path, semantic_cache_enabled=True,
                          semantic_cache_threshold=0.8, embeddings_provider="llamacpp",
                          llamacpp_embeddings_endpoint=str(embedder.make_url("/v1/embeddings")))
    h = {"x-api-key": ALICE}

    def ask(c, q):
        return c.post("/v1/messages", json=claude_request(messages=[{"role": "user", "content": q}]), headers=h)

    await ask(a, "What is the capital of France?")
    assert (await ask(b, "capital city of France?")).headers["X-Lynkr-Cache"] == "hit; semantic"
    assert (await ask(b, "What is the capital of Spain?")).headers["X-Lynkr-Cache"] == "miss"


async def test_unreachable_redis_fails_startup_with_the_variable_named(openai_upstream, tmp_path):
    from lynkr.errors import ConfigError
    from tests.procs_support import free_port

    app = create_app(openai_settings(openai_upstream, lynkr_redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    from aiohttp.test_utils import TestServer

    server = TestServer(app)
    with pytest.raises(ConfigError, match="LYNKR_REDIS_URL"):
        await server.start_server()
    await server.close()
