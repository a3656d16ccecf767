"""Settings: .env.example documents every variable lynkr reads, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from lynkr.config import Settings, parse_size
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent


def env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add((field.alias or name).upper())
    return names


def test_env_example_lists_every_variable():
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert documented == env_names()


def test_env_example_loads(tmp_path):
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.model_provider == "ollama"
    assert settings.port == 8081


def test_sizes():
    assert parse_size("32mb") == 32 * 1024**2
    assert parse_size("1gb") == 1024**3
    assert parse_size("512") == 512


def test_secrets_are_hidden_in_repr():
    settings = make_settings(model_provider="openai", openai_api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(settings)
    assert settings.secrets() == ["sk-very-secret"]
