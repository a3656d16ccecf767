"""A fast fake OpenAI Chat Completions upstream, run in its own process by the benchmarks.

``POST /v1/chat/completions`` reads and parses the JSON body (as any real upstream must), then
streams a fixed 20-frame SSE answer with no delay: a role chunk, 16 text deltas, a finish chunk, a
usage chunk and ``data: [DONE]``, each frame its own write. A non-streaming request gets the same
answer as one JSON body. The frames are rendered once at start-up, so per request it costs only
aiohttp's own work plus one ``orjson.loads``.

``GET /stats`` reports the request count and the size of the last body received (the benchmark uses
it to check that the proxied and the direct calls send the upstream the same amount of data).

``POST /control`` with ``{"chunks": N, "delay_ms": D}`` changes the answer for the requests that
follow: N SSE frames (role chunk, N-4 text deltas, finish chunk, usage chunk, ``[DONE]``; N >= 5)
with D milliseconds of sleep between two frames (the pace of a model generating tokens). The
suite (``benchmarks.run``) sets it before each phase; the default is 20 frames with no delay.

Run: ``python -m benchmarks.upstream --port 0``; prints ``READY <port>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

import orjson
from aiohttp import web

TEXT_DELTAS = 16
WORDS = ("I", " found", " it:", " `total()`", " rounds", " after", " the", " discount", " and", " again",
         " after", " tax,", " so", " one cent", " drifts.", " Fixing now.")
assert len(WORDS) == TEXT_DELTAS


def frames(model: str = "gpt-4o", n: int = TEXT_DELTAS + 4) -> list[bytes]:
    """The ``n`` SSE frames of one streamed answer (the last one is ``data: [DONE]``): a role chunk,
    ``n - 4`` text deltas (the 16 words, repeated as needed), a finish chunk and a usage chunk."""
    base: dict[str, Any] = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1767225600,
                            "model": model, "system_fingerprint": "fp_bench"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": WORDS[i % TEXT_DELTAS]}) for i in range(max(n - 4, 1))]
    chunks.append(chunk({}, "stop"))
    chunks.append({**base, "choices": [], "usage": {**USAGE, "completion_tokens": max(n - 2, 3)}})
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


USAGE = {"prompt_tokens": 12_480, "completion_tokens": TEXT_DELTAS + 2, "total_tokens": 12_498,
         "prompt_tokens_details": {"cached_tokens": 11_264}}
FRAMES = web.AppKey("frames", list)
STATS = web.AppKey("stats", dict)
PACE = web.AppKey("pace", dict)  # {"delay": seconds between two frames}


def _body(model: str) -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1767225600, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS)},
                     "finish_reason": "stop"}],
        "usage": USAGE,
    })


async def chat(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    stats = request.app[STATS]
    stats["requests"] += 1
    stats["last_body_bytes"] = len(raw)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return web.json_response({"error": {"message": "body is not JSON", "type": "invalid_request_error"}},
                                 status=400)
    if not body.get("stream"):
        return web.Response(body=_body(body.get("model", "gpt-4o")), content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    frames_, delay = request.app[FRAMES], request.app[PACE]["delay"]
    for i, frame in enumerate(frames_):
        if delay and i:
            await asyncio.sleep(delay)
        await resp.write(frame)
    await resp.write_eof()
    return resp


async def control(request: web.Request) -> web.Response:
    """Set the shape of the answers that follow: ``{"chunks": N, "delay_ms": D}``."""
    body = orjson.loads(await request.read())
    n = int(body.get("chunks", TEXT_DELTAS + 4))
    if not 5 <= n <= 100_000:
        return web.json_response({"error": "chunks must be 5..100000"}, status=400)
    request.app[FRAMES] = frames(n=n)
    request.app[PACE]["delay"] = max(float(body.get("delay_ms", 0)), 0.0) / 1000
    return web.json_response({"chunks": n, "delay_ms": request.app[PACE]["delay"] * 1000})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS])


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app[FRAMES] = frames()
    app[STATS] = {"requests": 0, "last_body_bytes": 0}
    app[PACE] = {"delay": 0.0}
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    app.router.add_post("/control", control)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.upstream", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    args = ap.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
