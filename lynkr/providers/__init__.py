"""Backend adapters and the registry that names them.

Adding an OpenAI-compatible backend is a row here plus a ``Flavor`` in ``openai_compat``; a new wire
format is a module with one ``Provider`` subclass and a row here.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from lynkr.config import Settings
from lynkr.errors import ConfigError
from lynkr.providers.base import BackendSettings, BackendSpec, Provider, ProviderFactory
from lynkr.providers.ollama import OllamaProvider
from lynkr.providers.openai_compat import OpenAICompatProvider


@dataclass(frozen=True)
class Registration:
    factory: ProviderFactory
    spec: BackendSpec


REGISTRY: dict[str, Registration] = {
    "openai": Registration(OpenAICompatProvider, BackendSpec(
        "openai_endpoint", "openai_model", "openai_api_key", required=("openai_api_key",),
        extra=("openai_organization",))),
    "openrouter": Registration(OpenAICompatProvider, BackendSpec(
        "openrouter_endpoint", "openrouter_model", "openrouter_api_key", required=("openrouter_api_key",))),
    "azure-openai": Registration(OpenAICompatProvider, BackendSpec(
        "azure_openai_endpoint", "azure_openai_deployment", "azure_openai_api_key",
        required=("azure_openai_api_key", "azure_openai_endpoint"), extra=("azure_openai_api_version",),
        hint="(AZURE_OPENAI_ENDPOINT is e.g. https://NAME.openai.azure.com)")),
    "llamacpp": Registration(OpenAICompatProvider, BackendSpec(
        "llamacpp_endpoint", "llamacpp_model", "llamacpp_api_key", "llamacpp_timeout_ms")),
    "lmstudio": Registration(OpenAICompatProvider, BackendSpec(
        "lmstudio_endpoint", "lmstudio_model", "lmstudio_api_key", "lmstudio_timeout_ms")),
    "ollama": Registration(OllamaProvider, BackendSpec(
        "ollama_endpoint", "ollama_model", "ollama_api_key", "ollama_timeout_ms",
        extra=("ollama_keep_alive", "ollama_num_ctx"))),
}


def registration(name: str) -> Registration:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown provider {name!r}; use one of {', '.join(REGISTRY)}") from None


def backend_settings(name: str, settings: Settings) -> BackendSettings:
    return registration(name).spec.resolve(name, settings)


def check_settings(settings: Settings) -> None:
    """Raise ConfigError naming the exact variable when the chosen backend cannot work."""
    registration(settings.model_provider).spec.check(settings.model_provider, settings)


def build_provider(name: str, http: aiohttp.ClientSession, settings: Settings) -> Provider:
    reg = registration(name)
    return reg.factory(reg.spec.resolve(name, settings), http, settings)


__all__ = ["REGISTRY", "BackendSettings", "Provider", "backend_settings", "build_provider", "check_settings"]
