"""/v1/messages through the real aiohttp app against fake upstreams speaking real wire formats."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lynkr.convert.anthropic_stream import fold_events
from lynkr.server import create_app
from tests.conftest import SECRET, claude_request, make_settings, ollama_settings, openai_settings, read_events
from tests.fakes.script import Answer, Failure, Raw, ToolCall


def assert_well_formed(events: list[tuple[str | None, dict[str, Any]]]) -> None:
    """Every frame has its event: line equal to its type, in the Messages stream grammar."""
    for name, data in events:
        assert name == data["type"]
    types = [d["type"] for _, d in events if d["type"] != "ping"]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    open_index = None
    for _, d in events:
        if d["type"] == "content_block_start":
            assert open_index is None
            open_index = d["index"]
        elif d["type"] == "content_block_delta":
            assert d["index"] == open_index
        elif d["type"] == "content_block_stop":
            assert d["index"] == open_index
            open_index = None
    assert open_index is None


WRITE = ToolCall("Write", json.dumps({"file_path": "/tmp/x/hello.txt", "content": "hi"}), id="call_w1")


async def test_stream_translates_text_thinking_and_tool_calls(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Answer(text="Creating it.", reasoning="User wants a file.", tool_calls=[WRITE], pieces=4,
                          prompt_tokens=120, completion_tokens=30, cached_tokens=100))
    resp = await client.post("/v1/messages?beta=true", json=claude_request(stream=True),
                             headers={"x-api-key": "anything", "anthropic-version": "2023-06-01",
                                      "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["X-Lynkr-Provider"] == "openai"
    assert resp.headers["X-Lynkr-Model"] == "gpt-4o"
    assert resp.headers["X-Request-ID"]
    events = await read_events(resp)
    assert_well_formed(events)
    json_deltas = [d["delta"]["partial_json"] for _, d in events
                   if d["type"] == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert len(json_deltas) == 4  # arguments forwarded as they arrived, not buffered into one
    message = fold_events(d for _, d in events)
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][2] == {"type": "tool_use", "id": "call_w1", "name": "Write",
                                     "input": {"file_path": "/tmp/x/hello.txt", "content": "hi"}}
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 20, "output_tokens": 30, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 100}
    assert message["model"] == "claude-sonnet-4-5-20250929"
    sent = script.requests[0]
    assert sent["model"] == "gpt-4o" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert script.headers[0]["Authorization"] == f"Bearer {SECRET}"


async def test_non_stream_answer(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Answer(text="Hi!", finish="length"))
    resp = await client.post("/v1/messages", json=claude_request(),
                             headers={"Authorization": "Bearer whatever", "anthropic-version": "2026-10-21"})
    assert resp.status == 200
    body = await resp.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": "Hi!"}]
    assert body["stop_reason"] == "max_tokens"
    assert body["id"].startswith("msg_")


async def test_stream_query_flag_and_request_id_echo(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Answer(text="ok"))
    resp = await client.post("/v1/messages?stream=true", json=claude_request(), headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    assert fold_events(d for _, d in await read_events(resp))["content"][0]["text"] == "ok"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_model_name_with_control_characters_never_splits_a_header(lynkr_openai, stream):
    """The client's model name is echoed in X-Lynkr-Model: a CR/LF in it is replaced, never sent on."""
    client, script = lynkr_openai
    script.enqueue(Answer(text="ok"))
    resp = await client.post("/v1/messages", json=claude_request(model="gpt-4o\r\nX-Evil: 1", stream=stream))
    assert resp.status == 200
    assert resp.headers["X-Lynkr-Model"] == "gpt-4o??X-Evil: 1"
    assert "X-Evil" not in resp.headers
    await resp.read()


async def test_cookies_a_backend_sets_are_not_sent_back(openai_upstream, aiohttp_client):
    """One client session serves every caller: a cookie one answer sets (Cloudflare's, in front of OpenAI and
    OpenRouter) must not ride along on anybody's next request. (By host name: a jar takes no cookies from an
    IP address.)"""
    endpoint = openai_upstream.url.replace("127.0.0.1", "localhost") + "/v1/chat/completions"
    client = await aiohttp_client(create_app(make_settings(model_provider="openai", openai_api_key=SECRET,
                                                           openai_endpoint=endpoint, openai_model="gpt-4o")))
    script = openai_upstream.script
    script.enqueue(Failure(400, {"error": {"message": "bad", "type": "invalid_request_error"}},
                           headers={"Set-Cookie": "__cf_bm=secret; Path=/"}), Answer(text="hi"))
    assert (await client.post("/v1/messages", json=claude_request())).status == 400
    assert (await client.post("/v1/messages", json=claude_request())).status == 200
    assert [h.get("Cookie") for h in script.headers] == [None, None]


async def test_claude_model_names_map_to_backend_models(openai_upstream, aiohttp_client):
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, small_fast_model="gpt-4o-mini")))
    script = openai_upstream.script
    for _ in range(3):
        script.enqueue(Answer(text="x"))
    await client.post("/v1/messages", json=claude_request(model="claude-opus-4-8"))
    await client.post("/v1/messages", json=claude_request(model="claude-haiku-4-5-20251001"))
    await client.post("/v1/messages", json=claude_request(model="gpt-4.1"))
    assert [r["model"] for r in script.requests] == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"]
    # Claude Code asks for 64000; gpt-4o allows 16384, so lynkr clamps instead of earning a 400
    assert script.requests[0]["max_completion_tokens"] == 1024


async def test_max_tokens_clamped_to_backend_limit(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Answer(text="x"))
    await client.post("/v1/messages", json=claude_request(max_tokens=64000))
    assert script.requests[0]["max_completion_tokens"] == 16384


async def test_pings_while_upstream_is_silent(openai_upstream, aiohttp_client):
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, stream_ping_interval=0.05)))
    openai_upstream.script.enqueue(Answer(text="slow answer", pieces=3, delay=0.2))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    events = await read_events(resp)
    assert_well_formed(events)
    assert any(d["type"] == "ping" for _, d in events)
    assert fold_events(d for _, d in events)["content"][0]["text"] == "slow answer"


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "claude-x", "max_tokens": 5}, "messages"),
        ({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "bot", "content": "hi"}]}, "messages.0.role"),
        ({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"model": "claude-x", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "tool_result"}]}]}, "messages.0.content.0"),
        ({"model": 7, "max_tokens": 5, "messages": []}, "model"),
    ],
)
async def test_schema_violations_are_400_naming_the_field(lynkr_openai, body, field):
    client, script = lynkr_openai
    resp = await client.post("/v1/messages", json=body)
    assert resp.status == 400
    err = await resp.json()
    assert err["type"] == "error"
    assert err["error"]["type"] == "invalid_request_error"
    assert err["error"]["message"].startswith(field)
    assert err["request_id"] == resp.headers["X-Request-ID"]
    assert script.requests == []


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"'])
async def test_malformed_bodies_are_400(lynkr_openai, raw):
    client, _ = lynkr_openai
    resp = await client.post("/v1/messages", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("status", "headers", "want_status", "want_type", "phrase"),
    [
        (401, {}, 401, "authentication_error", "rejected lynkr's API key"),
        (403, {}, 403, "permission_error", "refused lynkr's API key"),
        (429, {"retry-after": "7"}, 429, "rate_limit_error", "answered 429"),
        (500, {}, 500, "api_error", "answered 500"),
        (503, {}, 529, "overloaded_error", "answered 503"),
        (400, {}, 400, "invalid_request_error", "answered 400"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_map_to_anthropic_errors(lynkr_openai, status, headers, want_status, want_type,
                                                       phrase, stream):
    client, script = lynkr_openai
    script.enqueue(Failure(status, {"error": {"message": "scripted failure", "type": "x"}}, headers))
    resp = await client.post("/v1/messages", json=claude_request(stream=stream))
    assert resp.status == want_status
    body = await resp.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == want_type
    assert phrase in body["error"]["message"] and "scripted failure" in body["error"]["message"]
    assert "Traceback" not in await resp.text()
    if "retry-after" in headers:
        assert resp.headers["retry-after"] == "7"


async def test_unreachable_backend_names_its_url(unused_tcp_port_factory, aiohttp_client):
    port = unused_tcp_port_factory()
    settings = make_settings(model_provider="ollama", ollama_endpoint=f"http://127.0.0.1:{port}")
    client = await aiohttp_client(create_app(settings))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 502
    body = await resp.json()
    assert body["error"]["type"] == "api_error"
    assert f"http://127.0.0.1:{port}/api/chat" in body["error"]["message"]


async def test_upstream_dropping_mid_stream_ends_with_error_event(lynkr_openai):
    client, script = lynkr_openai
    first = b'data: {"choices":[{"index":0,"delta":{"content":"partial"}}]}\n\n'
    script.enqueue(Raw(first + b'data: {"choices":[{"index":0,"delta":{"content":"more', drop_after=True))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 200
    events = await read_events(resp)
    assert events[-1][0] == "error"
    assert events[-1][1]["type"] == "error"
    assert events[-1][1]["error"]["type"] == "api_error"
    # and the server is still fine
    script.enqueue(Answer(text="after"))
    assert (await client.post("/v1/messages", json=claude_request())).status == 200


async def test_error_chunk_mid_stream_becomes_error_event(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Raw(b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
                       b'data: {"error":{"message":"provider exploded"}}\n\n'))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    events = await read_events(resp)
    assert events[-1][0] == "error"
    assert "provider exploded" in events[-1][1]["error"]["message"]


async def test_upstream_non_json_answer_is_502(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Raw(b"<html>gateway</html>", content_type="text/html"))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.status == 502
    assert (await resp.json())["error"]["type"] == "api_error"


async def test_unknown_paths_and_methods_answer_in_anthropic_shape(lynkr_openai):
    client, _ = lynkr_openai
    resp = await client.get("/v1/messages")
    assert resp.status == 405
    assert (await resp.json())["type"] == "error"
    resp = await client.post("/v1/messages/nope")
    assert resp.status == 404
    assert (await resp.json())["error"]["type"] == "not_found_error"


async def test_oversized_body_is_413(openai_upstream, aiohttp_client):
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, request_json_limit="1kb")))
    resp = await client.post("/v1/messages", json=claude_request(messages=[{"role": "user", "content": "x" * 4000}]))
    assert resp.status == 413
    assert (await resp.json())["error"]["type"] == "request_too_large"


# --- count_tokens and health -------------------------------------------------------------------


async def test_count_tokens_is_a_real_count(lynkr_openai):
    client, script = lynkr_openai
    short = await client.post("/v1/messages/count_tokens?beta=true",
                              json={"model": "claude-x", "messages": [{"role": "user", "content": "hello"}]})
    text = "hello" + " hello" * 99
    long = await client.post("/v1/messages/count_tokens",
                             json={"model": "claude-x", "messages": [{"role": "user", "content": text}]})
    a, b = (await short.json())["input_tokens"], (await long.json())["input_tokens"]
    assert 1 < a < 10
    assert b - a == 99  # "hello" repeated: one token each in cl100k
    assert script.requests == []
    bad = await client.post("/v1/messages/count_tokens", json={"model": "claude-x"})
    assert bad.status == 400


async def test_health_endpoints(lynkr_openai):
    client, _ = lynkr_openai
    for path, status in (("/health", "ok"), ("/health/live", "alive"), ("/health/ready", "ready")):
        resp = await client.get(path)
        assert resp.status == 200
        assert (await resp.json())["status"] == status


# --- Ollama ------------------------------------------------------------------------------------


async def test_ollama_stream_with_tool_call(ollama_upstream, aiohttp_client):
    settings = ollama_settings(ollama_upstream, ollama_num_ctx=32768, ollama_keep_alive="10m")
    client = await aiohttp_client(create_app(settings))
    ollama_upstream.script.enqueue(Answer(text="Writing.", tool_calls=[WRITE], prompt_tokens=50, completion_tokens=9))
    resp = await client.post("/v1/messages", json=claude_request(stream=True, tools=[{
        "name": "Write", "description": "Write a file",
        "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                         "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
                         "required": ["file_path", "content"], "additionalProperties": False}}]))
    assert resp.status == 200
    events = await read_events(resp)
    assert_well_formed(events)
    message = fold_events(d for _, d in events)
    assert message["content"][0] == {"type": "text", "text": "Writing."}
    tool = message["content"][1]
    assert tool["type"] == "tool_use" and tool["name"] == "Write" and tool["id"].startswith("toolu_")
    assert tool["input"] == {"file_path": "/tmp/x/hello.txt", "content": "hi"}
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 50 and message["usage"]["output_tokens"] == 9
    sent = ollama_upstream.script.requests[0]
    assert sent["options"]["num_ctx"] == 32768
    assert sent["keep_alive"] == "10m"
    assert sent["tools"][0]["function"]["parameters"].get("$schema") is None


async def test_ollama_tool_result_round_trip(lynkr_ollama):
    client, script = lynkr_ollama
    script.enqueue(Answer(text="Done."))
    body = claude_request(messages=[
        {"role": "user", "content": "make it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Write",
                                           "input": {"file_path": "a", "content": "b"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
    ])
    resp = await client.post("/v1/messages", json=body)
    assert (await resp.json())["content"] == [{"type": "text", "text": "Done."}], await resp.text()
    sent = script.requests[0]["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "Write", "arguments": {"file_path": "a", "content": "b"}}}]
    assert sent[2] == {"role": "tool", "content": "ok", "tool_name": "Write"}


def test_proxy_from_environment_honours_no_proxy(monkeypatch):
    from lynkr.providers import http

    http.proxy_for.cache_clear()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.internal")
    try:
        assert http.proxy_for("https://api.openai.com/v1/chat/completions") == "http://proxy.corp:3128"
        assert http.proxy_for("https://llm.internal/v1") is None
        assert http.proxy_for("http://127.0.0.1:11434/api/chat") is None
    finally:
        http.proxy_for.cache_clear()


async def test_observers_get_a_record_of_each_request(openai_upstream, aiohttp_client):
    from lynkr.server.keys import OBSERVERS

    app = create_app(openai_settings(openai_upstream))
    seen: list = []
    app[OBSERVERS].append(seen.append)
    client = await aiohttp_client(app)
    openai_upstream.script.enqueue(Answer(text="hi", prompt_tokens=50, completion_tokens=5, cached_tokens=20),
                                   Answer(text="yo", prompt_tokens=9, completion_tokens=2))
    await client.post("/v1/messages", json=claude_request(stream=True), headers={"X-Request-ID": "r-1"})
    await client.post("/v1/messages", json=claude_request())
    await client.post("/v1/messages", json={"model": "x"})
    streamed, plain, bad = seen
    assert (streamed.request_id, streamed.stream, streamed.provider, streamed.model) == (
        "r-1", True, "openai", "gpt-4o")
    assert (streamed.input_tokens, streamed.output_tokens, streamed.cache_read_tokens) == (30, 5, 20)
    assert streamed.ttft is not None and streamed.duration is not None and streamed.ttft <= streamed.duration
    assert (plain.stream, plain.input_tokens, plain.output_tokens, plain.status) == (False, 9, 2, 200)
    assert (bad.status, bad.error_type, bad.provider) == (400, "invalid_request_error", None)
