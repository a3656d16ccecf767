"""Routing decisions (a table of requests -> tier and reason), breaker state machine, retry policy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lynkr.errors import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from lynkr.resilience.breaker import CircuitBreaker
from lynkr.resilience.retry import RetryPolicy, counts_against_backend, retryable
from lynkr.routing.complexity import score, tier_for
from lynkr.routing.router import Router, parse_target, side_request
from tests.conftest import make_settings

TRANSCRIPTS = Path(__file__).parent / "transcripts"
PROVIDERS = {"ollama": object(), "openai": object(), "openrouter": object()}
TIERED = dict(model_provider="ollama", openai_api_key="k", openrouter_api_key="k",
              tier_simple="ollama:qwen2.5-coder:1.5b", tier_medium="ollama:qwen3:8b",
              tier_complex="openrouter:anthropic/claude-sonnet-4.5", tier_reasoning="openai:o3")

BASH = {"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {}}}
WRITE = {"name": "Write", "description": "write", "input_schema": {"type": "object", "properties": {}}}
READ = {"name": "Read", "description": "read", "input_schema": {"type": "object", "properties": {}}}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def tool_turns(n: int) -> list[dict]:
    out: list[dict] = [user("fix the failing test in parser.py")]
    for i in range(n):
        call = {"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {}}
        out.append({"role": "assistant", "content": [call]})
        result = {"type": "tool_result", "tool_use_id": f"t{i}", "content": "ok " * 50}
        out.append({"role": "user", "content": [result]})
    return out


def claude_code_request() -> dict:
    return json.loads((TRANSCRIPTS / "claude_code_request.json").read_text())


ARCHITECTURE = ("Design the architecture for sharding this database; analyze the trade-offs step by step "
                "and plan the migration across the entire codebase")

CASES = [
    # (name, request, headers, expected tier, expected provider, reason fragment)
    ("greeting, no tools", {"model": "claude-opus-4-8", "max_tokens": 100, "messages": [user("hi there")]},
     {}, "simple", "ollama", "score"),
    ("count_tokens fallback", {"model": "claude-opus-4-8", "max_tokens": 1, "messages": [user("count")]},
     {}, "simple", "ollama", "side request: token count"),
    ("haiku side request", {"model": "claude-haiku-4-5-20251001", "max_tokens": 32000, "messages": [user("title?")],
                            "tools": [BASH]}, {}, "simple", "ollama", "side request: small/fast"),
    ("title generation", {"model": "claude-opus-4-8", "max_tokens": 32000, "messages": [user("write a title")],
                          "output_config": {"format": {"type": "json_schema", "schema": {}}}},
     {}, "simple", "ollama", "title generation"),
    ("one edit with tools", {"model": "claude-opus-4-8", "max_tokens": 64000, "thinking": {"type": "adaptive"},
                             "messages": [user("create hello.txt containing hi")], "tools": [BASH, WRITE, READ]},
     {}, "medium", "ollama", "score"),
    ("agent deep in a tool loop", {"model": "claude-opus-4-8", "max_tokens": 64000, "tools": [BASH, WRITE, READ],
                                   "thinking": {"type": "adaptive"}, "messages": tool_turns(10)},
     {}, "complex", "openrouter", "agentic_loop"),
    ("architecture question", {"model": "claude-opus-4-8", "max_tokens": 64000, "thinking": {"type": "adaptive"},
                               "tools": [BASH, WRITE], "messages": [*tool_turns(4), user(ARCHITECTURE)]},
     {}, "reasoning", "openai", "reasoning"),
    ("tier header wins", {"model": "claude-opus-4-8", "max_tokens": 10, "messages": [user("hi")]},
     {"X-Lynkr-Tier": "complex"}, "complex", "openrouter", "header X-Lynkr-Tier"),
    ("provider header wins", {"model": "claude-opus-4-8", "max_tokens": 10, "messages": [user("hi")]},
     {"X-Lynkr-Provider": "openai:gpt-4.1"}, None, "openai", "header X-Lynkr-Provider"),
    ("model names a provider", {"model": "openrouter:qwen/qwen3-coder", "max_tokens": 10, "messages": [user("x")]},
     {}, None, "openrouter", "model names provider"),
    ("explicit backend model", {"model": "qwen3:8b", "max_tokens": 10, "messages": [user("x")]},
     {}, None, "ollama", "model passed through"),
]


@pytest.mark.parametrize(("name", "req", "headers", "tier", "provider", "reason"), CASES, ids=[c[0] for c in CASES])
def test_routing_table(name, req, headers, tier, provider, reason):
    decision = Router(make_settings(**TIERED), PROVIDERS).decide(req, headers)
    first = decision.candidates[0]
    assert decision.tier == tier
    assert first.provider == provider
    assert reason in first.reason


def test_real_claude_code_request_is_scored_and_explained():
    req = claude_code_request()
    decision = Router(make_settings(**TIERED), PROVIDERS).decide(req, {})
    assert decision.score is not None
    assert decision.candidates[0].reason.startswith(f"score {decision.score.value} (")
    assert decision.tier == tier_for(decision.score.value)


def test_static_mode_without_tiers_uses_model_map():
    decision = Router(make_settings(model_provider="ollama"), PROVIDERS).decide(
        {"model": "claude-opus-4-8", "max_tokens": 10, "messages": [user("hi")]})
    assert decision.tier is None
    assert [(c.provider, c.model, c.reason) for c in decision.candidates] == [("ollama", None, "model map")]


def test_unset_tier_falls_to_model_provider():
    settings = make_settings(model_provider="ollama", tier_complex="openai:gpt-4o", openai_api_key="k")
    decision = Router(settings, PROVIDERS).decide({"model": "claude-x", "max_tokens": 1, "messages": [user("x")]})
    assert decision.tier == "simple"
    assert decision.candidates[0].provider == "ollama" and "TIER_SIMPLE unset" in decision.candidates[0].reason


def test_fallback_chain_follows_primary_without_duplicates():
    settings = make_settings(model_provider="ollama", openai_api_key="k", openrouter_api_key="k",
                             fallback_providers="openrouter:qwen/qwen3-coder, openai, ollama")
    decision = Router(settings, PROVIDERS).decide({"model": "claude-x", "max_tokens": 5, "messages": [user("x")]})
    assert [(c.provider, c.model) for c in decision.candidates] == [
        ("ollama", None), ("openrouter", "qwen/qwen3-coder"), ("openai", None)]
    assert [c.reason for c in decision.candidates[1:]] == ["fallback 1", "fallback 2"]


def test_lynkr_single_fallback_provider_respects_fallback_enabled():
    base = dict(model_provider="ollama", openai_api_key="k", fallback_provider="openai")
    assert len(Router(make_settings(**base), PROVIDERS).decide(
        {"model": "claude-x", "max_tokens": 5, "messages": [user("x")]}).candidates) == 2
    assert len(Router(make_settings(**base, fallback_enabled=False), PROVIDERS).decide(
        {"model": "claude-x", "max_tokens": 5, "messages": [user("x")]}).candidates) == 1


def test_parse_target():
    assert parse_target("ollama:qwen2.5-coder:7b", "openai", PROVIDERS) == ("ollama", "qwen2.5-coder:7b")
    assert parse_target("openai", "ollama", PROVIDERS) == ("openai", None)
    assert parse_target("qwen3:8b", "ollama", PROVIDERS) == ("ollama", "qwen3:8b")


def test_side_request_detection():
    assert side_request({"model": "claude-opus-4-8", "max_tokens": 50}) is None
    assert side_request({"model": "claude-opus-4-8", "max_tokens": 1}) == "token count (max_tokens 1)"


def test_score_is_deterministic_and_bounded():
    req = claude_code_request()
    assert score(req) == score(req)
    big = {"messages": [*tool_turns(40), user("refactor the architecture; prove it step by step " * 50)],
           "tools": [BASH, WRITE] * 20, "thinking": {"type": "enabled"}}
    assert score(big).value == 100


# --- circuit breaker -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_half_opens_and_closes():
    clock = Clock()
    b = CircuitBreaker("ollama", failure_threshold=3, success_threshold=2, open_timeout=10, clock=clock)
    for _ in range(2):
        b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow()
    clock.now = 9.9
    assert not b.allow()
    clock.now = 10
    assert b.allow() and b.state == "half_open"
    b.record_success()
    assert b.state == "half_open"
    b.record_success()
    assert b.state == "closed"
    assert b.snapshot()["stats"] == {"success": 2, "failure": 3, "rejected": 2, "opened": 1}


def test_a_half_open_breaker_lets_one_probe_through_at_a_time():
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=1, success_threshold=2, open_timeout=10, clock=clock)
    b.record_failure()
    clock.now = 10
    assert b.allow() and b.state == "half_open"
    first = b.probe
    assert first is not None
    assert not b.allow() and b.retry_in() == 1.0  # the probe is in flight: the others wait
    b.release(object())  # another attempt's token frees nothing
    assert not b.allow()
    b.release(first)  # the probe told nothing (its client left): the next request probes
    assert b.allow() and b.probe is not first
    second = b.probe
    clock.now = 19.9
    assert not b.allow()
    clock.now = 20  # a probe that never reports holds its place for open_timeout at most
    assert b.allow() and b.probe is not second
    b.record_success()
    assert b.state == "half_open" and b.probe is None and b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()
    assert b.snapshot()["stats"]["rejected"] == 3


def test_breaker_half_open_failure_reopens_and_success_resets_count():
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=2, open_timeout=5, clock=clock)
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state == "closed"  # failures must be consecutive
    b.record_failure()
    assert b.state == "open"
    clock.now = 5
    assert b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow()
    b.reset()
    assert b.state == "closed" and b.allow()


# --- retry policy --------------------------------------------------------------------------------


def test_retry_delays_are_full_jitter_and_bounded():
    policy = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=2.0)
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0)):
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(d is not None and 0 <= d <= ceiling for d in delays)
        assert max(d for d in delays if d is not None) > ceiling / 2
    assert policy.delay(4) is None


def test_retry_after_is_honoured_or_sends_us_elsewhere():
    policy = RetryPolicy(max_retries=2, max_delay=5)
    assert policy.delay(1, retry_after=3) == 3
    assert policy.delay(1, retry_after=30) is None


@pytest.mark.parametrize(("err", "again", "health"), [
    (UpstreamUnavailable("x"), True, True), (UpstreamTimeout("x"), True, True),
    (UpstreamRateLimited("x"), True, False), (UpstreamOverloaded("x"), True, True),
    (UpstreamBadRequest("x", upstream_status=409), True, False),
    (UpstreamBadRequest("x", upstream_status=400), False, False),
    (UpstreamAuthError("x"), False, False),
])
def test_what_is_retried(err, again, health):
    assert retryable(err) is again
    assert counts_against_backend(err) is health


def test_breaker_clock_default_is_monotonic():
    b = CircuitBreaker("x")
    assert abs(b.clock() - time.monotonic()) < 5
