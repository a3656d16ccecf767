"""Instructions per request, counted by valgrind's callgrind: the figure that does not move with the
machine's load. The same run twice agrees to about 0.5%, where CPU time per request moves by 10-30% on a
shared 2-core VM; use it to compare two versions of lynkr, or lynkr with the floor, change by change.

    python -m benchmarks.instructions                         # lynkr (this tree) and the floor
    python -m benchmarks.instructions --lynkr-src /tmp/base   # another tree (git archive HEAD lynkr | tar -x)
    python -m benchmarks.instructions --only lynkr --cases coalesced

Each target (lynkr as ``lynkr start``, the floor proxy) runs under ``valgrind --tool=callgrind`` with
instrumentation off; after a warm-up it is switched on (``callgrind_control -i on``) for the measured
requests only and dumped, so start-up is not counted. The fake upstream runs natively. Two cases, both the
40 kB Claude Code-shaped request translated to OpenAI and streamed back (20 frames):

* ``coalesced``, 16 in flight: valgrind slows the proxy ~50x, so a stream's frames have all arrived by the
  time it reads them (one or two reads per stream): per-request work.
* ``paced``, one at a time, the upstream sleeping ``--paced-ms`` between frames: one read per frame, so the
  per-read work (the wake-up, the frames an event passes through, timers) counts too. It also counts what the
  proxy does in the background during the stream's ~0.3 s (lynkr: ~0.4 M instructions/s when idle).

What it cannot see: time in the kernel, cache misses and branch mispredictions (lynkr runs more distinct
Python than the floor, so its CPU time per request is a larger multiple of the floor's than its instruction
count; ``valgrind --cache-sim=yes --branch-sim=yes`` shows both, at 3x the run time).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from benchmarks.fixtures import UPSTREAM_MODEL, claude_code_headers, claude_code_request_sized
from benchmarks.procs import BenchError, Proc, child_env, free_port
from benchmarks.run import ready_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    name: str
    requests: int
    concurrency: int
    delay_ms: float


def _callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def _dumped_instructions(out_dir: Path, pid: int) -> int:
    """Ir of the dump ``callgrind_control -d`` wrote (``cg.<pid>.<n>``; threads are merged by default)."""
    total = 0
    for path in out_dir.glob(f"cg.{pid}.*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    if not total:
        raise BenchError(f"callgrind wrote no dump for pid {pid} in {out_dir}")
    return total


async def _measure(target: str, case: Case, *, upstream_url: str, lynkr_src: str | None, tmp: Path,
                   start_timeout: float) -> int:
    """Instructions per request of ``target`` ("lynkr" or "floor") on ``case``."""
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={tmp}/cg.%p"]
    chat_url = f"{upstream_url}/v1/chat/completions"
    if target == "floor":
        proc = Proc("floor proxy", [*valgrind, sys.executable, "-m", "benchmarks.floor_proxy", chat_url],
                    env=child_env(PYTHONPATH=str(ROOT)), cwd=ROOT, log=tmp / "floor.log", stdout_pipe=True)
    else:
        port = free_port()
        data = tmp / "data"
        data.mkdir(exist_ok=True)
        env_file = tmp / "bench.env"
        env_file.write_text(f"MODEL_PROVIDER=openai\nOPENAI_API_KEY=bench\nOPENAI_ENDPOINT={chat_url}\n"
                            f"OPENAI_MODEL={UPSTREAM_MODEL}\nLOG_LEVEL=warning\nLYNKR_DATA_DIR={data}\n")
        env = child_env(PYTHONPATH=lynkr_src) if lynkr_src else child_env()
        proc = Proc("lynkr", [*valgrind, sys.executable, "-m", "lynkr", "start", "--port", str(port),
                              "--env-file", str(env_file)], env=env, cwd=tmp, log=tmp / "lynkr.log")
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            if target == "floor":
                base = f"http://127.0.0.1:{await asyncio.to_thread(ready_port, proc, start_timeout)}"
            else:
                base = f"http://127.0.0.1:{port}"
                await wait_ready(session, f"{base}/health", proc, start_timeout)
            async with session.post(f"{upstream_url}/control",
                                    json={"chunks": 20, "delay_ms": case.delay_ms}) as resp:
                if resp.status != 200:
                    raise BenchError(f"fake upstream refused /control: {await resp.text()}")
            body = orjson.dumps(claude_code_request_sized(40_000) | {"stream": True})
            headers = claude_code_headers("bench")

            async def run(n: int) -> None:
                left = iter(range(n))

                async def worker() -> None:
                    for _ in left:
                        async with session.post(f"{base}/v1/messages", data=body, headers=headers) as resp:
                            answer = await resp.read()
                            if resp.status != 200 or b"message_stop" not in answer[-300:]:
                                raise BenchError(f"{target}: {resp.status} {answer[-300:]!r}")

                await asyncio.gather(*(worker() for _ in range(case.concurrency)))

            await run(max(30, case.concurrency * 2))  # warm-up, not counted
            await asyncio.to_thread(_callgrind, "-i", "on", str(proc.pid))
            await run(case.requests)
            await asyncio.to_thread(_callgrind, "-d", str(proc.pid))
            await asyncio.to_thread(_callgrind, "-i", "off", str(proc.pid))
        return _dumped_instructions(tmp, proc.pid) // case.requests
    finally:
        proc.stop(timeout=30)


async def _main(args: argparse.Namespace) -> int:
    cases = [Case("coalesced", args.requests, 16, 0), Case("paced", max(args.requests // 8, 10), 1, args.paced_ms)]
    cases = [c for c in cases if c.name in args.cases]
    targets = [t for t in ("lynkr", "floor") if t in args.only]
    with tempfile.TemporaryDirectory(prefix="lynkr-instr-") as tmp_name:
        tmp = Path(tmp_name)
        upstream = Proc("fake upstream", [sys.executable, "-m", "benchmarks.upstream", "--port", "0"],
                        env=child_env(PYTHONPATH=str(ROOT)), cwd=ROOT, log=tmp / "upstream.log", stdout_pipe=True)
        try:
            upstream_url = f"http://127.0.0.1:{ready_port(upstream, args.start_timeout)}"
            results: dict[tuple[str, str], int] = {}
            for case in cases:
                for target in targets:
                    print(f"[{case.name}] {target}: {case.requests} requests at concurrency {case.concurrency}"
                          f"{f', {case.delay_ms:g} ms between frames' if case.delay_ms else ''}", file=sys.stderr)
                    run_dir = tmp / f"{case.name}-{target}"
                    run_dir.mkdir()
                    results[case.name, target] = await _measure(
                        target, case, upstream_url=upstream_url, lynkr_src=args.lynkr_src, tmp=run_dir,
                        start_timeout=args.start_timeout)
        finally:
            upstream.stop()
    print("\nInstructions per request (callgrind), 40 kB Claude Code request translated to OpenAI, streamed")
    print(f"{'case':<12}{'lynkr M':>10}{'floor M':>10}{'ratio':>8}")
    for case in cases:
        lynkr, floor = results.get((case.name, "lynkr")), results.get((case.name, "floor"))
        ratio = f"{lynkr / floor:.2f}x" if lynkr and floor else "-"
        print(f"{case.name:<12}{(lynkr or 0) / 1e6:>10.3f}{(floor or 0) / 1e6:>10.3f}{ratio:>8}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--lynkr-src", metavar="DIR", help="run lynkr from this source tree (holding the lynkr package)")
    ap.add_argument("--only", default="lynkr,floor", help="comma-separated targets: lynkr, floor")
    ap.add_argument("--cases", default="coalesced,paced", help="comma-separated: coalesced, paced")
    ap.add_argument("--requests", "-n", type=int, default=320, help="measured requests, coalesced case "
                    "(the paced case runs an eighth of them)")
    ap.add_argument("--paced-ms", type=float, default=15.0, help="the paced case's gap between frames")
    ap.add_argument("--start-timeout", type=float, default=300.0, help="s to wait for a target under valgrind")
    args = ap.parse_args(argv)
    args.only, args.cases = args.only.split(","), args.cases.split(",")
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
            return 2
    try:
        return asyncio.run(_main(args))
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
