"""Backends that speak the OpenAI Responses API: Azure OpenAI when ``AZURE_OPENAI_ENDPOINT`` is a Responses URL
(``.../openai/responses`` or ``.../openai/v1/responses``; the format is chosen from the URL, as Lynkr did), and
OpenAI itself with ``OPENAI_API=responses`` (or an ``OPENAI_ENDPOINT`` ending in ``/responses``).

Anthropic and Chat Completions clients reach it through the hub (``lynkr.convert.responses_backend``);
Responses clients (Codex) pass straight through with only the model mapped (``ResponsesBackend``).
Headers, timeouts, the model list and embeddings are the Chat adapter's for the same backend.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import aiohttp

from lynkr.config import Settings
from lynkr.convert.responses_backend import (
    ResponsesTarget,
    anthropic_to_responses,
    response_error,
    responses_stream_to_anthropic,
    responses_to_anthropic,
)
from lynkr.convert.tables import REASONING_MODEL
from lynkr.errors import UpstreamBadResponse, UpstreamError
from lynkr.providers.base import BackendSettings, Event, ModelInfo, Provider
from lynkr.providers.http import post, read_json
from lynkr.providers.openai_compat import OpenAICompatProvider, api_base
from lynkr.providers.readers import sse_json, sse_passthrough

# Azure's Responses API needs api-version 2025-03-01-preview or later on the .../openai/responses form
# (the v1 form, .../openai/v1/responses, takes none); an older AZURE_OPENAI_API_VERSION (the default is a
# Chat Completions one) is replaced with this one.
AZURE_RESPONSES_MIN_VERSION = "2025-03-01-preview"
AZURE_RESPONSES_VERSION = "2025-04-01-preview"
_AZURE_PATHS = ("/openai/responses", "/openai/v1/responses")


def speaks_responses(backend: BackendSettings) -> bool:
    """Whether this backend's settings ask for the Responses API rather than Chat Completions."""
    path = urlsplit(backend.endpoint).path.rstrip("/")
    if backend.name == "azure-openai":
        return any(p in path for p in _AZURE_PATHS)
    if backend.name == "openai":
        return backend.extra.get("openai_api") == "responses" or path.endswith("/responses")
    return False


def responses_url(backend: BackendSettings) -> str:
    url = backend.endpoint.rstrip("/")
    if backend.name != "azure-openai":
        return url if urlsplit(url).path.endswith("/responses") else api_base(backend) + "/responses"
    if "/openai/v1/" in url or "api-version=" in url:
        return url
    version = str(backend.extra.get("azure_openai_api_version") or "")
    if version < AZURE_RESPONSES_MIN_VERSION:  # ISO dates compare as strings; "preview" and "latest" sort last
        version = AZURE_RESPONSES_VERSION
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'api-version': version})}"


class OpenAIResponsesProvider(Provider):
    name: ClassVar[str] = "openai-responses"
    thinking_vendor: ClassVar[str | None] = "openai"  # encrypted reasoning rides in thinking signatures

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        super().__init__(backend, http, settings)
        self.chat = OpenAICompatProvider(backend, http, settings)  # headers, timeout, models, embeddings
        self.headers = self.chat.headers
        self.url = responses_url(backend)

    def target(self, model: str) -> ResponsesTarget:
        return ResponsesTarget(backend=self.backend.name, model=model,
                               max_output_tokens=self.settings.max_output_tokens,
                               reasoning=bool(REASONING_MODEL.search(model)))

    def _post(self, body: dict[str, Any], *, stream: bool = False
              ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        return post(self.http, self.url, body, provider=self.backend.name, headers=self.headers,
                    timeout=self.stream_timeout if stream else self.timeout)

    # --- Anthropic (and Chat Completions) clients, through the hub ------------------------------

    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        async with self._post(anthropic_to_responses(req, self.target(model), stream=False)) as resp:
            data = await read_json(resp, self.backend.name)
        return responses_to_anthropic(data, model=req["model"])

    async def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        async with self._post(anthropic_to_responses(req, self.target(model), stream=True), stream=True) as resp:
            async for ev in responses_stream_to_anthropic(sse_json(resp, self.backend.name), model=req["model"]):
                yield ev

    # --- Responses clients pass straight through (only the model is mapped) ---------------------

    async def create_response(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        async with self._post({**body, "model": model}) as resp:
            data = await read_json(resp, self.backend.name)
        if not isinstance(data, dict) or data.get("status") == "failed" or "output" not in data:
            if isinstance(data, dict) and data.get("error"):
                raise response_error(data["error"], "backend error: ")
            raise UpstreamBadResponse(f"{self.backend.name} answered without a response: {str(data)[:200]}",
                                      provider=self.backend.name)
        return data

    async def response_stream(self, body: dict[str, Any], model: str,
                              observe: Callable[[dict[str, Any]], None] | None = None
                              ) -> AsyncGenerator[bytes, None]:
        """The backend's SSE bytes, whole events only; ``observe`` sees each event. A ``response.failed`` or
        ``error`` event raises: before anything was passed on (so the request is retried or falls back, or the
        client gets an error status), else once the client has it, unchanged (so it counts against the backend)."""
        failure: list[UpstreamError] = []

        def inspect(event: Any) -> None:
            if not isinstance(event, dict):
                return
            if observe is not None:
                observe(event)
            kind = event.get("type")
            if kind == "response.failed" and not failure:
                failure.append(response_error((event.get("response") or {}).get("error") or {},
                                              "backend stream error: "))
            elif kind == "error" and not failure:
                failure.append(response_error(event, "backend stream error: "))

        sent = False
        async with self._post({**body, "model": model}, stream=True) as resp:
            async for chunk in sse_passthrough(resp, self.backend.name, inspect):
                if failure and not sent:
                    raise failure[0]
                sent = True
                yield chunk
            if failure:
                raise failure[0]

    # --- the rest is the Chat adapter's -----------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        return await self.chat.list_models()

    @property
    def embeddings_model(self) -> str | None:
        return self.chat.embeddings_model

    async def create_embeddings(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        return await self.chat.create_embeddings(req, model)


def openai_provider(backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> Provider:
    """``openai`` and ``azure-openai``: the Responses API when the settings say so, else Chat Completions."""
    if speaks_responses(backend):
        return OpenAIResponsesProvider(backend, http, settings)
    return OpenAICompatProvider(backend, http, settings)
