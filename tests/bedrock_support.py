"""Helpers for the Bedrock tests: the fake Bedrock Runtime as a server, settings pointing lynkr at it,
and an AWS environment with nothing from the machine in it (no profile files, no metadata service)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from lynkr.config import Settings
from tests.conftest import make_settings
from tests.fakes.bedrock_server import FakeAuth, FakeBedrock, make_app

API_KEY = "bedrock-api-key-ABSKfake0123456789"
MODEL_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

# every variable botocore's credential chain reads
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_EC2_METADATA_DISABLED", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_BEDROCK_API_KEY", "AWS_BEARER_TOKEN_BEDROCK", "AWS_BEDROCK_REGION", "AWS_BEDROCK_MODEL_ID",
    "AWS_BEDROCK_ENDPOINT",
)

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class BedrockUpstream:
    fake: FakeBedrock
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


async def start_fake(aiohttp_server: ServerFactory, auth: FakeAuth | None = None) -> BedrockUpstream:
    fake = FakeBedrock(auth=auth or FakeAuth(api_key=API_KEY))
    return BedrockUpstream(fake, await aiohttp_server(make_app(fake)))


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **values: str) -> None:
    """An AWS environment holding only ``values``: no shared config or credentials files, no instance
    metadata lookups (so a missing credential fails at once, without touching the network)."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def bedrock_settings(upstream: BedrockUpstream, *, api_key: str | None = API_KEY, **extra: Any) -> Settings:
    values: dict[str, Any] = {"model_provider": "bedrock", "aws_bedrock_endpoint": upstream.url,
                              "aws_bedrock_model_id": MODEL_ID, "aws_bedrock_region": "us-east-1", **extra}
    if api_key is not None:
        values["aws_bedrock_api_key"] = api_key
    return make_settings(**values)
