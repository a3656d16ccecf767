"""Imports point one way: the pure layers (convert/, wire/, and the stream decoders) never reach up
into I/O, settings, providers or the server. Checked on the source with ``ast``, without importing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lynkr

ROOT = Path(lynkr.__file__).parent
PURE = [*sorted((ROOT / "convert").glob("*.py")), *sorted((ROOT / "wire").glob("*.py")), ROOT / "sse.py"]
FORBIDDEN = ("aiohttp", "lynkr.server", "lynkr.config", "lynkr.providers", "lynkr.cli",
             "pydantic_settings", "dotenv", "loguru", "logging")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports, relative imports resolved against ``module``; ``from x import y``
    also yields ``x.y`` (y may be a submodule), and imports inside functions or TYPE_CHECKING count too."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden(names: set[str]) -> set[str]:
    return {n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}


def test_the_pure_modules_are_all_found() -> None:
    names = {module_name(p) for p in PURE}
    assert {"lynkr.convert.openai_chat", "lynkr.convert.ollama", "lynkr.convert.anthropic_stream",
            "lynkr.wire.anthropic", "lynkr.sse"} <= names


@pytest.mark.parametrize("path", PURE, ids=lambda p: module_name(p))
def test_pure_module_imports_nothing_from_io_layers(path: Path) -> None:
    found = imports(path.read_text("utf-8"), module_name(path), is_package=path.name == "__init__.py")
    assert not forbidden(found), f"{module_name(path)} imports {sorted(forbidden(found))}"


def test_the_converters_do_import_what_they_should() -> None:
    # guards the checker itself: a parser that found nothing would pass everything
    found = imports((ROOT / "convert" / "openai_chat.py").read_text("utf-8"), "lynkr.convert.openai_chat")
    assert {"orjson", "lynkr.errors", "lynkr.convert.hub", "lynkr.convert.anthropic_stream"} <= found


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import aiohttp", {"aiohttp"}),
        ("from aiohttp import web", {"aiohttp", "aiohttp.web"}),
        ("def f():\n    from lynkr.config import Settings", {"lynkr.config", "lynkr.config.Settings"}),
        ("from lynkr import config", {"lynkr.config"}),
        ("from ..server import app", {"lynkr.server", "lynkr.server.app"}),
        ("from ..providers.http import post", {"lynkr.providers.http", "lynkr.providers.http.post"}),
        ("from . import hub", set()),
        ("import lynkr.configuration_free_name", set()),
    ],
)
def test_the_checker_catches_forbidden_imports(source: str, bad: set[str]) -> None:
    assert forbidden(imports(source, "lynkr.convert.openai_chat")) == bad
