"""Sending a request to the backends that should serve it: routing, retries, breakers, fallbacks.

Handlers say *what* to do with a route (``call``/``open`` callables) and never pick a provider.
For each candidate the router returns, in order:

* skip it when it is not configured, cannot take the request (tools, images, context window), or
  its circuit breaker is open — the reason is recorded;
* try it, with a first-byte deadline; retry retryable failures (exponential backoff, full jitter,
  ``retry-after`` honoured) while its breaker stays closed;
* on failure move to the next candidate (a fallback), never after the first byte reached the client.

A stream counts as accepted once its first item has arrived: only then are headers sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import orjson

from lynkr.config import Settings
from lynkr.convert.signatures import prepare_thinking, tag_events, tag_message
from lynkr.errors import (
    InvalidRequest,
    NotConfigured,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamTimeout,
)
from lynkr.observability.record import current_record, tap_usage
from lynkr.providers import Provider, embeddings_provider
from lynkr.resilience.breaker import CircuitBreaker
from lynkr.resilience.retry import RetryPolicy, counts_against_backend, retryable
from lynkr.routing.model_map import upstream_embeddings_model, upstream_model
from lynkr.routing.router import Decision, Router

Event = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes, and why (shown to clients as X-Lynkr-* headers)."""

    provider: Provider
    model: str
    reason: str
    tier: str | None = None

    def headers(self) -> dict[str, str]:
        h = {"X-Lynkr-Provider": self.provider.backend.name, "X-Lynkr-Model": self.model,
             "X-Lynkr-Routing-Reason": self.reason}
        if self.tier:
            h["X-Lynkr-Tier"] = self.tier
        return h

    def describe(self) -> str:
        tier = f" tier={self.tier}" if self.tier else ""
        return f"{self.provider.backend.name}:{self.model}{tier} ({self.reason})"


@dataclass(slots=True)
class Opened(Generic[T]):
    """A stream whose first item has arrived (so the backend accepted the request)."""

    route: Route
    first: T
    rest: AsyncGenerator[T, None]


OpenStream = Opened[Event]
OpenRaw = Opened[bytes]


@dataclass
class Plan:
    decision: Decision
    routes: list[Route]
    skipped: list[str] = field(default_factory=list)


@dataclass
class Counters:
    retries: int = 0
    fallbacks: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    def __init__(self, settings: Settings, providers: dict[str, Provider], *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.providers = providers
        self.primary = providers[settings.model_provider]
        self.router = Router(settings, providers)
        self.retry = RetryPolicy(settings.api_retry_max_retries, settings.api_retry_initial_delay / 1000,
                                 settings.api_retry_max_delay / 1000)
        self.breakers = {name: CircuitBreaker(name, settings.circuit_breaker_failure_threshold,
                                              settings.circuit_breaker_success_threshold,
                                              settings.circuit_breaker_timeout / 1000)
                         for name in providers}
        self.counters = Counters()
        self._sleep = sleep

    # --- planning ------------------------------------------------------------------------------

    def plan(self, req: dict[str, Any], headers: Mapping[str, str] | None = None) -> Plan:
        decision = self.router.decide(req, headers)
        plan = Plan(decision, [])
        needs_tools = bool(req.get("tools"))
        needs_images = _has_images(req)
        tokens: int | None = None
        for c in decision.candidates:
            provider = self.providers.get(c.provider)
            if provider is None:
                plan.skipped.append(f"{c.provider}: not configured")
                continue
            model = c.model or upstream_model(
                str(req.get("model", "")), default=provider.default_model,
                small_fast=self.settings.small_fast_model or provider.small_fast_default,
                passthrough=provider.passes_claude_models and not provider.default_model)
            name = f"{c.provider}:{model}"
            if needs_tools and not provider.supports_tools:
                plan.skipped.append(f"{name}: no tool support")
                continue
            if needs_images and not provider.supports_images:
                plan.skipped.append(f"{name}: no image support")
                continue
            window = provider.context_window(model)
            if window:
                tokens = tokens if tokens is not None else _estimate_tokens(req)
                if tokens > window:
                    plan.skipped.append(f"{name}: ~{tokens} tokens exceed its {window}-token context")
                    continue
            plan.routes.append(Route(provider, model, c.reason, decision.tier))
        if not plan.routes:
            raise InvalidRequest("no configured backend can take this request: " + "; ".join(plan.skipped))
        return plan

    def route(self, req: dict[str, Any], headers: Mapping[str, str] | None = None) -> Route:
        """The first choice only (what ``POST /routing/analyze`` and single-shot callers want)."""
        return self.plan(req, headers).routes[0]

    # --- running -------------------------------------------------------------------------------

    async def run(self, req: dict[str, Any], headers: Mapping[str, str] | None,
                  call: Callable[[Route, dict[str, Any]], Awaitable[R]]) -> tuple[Route, R]:
        """``call(route, request)`` along the plan until one succeeds."""
        return await self._attempt(self.plan(req, headers), req, call)

    async def open(self, req: dict[str, Any], headers: Mapping[str, str] | None,
                   opener: Callable[[Route, dict[str, Any]], AsyncGenerator[T, None]]) -> Opened[T]:
        """Open ``opener(route, request)`` along the plan until one yields its first item."""

        async def first_item(route: Route, prepared: dict[str, Any]) -> tuple[T, AsyncGenerator[T, None]]:
            events = opener(route, prepared)
            try:
                return await anext(events), events
            except StopAsyncIteration:
                await events.aclose()
                raise UpstreamBadResponse("backend sent an empty stream",
                                          provider=route.provider.backend.name) from None
            except BaseException:
                await events.aclose()
                raise

        route, (first, rest) = await self._attempt(self.plan(req, headers), req, first_item)
        return Opened(route, first, rest)

    async def create_message(self, req: dict[str, Any], headers: Mapping[str, str] | None = None
                             ) -> tuple[Route, dict[str, Any]]:
        async def call(route: Route, prepared: dict[str, Any]) -> dict[str, Any]:
            message = await route.provider.create_message(prepared, route.model)
            if (record := current_record.get()) is not None:
                record.add_usage(message.get("usage"))
            return tag_message(message, route.provider.thinking_vendor)

        return await self.run(req, headers, call)

    async def open_stream(self, req: dict[str, Any], headers: Mapping[str, str] | None = None) -> OpenStream:
        def opener(route: Route, prepared: dict[str, Any]) -> AsyncGenerator[Event, None]:
            events = route.provider.stream_message(prepared, route.model)
            if (record := current_record.get()) is not None:
                events = tap_usage(events, record)
            vendor = route.provider.thinking_vendor
            return tag_events(events, vendor) if vendor and vendor != "anthropic" else events

        return await self.open(req, headers, opener)

    async def _attempt(self, plan: Plan, req: dict[str, Any],
                       call: Callable[[Route, dict[str, Any]], Awaitable[R]]) -> tuple[Route, R]:
        errors: list[str] = list(plan.skipped)
        record = current_record.get()
        last: UpstreamError | None = None
        retry_after: float | None = None
        for n, route in enumerate(plan.routes):
            name = route.provider.backend.name
            breaker = self.breakers[name]
            if not breaker.allow():
                errors.append(f"{name}: circuit open")
                wait = breaker.snapshot()["retryInSeconds"]
                retry_after = wait if retry_after is None else min(retry_after, wait)
                continue
            if n and errors:
                self.counters.fallbacks += 1
                route = replace(route, reason=f"{route.reason} after {errors[-1]}"[:300])
            prepared = prepare_thinking(req, route.provider.thinking_vendor)
            deadline = route.provider.backend.timeout_ms / 1000
            attempt = 0
            while True:
                try:
                    async with asyncio.timeout(deadline):
                        result = await call(route, prepared)
                except TimeoutError:
                    err: UpstreamError = UpstreamTimeout(f"{name} sent nothing for {deadline:.0f} s", provider=name)
                except UpstreamError as exc:
                    err = exc
                else:
                    breaker.record_success()
                    if record is not None:
                        record.provider, record.model, record.tier = name, route.model, route.tier
                        record.reason = route.reason
                        record.score = plan.decision.score.value if plan.decision.score else None
                        record.fallback = n > 0 and bool(errors)
                    return route, result
                self.counters.failures[name] = self.counters.failures.get(name, 0) + 1
                if record is not None:
                    record.attempts.append(f"{name}: {type(err).__name__}")
                if counts_against_backend(err):
                    breaker.record_failure()
                attempt += 1
                delay = self.retry.delay(attempt, err.retry_after) if retryable(err) else None
                if delay is None or breaker.state == "open":
                    break
                self.counters.retries += 1
                if record is not None:
                    record.retries += 1
                await self._sleep(delay)
            last = err
            errors.append(f"{name}: {err.message}"[:300])
        if last is None:  # every candidate's breaker was open
            raise UpstreamOverloaded("every backend for this request is failing and paused: " + "; ".join(errors),
                                     retry_after=retry_after)
        if len(plan.routes) > 1:
            last.message = f"{last.message} (tried: {'; '.join(errors)})"[:2000]
        raise last

    # --- embeddings (one backend, no chain) ------------------------------------------------------

    def embeddings_route(self, requested: str | None) -> Route:
        """The backend and model for ``POST /v1/embeddings``; NotConfigured when no backend can embed."""
        provider = embeddings_provider(self.settings, self.providers)
        if provider is None or provider.embeddings_model is None:
            if self.settings.embeddings_provider:
                why = f"EMBEDDINGS_PROVIDER={self.settings.embeddings_provider} is not available"
            else:
                why = f"MODEL_PROVIDER={self.settings.model_provider} cannot create embeddings and no other backend is"
            raise NotConfigured(f"no embeddings backend: {why}. Set EMBEDDINGS_PROVIDER to ollama, openai, openrouter "
                                f"or llamacpp (with that backend's settings, e.g. OLLAMA_ENDPOINT or OPENAI_API_KEY)")
        model = upstream_embeddings_model(requested, backend=provider.backend.name, default=provider.embeddings_model)
        return Route(provider, model, "model map" if model != requested else "model passed through")

    def breaker_states(self) -> list[dict[str, Any]]:
        return [b.snapshot() for b in self.breakers.values()]


def _has_images(req: dict[str, Any]) -> bool:
    for msg in req.get("messages") or ():
        content = msg.get("content")
        if isinstance(content, list):
            for b in content:
                if isinstance(b, dict) and (b.get("type") == "image" or (
                        b.get("type") == "tool_result" and isinstance(b.get("content"), list)
                        and any(isinstance(x, dict) and x.get("type") == "image" for x in b["content"]))):
                    return True
    return False


def _estimate_tokens(req: dict[str, Any]) -> int:
    """A fast size estimate (bytes / 4) for context-window checks; count_tokens is the real count."""
    return len(orjson.dumps({k: req.get(k) for k in ("system", "messages", "tools")})) // 4


__all__ = ["Dispatcher", "OpenRaw", "OpenStream", "Opened", "Route"]
