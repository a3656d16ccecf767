"""`lynkr start` itself, as a process: LOG_FORMAT=json gives one JSON object per stderr line, the request id in
each request's line, and never the backend key, even when the backend echoes it in an error."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp

from tests.cli_support import free_port, process_env
from tests.conftest import SECRET, claude_request
from tests.fakes.script import Answer, Failure


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):  # bounded: about 20 s
            if proc.returncode is not None:
                raise AssertionError(f"lynkr start exited with {proc.returncode}")
            try:
                async with http.get(url + "/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("lynkr start did not come up")


async def test_lynkr_start_logs_json_without_secrets(openai_upstream, tmp_path: Path):
    port = free_port()
    env = process_env(tmp_path, MODEL_PROVIDER="openai", OPENAI_API_KEY=SECRET, OPENAI_MODEL="gpt-4o",
                      OPENAI_ENDPOINT=openai_upstream.url + "/v1/chat/completions", LOG_FORMAT="json",
                      LYNKR_DATA_DIR=str(tmp_path / "data"), PORT=str(port))
    stderr = (tmp_path / "stderr.log").open("wb")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "lynkr", "start", cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    ids = []
    try:
        await wait_healthy(url, proc)
        openai_upstream.script.enqueue(
            Answer(text="fine"),
            Failure(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}}))
        async with aiohttp.ClientSession() as http:
            for rid in ("req-json-ok", "req-json-401"):
                async with http.post(url + "/v1/messages", json=claude_request(),
                                     headers={"X-Request-ID": rid, "x-api-key": "sk-ant-client-0123456789ab"}) as r:
                    await r.read()
                    ids.append((rid, r.status))
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        stderr.close()

    assert ids == [("req-json-ok", 200), ("req-json-401", 401)]
    text = (tmp_path / "stderr.log").read_text()
    assert SECRET not in text and "sk-ant-client-0123456789ab" not in text
    records = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    messages = [r["record"]["message"] for r in records]
    assert any("listening on" in m for m in messages)
    for rid, _ in ids:
        line = next(r for r in records if r["record"]["message"].startswith("POST /v1/messages")
                    and r["record"]["extra"].get("request_id") == rid)
        assert rid in line["text"]
