"""Sending a request to the backends that should serve it: routing, retries, breakers, fallbacks.

Handlers say *what* to do with a route (``call``/``open`` callables) and never pick a provider.
For each candidate the router returns, in order:

* skip it when it is not configured, cannot take the request (tools, images, context window), or
  its circuit breaker is open — the reason is recorded;
* try it, with a first-byte deadline; retry retryable failures (exponential backoff, full jitter,
  ``retry-after`` honoured) while its breaker stays closed;
* on failure move to the next candidate (a fallback), never after the first byte reached the client.

A stream counts as accepted once its first item has arrived: only then are headers sent. Its outcome
counts once it ends: a clean end is a success for the backend's breaker, an upstream error or a stall
after the first item a failure (the client gets one error event; nothing is retried).
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
from lynkr.observability.record import current_record
from lynkr.providers import REGISTRY, Provider, embeddings_provider
from lynkr.resilience.breaker import CircuitBreaker
from lynkr.resilience.deadlines import timers_of
from lynkr.resilience.retry import RetryPolicy, counts_against_backend, retryable
from lynkr.routing.model_map import is_claude_model, upstream_embeddings_model, upstream_model
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
        # the reason may quote a backend's error (an HTML page, say): one printable line, as a header must be
        h = {"X-Lynkr-Provider": self.provider.backend.name, "X-Lynkr-Model": self.model,
             "X-Lynkr-Routing-Reason": _one_line(self.reason)}
        if self.tier:
            h["X-Lynkr-Tier"] = self.tier
        return h

    def describe(self) -> str:
        tier = f" tier={self.tier}" if self.tier else ""
        return f"{self.provider.backend.name}:{self.model}{tier} ({self.reason})"


class StreamOutcome(Generic[T]):
    """What the stream writer (``lynkr.server.streaming``) tells the dispatcher about a stream after its first
    item: ``observe`` sees the items the client gets, a batch (list) at a time, and one of ``ended`` (a
    success for the backend's breaker), ``failed`` (an upstream error) or ``stalled`` (the writer's idle
    timeout fired) says how it ended. Callbacks, not a generator wrapped around the stream."""

    __slots__ = ("_dispatcher", "name", "observe", "probe")

    def __init__(self, dispatcher: Dispatcher, name: str, observe: Callable[[list[T]], None] | None) -> None:
        self._dispatcher, self.name, self.observe = dispatcher, name, observe
        self.probe = dispatcher.breakers[name].probe  # a half-open breaker's probe: this stream

    def ended(self) -> None:
        self._dispatcher.breakers[self.name].record_success()

    def failed(self, err: UpstreamError) -> None:
        self._dispatcher.counters[self.name].stream_failures += 1
        self._dispatcher._failed(self.name, err, self.probe)

    def stalled(self) -> None:
        self.failed(UpstreamTimeout(f"{self.name} went silent mid-stream", provider=self.name))

    def release(self) -> None:
        """The writer is done, whatever happened: a probe that told nothing (the client left) lets the next
        request probe."""
        if self.probe is not None:
            self._dispatcher.breakers[self.name].release(self.probe)


@dataclass(slots=True)
class Opened(Generic[T]):
    """A stream whose first item has arrived (so the backend accepted the request). Whoever writes it
    reports to ``outcome``."""

    route: Route
    first: T
    rest: AsyncGenerator[T, None]
    outcome: StreamOutcome[T]


OpenStream = Opened[Event]
OpenRaw = Opened[bytes]


@dataclass
class Plan:
    decision: Decision
    routes: list[Route]
    skipped: list[str] = field(default_factory=list)
    first_skipped: bool = False  # the decision's first choice cannot take the request: routes[0] is a fallback


@dataclass
class Counters:
    """What the dispatcher did with one backend (shown with its breaker at ``GET /metrics/circuit-breakers``)."""

    attempts: int = 0  # calls made to it (first tries, retries and fallbacks alike)
    failures: int = 0  # calls that failed, before or after the first byte
    retries: int = 0  # calls that were retries
    fallbacks: int = 0  # requests it took over from an earlier candidate that failed or was skipped
    stream_failures: int = 0  # streams that failed after their first byte (the client got an error event)

    def as_dict(self) -> dict[str, int]:
        return {"attempts": self.attempts, "failures": self.failures, "retries": self.retries,
                "fallbacks": self.fallbacks, "streamFailures": self.stream_failures}


class Dispatcher:
    def __init__(self, settings: Settings, providers: dict[str, Provider], *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.providers = providers
        self.primary = providers[settings.model_provider]
        # every backend name is known to routing, built or not: a fallback naming a backend that could not
        # be built is skipped as "not configured" rather than taken for a model of MODEL_PROVIDER
        self.router = Router(settings, {**dict.fromkeys(REGISTRY), **providers})
        self.retry = RetryPolicy(settings.api_retry_max_retries, settings.api_retry_initial_delay / 1000,
                                 settings.api_retry_max_delay / 1000)
        self.breakers = {name: CircuitBreaker(name, settings.circuit_breaker_failure_threshold,
                                              settings.circuit_breaker_success_threshold,
                                              settings.circuit_breaker_timeout / 1000)
                         for name in providers}
        self.counters = {name: Counters() for name in providers}
        self._sleep = sleep

    # --- planning ------------------------------------------------------------------------------

    def plan(self, req: dict[str, Any], headers: Mapping[str, str] | None = None) -> Plan:
        decision = self.router.decide(req, headers)
        plan = Plan(decision, [])
        needs_tools = bool(req.get("tools"))
        needs_images: bool | None = None  # looked for only when a candidate cannot read images
        tokens: int | None = None
        requested = str(req.get("model", ""))
        for i, c in enumerate(decision.candidates):
            provider = self.providers.get(c.provider)
            if provider is None:
                plan.skipped.append(f"{c.provider}: not configured")
                continue
            if c.model:
                model = c.model
            elif i and not is_claude_model(requested):
                # a backend model the client chose means nothing to a fallback: it serves its own model
                model = provider.default_model or requested
            else:
                model = upstream_model(
                    requested, default=provider.default_model,
                    small_fast=self.settings.small_fast_model or provider.small_fast_default,
                    passthrough=provider.passes_claude_models and not provider.default_model)
            name = f"{c.provider}:{model}"
            if needs_tools and not provider.supports_tools:
                plan.skipped.append(f"{name}: no tool support")
                continue
            if not provider.supports_images:
                if needs_images is None:
                    needs_images = _has_images(req)
                if needs_images:
                    plan.skipped.append(f"{name}: no image support")
                    continue
            window = provider.context_window(model)
            if window and not _fits_by_size(window):
                if tokens is None:
                    tokens = _estimate_tokens(req)
                if tokens > window:
                    plan.skipped.append(f"{name}: ~{tokens} tokens exceed its {window}-token context")
                    continue
            reason = c.reason
            if not plan.routes and plan.skipped:  # earlier candidates could not take it: say why
                plan.first_skipped = True
                reason = f"{reason} after {plan.skipped[-1]}"[:300]
            plan.routes.append(Route(provider, model, reason, decision.tier))
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
                   opener: Callable[[Route, dict[str, Any]], AsyncGenerator[T, None]],
                   observe: Callable[[list[T]], None] | None = None) -> Opened[T]:
        """Open ``opener(route, request)`` along the plan until one yields its first item. ``observe`` sees
        every item the client gets, batch by batch (the writer calls it, through ``Opened.outcome``)."""

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

        route, (first, rest) = await self._attempt(self.plan(req, headers), req, first_item, stream=True)
        return Opened(route, first, rest, StreamOutcome(self, route.provider.backend.name, observe))

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
            vendor = route.provider.thinking_vendor
            return tag_events(events, vendor) if vendor and vendor != "anthropic" else events

        record = current_record.get()
        return await self.open(req, headers, opener, record.note_events if record is not None else None)

    async def _attempt(self, plan: Plan, req: dict[str, Any],
                       call: Callable[[Route, dict[str, Any]], Awaitable[R]], *,
                       stream: bool = False) -> tuple[Route, R]:
        """``call`` along the plan. For a stream (``stream=True``) a first item is not yet a success for
        the backend's breaker: the stream writer reports its outcome (``StreamOutcome``) when it ends."""
        errors: list[str] = list(plan.skipped)
        record = current_record.get()
        loop = record.loop if record is not None and record.loop is not None else asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        timers = timers_of(loop)
        if record is not None:
            record.client_model = str(req.get("model", "")) or None
        last: UpstreamError | None = None
        retry_after: float | None = None
        for n, route in enumerate(plan.routes):
            name = route.provider.backend.name
            breaker = self.breakers[name]
            counters = self.counters[name]
            if not breaker.allow():
                errors.append(f"{name}: circuit open" if breaker.state == "open"
                              else f"{name}: circuit half-open, its probe request is in flight")
                wait = breaker.retry_in()
                retry_after = wait if retry_after is None else min(retry_after, wait)
                continue
            probe = breaker.probe
            fallback = n > 0 or plan.first_skipped
            if n and errors:
                route = replace(route, reason=f"{route.reason} after {errors[-1]}"[:300])
            prepared = prepare_thinking(req, route.provider.thinking_vendor)
            deadline = route.provider.backend.timeout_ms / 1000
            attempt = 0
            while True:
                counters.attempts += 1
                try:
                    with timers.deadline(deadline, task):
                        result = await call(route, prepared)
                except TimeoutError:
                    err: UpstreamError = UpstreamTimeout(f"{name} sent nothing for {deadline:g} s", provider=name)
                except UpstreamError as exc:
                    err = exc
                except BaseException:  # not the backend's doing (the client left, lynkr's own error)
                    breaker.release(probe)
                    raise
                else:
                    if not stream:
                        breaker.record_success()
                    if fallback:
                        counters.fallbacks += 1
                    if record is not None:
                        record.provider, record.model, record.tier = name, route.model, route.tier
                        record.reason = route.reason
                        record.score = plan.decision.score.value if plan.decision.score else None
                        record.fallback = fallback
                    return route, result
                self._failed(name, err, probe)
                if record is not None:
                    record.attempts.append(f"{name}: {type(err).__name__}")
                attempt += 1
                delay = self.retry.delay(attempt, err.retry_after) if retryable(err) else None
                if delay is None or breaker.state == "open":
                    break
                counters.retries += 1
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

    def _failed(self, name: str, err: UpstreamError, probe: object | None = None) -> None:
        self.counters[name].failures += 1
        if counts_against_backend(err):
            self.breakers[name].record_failure()
        else:
            self.breakers[name].release(probe)

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
        """Each backend's breaker, with what the dispatcher did with it (``requests``)."""
        return [{**b.snapshot(), "requests": self.counters.setdefault(name, Counters()).as_dict()}
                for name, b in self.breakers.items()]


def _one_line(text: str) -> str:
    if not text.isprintable():
        text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())


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


def _fits_by_size(window: int) -> bool:
    """The client's Messages body is under half ``window``'s worth of bytes (bytes / 4 overestimates its
    tokens): it fits, and the request need not be serialised again to estimate them."""
    record = current_record.get()
    return record is not None and 0 < record.request_bytes // 4 <= window // 2


def _estimate_tokens(req: dict[str, Any]) -> int:
    """A fast size estimate (bytes / 4) for context-window checks; count_tokens is the real count."""
    return len(orjson.dumps({k: req.get(k) for k in ("system", "messages", "tools")})) // 4


__all__ = ["Dispatcher", "OpenRaw", "OpenStream", "Opened", "Route", "StreamOutcome"]
