"""Sending a hub request (Anthropic Messages shape) to the backend that should serve it.

Handlers call ``Dispatcher.create_message`` / ``Dispatcher.open_stream`` and never pick a provider
themselves. A stream is *opened* here: its first event is awaited before anything is written to
the client, so a refusal is still an HTTP error (and the place where retries and fallbacks act).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from lynkr.config import Settings
from lynkr.errors import UpstreamBadResponse
from lynkr.providers import Provider
from lynkr.routing.model_map import upstream_model

Event = dict[str, Any]


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
class OpenStream:
    route: Route
    first: Event
    rest: AsyncGenerator[Event, None]


class Dispatcher:
    def __init__(self, settings: Settings, providers: dict[str, Provider]) -> None:
        self.settings = settings
        self.providers = providers
        self.primary = providers[settings.model_provider]

    def route(self, req: dict[str, Any]) -> Route:
        provider = self.primary
        model = upstream_model(req["model"], default=provider.default_model, small_fast=self.settings.small_fast_model)
        reason = "model map" if model != req["model"] else "model passed through"
        return Route(provider, model, reason)

    async def create_message(self, req: dict[str, Any]) -> tuple[Route, dict[str, Any]]:
        route = self.route(req)
        return route, await route.provider.create_message(req, route.model)

    async def open_stream(self, req: dict[str, Any]) -> OpenStream:
        route = self.route(req)
        events = route.provider.stream_message(req, route.model)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            await events.aclose()
            raise UpstreamBadResponse("backend sent an empty stream", provider=route.provider.backend.name) from None
        except BaseException:
            await events.aclose()
            raise
        return OpenStream(route, first, events)
