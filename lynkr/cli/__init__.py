"""The ``lynkr`` command line (Typer)."""

from __future__ import annotations

import typer

from lynkr import __version__
from lynkr.cli import start

app = typer.Typer(
    name="lynkr",
    help="Universal LLM gateway for coding agents (Claude Code, Codex, Cursor, OpenAI SDKs).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lynkr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", help="Print the version and exit.",
                                 callback=_version, is_eager=True),
) -> None:
    """lynkr: point your coding agent at it, serve it from the backend you have."""


app.command("start")(start.start)


def main() -> None:
    app()
