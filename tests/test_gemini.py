"""MODEL_PROVIDER=vertex / gemini through the real app against a fake Gemini API speaking its wire format."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lynkr.config import Settings
from lynkr.convert.anthropic_stream import fold_events
from lynkr.errors import ConfigError
from lynkr.providers import check_settings
from lynkr.server import create_app
from tests.conftest import SECRET, Upstream, claude_request, make_settings, read_events
from tests.fakes import gemini_server
from tests.fakes.gemini_server import GeminiAnswer
from tests.fakes.script import Answer, Failure, Raw, Script, ToolCall

ServerFactory = Callable[..., Awaitable[TestServer]]
ClientFactory = Callable[..., Awaitable[TestClient]]

SIG = "CiQB0e2Kb2dlbWluaS10aG91Z2h0LXNpZ25hdHVyZQ=="
# what clients see: Gemini's signatures are tagged so no other vendor is ever sent one (convert/signatures.py)
TAGGED = "lynkr:gemini:" + SIG
WRITE = ToolCall("Write", json.dumps({"file_path": "/w/hello.txt", "content": "hi"}))
TOOLS = [{"name": "Write", "description": "Write a file", "input_schema": {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
    "properties": {"file_path": {"type": "string", "description": "absolute path"}, "content": {"type": "string"}},
    "required": ["file_path", "content"], "additionalProperties": False}}]
ANSWER = GeminiAnswer(text="I will write it.", reasoning="The user wants hello.txt.", tool_calls=[WRITE], pieces=4,
                      prompt_tokens=1500, completion_tokens=30, cached_tokens=1000, thoughts_tokens=70, signature=SIG)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
async def upstream(aiohttp_server: ServerFactory) -> Upstream:
    script = Script()
    return Upstream(script, await aiohttp_server(gemini_server.make_app(script)))


def gemini_settings(upstream: Upstream, provider: str = "vertex", **extra: Any) -> Settings:
    return make_settings(model_provider=provider, vertex_api_key=SECRET, vertex_endpoint=upstream.url + "/v1beta",
                         **extra)


async def lynkr(aiohttp_client: ClientFactory, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))



def thinking_request(**over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"model": "claude-opus-4-8", "max_tokens": 32000, "tools": TOOLS,
                              "thinking": {"type": "enabled", "budget_tokens": 4096},
                              "messages": [{"role": "user", "content": "create hello.txt"}]}
    return claude_request(**{**values, **over})


@pytest.mark.parametrize("provider", ["vertex", "gemini"])
async def test_stream_with_thinking_and_a_tool_call(provider, upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream, provider))
    upstream.script.enqueue(ANSWER)
    resp = await client.post("/v1/messages?beta=true", json=thinking_request(stream=True))
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Lynkr-Provider"] == provider
    assert resp.headers["X-Lynkr-Model"] == "gemini-2.5-flash"
    events = await read_events(resp)
    for name, data in events:
        assert name == data["type"]
    message = fold_events(d for _, d in events)
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "thinking", "tool_use"]
    assert message["content"][0]["thinking"] == "The user wants hello.txt."
    assert message["content"][2] == {"type": "thinking", "thinking": "", "signature": TAGGED}
    tool = message["content"][3]
    assert tool["name"] == "Write" and tool["id"].startswith("toolu_")
    assert tool["input"] == {"file_path": "/w/hello.txt", "content": "hi"}
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 500, "output_tokens": 100, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 1000}
    assert message["model"] == "claude-opus-4-8"
    # what went upstream: the key in its header, the model in the URL, a schema Gemini accepts
    headers = upstream.script.headers[0]
    assert headers["x-goog-api-key"] == SECRET and "key=" not in json.dumps(headers)
    sent = upstream.script.requests[0]
    assert sent["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 4096, "includeThoughts": True}
    params = sent["tools"][0]["functionDeclarations"][0]["parameters"]
    assert params == {"type": "object", "required": ["file_path", "content"], "properties": {
        "file_path": {"type": "string", "description": "absolute path"}, "content": {"type": "string"}}}


async def test_stream_equals_non_stream(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream))
    upstream.script.enqueue(ANSWER, ANSWER)
    streamed = fold_events(d for _, d in await read_events(
        await client.post("/v1/messages", json=thinking_request(stream=True))))
    whole = await (await client.post("/v1/messages", json=thinking_request())).json()
    for message in (streamed, whole):
        for block in message["content"]:
            if block["type"] == "tool_use":
                block["id"] = "toolu_x"
    del streamed["id"], whole["id"]
    assert streamed == whole


async def test_tool_result_round_trip_with_the_signature_back_in_place(upstream, aiohttp_client):
    """Turn 1 answers a signed function call; turn 2 sends it back (as Claude Code does) and Gemini 3's
    signature check (modelled by the fake) passes; the tool result is answered by function name."""
    client = await lynkr(aiohttp_client, gemini_settings(upstream, vertex_model="gemini-3-pro-preview"))
    upstream.script.enqueue(ANSWER, Answer(text="Done: wrote hello.txt."))
    first = await (await client.post("/v1/messages", json=thinking_request())).json()
    tool = first["content"][-1]
    history = [{"role": "user", "content": "create hello.txt"},
               {"role": "assistant", "content": first["content"]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool["id"],
                                             "content": [{"type": "text", "text": "File created"}]}]}]
    resp = await client.post("/v1/messages", json=thinking_request(messages=history, stream=True))
    assert resp.status == 200, await resp.text()
    message = fold_events(d for _, d in await read_events(resp))
    assert message["content"] == [{"type": "text", "text": "Done: wrote hello.txt."}]
    assert message["stop_reason"] == "end_turn"
    sent = upstream.script.requests[1]["contents"]
    assert [c["role"] for c in sent] == ["user", "model", "user"]
    assert sent[1]["parts"] == [
        {"text": "The user wants hello.txt.", "thought": True},
        {"text": "I will write it."},
        {"functionCall": {"name": "Write", "args": {"file_path": "/w/hello.txt", "content": "hi"}},
         "thoughtSignature": SIG},
    ]
    assert sent[2]["parts"] == [{"functionResponse": {"name": "Write", "response": {"output": "File created"}}}]
    assert upstream.script.requests[1]["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "high",
                                                                                 "includeThoughts": True}


async def test_history_from_another_backend_passes_gemini_3s_check(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream, vertex_model="gemini-3-flash-preview"))
    upstream.script.enqueue(Answer(text="ok"))
    history = [{"role": "user", "content": "run ls"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "call_from_openai", "name": "Bash",
                                                  "input": {"command": "ls"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_from_openai",
                                             "content": "a.txt"}]}]
    resp = await client.post("/v1/messages", json=claude_request(messages=history, tools=TOOLS))
    assert resp.status == 200, await resp.text()
    call = upstream.script.requests[0]["contents"][1]["parts"][0]
    assert call["thoughtSignature"] == "context_engineering_is_the_way_to_go"


async def test_images_reach_gemini_as_inline_and_file_data(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream))
    upstream.script.enqueue(Answer(text="A red pixel."))
    resp = await client.post("/v1/messages", json=claude_request(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What are these?"}]}]))
    assert (await resp.json())["content"] == [{"type": "text", "text": "A red pixel."}]
    assert upstream.script.requests[0]["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        {"text": "What are these?"},
    ]


async def test_text_answer_with_signature_and_max_tokens(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream))
    upstream.script.enqueue(GeminiAnswer(text="Hello there, friend", finish="length", signature=SIG, pieces=3))
    events = await read_events(await client.post("/v1/messages", json=claude_request(stream=True)))
    message = fold_events(d for _, d in events)
    assert message["content"] == [{"type": "text", "text": "Hello there, friend"},
                                  {"type": "thinking", "thinking": "", "signature": TAGGED}]
    assert message["stop_reason"] == "max_tokens"


# --- model names and settings -----------------------------------------------------------------------


async def test_model_names_go_in_the_url(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream, vertex_model="models/gemini-2.5-pro"))
    for name, stream in (("claude-opus-4-8", False), ("claude-sonnet-4-5", True), ("gemini-2.0-flash", False)):
        upstream.script.enqueue(Answer(text="x"))
        resp = await client.post("/v1/messages", json=claude_request(model=name, stream=stream))
        assert resp.status == 200, await resp.text()
        await resp.read()
    assert upstream.server.app[gemini_server.PATHS] == [
        "/v1beta/models/gemini-2.5-pro:generateContent",
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        "/v1beta/models/gemini-2.0-flash:generateContent",
    ]


async def test_haiku_goes_to_flash_lite_unless_small_fast_model_says_otherwise(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream))
    upstream.script.enqueue(Answer(text="x"))
    resp = await client.post("/v1/messages", json=claude_request(model="claude-haiku-4-5-20251001"))
    assert resp.headers["X-Lynkr-Model"] == "gemini-2.5-flash-lite"
    client = await lynkr(aiohttp_client, gemini_settings(upstream, small_fast_model="gemini-2.5-flash"))
    upstream.script.enqueue(Answer(text="x"))
    resp = await client.post("/v1/messages", json=claude_request(model="claude-haiku-4-5-20251001"))
    assert resp.headers["X-Lynkr-Model"] == "gemini-2.5-flash"


def test_google_api_key_works_too(monkeypatch):
    monkeypatch.setenv("MODEL_PROVIDER", "gemini")
    with pytest.raises(ConfigError, match=r"VERTEX_API_KEY.*GOOGLE_API_KEY"):
        check_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    check_settings(settings)
    assert settings.vertex_api_key is not None and settings.vertex_api_key.get_secret_value() == "g-key"
    monkeypatch.setenv("VERTEX_API_KEY", "v-key")
    assert Settings(_env_file=None).vertex_api_key.get_secret_value() == "v-key"  # type: ignore[call-arg,union-attr]


# --- errors ------------------------------------------------------------------------------------------


def google_error(code: int, status: str, message: str = "scripted failure") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


@pytest.mark.parametrize(
    ("status", "google_status", "want_status", "want_type"),
    [
        (400, "INVALID_ARGUMENT", 400, "invalid_request_error"),
        (401, "UNAUTHENTICATED", 401, "authentication_error"),
        (403, "PERMISSION_DENIED", 403, "permission_error"),
        (404, "NOT_FOUND", 404, "not_found_error"),
        (429, "RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
        (500, "INTERNAL", 500, "api_error"),
        (503, "UNAVAILABLE", 529, "overloaded_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_map_by_status(upstream, aiohttp_client, status, google_status, want_status,
                                             want_type, stream):
    client = await lynkr(aiohttp_client, gemini_settings(upstream))
    upstream.script.enqueue(Failure(status, google_error(status, google_status)))
    resp = await client.post("/v1/messages", json=claude_request(stream=stream))
    assert resp.status == want_status
    body = await resp.json()
    assert body["error"]["type"] == want_type and "scripted failure" in body["error"]["message"]


async def test_a_missing_key_is_refused_the_way_gemini_refuses_it(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, make_settings(model_provider="gemini", vertex_api_key="",
                                                       vertex_endpoint=upstream.url + "/v1beta"))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.status == 403
    assert "unregistered callers" in (await resp.json())["error"]["message"]


async def test_error_chunk_mid_stream_becomes_an_error_event(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream))
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "partial"}]}}]}
    upstream.script.enqueue(Raw(gemini_server.sse_bytes([chunk, google_error(503, "UNAVAILABLE", "overloaded")])))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 200
    events = await read_events(resp)
    assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "overloaded_error"
    assert any(d.get("delta", {}).get("text") == "partial" for _, d in events)


async def test_stream_cut_before_the_finish_is_an_error_event(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, gemini_settings(upstream))
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "partial"}]}}]}
    upstream.script.enqueue(Raw(gemini_server.sse_bytes([chunk])))
    events = await read_events(await client.post("/v1/messages", json=claude_request(stream=True)))
    assert events[-1][0] == "error" and "finishReason" in events[-1][1]["error"]["message"]


# --- the official SDK -----------------------------------------------------------------------------------


async def test_sdk_stream_helper(upstream, aiohttp_server):
    server = await aiohttp_server(create_app(gemini_settings(upstream)))
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")).rstrip("/"), api_key="dummy", max_retries=0)
    upstream.script.enqueue(ANSWER, GeminiAnswer(text="Hello, world! " * 5, pieces=8))
    try:
        seen: list[str] = []
        async with client.messages.stream(**thinking_request()) as stream:
            async for event in stream:
                seen.append(event.type)
            message = await stream.get_final_message()
        async with client.messages.stream(model="claude-opus-4-8", max_tokens=100,
                                          messages=[{"role": "user", "content": "hi"}]) as stream:
            text = "".join([t async for t in stream.text_stream])
    finally:
        await client.close()
    assert seen[0] == "message_start" and seen[-1] == "message_stop"
    assert "thinking" in seen and "signature" in seen and "input_json" in seen
    thinking, said, signed, tool = message.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock) and thinking.thinking == "The user wants hello.txt."
    assert isinstance(said, anthropic.types.TextBlock) and said.text == "I will write it."
    assert isinstance(signed, anthropic.types.ThinkingBlock) and signed.signature == TAGGED
    assert isinstance(tool, anthropic.types.ToolUseBlock) and tool.input == {"file_path": "/w/hello.txt",
                                                                              "content": "hi"}
    assert message.stop_reason == "tool_use" and message.usage.cache_read_input_tokens == 1000
    assert text == "Hello, world! " * 5
