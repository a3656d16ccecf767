"""Inbound auth, admin key, rate limits and budgets, through the real app in both dialects."""

from __future__ import annotations

import base64
import hashlib

import anthropic
import openai
import pytest

from lynkr.access.keys import KeyRing, key_id, parse_keys, presented_keys
from lynkr.errors import ConfigError
from lynkr.server import create_app
from lynkr.server.keys import OBSERVERS
from tests.conftest import claude_request, make_settings, openai_settings
from tests.fakes.script import Answer

ALICE = "sk-lynkr-alice-0123456789"
BOB = "sk-lynkr-bob-9876543210"
ADMIN = "sk-lynkr-admin-secret-42"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
HI = [{"role": "user", "content": "hi"}]


def keyed(upstream, **extra):
    return openai_settings(upstream, lynkr_api_keys=f"alice={ALICE},{BOB}", lynkr_admin_key=ADMIN, **extra)


@pytest.fixture
async def gate(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(lambda body: Answer(text="ok"))
    client = await aiohttp_client(create_app(keyed(openai_upstream)))
    return client, openai_upstream.script


# --- keys ---------------------------------------------------------------------------------------------


def test_key_ids_are_names_or_short_hashes_never_the_key():
    ring = KeyRing(parse_keys(f"alice={ALICE},{BOB}", separator=",", source="t"), ADMIN)
    assert ring.ids == sorted(["alice", key_id(BOB)])
    assert key_id(BOB) == "key_" + hashlib.sha256(BOB.encode()).hexdigest()[:12]
    assert BOB not in key_id(BOB)
    assert ring.client([ALICE]).id == "alice"
    assert ring.client(["sk-lynkr-alice-012345678"]) is None  # one character short
    assert ring.client(["wrong", BOB]).id == key_id(BOB)  # any presented key may match
    assert ring.is_admin([ADMIN]) and not ring.is_admin([ALICE])


def test_keys_file_and_bad_keys(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# team keys\ncarol={ALICE}\n\n{BOB}  # a comment\n")
    ring = KeyRing.from_settings(make_settings(lynkr_api_keys_file=path))
    assert ring.ids == sorted(["carol", key_id(BOB)])
    with pytest.raises(ConfigError, match="at least 8"):
        parse_keys("short", separator=",", source="LYNKR_API_KEYS")
    with pytest.raises(ConfigError, match="share the id"):
        KeyRing([("x", ALICE), ("x", BOB)], None)
    with pytest.raises(ConfigError, match="cannot read"):
        KeyRing.from_settings(make_settings(lynkr_api_keys_file=tmp_path / "missing"))


def test_presented_keys_from_every_header_form():
    basic = base64.b64encode(f"me:{ADMIN}".encode()).decode()
    assert presented_keys({"x-api-key": ALICE}) == [ALICE]
    assert presented_keys({"Authorization": f"Bearer {BOB}"}) == [BOB]
    assert presented_keys({"Authorization": f"Basic {basic}"}) == [ADMIN]
    assert presented_keys({"x-api-key": ALICE, "Authorization": f"bearer {BOB}"}) == [ALICE, BOB]
    assert presented_keys({"Authorization": "Basic %%%"}) == []
    assert presented_keys({}) == []


# --- model endpoints, both dialects ---------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "sk-wrong-key-123456"},
                                     {"Authorization": "Bearer nope-nope-nope"},
                                     {"Authorization": "Basic Zm9vOmJhcg=="}])
async def test_anthropic_dialect_rejects_missing_and_wrong_keys(gate, headers):
    client, script = gate
    resp = await client.post("/v1/messages", json=claude_request(), headers=headers)
    assert resp.status == 401
    body = await resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert resp.headers["x-should-retry"] == "false"  # SDKs and Claude Code would retry a 401 otherwise
    assert ("missing" if not headers else "invalid") in body["error"]["message"]
    assert script.requests == []  # never reached a backend


@pytest.mark.parametrize("path,body", [("/v1/chat/completions", CHAT), ("/chat/completions", CHAT),
                                       ("/v1/responses", {"model": "gpt-4o", "input": "hi"}),
                                       ("/v1/embeddings", {"input": "hi"}), ("/v1/models", None)])
async def test_openai_dialect_rejects_missing_keys(gate, path, body):
    client, _ = gate
    resp = await (client.post(path, json=body) if body is not None else client.get(path))
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["type"] == "invalid_request_error" and err["code"] == "invalid_api_key"


@pytest.mark.parametrize("headers,key", [({"x-api-key": ALICE}, "alice"), ({"Authorization": f"Bearer {BOB}"}, None),
                                         ({"x-api-key": ADMIN}, "admin")])
async def test_valid_keys_pass_in_both_dialects_and_are_recorded(gate, headers, key):
    client, _ = gate
    seen = []
    client.app[OBSERVERS].append(seen.append)
    resp = await client.post("/v1/messages", json=claude_request(), headers=headers)
    assert resp.status == 200, await resp.text()
    resp = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert resp.status == 200
    assert [r.client_key for r in seen] == [key or key_id(BOB)] * 2
    assert ALICE not in str(seen) and BOB not in str(seen)


async def test_sdks_authenticate_with_their_usual_settings(gate):
    client, _ = gate
    base = str(client.make_url("")).rstrip("/")
    async with anthropic.AsyncAnthropic(base_url=base, api_key=ALICE, max_retries=0) as a:
        msg = await a.messages.create(model="claude-opus-4-8", max_tokens=10, messages=HI)
        assert msg.content[0].text == "ok"
    async with anthropic.AsyncAnthropic(base_url=base, auth_token=BOB, max_retries=0) as a:  # ANTHROPIC_AUTH_TOKEN
        assert (await a.messages.create(model="claude-opus-4-8", max_tokens=10,
                                        messages=[{"role": "user", "content": "hi"}])).content[0].text == "ok"
    async with anthropic.AsyncAnthropic(base_url=base, api_key="sk-wrong-0000000", max_retries=0) as a:
        with pytest.raises(anthropic.AuthenticationError):
            await a.messages.create(model="claude-opus-4-8", max_tokens=10, messages=HI)
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=ALICE, max_retries=0) as o:
        done = await o.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert done.choices[0].message.content == "ok"
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-wrong-0000000", max_retries=0) as o:
        with pytest.raises(openai.AuthenticationError):
            await o.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


async def test_health_and_openapi_stay_open(gate):
    client, _ = gate
    for path in ("/health", "/health/live", "/health/ready", "/openapi.json"):
        assert (await client.get(path)).status == 200, path


async def test_unknown_paths_need_a_key_before_they_are_found(gate):
    client, _ = gate
    assert (await client.get("/v1/nothing-here")).status == 401
    assert (await client.get("/v1/nothing-here", headers={"x-api-key": ALICE})).status == 404


# --- admin endpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/admin/keys", "/metrics/circuit-breakers", "/metrics/load-shedding",
                                  "/v1/admin/cache"])
async def test_admin_endpoints_need_the_admin_key(gate, path):
    client, _ = gate
    assert (await client.get(path)).status == 401
    resp = await client.get(path, headers={"x-api-key": ALICE})
    assert resp.status == 403
    assert (await resp.json())["error"]["type"] == "permission_error"
    assert (await client.get(path, headers={"Authorization": f"Bearer {ADMIN}"})).status == 200
    basic = base64.b64encode(f"admin:{ADMIN}".encode()).decode()
    assert (await client.get(path, headers={"Authorization": f"Basic {basic}"})).status == 200


async def test_dashboard_asks_browsers_for_the_admin_key(gate):
    client, _ = gate
    resp = await client.get("/dashboard")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="lynkr admin"'


async def test_admin_endpoints_are_off_with_client_keys_but_no_admin_key(openai_upstream, aiohttp_client):
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, lynkr_api_keys=ALICE)))
    resp = await client.get("/v1/admin/keys", headers={"x-api-key": ALICE})
    assert resp.status == 403
    assert "LYNKR_ADMIN_KEY" in (await resp.json())["error"]["message"]


async def test_no_keys_at_all_is_local_mode(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(lambda body: Answer(text="ok"))
    client = await aiohttp_client(create_app(openai_settings(openai_upstream)))
    assert (await client.post("/v1/messages", json=claude_request())).status == 200
    assert (await client.get("/v1/admin/keys")).status == 200


# --- rate limits ------------------------------------------------------------------------------------


async def admin_put(client, key, limits):
    resp = await client.put(f"/v1/admin/keys/{key}/limits", json=limits, headers={"x-api-key": ADMIN})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_requests_per_minute_exhaust_with_429_and_headers_in_both_dialects(gate):
    client, script = gate
    described = await admin_put(client, "alice", {"rpm": 2})
    assert described["limits"]["rpm"] == 2 and described["overrides"] == {"rpm": 2}
    ok = await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})
    assert ok.status == 200
    assert ok.headers["x-ratelimit-limit-requests"] == "2"
    assert ok.headers["x-ratelimit-remaining-requests"] == "1"
    assert ok.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert ok.headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert ok.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    ok = await client.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": ALICE})
    assert ok.status == 200 and ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert "anthropic-ratelimit-requests-limit" not in ok.headers  # OpenAI dialect: OpenAI's headers
    calls = len(script.requests)
    refused = await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})
    assert refused.status == 429
    assert (await refused.json())["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    refused = await client.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": ALICE})
    assert refused.status == 429
    err = (await refused.json())["error"]
    assert err["code"] == "rate_limit_exceeded" and "2 requests per minute" in err["message"]
    assert len(script.requests) == calls  # refused before any backend
    # another key has its own bucket; count_tokens and health are not counted
    assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": BOB})).status == 200
    count = await client.post("/v1/messages/count_tokens", json={"model": "m", "messages": [{"role": "user",
                                                                                        "content": "hi"}]},
                              headers={"x-api-key": ALICE})
    assert count.status == 200


async def test_rate_limit_headers_ride_on_streamed_answers_too(gate):
    client, _ = gate
    await admin_put(client, "alice", {"rpm": 5, "tpm": 1000})
    resp = await client.post("/v1/messages", json=claude_request(stream=True), headers={"x-api-key": ALICE})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    await resp.read()
    assert resp.headers["anthropic-ratelimit-requests-remaining"] == "4"
    assert resp.headers["anthropic-ratelimit-tokens-limit"] == "1000"
    resp = await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers={"x-api-key": ALICE})
    await resp.read()
    assert resp.headers["x-ratelimit-remaining-requests"] == "3"
    assert resp.headers["x-ratelimit-reset-requests"].endswith("s")


async def test_tokens_per_minute_charge_real_usage_then_refuse(gate):
    client, script = gate
    script.respond_with(lambda body: Answer(text="ok", prompt_tokens=400, completion_tokens=200))
    await admin_put(client, "alice", {"tpm": 500})
    first = await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})
    assert first.status == 200 and first.headers["x-ratelimit-limit-tokens"] == "500"
    assert first.headers["x-ratelimit-remaining-tokens"] == "500"  # charged when the answer is known
    refused = await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})
    assert refused.status == 429  # 600 tokens used of 500: the bucket is in debt
    assert "tokens per minute" in (await refused.json())["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 12  # 100 tokens of debt at 500/min = 12 s
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"


# --- budgets ----------------------------------------------------------------------------------------


async def test_daily_request_budget_exhausts_until_midnight_and_sdks_do_not_retry(gate):
    client, _ = gate
    await admin_put(client, "alice", {"daily_requests": 2})
    for _ in range(2):
        assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})).status == 200
    refused = await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})
    assert refused.status == 429
    assert refused.headers["x-should-retry"] == "false"
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert "daily budget of key alice is spent (2 of 2 requests)" in (await refused.json())["error"]["message"]
    refused = await client.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": ALICE})
    assert (await refused.json())["error"]["code"] == "insufficient_quota"
    usage = (await (await client.get("/v1/admin/keys/alice/limits", headers={"x-api-key": ADMIN})).json())["usage"]
    assert usage["day"]["requests"] == 2 and usage["month"]["requests"] == 2  # refusals are not counted


async def test_token_and_dollar_budgets_from_usage(gate):
    client, script = gate
    script.respond_with(lambda body: Answer(text="ok", prompt_tokens=1000, completion_tokens=1000))
    await admin_put(client, "alice", {"monthly_tokens": 1500})
    # gpt-4o: a known price, so the $ budget counts too
    await admin_put(client, key_id(BOB), {"daily_usd": 0.01})
    assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})).status == 200
    refused = await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})
    assert refused.status == 429 and "2000 of 1500 tokens" in (await refused.json())["error"]["message"]
    assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": BOB})).status == 200
    refused = await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": BOB})
    assert refused.status == 429 and "$0.0125 of $0.01" in (await refused.json())["error"]["message"]


async def test_budget_counts_survive_a_restart(openai_upstream, aiohttp_client, tmp_path):
    openai_upstream.script.respond_with(lambda body: Answer(text="ok"))
    settings = keyed(openai_upstream, lynkr_data_dir=tmp_path, budget_daily_requests=3)
    client = await aiohttp_client(create_app(settings))
    for _ in range(2):
        assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})).status == 200
    await client.close()
    client = await aiohttp_client(create_app(settings))
    assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})).status == 200
    assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})).status == 429


# --- the admin API ------------------------------------------------------------------------------------


async def test_limits_admin_api_validates_lists_and_resets(gate):
    client, _ = gate
    h = {"x-api-key": ADMIN}
    for bad in ({"rpm": 0}, {"rpm": 1.5}, {"nope": 1}, {"rpm": "10"}, [1], {"daily_usd": True}):
        resp = await client.put("/v1/admin/keys/alice/limits", json=bad, headers=h)
        assert resp.status == 400, bad
    assert (await client.put("/v1/admin/keys/bad%20id/limits", json={}, headers=h)).status == 400
    described = await admin_put(client, "alice", {"rpm": 10, "daily_usd": 2.5, "tpm": None})
    assert described["limits"] == {**described["defaults"], "rpm": 10, "daily_usd": 2.5, "tpm": None}
    listing = await (await client.get("/v1/admin/keys", headers=h)).json()
    assert {k["key_id"] for k in listing["data"]} == {"alice", key_id(BOB)}
    assert next(k for k in listing["data"] if k["key_id"] == "alice")["configured"] is True
    resp = await client.delete("/v1/admin/keys/alice/limits", headers=h)
    assert (await resp.json())["overrides"] == {}


async def test_default_limits_from_settings_apply_to_every_key(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(lambda body: Answer(text="ok"))
    client = await aiohttp_client(create_app(keyed(openai_upstream, rate_limit_rpm=1)))
    for key in (ALICE, BOB):
        assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": key})).status == 200
        assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": key})).status == 429
    # an override lifts it for one key
    await admin_put(client, "alice", {"rpm": None})
    assert (await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": ALICE})).status == 200
