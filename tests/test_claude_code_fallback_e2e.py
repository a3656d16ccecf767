"""End to end with a fallback: the real Claude Code CLI against lynkr whose primary backend is down.

MODEL_PROVIDER=ollama points at a loopback port that refuses connections; FALLBACK_PROVIDERS=openai points
at the fake OpenAI backend. Claude Code's turn (a streamed Write tool call, the tool result, a text answer)
must complete on the fallback: the file is written, and every answer says which backend served it and why.
Needs the CLI (see tests/test_claude_code_e2e.py); skipped otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from lynkr.server import create_app
from lynkr.server.keys import DISPATCHER
from tests.conftest import SECRET, Upstream, make_settings
from tests.e2e_support import explain, record_traffic, refused_port, require_claude, run_claude, workspace
from tests.test_claude_code_e2e import DONE, PROMPT, main_requests, tool_results, write_then_done

pytestmark = pytest.mark.e2e

ServerFactory = Callable[..., Awaitable[TestServer]]


async def test_turn_completes_on_the_fallback_when_the_primary_is_down(
        tmp_path: Path, aiohttp_server: ServerFactory, openai_upstream: Upstream) -> None:
    claude = require_claude()
    work, home = workspace(tmp_path)
    target = work / "hello.txt"
    openai_upstream.script.respond_with(write_then_done(target))
    with refused_port() as down:
        settings = make_settings(
            model_provider="ollama", ollama_endpoint=f"http://127.0.0.1:{down}", ollama_model="qwen2.5-coder:7b",
            fallback_providers="openai", openai_api_key=SECRET, openai_model="gpt-4o",
            openai_endpoint=openai_upstream.url + "/v1/chat/completions",
            api_retry_max_retries=1, api_retry_initial_delay=10, api_retry_max_delay=100,
            circuit_breaker_failure_threshold=2)
        app = create_app(settings)
        traffic = record_traffic(app)
        server = await aiohttp_server(app)
        base_url = str(server.make_url("")).rstrip("/")

        run = await run_claude(claude, ["-p", PROMPT, "--permission-mode", "acceptEdits"],
                               cwd=work, home=home, base_url=base_url)
        why = explain(run, traffic, openai_upstream.script.requests)
        print(why)

        # the turn completed, on the fallback, and the tool really ran
        assert run.returncode == 0, why
        assert target.read_text() == "hi", why
        assert DONE in run.stdout, why
        turns = main_requests(traffic)
        assert len(turns) >= 2, why
        assert all(ex.status == 200 for ex in turns), why
        for ex in turns:
            assert ex.response_headers["X-Lynkr-Provider"] == "openai", why
            assert ex.response_headers["X-Lynkr-Model"] == "gpt-4o", why
            assert ex.response_headers["X-Lynkr-Routing-Reason"].startswith("fallback 1 after ollama: "), why
        first, last = turns[0], turns[-1]
        assert [u["name"] for u in first.tool_uses()] == ["Write"], why
        assert [r["tool_use_id"] for r in tool_results(last.body)] == [first.tool_uses()[0]["id"]], why
        assert DONE in last.text(), why

        # the first turn's two failed connection attempts opened the primary's breaker
        # (CIRCUIT_BREAKER_FAILURE_THRESHOLD=2): the next turn skipped it without trying
        breakers = {b["name"]: b for b in app[DISPATCHER].breaker_states()}
        assert breakers["ollama"]["state"] == "open", json.dumps(breakers)
        assert breakers["ollama"]["stats"]["failure"] == 2, json.dumps(breakers)
        assert breakers["ollama"]["stats"]["rejected"] >= 1, json.dumps(breakers)
        assert "cannot reach ollama" in turns[0].response_headers["X-Lynkr-Routing-Reason"], why
        assert turns[-1].response_headers["X-Lynkr-Routing-Reason"] == "fallback 1 after ollama: circuit open", why
        assert breakers["openai"]["requests"]["fallbacks"] == len(openai_upstream.script.requests), why
