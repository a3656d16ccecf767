"""OpenAI Responses API clients (Codex CLI) ⇄ the Anthropic hub.

Requests: ``input`` items (messages of every role, function and custom tool calls and their
outputs; reasoning items are dropped because no other backend can read their encrypted content)
and tools (``function``, ``custom`` free-form tools such as Codex's ``apply_patch``, ``namespace``
groups) become an Anthropic Messages request. Built-in tools (``web_search``, ``tool_search``,
``file_search``...) are left out on purpose: no backend behind lynkr can run them.

Answers: an Anthropic message becomes a Response object, and an Anthropic event stream becomes the
exact event sequence the openai SDK's ``responses.stream()`` helper and Codex require, ending with
``response.completed`` (or ``response.incomplete`` / ``response.failed``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from lynkr.convert.anthropic_stream import parse_tool_input, random_hex
from lynkr.convert.chat_inbound import EFFORT_BUDGET
from lynkr.errors import InvalidRequest, LynkrError

DEFAULT_MAX_OUTPUT_TOKENS = 32_000
_NAME_MAX = 64


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_hex()}"


@dataclass
class ToolMap:
    """Hub tool name -> (kind, client name, namespace); kind is "function" or "custom"."""

    tools: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)

    def add(self, kind: str, name: str, namespace: str | None) -> str:
        hub_name = f"{namespace}__{name}"[:_NAME_MAX] if namespace else name
        self.tools[hub_name] = (kind, name, namespace)
        return hub_name

    def hub_name(self, name: str, namespace: str | None) -> str:
        return f"{namespace}__{name}"[:_NAME_MAX] if namespace else name

    def lookup(self, hub_name: str) -> tuple[str, str, str | None]:
        return self.tools.get(hub_name, ("function", hub_name, None))


def _custom_schema(tool: dict[str, Any]) -> dict[str, Any]:
    fmt = tool.get("format") or {}
    desc = "The tool's free-form input, as plain text."
    if fmt.get("type") == "grammar" and fmt.get("definition"):
        desc += f" It must follow this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
    return {"type": "object", "properties": {"input": {"type": "string", "description": desc}},
            "required": ["input"], "additionalProperties": False}


def _convert_tools(
    tools: list[dict[str, Any]], tool_map: ToolMap, namespace: str | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tool in tools:
        kind = tool.get("type")
        if kind == "function":
            name = tool_map.add("function", tool["name"], namespace)
            out.append({"name": name, "description": tool.get("description") or "",
                        "input_schema": tool.get("parameters") or {"type": "object", "properties": {}}})
        elif kind == "custom":
            name = tool_map.add("custom", tool["name"], namespace)
            out.append({"name": name, "description": tool.get("description") or "",
                        "input_schema": _custom_schema(tool)})
        elif kind == "namespace":
            out.extend(_convert_tools(tool.get("tools") or [], tool_map, tool.get("name")))
    return out


def _parts_to_blocks(content: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest("content must be a string or a list of parts", field=field)
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "summary_text"):
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "refusal":
            blocks.append({"type": "text", "text": part.get("refusal", "")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise InvalidRequest("input_image needs image_url (file_id is not supported)",
                                     field=f"{field}.{i}.image_url")
            if url.startswith("data:"):
                header, _, data = url.partition(",")
                blocks.append({"type": "image", "source": {"type": "base64", "data": data,
                                                           "media_type": header[5:].split(";", 1)[0] or "image/png"}})
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
        else:
            raise InvalidRequest(f"content part type {kind!r} is not supported", field=f"{field}.{i}.type")
    return blocks


def _push(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": list(blocks)})


def _output_text(output: Any) -> str | list[dict[str, Any]]:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _parts_to_blocks(output, "output")
    return orjson.dumps(output).decode()


def responses_request_to_hub(body: dict[str, Any], history: list[dict[str, Any]] | None = None
                             ) -> tuple[dict[str, Any], ToolMap]:
    """A Responses request (after ``history`` from ``previous_response_id``) as a hub request."""
    if not isinstance(body.get("model"), str):
        raise InvalidRequest("model must be a string", field="model")
    raw = body.get("input")
    if raw is None:
        raise InvalidRequest("input is required", field="input")
    items = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise InvalidRequest("input must be a string or an array of items", field="input")

    tool_map = ToolMap()
    tools = _convert_tools(list(body.get("tools") or []), tool_map)
    system: list[str] = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    messages: list[dict[str, Any]] = []
    for i, item in enumerate([*(history or []), *items]):
        f = f"input.{i}"
        if not isinstance(item, dict):
            raise InvalidRequest("each input item must be an object", field=f)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            blocks = _parts_to_blocks(item.get("content"), f"{f}.content")
            if role in ("system", "developer"):
                text = "\n\n".join(b["text"] for b in blocks if b["type"] == "text")
                if not messages:
                    system.append(text)
                elif text:
                    messages.append({"role": "system", "content": text})
            elif role in ("user", "assistant"):
                _push(messages, role, blocks)
            else:
                raise InvalidRequest(f"unknown role {role!r}", field=f"{f}.role")
        elif kind in ("function_call", "custom_tool_call"):
            if not item.get("call_id") or not item.get("name"):
                raise InvalidRequest("tool calls need call_id and name", field=f)
            name = tool_map.hub_name(item["name"], item.get("namespace"))
            args = (parse_tool_input(item.get("arguments") or "") if kind == "function_call"
                    else {"input": item.get("input", "")})
            _push(messages, "assistant", [{"type": "tool_use", "id": item["call_id"], "name": name, "input": args}])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            if not item.get("call_id"):
                raise InvalidRequest("tool outputs need call_id", field=f"{f}.call_id")
            _push(messages, "user", [{"type": "tool_result", "tool_use_id": item["call_id"],
                                      "content": _output_text(item.get("output", ""))}])
        elif kind == "additional_tools":
            tools.extend(_convert_tools(item.get("tools") or [], tool_map))
        # reasoning, item_reference and built-in tool call items: nothing another backend can use
    if not messages:
        raise InvalidRequest("input must contain at least one user message", field="input")

    hub: dict[str, Any] = {"model": body["model"], "messages": messages,
                           "max_tokens": body.get("max_output_tokens") or DEFAULT_MAX_OUTPUT_TOKENS}
    if system:
        hub["system"] = "\n\n".join(s for s in system if s)
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            hub[key] = body[key]
    if tools:
        hub["tools"] = tools
        hub_choice = _tool_choice(body.get("tool_choice"), tool_map)
        if hub_choice:
            hub["tool_choice"] = hub_choice
        if body.get("parallel_tool_calls") is False:
            hub.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
    effort = (body.get("reasoning") or {}).get("effort")
    if effort in EFFORT_BUDGET or effort == "xhigh":
        hub["thinking"] = {"type": "enabled", "budget_tokens": EFFORT_BUDGET.get(effort, 32_000)}
        hub["output_config"] = {"effort": {"minimal": "low", "xhigh": "high"}.get(effort, effort)}
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        hub.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": fmt["schema"]}
    if body.get("stream"):
        hub["stream"] = True
    return hub, tool_map


def _tool_choice(choice: Any, tool_map: ToolMap) -> dict[str, Any] | None:
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom") and choice.get("name"):
        return {"type": "tool", "name": tool_map.hub_name(choice["name"], choice.get("namespace"))}
    return None


# --- answers -------------------------------------------------------------------------------------


def response_usage(usage: dict[str, Any]) -> dict[str, Any]:
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    out = usage.get("output_tokens") or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": out, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + out}


def response_skeleton(body: dict[str, Any], response_id: str, created_at: float, status: str) -> dict[str, Any]:
    return {
        "id": response_id, "object": "response", "created_at": created_at, "status": status,
        "model": body.get("model"), "output": [], "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True), "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "temperature": body.get("temperature"), "top_p": body.get("top_p"),
        "previous_response_id": body.get("previous_response_id"), "reasoning": body.get("reasoning"),
        "store": body.get("store", True), "text": body.get("text") or {"format": {"type": "text"}},
        "truncation": body.get("truncation", "disabled"), "metadata": body.get("metadata") or {},
        "usage": None,
    }


def _tool_item(block: dict[str, Any], tool_map: ToolMap, item_id: str, status: str, args: str) -> dict[str, Any]:
    kind, name, namespace = tool_map.lookup(block["name"])
    if kind == "custom":
        item = {"type": "custom_tool_call", "id": item_id, "call_id": block["id"], "name": name,
                "input": _custom_input(args), "status": status}
    else:
        item = {"type": "function_call", "id": item_id, "call_id": block["id"], "name": name,
                "arguments": args, "status": status}
    if namespace:
        item["namespace"] = namespace
    return item


def _custom_input(args: str) -> str:
    value = parse_tool_input(args).get("input", "")
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _finish(response: dict[str, Any], stop_reason: str | None, usage: dict[str, Any]) -> None:
    response["usage"] = response_usage(usage)
    if stop_reason in ("max_tokens", "model_context_window_exceeded"):
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    elif stop_reason == "refusal":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "content_filter"}
    else:
        response["status"] = "completed"


def hub_message_to_response(message: dict[str, Any], *, body: dict[str, Any], tool_map: ToolMap,
                            response_id: str | None = None, created_at: float | None = None) -> dict[str, Any]:
    response = response_skeleton(body, response_id or new_id("resp"), created_at or time.time(), "completed")
    output: list[dict[str, Any]] = response["output"]
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "thinking":
            output.append({"type": "reasoning", "id": new_id("rs"),
                           "summary": [{"type": "summary_text", "text": block.get("thinking", "")}]})
        elif kind == "text":
            part = {"type": "output_text", "text": block["text"], "annotations": [], "logprobs": []}
            if output and output[-1]["type"] == "message":
                output[-1]["content"].append(part)
            else:
                output.append({"type": "message", "id": new_id("msg"), "role": "assistant", "status": "completed",
                               "content": [part]})
        elif kind == "tool_use":
            output.append(_tool_item(block, tool_map, new_id("fc"), "completed",
                                     orjson.dumps(block.get("input") or {}).decode()))
    _finish(response, message.get("stop_reason"), message.get("usage") or {})
    return response


@dataclass
class _Item:
    index: int
    kind: str  # message | reasoning | tool
    data: dict[str, Any]
    buffer: list[str] = field(default_factory=list)


class ResponsesStream:
    """Anthropic events -> Responses stream events for one answer (holds the sequence counter)."""

    def __init__(self, body: dict[str, Any], tool_map: ToolMap, response_id: str | None = None,
                 created_at: float | None = None) -> None:
        self.body = body
        self.tool_map = tool_map
        self.response = response_skeleton(body, response_id or new_id("resp"), created_at or time.time(),
                                          "in_progress")
        self.seq = 0
        self.done_items: list[dict[str, Any]] = []

    def _ev(self, kind: str, **fields: Any) -> dict[str, Any]:
        ev = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return ev

    def _snapshot(self) -> dict[str, Any]:
        return {**self.response, "output": list(self.done_items)}

    async def translate(self, events: AsyncIterable[dict[str, Any]]) -> AsyncGenerator[dict[str, Any], None]:
        open_items: dict[int, _Item] = {}
        stop_reason: str | None = None
        usage: dict[str, Any] = {}
        started = False
        async for ev in events:
            if not started:  # only once the backend has accepted the request
                started = True
                yield self._ev("response.created", response=self._snapshot())
                yield self._ev("response.in_progress", response=self._snapshot())
            kind = ev["type"]
            if kind == "message_start":
                usage = dict(ev["message"].get("usage") or {})
            elif kind == "content_block_start":
                for out in self._start(ev, open_items):
                    yield out
            elif kind == "content_block_delta":
                for out in self._delta(ev, open_items):
                    yield out
            elif kind == "content_block_stop":
                for out in self._stop(open_items.pop(ev["index"])):
                    yield out
            elif kind == "message_delta":
                stop_reason = ev["delta"].get("stop_reason")
                usage.update({k: v for k, v in (ev.get("usage") or {}).items() if v is not None})
        for item in list(open_items.values()):
            for out in self._stop(item):
                yield out
        _finish(self.response, stop_reason, usage)
        final = self._snapshot()
        yield self._ev("response.incomplete" if final["status"] == "incomplete" else "response.completed",
                       response=final)

    def failed(self, err: LynkrError) -> dict[str, Any]:
        """The closing event when the backend fails mid-answer."""
        response = self._snapshot()
        response["status"] = "failed"
        response["error"] = {"code": err.openai_type, "message": err.message}
        return self._ev("response.failed", response=response)

    def _start(self, ev: dict[str, Any], open_items: dict[int, _Item]) -> list[dict[str, Any]]:
        block = ev["content_block"]
        index = len(self.done_items) + len(open_items)
        btype = block["type"]
        if btype == "text":
            item = _Item(index, "message", {"type": "message", "id": new_id("msg"), "role": "assistant",
                                            "status": "in_progress", "content": []})
            open_items[ev["index"]] = item
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            return [self._ev("response.output_item.added", output_index=index, item=item.data),
                    self._ev("response.content_part.added", item_id=item.data["id"], output_index=index,
                             content_index=0, part=part)]
        if btype == "thinking":
            item = _Item(index, "reasoning", {"type": "reasoning", "id": new_id("rs"), "summary": []})
            open_items[ev["index"]] = item
            return [self._ev("response.output_item.added", output_index=index, item=item.data),
                    self._ev("response.reasoning_summary_part.added", item_id=item.data["id"], output_index=index,
                             summary_index=0, part={"type": "summary_text", "text": ""})]
        if btype == "tool_use":
            item = _Item(index, "tool", _tool_item(block, self.tool_map, new_id("fc"), "in_progress", ""))
            open_items[ev["index"]] = item
            return [self._ev("response.output_item.added", output_index=index, item=dict(item.data))]
        return []

    def _delta(self, ev: dict[str, Any], open_items: dict[int, _Item]) -> list[dict[str, Any]]:
        item = open_items.get(ev["index"])
        if item is None:
            return []
        delta = ev["delta"]
        dt = delta["type"]
        text = delta.get("text") or delta.get("thinking") or delta.get("partial_json") or ""
        if not text or dt == "signature_delta":
            return []
        item.buffer.append(text)
        ids = {"item_id": item.data["id"], "output_index": item.index}
        if item.kind == "message":
            return [self._ev("response.output_text.delta", **ids, content_index=0, delta=text, logprobs=[])]
        if item.kind == "reasoning":
            return [self._ev("response.reasoning_summary_text.delta", **ids, summary_index=0, delta=text)]
        if item.data["type"] == "function_call":
            return [self._ev("response.function_call_arguments.delta", **ids, delta=text)]
        return []  # custom tool input is JSON-wrapped upstream: sent whole when the block ends

    def _stop(self, item: _Item) -> list[dict[str, Any]]:
        text = "".join(item.buffer)
        ids = {"item_id": item.data["id"], "output_index": item.index}
        out: list[dict[str, Any]] = []
        data = item.data
        if item.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            data.update(status="completed", content=[part])
            out += [self._ev("response.output_text.done", **ids, content_index=0, text=text, logprobs=[]),
                    self._ev("response.content_part.done", **ids, content_index=0, part=part)]
        elif item.kind == "reasoning":
            part = {"type": "summary_text", "text": text}
            data["summary"] = [part]
            out += [self._ev("response.reasoning_summary_text.done", **ids, summary_index=0, text=text),
                    self._ev("response.reasoning_summary_part.done", **ids, summary_index=0, part=part)]
        elif data["type"] == "function_call":
            arguments = text or "{}"
            data.update(status="completed", arguments=arguments)
            out.append(self._ev("response.function_call_arguments.done", **ids, arguments=arguments))
        else:
            value = _custom_input(text)
            data.update(status="completed", input=value)
            out += [self._ev("response.custom_tool_call_input.delta", **ids, delta=value),
                    self._ev("response.custom_tool_call_input.done", **ids, input=value)]
        self.done_items.append(data)
        out.append(self._ev("response.output_item.done", output_index=item.index, item=data))
        return out
