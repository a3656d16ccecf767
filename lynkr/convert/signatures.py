"""Thinking-block signatures across vendors, so a backend never sees another vendor's signature.

Clients echo thinking blocks back verbatim, signature and all. A signature only means something
to the vendor that made it, and Anthropic rejects a thinking block it did not sign. So:

* on the way out, signatures minted by a non-Anthropic vendor (Gemini's thought signatures) are
  tagged ``lynkr:<vendor>:``; Claude's own pass untouched (byte-for-byte passthrough stays intact;
  Anthropic documents Claude's signatures as valid across its API, Bedrock and Vertex);
* on the way in, before a request goes to a backend, thinking blocks signed by that backend's
  vendor are untagged and kept, blocks signed by another vendor are dropped, and unsigned ones are
  dropped only for Anthropic (which rejects a thinking block without its signature).

Backends without signatures (OpenAI Chat, Ollama...) are not touched: their converters read at
most the thinking text. Z.AI's Anthropic-compatible endpoint counts as Anthropic here (it neither
checks signatures nor is told apart by clients), so its passthrough stays byte-for-byte.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

ANTHROPIC = "anthropic"
_TAG = "lynkr:"


def tag(signature: str, vendor: str) -> str:
    if not signature or vendor == ANTHROPIC:
        return signature
    return f"{_TAG}{vendor}:{signature}"


def vendor_of(signature: str) -> tuple[str | None, str]:
    """(vendor, raw signature); untagged non-empty signatures are Anthropic's."""
    if not signature:
        return None, ""
    if signature.startswith(_TAG):
        vendor, _, raw = signature[len(_TAG):].partition(":")
        return vendor, raw
    return ANTHROPIC, signature


def _keep(block: dict[str, Any], vendor: str) -> dict[str, Any] | None:
    if block.get("type") == "redacted_thinking":
        return block if vendor == ANTHROPIC else None
    owner, raw = vendor_of(block.get("signature") or "")
    if owner is None:  # unsigned reasoning text: only Anthropic insists on a signature
        return None if vendor == ANTHROPIC else block
    if owner != vendor:
        return None
    return block if raw == block.get("signature") else {**block, "signature": raw}


def prepare_thinking(req: dict[str, Any], vendor: str | None) -> dict[str, Any]:
    """``req`` with its assistant thinking blocks fit for ``vendor`` (a copy only when something changes)."""
    if vendor is None:
        return req
    messages = req.get("messages") or []
    changed: dict[int, dict[str, Any]] = {}
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if msg.get("role") != "assistant" or not isinstance(content, list):
            continue
        if not any(isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking") for b in content):
            continue
        kept: list[dict[str, Any]] = []
        for b in content:
            if isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking"):
                fit = _keep(b, vendor)
                if fit is not None:
                    kept.append(fit)
            else:
                kept.append(b)
        if kept != content:
            changed[i] = {**msg, "content": kept}
    if not changed:
        return req
    return {**req, "messages": [changed.get(i, m) for i, m in enumerate(messages)]}


def tag_message(message: dict[str, Any], vendor: str | None) -> dict[str, Any]:
    if vendor in (None, ANTHROPIC):
        return message
    for block in message.get("content") or ():
        if block.get("type") == "thinking" and block.get("signature"):
            block["signature"] = tag(block["signature"], vendor)
    return message


async def tag_events(events: AsyncIterable[dict[str, Any]], vendor: str) -> AsyncGenerator[dict[str, Any], None]:
    async for ev in events:
        if ev["type"] == "content_block_delta" and ev["delta"].get("type") == "signature_delta":
            ev = {**ev, "delta": {**ev["delta"], "signature": tag(ev["delta"]["signature"], vendor)}}
        elif ev["type"] == "content_block_start" and ev["content_block"].get("signature"):
            block = ev["content_block"]
            ev = {**ev, "content_block": {**block, "signature": tag(block["signature"], vendor)}}
        yield ev
