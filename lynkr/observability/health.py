"""Deep readiness: is each configured backend reachable, and how fast — without spending a token.

Two probes per backend, side by side, each under HEALTH_CHECK_TIMEOUT_MS:

* **reachability**: ``GET`` the origin of the backend's endpoint with no credentials. Any HTTP answer
  (even 401 or 404) proves DNS, TCP, TLS and the server are up; its round trip is the backend's latency.
* **listing**: the provider's ``list_models()`` — Ollama's ``/api/tags``, ``GET {base}/models`` on
  OpenAI-compatible backends — which also checks the key where the backend lists models. Backends without
  a listing API answer from their configuration (``"listing": "static"``).

A backend is ``ok`` when both pass, else ``down`` with the reason (secrets masked).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from lynkr.errors import LynkrError
from lynkr.observability.redaction import REDACTOR
from lynkr.providers import Provider
from lynkr.providers.base import Provider as BaseProvider
from lynkr.providers.http import proxy_for


def origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/"


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


async def _reach(provider: Provider, timeout: float) -> dict[str, Any]:
    url = origin(provider.backend.endpoint)
    if url is None:
        return {"reachable": None, "reach_error": "no endpoint URL configured"}
    start = time.perf_counter()
    try:
        async with provider.http.get(url, proxy=proxy_for(url), allow_redirects=False,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return {"reachable": True, "http_status": resp.status, "latency_ms": _ms(start)}
    except TimeoutError:
        return {"reachable": False, "reach_error": f"no answer within {timeout:g} s", "latency_ms": _ms(start)}
    except (aiohttp.ClientError, OSError) as exc:
        return {"reachable": False, "reach_error": REDACTOR.redact(f"{type(exc).__name__}: {exc}"),
                "latency_ms": _ms(start)}


async def _listing(provider: Provider, timeout: float) -> dict[str, Any]:
    static = type(provider).list_models is BaseProvider.list_models
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            models = await provider.list_models()
    except TimeoutError:
        return {"listing": "failed", "listing_error": f"no answer within {timeout:g} s"}
    except LynkrError as err:
        return {"listing": "failed", "listing_error": REDACTOR.redact(err.message)}
    except Exception as exc:  # a backend's own bug must not break the health check
        return {"listing": "failed", "listing_error": REDACTOR.redact(f"{type(exc).__name__}: {exc}")}
    return {"listing": "static" if static else "ok", "models": len(models), "listing_ms": _ms(start)}


async def probe(provider: Provider, timeout: float) -> dict[str, Any]:
    reach, listing = await asyncio.gather(_reach(provider, timeout), _listing(provider, timeout))
    ok = reach.get("reachable") is not False and listing["listing"] != "failed"
    return {"provider": provider.backend.name, "status": "ok" if ok else "down",
            "endpoint": origin(provider.backend.endpoint), "model": provider.default_model, **reach, **listing}


async def probe_all(providers: dict[str, Provider], timeout: float) -> list[dict[str, Any]]:
    """Every distinct backend, probed concurrently (two names for one backend are probed once)."""
    unique = list({id(p): p for p in providers.values()}.values())
    return list(await asyncio.gather(*(probe(p, timeout) for p in unique)))
