"""Reading and editing ``.env`` files for the CLI: known variable names, "did you mean", masked values,
line-preserving edits, and an atomic write that never replaces a file silently."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from dotenv import dotenv_values
from pydantic import AliasChoices, SecretStr

from lynkr.config import Settings

# Written by ``lynkr setup``, read by tier routing (Settings.tier_*); listed here too so the CLI knows them
# whatever the Settings version.
TIER_VARIABLES = ("TIER_SIMPLE", "TIER_MEDIUM", "TIER_COMPLEX", "TIER_REASONING")

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_COMMENTED = re.compile(r"^\s*#\s?([A-Z][A-Z0-9_]*)=")
_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./~-]*$")


def setting_names() -> dict[str, str]:
    """Environment variable name -> Settings attribute, for every setting lynkr reads (a setting read under
    several names, through ``AliasChoices``, appears under each)."""
    names: dict[str, str] = {}
    for attr, field in Settings.model_fields.items():
        choices = field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else []
        found = [c for c in choices if isinstance(c, str)] or [field.alias or attr]
        for env in found:
            names.setdefault(env.upper(), attr)
    return names


def primary_name(attr: str) -> str:
    """The variable name lynkr writes for a Settings attribute."""
    return next((env for env, a in setting_names().items() if a == attr), attr.upper())


def secret_names() -> set[str]:
    return {env for env, attr in setting_names().items()
            if Settings.model_fields[attr].annotation in (SecretStr, SecretStr | None)}


def known_names() -> set[str]:
    return set(setting_names()) | set(TIER_VARIABLES)


def did_you_mean(name: str, candidates: Iterable[str] | None = None) -> str | None:
    """The closest known variable name to a misspelt one, or None."""
    pool = sorted(candidates if candidates is not None else known_names())
    upper = name.upper()
    if upper in pool:
        return upper  # only the case is wrong
    match = difflib.get_close_matches(upper, pool, n=1, cutoff=0.75)
    return match[0] if match else None


def is_secret(name: str) -> bool:
    return name in secret_names() or name.endswith(("_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD"))


def mask(value: str) -> str:
    """Enough of a secret to recognise it, not enough to use it."""
    if not value:
        return ""
    if len(value) < 12:
        return "****"
    return f"{value[:3]}…{value[-4:]}"


def quote(value: str) -> str:
    if _PLAIN.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass
class EnvFile:
    """A ``.env`` text edited line by line: comments, order and untouched lines survive."""

    lines: list[str]

    @classmethod
    def parse(cls, text: str) -> EnvFile:
        return cls(text.splitlines())

    @classmethod
    def load(cls, path: Path) -> EnvFile:
        return cls.parse(path.read_text("utf-8")) if path.is_file() else cls([])

    def keys(self) -> list[str]:
        return [m.group(1) for line in self.lines if (m := _LINE.match(line))]

    def get(self, key: str) -> str | None:
        return dotenv_values(stream=StringIO(self.render())).get(key)

    def set(self, key: str, value: str, comment: str | None = None) -> None:
        """Replace ``KEY=...`` in place, else uncomment a ``# KEY=...`` line, else append (with ``comment``)."""
        new = f"{key}={quote(value)}"
        for i, line in enumerate(self.lines):
            m = _LINE.match(line)
            if m and m.group(1) == key:
                self.lines[i] = new
                return
        for i, line in enumerate(self.lines):
            m = _COMMENTED.match(line)
            if m and m.group(1) == key:
                self.lines[i] = new
                return
        if comment:
            if self.lines and self.lines[-1].strip():
                self.lines.append("")
            self.lines.extend(f"# {c}" if c else "#" for c in comment.splitlines())
        self.lines.append(new)

    def render(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""

    def masked(self) -> str:
        out = []
        for line in self.lines:
            m = _LINE.match(line)
            if m and is_secret(m.group(1)):
                value = m.group(2).strip().strip("\"'")
                line = f"{m.group(1)}={mask(value)}"
            out.append(line)
        return "\n".join(out) + "\n" if out else ""


def unified_diff(old: str, new: str, name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"{name} (now)", tofile=f"{name} (new)"))


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it over: readers see the old file or the
    new one, never half of either, even on Ctrl-C."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def write_with_backup(path: Path, text: str) -> Path | None:
    """Atomically replace ``path``; an existing, different file is first copied to ``path.bak``.
    Returns the backup's path, or None when there was nothing to back up."""
    backup = None
    if path.is_file():
        old = path.read_text("utf-8")
        if old == text:
            return None
        backup = backup_path(path)
        atomic_write(backup, old)
    atomic_write(path, text)
    return backup
