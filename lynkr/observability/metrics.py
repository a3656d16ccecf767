"""Prometheus metrics (prometheus-client), fed by the request records and by live state read at scrape time.

Counters and histograms are updated by ``Metrics.observe`` (an observer: a few label lookups and
increments per request). The counters every request moves (requests, tokens, cost or unpriced) are kept as
plain numbers (``_Tally``) and handed to prometheus-client when metrics are read (``publish``: at each
scrape, at each multi-process refresh, and at shutdown): prometheus-client takes a lock and makes several
calls per increment. State that changes on its own — breaker states, requests and streams in flight, the load-shed
count — is copied into gauges by ``Metrics.refresh`` right before each scrape.

Every app has its own ``CollectorRegistry`` (tests build many apps in one process), except in
**multi-process mode**: when ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment before lynkr starts
(prometheus-client decides at import time), every worker writes its values to memory-mapped files in that
directory and a scrape of any worker aggregates all of them (``MultiProcessCollector``): counters and
histograms are summed, ``lynkr_active_*`` gauges summed over live workers, breaker states the max over live
workers (a backend is shown open when any worker has it open). Each worker then also refreshes its gauges
every few seconds, so a scrape answered by one worker sees the others' state. A supervisor of workers wraps
their life in ``worker_metrics(n)`` (which sets up the directory, a temporary one unless given) and calls
``mark_process_dead(pid)`` when one exits.

Which requests count: every request except lynkr's own observability endpoints (``/metrics``,
``/health``, ``/dashboard``), so scrapes and dashboard polling do not drown the traffic they measure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import choose_encoder

from lynkr import __version__
from lynkr.observability.record import RequestRecord

UNCOUNTED = ("/metrics", "/health", "/dashboard")
NONE = "none"
BREAKER_STATES = ("closed", "half_open", "open")

# LLM answers take from tens of milliseconds (a cache, a tiny model) to minutes (a long agent turn)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)


def multiprocess_mode() -> bool:
    """Whether prometheus-client writes values to PROMETHEUS_MULTIPROC_DIR (chosen when it was imported)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def worker_metrics(count: int, environ: MutableMapping[str, str] | None = None) -> Iterator[Path | None]:
    """For a supervisor starting ``count`` worker processes (``lynkr start --workers N``), around their whole life:
    every worker writes its metrics to one directory, so a scrape answered by any worker counts all of them.

    PROMETHEUS_MULTIPROC_DIR when it is set (emptied of a previous run's files, as prometheus-client requires),
    else a temporary directory for this run, removed at the end. Workers inherit the environment, so this must
    wrap their start. One worker: nothing to share, nothing done."""
    env = os.environ if environ is None else environ
    if count <= 1:
        yield None
        return
    given = env.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="lynkr-metrics-"))
    env[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        env.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int, environ: MutableMapping[str, str] | None = None) -> None:
    """For that supervisor, when a worker exits: its live gauges (requests in flight...) stop counting."""
    path = (os.environ if environ is None else environ).get(MULTIPROC_ENV)
    if path:
        multiprocess.mark_process_dead(pid, path)


@dataclass
class LiveState:
    """What the gauges show; read from the dispatcher and the load shedder at refresh time."""

    breakers: dict[str, str] = field(default_factory=dict)  # provider -> closed | half_open | open
    active_requests: int = 0
    active_streams: int = 0
    shed_total: int = 0


def failed_provider(attempt: str) -> tuple[str, str]:
    """``"openai: UpstreamRateLimited"`` (RequestRecord.attempts) -> ("openai", "UpstreamRateLimited")."""
    name, _, error = attempt.partition(": ")
    return name, error or "error"


def served_by(record: RequestRecord) -> str:
    """The provider that answered, else the last one tried, else none."""
    if record.provider:
        return record.provider
    if record.attempts:
        return failed_provider(record.attempts[-1])[0]
    return NONE


class Metrics:
    def __init__(self, *, endpoint_of: Callable[[str], str] | None = None) -> None:
        self.multiprocess = multiprocess_mode()
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry  # multi-process: values live in the mmap files
        self.endpoint_of = endpoint_of or (lambda path: path)
        self._shed_seen = 0
        self._series: dict[tuple[str, str, str], _Series] = {}  # label children, looked up once
        self._tallies: list[_Tally] = []

        self.requests = Counter(
            "lynkr_requests", "HTTP requests answered, by endpoint, serving backend, model and status code",
            ["endpoint", "provider", "model", "status"], registry=reg)
        self.errors = Counter(
            "lynkr_request_errors", "Requests answered with an error, by endpoint, backend and error type",
            ["endpoint", "provider", "error_type"], registry=reg)
        self.duration = Histogram(
            "lynkr_request_duration_seconds", "Time from request to the end of the answer (whole stream)",
            ["endpoint", "provider", "model"], buckets=DURATION_BUCKETS, registry=reg)
        self.ttft = Histogram(
            "lynkr_time_to_first_token_seconds", "Time from request to the first byte of a streamed answer",
            ["endpoint", "provider", "model"], buckets=TTFT_BUCKETS, registry=reg)
        self.tokens = Counter(
            "lynkr_tokens", "Tokens by backend, model and type (input: uncached prompt tokens; cache_read and "
            "cache_write: prompt tokens read from / written to the backend's cache; output)",
            ["provider", "model", "type"], registry=reg)
        self.cost = Counter(
            "lynkr_estimated_cost_usd", "Estimated cost in US dollars from the price table (priced models only)",
            ["provider", "model"], registry=reg)
        self.unpriced = Counter(
            "lynkr_unpriced_requests", "Answered model requests whose model has no known price (cost unknown)",
            ["provider", "model"], registry=reg)
        self.retries = Counter(
            "lynkr_retries", "Retries of a backend call (same backend, after a retryable failure)",
            ["endpoint"], registry=reg)
        self.fallbacks = Counter(
            "lynkr_fallbacks", "Requests answered by a fallback backend after the first choice failed or was skipped",
            ["provider", "tier"], registry=reg)
        self.upstream_failures = Counter(
            "lynkr_upstream_failures", "Failed backend attempts, by backend and error",
            ["provider", "error"], registry=reg)
        self.cache = Counter(
            "lynkr_prompt_cache_lookups", "Prompt-cache lookups by result (hit or miss)", ["result"], registry=reg)
        self.shed = Counter(
            "lynkr_load_shed", "Model requests refused because lynkr was over its load-shedding limits", registry=reg)
        self.breaker = Gauge(
            "lynkr_circuit_breaker_state", "Circuit breaker state per backend: 1 for its current state, else 0",
            ["provider", "state"], registry=reg, multiprocess_mode="livemax")
        self.active_requests = Gauge(
            "lynkr_active_requests", "Model requests in flight", registry=reg, multiprocess_mode="livesum")
        self.active_streams = Gauge(
            "lynkr_active_streams", "Streamed answers being written", registry=reg, multiprocess_mode="livesum")
        self.info = Gauge("lynkr_build_info", "lynkr's version", ["version"], registry=reg, multiprocess_mode="max")
        self.info.labels(__version__).set(1)

    # --- per request ---------------------------------------------------------------------------

    def observe(self, record: RequestRecord) -> None:
        """The observer: one finished request."""
        if record.path.startswith(UNCOUNTED):
            return
        endpoint = self.endpoint_of(record.path)
        provider = served_by(record)
        model = record.model or NONE
        status = record.status or 0
        key = (endpoint, provider, model)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self, endpoint, provider, model)
        requests = series.requests.get(status)
        if requests is None:
            requests = series.requests[status] = self.tally(self.requests.labels(endpoint, provider, model,
                                                                                 str(status)))
        requests.pending += 1
        if record.duration is not None:
            series.duration.observe(record.duration)
        if record.ttft is not None:
            if series.ttft is None:
                series.ttft = self.ttft.labels(*key)
            series.ttft.observe(record.ttft)
        if record.error_type is not None or (record.status or 0) >= 400:
            self.errors.labels(endpoint, provider, record.error_type or "error").inc()
        if record.input_tokens:
            series.tokens("input").pending += record.input_tokens
        if record.output_tokens:
            series.tokens("output").pending += record.output_tokens
        if record.cache_read_tokens:
            series.tokens("cache_read").pending += record.cache_read_tokens
        if record.cache_creation_tokens:
            series.tokens("cache_write").pending += record.cache_creation_tokens
        if record.provider is not None:
            if record.cost_usd is not None:
                if series.cost is None:
                    series.cost = self.tally(self.cost.labels(provider, model))
                series.cost.pending += record.cost_usd
            else:
                if series.unpriced is None:
                    series.unpriced = self.tally(self.unpriced.labels(provider, model))
                series.unpriced.pending += 1
        if record.retries:
            self.retries.labels(endpoint).inc(record.retries)
        if record.fallback:
            self.fallbacks.labels(provider, record.tier or NONE).inc()
        for attempt in record.attempts:
            self.upstream_failures.labels(*failed_provider(attempt)).inc()
        hit = cache_result(record)
        if hit is not None:
            self.cache.labels(hit).inc()

    def tally(self, child: Any) -> _Tally:
        tally = _Tally(child)
        self._tallies.append(tally)
        return tally

    # --- at scrape time ------------------------------------------------------------------------

    def publish(self) -> None:
        """Hand the tallied increments to prometheus-client (in multi-process mode: to this worker's files)."""
        for tally in self._tallies:
            if tally.pending:
                amount, tally.pending = tally.pending, 0
                tally.child.inc(amount)

    def refresh(self, live: LiveState) -> None:
        self.publish()
        for name, state in live.breakers.items():
            for s in BREAKER_STATES:
                self.breaker.labels(name, s).set(1 if s == state else 0)
        self.active_requests.set(live.active_requests)
        self.active_streams.set(live.active_streams)
        if live.shed_total > self._shed_seen:
            self.shed.inc(live.shed_total - self._shed_seen)
        self._shed_seen = live.shed_total

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (Prometheus text, or OpenMetrics when ``accept`` asks for it) and its content type."""
        self.publish()
        registry = self.registry
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type


class _Tally:
    """Increments of one counter's label child not yet handed to it (``Metrics.publish``)."""

    __slots__ = ("child", "pending")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.pending: float = 0


class _Series:
    """The label children of one (endpoint, provider, model): ``labels()`` costs a lock and a tuple per call,
    so the request path looks them up once. Bounded like the labels themselves (routes x backends x models)."""

    __slots__ = ("_tokens", "cost", "duration", "metrics", "model", "provider", "requests", "ttft", "unpriced")

    def __init__(self, metrics: Metrics, endpoint: str, provider: str, model: str) -> None:
        self.metrics = metrics
        self.provider = provider
        self.model = model
        self.requests: dict[int, _Tally] = {}
        self.duration = metrics.duration.labels(endpoint, provider, model)
        self.ttft: Any = None  # streams only: no empty TTFT histogram for endpoints that never stream
        self.cost: _Tally | None = None  # priced answers only
        self.unpriced: _Tally | None = None  # answers from models without a price
        self._tokens: dict[str, _Tally] = {}

    def tokens(self, kind: str) -> _Tally:
        tally = self._tokens.get(kind)
        if tally is None:
            tally = self._tokens[kind] = self.metrics.tally(self.metrics.tokens.labels(self.provider, self.model,
                                                                                      kind))
        return tally


def cache_result(record: RequestRecord) -> str | None:
    """The prompt cache's verdict for this request (``record.extra["cache"]``, set by the cache), if any."""
    value = record.extra.get("cache")
    if value is None:
        return None
    if isinstance(value, bool):
        return "hit" if value else "miss"
    text = str(value).lower()
    return "hit" if text.endswith("hit") or text in ("true", "1") else "miss"
