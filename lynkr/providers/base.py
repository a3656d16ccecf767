"""The provider interface: one small adapter per backend, behind one registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from typing import Any, ClassVar

import aiohttp

from lynkr.config import BackendSettings, Settings

Event = dict[str, Any]


class Provider(ABC):
    """Serves Anthropic Messages requests (the hub shape) from one backend.

    ``create_message`` returns an Anthropic message; ``stream_message`` yields Anthropic stream
    events as the backend produces them. Both raise ``lynkr.errors.UpstreamError`` subclasses
    only, and a stream raises before its first event when the backend refuses the request.
    """

    name: ClassVar[str]
    supports_tools: ClassVar[bool] = True
    supports_images: ClassVar[bool] = True
    supports_thinking: ClassVar[bool] = True

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        self.backend = backend
        self.http = http
        self.settings = settings

    @property
    def default_model(self) -> str:
        return self.backend.model

    @abstractmethod
    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]: ...

    @abstractmethod
    def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]: ...


ProviderFactory = Callable[[BackendSettings, aiohttp.ClientSession, Settings], Provider]
