"""Anthropic-native backends (anthropic, azure-anthropic, zai): pure passthrough through the real app
against a fake Anthropic API, the official SDK's stream helper, errors, and the decoder at awkward splits."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lynkr.config import Settings
from lynkr.convert.anthropic_stream import fold_events
from lynkr.errors import ConfigError, UpstreamBadResponse, UpstreamOverloaded, UpstreamRateLimited
from lynkr.providers import check_settings
from lynkr.providers.anthropic import messages_url, passthrough_events
from lynkr.server import create_app
from lynkr.sse import SSEDecoder
from tests.conftest import SECRET, Upstream, claude_request, make_settings, read_events
from tests.fakes import anthropic_server
from tests.fakes.anthropic_server import MESSAGE_ID, SIGNATURE, error_body, render_body, render_events, sse_bytes
from tests.fakes.script import Answer, Failure, Raw, Script, ToolCall
from tests.transcripts import aiter, assert_stream_grammar, chunkings, collect, line_endings

ServerFactory = Callable[..., Awaitable[TestServer]]
ClientFactory = Callable[..., Awaitable[TestClient]]

PROVIDERS = ["anthropic", "azure-anthropic", "zai"]
WRITE = ToolCall("Write", json.dumps({"file_path": "/tmp/x/hello.txt", "content": "hi"}), id="toolu_01Write")
ANSWER = Answer(text="Creating the file.", reasoning="The user wants hello.txt.", tool_calls=[WRITE], pieces=4,
                prompt_tokens=1200, completion_tokens=60, cached_tokens=1000)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
async def upstream(aiohttp_server: ServerFactory) -> Upstream:
    script = Script()
    return Upstream(script, await aiohttp_server(anthropic_server.make_app(script)))


def native_settings(provider: str, upstream: Upstream, **extra: Any) -> Settings:
    if provider == "anthropic":
        values: dict[str, Any] = {"anthropic_upstream_api_key": SECRET,
                                  "anthropic_upstream_endpoint": upstream.url + "/v1/messages"}
    elif provider == "azure-anthropic":  # a resource URL: lynkr adds /anthropic/v1/messages
        values = {"azure_anthropic_api_key": SECRET, "azure_anthropic_endpoint": upstream.url}
    else:
        values = {"zai_api_key": SECRET, "zai_endpoint": upstream.url + "/api/anthropic/v1/messages"}
    return make_settings(model_provider=provider, **{**values, **extra})


async def lynkr(aiohttp_client: ClientFactory, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))



def claude_code_body(**over: Any) -> dict[str, Any]:
    """A Claude Code-shaped turn: fields lynkr does not model must reach the backend untouched."""
    body = claude_request(
        model="claude-opus-4-8", max_tokens=64000, stream=True,
        system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.38b;"},
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "make hello.txt",
                                          "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Available agent types: general-purpose."},
        ],
        tools=[{"name": "Write", "description": "Write a file", "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["file_path", "content"], "additionalProperties": False}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        metadata={"user_id": '{"device_id":"abc","session_id":"s-1"}'},
        thinking={"type": "adaptive"}, output_config={"effort": "high"},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        some_future_field={"kept": True},
    )
    body.update(over)
    return body


# --- passthrough -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_passes_through_unchanged(provider, upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings(provider, upstream))
    upstream.script.enqueue(ANSWER)
    body = claude_code_body()
    resp = await client.post("/v1/messages?beta=true", json=body,
                             headers={"x-api-key": "client-key", "anthropic-version": "2023-06-01",
                                      "anthropic-beta": "claude-code-20250219,context-management-2025-06-27"})
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Lynkr-Provider"] == provider
    events = await read_events(resp)
    for name, data in events:
        assert name == data["type"]
    # every upstream event arrives as it was sent; only message_start's model is the client's name
    sent_model = upstream.script.requests[0]["model"]
    expected = render_events(ANSWER, sent_model)
    expected[0]["message"]["model"] = "claude-opus-4-8"
    assert [d for _, d in events if d["type"] != "ping"] == [e for e in expected if e["type"] != "ping"]
    message = fold_events(d for _, d in events)
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][0]["signature"] == SIGNATURE
    assert message["content"][2]["input"] == {"file_path": "/tmp/x/hello.txt", "content": "hi"}
    assert message["usage"] == {"input_tokens": 200, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 1000, "output_tokens": 60}
    assert message["stop_reason"] == "tool_use"

    # the request went upstream as the client sent it, model mapped, nothing dropped or added
    sent = upstream.script.requests[0]
    assert {k: v for k, v in sent.items() if k != "model"} == {k: v for k, v in body.items() if k != "model"}
    headers = upstream.script.headers[0]
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["x-api-key"] == SECRET  # lynkr's upstream key, never the client's
    assert "client-key" not in json.dumps(headers)
    if provider == "azure-anthropic":
        assert headers["api-key"] == SECRET
    if provider == "zai":
        assert headers["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_non_stream_answer_is_returned_as_sent(provider, upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings(provider, upstream))
    upstream.script.enqueue(ANSWER)
    body = claude_code_body(stream=False)
    resp = await client.post("/v1/messages", json=body)
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    expected = render_body(ANSWER, upstream.script.requests[0]["model"])
    assert got == {**expected, "model": "claude-opus-4-8"}
    assert got["id"] == MESSAGE_ID
    assert "stream" not in upstream.script.requests[0]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_equals_non_stream(provider, upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings(provider, upstream))
    upstream.script.enqueue(ANSWER, ANSWER)
    streamed = await client.post("/v1/messages", json=claude_request(stream=True))
    whole = await client.post("/v1/messages", json=claude_request())
    assert fold_events(d for _, d in await read_events(streamed)) == await whole.json()


async def test_query_stream_flag_streams_upstream(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    upstream.script.enqueue(Answer(text="ok"))
    resp = await client.post("/v1/messages?stream=true", json=claude_request())
    assert fold_events(d for _, d in await read_events(resp))["content"] == [{"type": "text", "text": "ok"}]
    assert upstream.script.requests[0]["stream"] is True


async def test_tool_turn_images_and_thinking_history_pass_through(upstream, aiohttp_client):
    """A second turn: the thinking block with its signature, the tool_use, the tool_result with an image
    and is_error all reach the backend exactly as the client sent them."""
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    upstream.script.enqueue(Answer(text="Done."))
    history = [
        {"role": "user", "content": [{"type": "text", "text": "what is in this?"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": PNG}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should look closer.", "signature": SIGNATURE},
            {"type": "tool_use", "id": "toolu_01Zoom", "name": "Zoom", "input": {"factor": 2}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01Zoom", "is_error": False,
             "content": [{"type": "text", "text": "zoomed"},
                         {"type": "image", "source": {"type": "url", "url": "https://example.com/z.png"}}]},
            {"type": "redacted_thinking", "data": "opaque"}]},
    ]
    body = claude_request(messages=history, thinking={"type": "enabled", "budget_tokens": 2048})
    resp = await client.post("/v1/messages", json=copy.deepcopy(body))
    assert (await resp.json())["content"] == [{"type": "text", "text": "Done."}]
    assert upstream.script.requests[0]["messages"] == history
    assert upstream.script.requests[0]["thinking"] == {"type": "enabled", "budget_tokens": 2048}


# --- model names -------------------------------------------------------------------------------


async def post_models(client: TestClient, upstream: Upstream, *names: str) -> list[str]:
    for name in names:
        upstream.script.enqueue(Answer(text="x"))
        resp = await client.post("/v1/messages", json=claude_request(model=name))
        assert resp.status == 200, await resp.text()
    return [r["model"] for r in upstream.script.requests[-len(names):]]


async def test_anthropic_passes_claude_names_when_no_model_is_set(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    names = ["claude-opus-4-8", "claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"]
    assert await post_models(client, upstream, *names) == names


async def test_anthropic_upstream_model_maps_claude_names(upstream, aiohttp_client):
    settings = native_settings("anthropic", upstream, anthropic_upstream_model="claude-sonnet-4-5",
                               small_fast_model="claude-haiku-4-5")
    client = await lynkr(aiohttp_client, settings)
    got = await post_models(client, upstream, "claude-opus-4-8", "claude-haiku-4-5-20251001", "my-fine-tune")
    assert got == ["claude-sonnet-4-5", "claude-haiku-4-5", "my-fine-tune"]


async def test_zai_maps_claude_names_to_glm(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings("zai", upstream))
    got = await post_models(client, upstream, "claude-opus-4-8", "claude-haiku-4-5-20251001", "glm-4.6")
    assert got == ["GLM-4.7", "glm-4.5-air", "glm-4.6"]
    client = await lynkr(aiohttp_client, native_settings("zai", upstream, small_fast_model="glm-4.5-flash",
                                                         zai_model="glm-5"))
    assert await post_models(client, upstream, "claude-sonnet-4-5", "claude-haiku-4-5") == ["glm-5", "glm-4.5-flash"]


async def test_azure_uses_model_default_as_the_deployment(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings("azure-anthropic", upstream))
    assert await post_models(client, upstream, "claude-sonnet-4-5") == ["claude-sonnet-4-5"]
    client = await lynkr(aiohttp_client, native_settings("azure-anthropic", upstream, model_default="claude-opus-4-5"))
    assert await post_models(client, upstream, "claude-sonnet-4-5-20250929") == ["claude-opus-4-5"]
    headers = upstream.script.headers[-1]
    assert headers["anthropic-version"] == "2023-06-01"


async def test_azure_anthropic_version_is_sent(upstream, aiohttp_client):
    settings = native_settings("azure-anthropic", upstream, azure_anthropic_version="2024-01-01")
    client = await lynkr(aiohttp_client, settings)
    await post_models(client, upstream, "claude-sonnet-4-5")
    assert upstream.script.headers[-1]["anthropic-version"] == "2024-01-01"


@pytest.mark.parametrize(
    ("endpoint", "prefix", "url"),
    [
        ("https://api.anthropic.com/v1/messages", "", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com", "", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1/", "", "https://api.anthropic.com/v1/messages"),
        ("https://r.services.ai.azure.com", "/anthropic", "https://r.services.ai.azure.com/anthropic/v1/messages"),
        ("https://r.services.ai.azure.com/anthropic/", "/anthropic",
         "https://r.services.ai.azure.com/anthropic/v1/messages"),
        ("https://r.services.ai.azure.com/anthropic/v1/messages", "/anthropic",
         "https://r.services.ai.azure.com/anthropic/v1/messages"),
        ("https://api.z.ai/api/anthropic", "", "https://api.z.ai/api/anthropic/v1/messages"),
    ],
)
def test_messages_url(endpoint, prefix, url):
    assert messages_url(endpoint, default_prefix=prefix) == url


# --- settings ----------------------------------------------------------------------------------


def test_the_clients_anthropic_api_key_is_never_the_upstream_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-client-side")
    monkeypatch.setenv("MODEL_PROVIDER", "anthropic")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.anthropic_upstream_api_key is None
    with pytest.raises(ConfigError, match="ANTHROPIC_UPSTREAM_API_KEY"):
        check_settings(settings)
    monkeypatch.setenv("ANTHROPIC_UPSTREAM_API_KEY", "sk-ant-upstream")
    check_settings(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.mark.parametrize(("provider", "variable"), [("azure-anthropic", "AZURE_ANTHROPIC_API_KEY"),
                                                    ("zai", "ZAI_API_KEY")])
def test_missing_keys_are_named(provider, variable):
    with pytest.raises(ConfigError, match=variable):
        check_settings(make_settings(model_provider=provider))


def test_azure_needs_its_endpoint():
    with pytest.raises(ConfigError, match="AZURE_ANTHROPIC_ENDPOINT"):
        check_settings(make_settings(model_provider="azure-anthropic", azure_anthropic_api_key="k"))


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "headers", "want_status", "want_type"),
    [
        (401, "authentication_error", {}, 401, "authentication_error"),
        (403, "permission_error", {}, 403, "permission_error"),
        (429, "rate_limit_error", {"retry-after": "12"}, 429, "rate_limit_error"),
        (500, "api_error", {}, 500, "api_error"),
        (529, "overloaded_error", {}, 529, "overloaded_error"),
        (400, "invalid_request_error", {}, 400, "invalid_request_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_map_by_status(upstream, aiohttp_client, status, kind, headers, want_status,
                                             want_type, stream):
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    upstream.script.enqueue(Failure(status, error_body(kind, "scripted failure"), headers))
    resp = await client.post("/v1/messages", json=claude_request(stream=stream))
    assert resp.status == want_status
    body = await resp.json()
    assert body["type"] == "error" and body["error"]["type"] == want_type
    assert "scripted failure" in body["error"]["message"] and "anthropic" in body["error"]["message"]
    if headers:
        assert resp.headers["retry-after"] == "12"


async def test_error_event_mid_stream_ends_the_stream_with_that_error(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    events = render_events(Answer(text="partial answer"), "claude-opus-4-8")[:5]  # start, ping, block start, deltas
    events.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    upstream.script.enqueue(Raw(sse_bytes(events)))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 200
    got = await read_events(resp)
    assert got[-1][0] == "error"
    assert got[-1][1]["error"]["type"] == "overloaded_error"
    assert "Overloaded" in got[-1][1]["error"]["message"]
    texts = [d["delta"]["text"] for _, d in got if d["type"] == "content_block_delta"]
    assert texts and "".join(texts) in "partial answer"


async def test_error_event_before_anything_is_an_http_error(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    upstream.script.enqueue(Raw(sse_bytes([{"type": "error", "error": {"type": "rate_limit_error",
                                                                       "message": "slow down"}}])))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 429
    assert (await resp.json())["error"]["type"] == "rate_limit_error"


async def test_dropped_connection_mid_stream(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    events = render_events(Answer(text="cut short"), "m")[:4]
    upstream.script.enqueue(Raw(sse_bytes(events) + b"event: content_block_delta\ndata: {\"type\":", drop_after=True))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    got = await read_events(resp)
    assert got[-1][0] == "error" and got[-1][1]["error"]["type"] == "api_error"


async def test_non_message_answer_is_a_bad_response(upstream, aiohttp_client):
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    upstream.script.enqueue(Raw(b'{"hello": "world"}', content_type="application/json"))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.status == 502


# --- the official SDK ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_sdk_stream_helper_and_create_agree(provider, upstream, aiohttp_server):
    server = await aiohttp_server(create_app(native_settings(provider, upstream)))
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")).rstrip("/"), api_key="dummy", max_retries=0)
    try:
        upstream.script.enqueue(ANSWER, ANSWER)
        seen: list[str] = []
        kwargs: dict[str, Any] = {
            "model": "claude-opus-4-8", "max_tokens": 2048,
            "tools": [{"name": "Write", "description": "Write a file", "input_schema": {
                "type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}}}],
            "messages": [{"role": "user", "content": "create hello.txt"}],
        }
        async with client.messages.stream(**kwargs) as stream:
            async for event in stream:
                seen.append(event.type)
            streamed = await stream.get_final_message()
        created = await client.messages.create(**kwargs)
    finally:
        await client.close()
    assert "input_json" in seen and "thinking" in seen and "signature" in seen and "text" in seen
    assert streamed.model_dump() == created.model_dump()
    thinking, text, tool = streamed.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock) and thinking.signature == SIGNATURE
    assert isinstance(text, anthropic.types.TextBlock) and text.text == "Creating the file."
    assert isinstance(tool, anthropic.types.ToolUseBlock) and tool.id == "toolu_01Write"
    assert tool.input == {"file_path": "/tmp/x/hello.txt", "content": "hi"}
    assert streamed.usage.cache_read_input_tokens == 1000 and streamed.usage.output_tokens == 60


async def test_sdk_sees_upstream_overload_as_its_own_error(upstream, aiohttp_server):
    server = await aiohttp_server(create_app(native_settings("anthropic", upstream)))
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")).rstrip("/"), api_key="dummy", max_retries=0)
    upstream.script.enqueue(Failure(529, error_body("overloaded_error", "Overloaded")))
    try:
        with pytest.raises(anthropic.InternalServerError) as info:
            await client.messages.create(model="claude-opus-4-8", max_tokens=10,
                                         messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


# --- the pure passthrough over recorded bytes at awkward boundaries --------------------------------


TRANSCRIPT = sse_bytes(render_events(Answer(text="Grüße, 世界! ✓", reasoning="Denke… 🤔", tool_calls=[WRITE],
                                             pieces=5), "claude-sonnet-4-5"))


async def passthrough(pieces: list[bytes], model: str = "claude-opus-4-8") -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    payloads = [json.loads(ev.data) for piece in pieces for ev in decoder.feed(piece)]
    payloads += [json.loads(ev.data) for ev in decoder.close()]
    return await collect(passthrough_events(aiter(payloads), model=model, provider="anthropic"))


@pytest.mark.parametrize("ending", ["lf", "crlf", "cr"])
async def test_passthrough_at_every_awkward_boundary(ending):
    data = line_endings(TRANSCRIPT, ending)
    expected = await passthrough([TRANSCRIPT])
    assert_stream_grammar([e for e in expected if e["type"] != "ping"])
    assert expected[0]["message"]["model"] == "claude-opus-4-8"
    message = fold_events(expected)
    assert message["content"][1]["text"] == "Grüße, 世界! ✓"
    assert message["content"][0]["thinking"] == "Denke… 🤔"
    for family, chunkings_ in chunkings(data).items():
        for pieces in chunkings_:
            assert await passthrough(pieces) == expected, family


async def test_passthrough_raises_on_error_events_and_missing_types():
    with pytest.raises(UpstreamRateLimited, match="slow down"):
        await collect(passthrough_events(aiter([{"type": "error", "error": {"type": "rate_limit_error",
                                                                            "message": "slow down"}}]),
                                         model="m", provider="anthropic"))
    start = render_events(Answer(text="a"), "m")[0]
    with pytest.raises(UpstreamOverloaded):
        await collect(passthrough_events(aiter([start, {"type": "error", "error": {"type": "overloaded_error"}}]),
                                         model="m", provider="anthropic"))
    with pytest.raises(UpstreamBadResponse, match="without a type"):
        await collect(passthrough_events(aiter([start, {"no": "type"}]), model="m", provider="anthropic"))
    with pytest.raises(UpstreamBadResponse, match="without starting"):
        await collect(passthrough_events(aiter([]), model="m", provider="anthropic"))


async def test_zai_chat_completions_endpoint_uses_the_openai_dialect(openai_upstream, aiohttp_client):
    settings = make_settings(model_provider="zai", zai_api_key=SECRET,
                             zai_endpoint=openai_upstream.url + "/v1/chat/completions")
    client = await lynkr(aiohttp_client, settings)
    openai_upstream.script.enqueue(Answer(text="GLM here.", reasoning="short"), Answer(text="x"))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    message = fold_events(d for _, d in await read_events(resp))
    assert message["content"] == [{"type": "thinking", "thinking": "short", "signature": ""},
                                  {"type": "text", "text": "GLM here."}]
    await client.post("/v1/messages", json=claude_request(model="claude-haiku-4-5"))
    assert [r["model"] for r in openai_upstream.script.requests] == ["GLM-4.7", "glm-4.5-air"]
    assert openai_upstream.script.headers[0]["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("stream", [False, True])
async def test_client_anthropic_beta_reaches_native_backends(upstream, aiohttp_client, stream):
    client = await lynkr(aiohttp_client, native_settings("anthropic", upstream))
    upstream.script.enqueue(ANSWER, ANSWER)
    betas = "claude-code-20250219,context-management-2025-06-27,mid-conversation-system-2026-04-07"
    resp = await client.post("/v1/messages?beta=true", json=claude_request(stream=stream),
                             headers={"anthropic-beta": betas, "anthropic-version": "2023-06-01"})
    assert resp.status == 200, await resp.text()
    await client.post("/v1/messages", json=claude_request(stream=stream))  # no beta: none forwarded
    first, second = upstream.script.headers
    assert first["anthropic-beta"] == betas
    assert "anthropic-beta" not in {k.lower() for k in second}
