"""Logs: no configured secret ever appears, across success and error paths, in text and JSON; every line
logged while serving a request carries its request id; JSON lines stay valid JSON after masking."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import pytest
from loguru import logger

from lynkr.cli.logs import setup_logging
from lynkr.observability.redaction import MASK, Redactor
from lynkr.providers.base import BackendSettings, Event, Provider
from lynkr.server import create_app
from tests.conftest import SECRET, claude_request, make_settings
from tests.fakes.script import Answer, Failure, Raw

OLLAMA_KEY = "plain-ollama-secret-without-a-known-shape"  # only the configured-secret rule can catch this one
OPENROUTER_KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"
CLIENT_KEY = "sk-ant-api03-client-key-abcdefghijklmnop"  # what Claude Code sends as x-api-key
CLIENT_BEARER = "eyJhbGciOiJIUzI1NiJ9.client-bearer-token.signature"


@pytest.fixture
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """The CLI's real logging setup (setup_logging), writing to a buffer instead of stderr."""
    buf = io.StringIO()
    setup_logging("debug", request.param, secrets=[], stream=buf)
    yield buf
    logger.remove()
    logger.add(sys.stderr)


class Boom(Provider):
    """A backend whose adapter crashes with the key in the exception: the traceback must be masked."""

    name = "boom"

    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        raise RuntimeError(f"adapter bug while sending with key {SECRET} and {OLLAMA_KEY}")

    async def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        raise RuntimeError(f"adapter bug while streaming with key {SECRET}")
        yield {}  # pragma: no cover


def settings_with_secrets(url: str) -> Any:
    return make_settings(model_provider="openai", openai_api_key=SECRET, openai_model="gpt-4o",
                         openai_endpoint=url + "/v1/chat/completions", openrouter_api_key=OPENROUTER_KEY,
                         ollama_api_key=OLLAMA_KEY)


CLIENT_HEADERS = {"x-api-key": CLIENT_KEY, "Authorization": f"Bearer {CLIENT_BEARER}",
                  "anthropic-version": "2023-06-01"}


@pytest.mark.parametrize("captured", ["text", "json"], indirect=True)
async def test_no_secret_in_logs_across_success_and_error_paths(captured, openai_upstream, aiohttp_client, request):
    json_format = request.node.callspec.params["captured"] == "json"
    settings = settings_with_secrets(openai_upstream.url)
    secrets = [*settings.secrets(), CLIENT_KEY, CLIENT_BEARER]
    assert {SECRET, OPENROUTER_KEY, OLLAMA_KEY} <= set(settings.secrets())
    client = await aiohttp_client(create_app(settings))
    script = openai_upstream.script
    script.enqueue(
        Answer(text="fine"),
        Answer(text="streamed fine"),
        # the backend rejects the key and echoes it back, as OpenAI does
        Failure(401, {"error": {"message": f"Incorrect API key provided: {SECRET}. Find your key at ..."}}),
        # a stream that breaks after its first chunk
        Raw(b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,'
            b'"delta":{"role":"assistant","content":"par"},"finish_reason":null}]}\n\n', drop_after=True),
    )
    ids = []
    for body in (claude_request(), claude_request(stream=True), claude_request(), claude_request(stream=True)):
        resp = await client.post("/v1/messages", json=body, headers=CLIENT_HEADERS)
        await resp.read()
        ids.append(resp.headers["X-Request-ID"])
    bad = await client.post("/v1/messages", data=b'{"model": "x", "api_key": "' + SECRET.encode(),
                            headers={**CLIENT_HEADERS, "Content-Type": "application/json"})
    assert bad.status == 400
    ids.append(bad.headers["X-Request-ID"])
    chat = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": "not a list"},
                             headers=CLIENT_HEADERS)
    assert chat.status == 400

    # an adapter that crashes with secrets in its exception message (logged with its traceback)
    boom_backend = BackendSettings("openai", openai_upstream.url, SECRET, "gpt-4o", 1000)
    boom_app = create_app(settings, providers={"openai": Boom(boom_backend, None, settings)})  # type: ignore[arg-type]
    boom = await aiohttp_client(boom_app)
    crashed = await boom.post("/v1/messages", json=claude_request(), headers=CLIENT_HEADERS)
    assert crashed.status == 500
    crashed_stream = await boom.post("/v1/messages", json=claude_request(stream=True), headers=CLIENT_HEADERS)
    assert crashed_stream.status == 500
    ids.append(crashed.headers["X-Request-ID"])

    # what a careless log call anywhere in lynkr could write
    logger.info("upstream said: Incorrect API key provided: {}", SECRET)
    logger.warning("request headers {}", {"x-api-key": CLIENT_KEY, "authorization": f"Bearer {CLIENT_BEARER}"})
    logger.bind(key=OLLAMA_KEY).error("calling https://generativelanguage.googleapis.com/v1beta/models?key={}",
                                      "AIzaSyA-1234567890abcdefghijklmnopqrstu")

    text = captured.getvalue()
    assert "adapter bug while sending" in text  # the crash was logged, with its traceback...
    assert MASK in text  # ...and something was masked
    for secret in secrets:
        assert secret not in text, f"secret {secret[:8]}... leaked into the logs"
    assert "AIzaSyA-1234567890" not in text
    for rid in ids:
        assert rid in text  # each request's line is there, with its id

    lines = [line for line in text.splitlines() if line.strip()]
    if json_format:
        records = [json.loads(line) for line in lines]  # masking kept every line valid JSON
        access = [r for r in records if r["record"]["message"].startswith("POST /v1/messages")]
        assert len(access) >= len(ids)
        for r in access:
            assert r["record"]["extra"]["request_id"] in r["record"]["message"]
        crash = next(r for r in records if "unhandled error" in r["record"]["message"])
        assert crash["record"]["extra"]["request_id"] == crashed.headers["X-Request-ID"]
        assert crash["record"]["exception"] is not None


@pytest.mark.parametrize("captured", ["text"], indirect=True)
async def test_lines_inside_a_request_carry_its_id(captured, lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Answer(text="hi"))
    resp = await client.post("/v1/messages", json=claude_request(), headers={"X-Request-ID": "trace-me-42"})
    assert resp.headers["X-Request-ID"] == "trace-me-42"
    access = [line for line in captured.getvalue().splitlines() if "POST /v1/messages 200" in line]
    assert len(access) == 1 and "trace-me-42" in access[0]


def test_redactor_rules():
    r = Redactor(["configured-secret-value", "short"])
    cases = {
        "key configured-secret-value here": "key [REDACTED] here",
        "Authorization: Bearer abc.def-ghi_123": "Authorization: Bearer [REDACTED]",
        "authorization=Basic dXNlcjpwYXNz": "authorization=Basic [REDACTED]",
        "{'x-api-key': 'zzz-123'}": "{'x-api-key': '[REDACTED]'}",
        '{"api-key": "zzz-123"}': '{"api-key": "[REDACTED]"}',
        '{\\"x-api-key\\": \\"zzz-123\\"}': '{\\"x-api-key\\": \\"[REDACTED]\\"}',
        "x-goog-api-key: AIzaSyA-1234567890abcdefghijklmnopqrstu": "x-goog-api-key: [REDACTED]",
        "GET /v1/models?key=abc123&alt=sse": "GET /v1/models?key=[REDACTED]&alt=sse",
        "bad key sk-proj-abcdefghijklmnop1234": "bad key [REDACTED]",
        "aws AKIAIOSFODNN7EXAMPLE id": "aws [REDACTED] id",
        "a short word stays": "a short word stays",  # secrets under 6 characters are not masked
        "ordinary text: nothing to hide": "ordinary text: nothing to hide",
    }
    for raw, masked in cases.items():
        assert r.redact(raw) == masked, raw
    # a JSON document stays JSON
    doc = json.dumps({"message": "Incorrect API key provided: sk-abcdefghijklmnopqrst", "headers":
                      {"authorization": "Bearer tok_123456", "x-api-key": "configured-secret-value"}})
    assert "tok_123456" not in r.redact(doc) and json.loads(r.redact(doc))["headers"]["x-api-key"] == MASK


def test_longer_secret_masked_whole():
    r = Redactor(["abcdef-123456", "abcdef-123456-and-more"])
    assert r.redact("k=abcdef-123456-and-more!") == "k=[REDACTED]!"
