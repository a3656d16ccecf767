"""Anthropic Messages ⇄ OpenAI Responses API backends: requests, answers and streams (pure functions)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lynkr.convert.anthropic_stream import fold_events
from lynkr.convert.responses_backend import (
    PassthroughWatch,
    ResponsesTarget,
    anthropic_to_responses,
    response_error,
    responses_stream_to_anthropic,
    responses_to_anthropic,
    responses_usage,
)
from lynkr.convert.signatures import prepare_thinking, tag
from lynkr.errors import (
    InvalidRequest,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
)
from tests.fakes.responses_server import State, check
from tests.transcripts import (
    MODEL,
    aiter,
    assert_stream_grammar,
    chunkings,
    claude_code_request,
    collect,
    decode_sse_json,
    inside_utf8_chars,
    line_endings,
    random_splits,
    req,
    shape,
    split_at,
)

HERE = Path(__file__).parent / "transcripts"
TRANSCRIPTS = ("responses_reasoning_parallel_tools", "responses_text_incomplete")
MSG_ID = "msg_0123456789abcdef01234567"
GPT5 = ResponsesTarget(backend="openai", model="gpt-5.1-codex", reasoning=True)
GPT4O = ResponsesTarget(backend="azure-openai", model="gpt-4o")
ENCRYPTED = "gAAAAABpH1x2Zm9vYmFyLWVuY3J5cHRlZC1yZWFzb25pbmctY29udGVudC0wMTIzNDU2Nzg5YWJjZGVm"
PNG = "iVBORw0KGgo="


def sse(name: str) -> bytes:
    return (HERE / f"{name}.sse").read_bytes()


def body(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text("utf-8"))


def accepted(request: dict[str, Any], state: State | None = None) -> dict[str, Any]:
    """``request``, after the fake server's copy of the real API's checks passed on it."""
    check(request, state or State())
    return request


# --- requests ------------------------------------------------------------------------------------


def test_claude_code_request_to_a_reasoning_model() -> None:
    cc = claude_code_request()
    sent = accepted(anthropic_to_responses(prepare_thinking(cc, "openai"), GPT5, stream=True))
    # Claude Code's billing line is left out; its two system blocks are the instructions
    assert sent["instructions"] == ("You are a Claude agent, built on Anthropic's Claude Agent SDK.\n\n"
                                    "You are an interactive agent that helps users with software engineering "
                                    "tasks. Use the tools available to you.")
    assert sent["model"] == "gpt-5.1-codex" and sent["store"] is False and sent["stream"] is True
    assert sent["max_output_tokens"] == 64000
    assert sent["include"] == ["reasoning.encrypted_content"]
    assert sent["reasoning"] == {"effort": "high"}  # Claude Code's adaptive thinking at high effort
    assert "temperature" not in sent and "stop" not in sent
    items = sent["input"]
    assert [(i["type"], i.get("role")) for i in items] == [
        ("message", "user"), ("message", "developer"), ("message", "assistant"), ("function_call", None),
        ("function_call", None), ("function_call_output", None), ("function_call_output", None)]
    assert items[0]["content"][1] == {"type": "input_text",
                                      "text": "Read README.md and config.toml, then grep for 設定"}
    # Claude's own thinking (an Anthropic signature) is not this backend's to read: dropped
    assert items[2] == {"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                                             "text": "Reading both."}]}
    assert items[3] == {"type": "function_call", "call_id": "toolu_01A", "name": "Read",
                        "arguments": '{"file_path":"/srv/app/README.md"}'}
    assert items[6] == {"type": "function_call_output", "call_id": "toolu_01B", "output": "Error: File does not exist."}
    # server tools (web_search) have no schema here: left out; every tool non-strict, schemas cleaned
    assert [t["name"] for t in sent["tools"]] == ["Read", "WebFetch", "TaskCreate"]
    read = sent["tools"][0]
    assert read["type"] == "function" and read["strict"] is False
    assert "$schema" not in json.dumps(sent["tools"]) and "$comment" not in json.dumps(sent["tools"])
    assert read["parameters"]["properties"]["limit"] == {"type": "integer", "exclusiveMinimum": 0}
    assert "context_management" not in sent and "output_config" not in sent and "thinking" not in sent


def test_strict_tools_would_be_refused() -> None:
    """Why ``strict: false``: the Responses API makes tools strict by default, and strict mode refuses
    Claude Code's schemas (optional properties); the fake server checks this as the real one does."""
    sent = anthropic_to_responses(prepare_thinking(claude_code_request(), "openai"), GPT5, stream=False)
    strict = copy.deepcopy(sent)
    for tool in strict["tools"]:
        del tool["strict"]
    with pytest.raises(Exception, match="additionalProperties"):
        check(strict, State())
    check(sent, State())


def test_a_non_reasoning_model_gets_sampling_and_no_reasoning() -> None:
    sent = accepted(anthropic_to_responses(req(temperature=0, top_p=0.9, top_k=5, stop_sequences=["END"],
                                               thinking={"type": "enabled", "budget_tokens": 4096}),
                                           GPT4O, stream=False))
    assert sent == {"model": "gpt-4o", "store": False, "max_output_tokens": 1024, "temperature": 0, "top_p": 0.9,
                    "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]}


@pytest.mark.parametrize(("thinking", "config", "effort"), [
    ({"type": "enabled", "budget_tokens": 2048}, None, "low"),
    ({"type": "enabled", "budget_tokens": 8000}, None, "medium"),
    ({"type": "adaptive"}, None, "medium"),
    ({"type": "adaptive"}, {"effort": "max"}, "high"),
    ({"type": "enabled", "budget_tokens": 2048}, {"effort": "high"}, "high"),
])
def test_reasoning_effort(thinking: dict[str, Any], config: dict[str, Any] | None, effort: str) -> None:
    over: dict[str, Any] = {"thinking": thinking}
    if config:
        over["output_config"] = config
    assert anthropic_to_responses(req(**over), GPT5, stream=False)["reasoning"] == {"effort": effort}


def test_no_thinking_still_asks_a_reasoning_model_for_its_encrypted_reasoning() -> None:
    sent = anthropic_to_responses(req(temperature=0.2), GPT5, stream=False)
    assert "reasoning" not in sent and "temperature" not in sent
    assert sent["include"] == ["reasoning.encrypted_content"]


@pytest.mark.parametrize(("model", "asked", "sent"), [
    ("gpt-4o", 64000, 16384), ("gpt-5.1-codex", 200000, 128000), ("my-deployment", 64000, 64000),
    ("gpt-4o", 1, 16),  # Claude Code's max_tokens=1 probe: the API's minimum is 16
])
def test_max_output_tokens(model: str, asked: int, sent: int) -> None:
    out = accepted(anthropic_to_responses(req(max_tokens=asked), ResponsesTarget("openai", model), stream=False))
    assert out["max_output_tokens"] == sent


def test_configured_output_limit() -> None:
    target = ResponsesTarget("openai", "gpt-5", max_output_tokens=8000)
    assert anthropic_to_responses(req(max_tokens=32000), target, stream=False)["max_output_tokens"] == 8000


TOOL = {"name": "Bash", "description": "Run", "input_schema": {"type": "object", "properties": {
    "command": {"type": "string"}}, "required": ["command"]}}


@pytest.mark.parametrize(("choice", "expected"), [
    (None, None), ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "Bash"}, {"type": "function", "name": "Bash"}),
])
def test_tool_choice(choice: dict[str, Any] | None, expected: Any) -> None:
    over: dict[str, Any] = {"tools": [TOOL]}
    if choice:
        over["tool_choice"] = choice
    sent = accepted(anthropic_to_responses(req(**over), GPT4O, stream=False))
    assert sent.get("tool_choice") == expected
    assert sent["tools"] == [{"type": "function", "name": "Bash", "description": "Run", "strict": False,
                              "parameters": TOOL["input_schema"]}]


def test_disable_parallel_tool_use() -> None:
    sent = anthropic_to_responses(req(tools=[TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True}),
                                  GPT4O, stream=False)
    assert sent["parallel_tool_calls"] is False


def test_structured_output_becomes_text_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    sent = accepted(anthropic_to_responses(req(output_config={"format": {"type": "json_schema", "schema": schema}}),
                                           GPT4O, stream=False))
    assert sent["text"] == {"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": False}}


def test_images_documents_and_tool_result_images() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    url_image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    pdf = {"type": "document", "title": "spec.pdf",
           "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    text_doc = {"type": "document", "title": "notes", "source": {"type": "text", "media_type": "text/plain",
                                                                 "data": "line"}}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "look"}, image, url_image, pdf, text_doc]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "text", "text": "here"}, image]},
                                     {"type": "text", "text": "what is it?"}]},
    ]
    items = accepted(anthropic_to_responses(req(messages=messages), GPT4O, stream=False))["input"]
    assert items[0]["content"] == [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
        {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        {"type": "input_text", "text": "notes\nline"},
    ]
    assert items[1]["type"] == "function_call"
    # the tool's image follows its output in a user message (an output is text), with the turn's own text
    assert items[2] == {"type": "function_call_output", "call_id": "toolu_1", "output": "here"}
    assert items[3] == {"type": "message", "role": "user", "content": [
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
        {"type": "input_text", "text": "what is it?"}]}


def test_a_file_image_is_refused_with_the_field() -> None:
    image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    with pytest.raises(InvalidRequest) as info:
        anthropic_to_responses(req(messages=[{"role": "user", "content": [image]}]), GPT4O, stream=False)
    assert info.value.field == "source.type"


def test_this_backends_reasoning_goes_back_as_a_reasoning_item() -> None:
    """Thinking signed by this backend (tagged on the way out, untagged by prepare_thinking) becomes a reasoning
    item before the items it led to; another vendor's thinking and unsigned thinking are not sent."""
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Plan.", "signature": tag(ENCRYPTED, "openai")},
            {"type": "thinking", "thinking": "Gemini's.", "signature": tag("CiQB", "gemini")},
            {"type": "thinking", "thinking": "Claude's.", "signature": "EqQBCkYIBxgC"},
            {"type": "thinking", "thinking": "Unsigned.", "signature": ""},
            {"type": "redacted_thinking", "data": "xx"},
            {"type": "text", "text": "Running."},
            {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"}]},
    ]
    prepared = prepare_thinking(req(messages=messages, tools=[TOOL]), "openai")
    sent = anthropic_to_responses(prepared, GPT5, stream=False)
    accepted(sent, State(issued={ENCRYPTED}))
    assert sent["input"][1:] == [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Plan."}], "encrypted_content": ENCRYPTED},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running."}]},
        {"type": "function_call", "call_id": "call_1", "name": "Bash", "arguments": '{"command":"ls"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
    ]


def test_the_request_is_not_mutated() -> None:
    cc = claude_code_request()
    before = copy.deepcopy(cc)
    anthropic_to_responses(cc, GPT5, stream=True)
    assert cc == before


# --- answers -------------------------------------------------------------------------------------


def test_reasoning_text_and_parallel_calls() -> None:
    message = responses_to_anthropic(body(TRANSCRIPTS[0]), model=MODEL, message_id=MSG_ID)
    assert message["id"] == MSG_ID and message["model"] == MODEL
    assert message["content"] == [
        {"type": "thinking", "signature": ENCRYPTED, "thinking": "**Reading both files**\n\nThe user wants README.md "
         "and config.toml — read them in parallel, then grep for 設定."},
        {"type": "text", "text": "Je lis les deux fichiers — puis je cherche « 設定 » ✓"},
        {"type": "tool_use", "id": "call_Rk1xqNqK2v0fJ7aT", "name": "Read",
         "input": {"file_path": "/srv/app/README.md"}},
        {"type": "tool_use", "id": "call_Rk2mB8wPz3LhQe4Y", "name": "Read",
         "input": {"file_path": "/srv/app/config.toml", "limit": 200}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 480, "output_tokens": 180, "cache_read_input_tokens": 1920,
                                "cache_creation_input_tokens": 0}


def test_incomplete_is_max_tokens() -> None:
    message = responses_to_anthropic(body(TRANSCRIPTS[1]), model=MODEL)
    assert message["stop_reason"] == "max_tokens"
    assert message["content"] == [{"type": "text", "text": "Voici une très longue réponse… 🙂 qui s'arr"}]


@pytest.mark.parametrize(("status", "details", "calls", "stop"), [
    ("completed", None, False, "end_turn"), ("completed", None, True, "tool_use"),
    ("incomplete", {"reason": "max_output_tokens"}, True, "max_tokens"),
    ("incomplete", {"reason": "content_filter"}, False, "refusal"),
])
def test_stop_reasons(status: str, details: Any, calls: bool, stop: str) -> None:
    output: list[dict[str, Any]] = [{"type": "message", "content": [{"type": "output_text", "text": "x"}]}]
    if calls:
        output.append({"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"})
    resp = {"status": status, "incomplete_details": details, "output": output}
    assert responses_to_anthropic(resp, model=MODEL)["stop_reason"] == stop


def test_refusal_is_text_and_unknown_items_are_ignored() -> None:
    resp = {"status": "completed", "output": [
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "message", "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
        {"type": "reasoning", "summary": []}]}
    message = responses_to_anthropic(resp, model=MODEL)
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["usage"]["input_tokens"] == 0


@pytest.mark.parametrize(("usage", "expected"), [
    ({"input_tokens": 100, "output_tokens": 5}, (100, 5, 0)),
    ({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 64}, "output_tokens": 5}, (36, 5, 64)),
    ({"input_tokens": 10, "input_tokens_details": {"cached_tokens": None}, "output_tokens": 0}, (10, 0, 0)),
    (None, (0, 0, 0)),
])
def test_usage(usage: Any, expected: tuple[int, int, int]) -> None:
    out = responses_usage(usage)
    assert (out["input_tokens"], out["output_tokens"], out["cache_read_input_tokens"]) == expected


@pytest.mark.parametrize(("error", "cls", "status"), [
    ({"code": "rate_limit_exceeded", "message": "slow"}, UpstreamRateLimited, None),
    ({"code": "server_error", "message": "boom"}, UpstreamServerError, None),
    ({"code": "invalid_prompt", "message": "no"}, UpstreamBadRequest, None),
    ({"code": "context_length_exceeded", "message": "long"}, UpstreamBadRequest, None),
    ({"code": "401", "message": "key"}, UpstreamAuthError, 401),
    ({"code": None, "message": "?"}, UpstreamServerError, None),
    ("plain text", UpstreamServerError, None),
])
def test_errors_are_typed(error: Any, cls: type[UpstreamError], status: int | None) -> None:
    err = response_error(error)
    assert type(err) is cls and err.upstream_status == status


@pytest.mark.parametrize("resp", [
    {"status": "failed", "error": {"code": "server_error", "message": "The model failed"}, "output": []},
    {"error": {"code": "rate_limit_exceeded", "message": "slow down"}},
])
def test_failed_answers_raise(resp: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError, match=resp["error"]["message"]):
        responses_to_anthropic(resp, model=MODEL)


@pytest.mark.parametrize("resp", [{"status": "completed"}, ["not", "a", "response"]])
def test_answers_without_output_are_bad(resp: Any) -> None:
    with pytest.raises(UpstreamBadResponse):
        responses_to_anthropic(resp, model=MODEL)


# --- streams -------------------------------------------------------------------------------------


async def translate(pieces: list[bytes]) -> list[dict[str, Any]]:
    return await collect(responses_stream_to_anthropic(aiter(decode_sse_json(pieces)), model=MODEL,
                                                       message_id=MSG_ID))


def cuttings(data: bytes) -> dict[str, list[list[bytes]]]:
    """The transcripts' chunkings, with every 2-way split thinned to the cuts that matter (the big
    ``response.created`` objects would make every offset slow): inside each event separator, each
    ``event:``/``data:`` line and each multi-byte character, and a hundred random offsets."""
    families = chunkings(data)
    wanted = {i for i in range(len(data) + 1) if data[max(0, i - 2):i + 2].strip(b"\r\n") != data[max(0, i - 2):i + 2]}
    wanted |= set(inside_utf8_chars(data)) | {i for i in range(len(data)) if data[i:i + 5] in (b"data:", b"event")}
    wanted |= {len(p[0]) for p in random_splits(data, 100, seed=11)}
    families["every-2-way-split"] = [split_at(data, i) for i in sorted(wanted)]
    return families


@pytest.mark.parametrize("name", TRANSCRIPTS)
@pytest.mark.parametrize("ending", ["lf", "crlf", "cr"])
async def test_stream_folds_to_the_non_stream_answer(name: str, ending: str) -> None:
    expected = responses_to_anthropic(body(name), model=MODEL, message_id=MSG_ID)
    data = line_endings(sse(name), ending)
    for family, cuts in cuttings(data).items():
        for pieces in cuts:
            events = await translate(pieces)
            assert_stream_grammar(events)
            assert fold_events(events) == expected, family


async def test_reasoning_parallel_tools_stream_events() -> None:
    events = await translate([sse(TRANSCRIPTS[0])])
    assert shape(events) == [
        "message_start",
        "start 0 thinking", "delta 0 thinking_delta", "delta 0 thinking_delta", "delta 0 thinking_delta",
        "delta 0 thinking_delta", "delta 0 thinking_delta", "delta 0 thinking_delta", "delta 0 signature_delta",
        "stop 0",
        "start 1 text", "delta 1 text_delta", "delta 1 text_delta", "delta 1 text_delta", "delta 1 text_delta",
        "stop 1",
        "start 2 tool_use Read", "delta 2 input_json_delta", "delta 2 input_json_delta", "delta 2 input_json_delta",
        "stop 2",
        "start 3 tool_use Read", "delta 3 input_json_delta", "delta 3 input_json_delta", "stop 3",
        "message_delta tool_use", "message_stop",
    ]
    assert events[2]["delta"] == {"type": "thinking_delta", "thinking": "**Reading"}
    assert events[4]["delta"] == {"type": "thinking_delta", "thinking": "\n\n"}  # between two summary parts
    assert events[16]["content_block"] == {"type": "tool_use", "id": "call_Rk1xqNqK2v0fJ7aT", "name": "Read",
                                           "input": {}}
    assert events[-2]["usage"] == {"input_tokens": 480, "output_tokens": 180, "cache_read_input_tokens": 1920,
                                   "cache_creation_input_tokens": 0}


async def test_message_start_comes_with_response_created() -> None:
    """The backend accepted the request: the client hears so at once, though a reasoning model may think
    for minutes before its first output (pings keep the connection alive meanwhile)."""
    events = decode_sse_json([sse(TRANSCRIPTS[0])])
    stream = responses_stream_to_anthropic(aiter(events[:1]), model=MODEL)
    first = await anext(stream)
    assert first["type"] == "message_start"
    with pytest.raises(UpstreamBadResponse, match=r"before response\.completed"):
        await anext(stream)


def _events(*items: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"sequence_number": n, **item} for n, item in enumerate(items)]


CREATED = {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "output": []}}
TEXT = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
        "delta": "par"}


async def test_response_failed_mid_stream_raises_after_what_was_sent() -> None:
    failed = {"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "server_error", "message": "The model produced invalid content."}}}
    got: list[dict[str, Any]] = []
    with pytest.raises(UpstreamServerError, match="The model produced invalid content"):
        async for ev in responses_stream_to_anthropic(aiter(_events(CREATED, TEXT, failed)), model=MODEL):
            got.append(ev)
    assert shape(got) == ["message_start", "start 0 text", "delta 0 text_delta"]


async def test_error_event_is_typed() -> None:
    error = {"type": "error", "code": "rate_limit_exceeded", "message": "Rate limit reached", "param": None}
    with pytest.raises(UpstreamRateLimited, match="Rate limit reached"):
        await translate_events(_events(error))


async def translate_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return await collect(responses_stream_to_anthropic(aiter(events), model=MODEL, message_id=MSG_ID))


async def test_arguments_sent_whole_and_items_without_added_events() -> None:
    """A server that sends a call's arguments only in its done events (no deltas), and one that skips
    output_item.added: the call still arrives whole."""
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "Bash",
            "arguments": '{"command":"ls"}'}
    events = _events(
        {"type": "response.output_item.added", "output_index": 0, "item": {**call, "arguments": ""}},
        {"type": "response.function_call_arguments.done", "output_index": 0, "item_id": "fc_1",
         "arguments": call["arguments"]},
        {"type": "response.output_item.done", "output_index": 0, "item": call},
        {"type": "response.output_item.done", "output_index": 1, "item": {**call, "call_id": "call_2"}},
        {"type": "response.completed", "response": {"status": "completed", "output": [call]}},
    )
    message = fold_events(await translate_events(events))
    assert [(b["id"], b["input"]) for b in message["content"]] == [("call_1", {"command": "ls"}),
                                                                   ("call_2", {"command": "ls"})]
    assert message["stop_reason"] == "tool_use"


async def test_empty_answer_equals_the_non_stream_one() -> None:
    resp = {"status": "completed", "output": [], "usage": {"input_tokens": 3, "output_tokens": 0}}
    events = await translate_events(_events(CREATED, {"type": "response.completed", "response": resp}))
    assert_stream_grammar(events)
    assert fold_events(events) == responses_to_anthropic(resp, model=MODEL, message_id=MSG_ID)


# --- passed-through streams ----------------------------------------------------------------------


def test_watch_ends_a_broken_passthrough_with_a_fitting_response_failed() -> None:
    watch = PassthroughWatch()
    for ev in _events(CREATED, TEXT):
        watch.observe(ev)
    closing = watch.failed("backend dropped", "server_error", {"id": "unused"})
    assert closing == {"type": "response.failed", "sequence_number": 2, "response": {
        "id": "resp_1", "status": "failed", "output": [], "error": {"code": "server_error",
                                                                    "message": "backend dropped"}}}


def test_watch_adds_nothing_when_the_backends_own_failure_was_passed_on() -> None:
    for failure in ({"type": "response.failed", "sequence_number": 2, "response": {"id": "resp_1", "status": "failed"}},
                    {"type": "error", "sequence_number": 2, "code": "server_error", "message": "m"}):
        watch = PassthroughWatch()
        for ev in (CREATED, failure):
            watch.observe(ev)
        assert watch.failed("m", "server_error", {}) is None
