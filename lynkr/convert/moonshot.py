"""Moonshot (Kimi) on top of OpenAI Chat Completions: the few things its API does differently.

- ``temperature`` is accepted in [0, 1]; Kimi's thinking models (kimi-k2-thinking, kimi-k2.5 and later)
  fix their sampling: only ``temperature`` 1 is allowed and ``top_p`` may not be set.
- With thinking on, an assistant turn that called tools must carry the ``reasoning_content`` it was
  produced with, or Moonshot answers 400 "reasoning_content is missing in assistant tool call message".
  The reasoning comes from the hub request's thinking blocks; a turn without any gets a placeholder.
- Thinking models take ``tool_choice`` ``auto`` or ``none`` only.
- Streams report usage inside the last chunk's choice, not at the top level.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

KIMI_THINKING = re.compile(r"(^|/)kimi-(k2-thinking|k2\.[5-9]|k[3-9])")
PLACEHOLDER_REASONING = " "  # an empty string reads as missing to Moonshot's check


def _reasoning_by_call_id(req: dict[str, Any]) -> dict[str, str]:
    """tool_use id -> the thinking text of the assistant turn that made the call."""
    found: dict[str, str] = {}
    for msg in req.get("messages") or ():
        content = msg.get("content")
        if msg.get("role") != "assistant" or not isinstance(content, list):
            continue
        thinking = "".join(b.get("thinking") or "" for b in content if b.get("type") == "thinking")
        for b in content:
            if b.get("type") == "tool_use" and thinking:
                found[b["id"]] = thinking
    return found


def moonshot_request(body: dict[str, Any], req: dict[str, Any], model: str) -> dict[str, Any]:
    """A Chat Completions request (from ``anthropic_to_chat``) made acceptable to Moonshot for ``model``."""
    out = dict(body)
    thinking = bool(KIMI_THINKING.search(model))
    if out.get("temperature") is not None:
        out["temperature"] = 1.0 if thinking else min(max(float(out["temperature"]), 0.0), 1.0)
    if thinking:
        out.pop("top_p", None)
        if out.get("tool_choice") not in (None, "auto", "none"):
            out["tool_choice"] = "auto"
    reasoning = _reasoning_by_call_id(req)
    messages = []
    for m in out.get("messages") or ():
        calls = m.get("tool_calls") if m.get("role") == "assistant" else None
        if calls and not m.get("reasoning_content"):
            text = next((reasoning[c["id"]] for c in calls if c.get("id") in reasoning), "")
            if text or thinking:
                m = {**m, "reasoning_content": text or PLACEHOLDER_REASONING}
        messages.append(m)
    out["messages"] = messages
    return out


async def lift_choice_usage(chunks: AsyncIterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Stream chunks with a choice's ``usage`` (Moonshot's place for it) also at the top level."""
    async for chunk in chunks:
        if not chunk.get("usage"):
            usage = next((c["usage"] for c in chunk.get("choices") or () if isinstance(c, dict) and c.get("usage")),
                         None)
            if usage:
                chunk = {**chunk, "usage": usage}
        yield chunk
