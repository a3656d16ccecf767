"""Ollama's native ``/api/chat``: NDJSON streaming, tool calls, thinking, keep_alive, num_ctx."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar

import aiohttp

from lynkr.config import Settings
from lynkr.convert.ollama import (
    OllamaTarget,
    anthropic_to_ollama,
    ollama_stream_to_anthropic,
    ollama_to_anthropic,
)
from lynkr.providers.base import BackendSettings, Event, Provider
from lynkr.providers.http import ndjson, post, read_json


class OllamaProvider(Provider):
    name: ClassVar[str] = "ollama"

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        super().__init__(backend, http, settings)
        self.url = backend.endpoint.rstrip("/") + "/api/chat"
        self.headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout_ms / 1000, sock_read=backend.timeout_ms / 1000
        )

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

    async def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        body = anthropic_to_ollama(req, self.target(model), stream=True)
        async with post(self.http, self.url, body, provider="ollama", headers=self.headers,
                        timeout=self.timeout) as resp:
            async for ev in ollama_stream_to_anthropic(ndjson(resp, "ollama"), model=req["model"]):
                yield ev
