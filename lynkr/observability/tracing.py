"""Optional OpenTelemetry traces (``pip install 'lynkr[otel]'``), on when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Each model request becomes three spans, built from its ``RequestRecord`` when it ends (so tracing costs the
request path nothing and needs no hooks in the dispatcher):

* ``POST /v1/messages`` (SERVER): the whole request; ``http.*`` attributes, lynkr's routing decision
  (``lynkr.tier``, ``lynkr.routing.score``, ``lynkr.routing.reason``, ``lynkr.fallback``, ``lynkr.retries``);
* ``chat <model>`` (CLIENT, its child): the call to the backend, with the GenAI semantic-convention attributes
  (``gen_ai.operation.name``, ``gen_ai.provider.name`` / ``gen_ai.system``, ``gen_ai.request.model``,
  ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens``...)
  and one ``gen_ai.attempt.failed`` event per failed attempt before it (retries, fallbacks);
* ``stream`` (INTERNAL, child of the call): from the first byte written to the client to the end of the
  stream, for streamed answers.

A ``traceparent`` header from the client makes the request span its child. The record carries no per-attempt
timings, so the backend call is shown from the request's start (routing takes microseconds).

The OpenTelemetry packages are imported only here, and this module only when tracing is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lynkr import __version__
from lynkr.observability.metrics import UNCOUNTED, failed_provider, served_by
from lynkr.observability.record import RequestRecord

# lynkr's backend names -> gen_ai.provider.name values (well-known ones; others keep lynkr's name)
GENAI_PROVIDERS = {
    "openai": "openai", "azure-openai": "azure.ai.openai", "anthropic": "anthropic", "azure-anthropic": "anthropic",
    "bedrock": "aws.bedrock", "vertex": "gcp.gemini", "gemini": "gcp.gemini", "moonshot": "moonshot",
    "zai": "z_ai", "databricks": "databricks", "openrouter": "openrouter", "ollama": "ollama",
    "llamacpp": "llama.cpp", "lmstudio": "lmstudio",
}
TRACE_HEADERS = ("traceparent", "tracestate")


def traces_url(endpoint: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; OTLP/HTTP traces go to {base}/v1/traces."""
    url = endpoint.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


def parse_headers(value: str | None) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS: ``key=value,key2=value2`` (values URL-encoded, per the spec)."""
    from urllib.parse import unquote

    headers = {}
    for part in (value or "").split(","):
        key, sep, val = part.partition("=")
        if sep and key.strip():
            headers[key.strip()] = unquote(val.strip())
    return headers


class Tracing:
    def __init__(self, *, endpoint: str | None = None, headers: dict[str, str] | None = None,
                 service_name: str = "lynkr", exporter: SpanExporter | None = None,
                 endpoint_of: Callable[[str], str] | None = None) -> None:
        self.provider = TracerProvider(resource=Resource.create(
            {"service.name": service_name, "service.version": __version__}))
        if exporter is not None:  # tests: spans handed over as each ends
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            otlp = OTLPSpanExporter(endpoint=traces_url(endpoint or ""), headers=headers or {}, timeout=10)
            self.provider.add_span_processor(BatchSpanProcessor(otlp))
        self.tracer = self.provider.get_tracer("lynkr", __version__)
        self.propagator = TraceContextTextMapPropagator()
        self.endpoint_of = endpoint_of or (lambda path: path)

    def observe(self, r: RequestRecord) -> None:
        """The observer: the request's spans, from its record."""
        if r.path.startswith(UNCOUNTED) or r.finished is None:
            return
        start = int(r.started_at * 1e9)

        def wall(perf: float) -> int:
            return start + int((perf - r.started) * 1e9)

        end = wall(r.finished)
        endpoint = self.endpoint_of(r.path)
        carrier = r.extra.get("trace_headers") or {}
        parent = self.propagator.extract(carrier) if carrier else None
        attrs: dict[str, Any] = {
            "http.request.method": r.method, "url.path": r.path, "http.route": endpoint,
            "http.response.status_code": r.status or 0, "lynkr.request_id": r.request_id,
            "lynkr.fallback": r.fallback, "lynkr.retries": r.retries, "lynkr.stream": r.stream,
        }
        for key, value in (("lynkr.tier", r.tier), ("lynkr.routing.score", r.score),
                           ("lynkr.routing.reason", r.reason), ("lynkr.cost_usd", r.cost_usd),
                           ("error.type", r.error_type), ("session.id", r.session_id)):
            if value is not None:
                attrs[key] = value
        root = self.tracer.start_span(f"{r.method} {endpoint}", context=parent, kind=SpanKind.SERVER,
                                      start_time=start, attributes=attrs)
        failed = (r.status or 0) >= 500
        if failed:
            root.set_status(Status(StatusCode.ERROR, r.error_type or "error"))
        if r.provider is not None or r.attempts:
            self._call_spans(r, trace.set_span_in_context(root), start, end, wall)
        root.end(end_time=end)

    def _call_spans(self, r: RequestRecord, ctx: Any, start: int, end: int, wall: Callable[[float], int]) -> None:
        provider = served_by(r)
        operation = "embeddings" if r.path.endswith("/embeddings") else "chat"
        system = GENAI_PROVIDERS.get(provider, provider)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation, "gen_ai.provider.name": system, "gen_ai.system": system,
            "lynkr.provider": provider,
        }
        if r.model:
            attrs["gen_ai.request.model"] = attrs["gen_ai.response.model"] = r.model
        if r.provider is not None:
            attrs["gen_ai.usage.input_tokens"] = r.input_tokens + r.cache_read_tokens + r.cache_creation_tokens
            attrs["gen_ai.usage.output_tokens"] = r.output_tokens
            attrs["gen_ai.usage.cache_read.input_tokens"] = r.cache_read_tokens
            attrs["gen_ai.usage.cache_creation.input_tokens"] = r.cache_creation_tokens
        call = self.tracer.start_span(f"{operation} {r.model}" if r.model else operation, context=ctx,
                                      kind=SpanKind.CLIENT, start_time=start, attributes=attrs)
        for attempt in r.attempts:
            name, error = failed_provider(attempt)
            call.add_event("gen_ai.attempt.failed", {"lynkr.provider": name, "error.type": error}, timestamp=start)
        if r.provider is None:
            call.set_attribute("error.type", r.error_type or "error")
            call.set_status(Status(StatusCode.ERROR, r.error_type or "error"))
        if r.first_byte is not None:
            first = wall(r.first_byte)
            call.add_event("gen_ai.first_token", timestamp=first)
            stream = self.tracer.start_span("stream", context=trace.set_span_in_context(call),
                                            kind=SpanKind.INTERNAL, start_time=first,
                                            attributes={"lynkr.ttft_ms": round((r.ttft or 0) * 1000, 3)})
            stream.end(end_time=end)
        call.end(end_time=end)

    def shutdown(self) -> None:
        """Flush what is queued to the collector and stop (blocking: run it in a thread)."""
        self.provider.shutdown()
