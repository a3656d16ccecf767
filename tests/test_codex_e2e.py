"""End to end: the real Codex CLI (``codex exec``) speaking the Responses API to lynkr.

Codex sends ``POST /v1/responses``; lynkr converts it through the Anthropic hub to the fake OpenAI
Chat Completions backend, which answers with a tool call streamed in fragments (``exec_command``,
or the free-form ``apply_patch`` custom tool). Codex runs the tool itself in its workspace-write
sandbox, sends the output back through lynkr, and the backend closes the turn with text. Also:
the "responses-lite" model (tools as namespaces inside ``input``, acting through ``functions.exec``),
and a backend that drops mid-answer (lynkr's ``response.failed`` makes Codex reconnect).
Everything runs on loopback in this test's event loop; Codex's proxies point at a refused port.

Needs the CLI: ``LYNKR_E2E_CODEX=/path/to/codex``, or ``npm install --prefix .e2e/npm -g
@openai/codex`` (CI does this), or ``codex`` on PATH. Skipped otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from lynkr.server import create_app
from tests.conftest import Upstream, openai_settings
from tests.e2e_support import (
    API_KEY,
    Exchange,
    Run,
    jsonl,
    record_traffic,
    require_codex,
    run_codex,
    workspace,
    write_codex_config,
)
from tests.fakes.script import Answer, Raw, Reply, Responder, ToolCall

pytestmark = pytest.mark.e2e

ServerFactory = Callable[..., Awaitable[TestServer]]

PROMPT = "create a file hello.txt containing hi"
DONE = "Done: hello.txt now contains hi."
EXEC_ID = "call_e2e_exec_1"
PATCH_ID = "call_e2e_patch_1"
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"
THOUGHT = "The user wants hello.txt; one shell command will do."
EXEC = ToolCall("exec_command", json.dumps({"cmd": "printf 'hi\\n' > hello.txt"}), id=EXEC_ID)
MODEL = "gpt-5.5"  # a model Codex bundles metadata for: it offers apply_patch as a custom (grammar) tool
LITE_MODEL = "gpt-6-sol"  # "responses-lite": no tools field, namespaced tools in an additional_tools input item


@pytest.fixture
def codex() -> str:
    return require_codex()


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages") or () if m.get("role") == "tool"]


def chat_tool(body: dict[str, Any], name: str) -> dict[str, Any]:
    for t in body.get("tools") or ():
        if t["function"]["name"] == name:
            return t["function"]
    raise AssertionError(f"no tool {name!r} in {[t['function']['name'] for t in body.get('tools') or ()]}")


def call_then_done(call: ToolCall, *, reasoning: str = "", drop_first: bool = False) -> Responder:
    """Until a tool result comes back, stream ``call`` (arguments in fragments); then close with text.

    ``drop_first``: the very first answer breaks off after one text delta (the connection drops).
    """
    answered = 0

    def respond(body: dict[str, Any]) -> Reply:
        nonlocal answered
        answered += 1
        if not body.get("tools"):  # a side request, if Codex ever makes one: not part of the agent loop
            return Answer(text="ok")
        if drop_first and answered == 1:
            chunk = {"id": "chatcmpl-drop", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Crea"},
                                  "finish_reason": None}]}
            return Raw(b"data: " + json.dumps(chunk).encode() + b"\n\n", drop_after=True)
        if tool_messages(body):
            return Answer(text=DONE, pieces=4)
        return Answer(text="Creating it.", reasoning=reasoning, tool_calls=[call], pieces=6)

    return respond


@dataclass
class Outcome:
    run: Run
    traffic: list[Exchange]
    upstream: list[dict[str, Any]]
    events: list[dict[str, Any]]  # codex exec --json, one object per stdout line
    why: str

    def turns(self) -> list[Exchange]:
        return [ex for ex in self.traffic if ex.method == "POST" and ex.path == "/v1/responses"]


def explain_codex(run: Run, traffic: list[Exchange], upstream: list[dict[str, Any]]) -> str:
    lines = [run.report(), "--- Codex -> lynkr ---"]
    for ex in traffic:
        lines.append(ex.summary())
        if ex.path.endswith("/responses") and ex.streamed:
            lines.append("    events: " + " ".join(ev.get("type", name) for name, ev in ex.sse_events()))
    if not traffic:
        lines.append("(no requests)")
    lines.append(f"--- lynkr -> backend: {len(upstream)} request(s) ---")
    for req in upstream:
        msgs = req.get("messages") or []
        lines.append(f"stream={req.get('stream')} model={req.get('model')} roles={[m.get('role') for m in msgs]} "
                     f"tools={[t['function']['name'] for t in req.get('tools') or ()]}")
    return "\n".join(lines)


async def run_exec(codex: str, tmp_path: Path, aiohttp_server: ServerFactory, upstream: Upstream,
                   responder: Responder, *, model: str = MODEL) -> Outcome:
    """Run ``codex exec`` in a fresh work dir against lynkr, whose backend answers with ``responder``."""
    work, home = workspace(tmp_path)
    upstream.script.respond_with(responder)
    settings = openai_settings(upstream)
    app = create_app(settings)
    traffic = record_traffic(app)
    server = await aiohttp_server(app)
    write_codex_config(home, str(server.make_url("")).rstrip("/"), model)

    run = await run_codex(codex, ["exec", "--skip-git-repo-check", "--json", "-s", "workspace-write", PROMPT],
                          cwd=work, codex_home=home)
    why = explain_codex(run, traffic, upstream.script.requests)
    print(why)  # shown by pytest on failure (and with -s)
    return Outcome(run, traffic, upstream.script.requests, jsonl(run.stdout), why)


def check_file_written(out: Outcome, work: Path) -> None:
    """Codex exited 0 with a completed turn, the tool really wrote hello.txt, and our closing text arrived."""
    why, run = out.why, out.run
    assert run.returncode == 0, why
    target = work / "hello.txt"
    assert target.exists(), why
    assert target.read_text() == "hi\n", why
    kinds = [ev.get("type") for ev in out.events]
    assert "turn.completed" in kinds and "turn.failed" not in kinds, why
    messages = [ev["item"].get("text") for ev in out.events
                if ev.get("type") == "item.completed" and ev["item"].get("type") == "agent_message"]
    assert messages[-1] == DONE, why


def check_turn_stream(ex: Exchange, closing: str, why: str) -> None:
    """One /v1/responses exchange: streamed 200 to Codex's real headers, events in sequence, ``closing`` last."""
    assert ex.body["stream"] is True, why
    assert ex.streamed and ex.status == 200, why
    assert ex.headers.get("Authorization") == f"Bearer {API_KEY}", why
    assert ex.headers.get("originator") == "codex_exec", why
    assert ex.headers.get("User-Agent", "").startswith("codex_exec/"), why
    assert ex.response_headers.get("X-Lynkr-Provider") == "openai", why
    events = [ev for _, ev in ex.sse_events()]
    types = [ev["type"] for ev in events]
    assert types[:2] == ["response.created", "response.in_progress"], types
    assert types[-1] == closing and types.count(closing) == 1, types
    assert [ev["sequence_number"] for ev in events] == list(range(len(events))), types


async def drive(codex: str, tmp_path: Path, aiohttp_server: ServerFactory, upstream: Upstream,
                call: ToolCall, *, reasoning: str = "", model: str = MODEL) -> Outcome:
    """The happy path: the backend calls ``call`` once, Codex runs it, the backend closes with text."""
    out = await run_exec(codex, tmp_path, aiohttp_server, upstream, call_then_done(call, reasoning=reasoning),
                         model=model)
    why = out.why
    check_file_written(out, tmp_path / "work")
    assert "error" not in [ev.get("type") for ev in out.events], why  # Codex never had to reconnect

    # Codex -> lynkr: every request answered < 400; only the Responses endpoint, streamed; no retries
    assert all(ex.status < 400 for ex in out.traffic), why
    turns = out.turns()
    assert turns == out.traffic, why
    assert len(turns) == 2, why  # the tool call, then the answer to its output: a retry would add more
    for ex in turns:
        check_turn_stream(ex, "response.completed", why)

    # lynkr -> backend: two streamed chat turns; the second carries exactly one tool result, for our call
    agent = [r for r in out.upstream if r.get("tools")]
    assert len(agent) == 2, why
    assert all(r.get("stream") is True for r in agent), why
    assert not tool_messages(agent[0]), why
    results = tool_messages(agent[1])
    assert [m["tool_call_id"] for m in results] == [call.id], why
    calls = [c for m in agent[1]["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [(call.id, call.name)], why
    assert json.loads(calls[0]["function"]["arguments"]) == json.loads(call.arguments), why
    return out


def completed_output(ex: Exchange) -> list[dict[str, Any]]:
    done = [ev for _, ev in ex.sse_events() if ev["type"] == "response.completed"]
    assert len(done) == 1, ex.summary()
    return done[0]["response"]["output"]


async def test_exec_command_writes_file(
    codex: str, tmp_path: Path, aiohttp_server: ServerFactory, openai_upstream: Upstream
) -> None:
    out = await drive(codex, tmp_path, aiohttp_server, openai_upstream, EXEC, reasoning=THOUGHT)
    why = out.why

    # Codex offered exec_command with a "cmd" parameter; lynkr passed it to the backend as a function
    first, second = out.turns()
    sent_tools = {t.get("name") or t.get("type"): t for t in first.body["tools"]}
    assert sent_tools["exec_command"]["type"] == "function", sent_tools.keys()
    assert "cmd" in sent_tools["exec_command"]["parameters"]["properties"], why
    assert "cmd" in chat_tool(out.upstream[0], "exec_command")["parameters"]["properties"], why
    # every function and custom tool reached the backend; built-in ones (web_search...) did not
    runnable = [t["name"] for t in first.body["tools"] if t["type"] in ("function", "custom")]
    assert {"exec_command", "apply_patch"} <= set(runnable), runnable
    assert [t["function"]["name"] for t in out.upstream[0]["tools"]] == runnable, why

    # lynkr streamed the call as a function_call item, its arguments in fragments
    events = [ev for _, ev in first.sse_events()]
    deltas = [ev["delta"] for ev in events if ev["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) > 1 and "".join(deltas) == EXEC.arguments, deltas
    calls = [item for item in completed_output(first) if item["type"] == "function_call"]
    assert [(c["call_id"], c["name"], c["arguments"]) for c in calls] == [(EXEC_ID, "exec_command", EXEC.arguments)]

    # the backend's reasoning reached Codex as a reasoning item (summary text), which Codex showed
    reasoning = [item for item in completed_output(first) if item["type"] == "reasoning"]
    assert [r["summary"] for r in reasoning] == [[{"type": "summary_text", "text": THOUGHT}]], why
    shown = [ev["item"]["text"] for ev in out.events
             if ev.get("type") == "item.completed" and ev["item"].get("type") == "reasoning"]
    assert shown == [THOUGHT], why

    # Codex ran it (its own event says so) and sent the output back, echoing our call item
    ran = [ev["item"] for ev in out.events
           if ev.get("type") == "item.completed" and ev["item"].get("type") == "command_execution"]
    assert ran and "hello.txt" in ran[0]["command"] and ran[0]["exit_code"] == 0, why
    echoed = [i for i in second.body["input"] if i.get("type") == "function_call"]
    assert [(i["call_id"], i["name"]) for i in echoed] == [(EXEC_ID, "exec_command")], why
    outputs = [i for i in second.body["input"] if i.get("type") == "function_call_output"]
    assert [i["call_id"] for i in outputs] == [EXEC_ID], why
    assert "exited with code 0" in str(outputs[0]["output"]), outputs
    assert "exited with code 0" in tool_messages(out.upstream[1])[0]["content"], why
    texts = [c["text"] for item in completed_output(second) if item["type"] == "message" for c in item["content"]]
    assert texts == [DONE], why


async def test_apply_patch_custom_tool_adds_file(
    codex: str, tmp_path: Path, aiohttp_server: ServerFactory, openai_upstream: Upstream
) -> None:
    call = ToolCall("apply_patch", json.dumps({"input": PATCH}), id=PATCH_ID)
    out = await drive(codex, tmp_path, aiohttp_server, openai_upstream, call)
    why = out.why

    # Codex offered apply_patch as a free-form custom tool with a lark grammar; the backend saw a
    # function taking one string, "input"
    first, second = out.turns()
    patch_tools = [t for t in first.body["tools"] if t.get("name") == "apply_patch"]
    assert len(patch_tools) == 1 and patch_tools[0]["type"] == "custom", patch_tools
    assert patch_tools[0]["format"]["type"] == "grammar", patch_tools
    params = chat_tool(out.upstream[0], "apply_patch")["parameters"]
    assert params["required"] == ["input"] and params["properties"]["input"]["type"] == "string", params

    # lynkr answered with a custom_tool_call carrying the raw patch text, not JSON
    events = [ev for _, ev in first.sse_events()]
    done = [ev for ev in events if ev["type"] == "response.custom_tool_call_input.done"]
    assert [ev["input"] for ev in done] == [PATCH], why
    calls = [item for item in completed_output(first) if item["type"] == "custom_tool_call"]
    assert [(c["call_id"], c["name"], c["input"]) for c in calls] == [(PATCH_ID, "apply_patch", PATCH)]

    # Codex applied it and sent back custom_tool_call / custom_tool_call_output items
    echoed = [i for i in second.body["input"] if i.get("type") == "custom_tool_call"]
    assert [(i["call_id"], i["name"], i["input"]) for i in echoed] == [(PATCH_ID, "apply_patch", PATCH)], why
    outputs = [i for i in second.body["input"] if i.get("type") == "custom_tool_call_output"]
    assert [i["call_id"] for i in outputs] == [PATCH_ID], why
    assert "hello.txt" in str(outputs[0]["output"]), outputs


async def test_backend_drop_mid_answer_is_retried_by_codex(
    codex: str, tmp_path: Path, aiohttp_server: ServerFactory, openai_upstream: Upstream
) -> None:
    """The backend breaks off after one text delta: lynkr ends that stream with ``response.failed``,
    which Codex treats as retryable: it reconnects, and the retried turn completes normally."""
    out = await run_exec(codex, tmp_path, aiohttp_server, openai_upstream, call_then_done(EXEC, drop_first=True))
    why = out.why
    check_file_written(out, tmp_path / "work")

    # Codex said it reconnected once, quoting lynkr's error message
    turns = out.turns()
    assert turns == out.traffic and len(turns) == 3, why
    broken, retry, last = turns
    failed = [ev for _, ev in broken.sse_events() if ev["type"] == "response.failed"]
    assert len(failed) == 1, why
    error = failed[0]["response"]["error"]
    assert failed[0]["response"]["status"] == "failed" and error["code"] == "server_error", error
    errors = [ev["message"] for ev in out.events if ev.get("type") == "error"]
    assert len(errors) == 1 and errors[0].startswith("Reconnecting... 1/"), why
    assert error["message"] in errors[0], why

    # three streamed turns: the broken one (response.failed), its retry, the answer to the tool output
    check_turn_stream(broken, "response.failed", why)
    for ex in (retry, last):
        check_turn_stream(ex, "response.completed", why)

    # the retry re-sent the same input (the half-streamed text was not added to the history)
    assert retry.body["input"] == broken.body["input"], why
    assert [i.get("type") for i in last.body["input"]][-2:] == ["function_call", "function_call_output"], why
    assert [len(tool_messages(r)) for r in out.upstream] == [0, 0, 1], why


async def test_responses_lite_namespaced_exec_tool(
    codex: str, tmp_path: Path, aiohttp_server: ServerFactory, openai_upstream: Upstream
) -> None:
    """gpt-6-sol sends ``tools: []`` and its tools inside ``input`` as namespaces; its only way to act
    is ``functions.exec``, a custom tool taking JavaScript that calls the nested tools."""
    script = "const r = await tools.exec_command({cmd: \"printf 'hi\\\\n' > hello.txt\"});\ntext(JSON.stringify(r));\n"
    call = ToolCall("functions__exec", json.dumps({"input": script}), id="call_e2e_js_1")
    out = await drive(codex, tmp_path, aiohttp_server, openai_upstream, call, model=LITE_MODEL)
    why = out.why

    # Codex sent no tools field; lynkr flattened the namespaces into namespace__name functions
    first, second = out.turns()
    assert first.headers.get("x-openai-internal-codex-responses-lite") == "true", why
    assert not first.body.get("tools"), why
    spaces = [t for item in first.body["input"] if item.get("type") == "additional_tools" for t in item["tools"]]
    flat = [f"{ns['name']}__{t['name']}" for ns in spaces for t in ns["tools"]]
    assert "functions__exec" in flat, flat
    assert [t["function"]["name"] for t in out.upstream[0]["tools"]] == flat, why

    # lynkr answered with a custom_tool_call named exec in namespace functions, the script as raw text
    calls = [item for item in completed_output(first) if item["type"] == "custom_tool_call"]
    assert [(c["name"], c.get("namespace"), c["input"]) for c in calls] == [("exec", "functions", script)], why

    # Codex ran the script, which ran the shell command; the output came back for that call
    echoed = [i for i in second.body["input"] if i.get("type") == "custom_tool_call"]
    assert [(i["call_id"], i["name"], i.get("namespace")) for i in echoed] == [(call.id, "exec", "functions")], why
    outputs = [i for i in second.body["input"] if i.get("type") == "custom_tool_call_output"]
    assert [i["call_id"] for i in outputs] == [call.id], why
    output = outputs[0]["output"]
    text = output if isinstance(output, str) else "".join(part.get("text", "") for part in output)
    assert '"exit_code":0' in text, outputs
