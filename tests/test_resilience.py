"""Fault injection: fake upstreams that fail in every way a backend does, in both client dialects.

Primary: MODEL_PROVIDER=openai on fake A (OpenAI Chat Completions); fallback: FALLBACK_PROVIDERS=ollama on fake
B (Ollama's /api/chat); retries on with tiny delays; short timeouts. For each fault the client gets either a
complete, correct answer (by a retry or the fallback: which one is asserted, with the number of upstream calls)
or one well-formed error in its own dialect; a failure after the first byte is never retried (one error event,
no duplicate content); the breakers and the dispatcher's counters (GET /metrics/circuit-breakers) record it.
Every client call is bounded, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from lynkr.errors import UpstreamBadResponse
from lynkr.providers.readers import Worth, sse_passthrough
from lynkr.server import create_app
from lynkr.server.keys import DISPATCHER, SHEDDER
from lynkr.sse import SSEDecoder
from tests.conftest import SECRET, claude_request, make_settings
from tests.e2e_support import refused_port, until
from tests.fakes import ollama_server, openai_server
from tests.fakes.script import Answer, Failure, Raw, Reply, Script

ServerFactory = Callable[..., Awaitable[TestServer]]
ClientFactory = Callable[..., Awaitable[TestClient]]

RETRIES = 1  # API_RETRY_MAX_RETRIES: every backend gets 1 + RETRIES calls
HANG_MS = 500  # REQUEST_TIMEOUT_MS / OLLAMA_TIMEOUT_MS: how long a silent backend is waited for
IDLE_MS = 400  # STREAM_IDLE_TIMEOUT_MS
BOUND = 10.0  # seconds any one client call may take before the test calls it a hang
PRIMARY_TEXT = "Answer from the primary."
FALLBACK_TEXT = "Answer from the fallback."


# --- the gateway under test ------------------------------------------------------------------------


@dataclass
class Gateway:
    client: TestClient
    a: Script  # primary (openai)
    b: Script  # fallback (ollama)

    @property
    def dispatcher(self) -> Any:
        return self.client.app[DISPATCHER]  # type: ignore[index]

    async def breakers(self) -> dict[str, dict[str, Any]]:
        async with asyncio.timeout(BOUND):
            resp = await self.client.get("/metrics/circuit-breakers")
            assert resp.status == 200
            return {b["name"]: b for b in await resp.json()}


def gateway_settings(a_url: str, b_url: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        model_provider="openai", openai_api_key=SECRET, openai_model="gpt-4o",
        openai_endpoint=a_url + "/v1/chat/completions", ollama_endpoint=b_url, ollama_model="qwen2.5-coder:7b",
        fallback_providers="ollama",
        api_retry_max_retries=RETRIES, api_retry_initial_delay=1, api_retry_max_delay=50,
        request_timeout_ms=HANG_MS, ollama_timeout_ms=HANG_MS, stream_idle_timeout_ms=IDLE_MS,
        circuit_breaker_failure_threshold=100,
    )
    values.update(extra)
    return values


@pytest.fixture
async def make_gateway(aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
                       ) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    # a loopback port bound for the whole test but never listening: a backend that is down
    with refused_port() as port:
        down = f"http://127.0.0.1:{port}"

        async def make(*, primary_down: bool = False, fallback_down: bool = False, **extra: Any) -> Gateway:
            a, b = Script(), Script()
            a_url = str((await aiohttp_server(openai_server.make_app(a))).make_url("")).rstrip("/")
            b_url = str((await aiohttp_server(ollama_server.make_app(b))).make_url("")).rstrip("/")
            values = gateway_settings(down if primary_down else a_url, down if fallback_down else b_url, **extra)
            return Gateway(await aiohttp_client(create_app(make_settings(**values))), a, b)

        yield make


@pytest.fixture
async def gateway(make_gateway: Callable[..., Awaitable[Gateway]]) -> Gateway:
    return await make_gateway()


# --- the two client dialects -------------------------------------------------------------------------


def sse_events(raw: bytes) -> list[tuple[str | None, Any]]:
    decoder = SSEDecoder()
    events = decoder.feed(raw) + decoder.close()
    return [(e.event, e.data if e.data == "[DONE]" else json.loads(e.data)) for e in events]


@dataclass(frozen=True)
class Dialect:
    name: str
    path: str
    stream: bool

    def body(self, **over: Any) -> dict[str, Any]:
        if self.path == "/v1/messages":
            return claude_request(stream=self.stream, **over)
        return {"model": "gpt-4o", "stream": self.stream, "messages": [{"role": "user", "content": "Say hi"}], **over}

    @property
    def anthropic(self) -> bool:
        return self.path == "/v1/messages"

    async def answer(self, resp: ClientResponse) -> str:
        """The text of a complete, well-formed answer (asserting it is one)."""
        assert resp.status == 200, await resp.text()
        if not self.stream:
            assert resp.headers["Content-Type"].startswith("application/json")
            body = await resp.json()
            if self.anthropic:
                assert body["type"] == "message" and body["stop_reason"] == "end_turn"
                return "".join(b["text"] for b in body["content"] if b["type"] == "text")
            assert body["object"] == "chat.completion"
            assert body["choices"][0]["finish_reason"] == "stop"
            return str(body["choices"][0]["message"]["content"])
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(await resp.read())
        if self.anthropic:
            assert_anthropic_stream(events)
            assert events[-1][1]["type"] == "message_stop"
            return "".join(d["delta"]["text"] for _, d in events
                           if d["type"] == "content_block_delta" and d["delta"]["type"] == "text_delta")
        assert events[-1][1] == "[DONE]"
        chunks = [d for _, d in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks), chunks
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])

    async def error(self, resp: ClientResponse, status: int) -> dict[str, Any]:
        """The one error of a request that failed before its first byte, in this dialect's shape."""
        assert resp.status == status, await resp.text()
        assert resp.headers["Content-Type"].startswith("application/json")
        body = await resp.json()
        if self.anthropic:
            assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
            return dict(body["error"])
        assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])
        return dict(body["error"])


ANTHROPIC_STREAM = Dialect("anthropic-stream", "/v1/messages", True)
ANTHROPIC_JSON = Dialect("anthropic-json", "/v1/messages", False)
OPENAI_STREAM = Dialect("openai-stream", "/v1/chat/completions", True)
OPENAI_JSON = Dialect("openai-json", "/v1/chat/completions", False)
DIALECTS = [ANTHROPIC_STREAM, ANTHROPIC_JSON, OPENAI_STREAM, OPENAI_JSON]
STREAMS = [ANTHROPIC_STREAM, OPENAI_STREAM]


def assert_anthropic_stream(events: list[tuple[str | None, Any]]) -> None:
    """Every frame named as its type, blocks opened and closed in order, message_start first."""
    for name, data in events:
        assert name == data["type"]
    types = [d["type"] for _, d in events if d["type"] != "ping"]
    assert types[0] == "message_start"
    open_index = None
    for _, d in events:
        if d["type"] == "content_block_start":
            assert open_index is None
            open_index = d["index"]
        elif d["type"] in ("content_block_delta", "content_block_stop"):
            assert d["index"] == open_index
            if d["type"] == "content_block_stop":
                open_index = None


async def post(gw: Gateway, dialect: Dialect, **over: Any) -> tuple[ClientResponse, bytes]:
    async with asyncio.timeout(BOUND):
        resp = await gw.client.post(dialect.path, json=dialect.body(**over))
        return resp, await resp.read()


# --- the faults ----------------------------------------------------------------------------------------

FIRST_CHUNK = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
               b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Partial"},"finish_reason":null}]}\n\n')


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error"}}


def error_event(stream: bool, backend: str) -> Raw:
    """An error in a 200 answer (OpenRouter does this), in the backend's own format."""
    if backend == "openai":
        body = b'{"error": {"message": "upstream exploded", "code": 500}}'
        return Raw(b"data: " + body + b"\n\n") if stream else Raw(body, "application/json")
    body = b'{"error": "upstream exploded"}'  # Ollama's
    return Raw(body + b"\n", "application/x-ndjson") if stream else Raw(body, "application/json")


@dataclass(frozen=True)
class Fault:
    """A way for a backend to fail before the client has a byte of the answer."""

    name: str
    reply: Callable[[bool, str], Reply] | None  # (stream?, backend) -> the reply; None: down (port closed)
    status: int  # what the client gets when no backend is left
    kind: str  # the error's type then (Anthropic's name)
    retried: bool = True  # worth another call to the same backend
    counted: bool = True  # a failure for the backend's circuit breaker
    retry_after: str | None = None  # the retry-after the client is told, when the backend gave one
    openai_kind: str = "server_error"  # the error's type for OpenAI clients


PRE_FIRST_BYTE = [
    Fault("429", lambda s, b: Failure(429, error_body("rate limited")), 429, "rate_limit_error", counted=False,
          openai_kind="rate_limit_exceeded"),
    Fault("429-retry-after-0", lambda s, b: Failure(429, error_body("rate limited"), {"retry-after": "0"}),
          429, "rate_limit_error", counted=False, retry_after="0", openai_kind="rate_limit_exceeded"),
    # longer than API_RETRY_MAX_DELAY: not waited for here, the next backend is tried at once
    Fault("429-retry-after-30", lambda s, b: Failure(429, error_body("rate limited"), {"retry-after": "30"}),
          429, "rate_limit_error", retried=False, counted=False, retry_after="30", openai_kind="rate_limit_exceeded"),
    Fault("500", lambda s, b: Failure(500, error_body("internal")), 500, "api_error"),
    Fault("503", lambda s, b: Failure(503, error_body("unavailable")), 529, "overloaded_error"),
    Fault("529", lambda s, b: Failure(529, error_body("overloaded")), 529, "overloaded_error"),
    Fault("hang-before-headers", lambda s, b: Raw(b"", hang_before=30), 504, "timeout_error", openai_kind="timeout"),
    Fault("reset-before-headers", lambda s, b: Raw(b"", drop_before=True), 502, "api_error"),
    # headers sent, then the connection drops before any data (for JSON: in the middle of the body)
    Fault("reset-before-first-chunk",
          lambda s, b: Raw(b"", drop_after=True) if s else Raw(b'{"id": "chatcm', "application/json", drop_after=True),
          502, "api_error"),
    Fault("malformed", lambda s, b: Raw(b"data: {this is not json\n\n") if s else
          Raw(b"{this is not json", "application/json"), 502, "api_error"),
    Fault("error-event", lambda s, b: error_event(s, b), 500, "api_error"),
    Fault("down", None, 502, "api_error"),
]
RECOVERABLE = [f for f in PRE_FIRST_BYTE if f.retried and f.reply is not None]


def fail_primary(gw: Gateway, fault: Fault, dialect: Dialect, times: int) -> None:
    if fault.reply is not None:
        gw.a.enqueue(*(fault.reply(dialect.stream, "openai") for _ in range(times)))


def calls_per_backend(fault: Fault) -> int:
    return 1 + RETRIES if fault.retried else 1


def seen(fault: Fault, calls: int) -> int:
    """How many of ``calls`` reach the fake (a closed port sees none)."""
    return calls if fault.reply is not None else 0


def param_grid(faults: list[Fault], dialects: list[Dialect]) -> Any:
    return pytest.mark.parametrize(("fault", "dialect"), [(f, d) for f in faults for d in dialects],
                                   ids=[f"{f.name}-{d.name}" for f in faults for d in dialects])


# --- before the first byte: a retry recovers -----------------------------------------------------


@param_grid(RECOVERABLE, DIALECTS)
async def test_a_retry_recovers_from_a_fault_before_the_first_byte(gateway: Gateway, fault: Fault,
                                                                   dialect: Dialect) -> None:
    fail_primary(gateway, fault, dialect, 1)
    gateway.a.enqueue(Answer(text=PRIMARY_TEXT))
    resp, _ = await post(gateway, dialect)
    assert await dialect.answer(resp) == PRIMARY_TEXT
    assert resp.headers["X-Lynkr-Provider"] == "openai"
    assert "fallback" not in resp.headers["X-Lynkr-Routing-Reason"]
    assert len(gateway.a.requests) == 2 and gateway.b.requests == []
    openai = (await gateway.breakers())["openai"]
    assert openai["requests"] == {"attempts": 2, "failures": 1, "retries": 1, "fallbacks": 0, "streamFailures": 0}
    assert openai["state"] == "closed"
    assert openai["stats"]["failure"] == (1 if fault.counted else 0)
    assert openai["stats"]["success"] == 1


# --- before the first byte: the fallback serves ----------------------------------------------------


@param_grid(PRE_FIRST_BYTE, DIALECTS)
async def test_the_fallback_answers_when_the_primary_keeps_failing(make_gateway: Callable[..., Awaitable[Gateway]],
                                                                  fault: Fault, dialect: Dialect) -> None:
    gw = await make_gateway(primary_down=fault.reply is None)
    calls = calls_per_backend(fault)
    fail_primary(gw, fault, dialect, calls)
    gw.b.enqueue(Answer(text=FALLBACK_TEXT))
    resp, _ = await post(gw, dialect)
    assert await dialect.answer(resp) == FALLBACK_TEXT
    assert resp.headers["X-Lynkr-Provider"] == "ollama"
    assert resp.headers["X-Lynkr-Model"] == "qwen2.5-coder:7b"
    assert resp.headers["X-Lynkr-Routing-Reason"].startswith("fallback 1 after openai: ")
    assert len(gw.a.requests) == seen(fault, calls)
    assert len(gw.b.requests) == 1
    breakers = await gw.breakers()
    assert breakers["openai"]["requests"] == {"attempts": calls, "failures": calls, "retries": calls - 1,
                                              "fallbacks": 0, "streamFailures": 0}
    assert breakers["openai"]["stats"]["failure"] == (calls if fault.counted else 0)
    assert breakers["ollama"]["requests"] == {"attempts": 1, "failures": 0, "retries": 0, "fallbacks": 1,
                                              "streamFailures": 0}
    assert breakers["ollama"]["stats"]["success"] == 1


# --- before the first byte: nothing works ------------------------------------------------------------


@param_grid(PRE_FIRST_BYTE, DIALECTS)
async def test_one_error_in_the_clients_dialect_when_every_backend_fails(
        make_gateway: Callable[..., Awaitable[Gateway]], fault: Fault, dialect: Dialect) -> None:
    down = fault.reply is None
    gw = await make_gateway(primary_down=down, fallback_down=down)
    calls = calls_per_backend(fault)
    fail_primary(gw, fault, dialect, calls)
    if fault.reply is not None:
        gw.b.enqueue(*(fault.reply(dialect.stream, "ollama") for _ in range(calls)))
    resp, _ = await post(gw, dialect)
    err = await dialect.error(resp, fault.status)
    assert err["type"] == (fault.kind if dialect.anthropic else fault.openai_kind)
    # the message says what was tried, backend by backend
    assert "tried: openai: " in err["message"] and "; ollama: " in err["message"]
    assert "X-Lynkr-Provider" not in resp.headers
    assert resp.headers.get("retry-after") == fault.retry_after
    assert len(gw.a.requests) == seen(fault, calls)
    assert len(gw.b.requests) == seen(fault, calls)
    breakers = await gw.breakers()
    for name in ("openai", "ollama"):
        assert breakers[name]["requests"]["failures"] == calls
        assert breakers[name]["stats"]["failure"] == (calls if fault.counted else 0)
        assert breakers[name]["stats"]["success"] == 0


# --- after the first byte: one error event, nothing retried ---------------------------------------------


@dataclass(frozen=True)
class MidStream:
    """A backend that fails after its first chunk reached the client."""

    name: str
    reply: Callable[[asyncio.Event], Raw]  # given the gate the test opens once it has the first event
    kind: str  # the error's type (Anthropic's name)
    phrase: str  # in the error's message
    openai_type: str = "server_error"


MID_STREAM = [
    MidStream("hang-mid-stream", lambda gate: Raw(FIRST_CHUNK, hang_after=30), "timeout_error",
              "STREAM_IDLE_TIMEOUT_MS", "timeout"),
    MidStream("reset-after-first-chunk",
              lambda gate: Raw(FIRST_CHUNK, gate=gate, more=b'data: {"choices":[{"index":0,"delta":{"content":"mo',
                               drop_after=True), "api_error", "closed the connection mid-answer"),
    MidStream("malformed-after-first-chunk",
              lambda gate: Raw(FIRST_CHUNK, gate=gate, more=b"data: {this is not json\n\n"), "api_error",
              "not JSON"),
    MidStream("error-event-after-first-chunk",
              lambda gate: Raw(FIRST_CHUNK, gate=gate, more=b'data: {"error": {"message": "upstream exploded"}}\n\n'),
              "api_error", "upstream exploded"),
]


@pytest.mark.parametrize("dialect", STREAMS, ids=lambda d: d.name)
@pytest.mark.parametrize("fault", MID_STREAM, ids=lambda f: f.name)
async def test_a_failure_after_the_first_byte_is_one_error_event_and_never_retried(
        make_gateway: Callable[..., Awaitable[Gateway]], fault: MidStream, dialect: Dialect) -> None:
    # the first-byte deadline (and aiohttp's read timeout) far above the idle timeout: the stall is the idle one
    gw = await make_gateway(request_timeout_ms=10_000)
    gate = asyncio.Event()
    gw.a.enqueue(fault.reply(gate), Answer(text="a retry must not happen"))
    gw.b.enqueue(Answer(text="nor a fallback"))
    async with asyncio.timeout(BOUND):
        resp = await gw.client.post(dialect.path, json=dialect.body())
        assert resp.status == 200
        assert resp.headers["X-Lynkr-Provider"] == "openai"
        first = await resp.content.readuntil(b"\n\n")  # the client has the first event...
        gate.set()  # ...and only now does the backend go wrong
        raw = first + await resp.read()
    events = sse_events(raw)
    if dialect.anthropic:
        assert_anthropic_stream(events)
        errors = [d for _, d in events if d["type"] == "error"]
        assert len(errors) == 1 and events[-1][1] is errors[0]
        assert errors[0]["error"]["type"] == fault.kind
        assert "message_stop" not in [d["type"] for _, d in events]
        text = "".join(d["delta"]["text"] for _, d in events
                       if d["type"] == "content_block_delta" and d["delta"]["type"] == "text_delta")
    else:
        datas = [d for _, d in events]
        assert "[DONE]" not in datas
        errors = [d for d in datas if "error" in d]
        assert len(errors) == 1 and datas[-1] is errors[0]
        assert errors[0]["error"]["type"] == fault.openai_type
        assert all(d["object"] == "chat.completion.chunk" for d in datas[:-1])
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in datas[:-1] if c["choices"])
    assert fault.phrase in errors[0]["error"]["message"]
    assert text == "Partial"  # what came before the failure, once: no duplicate, no half event
    assert len(gw.a.requests) == 1 and gw.b.requests == []
    breakers = await gw.breakers()
    assert breakers["openai"]["requests"] == {"attempts": 1, "failures": 1, "retries": 0, "fallbacks": 0,
                                              "streamFailures": 1}
    assert breakers["openai"]["stats"]["failure"] == 1 and breakers["openai"]["stats"]["success"] == 0
    assert breakers["ollama"]["requests"]["attempts"] == 0


@pytest.mark.parametrize("dialect", STREAMS, ids=lambda d: d.name)
async def test_a_stream_that_ends_cleanly_is_a_success_for_the_breaker(gateway: Gateway, dialect: Dialect) -> None:
    gateway.a.enqueue(Answer(text=PRIMARY_TEXT, pieces=5))
    resp, _ = await post(gateway, dialect)
    assert await dialect.answer(resp) == PRIMARY_TEXT
    openai = (await gateway.breakers())["openai"]
    assert openai["stats"] == {"success": 1, "failure": 0, "rejected": 0, "opened": 0}
    assert openai["requests"]["failures"] == 0


# --- circuit breakers -------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def breaker_gateway(make_gateway: Callable[..., Awaitable[Gateway]]) -> tuple[Gateway, Clock]:
    gw = await make_gateway(api_retry_max_retries=0, circuit_breaker_failure_threshold=3,
                            circuit_breaker_success_threshold=2, circuit_breaker_timeout=30_000)
    clock = Clock()
    for breaker in gw.dispatcher.breakers.values():
        breaker.clock = clock
        breaker.opened_at = clock.now
    return gw, clock


@pytest.mark.parametrize("dialect", [ANTHROPIC_STREAM, ANTHROPIC_JSON, OPENAI_STREAM], ids=lambda d: d.name)
async def test_breaker_opens_skips_instantly_half_opens_and_recovers(
        make_gateway: Callable[..., Awaitable[Gateway]], dialect: Dialect) -> None:
    gw, clock = await breaker_gateway(make_gateway)
    # three failures in a row (CIRCUIT_BREAKER_FAILURE_THRESHOLD=3) open it; each request falls back
    for n in range(3):
        gw.a.enqueue(Failure(500, error_body("down")))
        gw.b.enqueue(Answer(text=FALLBACK_TEXT))
        resp, _ = await post(gw, dialect)
        assert await dialect.answer(resp) == FALLBACK_TEXT
        assert (await gw.breakers())["openai"]["state"] == ("open" if n == 2 else "closed")
    assert len(gw.a.requests) == 3
    opened = (await gw.breakers())["openai"]
    assert opened["stats"]["opened"] == 1 and opened["retryInSeconds"] == 30

    # open: the primary is skipped without a call, the fallback answers and says why
    gw.b.enqueue(Answer(text=FALLBACK_TEXT))
    resp, _ = await post(gw, dialect)
    assert await dialect.answer(resp) == FALLBACK_TEXT
    assert resp.headers["X-Lynkr-Routing-Reason"] == "fallback 1 after openai: circuit open"
    assert len(gw.a.requests) == 3
    assert (await gw.breakers())["openai"]["stats"]["rejected"] == 1

    # after CIRCUIT_BREAKER_TIMEOUT: half-open, the primary is tried again; two successes close it
    clock.now += 30
    for n in range(2):
        gw.a.enqueue(Answer(text=PRIMARY_TEXT))
        resp, _ = await post(gw, dialect)
        assert await dialect.answer(resp) == PRIMARY_TEXT
        assert resp.headers["X-Lynkr-Provider"] == "openai"
        assert (await gw.breakers())["openai"]["state"] == ("half_open" if n == 0 else "closed")
    assert len(gw.a.requests) == 5 and len(gw.b.requests) == 4


async def test_a_failure_while_half_open_opens_the_breaker_again(
        make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
    gw, clock = await breaker_gateway(make_gateway)
    gw.a.enqueue(*(Failure(503, error_body("down")) for _ in range(3)))
    gw.b.enqueue(*(Answer(text=FALLBACK_TEXT) for _ in range(4)))
    for _ in range(3):
        resp, _ = await post(gw, ANTHROPIC_JSON)
        assert resp.status == 200
    clock.now += 31
    gw.a.enqueue(Raw(b"", drop_before=True))  # the probe fails
    resp, _ = await post(gw, ANTHROPIC_JSON)
    assert await ANTHROPIC_JSON.answer(resp) == FALLBACK_TEXT
    state = (await gw.breakers())["openai"]
    assert state["state"] == "open" and state["stats"]["opened"] == 2
    assert len(gw.a.requests) == 4


async def test_a_half_open_breaker_sends_one_probe_and_the_others_fall_back(
        make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
    """While the probe is in flight, the backend that was down is not hit by every request: the others go on
    to the fallback at once. The probe's answer decides (here: two successes close the breaker)."""
    gw, clock = await breaker_gateway(make_gateway)
    for _ in range(3):
        gw.dispatcher.breakers["openai"].record_failure()
    clock.now += 30
    gate = asyncio.Event()
    gw.a.enqueue(Answer(text=PRIMARY_TEXT, gate=gate))  # the probe: a stream that waits after its first chunk
    async with asyncio.timeout(BOUND):
        probe = await gw.client.post(ANTHROPIC_STREAM.path, json=ANTHROPIC_STREAM.body())
        await probe.content.readany()  # its stream has begun: it is in flight
    for dialect in (ANTHROPIC_STREAM, ANTHROPIC_JSON, OPENAI_STREAM):
        gw.b.enqueue(Answer(text=FALLBACK_TEXT))
        resp, _ = await post(gw, dialect)
        assert await dialect.answer(resp) == FALLBACK_TEXT
        assert resp.headers["X-Lynkr-Routing-Reason"] == \
            "fallback 1 after openai: circuit half-open, its probe request is in flight"
    gate.set()
    async with asyncio.timeout(BOUND):
        assert (await probe.read()).endswith(b'data: {"type":"message_stop"}\n\n')
    assert probe.headers["X-Lynkr-Provider"] == "openai" and len(gw.a.requests) == 1
    state = (await gw.breakers())["openai"]
    assert state["state"] == "half_open" and state["successCount"] == 1
    gw.a.enqueue(Answer(text=PRIMARY_TEXT))  # the next request is the next probe
    resp, _ = await post(gw, ANTHROPIC_JSON)
    assert await ANTHROPIC_JSON.answer(resp) == PRIMARY_TEXT
    assert (await gw.breakers())["openai"]["state"] == "closed"


async def test_a_probe_whose_client_leaves_lets_the_next_request_probe(
        make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
    gw, clock = await breaker_gateway(make_gateway)
    for _ in range(3):
        gw.dispatcher.breakers["openai"].record_failure()
    clock.now += 30
    gate = asyncio.Event()
    gw.a.enqueue(Answer(text=PRIMARY_TEXT, gate=gate))
    async with asyncio.timeout(BOUND):
        resp = await gw.client.post(ANTHROPIC_STREAM.path, json=ANTHROPIC_STREAM.body())
        await resp.content.readany()  # the probe's stream has begun
        assert gw.dispatcher.breakers["openai"].probe is not None
        resp.close()  # the client leaves mid-answer

    async def released() -> bool:
        return gw.dispatcher.breakers["openai"].probe is None

    await until(released, "the probe's place is freed")
    gate.set()
    gw.a.enqueue(Answer(text=PRIMARY_TEXT))
    resp, _ = await post(gw, ANTHROPIC_JSON)
    assert await ANTHROPIC_JSON.answer(resp) == PRIMARY_TEXT and len(gw.a.requests) == 2


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
async def test_every_breaker_open_is_an_instant_overloaded_error(
        make_gateway: Callable[..., Awaitable[Gateway]], dialect: Dialect) -> None:
    gw, clock = await breaker_gateway(make_gateway)
    for breaker in gw.dispatcher.breakers.values():
        for _ in range(3):
            breaker.record_failure()
    clock.now += 10
    resp, _ = await post(gw, dialect)
    err = await dialect.error(resp, 529)
    if dialect.anthropic:
        assert err["type"] == "overloaded_error"
    assert "openai: circuit open" in err["message"] and "ollama: circuit open" in err["message"]
    assert resp.headers["retry-after"] == "20"  # when the first breaker half-opens
    assert gw.a.requests == [] and gw.b.requests == []


async def test_breakers_reset_all_one_or_unknown(make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
    gw, _ = await breaker_gateway(make_gateway)

    def trip_all() -> None:
        for breaker in gw.dispatcher.breakers.values():
            for _ in range(3):
                breaker.record_failure()

    async def reset(query: str = "") -> tuple[int, Any]:
        async with asyncio.timeout(BOUND):
            resp = await gw.client.post("/v1/admin/circuit-breakers/reset" + query)
            return resp.status, await resp.json()

    async def states() -> dict[str, str]:
        return {name: b["state"] for name, b in (await gw.breakers()).items()}

    trip_all()
    assert await states() == {"openai": "open", "ollama": "open"}
    assert await reset("?provider=ollama") == (200, {"reset": ["ollama"]})
    assert await states() == {"openai": "open", "ollama": "closed"}
    assert await reset() == (200, {"reset": ["openai", "ollama"]})
    assert await states() == {"openai": "closed", "ollama": "closed"}
    trip_all()
    status, body = await reset("?provider=bedrock")
    assert status == 404
    assert body["error"]["type"] == "not_found_error" and "bedrock" in body["error"]["message"]
    assert await states() == {"openai": "open", "ollama": "open"}  # nothing was reset
    # after a reset the primary is called again at once
    await reset()
    gw.a.enqueue(Answer(text=PRIMARY_TEXT))
    resp, _ = await post(gw, ANTHROPIC_JSON)
    assert await ANTHROPIC_JSON.answer(resp) == PRIMARY_TEXT


# --- load shedding ---------------------------------------------------------------------------------------


async def test_load_shedding_refuses_in_each_dialect_while_health_and_metrics_answer(
        make_gateway: Callable[..., Awaitable[Gateway]]) -> None:
    gw = await make_gateway(load_shedding_active_requests_threshold=1)
    gate = asyncio.Event()
    gw.a.enqueue(Answer(text=PRIMARY_TEXT, gate=gate))
    async with asyncio.timeout(BOUND):
        slow = await gw.client.post("/v1/messages", json=claude_request(stream=True))
        assert slow.status == 200
        await slow.content.readuntil(b"\n\n")  # in flight: its first event is here, the rest is held back

        resp = await gw.client.post("/v1/messages", json=claude_request(stream=True))
        assert resp.status == 529
        body = await resp.json()
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
        assert "1 concurrent requests" in body["error"]["message"]
        assert int(resp.headers["retry-after"]) > 0

        resp = await gw.client.post("/v1/chat/completions", json=OPENAI_STREAM.body())
        assert resp.status == 503
        body = await resp.json()
        assert set(body) == {"error"} and body["error"]["type"] == "server_error"
        assert int(resp.headers["retry-after"]) > 0

        for path in ("/health", "/health/live", "/health/ready", "/metrics/circuit-breakers"):
            assert (await gw.client.get(path)).status == 200, path
        shed = await (await gw.client.get("/metrics/load-shedding")).json()
        assert shed["activeRequests"] == 1 and shed["totalShed"] == 2
        assert len(gw.a.requests) == 1  # the refused requests never reached a backend

        gate.set()
        events = sse_events(await slow.read())
        assert events[-1][1]["type"] == "message_stop"

        gw.a.enqueue(Answer(text=PRIMARY_TEXT))
        resp, _ = await post(gw, ANTHROPIC_JSON)
        assert await ANTHROPIC_JSON.answer(resp) == PRIMARY_TEXT


# --- the drain's time runs out: requests in flight end with an error, not a cut ---------------------------


ENDED = [(d, False) for d in DIALECTS] + [(d, True) for d in STREAMS]  # a JSON answer has no "mid-answer"


@pytest.mark.parametrize(("dialect", "started"), ENDED,
                         ids=[f"{d.name}-{'mid-stream' if s else 'before-first-byte'}" for d, s in ENDED])
async def test_requests_ended_at_the_drain_timeout_get_an_error_in_their_dialect(
        make_gateway: Callable[..., Awaitable[Gateway]], dialect: Dialect, started: bool) -> None:
    gw = await make_gateway(request_timeout_ms=10_000, stream_idle_timeout_ms=10_000)
    gate = asyncio.Event()  # never opened
    gw.a.enqueue(Raw(FIRST_CHUNK, gate=gate) if started else Raw(b"", hang_before=30))
    shedder = gw.client.app[SHEDDER]  # type: ignore[index]
    async with asyncio.timeout(BOUND):
        task = asyncio.create_task(gw.client.post(dialect.path, json=dialect.body()))
        for _ in range(1000):  # bounded: until the request is in flight at the backend
            if gw.a.requests and (task.done() or not started):
                break
            await asyncio.sleep(0.01)
        if started:
            resp = await task
            assert resp.status == 200
            first = await resp.content.readuntil(b"\n\n")
        assert shedder.active == 1
        ended = shedder.abort()  # what the runner does when GRACEFUL_SHUTDOWN_TIMEOUT is over
        assert len(ended) == 1
        await asyncio.wait(ended)
        if not started:
            resp = await task
            err = await dialect.error(resp, 503)
            assert "GRACEFUL_SHUTDOWN_TIMEOUT" in err["message"]
            assert resp.headers["retry-after"] == "2"
            return
        raw = first + await resp.read()
    last = sse_events(raw)[-1][1]
    if dialect.anthropic:
        assert last["type"] == "error" and last["error"]["type"] == "overloaded_error"
    assert "GRACEFUL_SHUTDOWN_TIMEOUT" in last["error"]["message"]
    assert shedder.active == 0


# --- the Chat Completions passthrough forwards whole, well-formed events only --------------------------------


class Body:
    """What sse_passthrough reads of an aiohttp response: ``content.readany()``, b"" at the end."""

    def __init__(self, *chunks: bytes) -> None:
        self.content = self
        self.chunks = iter([chunk for chunk in chunks if chunk])

    async def readany(self) -> bytes:
        return next(self.chunks, b"")


async def passthrough(*chunks: bytes, inspect: Callable[[Any], None] | None = None,
                      worth: Worth | None = None
                      ) -> tuple[list[bytes], UpstreamBadResponse | None]:
    """What the passthrough forwarded, and the error it ended with (None: a clean end)."""
    out: list[bytes] = []
    try:
        async for piece in sse_passthrough(Body(*chunks), "openai", inspect, worth):  # type: ignore[arg-type]
            out.append(piece)
    except UpstreamBadResponse as err:
        return out, err
    return out, None


async def test_passthrough_cuts_at_event_boundaries_and_keeps_the_bytes() -> None:
    stream = [b'data: {"a":1}\n\ndata: {"b"', b':2}\n\n: keep-alive\n\nid: 7\nevent: x\ndata: {"c":3}\r\n\r\n',
              b"data: [DONE]"]  # the last event without its blank line still counts
    out, err = await passthrough(*stream)
    assert err is None
    assert out == [b'data: {"a":1}\n\n', b'data: {"b":2}\n\n: keep-alive\n\nid: 7\nevent: x\ndata: {"c":3}\r\n\r\n',
                   b"data: [DONE]"]
    assert b"".join(out) == b"".join(stream)


@pytest.mark.parametrize(("chunks", "sent", "phrase"), [
    ((b"data: {oops\n\n",), [], "not JSON"),  # garbage first: nothing reaches the client, so it can be retried
    ((b'data: {"a":1}\n\n', b"data: {oops\n\n"), [b'data: {"a":1}\n\n'], "not JSON"),
    ((b'data: {"a":1}\n\ndata: {oops\n\n',), [], "not JSON"),  # in the same read: the good one is held back too
    ((b'data: {"a":1}\n\ndata: {oops', b"\n\n"), [b'data: {"a":1}\n\n'], "not JSON"),  # split: the half waits
    ((b'{"id": "chatcmpl-1", "choices": []}',), [], "not an event stream"),  # a JSON answer to a stream request
], ids=["first", "later", "same-read", "split", "json-body"])
async def test_passthrough_raises_before_forwarding_a_bad_event(chunks: tuple[bytes, ...], sent: list[bytes],
                                                                phrase: str) -> None:
    out, err = await passthrough(*chunks)
    assert out == sent
    assert err is not None and phrase in err.message and err.provider == "openai"


@pytest.mark.parametrize("chunks", [
    (b'data: {"a":1}\n\n', b'data: {"b":2}\r\n\r\ndata: {"c"', b':3}\r\n\r\n'),  # CR from the 2nd read on
    (b"\xef\xbb\xbf", b'data: {"a":1}\n\n'),  # a byte order mark, alone in the first read
    (b'event: x\ndata: {"a":\ndata: 1}\n\n: ping\n\n\n\ndata: [DONE]',),  # multi-line data, comments, no end
], ids=["cr-later", "bom", "multi-line"])
async def test_passthrough_forwards_every_line_ending_unchanged(chunks: tuple[bytes, ...]) -> None:
    seen: list[Any] = []
    out, err = await passthrough(*chunks, inspect=seen.append)
    assert err is None
    assert b"".join(out) == b"".join(chunks)
    assert seen and all(isinstance(item, dict) for item in seen)


async def test_passthrough_with_a_filter_decodes_only_what_it_names() -> None:
    """OpenAI-compatible passthrough decodes only chunks that may carry usage or an error; the rest are
    checked to be one JSON object, so garbage still never reaches the client."""
    seen: list[Any] = []
    wanted = Worth(b"usage")
    stream = (b'data: {"a":1}\n\ndata: {"usage":{"n":2}}\n\n', b"data: [DONE]\n\n")
    out, err = await passthrough(*stream, inspect=seen.append, worth=wanted)
    assert err is None and b"".join(out) == b"".join(stream)
    assert seen == [{"usage": {"n": 2}}]
    out, err = await passthrough(b'data: {"a":1}\n\ndata: {oops\n\n', inspect=seen.append, worth=wanted)
    assert out == [] and err is not None and "not JSON" in err.message


@pytest.mark.parametrize("reads", [
    (b'data: {"usage":{"n":1}}\n\ndata: {"a":2}\n\ndata: {"a":"usage: {\\"n\\"}"}\n\ndata: {"usage":{"n":4}}\n\n'
     b"data: [DONE]\n\n",),
    (b'data: {"a":2}\n\n', b'data: {"usage":{"n":1}}\n\ndata: {"usage":{"n":4}}\n\n', b"data: [DONE]\n\n"),
    (b'data: {"a":2}\n\n: keep-alive\n\ndata: {"usage":{"n":1}}\n\n', b'data: {"usage":{"n":4}}\n\n'),
], ids=["one-read", "reads", "comment"])
async def test_passthrough_filter_finds_every_named_event_in_a_read(reads: tuple[bytes, ...]) -> None:
    """Plain events (one data line each) are searched once per read: each event the filter names is decoded
    whole, first, middle and last, and only those."""
    seen: list[Any] = []
    out, err = await passthrough(*reads, inspect=seen.append, worth=Worth(b'"usage"'))
    assert err is None and b"".join(out) == b"".join(reads)
    assert seen == [{"usage": {"n": 1}}, {"usage": {"n": 4}}]


@pytest.mark.parametrize("read", [
    b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: {"a":3\n\n',  # the last object never closes
    b'data: {"a":1}\n\ndata: {"a":2} x\n\n',  # more after the object
    b'data: {"a":1}\n\ndata: {"a":2}\n\n\n\ndata: [DONE] \n\n',  # not quite [DONE]
], ids=["open", "trailing", "done"])
async def test_passthrough_filter_still_refuses_a_malformed_event(read: bytes) -> None:
    out, err = await passthrough(read, worth=Worth(b'"usage"'))
    assert out == [] and err is not None and "not JSON" in err.message


async def test_openai_compatible_passthrough_names_usage_and_errors_only() -> None:
    from lynkr.providers.openai_compat import USAGE_OR_ERROR
    named = [b'{"choices":[],"usage":{"prompt_tokens":3}}', b'{"error":{"message":"x"}}',
             b'{"choices":[], "usage": {"prompt_tokens":3}}']
    plain = [b'{"choices":[{"delta":{"content":"hi"}}],"usage":null}', b'{"choices":[], "usage": null}',
             b'{"choices":[{"delta":{"content":"the usage, errors"}}]}', b'{"choices":[],"error":null,"usage":null}']
    assert all(USAGE_OR_ERROR.find(data) >= 0 for data in named)
    assert not any(USAGE_OR_ERROR.find(data) >= 0 for data in plain)


def test_worth_finds_the_first_marker_not_followed_by_null() -> None:
    worth = Worth(b'"error"', b'"usage"')
    data = b'{"usage":null,"error": null,"x":{"usage":{"n":1}},"error":{"m":1}}'
    assert worth.find(data) == data.index(b'"usage":{')
    assert worth.find(data, data.index(b'"usage":{') + 1) == data.index(b'"error":{')
    assert worth.find(b'{"usage":null}') == -1 and worth.find(b"") == -1


async def test_passthrough_reads_a_block_per_read_for_the_stream_writer() -> None:
    """``read_batch``: the whole events one read completes, as one block; a read that completes none is waited
    through; a last event without its blank line comes at the end of the body, then None."""
    reader = sse_passthrough(Body(b'data: {"a":1}\n\ndata: {"b"', b':2}\n\ndata: {"c":3}\n\n', b"data: [DONE]"),
                             "openai", worth=Worth(b'"usage"'))  # type: ignore[arg-type]
    assert await reader.read_batch() == [b'data: {"a":1}\n\n']
    assert await reader.read_batch() == [b'data: {"b":2}\n\ndata: {"c":3}\n\n'] and not reader.ended
    assert await reader.read_batch() == [b"data: [DONE]"] and reader.ended
    assert await reader.read_batch() is None


async def test_passthrough_lets_the_provider_inspect_each_event() -> None:
    def no_errors(data: Any) -> None:
        if "error" in data:
            raise UpstreamBadResponse("in-band error")

    out, err = await passthrough(b'data: {"a":1}\n\n', b'data: {"error": {"message": "x"}}\n\n', inspect=no_errors)
    assert out == [b'data: {"a":1}\n\n']
    assert err is not None and err.message == "in-band error"


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
async def test_the_routing_reason_header_is_one_line_whatever_the_backend_said(gateway: Gateway,
                                                                             dialect: Dialect) -> None:
    page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n\t<body>nginx</body>\r\n</html>"
    gateway.a.enqueue(Failure(502, page), Failure(502, page))
    gateway.b.enqueue(Answer(text=FALLBACK_TEXT))
    resp, _ = await post(gateway, dialect)
    assert await dialect.answer(resp) == FALLBACK_TEXT
    assert resp.headers["X-Lynkr-Routing-Reason"] == (
        "fallback 1 after openai: openai answered 502: <html> <head><title>502 Bad Gateway</title></head> "
        "<body>nginx</body> </html>")
