"""Anthropic Messages ⇄ Bedrock Converse / ConverseStream: requests, answers, the binary event-stream
decoder, and stream translation (pure functions, no server)."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from lynkr.convert.anthropic_stream import fold_events
from lynkr.convert.bedrock import (
    BedrockTarget,
    anthropic_to_converse,
    converse_stream_to_anthropic,
    converse_to_anthropic,
    tool_use_id,
)
from lynkr.convert.bedrock_models import claude_version, model_traits
from lynkr.convert.eventstream import EventStreamDecoder
from lynkr.errors import (
    InvalidRequest,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from tests.fakes.bedrock_server import encode_frame, error_frame, event_frame, exception_frame, frames
from tests.test_convert_openai import CLEAN_TOOLS, MID_SYSTEM, keys_anywhere, png_block
from tests.transcripts import (
    MODEL,
    aiter,
    assert_stream_grammar,
    assistant,
    chunkings,
    claude_code_request,
    collect,
    req,
    shape,
    user,
)

MSG_ID = "msg_feedface0123456789abcdef"
SONNET_45 = BedrockTarget("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
SONNET_35 = BedrockTarget("anthropic.claude-3-5-sonnet-20241022-v2:0")
NOVA = BedrockTarget("amazon.nova-pro-v1:0")
SIG = "EqQBCkYIBxgCKkBv0gS9c3lnbmF0dXJl"


def tool_specs() -> list[dict[str, Any]]:
    """The Claude Code tools, cleaned, as Converse toolSpecs (the same cleaning as for OpenAI)."""
    return [{"toolSpec": {"name": t["function"]["name"], "inputSchema": {"json": t["function"]["parameters"]},
                          "description": t["function"]["description"]}} for t in CLEAN_TOOLS]


CACHE = {"cachePoint": {"type": "default"}}


# --- the Claude Code request ------------------------------------------------------------------


def test_claude_code_request_to_converse() -> None:
    out = anthropic_to_converse(claude_code_request(), SONNET_45)
    assert out == {
        "system": [
            # the billing line is left out; cache_control marks become cache points after their block
            {"text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."}, CACHE,
            {"text": "You are an interactive agent that helps users with software engineering tasks. "
                     "Use the tools available to you."}, CACHE,
            {"text": MID_SYSTEM},  # the mid-conversation system turn joins the system prompt
        ],
        "messages": [
            {"role": "user", "content": [
                {"text": "<system-reminder>\nToday's date is 2026-11-21.\n</system-reminder>"},
                {"text": "Read README.md and config.toml, then grep for 設定"}, CACHE]},
            {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "Two files to read.", "signature": SIG}}},
                {"text": "Reading both."},
                {"toolUse": {"toolUseId": "toolu_01A", "name": "Read", "input": {"file_path": "/srv/app/README.md"}}},
                {"toolUse": {"toolUseId": "toolu_01B", "name": "Read",
                             "input": {"file_path": "/srv/app/config.toml", "limit": 200}}},
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "toolu_01A", "content": [{"text": "# App\nA demo."}],
                                "status": "success"}},
                {"toolResult": {"toolUseId": "toolu_01B", "content": [{"text": "File does not exist."}],
                                "status": "error"}},
                CACHE,
            ]},
        ],
        "inferenceConfig": {"maxTokens": 64_000},
        "toolConfig": {"tools": tool_specs()},  # web_search (a server tool) has no schema to offer
        # adaptive thinking at effort high, for a model that takes only a budget
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 16_384}},
    }
    for key in ("metadata", "context_management", "output_config", "cache_control", "defer_loading", "$schema",
                "$id", "$comment", "model", "stream", "tool_choice"):
        assert key not in keys_anywhere(out), key


def test_the_request_is_not_mutated() -> None:
    request = claude_code_request()
    anthropic_to_converse(request, SONNET_45)
    assert request == claude_code_request()


def test_full_tool_history_is_kept_over_several_turns() -> None:
    """Lynkr (Node) flattened earlier tool turns to text; every one stays a toolUse/toolResult pair here."""
    messages = [
        user("List files, then read a.py"),
        assistant([{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]),
        user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.py\nb.py"}]),
        assistant([{"type": "text", "text": "Now a.py."},
                   {"type": "tool_use", "id": "call:weird/id#1", "name": "Read", "input": {"file_path": "a.py"}}]),
        user([{"type": "tool_result", "tool_use_id": "call:weird/id#1", "content": ""},
              {"type": "text", "text": "And?"}]),
    ]
    out = anthropic_to_converse(req(messages=messages, tools=[{"name": "Bash", "input_schema": {"type": "object"}}]),
                                SONNET_45)
    assert out["messages"] == [
        {"role": "user", "content": [{"text": "List files, then read a.py"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "toolu_1", "name": "Bash",
                                                       "input": {"command": "ls"}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "toolu_1", "content": [{"text": "a.py\nb.py"}],
                                                     "status": "success"}}]},
        {"role": "assistant", "content": [{"text": "Now a.py."},
                                          {"toolUse": {"toolUseId": "call:weird_id_1", "name": "Read",
                                                       "input": {"file_path": "a.py"}}}]},
        {"role": "user", "content": [
            # an empty result still needs content: a blank text block is a ValidationException
            {"toolResult": {"toolUseId": "call:weird_id_1", "content": [{"text": "(no output)"}],
                            "status": "success"}},
            {"text": "And?"}]},
    ]
    assert out["toolConfig"]["tools"] == [{"toolSpec": {"name": "Bash", "inputSchema": {
        "json": {"type": "object", "properties": {}}}}}]


def test_tool_use_ids_fit_bedrocks_pattern() -> None:
    assert tool_use_id("toolu_01ABC") == "toolu_01ABC"
    assert tool_use_id("call_abc.1:2-3") == "call_abc.1:2-3"
    assert tool_use_id("a b/c") == "a_b_c"
    assert tool_use_id("x" * 100) == "x" * 64
    assert tool_use_id("") == "tool"


def test_tool_results_with_images_documents_and_errors() -> None:
    messages = [
        user("Shoot"),
        assistant([{"type": "tool_use", "id": "toolu_9", "name": "Screenshot", "input": {}}]),
        user([{"type": "text", "text": "here it is"},  # text before the result: results still come first
              {"type": "tool_result", "tool_use_id": "toolu_9", "is_error": True,
               "content": [{"type": "text", "text": "partial"}, png_block("SU1H"),
                           {"type": "text", "text": "   "},
                           {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                           "data": "log line"}}]}]),
    ]
    out = anthropic_to_converse(req(messages=messages), SONNET_45)
    assert out["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "toolu_9", "status": "error", "content": [
            {"text": "partial"},
            {"image": {"format": "png", "source": {"bytes": "SU1H"}}},
            {"text": "log line"},
        ]}},
        {"text": "here it is"},
    ]}


def test_history_tool_blocks_without_tools_still_get_a_tool_config() -> None:
    """Claude Code's side requests send the history without tools; Converse refuses toolUse blocks then."""
    messages = [user("hi"), assistant([{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]),
                user([{"type": "tool_result", "tool_use_id": "t1", "content": "x"},
                      {"type": "text", "text": "sum up"}])]
    out = anthropic_to_converse(req(messages=messages), SONNET_45)
    [spec] = out["toolConfig"]["tools"]
    assert spec["toolSpec"]["name"] == "Read"
    assert spec["toolSpec"]["inputSchema"] == {"json": {"type": "object", "properties": {}}}
    assert "toolChoice" not in out["toolConfig"]
    assert "toolConfig" not in anthropic_to_converse(req(), SONNET_45)


# --- content ----------------------------------------------------------------------------------


def test_images_in_every_form() -> None:
    content = [{"type": "text", "text": "What is this?"}, png_block("AAAA"),
               {"type": "image", "source": {"type": "url", "url": "data:image/jpeg;base64,QkJC"}},
               {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "V0VC"}},
               {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}}]
    out = anthropic_to_converse(req(messages=[user(content)]), SONNET_45)
    assert out["messages"] == [{"role": "user", "content": [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": "AAAA"}}},
        {"image": {"format": "jpeg", "source": {"bytes": "QkJC"}}},
        {"image": {"format": "webp", "source": {"bytes": "V0VC"}}},
        {"image": {"format": "gif", "source": {"bytes": "R0lG"}}},
    ]}]
    # the JSON body carries the base64 text as is (REST JSON blobs are base64 strings)
    assert b'"bytes":"AAAA"' in json.dumps(out, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"type": "url", "url": "https://example.com/cat.png"}, "source.type"),
        ({"type": "base64", "media_type": "image/bmp", "data": "Qk0="}, "source.media_type"),
    ],
)
def test_images_bedrock_cannot_take_are_invalid_requests(source: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        anthropic_to_converse(req(messages=[user([{"type": "image", "source": source}])]), SONNET_45)
    assert err.value.field == field and err.value.status == 400


def test_pdf_documents_become_document_blocks() -> None:
    content = [{"type": "document", "title": "Q3 report: final!", "source": {"type": "base64",
                                                                           "media_type": "application/pdf",
                                                                           "data": "JVBERi0x"}},
               {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
               {"type": "document", "title": "notes", "source": {"type": "text", "data": "be brief"}}]
    out = anthropic_to_converse(req(messages=[user(content)]), SONNET_45)
    assert out["messages"][0]["content"] == [
        {"document": {"format": "pdf", "name": "Q3 report- final-", "source": {"bytes": "JVBERi0x"}}},
        {"document": {"format": "pdf", "name": "document-2", "source": {"bytes": "JVBE"}}},
        {"text": "notes\nbe brief"},
    ]


def test_roles_alternate_and_blank_text_is_dropped() -> None:
    messages = [user("a"), user([{"type": "text", "text": "b"}, {"type": "text", "text": "  \n"}]),
                {"role": "system", "content": "mid"}, user("c"),
                assistant([{"type": "text", "text": ""}]),  # nothing left: the turn disappears
                assistant("d"), assistant([{"type": "text", "text": "e"}])]
    out = anthropic_to_converse(req(system="Sys", messages=messages), SONNET_45)
    assert out["system"] == [{"text": "Sys"}, {"text": "mid"}]
    assert out["messages"] == [
        {"role": "user", "content": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
        {"role": "assistant", "content": [{"text": "d"}, {"text": "e"}]},
    ]


def test_thinking_history_goes_back_to_claude_only_when_signed() -> None:
    history = [user("Hi"), assistant([
        {"type": "thinking", "thinking": "signed", "signature": SIG},
        {"type": "thinking", "thinking": "unsigned (from another backend)", "signature": ""},
        {"type": "redacted_thinking", "data": "UmVk"},
        {"type": "text", "text": "Hello"}]), user("Again")]
    claude = anthropic_to_converse(req(messages=history), SONNET_45)["messages"][1]["content"]
    assert claude == [{"reasoningContent": {"reasoningText": {"text": "signed", "signature": SIG}}},
                      {"reasoningContent": {"redactedContent": "UmVk"}},
                      {"text": "Hello"}]
    nova = anthropic_to_converse(req(messages=history), NOVA)["messages"][1]["content"]
    assert nova == [{"text": "Hello"}]


# --- options, tools, thinking -----------------------------------------------------------------


def test_inference_config_and_claude_extras() -> None:
    out = anthropic_to_converse(req(max_tokens=64_000, temperature=0.2, top_p=0.9, top_k=40,
                                    stop_sequences=["###", "END"]), SONNET_35)
    assert out["inferenceConfig"] == {"maxTokens": 8_192, "temperature": 0.2, "topP": 0.9,
                                      "stopSequences": ["###", "END"]}
    assert out["additionalModelRequestFields"] == {"top_k": 40}
    assert out["additionalModelResponseFieldPaths"] == ["/stop_sequence"]  # to learn which one matched


def test_other_model_families_get_the_portable_subset() -> None:
    request = req(max_tokens=64_000, top_k=40, stop_sequences=["x"], thinking={"type": "adaptive"},
                  system=[{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}])
    out = anthropic_to_converse(request, NOVA)
    assert out == {"system": [{"text": "S"}], "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
                   "inferenceConfig": {"maxTokens": 64_000, "stopSequences": ["x"]}}


def test_max_output_tokens_caps_everything() -> None:
    out = anthropic_to_converse(req(max_tokens=64_000), BedrockTarget(SONNET_45.model, max_output_tokens=4_000))
    assert out["inferenceConfig"]["maxTokens"] == 4_000


def test_cache_points_keep_their_ttl_and_cover_tools() -> None:
    tools = [{"name": "A", "input_schema": {"type": "object"}},
             {"name": "B", "description": "b", "input_schema": {"type": "object"},
              "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    out = anthropic_to_converse(req(tools=tools), SONNET_45)
    assert out["toolConfig"]["tools"][1:] == [
        {"toolSpec": {"name": "B", "description": "b", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        {"cachePoint": {"type": "default", "ttl": "1h"}}]
    # Claude 3.5 Sonnet v2 has no prompt caching on Bedrock: no cache points at all
    assert "cachePoint" not in keys_anywhere(anthropic_to_converse(req(tools=tools), SONNET_35))


@pytest.mark.parametrize(
    ("choice", "expected"),
    [(None, None), ({"type": "auto"}, None), ({"type": "none"}, None), ({"type": "any"}, {"any": {}}),
     ({"type": "tool", "name": "Read"}, {"tool": {"name": "Read"}})],
)
def test_tool_choice(choice: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    extra = {"tool_choice": choice} if choice else {}
    out = anthropic_to_converse(req(tools=[{"name": "Read", "input_schema": {"type": "object"}}], **extra),
                                SONNET_45)
    assert out["toolConfig"].get("toolChoice") == expected


@pytest.mark.parametrize(
    ("model", "thinking", "effort", "max_tokens", "expected"),
    [
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", {"type": "adaptive"}, None, 4_000, None),  # cannot think
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", {"type": "enabled", "budget_tokens": 4_000}, None, 8_000,
         {"type": "enabled", "budget_tokens": 4_000}),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", {"type": "adaptive"}, "low", 8_000,
         {"type": "enabled", "budget_tokens": 2_048}),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", {"type": "enabled", "budget_tokens": 10_000}, None, 4_000,
         {"type": "enabled", "budget_tokens": 3_999}),  # the budget must stay below max_tokens
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", {"type": "enabled", "budget_tokens": 10_000}, None, 1_000,
         None),  # no room for the 1024-token minimum
        ("global.anthropic.claude-opus-4-6-v1", {"type": "adaptive"}, None, 8_000, {"type": "adaptive"}),
        ("global.anthropic.claude-opus-4-6-v1", {"type": "enabled", "budget_tokens": 5_000}, None, 8_000,
         {"type": "enabled", "budget_tokens": 5_000}),
        ("anthropic.claude-opus-4-7", {"type": "enabled", "budget_tokens": 5_000}, None, 8_000,
         {"type": "adaptive"}),  # 4.7 and later reject budget_tokens
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", {"type": "disabled"}, None, 8_000, None),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", None, None, 8_000, None),
        ("meta.llama3-3-70b-instruct-v1:0", {"type": "adaptive"}, None, 8_000, None),
    ],
)
def test_thinking_per_model(model: str, thinking: dict[str, Any] | None, effort: str | None, max_tokens: int,
                            expected: dict[str, Any] | None) -> None:
    extra: dict[str, Any] = {"max_tokens": max_tokens}
    if thinking:
        extra["thinking"] = thinking
    if effort:
        extra["output_config"] = {"effort": effort}
    out = anthropic_to_converse(req(**extra), BedrockTarget(model))
    assert (out.get("additionalModelRequestFields") or {}).get("thinking") == expected


@pytest.mark.parametrize(
    ("model", "version", "limit"),
    [
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", (3, 5), 8_192),
        ("anthropic.claude-3-haiku-20240307-v1:0", (3, 0), 4_096),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", (3, 7), 64_000),
        ("anthropic.claude-opus-4-20250514-v1:0", (4, 0), 32_000),
        ("anthropic.claude-opus-4-1-20250805-v1:0", (4, 1), 32_000),
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", (4, 5), 64_000),
        ("anthropic.claude-haiku-4-5-20251001-v1:0", (4, 5), 64_000),
        ("anthropic.claude-opus-4-6-v1", (4, 6), 128_000),
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6", (4, 6), 64_000),
        ("amazon.nova-pro-v1:0", None, None),
    ],
)
def test_model_table(model: str, version: tuple[int, int] | None, limit: int | None) -> None:
    assert claude_version(model) == version
    assert model_traits(model).output_limit == limit


# --- non-streamed answers ---------------------------------------------------------------------


def converse_answer(content: list[dict[str, Any]], stop: str = "end_turn", **extra: Any) -> dict[str, Any]:
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
            "usage": {"inputTokens": 30, "outputTokens": 4, "totalTokens": 34}, "metrics": {"latencyMs": 5},
            **extra}


def test_text_answer() -> None:
    assert converse_to_anthropic(converse_answer([{"text": "Hi!"}]), model=MODEL, message_id=MSG_ID) == {
        "id": MSG_ID, "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 4, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }


def test_thinking_tools_and_cache_usage() -> None:
    resp = converse_answer([
        {"reasoningContent": {"reasoningText": {"text": "hm", "signature": SIG}}},
        {"reasoningContent": {"redactedContent": "UmVk"}},
        {"text": "Reading."},
        {"toolUse": {"toolUseId": "tooluse_x", "name": "Read", "input": {"file_path": "/a"}}},
    ], "tool_use")
    resp["usage"] |= {"cacheReadInputTokens": 20_000, "cacheWriteInputTokens": 1_500}
    message = converse_to_anthropic(resp, model=MODEL)
    assert message["content"] == [
        {"type": "thinking", "thinking": "hm", "signature": SIG},
        {"type": "redacted_thinking", "data": "UmVk"},
        {"type": "text", "text": "Reading."},
        {"type": "tool_use", "id": "tooluse_x", "name": "Read", "input": {"file_path": "/a"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 30, "output_tokens": 4, "cache_creation_input_tokens": 1_500,
                                "cache_read_input_tokens": 20_000}


@pytest.mark.parametrize(
    ("stop", "has_tool", "expected"),
    [("end_turn", False, "end_turn"), ("tool_use", True, "tool_use"), ("tool_use", False, "end_turn"),
     ("end_turn", True, "tool_use"), ("max_tokens", False, "max_tokens"), ("max_tokens", True, "max_tokens"),
     ("stop_sequence", False, "stop_sequence"), ("content_filtered", False, "refusal"),
     ("guardrail_intervened", False, "refusal"),
     ("model_context_window_exceeded", False, "model_context_window_exceeded"),
     ("malformed_tool_use", False, "end_turn"), ("something_new", False, "end_turn")],
)
def test_stop_reasons(stop: str, has_tool: bool, expected: str) -> None:
    content: list[dict[str, Any]] = [{"text": "x"}]
    if has_tool:
        content.append({"toolUse": {"toolUseId": "t", "name": "T", "input": {}}})
    assert converse_to_anthropic(converse_answer(content, stop), model=MODEL)["stop_reason"] == expected


def test_the_stop_sequence_that_matched() -> None:
    resp = converse_answer([{"text": "42"}], "stop_sequence", additionalModelResponseFields={"stop_sequence": "###"})
    message = converse_to_anthropic(resp, model=MODEL)
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "###")


def test_answer_without_output_is_a_bad_response() -> None:
    with pytest.raises(UpstreamBadResponse, match=r"output\.message"):
        converse_to_anthropic({"stopReason": "end_turn"}, model=MODEL)


# --- the event-stream decoder ------------------------------------------------------------------


SMALL_STREAM: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Answer: "}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Über 42 ✓"}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("messageStop", {"stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "###"}}),
    ("metadata", {"usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 1017,
                            "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 0},
                  "metrics": {"latencyMs": 310}}),
]
SMALL_BODY = {"output": {"message": {"role": "assistant", "content": [{"text": "Answer: Über 42 ✓"}]}},
              "stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "###"},
              "usage": SMALL_STREAM[-1][1]["usage"], "metrics": {"latencyMs": 310}}


def decode(pieces: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    decoder = EventStreamDecoder()
    out = [ev for piece in pieces for ev in decoder.feed(piece)]
    decoder.close()
    return out


def without_padding(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, {k: v for k, v in payload.items() if k != "p"}) for name, payload in events]


def test_decoder_at_every_split_point() -> None:
    data = frames(SMALL_STREAM)
    expected = without_padding(decode([data]))
    assert expected == SMALL_STREAM
    for i in range(len(data) + 1):
        assert without_padding(decode([data[:i], data[i:]])) == expected, i
    assert without_padding(decode([data[i:i + 1] for i in range(len(data))])) == expected  # byte by byte


def test_decoder_yields_each_event_as_soon_as_its_frame_is_whole() -> None:
    data = frames(SMALL_STREAM[:2])
    first_len = len(event_frame(*SMALL_STREAM[0]))
    decoder = EventStreamDecoder()
    assert list(decoder.feed(data[: first_len - 1])) == []
    assert [name for name, _ in decoder.feed(data[first_len - 1: first_len + 3])] == ["messageStart"]
    assert [name for name, _ in decoder.feed(data[first_len + 3:])] == ["contentBlockDelta"]
    decoder.close()


@pytest.mark.parametrize("where", ["prelude", "payload", "message-crc"])
def test_corrupted_frames_fail_their_crc(where: str) -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    offset = {"prelude": 2, "payload": len(frame) - 8, "message-crc": len(frame) - 1}[where]
    frame[offset] ^= 0x01
    with pytest.raises(UpstreamBadResponse, match="broken event-stream frame"):
        decode([bytes(frame)])


def test_a_stream_cut_inside_a_frame_is_a_bad_response() -> None:
    data = frames(SMALL_STREAM)
    with pytest.raises(UpstreamBadResponse, match="ended inside a frame"):
        decode([data[:-3]])


@pytest.mark.parametrize(
    ("exception", "cls"),
    [("throttlingException", UpstreamRateLimited), ("validationException", UpstreamBadRequest),
     ("modelStreamErrorException", UpstreamServerError), ("internalServerException", UpstreamServerError),
     ("serviceUnavailableException", UpstreamOverloaded), ("modelTimeoutException", UpstreamTimeout),
     ("somethingNewException", UpstreamServerError)],
)
def test_exception_frames_raise_after_the_events_before_them(exception: str, cls: type[UpstreamError]) -> None:
    data = frames(SMALL_STREAM[:2]) + exception_frame(exception, "Too many tokens, please wait.")
    decoder = EventStreamDecoder()
    seen: list[str] = []
    with pytest.raises(cls) as err:
        for name, _ in decoder.feed(data):  # one chunk holding both events and the exception
            seen.append(name)
    assert seen == ["messageStart", "contentBlockDelta"]
    assert exception in err.value.message and "Too many tokens" in err.value.message
    assert err.value.provider == "bedrock"


def test_model_stream_error_names_the_models_own_error() -> None:
    frame = exception_frame("modelStreamErrorException", "The model failed", originalStatusCode=529,
                            originalMessage="Overloaded")
    with pytest.raises(UpstreamServerError, match="529: Overloaded"):
        decode([frame])


def test_error_frames_raise() -> None:
    with pytest.raises(UpstreamServerError, match="InternalFailure: boom"):
        decode([error_frame("InternalFailure", "boom")])


def test_non_json_payload_is_a_bad_response() -> None:
    frame = encode_frame({":event-type": "messageStart", ":message-type": "event"}, b"<html>")
    with pytest.raises(UpstreamBadResponse, match="not JSON"):
        decode([frame])


def test_frames_are_length_prefixed_and_checksummed() -> None:
    frame = event_frame("messageStart", {"role": "assistant"}, padding=False)
    total, headers = struct.unpack(">II", frame[:8])
    assert total == len(frame) and frame[-len(b'{"role": "assistant"}') - 4:-4] == b'{"role": "assistant"}'
    assert headers == len(frame) - 12 - len(b'{"role": "assistant"}') - 4


# --- stream translation ------------------------------------------------------------------------


TOOLS_STREAM: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "The user wants "}}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "two files."}}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": SIG}}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Reading "}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "both: Über 設定."}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_Ab1", "name": "Read"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"file_path":'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": ' "/srv/Über.md"}'}}}),
    ("contentBlockStop", {"contentBlockIndex": 2}),
    ("contentBlockStart", {"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "tooluse_Cd2", "name": "Grep"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 3, "delta": {"toolUse": {"input": '{"pattern": "設定"}'}}}),
    ("contentBlockStop", {"contentBlockIndex": 3}),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": {"inputTokens": 1200, "outputTokens": 80, "totalTokens": 21580,
                            "cacheReadInputTokens": 20000, "cacheWriteInputTokens": 300},
                  "metrics": {"latencyMs": 812}}),
]
TOOLS_BODY = {
    "output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "The user wants two files.", "signature": SIG}}},
        {"text": "Reading both: Über 設定."},
        {"toolUse": {"toolUseId": "tooluse_Ab1", "name": "Read", "input": {"file_path": "/srv/Über.md"}}},
        {"toolUse": {"toolUseId": "tooluse_Cd2", "name": "Grep", "input": {"pattern": "設定"}}},
    ]}},
    "stopReason": "tool_use", "usage": TOOLS_STREAM[-1][1]["usage"], "metrics": {"latencyMs": 812},
}
REDACTED_STREAM: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": "UmVkYWN0"}}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "First."}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"text": "Second."}}),
    ("contentBlockStop", {"contentBlockIndex": 2}),
    ("messageStop", {"stopReason": "max_tokens"}),
    ("metadata", {"usage": {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10}, "metrics": {"latencyMs": 9}}),
]
REDACTED_BODY = {
    "output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"redactedContent": "UmVkYWN0"}}, {"text": "First."}, {"text": "Second."}]}},
    "stopReason": "max_tokens", "usage": REDACTED_STREAM[-1][1]["usage"], "metrics": {"latencyMs": 9},
}
TRANSCRIPTS = {"tools": (TOOLS_STREAM, TOOLS_BODY), "stop-sequence": (SMALL_STREAM, SMALL_BODY),
               "redacted": (REDACTED_STREAM, REDACTED_BODY)}


async def translate(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return await collect(converse_stream_to_anthropic(aiter(events), model=MODEL, message_id=MSG_ID))


@pytest.mark.parametrize("name", TRANSCRIPTS)
async def test_stream_folds_to_the_non_stream_answer(name: str) -> None:
    stream, body = TRANSCRIPTS[name]
    expected = converse_to_anthropic(body, model=MODEL, message_id=MSG_ID)
    for family, cuts in chunkings(frames(stream)).items():
        for pieces in cuts:
            events = await translate(decode(pieces))
            assert_stream_grammar(events)
            assert fold_events(events) == expected, (family, [len(p) for p in pieces])


async def test_tools_stream_events() -> None:
    events = await translate(TOOLS_STREAM)
    assert shape(events) == [
        "message_start",
        "start 0 thinking", "delta 0 thinking_delta", "delta 0 thinking_delta", "delta 0 signature_delta", "stop 0",
        "start 1 text", "delta 1 text_delta", "delta 1 text_delta", "stop 1",
        "start 2 tool_use Read", "delta 2 input_json_delta", "delta 2 input_json_delta", "stop 2",
        "start 3 tool_use Grep", "delta 3 input_json_delta", "stop 3",
        "message_delta tool_use", "message_stop",
    ]
    assert events[10]["content_block"]["id"] == "tooluse_Ab1"  # Bedrock's ids survive
    pieces = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
              and e["delta"]["type"] == "input_json_delta"]
    assert pieces == ['{"file_path":', ' "/srv/Über.md"}', '{"pattern": "設定"}']
    assert events[-2]["usage"] == {"input_tokens": 1200, "output_tokens": 80, "cache_creation_input_tokens": 300,
                                   "cache_read_input_tokens": 20000}


async def test_two_text_blocks_stay_two() -> None:
    events = await translate(REDACTED_STREAM)
    assert shape(events) == ["message_start", "start 0 redacted_thinking", "stop 0", "start 1 text",
                             "delta 1 text_delta", "stop 1", "start 2 text", "delta 2 text_delta", "stop 2",
                             "message_delta max_tokens", "message_stop"]


async def test_stream_without_message_stop_is_a_bad_response() -> None:
    with pytest.raises(UpstreamBadResponse, match="before messageStop"):
        await translate(SMALL_STREAM[:3])


async def test_stream_without_metadata_still_finishes() -> None:
    events = await translate(SMALL_STREAM[:-1])
    assert_stream_grammar(events)
    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "###"}
    assert events[-2]["usage"]["output_tokens"] == 0


async def test_exception_mid_stream_raises_after_what_was_already_sent() -> None:
    data = frames(SMALL_STREAM[:3]) + exception_frame("modelStreamErrorException", "model crashed")
    sent: list[dict[str, Any]] = []

    async def events() -> Any:
        decoder = EventStreamDecoder()
        for ev in decoder.feed(data):
            yield ev

    with pytest.raises(UpstreamServerError, match="model crashed"):
        async for ev in converse_stream_to_anthropic(events(), model=MODEL, message_id=MSG_ID):
            sent.append(ev)
    assert shape(sent) == ["message_start", "start 0 text", "delta 0 text_delta", "delta 0 text_delta"]
