"""Child processes for benchmarks: start, read their CPU time and memory from /proc, always stop them.

Children run in their own session (a Ctrl-C in the terminal reaches only the benchmark, which then
stops them in order) and, on Linux, ask the kernel to SIGTERM them if the benchmark dies without
cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# What a child keeps from our environment: enough to run, nothing that could change lynkr's
# settings (pydantic-settings reads the environment before the env file) or route 127.0.0.1
# through a proxy (lynkr's client session has trust_env=True).
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


class BenchError(RuntimeError):
    """A benchmark could not run (a process failed to start, a request failed)."""


def child_env(**extra: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Proc:
    """A child process with a log file, CPU-time and RSS readings, and a stop that always happens."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], cwd: Path, log: Path,
                 stdout_pipe: bool = False) -> None:
        self.name = name
        self.log = log
        self._log_fh: IO[bytes] = log.open("wb")
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log_fh, stderr=self._log_fh,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def read_line(self, timeout: float) -> str:
        """One line from the child's stdout (``stdout_pipe=True``), or BenchError after ``timeout`` s."""
        assert self.popen.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.popen.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise BenchError(f"{self.name} did not report in {timeout:.0f} s; log:\n{self.log_tail()}")
        line = self.popen.stdout.readline().decode(errors="replace").strip()
        if not line:
            self.popen.wait(timeout=2)
            raise BenchError(f"{self.name} exited with {self.popen.returncode}; log:\n{self.log_tail()}")
        return line

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; fields[0] is field 3 (state)
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def cpu_ns(self) -> int | None:
        """CPU time of the live threads in nanoseconds: the sum of ``/proc/<pid>/task/*/schedstat``'s first
        field (the scheduler's ``sum_exec_runtime``, of which utime + stime are the tick-rounded split).
        None where schedstat is missing. Threads that exit take their time with them: compare with
        ``cpu_seconds`` over the same interval (``benchmarks.run`` does) before trusting it."""
        total = 0
        try:
            tasks = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return None
        for tid in tasks:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat", "rb") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:
                continue  # the thread exited between listdir and open
            except (OSError, ValueError, IndexError):
                return None
        return total

    def rss_bytes(self) -> int:
        """VmRSS from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise BenchError(f"no VmRSS for {self.name} (pid {self.pid})")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            if not self._log_fh.closed:
                self._log_fh.flush()
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; safe to call twice."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(timeout=timeout)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._log_fh.close()

