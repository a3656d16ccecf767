"""``lynkr code`` and ``lynkr codex``: make sure a lynkr is serving, then launch the coding agent wired to it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import typer

from lynkr.cli import agents
from lynkr.cli.net import run
from lynkr.config import Settings, load_settings
from lynkr.errors import ConfigError
from lynkr.providers import backend_settings, check_settings

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _settings(env_file: Path | None, port: int | None) -> Settings:
    try:
        settings = load_settings(env_file, **({"port": port} if port is not None else {}))
        check_settings(settings)
    except ConfigError as exc:
        typer.echo(f"lynkr: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


def ensure_lynkr(settings: Settings, env_file: Path | None) -> str:
    """The URL of a lynkr on the configured port, started in the background when none answers there."""
    url = agents.base_url(settings)
    found = run(agents.probe(url))
    if found.what == "lynkr":
        typer.echo(f"lynkr: using the {found.detail} already running at {url}", err=True)
        return url
    if found.what == "other":
        typer.echo(f"lynkr: port {settings.port} is taken by another program ({found.detail}); set PORT in .env or "
                   "pass --port", err=True)
        raise typer.Exit(1)
    typer.echo(f"lynkr: starting lynkr in the background on {url} ...", err=True)
    try:
        bg = agents.start_background(settings, env_file)
    except agents.StartFailed as exc:
        typer.echo(f"lynkr: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"lynkr: started (pid {bg.pid}, log {bg.log}); it keeps serving after you quit; stop it with "
               f"kill {bg.pid}", err=True)
    return url


def _binary(name: str, install: str, what: str) -> str:
    path = shutil.which(name)
    if path is None:
        typer.echo(f"lynkr: {what} is not installed ({name} not on PATH): {install}", err=True)
        raise typer.Exit(1)
    return path


def code(
    ctx: typer.Context,
    env_file: Path | None = typer.Option(None, "--env-file", help="Settings file (default ./.env)."),
    port: int | None = typer.Option(None, "--port", help="lynkr's port (default PORT or 8081)."),
    claude: str = typer.Option("claude", "--claude-bin", envvar="LYNKR_CLAUDE_BIN", hidden=True),
) -> None:
    """Launch Claude Code wired to lynkr, starting lynkr in the background if none is running.

    Arguments after -- go to claude, e.g. lynkr code -- --resume.
    """
    settings = _settings(env_file, port)
    binary = _binary(claude, agents.CLAUDE_INSTALL, "Claude Code")
    url = ensure_lynkr(settings, env_file)
    agents.exec_agent([binary, *ctx.args], agents.claude_env(url, os.environ))


def codex(
    ctx: typer.Context,
    env_file: Path | None = typer.Option(None, "--env-file", help="Settings file (default ./.env)."),
    port: int | None = typer.Option(None, "--port", help="lynkr's port (default PORT or 8081)."),
    no_launch: bool = typer.Option(False, "--no-launch", help="Only write the Codex provider entry; start nothing."),
    codex_bin: str = typer.Option("codex", "--codex-bin", envvar="LYNKR_CODEX_BIN", hidden=True),
) -> None:
    """Launch Codex through lynkr (adds a lynkr provider and profile to Codex's config.toml).

    Writes model_providers.lynkr and profiles.lynkr into $CODEX_HOME/config.toml (default ~/.codex), leaving
    the rest of the file as it is, then runs codex --profile lynkr. Arguments after -- go to codex.
    """
    settings = _settings(env_file, port)
    url = agents.base_url(settings)
    model = backend_settings(settings.model_provider, settings).model
    config = agents.codex_home(os.environ) / "config.toml"
    try:
        changed = agents.update_codex_config(config, url, model)
    except agents.CodexConfigError as exc:
        typer.echo(f"lynkr: {exc}; fix it and run lynkr codex again", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"lynkr: {'wrote' if changed else 'kept'} [model_providers.lynkr] ({url}/v1) and [profiles.lynkr] "
               f"(model {model}) in {config}", err=True)
    if no_launch:
        typer.echo(f"run: {agents.CODEX_KEY_VARIABLE}={agents.CLIENT_KEY} codex --profile lynkr")
        return
    binary = _binary(codex_bin, agents.CODEX_INSTALL, "Codex")
    ensure_lynkr(settings, env_file)
    agents.exec_agent([binary, "--profile", "lynkr", *ctx.args], agents.codex_env(os.environ))
