"""``lynkr setup``: a wizard that ends with a working ``.env``.

One code path serves both modes: every question has a default, flags set those defaults, and
``--non-interactive`` takes every default (a question with no default is then an error naming the flag).
Nothing is written until the very end, and then atomically, after showing the diff; Ctrl-C at any point
leaves the old ``.env`` as it was.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import questionary
import typer
from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.syntax import Syntax

from lynkr.cli.agents import state_dir, url_for
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
    mask,
    unified_diff,
    write_with_backup,
)
from lynkr.cli.net import run
from lynkr.cli.ollama import (
    DEFAULT_ENDPOINT,
    INSTALL_COMMAND,
    MIN_CONTEXT,
    RECOMMENDED_CONTEXT,
    RECOMMENDED_MODELS,
    OllamaAdmin,
    PullError,
    find_binary,
    full_name,
    install_command,
    is_local,
    manual_install_hint,
    start_serve,
)
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
OTHER = "__other__"
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


class SetupError(Exception):
    """The wizard cannot go on; the message says what to do."""


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


class Wizard:
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

    # -- Ollama ---------------------------------------------------------------------------------------

    def ollama(self) -> Backend:
        endpoint = self.ui.text("Ollama URL:", self.flag("ollama", "endpoint") or self.current("OLLAMA_ENDPOINT")
                                or DEFAULT_ENDPOINT, "--endpoint", validate=_url)
        key = self.current("OLLAMA_API_KEY")
        admin = OllamaAdmin(endpoint, key)
        tags = run(admin.tags())
        if not tags.reached:
            self.bring_up_ollama(admin, tags.error)
            tags = run(admin.tags())
        if tags.status in (401, 403):
            key = self.ui.secret("Ollama at this URL wants a key (OLLAMA_API_KEY):", None, "--set OLLAMA_API_KEY=...")
            admin = OllamaAdmin(endpoint, key)
            tags = run(admin.tags())
        if not tags.ok:
            raise SetupError(f"Ollama at {endpoint} answered {tags.message()}")
        values = {"OLLAMA_ENDPOINT": endpoint}
        if key:
            values["OLLAMA_API_KEY"] = key
        while True:
            model = self.choose_ollama_model(admin, admin.model_names(tags))
            num_ctx = self.ollama_context(admin, model)
            if self.verify_tool_call(admin, model, num_ctx):
                break
            tags = run(admin.tags())
        values |= {"OLLAMA_MODEL": model, "OLLAMA_NUM_CTX": str(num_ctx)}
        return Backend("ollama", model, values)

    def bring_up_ollama(self, admin: OllamaAdmin, error: str) -> None:
        endpoint = admin.endpoint
        if not is_local(endpoint):
            raise SetupError(f"cannot reach Ollama at {endpoint} ({error}); check the URL, or start Ollama there")
        binary = find_binary(self.opts.ollama_binary)
        if binary is None:
            self.say("Ollama is not installed on this machine.")
            cmd = install_command(override=self.opts.installer)
            if cmd is None:
                raise SetupError(f"install Ollama ({manual_install_hint()}), then run lynkr setup again")
            shown = self.opts.installer or INSTALL_COMMAND
            if not self.ui.confirm(f"Install Ollama now with the official installer ({shown})?",
                                   self.opts.install_ollama):
                raise SetupError(f"lynkr needs Ollama at {endpoint}: install it ({manual_install_hint()}) and run "
                                 "lynkr setup again, or choose another backend")
            self.say(f"[dim]$ {shown}[/]")
            code = subprocess.call(cmd)
            if code != 0:
                raise SetupError(f"the Ollama installer failed (exit {code}); install it by hand: "
                                 f"{manual_install_hint()}")
            binary = find_binary(self.opts.ollama_binary)
            if binary is None:
                raise SetupError("Ollama was installed but `ollama` is not on PATH yet: open a new terminal and "
                                 "run lynkr setup again")
            if run(admin.wait_until_up(2)):  # the Linux installer starts a service
                return
        if not self.ui.confirm(f"Ollama is installed but not answering at {endpoint}. Start `ollama serve` in the "
                               "background?", self.opts.start_ollama):
            raise SetupError(f"start Ollama (ollama serve) so it answers at {endpoint}, then run lynkr setup again")
        log = state_dir() / "ollama-serve.log"
        proc = start_serve(binary, endpoint, log)
        with self.console.status("waiting for ollama serve..."):
            up = run(admin.wait_until_up(30))
        if not up:
            raise SetupError(f"ollama serve did not answer at {endpoint} within 30 s (see {log})")
        self.say(f"started ollama serve (pid {proc.pid}, log {log}); it keeps running after setup")

    def choose_ollama_model(self, admin: OllamaAdmin, installed: list[str]) -> str:
        have = {full_name(n) for n in installed}
        choices = [(n, f"{n} (installed)") for n in installed]
        choices += [(n, f"{n}: {what} (will download)") for n, what in RECOMMENDED_MODELS if full_name(n) not in have]
        choices.append((OTHER, "another model (type its name)"))
        wanted = self.flag("ollama", "model") or self.current("OLLAMA_MODEL")
        recommended = [n for n, _ in RECOMMENDED_MODELS]
        default = (wanted if wanted else next((n for n in installed if n in recommended), None)
                   or (installed[0] if installed else recommended[0]))
        if default not in {v for v, _ in choices}:
            choices.insert(0, (default, f"{default} (will download)"))
        model = self.ui.select("Which model?", choices, default)
        if model == OTHER:
            model = self.ui.text("Model name (as in `ollama pull NAME`):", None, "--model",
                                 validate=lambda a: bool(a.strip()) or "type a model name")
        if full_name(model) not in have:
            if not self.ui.confirm(f"{model} is not installed. Download it now?", self.opts.pull):
                raise SetupError(f"{model} is not installed: run ollama pull {model}, then lynkr setup again")
            self.pull(admin, model)
        return model

    def pull(self, admin: OllamaAdmin, model: str) -> None:
        progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            TimeRemainingColumn(), console=self.console)
        tasks: dict[str, TaskID] = {}
        last_status: list[str] = []

        def on(event: dict[str, Any]) -> None:
            status = str(event.get("status", ""))
            digest, total = event.get("digest"), event.get("total")
            if digest and total:
                if digest not in tasks:
                    tasks[digest] = progress.add_task(f"{status.split()[0]} {str(digest).split(':')[-1][:12]}",
                                                      total=int(total))
                progress.update(tasks[digest], completed=int(event.get("completed") or 0))
            elif status and status not in last_status:
                last_status.append(status)
                progress.console.print(f"  {status}")

        self.say(f"pulling {model} through {admin.url('/api/pull')}")
        try:
            with progress:
                run(admin.pull(model, on))
        except PullError as exc:
            raise SetupError(f"could not download {model}: {exc}") from None
        except KeyboardInterrupt:
            self.say("download interrupted; Ollama keeps what it has and resumes next time")
            raise
        self.say(f"[green]{model} downloaded[/]")

    def ollama_context(self, admin: OllamaAdmin, model: str) -> int:
        trained = admin.context_length(run(admin.show(model)))
        if trained and trained < MIN_CONTEXT:
            self.say(f"[yellow]{model} was trained for {trained:,} tokens; Claude Code's prompt alone needs "
                     f"~{MIN_CONTEXT:,}. Expect it to lose track.[/]")
        default = self.opts.num_ctx or int(self.current("OLLAMA_NUM_CTX") or 0) or (
            min(RECOMMENDED_CONTEXT, trained) if trained else RECOMMENDED_CONTEXT)
        about = f" ({model} supports up to {trained:,}; more context needs more memory)" if trained else ""
        answer = self.ui.text(f"Context window in tokens (OLLAMA_NUM_CTX){about}:", str(default), "--num-ctx",
                              validate=_positive_int)
        return int(answer)

    def verify_tool_call(self, admin: OllamaAdmin, model: str, num_ctx: int) -> bool:
        if not self.opts.check:
            return True
        with self.console.status(f"asking {model} to call a tool (the first answer loads the model)..."):
            result = run(admin.tool_check(model, num_ctx))
        if result.ok:
            self.say(f"[green]tool call ok[/]: {result.detail}")
            return True
        self.say(f"[yellow]tool call check failed[/]: {result.detail}\nClaude Code and Codex work through tool "
                 "calls; a model that cannot make them will only chat.")
        if self.ui.confirm("Use this model anyway?", False):
            return True
        if not self.ui.interactive:
            raise SetupError(f"{model} failed the tool-call check ({result.detail}); pick another --model or pass "
                             "--no-check")
        return False

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
                                    f"--set {endpoint_var}=...", validate=_url)
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


def _url(value: str) -> bool | str:
    return value.startswith(("http://", "https://")) or "a URL starting with http:// or https://"


def _positive_int(value: str) -> bool | str:
    return (value.strip().isdigit() and int(value) > 0) or "a whole number of tokens, e.g. 32768"


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
