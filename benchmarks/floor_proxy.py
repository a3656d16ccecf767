"""The floor for Python: a minimal aiohttp proxy that translates a streamed Anthropic Messages request
to OpenAI Chat Completions and the answer back, and nothing else (no validation, routing, retries,
metrics or logging; text answers only). ``POST /v1/chat/completions`` is the pass-through floor: parse,
set the model, forward, stream the bytes back. ``benchmarks.run`` measures it beside lynkr, same load.

Run: ``python -m benchmarks.floor_proxy UPSTREAM_URL`` (prints ``READY <port>`` once listening).
"""

import asyncio
import sys

import aiohttp
import orjson
from aiohttp import web

UP = {}  # the upstream URL and the pooled client session


def text(content):
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content if b["type"] == "text")


def to_chat(req, model):
    msgs = [{"role": "system", "content": text(req.get("system") or "")}]
    for m in req["messages"]:
        blocks = [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
        results = [{"role": "tool", "tool_call_id": b["tool_use_id"], "content": text(b["content"])}
                   for b in blocks if b["type"] == "tool_result"]
        calls = [{"id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": orjson.dumps(
            b["input"]).decode()}} for b in blocks if b["type"] == "tool_use"]
        msgs += results + ([{"role": m["role"], "content": text(blocks)} | ({"tool_calls": calls} if calls else {})]
                           if not results else [])
    tools = [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
              "parameters": {k: v for k, v in t["input_schema"].items() if k != "$schema"}}}
             for t in req.get("tools", ())]
    return {"model": model, "messages": msgs, "max_tokens": req["max_tokens"], "stream": True,
            "stream_options": {"include_usage": True}} | ({"tools": tools} if tools else {})


def sse(event, data):
    return b"event: " + event + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def messages(request):
    req = orjson.loads(await request.read())
    body = orjson.dumps(to_chat(req, "gpt-4o"))
    async with UP["http"].post(UP["url"], data=body, headers={"Content-Type": "application/json"}) as up:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(sse(b"message_start", {"type": "message_start", "message": {
            "id": "msg_floor", "type": "message", "role": "assistant", "model": req["model"], "content": [],
            "stop_reason": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}) + sse(b"content_block_start", {
            "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
        usage, buf = {}, b""
        async for chunk in up.content.iter_any():
            *lines, buf = (buf + chunk).split(b"\n")
            out = []
            for line in lines:
                if not line.startswith(b"data: {"):
                    continue
                c = orjson.loads(line[6:])
                usage = c.get("usage") or usage
                for ch in c["choices"]:
                    if ch["delta"].get("content"):
                        out.append(sse(b"content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                            "type": "text_delta", "text": ch["delta"]["content"]}}))
            if out:
                await resp.write(b"".join(out))
        await resp.write(sse(b"content_block_stop", {"type": "content_block_stop", "index": 0}) + sse(
            b"message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {
                "input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)}})
            + sse(b"message_stop", {"type": "message_stop"}))
        return resp


async def chat(request):
    body = orjson.loads(await request.read()) | {"model": "gpt-4o"}
    async with UP["http"].post(UP["url"], data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as up:
        resp = web.StreamResponse(headers={"Content-Type": up.headers["Content-Type"]})
        await resp.prepare(request)
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
        return resp


async def main(url):
    app = web.Application(client_max_size=64 * 1024**2)
    UP["url"], UP["http"] = url, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
    print(f"READY {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.run(main(sys.argv[1]))
    except ImportError:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
