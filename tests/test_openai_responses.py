"""Responses API backends through the real app: Azure OpenAI's Responses URL form and OpenAI with
OPENAI_API=responses, against a fake Responses API speaking its wire format (tests/fakes/responses_server.py).

Anthropic clients (Claude Code) and Chat Completions clients go through the hub; Responses clients (Codex,
the openai SDK) pass straight through with only the model mapped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lynkr.config import Settings
from lynkr.convert.anthropic_stream import fold_events
from lynkr.providers import build_provider
from lynkr.providers.openai_compat import OpenAICompatProvider
from lynkr.providers.openai_responses import OpenAIResponsesProvider
from lynkr.server import create_app
from lynkr.server.keys import OBSERVERS, RESPONSES
from lynkr.sse import SSEDecoder
from tests.conftest import SECRET, Upstream, claude_request, make_settings
from tests.fakes import responses_server
from tests.fakes.responses_server import STATE, ResponsesAnswer
from tests.fakes.script import Answer, Failure, Raw, Script, ToolCall
from tests.transcripts import claude_code_request

ServerFactory = Callable[..., Awaitable[TestServer]]
ClientFactory = Callable[..., Awaitable[TestClient]]

DEPLOYMENT = "gpt-5-deploy"
READ = ToolCall("Read", json.dumps({"file_path": "/srv/app/README.md"}), id="call_read1")
ANSWER = ResponsesAnswer(text="Reading it — 設定 ✓", reasoning="**Plan**\n\nRead the README.", tool_calls=[READ],
                         encrypted="gAAAAABenc-1", pieces=3, prompt_tokens=1500, completion_tokens=30,
                         cached_tokens=1000)
TOOLS = [{"name": "Read", "description": "Read a file", "input_schema": {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
    "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["file_path"],
    "additionalProperties": False}}]


@pytest.fixture
async def upstream(aiohttp_server: ServerFactory) -> Upstream:
    script = Script()
    return Upstream(script, await aiohttp_server(responses_server.make_app(script)))


def azure(upstream: Upstream, path: str = "/openai/responses", **extra: Any) -> Settings:
    return make_settings(model_provider="azure-openai", azure_openai_endpoint=upstream.url + path,
                         azure_openai_api_key=SECRET, azure_openai_deployment=DEPLOYMENT, **extra)


def openai_responses(upstream: Upstream, **extra: Any) -> Settings:
    values: dict[str, Any] = {"openai_endpoint": upstream.url + "/v1", "openai_api": "responses",
                              "openai_model": "gpt-5.1-codex", **extra}
    return make_settings(model_provider="openai", openai_api_key=SECRET, **values)


def paths(upstream: Upstream) -> list[str]:
    return upstream.server.app[STATE].paths


async def events_of(resp: Any) -> list[tuple[str | None, dict[str, Any]]]:
    decoder = SSEDecoder()
    events = decoder.feed(await resp.read()) + decoder.close()
    return [(e.event, json.loads(e.data)) for e in events if e.data]


def tool_request(**over: Any) -> dict[str, Any]:
    return claude_request(**{"model": "claude-opus-4-8", "max_tokens": 32000, "tools": TOOLS,
                             "thinking": {"type": "enabled", "budget_tokens": 4096},
                             "messages": [{"role": "user", "content": "read the README"}], **over})


# --- which adapter, which URL ----------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "values", "cls"), [
    ("azure-openai", {"azure_openai_endpoint": "https://r.openai.azure.com"}, OpenAICompatProvider),
    ("azure-openai", {"azure_openai_endpoint": "https://r.openai.azure.com/openai/deployments/d/chat/completions"},
     OpenAICompatProvider),
    ("azure-openai", {"azure_openai_endpoint": "https://r.openai.azure.com/openai/responses?api-version=2025-04-01-"
                                               "preview"}, OpenAIResponsesProvider),
    ("azure-openai", {"azure_openai_endpoint": "https://r.services.ai.azure.com/openai/v1/responses"},
     OpenAIResponsesProvider),
    ("openai", {}, OpenAICompatProvider),
    ("openai", {"openai_api": "responses"}, OpenAIResponsesProvider),
    ("openai", {"openai_endpoint": "https://api.example.com/v1/responses"}, OpenAIResponsesProvider),
])
async def test_the_url_or_openai_api_picks_the_adapter(provider: str, values: dict[str, Any], cls: type) -> None:
    settings = make_settings(model_provider=provider, azure_openai_api_key="k", openai_api_key="k", **values)
    assert type(build_provider(provider, None, settings)) is cls  # type: ignore[arg-type]


@pytest.mark.parametrize(("values", "url", "models"), [
    ({"openai_api": "responses"}, "https://api.openai.com/v1/responses", "https://api.openai.com/v1/models"),
    ({"openai_api": "responses", "openai_endpoint": "http://127.0.0.1:8000/v1/chat/completions"},
     "http://127.0.0.1:8000/v1/responses", "http://127.0.0.1:8000/v1/models"),
    ({"openai_endpoint": "http://127.0.0.1:8000/v1/responses"}, "http://127.0.0.1:8000/v1/responses",
     "http://127.0.0.1:8000/v1/models"),
])
def test_openai_responses_url(values: dict[str, Any], url: str, models: str) -> None:
    provider = build_provider("openai", None, make_settings(openai_api_key="k", **values))  # type: ignore[arg-type]
    assert isinstance(provider, OpenAIResponsesProvider)
    assert provider.url == url
    assert provider.chat.models_url == models and provider.embeddings_model == "text-embedding-3-small"


# --- Claude Code -> Azure OpenAI's Responses URL form ---------------------------------------------


async def test_claude_code_stream_through_the_azure_responses_url(upstream, aiohttp_client):
    client = await aiohttp_client(create_app(azure(upstream)))
    upstream.script.enqueue(ANSWER)
    resp = await client.post("/v1/messages?beta=true", json=tool_request(stream=True))
    assert resp.status == 200, await resp.text()
    assert (resp.headers["X-Lynkr-Provider"], resp.headers["X-Lynkr-Model"]) == ("azure-openai", DEPLOYMENT)
    events = await events_of(resp)
    assert all(name == data["type"] for name, data in events)
    message = fold_events(d for _, d in events)
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][0] == {"type": "thinking", "thinking": "**Plan**\n\nRead the README.",
                                     "signature": "lynkr:openai:gAAAAABenc-1"}
    assert message["content"][1]["text"] == "Reading it — 設定 ✓"
    assert message["content"][2] == {"type": "tool_use", "id": "call_read1", "name": "Read",
                                     "input": {"file_path": "/srv/app/README.md"}}
    assert message["stop_reason"] == "tool_use" and message["model"] == "claude-opus-4-8"
    assert message["usage"] == {"input_tokens": 500, "output_tokens": 30, "cache_read_input_tokens": 1000,
                                "cache_creation_input_tokens": 0}
    # what went upstream: Azure's URL with an api-version that has the Responses API, the key in api-key
    assert paths(upstream) == ["/openai/responses?api-version=2025-04-01-preview"]
    headers = upstream.script.headers[0]
    assert headers["api-key"] == SECRET and "Authorization" not in headers
    sent = upstream.script.requests[0]
    assert sent["model"] == DEPLOYMENT and sent["store"] is False and sent["stream"] is True
    assert sent["include"] == ["reasoning.encrypted_content"] and sent["reasoning"] == {"effort": "medium"}
    assert sent["input"] == [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "read the README"}]}]
    assert sent["tools"] == [{"type": "function", "name": "Read", "description": "Read a file", "strict": False,
                              "parameters": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                                              "limit": {"type": "integer"}},
                                             "required": ["file_path"], "additionalProperties": False}}]


async def test_recorded_claude_code_request(upstream, aiohttp_client):
    """The recorded Claude Code turn (system blocks, a system turn, Claude's signed thinking, parallel tool
    results, a server tool) is accepted by the fake's copy of the real API's checks."""
    client = await aiohttp_client(create_app(azure(upstream, "/openai/v1/responses")))
    upstream.script.enqueue(ResponsesAnswer(text="Both read."))
    resp = await client.post("/v1/messages", json=claude_code_request())
    assert resp.status == 200, await resp.text()
    assert fold_events(d for _, d in await events_of(resp))["content"] == [{"type": "text", "text": "Both read."}]
    sent = upstream.script.requests[0]
    assert [i["type"] for i in sent["input"]] == ["message", "message", "message", "function_call", "function_call",
                                                  "function_call_output", "function_call_output"]
    assert sent["instructions"].startswith("You are a Claude agent")


async def test_stream_equals_non_stream(upstream, aiohttp_client):
    client = await aiohttp_client(create_app(azure(upstream, "/openai/v1/responses")))
    upstream.script.enqueue(ANSWER, ANSWER)
    streamed = fold_events(d for _, d in await events_of(await client.post("/v1/messages",
                                                                          json=tool_request(stream=True))))
    whole = await (await client.post("/v1/messages", json=tool_request())).json()
    del streamed["id"], whole["id"]
    assert streamed == whole
    assert paths(upstream) == ["/openai/v1/responses"] * 2  # the v1 form takes no api-version


@pytest.mark.parametrize(("path", "extra", "sent_to"), [
    ("/openai/responses?api-version=2025-04-01-preview", {}, "/openai/responses?api-version=2025-04-01-preview"),
    ("/openai/responses", {"azure_openai_api_version": "2025-03-01-preview"},
     "/openai/responses?api-version=2025-03-01-preview"),
    ("/openai/responses", {"azure_openai_api_version": "preview"}, "/openai/responses?api-version=preview"),
    ("/openai/v1/responses", {}, "/openai/v1/responses"),
    ("/openai/v1/responses?api-version=preview", {}, "/openai/v1/responses?api-version=preview"),
])
async def test_azure_api_version(upstream, aiohttp_client, path, extra, sent_to):
    client = await aiohttp_client(create_app(azure(upstream, path, **extra)))
    upstream.script.enqueue(ResponsesAnswer(text="ok"))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.status == 200, await resp.text()
    assert paths(upstream) == [sent_to]


async def test_tool_turn_round_trip_with_the_encrypted_reasoning(upstream, aiohttp_client):
    """Turn 1 answers a call with encrypted reasoning; turn 2 sends the assistant turn back as Claude Code does.
    The fake checks the call output has its call and the reasoning is content it issued."""
    client = await aiohttp_client(create_app(azure(upstream)))
    upstream.script.enqueue(ANSWER, ResponsesAnswer(text="The README says hi.", completion_tokens=9))
    first = await (await client.post("/v1/messages", json=tool_request())).json()
    messages = [{"role": "user", "content": "read the README"},
                {"role": "assistant", "content": first["content"]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_read1",
                                              "content": [{"type": "text", "text": "# hi"}]}]}]
    resp = await client.post("/v1/messages", json=tool_request(messages=messages, stream=True))
    assert resp.status == 200, await resp.text()
    message = fold_events(d for _, d in await events_of(resp))
    assert message["content"] == [{"type": "text", "text": "The README says hi."}]
    assert message["stop_reason"] == "end_turn"
    assert upstream.script.requests[1]["input"][1:] == [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "**Plan**\n\nRead the README."}],
         "encrypted_content": "gAAAAABenc-1"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Reading it — 設定 ✓"}]},
        {"type": "function_call", "call_id": "call_read1", "name": "Read",
         "arguments": '{"file_path":"/srv/app/README.md"}'},
        {"type": "function_call_output", "call_id": "call_read1", "output": "# hi"},
    ]


async def test_max_tokens_probe_and_max_output_tokens_stop(upstream, aiohttp_client):
    client = await aiohttp_client(create_app(azure(upstream)))
    upstream.script.enqueue(ResponsesAnswer(text="H", finish="length"))
    resp = await client.post("/v1/messages", json=claude_request(max_tokens=1))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["stop_reason"] == "max_tokens"
    assert upstream.script.requests[0]["max_output_tokens"] == 16


@pytest.mark.parametrize(("status", "headers", "want_status", "want_type", "phrase"), [
    (401, {}, 401, "authentication_error", "rejected lynkr's API key"),
    (429, {"retry-after": "7"}, 429, "rate_limit_error", "answered 429"),
    (500, {}, 500, "api_error", "answered 500"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_map_to_anthropic_errors(upstream, aiohttp_client, status, headers, want_status,
                                                       want_type, phrase, stream):
    client = await aiohttp_client(create_app(azure(upstream)))
    upstream.script.enqueue(Failure(status, {"error": {"code": str(status), "message": "scripted failure"}}, headers))
    resp = await client.post("/v1/messages", json=claude_request(stream=stream))
    assert resp.status == want_status
    body = await resp.json()
    assert body["type"] == "error" and body["error"]["type"] == want_type
    assert phrase in body["error"]["message"] and "scripted failure" in body["error"]["message"]
    if headers:
        assert resp.headers["retry-after"] == "7"


async def test_response_failed_mid_stream_is_an_anthropic_error_event(upstream, aiohttp_client):
    client = await aiohttp_client(create_app(azure(upstream)))
    upstream.script.enqueue(ResponsesAnswer(text="partial answer", fail_after_first_delta="The model crashed."))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 200
    events = await events_of(resp)
    kinds = [name for name, _ in events]
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert events[2][1]["delta"]["text"] == "parti"
    name, data = events[-1]
    assert name == "error" and data["error"]["type"] == "api_error"
    assert "The model crashed." in data["error"]["message"]
    assert "message_stop" not in kinds


async def test_openai_with_openai_api_responses(upstream, aiohttp_client):
    client = await aiohttp_client(create_app(openai_responses(upstream)))
    upstream.script.enqueue(ResponsesAnswer(text="hello"))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["content"] == [{"type": "text", "text": "hello"}]
    assert paths(upstream) == ["/v1/responses"]
    assert upstream.script.headers[0]["Authorization"] == f"Bearer {SECRET}"
    assert upstream.script.requests[0]["model"] == "gpt-5.1-codex"


# --- Responses clients pass through -----------------------------------------------------------------

CODEX_TOOLS: list[dict[str, Any]] = [
    {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
     "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
    {"type": "custom", "name": "apply_patch", "description": "Apply a patch",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}},
    {"type": "web_search"},
]
CODEX_INPUT = [
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "create hello.txt"}]},
]
EXEC = ToolCall("exec_command", json.dumps({"cmd": "printf 'hi\\n' > hello.txt"}), id="call_x1")


@pytest.fixture(params=["openai", "azure-openai"])
async def sdk(request, upstream, aiohttp_server):
    settings = openai_responses(upstream) if request.param == "openai" else azure(upstream, "/openai/v1/responses")
    app = create_app(settings)
    records: list[Any] = []
    app[OBSERVERS].append(records.append)
    server = await aiohttp_server(app)
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="client-key", max_retries=0)
    yield client, upstream, app, records
    await client.close()


async def test_responses_stream_helper_passes_through_with_a_function_call(sdk):
    client, upstream, _, records = sdk
    upstream.script.enqueue(ResponsesAnswer(text="On it.", reasoning="Need a file.", tool_calls=[EXEC],
                                            encrypted="gAAAAAB-codex", prompt_tokens=900, completion_tokens=20,
                                            cached_tokens=512))
    async with client.responses.stream(model="gpt-5.5", input=CODEX_INPUT, tools=CODEX_TOOLS,  # type: ignore[arg-type]
                                       reasoning={"effort": "medium"}, store=False,
                                       include=["reasoning.encrypted_content"]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in kinds and "response.reasoning_summary_text.delta" in kinds
    assert final.id.startswith("resp_") and final.status == "completed"
    [call] = [o for o in final.output if o.type == "function_call"]
    assert (call.name, call.call_id, json.loads(call.arguments)) == (
        "exec_command", "call_x1", {"cmd": "printf 'hi\\n' > hello.txt"})
    [reasoning] = [o for o in final.output if o.type == "reasoning"]
    assert reasoning.encrypted_content == "gAAAAAB-codex"
    assert final.output_text == "On it."
    assert final.usage is not None and final.usage.output_tokens == 20
    # the client's body, untouched but for the model (gpt-5.5 is a backend model: it passes unchanged)
    sent = upstream.script.requests[0]
    assert sent == {"model": "gpt-5.5", "input": CODEX_INPUT, "tools": CODEX_TOOLS, "reasoning": {"effort": "medium"},
                    "store": False, "include": ["reasoning.encrypted_content"], "stream": True}
    headers = upstream.script.headers[0]
    assert "client-key" not in json.dumps(headers)
    assert headers.get("api-key") == SECRET or headers.get("Authorization") == f"Bearer {SECRET}"
    [record] = records
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (388, 20, 512)
    assert record.client_model == "gpt-5.5"


async def test_previous_response_id_passes_through(sdk):
    """A Responses backend keeps its own conversation state: the id lynkr never saw reaches it untouched,
    and lynkr's in-memory store (for the hub path) stays empty."""
    client, upstream, app, _ = sdk
    upstream.script.enqueue(ResponsesAnswer(tool_calls=[EXEC]), ResponsesAnswer(text="Created hello.txt."))
    first = await client.responses.create(model="claude-sonnet-4-5", input=CODEX_INPUT,
                                          tools=CODEX_TOOLS)  # type: ignore[arg-type]
    call = next(o for o in first.output if o.type == "function_call")
    second = await client.responses.create(model="claude-sonnet-4-5", previous_response_id=first.id,
                                           tools=CODEX_TOOLS,  # type: ignore[arg-type]
                                           input=[{"type": "function_call_output", "call_id": call.call_id,
                                                   "output": "done"}])
    assert second.output_text == "Created hello.txt."
    sent = upstream.script.requests[1]
    assert sent["previous_response_id"] == first.id
    assert sent["model"] == ("gpt-5.1-codex" if "Authorization" in upstream.script.headers[0] else DEPLOYMENT)
    assert app[RESPONSES].get(first.id) is None


async def test_passthrough_errors_reach_the_client_in_its_shape(sdk):
    client, upstream, _, _ = sdk
    upstream.script.enqueue(Failure(429, {"error": {"code": "rate_limit_exceeded", "message": "slow down"}},
                                    {"retry-after": "3"}))
    with pytest.raises(openai.RateLimitError) as info:
        async with client.responses.stream(model="gpt-5.5", input="hi") as stream:
            async for _ in stream:
                pass
    assert "slow down" in str(info.value)
    assert info.value.response.headers["retry-after"] == "3"


def frames(text: str) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    return [json.loads(e.data) for e in decoder.feed(text.encode()) + decoder.close() if e.data]


async def test_passthrough_response_failed_mid_stream(upstream, aiohttp_client):
    """The backend's own response.failed ends the client's stream, in sequence (the fake holds the rest of its
    stream until the client has its first event, so the failure is mid-stream however the bytes are cut)."""
    client = await aiohttp_client(create_app(openai_responses(upstream)))
    gate = asyncio.Event()
    upstream.script.enqueue(ResponsesAnswer(text="partial", fail_after_first_delta="The model crashed.", gate=gate))
    resp = await client.post("/v1/responses", json={"model": "gpt-5.5", "input": "x", "stream": True})
    assert resp.status == 200  # the headers came with the first event
    gate.set()
    events = frames(await resp.text())
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.output_item.added",
                                           "response.content_part.added", "response.output_text.delta",
                                           "response.failed"]
    assert [e["sequence_number"] for e in events] == list(range(6))
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": "The model crashed."}


@pytest.mark.parametrize("stream", [False, True])
async def test_passthrough_failure_before_anything_was_sent_is_an_http_error(upstream, aiohttp_client, stream):
    """A response.failed before the client saw a byte: an error status in OpenAI's shape (so a fallback or
    retry could still serve the request)."""
    client = await aiohttp_client(create_app(openai_responses(upstream)))
    failed = {"type": "response.failed", "sequence_number": 0, "response": {
        "id": "resp_up", "object": "response", "status": "failed", "output": [],
        "error": {"code": "rate_limit_exceeded", "message": "Too many requests."}}}
    reply = (Raw(responses_server.frame(failed)) if stream
             else Raw(json.dumps(failed["response"]).encode(), content_type="application/json"))
    upstream.script.enqueue(reply)
    resp = await client.post("/v1/responses", json={"model": "gpt-5.5", "input": "x", "stream": stream})
    assert resp.status == 429
    error = (await resp.json())["error"]
    assert error["type"] == "rate_limit_exceeded" and "Too many requests." in error["message"]


async def test_passthrough_connection_lost_mid_stream_ends_with_response_failed(upstream, aiohttp_client):
    client = await aiohttp_client(create_app(openai_responses(upstream)))
    created = {"type": "response.created", "sequence_number": 0,
               "response": {"id": "resp_up", "object": "response", "status": "in_progress", "output": []}}
    delta = {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1", "output_index": 0,
             "content_index": 0, "delta": "par"}
    upstream.script.enqueue(Raw(responses_server.frame(created) + responses_server.frame(delta) + b"event: resp",
                                drop_after=True))
    resp = await client.post("/v1/responses", json={"model": "gpt-5.5", "input": "x", "stream": True})
    events = frames(await resp.text())
    assert [e["type"] for e in events] == ["response.created", "response.output_text.delta", "response.failed"]
    failed = events[-1]
    assert failed["sequence_number"] == 2 and failed["response"]["id"] == "resp_up"
    assert failed["response"]["status"] == "failed" and "closed the connection" in failed["response"]["error"][
        "message"]


async def test_non_stream_passthrough(upstream, aiohttp_client):
    client = await aiohttp_client(create_app(azure(upstream)))
    upstream.script.enqueue(ResponsesAnswer(text="hi there"))
    resp = await client.post("/v1/responses", json={"model": "claude-haiku-4-5", "input": "hi", "store": False})
    assert resp.status == 200
    body = await resp.json()
    assert body["object"] == "response" and body["output"][0]["content"][0]["text"] == "hi there"
    assert upstream.script.requests[0] == {"model": DEPLOYMENT, "input": "hi", "store": False}


async def test_passthrough_tools_resent_each_turn_reach_the_backend_unchanged(upstream, aiohttp_client):
    """Codex resends its tools every turn: the second time they are known (lynkr.wire.body) and go out as the
    client's own bytes; a changed list is read again."""
    client = await aiohttp_client(create_app(azure(upstream)))
    tools = [{"type": "function", "name": f"tool_{i}", "description": "Does a thing. " * 40,
              "strict": False, "parameters": {"type": "object", "properties": {"arg": {"type": "string"}}}}
             for i in range(8)]
    changed = [{**tools[0], "description": "changed"}, *tools[1:]]
    for sent in (tools, tools, changed):
        upstream.script.enqueue(ResponsesAnswer(text="ok"))
        resp = await client.post("/v1/responses", json={"model": "claude-haiku-4-5", "input": "hi", "store": False,
                                                        "tools": sent})
        assert resp.status == 200, await resp.text()
    assert [r["tools"] for r in upstream.script.requests] == [tools, tools, changed]


# --- Chat Completions clients -> a Responses backend, through the hub --------------------------------

CHAT_TOOLS = [{"type": "function", "function": {
    "name": "exec_command", "description": "Run a shell command",
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}]


async def test_chat_completions_client_through_the_hub(upstream, aiohttp_server):
    server = await aiohttp_server(create_app(azure(upstream)))
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="k", max_retries=0)
    upstream.script.enqueue(ResponsesAnswer(text="Running it.", tool_calls=[EXEC], pieces=4),
                            ResponsesAnswer(text="Done.", prompt_tokens=40, completion_tokens=2))
    async with client.chat.completions.stream(
        model="gpt-5-deploy", messages=[{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "create hello.txt"}],
        tools=CHAT_TOOLS, stream_options={"include_usage": True},  # type: ignore[arg-type]
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Running it." and final.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls or []
    assert call.id == "call_x1" and json.loads(call.function.arguments) == {"cmd": "printf 'hi\\n' > hello.txt"}
    sent = upstream.script.requests[0]
    assert sent["instructions"] == "Be brief." and sent["stream"] is True
    assert sent["tools"][0] == {"type": "function", "name": "exec_command", "description": "Run a shell command",
                                "strict": False, "parameters": CHAT_TOOLS[0]["function"]["parameters"]}
    completion = await client.chat.completions.create(model="gpt-5-deploy", tools=CHAT_TOOLS, messages=[  # type: ignore[arg-type]
        {"role": "user", "content": "create hello.txt"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_x1", "type": "function", "function": {"name": "exec_command", "arguments": '{"cmd":"ls"}'}}]},
        {"role": "tool", "tool_call_id": "call_x1", "content": "hello.txt"}])
    await client.close()
    assert completion.choices[0].message.content == "Done."
    assert completion.usage is not None and completion.usage.prompt_tokens == 40
    assert upstream.script.requests[1]["input"][1:] == [
        {"type": "function_call", "call_id": "call_x1", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
        {"type": "function_call_output", "call_id": "call_x1", "output": "hello.txt"}]


async def test_responses_client_to_a_chat_backend_still_goes_through_the_hub(openai_upstream, aiohttp_client):
    """The route's other branch: a Chat Completions backend gets the converted request, and an unknown
    previous_response_id is the client's error there (lynkr keeps the hub path's conversations)."""
    from tests.conftest import openai_settings

    client = await aiohttp_client(create_app(openai_settings(openai_upstream)))
    openai_upstream.script.enqueue(Answer(text="hub"))
    resp = await client.post("/v1/responses", json={"model": "gpt-5.5", "input": "hi"})
    assert (await resp.json())["output"][0]["content"][0]["text"] == "hub"
    assert openai_upstream.script.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
    resp = await client.post("/v1/responses", json={"model": "gpt-5.5", "input": "hi", "stream": True,
                                                    "previous_response_id": "resp_unknown"})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "previous_response_id"
    assert len(openai_upstream.script.requests) == 1


def test_which_backends_speak_chat_completions_and_responses_themselves() -> None:
    """speaks_chat / speaks_responses (answered once per class) agree with isinstance against the Protocols."""
    from lynkr.providers.anthropic import AnthropicProvider
    from lynkr.providers.base import ChatCompletionsBackend, ResponsesBackend, speaks_chat, speaks_responses
    from lynkr.providers.bedrock import BedrockProvider
    from lynkr.providers.gemini import GeminiProvider
    from lynkr.providers.ollama import OllamaProvider
    from lynkr.providers.openai_compat import OpenAICompatProvider
    from lynkr.providers.openai_responses import OpenAIResponsesProvider

    for cls in (AnthropicProvider, BedrockProvider, GeminiProvider, OllamaProvider, OpenAICompatProvider,
                OpenAIResponsesProvider):
        provider = object.__new__(cls)  # the answer depends on the class only
        for _ in range(2):  # computed, then remembered
            assert speaks_chat(provider) == isinstance(provider, ChatCompletionsBackend), cls
            assert speaks_responses(provider) == isinstance(provider, ResponsesBackend), cls
    assert speaks_chat(object.__new__(OpenAICompatProvider))
    assert speaks_responses(object.__new__(OpenAIResponsesProvider))
    assert not speaks_chat(object.__new__(OllamaProvider))
