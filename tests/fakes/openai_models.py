"""A fake model-list server for key checks: OpenAI-style ``GET /v1/models`` (OpenAI, llama.cpp, LM Studio,
Moonshot), OpenRouter's ``/api/v1/models`` (public) and ``/api/v1/key``, Azure's ``/openai/models``
(``api-key`` header), Anthropic's ``/v1/models`` (``x-api-key``). Answers 401 in each service's own shape
when the key is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class ModelsState:
    key: str | None = "sk-good-key-0123456789"  # None: no key needed
    models: list[str] = field(default_factory=lambda: ["gpt-4o", "gpt-4o-mini", "gpt-4.1"])
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


STATE = web.AppKey("state", ModelsState)


def _listing(state: ModelsState) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"}
                                                         for m in state.models]})


def _denied() -> web.Response:
    return web.json_response({"error": {"message": "Incorrect API key provided: sk-wr***", "type":
                                        "invalid_request_error", "code": "invalid_api_key"}}, status=401)


def _bearer_ok(request: web.Request) -> bool:
    state = request.app[STATE]
    return state.key is None or request.headers.get("Authorization") == f"Bearer {state.key}"


async def models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.requests.append((request.path, dict(request.headers)))
    return _listing(state) if _bearer_ok(request) else _denied()


async def openrouter_models(request: web.Request) -> web.Response:  # public, like the real one
    state = request.app[STATE]
    state.requests.append((request.path, dict(request.headers)))
    return _listing(state)


async def openrouter_key(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.requests.append((request.path, dict(request.headers)))
    if not _bearer_ok(request):
        return web.json_response({"error": {"message": "No auth credentials found", "code": 401}}, status=401)
    return web.json_response({"data": {"label": "sk-or-v1-abc...", "usage": 0, "limit": None}})


async def azure_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.requests.append((request.path, dict(request.headers)))
    if request.headers.get("api-key") != state.key:
        return web.json_response({"error": {"code": "401", "message": "Access denied due to invalid subscription "
                                            "key or wrong API endpoint."}}, status=401)
    return _listing(state)


def make_app(state: ModelsState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/v1/models", models)
    app.router.add_get("/api/v1/models", openrouter_models)
    app.router.add_get("/api/v1/key", openrouter_key)
    app.router.add_get("/openai/models", azure_models)
    return app
