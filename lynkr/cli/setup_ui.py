"""``lynkr setup``'s questions and answers: one code path for both modes. Every question has a default and
flags set those defaults; ``--non-interactive`` takes every default (a question with no default is then an
error naming the flag)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import questionary
from rich.console import Console, RenderableType

from lynkr.cli.envfile import EnvFile, mask

OTHER = "__other__"  # the choice that asks for a name to be typed


class SetupError(Exception):
    """The wizard cannot go on; the message says what to do."""


# -- asking ---------------------------------------------------------------------------------------------


class Asker:
    """Questions with defaults. Interactive: questionary prompts (Ctrl-C raises KeyboardInterrupt).
    Non-interactive: the default, or an error naming the flag that gives the answer."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def _need(self, default: Any, flag: str) -> Any:
        if default is None or default == "":
            raise SetupError(f"{flag} is required with --non-interactive")
        return default

    def select(self, message: str, choices: list[tuple[str, str]], default: str) -> str:
        if not self.interactive:
            return default
        options = [questionary.Choice(label, value=value) for value, label in choices]
        chosen = next((o for o in options if o.value == default), options[0])
        return str(questionary.select(message, options, default=chosen).unsafe_ask())

    def checkbox(self, message: str, choices: list[tuple[str, str]], defaults: list[str]) -> list[str]:
        if not self.interactive:
            return defaults
        options = [questionary.Choice(label, value=value, checked=value in defaults) for value, label in choices]
        answer = questionary.checkbox(message, options, validate=lambda a: bool(a) or "choose at least one "
                                      "(space toggles, enter confirms)").unsafe_ask()
        return [str(a) for a in answer]

    def text(self, message: str, default: str | None, flag: str,
             validate: Callable[[str], bool | str] | None = None) -> str:
        if not self.interactive:
            value = str(self._need(default, flag))
            problem = validate(value) if validate else True
            if problem is not True:
                raise SetupError(f"{flag}: {problem}")
            return value
        return str(questionary.text(message, default=default or "", validate=validate or (lambda _: True))
                   .unsafe_ask()).strip()

    def secret(self, message: str, default: str | None, flag: str) -> str:
        if not self.interactive:
            return str(self._need(default, flag))
        if default and questionary.confirm(f"Keep the key you have ({mask(default)})?", default=True).unsafe_ask():
            return default
        return str(questionary.password(message, validate=lambda a: bool(a.strip()) or "paste the key").unsafe_ask()
                   ).strip()

    def confirm(self, message: str, default: bool) -> bool:
        if not self.interactive:
            return default
        return bool(questionary.confirm(message, default=default).unsafe_ask())


# -- what the flags say ---------------------------------------------------------------------------------


@dataclass
class Options:
    env_file: Path
    interactive: bool = True
    providers: list[str] = field(default_factory=list)
    model: str | None = None
    api_key: str | None = None
    endpoint: str | None = None
    num_ctx: int | None = None
    pull: bool = True
    start_ollama: bool = True
    install_ollama: bool = False
    tiers: str | None = None
    tier: list[str] = field(default_factory=list)
    sets: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    check: bool = True
    yes: bool = False
    installer: str | None = None
    ollama_binary: str = "ollama"


@dataclass
class Backend:
    name: str
    model: str
    values: dict[str, str]


class WizardBase:
    """What every step uses: the flags, the questions, the .env being written, the console."""

    def __init__(self, opts: Options, console: Console, environ: Mapping[str, str]) -> None:
        self.opts = opts
        self.ui = Asker(opts.interactive)
        self.console = console
        self.environ = environ
        self.env = EnvFile.load(opts.env_file)
        self.primary: str = ""

    # values known before asking: flags, then the existing .env, then the environment
    def current(self, var: str) -> str | None:
        return self.opts.sets.get(var) or self.env.get(var) or self.environ.get(var) or None

    def flag(self, name: str, attr: str) -> Any:
        """A primary-backend flag (--model, --api-key, --endpoint) applies to the primary backend only."""
        return getattr(self.opts, attr) if name == self.primary else None

    def say(self, text: RenderableType) -> None:
        self.console.print(text)


def is_url(value: str) -> bool | str:
    return value.startswith(("http://", "https://")) or "a URL starting with http:// or https://"


def positive_int(value: str) -> bool | str:
    return (value.strip().isdigit() and int(value) > 0) or "a whole number of tokens, e.g. 32768"
