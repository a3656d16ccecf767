"""A fake OpenAI Chat Completions server (SSE with tool-call deltas, reasoning deltas, usage chunk)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.script import Answer, Failure, Raw, Reply, Script, cut

SCRIPT = web.AppKey("script", Script)


def render_chunks(a: Answer, model: str) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_fake"}
    chunks: list[dict[str, Any]] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                          "finish_reason": None}]}]

    def delta(d: dict[str, Any]) -> None:
        chunks.append({**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]})

    for piece in cut(a.reasoning, a.pieces):
        delta({"reasoning_content": piece})
    for piece in cut(a.text, a.pieces):
        delta({"content": piece})
    for i, call in enumerate(a.tool_calls):
        delta({"tool_calls": [{"index": i, "id": call.id or f"call_{i}", "type": "function",
                               "function": {"name": call.name, "arguments": ""}}]})
        for piece in cut(call.arguments, a.pieces):
            delta({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    finish = a.finish or ("tool_calls" if a.tool_calls else "stop")
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({**base, "choices": [], "usage": usage(a)})
    return chunks


def usage(a: Answer) -> dict[str, Any]:
    return {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
            "total_tokens": a.prompt_tokens + a.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": a.cached_tokens}}


def render_body(a: Answer, model: str) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": a.text or None}
    if a.reasoning:
        msg["reasoning_content"] = a.reasoning
    if a.tool_calls:
        msg["tool_calls"] = [{"id": c.id or f"call_{i}", "type": "function",
                              "function": {"name": c.name, "arguments": c.arguments}}
                             for i, c in enumerate(a.tool_calls)]
    finish = a.finish or ("tool_calls" if a.tool_calls else "stop")
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}], "usage": usage(a)}


def sse_bytes(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


async def send(request: web.Request, reply: Reply, stream: bool, model: str) -> web.StreamResponse:
    if isinstance(reply, Failure):
        body = reply.body if isinstance(reply.body, (bytes, str)) else json.dumps(reply.body)
        return web.Response(status=reply.status, body=body, headers=reply.headers,
                            content_type="application/json")
    if isinstance(reply, Raw):
        if reply.hang_before:
            await asyncio.sleep(reply.hang_before)
        if reply.drop_before:
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError  # nothing more to send on a closed connection
        resp = web.StreamResponse(status=reply.status, headers={"Content-Type": reply.content_type})
        await resp.prepare(request)
        await resp.write(reply.body)
        if reply.hang_after:
            await asyncio.sleep(reply.hang_after)
        if reply.gate is not None:
            await reply.gate.wait()
        if reply.more:
            await resp.write(reply.more)
        if reply.drop_after:
            assert request.transport is not None
            request.transport.close()
        return resp
    if not stream:
        return web.json_response(render_body(reply, model))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for n, chunk in enumerate(render_chunks(reply, model)):
        await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        if n == 0 and reply.gate is not None:
            await reply.gate.wait()
        if reply.delay:
            await asyncio.sleep(reply.delay)
    await resp.write(b"data: [DONE]\n\n")
    return resp


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    reply = request.app[SCRIPT].next(body, dict(request.headers))
    return await send(request, reply, bool(body.get("stream")), body.get("model", "fake-model"))


# --- GET /v1/models and POST /v1/embeddings --------------------------------------------------------


@dataclass
class Extras:
    """State of the models/embeddings routes; tests reach it as ``upstream.server.app[EXTRAS]``."""

    models: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
        {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
    ])
    fail: dict[str, Failure] = field(default_factory=dict)  # path -> answered instead, every time
    requests: list[tuple[str, Any]] = field(default_factory=list)  # (path, JSON body or None)


EXTRAS = web.AppKey("extras", Extras)


def fake_vector(text_or_tokens: str | list[int]) -> list[float]:
    """A deterministic vector whose values float32 holds exactly (so base64 round trips compare equal)."""
    n = len(text_or_tokens)
    first = text_or_tokens[0] if text_or_tokens else 0
    return [float(n), 0.5, -0.25, (ord(first) if isinstance(first, str) else first) / 8]


def _failure(request: web.Request) -> web.Response | None:
    failure = request.app[EXTRAS].fail.get(request.path)
    if failure is None:
        return None
    return web.json_response(failure.body, status=failure.status, headers=failure.headers)


async def models(request: web.Request) -> web.Response:
    request.app[EXTRAS].requests.append((request.path, None))
    return _failure(request) or web.json_response({"object": "list", "data": request.app[EXTRAS].models})


async def embeddings(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[EXTRAS].requests.append((request.path, body))
    if failed := _failure(request):
        return failed
    inp = body["input"]
    items = [inp] if isinstance(inp, str) or (inp and isinstance(inp[0], int)) else inp
    data = []
    for i, item in enumerate(items):
        vector = fake_vector(item)[: body.get("dimensions") or None]
        if body.get("encoding_format") == "base64":
            data.append({"object": "embedding", "index": i,
                         "embedding": base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()})
        else:
            data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(len(it) for it in items)
    return web.json_response({"object": "list", "data": data, "model": body.get("model", "fake-embedder"),
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def make_app(script: Script) -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app[SCRIPT] = script
    app[EXTRAS] = Extras()
    for prefix in ("/v1", "/api/v1"):  # OpenAI's paths, and OpenRouter's
        app.router.add_get(f"{prefix}/models", models)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
    app.router.add_post("/serving-endpoints/{endpoint}/invocations", chat)  # Databricks
    return app
