"""Tool conversion is memoised by content (Claude Code resends the same ~24 tools every turn): an equal tool
set converts once, a changed one converts again, and no request can change what another one gets."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from lynkr.convert.bedrock import BedrockTarget, anthropic_to_converse
from lynkr.convert.gemini import GeminiTarget, anthropic_to_gemini
from lynkr.convert.schema import Serialized, ToolsMemo, function_tools
from lynkr.providers.http import dump_json
from tests.transcripts import claude_code_request, req


def tools() -> list[dict[str, Any]]:
    """Claude Code's client tools (those with a schema), a fresh copy each time, as each request parses."""
    return [t for t in copy.deepcopy(claude_code_request()["tools"]) if "input_schema" in t]


def test_an_equal_tool_set_is_converted_once_and_a_changed_one_again() -> None:
    calls: list[int] = []
    memo = ToolsMemo(lambda ts: calls.append(len(ts)) or [t["name"] for t in ts])
    first = memo(tools())
    assert memo(tools()) is first and calls == [len(first)]
    changed = tools()
    changed[0]["input_schema"] = {"type": "object", "properties": {"other": {"type": "string"}}}
    assert memo(changed) is not first and len(calls) == 2  # same names, another schema: converted again


def test_a_request_changing_its_tools_afterwards_does_not_change_the_memo() -> None:
    mine = tools()
    converted = function_tools(mine)
    mine[0]["input_schema"]["properties"]["injected"] = {"type": "string"}
    assert "injected" not in converted[0]["function"]["parameters"]["properties"]
    again = function_tools(tools())
    assert again is converted and "injected" not in again[0]["function"]["parameters"]["properties"]


def test_gemini_and_bedrock_convert_a_tool_set_once() -> None:
    gemini = [anthropic_to_gemini(req(tools=tools()), GeminiTarget(model="gemini-2.5-flash")) for _ in range(2)]
    assert gemini[0]["tools"][0]["functionDeclarations"] is gemini[1]["tools"][0]["functionDeclarations"]
    target = BedrockTarget("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    bedrock = [anthropic_to_converse(req(tools=tools()), target)["toolConfig"]["tools"] for _ in range(2)]
    schemas = [[t["toolSpec"]["inputSchema"]["json"] for t in ts if "toolSpec" in t] for ts in bedrock]
    assert schemas[0] and all(a is b for a, b in zip(*schemas, strict=True))


def test_converted_tools_carry_their_json_and_backend_bodies_copy_it_in() -> None:
    converted = function_tools(tools())
    assert type(converted) is Serialized and orjson.loads(converted.json) == list(converted)
    body = {"model": "m", "tools": converted, "messages": [{"role": "user", "content": "hi"}]}
    assert orjson.loads(dump_json(body)) == orjson.loads(orjson.dumps({**body, "tools": list(converted)}))
