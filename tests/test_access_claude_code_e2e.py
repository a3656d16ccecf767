"""End to end: the real Claude Code CLI against a lynkr that requires client keys.

Claude Code's ANTHROPIC_API_KEY is its lynkr client key: with a configured key it works (and its session
is recorded under X-Claude-Code-Session-Id); with a key lynkr does not know it gets lynkr's 401, in
Anthropic's shape, and reports it; the backend never hears of it.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from lynkr.server import create_app
from tests.conftest import openai_settings
from tests.e2e_support import API_KEY, explain, record_traffic, require_claude, run_claude, workspace
from tests.fakes.script import Answer

pytestmark = pytest.mark.e2e

ADMIN = "sk-admin-e2e-000000"


@pytest.fixture
def claude() -> str:
    return require_claude()


async def serve(aiohttp_server, upstream, keys: str):
    app = create_app(openai_settings(upstream, lynkr_api_keys=keys, lynkr_admin_key=ADMIN, rate_limit_rpm=100,
                                     session_transcripts_enabled=True))
    traffic = record_traffic(app)
    server: TestServer = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), traffic


async def test_claude_code_with_its_client_key_works_and_its_session_is_recorded(claude, tmp_path, aiohttp_server,
                                                                                 openai_upstream):
    openai_upstream.script.respond_with(lambda body: Answer(text="hello from behind lynkr"))
    base_url, traffic = await serve(aiohttp_server, openai_upstream, f"claude-code={API_KEY}")
    work, home = workspace(tmp_path)
    run = await run_claude(claude, ["-p", "say hello"], cwd=work, home=home, base_url=base_url)
    why = explain(run, traffic, openai_upstream.script.requests)
    assert run.returncode == 0, why
    assert "hello from behind lynkr" in run.stdout, why
    turns = [ex for ex in traffic if ex.path == "/v1/messages"]
    assert turns and all(ex.status == 200 for ex in turns), why
    assert turns[0].response_headers.get("anthropic-ratelimit-requests-limit") == "100", why
    session = turns[0].headers.get("X-Claude-Code-Session-Id")
    assert session, why
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/v1/sessions/{session}",
                                                         headers={"x-api-key": API_KEY}) as resp:
        assert resp.status == 200, why
        recorded = (await resp.json())["turns"]
    assert recorded and all(t["client_key"] == "claude-code" for t in recorded), why
    assert any("hello from behind lynkr" in str(t["response"]) for t in recorded), why


async def test_claude_code_with_an_unknown_key_gets_lynkrs_401(claude, tmp_path, aiohttp_server, openai_upstream):
    openai_upstream.script.respond_with(lambda body: Answer(text="never"))
    base_url, traffic = await serve(aiohttp_server, openai_upstream, "team=sk-some-other-key-0000")
    work, home = workspace(tmp_path)
    run = await run_claude(claude, ["-p", "say hello"], cwd=work, home=home, base_url=base_url)
    why = explain(run, traffic, openai_upstream.script.requests)
    assert run.returncode != 0, why
    assert "never" not in run.stdout, why
    assert openai_upstream.script.requests == [], why
    refused = [ex for ex in traffic if ex.path == "/v1/messages"]
    # x-should-retry: false on lynkr's 401: Claude Code (which retries even a 401 otherwise) asks once
    assert len(refused) == 1 and refused[0].status == 401, why
    assert refused[0].response_headers.get("x-should-retry") == "false", why
    output = (run.stdout + run.stderr).lower()
    assert "401" in output or "invalid api key" in output or "authentication" in output, why
