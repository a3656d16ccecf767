"""``lynkr code`` and ``lynkr codex``: reuse or start lynkr, then hand the terminal to the agent with the
right environment; Codex's config.toml gets a lynkr provider without losing anything else."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from typer.testing import CliRunner

from lynkr import __version__
from lynkr.cli import agents, app
from tests.cli_support import executable, fake_ollama, free_port, process_env, runner_env
from tests.fakes.ollama_admin import FakeModel, OllamaState
from tests.fakes.threaded import ThreadedServer

runner = CliRunner()


class Exec(Exception):
    """Raised instead of replacing the test process."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        super().__init__(argv)
        self.argv, self.env = argv, env


@pytest.fixture
def exec_calls(monkeypatch: pytest.MonkeyPatch) -> list[Exec]:
    calls: list[Exec] = []

    def fake_exec(argv: list[str], env: dict[str, str]) -> None:
        calls.append(Exec(argv, env))
        raise SystemExit(0)

    monkeypatch.setattr(agents, "exec_agent", fake_exec)
    return calls


def running_lynkr(port: int, ready: bool = True) -> ThreadedServer:
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def ready_(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"}, status=200 if ready else 503)

    application = web.Application()
    application.router.add_get("/health", health)
    application.router.add_get("/health/ready", ready_)
    return ThreadedServer(application, port=port)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    executable(tmp_path / "bin" / "claude", "#!/bin/sh\necho claude\n")
    executable(tmp_path / "bin" / "codex", "#!/bin/sh\necho codex\n")
    return tmp_path / "bin"


def invoke(tmp_path: Path, bin_dir: Path, *args: str, **env: str):
    return runner.invoke(app, list(args), env=runner_env(tmp_path / "home", path=f"{bin_dir}:/usr/bin:/bin", **env))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    port = free_port()
    (tmp_path / ".env").write_text(f"MODEL_PROVIDER=ollama\nOLLAMA_MODEL=qwen3:8b\nPORT={port}\n")
    monkeypatch.chdir(tmp_path)
    yield tmp_path, port


def test_code_uses_a_running_lynkr_and_execs_claude(workdir: tuple[Path, int], bin_dir: Path,
                                                    exec_calls: list[Exec]):
    tmp_path, port = workdir
    with running_lynkr(port):
        result = invoke(tmp_path, bin_dir, "code", "--", "--resume", "-p", "hello",
                        ANTHROPIC_AUTH_TOKEN="oauth-token", ANTHROPIC_MODEL="qwen3:8b")
    assert result.exit_code == 0, result.output
    assert f"using the lynkr {__version__} already running at http://127.0.0.1:{port}" in result.output
    [call] = exec_calls
    assert call.argv == [str(bin_dir / "claude"), "--resume", "-p", "hello"]
    env = call.env
    assert env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}"
    assert env["ANTHROPIC_API_KEY"] == "lynkr"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["DISABLE_TELEMETRY"] == env["DISABLE_ERROR_REPORTING"] == env["DISABLE_AUTOUPDATER"] == "1"
    assert "ANTHROPIC_AUTH_TOKEN" not in env  # would fight the key lynkr gives it
    assert env["ANTHROPIC_MODEL"] == "qwen3:8b"  # the user's own choices stay


def test_code_without_claude_installed(workdir: tuple[Path, int], tmp_path: Path, exec_calls: list[Exec]):
    result = invoke(tmp_path, tmp_path / "nothing", "code")
    assert result.exit_code == 1
    assert "Claude Code is not installed" in result.output
    assert "npm install -g @anthropic-ai/claude-code" in result.output
    assert not exec_calls


def test_code_when_the_port_is_taken_by_something_else(workdir: tuple[Path, int], bin_dir: Path,
                                                       exec_calls: list[Exec]):
    tmp_path, port = workdir
    with ThreadedServer(web.Application(), port=port):
        result = invoke(tmp_path, bin_dir, "code")
    assert result.exit_code == 1
    assert f"port {port} is taken by another program" in result.output
    assert "set PORT in .env or pass --port" in result.output
    assert not exec_calls


def test_code_with_settings_that_cannot_work(workdir: tuple[Path, int], bin_dir: Path, exec_calls: list[Exec]):
    tmp_path, _ = workdir
    (tmp_path / ".env").write_text("MODEL_PROVIDER=openai\n")
    result = invoke(tmp_path, bin_dir, "code")
    assert result.exit_code == 2
    assert result.output.strip() == "lynkr: MODEL_PROVIDER=openai needs OPENAI_API_KEY (set it in .env)"
    assert not exec_calls


def test_code_reports_a_lynkr_that_cannot_start(workdir: tuple[Path, int], bin_dir: Path, exec_calls: list[Exec],
                                                monkeypatch: pytest.MonkeyPatch):
    tmp_path, port = workdir
    # the background lynkr exits at once: its port is given by --port, its settings by a broken file
    monkeypatch.setattr(agents, "start_command",
                        lambda settings, env_file: [sys.executable, "-c", "print('boom: no backend'); raise "
                                                    "SystemExit(2)"])
    result = invoke(tmp_path, bin_dir, "code")
    assert result.exit_code == 1
    assert "lynkr did not become ready" in result.output and "boom: no backend" in result.output
    assert (tmp_path / "home" / ".lynkr" / "run" / f"lynkr-{port}.log").is_file()
    assert not exec_calls


def test_code_starts_lynkr_in_the_background_then_runs_claude(tmp_path: Path):
    """End to end in a child process: no lynkr is running, so ``lynkr code`` starts one (detached) and execs
    the (fake) claude, which records its arguments and environment; lynkr keeps serving afterwards."""
    port = free_port()
    record = tmp_path / "claude.json"
    claude = executable(tmp_path / "bin" / "claude", f"""#!{sys.executable}
import json, os, sys
json.dump({{"argv": sys.argv[1:], "env": dict(os.environ)}}, open({str(record)!r}, "w"))
""")
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"))) as (url, _):
        (tmp_path / ".env").write_text(f"OLLAMA_ENDPOINT={url}\nOLLAMA_NUM_CTX=32768\nPORT={port}\n")
        pidfile = tmp_path / "home" / ".lynkr" / "run" / f"lynkr-{port}.pid"
        try:
            done = subprocess.run([sys.executable, "-m", "lynkr", "code", "--", "--print", "hi"], cwd=tmp_path,
                                  env=process_env(tmp_path / "home", PATH=f"{claude.parent}:{os.environ['PATH']}"),
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert "starting lynkr in the background" in done.stderr
            seen = json.loads(record.read_text())
            assert seen["argv"] == ["--print", "hi"]
            assert seen["env"]["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}"
            # lynkr outlives the command that started it
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as resp:
                assert json.loads(resp.read())["model"] == "qwen2.5-coder:7b"
            # a second run finds it and starts nothing
            again = subprocess.run([sys.executable, "-m", "lynkr", "code"], cwd=tmp_path,
                                   env=process_env(tmp_path / "home", PATH=f"{claude.parent}:{os.environ['PATH']}"),
                                   capture_output=True, text=True, timeout=60)
            assert again.returncode == 0 and "already running" in again.stderr
        finally:
            if pidfile.is_file():
                os.kill(int(pidfile.read_text()), signal.SIGTERM)


# -- codex ------------------------------------------------------------------------------------------------


USER_CONFIG = """# my Codex settings
model = "gpt-5-codex"   # my default
approval_policy = "on-request"

[model_providers.azure]
name = "Azure"
base_url = "https://me.openai.azure.com/openai"
env_key = "AZURE_OPENAI_API_KEY"
"""


def test_codex_adds_a_provider_and_profile_without_clobbering(workdir: tuple[Path, int], bin_dir: Path,
                                                             exec_calls: list[Exec]):
    tmp_path, port = workdir
    config = tmp_path / "codex-home" / "config.toml"
    config.parent.mkdir()
    config.write_text(USER_CONFIG)
    result = invoke(tmp_path, bin_dir, "codex", "--no-launch", CODEX_HOME=str(config.parent))
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert text.startswith(USER_CONFIG.rstrip("\n"))  # comments, order and the user's choices intact
    data = tomllib.loads(text)
    assert data["model"] == "gpt-5-codex" and data["model_providers"]["azure"]["name"] == "Azure"
    assert data["model_providers"]["lynkr"] == {"name": "lynkr", "base_url": f"http://127.0.0.1:{port}/v1",
                                                "wire_api": "responses", "env_key": "LYNKR_API_KEY"}
    assert data["profiles"]["lynkr"] == {"model_provider": "lynkr", "model": "qwen3:8b"}
    assert (config.parent / "config.toml.bak").read_text() == USER_CONFIG
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "LYNKR_API_KEY=lynkr codex --profile lynkr" in result.output
    assert not exec_calls
    # a second run changes nothing
    result = invoke(tmp_path, bin_dir, "codex", "--no-launch", CODEX_HOME=str(config.parent))
    assert "kept [model_providers.lynkr]" in result.output
    assert config.read_text() == text


def test_codex_keeps_the_users_extra_provider_keys(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text('[model_providers.lynkr]\nbase_url = "http://127.0.0.1:1/v1"\nrequest_max_retries = 9\n')
    assert agents.update_codex_config(config, "http://127.0.0.1:8081", "m") is True
    provider = tomllib.loads(config.read_text())["model_providers"]["lynkr"]
    assert provider["base_url"] == "http://127.0.0.1:8081/v1" and provider["request_max_retries"] == 9


def test_codex_launches_with_its_profile(workdir: tuple[Path, int], bin_dir: Path, exec_calls: list[Exec]):
    tmp_path, port = workdir
    with running_lynkr(port):
        result = invoke(tmp_path, bin_dir, "codex", "--", "exec", "fix the tests", CODEX_HOME=str(tmp_path / "cx"))
    assert result.exit_code == 0, result.output
    [call] = exec_calls
    assert call.argv == [str(bin_dir / "codex"), "--profile", "lynkr", "exec", "fix the tests"]
    assert call.env["LYNKR_API_KEY"] == "lynkr"
    assert (tmp_path / "cx" / "config.toml").is_file()


def test_codex_with_a_broken_config(workdir: tuple[Path, int], bin_dir: Path, exec_calls: list[Exec]):
    tmp_path, _ = workdir
    (tmp_path / "cx").mkdir()
    (tmp_path / "cx" / "config.toml").write_text("model = \n")
    result = invoke(tmp_path, bin_dir, "codex", CODEX_HOME=str(tmp_path / "cx"))
    assert result.exit_code == 1
    assert "is not valid TOML" in result.output and "fix it and run lynkr codex again" in result.output
    assert (tmp_path / "cx" / "config.toml").read_text() == "model = \n"
    assert not exec_calls


def test_codex_not_installed(workdir: tuple[Path, int], tmp_path: Path, exec_calls: list[Exec]):
    result = invoke(tmp_path, tmp_path / "nothing", "codex", CODEX_HOME=str(tmp_path / "cx"))
    assert result.exit_code == 1
    assert "Codex is not installed" in result.output and "npm install -g @openai/codex" in result.output


def test_codex_home_defaults_to_dot_codex(tmp_path: Path):
    assert agents.codex_home({}) == Path.home() / ".codex"
    assert agents.codex_home({"CODEX_HOME": str(tmp_path)}) == tmp_path


