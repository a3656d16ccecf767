"""Backend adapters and the registry that names them.

Adding an OpenAI-compatible backend is a row here plus a ``Flavor`` in ``openai_compat``; a new wire
format is a module with one ``Provider`` subclass and a row here.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from lynkr.config import Settings
from lynkr.errors import ConfigError
from lynkr.providers.anthropic import AnthropicProvider, AzureAnthropicProvider, zai_provider
from lynkr.providers.base import BackendSettings, BackendSpec, ModelInfo, Provider, ProviderFactory
from lynkr.providers.bedrock import BedrockProvider
from lynkr.providers.gemini import GeminiProvider
from lynkr.providers.ollama import OllamaProvider
from lynkr.providers.openai_compat import OpenAICompatProvider
from lynkr.providers.openai_responses import openai_provider


@dataclass(frozen=True)
class Registration:
    factory: ProviderFactory
    spec: BackendSpec


REGISTRY: dict[str, Registration] = {
    # openai and azure-openai: Chat Completions, or the Responses API when OPENAI_API / the endpoint URL says so
    "openai": Registration(openai_provider, BackendSpec(
        "openai_endpoint", "openai_model", "openai_api_key", required=("openai_api_key",),
        extra=("openai_organization", "openai_api"), embeddings_model="openai_embeddings_model")),
    "openrouter": Registration(OpenAICompatProvider, BackendSpec(
        "openrouter_endpoint", "openrouter_model", "openrouter_api_key", required=("openrouter_api_key",),
        embeddings_model="openrouter_embeddings_model")),
    "azure-openai": Registration(openai_provider, BackendSpec(
        "azure_openai_endpoint", "azure_openai_deployment", "azure_openai_api_key",
        required=("azure_openai_api_key", "azure_openai_endpoint"), extra=("azure_openai_api_version",),
        hint="(AZURE_OPENAI_ENDPOINT is e.g. https://NAME.openai.azure.com, or a Responses API URL such as "
             "https://NAME.openai.azure.com/openai/v1/responses)")),
    "llamacpp": Registration(OpenAICompatProvider, BackendSpec(
        "llamacpp_endpoint", "llamacpp_model", "llamacpp_api_key", "llamacpp_timeout_ms",
        embeddings_endpoint="llamacpp_embeddings_endpoint")),
    "lmstudio": Registration(OpenAICompatProvider, BackendSpec(
        "lmstudio_endpoint", "lmstudio_model", "lmstudio_api_key", "lmstudio_timeout_ms")),
    "ollama": Registration(OllamaProvider, BackendSpec(
        "ollama_endpoint", "ollama_model", "ollama_api_key", "ollama_timeout_ms",
        extra=("ollama_keep_alive", "ollama_num_ctx"), embeddings_model="ollama_embeddings_model",
        embeddings_endpoint="ollama_embeddings_endpoint")),
    # no variable is required: without AWS_BEDROCK_API_KEY requests are SigV4-signed (AWS credential chain)
    "bedrock": Registration(BedrockProvider, BackendSpec(
        "bedrock_base_url", "aws_bedrock_model_id", "aws_bedrock_api_key", extra=("bedrock_region",))),
    # Anthropic-native: the request passes through (the upstream key is not the client's ANTHROPIC_API_KEY)
    "anthropic": Registration(AnthropicProvider, BackendSpec(
        "anthropic_upstream_endpoint", "anthropic_upstream_model", "anthropic_upstream_api_key",
        required=("anthropic_upstream_api_key",))),
    "azure-anthropic": Registration(AzureAnthropicProvider, BackendSpec(
        "azure_anthropic_endpoint", "model_default", "azure_anthropic_api_key",
        required=("azure_anthropic_api_key", "azure_anthropic_endpoint"), extra=("azure_anthropic_version",),
        hint="(AZURE_ANTHROPIC_ENDPOINT is e.g. https://NAME.services.ai.azure.com/anthropic)")),
    "zai": Registration(zai_provider, BackendSpec("zai_endpoint", "zai_model", "zai_api_key",
                                                  required=("zai_api_key",))),
    "databricks": Registration(OpenAICompatProvider, BackendSpec(
        "databricks_api_base", "databricks_model", "databricks_api_key",
        required=("databricks_api_key", "databricks_api_base"), extra=("databricks_endpoint_path",),
        hint="(DATABRICKS_API_BASE is your workspace URL, e.g. https://WORKSPACE.cloud.databricks.com)")),
    "moonshot": Registration(OpenAICompatProvider, BackendSpec(
        "moonshot_endpoint", "moonshot_model", "moonshot_api_key", required=("moonshot_api_key",))),
    # Gemini through Google AI Studio's API; both names are Lynkr's (it called it vertex)
    "vertex": Registration(GeminiProvider, BackendSpec(
        "vertex_endpoint", "vertex_model", "vertex_api_key", required=("vertex_api_key",),
        hint="(or GOOGLE_API_KEY; get a key at https://aistudio.google.com/apikey)")),
    "gemini": Registration(GeminiProvider, BackendSpec(
        "vertex_endpoint", "vertex_model", "vertex_api_key", required=("vertex_api_key",),
        hint="(or GOOGLE_API_KEY; get a key at https://aistudio.google.com/apikey)")),
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
    name = settings.embeddings_provider
    if name and name != settings.model_provider:
        spec = registration(name).spec
        if missing := [attr.upper() for attr in spec.required if getattr(settings, attr) is None]:
            raise ConfigError(f"EMBEDDINGS_PROVIDER={name} needs {' and '.join(missing)} (set it in .env)")


def routing_backends(settings: Settings) -> list[str]:
    """The backends TIER_* and the fallback chain name (``provider`` or ``provider:model``), in order."""
    values = [settings.tier_simple, settings.tier_medium, settings.tier_complex, settings.tier_reasoning,
              *settings.fallback_chain()]
    heads = (v.partition(":")[0] for v in values if v)
    return list(dict.fromkeys(h for h in heads if h in REGISTRY))


def _buildable(name: str, settings: Settings) -> bool:
    spec = REGISTRY[name].spec
    return not spec.required or spec.configured(settings)


def configured_backends(settings: Settings) -> list[str]:
    """The backends lynkr builds: MODEL_PROVIDER first, then EMBEDDINGS_PROVIDER and the backends routing
    names (TIER_*, FALLBACK_*), then every backend whose required settings (its key, say) are present.
    Keyless local servers (ollama, llamacpp, lmstudio) count only when named in one of those, so nobody's
    localhost ports are probed on a guess."""
    named = [settings.model_provider, settings.embeddings_provider,
             *(n for n in routing_backends(settings) if _buildable(n, settings))]
    names: list[str] = list(dict.fromkeys(n for n in named if n))
    for name, reg in REGISTRY.items():  # two names for one backend (vertex, gemini) build it once
        if reg.spec.configured(settings) and all(REGISTRY[n] != reg for n in names):
            names.append(name)
    return names


# Auto choice of the embeddings backend when the chat backend cannot embed (Lynkr's order)
EMBEDDINGS_PREFERENCE = ("openrouter", "openai", "ollama", "llamacpp")


def embeddings_provider(settings: Settings, providers: dict[str, Provider]) -> Provider | None:
    """EMBEDDINGS_PROVIDER's backend; unset: the chat backend if it can embed, else the first built one that can."""
    if settings.embeddings_provider:
        chosen = providers.get(settings.embeddings_provider)
        return chosen if chosen is not None and chosen.embeddings_model else None
    primary = providers.get(settings.model_provider)
    if primary is not None and primary.embeddings_model:
        return primary
    ranked = sorted(providers.values(), key=lambda p: (
        EMBEDDINGS_PREFERENCE.index(p.backend.name) if p.backend.name in EMBEDDINGS_PREFERENCE else 99))
    return next((p for p in ranked if p.embeddings_model), None)


def build_provider(name: str, http: aiohttp.ClientSession, settings: Settings) -> Provider:
    reg = registration(name)
    return reg.factory(reg.spec.resolve(name, settings), http, settings)


__all__ = ["REGISTRY", "BackendSettings", "ModelInfo", "Provider", "backend_settings", "build_provider",
           "check_settings", "configured_backends", "embeddings_provider", "routing_backends"]
