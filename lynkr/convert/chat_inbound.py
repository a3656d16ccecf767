"""OpenAI Chat Completions clients (Cursor, Continue, opencode, SDKs) ⇄ the Anthropic hub.

Used when the backend does not speak Chat Completions itself; an OpenAI-compatible backend gets
the client's request passed through instead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

import orjson

from lynkr.convert.anthropic_stream import parse_tool_input
from lynkr.errors import InvalidRequest, LynkrError
from lynkr.wire.body import KnownTools

STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}

# reasoning_effort -> Anthropic thinking budget
EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
DEFAULT_MAX_TOKENS = 8192


def _text_parts(content: Any, field: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and p.get("type") in ("text", "refusal"))
    raise InvalidRequest("content must be a string or a list of parts", field=field)


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_content(content: Any, field: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("content must be a string or a list of parts", field=field)
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise InvalidRequest("image_url.url must be a string", field=f"{field}.{i}.image_url")
            blocks.append(_image_block(url))
        else:
            raise InvalidRequest(f"content part type {kind!r} is not supported; use text or image_url",
                                 field=f"{field}.{i}.type")
    return blocks


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add blocks as a turn, merging into the previous turn of the same role."""
    if messages and messages[-1]["role"] == role and isinstance(messages[-1]["content"], list):
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def chat_request_to_hub(body: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions request as an Anthropic Messages request (validating as it goes)."""
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidRequest("messages must be a non-empty array", field="messages")
    if not isinstance(body.get("model"), str):
        raise InvalidRequest("model must be a string", field="model")
    if body.get("n") not in (None, 1):
        raise InvalidRequest("only n=1 is supported when lynkr translates for this backend", field="n")

    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for i, msg in enumerate(raw_messages):
        field = f"messages.{i}"
        if not isinstance(msg, dict):
            raise InvalidRequest("each message must be an object", field=field)
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            text = _text_parts(content, f"{field}.content")
            if not messages:
                system.append(text)
            elif text:
                messages.append({"role": "system", "content": text})
        elif role == "user":
            user = _user_content(content, f"{field}.content")
            _append(messages, "user", [{"type": "text", "text": user}] if isinstance(user, str) else user)
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if text := _text_parts(content, f"{field}.content"):
                blocks.append({"type": "text", "text": text})
            for j, call in enumerate(msg.get("tool_calls") or ()):
                fn = call.get("function") or {}
                if not call.get("id") or not fn.get("name"):
                    raise InvalidRequest("tool calls need an id and function.name", field=f"{field}.tool_calls.{j}")
                args = fn.get("arguments")
                blocks.append({"type": "tool_use", "id": call["id"], "name": fn["name"],
                               "input": args if isinstance(args, dict) else parse_tool_input(args or "")})
            if blocks:
                _append(messages, "assistant", blocks)
        elif role in ("tool", "function"):
            call_id = msg.get("tool_call_id") or msg.get("name")
            if not call_id:
                raise InvalidRequest("tool messages need tool_call_id", field=f"{field}.tool_call_id")
            _append(messages, "user", [{"type": "tool_result", "tool_use_id": call_id,
                                        "content": _text_parts(content, f"{field}.content")}])
        else:
            raise InvalidRequest(f"unknown role {role!r}", field=f"{field}.role")
    if not messages:
        raise InvalidRequest("messages must contain at least one user message", field="messages")

    hub: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        hub["system"] = "\n\n".join(s for s in system if s)
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            hub[key] = body[key]
    stop = body.get("stop")
    if stop:
        hub["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    _tools(body, hub)
    effort = body.get("reasoning_effort")
    if effort in EFFORT_BUDGET:
        hub["thinking"] = {"type": "enabled", "budget_tokens": EFFORT_BUDGET[effort]}
        hub["output_config"] = {"effort": "low" if effort == "minimal" else effort}
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            hub.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": schema}
    elif fmt.get("type") == "json_object":
        hub["system"] = (hub.get("system", "") + "\n\nRespond with a single JSON object.").strip()
    if body.get("stream"):
        hub["stream"] = True
    return hub


def _tools(body: dict[str, Any], hub: dict[str, Any]) -> None:
    sent = body.get("tools") or ()
    tools = sent.derived(_known_hub_tools) if type(sent) is KnownTools else _hub_tools(sent)
    if not tools:
        return
    hub["tools"] = tools
    choice = body.get("tool_choice")
    if choice == "none":
        hub["tool_choice"] = {"type": "none"}
    elif choice == "required":
        hub["tool_choice"] = {"type": "any"}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        hub["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    elif choice == "auto":
        hub["tool_choice"] = {"type": "auto"}
    if body.get("parallel_tool_calls") is False:
        hub.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True


def _hub_tools(sent: Any) -> list[dict[str, Any]]:
    tools = []
    for i, tool in enumerate(sent):
        if tool.get("type", "function") != "function":
            continue  # OpenAI built-in tools cannot run on another backend
        fn = tool.get("function") or {}
        if not fn.get("name"):
            raise InvalidRequest("tools need function.name", field=f"tools.{i}.function.name")
        tools.append({"name": fn["name"], "description": fn.get("description", ""),
                      "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}})
    return tools


def _known_hub_tools(sent: KnownTools) -> KnownTools:
    """The hub form of tools the request reader has seen before, converted once (one object too, so that
    converters for other backends know it by identity)."""
    return KnownTools(_hub_tools(sent))


# --- answers back to the client ------------------------------------------------------------------


def chat_usage(usage: dict[str, Any]) -> dict[str, Any]:
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    completion = usage.get("output_tokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def hub_message_to_chat(message: dict[str, Any], *, model: str, completion_id: str | None = None) -> dict[str, Any]:
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            text.append(block["text"])
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input", {})).decode()
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": arguments}})
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if reasoning:
        out["reasoning_content"] = "".join(reasoning)
    if calls:
        out["tool_calls"] = calls
    return {
        "id": completion_id or "chatcmpl-" + message.get("id", "lynkr").removeprefix("msg_"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": out, "logprobs": None,
                     "finish_reason": STOP_TO_FINISH.get(message.get("stop_reason") or "end_turn", "stop")}],
        "usage": chat_usage(message.get("usage") or {}),
    }


async def hub_stream_to_chat(
    events: AsyncIterable[dict[str, Any]], *, model: str, include_usage: bool
) -> AsyncGenerator[dict[str, Any], None]:
    """Anthropic stream events -> Chat Completions chunks, as they arrive."""
    base: dict[str, Any] = {"id": "chatcmpl-lynkr", "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model}
    tool_index: dict[int, int] = {}  # content block index -> tool_calls index
    usage: dict[str, Any] = {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    async for ev in events:
        kind = ev["type"]
        if kind == "message_start":
            msg = ev["message"]
            base["id"] = "chatcmpl-" + msg.get("id", "lynkr").removeprefix("msg_")
            usage = dict(msg.get("usage") or {})
            yield chunk({"role": "assistant", "content": ""})
        elif kind == "content_block_start":
            block = ev["content_block"]
            if block["type"] == "tool_use":
                n = tool_index[ev["index"]] = len(tool_index)
                yield chunk({"tool_calls": [{"index": n, "id": block["id"], "type": "function",
                                             "function": {"name": block["name"], "arguments": ""}}]})
        elif kind == "content_block_delta":
            delta = ev["delta"]
            dt = delta["type"]
            if dt == "text_delta":
                yield chunk({"content": delta["text"]})
            elif dt == "thinking_delta":
                yield chunk({"reasoning_content": delta["thinking"]})
            elif dt == "input_json_delta" and delta["partial_json"]:
                yield chunk({"tool_calls": [{"index": tool_index[ev["index"]],
                                             "function": {"arguments": delta["partial_json"]}}]})
        elif kind == "message_delta":
            usage.update({k: v for k, v in (ev.get("usage") or {}).items() if v is not None})
            yield chunk({}, STOP_TO_FINISH.get(ev["delta"].get("stop_reason") or "end_turn", "stop"))
        elif kind == "error":
            raise LynkrError(str((ev.get("error") or {}).get("message", "backend stream error")))
    if include_usage:
        yield {**base, "choices": [], "usage": chat_usage(usage)}
