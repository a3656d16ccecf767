"""GET /v1/models through the real app: what each configured backend really offers, Claude names, caching,
backends that are down, both list shapes, and the official openai and anthropic SDKs over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import anthropic
import openai
import pytest

from lynkr.config import Settings
from lynkr.errors import ConfigError
from lynkr.providers import build_provider, check_settings, configured_backends
from lynkr.providers.base import ModelInfo
from lynkr.providers.ollama import OllamaProvider
from lynkr.server import create_app
from lynkr.server.keys import DISPATCHER
from lynkr.server.routes import openai_models
from lynkr.server.routes.openai_models import CATALOG, CLAUDE_MODELS
from tests.conftest import SECRET, make_settings, ollama_settings, openai_settings
from tests.fakes import ollama_server, openai_server
from tests.fakes.openai_server import EXTRAS
from tests.fakes.script import Failure, Script

OLLAMA_TAGS = [
    {"name": "qwen2.5-coder:7b", "model": "qwen2.5-coder:7b", "size": 1, "modified_at": "2026-10-01T12:00:00Z"},
    {"name": "nomic-embed-text:latest", "model": "nomic-embed-text:latest", "size": 1,
     "modified_at": "2026-09-01T08:30:00.123456789+02:00"},
    {"name": "mystery:1b", "model": "mystery:1b", "size": 1},  # /api/show answers 404 for it
]


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in body["data"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_ollama_models_with_context_windows_and_claude_names(ollama_upstream, aiohttp_client):
    ollama_upstream.server.app[ollama_server.TAGS][:] = OLLAMA_TAGS
    client = await aiohttp_client(create_app(ollama_settings(ollama_upstream)))
    resp = await client.get("/v1/models")
    assert resp.status == 200
    body = await resp.json()
    assert body["object"] == "list"
    models = by_id(body)
    coder = models["qwen2.5-coder:7b"]
    assert coder == {"id": "qwen2.5-coder:7b", "object": "model", "created": 1790856000, "owned_by": "ollama",
                     "provider": "ollama", "context_window": 32768}
    assert models["nomic-embed-text:latest"]["context_window"] == 2048
    assert models["nomic-embed-text:latest"]["created"] == 1788244200
    assert "context_window" not in models["mystery:1b"] and models["mystery:1b"]["created"] == 0
    # every Claude name lynkr maps, with the model it becomes and that model's window
    for alias in CLAUDE_MODELS:
        assert models[alias]["maps_to"] == "qwen2.5-coder:7b"
        assert models[alias]["context_window"] == 32768
        assert models[alias]["owned_by"] == "lynkr"
    assert [m["id"] for m in body["data"][: len(CLAUDE_MODELS)]] == list(CLAUDE_MODELS)
    assert body["backends"] == [{"name": "ollama", "status": "ok", "models": 3}]
    shown = sorted(b["model"] for path, b in ollama_upstream.server.app[EXTRAS].requests if path == "/api/show")
    assert shown == ["mystery:1b", "nomic-embed-text:latest", "qwen2.5-coder:7b"]


async def test_ollama_num_ctx_caps_the_window_and_small_fast_model_maps_haiku(ollama_upstream, aiohttp_client):
    ollama_upstream.server.app[ollama_server.TAGS][:] = OLLAMA_TAGS
    settings = ollama_settings(ollama_upstream, ollama_num_ctx=16384, small_fast_model="nomic-embed-text")
    client = await aiohttp_client(create_app(settings))
    models = by_id(await (await client.get("/v1/models")).json())
    assert models["qwen2.5-coder:7b"]["context_window"] == 16384  # what lynkr asks Ollama for
    assert models["nomic-embed-text:latest"]["context_window"] == 2048  # trained length is below num_ctx
    assert models["claude-haiku-4-5"]["maps_to"] == "nomic-embed-text"  # matched against ...:latest
    assert models["claude-haiku-4-5"]["context_window"] == 2048
    assert models["claude-sonnet-4-5"]["maps_to"] == "qwen2.5-coder:7b"


async def test_openai_compatible_listings_from_every_configured_backend(openai_upstream, aiohttp_server,
                                                                         aiohttp_client):
    router = await aiohttp_server(openai_server.make_app(Script()))
    router.app[EXTRAS].models = [
        {"id": "openai/gpt-4o", "object": "model", "created": 1715367049, "context_length": 128000},
        {"id": "gpt-4o", "object": "model", "created": 1, "context_length": 1},  # also offered by openai
    ]
    openai_upstream.server.app[EXTRAS].models.append(
        {"id": "local-model", "object": "model", "max_model_len": 65536, "owned_by": "vllm"})
    settings = openai_settings(openai_upstream, openrouter_api_key="sk-or-test",
                               openrouter_endpoint=str(router.make_url("/api/v1/chat/completions")))
    client = await aiohttp_client(create_app(settings))
    body = await (await client.get("/v1/models")).json()
    models = by_id(body)
    assert models["gpt-4o"] == {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system",
                                "provider": "openai"}  # the chat backend keeps a name two backends offer
    assert models["local-model"]["context_window"] == 65536 and models["local-model"]["owned_by"] == "vllm"
    assert models["openai/gpt-4o"] == {"id": "openai/gpt-4o", "object": "model", "created": 1715367049,
                                       "owned_by": "openrouter", "provider": "openrouter", "context_window": 128000}
    assert models["claude-opus-4-8"]["maps_to"] == "gpt-4o" and models["claude-opus-4-8"]["provider"] == "openai"
    assert [b["name"] for b in body["backends"]] == ["openai", "openrouter"]
    # the models URL is the chat URL's sibling, asked with each backend's own key
    assert openai_upstream.server.app[EXTRAS].requests == [("/v1/models", None)]
    assert router.app[EXTRAS].requests == [("/api/v1/models", None)]


async def test_a_backend_that_is_down_is_reported_and_never_fails_the_list(ollama_upstream, aiohttp_client):
    dead = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    settings = ollama_settings(ollama_upstream, openai_api_key=SECRET, openai_endpoint=dead)
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/v1/models")
    assert resp.status == 200
    body = await resp.json()
    ollama, down = body["backends"]
    assert ollama == {"name": "ollama", "status": "ok", "models": 1}
    assert down["name"] == "openai" and down["status"] == "unavailable" and down["models"] == 0
    assert "cannot reach openai" in down["error"] and dead.removesuffix("/chat/completions") in down["error"]
    assert {m["provider"] for m in body["data"]} == {"ollama"}


async def test_listing_failure_from_upstream_status(openai_upstream, aiohttp_client):
    openai_upstream.server.app[EXTRAS].fail["/v1/models"] = Failure(401, {"error": {"message": "bad key"}})
    client = await aiohttp_client(create_app(openai_settings(openai_upstream)))
    body = await (await client.get("/v1/models")).json()
    (backend,) = body["backends"]
    assert backend["status"] == "unavailable"
    assert "openai rejected lynkr's API key" in backend["error"] and "bad key" in backend["error"]
    # the Claude names are lynkr's own and stay listed, without a window nobody could learn
    assert [m["id"] for m in body["data"]] == list(CLAUDE_MODELS)
    assert "context_window" not in body["data"][0]


async def test_listings_are_cached_and_refreshed(ollama_upstream, aiohttp_client):
    client = await aiohttp_client(create_app(ollama_settings(ollama_upstream)))
    now = [1000.0]
    client.app[CATALOG].clock = lambda: now[0]
    requests = ollama_upstream.server.app[EXTRAS].requests

    def tags_calls() -> int:
        return sum(1 for path, _ in requests if path == "/api/tags")

    await asyncio.gather(client.get("/v1/models"), client.get("/v1/models"), client.get("/v1/models"))
    assert tags_calls() == 1  # concurrent requests share one fetch
    now[0] += 59
    await client.get("/v1/models")
    assert tags_calls() == 1
    now[0] += 2
    await client.get("/v1/models")
    assert tags_calls() == 2
    # a failure is remembered briefly, then asked again
    ollama_upstream.server.app[EXTRAS].fail["/api/tags"] = Failure(500, {"error": "boom"})
    now[0] += 61
    body = await (await client.get("/v1/models")).json()
    assert body["backends"][0]["status"] == "unavailable" and tags_calls() == 3
    del ollama_upstream.server.app[EXTRAS].fail["/api/tags"]
    now[0] += 5
    body = await (await client.get("/v1/models")).json()
    assert body["backends"][0]["status"] == "unavailable" and tags_calls() == 3
    now[0] += 6
    body = await (await client.get("/v1/models")).json()
    assert body["backends"][0]["status"] == "ok" and tags_calls() == 4


class _Silent(OllamaProvider):
    """A backend that accepts the connection and never answers its models list."""

    async def list_models(self) -> list[ModelInfo]:
        await asyncio.Event().wait()
        return []


async def test_a_backend_that_hangs_is_timed_out(ollama_upstream, aiohttp_client, monkeypatch):
    monkeypatch.setattr(openai_models, "LIST_TIMEOUT", 0.05)
    settings = ollama_settings(ollama_upstream)
    client = await aiohttp_client(create_app(settings))
    dispatcher = client.app[DISPATCHER]
    dispatcher.primary = dispatcher.providers["ollama"] = _Silent(dispatcher.primary.backend,
                                                                  dispatcher.primary.http, settings)
    body = await (await client.get("/v1/models")).json()
    assert body["backends"] == [{"name": "ollama", "status": "unavailable", "models": 0,
                                 "error": "ollama did not list its models within 0.05s"}]


async def test_backend_without_a_listing_api_lists_its_configured_model(openai_upstream, aiohttp_client):
    settings = make_settings(model_provider="azure-openai", azure_openai_endpoint=openai_upstream.url,
                             azure_openai_api_key=SECRET, azure_openai_deployment="my-gpt4o")
    client = await aiohttp_client(create_app(settings))
    body = await (await client.get("/v1/models")).json()
    assert by_id(body)["my-gpt4o"] == {"id": "my-gpt4o", "object": "model", "created": 0,
                                       "owned_by": "azure-openai", "provider": "azure-openai"}
    assert openai_upstream.server.app[EXTRAS].requests == []


async def test_backend_without_a_listing_api_or_a_model_lists_nothing(openai_upstream, aiohttp_client):
    # e.g. an Anthropic-native backend with no model configured: the client's claude-* names pass through
    settings = make_settings(model_provider="azure-openai", azure_openai_endpoint=openai_upstream.url,
                             azure_openai_api_key=SECRET, azure_openai_deployment="")
    client = await aiohttp_client(create_app(settings))
    body = await (await client.get("/v1/models")).json()
    assert [m["id"] for m in body["data"]] == list(CLAUDE_MODELS)
    assert body["backends"] == [{"name": "azure-openai", "status": "ok", "models": 0}]


async def test_anthropic_shape_when_anthropic_version_is_sent(ollama_upstream, aiohttp_client):
    ollama_upstream.server.app[ollama_server.TAGS][:] = OLLAMA_TAGS
    client = await aiohttp_client(create_app(ollama_settings(ollama_upstream)))
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "dummy"}
    body = await (await client.get("/v1/models?limit=3", headers=headers)).json()
    assert body["has_more"] is True
    assert [m["id"] for m in body["data"]] == list(CLAUDE_MODELS[:3])
    assert body["first_id"] == CLAUDE_MODELS[0] and body["last_id"] == CLAUDE_MODELS[2]
    first = body["data"][0]
    assert first == {"type": "model", "id": "claude-opus-4-8", "created_at": "1970-01-01T00:00:00Z",
                     "display_name": "claude-opus-4-8 (qwen2.5-coder:7b on ollama)", "context_window": 32768}
    rest = await (await client.get(f"/v1/models?limit=20&after_id={body['last_id']}", headers=headers)).json()
    assert rest["has_more"] is False
    assert [m["id"] for m in rest["data"]] == [*CLAUDE_MODELS[3:], "qwen2.5-coder:7b", "nomic-embed-text:latest",
                                               "mystery:1b"]
    assert rest["data"][-3]["created_at"] == "2026-10-01T12:00:00Z"
    back = await (await client.get("/v1/models?limit=2&before_id=qwen2.5-coder:7b", headers=headers)).json()
    assert [m["id"] for m in back["data"]] == list(CLAUDE_MODELS[3:5]) and back["has_more"] is True
    bad = await client.get("/v1/models?limit=0", headers=headers)
    assert bad.status == 400
    err = await bad.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert err["error"]["message"].startswith("limit:")


async def test_get_one_model(lynkr_ollama):
    client, _ = lynkr_ollama
    resp = await client.get("/v1/models/claude-sonnet-4-5")
    assert (await resp.json())["maps_to"] == "qwen2.5-coder:7b"
    resp = await client.get("/v1/models/qwen2.5-coder:7b", headers={"anthropic-version": "2023-06-01"})
    assert (await resp.json())["type"] == "model"
    missing = await client.get("/v1/models/nope")
    assert missing.status == 404
    assert (await missing.json())["error"]["type"] == "not_found_error"
    missing = await client.get("/v1/models/nope", headers={"anthropic-version": "2023-06-01"})
    assert missing.status == 404 and (await missing.json())["type"] == "error"


async def test_openai_sdk_lists_and_retrieves(ollama_upstream, aiohttp_server):
    ollama_upstream.server.app[ollama_server.TAGS][:] = OLLAMA_TAGS
    server = await aiohttp_server(create_app(ollama_settings(ollama_upstream)))
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="dummy", max_retries=0) as client:
        page = await client.models.list()
        ids = [m.id async for m in page]
        assert ids == [*CLAUDE_MODELS, "qwen2.5-coder:7b", "nomic-embed-text:latest", "mystery:1b"]
        model = await client.models.retrieve("qwen2.5-coder:7b")
        assert model.owned_by == "ollama" and model.created == 1790856000
        assert model.model_extra == {"provider": "ollama", "context_window": 32768}
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("gpt-nope")


async def test_anthropic_sdk_pages_through_the_list(ollama_upstream, aiohttp_server):
    ollama_upstream.server.app[ollama_server.TAGS][:] = OLLAMA_TAGS
    server = await aiohttp_server(create_app(ollama_settings(ollama_upstream)))
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")).rstrip("/"), api_key="dummy",
                                      max_retries=0)
    try:
        seen = [m async for m in client.models.list(limit=2)]  # auto-pagination over after_id
        assert [m.id for m in seen] == [*CLAUDE_MODELS, "qwen2.5-coder:7b", "nomic-embed-text:latest",
                                        "mystery:1b"]
        assert all(m.type == "model" for m in seen)
        one = await client.models.retrieve("claude-haiku-4-5")
        assert one.display_name == "claude-haiku-4-5 (qwen2.5-coder:7b on ollama)"
    finally:
        await client.close()


# --- which backends are built -------------------------------------------------------------------


def test_configured_backends_need_keys_or_a_name():
    assert configured_backends(make_settings()) == ["ollama"]
    assert configured_backends(make_settings(model_provider="openai", openai_api_key="k")) == ["openai"]
    settings = make_settings(model_provider="lmstudio", openrouter_api_key="k", openai_api_key="k",
                             embeddings_provider="llamacpp")
    assert configured_backends(settings) == ["lmstudio", "llamacpp", "openai", "openrouter"]
    azure = make_settings(model_provider="ollama", azure_openai_api_key="k")  # endpoint missing: not configured
    assert configured_backends(azure) == ["ollama"]
    # two registry names for one backend build it once
    assert configured_backends(make_settings(vertex_api_key="k")) == ["ollama", "vertex"]
    assert configured_backends(make_settings(model_provider="gemini", vertex_api_key="k")) == ["gemini"]


def test_embeddings_provider_settings_are_checked():
    with pytest.raises(ConfigError, match="EMBEDDINGS_PROVIDER=openai needs OPENAI_API_KEY"):
        check_settings(make_settings(embeddings_provider="openai"))
    check_settings(make_settings(embeddings_provider="llamacpp"))  # keyless: nothing to require


def test_models_url_is_derived_from_the_chat_url():
    def url(endpoint: str) -> str:
        settings: Settings = make_settings(model_provider="openai", openai_api_key="k", openai_endpoint=endpoint)
        return build_provider("openai", None, settings).models_url  # type: ignore[arg-type,attr-defined]

    assert url("https://api.openai.com/v1/chat/completions") == "https://api.openai.com/v1/models"
    assert url("https://openrouter.ai/api/v1/chat/completions") == "https://openrouter.ai/api/v1/models"
    assert url("http://localhost:8000/v1") == "http://localhost:8000/v1/models"
    assert url("http://localhost:8000") == "http://localhost:8000/v1/models"
