"""Wiring coding agents to lynkr: find or start a lynkr in the background, then launch Claude Code or
Codex pointed at it. Used by ``lynkr code``, ``lynkr codex``, ``lynkr doctor`` and ``lynkr setup``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import tomlkit
from tomlkit.items import Table

from lynkr.cli.envfile import atomic_write, backup_path
from lynkr.cli.net import fetch
from lynkr.cli.ollama import DETACHED
from lynkr.cli.start import _url_host
from lynkr.config import Settings

# What coding agents send as their API key until lynkr checks keys of its own.
CLIENT_KEY = "lynkr"
CODEX_KEY_VARIABLE = "LYNKR_API_KEY"

# Keep Claude Code from talking to anyone but lynkr (telemetry, error reports, update checks).
QUIET_TRAFFIC = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
}
# Variables that would send Claude Code somewhere else or fight the key we give it.
CLAUDE_CONFLICTS = ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")

CLAUDE_INSTALL = "npm install -g @anthropic-ai/claude-code"
CODEX_INSTALL = "npm install -g @openai/codex"


def url_for(host: str, port: int) -> str:
    return f"http://{_url_host(host)}:{port}"


def base_url(settings: Settings) -> str:
    return url_for(settings.host, settings.port)


def state_dir() -> Path:
    return Path.home() / ".lynkr"


@dataclass(frozen=True)
class Found:
    what: Literal["lynkr", "other", "nothing"]
    detail: str = ""
    version: str = ""


async def probe(url: str, timeout: float = 2.0) -> Found:
    """Is a lynkr answering at ``url``, something else, or nothing at all?"""
    reply = await fetch("GET", url + "/health", timeout=timeout)
    if not reply.reached:
        return Found("nothing", reply.error)
    data = reply.data if isinstance(reply.data, dict) else {}
    if reply.ok and data.get("status") == "ok" and "version" in data:
        return Found("lynkr", f"lynkr {data['version']}", str(data["version"]))
    return Found("other", f"HTTP {reply.status} from {url}/health")


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class Background:
    pid: int
    log: Path


class StartFailed(Exception):
    pass


def start_command(settings: Settings, env_file: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "lynkr", "start", "--host", settings.host, "--port", str(settings.port)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    return cmd


async def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (await fetch("GET", url + "/health/ready", timeout=2.0)).ok:
            return True
        if proc is not None and proc.poll() is not None:
            return False
        await asyncio.sleep(0.2)
    return False


def tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_background(settings: Settings, env_file: Path | None, seconds: float = 30.0) -> Background:
    """``lynkr start`` as a detached process (it outlives this command); wait until /health/ready."""
    run = state_dir() / "run"
    run.mkdir(parents=True, exist_ok=True)
    log = run / f"lynkr-{settings.port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(start_command(settings, env_file), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    DETACHED.append(proc)
    (run / f"lynkr-{settings.port}.pid").write_text(f"{proc.pid}\n")
    if not asyncio.run(wait_ready(base_url(settings), proc, seconds)):
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        raise StartFailed(f"lynkr did not become ready (log {log}):\n{tail(log)}")
    return Background(proc.pid, log)


def claude_env(url: str, environ: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if k not in CLAUDE_CONFLICTS}
    env.update(ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY=CLIENT_KEY, **QUIET_TRAFFIC)
    return env


def exec_agent(argv: list[str], env: dict[str, str]) -> NoReturn:
    """Replace this process with the agent (so it owns the terminal); Windows has no exec: run and exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # pragma: no cover
        raise SystemExit(subprocess.call(argv, env=env))
    os.execvpe(argv[0], argv, env)


# -- Codex ----------------------------------------------------------------------------------------------


def codex_home(environ: Mapping[str, str]) -> Path:
    return Path(environ["CODEX_HOME"]).expanduser() if environ.get("CODEX_HOME") else Path.home() / ".codex"


class CodexConfigError(Exception):
    pass


def read_codex_config(path: Path) -> tomlkit.TOMLDocument:
    if not path.is_file():
        return tomlkit.document()
    try:
        return tomlkit.parse(path.read_text("utf-8"))
    except Exception as exc:  # tomlkit raises its own ParseError family
        raise CodexConfigError(f"{path} is not valid TOML: {exc}") from None


def codex_provider(url: str) -> dict[str, Any]:
    return {"name": "lynkr", "base_url": f"{url}/v1", "wire_api": "responses", "env_key": CODEX_KEY_VARIABLE}


def _table(parent: Any, key: str, *, super_table: bool = False) -> Table:
    if key not in parent:
        parent[key] = tomlkit.table(is_super_table=super_table)
    table = parent[key]
    if not isinstance(table, Table):
        raise CodexConfigError(f"[{key}] in the Codex config is not a table")
    return table


def update_codex_config(path: Path, url: str, model: str) -> bool:
    """Add or update ``[model_providers.lynkr]`` and ``[profiles.lynkr]``; everything else in the file (other
    providers, comments, the user's default model) stays as it was. Returns whether the file changed."""
    doc = read_codex_config(path)
    before = tomlkit.dumps(doc)
    provider = _table(_table(doc, "model_providers", super_table=True), "lynkr")
    for key, value in codex_provider(url).items():
        if provider.get(key) != value:
            provider[key] = value
    profile = _table(_table(doc, "profiles", super_table=True), "lynkr")
    for key, value in {"model_provider": "lynkr", "model": model}.items():
        if profile.get(key) != value:
            profile[key] = value
    after = tomlkit.dumps(doc)
    if after == before:
        return False
    if path.is_file():
        atomic_write(backup_path(path), before)
    atomic_write(path, after, mode=0o600)
    return True


def codex_configured(path: Path, url: str) -> tuple[bool, str]:
    """(whether Codex's lynkr provider points at ``url``, what was found)."""
    doc = read_codex_config(path)
    provider = doc.get("model_providers", {}).get("lynkr")
    if not isinstance(provider, dict):
        return False, f"no [model_providers.lynkr] in {path}"
    found = provider.get("base_url")
    if found != f"{url}/v1":
        return False, f"[model_providers.lynkr] base_url is {found!r}, lynkr serves {url}/v1"
    return True, f"[model_providers.lynkr] -> {found}"


def codex_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    env.setdefault(CODEX_KEY_VARIABLE, CLIENT_KEY)
    return env
