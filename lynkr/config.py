"""lynkr's one settings object.

Variable names are the Node.js Lynkr's, so an existing Lynkr ``.env`` works unchanged. Settings are
loaded once, at the edge (the CLI), and passed down; no other module reads the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lynkr.errors import ConfigError

ProviderName = Literal["openai", "openrouter", "azure-openai", "llamacpp", "lmstudio", "ollama", "bedrock",
                      "anthropic", "azure-anthropic", "zai", "databricks", "moonshot", "vertex", "gemini"]
EmbeddingsProviderName = Literal["ollama", "openai", "openrouter", "llamacpp"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(value: str | int) -> int:
    """'32mb' -> bytes (Lynkr's REQUEST_JSON_LIMIT format)."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise ValueError(f"not a size: {value!r} (use e.g. 32mb)")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _UNITS[unit])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True,
        populate_by_name=True,
    )

    # --- server ---
    # where lynkr keeps its state (lynkr.db: telemetry, sessions, budgets, cache)
    lynkr_data_dir: Path = Field(default_factory=lambda: Path.home() / ".lynkr")
    host: str = Field("127.0.0.1", alias="LYNKR_HOST")
    port: int = Field(8081, ge=1, le=65535)
    log_level: str = "info"
    request_json_limit: int = 32 * 1024**2
    stream_ping_interval: float = Field(10.0, gt=0, description="seconds of upstream silence before a ping")

    # --- which backend, which model ---
    model_provider: ProviderName = "ollama"
    small_fast_model: str | None = None
    max_output_tokens: int | None = Field(None, gt=0)

    # --- OpenAI ---
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o"
    openai_endpoint: str = "https://api.openai.com/v1/chat/completions"
    openai_organization: str | None = None
    # which OpenAI API serves requests: Chat Completions, or the Responses API ({base}/responses)
    openai_api: Literal["chat", "responses"] = "chat"

    # --- OpenRouter ---
    openrouter_api_key: SecretStr | None = None
    openrouter_model: str = "openai/gpt-4o-mini"
    openrouter_endpoint: str = "https://openrouter.ai/api/v1/chat/completions"

    # --- Azure OpenAI (chat deployments) ---
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: SecretStr | None = None
    azure_openai_deployment: str = "gpt-4o"
    azure_openai_api_version: str = "2024-10-21"

    # --- llama.cpp server ---
    llamacpp_endpoint: str = "http://localhost:8080"
    llamacpp_model: str = "default"
    llamacpp_api_key: SecretStr | None = None
    llamacpp_timeout_ms: int = Field(300_000, gt=0)

    # --- LM Studio ---
    lmstudio_endpoint: str = "http://localhost:1234"
    lmstudio_model: str = "default"
    lmstudio_api_key: SecretStr | None = None
    lmstudio_timeout_ms: int = Field(300_000, gt=0)

    # --- Ollama ---
    ollama_endpoint: str = "http://localhost:11434"
    ollama_model: str = "qwen2.5-coder:7b"
    ollama_api_key: SecretStr | None = None
    ollama_timeout_ms: int = Field(120_000, gt=0)
    ollama_keep_alive: str | None = None
    ollama_num_ctx: int | None = Field(None, gt=0)

    # --- AWS Bedrock (Converse / ConverseStream) ---
    # A Bedrock API key (sent as a bearer token); without one, requests are SigV4-signed with the standard
    # AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance roles...).
    aws_bedrock_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AWS_BEDROCK_API_KEY", "AWS_BEARER_TOKEN_BEDROCK"))
    aws_bedrock_region: str | None = None
    aws_region: str | None = None
    aws_bedrock_model_id: str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    aws_bedrock_endpoint: str | None = None  # base URL override (VPC endpoints, tests)

    @property
    def bedrock_region(self) -> str:
        return self.aws_bedrock_region or self.aws_region or "us-east-1"

    @property
    def bedrock_base_url(self) -> str:
        return self.aws_bedrock_endpoint or f"https://bedrock-runtime.{self.bedrock_region}.amazonaws.com"

    # --- embeddings (POST /v1/embeddings) ---
    # unset: the chat backend if it can embed, else the first configured one that can
    embeddings_provider: EmbeddingsProviderName | None = None
    ollama_embeddings_model: str = "nomic-embed-text"
    ollama_embeddings_endpoint: str | None = None  # another Ollama for embeddings (base URL)
    openai_embeddings_model: str = "text-embedding-3-small"
    openrouter_embeddings_model: str = "openai/text-embedding-3-small"
    llamacpp_embeddings_endpoint: str | None = None  # full URL; default {LLAMACPP_ENDPOINT}/v1/embeddings

    # --- Anthropic-native backends (the request passes through; only the model is mapped) ---
    # api.anthropic.com, or any Anthropic Messages endpoint. Deliberately not ANTHROPIC_API_KEY: Claude Code
    # users often have that set for the client side, and it must never be sent upstream by accident.
    anthropic_upstream_api_key: SecretStr | None = None
    anthropic_upstream_endpoint: str = "https://api.anthropic.com/v1/messages"
    anthropic_upstream_model: str | None = None  # unset: the client's claude-* model names pass unchanged

    # --- Azure AI Foundry: Claude deployments (Anthropic Messages API) ---
    azure_anthropic_endpoint: str | None = None  # https://NAME.services.ai.azure.com/anthropic[/v1/messages]
    azure_anthropic_api_key: SecretStr | None = None
    azure_anthropic_version: str = "2023-06-01"
    # Lynkr's MODEL_DEFAULT: the Azure Claude deployment to use (unset: the client's claude-* names pass),
    # and the model name of the Databricks endpoint
    model_default: str | None = None

    # --- Z.AI (GLM models behind an Anthropic-compatible endpoint) ---
    zai_api_key: SecretStr | None = None
    zai_endpoint: str = "https://api.z.ai/api/anthropic/v1/messages"
    zai_model: str = "GLM-4.7"

    # --- Databricks (serving-endpoint invocations, OpenAI Chat Completions format) ---
    databricks_api_base: str | None = None  # https://WORKSPACE.cloud.databricks.com
    databricks_api_key: SecretStr | None = None
    databricks_endpoint_path: str = "/serving-endpoints/databricks-claude-sonnet-4-5/invocations"

    @property
    def databricks_model(self) -> str:
        return self.model_default or "databricks-claude-sonnet-4-5"

    # --- Moonshot (Kimi, OpenAI Chat Completions) ---
    moonshot_api_key: SecretStr | None = None
    moonshot_endpoint: str = "https://api.moonshot.ai/v1/chat/completions"
    moonshot_model: str = "kimi-k2-turbo-preview"

    # --- Google Gemini (MODEL_PROVIDER=vertex or gemini): Google AI Studio's generateContent ---
    vertex_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("VERTEX_API_KEY", "GOOGLE_API_KEY", "vertex_api_key"))
    vertex_model: str = "gemini-2.5-flash"
    vertex_endpoint: str = "https://generativelanguage.googleapis.com/v1beta"  # API root (tests, proxies)

    # --- routing: tiers and fallbacks (Lynkr's names; values are provider:model) ---
    tier_simple: str | None = None
    tier_medium: str | None = None
    tier_complex: str | None = None
    tier_reasoning: str | None = None
    fallback_enabled: bool = True
    fallback_provider: str | None = None
    fallback_providers: str | None = None  # ordered, comma-separated; wins over FALLBACK_PROVIDER

    # --- resilience (Lynkr's names; times in milliseconds) ---
    api_retry_max_retries: int = Field(2, ge=0, le=10)
    api_retry_initial_delay: int = Field(500, ge=0)
    api_retry_max_delay: int = Field(8_000, ge=0)
    circuit_breaker_failure_threshold: int = Field(5, ge=1)
    circuit_breaker_success_threshold: int = Field(2, ge=1)
    circuit_breaker_timeout: int = Field(30_000, ge=0)
    load_shedding_active_requests_threshold: int = Field(1_000, ge=0)  # 0: no limit
    load_shedding_memory_threshold: float = Field(
        0.9, ge=0, validation_alias=AliasChoices("LOAD_SHEDDING_MEMORY_THRESHOLD", "LOAD_SHEDDING_HEAP_THRESHOLD",
                                                 "load_shedding_memory_threshold"))
    graceful_shutdown_timeout: int = Field(30_000, ge=0)

    # --- timeouts: connect, first byte (REQUEST_TIMEOUT_MS, or a local backend's *_TIMEOUT_MS), and the
    # longest silence allowed between two chunks of a stream ---
    request_timeout_ms: int = Field(600_000, gt=0)
    connect_timeout_ms: int = Field(10_000, gt=0)
    stream_idle_timeout_ms: int = Field(120_000, gt=0)

    # --- access control (lynkr.access) ---
    # Client keys: comma-separated, each "key" or "name=key" (the name becomes the key's id; otherwise the id is
    # a short hash of the key). With none set, model endpoints are open and lynkr binds loopback only.
    lynkr_api_keys: SecretStr | None = None
    lynkr_api_keys_file: Path | None = None  # one key (or name=key) per line; # comments
    lynkr_admin_key: SecretStr | None = None  # /v1/admin/*, /dashboard*, /metrics*, /routing/*, /v1/config
    # bind a non-loopback host with no client keys (`lynkr start --allow-unauthenticated`)
    lynkr_allow_unauthenticated: bool = False
    # default limits for every client key (unset: none); per-key overrides via PUT /v1/admin/keys/{id}/limits
    rate_limit_rpm: int | None = Field(None, ge=1)  # requests per minute (token bucket)
    rate_limit_tpm: int | None = Field(None, ge=1)  # tokens (input + output) per minute (token bucket)
    budget_daily_requests: int | None = Field(None, ge=1)
    budget_daily_tokens: int | None = Field(None, ge=1)
    budget_daily_usd: float | None = Field(None, gt=0)
    budget_monthly_requests: int | None = Field(None, ge=1)
    budget_monthly_tokens: int | None = Field(None, ge=1)
    budget_monthly_usd: float | None = Field(None, gt=0)

    # --- caches (lynkr.cache; Lynkr's names) ---
    prompt_cache_enabled: bool = False  # Lynkr: on; here opt-in (a cached answer is a behaviour change)
    prompt_cache_ttl_ms: int = Field(300_000, gt=0)
    prompt_cache_max_entries: int = Field(1_000, ge=1)
    prompt_cache_tool_turns: bool = False  # also cache answers that call tools, and turns carrying tool results
    prompt_cache_nondeterministic: bool = False  # also cache temperature > 0, top_p < 1, top_k, n > 1
    semantic_cache_enabled: bool = False  # opt-in; needs an embeddings backend (EMBEDDINGS_PROVIDER)
    semantic_cache_threshold: float = Field(0.95, gt=0, le=1)  # cosine similarity of the last user turn
    semantic_cache_ttl_ms: int = Field(300_000, gt=0)
    semantic_cache_max_entries: int = Field(500, ge=1)

    # --- sessions (lynkr.store.sessions) ---
    # requests carrying X-Claude-Code-Session-Id or x-session-id; opt-in: it stores whole conversations,
    # and costs ~0.5 ms CPU per Claude Code turn
    session_transcripts_enabled: bool = False
    session_db_path: Path | None = None  # unset: the main store (LYNKR_DATA_DIR/lynkr.db)
    session_retention_days: float = Field(7.0, gt=0)

    # --- instances ---
    # cache, rate-limit buckets, budget counters and breaker state in Redis, shared by every lynkr using it
    lynkr_redis_url: SecretStr | None = None
    lynkr_workers: int = Field(1, ge=1, le=64)  # `lynkr start --workers N`: processes sharing the port

    # --- observability (lynkr.observability) ---
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per log line
    # routing telemetry: one row per model request in lynkr.db (GET /v1/routing/stats, the dashboard)
    telemetry_enabled: bool = True
    telemetry_retention_days: int = Field(30, ge=0)  # rows older than this are pruned; 0 keeps them all
    model_prices_file: Path | None = None  # JSON price table laid over the packaged one (lynkr/observability)
    health_check_timeout_ms: int = Field(3_000, gt=0)  # per backend, for GET /health/ready?deep=true
    # OpenTelemetry traces over OTLP/HTTP (pip install 'lynkr[otel]'): the collector's base URL, e.g.
    # http://localhost:4318, and its headers as key=value,key2=value2
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_headers: SecretStr | None = None
    otel_service_name: str = "lynkr"

    @field_validator("request_json_limit", mode="before")
    @classmethod
    def _size(cls, v: str | int) -> int:
        return parse_size(v)

    @field_validator("lynkr_data_dir")
    @classmethod
    def _home(cls, v: Path) -> Path:
        return v.expanduser()

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"trace", "debug", "info", "warning", "error", "critical"}:
            raise ValueError("use one of debug, info, warning, error")
        return v

    def fallback_chain(self) -> list[str]:
        """Fallback targets in order: FALLBACK_PROVIDERS, else Lynkr's FALLBACK_PROVIDER (when enabled)."""
        if self.fallback_providers:
            return [p.strip() for p in self.fallback_providers.split(",") if p.strip()]
        if self.fallback_provider and self.fallback_enabled:
            return [self.fallback_provider]
        return []

    def secrets(self) -> list[str]:
        """Every configured secret value (for log redaction and tests)."""
        return [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Load .env (or ``env_file``) + environment; raise ConfigError with a one-line reason.

    Whether the chosen backend has what it needs is checked by ``lynkr.providers.check_settings``.
    """
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"env file not found: {env_file}")
    try:
        settings = Settings(_env_file=env_file or ".env", **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        var = str(first["loc"][0]).upper() if first["loc"] else "?"
        raise ConfigError(f"{var}: {first['msg']} (got {first.get('input')!r})") from None
    return settings
