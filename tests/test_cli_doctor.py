"""``lynkr doctor`` against healthy and broken fake backends: every failure is reported with its fix, the
exit code is 1 exactly when something fails, and ``--json`` is machine-readable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from typer.testing import CliRunner

from lynkr import __version__
from lynkr.cli import app
from lynkr.cli.agents import update_codex_config
from tests.cli_support import executable, fake_models, fake_ollama, free_port, runner_env
from tests.fakes.ollama_admin import FakeModel, OllamaState
from tests.fakes.threaded import ThreadedServer

runner = CliRunner()
KEY = "sk-good-key-0123456789"


@dataclass
class World:
    tmp: Path
    ollama_url: str
    ollama: OllamaState
    models_url: str
    port: int
    bin_dir: Path

    @property
    def lynkr_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env_file(self, text: str) -> None:
        (self.tmp / ".env").write_text(text)

    def healthy_env(self, **over: str) -> str:
        values = {"MODEL_PROVIDER": "ollama", "OLLAMA_ENDPOINT": self.ollama_url, "OLLAMA_MODEL": "qwen2.5-coder:7b",
                  "OLLAMA_NUM_CTX": "32768", "PORT": str(self.port), **over}
        return "".join(f"{k}={v}\n" for k, v in values.items() if v != "-")

    def doctor(self, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
        base = {"ANTHROPIC_BASE_URL": self.lynkr_url, "CODEX_HOME": str(self.tmp / "codex")}
        path = f"{self.bin_dir}:/usr/bin:/bin"
        result = runner.invoke(app, ["doctor", "--json", "--timeout", "5", *args],
                               env=runner_env(self.tmp / "home", path=path, **{**base, **env}))
        return result.exit_code, json.loads(result.output), result.output


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.chdir(tmp_path)
    bin_dir = tmp_path / "bin"
    executable(bin_dir / "claude", "#!/bin/sh\necho '2.1.197 (Claude Code)'\n")
    executable(bin_dir / "codex", "#!/bin/sh\necho 'codex-cli 0.60.0'\n")
    port = free_port()
    update_codex_config(tmp_path / "codex" / "config.toml", f"http://127.0.0.1:{port}", "qwen2.5-coder:7b")
    state = OllamaState().install(FakeModel("qwen2.5-coder:7b"), FakeModel("tiny:1b", context_length=8192))
    with fake_ollama(state) as (ourl, state), fake_models() as (murl, _):
        w = World(tmp_path, ourl, state, murl, port, bin_dir)
        w.env_file(w.healthy_env())
        yield w


def find(report: dict[str, Any], area: str, name: str) -> dict[str, Any]:
    for check in report["checks"]:
        if check["area"] == area and check["name"] == name:
            return check
    raise AssertionError(f"no check {area}/{name} in {[(c['area'], c['name']) for c in report['checks']]}")


def test_healthy_setup_passes(world: World):
    code, report, _ = world.doctor()
    assert code == 0, report
    assert report["ok"] is True and report["version"] == __version__
    assert {c["status"] for c in report["checks"]} <= {"ok", "info"}
    assert find(report, "backend ollama", "model")["detail"] == "qwen2.5-coder:7b installed"
    assert "32,768" in find(report, "backend ollama", "context")["detail"]
    assert "is free" in find(report, "lynkr", "port")["detail"]
    assert "2.1.197" in find(report, "clients", "claude")["detail"]
    assert find(report, "clients", "claude config")["status"] == "ok"
    assert find(report, "clients", "codex config")["status"] == "ok"
    assert find(report, "python", "packages")["status"] == "ok"


def test_table_output_names_each_fix(world: World):
    world.env_file(world.healthy_env(OLLAMA_MODEL="missing:7b", OLAMA_KEEP_ALIVE="5m"))
    result = runner.invoke(app, ["doctor"], env=runner_env(world.tmp / "home", path=f"{world.bin_dir}:/usr/bin:/bin",
                                                           COLUMNS="200"))
    assert result.exit_code == 1
    text = result.output
    assert "lynkr doctor" in text and "FAIL" in text
    assert "fix: ollama pull missing:7b" in text
    assert "fix: rename OLAMA_KEEP_ALIVE to OLLAMA_KEEP_ALIVE" in text
    assert "2 problems" in text


def test_healthy_table(world: World):
    result = runner.invoke(app, ["doctor"], env=runner_env(world.tmp / "home", path=f"{world.bin_dir}:/usr/bin:/bin",
                                                           ANTHROPIC_BASE_URL=world.lynkr_url, COLUMNS="200",
                                                           CODEX_HOME=str(world.tmp / "codex")))
    assert result.exit_code == 0, result.output
    assert "Everything lynkr needs is in place" in result.output


@pytest.mark.parametrize(("over", "area", "name", "detail", "fix"), [
    ({"OLAMA_MODEL": "x"}, "config", "OLAMA_MODEL", "did you mean OLLAMA_MODEL?", "rename OLAMA_MODEL to OLLAMA_MODEL"),
    ({"model_provider": "openai"}, "config", "model_provider", "did you mean MODEL_PROVIDER?", "rename"),
    ({"PORT": "eighty"}, "config", "settings", "PORT", "fix that variable in .env"),
    ({"MODEL_PROVIDER": "openai"}, "config", "settings", "needs OPENAI_API_KEY", "run lynkr setup"),
    ({"OLLAMA_MODEL": "llama9:70b"}, "backend ollama", "model", "OLLAMA_MODEL=llama9:70b is not installed "
     "(installed: qwen2.5-coder:7b, tiny:1b)", "ollama pull llama9:70b"),
    ({"OLLAMA_NUM_CTX": "-"}, "backend ollama", "context", "OLLAMA_NUM_CTX is not set", "set OLLAMA_NUM_CTX=32768"),
    ({"OLLAMA_NUM_CTX": "4096"}, "backend ollama", "context", "OLLAMA_NUM_CTX=4096 is below", "set OLLAMA_NUM_CTX="),
    ({"OLLAMA_MODEL": "tiny:1b"}, "backend ollama", "context", "trained for 8,192 tokens", "longer context"),
    ({"OLLAMA_ENDPOINT": "http://127.0.0.1:9"}, "backend ollama", "reachable", "cannot connect",
     "install Ollama"),
    ({"TIER_COMPLEX": "openai:gpt-4o"}, "backend openai", "settings", "needs OPENAI_API_KEY", "run lynkr setup"),
])
def test_each_failure_names_its_fix(world: World, over: dict[str, str], area: str, name: str, detail: str,
                                    fix: str):
    world.env_file(world.healthy_env(**over))
    code, report, _ = world.doctor()
    assert code == 1
    assert report["ok"] is False
    check = find(report, area, name)
    assert check["status"] == "fail"
    assert detail in check["detail"]
    assert fix in check["fix"]
    assert all(c["fix"] for c in report["checks"] if c["status"] == "fail")


def test_ollama_behind_auth(world: World):
    world.ollama.api_key = "ollama-key-1234567890"
    code, report, _ = world.doctor()
    assert code == 1
    assert find(report, "backend ollama", "key")["fix"].startswith("set OLLAMA_API_KEY")
    world.env_file(world.healthy_env(OLLAMA_API_KEY="ollama-key-1234567890"))
    code, report, _ = world.doctor()
    assert code == 0, report


def test_modelfile_num_ctx_is_enough(world: World):
    world.ollama.installed["qwen2.5-coder:7b"].parameters = "num_ctx 40960\nstop <|im_end|>"
    world.env_file(world.healthy_env(OLLAMA_NUM_CTX="-"))
    code, report, _ = world.doctor()
    assert code == 0, report
    assert "Modelfile" in find(report, "backend ollama", "context")["detail"]


def test_num_ctx_above_the_model_is_a_warning(world: World):
    world.env_file(world.healthy_env(OLLAMA_NUM_CTX="131072"))
    code, report, _ = world.doctor()
    assert code == 0
    check = find(report, "backend ollama", "context")
    assert check["status"] == "warn" and check["fix"] == "set OLLAMA_NUM_CTX=32768"


def test_unknown_variable_without_a_near_name_is_a_warning(world: World):
    world.env_file(world.healthy_env(MY_OWN_THING="1"))
    code, report, _ = world.doctor()
    assert code == 0
    check = find(report, "config", "MY_OWN_THING")
    assert check["status"] == "warn" and "not a variable lynkr reads" in check["detail"]


def test_tier_variables_are_known(world: World):
    world.env_file(world.healthy_env(TIER_SIMPLE="ollama:qwen2.5-coder:7b"))
    code, report, _ = world.doctor()
    assert code == 0, report
    assert not [c for c in report["checks"] if c["name"] == "TIER_SIMPLE"]


def test_openai_backend_key_and_model(world: World):
    world.env_file(world.healthy_env(MODEL_PROVIDER="openai", OPENAI_ENDPOINT=f"{world.models_url}/v1",
                                     OPENAI_API_KEY=KEY, OPENAI_MODEL="gpt-4.1"))
    code, report, _ = world.doctor()
    assert code == 0, report
    assert find(report, "backend openai", "key")["detail"] == "accepted"
    world.env_file(world.healthy_env(MODEL_PROVIDER="openai", OPENAI_ENDPOINT=f"{world.models_url}/v1",
                                     OPENAI_API_KEY="sk-wrong-000000000000"))
    code, report, _ = world.doctor()
    assert code == 1
    check = find(report, "backend openai", "key")
    assert "Incorrect API key" in check["detail"] and "OPENAI_API_KEY" in check["fix"]
    world.env_file(world.healthy_env(MODEL_PROVIDER="openai", OPENAI_ENDPOINT=f"{world.models_url}/v1",
                                     OPENAI_API_KEY=KEY, OPENAI_MODEL="gpt-4"))
    code, report, _ = world.doctor()
    assert code == 1
    assert "did you mean" in find(report, "backend openai", "model")["detail"]


def test_missing_env_file_option(world: World):
    code, report, _ = world.doctor("--env-file", str(world.tmp / "nope.env"))
    assert code == 1
    assert find(report, "config", "env file")["fix"] == "pass an existing file to --env-file"


def test_no_env_file_is_a_warning(world: World):
    (world.tmp / ".env").unlink()
    code, report, _ = world.doctor()
    check = find(report, "config", "env file")
    assert check["status"] == "warn" and "lynkr setup" in check["fix"]
    assert code == 1  # the default Ollama on :11434 is not there (nor is its model)


def _serve_health(body: dict[str, Any] | None) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        return web.json_response(body) if body else web.Response(status=404, text="not here")

    application = web.Application()
    application.router.add_get("/health", health)
    return application


def test_port_used_by_a_running_lynkr_is_fine(world: World):
    with ThreadedServer(_serve_health({"status": "ok", "version": "0.1.0"}), port=world.port):
        code, report, _ = world.doctor()
    assert code == 0, report
    assert "lynkr 0.1.0 is already running" in find(report, "lynkr", "port")["detail"]


def test_port_used_by_another_program(world: World):
    with ThreadedServer(_serve_health(None), port=world.port):
        code, report, _ = world.doctor()
    assert code == 1
    check = find(report, "lynkr", "port")
    assert "taken by another program" in check["detail"] and check["fix"].startswith("set PORT")


def test_clients_not_installed_or_not_configured(world: World):
    for name in ("claude", "codex"):
        (world.bin_dir / name).unlink()
    code, report, _ = world.doctor(ANTHROPIC_BASE_URL="")
    assert code == 0  # a missing agent is worth knowing, not a failure of lynkr
    assert find(report, "clients", "claude")["fix"] == "npm install -g @anthropic-ai/claude-code"
    assert find(report, "clients", "codex")["fix"] == "npm install -g @openai/codex"


def test_claude_pointed_elsewhere(world: World):
    code, report, _ = world.doctor(ANTHROPIC_BASE_URL="https://api.anthropic.com")
    check = find(report, "clients", "claude config")
    assert check["status"] == "warn" and "lynkr code" in check["fix"]
    assert code == 0


def test_claude_configured_in_its_settings_file(world: World):
    settings = world.tmp / "home" / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": world.lynkr_url}}))
    code, report, _ = world.doctor(ANTHROPIC_BASE_URL="")
    assert code == 0
    assert "settings.json" in find(report, "clients", "claude config")["detail"]


def test_codex_config_stale_or_broken(world: World):
    config = world.tmp / "codex" / "config.toml"
    config.write_text(config.read_text().replace(str(world.port), "1"))
    code, report, _ = world.doctor()
    check = find(report, "clients", "codex config")
    assert check["status"] == "warn" and "lynkr codex --no-launch" in check["fix"]
    config.write_text("[model_providers.lynkr\nbase_url = 1\n")
    code, report, _ = world.doctor()
    assert code == 1
    check = find(report, "clients", "codex config")
    assert "not valid TOML" in check["detail"] and "fix the TOML syntax" in check["fix"]
