"""Routing telemetry: one SQLite row per model request (success, error, fallback, stream), written off the
request path; GET /v1/routing/stats and /metrics/observability aggregate it; retention prunes it; costs come
from the packaged price table and an override file."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lynkr.errors import ConfigError
from lynkr.observability.prices import candidates, load_prices
from lynkr.observability.record import RequestRecord
from lynkr.observability.telemetry import TABLE, Telemetry
from lynkr.server import create_app
from lynkr.server.keys import OBSERVERS, STORE
from lynkr.store import Database
from tests.conftest import claude_request, openai_settings
from tests.fakes.script import Answer, Failure
from tests.observability_support import ollama_fallback

MSG = "/v1/messages"


async def rows(client) -> list[dict]:
    store = client.app[STORE]
    await store.flush()
    return [dict(r) for r in await store.fetchall(f"SELECT * FROM {TABLE} ORDER BY id")]


async def test_rows_for_success_error_fallback_and_stream(openai_upstream, ollama_upstream, aiohttp_client):
    settings = openai_settings(openai_upstream, **ollama_fallback(ollama_upstream.url))
    client = await aiohttp_client(create_app(settings))
    oa, ol = openai_upstream.script, ollama_upstream.script

    oa.enqueue(Answer(text="ok", prompt_tokens=100, completion_tokens=50))
    success = await client.post(MSG, json=claude_request(), headers={"X-Request-ID": "req-success"})
    assert success.status == 200

    oa.enqueue(Failure(500, {"error": {"message": "boom"}}))
    ol.enqueue(Answer(text="from fallback", prompt_tokens=40, completion_tokens=10))
    fallback = await client.post(MSG, json=claude_request(), headers={"X-Request-ID": "req-fallback"})
    assert fallback.status == 200 and fallback.headers["X-Lynkr-Provider"] == "ollama"

    oa.enqueue(Failure(500, {"error": {"message": "boom"}}))
    ol.enqueue(Failure(500, {"error": "ollama down too"}))
    error = await client.post(MSG, json=claude_request(), headers={"X-Request-ID": "req-error"})
    assert error.status >= 500

    oa.enqueue(Answer(text="streamed", prompt_tokens=30, completion_tokens=3, cached_tokens=10))
    stream = await client.post(MSG, json=claude_request(stream=True), headers={"X-Request-ID": "req-stream"})
    await stream.read()

    invalid = await client.post(MSG, json={"model": "x"}, headers={"X-Request-ID": "req-invalid"})
    assert invalid.status == 400
    # not model requests: no rows
    assert (await client.get("/health")).status == 200
    assert (await client.post("/v1/messages/count_tokens", json=claude_request())).status == 200

    by_id = {r["request_id"]: r for r in await rows(client)}
    assert set(by_id) == {"req-success", "req-fallback", "req-error", "req-stream", "req-invalid"}

    ok = by_id["req-success"]
    assert (ok["endpoint"], ok["provider"], ok["model"], ok["status"]) == (MSG, "openai", "gpt-4o", 200)
    assert ok["stream"] == 0
    assert (ok["input_tokens"], ok["output_tokens"], ok["fallback"], ok["retries"]) == (100, 50, 0, 0)
    assert ok["cost_usd"] == pytest.approx((100 * 2.5 + 50 * 10.0) / 1e6)
    assert ok["latency_ms"] > 0 and ok["ttft_ms"] is None and ok["attempts"] is None
    assert ok["reason"] and ok["error_type"] is None and ok["ts"] <= time.time()

    fb = by_id["req-fallback"]
    assert (fb["provider"], fb["model"], fb["status"], fb["fallback"]) == ("ollama", "qwen2.5-coder:7b", 200, 1)
    assert json.loads(fb["attempts"]) == ["openai: UpstreamServerError"]
    assert fb["cost_usd"] == 0  # a local backend
    assert "after openai" in fb["reason"]

    err = by_id["req-error"]
    assert err["status"] >= 500 and err["fallback"] == 0 and err["cost_usd"] is None
    assert err["provider"] == "ollama"  # the last one tried
    assert json.loads(err["attempts"]) == ["openai: UpstreamServerError", "ollama: UpstreamServerError"]
    assert err["error_type"]

    st = by_id["req-stream"]
    assert (st["stream"], st["input_tokens"], st["cache_read_tokens"], st["output_tokens"]) == (1, 20, 10, 3)
    assert st["ttft_ms"] is not None and 0 < st["ttft_ms"] <= st["latency_ms"]
    assert st["cost_usd"] == pytest.approx((20 * 2.5 + 10 * 1.25 + 3 * 10.0) / 1e6)

    inv = by_id["req-invalid"]
    assert (inv["status"], inv["provider"], inv["error_type"]) == (400, None, "invalid_request_error")

    # --- the aggregates --------------------------------------------------------------------------
    stats = await (await client.get("/v1/routing/stats")).json()
    assert stats["requests"] == 5
    assert stats["errors"] == 2
    assert stats["fallbacks"] == 1
    assert stats["tokens"] == {"input": 160, "output": 63, "cache_read": 10, "cache_write": 0}
    assert stats["cost_usd"] == pytest.approx(ok["cost_usd"] + st["cost_usd"])
    assert stats["unpriced_requests"] == 0
    providers = {p["provider"]: p for p in stats["by_provider"]}
    assert {k: p["requests"] for k, p in providers.items()} == {"openai": 2, "ollama": 2, "none": 1}
    assert providers["ollama"]["errors"] == 1 and providers["ollama"]["fallbacks"] == 1
    assert providers["openai"]["latency_ms"]["p50"] is not None
    assert providers["openai"]["ttft_ms"]["p50"] == pytest.approx(st["ttft_ms"], abs=0.01)
    assert stats["fallback_reasons"] == [{"reason": "openai: UpstreamServerError", "count": 1}]
    assert stats["statuses"]["200"] == 3 and stats["statuses"]["400"] == 1
    assert stats["errors_by_type"]["invalid_request_error"] == 1
    assert stats["routing_split"] and sum(x["requests"] for x in stats["routing_split"]) == 5
    assert stats["cache"] is None  # no prompt-cache lookups recorded

    # windows: nothing before the first request, everything in an hour, bad input refused
    future = await (await client.get("/v1/routing/stats", params={"since": str(time.time() + 60),
                                                                  "until": str(time.time() + 120)})).json()
    assert future["requests"] == 0 and future["by_provider"] == []
    iso = datetime.fromtimestamp(time.time() - 3600, tz=UTC).isoformat().replace("+00:00", "Z")
    assert (await (await client.get("/v1/routing/stats", params={"since": iso})).json())["requests"] == 5
    assert (await (await client.get("/v1/routing/stats", params={"since": "1h"})).json())["requests"] == 5
    bad = await client.get("/v1/routing/stats", params={"since": "yesterday-ish"})
    assert bad.status == 400 and "since" in (await bad.json())["error"]["message"]
    assert (await client.get("/v1/routing/stats", params={"since": "10", "until": "5"})).status == 400

    obs = await (await client.get("/metrics/observability", params={"window": "1h"})).json()
    assert obs["telemetry"] == "enabled" and obs["requests"] == 5
    assert obs["live"]["breakers"] and obs["live"]["active_streams"] == 0
    assert {p["provider"] for p in obs["by_provider"]} == {"openai", "ollama", "none"}


async def test_tier_score_and_cache_hits_are_recorded(openai_upstream, aiohttp_client):
    settings = openai_settings(openai_upstream, tier_simple="openai:gpt-4o-mini", tier_complex="openai:gpt-4o")
    app = create_app(settings)

    def cache_flag(record: RequestRecord) -> None:  # what the prompt cache writes (issue 6)
        record.extra["cache"] = "hit" if record.request_id.endswith("-hit") else "miss"

    app[OBSERVERS].insert(0, cache_flag)
    client = await aiohttp_client(app)
    openai_upstream.script.respond_with(lambda body: Answer(text="ok"))
    for rid in ("a-hit", "b-miss", "c-hit"):
        assert (await client.post(MSG, json=claude_request(), headers={"X-Request-ID": rid})).status == 200
    found = await rows(client)
    assert {r["tier"] for r in found} == {"simple"} and all(r["score"] is not None for r in found)
    assert all(r["model"] == "gpt-4o-mini" for r in found)
    assert [r["cache"] for r in found] == ["hit", "miss", "hit"]
    stats = await (await client.get("/v1/routing/stats")).json()
    assert stats["cache"] == {"hits": 2, "lookups": 3, "hit_rate": pytest.approx(0.6667, abs=1e-4)}
    assert [t["tier"] for t in stats["by_tier"]] == ["simple"] and stats["by_tier"][0]["share"] == 1.0
    assert stats["cost_usd"] == pytest.approx(3 * (11 * 0.15 + 7 * 0.6) / 1e6)  # gpt-4o-mini prices


async def test_telemetry_can_be_turned_off(openai_upstream, aiohttp_client):
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, telemetry_enabled=False)))
    openai_upstream.script.enqueue(Answer(text="ok"))
    assert (await client.post(MSG, json=claude_request())).status == 200
    store = client.app[STORE]
    assert not await store.fetchall("SELECT name FROM sqlite_master WHERE name = ?", (TABLE,))
    assert (await client.get("/v1/routing/stats")).status == 400
    obs = await (await client.get("/metrics/observability")).json()
    assert obs["telemetry"].startswith("disabled") and "requests" not in obs
    summary = await (await client.get("/dashboard/api/summary")).json()
    assert summary["telemetry"] == "disabled" and summary["totals"] is None


def synthetic(rid: str, provider: str, latency_ms: float, *, at: float, ttft_ms: float | None = None,
              tier: str | None = None) -> RequestRecord:
    r = RequestRecord(rid, "POST", MSG, "anthropic", provider=provider, model="m", tier=tier, status=200)
    r.started_at = at
    r.finished = r.started + latency_ms / 1000
    if ttft_ms is not None:
        r.first_byte = r.started + ttft_ms / 1000
    return r


async def test_percentiles_timeline_and_retention(tmp_path: Path):
    db = await Database(tmp_path / "lynkr.db").open()
    try:
        telemetry = Telemetry(db, retention_days=30)
        await telemetry.migrate()
        await telemetry.migrate()  # idempotent
        now = time.time()
        for i in range(1, 101):  # latencies 1..100 ms on "a"
            telemetry.observe(synthetic(f"a{i}", "a", float(i), at=now - 100 + i, ttft_ms=i / 2, tier="simple"))
        for i in range(1, 11):  # 10..100 ms on "b"
            telemetry.observe(synthetic(f"b{i}", "b", 10.0 * i, at=now - 50 + i, tier="complex"))
        for i in range(5):  # 40 days old: past retention
            telemetry.observe(synthetic(f"old{i}", "a", 1.0, at=now - 40 * 86_400 + i))
        await db.flush()

        stats = await telemetry.aggregate(now - 3600, now + 1)
        assert stats["requests"] == 110
        by = {p["provider"]: p for p in stats["by_provider"]}
        assert by["a"]["latency_ms"] == {"avg": 50.5, "p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
        assert by["b"]["latency_ms"]["p50"] == 50.0 and by["b"]["latency_ms"]["p95"] == 100.0
        assert by["a"]["ttft_ms"]["p50"] == 25.0 and by["b"]["ttft_ms"]["p50"] is None
        tiers = {t["tier"]: t for t in stats["by_tier"]}
        assert tiers["simple"]["share"] == pytest.approx(100 / 110, abs=1e-4)
        assert tiers["complex"]["latency_ms"]["p99"] == 100.0

        timeline = await telemetry.timeline(now - 120, now + 1, 10.0)
        assert len(timeline) == 13 and sum(b["requests"] for b in timeline) == 110
        assert all(b["latency_p50"] is None for b in timeline if b["requests"] == 0)
        assert any(b["latency_p95"] is not None for b in timeline)

        recent = await telemetry.recent(3)
        assert [r["request_id"] for r in recent] == ["a100", "a99", "a98"]  # newest first

        assert await telemetry.prune(now) == 5
        assert await telemetry.prune(now) == 0
        left = await db.fetchone(f"SELECT COUNT(*) FROM {TABLE}")
        assert left is not None and left[0] == 110
        assert await Telemetry(db, retention_days=0).prune(now + 10**9) == 0  # 0 days: keep everything
    finally:
        await db.close()


# --- prices ----------------------------------------------------------------------------------------


def test_price_lookup_normalises_names():
    prices = load_prices()
    assert candidates("us.anthropic.claude-sonnet-4-5-20250929-v1:0")[-1] == "claude-sonnet-4-5"
    assert prices.price("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0") == prices.price(
        "anthropic", "claude-sonnet-4-5")
    assert prices.price("openrouter", "openai/gpt-4o-mini") == prices.price("openai", "gpt-4o-mini")
    assert prices.price("openai", "gpt-4o-2024-08-06") == prices.price("openai", "gpt-4o")
    assert prices.price("openai", "gpt-4o-mini") != prices.price("openai", "gpt-4o")  # no prefix guessing
    assert prices.cost("openai", "some-private-model", input_tokens=10) is None
    assert prices.cost("ollama", "anything", input_tokens=10**6, output_tokens=10**6) == 0.0
    assert prices.cost("llamacpp", None) == 0.0
    assert prices.cost("openai", "gpt-4o", input_tokens=10**6, output_tokens=10**6, cache_read=10**6) == 13.75


def test_price_override_file(tmp_path: Path):
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({
        "updated": "2030-01-01",
        "free_providers": ["ollama"],
        "models": {"my-finetune": {"input": 1, "output": 2}, "gpt-4o": {"input": 100, "output": 100},
                   "lmstudio:qwen": {"input": 0.5, "output": 0.5}},
    }))
    prices = load_prices(override)
    assert prices.updated == "2030-01-01"
    assert prices.cost("openai", "my-finetune", input_tokens=10**6, output_tokens=10**6) == 3.0
    assert prices.cost("openai", "gpt-4o", input_tokens=10**6) == 100.0  # the override wins
    assert prices.cost("openai", "gpt-4o-mini", input_tokens=10**6) == 0.15  # the rest of the table stays
    assert prices.cost("lmstudio", "qwen", input_tokens=10**6) == 0.5  # no longer free; provider:model key
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": {"x": {"input": "cheap"}}}')
    with pytest.raises(ConfigError, match="numeric"):
        load_prices(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_prices(tmp_path / "missing.json")


async def test_prices_file_setting_reaches_the_cost_metric(openai_upstream, aiohttp_client, tmp_path: Path):
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"models": {"gpt-4o": {"input": 1000, "output": 0}}}))
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, model_prices_file=override)))
    openai_upstream.script.enqueue(Answer(text="ok", prompt_tokens=1000, completion_tokens=1))
    assert (await client.post(MSG, json=claude_request())).status == 200
    assert (await rows(client))[0]["cost_usd"] == pytest.approx(1.0)
