"""Declarative tables the converters share: stop reasons, output limits, reasoning support."""

from __future__ import annotations

import re
from functools import lru_cache

# OpenAI Chat finish_reason -> Anthropic stop_reason
FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Ollama done_reason -> Anthropic stop_reason
OLLAMA_DONE_TO_STOP: dict[str, str] = {"stop": "end_turn", "length": "max_tokens"}

# Largest max_tokens a model family accepts (first match wins). Requests above are clamped so
# Claude Code's 64k-128k asks do not earn a 400 from a backend that allows less.
_OUTPUT_LIMITS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(p), n)
    for p, n in (
        (r"(^|/)gpt-5[\d.]*-chat", 16_384),  # gpt-5-chat-latest: the ChatGPT model, not the reasoning one
        (r"(^|/)gpt-5", 128_000),
        (r"(^|/)o[134](-|$)", 100_000),
        (r"(^|/)gpt-4\.1", 32_768),
        (r"(^|/)gpt-4o", 16_384),
        (r"(^|/)gpt-4-turbo", 4_096),
        (r"(^|/)gpt-3\.5", 4_096),
    )
)

# OpenAI models that take reasoning_effort (and reject temperature/top_p). gpt-5-chat-latest is not one:
# it answers 400 "Unsupported parameter: 'reasoning_effort'".
REASONING_MODEL = re.compile(r"(^|/)(o[134]|gpt-5(?![\d.]*-chat)|gpt-oss)")

# Ollama model families that accept the `think` option. Qwen3-Coder (and -Coder-Next) cannot think:
# Ollama answers 400 "does not support thinking" when asked to.
OLLAMA_THINKING_MODEL = re.compile(r"(^|/)(qwen3(?!-coder)|deepseek-r1|deepseek-v3\.1|gpt-oss|magistral|cogito)")


@lru_cache(maxsize=256)
def output_limit(model: str) -> int | None:
    """The most output tokens ``model`` can give, when its family is known (cached: one model per request,
    a handful of regular expressions per lookup)."""
    for pattern, limit in _OUTPUT_LIMITS:
        if pattern.search(model):
            return limit
    return None


def effort_for_budget(budget_tokens: int) -> str:
    """Anthropic thinking.budget_tokens -> an OpenAI reasoning effort."""
    if budget_tokens < 4_096:
        return "low"
    if budget_tokens < 16_384:
        return "medium"
    return "high"
