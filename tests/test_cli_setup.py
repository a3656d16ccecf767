"""``lynkr setup --non-interactive``: every path through the wizard without a terminal, against fake Ollama
and fake key-checking servers, and every failure message. (The interactive wizard is driven in a real
pseudo-terminal in test_cli_setup_pty.py.)"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lynkr.cli import app, setup_ollama
from lynkr.cli.ollama import install_command
from tests.cli_support import (
    executable,
    fake_models,
    fake_ollama,
    fake_ollama_binary,
    free_port,
    kill_pidfile,
    runner_env,
)
from tests.fakes.ollama_admin import FakeModel, OllamaState
from tests.fakes.openai_models import ModelsState

runner = CliRunner()
GOOD = "sk-good-key-0123456789"


def setup(tmp_path: Path, *args: str, path: str | None = None, **env: str):
    env_file = tmp_path / ".env"
    result = runner.invoke(app, ["setup", "--non-interactive", "--env-file", str(env_file), *args],
                           env=runner_env(tmp_path / "home", path=path, **env))
    return result, env_file


def env_values(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(path).items()}


def test_ollama_with_the_model_installed(tmp_path: Path):
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"), FakeModel("llama3:8b"))) as (url, state):
        result, env_file = setup(tmp_path, "--provider", "ollama", "--endpoint", url)
    assert result.exit_code == 0, result.output
    values = env_values(env_file)
    assert values["MODEL_PROVIDER"] == "ollama"
    assert values["OLLAMA_ENDPOINT"] == url
    assert values["OLLAMA_MODEL"] == "qwen2.5-coder:7b"  # the installed recommended one
    assert values["OLLAMA_NUM_CTX"] == "32768"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # the tool-call check really asked the model with a tool
    chats = [body for path, body in state.requests if path == "/api/chat"]
    assert chats and chats[0]["tools"][0]["function"]["name"] == "read_file"
    assert "tool call ok" in result.output
    assert "lynkr start" in result.output and "lynkr code" in result.output and "/v1" in result.output
    assert not list(tmp_path.glob(".env.*.tmp"))


def test_ollama_pulls_a_missing_model_with_progress(tmp_path: Path):
    state = OllamaState().offer(FakeModel("qwen3:8b", context_length=40_960))
    state.pull_delay = 0
    with fake_ollama(state) as (url, state):
        result, env_file = setup(tmp_path, "--endpoint", url, "--model", "qwen3:8b")
    assert result.exit_code == 0, result.output
    assert "qwen3:8b:latest" not in state.installed and "qwen3:8b" in state.installed
    assert "pulling manifest" in result.output and "success" in result.output
    assert "qwen3:8b downloaded" in result.output
    assert env_values(env_file)["OLLAMA_MODEL"] == "qwen3:8b"


def test_num_ctx_defaults_to_the_models_limit_when_smaller(tmp_path: Path):
    with fake_ollama(OllamaState().install(FakeModel("small:1b", context_length=8192))) as (url, _):
        result, env_file = setup(tmp_path, "--endpoint", url, "--model", "small:1b")
    assert result.exit_code == 0, result.output
    assert env_values(env_file)["OLLAMA_NUM_CTX"] == "8192"
    assert "trained for 8,192 tokens" in result.output


def test_pull_failure_names_the_reason(tmp_path: Path):
    state = OllamaState().offer(FakeModel("qwen3:8b"))
    state.pull_error_after, state.pull_delay = 3, 0
    with fake_ollama(state) as (url, _):
        result, env_file = setup(tmp_path, "--endpoint", url, "--model", "qwen3:8b")
    assert result.exit_code == 1
    assert "could not download qwen3:8b: max retries exceeded" in result.output
    assert not env_file.exists()


def test_unknown_model_cannot_be_pulled(tmp_path: Path):
    with fake_ollama() as (url, _):
        result, env_file = setup(tmp_path, "--endpoint", url, "--model", "nope:1b")
    assert result.exit_code == 1
    assert "could not download nope:1b" in result.output and "file does not exist" in result.output
    assert not env_file.exists()


def test_no_pull_leaves_the_missing_model_to_the_user(tmp_path: Path):
    with fake_ollama(OllamaState().offer(FakeModel("qwen3:8b"))) as (url, state):
        result, env_file = setup(tmp_path, "--endpoint", url, "--model", "qwen3:8b", "--no-pull")
    assert result.exit_code == 1
    assert "qwen3:8b is not installed: run ollama pull qwen3:8b" in result.output
    assert not any(path == "/api/pull" for path, _ in state.requests)
    assert not env_file.exists()


def test_model_without_tool_calls_is_refused_unless_no_check(tmp_path: Path):
    with fake_ollama(OllamaState().install(FakeModel("gemma:2b", tools=False))) as (url, _):
        result, env_file = setup(tmp_path, "--endpoint", url, "--model", "gemma:2b")
        assert result.exit_code == 1
        assert "gemma:2b failed the tool-call check" in result.output
        assert "does not support tools" in result.output and "--no-check" in result.output
        assert not env_file.exists()
        result, env_file = setup(tmp_path, "--endpoint", url, "--model", "gemma:2b", "--no-check")
    assert result.exit_code == 0, result.output
    assert env_values(env_file)["OLLAMA_MODEL"] == "gemma:2b"


def test_ollama_behind_auth_needs_its_key(tmp_path: Path):
    state = OllamaState(api_key="ollama-secret-key-123").install(FakeModel("qwen2.5-coder:7b"))
    with fake_ollama(state) as (url, _):
        result, _ = setup(tmp_path, "--endpoint", url)
        assert result.exit_code == 1
        assert "--set OLLAMA_API_KEY=... is required with --non-interactive" in result.output
        result, env_file = setup(tmp_path, "--endpoint", url, "--set", "OLLAMA_API_KEY=ollama-secret-key-123")
    assert result.exit_code == 0, result.output
    assert env_values(env_file)["OLLAMA_API_KEY"] == "ollama-secret-key-123"


def test_remote_ollama_that_does_not_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # another machine's Ollama (played by a closed loopback port): nothing to install or start here
    monkeypatch.setattr(setup_ollama, "is_local", lambda endpoint: False)
    url = f"http://127.0.0.1:{free_port()}"
    result, env_file = setup(tmp_path, "--endpoint", url, "--no-check")
    assert result.exit_code == 1
    assert f"cannot reach Ollama at {url}" in result.output and "check the URL" in result.output
    assert not env_file.exists()


def test_missing_ollama_is_not_installed_without_consent(tmp_path: Path):
    port = free_port()
    result, env_file = setup(tmp_path, "--endpoint", f"http://127.0.0.1:{port}", path=str(tmp_path / "empty-bin"))
    assert result.exit_code == 1
    assert "Ollama is not installed" in result.output
    assert "lynkr needs Ollama" in result.output and "install it" in result.output
    assert not env_file.exists()


def test_install_ollama_runs_the_installer_then_starts_serve(tmp_path: Path):
    """--install-ollama runs the (injected) installer; here it drops a fake ``ollama`` on PATH whose
    ``serve`` starts the fake server; setup then starts it, pulls the model, checks it, writes .env."""
    bin_dir, pidfile, port = tmp_path / "bin", tmp_path / "ollama.pid", free_port()
    template = tmp_path / "template"
    fake_ollama_binary(template, pidfile)
    installer = executable(tmp_path / "install.sh", f"#!/bin/sh\necho installing ollama\nmkdir -p {bin_dir}\n"
                                                    f"cp {template / 'ollama'} {bin_dir}/ollama\n")
    try:
        result, env_file = setup(tmp_path, "--endpoint", f"http://127.0.0.1:{port}", "--install-ollama",
                                 path=f"{bin_dir}:{os.environ['PATH']}", LYNKR_OLLAMA_INSTALLER=str(installer))
    finally:
        kill_pidfile(pidfile)
    assert result.exit_code == 0, result.output
    assert "started ollama serve" in result.output
    assert "qwen2.5-coder:7b downloaded" in result.output
    assert env_values(env_file)["OLLAMA_ENDPOINT"] == f"http://127.0.0.1:{port}"
    assert (tmp_path / "home" / ".lynkr" / "ollama-serve.log").is_file()


def test_failing_installer_says_so(tmp_path: Path):
    installer = executable(tmp_path / "install.sh", "#!/bin/sh\nexit 3\n")
    result, env_file = setup(tmp_path, "--endpoint", f"http://127.0.0.1:{free_port()}", "--install-ollama",
                             path=str(tmp_path / "empty-bin") + ":/bin:/usr/bin",
                             LYNKR_OLLAMA_INSTALLER=str(installer))
    assert result.exit_code == 1
    assert "the Ollama installer failed (exit 3)" in result.output
    assert not env_file.exists()


def test_installed_but_stopped_ollama_is_not_started_when_told_not_to(tmp_path: Path):
    fake_ollama_binary(tmp_path / "bin", tmp_path / "ollama.pid")
    result, _ = setup(tmp_path, "--endpoint", f"http://127.0.0.1:{free_port()}", "--no-start-ollama",
                      path=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    assert result.exit_code == 1
    assert "start Ollama (ollama serve)" in result.output
    assert not (tmp_path / "ollama.pid").exists()


def test_installed_but_stopped_ollama_is_started(tmp_path: Path):
    pidfile, port = tmp_path / "ollama.pid", free_port()
    fake_ollama_binary(tmp_path / "bin", pidfile, installed="qwen2.5-coder:7b")
    try:
        result, env_file = setup(tmp_path, "--endpoint", f"http://127.0.0.1:{port}",
                                 path=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    finally:
        kill_pidfile(pidfile)
    assert result.exit_code == 0, result.output
    assert "started ollama serve" in result.output
    assert env_values(env_file)["OLLAMA_MODEL"] == "qwen2.5-coder:7b"


def test_installer_is_offered_on_linux_and_macos_only():
    assert install_command("linux") == ["sh", "-c", "curl -fsSL https://ollama.com/install.sh | sh"]
    assert install_command("darwin") is not None
    assert install_command("win32") is None
    assert install_command("win32", override="/tmp/fake-installer --flag") == ["/tmp/fake-installer", "--flag"]


# -- keys checked with a cheap real call ----------------------------------------------------------------


def test_openai_key_is_checked_and_written(tmp_path: Path):
    with fake_models() as (url, state):
        result, env_file = setup(tmp_path, "--provider", "openai", "--api-key", GOOD, "--endpoint", f"{url}/v1",
                                 "--model", "gpt-4.1")
    assert result.exit_code == 0, result.output
    values = env_values(env_file)
    assert values["MODEL_PROVIDER"] == "openai"
    assert values["OPENAI_API_KEY"] == GOOD
    assert values["OPENAI_MODEL"] == "gpt-4.1"
    assert values["OPENAI_ENDPOINT"] == f"{url}/v1"
    assert state.requests[0][0] == "/v1/models"
    assert state.requests[0][1]["Authorization"] == f"Bearer {GOOD}"
    assert GOOD not in result.output


def test_openai_key_from_the_environment(tmp_path: Path):
    with fake_models() as (url, _):
        result, env_file = setup(tmp_path, "--provider", "openai", "--endpoint", f"{url}/v1", OPENAI_API_KEY=GOOD)
    assert result.exit_code == 0, result.output
    assert env_values(env_file)["OPENAI_API_KEY"] == GOOD


def test_openai_bad_key_names_the_variable(tmp_path: Path):
    with fake_models() as (url, _):
        result, env_file = setup(tmp_path, "--provider", "openai", "--api-key", "sk-wrong-9876543210",
                                 "--endpoint", f"{url}/v1")
    assert result.exit_code == 1
    assert "openai refused the key" in result.output and "Incorrect API key" in result.output
    assert "set OPENAI_API_KEY to a valid key" in result.output
    assert not env_file.exists()


def test_openai_model_not_offered_suggests_one(tmp_path: Path):
    with fake_models() as (url, _):
        result, _ = setup(tmp_path, "--provider", "openai", "--api-key", GOOD, "--endpoint", f"{url}/v1",
                          "--model", "gpt-4o-mni")
    assert result.exit_code == 1
    assert "OPENAI_MODEL=gpt-4o-mni is not offered here (did you mean gpt-4o-mini" in result.output


def test_key_is_required_without_a_terminal(tmp_path: Path):
    result, env_file = setup(tmp_path, "--provider", "openrouter", "--no-check")
    assert result.exit_code == 1
    assert "--api-key is required with --non-interactive" in result.output
    assert not env_file.exists()


def test_openrouter_key_is_checked_on_its_key_endpoint(tmp_path: Path):
    state = ModelsState(models=["openai/gpt-4o-mini", "anthropic/claude-sonnet-4"])
    with fake_models(state) as (url, state):
        endpoint = f"{url}/api/v1/chat/completions"
        result, _ = setup(tmp_path, "--provider", "openrouter", "--api-key", "sk-or-wrong-000000",
                          "--endpoint", endpoint)
        assert result.exit_code == 1
        assert "openrouter refused the key" in result.output
        result, env_file = setup(tmp_path, "--provider", "openrouter", "--api-key", GOOD, "--endpoint", endpoint)
    assert result.exit_code == 0, result.output
    assert {p for p, _ in state.requests} == {"/api/v1/models", "/api/v1/key"}
    assert env_values(env_file)["OPENROUTER_MODEL"] == "openai/gpt-4o-mini"


def test_azure_needs_its_resource_url_and_checks_the_key(tmp_path: Path):
    with fake_models() as (url, state):
        result, _ = setup(tmp_path, "--provider", "azure-openai", "--api-key", GOOD)
        assert result.exit_code == 1
        assert "--set AZURE_OPENAI_ENDPOINT=... is required with --non-interactive" in result.output
        result, env_file = setup(tmp_path, "--provider", "azure-openai", "--api-key", GOOD, "--endpoint", url,
                                 "--model", "my-gpt4o")
    assert result.exit_code == 0, result.output
    assert state.requests[-1][0] == "/openai/models" and state.requests[-1][1]["api-key"] == GOOD
    values = env_values(env_file)
    assert values["AZURE_OPENAI_ENDPOINT"] == url and values["AZURE_OPENAI_DEPLOYMENT"] == "my-gpt4o"


def test_unreachable_backend(tmp_path: Path):
    result, _ = setup(tmp_path, "--provider", "openai", "--api-key", GOOD, "--endpoint",
                      f"http://127.0.0.1:{free_port()}/v1")
    assert result.exit_code == 1
    assert "cannot connect" in result.output and "check OPENAI_ENDPOINT" in result.output


def test_llamacpp_without_key_lists_models(tmp_path: Path):
    with fake_models(ModelsState(key=None, models=["qwen2.5-coder-7b-instruct-q4_k_m.gguf"])) as (url, _):
        result, env_file = setup(tmp_path, "--provider", "llamacpp", "--endpoint", url)
    assert result.exit_code == 0, result.output
    assert env_values(env_file)["LLAMACPP_ENDPOINT"] == url
    assert "qwen2.5-coder-7b-instruct" in result.output


# -- tiers, extra variables -----------------------------------------------------------------------------


def test_two_backends_with_a_tier_preset(tmp_path: Path):
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"))) as (ourl, _), fake_models() as (murl, _):
        result, env_file = setup(tmp_path, "--provider", "ollama", "--provider", "openai", "--endpoint", ourl,
                                 "--set", f"OPENAI_ENDPOINT={murl}/v1", "--set", f"OPENAI_API_KEY={GOOD}",
                                 "--tiers", "local-first")
    assert result.exit_code == 0, result.output
    values = env_values(env_file)
    assert values["MODEL_PROVIDER"] == "ollama"
    assert values["TIER_SIMPLE"] == values["TIER_MEDIUM"] == "ollama:qwen2.5-coder:7b"
    assert values["TIER_COMPLEX"] == values["TIER_REASONING"] == "openai:gpt-4o"
    text = env_file.read_text()
    assert "# Tier routing" in text and text.index("# Tier routing") < text.index("TIER_SIMPLE=")


def test_explicit_tier(tmp_path: Path):
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"))) as (url, _):
        result, env_file = setup(tmp_path, "--endpoint", url, "--tier", "reasoning=openrouter:deepseek/deepseek-r1")
    assert result.exit_code == 0, result.output
    values = env_values(env_file)
    assert values["TIER_REASONING"] == "openrouter:deepseek/deepseek-r1"
    assert "TIER_SIMPLE" not in values


@pytest.mark.parametrize(("args", "message"), [
    (["--tier", "hard=openai:gpt-4o"], "the tiers are simple, medium, complex and reasoning"),
    (["--tier", "complex=gpt-4o"], "write it as TIER=provider:model"),
    (["--tiers", "local-first"], "--tiers local-first: choose one of none"),
    (["--set", "OLAMA_MODEL=x"], "--set OLAMA_MODEL: not a lynkr variable (did you mean OLLAMA_MODEL?)"),
    (["--provider", "olama"], "--provider olama: not a backend lynkr knows"),
])
def test_bad_flags_are_named(tmp_path: Path, args: list[str], message: str):
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"))) as (url, _):
        result, env_file = setup(tmp_path, "--endpoint", url, *args)
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    assert not env_file.exists()


def test_set_needs_key_equals_value(tmp_path: Path):
    result, _ = setup(tmp_path, "--set", "NOEQUALS")
    assert result.exit_code == 2
    assert "--set NOEQUALS: write it as KEY=VALUE" in result.output


def test_port_and_extra_variables_are_written(tmp_path: Path):
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"))) as (url, _):
        result, env_file = setup(tmp_path, "--endpoint", url, "--port", "9090", "--set", "LOG_LEVEL=debug")
    assert result.exit_code == 0, result.output
    values = env_values(env_file)
    assert values["PORT"] == "9090" and values["LOG_LEVEL"] == "debug"
    assert "http://127.0.0.1:9090" in result.output


# -- never overwrite silently ---------------------------------------------------------------------------


OLD = "# my settings\nMODEL_PROVIDER=openai\nOPENAI_API_KEY=sk-old-secret-key-55555\nLOG_LEVEL=debug\n"


def test_existing_env_is_not_replaced_without_yes(tmp_path: Path):
    (tmp_path / ".env").write_text(OLD)
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"))) as (url, _):
        result, env_file = setup(tmp_path, "--provider", "ollama", "--endpoint", url)
    assert result.exit_code == 1
    assert "exists and differs; pass --yes to replace it" in " ".join(result.output.split())
    assert env_file.read_text() == OLD
    assert not (tmp_path / ".env.bak").exists()
    assert "-MODEL_PROVIDER=openai" in result.output and "+MODEL_PROVIDER=ollama" in result.output
    assert "sk-old-secret-key-55555" not in result.output  # the diff masks keys
    assert "sk-…5555" in result.output


def test_yes_replaces_keeping_a_backup_and_the_users_lines(tmp_path: Path):
    (tmp_path / ".env").write_text(OLD)
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"))) as (url, _):
        result, env_file = setup(tmp_path, "--provider", "ollama", "--endpoint", url, "--yes")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".env.bak").read_text() == OLD
    text = env_file.read_text()
    assert text.startswith("# my settings\nMODEL_PROVIDER=ollama\n")  # edited in place, comment kept
    assert "OPENAI_API_KEY=sk-old-secret-key-55555" in text and "LOG_LEVEL=debug" in text
    assert ".env.bak" in result.output


def test_same_content_is_not_rewritten(tmp_path: Path):
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"))) as (url, _):
        result, env_file = setup(tmp_path, "--endpoint", url)
        assert result.exit_code == 0
        before = env_file.stat().st_ino
        result, _ = setup(tmp_path, "--endpoint", url)
    assert result.exit_code == 0, result.output
    assert "nothing to write" in result.output
    assert env_file.stat().st_ino == before  # an atomic rewrite would be a new file
    assert not (tmp_path / ".env.bak").exists()
