"""Observability wiring and endpoints: Prometheus metrics, routing telemetry, cost, traces.

``GET /metrics`` and ``GET /metrics/prometheus``: Prometheus text (OpenMetrics when asked for);
``GET /metrics/observability``: the same story as JSON for people (``?window=1h``, or ``?since=&until=``);
``GET /v1/routing/stats``: routing telemetry aggregated over ``?since=&until=`` (default: the last 24 hours).

``setup`` registers, in this order, the observers every request's record goes through: the cost of the
request (first, so every later observer — telemetry, budgets — sees ``record.cost_usd``), the metrics, the
telemetry row (once the store is open), and the trace when OTEL_EXPORTER_OTLP_ENDPOINT is set.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web
from loguru import logger

from lynkr.background import stop
from lynkr.errors import InvalidRequest
from lynkr.observability.metrics import LiveState, Metrics
from lynkr.observability.prices import PriceTable, load_prices
from lynkr.observability.record import RequestRecord, current_record
from lynkr.observability.redaction import install as install_redaction
from lynkr.observability.telemetry import Telemetry
from lynkr.server.keys import DISPATCHER, OBSERVERS, SETTINGS, SHEDDER, STORE
from lynkr.server.routes.anthropic import json_response

METRICS = web.AppKey("metrics", Metrics)
PRICES = web.AppKey("prices", PriceTable)
TELEMETRY = web.AppKey("telemetry", Telemetry)
TRACING = web.AppKey("tracing", object)  # lynkr.observability.tracing.Tracing, when tracing is on
TRACE_EXPORTER = web.AppKey("trace_exporter", object)  # tests: an OpenTelemetry SpanExporter used instead of OTLP

# requests that get a telemetry row: the model endpoints
TRACKED = frozenset({"/v1/messages", "/v1/chat/completions", "/chat/completions", "/v1/responses", "/responses",
                     "/v1/embeddings", "/embeddings"})
PRUNE_EVERY = 3600.0  # seconds between telemetry retention passes
MULTIPROCESS_REFRESH = 5.0  # seconds between gauge refreshes of a worker, in multi-process mode
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class EndpointNames:
    """A request path -> the route it matched (``/v1/sessions/{id}``), for low-cardinality metric labels;
    ``other`` for paths no route serves. Built from the router on first use (all routes are added by then)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._static: dict[str, str] | None = None
        self._dynamic: list[tuple[re.Pattern[str], str]] = []
        self._prefixes: list[str] = []

    def _build(self) -> dict[str, str]:
        static: dict[str, str] = {}
        for resource in self.app.router.resources():
            info = resource.get_info()
            if "path" in info:
                static[info["path"]] = info["path"]
            elif "pattern" in info:
                self._dynamic.append((info["pattern"], info["formatter"]))
            elif "prefix" in info:
                self._prefixes.append(info["prefix"])
        self._static = static
        return static

    def __call__(self, path: str) -> str:
        static = self._static if self._static is not None else self._build()
        name = static.get(path)
        if name is not None:
            return name
        for pattern, formatter in self._dynamic:
            if pattern.fullmatch(path):
                return formatter
        for prefix in self._prefixes:
            if path.startswith(prefix + "/"):
                return prefix + "/{filename}"
        return "other"


def live_state(app: web.Application) -> LiveState:
    dispatcher = app.get(DISPATCHER)
    shedder = app[SHEDDER]
    breakers = {name: b.state for name, b in dispatcher.breakers.items()} if dispatcher is not None else {}
    return LiveState(breakers=breakers, active_requests=shedder.active, active_streams=shedder.streams,
                     shed_total=shedder.shed)


def live_json(app: web.Application) -> dict[str, Any]:
    """What is happening right now in this process: in-flight work, shedding, breakers."""
    dispatcher = app.get(DISPATCHER)
    shedder = app[SHEDDER]
    return {
        "active_requests": shedder.active,
        "active_streams": shedder.streams,
        "load_shed_total": shedder.shed,
        "breakers": [{"provider": s["name"], "state": s["state"], "failures": s["failureCount"],
                      "retry_in_s": s["retryInSeconds"]} for s in dispatcher.breaker_states()]
        if dispatcher is not None else [],
    }


def parse_time(value: str, *, now: float, name: str) -> float:
    """Unix seconds, ISO 8601 (``2025-11-20T10:00:00Z``), or an age like ``15m``, ``1h``, ``7d``."""
    value = value.strip()
    if m := _RELATIVE.match(value):
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be unix seconds, an ISO 8601 time or an age like 1h or 7d "
                             f"(got {value!r})", field=name) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # local time, as a person typing it means
    return parsed.timestamp()


def window(request: web.Request, *, default: float) -> tuple[float, float]:
    """``?since=&until=`` (or ``?window=1h``: the last hour) -> (since, until), until exclusive."""
    now = time.time()
    q = request.query
    until = parse_time(q["until"], now=now, name="until") if q.get("until") else now + 0.001
    if q.get("since"):
        since = parse_time(q["since"], now=now, name="since")
    elif q.get("window"):
        since = parse_time(q["window"], now=until, name="window")
    else:
        since = until - default
    if since >= until:
        raise InvalidRequest("since must be before until", field="since")
    return since, until


# --- handlers ------------------------------------------------------------------------------------


async def prometheus(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    metrics.refresh(live_state(request.app))
    body, content_type = metrics.render(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


async def observability(request: web.Request) -> web.Response:
    since, until = window(request, default=3600.0)
    body: dict[str, Any] = {"window": {"since": since, "until": until, "seconds": round(until - since, 3)},
                            "live": live_json(request.app)}
    telemetry = request.app.get(TELEMETRY)
    if telemetry is None:
        body["telemetry"] = "disabled (TELEMETRY_ENABLED=false)"
    else:
        await telemetry.store.flush()  # include what the last requests queued
        body["telemetry"] = "enabled"
        body.update(await telemetry.aggregate(since, until))
    return json_response(body, {"Cache-Control": "no-store"})


async def routing_stats(request: web.Request) -> web.Response:
    since, until = window(request, default=86_400.0)
    telemetry = request.app.get(TELEMETRY)
    if telemetry is None:
        raise InvalidRequest("routing telemetry is off (TELEMETRY_ENABLED=false): no stats to show")
    await telemetry.store.flush()
    return json_response(await telemetry.aggregate(since, until), {"Cache-Control": "no-store"})


# --- wiring --------------------------------------------------------------------------------------


def _cost_observer(prices: PriceTable) -> Any:
    def cost(record: RequestRecord) -> None:
        if record.provider is not None:
            record.cost_usd = prices.cost(
                record.provider, record.model, input_tokens=record.input_tokens, output_tokens=record.output_tokens,
                cache_read=record.cache_read_tokens, cache_write=record.cache_creation_tokens)

    return cost


@web.middleware
async def _trace_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """Only with tracing on: keep the client's W3C trace context for the request's span."""
    record = current_record.get()
    if record is not None and "traceparent" in request.headers:
        record.extra["trace_headers"] = {h: request.headers[h] for h in ("traceparent", "tracestate")
                                         if h in request.headers}
    response: web.StreamResponse = await handler(request)
    return response


async def _observability_ctx(app: web.Application) -> AsyncIterator[None]:
    """Telemetry (migrations, the observer, retention), multi-process gauge refreshes, and traces."""
    settings = app[SETTINGS]
    tasks: list[asyncio.Task[None]] = []
    if settings.telemetry_enabled:
        telemetry = Telemetry(app[STORE], retention_days=settings.telemetry_retention_days,
                              tracked=TRACKED.__contains__)
        await telemetry.migrate()
        app[TELEMETRY] = telemetry
        app[OBSERVERS].append(telemetry.observe)
        tasks.append(asyncio.create_task(_prune_loop(telemetry), name="telemetry-retention"))
    metrics = app[METRICS]
    if metrics.multiprocess:
        tasks.append(asyncio.create_task(_refresh_loop(app), name="metrics-refresh"))
    tracing = _tracing(app)
    if tracing is not None:
        app[TRACING] = tracing
        app[OBSERVERS].append(tracing.observe)
    yield
    await stop(*tasks)
    metrics.publish()  # multi-process mode: this worker's last counts reach the shared files
    if tracing is not None:
        await asyncio.to_thread(tracing.shutdown)


def _tracing(app: web.Application) -> Any:
    settings = app[SETTINGS]
    if not settings.otel_exporter_otlp_endpoint:
        return None
    try:
        from lynkr.observability.tracing import Tracing, parse_headers
    except ImportError as exc:
        logger.error("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({}): "
                     "pip install 'lynkr[otel]'; traces are off", exc.name)
        return None
    headers = settings.otel_exporter_otlp_headers
    return Tracing(endpoint=settings.otel_exporter_otlp_endpoint,
                   headers=parse_headers(headers.get_secret_value() if headers else None),
                   service_name=settings.otel_service_name, exporter=app.get(TRACE_EXPORTER),  # type: ignore[arg-type]
                   endpoint_of=app[METRICS].endpoint_of)


async def _prune_loop(telemetry: Telemetry) -> None:
    while True:
        try:
            gone = await telemetry.prune()
            if gone:
                logger.info("telemetry: pruned {} rows older than {} days", gone, telemetry.retention_days)
        except Exception:
            logger.opt(exception=True).warning("telemetry retention pass failed")
        await asyncio.sleep(PRUNE_EVERY)


async def _refresh_loop(app: web.Application) -> None:
    while True:
        await asyncio.sleep(MULTIPROCESS_REFRESH)
        app[METRICS].refresh(live_state(app))


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    install_redaction(settings.secrets())
    prices = load_prices(settings.model_prices_file)
    app[PRICES] = prices
    app[METRICS] = metrics = Metrics(endpoint_of=EndpointNames(app))
    app[OBSERVERS].insert(0, _cost_observer(prices))
    app[OBSERVERS].append(metrics.observe)
    if settings.otel_exporter_otlp_endpoint:
        app.middlewares.append(_trace_headers)
    app.cleanup_ctx.append(_observability_ctx)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/metrics/prometheus", prometheus)
    app.router.add_get("/metrics/observability", observability)
    app.router.add_get("/v1/routing/stats", routing_stats)
