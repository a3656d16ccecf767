"""``lynkr setup`` driven as a person would: in a real pseudo-terminal (pexpect), reading its prompts and
answering with keystrokes, against a fake Ollama that streams ``/api/pull`` progress and a fake key-checking
server. The .env it writes then starts lynkr."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pexpect
import pytest

from lynkr.cli.setup import ALIASES
from lynkr.providers import REGISTRY
from tests.cli_support import fake_models, fake_ollama, free_port, process_env
from tests.fakes.ollama_admin import FakeModel, OllamaState
from tests.fakes.openai_models import ModelsState

ENTER, DOWN, SPACE, CTRL_C, CLEAR_LINE = "\r", "\x1b[B", " ", "\x03", "\x15"
GOOD = "sk-or-good-key-0123456789"
BAD = "sk-or-typo-key-9999999999"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def spawn(tmp_path: Path, *args: str, **env: str) -> tuple[pexpect.spawn, io.StringIO]:
    log = io.StringIO()
    child = pexpect.spawn(sys.executable, ["-m", "lynkr", "setup", "--env-file", str(tmp_path / ".env"), *args],
                          cwd=str(tmp_path), encoding="utf-8", timeout=30, dimensions=(50, 180),
                          # a runner started as a background job ignores SIGINT, and a child inherits that:
                          # Ctrl-C must reach the wizard as it does in a terminal
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                          # no terminal answers prompt_toolkit's cursor-position queries here: don't wait for them
                          env=process_env(tmp_path / "home", TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", **env))
    child.logfile_read = log
    return child, log


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -1)


def screen(log: io.StringIO) -> str:
    return ANSI.sub("", log.getvalue())


def wizard_choices() -> list[str]:
    return [n for n in REGISTRY if n not in ALIASES]


def test_first_run_pulls_a_model_and_the_env_starts_lynkr(tmp_path: Path):
    state = OllamaState().offer(FakeModel("qwen2.5-coder:7b"))
    with fake_ollama(state) as (url, state):
        child, log = spawn(tmp_path)
        child.expect("Which backends should lynkr use")
        child.send(ENTER)  # Ollama is checked by default
        child.expect("Ollama URL")
        child.send(CLEAR_LINE + url + ENTER)
        child.expect("Which model")
        child.send(ENTER)  # the first recommended model
        child.expect("is not installed. Download it now")
        child.send("y")
        child.expect("pulling manifest")
        child.expect(r"[\d.]+ ?[kM]B/s")  # the progress bar's transfer rate
        child.expect("qwen2.5-coder:7b downloaded")
        child.expect("Context window")
        child.send(ENTER)
        child.expect("tool call ok")
        child.expect("wrote")
        child.expect("lynkr code")
        assert finish(child) == 0, screen(log)

    text = screen(log)
    assert re.search(r"[\d.]+/[\d.]+ MB", text), text  # bytes done / total
    assert re.search(r"\d:\d\d:\d\d", text)  # ETA
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:8081" in text
    env = (tmp_path / ".env").read_text()
    assert f"OLLAMA_ENDPOINT={url}" in env and "OLLAMA_MODEL=qwen2.5-coder:7b" in env
    assert "OLLAMA_NUM_CTX=32768" in env and "MODEL_PROVIDER=ollama" in env
    assert [p for p, _ in state.requests].count("/api/pull") == 1

    # the written .env starts lynkr, and lynkr answers from the Ollama that setup configured
    with fake_ollama(state) as (url2, _):
        (tmp_path / ".env").write_text(env.replace(url, url2))
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "lynkr", "start", "--env-file", str(tmp_path / ".env"),
                                 "--port", str(port)], cwd=tmp_path, env=process_env(tmp_path / "home"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            status, ready = wait_ready(f"http://127.0.0.1:{port}/health/ready")
            assert status == 200 and ready["model"] == "qwen2.5-coder:7b"
            status, answer = http_json(f"http://127.0.0.1:{port}/v1/messages", {
                "model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})
            assert status == 200, answer
            assert answer["content"][0]["text"] == "Hello from qwen2.5-coder:7b."
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()


def http_json(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def wait_ready(url: str) -> tuple[int, Any]:
    for _ in range(150):
        try:
            return http_json(url)
        except urllib.error.URLError:
            time.sleep(0.1)
    pytest.fail(f"lynkr did not start ({url})")


OLD = "# mine\nMODEL_PROVIDER=ollama\nOLLAMA_MODEL=qwen2.5-coder:7b\nOLLAMA_NUM_CTX=32768\n"


def choose(child: pexpect.spawn, want: set[str], checked: set[str]) -> None:
    """Toggle checkbox entries so that exactly ``want`` is checked, moving down the list like a person."""
    for name in wizard_choices():
        if (name in want) != (name in checked):
            child.send(SPACE)
        child.send(DOWN)
    child.send(ENTER)


def test_second_backend_with_masked_key_retry_tiers_diff_and_backup(tmp_path: Path):
    (tmp_path / ".env").write_text(OLD)
    ollama = OllamaState().install(FakeModel("qwen2.5-coder:7b"))
    models = ModelsState(key=GOOD, models=["openai/gpt-4o-mini", "anthropic/claude-sonnet-4"])
    with fake_ollama(ollama) as (ourl, _), fake_models(models) as (murl, models):
        child, log = spawn(tmp_path, OLLAMA_ENDPOINT=ourl, OPENROUTER_ENDPOINT=f"{murl}/api/v1/chat/completions")
        child.expect("Which backends should lynkr use")
        choose(child, {"ollama", "openrouter"}, checked={"ollama"})
        child.expect("Which one serves requests by default")
        child.send(ENTER)  # ollama, as before
        child.expect("Ollama URL")
        child.send(ENTER)  # the URL from the environment
        child.expect("Which model")
        child.send(ENTER)
        child.expect("Context window")
        child.send(ENTER)
        child.expect("tool call ok")
        child.expect("Model \\(OPENROUTER_MODEL\\)")
        child.send(ENTER)
        child.expect("OPENROUTER_API_KEY \\(input hidden")
        child.send(BAD + ENTER)
        child.expect("openrouter refused the key")
        child.expect("OPENROUTER_API_KEY \\(input hidden")
        child.send(GOOD + ENTER)
        child.expect("openrouter ok")
        child.expect("Tier routing preset")
        child.send(ENTER)  # local first
        child.expect("Replace")
        child.send("y")
        child.expect("wrote")
        assert finish(child) == 0, screen(log)

    text = screen(log)
    assert GOOD not in text and BAD not in text  # masked input: the keys never reach the screen
    assert "+MODEL_PROVIDER=ollama" not in text  # unchanged lines are not in the diff
    assert "+TIER_SIMPLE=ollama:qwen2.5-coder:7b" in text and "+OPENROUTER_API_KEY=sk-…6789" in text
    assert (tmp_path / ".env.bak").read_text() == OLD
    env = (tmp_path / ".env").read_text()
    assert env.startswith("# mine\nMODEL_PROVIDER=ollama\n")
    assert f"OPENROUTER_API_KEY={GOOD}" in env
    assert "TIER_COMPLEX=openrouter:openai/gpt-4o-mini" in env
    keys_tried = [h.get("Authorization") for p, h in models.requests if p == "/api/v1/key"]
    assert keys_tried == [f"Bearer {BAD}", f"Bearer {GOOD}"]


def test_ctrl_c_at_the_last_question_leaves_env_untouched(tmp_path: Path):
    (tmp_path / ".env").write_text(OLD)
    with fake_ollama(OllamaState().install(FakeModel("qwen2.5-coder:7b"), FakeModel("qwen3:8b"))) as (url, _):
        child, log = spawn(tmp_path, OLLAMA_ENDPOINT=url)
        child.expect("Which backends should lynkr use")
        child.send(ENTER)
        child.expect("Ollama URL")
        child.send(ENTER)
        child.expect("Which model")
        child.send(DOWN + ENTER)  # qwen3:8b: a change, so there is something to write
        child.expect("Context window")
        child.send(ENTER)
        child.expect("Replace")
        child.send(CTRL_C)
        child.expect("setup cancelled")
        assert finish(child) == 130, screen(log)
    assert (tmp_path / ".env").read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".env")) == [".env"]


def test_ctrl_c_during_the_download_writes_nothing(tmp_path: Path):
    state = OllamaState().offer(FakeModel("qwen2.5-coder:7b"))
    state.pull_delay = 3.0  # the download must still be running when Ctrl-C lands, on a loaded machine too
    with fake_ollama(state) as (url, _):
        child, log = spawn(tmp_path, OLLAMA_ENDPOINT=url)
        child.expect("Which backends should lynkr use")
        child.send(ENTER)
        child.expect("Ollama URL")
        child.send(ENTER)
        child.expect("Which model")
        child.send(ENTER)
        child.expect("Download it now")
        child.send("y")
        child.expect("pulling manifest")
        child.sendintr()
        child.expect("download interrupted")
        child.expect("setup cancelled")
        assert finish(child) == 130, screen(log)
    assert not any(p.name.startswith(".env") for p in tmp_path.iterdir())


def test_missing_ollama_offers_the_installer_and_respects_no(tmp_path: Path):
    child, log = spawn(tmp_path, OLLAMA_ENDPOINT=f"http://127.0.0.1:{free_port()}", PATH="/nonexistent")
    child.expect("Which backends should lynkr use")
    child.send(ENTER)
    child.expect("Ollama URL")
    child.send(ENTER)
    child.expect("Ollama is not installed")
    child.expect("Install Ollama now with the official installer \\(curl -fsSL https://ollama.com/install.sh")
    child.send("n")
    child.expect("lynkr needs Ollama")
    assert finish(child) == 1, screen(log)
    assert not (tmp_path / ".env").exists()
