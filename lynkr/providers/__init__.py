"""Backend adapters and the registry that names them."""

from __future__ import annotations

import aiohttp

from lynkr.config import Settings
from lynkr.providers.base import Provider, ProviderFactory
from lynkr.providers.ollama import OllamaProvider
from lynkr.providers.openai_compat import OpenAICompatProvider

REGISTRY: dict[str, ProviderFactory] = {
    "openai": OpenAICompatProvider,
    "openrouter": OpenAICompatProvider,
    "azure-openai": OpenAICompatProvider,
    "llamacpp": OpenAICompatProvider,
    "lmstudio": OpenAICompatProvider,
    "ollama": OllamaProvider,
}


def build_provider(name: str, http: aiohttp.ClientSession, settings: Settings) -> Provider:
    return REGISTRY[name](settings.backend(name), http, settings)


__all__ = ["REGISTRY", "Provider", "build_provider"]
