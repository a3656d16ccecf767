"""GET /metrics/prometheus after scripted traffic, parsed with prometheus_client's own parser: the counts
match the traffic exactly. Also retries, fallbacks, breaker states, load shedding, streams in flight,
OpenMetrics negotiation, and several worker processes sharing PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from lynkr.observability.metrics import Metrics, mark_process_dead, multiprocess_mode, worker_metrics
from lynkr.observability.record import RequestRecord
from lynkr.server import create_app
from lynkr.server.keys import SHEDDER
from tests.conftest import SECRET, claude_request, make_settings, openai_settings
from tests.fakes.script import Answer, Failure
from tests.observability_support import HeldStream, ollama_fallback, parse, scrape, total, value

ROOT = Path(__file__).resolve().parent.parent
MSG = "/v1/messages"


def gpt4o_cost(prompt: int, completion: int) -> float:
    return (prompt * 2.5 + completion * 10.0) / 1e6  # prices.json: gpt-4o input $2.50, output $10 per 1M


async def test_counts_match_scripted_traffic_exactly(openai_upstream, aiohttp_client):
    client: TestClient = await aiohttp_client(create_app(openai_settings(openai_upstream)))
    script = openai_upstream.script
    script.enqueue(*(Answer(text="plain", prompt_tokens=11, completion_tokens=7) for _ in range(3)))
    script.enqueue(*(Answer(text="streamed", prompt_tokens=20, completion_tokens=5, cached_tokens=8)
                     for _ in range(2)))
    script.enqueue(Failure(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}}))

    for _ in range(3):
        resp = await client.post(MSG, json=claude_request())
        assert resp.status == 200
    for _ in range(2):
        resp = await client.post(MSG, json=claude_request(stream=True))
        assert resp.status == 200
        await resp.read()
    upstream_401 = await client.post(MSG, json=claude_request())
    assert upstream_401.status >= 400
    malformed = await client.post(MSG, data=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status == 400
    counted = await client.post("/v1/messages/count_tokens", json={"model": "claude-sonnet-4-5",
                                                                   "messages": [{"role": "user", "content": "hi"}]})
    assert counted.status == 200
    missing = await client.get("/no/such/path")
    assert missing.status == 404
    # lynkr's own observability endpoints are not counted, however often they are hit
    for path in ("/health", "/health/ready", "/metrics", "/metrics/observability"):
        assert (await client.get(path)).status == 200

    s = await scrape(client)
    ok = {"endpoint": MSG, "provider": "openai", "model": "gpt-4o"}
    assert value(s, "lynkr_requests_total", **ok, status="200") == 5
    assert value(s, "lynkr_requests_total", endpoint=MSG, provider="openai", model="none",
                 status=str(upstream_401.status)) == 1
    assert value(s, "lynkr_requests_total", endpoint=MSG, provider="none", model="none", status="400") == 1
    assert value(s, "lynkr_requests_total", endpoint="/v1/messages/count_tokens", provider="none", model="none",
                 status="200") == 1
    assert value(s, "lynkr_requests_total", endpoint="other", provider="none", model="none", status="404") == 1
    assert total(s, "lynkr_requests_total") == 9  # nothing else: no scrape, health or dashboard request
    assert value(s, "lynkr_request_duration_seconds_count", **ok) == 5
    assert total(s, "lynkr_request_duration_seconds_count") == 9
    assert value(s, "lynkr_request_duration_seconds_bucket", **ok, le="+Inf") == 5
    assert value(s, "lynkr_time_to_first_token_seconds_count", **ok) == 2  # the two streams
    assert total(s, "lynkr_time_to_first_token_seconds_count") == 2
    # usage: Anthropic-shaped, so input excludes the cached prompt tokens
    tok = {"provider": "openai", "model": "gpt-4o"}
    assert value(s, "lynkr_tokens_total", **tok, type="input") == 3 * 11 + 2 * (20 - 8)
    assert value(s, "lynkr_tokens_total", **tok, type="cache_read") == 2 * 8
    assert value(s, "lynkr_tokens_total", **tok, type="output") == 3 * 7 + 2 * 5
    expected_cost = 3 * gpt4o_cost(11, 7) + 2 * ((12 * 2.5 + 8 * 1.25 + 5 * 10.0) / 1e6)
    assert value(s, "lynkr_estimated_cost_usd_total", **tok) == pytest.approx(expected_cost, rel=1e-9)
    assert total(s, "lynkr_unpriced_requests_total") == 0
    assert value(s, "lynkr_request_errors_total", endpoint=MSG, provider="none",
                 error_type="invalid_request_error") == 1
    assert total(s, "lynkr_request_errors_total") == 3  # the upstream 401, the malformed body, the 404
    assert value(s, "lynkr_upstream_failures_total", provider="openai", error="UpstreamAuthError") == 1
    assert total(s, "lynkr_retries_total") == 0
    assert total(s, "lynkr_fallbacks_total") == 0
    assert value(s, "lynkr_circuit_breaker_state", provider="openai", state="closed") == 1
    assert value(s, "lynkr_circuit_breaker_state", provider="openai", state="open") == 0
    assert value(s, "lynkr_active_streams") == 0
    assert value(s, "lynkr_active_requests") == 0
    assert value(s, "lynkr_load_shed_total") == 0
    assert value(s, "lynkr_build_info", version=__import__("lynkr").__version__) == 1

    # /metrics is the same exposition
    again = await scrape(client, "/metrics")
    assert value(again, "lynkr_requests_total", **ok, status="200") == 5


async def test_retries_fallbacks_and_breaker_state(openai_upstream, ollama_upstream, aiohttp_client):
    settings = openai_settings(openai_upstream, **ollama_fallback(ollama_upstream.url), api_retry_max_retries=1,
                               api_retry_initial_delay=0, api_retry_max_delay=0, circuit_breaker_failure_threshold=2)
    client = await aiohttp_client(create_app(settings))
    openai_upstream.script.enqueue(Failure(503, {"error": {"message": "overloaded"}}),
                                   Failure(503, {"error": {"message": "still overloaded"}}))
    ollama_upstream.script.enqueue(Answer(text="from the fallback", prompt_tokens=9, completion_tokens=4))

    resp = await client.post(MSG, json=claude_request())
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Lynkr-Provider"] == "ollama"

    s = await scrape(client)
    served = {"endpoint": MSG, "provider": "ollama", "model": "qwen2.5-coder:7b"}
    assert value(s, "lynkr_requests_total", **served, status="200") == 1
    assert total(s, "lynkr_requests_total") == 1
    assert value(s, "lynkr_retries_total", endpoint=MSG) == 1
    assert value(s, "lynkr_fallbacks_total", provider="ollama", tier="none") == 1
    assert total(s, "lynkr_upstream_failures_total", provider="openai") == 2
    assert value(s, "lynkr_tokens_total", provider="ollama", model="qwen2.5-coder:7b", type="input") == 9
    # a local backend costs 0: priced, not unknown
    assert value(s, "lynkr_estimated_cost_usd_total", provider="ollama", model="qwen2.5-coder:7b") == 0
    assert ("lynkr_estimated_cost_usd_total", (("model", "qwen2.5-coder:7b"), ("provider", "ollama"))) in s
    assert total(s, "lynkr_unpriced_requests_total") == 0
    # two failures in a row opened openai's breaker
    assert value(s, "lynkr_circuit_breaker_state", provider="openai", state="open") == 1
    assert value(s, "lynkr_circuit_breaker_state", provider="openai", state="closed") == 0
    assert value(s, "lynkr_circuit_breaker_state", provider="ollama", state="closed") == 1


async def test_unknown_model_price_is_unknown_not_zero(openai_upstream, aiohttp_client):
    settings = make_settings(model_provider="openai", openai_api_key=SECRET, openai_model="my-finetune-v3",
                             openai_endpoint=openai_upstream.url + "/v1/chat/completions")
    client = await aiohttp_client(create_app(settings))
    openai_upstream.script.enqueue(Answer(text="hi"))
    assert (await client.post(MSG, json=claude_request())).status == 200
    s = await scrape(client)
    labels = {"provider": "openai", "model": "my-finetune-v3"}
    assert value(s, "lynkr_unpriced_requests_total", **labels) == 1
    assert not any(n == "lynkr_estimated_cost_usd_total" for n, _ in s)


async def test_streams_in_flight_and_load_shedding(aiohttp_server, aiohttp_client):
    held = HeldStream()
    upstream = await aiohttp_server(held.app())
    settings = make_settings(model_provider="openai", openai_api_key=SECRET, openai_model="gpt-4o",
                             openai_endpoint=str(upstream.make_url("/v1/chat/completions")),
                             load_shedding_active_requests_threshold=1)
    client = await aiohttp_client(create_app(settings))

    stream = await client.post(MSG, json=claude_request(stream=True))  # returns once headers are in
    assert stream.status == 200
    await held.started.wait()
    s = await scrape(client)
    assert value(s, "lynkr_active_streams") == 1
    assert value(s, "lynkr_active_requests") == 1

    shed = await client.post(MSG, json=claude_request())  # over the limit of one in flight
    assert shed.status == 529
    s = await scrape(client)
    assert value(s, "lynkr_load_shed_total") == 1
    assert value(s, "lynkr_requests_total", endpoint=MSG, provider="none", model="none", status="529") == 1

    held.release()
    body = await stream.read()
    assert b"message_stop" in body
    s = await scrape(client)
    assert value(s, "lynkr_active_streams") == 0
    assert value(s, "lynkr_active_requests") == 0
    assert value(s, "lynkr_load_shed_total") == 1  # counted once, not again on every scrape
    assert value(s, "lynkr_requests_total", endpoint=MSG, provider="openai", model="gpt-4o", status="200") == 1
    assert client.app[SHEDDER].shed == 1


async def test_openmetrics_when_asked(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Answer(text="hi"))
    assert (await client.post(MSG, json=claude_request())).status == 200
    resp = await client.get("/metrics/prometheus", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    text = await resp.text()
    assert text.rstrip().endswith("# EOF")
    families = {f.name: f for f in openmetrics_families(text)}
    samples = [s for s in families["lynkr_requests"].samples if s.name == "lynkr_requests_total"]
    assert [s.value for s in samples] == [1.0]


def test_metric_names_follow_prometheus_conventions():
    metrics = Metrics()
    names = {family.name: family.type for family in metrics.registry.collect()}
    assert names, "no metrics registered"
    for name, kind in names.items():
        assert name.startswith("lynkr_")
        assert name == name.lower() and " " not in name
        if kind == "histogram":
            assert name.endswith("_seconds")
    assert names["lynkr_requests"] == "counter"  # exposed as lynkr_requests_total
    assert names["lynkr_request_duration_seconds"] == "histogram"
    assert names["lynkr_time_to_first_token_seconds"] == "histogram"
    assert names["lynkr_circuit_breaker_state"] == "gauge"


def test_each_app_has_its_own_registry():
    a, b = Metrics(), Metrics()
    record = RequestRecord("req_1", "POST", MSG, "anthropic", provider="openai", model="gpt-4o", status=200)
    record.finished = record.started + 0.5
    a.observe(record)
    sa, sb = parse(a.render()[0].decode()), parse(b.render()[0].decode())
    assert value(sa, "lynkr_requests_total", endpoint=MSG, provider="openai", model="gpt-4o", status="200") == 1
    assert total(sb, "lynkr_requests_total") == 0


# --- several workers: PROMETHEUS_MULTIPROC_DIR ---------------------------------------------------------

WORKER = textwrap.dedent("""
    import asyncio, sys
    from aiohttp.test_utils import TestClient, TestServer
    from lynkr.observability.metrics import multiprocess_mode
    from lynkr.server import create_app
    from tests.conftest import claude_request, make_settings

    async def main(upstream, n, scrape):
        assert multiprocess_mode()
        settings = make_settings(model_provider="openai", openai_api_key="sk-worker-key-123456",
                                 openai_endpoint=upstream + "/v1/chat/completions", openai_model="gpt-4o")
        async with TestClient(TestServer(create_app(settings))) as client:
            for _ in range(n):
                resp = await client.post("/v1/messages", json=claude_request())
                assert resp.status == 200, await resp.text()
            if scrape:
                print((await (await client.get("/metrics/prometheus")).read()).decode())

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "scrape"))
""")


async def run_worker(upstream_url: str, n: int, env: dict[str, str], scrape: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, upstream_url, str(n), "scrape" if scrape else "-", cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-3000:]
    return out.decode()


async def test_workers_share_metrics_through_multiproc_dir(openai_upstream, tmp_path):
    assert not multiprocess_mode()  # this test process stays in single-process mode
    openai_upstream.script.respond_with(lambda body: Answer(text="hi", prompt_tokens=3, completion_tokens=2))
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    first = parse(await run_worker(openai_upstream.url, 2, env))
    # a worker that is never scraped: the counts it tallied reach the shared files when it stops
    await run_worker(openai_upstream.url, 4, env, scrape=False)
    second = parse(await run_worker(openai_upstream.url, 3, env))  # another process, another pid
    ok = {"endpoint": MSG, "provider": "openai", "model": "gpt-4o"}
    assert value(first, "lynkr_requests_total", **ok, status="200") == 2
    # the last worker's scrape sums every process's files
    assert value(second, "lynkr_requests_total", **ok, status="200") == 9
    assert value(second, "lynkr_request_duration_seconds_count", **ok) == 9
    assert value(second, "lynkr_tokens_total", provider="openai", model="gpt-4o", type="input") == 27
    assert value(second, "lynkr_tokens_total", provider="openai", model="gpt-4o", type="output") == 18
    assert {p.name.split("_")[0] for p in tmp_path.glob("*.db")} >= {"counter", "histogram", "gauge"}


def test_worker_metrics_sets_up_one_shared_directory(tmp_path):
    env: dict[str, str] = {}
    with worker_metrics(1, env) as path:  # one process: nothing to share
        assert path is None and env == {}
    with worker_metrics(3, env) as path:  # no directory given: a temporary one for this run
        assert path is not None and path.is_dir() and env["PROMETHEUS_MULTIPROC_DIR"] == str(path)
        (path / "counter_123.db").write_bytes(b"x")
    assert not path.exists() and "PROMETHEUS_MULTIPROC_DIR" not in env
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_99.db").write_bytes(b"stale from the last run")
    (given / "notes.txt").write_text("not ours")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(given)}
    with worker_metrics(2, env) as path:
        assert path == given and not (given / "counter_99.db").exists() and (given / "notes.txt").exists()
    assert given.exists() and env["PROMETHEUS_MULTIPROC_DIR"] == str(given)  # the user's directory stays
    (given / "gauge_livesum_4242.db").write_bytes(b"")
    mark_process_dead(4242, env)
    assert not (given / "gauge_livesum_4242.db").exists()
