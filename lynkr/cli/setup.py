"""``lynkr setup``: a wizard that ends with a working ``.env``.

One code path serves both modes: every question has a default, flags set those defaults, and
``--non-interactive`` takes every default (a question with no default is then an error naming the flag).
Nothing is written until the very end, and then atomically, after showing the diff; Ctrl-C at any point
leaves the old ``.env`` as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax

from lynkr.cli.agents import url_for
from lynkr.cli.checks import (
    KEY_PAGES,
    OPENAI_MODEL_LISTS,
    Check,
    check_anthropic,
    check_gemini,
    check_openai_compatible,
    env_var,
    variables,
)
from lynkr.cli.envfile import (
    TIER_VARIABLES,
    EnvFile,
    backup_path,
    did_you_mean,
    known_names,
    unified_diff,
    write_with_backup,
)
from lynkr.cli.net import run
from lynkr.cli.setup_ollama import OllamaSteps
from lynkr.cli.setup_ui import Backend, Options, SetupError, is_url
from lynkr.config import Settings
from lynkr.providers import REGISTRY
from lynkr.providers.base import BackendSettings

LABELS = {
    "ollama": "Ollama (local models on this machine)",
    "openrouter": "OpenRouter (one key, hundreds of models)",
    "openai": "OpenAI",
    "azure-openai": "Azure OpenAI",
    "llamacpp": "llama.cpp server (llama-server)",
    "lmstudio": "LM Studio",
    "anthropic": "Anthropic API",
    "bedrock": "AWS Bedrock",
    "databricks": "Databricks model serving",
    "azure-anthropic": "Claude on Azure AI Foundry",
    "zai": "Z.AI (GLM)",
    "moonshot": "Moonshot (Kimi)",
    "gemini": "Google Gemini (AI Studio key)",
    "vertex": "Google Gemini (Lynkr's name: vertex)",
}
LOCAL = ("ollama", "llamacpp", "lmstudio")
PRESETS = ("none", "local-first", "cloud-first", "split")
ALIASES = {"vertex"}  # another name for gemini: not offered twice
PROBES: dict[str, Callable[[BackendSettings, float], Coroutine[Any, Any, list[Check]]]] = {
    **{n: check_openai_compatible for n in OPENAI_MODEL_LISTS},
    "anthropic": check_anthropic,
    "gemini": check_gemini,
    "vertex": check_gemini,
}

COMMENTS = {
    "MODEL_PROVIDER": "Which backend serves requests (ollama, openai, openrouter, azure-openai, llamacpp, lmstudio).",
    "OLLAMA_NUM_CTX": "Context window asked of Ollama: Claude Code's system prompt and tools alone need ~20k tokens.",
    "PORT": "Port Claude Code / Codex / Cursor connect to.",
}
TIER_COMMENT = """Tier routing: which provider:model serves each kind of request (simple side calls,
ordinary edits, hard multi-file work, deep reasoning); each request is scored and sent to its tier.
An unset tier uses MODEL_PROVIDER's model."""
HEADER = """# lynkr settings, written by `lynkr setup`. .env.example documents every variable;
# `lynkr config show` prints the effective values and `lynkr doctor` checks them."""


def _default(attr: str) -> str | None:
    """A setting's default as text (None when it has none, or is not a plain setting)."""
    field = Settings.model_fields.get(attr)
    return None if field is None or field.default is None else str(field.default)


ENDPOINT_PROMPTS = {
    "azure-openai": "Azure OpenAI resource URL (https://NAME.openai.azure.com):",
    "azure-anthropic": "Azure AI Foundry Claude URL (https://NAME.services.ai.azure.com/anthropic):",
    "databricks": "Databricks workspace URL (https://WORKSPACE.cloud.databricks.com):",
    "llamacpp": "llama-server URL:",
    "lmstudio": "LM Studio server URL:",
}


class Wizard(OllamaSteps):
    """Every step of ``lynkr setup`` (the Ollama ones in ``lynkr.cli.setup_ollama``)."""

    # -- the steps ------------------------------------------------------------------------------------

    def run(self) -> list[tuple[str, str, str | None]]:
        """Ask everything; return the (variable, value, comment) updates. Writes nothing."""
        for key in self.opts.sets:
            if key not in known_names():
                guess = did_you_mean(key)
                raise SetupError(f"--set {key}: not a lynkr variable" + (f" (did you mean {guess}?)" if guess else ""))
        self.say(Panel.fit("[bold]lynkr setup[/]: choose backends, check them, write "
                           f"[cyan]{self.opts.env_file}[/]\nNothing is written until the end; Ctrl-C leaves your "
                           "files as they are.", border_style="cyan"))
        names = self.choose_backends()
        backends = [self.configure(name) for name in names]
        updates: list[tuple[str, str, str | None]] = [("MODEL_PROVIDER", self.primary, COMMENTS["MODEL_PROVIDER"])]
        for b in backends:
            updates += [(k, v, None) for k, v in b.values.items()]
        if self.opts.port is not None:
            updates.append(("PORT", str(self.opts.port), COMMENTS["PORT"]))
        updates += self.tiers(backends)
        known = {k for k, _, _ in updates}
        updates += [(k, v, None) for k, v in self.opts.sets.items() if k not in known]
        return updates

    def choose_backends(self) -> list[str]:
        given = self.opts.providers
        for name in given:
            if name not in REGISTRY:
                raise SetupError(f"--provider {name}: not a backend lynkr knows (use one of {', '.join(REGISTRY)})")
        existing = self.current("MODEL_PROVIDER")
        defaults = given or ([existing] if existing in REGISTRY else ["ollama"])
        choices = [(n, LABELS.get(n, n)) for n in REGISTRY if n not in ALIASES or n in defaults]
        names = self.ui.checkbox("Which backends should lynkr use?", choices, defaults)
        if len(names) == 1:
            self.primary = names[0]
        else:
            self.primary = self.ui.select("Which one serves requests by default (MODEL_PROVIDER)?",
                                          [(n, LABELS.get(n, n)) for n in names],
                                          defaults[0] if defaults[0] in names else names[0])
        return [self.primary, *[n for n in names if n != self.primary]]

    def configure(self, name: str) -> Backend:
        self.say(f"\n[bold]{LABELS.get(name, name)}[/]")
        if name == "ollama":
            return self.ollama()
        return self.remote(name)

    # -- OpenAI-compatible backends -----------------------------------------------------------------

    def remote(self, name: str) -> Backend:
        """Any backend but Ollama: its URL when it has no usable default, its key, its model; then a cheap
        real call (the model list) where lynkr knows one."""
        spec = REGISTRY[name].spec
        endpoint_var, model_var, key_var = variables(name)
        is_field = Settings.model_fields.__contains__
        endpoint = self.flag(name, "endpoint") or self.current(endpoint_var) or _default(spec.endpoint) or ""
        ask_endpoint = is_field(spec.endpoint) and (spec.endpoint in spec.required or name in LOCAL)
        if ask_endpoint:
            endpoint = self.ui.text(ENDPOINT_PROMPTS.get(name, f"{endpoint_var}:"), endpoint or None,
                                    f"--set {endpoint_var}=...", validate=is_url)
        needs_key = spec.api_key is not None and spec.api_key in spec.required
        key = self.flag(name, "api_key") or (self.current(key_var) if spec.api_key else None)
        model = self.flag(name, "model") or self.current(model_var) or _default(spec.model) or ""
        if is_field(spec.model) and name not in LOCAL:
            model = self.ui.text(f"Model ({model_var}):", model or None, "--model")
        key_flag = "--api-key" if name == self.primary else f"--set {key_var}=..."
        for attempt in range(3):
            if needs_key:
                where = f"; get one at {KEY_PAGES[name]}" if name in KEY_PAGES else ""
                key = self.ui.secret(f"{key_var} (input hidden{where}):", key, key_flag)
            extra = {a: (self.current(env_var(a)) or _default(a)) for a in spec.extra}
            backend = BackendSettings(name, endpoint, key, model, 60_000, extra)
            problem = self.check_backend(backend)
            if problem is None:
                break
            self.say(f"[red]{problem.detail}[/]\n[bold]fix:[/] {problem.fix}")
            if not self.ui.interactive or attempt == 2 or problem.name == "reachable":
                raise SetupError(f"{name}: {problem.detail} ({problem.fix})")
            if problem.name == "model":
                model = self.ui.text(f"Model ({model_var}):", None, "--model")
            else:
                key = None
        values: dict[str, str] = {}
        if is_field(spec.endpoint) and endpoint and endpoint != _default(spec.endpoint):
            values[endpoint_var] = endpoint
        if is_field(spec.model) and model:
            values[model_var] = model
        if key and spec.api_key:
            values[key_var] = key
        return Backend(name, model, values)

    def check_backend(self, backend: BackendSettings) -> Check | None:
        """The first failing check, or None when the backend takes the key and has the model."""
        if not self.opts.check:
            return None
        probe = PROBES.get(backend.name)
        if probe is None:
            self.say(f"[dim]no cheap live check for {backend.name}; lynkr doctor and the first request will tell[/]")
            return None
        with self.console.status(f"checking {backend.name} (its model list)..."):
            checks = run(probe(backend, 15.0))
        for c in checks:
            if c.status == "fail":
                return c
        self.say(f"[green]{backend.name} ok[/]: " + "; ".join(f"{c.name} {c.detail}" for c in checks))
        return None

    # -- tiers ----------------------------------------------------------------------------------------

    def tiers(self, backends: list[Backend]) -> list[tuple[str, str, str | None]]:
        explicit: dict[str, str] = {}
        for item in self.opts.tier:
            tier, _, target = item.partition("=")
            var = f"TIER_{tier.strip().upper()}"
            provider, _, model = target.partition(":")
            if var not in TIER_VARIABLES:
                raise SetupError(f"--tier {item}: the tiers are simple, medium, complex and reasoning")
            if provider not in REGISTRY or not model:
                raise SetupError(f"--tier {item}: write it as TIER=provider:model, e.g. complex=openrouter:"
                                 "anthropic/claude-sonnet-4")
            explicit[var] = target
        presets = tier_presets(backends)
        choices = [(key, label) for key, (label, _) in presets.items()]
        default = self.opts.tiers or ("none" if explicit or len(presets) == 1 else next(iter(p for p in presets
                                                                                               if p != "none")))
        if default not in presets:
            raise SetupError(f"--tiers {default}: choose one of {', '.join(presets)}")
        preset = self.ui.select("Tier routing preset (which model serves which kind of request)?", choices,
                                default) if len(presets) > 1 else default
        chosen = {**presets[preset][1], **explicit}
        updates: list[tuple[str, str, str | None]] = []
        for i, var in enumerate(v for v in TIER_VARIABLES if v in chosen):
            updates.append((var, chosen[var], TIER_COMMENT if i == 0 else None))
        return updates


def tier_presets(backends: list[Backend]) -> dict[str, tuple[str, dict[str, str]]]:
    presets: dict[str, tuple[str, dict[str, str]]] = {
        "none": ("one model for everything (no tiers)", {}),
    }
    local = next((b for b in backends if b.name in LOCAL), None)
    cloud = next((b for b in backends if b.name not in LOCAL), None)
    if local and cloud:
        lm, cm = f"{local.name}:{local.model}", f"{cloud.name}:{cloud.model}"
        presets["local-first"] = (f"local first: simple and medium on {lm}, complex and reasoning on {cm}",
                                  dict(zip(TIER_VARIABLES, (lm, lm, cm, cm), strict=True)))
        presets["cloud-first"] = (f"cloud first: only simple side calls on {lm}, the rest on {cm}",
                                  dict(zip(TIER_VARIABLES, (lm, cm, cm, cm), strict=True)))
    elif len(backends) > 1:
        a, b = (f"{x.name}:{x.model}" for x in backends[:2])
        presets["split"] = (f"split: simple and medium on {a}, complex and reasoning on {b}",
                            dict(zip(TIER_VARIABLES, (a, a, b, b), strict=True)))
    return presets


# -- writing --------------------------------------------------------------------------------------------


def compose(env: EnvFile, updates: list[tuple[str, str, str | None]]) -> str:
    if not env.lines:
        env.lines = HEADER.splitlines()
    for key, value, comment in updates:
        env.set(key, value, comment)
    return env.render()


def write(wizard: Wizard, text: str) -> bool:
    """Show what changes and write it; False when the user keeps the old file."""
    path, console = wizard.opts.env_file, wizard.console
    old = path.read_text("utf-8") if path.is_file() else None
    if old == text:
        console.print(f"{path} already says exactly this; nothing to write")
        return True
    if old is not None:
        diff = unified_diff(EnvFile.parse(old).masked(), EnvFile.parse(text).masked(), str(path))
        console.print(Panel(Syntax(diff, "diff", theme="ansi_dark", background_color="default"),
                            title=f"changes to {path} (keys masked)", border_style="yellow"))
        if not wizard.ui.confirm(f"Replace {path}? The current file is kept as {backup_path(path)}.",
                                 wizard.opts.yes):
            if not wizard.ui.interactive:
                raise SetupError(f"{path} exists and differs; pass --yes to replace it (a backup is kept as "
                                 f"{backup_path(path)})")
            console.print(f"left {path} as it was")
            return False
    backup = write_with_backup(path, text)
    console.print(f"[green]wrote {path}[/] (mode 600)" + (f"; the previous one is {backup}" if backup else ""))
    return True


def next_steps(wizard: Wizard, text: str, console: Console) -> None:
    env = EnvFile.parse(text)
    port = env.get("PORT") or _default("port") or "8081"
    host = env.get("LYNKR_HOST") or "127.0.0.1"
    url = url_for(host, int(port))
    flag = "" if wizard.opts.env_file == Path(".env") else f" --env-file {wizard.opts.env_file}"
    lines = [
        ("Start lynkr", f"lynkr start{flag}"),
        ("Claude Code", f"lynkr code{flag}    or: ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY=lynkr claude"),
        ("Codex", f"lynkr codex{flag}   (adds [model_providers.lynkr] to ~/.codex/config.toml, then runs codex)"),
        ("Cursor", f"Settings > Models > OpenAI API key: lynkr, override OpenAI base URL: {url}/v1"),
        ("Check it all", f"lynkr doctor{flag}"),
    ]
    width = max(len(a) for a, _ in lines)
    console.print(Panel("\n".join(f"[bold]{a:<{width}}[/]  {b}" for a, b in lines), title="next",
                        border_style="green"))


def setup(
    env_file: Path = typer.Option(Path(".env"), "--env-file", help="The settings file to write."),
    non_interactive: bool = typer.Option(False, "--non-interactive", help="Ask nothing: take flags and defaults."),
    provider: list[str] = typer.Option([], "--provider", help="Backend to use (repeat for several; the first "
                                       "serves by default): ollama, openai, openrouter, azure-openai, llamacpp, "
                                       "lmstudio."),
    model: str | None = typer.Option(None, "--model", help="Model of the first --provider."),
    api_key: str | None = typer.Option(None, "--api-key", help="Key of the first --provider (or set its *_API_KEY "
                                       "variable in the environment)."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="URL of the first --provider."),
    num_ctx: int | None = typer.Option(None, "--num-ctx", min=1, help="Ollama context window (OLLAMA_NUM_CTX)."),
    pull: bool = typer.Option(True, "--pull/--no-pull", help="Download the Ollama model when it is missing."),
    start_ollama: bool = typer.Option(True, "--start-ollama/--no-start-ollama",
                                      help="Start `ollama serve` when Ollama is installed but not running."),
    install_ollama: bool = typer.Option(False, "--install-ollama", help="Run Ollama's official installer when "
                                        "Ollama is missing (Linux, macOS)."),
    tiers: str | None = typer.Option(None, "--tiers", help="Tier preset: none, local-first, cloud-first, split.",
                                     autocompletion=lambda: list(PRESETS)),
    tier: list[str] = typer.Option([], "--tier", help="One tier, e.g. complex=openrouter:anthropic/claude-sonnet-4 "
                                   "(repeatable)."),
    set_: list[str] = typer.Option([], "--set", help="Any other variable, KEY=VALUE (repeatable)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port lynkr listens on (PORT)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Check keys, models and tool calls with real calls."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace an existing, different .env (a backup is kept)."),
    installer: str | None = typer.Option(None, "--ollama-installer", envvar="LYNKR_OLLAMA_INSTALLER", hidden=True),
    ollama_binary: str = typer.Option("ollama", "--ollama-binary", envvar="LYNKR_OLLAMA_BINARY", hidden=True),
) -> None:
    """Pick backends and models, check them, and write .env (shows the diff, keeps a backup)."""
    sets: dict[str, str] = {}
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            typer.echo(f"lynkr setup: --set {item}: write it as KEY=VALUE", err=True)
            raise typer.Exit(2)
        sets[key.strip()] = value
    opts = Options(env_file=env_file, interactive=not non_interactive, providers=provider, model=model,
                   api_key=api_key, endpoint=endpoint, num_ctx=num_ctx, pull=pull, start_ollama=start_ollama,
                   install_ollama=install_ollama, tiers=tiers, tier=tier, sets=sets, port=port, check=check, yes=yes,
                   installer=installer, ollama_binary=ollama_binary)
    console = Console(highlight=False)
    wizard = Wizard(opts, console, os.environ)
    try:
        updates = wizard.run()
        text = compose(EnvFile.load(env_file), updates)
        if write(wizard, text):
            next_steps(wizard, text, console)
    except SetupError as exc:
        console.print(f"[red]lynkr setup:[/] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print(f"\nsetup cancelled; {env_file} was not changed")
        raise typer.Exit(130) from None
