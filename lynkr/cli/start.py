"""``lynkr start``: load and check the settings, then serve until Ctrl-C."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from loguru import logger

from lynkr import __version__
from lynkr.access.exposure import check_exposure, log_exposure
from lynkr.cli.logs import setup_logging
from lynkr.config import Settings, load_settings
from lynkr.errors import ConfigError
from lynkr.providers import backend_settings, check_settings


def start(
    host: str | None = typer.Option(None, "--host", help="Address to bind (default 127.0.0.1; env LYNKR_HOST)."),
    port: int | None = typer.Option(None, "--port", "-p", help="Port to listen on (default 8081; env PORT)."),
    env_file: Path | None = typer.Option(None, "--env-file", help="Read settings from this file instead of ./.env."),
    log_level: str | None = typer.Option(None, "--log-level", help="debug, info, warning or error (env LOG_LEVEL).",
                                         autocompletion=lambda: ["debug", "info", "warning", "error"]),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, max=64,
                                       help="Processes sharing the port (default 1; env LYNKR_WORKERS)."),
    allow_unauthenticated: bool = typer.Option(
        False, "--allow-unauthenticated", help="Listen on a non-loopback --host without LYNKR_API_KEYS."),
) -> None:
    """Start the gateway: Claude Code, Codex and OpenAI clients point their base URL here."""
    overrides = {k: v for k, v in {"host": host, "port": port, "log_level": log_level, "lynkr_workers": workers,
                                   "lynkr_allow_unauthenticated": allow_unauthenticated or None}.items()
                 if v is not None}
    try:
        settings = load_settings(env_file, **overrides)
        check_settings(settings)
        ring = check_exposure(settings)
    except ConfigError as exc:
        typer.echo(f"lynkr: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    banner(settings)
    log_exposure(settings, ring)
    serve(settings)


def configure_logging(settings: Settings) -> None:
    setup_logging(settings.log_level, settings.log_format, secrets=settings.secrets())


def banner(settings: Settings) -> None:
    backend = backend_settings(settings.model_provider, settings)
    url = f"http://{_url_host(settings.host)}:{settings.port}"
    logger.info("lynkr {} listening on {}", __version__, url)
    logger.info("backend: {} at {} (model {})", backend.name, backend.endpoint, backend.model)
    small = settings.small_fast_model or backend.model
    logger.info("models: claude-* -> {}; claude-*haiku* -> {}; other names pass through", backend.model, small)
    logger.info("Claude Code:  ANTHROPIC_BASE_URL={} ANTHROPIC_API_KEY=lynkr claude", url)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then drain (lynkr.server.runner); with --workers N, in N processes."""
    if settings.lynkr_workers > 1:
        from lynkr.server.workers import run_workers

        raise typer.Exit(run_workers(settings, settings.lynkr_workers))
    run_loop(settings)


def run_loop(settings: Settings, *, reuse_port: bool = False) -> None:
    """One process serving on its own event loop."""
    from lynkr.server import create_app
    from lynkr.server.runner import serve as run

    loop: asyncio.AbstractEventLoop
    try:
        import uvloop  # optional speed-up: pip install 'lynkr[speed]'

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run(create_app(settings), settings.host, settings.port, reuse_port=reuse_port))
    except OSError as exc:
        typer.echo(f"lynkr: cannot listen on {settings.host}:{settings.port}: {exc.strerror} "
                   "(is another lynkr running? pick another --port)", err=True)
        raise typer.Exit(1) from None
    finally:
        loop.close()
    logger.info("lynkr stopped")
