"""Talking to an Ollama installation for ``lynkr setup`` and ``lynkr doctor``: the binary, the server,
its models (``/api/tags``, ``/api/show``), pulling one (``/api/pull`` NDJSON progress) and checking that a
model answers a tool call (``/api/chat`` with a tool)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from lynkr.cli.net import Reply, describe, fetch

# Claude Code's system prompt and tool definitions alone are ~20k tokens.
MIN_CONTEXT = 20_000
RECOMMENDED_CONTEXT = 32_768
DEFAULT_ENDPOINT = "http://localhost:11434"

# Models that call tools reliably, smallest first (name, what to expect).
RECOMMENDED_MODELS: tuple[tuple[str, str], ...] = (
    ("qwen2.5-coder:7b", "4.7 GB download, runs in 8 GB of RAM"),
    ("qwen3:8b", "5.2 GB, thinks before answering"),
    ("qwen2.5-coder:14b", "9 GB, better code, needs 16 GB"),
    ("gpt-oss:20b", "14 GB, strong tool use, needs 16 GB+"),
)

# The official installer (downloads and runs a shell script); only ever run after the user agrees.
INSTALL_COMMAND = "curl -fsSL https://ollama.com/install.sh | sh"
MANUAL_INSTALL = {
    "win32": "download and run the installer from https://ollama.com/download/windows",
    "darwin": "brew install ollama, or download the app from https://ollama.com/download/mac",
}


def install_command(platform: str = sys.platform, override: str | None = None) -> list[str] | None:
    """The command that installs Ollama here, or None where it must be done by hand (Windows)."""
    if override:
        return shlex.split(override)
    if platform.startswith(("linux", "darwin")):
        return ["sh", "-c", INSTALL_COMMAND]
    return None


def manual_install_hint(platform: str = sys.platform) -> str:
    return MANUAL_INSTALL.get(platform, f"run: {INSTALL_COMMAND}")


def full_name(model: str) -> str:
    """Ollama's name for a model: ``qwen3`` is ``qwen3:latest``."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def is_local(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.startswith("127.")


def find_binary(name: str = "ollama") -> str | None:
    return shutil.which(name)


def serve_env(endpoint: str) -> dict[str, str]:
    """Environment for ``ollama serve`` so it listens where ``endpoint`` points."""
    env = dict(os.environ)
    parts = urlsplit(endpoint)
    if parts.port and parts.port != 11434:
        env["OLLAMA_HOST"] = f"{parts.hostname}:{parts.port}"
    return env


# Children that outlive the command that started them (kept referenced: they are not ours to reap).
DETACHED: list[subprocess.Popen[bytes]] = []


def start_serve(binary: str, endpoint: str, log_path: Path) -> subprocess.Popen[bytes]:
    """``ollama serve`` in the background, detached from this terminal, logging to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen([binary, "serve"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=serve_env(endpoint), start_new_session=True)
    DETACHED.append(proc)
    return proc


class PullError(Exception):
    pass


@dataclass(frozen=True)
class ToolCheck:
    ok: bool
    detail: str


TOOL = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Read a file from the user's project and return its text.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string", "description": "file path"}},
                       "required": ["path"]},
    },
}


class OllamaAdmin:
    def __init__(self, endpoint: str, api_key: str | None = None, timeout: float = 5.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout

    def url(self, path: str) -> str:
        return self.endpoint + path

    async def version(self) -> Reply:
        return await fetch("GET", self.url("/api/version"), headers=self.headers, timeout=self.timeout)

    async def tags(self) -> Reply:
        return await fetch("GET", self.url("/api/tags"), headers=self.headers, timeout=self.timeout)

    @staticmethod
    def model_names(tags: Reply) -> list[str]:
        models = tags.data.get("models", []) if isinstance(tags.data, dict) else []
        return [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]

    async def show(self, model: str) -> Reply:
        return await fetch("POST", self.url("/api/show"), headers=self.headers, body={"model": model},
                           timeout=max(self.timeout, 10.0))

    @staticmethod
    def context_length(show: Reply) -> int | None:
        """The model's trained context length (``model_info["<arch>.context_length"]``)."""
        info = show.data.get("model_info") if isinstance(show.data, dict) else None
        if not isinstance(info, dict):
            return None
        for key, value in info.items():
            if key.endswith(".context_length") and isinstance(value, int):
                return value
        return None

    @staticmethod
    def modelfile_num_ctx(show: Reply) -> int | None:
        """``num_ctx`` set in the model's Modelfile parameters, if any."""
        params = show.data.get("parameters") if isinstance(show.data, dict) else None
        for line in str(params or "").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "num_ctx" and parts[1].isdigit():
                return int(parts[1])
        return None

    async def wait_until_up(self, seconds: float) -> bool:
        for _ in range(max(1, int(seconds / 0.25))):
            if (await self.version()).ok:
                return True
            await asyncio.sleep(0.25)
        return False

    async def pull(self, model: str, on_progress: Callable[[dict[str, Any]], None]) -> None:
        """Pull ``model``, calling ``on_progress`` with every NDJSON status line; raise PullError."""
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=600)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, http.post(
                self.url("/api/pull"), json={"model": model, "stream": True}, headers=self.headers
            ) as resp:
                if resp.status != 200:
                    body = await resp.text(errors="replace")
                    raise PullError(f"ollama answered {resp.status}: {_error_text(body)}")
                done = False
                async for raw in resp.content:
                    line = raw.strip()
                    if not line:
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise PullError(f"ollama sent something that is not NDJSON: {line[:100]!r}") from None
                    if event.get("error"):
                        raise PullError(str(event["error"]))
                    on_progress(event)
                    done = done or event.get("status") == "success"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise PullError(describe(exc)) from None
        if not done:
            raise PullError("the download stopped before ollama said success (run setup again to resume it)")

    async def tool_check(self, model: str, num_ctx: int | None = None, timeout: float = 600.0) -> ToolCheck:
        """Ask ``model`` something only a tool call answers; a model that cannot call tools is useless to
        Claude Code and Codex."""
        body: dict[str, Any] = {
            "model": model, "stream": False, "tools": [TOOL],
            "messages": [{"role": "user", "content": "Show me what is in README.md. Use the read_file tool."}],
            "options": {"temperature": 0, **({"num_ctx": num_ctx} if num_ctx else {})},
        }
        reply = await fetch("POST", self.url("/api/chat"), headers=self.headers, body=body, timeout=timeout)
        if not reply.reached:
            return ToolCheck(False, f"no answer from ollama: {reply.error}")
        if not reply.ok:
            return ToolCheck(False, reply.message())
        message = reply.data.get("message", {}) if isinstance(reply.data, dict) else {}
        calls = message.get("tool_calls") or []
        names = [c.get("function", {}).get("name") for c in calls if isinstance(c, dict)]
        if "read_file" in names:
            return ToolCheck(True, f"{model} called read_file")
        said = str(message.get("content", "")).strip().replace("\n", " ")[:80]
        return ToolCheck(False, f"{model} answered without calling the tool ({said!r})")


def _error_text(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:200] or "(empty body)"
    return str(data.get("error", data)) if isinstance(data, dict) else str(data)
