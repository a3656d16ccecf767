"""Ollama's native ``/api/chat``: NDJSON streaming, tool calls, thinking, keep_alive, num_ctx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, ClassVar

import aiohttp

from lynkr.config import Settings
from lynkr.convert.embeddings import ollama_embed_request, ollama_embed_to_openai
from lynkr.convert.ollama import (
    OllamaTarget,
    anthropic_to_ollama,
    ollama_stream_to_anthropic,
    ollama_to_anthropic,
)
from lynkr.errors import InvalidRequest, UpstreamBadResponse, UpstreamError
from lynkr.providers.base import BackendSettings, Event, ModelInfo, Provider
from lynkr.providers.http import get, post, read_json
from lynkr.providers.readers import ndjson
from lynkr.wire.embeddings import input_kind, text_inputs

SHOW_AT_ONCE = 8  # /api/show calls in flight while listing (each reads one model's metadata)
SHOW_AT_MOST = 64  # models whose context length is looked up; a longer list goes without


def _created(stamp: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(stamp).timestamp()) if isinstance(stamp, str) else None
    except ValueError:
        return None


def context_length(show: Any) -> int | None:
    """The trained context length from ``/api/show``'s ``model_info`` (``<architecture>.context_length``)."""
    info = show.get("model_info") if isinstance(show, dict) else None
    if not isinstance(info, dict):
        return None
    n = info.get(f"{info.get('general.architecture')}.context_length")
    if not isinstance(n, int):
        n = next((v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)), None)
    return n if n and n > 0 else None


class OllamaProvider(Provider):
    name: ClassVar[str] = "ollama"

    def context_window(self, model: str) -> int | None:
        """OLLAMA_NUM_CTX, when set: Ollama silently truncates a prompt longer than its context."""
        num_ctx = self.backend.extra.get("ollama_num_ctx")
        return num_ctx if isinstance(num_ctx, int) else None

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        super().__init__(backend, http, settings)
        self.url = backend.endpoint.rstrip("/") + "/api/chat"
        self.headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
        base = backend.endpoint.rstrip("/")
        # OLLAMA_EMBEDDINGS_ENDPOINT may name another Ollama, as a base URL or Lynkr's .../api/embeddings URL
        embed_base = (backend.embeddings_endpoint or base).rstrip("/").removesuffix("/api/embeddings")
        self.embed_url = embed_base.removesuffix("/api/embed") + "/api/embed"
        self.tags_url = base + "/api/tags"
        self.show_url = base + "/api/show"

    def target(self, model: str) -> OllamaTarget:
        keep_alive = self.backend.extra.get("ollama_keep_alive")
        num_ctx = self.backend.extra.get("ollama_num_ctx")
        return OllamaTarget(
            model=model,
            keep_alive=str(keep_alive) if keep_alive is not None else None,
            num_ctx=int(num_ctx) if isinstance(num_ctx, int) else None,
            max_output_tokens=self.settings.max_output_tokens,
        )

    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        body = anthropic_to_ollama(req, self.target(model), stream=False)
        async with post(self.http, self.url, body, provider="ollama", headers=self.headers,
                        timeout=self.timeout) as resp:
            data = await read_json(resp, "ollama")
        return ollama_to_anthropic(data, model=req["model"])

    def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        body = anthropic_to_ollama(req, self.target(model), stream=True)
        lines = ndjson(post(self.http, self.url, body, provider="ollama", headers=self.headers,
                            timeout=self.stream_timeout), "ollama")
        return ollama_stream_to_anthropic(lines, model=req["model"])

    async def list_models(self) -> list[ModelInfo]:
        """``/api/tags``, with each model's context window from ``/api/show`` (capped by OLLAMA_NUM_CTX,
        which is what lynkr asks Ollama for); a model whose metadata cannot be read is listed without one."""
        async with get(self.http, self.tags_url, provider="ollama", headers=self.headers,
                       timeout=self.timeout) as resp:
            data = await read_json(resp, "ollama")
        entries = data.get("models") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise UpstreamBadResponse("ollama answered /api/tags without a models list", provider="ollama")
        names = [(e.get("name") or e.get("model"), e) for e in entries if isinstance(e, dict)]
        named = [(n, e) for n, e in names if isinstance(n, str) and n]
        gate = asyncio.Semaphore(SHOW_AT_ONCE)
        windows = await asyncio.gather(*(self._context_window(n, gate) for n, _ in named[:SHOW_AT_MOST]))
        num_ctx = self.backend.extra.get("ollama_num_ctx")
        models = []
        for i, (name, entry) in enumerate(named):
            window = windows[i] if i < len(windows) else None
            if window and isinstance(num_ctx, int):
                window = min(window, num_ctx)
            models.append(ModelInfo(name, context_window=window, created=_created(entry.get("modified_at")),
                                    owned_by="ollama"))
        return models

    async def _context_window(self, model: str, gate: asyncio.Semaphore) -> int | None:
        async with gate:
            try:
                async with post(self.http, self.show_url, {"model": model}, provider="ollama", headers=self.headers,
                                timeout=self.timeout) as resp:
                    return context_length(await read_json(resp, "ollama"))
            except UpstreamError:
                return None

    @property
    def embeddings_model(self) -> str | None:
        return self.backend.embeddings_model

    async def create_embeddings(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        if input_kind(req["input"]) == "tokens":
            raise InvalidRequest("the ollama embeddings backend takes text only, not token-id arrays; send the "
                                 "text (or set EMBEDDINGS_PROVIDER to a backend that accepts tokens)", field="input")
        texts = text_inputs(req["input"])
        keep_alive = self.backend.extra.get("ollama_keep_alive")
        body = ollama_embed_request(texts, model, dimensions=req.get("dimensions"),
                                    keep_alive=str(keep_alive) if keep_alive is not None else None)
        async with post(self.http, self.embed_url, body, provider="ollama", headers=self.headers,
                        timeout=self.timeout) as resp:
            data = await read_json(resp, "ollama")
        return ollama_embed_to_openai(data, model=model, count=len(texts),
                                      encoding=req.get("encoding_format") or "float")
