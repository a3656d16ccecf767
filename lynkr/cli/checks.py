"""Checks shared by ``lynkr setup`` and ``lynkr doctor``: is a backend reachable, does it take the key,
does it have the model. Every failing check carries the fix, in words a user can act on."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lynkr.cli.envfile import primary_name
from lynkr.cli.net import Reply, fetch
from lynkr.cli.ollama import MIN_CONTEXT, RECOMMENDED_CONTEXT, OllamaAdmin, find_binary, full_name, manual_install_hint
from lynkr.config import Settings
from lynkr.errors import ConfigError
from lynkr.providers import REGISTRY
from lynkr.providers.base import BackendSettings
from lynkr.providers.openai_compat import FLAVORS, chat_url

Status = Literal["ok", "warn", "fail", "info"]


@dataclass(frozen=True)
class Check:
    area: str
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


KEY_PAGES = {"openai": "https://platform.openai.com/api-keys", "openrouter": "https://openrouter.ai/settings/keys",
             "azure-openai": "the Azure portal (your resource > Keys and Endpoint)",
             "anthropic": "https://console.anthropic.com/settings/keys", "moonshot": "https://platform.moonshot.ai",
             "gemini": "https://aistudio.google.com/apikey", "vertex": "https://aistudio.google.com/apikey"}
# Backends whose model list answers at {base}/models in OpenAI's shape: the cheap call that proves URL and key.
OPENAI_MODEL_LISTS = ("openai", "openrouter", "azure-openai", "llamacpp", "lmstudio", "moonshot")


def env_var(attr: str | None) -> str:
    """The variable a Settings attribute is read from (for messages)."""
    if not attr:
        return "?"
    return primary_name(attr) if attr in Settings.model_fields else attr.upper()


def variables(name: str) -> tuple[str, str, str]:
    """(endpoint, model, key) variable names of a backend."""
    spec = REGISTRY[name].spec
    return env_var(spec.endpoint), env_var(spec.model), env_var(spec.api_key)


def models_url(backend: BackendSettings) -> str:
    """The cheap, read-only call that proves the endpoint and the key: the model list."""
    url = chat_url(backend)
    if backend.name == "azure-openai":
        resource = url.split("/openai/", 1)[0]
        version = backend.extra.get("azure_openai_api_version") or "2024-10-21"
        return f"{resource}/openai/models?api-version={version}"
    return url.removesuffix("/chat/completions") + "/models"


def auth_headers(backend: BackendSettings) -> dict[str, str]:
    if not backend.api_key:
        return {}
    flavor = FLAVORS.get(backend.name)
    if flavor is not None and flavor.auth == "api-key":
        return {"api-key": backend.api_key}
    return {"Authorization": f"Bearer {backend.api_key}"}


def _model_ids(reply: Reply) -> list[str]:
    data = reply.data.get("data") if isinstance(reply.data, dict) else None
    return [str(m.get("id")) for m in data or [] if isinstance(m, dict) and m.get("id")]


def _closest(model: str, ids: list[str]) -> str:
    near = difflib.get_close_matches(model, ids, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(near)}?)" if near else ""


async def check_openai_compatible(backend: BackendSettings, timeout: float = 5.0) -> list[Check]:
    name = backend.name
    area = f"backend {name}"
    endpoint_var, model_var, key_var = variables(name)
    url = models_url(backend)
    reply = await fetch("GET", url, headers=auth_headers(backend), timeout=timeout)
    if not reply.reached:
        return [Check(area, "reachable", "fail", f"{url}: {reply.error}",
                      f"check {endpoint_var} and that the server is running")]
    checks = [Check(area, "reachable", "ok", url)]
    if reply.status in (401, 403):
        where = KEY_PAGES.get(name, "the server's configuration")
        fix = f"set {key_var} to a valid key (get one at {where})" if backend.api_key or name in KEY_PAGES else (
            f"the server wants a key: set {key_var}")
        return [*checks, Check(area, "key", "fail", f"{name} refused the key: {reply.message()}", fix)]
    if not reply.ok:
        return [*checks, Check(area, "key", "fail", f"{url} answered {reply.message()}",
                               f"check {endpoint_var} (it should be the server's OpenAI-compatible URL)")]
    if name == "openrouter":  # its model list is public: only /key proves the key
        key_reply = await fetch("GET", url.removesuffix("/models") + "/key", headers=auth_headers(backend),
                                timeout=timeout)
        if key_reply.status in (401, 403):
            return [*checks, Check(area, "key", "fail", f"openrouter refused the key: {key_reply.message()}",
                                   f"set {key_var} to a valid key (get one at {KEY_PAGES[name]})")]
    checks.append(Check(area, "key", "ok", "accepted" if backend.api_key else "none needed"))
    ids = _model_ids(reply)
    if name == "azure-openai":
        checks.append(Check(area, "model", "info", f"deployment {backend.model} (Azure lists deployments only in "
                                                   "its management API; the first request will tell)"))
    elif backend.model == "default":
        loaded = f": {', '.join(ids[:3])}" if ids else ""
        checks.append(Check(area, "model", "ok", f"the server's loaded model{loaded}"))
    elif backend.model in ids or not ids:
        checks.append(Check(area, "model", "ok", backend.model))
    else:
        checks.append(Check(area, "model", "fail", f"{model_var}={backend.model} is not offered here"
                                                   f"{_closest(backend.model, ids)}",
                            f"set {model_var} to one of the {len(ids)} models GET {url} lists"))
    return checks


async def check_ollama(backend: BackendSettings, num_ctx: int | None, timeout: float = 5.0,
                       binary: str = "ollama") -> list[Check]:
    area = "backend ollama"
    admin = OllamaAdmin(backend.endpoint, backend.api_key, timeout)
    tags = await admin.tags()
    if not tags.reached:
        installed = find_binary(binary) is not None
        fix = ("start it: ollama serve (or run lynkr setup)" if installed
               else f"install Ollama ({manual_install_hint()}) or run lynkr setup")
        return [Check(area, "reachable", "fail", f"{admin.url('/api/tags')}: {tags.error}",
                      f"{fix}; or point OLLAMA_ENDPOINT at your Ollama")]
    checks = [Check(area, "reachable", "ok", backend.endpoint)]
    if tags.status in (401, 403):
        return [*checks, Check(area, "key", "fail", f"ollama refused the request: {tags.message()}",
                               "set OLLAMA_API_KEY to the key of the Ollama behind auth")]
    if not tags.ok:
        return [*checks, Check(area, "models", "fail", tags.message(),
                               "check OLLAMA_ENDPOINT points at Ollama (default http://localhost:11434)")]
    names = admin.model_names(tags)
    model = backend.model
    if full_name(model) not in {full_name(n) for n in names}:
        have = f" (installed: {', '.join(names[:5])})" if names else " (no models installed)"
        return [*checks, Check(area, "model", "fail", f"OLLAMA_MODEL={model} is not installed{have}",
                               f"ollama pull {model}  (or set OLLAMA_MODEL to an installed model)")]
    checks.append(Check(area, "model", "ok", f"{model} installed"))
    checks.append(context_check(area, model, num_ctx, await admin.show(model)))
    return checks


def context_check(area: str, model: str, num_ctx: int | None, show: Reply) -> Check:
    trained = OllamaAdmin.context_length(show)
    modelfile = OllamaAdmin.modelfile_num_ctx(show)
    limit = f"; {model} supports {trained:,}" if trained else ""
    suggested = min(RECOMMENDED_CONTEXT, trained) if trained else RECOMMENDED_CONTEXT
    if num_ctx is None:
        if modelfile and modelfile >= MIN_CONTEXT:
            return Check(area, "context", "ok", f"{modelfile:,} tokens (num_ctx in the model's Modelfile)")
        return Check(area, "context", "fail",
                     f"OLLAMA_NUM_CTX is not set: Ollama's default window (2k-4k tokens) silently cuts Claude "
                     f"Code's ~{MIN_CONTEXT // 1000}k-token prompt{limit}",
                     f"set OLLAMA_NUM_CTX={suggested} in .env")
    if trained and trained < MIN_CONTEXT:
        return Check(area, "context", "fail",
                     f"{model} was trained for {trained:,} tokens, Claude Code needs ~{MIN_CONTEXT:,}",
                     "pick a model with a longer context (qwen2.5-coder, qwen3)")
    if num_ctx < MIN_CONTEXT:
        return Check(area, "context", "fail", f"OLLAMA_NUM_CTX={num_ctx} is below the ~{MIN_CONTEXT:,} tokens "
                                              f"Claude Code's prompt needs{limit}", f"set OLLAMA_NUM_CTX={suggested}")
    if trained and num_ctx > trained:
        return Check(area, "context", "warn",
                     f"OLLAMA_NUM_CTX={num_ctx} is above what {model} was trained for ({trained:,}); answers "
                     "degrade past it", f"set OLLAMA_NUM_CTX={trained}")
    return Check(area, "context", "ok", f"OLLAMA_NUM_CTX={num_ctx:,}{limit}")


async def check_anthropic(backend: BackendSettings, timeout: float = 5.0) -> list[Check]:
    """Anthropic's API: GET /v1/models with the key proves both."""
    area = "backend anthropic"
    _, model_var, key_var = variables(backend.name)
    base = backend.endpoint.split("/v1/", 1)[0].rstrip("/")
    url = f"{base}/v1/models"
    reply = await fetch("GET", url, headers={"x-api-key": backend.api_key or "", "anthropic-version": "2023-06-01"},
                        timeout=timeout)
    if not reply.reached:
        return [Check(area, "reachable", "fail", f"{url}: {reply.error}", "check ANTHROPIC_UPSTREAM_ENDPOINT")]
    if reply.status in (401, 403):
        return [Check(area, "reachable", "ok", url),
                Check(area, "key", "fail", f"anthropic refused the key: {reply.message()}",
                      f"set {key_var} to a valid key (get one at {KEY_PAGES['anthropic']})")]
    if not reply.ok:
        return [Check(area, "reachable", "fail", f"{url} answered {reply.message()}",
                      "check ANTHROPIC_UPSTREAM_ENDPOINT")]
    ids = _model_ids(reply)
    model = backend.model
    checks = [Check(area, "reachable", "ok", url), Check(area, "key", "ok", "accepted")]
    if model and ids and model not in ids:
        checks.append(Check(area, "model", "fail", f"{model_var}={model} is not offered here{_closest(model, ids)}",
                            f"set {model_var} to one of the models GET {url} lists"))
    else:
        checks.append(Check(area, "model", "ok", model or "the client's claude-* names pass through"))
    return checks


async def check_gemini(backend: BackendSettings, timeout: float = 5.0) -> list[Check]:
    """Google AI Studio: GET {endpoint}/models with the key."""
    area = f"backend {backend.name}"
    endpoint_var, model_var, key_var = variables(backend.name)
    url = backend.endpoint.rstrip("/") + "/models"
    reply = await fetch("GET", url, headers={"x-goog-api-key": backend.api_key or ""}, timeout=timeout)
    if not reply.reached:
        return [Check(area, "reachable", "fail", f"{url}: {reply.error}", f"check {endpoint_var}")]
    if reply.status in (400, 401, 403):
        return [Check(area, "reachable", "ok", url),
                Check(area, "key", "fail", f"Google refused the key: {reply.message()}",
                      f"set {key_var} to a valid key (get one at {KEY_PAGES['gemini']})")]
    if not reply.ok:
        return [Check(area, "reachable", "fail", f"{url} answered {reply.message()}", f"check {endpoint_var}")]
    models = reply.data.get("models", []) if isinstance(reply.data, dict) else []
    ids = [str(m.get("name", "")).removeprefix("models/") for m in models if isinstance(m, dict)]
    checks = [Check(area, "reachable", "ok", url), Check(area, "key", "ok", "accepted")]
    if ids and backend.model not in ids:
        checks.append(Check(area, "model", "fail", f"{model_var}={backend.model} is not offered here"
                                                   f"{_closest(backend.model, ids)}", f"set {model_var}"))
    else:
        checks.append(Check(area, "model", "ok", backend.model))
    return checks


async def check_backend(name: str, settings: Settings, timeout: float = 5.0) -> list[Check]:
    """Everything doctor can learn about one configured backend with cheap, read-only calls."""
    area = f"backend {name}"
    spec = REGISTRY[name].spec
    try:
        spec.check(name, settings)
    except ConfigError as exc:
        return [Check(area, "settings", "fail", str(exc), "set it in .env, or run lynkr setup")]
    backend = spec.resolve(name, settings)
    if name == "ollama":
        return await check_ollama(backend, settings.ollama_num_ctx, timeout)
    if name in OPENAI_MODEL_LISTS and name in FLAVORS:
        return await check_openai_compatible(backend, timeout)
    if name == "anthropic":
        return await check_anthropic(backend, timeout)
    if name in ("gemini", "vertex"):
        return await check_gemini(backend, timeout)
    return [Check(area, "reachable", "info", f"{backend.endpoint}: lynkr has no cheap read-only check for {name}; "
                                             "the first request will tell")]
