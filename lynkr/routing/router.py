"""Which backends, in which order, should serve a request: the routing decision, with its reason.

The decision is pure (request + headers + settings in, an ordered candidate list out) so that
``POST /routing/analyze`` can show it without calling any backend. In order of precedence:

1. ``X-Lynkr-Provider: name[:model]`` header, or a model named ``provider:model``;
2. ``X-Lynkr-Tier: simple|medium|complex|reasoning`` header;
3. a non-Claude model name the client chose on purpose: ``MODEL_PROVIDER`` with that model;
4. with tiers configured (``TIER_*`` = ``provider:model``, Lynkr's format): Claude Code's side
   requests (haiku-class model, ``max_tokens`` 1 counts, title generation) go to the cheapest
   tier; everything else to the tier its complexity score picks;
5. otherwise ``MODEL_PROVIDER`` with the model map.

Fallbacks (``FALLBACK_PROVIDERS``, or Lynkr's single ``FALLBACK_PROVIDER``) follow, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lynkr.config import Settings
from lynkr.routing.complexity import TIERS, Score, score
from lynkr.routing.model_map import is_claude_model, is_small_fast


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    model: str | None  # None: the provider's configured model, through the model map
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    candidates: list[Candidate]
    tier: str | None = None
    score: Score | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "score": self.score.value if self.score else None,
            "signals": self.score.signals if self.score else None,
            "candidates": [{"provider": c.provider, "model": c.model, "reason": c.reason} for c in self.candidates],
            "notes": self.notes,
        }


def parse_target(
    value: str, default_provider: str, known: Mapping[str, object] | None = None
) -> tuple[str, str | None]:
    """``provider:model`` (split at the first colon, so ``ollama:qwen3:8b`` works); a bare value is a model
    of ``default_provider``, or a provider when it names one."""
    head, sep, rest = value.partition(":")
    if sep and (known is None or head in known):
        return head, rest or None
    if known is not None and value in known:
        return value, None
    return default_provider, value


def side_request(req: dict[str, Any]) -> str | None:
    """Why a request is one of Claude Code's side requests, or None."""
    if req.get("max_tokens") == 1:
        return "token count (max_tokens 1)"
    if is_small_fast(str(req.get("model", ""))):
        return "small/fast model requested"
    if not req.get("tools") and ((req.get("output_config") or {}).get("format") or {}).get("type") == "json_schema":
        return "structured side request (title generation)"
    return None


class Router:
    def __init__(self, settings: Settings, providers: Mapping[str, object]) -> None:
        self.settings = settings
        self.providers = providers
        self.default = settings.model_provider
        self.tiers: dict[str, tuple[str, str | None]] = {}
        for tier in TIERS:
            value = getattr(settings, f"tier_{tier}", None)
            if value:
                self.tiers[tier] = parse_target(value, self.default, providers)
        self.fallbacks = [parse_target(v, self.default, providers) for v in settings.fallback_chain()]

    def decide(self, req: dict[str, Any], headers: Mapping[str, str] | None = None) -> Decision:
        headers = headers or {}
        decision = self._primary(req, headers)
        seen = {(c.provider, c.model) for c in decision.candidates}
        for n, (provider, model) in enumerate(self.fallbacks, 1):
            if (provider, model) not in seen:
                seen.add((provider, model))
                decision.candidates.append(Candidate(provider, model, f"fallback {n}"))
        return decision

    def _primary(self, req: dict[str, Any], headers: Mapping[str, str]) -> Decision:
        model = str(req.get("model", ""))
        forced = headers.get("x-lynkr-provider") or headers.get("X-Lynkr-Provider")
        if forced:
            provider, forced_model = parse_target(forced, self.default, self.providers)
            return Decision([Candidate(provider, forced_model, "header X-Lynkr-Provider")])
        head, sep, rest = model.partition(":")
        if sep and head in self.providers:
            return Decision([Candidate(head, rest or None, f"model names provider {head}")])

        tier_header = (headers.get("x-lynkr-tier") or headers.get("X-Lynkr-Tier") or "").lower()
        if tier_header in TIERS:
            return self._tier(tier_header, f"header X-Lynkr-Tier: {tier_header}")

        if not is_claude_model(model):
            return Decision([Candidate(self.default, model, "model passed through")])

        if self.tiers:
            why = side_request(req)
            if why:
                return self._tier("simple", f"side request: {why}")
            s = score(req)
            return self._tier(s.tier, f"{s.explain()} -> {s.tier}", s)
        return Decision([Candidate(self.default, None, "model map")])

    def _tier(self, tier: str, reason: str, s: Score | None = None) -> Decision:
        target = self.tiers.get(tier)
        if target is None:  # an unset tier is served by MODEL_PROVIDER's model
            return Decision([Candidate(self.default, None, f"{reason}; TIER_{tier.upper()} unset")], tier, s)
        return Decision([Candidate(target[0], target[1], reason)], tier, s)
