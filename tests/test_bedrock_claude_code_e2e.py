"""End to end: the real Claude Code CLI (``-p`` mode) -> lynkr -> the fake Bedrock Runtime.

The fake streams a ``Write`` tool call as ConverseStream event-stream frames; Claude Code writes the file,
sends the tool result back through lynkr (which Bedrock must receive as a ``toolResult`` paired with the
earlier ``toolUse``), and the fake closes with a text answer. Requests are SigV4-signed with fake static
credentials from the environment and checked by the fake. Everything runs on loopback.

Needs the CLI (see tests/e2e_support.py); skipped otherwise.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from lynkr.server import create_app
from tests.bedrock_support import MODEL_ID, bedrock_settings, isolate_aws, start_fake
from tests.e2e_support import explain, record_traffic, require_claude, run_claude, workspace
from tests.fakes.bedrock_server import FakeAuth
from tests.fakes.script import Answer, Responder, ToolCall

pytestmark = pytest.mark.e2e

PROMPT = "create hello.txt containing hi"
DONE = "Done: created hello.txt containing hi."
CALL_ID = "tooluse_e2eWrite01"


def offered_tools(body: dict[str, Any]) -> list[str]:
    return [t["toolSpec"]["name"] for t in (body.get("toolConfig") or {}).get("tools") or () if "toolSpec" in t]


def blocks(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b[kind] for m in body.get("messages") or () for b in m["content"] if kind in b]


def write_then_done(target: Path) -> Responder:
    def respond(body: dict[str, Any]) -> Answer:
        if "Write" not in offered_tools(body):  # a side request (title, ...): not part of the agent loop
            return Answer(text="hello.txt")
        if blocks(body, "toolResult"):
            return Answer(text=DONE, pieces=3)
        args = json.dumps({"file_path": str(target), "content": "hi"})
        return Answer(text="Writing it.", tool_calls=[ToolCall("Write", args, id=CALL_ID)], pieces=5)

    return respond


async def test_claude_code_writes_a_file_through_bedrock(tmp_path, aiohttp_server, monkeypatch):
    claude = require_claude()
    isolate_aws(monkeypatch, tmp_path, AWS_ACCESS_KEY_ID="AKIDFAKEBEDROCK00001",
                AWS_SECRET_ACCESS_KEY="fake/secret/key/for/bedrock/tests/000000")
    bedrock = await start_fake(aiohttp_server, FakeAuth())
    work, home = workspace(tmp_path)
    target = work / "hello.txt"
    bedrock.fake.script.respond_with(write_then_done(target))
    app = create_app(bedrock_settings(bedrock, api_key=None))
    traffic = record_traffic(app)
    server = await aiohttp_server(app)

    run = await run_claude(claude, ["-p", PROMPT, "--permission-mode", "acceptEdits"], cwd=work, home=home,
                           base_url=str(server.make_url("")).rstrip("/"))
    why = explain(run, traffic, bedrock.fake.script.requests)
    print(why)

    assert run.returncode == 0, why
    assert target.exists() and target.read_text() == "hi", why
    assert DONE in run.stdout, why
    assert all(ex.status < 400 for ex in traffic), why

    # Claude Code saw the tool call streamed by lynkr with Bedrock's id, and answered it
    turns = [ex for ex in traffic if ex.method == "POST" and ex.path == "/v1/messages"]
    first = next(ex for ex in turns if ex.tool_uses())
    assert first.streamed and first.response_headers.get("X-Lynkr-Provider") == "bedrock", why
    assert [(u["id"], u["name"]) for u in first.tool_uses()] == [(CALL_ID, "Write")], why
    assert first.tool_uses()[0]["input"] == {"file_path": str(target), "content": "hi"}, why

    # Bedrock got ConverseStream calls for the configured model, every one SigV4-signed and verified
    calls = bedrock.fake.calls
    assert calls and all(c.auth == "sigv4" and c.model == MODEL_ID for c in calls), calls
    assert any(c.operation == "converse-stream" for c in calls), calls
    agent = [r for r in bedrock.fake.script.requests if "Write" in offered_tools(r)]
    assert len(agent) >= 2, why
    write_schema = next(t["toolSpec"]["inputSchema"]["json"] for t in agent[0]["toolConfig"]["tools"]
                        if t.get("toolSpec", {}).get("name") == "Write")
    assert {"file_path", "content"} <= set(write_schema["properties"]), write_schema
    last = agent[-1]
    # the full history: the earlier toolUse and its toolResult, as blocks (not flattened to text)
    assert [(u["toolUseId"], u["name"]) for u in blocks(last, "toolUse")] == [(CALL_ID, "Write")], last
    results = blocks(last, "toolResult")
    assert [r["toolUseId"] for r in results] == [CALL_ID], last
    assert results[0]["status"] == "success" and "hello.txt" in json.dumps(results[0]["content"]), results
    roles = [m["role"] for m in last["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles  # Converse needs alternation
