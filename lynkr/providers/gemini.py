"""Google Gemini (``MODEL_PROVIDER=vertex`` or ``gemini``): ``generateContent`` and
``streamGenerateContent?alt=sse`` on Google AI Studio's API, key in the ``x-goog-api-key`` header."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp

from lynkr.config import Settings
from lynkr.convert.gemini import (
    GeminiTarget,
    anthropic_to_gemini,
    gemini_stream_to_anthropic,
    gemini_to_anthropic,
)
from lynkr.providers.base import BackendSettings, Event, Provider
from lynkr.providers.http import post, read_json
from lynkr.providers.readers import sse_json


class GeminiProvider(Provider):
    name: ClassVar[str] = "gemini"
    small_fast_default: ClassVar[str | None] = "gemini-2.5-flash-lite"
    thinking_vendor: ClassVar[str | None] = "gemini"

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        super().__init__(backend, http, settings)
        self.base = backend.endpoint.rstrip("/")
        self.headers = {"x-goog-api-key": backend.api_key} if backend.api_key else {}

    def url(self, model: str, method: str) -> str:
        """``{base}/models/{model}:{method}``; VERTEX_MODEL may be written ``models/gemini-...``."""
        return f"{self.base}/models/{quote(model.removeprefix('models/'), safe='-._~')}:{method}"

    def target(self, model: str) -> GeminiTarget:
        return GeminiTarget(model=model, max_output_tokens=self.settings.max_output_tokens)

    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        name = self.backend.name
        body = anthropic_to_gemini(req, self.target(model))
        async with post(self.http, self.url(model, "generateContent"), body, provider=name, headers=self.headers,
                        timeout=self.timeout) as resp:
            data = await read_json(resp, name)
        return gemini_to_anthropic(data, model=req["model"])

    async def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        name = self.backend.name
        body = anthropic_to_gemini(req, self.target(model))
        async with post(self.http, self.url(model, "streamGenerateContent") + "?alt=sse", body, provider=name,
                        headers=self.headers, timeout=self.stream_timeout) as resp:
            async for ev in gemini_stream_to_anthropic(sse_json(resp, name), model=req["model"]):
                yield ev
