"""``GET /openapi.json``: an OpenAPI 3.1 description of lynkr's own HTTP surface.

Generated at startup from the router itself (so every registered route is in it, including routes
other modules add) and from the shapes the handlers validate (pydantic JSON Schema of the TypedDicts in
``lynkr.wire`` and ``lynkr.server.schemas``). Routes this module has no details for are still listed,
with their path parameters and generic answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from lynkr import __version__
from lynkr.access.control import classify
from lynkr.server import schemas as s
from lynkr.server.middlewares import dialect
from lynkr.wire.anthropic import CountTokensRequest, MessagesRequest

REF = "#/components/schemas/{model}"
DOC = web.AppKey("openapi_document", dict)


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    request: Any = None  # a type pydantic can describe
    response: Any = None
    stream: bool = False  # may answer text/event-stream
    query: tuple[tuple[str, str], ...] = ()  # (name, description)


DETAILS: dict[tuple[str, str], Op] = {
    ("POST", "/v1/messages"): Op("Anthropic Messages API (Claude Code, anthropic SDKs)", "model",
                                 MessagesRequest, s.MessageResponse, True),
    ("POST", "/v1/messages/count_tokens"): Op("Count a Messages request's input tokens", "model",
                                              CountTokensRequest, s.TokenCount),
    ("POST", "/v1/chat/completions"): Op("OpenAI Chat Completions (Cursor, Continue, SDKs)", "model",
                                         s.ChatCompletionRequest, s.ChatCompletion, True),
    ("POST", "/chat/completions"): Op("OpenAI Chat Completions (base URL without /v1)", "model",
                                      s.ChatCompletionRequest, s.ChatCompletion, True),
    ("POST", "/v1/responses"): Op("OpenAI Responses API (Codex)", "model", s.ResponsesRequest, s.ResponseObject, True),
    ("POST", "/responses"): Op("OpenAI Responses API (base URL without /v1)", "model", s.ResponsesRequest,
                               s.ResponseObject, True),
    ("POST", "/v1/embeddings"): Op("OpenAI embeddings", "model", s.EmbeddingsRequest, s.EmbeddingsResponse),
    ("POST", "/embeddings"): Op("OpenAI embeddings (base URL without /v1)", "model", s.EmbeddingsRequest,
                                s.EmbeddingsResponse),
    ("GET", "/v1/models"): Op("Models every configured backend offers", "models", None, s.ModelList,
                              query=(("limit", "Anthropic paging: 1-1000"), ("after_id", "Anthropic paging"),
                                     ("before_id", "Anthropic paging"))),
    ("GET", "/models"): Op("Models (base URL without /v1)", "models", None, s.ModelList),
    ("GET", "/health"): Op("Liveness", "health", None, s.Health),
    ("GET", "/health/live"): Op("Liveness with uptime", "health", None, s.Health),
    ("GET", "/health/ready"): Op("Readiness (503 while draining)", "health", None, s.Health),
    ("GET", "/v1/sessions/{session_id}"): Op("A session's transcript", "sessions", None, s.Session),
    ("GET", "/v1/admin/keys"): Op("Client keys with limits and usage", "admin", None, s.KeyList),
    ("GET", "/v1/admin/keys/{key_id}/limits"): Op("A key's limits and usage", "admin", None, s.KeyDescription),
    ("PUT", "/v1/admin/keys/{key_id}/limits"): Op("Set a key's limits", "admin", s.LimitsBody, s.KeyDescription),
    ("DELETE", "/v1/admin/keys/{key_id}/limits"): Op("Reset a key's limits to the defaults", "admin", None,
                                                     s.KeyDescription),
    ("GET", "/v1/admin/cache"): Op("Answer-cache counters of this instance", "admin"),
    ("POST", "/v1/admin/circuit-breakers/reset"): Op("Reset circuit breakers", "admin",
                                                     query=(("provider", "only this backend's breaker"),)),
    ("POST", "/routing/analyze"): Op("Routing decision for a Messages body (dry run)", "admin", MessagesRequest),
    ("GET", "/metrics/circuit-breakers"): Op("Circuit breaker states", "admin"),
    ("GET", "/metrics/load-shedding"): Op("Load shedding state", "admin"),
    ("GET", "/openapi.json"): Op("This document", "health"),
}

_PARAM = re.compile(r"{([^}:]+)}")


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, tp: Any) -> dict[str, Any]:
        schema = TypeAdapter(tp).json_schema(ref_template=REF)
        self.components.update(schema.pop("$defs", {}))
        name = getattr(tp, "__name__", None)
        if name is None:
            return schema
        self.components[name] = schema
        return {"$ref": REF.format(model=name)}


def _error_ref(path: str) -> dict[str, Any]:
    return {"$ref": REF.format(model="AnthropicError" if dialect(path) == "anthropic" else "OpenAIError")}


def build(app: web.Application) -> dict[str, Any]:
    sc = _Schemas()
    sc.ref(s.AnthropicError)
    sc.ref(s.OpenAIError)
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        method = route.method.upper()
        if method == "*":
            continue
        path = route.resource.canonical if route.resource is not None else ""
        if not path:
            continue
        op = DETAILS.get((method, path))
        if op is None and method == "HEAD":
            op = DETAILS.get(("GET", path))
        kind = classify(path)
        operation: dict[str, Any] = {
            "operationId": f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_') or 'root'}",
            "summary": op.summary if op else f"{method} {path}",
            "tags": [op.tag if op else kind],
            "security": [] if kind == "open" else (
                [{"adminKey": []}, {"adminBearer": []}] if kind == "admin" else [{"apiKey": []}, {"bearer": []}]),
        }
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in _PARAM.findall(path)]
        params += [{"name": n, "in": "query", "required": False, "description": d, "schema": {"type": "string"}}
                   for n, d in (op.query if op else ())]
        if params:
            operation["parameters"] = params
        if op and op.request is not None and method in ("POST", "PUT", "PATCH"):
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": sc.ref(op.request)}}}
        ok: dict[str, Any] = {"description": "OK"}
        if method != "HEAD":
            content: dict[str, Any] = {"application/json": {"schema": sc.ref(op.response) if op and op.response
                                                            else {"type": "object"}}}
            if op and op.stream:
                content["text/event-stream"] = {"schema": {"type": "string"},
                                                "description": "with \"stream\": true: server-sent events"}
            ok["content"] = content
        error = {"description": "error, in the caller's dialect", "content": {"application/json": {
            "schema": _error_ref(path)}}} if method != "HEAD" else {"description": "error"}
        operation["responses"] = {"200": ok, "4XX": error, "5XX": error}
        if kind != "open":
            operation["responses"]["401"] = {**error, "description": "missing or invalid key"}
        if kind == "client" and path in {"/v1/messages", "/v1/chat/completions", "/chat/completions",
                                         "/v1/responses", "/responses", "/v1/embeddings", "/embeddings"}:
            operation["responses"]["429"] = {**error, "description": "rate limit or budget of the key; see retry-after"}
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "lynkr", "version": __version__,
                 "description": "LLM gateway for coding agents: Anthropic Messages, OpenAI Chat Completions and "
                                "Responses in, any configured backend out."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(sc.components.items())),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                           "description": "a client key from LYNKR_API_KEYS"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "a client key from LYNKR_API_KEYS"},
                "adminKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                             "description": "LYNKR_ADMIN_KEY"},
                "adminBearer": {"type": "http", "scheme": "bearer", "description": "LYNKR_ADMIN_KEY"},
            },
        },
    }


async def document(request: web.Request) -> web.Response:
    doc = request.app[DOC]
    if not doc:  # built on first use: the router is complete by then
        doc.update(build(request.app))
    return web.json_response(doc)


def setup(app: web.Application) -> None:
    app[DOC] = {}
    app.router.add_get("/openapi.json", document)
