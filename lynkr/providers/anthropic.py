"""Anthropic-native backends: api.anthropic.com, Claude deployments on Azure AI Foundry, and Z.AI's
Anthropic-compatible endpoint.

Same dialect in and out, so nothing is converted: the client's request goes upstream with only the
model mapped (unknown fields survive), and the answer comes back as the backend sent it, events
unchanged, with the client's model name put back. An ``event: error`` in the stream raises the
matching ``UpstreamError``; error bodies before the stream map by status in ``providers.http``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any, ClassVar

import aiohttp

from lynkr.config import Settings
from lynkr.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamOverloaded,
    UpstreamPermissionError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from lynkr.providers.base import NO_HINTS, BackendSettings, Event, ModelInfo, Provider, client_hints
from lynkr.providers.http import post, read_json
from lynkr.providers.openai_compat import OpenAICompatProvider
from lynkr.providers.readers import sse_json

ANTHROPIC_VERSION = "2023-06-01"

# Anthropic's error ``type`` -> lynkr's error class (the same table as the HTTP statuses)
ERROR_TYPES: dict[str, type[UpstreamError]] = {
    "invalid_request_error": UpstreamBadRequest,
    "request_too_large": UpstreamBadRequest,
    "authentication_error": UpstreamAuthError,
    "permission_error": UpstreamPermissionError,
    "not_found_error": UpstreamNotFound,
    "rate_limit_error": UpstreamRateLimited,
    "overloaded_error": UpstreamOverloaded,
    "timeout_error": UpstreamTimeout,
    "api_error": UpstreamServerError,
}


def messages_url(endpoint: str, *, default_prefix: str = "") -> str:
    """The Messages URL from a full URL (``.../v1/messages``, Lynkr's style), a ``.../v1`` base, or a base
    URL to which ``default_prefix`` + ``/v1/messages`` is added (Azure: ``/anthropic``)."""
    url = endpoint.rstrip("/")
    if url.endswith("/messages"):
        return url
    if url.endswith("/v1"):
        return url + "/messages"
    if default_prefix and not url.endswith(default_prefix):
        url += default_prefix
    return url + "/v1/messages"


def upstream_error(body: Any, provider: str) -> UpstreamError:
    """The typed error for an Anthropic error body (``{"type":"error","error":{"type","message"}}``)."""
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    cls = ERROR_TYPES.get(str(err.get("type")), UpstreamServerError)
    message = err.get("message") or "no message"
    return cls(f"{provider} stream error ({err.get('type', 'unknown')}): {message}", provider=provider)


async def passthrough_events(payloads: AsyncIterable[dict[str, Any]], *, model: str,
                             provider: str) -> AsyncIterator[Event]:
    """The backend's stream events as they arrive; ``message_start`` carries the client's model name, an
    ``error`` event raises. Pure: the JSON payloads come from any SSE decoder."""
    started = False
    async for ev in payloads:
        kind = ev.get("type")
        if kind == "error":
            raise upstream_error(ev, provider)
        if not isinstance(kind, str):
            raise UpstreamBadResponse(f"{provider} sent a stream event without a type: {str(ev)[:200]}",
                                      provider=provider)
        if kind == "message_start" and isinstance(ev.get("message"), dict):
            started = True
            ev = {**ev, "message": {**ev["message"], "model": model}}
        yield ev
    if not started:
        raise UpstreamBadResponse(f"{provider} closed the stream without starting a message", provider=provider)


class AnthropicProvider(Provider):
    """``MODEL_PROVIDER=anthropic``: any Anthropic Messages endpoint (``ANTHROPIC_UPSTREAM_*``)."""

    name: ClassVar[str] = "anthropic"
    passes_claude_models: ClassVar[bool] = True
    thinking_vendor: ClassVar[str | None] = "anthropic"
    url_prefix: ClassVar[str] = ""  # added to a base endpoint before /v1/messages

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        super().__init__(backend, http, settings)
        self.url = messages_url(backend.endpoint, default_prefix=self.url_prefix)
        self.headers = {"anthropic-version": self.version(), **(self.auth(backend.api_key) if backend.api_key else {})}

    def version(self) -> str:
        return ANTHROPIC_VERSION

    def auth(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    @property
    def default_model(self) -> str:
        return self.backend.model or ""

    def body(self, req: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        out = {**req, "model": model}
        if stream:
            out["stream"] = True
        else:
            out.pop("stream", None)
        return out

    def request_headers(self) -> dict[str, str]:
        beta = (client_hints.get() or NO_HINTS).anthropic_beta
        return {**self.headers, "anthropic-beta": beta} if beta else self.headers

    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        name = self.backend.name
        async with post(self.http, self.url, self.body(req, model, stream=False), provider=name,
                        headers=self.request_headers(), timeout=self.timeout) as resp:
            data = await read_json(resp, name)
        if isinstance(data, dict) and data.get("type") == "error":
            raise upstream_error(data, name)
        if not isinstance(data, dict) or data.get("type") != "message":
            raise UpstreamBadResponse(f"{name} answered something that is not a message: {str(data)[:200]}",
                                      provider=name)
        return {**data, "model": req["model"]}

    async def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        name = self.backend.name
        async with post(self.http, self.url, self.body(req, model, stream=True), provider=name,
                        headers=self.request_headers(), timeout=self.stream_timeout) as resp:
            async for ev in passthrough_events(sse_json(resp, name), model=req["model"], provider=name):
                yield ev

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(self.default_model)] if self.default_model else []


class AzureAnthropicProvider(AnthropicProvider):
    """``MODEL_PROVIDER=azure-anthropic``: Claude on Azure AI Foundry. ``AZURE_ANTHROPIC_ENDPOINT`` is the full
    ``https://NAME.services.ai.azure.com/anthropic/v1/messages`` URL or a base of it; the key goes in
    ``x-api-key`` (and ``api-key``, as Anthropic's own Foundry client sends it)."""

    name: ClassVar[str] = "azure-anthropic"
    url_prefix: ClassVar[str] = "/anthropic"

    def version(self) -> str:
        return str(self.backend.extra.get("azure_anthropic_version") or ANTHROPIC_VERSION)

    def auth(self, key: str) -> dict[str, str]:
        return {"x-api-key": key, "api-key": key}


class ZaiProvider(AnthropicProvider):
    """``MODEL_PROVIDER=zai``: GLM models on Z.AI's Anthropic-compatible endpoint. Claude names map to
    ``ZAI_MODEL`` (haiku-class ones to glm-4.5-air, as Lynkr did)."""

    name: ClassVar[str] = "zai"
    passes_claude_models: ClassVar[bool] = False
    small_fast_default: ClassVar[str | None] = "glm-4.5-air"

    def auth(self, key: str) -> dict[str, str]:
        # Z.AI documents ANTHROPIC_AUTH_TOKEN (a bearer token) for Claude Code; x-api-key works as well
        return {"x-api-key": key, "Authorization": f"Bearer {key}"}


class ZaiChatProvider(OpenAICompatProvider):
    """Z.AI through its OpenAI-compatible ``.../chat/completions`` endpoint (``ZAI_ENDPOINT`` says which)."""

    small_fast_default: ClassVar[str | None] = "glm-4.5-air"


def zai_provider(backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> Provider:
    """Z.AI speaks both dialects; the endpoint's path tells which one this one is (as in Lynkr)."""
    if "/chat/completions" in backend.endpoint:
        return ZaiChatProvider(backend, http, settings)
    return ZaiProvider(backend, http, settings)
