"""``lynkr config show``: the effective settings, where each value came from, secrets masked."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
from dotenv import dotenv_values
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from lynkr.cli.envfile import TIER_VARIABLES, mask, setting_names
from lynkr.config import load_settings
from lynkr.errors import ConfigError

app = typer.Typer(help="Inspect lynkr's settings.", no_args_is_help=True)


def effective(env_file: Path | None, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    settings = load_settings(env_file)
    path = env_file or Path(".env")
    file_values = dotenv_values(path) if path.is_file() else {}
    rows = []
    for var, attr in sorted(setting_names().items()):
        value = getattr(settings, attr)
        secret = isinstance(value, SecretStr)
        shown = mask(value.get_secret_value()) if secret else value
        source = "environment" if environ.get(var) else (str(path) if file_values.get(var) else "default")
        rows.append({"variable": var, "value": shown, "source": source, "secret": secret})
    for var in (v for v in TIER_VARIABLES if v not in setting_names()):  # before Settings had them
        value = environ.get(var) or file_values.get(var)
        if value:
            rows.append({"variable": var, "value": value, "source": "environment" if environ.get(var) else str(path),
                         "secret": False})
    return rows


@app.command("show")
def show(
    env_file: Path | None = typer.Option(None, "--env-file", help="Settings file (default ./.env)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    all_: bool = typer.Option(False, "--all", help="Also list variables left at their defaults."),
) -> None:
    """Print the effective settings (.env + environment + defaults) with secrets masked."""
    try:
        rows = effective(env_file, os.environ)
    except ConfigError as exc:
        typer.echo(f"lynkr: {exc}", err=True)
        raise typer.Exit(2) from None
    if not all_:
        rows = [r for r in rows if r["source"] != "default" or r["variable"] in ("MODEL_PROVIDER", "PORT",
                                                                                  "LYNKR_HOST")]
    if as_json:
        typer.echo(json.dumps({r["variable"]: {"value": r["value"], "source": r["source"]} for r in rows}, indent=2,
                              default=str))
        return
    table = Table(title="lynkr settings" + ("" if all_ else " (--all adds the defaults)"))
    for column in ("variable", "value", "from"):
        table.add_column(column, overflow="fold")
    for r in rows:
        value = "" if r["value"] is None else str(r["value"])
        table.add_row(r["variable"], f"[yellow]{value}[/]" if r["secret"] else value, r["source"])
    Console(highlight=False).print(table)
