"""Static shell completion scripts (bash, zsh, fish) generated from the Typer app.

They list lynkr's commands, options and option values, so completing never starts Python. ``completions/``
holds the generated files; a test regenerates them and fails when they are stale
(``lynkr completions --write completions`` refreshes them).
"""

from __future__ import annotations

import enum
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
import typer.main

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.core import Context
except ImportError:  # pragma: no cover
    from click import Context  # type: ignore[no-redef,assignment]

SHELLS = ("bash", "zsh", "fish")
FILES = {"bash": "lynkr.bash", "zsh": "_lynkr", "fish": "lynkr.fish"}


@dataclass
class Opt:
    names: list[str]
    help: str
    takes_value: bool
    values: list[str] = field(default_factory=list)
    files: bool = False


@dataclass
class Cmd:
    path: list[str]
    help: str
    options: list[Opt]
    subcommands: list[Cmd]
    passthrough: bool = False


def _first_sentence(text: str | None, limit: int = 90) -> str:
    text = " ".join((text or "").split())
    m = re.search(r"(?<!e\.g)(?<!i\.e)\.(\s|$)", text)
    text = text[: m.start()] if m else text
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _annotation(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    ann = getattr(descriptor, "annotation", None)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        ann = args[0] if len(args) == 1 else ann
    if typing.get_origin(ann) is list:
        ann = typing.get_args(ann)[0]
    return ann


def _option(param: Any, ctx: Any) -> Opt | None:
    if getattr(param, "hidden", False) or not param.opts or param.param_type_name != "option":
        return None
    ann = _annotation(param)
    takes_value = not getattr(param, "is_flag", False)
    values: list[str] = []
    if takes_value and getattr(param, "_custom_shell_complete", None) is not None:
        values = [getattr(item, "value", item) for item in param.shell_complete(ctx, "")]
    elif isinstance(ann, type) and issubclass(ann, enum.Enum):
        values = [str(m.value) for m in ann]
    elif typing.get_origin(ann) is typing.Literal:
        values = [str(a) for a in typing.get_args(ann)]
    elif hasattr(param, "type"):  # pragma: no cover - click's own parameter types (older typer)
        values = [str(c) for c in getattr(param.type, "choices", ())]
    files = takes_value and ((isinstance(ann, type) and issubclass(ann, Path))
                             or type(getattr(param, "type", None)).__name__ == "Path")
    return Opt([*param.opts, *param.secondary_opts], _first_sentence(param.help), takes_value, values, files)


def _command(cmd: Any, path: list[str]) -> Cmd:
    ctx = Context(cmd)
    options = [o for p in cmd.params if (o := _option(p, ctx))]
    options.append(Opt(["--help"], "Show the help and exit", False))
    subs = [
        _command(sub, [*path, name])
        for name, sub in sorted(getattr(cmd, "commands", {}).items())
        if not getattr(sub, "hidden", False)
    ]
    passthrough = bool(getattr(cmd, "allow_extra_args", False) or
                       (getattr(cmd, "context_settings", None) or {}).get("allow_extra_args"))
    return Cmd(path, _first_sentence(cmd.help), options, subs, passthrough)


def tree(app: typer.Typer) -> Cmd:
    return _command(typer.main.get_command(app), ["lynkr"])


def _walk(cmd: Cmd) -> list[Cmd]:
    return [cmd, *[c for sub in cmd.subcommands for c in _walk(sub)]]


def _zq(text: str) -> str:
    """For inside single quotes in a zsh _arguments spec: brackets and colons are its syntax."""
    return text.replace("'", "'\\''").replace("[", "(").replace("]", ")").replace(":", " -")


def _fq(text: str) -> str:
    """For inside single quotes in fish."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


HEADER = "# {shell} completion for lynkr. Generated from the Typer app by `lynkr completions {shell}`; do not edit."


def bash(app: typer.Typer) -> str:
    root = tree(app)
    cmds = _walk(root)
    out = [HEADER.format(shell="bash"), "", "_lynkr() {",
           '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
           '    local path="lynkr" i w',
           "    for ((i = 1; i < COMP_CWORD; i++)); do",
           '        w="${COMP_WORDS[i]}"',
           '        [ "$w" = "--" ] && return 0',
           '        case "$path $w" in']
    subpaths = [" ".join(c.path) for c in cmds if c is not root]
    out.append("            " + "|".join(f'"{p}"' for p in subpaths) + ') path="$path $w" ;;')
    out += ["        esac", "    done", '    case "$path:$prev" in']
    for c in cmds:
        for o in c.options:
            if not o.takes_value:
                continue
            labels = "|".join(f'"{" ".join(c.path)}:{n}"' for n in o.names)
            if o.values:
                out.append(f'        {labels}) COMPREPLY=($(compgen -W "{" ".join(o.values)}" -- "$cur")); return 0 ;;')
            elif o.files:
                out.append(f'        {labels}) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;')
            else:
                out.append(f"        {labels}) return 0 ;;")
    out += ["    esac", "    local words", '    case "$path" in']
    for c in cmds:
        words = [n for o in c.options for n in o.names] + [s.path[-1] for s in c.subcommands]
        out.append(f'        "{" ".join(c.path)}") words="{" ".join(words)}" ;;')
    out += ["    esac", '    COMPREPLY=($(compgen -W "$words" -- "$cur"))', "}", "",
            "complete -o default -F _lynkr lynkr", ""]
    return "\n".join(out)


def _zsh_fn(path: list[str]) -> str:
    return "_" + "_".join(p.replace("-", "_") for p in path)


def zsh(app: typer.Typer) -> str:
    root = tree(app)
    out = ["#compdef lynkr", HEADER.format(shell="zsh"), ""]
    for c in reversed(_walk(root)):
        specs = []
        for o in c.options:
            action = ""
            if o.takes_value:
                action = (f":value:({' '.join(o.values)})" if o.values else ":file:_files" if o.files else ":value: ")
            names = o.names
            if len(names) == 1:
                specs.append(f"'{names[0]}[{_zq(o.help)}]{action}'")
            else:
                excl = " ".join(names)
                specs.append(f"'({excl})'{{{','.join(names)}}}'[{_zq(o.help)}]{action}'")
        lines = [f"{_zsh_fn(c.path)}() {{"]
        if c.subcommands:
            lines += ["  local curcontext=\"$curcontext\" state line", "  _arguments -C \\"]
            lines += [f"    {s} \\" for s in specs]
            lines += ["    '1: :->command' \\", "    '*:: :->args'", "  case $state in", "    command)",
                      "      local -a commands", "      commands=("]
            lines += [f"        '{s.path[-1]}:{_zq(s.help)}'" for s in c.subcommands]
            lines += ["      )", "      _describe 'command' commands ;;", "    args)", "      case $line[1] in"]
            lines += [f"        {s.path[-1]}) {_zsh_fn(s.path)} ;;" for s in c.subcommands]
            lines += ["      esac ;;", "  esac"]
        else:
            lines.append("  _arguments \\")
            lines += [f"    {s} \\" for s in specs]
            lines.append("    '*::arguments:_normal'" if c.passthrough else "    && return 0")
        lines += ["}", ""]
        out += lines
    out += ['_lynkr "$@"', ""]
    return "\n".join(out)


def fish(app: typer.Typer) -> str:
    root = tree(app)
    out = [HEADER.format(shell="fish"), "", "complete -c lynkr -f"]
    for c in _walk(root):
        if c is root:
            cond = "__fish_use_subcommand"
        elif len(c.path) == 2:
            others = [s.path[-1] for s in c.subcommands]
            cond = f"__fish_seen_subcommand_from {c.path[1]}"
            if others:
                cond += f"; and not __fish_seen_subcommand_from {' '.join(others)}"
        else:
            cond = " ; and ".join(f"__fish_seen_subcommand_from {p}" for p in c.path[1:])
        for s in c.subcommands:
            out.append(f"complete -c lynkr -n '{cond}' -a {s.path[-1]} -d '{_fq(s.help)}'")
        for o in c.options:
            flags = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in o.names)
            extra = ""
            if o.takes_value:
                extra = f" -x -a '{' '.join(o.values)}'" if o.values else " -r -F" if o.files else " -x"
            out.append(f"complete -c lynkr -n '{cond}' {flags}{extra} -d '{_fq(o.help)}'")
    out.append("")
    return "\n".join(out)


GENERATORS = {"bash": bash, "zsh": zsh, "fish": fish}


def script(shell: str, app: typer.Typer) -> str:
    return GENERATORS[shell](app)


def write_all(app: typer.Typer, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for shell in SHELLS:
        path = directory / FILES[shell]
        path.write_text(script(shell, app), encoding="utf-8")
        paths.append(path)
    return paths
