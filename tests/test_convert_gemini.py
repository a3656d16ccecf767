"""Anthropic Messages ⇄ Gemini generateContent: requests, schemas, answers and streams (pure functions)."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from lynkr.convert.anthropic_stream import fold_events
from lynkr.convert.gemini import (
    MAX_OUTPUT_TOKENS,
    PLACEHOLDER_SIGNATURE,
    GeminiTarget,
    anthropic_to_gemini,
    gemini_events,
    gemini_stream_to_anthropic,
    gemini_to_anthropic,
)
from lynkr.convert.gemini_schema import gemini_schema
from lynkr.errors import (
    InvalidRequest,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamServerError,
)
from tests.fakes.gemini_server import Invalid, check
from tests.transcripts import (
    MODEL,
    aiter,
    assert_stream_grammar,
    assistant,
    chunkings,
    claude_code_request,
    collect,
    decode_sse_json,
    line_endings,
    req,
    shape,
    user,
)

HERE = Path(__file__).parent / "transcripts"
TRANSCRIPTS = ("gemini_thinking_parallel_tools", "gemini_text_max_tokens")
MSG_ID = "msg_0123456789abcdef01234567"
FLASH = GeminiTarget(model="gemini-2.5-flash")
PNG = "iVBORw0KGgo="


def sse(name: str) -> bytes:
    return (HERE / f"{name}.sse").read_bytes()


def body(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text("utf-8"))


def same_ids(message: dict[str, Any]) -> dict[str, Any]:
    """Minted tool ids are random: number them in order so two answers compare."""
    n = itertools.count()
    ids = [b["id"] for b in message["content"] if b["type"] == "tool_use"]
    assert all(i.startswith("toolu_") for i in ids) and len(set(ids)) == len(ids)
    content = [{**b, "id": f"toolu_{next(n)}"} if b["type"] == "tool_use" else b for b in message["content"]]
    return {**message, "content": content}


# --- the Claude Code request ---------------------------------------------------------------------


def test_claude_code_request_to_gemini() -> None:
    out = anthropic_to_gemini(claude_code_request(), FLASH)
    check(out, "gemini-3-pro-preview")  # what Gemini itself would refuse, the fake refuses
    system = out["systemInstruction"]["parts"][0]["text"]
    assert system.startswith("You are a Claude agent") and "x-anthropic-billing-header" not in system
    assert system.endswith("Available agent types: general-purpose, Explore. Environment: linux, cwd /srv/app.")
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user"]
    model_parts = out["contents"][1]["parts"]
    assert [next(k for k in p if k in ("text", "functionCall")) for p in model_parts] == \
        ["text", "text", "functionCall", "functionCall"]
    assert model_parts[0]["thought"] is True
    results = out["contents"][2]["parts"]
    assert results == [
        {"functionResponse": {"name": "Read", "response": {"output": "# App\nA demo."}}},
        {"functionResponse": {"name": "Read", "response": {"error": "Error: File does not exist."}}},
    ]
    decls = {d["name"]: d for d in out["tools"][0]["functionDeclarations"]}
    assert set(decls) == {"Read", "WebFetch", "TaskCreate"}
    assert "web_search" not in json.dumps(out["tools"])  # Anthropic server tools have no Gemini form
    task = decls["TaskCreate"]["parameters"]["properties"]["tasks"]
    assert task["items"]["properties"]["owner"] == {"type": "string", "nullable": True}
    assert out["generationConfig"] == {"maxOutputTokens": 64000,
                                       "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}}
    assert "metadata" not in out and "context_management" not in json.dumps(out)


def test_the_request_is_not_mutated() -> None:
    original = claude_code_request()
    request = copy.deepcopy(original)
    anthropic_to_gemini(request, FLASH)
    assert request == original


def test_roles_alternate_and_system_turns_are_hoisted() -> None:
    out = anthropic_to_gemini(req(system="Be brief.", messages=[
        user("one"), {"role": "system", "content": [{"type": "text", "text": "Mid."}]}, user("two"),
        assistant("ok"), assistant([{"type": "text", "text": "more"}]), user([]),
    ]), FLASH)
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nMid."}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
                               {"role": "model", "parts": [{"text": "ok"}, {"text": "more"}]}]


def test_no_system_no_tools_no_generation_config() -> None:
    out = anthropic_to_gemini({"model": MODEL, "messages": [user("hi")]}, FLASH)
    assert out == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


# --- images and documents --------------------------------------------------------------------------


def test_images_and_documents() -> None:
    out = anthropic_to_gemini(req(messages=[user([
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a/chart.png?x=1"}},
        {"type": "image", "source": {"type": "url", "url": "data:image/webp;base64,UklGRg=="}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/spec"}},
        {"type": "document", "title": "notes", "source": {"type": "text", "media_type": "text/plain", "data": "a b"}},
    ])]), FLASH)
    assert out["contents"][0]["parts"] == [
        {"text": "compare"},
        {"inlineData": {"mimeType": "image/jpeg", "data": PNG}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a/chart.png?x=1"}},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/spec"}},
        {"text": "notes\na b"},
    ]
    check(out, "gemini-2.5-flash")


def test_file_sources_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidRequest, match=r"source\.type"):
        anthropic_to_gemini(req(messages=[user([{"type": "image", "source": {"type": "file", "file_id": "f"}}])]),
                            FLASH)


def test_tool_results_answer_by_name_and_carry_images() -> None:
    out = anthropic_to_gemini(req(messages=[
        user("shoot"),
        assistant([{"type": "tool_use", "id": "toolu_9", "name": "Screenshot", "input": {}},
                   {"type": "tool_use", "id": "toolu_8", "name": "Bash", "input": {"command": "ls"}}]),
        user([{"type": "tool_result", "tool_use_id": "toolu_8", "content": "a.txt"},
              {"type": "tool_result", "tool_use_id": "toolu_9", "is_error": True, "content": [
                  {"type": "text", "text": "half"},
                  {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
              {"type": "text", "text": "go on"}]),
    ]), FLASH)
    check(out, "gemini-2.5-flash")
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "Bash", "response": {"output": "a.txt"}}},
        {"functionResponse": {"name": "Screenshot", "response": {"error": "Error: half"}}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"text": "go on"},
    ]
    assert out["contents"][1]["parts"][0]["functionCall"] == {"name": "Screenshot", "args": {}}


# --- thought signatures ------------------------------------------------------------------------------

SIG_A, SIG_B, SIG_C = "c2lnLWE=", "c2lnLWI=", "c2lnLWM="
FC_READ = {"functionCall": {"name": "Read", "args": {"file_path": "/a"}}}
FC_LS = {"functionCall": {"name": "Bash", "args": {"command": "ls"}}}


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([{"text": "plan", "thought": True}, {**FC_READ, "thoughtSignature": SIG_A}, FC_LS],
                     id="gemini-3-parallel-calls"),
        pytest.param([{"text": "plan", "thought": True, "thoughtSignature": SIG_A}, {"text": "ok"}],
                     id="signed-thought"),
        pytest.param([{"text": "Let me look."}, {**FC_READ, "thoughtSignature": SIG_A}], id="text-then-call"),
        pytest.param([{"text": "The answer.", "thoughtSignature": SIG_A}], id="signed-last-text"),
        pytest.param([{"text": "a", "thoughtSignature": SIG_A}, {**FC_READ, "thoughtSignature": SIG_B}],
                     id="signed-text-and-call"),
        pytest.param([{"text": "t1", "thought": True, "thoughtSignature": SIG_A},
                      {"text": "t2", "thought": True, "thoughtSignature": SIG_B},
                      {**FC_READ, "thoughtSignature": SIG_C}, {"text": "and"}], id="two-signed-thoughts"),
        pytest.param([{**FC_READ, "thoughtSignature": SIG_A}, {**FC_LS, "thoughtSignature": SIG_B}],
                     id="sequential-signed-calls"),
    ],
)
def test_signatures_come_back_on_the_part_that_carried_them(parts: list[dict[str, Any]]) -> None:
    answer = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}
    message = gemini_to_anthropic(answer, model=MODEL)
    # the client sends the answer back as history; Gemini gets its parts back, signatures in place
    again = anthropic_to_gemini(req(messages=[user("q"), assistant(message["content"]), user("next")]), FLASH)
    assert again["contents"][1]["parts"] == parts


def test_function_calls_without_signatures_get_the_placeholder_in_the_current_turn_only() -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a"}}
    call2 = {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {"command": "ls"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}
    result2 = {"type": "tool_result", "tool_use_id": "toolu_2", "content": "y"}
    out = anthropic_to_gemini(req(messages=[
        user("old question"), assistant([call]), user([result]), assistant("old answer"),
        user("new question"), assistant([call, call2]), user([result, result2]), assistant([call2]), user([result2]),
    ]), GeminiTarget("gemini-3-pro-preview"))
    check(out, "gemini-3-pro-preview")
    signatures = [[p.get("thoughtSignature") for p in c["parts"]] for c in out["contents"] if c["role"] == "model"]
    assert signatures == [[None], [None], [PLACEHOLDER_SIGNATURE, None], [PLACEHOLDER_SIGNATURE]]
    with pytest.raises(Invalid, match="thought_signature"):  # the fake really checks it
        check({**out, "contents": [*out["contents"][:-3], {"role": "model", "parts": [FC_LS]}, out["contents"][-1]]},
              "gemini-3-pro-preview")


def test_redacted_thinking_is_dropped_and_thoughts_go_back_as_thoughts() -> None:
    out = anthropic_to_gemini(req(messages=[user("q"), assistant([
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "thinking", "thinking": "hmm", "signature": ""},
        {"type": "text", "text": "A."}])]), FLASH)
    assert out["contents"][1]["parts"] == [{"text": "hmm", "thought": True}, {"text": "A."}]


# --- tools, tool_choice, generation config ----------------------------------------------------------

TOOL = {"name": "Write", "description": "Write a file", "input_schema": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}
NO_ARGS = {"name": "Now", "description": "The time", "input_schema": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (None, None),
        ({"type": "auto"}, {"mode": "AUTO"}),
        ({"type": "any"}, {"mode": "ANY"}),
        ({"type": "tool", "name": "Write"}, {"mode": "ANY", "allowedFunctionNames": ["Write"]}),
        ({"type": "none"}, {"mode": "NONE"}),
    ],
)
def test_tool_choice(choice: dict[str, Any] | None, config: dict[str, Any] | None) -> None:
    out = anthropic_to_gemini(req(tools=[TOOL, NO_ARGS], **({"tool_choice": choice} if choice else {})), FLASH)
    check(out, "gemini-2.5-flash")
    assert out["tools"] == [{"functionDeclarations": [
        {"name": "Write", "description": "Write a file",
         "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
        {"name": "Now", "description": "The time"},  # no parameters: none declared (an empty object is refused)
    ]}]
    assert out.get("toolConfig") == ({"functionCallingConfig": config} if config else None)


def test_sampling_stops_and_limits() -> None:
    out = anthropic_to_gemini(req(max_tokens=128000, temperature=0.2, top_p=0.9, top_k=40,
                                  stop_sequences=["a", "b", "c", "d", "e", "f"]), FLASH)
    assert out["generationConfig"] == {"maxOutputTokens": MAX_OUTPUT_TOKENS, "temperature": 0.2, "topP": 0.9,
                                       "topK": 40, "stopSequences": ["a", "b", "c", "d", "e"]}
    capped = anthropic_to_gemini(req(max_tokens=32000), GeminiTarget("gemini-2.5-pro", max_output_tokens=8192))
    assert capped["generationConfig"]["maxOutputTokens"] == 8192
    check(out, "gemini-2.5-flash")


@pytest.mark.parametrize(
    ("model", "thinking", "output_config", "expected"),
    [
        ("gemini-2.5-flash", {"type": "enabled", "budget_tokens": 8000}, None,
         {"thinkingBudget": 8000, "includeThoughts": True}),
        ("gemini-2.5-flash", {"type": "enabled", "budget_tokens": 31999}, None,
         {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-2.5-pro", {"type": "enabled", "budget_tokens": 31999}, None,
         {"thinkingBudget": 31999, "includeThoughts": True}),
        ("gemini-2.5-pro", {"type": "enabled", "budget_tokens": 64000}, None,
         {"thinkingBudget": 32768, "includeThoughts": True}),
        ("gemini-2.5-flash", {"type": "adaptive"}, {"effort": "high"}, {"thinkingBudget": -1, "includeThoughts": True}),
        ("gemini-3-pro-preview", {"type": "adaptive"}, {"effort": "low"},
         {"thinkingLevel": "low", "includeThoughts": True}),
        ("gemini-3-flash-preview", {"type": "enabled", "budget_tokens": 20000}, None,
         {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-2.0-flash", {"type": "enabled", "budget_tokens": 8000}, None, None),  # cannot think
        ("gemini-2.5-flash", {"type": "disabled"}, None, None),
        ("gemini-2.5-flash", None, {"effort": "high"}, None),
    ],
)
def test_thinking_config(model: str, thinking: dict[str, Any] | None, output_config: dict[str, Any] | None,
                         expected: dict[str, Any] | None) -> None:
    extra: dict[str, Any] = {}
    if thinking:
        extra["thinking"] = thinking
    if output_config:
        extra["output_config"] = output_config
    out = anthropic_to_gemini(req(**extra), GeminiTarget(model))
    assert out["generationConfig"].get("thinkingConfig") == expected
    check(out, model)


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
              "additionalProperties": False}
    out = anthropic_to_gemini(req(output_config={"format": {"type": "json_schema", "schema": schema}}), FLASH)
    assert out["generationConfig"]["responseMimeType"] == "application/json"
    assert out["generationConfig"]["responseSchema"] == {"type": "object", "properties": {"title": {"type": "string"}},
                                                         "required": ["title"]}
    check(out, "gemini-2.5-flash")
    with_tools = anthropic_to_gemini(req(tools=[TOOL], output_config={"format": {"type": "json_schema",
                                                                                 "schema": schema}}), FLASH)
    assert "responseMimeType" not in with_tools["generationConfig"]


# --- schema sanitising -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                      "properties": {"a": {"type": "string", "format": "uri"}}, "additionalProperties": False},
                     {"type": "object", "properties": {"a": {"type": "string"}}}, id="meta-and-formats"),
        pytest.param({"type": "object", "properties": {"t": {"type": "string", "format": "date-time"},
                                                       "n": {"type": "number", "format": "double"},
                                                       "i": {"type": "integer", "format": "int64"},
                                                       "e": {"type": "string", "format": "email"}}},
                     {"type": "object", "properties": {"t": {"type": "string", "format": "date-time"},
                                                       "n": {"type": "number", "format": "double"},
                                                       "i": {"type": "integer", "format": "int64"},
                                                       "e": {"type": "string"}}}, id="supported-formats"),
        pytest.param({"type": ["string", "null"], "description": "maybe"},
                     {"type": "string", "description": "maybe", "nullable": True}, id="type-array-with-null"),
        pytest.param({"type": ["string", "integer"]},
                     {"anyOf": [{"type": "string"}, {"type": "integer"}]}, id="type-array-of-two"),
        pytest.param({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
                     {"type": "integer", "minimum": 1, "nullable": True}, id="anyOf-with-null"),
        pytest.param({"oneOf": [{"type": "string"}, {"type": "boolean"}]},
                     {"anyOf": [{"type": "string"}, {"type": "boolean"}]}, id="oneOf"),
        pytest.param({"const": "fixed"}, {"type": "string", "enum": ["fixed"]}, id="const"),
        pytest.param({"type": "string", "enum": ["a", None]}, {"type": "string", "enum": ["a"], "nullable": True},
                     id="enum-with-null"),
        pytest.param({"type": "integer", "enum": [1, 2], "description": "Level"},
                     {"type": "integer", "description": "Level (one of: 1, 2)"}, id="integer-enum"),
        pytest.param({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10, "multipleOf": 2},
                     {"type": "integer"}, id="exclusive-bounds"),
        pytest.param({"type": "array"}, {"type": "array", "items": {"type": "string"}}, id="array-without-items"),
        pytest.param({"type": "array", "items": [{"type": "integer"}, {"type": "string"}]},
                     {"type": "array", "items": {"type": "integer"}}, id="tuple-items"),
        pytest.param({"type": "array", "prefixItems": [{"type": "number"}]},
                     {"type": "array", "items": {"type": "number"}}, id="prefix-items"),
        pytest.param({"type": "object", "properties": {"m": {"type": "object", "additionalProperties":
                                                             {"type": "string"}, "propertyNames": {"pattern": "^x"}}}},
                     {"type": "object", "properties": {"m": {"type": "object"}}}, id="free-form-map"),
        pytest.param({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "ghost"]},
                     {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                     id="required-filtered"),
        pytest.param({"type": "string", "properties": {"x": {}}, "required": ["x"]}, {"type": "string"},
                     id="properties-on-a-string"),
        pytest.param({"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                                {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
                     {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                      "required": ["a", "b"]}, id="allOf"),
        pytest.param({"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
                      "$defs": {"item": {"type": "object", "description": "An item",
                                         "properties": {"name": {"type": "string", "examples": ["x"]}}}}},
                     {"type": "object", "properties": {"items": {"type": "array", "items": {
                         "type": "object", "description": "An item", "properties": {"name": {"type": "string"}}}}}},
                     id="ref-inlined"),
        pytest.param({"type": "object", "properties": {"node": {"$ref": "#/definitions/node"}},
                      "definitions": {"node": {"type": "object", "properties": {
                          "value": {"type": "integer"}, "next": {"$ref": "#/definitions/node",
                                                                "description": "the rest"}}}}},
                     {"type": "object", "properties": {"node": {"type": "object", "properties": {
                         "value": {"type": "integer"}, "next": {"type": "object", "description": "the rest"}}}}},
                     id="recursive-ref"),
        pytest.param({"type": "object", "properties": {"x": True, "y": {"$ref": "#/$defs/missing"}}},
                     {"type": "object", "properties": {"x": {}, "y": {"type": "object"}}}, id="odd-subschemas"),
        pytest.param({"type": "object", "properties": {"s": {"type": "string", "minLength": 1, "maxLength": 9,
                                                             "pattern": "^a", "title": "S", "default": "a"}}},
                     {"type": "object", "properties": {"s": {"type": "string", "minLength": 1, "maxLength": 9,
                                                             "pattern": "^a", "title": "S"}}}, id="kept-keywords"),
    ],
)
def test_gemini_schema(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    original = copy.deepcopy(schema)
    assert gemini_schema(schema) == expected
    assert schema == original
    check({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
           "tools": [{"functionDeclarations": [{"name": "f", "description": "", "parameters": expected}]}]},
          "gemini-2.5-flash")


# --- answers -----------------------------------------------------------------------------------------


def candidate(parts: list[dict[str, Any]], finish: str | None = "STOP", **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if finish:
        c["finishReason"] = finish
    return {"candidates": [c], **extra}


def test_recorded_answer() -> None:
    message = gemini_to_anthropic(body("gemini_thinking_parallel_tools"), model=MODEL, message_id=MSG_ID)
    assert message["id"] == MSG_ID and message["model"] == MODEL
    kinds = [b["type"] for b in message["content"]]
    assert kinds == ["thinking", "text", "thinking", "tool_use", "tool_use"]
    assert message["content"][0]["thinking"].endswith("I'll call Read twice.")
    assert message["content"][0]["signature"] == ""
    assert message["content"][2] == {"type": "thinking", "thinking": "",
                                     "signature": "CiQB0e2Kb7Xk3m9qS0lHTkFUVVJFLWZha2UtZm9yLXRlc3Rz8Q=="}
    assert [b["input"] for b in message["content"][3:]] == [{"file_path": "/srv/app/README.md"},
                                                            {"file_path": "/srv/app/config.toml", "limit": 200}]
    assert message["stop_reason"] == "tool_use"
    # input excludes the cached prompt tokens; output includes the thoughts
    assert message["usage"] == {"input_tokens": 806, "output_tokens": 320, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 1024}


@pytest.mark.parametrize(
    ("finish", "stop"),
    [("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "refusal"), ("RECITATION", "refusal"),
     ("PROHIBITED_CONTENT", "refusal"), ("MALFORMED_FUNCTION_CALL", "end_turn"), ("OTHER", "end_turn"),
     ("FINISH_REASON_UNSPECIFIED", "end_turn")],
)
def test_finish_reasons(finish: str, stop: str) -> None:
    assert gemini_to_anthropic(candidate([{"text": "x"}], finish), model=MODEL)["stop_reason"] == stop


def test_a_function_call_makes_it_tool_use_whatever_the_finish_reason() -> None:
    message = gemini_to_anthropic(candidate([FC_READ, FC_READ], "STOP"), model=MODEL)
    ids = [b["id"] for b in message["content"]]
    assert message["stop_reason"] == "tool_use" and len(set(ids)) == 2 and all(i.startswith("toolu_") for i in ids)


def test_blocked_prompt_is_a_refusal() -> None:
    message = gemini_to_anthropic({"promptFeedback": {"blockReason": "SAFETY"},
                                   "usageMetadata": {"promptTokenCount": 9}}, model=MODEL)
    assert message["content"] == [] and message["stop_reason"] == "refusal"
    assert message["usage"]["input_tokens"] == 9


def test_odd_parts_are_skipped_and_odd_args_tolerated() -> None:
    message = gemini_to_anthropic(candidate([
        {"executableCode": {"language": "PYTHON", "code": "1+1"}},
        {"text": "two"},
        {"functionCall": {"name": "Now"}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
    ]), model=MODEL)
    assert [b["type"] for b in message["content"]] == ["text", "tool_use"]
    assert message["content"][1]["input"] == {}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}},
         UpstreamRateLimited),
        ({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}, UpstreamBadRequest),
        ({"error": {"message": "who knows"}}, UpstreamServerError),
        ({"candidates": []}, UpstreamBadResponse),
        ({"usageMetadata": {}}, UpstreamBadResponse),
        (candidate([{"text": "no finish"}], None), UpstreamBadResponse),
    ],
)
def test_bad_answers(answer: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        gemini_to_anthropic(answer, model=MODEL)


# --- streams -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRANSCRIPTS)
@pytest.mark.parametrize("ending", ["lf", "crlf", "cr"])
async def test_stream_folds_to_the_non_stream_answer(name: str, ending: str) -> None:
    expected = same_ids(gemini_to_anthropic(body(name), model=MODEL, message_id=MSG_ID))
    data = line_endings(sse(name), ending)
    for family, cuts in chunkings(data).items():
        for pieces in cuts:
            events = await collect(gemini_stream_to_anthropic(aiter(decode_sse_json(pieces)), model=MODEL,
                                                              message_id=MSG_ID))
            assert_stream_grammar(events)
            assert same_ids(fold_events(events)) == expected, family


async def test_thinking_tools_stream_events() -> None:
    events = await collect(gemini_stream_to_anthropic(aiter(decode_sse_json([sse(TRANSCRIPTS[0])])), model=MODEL))
    assert shape(events) == [
        "message_start",
        "start 0 thinking", "delta 0 thinking_delta", "delta 0 thinking_delta", "stop 0",
        "start 1 text", "delta 1 text_delta", "delta 1 text_delta", "stop 1",
        "start 2 thinking", "delta 2 signature_delta", "stop 2",
        "start 3 tool_use Read", "delta 3 input_json_delta", "stop 3",
        "start 4 tool_use Read", "delta 4 input_json_delta", "stop 4",
        "message_delta tool_use", "message_stop",
    ]


async def test_text_stream_carries_its_signature_after_the_text() -> None:
    events = await collect(gemini_stream_to_anthropic(aiter(decode_sse_json([sse(TRANSCRIPTS[1])])), model=MODEL))
    assert shape(events) == ["message_start", "start 0 text", "delta 0 text_delta", "delta 0 text_delta",
                             "delta 0 text_delta", "stop 0", "start 1 thinking", "delta 1 signature_delta",
                             "stop 1", "message_delta max_tokens", "message_stop"]
    assert events[-2]["usage"]["output_tokens"] == 16


async def test_stream_error_chunk_raises_after_what_was_sent() -> None:
    chunks = [candidate([{"text": "partial"}], None),
              {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}]
    seen: list[dict[str, Any]] = []
    with pytest.raises(UpstreamOverloaded, match="overloaded"):
        async for ev in gemini_stream_to_anthropic(aiter(chunks), model=MODEL):
            seen.append(ev)
    assert [e["type"] for e in seen] == ["message_start", "content_block_start", "content_block_delta"]


@pytest.mark.parametrize("chunks", [[], [candidate([{"text": "cut"}], None)]])
async def test_stream_without_a_finish_is_a_bad_response(chunks: list[dict[str, Any]]) -> None:
    with pytest.raises(UpstreamBadResponse):
        await collect(gemini_stream_to_anthropic(aiter(chunks), model=MODEL))


def test_thought_text_and_its_signature_in_separate_chunks_fold_as_one_part() -> None:
    streamed = gemini_events([candidate([{"text": "a", "thought": True}], None),
                              candidate([{"text": "b", "thought": True}], None),
                              candidate([{"text": "", "thought": True, "thoughtSignature": SIG_A}], None),
                              candidate([{"text": "c", "thought": True}], None),
                              candidate([{"text": "done"}])], model=MODEL, message_id=MSG_ID)
    whole = gemini_events([candidate([{"text": "ab", "thought": True, "thoughtSignature": SIG_A},
                                      {"text": "c", "thought": True}, {"text": "done"}])],
                          model=MODEL, message_id=MSG_ID)
    assert fold_events(streamed) == fold_events(whole)
    assert [b.get("signature") for b in fold_events(whole)["content"]] == [SIG_A, "", None]
