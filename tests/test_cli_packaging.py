"""Packaging files that cannot be run here (no Docker, no Homebrew) checked for what matters: slim base,
non-root user, healthcheck on /health/live, loopback-only publishing, the Homebrew virtualenv pattern with a
resource for every dependency, and the sdist carrying what the formula installs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dockerfile() -> list[str]:
    return (ROOT / "Dockerfile").read_text().splitlines()


def final_stage(lines: list[str]) -> list[str]:
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    return lines[starts[-1]:]


def test_dockerfile_runs_slim_as_a_non_root_user_with_a_healthcheck():
    stage = final_stage(dockerfile())
    assert stage[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    text = "\n".join(stage)
    assert re.search(rf"useradd .*\b{users[-1]}\b", text)
    assert re.search(r"^HEALTHCHECK .*\\\n\s+CMD .*/health/live", text, flags=re.MULTILINE)
    assert "LYNKR_HOST=0.0.0.0" in text
    assert 'ENTRYPOINT ["lynkr"]' in text and 'CMD ["start"]' in text
    assert "EXPOSE 8081" in text


def test_dockerfile_copies_what_the_wheel_needs():
    text = "\n".join(dockerfile())
    for path in ("pyproject.toml", "README.md", "lynkr"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, flags=re.MULTILINE), path
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".git" in ignored  # no secrets, no history in the build context
    assert "lynkr" not in ignored and "pyproject.toml" not in ignored


def compose_services(text: str) -> dict[str, str]:
    """Top-level services and their blocks (a text check: PyYAML is not a dependency)."""
    body = text.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    blocks = re.split(r"^  (?=[a-z][\w-]*:\n)", body, flags=re.MULTILINE)
    return {b.split(":", 1)[0]: b for b in blocks if b.strip() and not b.startswith(" ")}


def test_compose_has_lynkr_and_an_optional_ollama():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "\t" not in text
    services = compose_services(text)
    assert set(services) == {"lynkr", "ollama"}
    lynkr, ollama = services["lynkr"], services["ollama"]
    assert "build: ." in lynkr
    assert '"127.0.0.1:${LYNKR_PORT:-8081}:8081"' in lynkr  # published on the host's loopback only
    assert "LYNKR_HOST: 0.0.0.0" in lynkr and "/health/live" in lynkr
    assert "required: false" in lynkr  # .env and the ollama service are optional
    assert 'profiles: ["ollama"]' in ollama and "image: ollama/ollama" in ollama
    assert "profiles" not in lynkr
    assert re.search(r"^volumes:\n  ollama:", text, flags=re.MULTILINE)


def test_homebrew_formula_uses_the_virtualenv_pattern():
    text = (ROOT / "packaging" / "homebrew" / "lynkr.rb").read_text()
    assert "class Lynkr < Formula" in text
    assert "include Language::Python::Virtualenv" in text
    assert "virtualenv_install_with_resources" in text
    assert re.search(r'depends_on "python@3\.\d+"', text)
    assert 'shell_output("#{bin}/lynkr --version")' in text
    for path in ("completions/lynkr.bash", "completions/_lynkr", "completions/lynkr.fish"):
        assert path in text


def test_homebrew_formula_has_a_resource_for_every_dependency():
    text = (ROOT / "packaging" / "homebrew" / "lynkr.rb").read_text()
    resources = set(re.findall(r'^  resource "([^"]+)" do\n    url "https://[^"]+\.tar\.gz"\n    sha256 "[0-9a-f]{64}"',
                               text, flags=re.MULTILINE))
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    missing = names - resources
    assert not missing, f"run .venv/bin/python packaging/homebrew/update_resources.py (missing: {sorted(missing)})"


def test_sdist_ships_the_completions_the_formula_installs():
    sdist = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["sdist"]
    assert "completions" in sdist["include"]
