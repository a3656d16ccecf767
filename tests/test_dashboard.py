"""GET /dashboard in a real headless browser: Debian's chromium driven by Playwright (executable_path; never a
downloaded browser). The page loads with no console errors, its charts draw the scripted traffic, and a
screenshot is saved to artifacts/dashboard.png."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from lynkr.server import create_app
from tests.conftest import claude_request, openai_settings
from tests.fakes.script import Answer, Failure
from tests.observability_support import ollama_fallback

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

try:
    from playwright.async_api import async_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    async_playwright = None  # type: ignore[assignment]

needs_browser = pytest.mark.skipif(
    async_playwright is None or not Path(CHROMIUM).exists(),
    reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it) and the playwright package")


async def test_page_assets_and_headers(lynkr_openai):
    client, _ = lynkr_openai
    page = await client.get("/dashboard")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert "/dashboard/static/dashboard.js" in html and "http" not in html.split("<body>")[0].replace(
        'content="width=device-width', "")  # nothing loaded from outside lynkr
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    js = await client.get("/dashboard/static/dashboard.js")
    assert js.status == 200 and js.content_type == "text/javascript"
    css = await client.get("/dashboard/static/dashboard.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert (await client.get("/dashboard/static/../../config.py")).status == 404
    assert (await client.get("/dashboard/static/secrets.txt")).status == 404


async def scripted_traffic(client: Any, openai_script: Any, ollama_script: Any) -> int:
    """A few minutes of an agent's life: plain answers, streams, a fallback, an error. Returns the count."""
    openai_script.enqueue(*(Answer(text="ok", prompt_tokens=1200, completion_tokens=300, cached_tokens=400)
                            for _ in range(4)))
    for _ in range(4):
        assert (await client.post("/v1/messages", json=claude_request())).status == 200
    openai_script.enqueue(*(Answer(text="streamed", prompt_tokens=800, completion_tokens=120) for _ in range(3)))
    for _ in range(3):
        resp = await client.post("/v1/messages", json=claude_request(stream=True))
        await resp.read()
    openai_script.enqueue(Failure(500, {"error": {"message": "upstream hiccup"}}))
    ollama_script.enqueue(Answer(text="local fallback", prompt_tokens=900, completion_tokens=90))
    assert (await client.post("/v1/messages", json=claude_request())).status == 200
    openai_script.enqueue(Failure(429, {"error": {"message": "slow down"}}))
    ollama_script.enqueue(Failure(500, {"error": "down"}))
    assert (await client.post("/v1/messages", json=claude_request())).status >= 400
    return 9


@needs_browser
async def test_dashboard_renders_traffic_in_headless_chromium(openai_upstream, ollama_upstream, aiohttp_client):
    settings = openai_settings(openai_upstream, **ollama_fallback(ollama_upstream.url),
                               tier_simple="openai:gpt-4o-mini", tier_complex="openai:gpt-4o")
    client = await aiohttp_client(create_app(settings))
    n = await scripted_traffic(client, openai_upstream.script, ollama_upstream.script)
    summary = await (await client.get("/dashboard/api/summary")).json()
    assert summary["totals"]["requests"] == n

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    problems: list[str] = []
    assert async_playwright is not None
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1000})
            page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                    if msg.type in ("error", "warning") else None)
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
            await page.goto(str(client.make_url("/dashboard")))
            await page.wait_for_selector("body[data-loaded='true']", timeout=15_000)

            state = await page.evaluate("""() => {
                const q = (s) => [...document.querySelectorAll(s)];
                const pts = (s) => q(s).map((e) => Number(e.dataset.points || e.getAttribute('data-points') || 0));
                return {
                    status: document.getElementById('status').dataset.state,
                    requests: document.getElementById('kpi-requests').textContent,
                    cost: document.getElementById('kpi-cost').textContent,
                    rate: pts('#chart-rate path.series[data-series="requests"]'),
                    latency: pts('#chart-latency path.series'),
                    ttft: pts('#chart-ttft path.series[data-series="p50"]'),
                    tokenBars: q('#chart-tokens rect.bar').length,
                    tokenSeries: [...new Set(q('#chart-tokens rect.bar').map((r) => r.dataset.series))].sort(),
                    costBars: q('#chart-cost rect.bar').length,
                    tiers: q('#chart-tiers rect.bar').map((r) => [r.dataset.label, Number(r.dataset.value)]),
                    providers: q('#chart-providers rect.bar').map((r) => [r.dataset.label, Number(r.dataset.value)]),
                    breakers: q('#breakers .breaker').map((b) => [b.dataset.provider, b.dataset.state]),
                    providerRows: q('#providers tbody tr').length,
                    recent: q('#recent tbody tr').map((tr) => [tr.dataset.requestId, tr.lastChild.textContent]),
                    fallbacks: q('#fallbacks li').map((li) => li.textContent),
                };
            }""")
            await page.screenshot(path=str(shot), full_page=True)

            # switching the window refetches and redraws
            async with page.expect_response(lambda r: "window=1h" in r.url and r.status == 200):
                await page.click("#windows button[data-window='1h']")
            await page.wait_for_function("document.querySelector('#windows .active').dataset.window === '1h'")
            assert "window=1h" in page.url
        finally:
            await browser.close()

    assert problems == []
    assert state["status"] == "live"
    assert state["requests"] == str(n)
    assert state["cost"].startswith("$") and state["cost"] != "$0"
    assert sum(state["rate"]) >= 1
    assert len(state["latency"]) == 3 and all(p >= 1 for p in state["latency"])
    assert sum(state["ttft"]) >= 1  # the streams
    assert state["tokenBars"] >= 3 and state["tokenSeries"] == ["cached input", "input", "output"]
    assert state["costBars"] >= 1
    totals = summary["totals"]
    assert sorted(state["tiers"]) == sorted([t["tier"], t["requests"]] for t in totals["by_tier"])
    assert sorted(state["providers"]) == sorted([p["provider"], p["requests"]] for p in totals["by_provider"])
    # the failed request counts for the last backend tried
    assert dict(state["providers"])["openai"] == 7 and dict(state["providers"])["ollama"] == 2
    assert sorted(state["breakers"]) == [["ollama", "closed"], ["openai", "closed"]]
    assert state["providerRows"] == len(totals["by_provider"])
    # recent requests, newest first, with their routing reason
    assert [r[0] for r in state["recent"]] == [r["request_id"] for r in summary["recent"]]
    assert len(state["recent"]) == n
    assert any(reason.startswith("[fallback]") and "after openai" in reason for _, reason in state["recent"])
    assert all(reason for _, reason in state["recent"])
    assert state["fallbacks"] == ["1 \u00d7 openai: UpstreamServerError"]
    assert shot.exists() and shot.stat().st_size > 20_000


ADMIN_KEY = "admin-key-for-the-dashboard-0123"


@needs_browser
async def test_dashboard_behind_the_admin_key(openai_upstream, aiohttp_client):
    """With LYNKR_ADMIN_KEY, the page and its API need the key; a browser signs in with HTTP Basic (the key as
    password) and the page's own fetches then carry it."""
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, lynkr_admin_key=ADMIN_KEY)))
    openai_upstream.script.enqueue(Answer(text="ok"))
    assert (await client.post("/v1/messages", json=claude_request())).status == 200
    assert (await client.get("/dashboard/api/summary")).status == 401
    challenge = await client.get("/dashboard")  # what makes a browser ask for the key
    assert challenge.status == 401 and challenge.headers["WWW-Authenticate"].startswith("Basic")
    assert (await client.get("/metrics/prometheus")).status == 401
    scraped = await client.get("/metrics/prometheus", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert scraped.status == 200

    problems: list[str] = []
    assert async_playwright is not None
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(http_credentials={"username": "admin", "password": ADMIN_KEY})
            page = await context.new_page()
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            await page.goto(str(client.make_url("/dashboard")))
            await page.wait_for_selector("body[data-loaded='true']", timeout=15_000)
            assert await page.text_content("#kpi-requests") == "1"
            assert await page.get_attribute("#status", "data-state") == "live"
        finally:
            await browser.close()
    assert problems == []
