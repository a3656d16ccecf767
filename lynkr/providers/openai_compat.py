"""One adapter for every OpenAI Chat Completions backend: OpenAI, OpenRouter, Azure OpenAI (chat
deployments), llama.cpp's server and LM Studio. They differ only in the fields of a ``Flavor``."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

import aiohttp

from lynkr.config import Settings
from lynkr.convert.embeddings import normalize_openai_embeddings
from lynkr.convert.moonshot import lift_choice_usage, moonshot_request
from lynkr.convert.openai_chat import (
    ChatTarget,
    anthropic_to_chat,
    chat_stream_to_anthropic,
    chat_to_anthropic,
    upstream_error,
)
from lynkr.errors import UpstreamBadResponse
from lynkr.providers.base import BackendSettings, Event, ModelInfo, Provider
from lynkr.providers.http import get, post, read_json
from lynkr.providers.readers import Worth, sse_json, sse_passthrough


@dataclass(frozen=True, slots=True)
class Flavor:
    auth: Literal["bearer", "api-key"] = "bearer"
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    reasoning: Literal["effort", "openrouter", "none"] = "none"
    system_in_conversation: bool = True
    supports_top_k: bool = False
    max_stop_sequences: int | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    lists_models: bool = True  # GET {base}/models answers the models the backend serves
    embeddings: bool = False  # POST {base}/embeddings (OpenAI shape) works and lynkr may use it
    # the URL is the endpoint joined with the path held by this extra setting (Databricks)
    path_setting: str | None = None
    # backend quirks: reshape the Chat request (body, hub request, model), and adapt the stream chunks
    request_hook: Callable[[dict[str, Any], dict[str, Any], str], dict[str, Any]] | None = None
    chunk_hook: Callable[[AsyncIterable[dict[str, Any]]], AsyncIterator[dict[str, Any]]] | None = None


FLAVORS: dict[str, Flavor] = {
    "openai": Flavor(max_tokens_field="max_completion_tokens", reasoning="effort", max_stop_sequences=4,
                     embeddings=True),
    # Azure's data plane lists base models, not the deployments a request must name: list the deployment
    "azure-openai": Flavor(auth="api-key", max_tokens_field="max_completion_tokens", reasoning="effort",
                           max_stop_sequences=4, lists_models=False),
    "openrouter": Flavor(reasoning="openrouter",
                         extra_headers=(("HTTP-Referer", "https://pypi.org/project/lynkr/"), ("X-Title", "lynkr")),
                         embeddings=True),
    "llamacpp": Flavor(system_in_conversation=False, supports_top_k=True, embeddings=True),
    "lmstudio": Flavor(system_in_conversation=False, supports_top_k=True),
    # DATABRICKS_API_BASE + DATABRICKS_ENDPOINT_PATH; an .../invocations URL names the served model itself
    "databricks": Flavor(path_setting="databricks_endpoint_path", system_in_conversation=False,
                         lists_models=False),
    "moonshot": Flavor(request_hook=moonshot_request, chunk_hook=lift_choice_usage),
    "zai": Flavor(),  # Z.AI's OpenAI-compatible endpoint, when ZAI_ENDPOINT ends in /chat/completions
}


def join_path(base: str, path: str) -> str:
    """``base`` + ``path``, without doubling a segment both spell (``.../serving-endpoints`` +
    ``/serving-endpoints/NAME/invocations``)."""
    path = "/" + path.lstrip("/")
    first = path.split("/", 2)[1]
    if first and base.endswith("/" + first):
        base = base[: -len(first) - 1]
    return base + path


def chat_url(backend: BackendSettings) -> str:
    """The chat-completions URL from a full URL (Lynkr's style) or a base URL."""
    url = backend.endpoint.rstrip("/")
    flavor = FLAVORS.get(backend.name)
    if flavor is not None and flavor.path_setting:
        return join_path(url, str(backend.extra.get(flavor.path_setting) or ""))
    if backend.name == "azure-openai":
        version = urlencode({"api-version": backend.extra.get("azure_openai_api_version")})
        if "/chat/completions" in url:
            return url if "api-version=" in url else f"{url}{'&' if '?' in url else '?'}{version}"
        return f"{url}/openai/deployments/{backend.model}/chat/completions?{version}"
    if url.endswith("/chat/completions"):
        return url
    url = url.removesuffix("/responses")  # a Responses API URL (OPENAI_API=responses): its Chat sibling
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def api_base(backend: BackendSettings) -> str:
    """The OpenAI API root (``.../v1``) the chat URL lives under; ``/models`` and ``/embeddings`` are its siblings."""
    return chat_url(backend).split("?", 1)[0].removesuffix("/chat/completions")


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def models_from_list(data: Any, provider: str) -> list[ModelInfo]:
    """An OpenAI ``{"object":"list","data":[{"id",...}]}`` answer; the context window from the fields
    servers use for it (OpenRouter ``context_length``, vLLM ``max_model_len``, others ``context_window``)."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise UpstreamBadResponse(f"{provider} answered its models list without a data list", provider=provider)
    models = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        window = next((w for k in ("context_length", "max_model_len", "context_window")
                       if (w := _positive_int(item.get(k)))), None)
        owner = item.get("owned_by")
        models.append(ModelInfo(item["id"], context_window=window, created=_positive_int(item.get("created")),
                                owned_by=owner if isinstance(owner, str) else None))
    return models


def _raise_in_band_error(data: Any) -> None:
    if isinstance(data, dict) and data.get("error") and not data.get("choices"):
        raise upstream_error(data["error"], "backend error: ")


# In a passed-through chunk worth decoding: an error, or usage that is not null (the last chunk when the
# client asked for ``include_usage``).
USAGE_OR_ERROR = Worth(b'"error"', b'"usage"')


class OpenAICompatProvider(Provider):
    name: ClassVar[str] = "openai-compatible"

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        super().__init__(backend, http, settings)
        self.flavor = FLAVORS[backend.name]
        self.url = chat_url(backend)
        headers = dict(self.flavor.extra_headers)
        if backend.api_key:
            if self.flavor.auth == "api-key":
                headers["api-key"] = backend.api_key
            else:
                headers["Authorization"] = f"Bearer {backend.api_key}"
        if backend.extra.get("openai_organization"):
            headers["OpenAI-Organization"] = str(backend.extra["openai_organization"])
        self.headers = headers
        self.models_url = api_base(backend) + "/models"
        self._targets: dict[str, ChatTarget] = {}  # by model
        self.embeddings_url = backend.embeddings_endpoint or api_base(backend) + "/embeddings"

    def target(self, model: str) -> ChatTarget:
        """What this backend accepts for ``model``; built once per model (it is asked on every request)."""
        known = self._targets.get(model)
        if known is None:
            if len(self._targets) >= 256:  # clients name the model: keep the memo bounded
                self._targets.clear()
            known = self._targets[model] = self._target(model)
        return known

    def _target(self, model: str) -> ChatTarget:
        f = self.flavor
        return ChatTarget(
            backend=self.backend.name,
            model=model,
            send_model=self.backend.name != "azure-openai" and model != "default"
            and not self.url.split("?", 1)[0].endswith("/invocations"),
            max_tokens_field=f.max_tokens_field,
            max_output_tokens=self.settings.max_output_tokens,
            reasoning=f.reasoning,
            system_in_conversation=f.system_in_conversation,
            supports_top_k=f.supports_top_k,
            max_stop_sequences=f.max_stop_sequences,
        )

    # --- Chat Completions clients pass straight through (only the model is mapped) ---------------

    def _passthrough(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = dict(body)
        if self.target(model).send_model:
            out["model"] = model
        else:
            out.pop("model", None)
        return out

    async def chat_completion(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        async with post(self.http, self.url, self._passthrough(body, model), provider=self.backend.name,
                        headers=self.headers, timeout=self.timeout) as resp:
            data: dict[str, Any] = await read_json(resp, self.backend.name)
        _raise_in_band_error(data)
        if not isinstance(data, dict) or not data.get("choices"):
            raise UpstreamBadResponse(f"{self.backend.name} answered without choices: {str(data)[:200]}",
                                      provider=self.backend.name)
        return data

    def chat_stream(self, body: dict[str, Any], model: str,
                    observe: Callable[[dict[str, Any]], None] | None = None) -> AsyncGenerator[bytes, None]:
        """The backend's SSE bytes, whole events only; an in-band error event (OpenRouter sends them in 200
        answers) raises instead, so it is retried or falls back like an error status, or ends the client's
        stream with lynkr's own error event. ``observe`` sees each event (usage accounting)."""

        def inspect(event: Any) -> None:
            _raise_in_band_error(event)
            if observe is not None and isinstance(event, dict):
                observe(event)

        return sse_passthrough(post(self.http, self.url, self._passthrough(body, model), provider=self.backend.name,
                                    headers=self.headers, timeout=self.stream_timeout), self.backend.name, inspect,
                               worth=USAGE_OR_ERROR)

    # --- Anthropic clients, through the hub ------------------------------------------------------

    def chat_request(self, req: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        body = anthropic_to_chat(req, self.target(model), stream=stream)
        hook = self.flavor.request_hook
        return hook(body, req, model) if hook else body

    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        body = self.chat_request(req, model, stream=False)
        async with post(self.http, self.url, body, provider=self.backend.name, headers=self.headers,
                        timeout=self.timeout) as resp:
            data = await read_json(resp, self.backend.name)
        return chat_to_anthropic(data, model=req["model"])

    def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        body = self.chat_request(req, model, stream=True)
        chunks: AsyncIterator[dict[str, Any]] = sse_json(post(
            self.http, self.url, body, provider=self.backend.name, headers=self.headers,
            timeout=self.stream_timeout), self.backend.name)
        if self.flavor.chunk_hook:
            chunks = self.flavor.chunk_hook(chunks)
        return chat_stream_to_anthropic(chunks, model=req["model"])

    async def list_models(self) -> list[ModelInfo]:
        if not self.flavor.lists_models:
            return await super().list_models()
        async with get(self.http, self.models_url, provider=self.backend.name, headers=self.headers,
                       timeout=self.timeout) as resp:
            data = await read_json(resp, self.backend.name)
        return models_from_list(data, self.backend.name)

    @property
    def embeddings_model(self) -> str | None:
        if not self.flavor.embeddings:
            return None
        return self.backend.embeddings_model or self.backend.model

    async def create_embeddings(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        """Same dialect: the client's request passes through with only the model mapped."""
        body = {**req, "model": model}
        if model == "default":  # llama-server embeds with the model it loaded; it needs no name
            del body["model"]
        async with post(self.http, self.embeddings_url, body, provider=self.backend.name, headers=self.headers,
                        timeout=self.timeout) as resp:
            data = await read_json(resp, self.backend.name)
        return normalize_openai_embeddings(data, model=model, encoding=req.get("encoding_format") or "float",
                                           provider=self.backend.name)
