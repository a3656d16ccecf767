"""Shared fixtures: settings without any .env, fake upstreams, and lynkr wired to them."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lynkr.config import Settings
from lynkr.server import create_app
from lynkr.sse import SSEDecoder
from tests.fakes import ollama_server, openai_server
from tests.fakes.script import Script

SECRET = "sk-test-backend-secret-1234567890"


def make_settings(**values: Any) -> Settings:
    """Settings from these values only: no .env file, no environment surprises.

    Retries are off unless asked for, so a test that scripts one upstream failure sees that failure;
    the resilience tests turn them on."""
    values.setdefault("api_retry_max_retries", 0)
    values.setdefault("lynkr_data_dir", Path(tempfile.mkdtemp(prefix="lynkr-test-")))
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Upstream:
    script: Script
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def openai_upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Upstream:
    script = Script()
    return Upstream(script, await aiohttp_server(openai_server.make_app(script)))


@pytest.fixture
async def ollama_upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Upstream:
    script = Script()
    return Upstream(script, await aiohttp_server(ollama_server.make_app(script)))


def openai_settings(upstream: Upstream, **extra: Any) -> Settings:
    return make_settings(model_provider="openai", openai_api_key=SECRET,
                         openai_endpoint=upstream.url + "/v1/chat/completions", openai_model="gpt-4o", **extra)


def ollama_settings(upstream: Upstream, **extra: Any) -> Settings:
    return make_settings(model_provider="ollama", ollama_endpoint=upstream.url, ollama_model="qwen2.5-coder:7b",
                         **extra)


@pytest.fixture
async def lynkr_openai(
    openai_upstream: Upstream, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> tuple[TestClient, Script]:
    client = await aiohttp_client(create_app(openai_settings(openai_upstream)))
    return client, openai_upstream.script


@pytest.fixture
async def lynkr_ollama(
    ollama_upstream: Upstream, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> tuple[TestClient, Script]:
    client = await aiohttp_client(create_app(ollama_settings(ollama_upstream)))
    return client, ollama_upstream.script


async def read_events(resp: Any) -> list[tuple[str | None, dict[str, Any]]]:
    """A whole SSE answer as (event name, JSON data) pairs."""
    decoder = SSEDecoder()
    return [(e.event, orjson.loads(e.data)) for e in decoder.feed(await resp.read()) + decoder.close()]


def claude_request(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Say hi"}],
    }
    body.update(over)
    return body
