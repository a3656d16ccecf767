"""Shell completions in completions/ are generated from the Typer app and kept current; the bash one really
completes; zsh and fish parse (where those shells are installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lynkr.cli import app
from lynkr.cli.completions import FILES, SHELLS, script

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
REGENERATE = "run: lynkr completions --write completions"


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_completions_are_current(shell: str):
    committed = ROOT / "completions" / FILES[shell]
    assert committed.is_file(), REGENERATE
    assert committed.read_text() == script(shell, app), f"completions/{FILES[shell]} is stale; {REGENERATE}"


def test_write_regenerates_all_three(tmp_path: Path):
    result = runner.invoke(app, ["completions", "--write", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES.values())
    assert (tmp_path / "lynkr.bash").read_text() == script("bash", app)


def test_print_one_and_unknown_shell():
    result = runner.invoke(app, ["completions", "zsh"])
    assert result.exit_code == 0 and result.output.startswith("#compdef lynkr")
    result = runner.invoke(app, ["completions", "powershell"])
    assert result.exit_code == 2 and "no completions for 'powershell'" in result.output


def complete_bash(words: list[str]) -> list[str]:
    line = " ".join(f"'{w}'" for w in words)
    program = (f"source {ROOT / 'completions' / 'lynkr.bash'}\nCOMP_WORDS=({line})\n"
               f"COMP_CWORD={len(words) - 1}\n_lynkr\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.split()


@pytest.mark.parametrize(("words", "expected"), [
    (["lynkr", ""], {"start", "setup", "doctor", "code", "codex", "config", "completions", "--version", "-V",
                     "--help"}),
    (["lynkr", "do"], {"doctor"}),
    (["lynkr", "config", ""], {"show", "--help"}),
    (["lynkr", "doctor", "--j"], {"--json"}),
    (["lynkr", "setup", "--tiers", "lo"], {"local-first"}),
    (["lynkr", "start", "--log-level", ""], {"debug", "info", "warning", "error"}),
    (["lynkr", "setup", "--non"], {"--non-interactive"}),
])
def test_bash_completion_completes(words: list[str], expected: set[str]):
    assert set(complete_bash(words)) == expected


def test_bash_completion_leaves_words_after_double_dash_alone():
    assert complete_bash(["lynkr", "code", "--", "--re"]) == []


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_parse_their_script(shell: str):
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed")
    path = ROOT / "completions" / FILES[shell]
    check = [binary, "-n", str(path)] if shell == "zsh" else [binary, "--no-execute", str(path)]
    result = subprocess.run(check, capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
