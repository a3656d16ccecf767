"""MODEL_PROVIDER=moonshot (Kimi): OpenAI Chat Completions with Moonshot's quirks, pure and through the app."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestClient

from lynkr.config import Settings
from lynkr.convert.anthropic_stream import fold_events
from lynkr.convert.moonshot import PLACEHOLDER_REASONING, lift_choice_usage, moonshot_request
from lynkr.convert.openai_chat import ChatTarget, anthropic_to_chat
from lynkr.errors import ConfigError
from lynkr.providers import check_settings
from lynkr.server import create_app
from tests.conftest import SECRET, Upstream, claude_request, make_settings
from tests.conftest import read_events as read_sse
from tests.fakes.script import Answer, Failure, Raw, ToolCall
from tests.transcripts import aiter, collect

ClientFactory = Callable[..., Awaitable[TestClient]]
READ = ToolCall("Read", json.dumps({"file_path": "/a.py"}), id="Read:0")
TOOLS = [{"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}]


def moonshot_settings(upstream: Upstream, **extra: Any) -> Settings:
    return make_settings(model_provider="moonshot", moonshot_api_key=SECRET,
                         moonshot_endpoint=upstream.url + "/v1/chat/completions", **extra)


async def lynkr(aiohttp_client: ClientFactory, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


async def read_events(resp: Any) -> list[dict[str, Any]]:
    return [data for _, data in await read_sse(resp)]


HISTORY = [
    {"role": "user", "content": "read a.py"},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Read it first.", "signature": ""},
        {"type": "tool_use", "id": "Read:0", "name": "Read", "input": {"file_path": "/a.py"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "Read:0", "content": "print(1)"}]},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "Read:1", "name": "Read",
                                       "input": {"file_path": "/b.py"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "Read:1", "content": "print(2)"}]},
]


def chat(req: dict[str, Any], model: str) -> dict[str, Any]:
    return anthropic_to_chat(req, ChatTarget(backend="moonshot", model=model), stream=False)


# --- the request quirks (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "sent"), [(0.3, 0.3), (1.5, 1.0), (-0.2, 0.0), (1, 1.0)])
def test_temperature_is_kept_in_moonshots_range(given, sent):
    req = claude_request(temperature=given, top_p=0.8)
    out = moonshot_request(chat(req, "kimi-k2-turbo-preview"), req, "kimi-k2-turbo-preview")
    assert out["temperature"] == sent and out["top_p"] == 0.8


@pytest.mark.parametrize("model", ["kimi-k2-thinking", "kimi-k2-thinking-turbo", "kimi-k2.5", "kimi-k2.6",
                                   "moonshotai/kimi-k3"])
def test_thinking_models_fix_their_sampling(model):
    req = claude_request(temperature=0.2, top_p=0.9, tools=TOOLS, tool_choice={"type": "any"})
    out = moonshot_request(chat(req, model), req, model)
    assert out["temperature"] == 1.0 and "top_p" not in out
    assert out["tool_choice"] == "auto"  # thinking mode takes auto or none only


def test_no_temperature_is_not_invented():
    req = claude_request()
    assert "temperature" not in moonshot_request(chat(req, "kimi-k2.5"), req, "kimi-k2.5")


def test_tool_call_turns_carry_their_reasoning_content():
    req = claude_request(messages=HISTORY, tools=TOOLS)
    body = chat(req, "kimi-k2.5")
    before = copy.deepcopy(body)
    out = moonshot_request(body, req, "kimi-k2.5")
    assert body == before  # not mutated
    turns = [m for m in out["messages"] if m["role"] == "assistant"]
    assert [t.get("reasoning_content") for t in turns] == ["Read it first.", PLACEHOLDER_REASONING]
    # a model that does not think gets the reasoning it produced, and no placeholder
    plain = moonshot_request(chat(req, "kimi-k2-turbo-preview"), req, "kimi-k2-turbo-preview")
    assert [t.get("reasoning_content") for t in plain["messages"] if t["role"] == "assistant"] == \
        ["Read it first.", None]


async def test_choice_level_usage_is_lifted():
    chunks = [{"choices": [{"index": 0, "delta": {"content": "a"}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}]},
              {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 1}}]
    out = await collect(lift_choice_usage(aiter(chunks)))
    assert [c.get("usage") for c in out] == [None, {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                                             {"prompt_tokens": 9, "completion_tokens": 1}]


def test_missing_key_is_named():
    with pytest.raises(ConfigError, match="MOONSHOT_API_KEY"):
        check_settings(make_settings(model_provider="moonshot"))


# --- through the app --------------------------------------------------------------------------------


def moonshot_stream(reasoning: str, text: str, usage: dict[str, int]) -> bytes:
    """As Moonshot streams: reasoning_content deltas, content deltas, usage inside the last choice."""
    base = {"id": "chatcmpl-kimi", "object": "chat.completion.chunk", "created": 1, "model": "kimi-k2.5"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"reasoning_content": p}}]} for p in reasoning.split(" ")]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": p}}]} for p in text.split(" ")]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "usage": usage}]})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


async def test_stream_with_reasoning_and_choice_usage(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, moonshot_settings(openai_upstream, moonshot_model="kimi-k2.5"))
    openai_upstream.script.enqueue(Raw(moonshot_stream("think a bit", "hello there",
                                                       {"prompt_tokens": 120, "completion_tokens": 30,
                                                        "total_tokens": 150, "cached_tokens": 100})))
    resp = await client.post("/v1/messages", json=claude_request(stream=True, temperature=0.5))
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Lynkr-Model"] == "kimi-k2.5"
    message = fold_events(await read_events(resp))
    assert message["content"] == [{"type": "thinking", "thinking": "thinkabit", "signature": ""},
                                  {"type": "text", "text": "hellothere"}]
    assert message["usage"]["input_tokens"] == 120 and message["usage"]["output_tokens"] == 30
    sent = openai_upstream.script.requests[0]
    assert sent["temperature"] == 1.0 and sent["model"] == "kimi-k2.5"
    assert openai_upstream.script.headers[0]["Authorization"] == f"Bearer {SECRET}"


async def test_tool_turns_round_trip_with_reasoning_content(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, moonshot_settings(openai_upstream, moonshot_model="kimi-k2-thinking"))
    openai_upstream.script.enqueue(Answer(reasoning="Read it first.", tool_calls=[READ]), Answer(text="It prints 1."))
    first = await (await client.post("/v1/messages", json=claude_request(tools=TOOLS, messages=HISTORY[:1]))).json()
    assert [b["type"] for b in first["content"]] == ["thinking", "tool_use"]
    assert first["content"][1]["id"] == "Read:0" and first["stop_reason"] == "tool_use"
    history = [HISTORY[0], {"role": "assistant", "content": first["content"]}, HISTORY[2]]
    second = await (await client.post("/v1/messages", json=claude_request(tools=TOOLS, messages=history))).json()
    assert second["content"] == [{"type": "text", "text": "It prints 1."}]
    sent = openai_upstream.script.requests[1]["messages"]
    assert sent[1]["reasoning_content"] == "Read it first."
    assert sent[1]["tool_calls"][0]["id"] == "Read:0"
    assert sent[2] == {"role": "tool", "tool_call_id": "Read:0", "content": "print(1)"}


async def test_claude_names_map_to_the_moonshot_model(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, moonshot_settings(openai_upstream))
    for name in ("claude-opus-4-8", "claude-haiku-4-5"):
        openai_upstream.script.enqueue(Answer(text="x"))
        await client.post("/v1/messages", json=claude_request(model=name))
    assert [r["model"] for r in openai_upstream.script.requests] == ["kimi-k2-turbo-preview"] * 2


async def test_images_and_stream_equals_non_stream(openai_upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, moonshot_settings(openai_upstream))
    answer = Answer(text="A cat.", reasoning="Looks feline.", tool_calls=[READ], pieces=4)
    openai_upstream.script.enqueue(answer, answer)
    content = [{"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
               {"type": "text", "text": "what is it?"}]
    req = claude_request(messages=[{"role": "user", "content": content}], tools=TOOLS)
    streamed = fold_events(await read_events(await client.post("/v1/messages", json={**req, "stream": True})))
    whole = await (await client.post("/v1/messages", json=req)).json()
    del streamed["id"], whole["id"]
    assert streamed == whole
    assert openai_upstream.script.requests[0]["messages"][0]["content"][0] == {
        "type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


@pytest.mark.parametrize(
    ("status", "want_status", "want_type"),
    [(401, 401, "authentication_error"), (403, 403, "permission_error"), (429, 429, "rate_limit_error"),
     (500, 500, "api_error"), (503, 529, "overloaded_error"), (400, 400, "invalid_request_error")],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_errors(openai_upstream, aiohttp_client, status, want_status, want_type, stream):
    client = await lynkr(aiohttp_client, moonshot_settings(openai_upstream))
    openai_upstream.script.enqueue(Failure(status, {"error": {"message": "scripted failure",
                                                              "type": "invalid_request_error"}}))
    resp = await client.post("/v1/messages", json=claude_request(stream=stream))
    assert resp.status == want_status
    body = await resp.json()
    assert body["error"]["type"] == want_type and "moonshot" in body["error"]["message"]


async def test_sdk_stream_helper(openai_upstream, aiohttp_server):
    server = await aiohttp_server(create_app(moonshot_settings(openai_upstream)))
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")).rstrip("/"), api_key="dummy", max_retries=0)
    openai_upstream.script.enqueue(Answer(text="Reading.", reasoning="Need the file.", tool_calls=[READ], pieces=5))
    try:
        async with client.messages.stream(model="claude-opus-4-8", max_tokens=1000, tools=TOOLS,
                                          messages=[{"role": "user", "content": "read a.py"}]) as stream:
            kinds = [event.type async for event in stream]
            message = await stream.get_final_message()
    finally:
        await client.close()
    assert {"thinking", "text", "input_json"} <= set(kinds)
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[2].input == {"file_path": "/a.py"}
