"""A fake Anthropic Messages server (api.anthropic.com, Azure AI Foundry, Z.AI's Anthropic endpoint).

``POST /v1/messages`` (also under ``/anthropic`` and ``/api/anthropic``) answers a scripted ``Answer`` as
Anthropic does: SSE frames with their ``event:`` lines (message_start, ping, content blocks with
thinking/signature, text and input_json deltas, message_delta, message_stop), or one message JSON.
Like the real API it refuses requests without a key or an ``anthropic-version`` header, with Anthropic's
error shape.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.fakes.openai_server import send as send_failure_or_raw
from tests.fakes.script import Answer, Failure, Raw, Script, cut

SCRIPT = web.AppKey("script", Script)
SIGNATURE = "ErUBCkYIBxgCIkBmYWtlLXNpZ25hdHVyZS1mb3ItdGVzdHM="  # opaque, like Anthropic's
MESSAGE_ID = "msg_01FakeAnthropicUpstream0001"

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


def stop_reason(a: Answer) -> str:
    if a.finish:
        return _STOP.get(a.finish, a.finish)
    return "tool_use" if a.tool_calls else "end_turn"


def usage(a: Answer) -> dict[str, Any]:
    return {"input_tokens": a.prompt_tokens - a.cached_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": a.cached_tokens, "output_tokens": a.completion_tokens}


def render_body(a: Answer, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if a.reasoning:
        content.append({"type": "thinking", "thinking": a.reasoning, "signature": SIGNATURE})
    if a.text:
        content.append({"type": "text", "text": a.text})
    for i, call in enumerate(a.tool_calls):
        content.append({"type": "tool_use", "id": call.id or f"toolu_fake_{i}", "name": call.name,
                        "input": json.loads(call.arguments or "{}")})
    return {"id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason(a), "stop_sequence": None, "usage": usage(a)}


def render_events(a: Answer, model: str) -> list[dict[str, Any]]:
    start_usage = {**usage(a), "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": MESSAGE_ID, "type": "message", "role": "assistant",
                                              "model": model, "content": [], "stop_reason": None,
                                              "stop_sequence": None, "usage": start_usage}},
        {"type": "ping"},
    ]
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
        events.append({"type": "content_block_stop", "index": index})
        index += 1

    if a.reasoning:
        block({"type": "thinking", "thinking": "", "signature": ""},
              [{"type": "thinking_delta", "thinking": p} for p in cut(a.reasoning, a.pieces)]
              + [{"type": "signature_delta", "signature": SIGNATURE}])
    if a.text:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in cut(a.text, a.pieces)])
    for i, call in enumerate(a.tool_calls):
        block({"type": "tool_use", "id": call.id or f"toolu_fake_{i}", "name": call.name, "input": {}},
              [{"type": "input_json_delta", "partial_json": ""}]
              + [{"type": "input_json_delta", "partial_json": p} for p in cut(call.arguments, a.pieces)])
    events.append({"type": "message_delta", "delta": {"stop_reason": stop_reason(a), "stop_sequence": None},
                   "usage": {"output_tokens": a.completion_tokens}})
    events.append({"type": "message_stop"})
    return events


def frame(ev: dict[str, Any]) -> bytes:
    return f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode()


def sse_bytes(events: list[dict[str, Any]]) -> bytes:
    return b"".join(frame(ev) for ev in events)


def _refusal(request: web.Request, body: Any) -> web.Response | None:
    """What the real API answers before looking at the model: no key, no version, no messages."""
    if not request.headers.get("x-api-key") and not request.headers.get("Authorization"):
        return web.json_response(error_body("authentication_error", "x-api-key header is required"), status=401)
    if not request.headers.get("anthropic-version"):
        return web.json_response(error_body("invalid_request_error", "anthropic-version: header is required"),
                                 status=400)
    if not isinstance(body, dict):
        return web.json_response(error_body("invalid_request_error", "body must be a JSON object"), status=400)
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            return web.json_response(error_body("invalid_request_error", f"{field}: Field required"), status=400)
    return None


async def messages(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if refused := _refusal(request, body):
        return refused
    reply = request.app[SCRIPT].next(body, dict(request.headers))
    model = body["model"]
    if isinstance(reply, (Failure, Raw)):
        return await send_failure_or_raw(request, reply, True, model)
    if not body.get("stream"):
        return web.json_response(render_body(reply, model), headers={"request-id": "req_fake"})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", "request-id": "req_fake"})
    await resp.prepare(request)
    for ev in render_events(reply, model):
        await resp.write(frame(ev))
        if reply.delay:
            await asyncio.sleep(reply.delay)
    return resp


def make_app(script: Script) -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app[SCRIPT] = script
    for prefix in ("", "/anthropic", "/api/anthropic"):  # Anthropic, Azure AI Foundry, Z.AI
        app.router.add_post(f"{prefix}/v1/messages", messages)
    return app
