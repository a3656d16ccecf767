"""``lynkr doctor``: everything that can stop lynkr or its clients from working, checked, each failure
with its fix. Exit code 1 when any check fails."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import typer
from dotenv import dotenv_values
from rich.console import Console
from rich.table import Table

from lynkr import __version__
from lynkr.cli.agents import (
    CLAUDE_INSTALL,
    CODEX_INSTALL,
    CodexConfigError,
    base_url,
    codex_configured,
    codex_home,
    port_free,
    probe,
)
from lynkr.cli.checks import Check, check_backend
from lynkr.cli.envfile import TIER_VARIABLES, did_you_mean, known_names
from lynkr.config import Settings, load_settings
from lynkr.errors import ConfigError
from lynkr.providers import REGISTRY, check_settings

STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]", "info": "[blue]info[/]"}
_REQ = re.compile(r"^([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*(?:>=\s*([0-9][0-9.]*))?")


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:3])


def python_checks() -> list[Check]:
    py = ".".join(map(str, sys.version_info[:3]))
    new_enough = sys.version_info >= (3, 11)
    checks = [Check("python", "python", "ok" if new_enough else "fail", f"Python {py} ({sys.executable})",
                    "" if new_enough else "lynkr needs Python 3.11 or newer")]
    try:
        requires = metadata.requires("lynkr") or []
    except metadata.PackageNotFoundError:
        return [*checks, Check("python", "packages", "warn", "lynkr is not installed as a package (running from a "
                                                             "source tree?)", "pip install -e . in the checkout")]
    problems = []
    for req in requires:
        if "extra ==" in req:
            continue
        m = _REQ.match(req)
        if not m:
            continue
        name, minimum = m.group(1), m.group(2)
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} missing")
            continue
        if minimum and _version_tuple(have) < _version_tuple(minimum):
            problems.append(f"{name} {have} < {minimum}")
    if problems:
        return [*checks, Check("python", "packages", "fail", "; ".join(problems),
                               "reinstall lynkr: pipx reinstall lynkr (or pip install -U lynkr)")]
    return [*checks, Check("python", "packages", "ok", f"lynkr {__version__}, {len(requires)} requirements met")]


def env_file_checks(env_file: Path | None) -> tuple[list[Check], Settings | None]:
    path = env_file or Path(".env")
    checks: list[Check] = []
    if path.is_file():
        values = dotenv_values(path)
        known = known_names()
        unknown = [k for k in values if k not in known]
        checks.append(Check("config", "env file", "ok", f"{path.resolve()} ({len(values)} variables)"))
        for key in unknown:
            guess = did_you_mean(key)
            if guess:
                checks.append(Check("config", key, "fail", f"{key} is not a lynkr variable: did you mean {guess}?",
                                    f"rename {key} to {guess} in {path}"))
            else:
                checks.append(Check("config", key, "warn", f"{key} is not a variable lynkr reads; it is ignored",
                                    f"remove it from {path} (lynkr config show lists what lynkr reads)"))
    elif env_file is not None:
        return [Check("config", "env file", "fail", f"{path} not found", "pass an existing file to --env-file")], None
    else:
        checks.append(Check("config", "env file", "warn", f"no .env in {Path.cwd()}: defaults and the environment only",
                            "run lynkr setup (or cp .env.example .env)"))
    try:
        settings = load_settings(env_file)
        check_settings(settings)
    except ConfigError as exc:
        failed = Check("config", "settings", "fail", str(exc), "fix that variable in .env, or run lynkr setup")
        return [*checks, failed], None
    checks.append(Check("config", "settings", "ok", f"MODEL_PROVIDER={settings.model_provider}"))
    return checks, settings


def tier_backends(env_file: Path | None, environ: Mapping[str, str]) -> list[str]:
    values = dotenv_values(env_file or Path(".env")) if (env_file or Path(".env")).is_file() else {}
    found = []
    for var in TIER_VARIABLES:
        value = environ.get(var) or values.get(var) or ""
        provider = value.split(":", 1)[0].strip()
        if provider in REGISTRY and provider not in found:
            found.append(provider)
    return found


async def backend_checks(settings: Settings, names: list[str], timeout: float) -> list[Check]:
    results = await asyncio.gather(*(check_backend(n, settings, timeout) for n in names))
    return [c for group in results for c in group]


async def port_check(settings: Settings) -> Check:
    where = f"{settings.host}:{settings.port}"
    if port_free(settings.host, settings.port):
        return Check("lynkr", "port", "ok", f"{where} is free")
    found = await probe(base_url(settings))
    if found.what == "lynkr":
        return Check("lynkr", "port", "ok", f"{found.detail} is already running on {where}")
    return Check("lynkr", "port", "fail", f"{where} is taken by another program ({found.detail})",
                 "set PORT in .env to a free port, or stop that program")


def _version_of(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return "version unknown"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def claude_checks(url: str, environ: Mapping[str, str], claude: str) -> list[Check]:
    path = shutil.which(claude)
    if path is None:
        return [Check("clients", "claude", "warn", "Claude Code is not installed", CLAUDE_INSTALL)]
    checks = [Check("clients", "claude", "ok", f"{_version_of(path)} ({path})")]
    configured = environ.get("ANTHROPIC_BASE_URL")
    source = "ANTHROPIC_BASE_URL"
    if not configured:
        settings_json = Path.home() / ".claude" / "settings.json"
        try:
            configured = json.loads(settings_json.read_text("utf-8")).get("env", {}).get("ANTHROPIC_BASE_URL")
            source = f"{settings_json} env.ANTHROPIC_BASE_URL"
        except (OSError, ValueError, AttributeError):
            configured = None
    if configured and configured.rstrip("/") == url:
        checks.append(Check("clients", "claude config", "ok", f"{source}={configured}"))
    elif configured:
        checks.append(Check("clients", "claude config", "warn", f"{source}={configured}, but lynkr is at {url}",
                            f"lynkr code (launches Claude Code wired to {url}), or set ANTHROPIC_BASE_URL={url}"))
    else:
        checks.append(Check("clients", "claude config", "info", "Claude Code is not pointed at lynkr by default",
                            f"lynkr code  (or: ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY=lynkr claude)"))
    return checks


def codex_checks(url: str, environ: Mapping[str, str], codex: str) -> list[Check]:
    path = shutil.which(codex)
    config = codex_home(environ) / "config.toml"
    checks = ([Check("clients", "codex", "ok", f"{_version_of(path)} ({path})")] if path
              else [Check("clients", "codex", "info", "Codex is not installed", CODEX_INSTALL)])
    try:
        ok, detail = codex_configured(config, url)
    except CodexConfigError as exc:
        return [*checks, Check("clients", "codex config", "fail", str(exc), f"fix the TOML syntax in {config}")]
    if ok:
        checks.append(Check("clients", "codex config", "ok", detail))
    elif path:
        checks.append(Check("clients", "codex config", "info" if "no [model_providers" in detail else "warn", detail,
                            "lynkr codex --no-launch  (writes the provider entry)"))
    return checks


def run_checks(env_file: Path | None, timeout: float, environ: Mapping[str, str], claude: str = "claude",
               codex: str = "codex") -> list[Check]:
    checks = python_checks()
    config_checks, settings = env_file_checks(env_file)
    checks += config_checks
    if settings is None:
        return checks
    url = base_url(settings)
    names = [settings.model_provider, *[n for n in tier_backends(env_file, environ) if n != settings.model_provider]]

    async def network() -> list[Check]:
        found = await asyncio.gather(backend_checks(settings, names, timeout), port_check(settings))
        return [*found[0], found[1]]

    checks += asyncio.run(network())
    checks += claude_checks(url, environ, claude)
    checks += codex_checks(url, environ, codex)
    return checks


def render(checks: list[Check], console: Console) -> None:
    table = Table(title=f"lynkr doctor ({__version__})", show_lines=False, expand=False)
    for column in ("", "check", "status", "detail"):
        table.add_column(column, overflow="fold")
    for c in checks:
        detail = c.detail + (f"\n[bold]fix:[/] {c.fix}" if c.fix and c.status != "ok" else "")
        table.add_row(c.area, c.name, STYLE[c.status], detail)
    console.print(table)
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        console.print(f"[bold red]{len(failed)} problem{'s' if len(failed) > 1 else ''}[/]; fix them and run "
                      "lynkr doctor again.")
    else:
        console.print("[green]Everything lynkr needs is in place.[/]")


def doctor(
    env_file: Path | None = typer.Option(None, "--env-file", help="Check this settings file instead of ./.env."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds to wait for each backend."),
    claude: str = typer.Option("claude", "--claude-bin", envvar="LYNKR_CLAUDE_BIN", hidden=True),
    codex: str = typer.Option("codex", "--codex-bin", envvar="LYNKR_CODEX_BIN", hidden=True),
) -> None:
    """Check Python, .env, backends (reachability, key, model, context size), the port, Claude Code, Codex."""
    checks = run_checks(env_file, timeout, os.environ, claude, codex)
    ok = not any(c.status == "fail" for c in checks)
    if as_json:
        typer.echo(json.dumps({"ok": ok, "version": __version__, "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        render(checks, Console(soft_wrap=False))
    if not ok:
        raise typer.Exit(1)
