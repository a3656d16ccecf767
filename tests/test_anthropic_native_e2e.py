"""End to end: the real Claude Code CLI (``-p``) against lynkr with MODEL_PROVIDER=anthropic and a fake
Anthropic API behind it: pure passthrough, both ways.

The fake answers with a signed thinking block and a ``Write`` tool call; Claude Code writes the file,
sends the thinking block and the tool result back, and the fake closes with text. What Claude Code sent
lynkr must reach the fake unchanged (model included: no ANTHROPIC_UPSTREAM_MODEL is set), with lynkr's
upstream key instead of the client's. Needs the CLI (``LYNKR_E2E_CLAUDE=/path/to/claude``); skipped without.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from lynkr.server import create_app
from tests.conftest import SECRET, Upstream, make_settings
from tests.e2e_support import API_KEY, explain, record_traffic, require_claude, run_claude, workspace
from tests.fakes import anthropic_server
from tests.fakes.anthropic_server import SIGNATURE
from tests.fakes.script import Answer, Responder, Script, ToolCall

pytestmark = pytest.mark.e2e

ServerFactory = Callable[..., Awaitable[TestServer]]
DONE = "Done: created hello.txt containing hi."
CALL_ID = "toolu_e2e_native_write_1"


@pytest.fixture
def claude() -> str:
    return require_claude()


@pytest.fixture
async def upstream(aiohttp_server: ServerFactory) -> Upstream:
    script = Script()
    return Upstream(script, await aiohttp_server(anthropic_server.make_app(script)))


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for m in body.get("messages") or () if m["role"] == "user" and isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


def write_then_done(target: Path) -> Responder:
    def respond(body: dict[str, Any]) -> Answer:
        if not body.get("tools"):  # a side request (title, ...): not part of the agent loop
            return Answer(text="hello.txt")
        if tool_results(body):
            return Answer(text=DONE)
        args = json.dumps({"file_path": str(target), "content": "hi"})
        return Answer(reasoning="The user wants hello.txt with hi in it.",
                      tool_calls=[ToolCall("Write", args, id=CALL_ID)], pieces=5)

    return respond


async def test_write_file_through_anthropic_passthrough(claude: str, tmp_path: Path, aiohttp_server: ServerFactory,
                                                        upstream: Upstream) -> None:
    work, home = workspace(tmp_path)
    target = work / "hello.txt"
    upstream.script.respond_with(write_then_done(target))
    settings = make_settings(model_provider="anthropic", anthropic_upstream_api_key=SECRET,
                             anthropic_upstream_endpoint=upstream.url + "/v1/messages")
    app = create_app(settings)
    traffic = record_traffic(app)
    server = await aiohttp_server(app)

    run = await run_claude(claude, ["-p", "create hello.txt containing hi", "--permission-mode", "acceptEdits"],
                           cwd=work, home=home, base_url=str(server.make_url("")).rstrip("/"))
    why = explain(run, traffic, upstream.script.requests)
    print(why)

    assert run.returncode == 0, why
    assert target.read_text() == "hi", why
    assert DONE in run.stdout, why
    turns = [ex for ex in traffic if ex.method == "POST" and ex.path == "/v1/messages"]
    assert len(turns) >= 2 and all(ex.status == 200 and ex.streamed for ex in turns), why

    # passthrough: every body Claude Code sent reached the backend exactly as sent, model included
    assert [ex.body for ex in turns] == upstream.script.requests, why
    assert all(h.get("x-api-key") == SECRET for h in upstream.script.headers), why
    assert not any(API_KEY in json.dumps(h) for h in upstream.script.headers), why  # the client's key stays

    # and back: the streamed tool call, the signed thinking block Claude Code returned before it
    first, last = turns[0], turns[-1]
    uses = first.tool_uses()
    assert [(u["id"], u["name"]) for u in uses] == [(CALL_ID, "Write")], why
    assistant = [m for m in last.body["messages"] if m["role"] == "assistant"][-1]["content"]
    kinds = [b["type"] for b in assistant]
    assert kinds.index("thinking") < kinds.index("tool_use"), assistant
    assert next(b for b in assistant if b["type"] == "thinking")["signature"] == SIGNATURE
    results = tool_results(last.body)
    assert [r["tool_use_id"] for r in results] == [CALL_ID] and not results[0].get("is_error"), results
    assert DONE in last.text(), why
