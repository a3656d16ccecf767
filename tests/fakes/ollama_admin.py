"""A fake Ollama for the CLI: the admin side ``lynkr setup`` and ``lynkr doctor`` use.

``/api/version``, ``/api/tags``, ``/api/show`` (model_info with ``<arch>.context_length``, Modelfile
parameters), ``/api/pull`` streaming NDJSON progress the way Ollama does (manifest, one line per chunk of each
layer with ``digest``/``total``/``completed``, verify, write, ``success``), and ``/api/chat`` that answers a
tool call when the model "supports tools", or Ollama's 400 when it does not.

Also runnable as a process (``python -m tests.fakes.ollama_admin``), which is how a fake ``ollama serve``
binary starts it: it listens on ``OLLAMA_HOST`` like the real one.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

CREATED = "2026-11-21T07:00:00.000000Z"


@dataclass
class FakeModel:
    name: str
    size: int = 48 * 1024**2  # bytes "downloaded" by a pull
    context_length: int = 32_768
    tools: bool = True
    parameters: str = ""  # Modelfile parameters, e.g. "num_ctx 40960"
    family: str = "qwen2"

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.name.encode()).hexdigest()

    def tag(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.name, "modified_at": CREATED, "size": self.size,
                "digest": self.digest.removeprefix("sha256:"),
                "details": {"format": "gguf", "family": self.family, "parameter_size": "7.6B",
                            "quantization_level": "Q4_K_M"}}


def full(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


@dataclass
class OllamaState:
    installed: dict[str, FakeModel] = field(default_factory=dict)
    catalog: dict[str, FakeModel] = field(default_factory=dict)  # what /api/pull can fetch
    api_key: str | None = None  # when set, every request needs "Authorization: Bearer <key>"
    pull_chunks: int = 12  # progress lines per layer
    pull_delay: float = 0.03  # seconds between progress lines, so rate and ETA have something to measure
    pull_error_after: int | None = None  # progress lines before an {"error": ...} line
    requests: list[tuple[str, Any]] = field(default_factory=list)

    def install(self, *models: FakeModel) -> OllamaState:
        for m in models:
            self.installed[full(m.name)] = m
        return self

    def offer(self, *models: FakeModel) -> OllamaState:
        for m in models:
            self.catalog[full(m.name)] = m
        return self


STATE = web.AppKey("state", OllamaState)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[STATE]
    body = await request.json() if request.method == "POST" and request.can_read_body else None
    state.requests.append((request.path, body))
    if state.api_key and request.headers.get("Authorization") != f"Bearer {state.api_key}":
        return _error(401, "unauthorized")
    return await handler(request)


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": "0.12.0"})


async def tags(request: web.Request) -> web.Response:
    return web.json_response({"models": [m.tag() for m in request.app[STATE].installed.values()]})


async def show(request: web.Request) -> web.Response:
    body = await request.json()
    model = request.app[STATE].installed.get(full(str(body.get("model") or body.get("name"))))
    if model is None:
        return _error(404, f"model '{body.get('model')}' not found")
    return web.json_response({
        "modelfile": f"FROM {model.name}\n", "parameters": model.parameters, "template": "{{ .Prompt }}",
        "details": model.tag()["details"],
        "model_info": {"general.architecture": model.family, "general.parameter_count": 7615616512,
                       f"{model.family}.context_length": model.context_length,
                       f"{model.family}.embedding_length": 3584},
        "capabilities": ["completion", *(["tools"] if model.tools else [])],
    })


async def pull(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await request.json()
    name = full(str(body.get("model") or body.get("name")))
    model = state.catalog.get(name) or state.installed.get(name)
    if model is None:
        return _error(500, "pull model manifest: file does not exist")
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)

    async def line(obj: dict[str, Any]) -> None:
        await resp.write(json.dumps(obj).encode() + b"\n")

    await line({"status": "pulling manifest"})
    layers = [(model.digest, model.size), ("sha256:" + hashlib.sha256(b"template" + name.encode()).hexdigest(), 1500)]
    sent = 0
    for digest, total in layers:
        steps = state.pull_chunks if total > 10_000 else 1
        for i in range(1, steps + 1):
            if state.pull_error_after is not None and sent >= state.pull_error_after:
                await line({"error": "max retries exceeded: connection reset by peer"})
                return resp
            await line({"status": f"pulling {digest.removeprefix('sha256:')[:12]}", "digest": digest,
                        "total": total, "completed": total * i // steps})
            sent += 1
            await asyncio.sleep(state.pull_delay)
    for status in ("verifying sha256 digest", "writing manifest", "success"):
        await line({"status": status})
    state.installed[name] = model
    return resp


async def chat(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await request.json()
    name = str(body.get("model"))
    model = state.installed.get(full(name))
    if model is None:
        return _error(404, f"model '{name}' not found, try pulling it first")
    if body.get("tools") and not model.tools:
        return _error(400, f"registry.ollama.ai/library/{name} does not support tools")
    message: dict[str, Any] = {"role": "assistant", "content": ""}
    if body.get("tools"):
        tool = body["tools"][0]["function"]["name"]
        message["tool_calls"] = [{"function": {"name": tool, "arguments": {"path": "README.md"}}}]
    else:
        message["content"] = f"Hello from {name}."
    final = {"model": name, "created_at": CREATED, "message": message, "done": True, "done_reason": "stop",
             "prompt_eval_count": 12, "eval_count": 5}
    if not body.get("stream", True):
        return web.json_response(final)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    if message["content"]:
        await resp.write(json.dumps({"model": name, "created_at": CREATED, "done": False,
                                     "message": {"role": "assistant", "content": message["content"]}}).encode() + b"\n")
        final["message"] = {"role": "assistant", "content": ""}
    await resp.write(json.dumps(final).encode() + b"\n")
    return resp


def make_app(state: OllamaState) -> web.Application:
    app = web.Application(middlewares=[auth])
    app[STATE] = state
    app.router.add_get("/api/version", version)
    app.router.add_get("/api/tags", tags)
    app.router.add_post("/api/show", show)
    app.router.add_post("/api/pull", pull)
    app.router.add_post("/api/chat", chat)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="fake ollama serve")
    parser.add_argument("--installed", default="", help="comma-separated installed models")
    parser.add_argument("--catalog", default="qwen2.5-coder:7b", help="comma-separated pullable models")
    parser.add_argument("--pidfile", type=Path)
    args = parser.parse_args()
    host, _, port = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434").rpartition(":")
    state = OllamaState()
    state.install(*(FakeModel(n) for n in args.installed.split(",") if n))
    state.offer(*(FakeModel(n) for n in args.catalog.split(",") if n))
    if args.pidfile:
        args.pidfile.write_text(str(os.getpid()))
    web.run_app(make_app(state), host=host or "127.0.0.1", port=int(port), print=None, access_log=None)


if __name__ == "__main__":
    main()
