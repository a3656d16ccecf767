"""``GET /v1/models`` (and ``/v1/models/{id}``) and ``POST /v1/embeddings``.

The models list is what each configured backend really offers (asked concurrently, each with a short
timeout, each answer cached briefly), plus the Claude names lynkr maps and what they map to. A backend
that does not answer is reported under ``backends`` and logged; it never fails the list. The list is
OpenAI's shape, or Anthropic's when the request carries ``anthropic-version`` (the anthropic SDKs and
Claude Code always send it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from loguru import logger

from lynkr.errors import InvalidRequest, LynkrError, NotFound, UpstreamError, anthropic_error_body, error_headers
from lynkr.providers import ModelInfo, Provider
from lynkr.server.keys import DISPATCHER, LOG_SUFFIX, REQUEST_ID
from lynkr.server.routes.anthropic import json_response, read_json
from lynkr.wire.embeddings import validate_embeddings_request

LIST_TIMEOUT = 4.0  # seconds one backend gets to list its models
FRESH_FOR = 60.0  # seconds a backend's listing is reused
DOWN_FOR = 10.0  # seconds a failed listing is remembered (a down backend costs the timeout once, not per call)

# Claude model names clients ask for (Claude Code's current ones); lynkr maps every claude-* name, these
# are listed so model pickers show them with what they become here.
CLAUDE_MODELS = ("claude-opus-4-8", "claude-opus-4-7", "claude-sonnet-4-6", "claude-sonnet-4-5",
                 "claude-haiku-4-5")


@dataclass(slots=True)
class Listing:
    backend: str
    models: list[ModelInfo] = field(default_factory=list)
    error: str | None = None
    at: float = 0.0

    def fresh(self, now: float) -> bool:
        return now - self.at < (DOWN_FOR if self.error else FRESH_FOR)


class ModelCatalog:
    """Per-backend model listings, fetched concurrently and cached; one fetch per backend at a time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cache: dict[str, Listing] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def listings(self, providers: Iterable[Provider]) -> list[Listing]:
        return list(await asyncio.gather(*(self._listing(p) for p in providers)))

    async def _listing(self, provider: Provider) -> Listing:
        name = provider.backend.name
        async with self._locks.setdefault(name, asyncio.Lock()):
            cached = self._cache.get(name)
            if cached is not None and cached.fresh(self.clock()):
                return cached
            listing = await self._fetch(provider)
            self._cache[name] = listing
            return listing

    async def _fetch(self, provider: Provider) -> Listing:
        name = provider.backend.name
        try:
            async with asyncio.timeout(LIST_TIMEOUT):
                models = await provider.list_models()
        except TimeoutError:
            error = f"{name} did not list its models within {LIST_TIMEOUT:g}s"
        except UpstreamError as err:
            error = err.message
        else:
            return Listing(name, models, at=self.clock())
        logger.warning("models: {} is unavailable ({}); listing without it", name, error)
        return Listing(name, error=error, at=self.clock())


CATALOG = web.AppKey("model_catalog", ModelCatalog)


def _matches(model: ModelInfo, name: str) -> bool:
    return model.id == name or (":" not in name and model.id == f"{name}:latest")  # Ollama's implicit tag


def _entries(request: web.Request, listings: list[Listing]) -> list[dict[str, Any]]:
    """Every model as an OpenAI model object (with lynkr's extra fields), Claude names first."""
    dispatcher = request.app[DISPATCHER]
    by_backend = {listing.backend: listing.models for listing in listings}
    entries: list[dict[str, Any]] = []
    for alias in CLAUDE_MODELS:
        # what a plain request for this name becomes: the dispatcher's own answer, not a copy of its rules
        route = dispatcher.route({"model": alias, "max_tokens": 1, "messages": []})
        backend, target = route.provider.backend.name, route.model
        entry = {"id": alias, "object": "model", "created": 0, "owned_by": "lynkr", "provider": backend,
                 "maps_to": target}
        known = by_backend.get(backend, [])
        window = next((m.context_window for m in known if _matches(m, target) and m.context_window), None)
        if window:
            entry["context_window"] = window
        entries.append(entry)
    seen = set(CLAUDE_MODELS)
    for listing in listings:
        for model in listing.models:
            if model.id in seen:  # the first backend to offer a name (the chat backend) keeps it
                continue
            seen.add(model.id)
            entry = {"id": model.id, "object": "model", "created": model.created or 0,
                     "owned_by": model.owned_by or listing.backend, "provider": listing.backend}
            if model.context_window:
                entry["context_window"] = model.context_window
            entries.append(entry)
    return entries


def _backends(listings: list[Listing]) -> list[dict[str, Any]]:
    out = []
    for listing in listings:
        item: dict[str, Any] = {"name": listing.backend, "status": "unavailable" if listing.error else "ok",
                                "models": len(listing.models)}
        if listing.error:
            item["error"] = listing.error
        out.append(item)
    return out


async def _all(request: web.Request) -> tuple[list[dict[str, Any]], list[Listing]]:
    providers = request.app[DISPATCHER].providers
    primary = request.app[DISPATCHER].primary
    ordered = [primary, *(p for p in providers.values() if p is not primary)]
    listings = await request.app[CATALOG].listings(ordered)
    return _entries(request, listings), listings


# --- Anthropic's models-list shape ------------------------------------------------------------------


def _wants_anthropic(request: web.Request) -> bool:
    return "anthropic-version" in request.headers


def _anthropic_model(entry: dict[str, Any]) -> dict[str, Any]:
    created = datetime.fromtimestamp(entry["created"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    where = f"{entry['maps_to']} on {entry['provider']}" if "maps_to" in entry else entry["provider"]
    out = {"type": "model", "id": entry["id"], "display_name": f"{entry['id']} ({where})", "created_at": created}
    if "context_window" in entry:
        out["context_window"] = entry["context_window"]
    return out


def _anthropic_page(request: web.Request, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One page as Anthropic pages it: ``limit`` (1-1000, default 20), ``after_id`` / ``before_id`` cursors."""
    raw = request.query.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise InvalidRequest(f"must be an integer from 1 to 1000 (got {raw!r})", field="limit")
    ids = [e["id"] for e in entries]
    after, before = request.query.get("after_id"), request.query.get("before_id")
    for name, cursor in (("after_id", after), ("before_id", before)):
        if cursor is not None and cursor not in ids:
            raise InvalidRequest(f"no model {cursor!r} in this list", field=name)
    if before is not None:
        end = ids.index(before)
        page, has_more = entries[max(0, end - limit):end], end - limit > 0
    else:
        start = ids.index(after) + 1 if after is not None else 0
        page, has_more = entries[start:start + limit], start + limit < len(entries)
    data = [_anthropic_model(e) for e in page]
    return {"data": data, "has_more": has_more, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def _anthropic_error(request: web.Request, err: LynkrError) -> web.Response:
    # the error middleware picks the shape by path; a request carrying anthropic-version gets Anthropic's
    return web.json_response(anthropic_error_body(err, request.get(REQUEST_ID)), status=err.status,
                             headers=error_headers(err))


# --- handlers ---------------------------------------------------------------------------------------


async def list_models(request: web.Request) -> web.Response:
    entries, listings = await _all(request)
    if _wants_anthropic(request):
        try:
            body = _anthropic_page(request, entries)
        except LynkrError as err:
            return _anthropic_error(request, err)
        return json_response({**body, "backends": _backends(listings)}, {})
    return json_response({"object": "list", "data": entries, "backends": _backends(listings)}, {})


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    entries, _ = await _all(request)
    entry = next((e for e in entries if e["id"] == model_id), None)
    if entry is None:
        err = NotFound(f"model {model_id!r} is not offered by any configured backend (see GET /v1/models)")
        if _wants_anthropic(request):
            return _anthropic_error(request, err)
        raise err
    return json_response(_anthropic_model(entry) if _wants_anthropic(request) else entry, {})


async def embeddings(request: web.Request) -> web.Response:
    body = validate_embeddings_request(await read_json(request))
    route = request.app[DISPATCHER].embeddings_route(body.get("model"))
    request[LOG_SUFFIX] = f" {body.get('model')} -> {route.describe()}"
    return json_response(await route.provider.create_embeddings(body, route.model), route.headers())


def setup(app: web.Application) -> None:
    app[CATALOG] = ModelCatalog()
    for prefix in ("/v1", ""):  # clients configured with a base URL without /v1 too
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_get(f"{prefix}/models/{{model_id:.+}}", get_model)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
