"""``lynkr config show`` (effective settings, where each came from, secrets masked) and ``lynkr --version``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lynkr import __version__
from lynkr.cli import app
from tests.cli_support import runner_env

runner = CliRunner()
SECRET = "sk-proj-abcdefghijklmnop1234"


@pytest.fixture
def env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"MODEL_PROVIDER=openai\nOPENAI_API_KEY={SECRET}\nOPENAI_MODEL=gpt-4.1\n"
                                   "TIER_COMPLEX=openai:gpt-4.1\n")
    return tmp_path


def show(tmp_path: Path, *args: str, **env: str):
    return runner.invoke(app, ["config", "show", *args], env=runner_env(tmp_path / "home", COLUMNS="200", **env))


def test_version_flag():
    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0 and result.output.strip() == f"lynkr {__version__}"


def test_config_show_masks_secrets_and_names_sources(env_dir: Path):
    result = show(env_dir, PORT="9999")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "sk-…1234" in result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 3}
    assert ".env" in lines["OPENAI_MODEL"] and "gpt-4.1" in lines["OPENAI_MODEL"]
    assert "environment" in lines["PORT"] and "9999" in lines["PORT"]
    assert "default" in lines["LYNKR_HOST"]
    assert "openai:gpt-4.1" in lines["TIER_COMPLEX"]
    assert "REQUEST_TIMEOUT_MS" not in lines  # defaults only with --all


def test_config_show_json_and_all(env_dir: Path):
    result = show(env_dir, "--json", "--all")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["OPENAI_API_KEY"] == {"value": "sk-…1234", "source": ".env"}
    assert data["MODEL_PROVIDER"]["value"] == "openai"
    assert data["REQUEST_TIMEOUT_MS"] == {"value": 600000, "source": "default"}
    assert SECRET not in result.output


def test_config_show_short_secret_is_fully_masked(env_dir: Path):
    (env_dir / ".env").write_text("MODEL_PROVIDER=openai\nOPENAI_API_KEY=short\n")
    data = json.loads(show(env_dir, "--json").output)
    assert data["OPENAI_API_KEY"]["value"] == "****"


def test_config_show_with_a_bad_setting(env_dir: Path):
    (env_dir / ".env").write_text("PORT=lots\n")
    result = show(env_dir)
    assert result.exit_code == 2
    assert result.output.startswith("lynkr: PORT:")


def test_config_show_another_env_file(tmp_path: Path, env_dir: Path):
    other = tmp_path / "other.env"
    other.write_text("OLLAMA_MODEL=qwen3:8b\n")
    data = json.loads(show(env_dir, "--json", "--env-file", str(other)).output)
    assert data["OLLAMA_MODEL"] == {"value": "qwen3:8b", "source": str(other)}
    assert data["MODEL_PROVIDER"]["value"] == "ollama"


def test_config_without_subcommand_shows_help(env_dir: Path):
    result = runner.invoke(app, ["config"])
    assert "show" in result.output
