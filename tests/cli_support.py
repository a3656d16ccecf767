"""Helpers for the command-line tests (tests/test_cli_*.py): a clean environment, fake executables, fake
servers in threads, free ports."""

from __future__ import annotations

import os
import socket
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lynkr.cli.envfile import known_names
from tests.fakes import ollama_admin, openai_models
from tests.fakes.threaded import ThreadedServer

REPO = Path(__file__).resolve().parent.parent

# variables that would change what the commands see
AGENT_VARIABLES = ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CODEX_HOME", "LYNKR_API_KEY",
                   "LYNKR_CLAUDE_BIN", "LYNKR_CODEX_BIN", "LYNKR_OLLAMA_INSTALLER", "LYNKR_OLLAMA_BINARY",
                   "OLLAMA_HOST")


def runner_env(home: Path, path: str | None = None, **extra: str) -> dict[str, str | None]:
    """For CliRunner.invoke(env=...): every lynkr variable removed, HOME in the test's directory."""
    env: dict[str, str | None] = {name: None for name in (*known_names(), *AGENT_VARIABLES)}
    env["HOME"] = str(home)
    if path is not None:
        env["PATH"] = path
    env.update(extra)
    return env


def process_env(home: Path, **extra: str) -> dict[str, str]:
    """For a child process: the same, plus PYTHONPATH so ``python -m lynkr`` and the fakes import from here."""
    drop = {*known_names(), *AGENT_VARIABLES}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HOME=str(home), PYTHONPATH=str(REPO), **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_ollama_binary(bin_dir: Path, pidfile: Path, installed: str = "", catalog: str = "qwen2.5-coder:7b") -> Path:
    """An ``ollama`` whose ``serve`` runs the fake Ollama on $OLLAMA_HOST, as the real one would."""
    return executable(bin_dir / "ollama", f"""#!/bin/sh
if [ "$1" = "serve" ]; then
  PYTHONPATH={REPO} exec {sys.executable} -m tests.fakes.ollama_admin --pidfile {pidfile} \\
    --installed "{installed}" --catalog "{catalog}"
fi
echo "ollama version is 0.12.0"
""")


@contextmanager
def fake_ollama(state: ollama_admin.OllamaState | None = None) -> Iterator[tuple[str, ollama_admin.OllamaState]]:
    state = state or ollama_admin.OllamaState()
    with ThreadedServer(ollama_admin.make_app(state)) as server:
        yield server.url, state


@contextmanager
def fake_models(state: openai_models.ModelsState | None = None) -> Iterator[tuple[str, openai_models.ModelsState]]:
    state = state or openai_models.ModelsState()
    with ThreadedServer(openai_models.make_app(state)) as server:
        yield server.url, state


def kill_pidfile(pidfile: Path) -> None:
    """Stop a background server a command under test started (it wrote its pid), and reap what the CLI
    started detached in this process (lynkr.cli.ollama.DETACHED), so no zombie or warning outlives the test."""
    import contextlib
    import signal
    import subprocess

    from lynkr.cli.ollama import DETACHED

    if pidfile.is_file():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    for proc in list(DETACHED):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
            DETACHED.remove(proc)
