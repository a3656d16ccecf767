"""End to end: the real Claude Code CLI, in ``-p`` mode, against lynkr and a fake backend.

Claude Code asks lynkr for a turn; the fake backend answers with a ``Write`` tool call streamed in
fragments; Claude Code writes the file itself, sends the tool result back through lynkr, and the
backend closes with a text answer. Everything runs on loopback in this test's event loop.

Needs the CLI: ``LYNKR_E2E_CLAUDE=/path/to/claude``, or ``npm install --prefix .e2e/npm -g
@anthropic-ai/claude-code`` (CI does this), or ``claude`` on PATH. Skipped otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from lynkr.config import Settings
from lynkr.server import create_app
from tests.conftest import Upstream, ollama_settings, openai_settings
from tests.e2e_support import Exchange, explain, record_traffic, require_claude, run_claude, workspace
from tests.fakes.script import Answer, Responder, ToolCall

pytestmark = pytest.mark.e2e

ServerFactory = Callable[..., Awaitable[TestServer]]

PROMPT = "create hello.txt containing hi"
DONE = "Done: created hello.txt containing hi."
CALL_ID = "call_e2e_write_1"


@pytest.fixture
def claude() -> str:
    return require_claude()


def has_tool_result(body: dict[str, Any]) -> bool:
    """Both fakes' dialects carry a tool result as a ``role: "tool"`` message."""
    return any(m.get("role") == "tool" for m in body.get("messages") or ())


def write_then_done(target: Path) -> Responder:
    def respond(body: dict[str, Any]) -> Answer:
        if not body.get("tools"):  # a side request (title, ...): not part of the agent loop
            return Answer(text="hello.txt")
        if has_tool_result(body):
            return Answer(text=DONE)
        args = json.dumps({"file_path": str(target), "content": "hi"})
        return Answer(tool_calls=[ToolCall("Write", args, id=CALL_ID)], pieces=5)

    return respond


def tool_schema(body: dict[str, Any], name: str) -> dict[str, Any]:
    for t in body.get("tools") or ():
        if t["function"]["name"] == name:
            return t["function"]["parameters"]
    raise AssertionError(f"no tool {name!r} in {[t['function']['name'] for t in body.get('tools') or ()]}")


def main_requests(traffic: list[Exchange]) -> list[Exchange]:
    return [ex for ex in traffic if ex.method == "POST" and ex.path == "/v1/messages"]


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


async def start_lynkr(aiohttp_server: ServerFactory, settings: Settings) -> tuple[str, list[Exchange]]:
    app = create_app(settings)
    traffic = record_traffic(app)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), traffic


async def drive_write(claude: str, tmp_path: Path, aiohttp_server: ServerFactory, upstream: Upstream,
                      settings: Settings) -> str:
    """Run the Write scenario, check everything both backends share; returns the tool_use id."""
    work, home = workspace(tmp_path)
    target = work / "hello.txt"
    upstream.script.respond_with(write_then_done(target))
    base_url, traffic = await start_lynkr(aiohttp_server, settings)

    run = await run_claude(claude, ["-p", PROMPT, "--permission-mode", "acceptEdits"],
                           cwd=work, home=home, base_url=base_url)
    why = explain(run, traffic, upstream.script.requests)
    print(why)  # shown by pytest on failure (and with -s)

    # the CLI succeeded and the tool really ran on disk
    assert run.returncode == 0, why
    assert target.exists(), why
    assert target.read_text() == "hi", why  # Write writes content exactly, no newline added
    assert DONE in run.stdout, why

    # Claude Code -> lynkr: the agent loop's two streamed turns, nothing lynkr refused
    assert all(ex.status < 400 for ex in traffic), why
    turns = main_requests(traffic)
    assert len(turns) >= 2, why
    first, second = turns[0], turns[-1]
    for ex in (first, second):
        assert ex.body["stream"] is True, why
        assert ex.streamed and ex.status == 200, why
        assert ex.response_headers.get("X-Lynkr-Provider") == settings.model_provider, why
    assert "beta=true" in first.query, why
    assert first.headers.get("x-api-key") == "dummy-key-123", why
    assert first.headers.get("User-Agent", "").startswith("claude-cli/"), why

    # lynkr's streamed first answer: one Write tool_use, input rebuilt from the JSON deltas
    uses = first.tool_uses()
    assert [u["name"] for u in uses] == ["Write"], why
    assert uses[0]["input"] == {"file_path": str(target), "content": "hi"}, why
    tool_use_id = uses[0]["id"]
    events = [name for name, _ in first.sse_events() if name != "ping"]
    assert events[0] == "message_start" and events[-1] == "message_stop", events
    stop = [ev for name, ev in first.sse_events() if name == "message_delta"]
    assert stop and stop[-1]["delta"]["stop_reason"] == "tool_use", why

    # Claude Code's second turn answers exactly that tool call, successfully
    results = tool_results(second.body)
    assert [r["tool_use_id"] for r in results] == [tool_use_id], why
    assert not results[0].get("is_error"), results[0]
    assert DONE in second.text(), why

    # lynkr -> backend: streamed, Write offered with Claude Code's real schema, tool result relayed
    reqs = upstream.script.requests
    agent = [r for r in reqs if r.get("tools")]
    assert len(agent) >= 2, why
    assert all(r.get("stream") is True for r in agent), why
    write = tool_schema(agent[0], "Write")
    assert {"file_path", "content"} <= set(write["properties"]), write
    assert {"file_path", "content"} <= set(write.get("required", ())), write
    assert not has_tool_result(agent[0]) and has_tool_result(agent[-1]), why
    return tool_use_id


async def test_write_file_through_openai_backend(
    claude: str, tmp_path: Path, aiohttp_server: ServerFactory, openai_upstream: Upstream
) -> None:
    tool_use_id = await drive_write(claude, tmp_path, aiohttp_server, openai_upstream,
                                    openai_settings(openai_upstream))
    assert tool_use_id == CALL_ID  # the backend's call id survives the round trip unchanged
    last = [r for r in openai_upstream.script.requests if r.get("tools")][-1]
    calls = [c for m in last["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [(CALL_ID, "Write")]
    assert json.loads(calls[0]["function"]["arguments"])["content"] == "hi"
    tool_msgs = [m for m in last["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == [CALL_ID]
    assert "hello.txt" in tool_msgs[0]["content"], tool_msgs


async def test_write_file_through_ollama_backend(
    claude: str, tmp_path: Path, aiohttp_server: ServerFactory, ollama_upstream: Upstream
) -> None:
    tool_use_id = await drive_write(claude, tmp_path, aiohttp_server, ollama_upstream,
                                    ollama_settings(ollama_upstream))
    assert tool_use_id.startswith("toolu_")  # Ollama has no call ids: lynkr mints one
    last = [r for r in ollama_upstream.script.requests if r.get("tools")][-1]
    calls = [c for m in last["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
    assert [c["function"]["name"] for c in calls] == ["Write"]
    assert calls[0]["function"]["arguments"]["content"] == "hi"
    tool_msgs = [m for m in last["messages"] if m["role"] == "tool"]
    assert [m.get("tool_name") for m in tool_msgs] == ["Write"]
    assert "hello.txt" in tool_msgs[0]["content"], tool_msgs


async def test_plain_text_answer_through_openai_backend(
    claude: str, tmp_path: Path, aiohttp_server: ServerFactory, openai_upstream: Upstream
) -> None:
    text = "Hello from the fake backend, relayed by lynkr."
    openai_upstream.script.respond_with(lambda body: Answer(text=text, pieces=4))
    base_url, traffic = await start_lynkr(aiohttp_server, openai_settings(openai_upstream))
    work, home = workspace(tmp_path)

    run = await run_claude(claude, ["-p", "say hello"], cwd=work, home=home, base_url=base_url)
    why = explain(run, traffic, openai_upstream.script.requests)
    print(why)

    assert run.returncode == 0, why
    assert text in run.stdout, why
    turns = main_requests(traffic)
    assert len(turns) == 1, why
    assert turns[0].streamed and turns[0].text() == text, why
    assert turns[0].tool_uses() == [], why
    assert list(work.iterdir()) == [], why
    assert all(r.get("stream") is True for r in openai_upstream.script.requests), why
