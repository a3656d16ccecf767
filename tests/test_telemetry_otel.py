"""Optional OpenTelemetry traces (lynkr[otel]) when OTEL_EXPORTER_OTLP_ENDPOINT is set: route -> provider call ->
stream spans with GenAI semantic-convention attributes; the client's traceparent is honoured; spans reach a real
OTLP/HTTP collector (a fake one on loopback, decoding the protobuf)."""

from __future__ import annotations

import pytest
from aiohttp import web

from lynkr.server import create_app
from lynkr.server.routes.metrics import TRACE_EXPORTER, TRACING
from tests.conftest import claude_request, openai_settings
from tests.fakes.script import Answer, Failure
from tests.observability_support import ollama_fallback

sdk = pytest.importorskip("opentelemetry.sdk.trace",
                          reason="OpenTelemetry SDK not installed: pip install 'lynkr[otel]'")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


async def test_spans_follow_the_genai_conventions(openai_upstream, ollama_upstream, aiohttp_client):
    settings = openai_settings(openai_upstream, otel_exporter_otlp_endpoint="http://127.0.0.1:9",
                               **ollama_fallback(ollama_upstream.url))
    app = create_app(settings)
    exporter = InMemorySpanExporter()
    app[TRACE_EXPORTER] = exporter
    client = await aiohttp_client(app)
    assert TRACING in client.app

    openai_upstream.script.enqueue(Answer(text="streamed", prompt_tokens=30, completion_tokens=4, cached_tokens=10))
    resp = await client.post("/v1/messages", json=claude_request(stream=True),
                             headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    await resp.read()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["stream", "chat gpt-4o", "POST /v1/messages"]
    stream, call, root = spans
    # the client's trace continues through lynkr
    assert f"{root.context.trace_id:032x}" == TRACE_ID
    assert f"{root.parent.span_id:016x}" == PARENT_ID
    assert call.parent.span_id == root.context.span_id and stream.parent.span_id == call.context.span_id
    assert root.kind == SpanKind.SERVER and call.kind == SpanKind.CLIENT and stream.kind == SpanKind.INTERNAL
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["http.route"] == "/v1/messages"
    assert root.attributes["lynkr.request_id"] == resp.headers["X-Request-ID"]
    assert root.attributes["lynkr.cost_usd"] > 0
    a = call.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.system"] == "openai" and a["gen_ai.request.model"] == "gpt-4o"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (30, 4)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 10
    assert root.start_time <= call.start_time < stream.start_time <= stream.end_time <= root.end_time
    assert [e.name for e in call.events] == ["gen_ai.first_token"]

    # a fallback: the failed attempt is an event on the call span, which names the backend that answered
    exporter.clear()
    openai_upstream.script.enqueue(Failure(500, {"error": {"message": "boom"}}))
    ollama_upstream.script.enqueue(Answer(text="local"))
    assert (await client.post("/v1/messages", json=claude_request())).status == 200
    names = {s.name: s for s in exporter.get_finished_spans()}
    assert set(names) == {"chat qwen2.5-coder:7b", "POST /v1/messages"}  # no stream span: not streamed
    call = names["chat qwen2.5-coder:7b"]
    assert call.attributes["gen_ai.provider.name"] == "ollama"
    assert [(e.name, e.attributes["lynkr.provider"], e.attributes["error.type"]) for e in call.events] == [
        ("gen_ai.attempt.failed", "openai", "UpstreamServerError")]
    assert names["POST /v1/messages"].attributes["lynkr.fallback"] is True

    # a request that fails everywhere is an error span
    exporter.clear()
    openai_upstream.script.enqueue(Failure(500, {"error": {"message": "boom"}}))
    ollama_upstream.script.enqueue(Failure(500, {"error": "down"}))
    assert (await client.post("/v1/messages", json=claude_request())).status >= 500
    failed = {s.name: s for s in exporter.get_finished_spans()}
    assert failed["POST /v1/messages"].status.status_code == StatusCode.ERROR
    assert failed["chat"].status.status_code == StatusCode.ERROR

    # lynkr's own endpoints are not traced
    exporter.clear()
    assert (await client.get("/metrics/prometheus")).status == 200
    assert exporter.get_finished_spans() == ()


async def test_no_endpoint_no_tracing(lynkr_openai):
    client, _ = lynkr_openai
    assert TRACING not in client.app


async def test_spans_reach_an_otlp_http_collector(openai_upstream, aiohttp_server, aiohttp_client):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter",
                        reason="OTLP/HTTP exporter not installed: pip install 'lynkr[otel]'")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[dict[str, str], bytes]] = []

    async def traces(request: web.Request) -> web.Response:
        received.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector_app = web.Application()
    collector_app.router.add_post("/v1/traces", traces)
    collector = await aiohttp_server(collector_app)
    settings = openai_settings(openai_upstream, otel_exporter_otlp_endpoint=str(collector.make_url("/")),
                               otel_exporter_otlp_headers="authorization=Bearer%20collector-token",
                               otel_service_name="lynkr-test")
    client = await aiohttp_client(create_app(settings))
    openai_upstream.script.enqueue(Answer(text="hi", prompt_tokens=12, completion_tokens=3))
    assert (await client.post("/v1/messages", json=claude_request())).status == 200
    await client.close()  # cleanup flushes the batch to the collector

    assert received, "no export reached the collector"
    headers, body = received[0]
    assert headers["authorization"] == "Bearer collector-token"
    assert headers["content-type"] == "application/x-protobuf"
    export = ExportTraceServiceRequest.FromString(body)
    resource = export.resource_spans[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "lynkr-test"
    spans = [s for rs in export.resource_spans for ss in rs.scope_spans for s in ss.spans]
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"POST /v1/messages", "chat gpt-4o"}
    attrs = {a.key: a.value for a in by_name["chat gpt-4o"].attributes}
    assert attrs["gen_ai.request.model"].string_value == "gpt-4o"
    assert attrs["gen_ai.usage.input_tokens"].int_value == 12
    assert attrs["gen_ai.usage.output_tokens"].int_value == 3
