"""A fake OpenAI-compatible backend that answers *every* request well (for fuzzing lynkr: any 5xx then
is lynkr's own, never a scripted upstream failure)."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web


def _completion(model: str) -> dict[str, Any]:
    return {"id": "chatcmpl-steady", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


async def chat(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json()
    except ValueError:
        body = {}
    model = str(body.get("model") or "m") if isinstance(body, dict) else "m"
    if not (isinstance(body, dict) and body.get("stream") is True):
        return web.json_response(_completion(model))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    base = {"id": "chatcmpl-steady", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    for chunk in ({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"},
                                        "finish_reason": None}]},
                  {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                  {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}):
        await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    return resp


async def embeddings(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        body = {}
    inp = body.get("input") if isinstance(body, dict) else None
    n = len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
    return web.json_response({"object": "list", "model": "e",
                              "data": [{"object": "embedding", "index": i, "embedding": [0.5, 0.25]} for i in range(n)],
                              "usage": {"prompt_tokens": 1, "total_tokens": 1}})


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 0,
                                                          "owned_by": "steady"}]})


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    return app
