"""Chat Completions and Responses clients through lynkr, judged by the official openai SDK helpers."""

from __future__ import annotations

import json

import openai
import pytest

from lynkr.server import create_app
from tests.conftest import ollama_settings, openai_settings
from tests.fakes.script import Answer, Failure, Raw, ToolCall

CHAT_TOOLS = [{"type": "function", "function": {
    "name": "exec_command", "description": "Run a shell command",
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}]
EXEC = ToolCall("exec_command", json.dumps({"cmd": "printf 'hi\\n' > hello.txt"}), id="call_x1")


@pytest.fixture(params=["openai", "ollama"])
async def sdk(request, openai_upstream, ollama_upstream, aiohttp_server):
    """The openai SDK against lynkr; backend 'openai' = chat passthrough, 'ollama' = through the hub."""
    upstream = openai_upstream if request.param == "openai" else ollama_upstream
    settings = openai_settings(upstream) if request.param == "openai" else ollama_settings(upstream)
    server = await aiohttp_server(create_app(settings))
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="dummy", max_retries=0)
    yield client, upstream.script, request.param
    await client.close()


# --- Chat Completions -----------------------------------------------------------------------------


async def test_chat_create(sdk):
    client, script, backend = sdk
    script.enqueue(Answer(text="Hello!", prompt_tokens=12, completion_tokens=3))
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 12
    sent = script.requests[0]
    if backend == "openai":  # passthrough: the client's body, model kept
        assert sent["model"] == "gpt-4o-mini"
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["messages"][1]["content"] == "hi"


async def test_chat_stream_helper_with_tool_call(sdk):
    client, script, backend = sdk
    script.enqueue(Answer(text="Running it.", tool_calls=[EXEC], pieces=4))
    async with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "create hello.txt"}], tools=CHAT_TOOLS,
        stream_options={"include_usage": True},
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Running it."
    [call] = message.tool_calls or []
    assert call.function.name == "exec_command"
    assert json.loads(call.function.arguments) == {"cmd": "printf 'hi\\n' > hello.txt"}
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.completion_tokens == 7
    if backend == "ollama":
        assert script.requests[0]["tools"][0]["function"]["name"] == "exec_command"


async def test_chat_tool_result_round_trip(sdk):
    client, script, backend = sdk
    script.enqueue(Answer(text="Done."))
    completion = await client.chat.completions.create(model="gpt-4o", tools=CHAT_TOOLS, messages=[
        {"role": "user", "content": "create hello.txt"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_x1", "type": "function", "function": {"name": "exec_command", "arguments": '{"cmd": "ls"}'}}]},
        {"role": "tool", "tool_call_id": "call_x1", "content": "hello.txt"},
    ])
    assert completion.choices[0].message.content == "Done."
    sent = script.requests[0]["messages"]
    if backend == "ollama":
        assert sent[1]["tool_calls"] == [{"function": {"name": "exec_command", "arguments": {"cmd": "ls"}}}]
        assert sent[2] == {"role": "tool", "content": "hello.txt", "tool_name": "exec_command"}
    else:
        assert sent[2] == {"role": "tool", "tool_call_id": "call_x1", "content": "hello.txt"}


async def test_chat_reasoning_is_streamed_as_reasoning_content(openai_upstream, ollama_upstream, aiohttp_client):
    client = await aiohttp_client(create_app(ollama_settings(ollama_upstream)))
    ollama_upstream.script.enqueue(Answer(text="42", reasoning="Think hard."))
    resp = await client.post("/v1/chat/completions", json={
        "model": "qwen3:8b", "stream": True, "messages": [{"role": "user", "content": "?"}]})
    lines = [json.loads(line[6:]) for line in (await resp.text()).split("\n\n") if line.startswith("data: {")]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in lines if c["choices"])
    assert reasoning == "Think hard."
    assert (await resp.text()).rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "gpt-4o"}, "messages"),
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages.0.content.0.type"),
])
async def test_chat_bad_input_is_400_in_openai_shape(lynkr_ollama, body, param):
    client, script = lynkr_ollama
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert script.requests == []


async def test_chat_malformed_json_is_400(lynkr_openai):
    client, _ = lynkr_openai
    resp = await client.post("/v1/chat/completions", data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_upstream_rate_limit_reaches_client_as_openai_error(sdk, stream):
    client, script, _ = sdk
    script.enqueue(Failure(429, {"error": {"message": "slow down"}}, {"retry-after": "3"}))
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o", stream=stream, messages=[{"role": "user", "content": "x"}])
    assert "slow down" in str(info.value)
    assert info.value.response.headers["retry-after"] == "3"


async def test_chat_passthrough_drop_mid_stream_ends_with_error_chunk(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Raw(b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
                       b'[{"index":0,"delta":{"content":"par"}}]}\n\n', drop_after=True))
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    text = await resp.text()
    assert '"content":"par"' in text
    last = [p for p in text.split("\n\n") if p.strip()][-1]
    assert json.loads(last.removeprefix("data: "))["error"]["type"] == "server_error"


# --- Responses (Codex) ---------------------------------------------------------------------------

CODEX_TOOLS = [
    {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
     "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
    {"type": "custom", "name": "apply_patch", "description": "Apply a patch",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}},
    {"type": "namespace", "name": "multi_agent_v1", "description": "agents",
     "tools": [{"type": "function", "name": "spawn", "description": "Spawn an agent",
                "parameters": {"type": "object", "properties": {"task": {"type": "string"}}}}]},
    {"type": "web_search", "external_web_access": False},
]
CODEX_INPUT = [
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "create hello.txt"}]},
]


async def test_responses_stream_helper_with_function_call(sdk):
    client, script, backend = sdk
    script.enqueue(Answer(text="On it.", reasoning="Need a file.", tool_calls=[EXEC], pieces=3,
                          prompt_tokens=100, completion_tokens=20))
    async with client.responses.stream(model="gpt-5.5", input=CODEX_INPUT, tools=CODEX_TOOLS,
                                       reasoning={"effort": "medium"}, store=False) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in kinds
    assert final.status == "completed"
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.name, c.call_id, json.loads(c.arguments)) for c in calls] == [
        ("exec_command", "call_x1" if backend == "openai" else calls[0].call_id, {"cmd": "printf 'hi\\n' > hello.txt"})]
    assert final.output_text == "On it."
    assert final.usage is not None and final.usage.output_tokens == 20
    sent = script.requests[0]
    names = [t["function"]["name"] for t in sent["tools"]]
    assert names == ["exec_command", "apply_patch", "multi_agent_v1__spawn"]  # web_search left out on purpose
    assert sent["messages"][0]["role"] == "system" and "You are Codex." in sent["messages"][0]["content"]


async def test_responses_custom_and_namespaced_tools_come_back_in_their_own_shape(sdk):
    client, script, _ = sdk
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"
    script.enqueue(Answer(tool_calls=[ToolCall("apply_patch", json.dumps({"input": patch}), id="call_p"),
                                      ToolCall("multi_agent_v1__spawn", json.dumps({"task": "t"}), id="call_s")]))
    async with client.responses.stream(model="gpt-5.5", input=CODEX_INPUT, tools=CODEX_TOOLS) as stream:
        final = await stream.get_final_response()
    custom, spawn = final.output
    assert custom.type == "custom_tool_call" and custom.name == "apply_patch" and custom.input == patch
    assert spawn.type == "function_call" and spawn.name == "spawn" and spawn.namespace == "multi_agent_v1"


async def test_responses_second_turn_carries_tool_outputs(sdk):
    client, script, backend = sdk
    script.enqueue(Answer(text="Created hello.txt."))
    response = await client.responses.create(model="gpt-5.5", tools=CODEX_TOOLS, input=[
        *CODEX_INPUT,
        {"type": "function_call", "id": "fc_1", "call_id": "call_x1", "name": "exec_command",
         "arguments": '{"cmd":"ls"}'},
        {"type": "function_call_output", "id": "fco_1", "call_id": "call_x1", "output": "Process exited with code 0"},
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin"},
        {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done!"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
    ])
    assert response.output_text == "Created hello.txt."
    sent = script.requests[0]["messages"]
    roles = [m["role"] for m in sent]
    if backend == "openai":
        assert roles == ["system", "user", "assistant", "tool", "assistant", "tool"]
        assert sent[4]["tool_calls"][0]["function"] == {"name": "apply_patch", "arguments": '{"input":"*** Begin"}'}
    else:
        assert roles == ["system", "user", "assistant", "tool", "assistant", "tool"]


async def test_responses_previous_response_id_rebuilds_the_conversation(sdk):
    client, script, _ = sdk
    script.enqueue(Answer(tool_calls=[EXEC]), Answer(text="All done."))
    first = await client.responses.create(model="gpt-5.5", input=CODEX_INPUT, tools=CODEX_TOOLS, store=False)
    call = next(o for o in first.output if o.type == "function_call")
    second = await client.responses.create(model="gpt-5.5", tools=CODEX_TOOLS, previous_response_id=first.id,
                                           input=[{"type": "function_call_output", "call_id": call.call_id,
                                                   "output": "ok"}])
    assert second.output_text == "All done."
    assert len(script.requests[1]["messages"]) == 4  # system, user, assistant tool call, tool output
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5.5", input="x", previous_response_id="resp_nope")
    assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]


async def test_responses_max_tokens_is_incomplete(sdk):
    client, script, _ = sdk
    script.enqueue(Answer(text="Trunc", finish="length"))
    async with client.responses.stream(model="gpt-5.5", input="write a lot") as stream:
        kinds = [e.type async for e in stream]
    assert kinds[-1] == "response.incomplete"


async def test_responses_backend_failure_mid_stream_is_response_failed(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Raw(b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
                       b'data: {"error":{"message":"model crashed"}}\n\n'))
    resp = await client.post("/v1/responses", json={"model": "gpt-5.5", "input": "x", "stream": True})
    frames = [f for f in (await resp.text()).split("\n\n") if f.strip()]
    last = json.loads(frames[-1].split("data: ", 1)[1])
    assert last["type"] == "response.failed"
    assert "model crashed" in last["response"]["error"]["message"]
    seqs = [json.loads(f.split("data: ", 1)[1])["sequence_number"] for f in frames]
    assert seqs == list(range(len(seqs)))


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "gpt-5.5"}, "input"),
    ({"model": "gpt-5.5", "input": [{"type": "message", "role": "pirate", "content": "x"}]}, "input.0.role"),
    ({"model": "gpt-5.5", "input": [{"type": "function_call_output", "output": "x"}]}, "input.0.call_id"),
    ({"input": "x"}, "model"),
])
async def test_responses_bad_input(lynkr_openai, body, param):
    client, _ = lynkr_openai
    resp = await client.post("/v1/responses", json=body)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == param


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_passthrough_usage_is_recorded(openai_upstream, aiohttp_client, stream):
    from lynkr.server.keys import OBSERVERS

    app = create_app(openai_settings(openai_upstream))
    records: list = []
    app[OBSERVERS].append(records.append)
    client = await aiohttp_client(app)
    openai_upstream.script.enqueue(Answer(text="hi", prompt_tokens=40, completion_tokens=6, cached_tokens=30))
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "stream": stream, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "x"}]})
    await resp.read()
    [record] = records
    assert (record.client_model, record.provider) == ("gpt-4o", "openai")
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (10, 6, 30)
