"""The provider interface: one small adapter per backend, behind one registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr

from lynkr.config import Settings
from lynkr.errors import ConfigError

Event = dict[str, Any]


@dataclass(frozen=True)
class BackendSettings:
    """What one provider adapter needs, resolved from the flat settings."""

    name: str
    endpoint: str
    api_key: str | None
    model: str
    timeout_ms: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendSpec:
    """Which settings (Lynkr's variable names, as Settings attributes) configure one backend."""

    endpoint: str
    model: str
    api_key: str | None = None
    timeout_ms: str = "request_timeout_ms"
    required: tuple[str, ...] = ()  # attributes that must be set; their variables are named when missing
    extra: tuple[str, ...] = ()  # further attributes handed to the adapter as ``extra``
    hint: str = ""  # added to the missing-variable message

    def resolve(self, name: str, settings: Settings) -> BackendSettings:
        key = getattr(settings, self.api_key) if self.api_key else None
        return BackendSettings(
            name=name,
            endpoint=getattr(settings, self.endpoint) or "",
            api_key=key.get_secret_value() if isinstance(key, SecretStr) else key,
            model=getattr(settings, self.model),
            timeout_ms=getattr(settings, self.timeout_ms),
            extra={attr: getattr(settings, attr) for attr in self.extra},
        )

    def check(self, name: str, settings: Settings) -> None:
        for attr in self.required:
            if getattr(settings, attr) is None:
                hint = f" {self.hint}" if self.hint else ""
                raise ConfigError(f"MODEL_PROVIDER={name} needs {attr.upper()} (set it in .env){hint}")


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
