"""Routing through the real app: ``POST /routing/analyze`` (the decision, no backend called), the X-Lynkr-*
headers and log line every answer carries, backends skipped for what they cannot take, and which backends
routing makes lynkr build."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from loguru import logger

from lynkr.config import Settings
from lynkr.providers import backend_settings, build_provider, configured_backends
from lynkr.providers.openai_compat import OpenAICompatProvider
from lynkr.server import create_app
from tests.conftest import SECRET, claude_request, make_settings
from tests.fakes import ollama_server, openai_server
from tests.fakes.script import Answer, Script

ServerFactory = Callable[..., Awaitable[TestServer]]
ClientFactory = Callable[..., Awaitable[TestClient]]
BOUND = 10.0

TIERS = dict(tier_simple="ollama:qwen-small", tier_medium="ollama:qwen3:8b", tier_complex="openai:gpt-4o",
             tier_reasoning="openai:o3", fallback_providers="openai:gpt-4o-mini")
BASH = {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {}}}
ARCHITECTURE = ("Design the architecture for sharding this database; analyze the trade-offs step by step "
                "and plan the migration across the entire codebase")
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


class Fakes:
    def __init__(self, openai: Script, openai_url: str, ollama: Script, ollama_url: str) -> None:
        self.openai, self.openai_url, self.ollama, self.ollama_url = openai, openai_url, ollama, ollama_url

    def settings(self, **extra: Any) -> Settings:
        values: dict[str, Any] = dict(model_provider="openai", openai_api_key=SECRET, openai_model="gpt-4o",
                                      openai_endpoint=self.openai_url + "/v1/chat/completions",
                                      ollama_endpoint=self.ollama_url, ollama_model="qwen2.5-coder:7b")
        values.update(extra)
        return make_settings(**values)

    def upstream_calls(self) -> int:
        return len(self.openai.requests) + len(self.ollama.requests)


@pytest.fixture
async def fakes(aiohttp_server: ServerFactory) -> Fakes:
    a, b = Script(), Script()
    a_url = str((await aiohttp_server(openai_server.make_app(a))).make_url("")).rstrip("/")
    b_url = str((await aiohttp_server(ollama_server.make_app(b))).make_url("")).rstrip("/")
    a.respond_with(lambda body: Answer(text="from openai"))
    b.respond_with(lambda body: Answer(text="from ollama"))
    return Fakes(a, a_url, b, b_url)


async def analyze(client: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    async with asyncio.timeout(BOUND):
        resp = await client.post("/routing/analyze", json=body, headers=headers or {})
        assert resp.status == 200, await resp.text()
        return await resp.json()


# --- POST /routing/analyze -----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "headers", "tier", "provider", "model", "reason"), [
    (claude_request(), {}, "simple", "ollama", "qwen-small", "score "),
    (claude_request(tools=[BASH], thinking={"type": "adaptive"},
                    messages=[{"role": "user", "content": ARCHITECTURE}]), {}, "complex", "openai", "gpt-4o", "score "),
    (claude_request(max_tokens=1), {}, "simple", "ollama", "qwen-small", "side request: token count"),
    (claude_request(), {"X-Lynkr-Tier": "reasoning"}, "reasoning", "openai", "o3", "header X-Lynkr-Tier: reasoning"),
    (claude_request(), {"X-Lynkr-Provider": "ollama:llama3"}, None, "ollama", "llama3", "header X-Lynkr-Provider"),
], ids=["simple", "complex", "count-tokens", "tier-header", "provider-header"])
async def test_analyze_returns_the_decision_without_calling_any_backend(
        fakes: Fakes, aiohttp_client: ClientFactory, body: dict[str, Any], headers: dict[str, str],
        tier: str | None, provider: str, model: str, reason: str) -> None:
    client = await aiohttp_client(create_app(fakes.settings(**TIERS)))
    decision = await analyze(client, body, headers)
    assert (decision["tier"], decision["provider"], decision["model"]) == (tier, provider, model)
    assert decision["reason"].startswith(reason)
    if reason == "score ":
        assert isinstance(decision["score"], int) and decision["reason"].startswith(f"score {decision['score']} (")
        assert sum(decision["signals"].values()) == decision["score"]
    assert decision["chain"][0] == {"provider": provider, "model": model, "reason": decision["reason"]}
    assert decision["chain"][-1] == {"provider": "openai", "model": "gpt-4o-mini", "reason": "fallback 1"}
    assert decision["skipped"] == []
    assert fakes.upstream_calls() == 0


async def test_analyze_lists_skipped_backends_and_maps_the_fallbacks_model(fakes: Fakes,
                                                                           aiohttp_client: ClientFactory) -> None:
    # a fallback naming a backend lynkr could not build (no key) is skipped, not taken for a model name
    client = await aiohttp_client(create_app(fakes.settings(fallback_providers="openrouter,ollama")))
    decision = await analyze(client, claude_request(model="gpt-4.1"))
    assert decision["chain"] == [
        {"provider": "openai", "model": "gpt-4.1", "reason": "model passed through"},
        # the client's model was chosen for OpenAI: the fallback serves its own
        {"provider": "ollama", "model": "qwen2.5-coder:7b", "reason": "fallback 2"},
    ]
    assert decision["skipped"] == ["openrouter: not configured"]
    assert fakes.upstream_calls() == 0


# --- the decision on every answer --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_every_answer_carries_its_routing_decision(fakes: Fakes, aiohttp_client: ClientFactory,
                                                         stream: bool) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="INFO", format="{message}")
    try:
        client = await aiohttp_client(create_app(fakes.settings(**TIERS)))
        async with asyncio.timeout(BOUND):
            simple = await client.post("/v1/messages", json=claude_request(stream=stream))
            assert simple.status == 200
            await simple.read()
            forced = await client.post("/v1/chat/completions", headers={"X-Lynkr-Tier": "complex"}, json={
                "model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
            assert forced.status == 200
            await forced.read()
    finally:
        logger.remove(sink)
    assert simple.headers["X-Lynkr-Tier"] == "simple"
    assert simple.headers["X-Lynkr-Provider"] == "ollama"
    assert simple.headers["X-Lynkr-Model"] == "qwen-small"
    reason = simple.headers["X-Lynkr-Routing-Reason"]
    assert reason.startswith("score ") and reason.endswith("-> simple")
    assert fakes.ollama.requests[0]["model"] == "qwen-small"
    assert (forced.headers["X-Lynkr-Tier"], forced.headers["X-Lynkr-Provider"], forced.headers["X-Lynkr-Model"]) == (
        "complex", "openai", "gpt-4o")
    assert forced.headers["X-Lynkr-Routing-Reason"] == "header X-Lynkr-Tier: complex"
    # the log line says the same
    assert any(f"-> ollama:qwen-small tier=simple ({reason})" in line for line in lines), lines
    assert any("-> openai:gpt-4o tier=complex (header X-Lynkr-Tier: complex)" in line for line in lines), lines


# --- skipping a backend that cannot take the request -------------------------------------------------------


class NoTools(OpenAICompatProvider):
    supports_tools: ClassVar[bool] = False


class NoImages(OpenAICompatProvider):
    supports_images: ClassVar[bool] = False


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.parametrize(("cls", "extra", "why"), [
    (NoTools, {"tools": [BASH]}, "no tool support"),
    (NoImages, {"messages": [{"role": "user", "content": [IMAGE, {"type": "text", "text": "what is this?"}]}]},
     "no image support"),
], ids=["tools", "images"])
async def test_a_backend_that_cannot_take_the_request_is_skipped_with_the_reason(
        fakes: Fakes, aiohttp_client: ClientFactory, http: aiohttp.ClientSession,
        cls: type[OpenAICompatProvider], extra: dict[str, Any], why: str) -> None:
    settings = fakes.settings(fallback_providers="ollama")
    providers = {"openai": cls(backend_settings("openai", settings), http, settings),
                 "ollama": build_provider("ollama", http, settings)}
    client = await aiohttp_client(create_app(settings, providers=providers))
    body = claude_request(**extra)

    decision = await analyze(client, body)
    assert decision["skipped"] == [f"openai:gpt-4o: {why}"]
    assert [c["provider"] for c in decision["chain"]] == ["ollama"]
    assert decision["reason"] == f"fallback 1 after openai:gpt-4o: {why}"

    async with asyncio.timeout(BOUND):
        resp = await client.post("/v1/messages", json=body)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["content"][0]["text"] == "from ollama"
        assert resp.headers["X-Lynkr-Provider"] == "ollama"
        assert resp.headers["X-Lynkr-Routing-Reason"] == f"fallback 1 after openai:gpt-4o: {why}"
        assert fakes.openai.requests == [] and len(fakes.ollama.requests) == 1
        plain = await client.post("/v1/messages", json=claude_request())  # what it can take, it still gets
        assert plain.headers["X-Lynkr-Provider"] == "openai"
        breakers = {b["name"]: b for b in await (await client.get("/metrics/circuit-breakers")).json()}
    assert breakers["ollama"]["requests"]["fallbacks"] == 1
    assert breakers["openai"]["requests"]["attempts"] == 1


async def test_a_context_window_too_small_skips_the_backend(fakes: Fakes, aiohttp_client: ClientFactory) -> None:
    settings = fakes.settings(model_provider="ollama", ollama_num_ctx=64, fallback_providers="openai")
    client = await aiohttp_client(create_app(settings))
    long = claude_request(messages=[{"role": "user", "content": "Summarise this: " + "lorem ipsum " * 100}])

    decision = await analyze(client, long)
    [skip] = decision["skipped"]
    assert skip.startswith("ollama:qwen2.5-coder:7b: ~") and skip.endswith("tokens exceed its 64-token context")
    assert [c["provider"] for c in decision["chain"]] == ["openai"]

    async with asyncio.timeout(BOUND):
        resp = await client.post("/v1/messages", json=long)
        assert resp.status == 200
        assert resp.headers["X-Lynkr-Provider"] == "openai"
        assert resp.headers["X-Lynkr-Routing-Reason"] == f"fallback 1 after {skip}"
        short = await client.post("/v1/messages", json=claude_request())  # fits: the primary takes it
        assert short.headers["X-Lynkr-Provider"] == "ollama"
    assert len(fakes.openai.requests) == 1 and len(fakes.ollama.requests) == 1


async def test_no_backend_able_to_take_the_request_is_a_400_naming_why(fakes: Fakes,
                                                                      aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(fakes.settings(model_provider="ollama", ollama_num_ctx=64)))
    async with asyncio.timeout(BOUND):
        resp = await client.post("/v1/messages", json=claude_request(
            messages=[{"role": "user", "content": "x " * 500}]))
        assert resp.status == 400
        err = (await resp.json())["error"]
    assert err["type"] == "invalid_request_error"
    assert "no configured backend can take this request: ollama:qwen2.5-coder:7b: ~" in err["message"]
    assert fakes.upstream_calls() == 0


# --- which backends routing makes lynkr build --------------------------------------------------------------


def test_backends_named_by_tiers_and_fallbacks_are_built() -> None:
    settings = make_settings(model_provider="openai", openai_api_key="k", tier_simple="llamacpp:qwen",
                             tier_medium="qwen3:8b", fallback_providers="ollama, openrouter")
    # keyless local servers named by routing are built; openrouter has no key, and qwen3:8b is a model
    assert configured_backends(settings) == ["openai", "llamacpp", "ollama"]
    keyed = make_settings(model_provider="ollama", fallback_provider="openrouter", openrouter_api_key="k")
    assert configured_backends(keyed) == ["ollama", "openrouter"]
