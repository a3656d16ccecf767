"""Graceful shutdown of a real ``lynkr start`` process (``python -m lynkr start``), on loopback only.

The fake backend runs in this test's event loop and holds every answer back after its first chunk until
the test opens a gate, so the streams are surely in flight when SIGTERM arrives. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import claude_request
from tests.e2e_support import until
from tests.fakes import openai_server
from tests.fakes.script import Answer, Script

ServerFactory = Callable[..., Awaitable[TestServer]]
REPO = Path(__file__).resolve().parent.parent
STREAMS = 8
TEXT = "All of this answer arrives, even though lynkr is shutting down."
BOUND = 20.0  # seconds any one wait may take before the test calls it a hang


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lynkr:
    proc: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_exit(self, timeout: float = BOUND) -> int:
        try:
            async with asyncio.timeout(timeout):
                return await self.proc.wait()
        except TimeoutError:
            pytest.fail(f"lynkr did not exit within {timeout:.0f} s\n{self.output()}")


async def connection_refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False


@pytest.fixture
async def upstream(aiohttp_server: ServerFactory) -> tuple[Script, str]:
    script = Script()
    server = await aiohttp_server(openai_server.make_app(script))
    return script, str(server.make_url("/v1/chat/completions"))


@pytest.fixture
async def start_lynkr(tmp_path: Path, upstream: tuple[Script, str]) -> AsyncIterator[Callable[..., Awaitable[Lynkr]]]:
    started: list[Lynkr] = []

    async def start(graceful_ms: int) -> Lynkr:
        port = free_port()
        env_file = tmp_path / "lynkr.env"
        env_file.write_text("\n".join([
            "MODEL_PROVIDER=openai", "OPENAI_API_KEY=sk-drain-test", f"OPENAI_ENDPOINT={upstream[1]}",
            "OPENAI_MODEL=gpt-4o", f"LYNKR_DATA_DIR={tmp_path / 'data'}", f"GRACEFUL_SHUTDOWN_TIMEOUT={graceful_ms}",
            "STREAM_IDLE_TIMEOUT_MS=120000", "LOG_LEVEL=info", "",
        ]))
        log = tmp_path / f"lynkr-{port}.log"
        # an environment from scratch: nothing of ours can change lynkr's settings or route loopback via a proxy
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "lynkr", "start", "--env-file", str(env_file), "--port", str(port),
                cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)
        lynkr = Lynkr(proc, port, log)
        started.append(lynkr)
        async with aiohttp.ClientSession() as http:
            for _ in range(200):  # bounded: up to ~20 s for the interpreter to start
                if proc.returncode is not None:
                    pytest.fail(f"lynkr exited {proc.returncode} at startup\n{lynkr.output()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(lynkr.url + "/health/ready") as resp:
                        if resp.status == 200:
                            return lynkr
                await asyncio.sleep(0.1)
        pytest.fail(f"lynkr never became ready\n{lynkr.output()}")

    yield start
    for lynkr in started:
        if lynkr.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                lynkr.proc.kill()
            await lynkr.proc.wait()


async def open_stream(http: aiohttp.ClientSession, lynkr: Lynkr) -> tuple[aiohttp.ClientResponse, bytes]:
    """A streamed /v1/messages request whose first event has arrived."""
    resp = await http.post(lynkr.url + "/v1/messages", json=claude_request(stream=True))
    assert resp.status == 200, await resp.text()
    return resp, await resp.content.readuntil(b"\n\n")


def events(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in raw.decode().split("\n") if line.startswith("data: ")]


async def ready_status(probe: aiohttp.ClientSession, lynkr: Lynkr) -> tuple[int, dict[str, Any]]:
    async with probe.get(lynkr.url + "/health/ready") as resp:
        return resp.status, await resp.json()


async def not_ready(probe: aiohttp.ClientSession, lynkr: Lynkr) -> bool:
    return (await ready_status(probe, lynkr))[0] == 503


def probe_session() -> aiohttp.ClientSession:
    """One keep-alive connection, opened before the signal: the only way in once lynkr stops listening."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, keepalive_timeout=120))


async def test_sigterm_drains_every_stream_in_flight(start_lynkr: Callable[..., Awaitable[Lynkr]],
                                                     upstream: tuple[Script, str]) -> None:
    script, _ = upstream
    gate = asyncio.Event()
    script.respond_with(lambda body: Answer(text=TEXT, pieces=6, gate=gate))
    lynkr = await start_lynkr(30_000)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http, probe_session() as probe:
        async with asyncio.timeout(BOUND):
            assert (await ready_status(probe, lynkr))[0] == 200
            opened = await asyncio.gather(*(open_stream(http, lynkr) for _ in range(STREAMS)))
        assert len(script.requests) == STREAMS  # all of them are in flight, held by the backend

        lynkr.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(BOUND):
            await until(lambda: not_ready(probe, lynkr), "/health/ready answers 503")
            assert await ready_status(probe, lynkr) == (503, {"status": "not_ready", "reason": "shutting down"})
            await until(lambda: connection_refused(lynkr.port), "new connections are refused")
            # a new model request on a connection that was already open is refused in its dialect
            async with probe.post(lynkr.url + "/v1/messages", json=claude_request()) as refused:
                assert refused.status == 503
                body = await refused.json()
                assert body["error"]["type"] == "overloaded_error" and "shutting down" in body["error"]["message"]
                assert refused.headers["retry-after"]
        assert lynkr.proc.returncode is None  # still draining: the streams are not done

        gate.set()
        async with asyncio.timeout(BOUND):
            rests = await asyncio.gather(*(resp.read() for resp, _ in opened))
        for (_, first), rest in zip(opened, rests, strict=True):
            evs = events(first + rest)
            assert evs[0]["type"] == "message_start" and evs[-1]["type"] == "message_stop"
            assert "error" not in [e["type"] for e in evs]
            text = "".join(e["delta"]["text"] for e in evs if e["type"] == "content_block_delta")
            assert text == TEXT

    assert await lynkr.wait_exit() == 0, lynkr.output()
    assert await connection_refused(lynkr.port)
    out = lynkr.output()
    assert f"SIGTERM: draining ({STREAMS} in flight" in out, out
    assert "still running at the drain timeout" not in out


async def test_a_second_signal_forces_exit(start_lynkr: Callable[..., Awaitable[Lynkr]],
                                           upstream: tuple[Script, str]) -> None:
    script, _ = upstream
    gate = asyncio.Event()  # never opened: the stream would keep lynkr draining for its full minute
    script.respond_with(lambda body: Answer(text=TEXT, gate=gate))
    lynkr = await start_lynkr(60_000)
    async with aiohttp.ClientSession() as http, probe_session() as probe:
        async with asyncio.timeout(BOUND):
            assert (await ready_status(probe, lynkr))[0] == 200
            resp, _ = await open_stream(http, lynkr)
            lynkr.proc.send_signal(signal.SIGTERM)
            await until(lambda: not_ready(probe, lynkr), "the first signal is handled")
        lynkr.proc.send_signal(signal.SIGTERM)
        assert await lynkr.wait_exit(10) == 1
        with contextlib.suppress(aiohttp.ClientError):  # the cut-off stream ends (no hang)
            async with asyncio.timeout(BOUND):
                await resp.read()
    assert "second SIGTERM: exiting now" in lynkr.output()


async def test_the_drain_stops_waiting_at_graceful_shutdown_timeout(start_lynkr: Callable[..., Awaitable[Lynkr]],
                                                                    upstream: tuple[Script, str]) -> None:
    script, _ = upstream
    gate = asyncio.Event()  # never opened
    script.respond_with(lambda body: Answer(text=TEXT, gate=gate))
    lynkr = await start_lynkr(500)
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(BOUND):
            resp, first = await open_stream(http, lynkr)
        lynkr.proc.send_signal(signal.SIGTERM)
        assert await lynkr.wait_exit() == 0
        async with asyncio.timeout(BOUND):
            rest = await resp.read()
    # the client is told, in its dialect, that the answer was cut short: one error event, last
    evs = events(first + rest)
    assert evs[0]["type"] == "message_start"
    assert [e["type"] for e in evs].count("error") == 1 and evs[-1]["type"] == "error"
    assert evs[-1]["error"]["type"] == "overloaded_error" and "shutting down" in evs[-1]["error"]["message"]
    assert "1 requests still running at the drain timeout" in lynkr.output()
