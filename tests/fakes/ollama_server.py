"""A fake Ollama server: ``/api/chat`` as NDJSON stream or one JSON object, ``/api/tags``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.fakes.openai_server import send as send_failure_or_raw
from tests.fakes.script import Answer, Failure, Raw, Script, cut

SCRIPT = web.AppKey("script", Script)
CREATED = "2026-11-21T07:00:00.000000Z"


def render_lines(a: Answer, model: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []

    def msg(**m: Any) -> None:
        lines.append({"model": model, "created_at": CREATED, "message": {"role": "assistant", "content": "", **m},
                      "done": False})

    for piece in cut(a.reasoning, a.pieces):
        msg(thinking=piece)
    for piece in cut(a.text, a.pieces):
        msg(content=piece)
    if a.tool_calls:  # Ollama sends each tool call whole, arguments as an object
        msg(tool_calls=[{"function": {"name": c.name, "arguments": json.loads(c.arguments or "{}")}}
                        for c in a.tool_calls])
    lines.append({"model": model, "created_at": CREATED, "message": {"role": "assistant", "content": ""},
                  "done": True, "done_reason": a.finish or "stop", "total_duration": 1000,
                  "prompt_eval_count": a.prompt_tokens, "eval_count": a.completion_tokens})
    return lines


def render_body(a: Answer, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": a.text}
    if a.reasoning:
        message["thinking"] = a.reasoning
    if a.tool_calls:
        message["tool_calls"] = [{"function": {"name": c.name, "arguments": json.loads(c.arguments or "{}")}}
                                 for c in a.tool_calls]
    return {"model": model, "created_at": CREATED, "message": message, "done": True,
            "done_reason": a.finish or "stop", "prompt_eval_count": a.prompt_tokens,
            "eval_count": a.completion_tokens}


def ndjson_bytes(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    reply = request.app[SCRIPT].next(body, dict(request.headers))
    model = body.get("model", "fake")
    if isinstance(reply, (Failure, Raw)):
        return await send_failure_or_raw(request, reply, True, model)
    if not body.get("stream", True):
        return web.json_response(render_body(reply, model))
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    for line in render_lines(reply, model):
        await resp.write(json.dumps(line).encode() + b"\n")
        if reply.delay:
            await asyncio.sleep(reply.delay)
    return resp


async def tags(request: web.Request) -> web.Response:
    return web.json_response({"models": [{"name": "qwen2.5-coder:7b", "model": "qwen2.5-coder:7b", "size": 1}]})


def make_app(script: Script) -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app[SCRIPT] = script
    app.router.add_post("/api/chat", chat)
    app.router.add_get("/api/tags", tags)
    return app
