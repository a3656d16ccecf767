"""Helpers for driving the real Claude Code CLI against lynkr (see tests/test_claude_code_e2e.py).

Everything stays on loopback: lynkr and the fake backend run as TCP servers in the test's event loop,
and the CLI runs as a child process with an environment built from scratch, whose proxy variables
point at a local port that refuses connections, so nothing it tries can reach the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
INSTALL_HINT = "Claude Code CLI not installed: run npm install --prefix .e2e/npm -g @anthropic-ai/claude-code"
API_KEY = "dummy-key-123"
TIMEOUT = 120.0


# -- finding the CLI --------------------------------------------------------------------------------


def find_cli(name: str, env_var: str) -> str | None:
    """``env_var``, else the repo-local npm prefix CI installs into, else ``name`` on PATH."""
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    local = REPO / ".e2e" / "npm" / "bin" / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def require_cli(name: str, env_var: str, hint: str) -> str:
    path = find_cli(name, env_var)
    if path is None:
        pytest.skip(hint)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        # an explicit variable that is wrong is a setup error, not a reason to skip silently
        pytest.fail(f"{env_var}={path!r} is not an executable file. {hint}")
    return path


def find_claude() -> str | None:
    return find_cli("claude", "LYNKR_E2E_CLAUDE")


def require_claude() -> str:
    return require_cli("claude", "LYNKR_E2E_CLAUDE", INSTALL_HINT)


# -- what Claude Code sent to lynkr, and what lynkr answered ------------------------------------------


@dataclass
class Exchange:
    """One HTTP request Claude Code made to lynkr, and lynkr's answer to it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    content_type: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)  # streamed bytes as lynkr wrote them
    json_body: Any = None  # a non-streamed answer

    @property
    def streamed(self) -> bool:
        return self.content_type.startswith("text/event-stream")

    def sse_events(self) -> list[tuple[str, dict[str, Any]]]:
        """The answer's SSE events as (event name, data) pairs, pings included."""
        events: list[tuple[str, dict[str, Any]]] = []
        text = b"".join(self.chunks).decode()
        for frame in text.replace("\r\n", "\n").split("\n\n"):
            name, data = "", []
            for line in frame.split("\n"):
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
            if data:
                events.append((name, json.loads("\n".join(data))))
        return events

    def tool_uses(self) -> list[dict[str, Any]]:
        """The tool_use blocks lynkr streamed, with their input reassembled from the JSON deltas."""
        blocks: dict[int, dict[str, Any]] = {}
        partial: dict[int, str] = {}
        for _, ev in self.sse_events():
            if ev.get("type") == "content_block_start" and ev["content_block"].get("type") == "tool_use":
                blocks[ev["index"]] = dict(ev["content_block"])
                partial[ev["index"]] = ""
            elif ev.get("type") == "content_block_delta" and ev["delta"].get("type") == "input_json_delta":
                partial[ev["index"]] += ev["delta"]["partial_json"]
        for i, b in blocks.items():
            b["input"] = json.loads(partial[i]) if partial[i] else b.get("input", {})
        return [blocks[i] for i in sorted(blocks)]

    def text(self) -> str:
        return "".join(ev["delta"]["text"] for _, ev in self.sse_events()
                       if ev.get("type") == "content_block_delta" and ev["delta"].get("type") == "text_delta")

    def summary(self) -> str:
        keys = sorted(self.body) if isinstance(self.body, dict) else type(self.body).__name__
        return f"{self.method} {self.path}{'?' + self.query if self.query else ''} -> {self.status} " \
               f"{self.content_type} body keys={keys}"


_SEEN = web.RequestKey("e2e_exchange", Exchange)


def record_traffic(app: web.Application) -> list[Exchange]:
    """Record every request to ``app`` and lynkr's answer, without touching lynkr's code.

    A middleware placed outermost keeps the request and the final status; an on_response_prepare
    hook wraps the prepared response's ``write`` so streamed bytes are copied as they go out.
    """
    seen: list[Exchange] = []

    @web.middleware
    async def recorder(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
        raw = await request.read()  # cached by aiohttp: lynkr's own read sees the same bytes
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        ex = Exchange(request.method, request.path, request.query_string, dict(request.headers), body)
        seen.append(ex)
        request[_SEEN] = ex
        resp = await handler(request)
        ex.status = resp.status
        ex.content_type = resp.headers.get("Content-Type", "")
        ex.response_headers = dict(resp.headers)
        if isinstance(resp, web.Response) and resp.body is not None and not ex.streamed:
            with contextlib.suppress(ValueError, TypeError):
                ex.json_body = json.loads(resp.body)  # type: ignore[arg-type]
        return resp

    async def tap(request: web.Request, response: web.StreamResponse) -> None:
        ex: Exchange | None = request.get(_SEEN)
        if ex is None or isinstance(response, web.Response):
            return
        write = response.write

        async def copying_write(data: bytes | bytearray | memoryview) -> None:
            ex.chunks.append(bytes(data))
            await write(data)

        response.write = copying_write  # type: ignore[method-assign]

    app.middlewares.insert(0, recorder)
    app.on_response_prepare.append(tap)
    return seen


# -- running the CLI --------------------------------------------------------------------------------


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that is bound but never listens: every connection to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def claude_env(claude: str, base_url: str, home: Path, proxy_port: int) -> dict[str, str]:
    """An environment built from scratch: no inherited keys, config, proxies or telemetry."""
    path: list[str] = [os.path.dirname(os.path.realpath(claude)), os.path.dirname(claude)]
    node = shutil.which("node")
    if node:
        path.append(os.path.dirname(node))
    path += ["/usr/local/bin", "/usr/bin", "/bin"]
    proxy = f"http://127.0.0.1:{proxy_port}"
    return {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": str(home),
        "TERM": "dumb",
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "https_proxy": proxy,
        "http_proxy": proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh work dir (the CLI's cwd) and a fresh HOME, both empty."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    return work, home


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def report(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode} after {self.seconds:.1f}s\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


async def run_claude(claude: str, args: list[str], *, cwd: Path, home: Path, base_url: str,
                     timeout: float = TIMEOUT) -> Run:
    """Run the CLI in this event loop (the servers it talks to live here too) and collect its output.

    ``cwd`` and ``home`` must exist; ``home`` should be fresh (no ~/.claude.json: ``-p`` needs none).
    """
    with refused_port() as port:
        return await run_process([claude, *args], cwd=cwd, env=claude_env(claude, base_url, home, port),
                                 timeout=timeout, what="Claude Code")


def explain(run: Run, traffic: list[Exchange], upstream_requests: list[dict[str, Any]]) -> str:
    """Everything useful for a failure message."""
    lines = [run.report(), "--- Claude Code -> lynkr ---"]
    lines += [ex.summary() for ex in traffic] or ["(no requests)"]
    lines.append(f"--- lynkr -> backend: {len(upstream_requests)} request(s) ---")
    for req in upstream_requests:
        msgs = req.get("messages") or []
        lines.append(f"stream={req.get('stream')} model={req.get('model')} roles={[m.get('role') for m in msgs]} "
                     f"tools={len(req.get('tools') or [])}")
    return "\n".join(lines)


# -- the Codex CLI (see tests/test_codex_e2e.py) ----------------------------------------------------

CODEX_INSTALL_HINT = "Codex CLI not installed: run npm install --prefix .e2e/npm -g @openai/codex"
CODEX_KEY_ENV = "LYNKR_E2E_KEY"  # the variable the provider's env_key names: Codex sends it as a Bearer token


def find_codex() -> str | None:
    return find_cli("codex", "LYNKR_E2E_CODEX")


def require_codex() -> str:
    return require_cli("codex", "LYNKR_E2E_CODEX", CODEX_INSTALL_HINT)


def write_codex_config(codex_home: Path, base_url: str, model: str) -> Path:
    """A config.toml sending every turn to lynkr over the Responses API, with no other outbound traffic.

    ``[analytics]`` and ``[features] plugins`` off remove Codex's calls to github.com and chatgpt.com.
    """
    path = codex_home / "config.toml"
    path.write_text(
        f'model = {json.dumps(model)}\n'
        'model_provider = "lynkr"\n'
        '\n'
        '[model_providers.lynkr]\n'
        'name = "lynkr"\n'
        f'base_url = {json.dumps(base_url + "/v1")}\n'
        f'env_key = "{CODEX_KEY_ENV}"\n'
        'wire_api = "responses"\n'
        '\n'
        '[analytics]\n'
        'enabled = false\n'
        '\n'
        '[features]\n'
        'plugins = false\n'
    )
    return path


def codex_env(codex: str, codex_home: Path, proxy_port: int) -> dict[str, str]:
    """An environment built from scratch (the npm launcher needs node on PATH): no inherited keys or proxies."""
    env = claude_env(codex, "http://127.0.0.1:9", codex_home, proxy_port)
    for key in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"):
        del env[key]
    env["CODEX_HOME"] = str(codex_home)
    env[CODEX_KEY_ENV] = API_KEY
    return env


async def run_process(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = TIMEOUT,
                      what: str = "the CLI") -> Run:
    """Run ``argv`` in this event loop with stdin from /dev/null; kill its whole session on timeout."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        run = Run(argv, -1, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - started)
        pytest.fail(f"{what} did not finish within {timeout:.0f}s\n{run.report()}")
    assert proc.returncode is not None
    return Run(argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
               time.monotonic() - started)


async def run_codex(codex: str, args: list[str], *, cwd: Path, codex_home: Path, timeout: float = TIMEOUT) -> Run:
    """Run ``codex ARGS`` with CODEX_HOME (holding a config from write_codex_config) as its home too."""
    with refused_port() as port:
        return await run_process([codex, *args], cwd=cwd, env=codex_env(codex, codex_home, port),
                                 timeout=timeout, what="Codex")


def jsonl(text: str) -> list[dict[str, Any]]:
    """The JSON objects among ``text``'s lines (``codex exec --json`` writes one event per line)."""
    events: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` (bounded: up to ~10 s) until it holds."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"never: {what}")
