"""``lynkr setup``'s Ollama steps: reach it (install it and start ``ollama serve`` when asked), choose and pull a
model with a progress bar, choose the context window, and check that the model makes a tool call."""

from __future__ import annotations

import subprocess
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from lynkr.cli.agents import state_dir
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
from lynkr.cli.setup_ui import OTHER, Backend, SetupError, WizardBase, is_url, positive_int


class OllamaSteps(WizardBase):
    def ollama(self) -> Backend:
        endpoint = self.ui.text("Ollama URL:", self.flag("ollama", "endpoint") or self.current("OLLAMA_ENDPOINT")
                                or DEFAULT_ENDPOINT, "--endpoint", validate=is_url)
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
                              validate=positive_int)
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
