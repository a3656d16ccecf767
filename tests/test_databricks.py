"""MODEL_PROVIDER=databricks: serving-endpoint invocations in the OpenAI Chat Completions format, through
the real app against the fake OpenAI-format server (its Databricks route)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestClient

from lynkr.config import Settings
from lynkr.convert.anthropic_stream import fold_events
from lynkr.errors import ConfigError
from lynkr.providers import backend_settings, check_settings
from lynkr.providers.openai_compat import chat_url, join_path
from lynkr.server import create_app
from tests.conftest import SECRET, Upstream, claude_request, make_settings
from tests.conftest import read_events as read_sse
from tests.fakes.script import Answer, Failure, Raw, ToolCall

ClientFactory = Callable[..., Awaitable[TestClient]]
WRITE = ToolCall("Write", json.dumps({"file_path": "/w/a.txt", "content": "hi"}), id="toolu_bdrk_01")
TOOLS = [{"name": "Write", "description": "Write a file", "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["file_path", "content"]}}]
PNG = "iVBORw0KGgo="


def databricks_settings(upstream: Upstream, **extra: Any) -> Settings:
    return make_settings(model_provider="databricks", databricks_api_base=upstream.url,
                         databricks_api_key=SECRET, **extra)


async def lynkr(aiohttp_client: ClientFactory, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


async def read_events(resp: Any) -> list[dict[str, Any]]:
    return [data for _, data in await read_sse(resp)]


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        ("https://w.cloud.databricks.com", "/serving-endpoints/databricks-claude-sonnet-4-5/invocations",
         "https://w.cloud.databricks.com/serving-endpoints/databricks-claude-sonnet-4-5/invocations"),
        ("https://w.cloud.databricks.com/", "serving-endpoints/x/invocations",
         "https://w.cloud.databricks.com/serving-endpoints/x/invocations"),
        ("https://adb-1.azuredatabricks.net/serving-endpoints", "/serving-endpoints/x/invocations",
         "https://adb-1.azuredatabricks.net/serving-endpoints/x/invocations"),
        ("https://w.cloud.databricks.com", "/serving-endpoints/chat/completions",
         "https://w.cloud.databricks.com/serving-endpoints/chat/completions"),
    ],
)
def test_url_is_base_plus_path(base, path, url):
    settings = make_settings(model_provider="databricks", databricks_api_base=base, databricks_endpoint_path=path,
                             databricks_api_key="k")
    assert chat_url(backend_settings("databricks", settings)) == url


def test_join_path_only_drops_a_doubled_segment():
    assert join_path("https://h/a", "/b/c") == "https://h/a/b/c"
    assert join_path("https://h/serving-endpoints", "/serving-endpoints/e") == "https://h/serving-endpoints/e"


def test_missing_settings_are_named():
    with pytest.raises(ConfigError, match="DATABRICKS_API_KEY"):
        check_settings(make_settings(model_provider="databricks", databricks_api_base="https://w"))
    with pytest.raises(ConfigError, match="DATABRICKS_API_BASE"):
        check_settings(make_settings(model_provider="databricks", databricks_api_key="k"))


async def test_stream_text_tool_call_and_usage(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, databricks_settings(openai_upstream))
    openai_upstream.script.enqueue(Answer(text="Writing it.", tool_calls=[WRITE], pieces=4, prompt_tokens=900,
                                          completion_tokens=25, cached_tokens=600))
    resp = await client.post("/v1/messages", json=claude_request(
        stream=True, tools=TOOLS, system="You are Claude Code.",
        messages=[{"role": "user", "content": "write a.txt"},
                  {"role": "system", "content": "Environment: linux."}]))
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Lynkr-Provider"] == "databricks"
    assert resp.headers["X-Lynkr-Model"] == "databricks-claude-sonnet-4-5"
    message = fold_events(await read_events(resp))
    assert message["content"] == [{"type": "text", "text": "Writing it."},
                                  {"type": "tool_use", "id": "toolu_bdrk_01", "name": "Write",
                                   "input": {"file_path": "/w/a.txt", "content": "hi"}}]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 300 and message["usage"]["cache_read_input_tokens"] == 600
    sent = openai_upstream.script.requests[0]
    assert "model" not in sent  # the invocations URL names the served model
    assert sent["messages"][0] == {"role": "system", "content": "You are Claude Code.\n\nEnvironment: linux."}
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert sent["tools"][0]["function"]["name"] == "Write"
    assert "thinking" not in sent and "reasoning_effort" not in sent
    assert openai_upstream.script.headers[0]["Authorization"] == f"Bearer {SECRET}"


async def test_tool_result_round_trip_and_images(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, databricks_settings(openai_upstream, model_default="my-claude-endpoint"))
    openai_upstream.script.enqueue(Answer(text="Done."))
    history = [
        {"role": "user", "content": [{"type": "text", "text": "write and show"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": PNG}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_bdrk_01", "name": "Write",
                                           "input": {"file_path": "/w/a.txt", "content": "hi"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_bdrk_01", "content": "ok"}]},
    ]
    resp = await client.post("/v1/messages", json=claude_request(messages=history, tools=TOOLS))
    assert resp.headers["X-Lynkr-Model"] == "my-claude-endpoint"
    assert (await resp.json())["content"] == [{"type": "text", "text": "Done."}]
    sent = openai_upstream.script.requests[0]["messages"]
    assert sent[0]["content"][1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert sent[1]["tool_calls"][0]["id"] == "toolu_bdrk_01"
    assert sent[2] == {"role": "tool", "tool_call_id": "toolu_bdrk_01", "content": "ok"}


async def test_reasoning_content_becomes_thinking(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, databricks_settings(openai_upstream))
    openai_upstream.script.enqueue(Answer(text="42", reasoning="Think it through."))
    message = fold_events(await read_events(await client.post("/v1/messages", json=claude_request(stream=True))))
    assert message["content"] == [{"type": "thinking", "thinking": "Think it through.", "signature": ""},
                                  {"type": "text", "text": "42"}]


async def test_claude_style_content_list_keeps_the_answer_text(openai_upstream, aiohttp_client):
    """Claude endpoints on Databricks answer ``content`` as a list (reasoning summary first, then text)."""
    client = await lynkr(aiohttp_client, databricks_settings(openai_upstream))
    answer = {"id": "chatcmpl-db", "object": "chat.completion", "model": "databricks-claude-sonnet-4-5",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": [
                  {"type": "reasoning", "summary": [{"type": "summary_text", "text": "sky", "signature": "s"}]},
                  {"type": "text", "text": "Rayleigh scattering."}]}}],
              "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    openai_upstream.script.enqueue(Raw(json.dumps(answer).encode(), content_type="application/json"))
    body = await (await client.post("/v1/messages", json=claude_request())).json()
    assert [b for b in body["content"] if b["type"] == "text"] == [{"type": "text", "text": "Rayleigh scattering."}]


async def test_stream_equals_non_stream(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, databricks_settings(openai_upstream))
    answer = Answer(text="Both ways.", tool_calls=[WRITE], pieces=3)
    openai_upstream.script.enqueue(answer, answer)
    streamed = fold_events(await read_events(await client.post("/v1/messages", json=claude_request(stream=True))))
    whole = await (await client.post("/v1/messages", json=claude_request())).json()
    del streamed["id"], whole["id"]
    assert streamed == whole


@pytest.mark.parametrize(
    ("status", "want_status", "want_type"),
    [(401, 401, "authentication_error"), (403, 403, "permission_error"), (429, 429, "rate_limit_error"),
     (500, 500, "api_error"), (503, 529, "overloaded_error")],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_errors(openai_upstream, aiohttp_client, status, want_status, want_type, stream):
    client = await lynkr(aiohttp_client, databricks_settings(openai_upstream))
    openai_upstream.script.enqueue(Failure(status, {"error_code": "X", "message": "scripted failure"}))
    resp = await client.post("/v1/messages", json=claude_request(stream=stream))
    assert resp.status == want_status
    body = await resp.json()
    assert body["error"]["type"] == want_type and "databricks" in body["error"]["message"]


async def test_error_chunk_mid_stream(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, databricks_settings(openai_upstream))
    openai_upstream.script.enqueue(Raw(b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
                                       b'data: {"error":{"message":"endpoint scaled to zero","code":503}}\n\n'))
    events = await read_events(await client.post("/v1/messages", json=claude_request(stream=True)))
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "overloaded_error"


async def test_sdk_stream_helper(openai_upstream, aiohttp_server):
    server = await aiohttp_server(create_app(databricks_settings(openai_upstream)))
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")).rstrip("/"), api_key="dummy", max_retries=0)
    openai_upstream.script.enqueue(Answer(text="Writing.", tool_calls=[WRITE], pieces=5))
    try:
        async with client.messages.stream(model="claude-opus-4-8", max_tokens=1000, tools=TOOLS,
                                          messages=[{"role": "user", "content": "write"}]) as stream:
            kinds = [event.type async for event in stream]
            message = await stream.get_final_message()
    finally:
        await client.close()
    assert "input_json" in kinds and "text" in kinds
    assert message.content[1].type == "tool_use" and message.content[1].input == {"file_path": "/w/a.txt",
                                                                                    "content": "hi"}
