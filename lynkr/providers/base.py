"""The provider interface: one small adapter per backend, behind one registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeGuard, runtime_checkable

import aiohttp
from pydantic import SecretStr

from lynkr.config import Settings
from lynkr.errors import ConfigError, NotConfigured

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
    embeddings_model: str | None = None  # the model POST /v1/embeddings uses here by default
    embeddings_endpoint: str | None = None  # a separate embeddings URL, when configured


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
    embeddings_model: str | None = None  # attribute naming the default embeddings model, if the backend has one
    embeddings_endpoint: str | None = None  # attribute naming a separate embeddings URL, if the backend has one

    def resolve(self, name: str, settings: Settings) -> BackendSettings:
        key = getattr(settings, self.api_key) if self.api_key else None
        return BackendSettings(
            name=name,
            endpoint=getattr(settings, self.endpoint) or "",
            api_key=key.get_secret_value() if isinstance(key, SecretStr) else key,
            model=getattr(settings, self.model),
            timeout_ms=getattr(settings, self.timeout_ms),
            extra={attr: getattr(settings, attr) for attr in self.extra},
            embeddings_model=getattr(settings, self.embeddings_model) if self.embeddings_model else None,
            embeddings_endpoint=getattr(settings, self.embeddings_endpoint) if self.embeddings_endpoint else None,
        )

    def configured(self, settings: Settings) -> bool:
        """Whether the settings name this backend's required values (keyless backends have none)."""
        return bool(self.required) and all(getattr(settings, attr) is not None for attr in self.required)

    def check(self, name: str, settings: Settings) -> None:
        for attr in self.required:
            if getattr(settings, attr) is None:
                hint = f" {self.hint}" if self.hint else ""
                raise ConfigError(f"MODEL_PROVIDER={name} needs {attr.upper()} (set it in .env){hint}")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model a backend offers (``GET /v1/models``); unknown facts stay None."""

    id: str
    context_window: int | None = None
    created: int | None = None  # unix seconds
    owned_by: str | None = None


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
    # Serves Claude models itself (Anthropic-native backends): with no model configured, the client's
    # claude-* names pass unchanged instead of mapping to the backend's model.
    passes_claude_models: ClassVar[bool] = False
    # The model haiku-class requests go to when SMALL_FAST_MODEL is unset (None: the backend's model).
    small_fast_default: ClassVar[str | None] = None
    # Whose thinking-block signatures this backend makes and accepts (lynkr.convert.signatures);
    # None: it neither makes nor checks any.
    thinking_vendor: ClassVar[str | None] = None

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        self.backend = backend
        self.http = http
        self.settings = settings
        connect = settings.connect_timeout_ms / 1000
        # a call waits at most the backend's timeout for each read of its answer
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_read=backend.timeout_ms / 1000)
        # a stream's reads have their guards already: the dispatcher's first-item deadline (the same timeout),
        # then the stream writer's STREAM_IDLE_TIMEOUT_MS between events. aiohttp's read timeout would cancel
        # and re-create a loop timer on every read of every stream (~6,000 instructions each, with uvloop)
        self.stream_timeout = aiohttp.ClientTimeout(total=None, connect=connect)

    def context_window(self, model: str) -> int | None:
        """The context window ``model`` has here, when known; routing skips backends it would overflow."""
        return None

    @property
    def default_model(self) -> str:
        return self.backend.model

    @abstractmethod
    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]: ...

    @abstractmethod
    def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]: ...

    async def list_models(self) -> list[ModelInfo]:
        """The models this backend offers. Default: the configured model (backends without a listing
        API; none when no model is configured); adapters that can ask their backend override this and raise
        ``UpstreamError`` when it fails."""
        return [ModelInfo(self.default_model)] if self.default_model else []

    @property
    def embeddings_model(self) -> str | None:
        """The model ``POST /v1/embeddings`` uses on this backend by default; None: it cannot embed."""
        return None

    async def create_embeddings(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        """An OpenAI embeddings response for a validated OpenAI embeddings request (``lynkr.wire.embeddings``),
        with ``model`` already mapped. Only called when ``embeddings_model`` is not None."""
        raise NotConfigured(f"{self.backend.name} cannot create embeddings; set EMBEDDINGS_PROVIDER to one that can")


@dataclass(frozen=True, slots=True)
class ClientHints:
    """What the client said in headers that a same-dialect backend must hear too (the request body
    carries everything else). Set per request by the route handler; read by the Anthropic-native
    providers only: Claude Code's ``context_management``, mid-conversation system turns and effort
    are beta features that an Anthropic backend rejects without their ``anthropic-beta`` names."""

    anthropic_beta: str | None = None


NO_HINTS = ClientHints()
client_hints: ContextVar[ClientHints | None] = ContextVar("lynkr_client_hints", default=None)


@runtime_checkable
class ChatCompletionsBackend(Protocol):
    """A backend that speaks OpenAI Chat Completions itself: Chat clients pass straight through."""

    async def chat_completion(self, body: dict[str, Any], model: str) -> dict[str, Any]: ...

    def chat_stream(self, body: dict[str, Any], model: str,
                    observe: Callable[[dict[str, Any]], None] | None = None) -> AsyncGenerator[bytes, None]: ...


@runtime_checkable
class ResponsesBackend(Protocol):
    """A backend that speaks the OpenAI Responses API itself: Responses clients (Codex) pass straight through,
    ``previous_response_id`` included. ``response_stream`` yields whole SSE events; ``observe`` sees each one."""

    async def create_response(self, body: dict[str, Any], model: str) -> dict[str, Any]: ...

    def response_stream(self, body: dict[str, Any], model: str,
                        observe: Callable[[dict[str, Any]], None] | None = None) -> AsyncGenerator[bytes, None]: ...


_IMPLEMENTS: dict[tuple[type, type], bool] = {}


def _implements(cls: type, protocol: type) -> bool:
    known = _IMPLEMENTS.get((cls, protocol))
    if known is None:
        known = _IMPLEMENTS[cls, protocol] = issubclass(cls, protocol)
    return known


# isinstance() with a runtime-checkable Protocol walks the protocol's members every time (~5 us on Python
# 3.11), and these are asked on every Chat Completions / Responses request: the answer is kept per class.
def speaks_chat(provider: object) -> TypeGuard[ChatCompletionsBackend]:
    """The provider speaks Chat Completions itself (``ChatCompletionsBackend``)."""
    return _implements(type(provider), ChatCompletionsBackend)


def speaks_responses(provider: object) -> TypeGuard[ResponsesBackend]:
    """The provider speaks the Responses API itself (``ResponsesBackend``)."""
    return _implements(type(provider), ResponsesBackend)


ProviderFactory = Callable[[BackendSettings, aiohttp.ClientSession, Settings], Provider]
