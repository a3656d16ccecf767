"""What may be cached, and the canonical key it is cached under. Pure functions, no I/O.

The key is the SHA-256 of a canonical JSON (sorted keys, no whitespace) of everything in the request
that can change the answer: model, system, messages, tools, tool_choice, sampling parameters, and any
field lynkr does not know (so a new parameter never makes two different requests collide). Left out:
``stream`` and ``stream_options`` (a streamed and a non-streamed answer are the same answer) and
``metadata`` (user ids).
The caller's key id is part of the key: one client never receives an answer cached for another.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

IGNORED = frozenset({"stream", "stream_options", "metadata"})
STORABLE_STOPS = frozenset({"end_turn", "stop_sequence", "max_tokens"})


def canonical_key(scope: dict[str, Any], body: dict[str, Any]) -> str:
    doc = {"scope": scope, "request": {k: v for k, v in body.items() if k not in IGNORED}}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def nondeterministic(body: dict[str, Any]) -> str | None:
    """Why the request asks for varied answers (so a cached one would be wrong), or None.
    No sampling parameters at all counts as deterministic: the client did not ask for variety."""
    t = body.get("temperature")
    if isinstance(t, int | float) and t > 0:
        return f"temperature {t}"
    p = body.get("top_p")
    if isinstance(p, int | float) and p < 1:
        return f"top_p {p}"
    if body.get("top_k") is not None:
        return "top_k"
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        return f"n {n}"
    if body.get("logprobs") or body.get("top_logprobs"):
        return "logprobs (a cached answer has none)"
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        return "extended thinking (samples at temperature 1)"
    return None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def tool_turn(body: dict[str, Any]) -> bool:
    """Whether the conversation is inside a tool loop (a tool call or result in it)."""
    for msg in body.get("messages") or ():
        if isinstance(msg, dict) and any(b.get("type") in ("tool_use", "tool_result", "server_tool_use")
                                         for b in _blocks(msg)):
            return True
    return False


def calls_tools(message: dict[str, Any]) -> bool:
    return any(b.get("type") in ("tool_use", "server_tool_use") for b in _blocks(message))


def storable(message: dict[str, Any], *, tool_turns: bool) -> bool:
    """A complete answer worth keeping: it ended normally and, unless allowed, calls no tool."""
    stop = message.get("stop_reason")
    if stop not in STORABLE_STOPS and not (tool_turns and stop == "tool_use"):
        return False
    if not message.get("content"):
        return False
    return tool_turns or not calls_tools(message)


def last_question(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """For the semantic cache: the last user turn's text, and the request without it (the *context*,
    which must match exactly). None when the last turn is not plain text from the user."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    last = messages[-1]
    if last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list) and content and all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in content):
        text = "\n".join(b["text"] for b in content)
    else:
        return None
    text = text.strip()
    if not text:
        return None
    context = {**body, "messages": [*messages[:-1], {"role": "user", "content": "<question>"}]}
    return text, context
