"""Anthropic Messages ⇄ OpenAI Chat Completions: requests, answers, and streams (pure functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lynkr.convert.anthropic_stream import fold_events
from lynkr.convert.openai_chat import ChatTarget, anthropic_to_chat, chat_stream_to_anthropic, chat_to_anthropic
from lynkr.errors import (
    InvalidRequest,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamServerError,
)
from lynkr.wire.anthropic import validate_messages_request
from tests.transcripts import (
    MODEL,
    OPENAI,
    aiter,
    assert_stream_grammar,
    body,
    chunkings,
    claude_code_request,
    collect,
    decode_sse_json,
    line_endings,
    req,
    shape,
    stream_bytes,
    user,
)

MSG_ID = "msg_0123456789abcdef01234567"

# The flavours lynkr.providers.openai_compat configures, as targets
OPENAI_4O = ChatTarget(backend="openai", model="gpt-4o", max_tokens_field="max_completion_tokens",
                       reasoning="effort", max_stop_sequences=4)
OPENAI_GPT5 = ChatTarget(backend="openai", model="gpt-5", max_tokens_field="max_completion_tokens",
                         reasoning="effort", max_stop_sequences=4)
OPENROUTER = ChatTarget(backend="openrouter", model="openai/gpt-4o", reasoning="openrouter")
LLAMACPP = ChatTarget(backend="llamacpp", model="qwen3-coder-30b-a3b", system_in_conversation=False,
                      supports_top_k=True)


def png_block(data: str = "iVBORw0KGgo=") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def keys_anywhere(value: Any) -> set[str]:
    """Every object key at any depth (to prove a field was not forwarded)."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


# --- the Claude Code request ------------------------------------------------------------------

# Claude Code's billing line (the first system block) is not forwarded to other backends
SYSTEM_TEXT = (
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.\n\n"
    "You are an interactive agent that helps users with software engineering tasks. Use the tools available to you."
)
MID_SYSTEM = "Available agent types: general-purpose, Explore. Environment: linux, cwd /srv/app."
HISTORY = [
    {"role": "user", "content": "<system-reminder>\nToday's date is 2026-11-21.\n</system-reminder>\n\n"
                                "Read README.md and config.toml, then grep for 設定"},
    {"role": "assistant", "content": "Reading both.", "tool_calls": [
        {"id": "toolu_01A", "type": "function",
         "function": {"name": "Read", "arguments": '{"file_path":"/srv/app/README.md"}'}},
        {"id": "toolu_01B", "type": "function",
         "function": {"name": "Read", "arguments": '{"file_path":"/srv/app/config.toml","limit":200}'}},
    ]},
    {"role": "tool", "tool_call_id": "toolu_01A", "content": "# App\nA demo."},
    {"role": "tool", "tool_call_id": "toolu_01B", "content": "Error: File does not exist."},
]
CLEAN_TOOLS = [
    {"type": "function", "function": {
        "name": "Read", "description": "Reads a file from the local filesystem.",
        "parameters": {"type": "object",
                       "properties": {"file_path": {"type": "string", "description": "The absolute path to the file"},
                                      "limit": {"type": "integer", "exclusiveMinimum": 0},
                                      "offset": {"type": "integer", "minimum": 0}},
                       "required": ["file_path"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "WebFetch", "description": "Fetches a URL and converts it.",
        "parameters": {"type": "object",
                       "properties": {"url": {"type": "string", "format": "uri"},
                                      "format": {"type": "string", "enum": ["markdown", "html"]}},
                       "required": ["url", "format"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "TaskCreate", "description": "Creates tasks.",
        "parameters": {"type": "object",
                       "properties": {"tasks": {"type": "array", "items": {"$ref": "#/$defs/task"}}},
                       "$defs": {"task": {"type": "object",
                                          "properties": {"subject": {"type": "string"},
                                                         "owner": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
                                          "required": ["subject"], "additionalProperties": False}},
                       "required": ["tasks"], "additionalProperties": False}}},
]


def test_recorded_claude_code_request_is_valid() -> None:
    # role "system" inside messages, tool_result without is_error, unknown fields: all accepted, untouched
    assert validate_messages_request(claude_code_request()) == claude_code_request()


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": [user("a"), user([{"type": "text"}])]}, "messages.1.content.0.text"),
        ({"messages": [user([{"type": "tool_use", "name": "A", "input": {}}])]}, "messages.0.content.0.id"),
        ({"messages": [user([{"type": "image", "source": {"type": "ftp"}}])]}, "messages.0.content.0.source.type"),
        ({"messages": [user([{"type": "tool_result", "tool_use_id": "t", "content": 5}])]},
         "messages.0.content.0.content"),
        ({"messages": [user([{"type": "text", "text": "a"}, "not a block"])]}, "messages.0.content.1"),
        ({"system": [{"type": "text"}]}, "system.0.text"),
        ({"system": [{"type": "text", "text": "a"}, {"text": "b"}]}, "system.1.type"),
        ({"tools": [{"description": "no name"}]}, "tools.0.name"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": None}, "max_tokens"),
    ],
)
def test_invalid_request_names_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        validate_messages_request(req(**over))
    assert err.value.field == field
    assert err.value.message.startswith(field + ": ")


@pytest.mark.parametrize("body", [[], "x", None])
def test_request_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        validate_messages_request(body)


def test_claude_code_request_to_openai() -> None:
    out = anthropic_to_chat(claude_code_request(), OPENAI_4O, stream=True)
    assert out == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": SYSTEM_TEXT}, HISTORY[0],
                     {"role": "system", "content": MID_SYSTEM}, *HISTORY[1:]],
        "max_completion_tokens": 16_384,  # Claude Code asks 64000; gpt-4o allows 16384
        "tools": CLEAN_TOOLS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_claude_code_request_to_llamacpp_hoists_the_system_message() -> None:
    out = anthropic_to_chat(claude_code_request(), LLAMACPP, stream=False)
    assert out["messages"] == [{"role": "system", "content": SYSTEM_TEXT + "\n\n" + MID_SYSTEM}, *HISTORY]
    assert out["max_tokens"] == 64_000  # unknown model: no clamp
    assert "stream" not in out and "stream_options" not in out
    assert "reasoning_effort" not in out and "reasoning" not in out


def test_claude_code_request_to_a_reasoning_model() -> None:
    out = anthropic_to_chat(claude_code_request(), OPENAI_GPT5, stream=True)
    assert out["reasoning_effort"] == "high"  # output_config.effort
    assert out["max_completion_tokens"] == 64_000


@pytest.mark.parametrize("target", [OPENAI_4O, OPENAI_GPT5, OPENROUTER, LLAMACPP], ids=lambda t: t.backend)
def test_claude_code_only_fields_are_not_forwarded(target: ChatTarget) -> None:
    out = anthropic_to_chat(claude_code_request(), target, stream=True)
    keys = keys_anywhere(out)
    for field in ("metadata", "context_management", "output_config", "thinking", "cache_control",
                  "defer_loading", "$schema", "$id", "$comment", "signature", "system", "user"):
        assert field not in keys, field
    assert "Two files to read." not in json.dumps(out)  # thinking blocks have no place in Chat Completions
    assert [t["function"]["name"] for t in out["tools"]] == ["Read", "WebFetch", "TaskCreate"]  # web_search dropped


@pytest.mark.parametrize("target", [OPENAI_4O, LLAMACPP], ids=lambda t: t.backend)
def test_the_request_is_not_mutated(target: ChatTarget) -> None:
    # a fallback chain converts the same request again for the next backend
    request = claude_code_request()
    anthropic_to_chat(request, target, stream=True)
    assert request == claude_code_request()


# --- system prompts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "system",
    ["Be brief.\n\nUse tools.",
     [{"type": "text", "text": "Be brief."},
      {"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}]],
    ids=["string", "blocks"],
)
def test_system_prompt(system: Any) -> None:
    out = anthropic_to_chat(req(system=system), OPENAI_4O, stream=False)
    assert out["messages"] == [{"role": "system", "content": "Be brief.\n\nUse tools."},
                               {"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("content", ["Env: linux", [{"type": "text", "text": "Env: linux"}]], ids=["string", "blocks"])
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (OPENAI_4O, [{"role": "system", "content": "Sys"}, {"role": "user", "content": "Hi"},
                     {"role": "system", "content": "Env: linux"}, {"role": "user", "content": "Go"}]),
        (LLAMACPP, [{"role": "system", "content": "Sys\n\nEnv: linux"}, {"role": "user", "content": "Hi"},
                    {"role": "user", "content": "Go"}]),
    ],
    ids=["kept-in-place", "hoisted"],
)
def test_system_message_inside_messages(content: Any, target: ChatTarget, expected: list[dict[str, Any]]) -> None:
    messages = [user("Hi"), {"role": "system", "content": content}, user("Go")]
    assert anthropic_to_chat(req(system="Sys", messages=messages), target, stream=False)["messages"] == expected


def test_leading_system_message_joins_the_system_prompt() -> None:
    messages = [{"role": "system", "content": "Env"}, user("Hi")]
    out = anthropic_to_chat(req(messages=messages), OPENAI_4O, stream=False)
    assert out["messages"] == [{"role": "system", "content": "Env"}, {"role": "user", "content": "Hi"}]


def test_empty_system_message_is_dropped() -> None:
    messages = [user("Hi"), {"role": "system", "content": []}, user("Go")]
    out = anthropic_to_chat(req(messages=messages), OPENAI_4O, stream=False)
    assert out["messages"] == [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Go"}]


# --- user content -----------------------------------------------------------------------------


def test_text_blocks_become_one_string() -> None:
    content = [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "b"}]
    assert anthropic_to_chat(req(messages=[user(content)]), OPENAI_4O, stream=False)["messages"] == [
        {"role": "user", "content": "a\n\nb"}]


def test_images_base64_and_url() -> None:
    content = [{"type": "text", "text": "What differs?"}, png_block("AAAA"),
               {"type": "image", "source": {"type": "url", "url": "https://example.com/b.jpg"}}]
    out = anthropic_to_chat(req(messages=[user(content)]), OPENAI_4O, stream=False)
    assert out["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What differs?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
    ]}]


def test_file_image_is_refused_with_the_field() -> None:
    content = [{"type": "image", "source": {"type": "file", "file_id": "file_01"}}]
    with pytest.raises(InvalidRequest) as err:
        anthropic_to_chat(req(messages=[user(content)]), OPENAI_4O, stream=False)
    assert err.value.field == "source.type"


def test_text_document_becomes_text() -> None:
    content = [{"type": "document", "title": "notes.txt", "source": {"type": "text", "media_type": "text/plain",
                                                                    "data": "line 1"}}]
    out = anthropic_to_chat(req(messages=[user(content)]), OPENAI_4O, stream=False)
    assert out["messages"] == [{"role": "user", "content": "notes.txt\nline 1"}]


# --- tool history -----------------------------------------------------------------------------


def test_tool_use_becomes_tool_calls_with_json_string_arguments() -> None:
    args = {"command": "ls -la", "description": "Liste les fichiers — ü", "timeout": 5, "nested": {"a": [1, None]}}
    messages = [user("Hi"), {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hm", "signature": "sig"},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": args},
        {"type": "tool_use", "id": "toolu_2", "name": "Noop", "input": {}}]}]
    [_, assistant] = anthropic_to_chat(req(messages=messages), OPENAI_4O, stream=False)["messages"]
    assert assistant["content"] is None  # no text: null content, as OpenAI expects with tool_calls
    calls = assistant["tool_calls"]
    assert [(c["id"], c["type"], c["function"]["name"]) for c in calls] == [
        ("toolu_1", "function", "Bash"), ("toolu_2", "function", "Noop")]
    assert all(isinstance(c["function"]["arguments"], str) for c in calls)
    assert json.loads(calls[0]["function"]["arguments"]) == args
    assert json.loads(calls[1]["function"]["arguments"]) == {}


def test_assistant_text_blocks_and_string_content() -> None:
    messages = [user("Hi"), {"role": "assistant", "content": [{"type": "text", "text": "One. "},
                                                             {"type": "text", "text": "Two."}]},
                user("And?"), {"role": "assistant", "content": "Three."}]
    out = anthropic_to_chat(req(messages=messages), OPENAI_4O, stream=False)["messages"]
    assert out[1] == {"role": "assistant", "content": "One. Two."}
    assert out[3] == {"role": "assistant", "content": "Three."}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"content": "42 files"}, "42 files"),
        ({"content": [{"type": "text", "text": "line 1"}, {"type": "text", "text": "line 2"}]}, "line 1\nline 2"),
        ({"content": "command not found", "is_error": True}, "Error: command not found"),
        ({"content": [], "is_error": True}, "Error"),
        ({}, ""),
    ],
    ids=["string", "blocks", "error", "empty-error", "no-content"],
)
def test_tool_result_text(result: dict[str, Any], expected: str) -> None:
    block = {"type": "tool_result", "tool_use_id": "toolu_1", **result}
    out = anthropic_to_chat(req(messages=[user([block])]), OPENAI_4O, stream=False)
    assert out["messages"] == [{"role": "tool", "tool_call_id": "toolu_1", "content": expected}]


def test_tool_result_images_follow_as_user_content() -> None:
    blocks = [
        {"type": "tool_result", "tool_use_id": "toolu_1",
         "content": [{"type": "text", "text": "screenshot taken"}, png_block("QUJD")]},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "ok"},
        {"type": "text", "text": "Look at it."},
    ]
    out = anthropic_to_chat(req(messages=[user(blocks)]), OPENAI_4O, stream=False)
    assert out["messages"] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "screenshot taken"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "ok"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
                                     {"type": "text", "text": "Look at it."}]},
    ]


# --- tools and tool_choice --------------------------------------------------------------------

TOOL = {"name": "Write", "description": "Writes a file",
        "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                         "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
                         "required": ["file_path", "content"], "additionalProperties": False}}


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        (None, {}),
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "tool", "name": "Write"}, {"tool_choice": {"type": "function", "function": {"name": "Write"}}}),
        ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
        ({"type": "any", "disable_parallel_tool_use": True},
         {"tool_choice": "required", "parallel_tool_calls": False}),
    ],
)
def test_tool_choice(tool_choice: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    extra = {"tool_choice": tool_choice} if tool_choice else {}
    out = anthropic_to_chat(req(tools=[TOOL], **extra), OPENAI_4O, stream=False)
    assert len(out["tools"]) == 1
    assert {k: out[k] for k in ("tool_choice", "parallel_tool_calls") if k in out} == expected


def test_tool_choice_none_sends_no_tools() -> None:
    out = anthropic_to_chat(req(tools=[TOOL], tool_choice={"type": "none"}), OPENAI_4O, stream=False)
    assert "tools" not in out and "tool_choice" not in out


def test_only_server_tools_means_no_tools() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search"}, {"type": "bash_20250124", "name": "bash"}]
    out = anthropic_to_chat(req(tools=tools, tool_choice={"type": "auto"}), OPENAI_4O, stream=False)
    assert "tools" not in out and "tool_choice" not in out


def test_tool_schema_cleaning_keeps_property_names_and_constraints() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "type": "object",
              "properties": {"$schema": {"type": "string"}, "format": {"type": "string", "format": "date"},
                             "items": {"type": "array", "items": {"$comment": "c", "type": "integer"}},
                             "nested": {"type": "object"}},
              "additionalProperties": False}
    tool = {"name": "T", "input_schema": schema}
    [sent] = anthropic_to_chat(req(tools=[tool]), OPENAI_4O, stream=False)["tools"]
    assert sent["function"] == {"name": "T", "description": "", "parameters": {
        "type": "object",
        "properties": {"$schema": {"type": "string"}, "format": {"type": "string", "format": "date"},
                       "items": {"type": "array", "items": {"type": "integer"}},
                       "nested": {"type": "object", "properties": {}}},
        "additionalProperties": False}}
    assert "$schema" in schema and "$comment" in schema["properties"]["items"]["items"]  # input not mutated


META = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:x", "$comment": "c"}
LEAF = {"type": "string", "$comment": "dropped"}


@pytest.mark.parametrize(
    ("keyword", "value", "cleaned"),
    [
        ("items", LEAF, {"type": "string"}),
        ("additionalProperties", LEAF, {"type": "string"}),
        ("not", LEAF, {"type": "string"}),
        ("if", LEAF, {"type": "string"}),
        ("then", LEAF, {"type": "string"}),
        ("else", LEAF, {"type": "string"}),
        ("contains", LEAF, {"type": "string"}),
        ("propertyNames", LEAF, {"type": "string"}),
        ("anyOf", [LEAF, {"type": "null"}], [{"type": "string"}, {"type": "null"}]),
        ("oneOf", [LEAF], [{"type": "string"}]),
        ("allOf", [LEAF], [{"type": "string"}]),
        ("prefixItems", [LEAF], [{"type": "string"}]),
        ("patternProperties", {"^x-": LEAF}, {"^x-": {"type": "string"}}),
        ("$defs", {"name": {**META, **LEAF}}, {"name": {"type": "string"}}),
        ("definitions", {"name": LEAF}, {"name": {"type": "string"}}),
        ("dependentSchemas", {"a": LEAF}, {"a": {"type": "string"}}),
        ("default", {"$comment": "data, not a schema"}, {"$comment": "data, not a schema"}),
        ("enum", [{"$schema": "a value"}], [{"$schema": "a value"}]),
    ],
)
def test_schema_cleaning_reaches_every_subschema(keyword: str, value: Any, cleaned: Any) -> None:
    schema = {**META, "type": "array" if keyword in ("items", "prefixItems", "contains") else "object",
              keyword: value}
    tool = {"name": "T", "description": "d", "input_schema": schema}
    [sent] = anthropic_to_chat(req(tools=[tool]), OPENAI_4O, stream=False)["tools"]
    assert sent["function"]["parameters"][keyword] == cleaned
    assert not {"$schema", "$id", "$comment"} & set(sent["function"]["parameters"])


# --- sampling, limits, reasoning --------------------------------------------------------------


def test_sampling_fields() -> None:
    out = anthropic_to_chat(req(temperature=0.2, top_p=0.9, top_k=40), OPENAI_4O, stream=False)
    assert (out["temperature"], out["top_p"]) == (0.2, 0.9)
    assert "top_k" not in out  # OpenAI has none
    out = anthropic_to_chat(req(temperature=0.2, top_p=0.9, top_k=40), LLAMACPP, stream=False)
    assert (out["temperature"], out["top_p"], out["top_k"]) == (0.2, 0.9, 40)


def test_temperature_zero_is_forwarded() -> None:
    assert anthropic_to_chat(req(temperature=0), OPENAI_4O, stream=False)["temperature"] == 0


@pytest.mark.parametrize(
    ("target", "expected"),
    [(OPENAI_4O, ["a", "b", "c", "d"]), (OPENROUTER, ["a", "b", "c", "d", "e"])],
    ids=["openai-caps-at-4", "openrouter"],
)
def test_stop_sequences(target: ChatTarget, expected: list[str]) -> None:
    assert anthropic_to_chat(req(stop_sequences=list("abcde")), target, stream=False)["stop"] == expected


@pytest.mark.parametrize(
    ("model", "field", "asked", "sent"),
    [
        ("gpt-4o", "max_completion_tokens", 64_000, 16_384),
        ("gpt-4o-mini", "max_completion_tokens", 1_000, 1_000),
        ("gpt-4.1", "max_completion_tokens", 64_000, 32_768),
        ("o3", "max_completion_tokens", 128_000, 100_000),
        ("gpt-5", "max_completion_tokens", 128_000, 128_000),
        ("gpt-5.1-codex", "max_completion_tokens", 128_000, 128_000),
        ("gpt-5-chat-latest", "max_completion_tokens", 64_000, 16_384),
        ("openai/gpt-4o", "max_tokens", 32_000, 16_384),
        ("qwen3-coder-30b", "max_tokens", 64_000, 64_000),
    ],
)
def test_max_tokens_clamped_to_the_model_limit(model: str, field: str, asked: int, sent: int) -> None:
    target = ChatTarget(backend="x", model=model, max_tokens_field=field)  # type: ignore[arg-type]
    out = anthropic_to_chat(req(max_tokens=asked), target, stream=False)
    assert out[field] == sent
    assert {"max_tokens", "max_completion_tokens"} & set(out) == {field}


def test_configured_output_limit_replaces_the_table() -> None:
    target = ChatTarget(backend="x", model="qwen3-coder-30b", max_output_tokens=8_192)
    assert anthropic_to_chat(req(max_tokens=64_000), target, stream=False)["max_tokens"] == 8_192


def test_model_can_be_left_out() -> None:
    target = ChatTarget(backend="azure-openai", model="my-deployment", send_model=False)
    assert "model" not in anthropic_to_chat(req(), target, stream=False)


@pytest.mark.parametrize(
    ("thinking", "output_config", "effort"),
    [
        ({"type": "adaptive"}, None, "medium"),
        ({"type": "adaptive"}, {"effort": "high"}, "high"),
        ({"type": "adaptive"}, {"effort": "low"}, "low"),
        ({"type": "adaptive", "display": "omitted"}, {"effort": "max"}, "high"),
        ({"type": "enabled", "budget_tokens": 1_024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 8_000}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 31_999}, None, "high"),
        ({"type": "disabled"}, None, None),
        (None, {"effort": "high"}, None),  # effort without thinking asks for nothing
    ],
)
@pytest.mark.parametrize("model", ["o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5.1", "openai/gpt-oss-120b"])
def test_reasoning_effort_for_reasoning_models(
    model: str, thinking: dict[str, Any] | None, output_config: dict[str, Any] | None, effort: str | None
) -> None:
    extra = {k: v for k, v in (("thinking", thinking), ("output_config", output_config)) if v}
    target = ChatTarget(backend="openai", model=model, reasoning="effort")
    out = anthropic_to_chat(req(temperature=0.7, top_p=0.5, **extra), target, stream=False)
    assert out.get("reasoning_effort") == effort
    assert "temperature" not in out and "top_p" not in out  # reasoning models reject them


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "gpt-5-chat-latest", "gpt-5.2-chat-latest"])
def test_thinking_for_a_non_reasoning_model_sends_no_effort(model: str) -> None:
    target = ChatTarget(backend="openai", model=model, reasoning="effort")
    out = anthropic_to_chat(req(thinking={"type": "adaptive"}, temperature=0.7), target, stream=False)
    assert "reasoning_effort" not in out and "reasoning" not in out
    assert out["temperature"] == 0.7


def test_openrouter_reasoning_object() -> None:
    out = anthropic_to_chat(req(thinking={"type": "enabled", "budget_tokens": 31_999}), OPENROUTER, stream=False)
    assert out["reasoning"] == {"effort": "high"}
    assert "reasoning_effort" not in out
    assert "reasoning" not in anthropic_to_chat(req(), OPENROUTER, stream=False)


def test_structured_output_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    out = anthropic_to_chat(req(output_config={"format": {"type": "json_schema", "schema": schema}}), OPENAI_4O,
                            stream=False)
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "output", "schema": schema, "strict": False}}
    assert "response_format" not in anthropic_to_chat(req(output_config={"effort": "high"}), OPENAI_4O, stream=False)


# --- non-streamed answers ---------------------------------------------------------------------


def chat_answer(message: dict[str, Any], finish: str | None = "stop", usage: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1763708400, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}


def test_text_answer() -> None:
    assert chat_to_anthropic(chat_answer({"content": "Hello!"}), model=MODEL, message_id=MSG_ID) == {
        "id": MSG_ID, "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 2, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }


def test_generated_message_id() -> None:
    message = chat_to_anthropic(chat_answer({"content": "x"}), model=MODEL)
    assert message["id"].startswith("msg_") and len(message["id"]) > 10


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), (None, "end_turn"),
     ("tool_calls", "end_turn")],  # tool_calls without any call: there is no tool_use block to wait for
)
def test_finish_reason_to_stop_reason(finish: str | None, stop_reason: str) -> None:
    assert chat_to_anthropic(chat_answer({"content": "x"}, finish), model=MODEL)["stop_reason"] == stop_reason


@pytest.mark.parametrize("finish", ["stop", "tool_calls", "length"])
def test_tool_calls_mean_tool_use_whatever_the_finish_reason(finish: str) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": '{"file_path": "/a"}'}}
    message = chat_to_anthropic(chat_answer({"content": None, "tool_calls": [call]}, finish), model=MODEL)
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [{"type": "tool_use", "id": "call_1", "name": "Read", "input": {"file_path": "/a"}}]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        ({"a": 1}, {"a": 1}),  # an object instead of a JSON string (some local servers)
        ('{"a": 1', {"_unparsed_arguments": '{"a": 1'}),  # kept so the model can see what it sent
        ("[1, 2]", {"value": [1, 2]}),
    ],
)
def test_tool_call_arguments(arguments: Any, expected: dict[str, Any]) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "T", "arguments": arguments}}
    message = chat_to_anthropic(chat_answer({"content": None, "tool_calls": [call]}), model=MODEL)
    assert message["content"][0]["input"] == expected


def test_tool_call_without_id_gets_one() -> None:
    call = {"type": "function", "function": {"name": "T", "arguments": "{}"}}
    [block] = chat_to_anthropic(chat_answer({"content": None, "tool_calls": [call]}), model=MODEL)["content"]
    assert block["id"].startswith("toolu_")


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_a_thinking_block(key: str) -> None:
    message = chat_to_anthropic(chat_answer({"content": "4", key: "2+2 is 4"}), model=MODEL)
    assert message["content"] == [{"type": "thinking", "thinking": "2+2 is 4", "signature": ""},
                                  {"type": "text", "text": "4"}]


def test_content_as_a_list_of_parts() -> None:
    content = [{"type": "text", "text": "Hel"}, {"type": "image_url", "image_url": {"url": "x"}},
               {"type": "text", "text": "lo"}]
    message = chat_to_anthropic(chat_answer({"content": content}), model=MODEL)
    assert message["content"] == [{"type": "text", "text": "Hello"}]


def test_refusal_is_shown_as_text() -> None:
    message = chat_to_anthropic(chat_answer({"content": None, "refusal": "I can't help with that."}),
                                model=MODEL)
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]


def test_empty_answer() -> None:
    message = chat_to_anthropic(chat_answer({"content": None}), model=MODEL)
    assert message["content"] == [] and message["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 4873, "completion_tokens": 161, "prompt_tokens_details": {"cached_tokens": 4608}},
         (265, 161, 4608)),
        ({"prompt_tokens": 50, "completion_tokens": 5, "prompt_tokens_details": None}, (50, 5, 0)),
        ({"prompt_tokens": 900, "completion_tokens": 9, "prompt_cache_hit_tokens": 640,
          "prompt_cache_miss_tokens": 260}, (260, 9, 640)),  # DeepSeek
        ({"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 9}}, (0, 1, 9)),
    ],
    ids=["openai-cached", "details-null", "deepseek-cache", "never-negative"],
)
def test_usage(usage: dict[str, Any], expected: tuple[int, int, int]) -> None:
    message = chat_to_anthropic(chat_answer({"content": "x"}, usage=usage), model=MODEL)
    assert message["usage"] == {"input_tokens": expected[0], "output_tokens": expected[1],
                                "cache_creation_input_tokens": 0, "cache_read_input_tokens": expected[2]}


def test_missing_usage_is_zero() -> None:
    answer = chat_answer({"content": "x"})
    del answer["usage"]
    assert set(chat_to_anthropic(answer, model=MODEL)["usage"].values()) == {0}


@pytest.mark.parametrize(
    ("error", "cls", "status"),
    [
        ({"message": "Rate limit exceeded: free-models-per-day", "code": 429}, UpstreamRateLimited, 429),
        ({"message": "Provider returned error", "code": 502}, UpstreamServerError, 502),
        ({"message": "overloaded", "code": "529"}, UpstreamOverloaded, 529),
        ({"message": "This model's maximum context length is 128000 tokens", "code": 400}, UpstreamBadRequest, 400),
        ({"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}, UpstreamServerError,
         None),
        ("model crashed", UpstreamServerError, None),
    ],
)
def test_error_body_raises_the_typed_error(error: Any, cls: type[UpstreamError], status: int | None) -> None:
    with pytest.raises(UpstreamError) as err:
        chat_to_anthropic({"error": error}, model=MODEL)
    assert type(err.value) is cls
    assert err.value.upstream_status == status
    assert (error["message"] if isinstance(error, dict) else error) in err.value.message


@pytest.mark.parametrize("answer", [{}, {"choices": []}, {"error": None, "choices": []}, {"object": "list"}])
def test_answer_without_choices_is_a_bad_response(answer: dict[str, Any]) -> None:
    with pytest.raises(UpstreamBadResponse):
        chat_to_anthropic(answer, model=MODEL)


# --- streams: recorded transcripts ------------------------------------------------------------


async def translate(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return await collect(chat_stream_to_anthropic(aiter(chunks), model=MODEL, message_id=MSG_ID))


@pytest.mark.parametrize("ending", ["lf", "crlf"])
@pytest.mark.parametrize("name", OPENAI)
async def test_stream_folds_to_the_non_stream_answer(name: str, ending: str) -> None:
    expected = chat_to_anthropic(body(name), model=MODEL, message_id=MSG_ID)
    for family, cuts in chunkings(line_endings(stream_bytes(name), ending)).items():
        for pieces in cuts:
            events = await translate(decode_sse_json(pieces))
            assert_stream_grammar(events)
            assert fold_events(events) == expected, (family, [len(p) for p in pieces])


async def test_reasoning_parallel_tools_stream_events() -> None:
    events = await translate(decode_sse_json([stream_bytes(OPENAI[0])]))
    assert shape(events) == [
        "message_start",
        "start 0 thinking", *["delta 0 thinking_delta"] * 3, "stop 0",
        "start 1 text", *["delta 1 text_delta"] * 2, "stop 1",
        "start 2 tool_use Read", *["delta 2 input_json_delta"] * 2, "stop 2",
        "start 3 tool_use Read", *["delta 3 input_json_delta"] * 3, "stop 3",
        "start 4 tool_use Grep", *["delta 4 input_json_delta"] * 2, "stop 4",
        "message_delta tool_use",
        "message_stop",
    ]
    assert events[0]["message"] == {"id": MSG_ID, "type": "message", "role": "assistant", "model": MODEL,
                                    "content": [], "stop_reason": None, "stop_sequence": None,
                                    "usage": {"input_tokens": 0, "output_tokens": 0,
                                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[2:] == [{"type": "tool_use", "id": "call_R3aD0x1", "name": "Read", "input": {}},
                          {"type": "tool_use", "id": "call_R3aD0x2", "name": "Read", "input": {}},
                          {"type": "tool_use", "id": "call_Gr3p0x3", "name": "Grep", "input": {}}]
    # arguments go out as they arrived, piece by piece, never buffered into one
    pieces = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
              and e["index"] == 3]
    assert pieces == ['{"file_path": ', '"/srv/app/Über/config.toml", ', '"limit": 200}']
    assert events[-2] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                          "usage": {"input_tokens": 265, "output_tokens": 161, "cache_creation_input_tokens": 0,
                                    "cache_read_input_tokens": 4608}}


async def test_text_length_stream_events() -> None:
    events = await translate(decode_sse_json([stream_bytes(OPENAI[1])]))
    assert shape(events) == ["message_start", "start 0 text", "delta 0 text_delta", "delta 0 text_delta", "stop 0",
                             "message_delta max_tokens", "message_stop"]


# --- streams: odd upstream behaviour ----------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def _without_short_path(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same chunks with a key in every delta that keeps them off the text-only short path."""
    return [{**c, "choices": [{**ch, "delta": {**(ch.get("delta") or {}), "x_other": None}}
                              for ch in c.get("choices") or []]} for c in chunks]


@pytest.mark.parametrize("name", OPENAI)
async def test_the_text_only_short_path_translates_as_the_general_one(name: str) -> None:
    chunks = decode_sse_json([stream_bytes(name)])
    assert await translate(chunks) == await translate(_without_short_path(chunks))


async def test_the_short_path_with_role_first_finish_and_empty_text_between_tool_fragments() -> None:
    chunks = [chunk({"role": "assistant", "content": "Hi"}), chunk({"content": ""}),
              chunk(call(0, "call_1", "Read", '{"a"')), chunk({"content": ""}),
              chunk({"content": " "}), chunk(call(0, arguments=": 1}")),
              chunk({"content": "done"}, finish="stop")]
    events = await translate(chunks)
    assert events == await translate(_without_short_path(chunks))
    message = fold_events(events)
    assert message["content"] == [{"type": "text", "text": "Hi"},
                                  {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"a": 1}},
                                  {"type": "text", "text": "done"}]


def call(index: int | None, id: str | None = None, name: str | None = None, arguments: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {"function": {"arguments": arguments, **({"name": name} if name else {})}}
    if index is not None:
        c["index"] = index
    if id:
        c |= {"id": id, "type": "function"}
    return {"tool_calls": [c]}


@pytest.mark.parametrize("chunks", [[], [{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0}}]],
                         ids=["nothing", "usage-only"])
async def test_stream_without_an_answer_is_a_bad_response(chunks: list[dict[str, Any]]) -> None:
    with pytest.raises(UpstreamBadResponse):
        await translate(chunks)


async def test_error_chunk_mid_stream_raises_after_what_was_already_sent() -> None:
    sent: list[dict[str, Any]] = []
    chunks = [chunk({"content": "Hel"}),
              {"error": {"message": "Provider disconnected", "code": 502},
               "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]},
              chunk({"content": "never"})]
    with pytest.raises(UpstreamServerError, match="Provider disconnected") as err:
        async for ev in chat_stream_to_anthropic(aiter(chunks), model=MODEL, message_id=MSG_ID):
            sent.append(ev)
    assert err.value.upstream_status == 502
    assert shape(sent) == ["message_start", "start 0 text", "delta 0 text_delta"]


async def test_rate_limit_error_chunk_is_typed() -> None:
    with pytest.raises(UpstreamRateLimited):
        await translate([{"error": {"message": "slow down", "code": 429}}])


async def test_null_error_field_is_not_an_error() -> None:
    events = await translate([chunk({"content": "ok"}, error=None), chunk(finish="stop")])
    assert fold_events(events)["content"] == [{"type": "text", "text": "ok"}]


async def test_leading_chunk_without_choices_and_other_choices_are_ignored() -> None:
    chunks = [{"id": "", "object": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]},  # Azure
              chunk({"content": "A"}),
              {"choices": [{"index": 1, "delta": {"content": "other choice"}, "finish_reason": None}]},
              chunk({"content": "B"}, "stop")]
    events = await translate(chunks)
    assert_stream_grammar(events)
    assert fold_events(events)["content"] == [{"type": "text", "text": "AB"}]


async def test_usage_in_the_finish_chunk() -> None:
    events = await translate([chunk({"content": "x"}), chunk(finish="length",
                                                             usage={"prompt_tokens": 7, "completion_tokens": 3})])
    message = fold_events(events)
    assert message["stop_reason"] == "max_tokens"
    assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (7, 3)


async def test_empty_answer_stream_equals_the_empty_answer() -> None:
    events = await translate([chunk({"role": "assistant", "content": ""}), chunk(finish="stop")])
    assert shape(events) == ["message_start", "message_delta end_turn", "message_stop"]
    answer = {**chat_answer({"content": None}), "usage": None}
    assert fold_events(events) == chat_to_anthropic(answer, model=MODEL, message_id=MSG_ID)


async def test_stream_ending_without_finish_reason_ends_the_turn() -> None:
    events = await translate([chunk({"content": "x"})])
    assert shape(events)[-2:] == ["message_delta end_turn", "message_stop"]


async def test_tool_calls_with_stop_finish_reason_are_tool_use() -> None:
    events = await translate([chunk(call(0, "call_1", "Read", '{"file_path": "/a"}')), chunk(finish="stop")])
    assert fold_events(events)["stop_reason"] == "tool_use"


async def test_tool_call_fragment_with_id_in_every_chunk() -> None:
    events = await translate([chunk(call(0, "call_1", "Read", '{"file_')), chunk(call(0, "call_1", None, 'path": 1}')),
                              chunk(finish="tool_calls")])
    [block] = fold_events(events)["content"]
    assert block == {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"file_path": 1}}


@pytest.mark.parametrize("index", [0, None], ids=["all-index-0", "no-index"])
async def test_parallel_calls_told_apart_by_id(index: int | None) -> None:
    # some servers send each whole call as index 0 (or with no index at all), one per chunk
    chunks = [chunk(call(index, "call_a", "Read", '{"file_path": "/a"}')),
              chunk(call(index, "call_b", "Read", '{"file_path": "/b"}')),
              chunk(finish="tool_calls")]
    message = fold_events(await translate(chunks))
    assert [(b["id"], b["input"]) for b in message["content"]] == [("call_a", {"file_path": "/a"}),
                                                                   ("call_b", {"file_path": "/b"})]


async def test_several_calls_in_one_chunk() -> None:
    both = {"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                            "function": {"name": "A", "arguments": "{}"}},
                           {"index": 1, "id": "call_b", "type": "function",
                            "function": {"name": "B", "arguments": '{"x": 1}'}}]}
    message = fold_events(await translate([chunk(both), chunk(finish="tool_calls")]))
    assert [(b["name"], b["input"]) for b in message["content"]] == [("A", {}), ("B", {"x": 1})]


async def test_interleaved_tool_call_fragments_are_a_bad_response() -> None:
    chunks = [chunk(call(0, "call_a", "A", '{"x"')), chunk(call(1, "call_b", "B", "{}")),
              chunk(call(0, None, None, ": 1}"))]
    with pytest.raises(UpstreamBadResponse, match="interleaved"):
        await translate(chunks)


async def test_reasoning_key_and_text_after_reasoning() -> None:
    events = await translate([chunk({"reasoning": "think "}), chunk({"reasoning": "more"}),
                              chunk({"content": "done"}), chunk(finish="stop")])
    assert fold_events(events)["content"] == [{"type": "thinking", "thinking": "think more", "signature": ""},
                                              {"type": "text", "text": "done"}]


async def test_refusal_delta_streams_as_text() -> None:
    events = await translate([chunk({"content": None, "refusal": "I can't "}), chunk({"refusal": "help."}),
                              chunk(finish="stop")])
    assert fold_events(events)["content"] == [{"type": "text", "text": "I can't help."}]


async def test_whitespace_between_argument_fragments_does_not_split_the_call() -> None:
    events = await translate([chunk(call(0, "call_1", "Read", '{"file_')), chunk({"content": "\n"}),
                              chunk(call(0, None, None, 'path": 1}')), chunk(finish="tool_calls")])
    [block] = fold_events(events)["content"]
    assert block["input"] == {"file_path": 1}


def test_max_output_tokens_caps_but_never_raises_the_model_limit() -> None:
    req = {"model": "claude-x", "max_tokens": 64000, "messages": [{"role": "user", "content": "hi"}]}
    assert anthropic_to_chat(req, ChatTarget(backend="openai", model="gpt-4o", max_output_tokens=100000),
                             stream=False)["max_tokens"] == 16384
    assert anthropic_to_chat(req, ChatTarget(backend="openai", model="gpt-4o", max_output_tokens=4000),
                             stream=False)["max_tokens"] == 4000
    assert anthropic_to_chat(req, ChatTarget(backend="llamacpp", model="local"), stream=False)["max_tokens"] == 64000


def test_claude_code_billing_line_is_not_sent_to_backends() -> None:
    req = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
           "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.38b;"},
                      {"type": "text", "text": "Be brief."}]}
    assert anthropic_to_chat(req, ChatTarget(backend="openai", model="gpt-4o"), stream=False)["messages"][0] == {
        "role": "system", "content": "Be brief."}
