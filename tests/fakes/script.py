"""A scripted answer, independent of wire format; each fake renders it in its own dialect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    name: str
    arguments: str  # JSON text, streamed in fragments
    id: str = ""


@dataclass
class Answer:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish: str | None = None  # default: "tool_calls" when tool calls, else "stop"
    prompt_tokens: int = 11
    completion_tokens: int = 7
    cached_tokens: int = 0
    pieces: int = 3  # how many deltas each text / argument string is cut into
    delay: float = 0.0  # seconds between stream chunks
    gate: asyncio.Event | None = None  # a stream waits for this after its first chunk (a slow answer on cue)


@dataclass
class Failure:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Raw:
    """Bytes sent as they are (for broken or unusual upstream behaviour)."""

    body: bytes
    content_type: str = "text/event-stream"
    status: int = 200
    drop_after: bool = False  # close the connection abruptly after sending
    drop_before: bool = False  # close the connection before sending anything (not even a status line)
    hang_before: float = 0.0  # seconds of silence before the status line (a backend hanging before headers)
    hang_after: float = 0.0  # seconds of silence after ``body``, before the answer ends (a stall mid-stream)
    gate: asyncio.Event | None = None  # after ``body``, wait for this, then send ``more``
    more: bytes = b""  # sent after the gate opens (or the hang ends), before the answer ends or drops


Reply = Answer | Failure | Raw
Responder = Callable[[dict[str, Any]], Reply]


def cut(s: str, n: int) -> list[str]:
    """``s`` in ``n`` roughly equal pieces (never empty pieces)."""
    if not s:
        return []
    n = max(1, min(n, len(s)))
    step = -(-len(s) // n)
    return [s[i : i + step] for i in range(0, len(s), step)]


class Script:
    """Replies in order (``enqueue``), or computed from the request (``respond_with``)."""

    def __init__(self) -> None:
        self.queue: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.responder: Responder | None = None

    def enqueue(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def respond_with(self, responder: Responder) -> None:
        self.responder = responder

    def next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        self.requests.append(body)
        self.headers.append(headers)
        if self.queue:
            return self.queue.pop(0)
        if self.responder is not None:
            return self.responder(body)
        return Failure(500, {"error": {"message": "fake upstream: nothing scripted"}})
