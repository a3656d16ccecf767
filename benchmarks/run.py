"""The benchmark suite (issue 8): what lynkr costs per request, against the upstream directly and
against the floor for Python, on 127.0.0.1 with no network and no keys.

One command starts four processes and measures; they are stopped on exit, on errors and on Ctrl-C:

* ``benchmarks.upstream``: a fast fake OpenAI Chat Completions server (its answer's length and pace
  are set per phase through ``POST /control``);
* lynkr, as users start it (``lynkr start --env-file``), ``MODEL_PROVIDER=openai`` on the fake, with
  every middleware, the request records, the state store and routing on;
* ``benchmarks.floor_proxy``: a minimal aiohttp Anthropic -> OpenAI streaming translator;
* this process, the load generator (asyncio + aiohttp client, uvloop when installed).

Sections (``--sections``, all by default):

* ``main`` (table 1): for each case -- Anthropic requests translated to OpenAI, OpenAI Chat requests
  passed through; non-streaming, streaming (20 chunks), streaming paced (a delay between chunks);
  1 kB and 55 kB Claude Code bodies -- latency and time to first token added over the upstream
  directly, requests/s at concurrency 1/16/64, proxy CPU ms per request, RSS;
* ``hold`` (table 2): 1,000 concurrent slow streams (10 ms between chunks) through each path;
* ``linearity`` (table 3): CPU per request for 10, 40 and 160 kB Claude Code bodies, lynkr and floor;
* the targets of issue 8, checked against the numbers of this run.

Run: ``python -m benchmarks.run`` (``--quick`` for a < 1 minute smoke run, ``--json`` for machine output,
``--help`` for the rest). Linux only: CPU and memory come from ``/proc``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.fixtures import (
    UPSTREAM_MODEL,
    claude_code_headers,
    claude_code_request,
    claude_code_request_sized,
    openai_equivalent,
)
from benchmarks.procs import BenchError, Proc, child_env, free_port

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("main", "hold", "linearity")
CONCURRENCY = (1, 16, 64)
CHUNKS = 20  # SSE frames of a streamed answer in table 1 (16 text deltas)
TARGETS = {"translated_40kb_cpu_ms": 1.0, "floor_ratio": 1.25, "passthrough_cpu_ms": 0.35, "hold_rss_mb": 300}


# --- what one run does --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    warmup: int  # per path, before each case
    n1: int  # requests per path at concurrency 1 (interleaved)
    n_conc: int  # requests per path at concurrency 16 and 64 (at least 4x the concurrency)
    paced_n1: int  # the same for paced streams, which take ~100 ms each
    paced_rounds: int  # paced streams at concurrency c: rounds * c requests per path
    lin_n: int  # requests per path and size for linearity, at concurrency 1 and at 16
    streams: int  # held streams in table 2
    stream_chunks: int  # SSE frames of each held stream
    stream_delay_ms: float  # between two frames of a held stream


DEFAULT = Counts(warmup=30, n1=300, n_conc=600, paced_n1=25, paced_rounds=4, lin_n=300, streams=1000,
                 stream_chunks=100, stream_delay_ms=10)
QUICK = Counts(warmup=5, n1=50, n_conc=128, paced_n1=5, paced_rounds=1, lin_n=60, streams=300,
               stream_chunks=30, stream_delay_ms=10)


@dataclass(frozen=True)
class Case:
    dialect: str  # "translated" (Anthropic -> OpenAI) or "passthrough" (OpenAI Chat -> OpenAI)
    mode: str  # "json", "stream" or "paced"
    size: str  # "small" or "large"

    @property
    def key(self) -> str:
        return f"{self.dialect}/{self.mode}/{self.size}"


def main_cases() -> list[Case]:
    return [Case(d, m, s) for d in ("translated", "passthrough") for m in ("json", "stream", "paced")
            for s in ("small", "large")]


# --- requests -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One path for one case: where the request goes, what a complete answer looks like, whose CPU counts."""

    path: str  # "direct", "lynkr" or "floor"
    url: str
    body: bytes
    headers: dict[str, str]
    stream: bool
    end_marker: bytes  # in the last bytes of a complete answer
    delta_marker: bytes  # counted: one per text delta of a streamed answer
    proc: Proc | None  # the proxy whose CPU is measured (None: direct)


@dataclass(slots=True)
class Sample:
    total: float  # s, request sent -> last byte
    ttfb: float  # s, request sent -> first body byte
    ttft: float  # s, request sent -> first text delta (streams); = total otherwise
    deltas: int
    gaps: list[float] | None = None  # s between two reads of the body (held streams only)


ANTHROPIC_STREAM = (b"message_stop", b"event: content_block_delta")
OPENAI_STREAM = (b"data: [DONE]", b'"delta":{"content"')
ANTHROPIC_JSON = (b'"type":"message"', b"")
OPENAI_JSON = (b'"object":"chat.completion"', b"")
OPENAI_HEADERS = {"Authorization": "Bearer bench", "Content-Type": "application/json",
                  "User-Agent": "OpenAI/Python 1.99.0", "Accept": "application/json"}


async def one(session: aiohttp.ClientSession, t: Target, *, gaps: bool = False) -> Sample:
    try:
        return await _one(session, t, gaps)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BenchError(f"{t.path}: request to {t.url} failed: {exc!r}") from None


async def _one(session: aiohttp.ClientSession, t: Target, want_gaps: bool) -> Sample:
    clock = time.perf_counter
    started = clock()
    first = ttft = last = 0.0
    gaps: list[float] | None = [] if want_gaps else None
    parts: list[bytes] = []
    token = b"content_block_delta" if t.delta_marker.startswith(b"event:") else t.delta_marker
    carry = b""
    async with session.post(t.url, data=t.body, headers=t.headers) as resp:
        if resp.status != 200:
            text = (await resp.read())[:300].decode(errors="replace")
            raise BenchError(f"{t.path}: {t.url} answered HTTP {resp.status}: {text}")
        if not t.stream:
            parts.append(await resp.read())
            first = clock()
        else:
            async for chunk in resp.content.iter_any():
                now = clock()
                if not first:
                    first = now
                elif gaps is not None:
                    gaps.append(now - last)
                last = now
                parts.append(chunk)
                if not ttft:
                    window = carry + chunk
                    if token in window:
                        ttft = now
                    else:
                        carry = window[-len(token):]
    end = clock()
    data = b"".join(parts)
    if t.end_marker not in data[-300:] and not (not t.stream and t.end_marker in data):
        raise BenchError(f"{t.path}: answer from {t.url} ended without {t.end_marker!r}: ...{data[-200:]!r}")
    if t.stream and b"data:" in data[data.rfind(t.end_marker) + len(t.end_marker):]:
        raise BenchError(f"{t.path}: stream from {t.url} went on after {t.end_marker!r}: ...{data[-300:]!r}")
    deltas = data.count(t.delta_marker) if t.stream else 0
    return Sample(end - started, first - started, (ttft or end) - started if t.stream else end - started,
                  deltas, gaps)


async def interleaved(session: aiohttp.ClientSession, targets: list[Target], n: int, deadline: float,
                      ) -> dict[str, list[Sample]]:
    """``n`` requests per target at concurrency 1, rotating which path goes first."""
    out: dict[str, list[Sample]] = {t.path: [] for t in targets}
    for i in range(n):
        if time.monotonic() > deadline:
            break
        k = i % len(targets)
        for t in targets[k:] + targets[:k]:
            out[t.path].append(await one(session, t))
    return out


async def concurrent(session: aiohttp.ClientSession, t: Target, n: int, concurrency: int, deadline: float,
                     ) -> tuple[float, list[Sample]]:
    """``n`` requests to ``t`` from ``concurrency`` workers (fewer if ``deadline`` passes); wall s, samples."""
    samples: list[Sample] = []
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0 and time.monotonic() < deadline:
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


ROUNDS = 5  # blocks per path of a measurement at concurrency > 1, taking turns


@dataclass
class Block:
    """What one path did over its blocks of an ``alternating`` measurement."""

    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0  # seconds, its blocks only
    cpu: dict[str, float] = field(default_factory=dict)  # seconds, by process name
    rss_peak: int = 0


async def alternating(session: aiohttp.ClientSession, targets: list[Target], n: int, concurrency: int,
                      deadline: float, procs: dict[str, Proc], rounds: int = ROUNDS) -> dict[str, Block]:
    """``n`` requests per target with ``concurrency`` in flight, in ``rounds`` blocks per target that take
    turns (the first target rotates each round), so that a slow spell of this shared machine falls on every
    path alike rather than on whichever ran second. ``procs``: besides each target's proxy, processes whose
    CPU is counted too (e.g. the upstream), per target."""
    out = {t.path: Block() for t in targets}
    per_round = [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]
    for r, count in enumerate(per_round):
        for t in targets[r % len(targets):] + targets[:r % len(targets)]:
            if not count:
                continue
            block = out[t.path]
            watched = {**({t.path: t.proc} if t.proc else {}), **procs}
            async with RssPeak(t.proc) as rss:
                with Cpu(watched) as cpu:
                    wall, samples = await concurrent(session, t, count, concurrency, deadline)
            block.samples += samples
            block.wall += wall
            block.rss_peak = max(block.rss_peak, rss.peak)
            for k, v in cpu.used.items():
                block.cpu[k] = block.cpu.get(k, 0.0) + v
    return out


# --- statistics -----------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return math.nan
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(values: list[float]) -> dict[str, float]:
    v = [x * 1000 for x in values]
    if not v:
        return {"n": 0}
    return {"n": len(v), "p50": percentile(v, 50), "p90": percentile(v, 90), "p99": percentile(v, 99),
            "mean": sum(v) / len(v), "max": max(v)}


class RssPeak:
    """Samples a process's RSS every ``interval`` s while in use; ``peak`` is the highest reading."""

    def __init__(self, proc: Proc | None, interval: float = 0.05) -> None:
        self.proc, self.interval, self.peak = proc, interval, 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RssPeak:
        if self.proc is not None:
            self.peak = self.proc.rss_bytes()
            self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        assert self.proc is not None
        while True:
            with contextlib.suppress(OSError, BenchError):
                self.peak = max(self.peak, self.proc.rss_bytes())
            await asyncio.sleep(self.interval)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            with contextlib.suppress(OSError, BenchError):
                assert self.proc is not None
                self.peak = max(self.peak, self.proc.rss_bytes())


class Cpu:
    """CPU seconds (utime + stime) of some processes over a block.

    Read at nanosecond resolution from the threads' schedstat (``Proc.cpu_ns``) and checked against the
    tick-rounded utime + stime of ``/proc/<pid>/stat``: when the two disagree by more than two ticks
    and 5% (a thread exited and took its time with it), the ``/proc/<pid>/stat`` figure is used."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self.procs = procs
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def _read(self) -> dict[str, tuple[float, int | None]]:
        return {k: (p.cpu_seconds(), p.cpu_ns()) for k, p in self.procs.items()}

    def __enter__(self) -> Cpu:
        self._start = self._read()
        self._self = _self_cpu()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        self.wall = time.perf_counter() - self._wall
        tick = 1 / os.sysconf("SC_CLK_TCK")
        for k, (stat1, ns1) in end.items():
            stat0, ns0 = self._start[k]
            coarse = stat1 - stat0
            fine = (ns1 - ns0) / 1e9 if ns0 is not None and ns1 is not None else None
            ok = fine is not None and abs(fine - coarse) <= 2 * tick + 0.05 * coarse
            self.used[k] = fine if ok and fine is not None else coarse
        self.used["loadgen"] = _self_cpu() - self._self


def listen_overflows() -> int:
    """TcpExt ListenOverflows from /proc/net/netstat: connections dropped because a listening socket's
    accept queue (its backlog) was full; the client retries its SYN after ~1 s. Counts the whole
    network namespace, so other programs' connections count too."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        lines = Path("/proc/net/netstat").read_text().splitlines()
        for head, values in zip(lines[::2], lines[1::2], strict=False):
            if head.startswith("TcpExt:"):
                return int(dict(zip(head.split(), values.split(), strict=False))["ListenOverflows"])
    return -1


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


# --- the run --------------------------------------------------------------------------------------------


@dataclass
class Procs:
    upstream: Proc
    lynkr: Proc
    floor: Proc
    upstream_url: str
    lynkr_url: str
    floor_url: str


@dataclass
class CaseResult:
    case: str
    body_bytes: int  # what the client sends the proxy
    upstream_body_bytes: dict[str, int] = field(default_factory=dict)  # path -> bytes the upstream received
    paths: list[str] = field(default_factory=list)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # path -> stats, c=1
    ttft_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    ttfb_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    added_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # proxy -> {p50, p99, ttft_p50, ...}
    rps: dict[str, dict[str, float]] = field(default_factory=dict)  # "c1" -> path -> requests/s
    latency_conc_ms: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # "c16" -> path -> stats
    cpu_ms_per_request: dict[str, dict[str, float]] = field(default_factory=dict)  # "c1" -> proc -> ms
    requests: dict[str, dict[str, int]] = field(default_factory=dict)  # "c1" -> path -> measured requests
    rss_peak_bytes: dict[str, int] = field(default_factory=dict)  # proxy -> peak during the concurrent phases
    truncated: bool = False


class Suite:
    def __init__(self, args: argparse.Namespace, procs: Procs) -> None:
        self.args = args
        self.counts: Counts = args.counts
        self.p = procs
        self.deadline = time.monotonic() + args.max_time

    # --- helpers ---

    def phase_deadline(self) -> float:
        return min(self.deadline, time.monotonic() + self.args.phase_timeout)

    async def control(self, session: aiohttp.ClientSession, chunks: int, delay_ms: float) -> None:
        async with session.post(f"{self.p.upstream_url}/control",
                                json={"chunks": chunks, "delay_ms": delay_ms}) as resp:
            if resp.status != 200:
                raise BenchError(f"fake upstream refused /control: {await resp.text()}")

    async def upstream_last_body(self, session: aiohttp.ClientSession) -> int:
        async with session.get(f"{self.p.upstream_url}/stats") as resp:
            return int((await resp.json())["last_body_bytes"])

    def targets(self, dialect: str, mode: str, req: dict[str, Any], floor: bool) -> list[Target]:
        stream = mode != "json"
        req = {**req, "stream": stream}
        chat = openai_equivalent(req, UPSTREAM_MODEL)
        p = self.p
        if stream:
            direct = Target("direct", f"{p.upstream_url}/v1/chat/completions", orjson.dumps(chat), OPENAI_HEADERS,
                            True, *OPENAI_STREAM, None)
        else:
            direct = Target("direct", f"{p.upstream_url}/v1/chat/completions", orjson.dumps(chat), OPENAI_HEADERS,
                            False, *OPENAI_JSON, None)
        if dialect == "passthrough":
            out = [direct, Target("lynkr", f"{p.lynkr_url}/v1/chat/completions", direct.body, OPENAI_HEADERS, stream,
                                  direct.end_marker, direct.delta_marker, p.lynkr)]
            if floor:
                out.append(Target("floor", f"{p.floor_url}/v1/chat/completions", direct.body, OPENAI_HEADERS, stream,
                                  direct.end_marker, direct.delta_marker, p.floor))
            return out
        markers = ANTHROPIC_STREAM if stream else ANTHROPIC_JSON
        body = orjson.dumps(req)
        out = [direct, Target("lynkr", f"{p.lynkr_url}/v1/messages?beta=true", body, claude_code_headers(), stream,
                              *markers, p.lynkr)]
        if floor:
            out.append(Target("floor", f"{p.floor_url}/v1/messages", body, claude_code_headers(), stream, *markers,
                              p.floor))
        return out

    def check(self, t: Target, s: Sample, expected: int) -> None:
        if t.stream and s.deltas != expected:
            raise BenchError(f"{t.path}: stream from {t.url} had {s.deltas} text deltas, expected {expected}")

    # --- table 1 ---

    async def run_case(self, session: aiohttp.ClientSession, case: Case) -> CaseResult:
        c = self.counts
        paced = case.mode == "paced"
        delay = self.args.delay_ms if paced else 0.0
        await self.control(session, CHUNKS, delay)
        floor = case.mode != "json"  # the floor proxy streams only
        targets = self.targets(case.dialect, case.mode, claude_code_request(case.size), floor)  # type: ignore[arg-type]
        res = CaseResult(case.key, len(targets[1].body), paths=[t.path for t in targets])
        log(f"[{case.key}] warm-up")
        for t in targets:
            self.check(t, await one(session, t), CHUNKS - 4)
            res.upstream_body_bytes[t.path] = await self.upstream_last_body(session)
        await interleaved(session, targets, c.warmup if not paced else max(c.warmup // 5, 2), self.phase_deadline())

        n1 = c.paced_n1 if paced else c.n1
        log(f"[{case.key}] concurrency 1: {n1} requests per path, interleaved")
        proxies = {t.path: t.proc for t in targets if t.proc is not None}
        with Cpu({**proxies, "upstream": self.p.upstream}) as cpu:
            samples = await interleaved(session, targets, n1, self.phase_deadline())
        done = {k: len(v) for k, v in samples.items()}
        res.truncated |= any(v < n1 for v in done.values())
        res.requests["c1"] = done
        res.cpu_ms_per_request["c1"] = {k: cpu.used[k] * 1000 / max(done.get(k, sum(done.values())), 1)
                                        for k in cpu.used}
        for path, ss in samples.items():
            res.latency_ms[path] = ms([s.total for s in ss])
            res.ttfb_ms[path] = ms([s.ttfb for s in ss])
            res.ttft_ms[path] = ms([s.ttft for s in ss])
        for proxy in proxies:
            res.added_ms[proxy] = {
                f"{what}_{p}": stats[proxy][p] - stats["direct"][p]
                for what, stats in (("latency", res.latency_ms), ("ttft", res.ttft_ms), ("ttfb", res.ttfb_ms))
                for p in ("p50", "p99", "mean")}
        res.rps["c1"] = {path: 1000 / res.latency_ms[path]["mean"] for path in samples}

        for conc in CONCURRENCY[1:]:
            key = f"c{conc}"
            n = c.paced_rounds * conc if paced else max(c.n_conc, 4 * conc)
            rounds = 1 if paced else ROUNDS
            log(f"[{case.key}] concurrency {conc}: {n} requests per path, in {rounds} turns")
            res.rps[key], res.latency_conc_ms[key], res.cpu_ms_per_request[key], res.requests[key] = {}, {}, {}, {}
            for t in targets:
                await concurrent(session, t, 2 * conc if not paced else conc, conc, self.phase_deadline())  # warm
            blocks = await alternating(session, targets, n, conc, self.phase_deadline(),
                                       {"upstream": self.p.upstream}, rounds)
            for t in targets:
                b = blocks[t.path]
                res.truncated |= len(b.samples) < n
                res.requests[key][t.path] = len(b.samples)
                res.rps[key][t.path] = len(b.samples) / b.wall
                res.latency_conc_ms[key][t.path] = ms([s.total for s in b.samples])
                for k, v in b.cpu.items():
                    res.cpu_ms_per_request[key][k if k != "upstream" else f"upstream@{t.path}"] = (
                        v * 1000 / max(len(b.samples), 1))
                if t.proc is not None:
                    res.rss_peak_bytes[t.path] = max(res.rss_peak_bytes.get(t.path, 0), b.rss_peak)
        return res

    # --- table 2 ---

    async def hold(self, session: aiohttp.ClientSession, t: Target, streams: int) -> dict[str, Any]:
        c = self.counts
        expected = c.stream_chunks - 4
        proc = t.proc or self.p.upstream
        log(f"[hold] {streams} streams x {c.stream_chunks} chunks, {c.stream_delay_ms:g} ms apart, via {t.path}")
        await asyncio.sleep(0.5)  # let the previous phase's connections settle
        rss_before = proc.rss_bytes()
        deadline = self.phase_deadline()
        in_flight = peak_in_flight = 0
        failures: list[str] = []
        samples: list[Sample] = []
        ramp = self.args.ramp_s

        async def stream(i: int) -> None:
            nonlocal in_flight, peak_in_flight
            await asyncio.sleep(ramp * i / streams)
            in_flight += 1
            peak_in_flight = max(peak_in_flight, in_flight)
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                    s = await one(session, t, gaps=True)
                if s.deltas != expected:
                    failures.append(f"{s.deltas} of {expected} text deltas")
                samples.append(s)
            except (BenchError, TimeoutError) as exc:
                failures.append(str(exc)[:200] or type(exc).__name__)
            finally:
                in_flight -= 1

        procs = {"proxy": proc, "upstream": self.p.upstream} if t.proc else {"upstream": self.p.upstream}
        overflows = listen_overflows()
        async with RssPeak(proc, 0.1) as rss:
            with Cpu(procs) as cpu:
                await asyncio.gather(*(stream(i) for i in range(streams)))
        overflows = listen_overflows() - overflows if overflows >= 0 else -1
        await asyncio.sleep(0.5)
        gaps = [g for s in samples for g in (s.gaps or ())]
        limit = self.args.stall_ms / 1000
        stalled = len(failures) + sum(1 for s in samples if s.deltas == expected and max(s.gaps or [0]) > limit)
        slow_start = sum(1 for s in samples if s.ttfb > limit)
        per_stream_max = [max(s.gaps) for s in samples if s.gaps]
        used = cpu.used.get("proxy", cpu.used["upstream"])
        return {
            "path": t.path, "streams": streams, "chunks": c.stream_chunks, "delay_ms": c.stream_delay_ms,
            "completed": len(samples) - sum(1 for s in samples if s.deltas != expected),
            "failed": len(failures), "failures": sorted({f: failures.count(f) for f in failures}.items(),
                                                        key=lambda kv: -kv[1])[:5], "peak_in_flight": peak_in_flight,
            "stalled": stalled, "slow_start": slow_start, "stall_ms": self.args.stall_ms,
            "wall_s": cpu.wall, "nominal_s": c.stream_chunks * c.stream_delay_ms / 1000 + ramp,
            "duration_ms": ms([s.total for s in samples]), "ttfb_ms": ms([s.ttfb for s in samples]),
            "gap_ms": ms(gaps), "stream_max_gap_ms": ms(per_stream_max),
            "deltas_per_s": sum(s.deltas for s in samples) / cpu.wall,
            "cpu_s": used, "cpu_cores": used / cpu.wall, "cpu_ms_per_stream": used * 1000 / streams,
            "upstream_cpu_s": cpu.used["upstream"], "loadgen_cpu_s": cpu.used["loadgen"],
            "listen_overflows": overflows,
            "rss_before_bytes": rss_before, "rss_peak_bytes": rss.peak, "rss_after_bytes": proc.rss_bytes(),
        }

    async def run_hold(self, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        c = self.counts
        streams = self.args.streams
        await self.control(session, c.stream_chunks, c.stream_delay_ms)
        targets = self.targets("translated", "stream", claude_code_request("small"), True)
        out = []
        for t in targets:  # direct, lynkr, floor
            await one(session, t)
            out.append(await self.hold(session, t, streams))
        return out

    # --- table 3 ---

    async def run_linearity(self, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        c = self.counts
        await self.control(session, CHUNKS, 0)
        out = []
        for kb in self.args.linear_kb:
            req = claude_code_request_sized(kb * 1000)
            targets = self.targets("translated", "stream", req, True)
            label = f"linear/{kb}kB"
            log(f"[{label}] {c.lin_n} requests per path at concurrency 1 and at 16")
            await interleaved(session, targets, max(c.warmup // 2, 3), self.phase_deadline())
            row: dict[str, Any] = {"kb": kb, "body_bytes": len(targets[1].body), "tools": len(req.get("tools", [])),
                                   "messages": len(req["messages"])}
            proxies = {t.path: t.proc for t in targets if t.proc is not None}
            with Cpu(proxies) as cpu:
                samples = await interleaved(session, targets, c.lin_n, self.phase_deadline())
            row["c1"] = {k: cpu.used[k] * 1000 / max(len(samples[k]), 1) for k in proxies}
            row["added_latency_p50_ms"] = {k: percentile([s.total * 1000 for s in samples[k]], 50)
                                           - percentile([s.total * 1000 for s in samples["direct"]], 50)
                                           for k in proxies}
            for t in targets[1:]:
                await concurrent(session, t, 32, 16, self.phase_deadline())
            blocks = await alternating(session, targets[1:], c.lin_n, 16, self.phase_deadline(), {})
            row["c16"] = {path: b.cpu[path] * 1000 / max(len(b.samples), 1) for path, b in blocks.items()}
            out.append(row)
        return out

    # --- all ---

    async def run(self) -> dict[str, Any]:
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
        args = self.args
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        timeout = aiohttp.ClientTimeout(total=args.phase_timeout, sock_connect=10)
        report: dict[str, Any] = {}
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await wait_ready(session, f"{self.p.lynkr_url}/health/ready", self.p.lynkr, args.start_timeout)
            await asyncio.sleep(0.5)
            report["meta"] = meta(args, self.p)
            idle = 1.0 if args.quick else 2.0
            with Cpu({"lynkr": self.p.lynkr, "floor": self.p.floor}) as cpu:
                await asyncio.sleep(idle)
            report["meta"]["idle_cpu_ms_per_s"] = {k: v * 1000 / cpu.wall for k, v in cpu.used.items()
                                                  if k != "loadgen"}
            with profiling(args, self.p.lynkr):
                if "main" in args.sections:
                    cases = [c for c in main_cases() if not args.only or any(o in c.key for o in args.only)]
                    report["main"] = []
                    for case in cases:
                        report["main"].append(asdict(await self.run_case(session, case)))
                    report["meta"]["lynkr_rss_after_main_bytes"] = self.p.lynkr.rss_bytes()
                if "linearity" in args.sections:
                    report["linearity"] = await self.run_linearity(session)
                if "hold" in args.sections:
                    report["hold"] = await self.run_hold(session)
            report["meta"]["lynkr_rss_end_bytes"] = self.p.lynkr.rss_bytes()
        return report


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(f"lynkr exited with {proc.popen.returncode} before it was ready; log:\n{proc.log_tail()}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise BenchError(f"lynkr was not ready after {timeout:.0f} s; log:\n{proc.log_tail()}")


def meta(args: argparse.Namespace, p: Procs) -> dict[str, Any]:
    from lynkr import __version__

    try:
        import uvloop
    except ImportError:
        loop = "asyncio"
    else:
        loop = f"uvloop {uvloop.__version__}"
    return {
        "lynkr_version": __version__, "lynkr_source": args.lynkr_src or _git_state(),
        "python": platform.python_version(), "aiohttp": aiohttp.__version__,
        "event_loop": loop, "cpus": os.cpu_count(), "platform": platform.platform(),
        "loadavg_start": os.getloadavg(), "mode": "quick" if args.quick else "default",
        "counts": asdict(args.counts), "delay_ms": args.delay_ms, "streams": args.streams, "ramp_s": args.ramp_s,
        "clk_tck": os.sysconf("SC_CLK_TCK"), "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "rss_idle_bytes": {"lynkr": p.lynkr.rss_bytes(), "floor": p.floor.rss_bytes(),
                           "upstream": p.upstream.rss_bytes()},
    }


def _git_state() -> str:
    """The working tree's commit, and whether lynkr/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "lynkr"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return str(ROOT)
    return f"{ROOT} at {head or '?'}{' + uncommitted changes in lynkr/' if dirty else ''}"


# --- processes ------------------------------------------------------------------------------------------


def raise_fd_limit(streams: int) -> tuple[int, int]:
    """Raise this process's open-files limit (children inherit it, so do it before spawning them):
    a held stream costs a socket here, two in lynkr (client + upstream) and one in the fake upstream.
    Returns (limit now, streams that fit)."""
    need = 2 * streams + 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(max(need, soft), hard)
    if want > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft, min(streams, max((soft - 512) // 2, 1))


def lynkr_command(given: str | None, src: str | None) -> list[str]:
    if given:
        return given.split()
    if src:
        return [sys.executable, "-m", "lynkr"]
    beside = Path(sys.executable).with_name("lynkr")
    found = str(beside) if beside.exists() else shutil.which("lynkr")
    if not found:
        raise BenchError("cannot find the lynkr command; install the package (pip install -e .) or pass --lynkr")
    return [found]


def ready_port(proc: Proc, timeout: float) -> int:
    line = proc.read_line(timeout=timeout)
    if not line.startswith("READY "):
        raise BenchError(f"{proc.name} said {line!r}; log:\n{proc.log_tail()}")
    return int(line.split()[1])


@contextlib.contextmanager
def processes(args: argparse.Namespace) -> Iterator[Procs]:
    """Start the fake upstream, the floor proxy and lynkr; stop them (upstream last) whatever happens."""
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        env = child_env(PYTHONPATH=str(ROOT))
        upstream = Proc("fake upstream", [sys.executable, "-m", "benchmarks.upstream", "--port", "0"], env=env,
                        cwd=ROOT, log=tmpdir / "upstream.log", stdout_pipe=True)
        stack.callback(upstream.stop)
        upstream_url = f"http://127.0.0.1:{ready_port(upstream, args.start_timeout)}"
        floor = Proc("floor proxy", [sys.executable, "-m", "benchmarks.floor_proxy",
                                     f"{upstream_url}/v1/chat/completions"], env=env, cwd=ROOT,
                     log=tmpdir / "floor.log", stdout_pipe=True)
        stack.callback(floor.stop)
        floor_url = f"http://127.0.0.1:{ready_port(floor, args.start_timeout)}"

        port = args.port or free_port()
        (tmpdir / "data").mkdir()
        env_file = tmpdir / "bench.env"
        env_file.write_text(
            "MODEL_PROVIDER=openai\nOPENAI_API_KEY=bench\n"
            f"OPENAI_ENDPOINT={upstream_url}/v1/chat/completions\nOPENAI_MODEL={UPSTREAM_MODEL}\n"
            f"LOG_LEVEL={args.log_level}\nLYNKR_DATA_DIR={tmpdir / 'data'}\n"
            # the default (1000) would refuse some of table 2's streams: the limit is raised, not removed
            f"LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD={max(2 * args.streams, 2000)}\n"
        )
        lynkr_env = child_env(PYTHONPATH=args.lynkr_src) if args.lynkr_src else child_env()
        lynkr = Proc("lynkr", [*lynkr_command(args.lynkr, args.lynkr_src), "start", "--port", str(port),
                               "--env-file", str(env_file)], env=lynkr_env, cwd=tmpdir, log=tmpdir / "lynkr.log")
        stack.callback(lynkr.stop)
        try:
            yield Procs(upstream, lynkr, floor, upstream_url, f"http://127.0.0.1:{port}", floor_url)
        except BenchError:
            tail = lynkr.log_tail(15)
            if tail.strip():
                print(f"lynkr's log (last lines):\n{tail}", file=sys.stderr)
            raise


@contextlib.contextmanager
def profiling(args: argparse.Namespace, lynkr: Proc) -> Iterator[None]:
    """With --py-spy FILE: record lynkr's stacks for the whole measured run (the numbers are then perturbed)."""
    if not args.py_spy:
        yield
        return
    path = Path(args.py_spy).resolve()
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(path.suffix, "raw")
    exe = Path(sys.executable).with_name("py-spy")
    cmd = [str(exe) if exe.exists() else "py-spy", "record", "--pid", str(lynkr.pid), "--rate", "200",
           "--format", fmt, "--output", str(path)]
    spy = Proc("py-spy", cmd, env=child_env(), cwd=ROOT, log=path.with_name(path.name + ".log"))
    time.sleep(1.0)
    try:
        yield
    finally:
        if spy.alive():
            spy.popen.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        with contextlib.suppress(Exception):
            spy.popen.wait(timeout=30)
        spy.stop()
        log(f"py-spy profile of lynkr: {path}")


# --- output ---------------------------------------------------------------------------------------------


def _f(x: float | None, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _kb(n: int) -> str:
    return f"{n / 1000:.1f}k" if n < 10_000 else f"{n / 1000:.0f}k"


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f}"


def table_main(report: dict[str, Any]) -> str:
    rows = report.get("main") or []
    if not rows:
        return ""
    head = (f"{'case':<24}{'via':<7}{'body':>6} | {'direct':>7}{'+p50':>7}{'+p99':>8} | {'+TTFT':>7}{'+p99':>7} | "
            f"{'req/s c1':>11}{'c16':>11}{'c64':>11} | {'CPU ms/req c1':>13}{'c16':>6}{'c64':>6} | {'RSS':>4}")
    sub = (f"{'':<37} | {'p50 ms':>7}{'added latency':>15} | {'added p50/p99':>14} | "
           f"{'proxy / direct':>33} | {'':>25} | {'peak':>4}")
    lines = ["TABLE 1 -- what lynkr adds per request (concurrency 1 interleaved with the direct path; "
             "CPU = proxy utime+stime / requests)", "", head, sub, "-" * len(head)]
    for r in rows:
        dialect, mode, size = r["case"].split("/")
        name = f"{'anth->oai' if dialect == 'translated' else 'oai pass'} {mode} {size}"
        for proxy in (p for p in r["paths"] if p != "direct"):
            a = r["added_ms"][proxy]
            d = r["latency_ms"]["direct"]
            stream = mode != "json"
            rps = [f"{r['rps'][k][proxy]:.0f}/{r['rps'][k]['direct']:.0f}" for k in ("c1", "c16", "c64")]
            cpu = [r["cpu_ms_per_request"][k].get(proxy) for k in ("c1", "c16", "c64")]
            lines.append(
                f"{name:<24}{proxy:<7}{_kb(r['body_bytes']):>6} | {_f(d['p50']):>7}{_f(a['latency_p50'], sign=True):>7}"
                f"{_f(a['latency_p99'], sign=True):>8} | {_f(a['ttft_p50'] if stream else None, sign=True):>7}"
                f"{_f(a['ttft_p99'] if stream else None, sign=True):>7} | {rps[0]:>11}{rps[1]:>11}{rps[2]:>11} | "
                f"{_f(cpu[0]):>13}{_f(cpu[1]):>6}{_f(cpu[2]):>6} | {_mb(r['rss_peak_bytes'].get(proxy, 0)):>4}"
                + ("  (truncated)" if r["truncated"] else ""))
            name = ""
    m = report["meta"]
    idle = m["rss_idle_bytes"]
    lines += ["", f"paced = {m['delay_ms']:g} ms between chunks; {CHUNKS} SSE frames per stream (16 text deltas). "
              f"RSS MB idle: lynkr {_mb(idle['lynkr'])}, floor {_mb(idle['floor'])}; lynkr after table 1: "
              f"{_mb(m.get('lynkr_rss_after_main_bytes', 0))}. "
              "+TTFT: time to the first text delta, over the direct path's."]
    return "\n".join(lines)


def floor_rows(report: dict[str, Any]) -> str:
    rows = [r for r in report.get("main") or [] if "floor" in r["paths"]]
    if not rows:
        return ""
    lines = ["COMPARISON -- lynkr vs the floor (benchmarks/floor_proxy.py), same run, same load: CPU ms/request",
             "", f"{'case':<24}{'c1 lynkr':>9}{'floor':>7}{'ratio':>7} |{'c16 lynkr':>10}{'floor':>7}{'ratio':>7}"
             f" |{'c64 lynkr':>10}{'floor':>7}{'ratio':>7}"]
    for r in rows:
        dialect, mode, size = r["case"].split("/")
        cells = []
        for k in ("c1", "c16", "c64"):
            lyn, flo = r["cpu_ms_per_request"][k]["lynkr"], r["cpu_ms_per_request"][k]["floor"]
            cells.append(f"{lyn:>9.2f}{flo:>7.2f}{lyn / flo if flo else math.nan:>6.2f}x")
        name = f"{'anth->oai' if dialect == 'translated' else 'oai pass'} {mode} {size}"
        lines.append(f"{name:<24}" + " |".join(cells))
    return "\n".join(lines)


def table_hold(report: dict[str, Any]) -> str:
    rows = report.get("hold") or []
    if not rows:
        return ""
    r0 = rows[0]
    lines = [f"TABLE 2 -- {r0['streams']} concurrent slow streams ({r0['chunks']} SSE frames, {r0['delay_ms']:g} ms "
             f"apart, started over {report['meta']['ramp_s']:g} s; nominal {r0['nominal_s']:.2f} s), Anthropic small "
             "request", "",
             f"{'via':<7}{'done':>10}{'stalled':>8}{'slow':>6}{'open':>6}{'wall s':>7}{'deltas/s':>9} | "
             f"{'TTFB p50':>8}{'max':>7}"
             f"{'gap p50':>8}{'p99':>6}{'max':>6}{'overflows':>10} | {'CPU s':>6}{'cores':>6}{'ms/stream':>10}"
             f"{'RSS MB before/peak/after':>26}"]
    for r in rows:
        g, t = r["gap_ms"], r["ttfb_ms"]
        rss = f"{_mb(r['rss_before_bytes'])}/{_mb(r['rss_peak_bytes'])}/{_mb(r['rss_after_bytes'])}"
        lines.append(f"{r['path']:<7}{str(r['completed']) + '/' + str(r['streams']):>10}{r['stalled']:>8}"
                     f"{r['slow_start']:>6}"
                     f"{r['peak_in_flight']:>6}{r['wall_s']:>7.2f}{r['deltas_per_s']:>9.0f} | "
                     f"{t.get('p50', math.nan):>8.0f}{t.get('max', math.nan):>7.0f}{g.get('p50', math.nan):>8.1f}"
                     f"{g.get('p99', math.nan):>6.0f}{g.get('max', math.nan):>6.0f}{r['listen_overflows']:>10} | "
                     f"{r['cpu_s']:>6.2f}{r['cpu_cores']:>6.2f}{r['cpu_ms_per_stream']:>10.2f}{rss:>26}"
                     + ("  (fake upstream's CPU/RSS)" if r["path"] == "direct" else ""))
        for text, count in r["failures"]:
            lines.append(f"  {count} x {text}")
    lines += ["", f"done: streams that ended with every text delta. stalled: failed, ended short, or waited > "
              f"{r0['stall_ms']:g} ms between two reads. slow: waited > {r0['stall_ms']:g} ms for the first byte. "
              "open: most streams in flight at once. TTFB/gap in ms; gap: between two reads of one stream "
              "(nominal = the pace).",
              "overflows: TcpExt ListenOverflows during the phase (SYNs dropped on a full accept queue; the client "
              "retries after 1, 3, 7... s). CPU/RSS: the proxy's."]
    return "\n".join(lines)


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


def table_linearity(report: dict[str, Any]) -> str:
    rows = report.get("linearity") or []
    if not rows:
        return ""
    lines = ["TABLE 3 -- cost vs body size: Claude Code-shaped request, translated, streaming (20 frames): "
             "CPU ms/request", "",
             f"{'size':<8}{'body':>7}{'tools':>6}{'msgs':>5} | {'c1 lynkr':>9}{'floor':>7}{'ratio':>7}"
             f"{'+p50 ms':>9} | {'c16 lynkr':>10}{'floor':>7}{'ratio':>7} | {'lynkr us/kB':>11}"]
    for r in rows:
        l1, f1 = r["c1"]["lynkr"], r["c1"]["floor"]
        l16, f16 = r["c16"]["lynkr"], r["c16"]["floor"]
        lines.append(f"{str(r['kb']) + ' kB':<8}{_kb(r['body_bytes']):>7}{r['tools']:>6}{r['messages']:>5} | "
                     f"{l1:>9.2f}{f1:>7.2f}{l1 / f1:>6.2f}x{r['added_latency_p50_ms']['lynkr']:>9.2f} | "
                     f"{l16:>10.2f}{f16:>7.2f}{l16 / f16:>6.2f}x | {l1 * 1000 / (r['body_bytes'] / 1000):>11.1f}")
    if len(rows) >= 2:
        xs = [r["body_bytes"] / 1000 for r in rows]
        for k in ("c1", "c16"):
            for who in ("lynkr", "floor"):
                a, b = linear_fit(xs, [r[k][who] for r in rows])
                lines.append(f"  fit {k} {who:<5}: {a:.2f} ms + {b * 1000:.1f} us/kB"
                             + (f"   (largest point / line: {rows[-1][k][who] / (a + b * xs[-1]):.2f})"))
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> str:
    lines = ["TARGETS (issue 8)"]

    def verdict(ok: bool) -> str:
        return "ok  " if ok else "MISS"

    lin = {r["kb"]: r for r in report.get("linearity") or []}
    direct_slow = 0
    if 40 in lin:
        r = lin[40]
        for k in ("c1", "c16"):
            lyn, flo = r[k]["lynkr"], r[k]["floor"]
            lines.append(f"  [{verdict(lyn <= TARGETS['translated_40kb_cpu_ms'])}] translated 40 kB stream, {k}: "
                         f"lynkr {lyn:.2f} ms CPU/request (target <= {TARGETS['translated_40kb_cpu_ms']})")
            lines.append(f"  [{verdict(lyn <= TARGETS['floor_ratio'] * flo)}] translated 40 kB stream, {k}: "
                         f"{lyn / flo:.2f}x the floor's {flo:.2f} ms (target <= {TARGETS['floor_ratio']}x)")
    for r in report.get("main") or []:
        if r["case"] in ("passthrough/stream/small", "passthrough/stream/large", "passthrough/json/small"):
            for k in ("c1", "c16"):
                lyn = r["cpu_ms_per_request"][k]["lynkr"]
                flo = r["cpu_ms_per_request"][k].get("floor")
                lines.append(f"  [{verdict(lyn <= TARGETS['passthrough_cpu_ms'])}] {r['case']} "
                             f"({_kb(r['body_bytes'])}B), {k}: lynkr {lyn:.2f} ms CPU/request "
                             + (f"(floor {flo:.2f}) " if flo else "") + f"(target <= {TARGETS['passthrough_cpu_ms']})")
    for r in report.get("hold") or []:
        if r["path"] == "direct":
            direct_slow = r["slow_start"]
        if r["path"] == "lynkr":
            mb = r["rss_peak_bytes"] / 2**20
            lines.append(f"  [{verdict(mb < TARGETS['hold_rss_mb'])}] {r['streams']} held streams: lynkr RSS peak "
                         f"{mb:.0f} MB (target < {TARGETS['hold_rss_mb']})")
            ok = r["completed"] == r["streams"] and not r["failed"] and not r["stalled"]
            lines.append(f"  [{verdict(ok)}] {r['streams']} held streams: {r['completed']} completed with every "
                         f"chunk, {r['failed']} failed, {r['stalled']} stalled mid-stream (gap > {r['stall_ms']:g} ms; "
                         f"longest {r['gap_ms'].get('max', math.nan):.0f} ms)")
            lines.append(f"  [{verdict(r['slow_start'] <= direct_slow)}] {r['streams']} held streams: "
                         f"{r['slow_start']} waited > {r['stall_ms']:g} ms for their first byte "
                         f"(direct: {direct_slow}; longest "
                         f"{r['ttfb_ms'].get('max', math.nan):.0f} ms; listen overflows {r['listen_overflows']})")
    return "\n".join(lines) if len(lines) > 1 else ""


def render(report: dict[str, Any]) -> str:
    m = report["meta"]
    head = (f"lynkr {m['lynkr_version']} ({m['lynkr_source']}) benchmark ({m['mode']})\n"
            f"Python {m['python']}, aiohttp {m['aiohttp']}, "
            f"{m['event_loop']}, {m['cpus']} CPUs, load average at start {m['loadavg_start'][0]:.2f}, "
            f"at end {m.get('loadavg_end', [math.nan])[0]:.2f}; {m.get('elapsed_s', '?')} s")
    parts = [head, table_main(report), floor_rows(report), table_linearity(report), table_hold(report),
             targets(report)]
    return "\n\n".join(p for p in parts if p) + "\n"


# --- command line ---------------------------------------------------------------------------------------

_QUIET = False


def log(msg: str) -> None:
    if not _QUIET:
        print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts: a smoke run in under a minute")
    ap.add_argument("--json", action="store_true", help="the report as JSON on stdout (tables on stderr)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    ap.add_argument("--only", action="append", default=[], metavar="TEXT",
                    help="table 1: only cases whose key (dialect/mode/size, e.g. translated/stream/large) contains "
                         "TEXT; repeatable")
    ap.add_argument("--requests", "-n", type=int, help="requests per path at concurrency 1 (fast cases)")
    ap.add_argument("--streams", type=int, help="held streams in table 2 (default 1000; quick 300)")
    ap.add_argument("--delay-ms", type=float, default=5.0, help="pace of the paced cases (default 5 ms)")
    ap.add_argument("--ramp-s", type=float, help="table 2: start the streams over this many seconds "
                    "(default 1.0; quick 0.5)")
    ap.add_argument("--stall-ms", type=float, default=3000, help="table 2: a stream that waits longer than this "
                    "for its first byte or between two reads is stalled (default 3000)")
    ap.add_argument("--linear-kb", default="10,40,160", help="table 3 body sizes in kB (default 10,40,160)")
    ap.add_argument("--max-time", type=float, default=900, help="stop starting requests after this many seconds "
                    "(default 900)")
    ap.add_argument("--phase-timeout", type=float, default=120, help="bound of one measured phase, s (default 120)")
    ap.add_argument("--port", type=int, default=0, help="lynkr's port (default: a free one)")
    ap.add_argument("--lynkr", help="lynkr command to run (default: the one beside this Python)")
    ap.add_argument("--lynkr-src", metavar="DIR", help="run lynkr from this source tree (the directory holding "
                    "the lynkr package, e.g. an exported commit: git archive HEAD lynkr | tar -x -C DIR)")
    ap.add_argument("--log-level", default="warning", help="lynkr's LOG_LEVEL (default warning)")
    ap.add_argument("--py-spy", metavar="FILE", help="record lynkr with py-spy during the run (.svg flamegraph, "
                    ".json speedscope, else collapsed stacks); the numbers are then perturbed")
    ap.add_argument("--start-timeout", type=float, default=30.0, help="seconds to wait for each process to start")
    ap.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if bad := [s for s in args.sections if s not in SECTIONS]:
        ap.error(f"unknown section(s): {', '.join(bad)}")
    args.linear_kb = [int(x) for x in args.linear_kb.split(",") if x.strip()]
    counts = QUICK if args.quick else DEFAULT
    if args.requests:
        counts = Counts(**{**asdict(counts), "n1": args.requests, "n_conc": 2 * args.requests,
                           "lin_n": args.requests})
    args.counts = counts
    args.streams = args.streams or counts.streams
    args.ramp_s = args.ramp_s if args.ramp_s is not None else 0.5 if args.quick else 1.0
    if args.streams < 1 or args.delay_ms < 0 or args.max_time <= 0:
        ap.error("--streams must be >= 1, --delay-ms >= 0, --max-time > 0")
    if args.lynkr_src:
        args.lynkr_src = str(Path(args.lynkr_src).resolve())
        if not (Path(args.lynkr_src) / "lynkr" / "__init__.py").is_file():
            ap.error(f"--lynkr-src: no lynkr package in {args.lynkr_src}")
        sys.path.insert(0, args.lynkr_src)  # the fixtures convert with the same lynkr that is measured
    return args


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_async(suite: Suite) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(suite.run())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(suite.run())


def main(argv: list[str] | None = None) -> int:
    global _QUIET
    args = parse_args(argv)
    _QUIET = args.quiet
    if not sys.platform.startswith("linux"):
        print("benchmarks.run needs Linux (/proc)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    limit, fits = raise_fd_limit(args.streams)
    if fits < args.streams:
        log(f"open-files limit is {limit}: holding {fits} streams instead of {args.streams} "
            "(raise the hard limit, e.g. `ulimit -Hn`, for more)")
        args.streams = fits
    started = time.monotonic()
    try:
        with processes(args) as procs:
            report = run_async(Suite(args, procs))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; child processes stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    report["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    report["meta"]["loadavg_end"] = os.getloadavg()
    text = render(report)
    if args.json:
        print(text, file=sys.stderr)
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
