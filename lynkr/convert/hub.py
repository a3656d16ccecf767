"""Reading the hub shape (an Anthropic Messages request) the way every outbound converter needs."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from lynkr.convert.tables import effort_for_budget
from lynkr.errors import InvalidRequest
from lynkr.wire.body import KnownTools

Block = dict[str, Any]


def blocks(content: str | list[Block]) -> list[Block]:
    """Message content as a block list (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def text_of(content: str | list[Block], sep: str = "\n\n") -> str:
    """The text blocks of ``content`` joined (other block types ignored)."""
    if isinstance(content, str):
        return content
    return sep.join(b["text"] for b in content if b.get("type") == "text" and b.get("text"))


BILLING_HEADER = "x-anthropic-billing-header:"


def system_prompt(req: dict[str, Any]) -> str:
    """The system text a non-Anthropic backend gets: Claude Code's per-build billing line is left out
    (it means nothing to other models and would spoil their prompt-prefix caches)."""
    system = req.get("system")
    if not system:
        return ""
    if isinstance(system, str):
        return system
    return text_of([b for b in system if not b.get("text", "").startswith(BILLING_HEADER)])


def image_url(block: Block, *, backend: str) -> str:
    """A data: or http(s) URL for an image block."""
    source = block["source"]
    kind = source.get("type")
    if kind == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
    if kind == "url":
        return str(source["url"])
    raise InvalidRequest(f"image source type {kind!r} cannot be sent to {backend}; send base64 or a URL",
                         field="source.type")


def image_base64(block: Block, *, backend: str) -> str:
    """Raw base64 image data (for backends that take no URLs, like Ollama)."""
    source = block["source"]
    if source.get("type") == "base64":
        return str(source["data"])
    if source.get("type") == "url" and str(source.get("url", "")).startswith("data:"):
        return str(source["url"]).split(",", 1)[-1]
    raise InvalidRequest(f"{backend} accepts images only as base64 data, not {source.get('type')!r}",
                         field="source.type")


def tool_result_content(block: Block) -> tuple[str, list[Block]]:
    """A tool_result's text and its image blocks; errors are marked so the model can tell."""
    content = block.get("content", "")
    if isinstance(content, str):
        text, images = content, []
    else:
        text = text_of(content, sep="\n")
        images = [b for b in content if b.get("type") == "image"]
        for b in content:
            if b.get("type") == "document" and b.get("source", {}).get("type") == "text":
                text = f"{text}\n{b['source'].get('data', '')}" if text else b["source"].get("data", "")
    if block.get("is_error"):
        text = f"Error: {text}" if text else "Error"
    return text, images


def document_text(block: Block, *, backend: str) -> str:
    source = block.get("source", {})
    if source.get("type") == "text":
        title = block.get("title")
        return f"{title}\n{source.get('data', '')}" if title else str(source.get("data", ""))
    raise InvalidRequest(f"{backend} cannot read {source.get('type')!r} documents; send text",
                         field="source.type")


def function_tools(req: dict[str, Any]) -> list[dict[str, Any]]:
    """Client tools that a non-Anthropic backend can call (Anthropic server tools have no schema); for tools
    seen before, the same object every time (``lynkr.wire.body.KnownTools``)."""
    tools = req.get("tools") or ()
    if type(tools) is KnownTools:
        return tools.functions
    return [t for t in tools if "input_schema" in t]


def tool_names_by_id(messages: list[dict[str, Any]]) -> dict[str, str]:
    """tool_use id -> tool name, for backends that want the name on a tool result (Ollama)."""
    names: dict[str, str] = {}
    for m in messages:
        if m["role"] == "assistant" and isinstance(m["content"], list):
            for b in m["content"]:
                if b.get("type") == "tool_use":
                    names[b["id"]] = b["name"]
    return names


def reasoning_effort(req: dict[str, Any]) -> str | None:
    """The reasoning effort a request asks for, or None when thinking is off."""
    thinking = req.get("thinking") or {}
    kind = thinking.get("type")
    effort = (req.get("output_config") or {}).get("effort")
    if kind == "enabled":
        return effort or effort_for_budget(int(thinking.get("budget_tokens") or 0))
    if kind == "adaptive":
        return effort or "medium"
    return None


def output_schema(req: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of ``output_config.format`` (structured outputs), if any."""
    fmt = (req.get("output_config") or {}).get("format") or {}
    return fmt.get("schema") if fmt.get("type") == "json_schema" else None


async def close_input(source: AsyncIterable[Any]) -> None:
    """Close a translator's input when the translator ends or is closed (an async generator reading a
    backend's answer holds its connection until closed)."""
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
