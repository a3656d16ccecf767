"""``lynkr`` command line: config errors are one actionable line; start serves and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from lynkr import __version__
from lynkr.cli import app

runner = CliRunner()

CLEAN_ENV = {k: "" for k in ("MODEL_PROVIDER", "OPENAI_API_KEY", "PORT", "LYNKR_HOST", "OLLAMA_ENDPOINT")}


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"lynkr {__version__}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("MODEL_PROVIDER=openai\n", "MODEL_PROVIDER=openai needs OPENAI_API_KEY"),
        ("MODEL_PROVIDER=openrouter\n", "MODEL_PROVIDER=openrouter needs OPENROUTER_API_KEY"),
        ("MODEL_PROVIDER=azure-openai\nAZURE_OPENAI_API_KEY=k\n", "needs AZURE_OPENAI_ENDPOINT"),
        ("MODEL_PROVIDER=bogus\n", "MODEL_PROVIDER"),
        ("PORT=99999\n", "PORT"),
        ("REQUEST_JSON_LIMIT=lots\n", "REQUEST_JSON_LIMIT"),
        ("LOG_LEVEL=loud\n", "LOG_LEVEL"),
    ],
)
def test_bad_config_is_one_actionable_line(tmp_path: Path, env: str, message: str):
    env_file = tmp_path / "lynkr.env"
    env_file.write_text(env)
    result = runner.invoke(app, ["start", "--env-file", str(env_file)], env=CLEAN_ENV)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("lynkr: ") and message in lines[0]


def test_missing_env_file(tmp_path: Path):
    result = runner.invoke(app, ["start", "--env-file", str(tmp_path / "nope.env")], env=CLEAN_ENV)
    assert result.exit_code == 2
    assert "env file not found" in result.output


async def test_start_serves_then_ctrl_c_stops_cleanly(tmp_path: Path, unused_tcp_port: int):
    (tmp_path / ".env").write_text(f"MODEL_PROVIDER=ollama\nPORT={unused_tcp_port}\nOLLAMA_MODEL=qwen3:8b\n")
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lynkr", "start", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{unused_tcp_port}/health/live"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(url) as resp:
                        assert resp.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("lynkr did not start")
        proc.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = output.decode()
    assert proc.returncode == 0, text
    assert f"ANTHROPIC_BASE_URL=http://127.0.0.1:{unused_tcp_port}" in text
    assert "ollama" in text and "qwen3:8b" in text
    assert "Traceback" not in text
    assert "lynkr stopped" in text
