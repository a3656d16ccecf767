"""The official anthropic SDK (the strictest parser there is) against lynkr over real HTTP."""

from __future__ import annotations

import json

import anthropic
import pytest

from lynkr.server import create_app
from tests.conftest import ollama_settings, openai_settings
from tests.fakes.script import Answer, Failure, ToolCall

TOOLS = [{"name": "Write", "description": "Write a file",
          "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                            "content": {"type": "string"}},
                           "required": ["file_path", "content"]}}]
ANSWER = Answer(text="I will write it.", reasoning="The user wants hello.txt.",
                tool_calls=[ToolCall("Write", json.dumps({"file_path": "/w/hello.txt", "content": "hi"}), id="call_1")],
                pieces=5, prompt_tokens=300, completion_tokens=40, cached_tokens=200)


@pytest.fixture(params=["openai", "ollama"])
async def sdk(request, openai_upstream, ollama_upstream, aiohttp_server):
    upstream = openai_upstream if request.param == "openai" else ollama_upstream
    settings = openai_settings(upstream) if request.param == "openai" else ollama_settings(upstream)
    server = await aiohttp_server(create_app(settings))
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")).rstrip("/"), api_key="dummy", max_retries=0)
    yield client, upstream.script, request.param
    await client.close()


def check_message(message: anthropic.types.Message, backend: str) -> None:
    thinking, text, tool = message.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert thinking.thinking == "The user wants hello.txt."
    assert isinstance(text, anthropic.types.TextBlock) and text.text == "I will write it."
    assert isinstance(tool, anthropic.types.ToolUseBlock)
    assert tool.name == "Write" and tool.input == {"file_path": "/w/hello.txt", "content": "hi"}
    assert message.stop_reason == "tool_use"
    assert message.model == "claude-opus-4-8"
    if backend == "openai":
        assert tool.id == "call_1"
        assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (100, 200)
    else:
        assert message.usage.input_tokens == 300
    assert message.usage.output_tokens == 40


async def test_messages_create(sdk):
    client, script, backend = sdk
    script.enqueue(ANSWER)
    message = await client.messages.create(model="claude-opus-4-8", max_tokens=2048, tools=TOOLS,
                                           thinking={"type": "enabled", "budget_tokens": 1024},
                                           messages=[{"role": "user", "content": "create hello.txt"}])
    check_message(message, backend)


async def test_messages_stream_helper(sdk):
    client, script, backend = sdk
    script.enqueue(ANSWER)
    seen: list[str] = []
    async with client.messages.stream(model="claude-opus-4-8", max_tokens=2048, tools=TOOLS,
                                      messages=[{"role": "user", "content": "create hello.txt"}]) as stream:
        async for event in stream:
            seen.append(event.type)
        message = await stream.get_final_message()
    check_message(message, backend)
    assert seen[0] == "message_start" and seen[-1] == "message_stop"
    assert "input_json" in seen  # the helper parsed partial tool input as it streamed
    assert "thinking" in seen and "text" in seen


async def test_stream_text_only(sdk):
    client, script, _ = sdk
    script.enqueue(Answer(text="Hello, world! " * 5, pieces=8))
    async with client.messages.stream(model="claude-haiku-5", max_tokens=100,
                                      messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join([t async for t in stream.text_stream])
    assert text == "Hello, world! " * 5


@pytest.mark.parametrize(("status", "exc"), [
    (401, anthropic.AuthenticationError), (403, anthropic.PermissionDeniedError),
    (429, anthropic.RateLimitError), (503, anthropic.InternalServerError), (500, anthropic.InternalServerError),
])
async def test_sdk_error_classes(sdk, status, exc):
    client, script, _ = sdk
    script.enqueue(Failure(status, {"error": {"message": "nope"}}))
    with pytest.raises(exc) as info:
        await client.messages.create(model="claude-opus-4-8", max_tokens=10,
                                     messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["type"] == "error"  # type: ignore[index]
    if status == 503:
        assert info.value.status_code == 529


async def test_count_tokens_via_sdk(sdk):
    client, _, _ = sdk
    result = await client.messages.count_tokens(model="claude-opus-4-8", tools=TOOLS,
                                                messages=[{"role": "user", "content": "create hello.txt"}])
    assert result.input_tokens > 20
