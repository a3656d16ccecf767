"""What each model family accepts on Amazon Bedrock: Claude's output limit, thinking mode (budget, adaptive,
both) and cache points by model version; other families get the portable Converse subset."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ThinkingMode = Literal["none", "budget", "both", "adaptive", "as-asked"]

# Largest maxTokens per Claude model on Bedrock (first match wins); others are not clamped.
_CLAUDE_OUTPUT_LIMITS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(p), n)
    for p, n in (
        (r"claude-3-5-", 8_192),
        (r"claude-3-7-", 64_000),
        (r"claude-3-", 4_096),
        (r"claude-opus-4-6", 128_000),
        (r"claude-opus-4-5", 64_000),
        (r"claude-opus-4(-1)?-\d{8}", 32_000),
        (r"claude-(sonnet|haiku)-4", 64_000),
    )
)
_CLAUDE_VERSION = re.compile(r"claude-(?:(?:opus|sonnet|haiku)-)?(\d+)(?:-(\d{1,2})(?!\d))?")


@dataclass(frozen=True, slots=True)
class ModelTraits:
    claude: bool
    thinking: ThinkingMode
    cache_points: bool
    output_limit: int | None


def claude_version(model: str) -> tuple[int, int] | None:
    """(major, minor) of a Claude model ID (``anthropic.claude-sonnet-4-5-...`` -> (4, 5)), if it has one."""
    m = _CLAUDE_VERSION.search(model)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def model_traits(model: str) -> ModelTraits:
    if "claude" not in model.lower():
        # Nova, Llama, Mistral, DeepSeek...: the portable Converse subset only
        return ModelTraits(claude=False, thinking="none", cache_points=False, output_limit=None)
    limit = next((n for p, n in _CLAUDE_OUTPUT_LIMITS if p.search(model)), None)
    v = claude_version(model)
    if v is None:  # a Claude name we cannot date: send what the client asked for
        return ModelTraits(claude=True, thinking="as-asked", cache_points=True, output_limit=limit)
    thinking: ThinkingMode
    if v < (3, 7):
        thinking = "none"
    elif v < (4, 6):
        thinking = "budget"
    elif v == (4, 6):
        thinking = "both"
    else:
        thinking = "adaptive"  # Claude 4.7 and later reject budget_tokens
    cache = v >= (3, 7) or "claude-3-5-haiku" in model
    return ModelTraits(claude=True, thinking=thinking, cache_points=cache, output_limit=limit)
