"""A fake OpenAI Responses API: ``POST /v1/responses`` (OpenAI) and Azure OpenAI's two Responses URL forms,
``/openai/responses?api-version=...`` and ``/openai/v1/responses``.

It answers a scripted ``Answer`` the way the Responses API does: output items (a ``reasoning`` item with its
summary parts, and ``encrypted_content`` when the request ``include``s it; a ``message`` item; one
``function_call`` item per call), ``usage`` with cached input tokens counted in ``input_tokens``, and
``status: incomplete`` for a length stop. Streams are SSE with ``event:`` lines, in the order OpenAI sends
them (``response.created``, ``response.in_progress``, ``output_item.added`` ... ``output_item.done`` per
item, ``response.completed`` with usage), numbered by ``sequence_number``, with no ``[DONE]``.

Like the real API it checks a request first and answers 400 ``invalid_request_error`` for what the API
refuses: unknown parameters (``messages``, ``max_tokens``, ``stop``...), ``max_output_tokens`` under 16,
strict tools (the default) whose schema strict mode cannot take, input items of unknown types or roles,
content parts a role cannot carry, a ``function_call_output`` without its ``function_call``, a reasoning
item without encrypted content this server issued, and an unknown ``previous_response_id``. Azure paths
want an ``api-key`` header (and, on the preview form, an ``api-version`` that has the Responses API);
OpenAI's wants ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.openai_server import send as send_failure_or_raw
from tests.fakes.script import Answer, Failure, Raw, Script, cut

SCRIPT = web.AppKey("script", Script)

PARAMS = {"model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
          "temperature", "top_p", "reasoning", "text", "store", "stream", "include", "previous_response_id",
          "metadata", "user", "truncation", "service_tier", "prompt_cache_key", "safety_identifier", "background",
          "max_tool_calls", "top_logprobs", "stream_options", "prompt", "conversation"}
ROLE_PARTS = {"user": {"input_text", "input_image", "input_file"}, "system": {"input_text"},
              "developer": {"input_text"}, "assistant": {"output_text", "refusal"}}
BUILT_IN_TOOLS = {"web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation", "mcp"}
AZURE_MIN_VERSION = "2025-03-01-preview"


@dataclass
class ResponsesAnswer(Answer):
    """An answer with what only the Responses API has."""

    encrypted: str = ""  # the reasoning item's encrypted_content (sent when the request includes it)
    fail_after_first_delta: str = ""  # response.failed with this message right after the first text delta
    reasoning_tokens: int = 0


@dataclass
class State:
    paths: list[str] = field(default_factory=list)  # every request's path and query, in order
    stored: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # response id -> its output items
    issued: set[str] = field(default_factory=set)  # encrypted_content values this server handed out


STATE = web.AppKey("state", State)


class Invalid(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def _invalid(exc: Invalid) -> web.Response:
    return web.json_response({"error": {"message": str(exc), "type": "invalid_request_error", "param": exc.param,
                                        "code": exc.code}}, status=400)


# --- the request check ---------------------------------------------------------------------------


def _strict_ok(schema: Any) -> bool:
    """What strict mode demands of every object in a schema: additionalProperties false, every property required."""
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object":
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False or set(schema.get("required") or []) != set(props):
            return False
        return all(_strict_ok(p) for p in props.values())
    return _strict_ok(schema.get("items"))


def check(body: dict[str, Any], state: State) -> None:
    for key in body:
        if key not in PARAMS:
            raise Invalid(f"Unsupported parameter: '{key}'.", key, "unknown_parameter")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise Invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < 16):
        raise Invalid(f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got "
                      f"{limit} instead.", "max_output_tokens", "integer_below_min_value")
    for i, tool in enumerate(body.get("tools") or []):
        if tool.get("type") in BUILT_IN_TOOLS:
            continue
        if tool.get("type") not in ("function", "custom") or not tool.get("name") or "function" in tool:
            raise Invalid("tools must be {type: function, name, parameters}", f"tools[{i}]")
        if tool["type"] == "function" and tool.get("strict", True) and not _strict_ok(tool.get("parameters")):
            raise Invalid(f"Invalid schema for function '{tool['name']}': In context=(), 'additionalProperties' is "
                          "required to be supplied and to be false.", f"tools[{i}].parameters",
                          "invalid_function_parameters")
    calls: set[str] = set()
    previous = body.get("previous_response_id")
    if previous is not None:
        if previous not in state.stored:
            raise Invalid(f"Previous response with id '{previous}' not found.", "previous_response_id",
                          "previous_response_not_found")
        calls.update(o["call_id"] for o in state.stored[previous] if o.get("type") == "function_call")
    items = body.get("input")
    if isinstance(items, str):
        return
    if not isinstance(items, list):
        raise Invalid("Missing required parameter: 'input'.", "input")
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        where = f"input[{i}]"
        if kind == "message":
            role = item.get("role")
            if role not in ROLE_PARTS:
                raise Invalid(f"Invalid value: '{role}'. Supported values are: 'assistant', 'system', 'developer', "
                              "and 'user'.", f"{where}.role", "invalid_value")
            content = item.get("content")
            for j, part in enumerate(content if isinstance(content, list) else []):
                if part.get("type") not in ROLE_PARTS[role]:
                    raise Invalid(f"Invalid value: '{part.get('type')}'. Supported values for role {role} are: "
                                  f"{sorted(ROLE_PARTS[role])}.", f"{where}.content[{j}]", "invalid_value")
        elif kind == "function_call":
            if not isinstance(item.get("arguments"), str) or not item.get("call_id") or not item.get("name"):
                raise Invalid("function_call needs call_id, name and arguments (a string)", where)
            calls.add(item["call_id"])
        elif kind == "function_call_output":
            if item.get("call_id") not in calls:
                raise Invalid(f"No tool call found for function call output with call_id {item.get('call_id')}.",
                              where)
            if not isinstance(item.get("output"), str | list):
                raise Invalid("function_call_output.output must be a string", f"{where}.output")
        elif kind == "reasoning":
            if item.get("encrypted_content") not in state.issued:
                raise Invalid("The encrypted content for this reasoning item could not be verified.", where,
                              "invalid_encrypted_content")
        else:
            raise Invalid(f"Invalid value: '{kind}'.", f"{where}.type", "invalid_value")


# --- answers -------------------------------------------------------------------------------------


def _usage(a: Answer) -> dict[str, Any]:
    reasoning = a.reasoning_tokens if isinstance(a, ResponsesAnswer) else 0
    return {"input_tokens": a.prompt_tokens, "input_tokens_details": {"cached_tokens": a.cached_tokens},
            "output_tokens": a.completion_tokens, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": a.prompt_tokens + a.completion_tokens}


def _skeleton(body: dict[str, Any], response_id: str, model: str) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "created_at": int(time.time()), "status": "in_progress",
            "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": model, "output": [], "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
            "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": None, "metadata": {}}


def render_events(a: Answer, body: dict[str, Any], response_id: str, model: str,
                  issued: set[str]) -> list[dict[str, Any]]:
    """The whole stream; its final event carries the response a non-streamed request gets."""
    seq = itertools.count()
    events: list[dict[str, Any]] = []
    response = _skeleton(body, response_id, model)
    output: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": next(seq), **fields})

    emit("response.created", response={**response, "output": []})
    emit("response.in_progress", response={**response, "output": []})
    encrypted = a.encrypted if isinstance(a, ResponsesAnswer) else ""
    wants_encrypted = "reasoning.encrypted_content" in (body.get("include") or [])
    if a.reasoning or (encrypted and wants_encrypted):
        index, item_id = len(output), "rs_" + secrets.token_hex(8)
        emit("response.output_item.added", output_index=index, item={"id": item_id, "type": "reasoning",
                                                                      "summary": []})
        parts = a.reasoning.split("\n\n") if a.reasoning else []
        for s, text in enumerate(parts):
            ids = {"item_id": item_id, "output_index": index, "summary_index": s}
            emit("response.reasoning_summary_part.added", **ids, part={"type": "summary_text", "text": ""})
            for piece in cut(text, a.pieces):
                emit("response.reasoning_summary_text.delta", **ids, delta=piece, obfuscation="x")
            emit("response.reasoning_summary_text.done", **ids, text=text)
            emit("response.reasoning_summary_part.done", **ids, part={"type": "summary_text", "text": text})
        item: dict[str, Any] = {"id": item_id, "type": "reasoning",
                                "summary": [{"type": "summary_text", "text": t} for t in parts]}
        if wants_encrypted and encrypted:
            item["encrypted_content"] = encrypted
            issued.add(encrypted)
        output.append(item)
        emit("response.output_item.done", output_index=index, item=item)
    failing = a.fail_after_first_delta if isinstance(a, ResponsesAnswer) else ""
    if a.text:
        index, item_id = len(output), "msg_" + secrets.token_hex(8)
        ids = {"item_id": item_id, "output_index": index, "content_index": 0}
        emit("response.output_item.added", output_index=index, item={
            "id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"})
        emit("response.content_part.added", **ids, part={"type": "output_text", "annotations": [], "logprobs": [],
                                                         "text": ""})
        for piece in cut(a.text, a.pieces):
            emit("response.output_text.delta", **ids, delta=piece, logprobs=[], obfuscation="x")
            if failing:
                emit("response.failed", response={**response, "status": "failed", "output": output,
                                                  "error": {"code": "server_error", "message": failing}})
                return events
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": a.text}
        emit("response.output_text.done", **ids, text=a.text, logprobs=[])
        emit("response.content_part.done", **ids, part=part)
        item = {"id": item_id, "type": "message", "status": "completed", "content": [part], "role": "assistant"}
        output.append(item)
        emit("response.output_item.done", output_index=index, item=item)
    for n, call in enumerate(a.tool_calls):
        index, item_id = len(output), "fc_" + secrets.token_hex(8)
        call_id = call.id or f"call_{n}"
        emit("response.output_item.added", output_index=index, item={
            "id": item_id, "type": "function_call", "status": "in_progress", "arguments": "", "call_id": call_id,
            "name": call.name})
        for piece in cut(call.arguments, a.pieces):
            emit("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=piece,
                 obfuscation="x")
        emit("response.function_call_arguments.done", item_id=item_id, output_index=index, arguments=call.arguments)
        item = {"id": item_id, "type": "function_call", "status": "completed", "arguments": call.arguments,
                "call_id": call_id, "name": call.name}
        output.append(item)
        emit("response.output_item.done", output_index=index, item=item)
    final = {**response, "output": output, "usage": _usage(a)}
    if a.finish == "length":
        final.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
        emit("response.incomplete", response=final)
    else:
        final["status"] = "completed"
        emit("response.completed", response=final)
    return events


def frame(ev: dict[str, Any]) -> bytes:
    return f"event: {ev['type']}\ndata: {json.dumps(ev, ensure_ascii=False)}\n\n".encode()


def _auth(request: web.Request) -> web.Response | None:
    if request.path.startswith("/openai/"):
        if not request.headers.get("api-key"):
            return web.json_response({"error": {"code": "401", "message": "Access denied due to invalid subscription "
                                                "key or wrong API endpoint."}}, status=401)
        if request.path == "/openai/responses":
            version = request.query.get("api-version")
            if version is None:
                return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)
            if version < AZURE_MIN_VERSION:
                return web.json_response({"error": {"code": "BadRequest", "message": "Azure OpenAI Responses API is "
                                                    "enabled only for api-version 2025-03-01-preview and later"}},
                                         status=400)
    elif not request.headers.get("Authorization", "").startswith("Bearer "):
        return web.json_response({"error": {"message": "You didn't provide an API key.", "type":
                                            "invalid_request_error", "param": None, "code": None}}, status=401)
    return None


async def responses(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.paths.append(request.path_qs)
    body = await request.json()
    reply = request.app[SCRIPT].next(body, dict(request.headers))
    if refused := _auth(request):
        return refused
    try:
        check(body, state)
    except Invalid as exc:
        return _invalid(exc)
    if isinstance(reply, Failure | Raw):
        return await send_failure_or_raw(request, reply, bool(body.get("stream")), body.get("model", ""))
    response_id = "resp_" + secrets.token_hex(12)
    events = render_events(reply, body, response_id, body["model"], state.issued)
    final = events[-1]["response"]
    if body.get("store", True) and final["status"] != "failed":
        state.stored[response_id] = final["output"]
    if not body.get("stream"):
        return web.json_response(final)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)
    for n, ev in enumerate(events):
        await resp.write(frame(ev))
        if n == 0 and reply.gate is not None:
            await reply.gate.wait()
        if reply.delay:
            await asyncio.sleep(reply.delay)
    return resp


def make_app(script: Script) -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app[SCRIPT] = script
    app[STATE] = State()
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/openai/responses", responses)
    app.router.add_post("/openai/v1/responses", responses)
    return app
