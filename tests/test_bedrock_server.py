"""/v1/messages through lynkr against the fake Bedrock Runtime (Converse JSON, ConverseStream binary
event-stream frames): bearer key and SigV4 auth, full history, error mapping, and the anthropic SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestClient

from lynkr.config import Settings
from lynkr.convert.anthropic_stream import fold_events
from lynkr.convert.bedrock import BedrockTarget, anthropic_to_converse
from lynkr.providers import backend_settings, check_settings
from lynkr.server import create_app
from tests.bedrock_support import API_KEY, MODEL_ID, BedrockUpstream, bedrock_settings, isolate_aws, start_fake
from tests.conftest import claude_request, make_settings
from tests.fakes.bedrock_server import (
    EVENT_STREAM,
    SIGNATURE,
    FakeAuth,
    aws_error,
    exception_frame,
    frames,
    render_events,
    validate_request,
)
from tests.fakes.script import Answer, Raw, ToolCall
from tests.test_server_messages import assert_well_formed, read_events
from tests.transcripts import claude_code_request

ClientFactory = Callable[..., Awaitable[TestClient]]
ACCESS_KEY = "AKIDFAKEBEDROCK00001"
SECRET_KEY = "fake/secret/key/for/bedrock/tests/000000"
WRITE = ToolCall("Write", json.dumps({"file_path": "/tmp/x/hello.txt", "content": "hi"}), id="tooluse_w1")
TOOLS = [{"name": "Write", "description": "Write a file",
          "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                            "content": {"type": "string"}},
                           "required": ["file_path", "content"]}}]


@pytest.fixture
async def bedrock(aiohttp_server: Any) -> BedrockUpstream:
    return await start_fake(aiohttp_server)


@pytest.fixture
async def lynkr_bedrock(bedrock: BedrockUpstream, aiohttp_client: ClientFactory) -> tuple[TestClient, BedrockUpstream]:
    return await aiohttp_client(create_app(bedrock_settings(bedrock))), bedrock


# --- answers -----------------------------------------------------------------------------------


async def test_stream_translates_thinking_text_and_tool_calls(lynkr_bedrock):
    client, bedrock = lynkr_bedrock
    bedrock.fake.script.enqueue(Answer(text="Creating it.", reasoning="User wants a file.", tool_calls=[WRITE],
                                       pieces=4, prompt_tokens=120, completion_tokens=30, cached_tokens=100))
    resp = await client.post("/v1/messages?beta=true", json=claude_request(stream=True, tools=TOOLS),
                             headers={"x-api-key": "anything", "anthropic-version": "2023-06-01"})
    assert resp.status == 200
    assert resp.headers["X-Lynkr-Provider"] == "bedrock"
    assert resp.headers["X-Lynkr-Model"] == MODEL_ID
    events = await read_events(resp)
    assert_well_formed(events)
    json_deltas = [d["delta"]["partial_json"] for _, d in events
                   if d["type"] == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert len(json_deltas) == 4  # forwarded as Bedrock sent them, not buffered into one
    message = fold_events(d for _, d in events)
    assert message["content"] == [
        {"type": "thinking", "thinking": "User wants a file.", "signature": SIGNATURE},
        {"type": "text", "text": "Creating it."},
        {"type": "tool_use", "id": "tooluse_w1", "name": "Write",
         "input": {"file_path": "/tmp/x/hello.txt", "content": "hi"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 120, "output_tokens": 30, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 100}
    assert message["model"] == "claude-sonnet-4-5-20250929"
    [call] = bedrock.fake.calls
    assert (call.operation, call.model, call.auth) == ("converse-stream", MODEL_ID, "bearer")
    sent = bedrock.fake.script.requests[0]
    assert sent["messages"] == [{"role": "user", "content": [{"text": "Say hi"}]}]
    assert sent["inferenceConfig"] == {"maxTokens": 1024}
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["name"] == "Write"
    assert bedrock.fake.script.headers[0]["Authorization"] == f"Bearer {API_KEY}"


async def test_non_stream_answer(lynkr_bedrock):
    client, bedrock = lynkr_bedrock
    bedrock.fake.script.enqueue(Answer(text="Hi!", finish="max_tokens", prompt_tokens=9, completion_tokens=2))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.status == 200
    body = await resp.json()
    assert body["content"] == [{"type": "text", "text": "Hi!"}]
    assert body["stop_reason"] == "max_tokens"
    assert body["usage"]["input_tokens"] == 9 and body["usage"]["output_tokens"] == 2
    assert body["id"].startswith("msg_")
    assert bedrock.fake.calls[0].operation == "converse"


async def test_stream_and_non_stream_give_the_same_message(lynkr_bedrock):
    client, bedrock = lynkr_bedrock
    answer = Answer(text="Über 設定 ✓", reasoning="think", tool_calls=[WRITE], pieces=5)
    bedrock.fake.script.enqueue(answer, answer)
    streamed = fold_events(d for _, d in await read_events(
        await client.post("/v1/messages", json=claude_request(stream=True, tools=TOOLS))))
    whole = await (await client.post("/v1/messages", json=claude_request(tools=TOOLS))).json()
    assert {**streamed, "id": ""} == {**whole, "id": ""}


async def test_full_history_with_tools_and_images_reaches_bedrock(lynkr_bedrock):
    client, bedrock = lynkr_bedrock
    bedrock.fake.script.enqueue(Answer(text="It is a cat."))
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    messages = [
        {"role": "user", "content": "Take a screenshot"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I will use the tool.", "signature": SIGNATURE},
            {"type": "tool_use", "id": "tooluse_s1", "name": "Screenshot", "input": {"region": "all"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tooluse_s1", "content": [image]},
                                     {"type": "text", "text": "What is in it?"}]},
    ]
    resp = await client.post("/v1/messages", json=claude_request(
        stream=True, messages=messages, tools=[{"name": "Screenshot", "input_schema": {"type": "object"}}],
        thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=4096))
    assert fold_events(d for _, d in await read_events(resp))["content"] == [{"type": "text", "text": "It is a cat."}]
    sent = bedrock.fake.script.requests[0]
    assert sent["messages"][1:] == [
        {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "I will use the tool.", "signature": SIGNATURE}}},
            {"toolUse": {"toolUseId": "tooluse_s1", "name": "Screenshot", "input": {"region": "all"}}}]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "tooluse_s1", "status": "success",
                            "content": [{"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]}},
            {"text": "What is in it?"}]},
    ]
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}


async def test_model_names_map_and_arns_travel_as_one_path_segment(bedrock, aiohttp_client):
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    client = await aiohttp_client(create_app(bedrock_settings(bedrock, small_fast_model=arn)))
    for _ in range(3):
        bedrock.fake.script.enqueue(Answer(text="x"))
    await client.post("/v1/messages", json=claude_request(model="claude-opus-4-8"))
    await client.post("/v1/messages", json=claude_request(model="claude-haiku-4-5-20251001"))
    await client.post("/v1/messages", json=claude_request(model="amazon.nova-pro-v1:0"))
    assert [c.model for c in bedrock.fake.calls] == [MODEL_ID, arn, "amazon.nova-pro-v1:0"]
    assert "%2F" in bedrock.fake.calls[1].raw_path  # the ARN's "/" does not split the path


async def test_pings_while_bedrock_is_silent(bedrock, aiohttp_client):
    client = await aiohttp_client(create_app(bedrock_settings(bedrock, stream_ping_interval=0.05)))
    bedrock.fake.script.enqueue(Answer(text="slow answer", pieces=2, delay=0.1))
    events = await read_events(await client.post("/v1/messages", json=claude_request(stream=True)))
    assert_well_formed(events)
    assert any(d["type"] == "ping" for _, d in events)
    assert fold_events(d for _, d in events)["content"][0]["text"] == "slow answer"


# --- SigV4 --------------------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., None]:
    def setup(**values: str) -> None:
        isolate_aws(monkeypatch, tmp_path, **values)
    return setup


SIGV4_HEADER = re.compile(r"^AWS4-HMAC-SHA256 Credential=AKIDFAKEBEDROCK00001/\d{8}/us-east-1/bedrock/aws4_request, "
                          r"SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$")


@pytest.mark.parametrize("stream", [False, True])
async def test_sigv4_with_credentials_from_the_environment(aiohttp_server, aiohttp_client, aws_env, stream):
    aws_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    bedrock = await start_fake(aiohttp_server, FakeAuth())
    client = await aiohttp_client(create_app(bedrock_settings(bedrock, api_key=None)))
    bedrock.fake.script.enqueue(Answer(text="signed!"), Answer(text="again"))
    for text in ("signed!", "again"):  # credentials are found once, each request signed anew
        resp = await client.post("/v1/messages", json=claude_request(stream=stream))
        assert resp.status == 200, await resp.text()
        if stream:
            assert fold_events(d for _, d in await read_events(resp))["content"][0]["text"] == text
        else:
            assert (await resp.json())["content"][0]["text"] == text
    assert [c.auth for c in bedrock.fake.calls] == ["sigv4", "sigv4"]
    headers = bedrock.fake.script.headers[0]
    assert SIGV4_HEADER.match(headers["Authorization"]), headers["Authorization"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", headers["X-Amz-Date"])
    assert "X-Amz-Security-Token" not in headers


async def test_sigv4_with_a_session_token_and_an_arn_model(aiohttp_server, aiohttp_client, aws_env):
    aws_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_SESSION_TOKEN="FwoGZXIvYXdzEfake//=")
    bedrock = await start_fake(aiohttp_server, FakeAuth(session_token="FwoGZXIvYXdzEfake//="))
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    client = await aiohttp_client(create_app(bedrock_settings(bedrock, api_key=None, aws_bedrock_model_id=arn)))
    bedrock.fake.script.enqueue(Answer(text="ok"))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 200, await resp.text()  # the fake recomputed the signature over the encoded path
    assert bedrock.fake.calls[0].model == arn
    assert bedrock.fake.script.headers[0]["X-Amz-Security-Token"] == "FwoGZXIvYXdzEfake//="


async def test_sigv4_with_the_wrong_secret_is_a_permission_error(aiohttp_server, aiohttp_client, aws_env):
    aws_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY="not/the/right/secret")
    bedrock = await start_fake(aiohttp_server, FakeAuth())
    client = await aiohttp_client(create_app(bedrock_settings(bedrock, api_key=None)))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.status == 403
    error = (await resp.json())["error"]
    assert error["type"] == "permission_error"
    assert "signature we calculated does not match" in error["message"]
    assert "bedrock:InvokeModel" in error["message"]  # the hint says what to check
    assert bedrock.fake.script.requests == []  # refused at the door


async def test_no_credentials_anywhere_is_an_actionable_401(bedrock, aiohttp_client, aws_env):
    aws_env()
    client = await aiohttp_client(create_app(bedrock_settings(bedrock, api_key=None)))
    for stream in (False, True):
        resp = await client.post("/v1/messages", json=claude_request(stream=stream))
        assert resp.status == 401
        error = (await resp.json())["error"]
        assert error["type"] == "authentication_error"
        assert "AWS_BEDROCK_API_KEY" in error["message"] and "AWS_ACCESS_KEY_ID" in error["message"]
    assert bedrock.fake.calls == []


async def test_a_wrong_api_key_is_refused(bedrock, aiohttp_client):
    client = await aiohttp_client(create_app(bedrock_settings(bedrock, api_key="ABSK-wrong")))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.status == 403
    assert "check AWS_BEDROCK_API_KEY" in (await resp.json())["error"]["message"]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "want_status", "want_type", "phrases"),
    [
        (aws_error(403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
         403, "permission_error", ["don't have access", "check AWS_BEDROCK_API_KEY"]),
        (aws_error(403, "AccessDeniedException", "User: arn:aws:iam::1:user/x is not authorized", key="Message"),
         403, "permission_error", ["is not authorized"]),
        (aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again."),
         429, "rate_limit_error", ["Too many requests"]),
        (aws_error(400, "ValidationException", "messages.1.content: blank text"), 400, "invalid_request_error",
         ["blank text"]),
        (aws_error(400, "ValidationException", "Invocation of model ID anthropic.claude-sonnet-4-5 with on-demand "
                                               "throughput isn't supported."),
         400, "invalid_request_error", ["on-demand throughput", "inference profile ID"]),
        (aws_error(404, "ResourceNotFoundException", "Model not found."), 404, "not_found_error",
         ["Model not found", "inference profile ID"]),
        (aws_error(408, "ModelTimeoutException", "Model timed out."), 504, "timeout_error", ["timed out"]),
        (aws_error(500, "InternalServerException", "Internal error."), 500, "api_error", ["Internal error"]),
        (aws_error(503, "ServiceUnavailableException", "Service unavailable."), 529, "overloaded_error",
         ["unavailable"]),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_bedrock_errors_map_to_anthropic_errors(lynkr_bedrock, failure, want_status, want_type, phrases,
                                                      stream):
    client, bedrock = lynkr_bedrock
    bedrock.fake.script.enqueue(failure)
    resp = await client.post("/v1/messages", json=claude_request(stream=stream))
    assert resp.status == want_status
    body = await resp.json()
    assert body["type"] == "error" and body["error"]["type"] == want_type
    for phrase in phrases:
        assert phrase in body["error"]["message"]
    assert "bedrock" in body["error"]["message"]
    assert "Traceback" not in await resp.text()


async def test_exception_frame_mid_stream_becomes_an_error_event(lynkr_bedrock):
    client, bedrock = lynkr_bedrock
    events = render_events(Answer(text="partial answer", pieces=2))
    bedrock.fake.script.enqueue(Raw(frames(events[:3]) + exception_frame("throttlingException", "Slow down."),
                                    content_type=EVENT_STREAM))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 200
    got = await read_events(resp)
    assert [d["type"] for _, d in got[:3]] == ["message_start", "content_block_start", "content_block_delta"]
    assert got[-1][0] == "error"
    assert got[-1][1]["error"]["type"] == "rate_limit_error"
    assert "throttlingException: Slow down." in got[-1][1]["error"]["message"]
    # the server is fine afterwards
    bedrock.fake.script.enqueue(Answer(text="after"))
    assert (await client.post("/v1/messages", json=claude_request())).status == 200


@pytest.mark.parametrize(
    ("exception", "want_status", "want_type"),
    [("throttlingException", 429, "rate_limit_error"), ("validationException", 400, "invalid_request_error"),
     ("modelStreamErrorException", 500, "api_error"), ("serviceUnavailableException", 529, "overloaded_error")],
)
async def test_exception_frame_before_any_event_is_an_http_error(lynkr_bedrock, exception, want_status, want_type):
    client, bedrock = lynkr_bedrock
    bedrock.fake.script.enqueue(Raw(exception_frame(exception, "refused"), content_type=EVENT_STREAM))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == want_status  # nothing was sent yet: a real status, retryable by the client
    assert (await resp.json())["error"]["type"] == want_type


@pytest.mark.parametrize("damage", ["dropped-mid-frame", "bad-crc"])
async def test_broken_stream_ends_with_an_error_event(lynkr_bedrock, damage):
    client, bedrock = lynkr_bedrock
    data = bytearray(frames(render_events(Answer(text="some text here", pieces=3))))
    if damage == "bad-crc":
        data[-30] ^= 0xFF  # inside the last frames: the first events are already out
        bedrock.fake.script.enqueue(Raw(bytes(data), content_type=EVENT_STREAM))
    else:
        bedrock.fake.script.enqueue(Raw(bytes(data[: len(data) // 2]), content_type=EVENT_STREAM, drop_after=True))
    resp = await client.post("/v1/messages", json=claude_request(stream=True))
    assert resp.status == 200
    got = await read_events(resp)
    assert got[0][1]["type"] == "message_start"
    assert got[-1][0] == "error" and got[-1][1]["error"]["type"] == "api_error"


async def test_url_images_are_refused_before_calling_bedrock(lynkr_bedrock):
    client, bedrock = lynkr_bedrock
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    resp = await client.post("/v1/messages", json=claude_request(messages=[{"role": "user", "content": [image]}]))
    assert resp.status == 400
    assert "base64" in (await resp.json())["error"]["message"]
    assert bedrock.fake.calls == []


# --- settings -----------------------------------------------------------------------------------


def test_settings_need_no_key_and_resolve_the_regional_url(monkeypatch, tmp_path):
    isolate_aws(monkeypatch, tmp_path)
    settings = make_settings(model_provider="bedrock")
    check_settings(settings)  # SigV4 from the credential chain needs no variable of lynkr's
    backend = backend_settings("bedrock", settings)
    assert backend.endpoint == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert backend.api_key is None
    assert backend.model == settings.aws_bedrock_model_id
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert backend_settings("bedrock", make_settings()).endpoint == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    monkeypatch.setenv("AWS_BEDROCK_REGION", "ap-northeast-1")  # the Bedrock-specific one wins
    assert make_settings().bedrock_region == "ap-northeast-1"
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSK-from-the-aws-sdk-variable")  # AWS's own name works too
    settings = make_settings(model_provider="bedrock")
    assert backend_settings("bedrock", settings).api_key == "ABSK-from-the-aws-sdk-variable"
    assert "ABSK-from-the-aws-sdk-variable" not in repr(settings)


def test_endpoint_override(monkeypatch, tmp_path):
    isolate_aws(monkeypatch, tmp_path, AWS_BEDROCK_ENDPOINT="https://vpce-0a1.bedrock-runtime.us-east-1.vpce.amazonaws.com")
    settings: Settings = make_settings(model_provider="bedrock")
    assert backend_settings("bedrock", settings).endpoint == \
        "https://vpce-0a1.bedrock-runtime.us-east-1.vpce.amazonaws.com"


# --- the official SDK ----------------------------------------------------------------------------


@pytest.fixture
async def sdk(bedrock: BedrockUpstream, aiohttp_server: Any):
    server = await aiohttp_server(create_app(bedrock_settings(bedrock)))
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")).rstrip("/"), api_key="dummy", max_retries=0)
    yield client, bedrock
    await client.close()


SDK_ANSWER = Answer(text="I will write it.", reasoning="The user wants hello.txt.",
                    tool_calls=[ToolCall("Write", json.dumps({"file_path": "/w/hello.txt", "content": "hi"}),
                                         id="tooluse_1")],
                    pieces=5, prompt_tokens=300, completion_tokens=40, cached_tokens=200)


def check_sdk_message(message: anthropic.types.Message) -> None:
    thinking, text, tool = message.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert thinking.thinking == "The user wants hello.txt." and thinking.signature == SIGNATURE
    assert isinstance(text, anthropic.types.TextBlock) and text.text == "I will write it."
    assert isinstance(tool, anthropic.types.ToolUseBlock)
    assert (tool.id, tool.name, tool.input) == ("tooluse_1", "Write", {"file_path": "/w/hello.txt", "content": "hi"})
    assert message.stop_reason == "tool_use"
    assert message.model == "claude-opus-4-8"
    assert (message.usage.input_tokens, message.usage.output_tokens, message.usage.cache_read_input_tokens) == \
        (300, 40, 200)


async def test_sdk_messages_stream_helper(sdk):
    client, bedrock = sdk
    bedrock.fake.script.enqueue(SDK_ANSWER)
    seen: list[str] = []
    async with client.messages.stream(model="claude-opus-4-8", max_tokens=4096, tools=TOOLS,
                                      thinking={"type": "enabled", "budget_tokens": 1024},
                                      messages=[{"role": "user", "content": "create hello.txt"}]) as stream:
        async for event in stream:
            seen.append(event.type)
        message = await stream.get_final_message()
    check_sdk_message(message)
    assert seen[0] == "message_start" and seen[-1] == "message_stop"
    assert "input_json" in seen and "thinking" in seen and "signature" in seen and "text" in seen
    assert bedrock.fake.script.requests[0]["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024}}


async def test_sdk_messages_create(sdk):
    client, bedrock = sdk
    bedrock.fake.script.enqueue(SDK_ANSWER)
    message = await client.messages.create(model="claude-opus-4-8", max_tokens=2048, tools=TOOLS,
                                           messages=[{"role": "user", "content": "create hello.txt"}])
    check_sdk_message(message)


async def test_sdk_sees_bedrock_throttling_as_rate_limit(sdk):
    client, bedrock = sdk
    bedrock.fake.script.enqueue(aws_error(429, "ThrottlingException", "Too many requests"))
    with pytest.raises(anthropic.RateLimitError):
        await client.messages.create(model="claude-opus-4-8", max_tokens=64,
                                     messages=[{"role": "user", "content": "hi"}])


# --- the fake is strict: what it accepts, real Bedrock would parse -------------------------------


@pytest.mark.parametrize("model", [MODEL_ID, "anthropic.claude-3-5-sonnet-20241022-v2:0", "amazon.nova-pro-v1:0",
                                   "global.anthropic.claude-opus-4-6-v1"])
def test_converted_claude_code_request_passes_the_service_model(model):
    body = anthropic_to_converse(claude_code_request(), BedrockTarget(model))
    assert validate_request("converse-stream", model, body) is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"messages": [{"role": "user", "content": [{"texts": "x"}]}]}, "Unknown parameter"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}], "inferenceConfig": {"maxTokens": "9"}},
         "Invalid type"),
        ({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}, "must start with a user message"),
        ({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]},
         "alternate"),
        ({"messages": [{"role": "user", "content": [{"text": " "}]}]}, "is blank"),
        ({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "t", "name": "T", "input": {}}}]}]}, "toolConfig field must be defined"),
    ],
)
def test_the_fake_refuses_what_bedrock_refuses(body, problem):
    assert problem in (validate_request("converse", MODEL_ID, body) or "")


async def test_recorded_claude_code_request_through_lynkr(lynkr_bedrock):
    client, bedrock = lynkr_bedrock
    bedrock.fake.script.enqueue(Answer(text="Both read."))
    resp = await client.post("/v1/messages?beta=true", json=claude_code_request())
    assert resp.status == 200, await resp.text()
    assert fold_events(d for _, d in await read_events(resp))["content"] == [{"type": "text", "text": "Both read."}]
    sent = bedrock.fake.script.requests[0]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["additionalModelRequestFields"]["thinking"]["type"] == "enabled"
