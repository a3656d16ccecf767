"""Request bodies (lynkr.wire.body): tools resent byte for byte are parsed once and shared as one object, and
whatever the bytes, the parsed body is what ``orjson.loads`` gives, with the same errors."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from lynkr.convert import hub
from lynkr.convert.chat_inbound import chat_request_to_hub
from lynkr.convert.schema import ToolsMemo
from lynkr.errors import InvalidRequest
from lynkr.providers.http import dump_json
from lynkr.wire.anthropic import validate_messages_request
from lynkr.wire.body import KnownTools, ToolsSeen, load_json
from tests.fakes.script import Answer, Script
from tests.transcripts import claude_code_request


def claude_code_tools() -> list[dict[str, Any]]:
    """The recorded Claude Code tools, one description padded: bodies under 4 KB take the plain path."""
    tools = claude_code_request()["tools"]
    return [{**tools[0], "description": tools[0]["description"] + " Read carefully." * 300}, *tools[1:]]


def body(**over: Any) -> dict[str, Any]:
    return claude_code_request() | {"tools": claude_code_tools()} | over


def parse(seen: ToolsSeen, raw: bytes) -> dict[str, Any]:
    got = seen.parse(raw, validate_messages_request)
    assert got == orjson.loads(raw)  # whatever path it took
    return got


def test_tools_resent_byte_for_byte_are_one_shared_object() -> None:
    seen = ToolsSeen()
    raw = orjson.dumps(body())
    first, second = parse(seen, raw), parse(seen, raw)
    assert type(first["tools"]) is KnownTools and second["tools"] is first["tools"]
    assert list(second) == list(orjson.loads(raw))  # "tools" kept its place among the keys
    other = parse(seen, orjson.dumps(body(messages=[{"role": "user", "content": "another turn"}])))
    assert other["tools"] is first["tools"] and other["messages"][0]["content"] == "another turn"


def test_changed_tools_are_another_object() -> None:
    seen = ToolsSeen()
    tools = claude_code_tools()
    first = parse(seen, orjson.dumps(body()))
    changed = [{**tools[0], "description": "changed"}, *tools[1:]]
    second = parse(seen, orjson.dumps(body(tools=changed)))
    assert second["tools"] is not first["tools"] and second["tools"][0]["description"] == "changed"


@pytest.mark.parametrize("shape", ["nested tools key", "escaped key", "duplicate key", "spaces", "no tools"])
def test_unusual_json_parses_as_orjson_does(shape: str) -> None:
    seen = ToolsSeen()
    plain = orjson.dumps(body())
    parse(seen, plain)  # these tools are now known
    tools_json = orjson.dumps(claude_code_tools()).decode()
    small = '[{"name":"Only","input_schema":{"type":"object","properties":{}}}]'
    text = plain.decode()
    if shape == "nested tools key":  # the known tools' bytes inside a message, other tools at the top
        message = '{"role":"user","content":[{"type":"text","text":"x","cache_control":{"tools":' + tools_json + "}}]}"
        text = text.replace('"tools":' + tools_json, '"tools":' + small).replace(
            '"messages":[', '"messages":[' + message + ",", 1)
        assert text.count(tools_json) == 1 and text.count(small) == 1
    elif shape == "escaped key":
        text = text.replace('"tools":', '"\\u0074ools":', 1)
    elif shape == "duplicate key":  # the last value counts, in the first one's place (as orjson reads it)
        text = text[:-1] + ',"tools":' + small + "}"
    elif shape == "spaces":
        text = json.dumps(orjson.loads(plain), indent=2)
    else:
        text = orjson.dumps({k: v for k, v in orjson.loads(plain).items() if k != "tools"}).decode()
    got = parse(seen, text.encode())
    if shape in ("nested tools key", "duplicate key"):
        assert [t["name"] for t in got["tools"]] == ["Only"]


def test_errors_are_those_of_the_plain_path() -> None:
    seen = ToolsSeen()
    raw = orjson.dumps(body())
    parse(seen, raw)
    for bad in (raw[:-1], b"", raw.replace(b'"messages":[', b'"messages":[1,', 1),
                raw.replace(b'"messages":[', b'"messages":["\xff",', 1), b"[" + raw + b"]"):
        with pytest.raises(InvalidRequest) as caught:
            seen.parse(bad, validate_messages_request)
        with pytest.raises(InvalidRequest) as plain:
            validate_messages_request(load_json(bad))
        assert (caught.value.message, caught.value.field) == (plain.value.message, plain.value.field)


def test_invalid_tools_are_not_remembered_and_the_list_is_bounded() -> None:
    seen = ToolsSeen(size=2)
    bad = orjson.dumps(body(tools=[{"name": 1}] * 200))
    for _ in range(2):
        with pytest.raises(InvalidRequest):
            seen.parse(bad, validate_messages_request)
    assert seen._find(orjson.dumps([{"name": 1}] * 200), validate_messages_request) is None
    tools = claude_code_tools()
    sets = [[*tools[:-1], {**tools[-1], "max_uses": i}] for i in range(3)]
    for s in sets:
        parse(seen, orjson.dumps(body(tools=s)))
    known = [seen._find(orjson.dumps(s), validate_messages_request) is not None for s in sets]
    assert known == [False, True, True]  # the oldest went


def test_known_tools_convert_once_by_identity() -> None:
    seen = ToolsSeen()
    raw = orjson.dumps(body())
    calls: list[int] = []
    memo = ToolsMemo(lambda ts: calls.append(len(ts)) or [t["name"] for t in ts])
    results = [memo(hub.function_tools(parse(seen, raw))) for _ in range(3)]
    assert results[0] is results[1] is results[2] and len(calls) == 1
    tools = parse(seen, raw)["tools"]
    assert hub.function_tools({"tools": tools}) is tools.functions
    assert all("input_schema" in t for t in tools.functions) and len(tools.functions) < len(tools)  # server tools


async def test_through_the_server_the_backend_gets_each_requests_own_tools(
    lynkr_openai: tuple[TestClient, Script],
) -> None:
    client, script = lynkr_openai
    tools = claude_code_tools()
    sent = [body(), body(), body(tools=[{**tools[1], "description": "changed"}, *tools[2:]]), body()]
    for request in sent:
        script.enqueue(Answer(text="ok"))
        resp = await client.post("/v1/messages", data=orjson.dumps(request),
                                 headers={"content-type": "application/json"})
        assert resp.status == 200, await resp.text()
    got = [[t["function"]["description"] for t in r["tools"]] for r in script.requests]
    want = [[t.get("description", "") for t in hub.function_tools(r)] for r in sent]
    assert got == want and got[2] != got[0]


def accept(body: Any) -> Any:
    """A validator that takes anything (the Chat route's checks only the model; its converter checks tools)."""
    return body


def chat_body() -> dict[str, Any]:
    """A Chat Completions request carrying Claude Code's tools in OpenAI's form."""
    return {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                                        "parameters": t["input_schema"]}}
                      for t in claude_code_tools() if "input_schema" in t]}


def test_known_tools_go_to_the_backend_as_the_clients_own_bytes() -> None:
    seen = ToolsSeen()
    raw = json.dumps(chat_body(), indent=1).encode()  # not orjson's spelling: the bytes must be the client's
    parsed = [seen.parse(raw, accept) for _ in range(2)]
    tools = parsed[1]["tools"]
    assert type(tools) is KnownTools and tools is parsed[0]["tools"] and tools.json in raw
    sent = dump_json({"model": "m", "tools": tools})
    assert tools.json in sent and orjson.loads(sent)["tools"] == orjson.loads(raw)["tools"]
    hub = [chat_request_to_hub(p) for p in parsed]
    assert type(hub[0]["tools"]) is KnownTools and hub[1]["tools"] is hub[0]["tools"]
    assert hub[0]["tools"] == chat_request_to_hub(orjson.loads(raw))["tools"]


async def test_chat_clients_tools_reach_the_backend_unchanged(lynkr_openai: tuple[TestClient, Script]) -> None:
    client, script = lynkr_openai
    changed = chat_body()
    changed["tools"][0]["function"]["description"] = "changed"
    sent = [chat_body(), chat_body(), changed]
    for request in sent:
        script.enqueue(Answer(text="ok"))
        resp = await client.post("/v1/chat/completions", data=orjson.dumps(request),
                                 headers={"content-type": "application/json", "authorization": "Bearer x"})
        assert resp.status == 200, await resp.text()
        await resp.read()
    assert [r["tools"] for r in script.requests] == [r["tools"] for r in sent]


def test_tools_one_route_took_unchecked_are_checked_by_another() -> None:
    """The Chat route takes any tools (its converter checks them); the same bytes sent to /v1/messages must
    still meet the Messages validator."""
    seen = ToolsSeen()
    chat_tools = chat_body()["tools"]
    raw = orjson.dumps(body(tools=chat_tools))  # Chat-shaped tools in a Messages body: no top-level name
    assert type(seen.parse(raw, accept)["tools"]) is KnownTools
    with pytest.raises(InvalidRequest) as caught:
        seen.parse(raw, validate_messages_request)
    assert caught.value.field == "tools.0.name"
