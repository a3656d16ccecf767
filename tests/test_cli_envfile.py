"""The .env helpers behind setup, doctor and config show: line-preserving edits, masking, "did you mean",
and an atomic write that leaves the old file whole when interrupted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lynkr.cli import envfile
from lynkr.cli.envfile import EnvFile, atomic_write, did_you_mean, known_names, mask, write_with_backup


def test_known_names_cover_settings_aliases_and_tiers():
    names = known_names()
    assert {"MODEL_PROVIDER", "LYNKR_HOST", "PORT", "OLLAMA_NUM_CTX", "TIER_SIMPLE", "TIER_REASONING"} <= names
    assert "HOST" not in names  # the field is read as LYNKR_HOST only


@pytest.mark.parametrize(("typo", "meant"), [
    ("OLAMA_MODEL", "OLLAMA_MODEL"),
    ("OPENAI_APIKEY", "OPENAI_API_KEY"),
    ("model_provider", "MODEL_PROVIDER"),
    ("OLLAMA_NUMCTX", "OLLAMA_NUM_CTX"),
    ("TIER_COMPLX", "TIER_COMPLEX"),
    ("COMPLETELY_UNRELATED", None),
])
def test_did_you_mean(typo: str, meant: str | None):
    assert did_you_mean(typo) == meant


def test_mask():
    assert mask("sk-proj-abcdefghijklmnop1234") == "sk-…1234"
    assert mask("short") == "****"
    assert mask("") == ""


def test_set_replaces_in_place_uncomments_or_appends():
    env = EnvFile.parse("# top\nexport MODEL_PROVIDER=openai\n# OLLAMA_NUM_CTX=32768\nLOG_LEVEL=info\n")
    env.set("MODEL_PROVIDER", "ollama")
    env.set("OLLAMA_NUM_CTX", "16384")
    env.set("TIER_SIMPLE", "ollama:qwen3:8b", comment="tiers\nsecond line")
    env.set("OPENAI_API_KEY", 'has "quotes" and spaces')
    text = env.render()
    assert text.splitlines() == ["# top", "MODEL_PROVIDER=ollama", "OLLAMA_NUM_CTX=16384", "LOG_LEVEL=info", "",
                                 "# tiers", "# second line", "TIER_SIMPLE=ollama:qwen3:8b",
                                 'OPENAI_API_KEY="has \\"quotes\\" and spaces"']
    assert EnvFile.parse(text).get("OPENAI_API_KEY") == 'has "quotes" and spaces'
    assert EnvFile.parse(text).get("TIER_SIMPLE") == "ollama:qwen3:8b"


def test_masked_hides_only_secrets():
    env = EnvFile.parse("OPENAI_API_KEY=sk-abcdefghijklmnop9876\nOPENAI_MODEL=gpt-4o\nMY_TOKEN=tok-1234567890123\n")
    assert env.masked() == "OPENAI_API_KEY=sk-…9876\nOPENAI_MODEL=gpt-4o\nMY_TOKEN=tok…0123\n"


def test_atomic_write_and_backup(tmp_path: Path):
    path = tmp_path / ".env"
    assert write_with_backup(path, "A=1\n") is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_with_backup(path, "A=1\n") is None  # same content: nothing to back up
    backup = write_with_backup(path, "A=2\n")
    assert backup == tmp_path / ".env.bak" and backup.read_text() == "A=1\n"
    assert path.read_text() == "A=2\n"


def test_interrupted_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / ".env"
    path.write_text("OLD=1\n")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, "NEW=1\n")
    assert path.read_text() == "OLD=1\n"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]


def test_secret_names_come_from_settings():
    assert {"OPENAI_API_KEY", "OLLAMA_API_KEY"} <= envfile.secret_names()
    assert "OPENAI_MODEL" not in envfile.secret_names()
