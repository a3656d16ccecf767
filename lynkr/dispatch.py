"""Sending a hub request (Anthropic Messages shape) to the backend that should serve it.

Handlers call ``Dispatcher.create_message`` / ``Dispatcher.open_stream`` and never pick a provider
themselves. A stream is *opened* here: its first event is awaited before anything is written to
the client, so a refusal is still an HTTP error (and the place where retries and fallbacks act).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lynkr.config import Settings
from lynkr.errors import NotConfigured, UpstreamBadResponse
from lynkr.providers import Provider, embeddings_provider
from lynkr.providers.base import ChatCompletionsBackend
from lynkr.routing.model_map import upstream_embeddings_model, upstream_model

Event = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes, and why (shown to clients as X-Lynkr-* headers)."""

    provider: Provider
    model: str
    reason: str

    def headers(self) -> dict[str, str]:
        return {"X-Lynkr-Provider": self.provider.backend.name, "X-Lynkr-Model": self.model,
                "X-Lynkr-Routing-Reason": self.reason}

    def describe(self) -> str:
        return f"{self.provider.backend.name}:{self.model} ({self.reason})"


@dataclass(slots=True)
class Opened(Generic[T]):
    """A stream whose first item has arrived (so the backend accepted the request)."""

    route: Route
    first: T
    rest: AsyncGenerator[T, None]


OpenStream = Opened[Event]
OpenRaw = Opened[bytes]


class Dispatcher:
    def __init__(self, settings: Settings, providers: dict[str, Provider]) -> None:
        self.settings = settings
        self.providers = providers
        self.primary = providers[settings.model_provider]

    def route(self, req: dict[str, Any]) -> Route:
        provider = self.primary
        model = upstream_model(req["model"], default=provider.default_model,
                               small_fast=self.settings.small_fast_model or provider.small_fast_default,
                               passthrough=provider.passes_claude_models and not provider.default_model)
        reason = "model map" if model != req["model"] else "model passed through"
        return Route(provider, model, reason)

    def embeddings_route(self, requested: str | None) -> Route:
        """The backend and model for ``POST /v1/embeddings``; NotConfigured when no backend can embed."""
        provider = embeddings_provider(self.settings, self.providers)
        if provider is None or provider.embeddings_model is None:
            if self.settings.embeddings_provider:
                why = f"EMBEDDINGS_PROVIDER={self.settings.embeddings_provider} is not available"
            else:
                why = f"MODEL_PROVIDER={self.settings.model_provider} cannot create embeddings and no other backend is"
            raise NotConfigured(f"no embeddings backend: {why}. Set EMBEDDINGS_PROVIDER to ollama, openai, openrouter "
                                f"or llamacpp (with that backend's settings, e.g. OLLAMA_ENDPOINT or OPENAI_API_KEY)")
        model = upstream_embeddings_model(requested, backend=provider.backend.name, default=provider.embeddings_model)
        return Route(provider, model, "model map" if model != requested else "model passed through")

    async def create_message(self, req: dict[str, Any]) -> tuple[Route, dict[str, Any]]:
        route = self.route(req)
        return route, await route.provider.create_message(req, route.model)

    async def open_stream(self, req: dict[str, Any]) -> OpenStream:
        route = self.route(req)
        return await self._open(route, route.provider.stream_message(req, route.model))

    async def open_chat_passthrough(self, route: Route, body: dict[str, Any]) -> OpenRaw:
        """Open a Chat Completions stream on a backend that speaks it: bytes pass through as they come."""
        assert isinstance(route.provider, ChatCompletionsBackend)
        return await self._open(route, route.provider.chat_stream(body, route.model))

    async def _open(self, route: Route, events: AsyncGenerator[T, None]) -> Opened[T]:
        try:
            first = await anext(events)
        except StopAsyncIteration:
            await events.aclose()
            raise UpstreamBadResponse("backend sent an empty stream", provider=route.provider.backend.name) from None
        except BaseException:
            await events.aclose()
            raise
        return Opened(route, first, events)
