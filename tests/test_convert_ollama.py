"""Anthropic Messages ⇄ Ollama ``/api/chat``: requests, answers, and NDJSON streams (pure functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lynkr.convert.anthropic_stream import fold_events
from lynkr.convert.ollama import OllamaTarget, anthropic_to_ollama, ollama_stream_to_anthropic, ollama_to_anthropic
from lynkr.errors import InvalidRequest, UpstreamBadResponse, UpstreamServerError
from tests.test_convert_openai import CLEAN_TOOLS, MID_SYSTEM, SYSTEM_TEXT, keys_anywhere, png_block
from tests.transcripts import (
    MODEL,
    OLLAMA,
    aiter,
    assert_stream_grammar,
    body,
    chunkings,
    claude_code_request,
    collect,
    decode_ndjson,
    line_endings,
    req,
    shape,
    stream_bytes,
    user,
)

MSG_ID = "msg_feedface0123456789abcdef"
QWEN = OllamaTarget(model="qwen3:8b")
LLAMA = OllamaTarget(model="llama3.2")


def normalise_tool_ids(message: dict[str, Any]) -> dict[str, Any]:
    """Ollama sends no tool-call ids, so lynkr makes them up; number them to compare two answers."""
    ids = [b["id"] for b in message["content"] if b["type"] == "tool_use"]
    assert all(i.startswith("toolu_") for i in ids) and len(set(ids)) == len(ids)
    n = iter(range(len(ids)))
    content = [{**b, "id": f"toolu_{next(n)}"} if b["type"] == "tool_use" else b for b in message["content"]]
    return {**message, "content": content}


# --- the Claude Code request ------------------------------------------------------------------


def test_claude_code_request_to_ollama() -> None:
    out = anthropic_to_ollama(claude_code_request(), QWEN, stream=True)
    assert out == {
        "model": "qwen3:8b",
        "stream": True,
        "messages": [
            {"role": "system", "content": SYSTEM_TEXT + "\n\n" + MID_SYSTEM},  # hoisted: templates put system first
            {"role": "user", "content": "<system-reminder>\nToday's date is 2026-11-21.\n</system-reminder>\n\n"
                                        "Read README.md and config.toml, then grep for 設定"},
            {"role": "assistant", "content": "Reading both.", "thinking": "Two files to read.", "tool_calls": [
                {"function": {"name": "Read", "arguments": {"file_path": "/srv/app/README.md"}}},
                {"function": {"name": "Read", "arguments": {"file_path": "/srv/app/config.toml", "limit": 200}}},
            ]},
            {"role": "tool", "content": "# App\nA demo.", "tool_name": "Read"},
            {"role": "tool", "content": "Error: File does not exist.", "tool_name": "Read"},
        ],
        "options": {"num_predict": 64_000},
        "tools": CLEAN_TOOLS,
        "think": True,  # adaptive thinking, and qwen3 can think
    }
    for field in ("metadata", "context_management", "output_config", "cache_control", "defer_loading",
                  "$schema", "signature", "system"):
        assert field not in keys_anywhere(out), field


def test_the_request_is_not_mutated() -> None:
    request = claude_code_request()
    anthropic_to_ollama(request, QWEN, stream=True)
    assert request == claude_code_request()


@pytest.mark.parametrize("content", ["Env", [{"type": "text", "text": "Env", "cache_control": {"type": "ephemeral"}}]],
                         ids=["string", "blocks"])
def test_system_messages_are_hoisted(content: Any) -> None:
    messages = [user("Hi"), {"role": "system", "content": content}, user("Go")]
    out = anthropic_to_ollama(req(system=[{"type": "text", "text": "Sys"}], messages=messages), LLAMA, stream=False)
    assert out["messages"] == [{"role": "system", "content": "Sys\n\nEnv"}, {"role": "user", "content": "Hi"},
                               {"role": "user", "content": "Go"}]
    assert out["stream"] is False


def test_no_system_at_all() -> None:
    assert anthropic_to_ollama(req(), LLAMA, stream=False)["messages"] == [{"role": "user", "content": "Hi"}]


# --- content ----------------------------------------------------------------------------------


def test_base64_images_go_to_images() -> None:
    content = [{"type": "text", "text": "What is this?"}, png_block("AAAA"),
               {"type": "image", "source": {"type": "url", "url": "data:image/jpeg;base64,QkJC"}}]
    out = anthropic_to_ollama(req(messages=[user(content)]), LLAMA, stream=False)
    assert out["messages"] == [{"role": "user", "content": "What is this?", "images": ["AAAA", "QkJC"]}]


def test_url_image_is_an_invalid_request() -> None:
    content = [{"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}]
    with pytest.raises(InvalidRequest, match="base64") as err:
        anthropic_to_ollama(req(messages=[user(content)]), LLAMA, stream=False)
    assert err.value.field == "source.type"
    assert err.value.status == 400


def test_tool_results_carry_the_tool_name_and_images() -> None:
    messages = [
        user("Shoot"),
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "Screenshot", "input": {}}]},
        user([{"type": "tool_result", "tool_use_id": "toolu_9", "is_error": True,
               "content": [{"type": "text", "text": "partial"}, png_block("SU1H")]},
              {"type": "tool_result", "tool_use_id": "toolu_unknown", "content": "?"},
              {"type": "text", "text": "Now?"}]),
    ]
    out = anthropic_to_ollama(req(messages=messages), LLAMA, stream=False)
    assert out["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "Screenshot", "arguments": {}}}]},
        {"role": "tool", "content": "Error: partial", "tool_name": "Screenshot", "images": ["SU1H"]},
        {"role": "tool", "content": "?", "tool_name": ""},
        {"role": "user", "content": "Now?"},
    ]


def test_assistant_history_with_thinking_only() -> None:
    messages = [user("Hi"), {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": ""}]}]
    out = anthropic_to_ollama(req(messages=messages), LLAMA, stream=False)
    assert out["messages"][1] == {"role": "assistant", "content": "", "thinking": "hm"}


# --- options, tools, thinking -----------------------------------------------------------------


def test_options() -> None:
    out = anthropic_to_ollama(req(max_tokens=64_000, temperature=0, top_p=0.9, top_k=40,
                                  stop_sequences=list("abcde")),
                              OllamaTarget(model="llama3.2", num_ctx=32_768, max_output_tokens=8_192), stream=False)
    assert out["options"] == {"num_predict": 8_192, "num_ctx": 32_768, "temperature": 0, "top_p": 0.9, "top_k": 40,
                              "stop": ["a", "b", "c", "d", "e"]}


@pytest.mark.parametrize(("keep_alive", "sent"), [("10m", "10m"), ("300", 300), ("-1", -1), ("0", 0)])
def test_keep_alive(keep_alive: str, sent: str | int) -> None:
    assert anthropic_to_ollama(req(), OllamaTarget(model="x", keep_alive=keep_alive), stream=True)["keep_alive"] == sent


def test_keep_alive_unset() -> None:
    assert "keep_alive" not in anthropic_to_ollama(req(), LLAMA, stream=True)


@pytest.mark.parametrize(("tool_choice", "has_tools"), [(None, True), ({"type": "auto"}, True), ({"type": "any"}, True),
                                                        ({"type": "none"}, False)])
def test_tools_and_tool_choice(tool_choice: dict[str, Any] | None, has_tools: bool) -> None:
    tools = [{"name": "Read", "input_schema": {"$schema": "x", "type": "object",
                                               "properties": {"format": {"type": "string", "format": "uri"}}}},
             {"type": "web_search_20250305", "name": "web_search"}]
    extra = {"tool_choice": tool_choice} if tool_choice else {}
    out = anthropic_to_ollama(req(tools=tools, **extra), LLAMA, stream=False)
    if not has_tools:
        assert "tools" not in out
        return
    assert out["tools"] == [{"type": "function", "function": {
        "name": "Read", "description": "",
        "parameters": {"type": "object", "properties": {"format": {"type": "string", "format": "uri"}}}}}]
    assert "tool_choice" not in out  # Ollama has none


@pytest.mark.parametrize(
    ("model", "thinking", "output_config", "think"),
    [
        ("qwen3:8b", {"type": "adaptive"}, None, True),
        ("qwen3:8b", None, None, False),
        ("deepseek-r1:14b", {"type": "enabled", "budget_tokens": 2_000}, None, True),
        ("gpt-oss:20b", {"type": "adaptive"}, {"effort": "high"}, "high"),
        ("gpt-oss:20b", {"type": "enabled", "budget_tokens": 2_000}, None, "low"),
        ("gpt-oss:20b", {"type": "adaptive"}, {"effort": "max"}, "high"),  # gpt-oss knows low/medium/high
        ("gpt-oss:20b", None, None, "low"),  # gpt-oss cannot stop thinking; ask for the least
        ("llama3.2", {"type": "adaptive"}, None, None),  # not a thinking model: no think field at all
        ("qwen3-coder:30b", {"type": "adaptive"}, None, None),  # Ollama: "does not support thinking" (400)
        ("qwen3-coder-next:q8_0", {"type": "adaptive"}, None, None),
        ("hf.co/unsloth/qwen3-30b-a3b-gguf:q4_k_m", {"type": "adaptive"}, None, True),
    ],
)
def test_think(model: str, thinking: dict[str, Any] | None, output_config: dict[str, Any] | None,
               think: bool | str | None) -> None:
    extra = {k: v for k, v in (("thinking", thinking), ("output_config", output_config)) if v}
    out = anthropic_to_ollama(req(**extra), OllamaTarget(model=model), stream=True)
    assert out.get("think") == think


def test_structured_output_becomes_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    out = anthropic_to_ollama(req(output_config={"format": {"type": "json_schema", "schema": schema}}), LLAMA,
                              stream=False)
    assert out["format"] == schema
    assert "format" not in anthropic_to_ollama(req(), LLAMA, stream=False)


# --- non-streamed answers ---------------------------------------------------------------------


def answer(message: dict[str, Any], done_reason: str = "stop", **extra: Any) -> dict[str, Any]:
    return {"model": "qwen3:8b", "created_at": "2026-11-21T07:00:00Z", "message": {"role": "assistant", **message},
            "done": True, "done_reason": done_reason, "prompt_eval_count": 30, "eval_count": 4, **extra}


def test_text_answer() -> None:
    assert ollama_to_anthropic(answer({"content": "Hi!"}), model=MODEL, message_id=MSG_ID) == {
        "id": MSG_ID, "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 4, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }


@pytest.mark.parametrize(("done_reason", "stop_reason"), [("stop", "end_turn"), ("length", "max_tokens"),
                                                          ("load", "end_turn"), (None, "end_turn")])
def test_done_reason(done_reason: str | None, stop_reason: str) -> None:
    resp = answer({"content": "x"})
    resp["done_reason"] = done_reason
    assert ollama_to_anthropic(resp, model=MODEL)["stop_reason"] == stop_reason


def test_thinking_and_tool_calls() -> None:
    calls = [{"function": {"name": "Read", "arguments": {"file_path": "/a"}}},
             {"id": "call_x1", "function": {"index": 1, "name": "Grep", "arguments": {"pattern": "b"}}}]
    message = ollama_to_anthropic(answer({"content": "", "thinking": "hm", "tool_calls": calls}), model=MODEL)
    assert message["stop_reason"] == "tool_use"  # even though done_reason is "stop"
    [thinking, read, grep] = message["content"]
    assert thinking == {"type": "thinking", "thinking": "hm", "signature": ""}
    assert read["name"] == "Read" and read["input"] == {"file_path": "/a"} and read["id"].startswith("toolu_")
    assert grep == {"type": "tool_use", "id": "call_x1", "name": "Grep", "input": {"pattern": "b"}}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [('{"a": 1}', {"a": 1}), ("", {}), ("{oops", {"_unparsed_arguments": "{oops"}), ([1], {"value": [1]}), (None, {})],
)
def test_odd_tool_arguments(arguments: Any, expected: dict[str, Any]) -> None:
    calls = [{"function": {"name": "T", "arguments": arguments}}]
    message = ollama_to_anthropic(answer({"content": "", "tool_calls": calls}), model=MODEL)
    assert message["content"][0]["input"] == expected


def test_error_body_raises() -> None:
    with pytest.raises(UpstreamServerError, match="model 'qwen9' not found"):
        ollama_to_anthropic({"error": "model 'qwen9' not found"}, model=MODEL)


def test_answer_without_message_is_a_bad_response() -> None:
    with pytest.raises(UpstreamBadResponse):
        ollama_to_anthropic({"model": "x", "done": True}, model=MODEL)


# --- streams ----------------------------------------------------------------------------------


async def translate(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return await collect(ollama_stream_to_anthropic(aiter(lines), model=MODEL, message_id=MSG_ID))


@pytest.mark.parametrize("ending", ["lf", "crlf"])
@pytest.mark.parametrize("name", OLLAMA)
async def test_stream_folds_to_the_non_stream_answer(name: str, ending: str) -> None:
    expected = normalise_tool_ids(ollama_to_anthropic(body(name), model=MODEL, message_id=MSG_ID))
    for family, cuts in chunkings(line_endings(stream_bytes(name), ending)).items():
        for pieces in cuts:
            events = await translate(decode_ndjson(pieces))
            assert_stream_grammar(events)
            assert normalise_tool_ids(fold_events(events)) == expected, (family, [len(p) for p in pieces])


async def test_thinking_tools_stream_events() -> None:
    events = await translate(decode_ndjson([stream_bytes(OLLAMA[0])]))
    assert shape(events) == [
        "message_start",
        "start 0 thinking", *["delta 0 thinking_delta"] * 3, "stop 0",
        "start 1 text", *["delta 1 text_delta"] * 2, "stop 1",
        "start 2 tool_use Read", "delta 2 input_json_delta", "stop 2",
        "start 3 tool_use Read", "delta 3 input_json_delta", "stop 3",
        "start 4 tool_use Grep", "delta 4 input_json_delta", "stop 4",
        "message_delta tool_use",
        "message_stop",
    ]
    json_pieces = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
                   and e["delta"]["type"] == "input_json_delta"]
    assert [json.loads(p) for p in json_pieces] == [
        {"file_path": "/srv/app/README.md"}, {"file_path": "/srv/app/Über/config.toml", "limit": 200},
        {"pattern": "設定|\\bconfig\\b", "-n": True}]
    assert events[-2]["usage"] == {"input_tokens": 1893, "output_tokens": 142, "cache_creation_input_tokens": 0,
                                   "cache_read_input_tokens": 0}


async def test_text_length_stream_events() -> None:
    events = await translate(decode_ndjson([stream_bytes(OLLAMA[1])]))
    assert shape(events) == ["message_start", "start 0 text", "delta 0 text_delta", "delta 0 text_delta", "stop 0",
                             "message_delta max_tokens", "message_stop"]


def line(done: bool = False, **message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "m", "message": {"role": "assistant", "content": "", **message}, "done": done}
    if done:
        out |= {"done_reason": "stop", "prompt_eval_count": 5, "eval_count": 2}
    return out


@pytest.mark.parametrize("lines", [[], [line(content="cut off")]], ids=["nothing", "no-done-line"])
async def test_stream_without_done_is_a_bad_response(lines: list[dict[str, Any]]) -> None:
    with pytest.raises(UpstreamBadResponse):
        await translate(lines)


async def test_error_line_mid_stream_raises_after_what_was_already_sent() -> None:
    sent: list[dict[str, Any]] = []
    lines = [line(content="Hel"), {"error": "an error was encountered while running the model: CUDA OOM"}]
    with pytest.raises(UpstreamServerError, match="CUDA OOM"):
        async for ev in ollama_stream_to_anthropic(aiter(lines), model=MODEL, message_id=MSG_ID):
            sent.append(ev)
    assert shape(sent) == ["message_start", "start 0 text", "delta 0 text_delta"]


async def test_content_on_the_done_line_and_nothing_after_it() -> None:
    events = await translate([line(content="a"), {**line(done=True), "message": {"role": "assistant", "content": "b"}},
                              line(content="after done")])
    message = fold_events(events)
    assert message["content"] == [{"type": "text", "text": "ab"}]
    assert message["usage"]["input_tokens"] == 5


async def test_stream_tool_call_with_upstream_id_and_string_arguments() -> None:
    calls = [{"id": "call_k", "function": {"name": "T", "arguments": '{"x": [1]}'}}]
    events = await translate([line(tool_calls=calls), line(done=True)])
    assert fold_events(events)["content"] == [{"type": "tool_use", "id": "call_k", "name": "T", "input": {"x": [1]}}]
