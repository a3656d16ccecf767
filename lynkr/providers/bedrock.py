"""Amazon Bedrock's Converse and ConverseStream APIs, with a Bedrock API key or SigV4 signing.

Auth: ``AWS_BEDROCK_API_KEY`` is sent as ``Authorization: Bearer``; without it every request is signed
with SigV4 over its exact body bytes, using botocore's standard credential chain (environment, shared
config and SSO profiles, container and instance roles), resolved on the first request, not at import.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.session import get_session
from yarl import URL

from lynkr.config import Settings
from lynkr.convert.bedrock import (
    BedrockTarget,
    anthropic_to_converse,
    converse_stream_to_anthropic,
    converse_to_anthropic,
)
from lynkr.convert.eventstream import BedrockEvent, EventStreamDecoder
from lynkr.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamPermissionError,
)
from lynkr.providers.base import BackendSettings, Event, Provider
from lynkr.providers.http import dump_json, post, read_json

SIGNING_NAME = "bedrock"  # the service name SigV4 scopes bedrock-runtime requests to
NAME = "bedrock"


class BedrockProvider(Provider):
    name: ClassVar[str] = "bedrock"
    thinking_vendor: ClassVar[str | None] = "anthropic"  # Claude's signatures hold across Anthropic's platforms

    def __init__(self, backend: BackendSettings, http: aiohttp.ClientSession, settings: Settings) -> None:
        super().__init__(backend, http, settings)
        self.region = str(backend.extra.get("bedrock_region") or "us-east-1")
        self.base_url = backend.endpoint.rstrip("/")
        self._credentials: Any = None  # botocore Credentials, found on first use
        self._credentials_lock = asyncio.Lock()

    def target(self, model: str) -> BedrockTarget:
        return BedrockTarget(model=model, max_output_tokens=self.settings.max_output_tokens)

    def url(self, model: str, operation: str) -> str:
        """The request URL exactly as it goes on the wire (what SigV4 must sign): the model ID is one
        path segment however many ``:`` and ``/`` an ARN holds."""
        return str(URL(f"{self.base_url}/model/{quote(model, safe='')}/{operation}"))

    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        body = anthropic_to_converse(req, self.target(model))
        async with self._post(self.url(model, "converse"), body, model) as resp:
            data = await read_json(resp, NAME)
        if not isinstance(data, dict):
            raise UpstreamBadResponse("Bedrock answered with a JSON value that is not an object", provider=NAME)
        return converse_to_anthropic(data, model=req["model"])

    async def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        body = anthropic_to_converse(req, self.target(model))
        async with self._post(self.url(model, "converse-stream"), body, model, stream=True) as resp, \
                aclosing(_frames(resp)) as frames:
            async for ev in converse_stream_to_anthropic(frames, model=req["model"]):
                yield ev

    @asynccontextmanager
    async def _post(self, url: str, body: dict[str, Any], model: str, *, stream: bool = False
                    ) -> AsyncIterator[aiohttp.ClientResponse]:
        # post() sends dump_json(body): the same bytes are signed here
        headers = await self._auth_headers(url, dump_json(body))
        try:
            async with post(self.http, url, body, provider=NAME, headers=headers,
                            timeout=self.stream_timeout if stream else self.timeout) as resp:
                yield resp
        except UpstreamError as err:
            if hint := self._hint(err, model):
                err.message = f"{err.message} ({hint})"
                err.args = (err.message,)
            raise

    async def _auth_headers(self, url: str, body: bytes) -> dict[str, str]:
        if self.backend.api_key:
            return {"Authorization": f"Bearer {self.backend.api_key}"}
        credentials = await self._frozen_credentials()
        request = AWSRequest(method="POST", url=url, data=body)
        SigV4Auth(credentials, SIGNING_NAME, self.region).add_auth(request)
        return {k: v for k, v in request.headers.items() if isinstance(v, str)}

    async def _frozen_credentials(self) -> Any:
        """The chain's current credentials (refreshable ones renew themselves; botocore may block on
        files or the instance metadata service, so it runs in a thread)."""
        try:
            if self._credentials is None:
                async with self._credentials_lock:  # one lookup, however many requests arrive at once
                    if self._credentials is None:
                        self._credentials = await asyncio.to_thread(lambda: get_session().get_credentials())
            if self._credentials is None:
                raise UpstreamAuthError(
                    "bedrock: no AWS credentials found. Set AWS_BEDROCK_API_KEY (a Bedrock API key), or "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance "
                    "or container role", provider=NAME)
            return await asyncio.to_thread(self._credentials.get_frozen_credentials)
        except BotoCoreError as exc:
            raise UpstreamAuthError(f"bedrock: cannot load AWS credentials: {exc}", provider=NAME) from None

    def _hint(self, err: UpstreamError, model: str) -> str:
        message = err.message.lower()
        if isinstance(err, (UpstreamAuthError, UpstreamPermissionError)) and err.upstream_status:
            if self.backend.api_key:
                return "check AWS_BEDROCK_API_KEY"
            return (f"check that the AWS credentials may call bedrock:InvokeModel and "
                    f"bedrock:InvokeModelWithResponseStream, and that model access is granted in {self.region}")
        if isinstance(err, (UpstreamNotFound, UpstreamBadRequest)) and (
                "on-demand throughput" in message or "inference profile" in message
                or isinstance(err, UpstreamNotFound)):
            return (f"model {model!r} in {self.region}: newer models need an inference profile ID in "
                    "AWS_BEDROCK_MODEL_ID, e.g. us.anthropic.claude-sonnet-4-5-20250929-v1:0")
        return ""


async def _frames(resp: aiohttp.ClientResponse) -> AsyncGenerator[BedrockEvent, None]:
    """The decoded events of a ConverseStream answer, as its bytes arrive."""
    decoder = EventStreamDecoder()
    read = resp.content.readany  # b"" at the end
    while chunk := await read():
        for event in decoder.feed(chunk):
            yield event
    decoder.close()
