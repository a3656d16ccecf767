"""A fake Ollama server: ``/api/chat`` as NDJSON stream or one JSON object, ``/api/tags``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.fakes.openai_server import EXTRAS, Extras, _failure, fake_vector
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
    for n, line in enumerate(render_lines(reply, model)):
        await resp.write(json.dumps(line).encode() + b"\n")
        if n == 0 and reply.gate is not None:
            await reply.gate.wait()
        if reply.delay:
            await asyncio.sleep(reply.delay)
    return resp


TAGS = web.AppKey("tags", list)  # what /api/tags lists; tests may replace it


async def tags(request: web.Request) -> web.Response:
    request.app[EXTRAS].requests.append((request.path, None))
    if failed := _failure(request):
        return failed
    return web.json_response({"models": request.app[TAGS]})


# --- POST /api/embed and POST /api/show ------------------------------------------------------------

CONTEXT_LENGTHS = {"qwen2.5-coder:7b": 32_768, "nomic-embed-text:latest": 2_048}


async def embed(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[EXTRAS].requests.append((request.path, body))
    if failed := _failure(request):
        return failed
    inp = body["input"]
    texts = [inp] if isinstance(inp, str) else inp
    if not all(isinstance(t, str) for t in texts):
        return web.json_response({"error": "json: cannot unmarshal number into Go value of type string"}, status=400)
    vectors = [fake_vector(t)[: body.get("dimensions") or None] for t in texts]
    return web.json_response({"model": body["model"], "embeddings": vectors, "total_duration": 1000,
                              "load_duration": 10, "prompt_eval_count": sum(len(t.split()) for t in texts)})


async def show(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[EXTRAS].requests.append((request.path, body))
    if failed := _failure(request):
        return failed
    name = body.get("model") or body.get("name") or ""
    length = CONTEXT_LENGTHS.get(name)
    if length is None:
        return web.json_response({"error": f"model '{name}' not found"}, status=404)
    arch = "nomic-bert" if "embed" in name else "qwen2"
    return web.json_response({"details": {"family": arch}, "model_info": {
        "general.architecture": arch, f"{arch}.context_length": length, f"{arch}.embedding_length": 768}})


def make_app(script: Script) -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app[SCRIPT] = script
    app[EXTRAS] = Extras()
    app[TAGS] = [{"name": "qwen2.5-coder:7b", "model": "qwen2.5-coder:7b", "size": 1}]
    app.router.add_post("/api/embed", embed)
    app.router.add_post("/api/show", show)
    app.router.add_post("/api/chat", chat)
    app.router.add_get("/api/tags", tags)
    return app
