"""Helpers for the observability tests: scraping and parsing /metrics/prometheus, a stream that waits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by (name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(client: TestClient, path: str = "/metrics/prometheus") -> Samples:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    return parse(await resp.text())


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (a counter never incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


class HeldStream:
    """A fake OpenAI Chat Completions backend whose streamed answer sends its first chunk, then waits for
    ``release()`` before finishing: a stream that is deterministically in flight."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    def release(self) -> None:
        self.gate.set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        base: dict[str, Any] = {"id": "chatcmpl-held", "object": "chat.completion.chunk", "created": 1,
                                "model": body.get("model", "m")}
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "held"},
                                      "finish_reason": None}]}
        await resp.write(b"data: " + json.dumps(first).encode() + b"\n\n")
        self.started.set()
        await self.gate.wait()
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
        await resp.write(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
        return resp


def ollama_fallback(endpoint: str) -> dict[str, Any]:
    """Settings for an Ollama fallback after MODEL_PROVIDER. EMBEDDINGS_PROVIDER=ollama makes sure the keyless
    Ollama backend is built whether or not the backend list also builds the ones FALLBACK_PROVIDERS names."""
    return {"fallback_providers": "ollama", "embeddings_provider": "ollama", "ollama_endpoint": endpoint,
            "ollama_model": "qwen2.5-coder:7b"}
