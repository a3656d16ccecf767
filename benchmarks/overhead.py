"""What lynkr adds to a streamed Claude Code request: latency, time to first byte, CPU and memory.

Three processes on 127.0.0.1:

* a fast fake OpenAI upstream (``benchmarks.upstream``): parses the body, streams 20 SSE frames;
* lynkr itself, started as users start it (``lynkr start --port P --env-file <tmp .env>``,
  MODEL_PROVIDER=openai pointed at the fake, LOG_LEVEL=warning);
* this process, the load generator (asyncio + aiohttp client), which sends

  - the *lynkr path*: a Claude Code request (``POST /v1/messages?beta=true``, stream) to lynkr, and
  - the *direct path*: the OpenAI request lynkr makes of it, straight to the fake upstream,

  and reads every SSE stream to its end.

Per request size (``large``: 55 kB Claude Code body with 24 tools; ``small``: 1 kB), after a warm-up:
an interleaved run at concurrency 1 (lynkr, direct, direct, lynkr, ...) gives the latencies and the
proxy CPU per request; then each path runs alone at ``--concurrency`` for requests/s.

Run: ``python -m benchmarks.overhead`` (``--help`` for options; ``--json`` for machine output).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.fixtures import UPSTREAM_MODEL, claude_code_headers, claude_code_request, openai_equivalent
from benchmarks.procs import BenchError, Proc, child_env, free_port

ROOT = Path(__file__).resolve().parent.parent
SIZES = ("large", "small")


# --- requests ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    body: bytes
    headers: dict[str, str]
    end_marker: bytes  # must appear at the end of a complete stream


@dataclass(frozen=True)
class Sample:
    total: float  # seconds from sending the request to the end of the stream
    ttfb: float  # seconds from sending the request to the first body bytes
    nbytes: int


async def one(session: aiohttp.ClientSession, t: Target) -> Sample:
    try:
        return await _one(session, t)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BenchError(f"{t.name}: request to {t.url} failed: {exc!r}") from None


async def _one(session: aiohttp.ClientSession, t: Target) -> Sample:
    started = time.perf_counter()
    first = 0.0
    nbytes = 0
    tail = b""
    async with session.post(t.url, data=t.body, headers=t.headers) as resp:
        if resp.status != 200:
            text = (await resp.read())[:500].decode(errors="replace")
            raise BenchError(f"{t.name}: HTTP {resp.status}: {text}")
        async for chunk in resp.content.iter_any():
            if not first:
                first = time.perf_counter()
            nbytes += len(chunk)
            tail = (tail + chunk)[-128:]
    end = time.perf_counter()
    if t.end_marker not in tail:
        raise BenchError(f"{t.name}: stream ended without {t.end_marker!r}; last bytes: {tail!r}")
    return Sample(end - started, (first or end) - started, nbytes)


async def interleaved(session: aiohttp.ClientSession, a: Target, b: Target, n: int) -> dict[str, list[Sample]]:
    """``n`` requests to each target at concurrency 1, alternating which goes first (ABBA...)."""
    out: dict[str, list[Sample]] = {a.name: [], b.name: []}
    for i in range(n):
        for t in ((a, b) if i % 2 == 0 else (b, a)):
            out[t.name].append(await one(session, t))
    return out


async def concurrent(session: aiohttp.ClientSession, t: Target, n: int, concurrency: int,
                     ) -> tuple[float, list[Sample]]:
    """``n`` requests to ``t`` from ``concurrency`` workers; wall seconds and the samples."""
    samples: list[Sample] = []
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            samples.append(await one(session, t))

    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, n)):
                tg.create_task(worker())
    except BaseExceptionGroup as eg:
        raise eg.exceptions[0] from None
    return time.perf_counter() - started, samples


# --- statistics -------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    xs = sorted(values)
    if not xs:
        return math.nan
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms_stats(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"p50": percentile(ms, 50), "p90": percentile(ms, 90), "p99": percentile(ms, 99),
            "mean": sum(ms) / len(ms), "min": min(ms), "max": max(ms)}


@dataclass
class SizeResult:
    size: str
    client_body_bytes: int  # what the load generator sends lynkr
    upstream_body_bytes: int  # what the direct path sends the upstream
    lynkr_upstream_body_bytes: int  # what lynkr sent the upstream for the same request
    requests: int
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # path -> stats (c=1)
    ttfb_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # path -> stats (c=1)
    added_latency_ms: dict[str, float] = field(default_factory=dict)
    added_ttfb_ms: dict[str, float] = field(default_factory=dict)
    lynkr_cpu_ms_per_request: dict[str, float] = field(default_factory=dict)  # "c1", "cN"
    upstream_cpu_ms_per_request: float = 0.0
    rps: dict[str, dict[str, float]] = field(default_factory=dict)  # "c1"/"cN" -> path -> req/s
    latency_cN_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    lynkr_rss_after_bytes: int = 0


# --- the run ----------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, upstream: Proc, lynkr: Proc, upstream_url: str,
                 lynkr_url: str) -> None:
        self.args = args
        self.upstream = upstream
        self.lynkr = lynkr
        self.upstream_url = upstream_url
        self.lynkr_url = lynkr_url

    def targets(self, size: str) -> tuple[Target, Target]:
        req = claude_code_request(size)  # type: ignore[arg-type]
        lynkr = Target("lynkr", f"{self.lynkr_url}/v1/messages?beta=true", orjson.dumps(req),
                       claude_code_headers(), b"message_stop")
        direct = Target("direct", f"{self.upstream_url}/v1/chat/completions",
                        orjson.dumps(openai_equivalent(req, UPSTREAM_MODEL)),
                        {"Authorization": "Bearer bench", "Content-Type": "application/json",
                         "User-Agent": "lynkr-bench"}, b"[DONE]")
        return lynkr, direct

    async def upstream_last_body(self, session: aiohttp.ClientSession) -> int:
        async with session.get(f"{self.upstream_url}/stats") as resp:
            return int((await resp.json())["last_body_bytes"])

    async def measure(self, session: aiohttp.ClientSession, size: str) -> SizeResult:
        a = self.args
        lynkr, direct = self.targets(size)
        log(f"[{size}] warm-up: {a.warmup} requests per path")
        await interleaved(session, lynkr, direct, a.warmup)
        await one(session, lynkr)
        sent_by_lynkr = await self.upstream_last_body(session)
        res = SizeResult(size, len(lynkr.body), len(direct.body), sent_by_lynkr, a.requests)

        with self.profiling(size):
            await self.measured(session, size, lynkr, direct, res)
        res.lynkr_rss_after_bytes = self.lynkr.rss_bytes()
        return res

    @contextlib.contextmanager
    def profiling(self, size: str) -> Iterator[None]:
        """With --py-spy: record lynkr's stacks during the measured phases (the numbers are perturbed)."""
        out = self.args.py_spy
        if not out:
            yield
            return
        path = Path(out)
        if len(self.args.sizes) > 1:
            path = path.with_name(f"{path.stem}.{size}{path.suffix}")
        fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(path.suffix, "raw")
        exe = Path(sys.executable).with_name("py-spy")
        cmd = [str(exe) if exe.exists() else "py-spy", "record", "--pid", str(self.lynkr.pid), "--rate",
               str(self.args.py_spy_rate), "--format", fmt, "--output", str(path.resolve())]
        spy = Proc("py-spy", cmd, env=child_env(), cwd=ROOT, log=path.with_name(path.name + ".log"))
        time.sleep(1.0)  # let it attach
        try:
            yield
        finally:
            if spy.alive():
                spy.popen.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            with contextlib.suppress(Exception):
                spy.popen.wait(timeout=20)
            spy.stop()
            log(f"[{size}] py-spy profile: {path} ({spy.log_tail(3).strip()})")

    async def measured(self, session: aiohttp.ClientSession, size: str, lynkr: Target, direct: Target,
                       res: SizeResult) -> None:
        a = self.args
        log(f"[{size}] concurrency 1: {a.requests} requests per path, interleaved")
        cpu0, up0 = self.lynkr.cpu_seconds(), self.upstream.cpu_seconds()
        samples = await interleaved(session, lynkr, direct, a.requests)
        cpu1, up1 = self.lynkr.cpu_seconds(), self.upstream.cpu_seconds()
        res.lynkr_cpu_ms_per_request["c1"] = (cpu1 - cpu0) * 1000 / a.requests
        res.upstream_cpu_ms_per_request = (up1 - up0) * 1000 / (2 * a.requests)
        for path, ss in samples.items():
            res.latency_ms[path] = ms_stats([s.total for s in ss])
            res.ttfb_ms[path] = ms_stats([s.ttfb for s in ss])
        for p in ("p50", "p90", "p99", "mean"):
            res.added_latency_ms[p] = res.latency_ms["lynkr"][p] - res.latency_ms["direct"][p]
            res.added_ttfb_ms[p] = res.ttfb_ms["lynkr"][p] - res.ttfb_ms["direct"][p]
        res.rps["c1"] = {path: 1000 / res.latency_ms[path]["mean"] for path in samples}

        c = a.concurrency
        n = max(a.requests, 4 * c)
        log(f"[{size}] concurrency {c}: {n} requests per path")
        res.rps[f"c{c}"] = {}
        for t in (direct, lynkr):
            await concurrent(session, t, 2 * c, c)  # open (and warm) c connections on every hop
            cpu0 = self.lynkr.cpu_seconds()
            wall, ss = await concurrent(session, t, n, c)
            cpu1 = self.lynkr.cpu_seconds()
            res.rps[f"c{c}"][t.name] = n / wall
            res.latency_cN_ms[t.name] = ms_stats([s.total for s in ss])
            if t is lynkr:
                res.lynkr_cpu_ms_per_request[f"c{c}"] = (cpu1 - cpu0) * 1000 / n

    async def run(self) -> dict[str, Any]:
        # SIGTERM inside the loop cancels the run cleanly (like Ctrl-C does), instead of raising
        # from whatever callback happens to be running.
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await self._run()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _sigterm)

    async def _run(self) -> dict[str, Any]:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await wait_ready(session, f"{self.lynkr_url}/health/ready", self.lynkr, self.args.start_timeout)
            await asyncio.sleep(0.3)
            rss_idle = self.lynkr.rss_bytes()
            results = [await self.measure(session, size) for size in self.args.sizes]
        return {"meta": meta(self.args, rss_idle), "results": {r.size: asdict(r) for r in results}}


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(f"lynkr exited with {proc.popen.returncode} before it was ready; log:\n"
                             f"{proc.log_tail()}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise BenchError(f"lynkr was not ready after {timeout:.0f} s; log:\n{proc.log_tail()}")


def meta(args: argparse.Namespace, rss_idle: int) -> dict[str, Any]:
    from lynkr import __version__

    try:
        import uvloop
    except ImportError:
        loop = "asyncio"
    else:
        loop = f"uvloop {uvloop.__version__}"
    return {
        "lynkr_version": __version__, "python": platform.python_version(), "aiohttp": aiohttp.__version__,
        "event_loop": loop, "cpus": os.cpu_count(), "platform": platform.platform(),
        "requests": args.requests, "warmup": args.warmup, "concurrency": args.concurrency,
        "clk_tck": os.sysconf("SC_CLK_TCK"), "lynkr_rss_idle_bytes": rss_idle,
    }


# --- processes --------------------------------------------------------------------------------------


def lynkr_command(given: str | None) -> str:
    if given:
        return given
    beside = Path(sys.executable).with_name("lynkr")
    found = str(beside) if beside.exists() else shutil.which("lynkr")
    if not found:
        raise BenchError("cannot find the lynkr command; install the package (pip install -e .) or pass --lynkr")
    return found


@contextlib.contextmanager
def processes(args: argparse.Namespace) -> Iterator[tuple[Proc, Proc, str, str]]:
    """Start the fake upstream and lynkr; stop both (lynkr first) whatever happens."""
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        upstream = Proc("fake upstream", [sys.executable, "-m", "benchmarks.upstream", "--port", "0"],
                        env=child_env(PYTHONPATH=str(ROOT)), cwd=ROOT, log=tmpdir / "upstream.log",
                        stdout_pipe=True)
        stack.callback(upstream.stop)
        line = upstream.read_line(timeout=args.start_timeout)
        if not line.startswith("READY "):
            raise BenchError(f"fake upstream said {line!r}; log:\n{upstream.log_tail()}")
        upstream_url = f"http://127.0.0.1:{int(line.split()[1])}"

        port = args.port or free_port()
        env_file = tmpdir / "bench.env"
        (tmpdir / "data").mkdir()
        env_file.write_text(
            "MODEL_PROVIDER=openai\nOPENAI_API_KEY=bench\n"
            f"OPENAI_ENDPOINT={upstream_url}/v1/chat/completions\nOPENAI_MODEL={UPSTREAM_MODEL}\n"
            f"LOG_LEVEL={args.log_level}\nLYNKR_DATA_DIR={tmpdir / 'data'}\n"  # not the user's ~/.lynkr
        )
        lynkr = Proc("lynkr", [lynkr_command(args.lynkr), "start", "--port", str(port), "--env-file", str(env_file)],
                     env=child_env(), cwd=tmpdir, log=tmpdir / "lynkr.log")
        stack.callback(lynkr.stop)
        yield upstream, lynkr, upstream_url, f"http://127.0.0.1:{port}"


def run_async(main: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())  # type: ignore[arg-type]


# --- output -----------------------------------------------------------------------------------------


def _kb(n: int) -> str:
    return f"{n / 1000:.1f} kB"


def table(report: dict[str, Any]) -> str:
    m = report["meta"]
    rs = [report["results"][s] for s in SIZES if s in report["results"]]
    c = f"c{m['concurrency']}"

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> str:
        return f"  {label:<44}" + "".join(f"{fmt(r):>22}" for r in rs)

    def pair(a: float, b: float, digits: int = 2) -> str:
        return f"{a:.{digits}f} / {b:.{digits}f}"

    lines = [
        f"lynkr {m['lynkr_version']} overhead — {m['requests']} requests per path and phase, warm-up "
        f"{m['warmup']}; Python {m['python']}, aiohttp {m['aiohttp']}, {m['event_loop']}, {m['cpus']} CPUs",
        "",
        f"  {'':<44}" + "".join(f"{r['size'] + ' (' + _kb(r['client_body_bytes']) + ')':>22}" for r in rs),
        row("request body to upstream: direct / via lynkr", lambda r: (
            f"{_kb(r['upstream_body_bytes'])} / {_kb(r['lynkr_upstream_body_bytes'])}")),
        "",
        "  concurrency 1 (interleaved)",
        row("latency direct  p50 / p99 (ms)", lambda r: pair(r["latency_ms"]["direct"]["p50"],
                                                            r["latency_ms"]["direct"]["p99"])),
        row("latency lynkr   p50 / p99 (ms)", lambda r: pair(r["latency_ms"]["lynkr"]["p50"],
                                                            r["latency_ms"]["lynkr"]["p99"])),
        row("ADDED LATENCY   p50 / p99 (ms)", lambda r: pair(r["added_latency_ms"]["p50"],
                                                            r["added_latency_ms"]["p99"])),
        row("TTFB direct / lynkr  p50 (ms)", lambda r: pair(r["ttfb_ms"]["direct"]["p50"],
                                                           r["ttfb_ms"]["lynkr"]["p50"])),
        row("ADDED TTFB      p50 / p99 (ms)", lambda r: pair(r["added_ttfb_ms"]["p50"], r["added_ttfb_ms"]["p99"])),
        row("LYNKR CPU PER REQUEST (ms)", lambda r: f"{r['lynkr_cpu_ms_per_request']['c1']:.2f}"),
        row("  for scale: fake upstream CPU/request (ms)", lambda r: f"{r['upstream_cpu_ms_per_request']:.2f}"),
        row("requests/s      direct / lynkr", lambda r: pair(r["rps"]["c1"]["direct"], r["rps"]["c1"]["lynkr"], 0)),
        "",
        f"  concurrency {m['concurrency']} (each path alone)",
        row("requests/s      direct / lynkr", lambda r: pair(r["rps"][c]["direct"], r["rps"][c]["lynkr"], 0)),
        row("latency p50 direct / lynkr (ms)", lambda r: pair(r["latency_cN_ms"]["direct"]["p50"],
                                                             r["latency_cN_ms"]["lynkr"]["p50"], 1)),
        row("lynkr CPU per request (ms)", lambda r: f"{r['lynkr_cpu_ms_per_request'][c]:.2f}"),
        "",
        row("lynkr RSS after this size (MB)", lambda r: f"{r['lynkr_rss_after_bytes'] / 2**20:.1f}"),
        f"  lynkr RSS idle (MB){m['lynkr_rss_idle_bytes'] / 2**20:>47.1f}",
        "",
        f"  CPU is utime+stime of the lynkr process from /proc (tick {1000 / m['clk_tck']:.0f} ms), "
        "divided by the requests it served.",
    ]
    if "elapsed_s" in m:
        lines.append(f"  Whole run: {m['elapsed_s']} s (processes started, warmed up, measured, stopped).")
    return "\n".join(lines)


def log(msg: str) -> None:
    if not _QUIET:
        print(msg, file=sys.stderr, flush=True)


_QUIET = False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.splitlines()[0])
    ap.add_argument("--requests", "-n", type=int, default=2000, help="measured requests per path and phase "
                    "(default 2000)")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up requests per path and size (default 50)")
    ap.add_argument("--concurrency", "-c", type=int, default=16, help="concurrency of the throughput phase "
                    "(default 16)")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_true", help="only the 1 kB request (default: 55 kB, then 1 kB)")
    size.add_argument("--large", action="store_true", help="only the 55 kB Claude Code request")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON on stdout (table on stderr)")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    ap.add_argument("--port", type=int, default=0, help="port for lynkr (default: a free one)")
    ap.add_argument("--lynkr", help="lynkr command to run (default: the one beside this Python)")
    ap.add_argument("--log-level", default="warning", help="lynkr's LOG_LEVEL (default warning)")
    ap.add_argument("--py-spy", metavar="FILE", help="record lynkr with py-spy during the measured phases "
                    "(.svg flamegraph, .json speedscope, else collapsed stacks; numbers are then perturbed)")
    ap.add_argument("--py-spy-rate", type=int, default=200, help="py-spy samples per second (default 200)")
    ap.add_argument("--start-timeout", type=float, default=30.0, help="seconds to wait for each process to start")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or args.concurrency < 1:
        ap.error("--requests and --concurrency must be >= 1, --warmup >= 0")
    args.sizes = ("small",) if args.small else ("large",) if args.large else SIZES
    return args


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    global _QUIET
    args = parse_args(argv)
    _QUIET = args.quiet
    signal.signal(signal.SIGTERM, _sigterm)
    started = time.monotonic()
    try:
        with processes(args) as (upstream, lynkr, upstream_url, lynkr_url):
            report = run_async(Bench(args, upstream, lynkr, upstream_url, lynkr_url).run)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; child processes stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    report["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    log(f"done in {report['meta']['elapsed_s']} s")
    if args.json:
        print(table(report), file=sys.stderr)
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
