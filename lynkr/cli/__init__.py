"""The ``lynkr`` command line (Typer): one module per command."""

from __future__ import annotations

from pathlib import Path

import typer

from lynkr import __version__
from lynkr.cli import code, config_cmd, doctor, setup, start

app = typer.Typer(
    name="lynkr",
    help="Universal LLM gateway for coding agents (Claude Code, Codex, Cursor, OpenAI SDKs).",
    no_args_is_help=True,
    # completion scripts are generated statically into completions/ (`lynkr completions SHELL`)
    add_completion=False,
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
app.command("setup")(setup.setup)
app.command("doctor")(doctor.doctor)
app.command("code", context_settings=code.PASS_THROUGH)(code.code)
app.command("codex", context_settings=code.PASS_THROUGH)(code.codex)
app.add_typer(config_cmd.app, name="config")


@app.command("completions")
def completions_command(
    shell: str = typer.Argument("bash", help="bash, zsh or fish."),
    write: Path | None = typer.Option(None, "--write", help="Write all three scripts into this directory instead."),
) -> None:
    """Print the shell completion script for bash, zsh or fish.

    e.g. lynkr completions bash > ~/.local/share/bash-completion/completions/lynkr
    """
    from lynkr.cli import completions as gen

    if write is not None:
        for path in gen.write_all(app, write):
            typer.echo(f"wrote {path}")
        return
    if shell not in gen.SHELLS:
        typer.echo(f"lynkr: no completions for {shell!r}; use one of {', '.join(gen.SHELLS)}", err=True)
        raise typer.Exit(2)
    typer.echo(gen.script(shell, app), nl=False)


def main() -> None:
    app()
