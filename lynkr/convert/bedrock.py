"""Anthropic Messages ⇄ Amazon Bedrock Converse / ConverseStream: requests, answers, event streams.

Shapes follow the ``bedrock-runtime`` 2023-09-30 service model (REST JSON: blobs travel as base64
strings). The full history is converted block by block: earlier ``tool_use`` / ``tool_result`` turns
become ``toolUse`` / ``toolResult`` blocks, images stay images, signed thinking stays
``reasoningContent`` for Claude. ConverseStream's binary ``application/vnd.amazon.eventstream`` frames
are decoded by ``lynkr.convert.eventstream`` and translated as they arrive by
``converse_stream_to_anthropic``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from lynkr.convert import hub
from lynkr.convert.anthropic_stream import (
    Event,
    MessageStream,
    empty_message,
    new_message_id,
    new_tool_id,
    usage_block,
)
from lynkr.convert.bedrock_models import ModelTraits, model_traits
from lynkr.convert.eventstream import BACKEND, BedrockEvent
from lynkr.convert.schema import function_tools
from lynkr.errors import InvalidRequest, UpstreamBadResponse

Block = dict[str, Any]


@dataclass(frozen=True, slots=True)
class BedrockTarget:
    model: str  # a model ID, inference-profile ID or ARN
    max_output_tokens: int | None = None


# Converse stopReason -> Anthropic stop_reason
STOP_REASONS: dict[str, str] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "content_filtered": "refusal",
    "guardrail_intervened": "refusal",
    "model_context_window_exceeded": "model_context_window_exceeded",
    "malformed_model_output": "end_turn",
    "malformed_tool_use": "end_turn",
}

# Anthropic thinking effort -> a budget, for Claude models that take only budget_tokens
_EFFORT_BUDGET = {"low": 2_048, "medium": 8_192, "high": 16_384, "xhigh": 32_000, "max": 32_000}
_MIN_BUDGET = 1_024  # Anthropic's floor for thinking.budget_tokens

_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}


# --- requests ----------------------------------------------------------------------------------

_TOOL_ID_BAD = re.compile(r"[^a-zA-Z0-9_.:-]")
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")


def tool_use_id(value: str) -> str:
    """Bedrock's toolUseId pattern is ``[a-zA-Z0-9_.:-]{1,64}``; ids from other backends are made to fit
    (the same way on the call and its result, so they still pair)."""
    clean = _TOOL_ID_BAD.sub("_", value)[:64]
    return clean or "tool"


def _cache_point(block: Block) -> Block:
    ttl = (block.get("cache_control") or {}).get("ttl")
    point: Block = {"type": "default"}
    if ttl in ("5m", "1h"):
        point["ttl"] = ttl
    return {"cachePoint": point}


class _Converter:
    """One request's conversion (holds the traits and a document counter)."""

    def __init__(self, traits: ModelTraits) -> None:
        self.traits = traits
        self.documents = 0

    def cached(self, out: list[Block], converted: Block | None, source: Block) -> None:
        if converted is None:
            return
        out.append(converted)
        if source.get("cache_control") and self.traits.cache_points:
            out.append(_cache_point(source))

    def image(self, block: Block) -> Block:
        source = block.get("source") or {}
        data = hub.image_base64(block, backend=BACKEND)
        media = source.get("media_type") if source.get("type") == "base64" else \
            str(source.get("url", ""))[5:].split(";", 1)[0]
        fmt = _IMAGE_FORMATS.get(str(media or "image/png").lower())
        if fmt is None:
            raise InvalidRequest(f"Bedrock takes png, jpeg, gif or webp images, not {media!r}",
                                 field="source.media_type")
        return {"image": {"format": fmt, "source": {"bytes": data}}}

    def document(self, block: Block) -> Block:
        source = block.get("source") or {}
        if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
            self.documents += 1
            name = " ".join(_DOC_NAME_BAD.sub("-", str(block.get("title") or "")).split())[:200]
            return {"document": {"format": "pdf", "name": name or f"document-{self.documents}",
                                 "source": {"bytes": source.get("data", "")}}}
        return {"text": hub.document_text(block, backend=BACKEND)}

    def tool_result(self, block: Block) -> Block:
        raw = block.get("content", "")
        content: list[Block] = []
        for b in hub.blocks(raw) if isinstance(raw, str) else raw:
            t = b.get("type")
            if t == "text" and b.get("text", "").strip():
                content.append({"text": b["text"]})
            elif t == "image":
                content.append(self.image(b))
            elif t == "document":
                content.append(self.document(b))
            elif t == "search_result":
                content.append({"text": hub.text_of(b.get("content") or [], sep="\n")})
        if not content:
            content.append({"text": "(no output)"})  # a blank text block is a ValidationException
        return {"toolResult": {"toolUseId": tool_use_id(block["tool_use_id"]), "content": content,
                               "status": "error" if block.get("is_error") else "success"}}

    def user(self, content: str | list[Block]) -> list[Block]:
        results: list[Block] = []  # tool results come first in a user turn, as Claude requires
        rest: list[Block] = []
        for b in hub.blocks(content):
            t = b.get("type")
            if t == "tool_result":
                self.cached(results, self.tool_result(b), b)
            elif t == "text":
                self.cached(rest, {"text": b["text"]} if b.get("text", "").strip() else None, b)
            elif t == "image":
                self.cached(rest, self.image(b), b)
            elif t == "document":
                self.cached(rest, self.document(b), b)
        return results + rest

    def assistant(self, content: str | list[Block]) -> list[Block]:
        out: list[Block] = []
        for b in hub.blocks(content):
            t = b.get("type")
            converted: Block | None = None
            if t == "text" and b.get("text", "").strip():
                converted = {"text": b["text"]}
            elif t == "tool_use":
                converted = {"toolUse": {"toolUseId": tool_use_id(b["id"]), "name": b["name"],
                                         "input": b.get("input") or {}}}
            elif t == "thinking" and self.traits.claude and b.get("signature"):
                # only signed thinking can go back, and only to Claude (the signature proves it is Claude's)
                converted = {"reasoningContent": {"reasoningText": {"text": b.get("thinking", ""),
                                                                    "signature": b["signature"]}}}
            elif t == "redacted_thinking" and self.traits.claude and b.get("data"):
                converted = {"reasoningContent": {"redactedContent": b["data"]}}
            self.cached(out, converted, b)
        return out


def _system_blocks(req: dict[str, Any], conv: _Converter) -> list[Block]:
    system = req.get("system")
    out: list[Block] = []
    for b in hub.blocks(system) if isinstance(system, str) else system or ():
        text = b.get("text", "")
        if b.get("type") == "text" and text.strip() and not text.startswith(hub.BILLING_HEADER):
            conv.cached(out, {"text": text}, b)
    return out


def _history_tool_names(messages: list[dict[str, Any]]) -> list[str]:
    names = hub.tool_names_by_id(messages)
    return list(dict.fromkeys(names.values()))


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any(isinstance(m["content"], list) and any(b.get("type") in ("tool_use", "tool_result")
                                                      for b in m["content"]) for m in messages)


def _thinking(req: dict[str, Any], traits: ModelTraits, max_tokens: int | None) -> dict[str, Any] | None:
    """Claude's native ``thinking`` field for this model, or None (off, or the model cannot think)."""
    asked = req.get("thinking") or {}
    kind = asked.get("type")
    if kind not in ("enabled", "adaptive") or traits.thinking == "none":
        return None
    if traits.thinking == "adaptive" or (kind == "adaptive" and traits.thinking in ("both", "as-asked")):
        return {"type": "adaptive"}
    # a budget: the one asked for, or one for the asked effort; always below max_tokens
    if kind == "enabled" and asked.get("budget_tokens"):
        budget = int(asked["budget_tokens"])
    else:
        effort = (req.get("output_config") or {}).get("effort") or "high"
        budget = _EFFORT_BUDGET.get(effort, _EFFORT_BUDGET["high"])
    if max_tokens is not None:
        budget = min(budget, max_tokens - 1)
    if budget < _MIN_BUDGET:
        return None
    return {"type": "enabled", "budget_tokens": budget}


def anthropic_to_converse(req: dict[str, Any], target: BedrockTarget) -> dict[str, Any]:
    """An Anthropic Messages request as a Converse request body (the model ID goes in the URL)."""
    traits = model_traits(target.model)
    conv = _Converter(traits)
    system = _system_blocks(req, conv)
    messages: list[dict[str, Any]] = []
    for msg in req["messages"]:
        role = msg["role"]
        if role == "system":  # Converse has one system prompt: a mid-conversation system turn joins it
            if text := hub.text_of(msg["content"]).strip():
                system.append({"text": text})
            continue
        content = conv.assistant(msg["content"]) if role == "assistant" else conv.user(msg["content"])
        if not content:
            continue
        if messages and messages[-1]["role"] == role:  # Converse wants the roles to alternate
            messages[-1]["content"].extend(content)
        else:
            messages.append({"role": role, "content": content})

    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system

    inference: dict[str, Any] = {}
    limits = [n for n in (target.max_output_tokens, traits.output_limit) if n]
    max_tokens = req.get("max_tokens")
    if max_tokens is not None:
        max_tokens = min(max_tokens, *limits) if limits else max_tokens
        inference["maxTokens"] = max_tokens
    if req.get("temperature") is not None:
        inference["temperature"] = req["temperature"]
    if req.get("top_p") is not None:
        inference["topP"] = req["top_p"]
    if req.get("stop_sequences"):
        inference["stopSequences"] = list(req["stop_sequences"])
    if inference:
        out["inferenceConfig"] = inference

    tool_config = _tool_config(req, conv)
    if tool_config:
        out["toolConfig"] = tool_config

    extra: dict[str, Any] = {}
    if traits.claude:
        if req.get("top_k") is not None:
            extra["top_k"] = req["top_k"]
        if (thinking := _thinking(req, traits, max_tokens)) is not None:
            extra["thinking"] = thinking
        if req.get("stop_sequences"):
            out["additionalModelResponseFieldPaths"] = ["/stop_sequence"]
    if extra:
        out["additionalModelRequestFields"] = extra
    return out


def _tool_config(req: dict[str, Any], conv: _Converter) -> dict[str, Any] | None:
    tools: list[Block] = []
    declared = hub.function_tools(req)
    for t, fn in zip(declared, function_tools(declared), strict=True):  # schemas cleaned once per tool set
        spec: Block = {"name": t["name"], "inputSchema": {"json": fn["function"]["parameters"]}}
        if t.get("description"):
            spec["description"] = t["description"]
        conv.cached(tools, {"toolSpec": spec}, t)
    choice = req.get("tool_choice") or {}
    if not tools:
        if not _has_tool_blocks(req["messages"]):
            return None
        # Converse refuses toolUse/toolResult history without a toolConfig (Claude Code's side requests
        # send the history without tools): declare the tools the history used, and ask for no new calls
        tools = [{"toolSpec": {"name": name, "description": "Used earlier in this conversation; not available now.",
                               "inputSchema": {"json": {"type": "object", "properties": {}}}}}
                 for name in _history_tool_names(req["messages"])] or \
                [{"toolSpec": {"name": "unavailable_tool", "description": "Not available.",
                               "inputSchema": {"json": {"type": "object", "properties": {}}}}}]
        return {"tools": tools}
    config: dict[str, Any] = {"tools": tools}
    kind = choice.get("type")
    if kind == "any":
        config["toolChoice"] = {"any": {}}
    elif kind == "tool":
        config["toolChoice"] = {"tool": {"name": choice["name"]}}
    # "auto" is Converse's default (and the only choice some models accept); "none" has no Converse form
    return config


# --- answers -----------------------------------------------------------------------------------


def converse_usage(usage: dict[str, Any] | None) -> dict[str, int]:
    """Converse usage -> Anthropic usage (both count cache reads and writes apart from input)."""
    u = usage or {}
    return usage_block(u.get("inputTokens") or 0, u.get("outputTokens") or 0,
                       cache_read=u.get("cacheReadInputTokens") or 0,
                       cache_creation=u.get("cacheWriteInputTokens") or 0)


def stop_reason(reason: str | None, saw_tool_call: bool) -> str:
    mapped = STOP_REASONS.get(reason or "end_turn", "end_turn")
    if mapped == "tool_use" and not saw_tool_call:
        return "end_turn"  # a client waiting for tool_use blocks would find none
    if mapped == "end_turn" and saw_tool_call:
        return "tool_use"
    return mapped


def _stop_sequence(reason: str | None, fields: Any) -> str | None:
    if reason != "stop_sequence" or not isinstance(fields, dict):
        return None
    value = fields.get("stop_sequence")
    return value if isinstance(value, str) else None


def converse_to_anthropic(resp: dict[str, Any], *, model: str, message_id: str | None = None) -> dict[str, Any]:
    msg = (resp.get("output") or {}).get("message")
    if not isinstance(msg, dict):
        raise UpstreamBadResponse("Bedrock answer has no output.message", provider=BACKEND)
    message = empty_message(message_id or new_message_id(), model, converse_usage(resp.get("usage")))
    content = message["content"]
    saw_tool = False
    for b in msg.get("content") or ():
        if b.get("text"):
            content.append({"type": "text", "text": b["text"]})
        elif "toolUse" in b:
            call = b["toolUse"]
            content.append({"type": "tool_use", "id": call.get("toolUseId") or new_tool_id(),
                            "name": call.get("name", ""), "input": _tool_input(call.get("input"))})
            saw_tool = True
        elif "reasoningContent" in b:
            r = b["reasoningContent"]
            if r.get("redactedContent"):
                content.append({"type": "redacted_thinking", "data": r["redactedContent"]})
            elif (rt := r.get("reasoningText") or {}).get("text") or rt.get("signature"):
                content.append({"type": "thinking", "thinking": rt.get("text", ""),
                                "signature": rt.get("signature") or ""})
    reason = resp.get("stopReason")
    message["stop_reason"] = stop_reason(reason, saw_tool)
    message["stop_sequence"] = _stop_sequence(reason, resp.get("additionalModelResponseFields"))
    return message


def _tool_input(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"value": value}


# --- event streams -----------------------------------------------------------------------------


async def converse_stream_to_anthropic(
    events: AsyncIterable[BedrockEvent], *, model: str, message_id: str | None = None
) -> AsyncIterator[Event]:
    """Translate decoded ConverseStream events into Anthropic events, as they arrive."""
    out = MessageStream(model=model, message_id=message_id)
    reason: str | None = None
    stop_seq: str | None = None
    usage: dict[str, Any] | None = None
    stopped = False
    async for kind, data in events:
        index = data.get("contentBlockIndex")
        evs: list[Event] = []
        try:
            if kind == "messageStart":
                evs = out.start()
            elif kind == "contentBlockStart":
                call = (data.get("start") or {}).get("toolUse")
                evs = out.tool_call(index, id=call.get("toolUseId"), name=call.get("name")) if call else out.start()
            elif kind == "contentBlockDelta":
                evs = _delta(out, index, data.get("delta") or {})
            elif kind == "contentBlockStop":
                evs = out.end_block()
            elif kind == "messageStop":
                reason = data.get("stopReason")
                stop_seq = _stop_sequence(reason, data.get("additionalModelResponseFields"))
                stopped = True
            elif kind == "metadata":
                usage = data.get("usage")
        except ValueError as exc:  # a tool call continued after another began
            raise UpstreamBadResponse(f"Bedrock stream out of order: {exc}", provider=BACKEND) from None
        for ev in evs:
            yield ev
        if stopped and usage is not None:  # metadata (usage) follows messageStop: the answer is complete
            break
    if not stopped:
        raise UpstreamBadResponse("Bedrock closed the stream before messageStop", provider=BACKEND)
    for ev in out.finish(stop_reason(reason, out.saw_tool_call), converse_usage(usage), stop_seq):
        yield ev


def _delta(out: MessageStream, index: Any, delta: dict[str, Any]) -> list[Event]:
    if "text" in delta:
        return out.text(delta["text"])
    if "toolUse" in delta:
        return out.tool_call(index, arguments=(delta["toolUse"] or {}).get("input") or "")
    if "reasoningContent" in delta:
        r = delta["reasoningContent"] or {}
        if r.get("redactedContent"):
            return out.redacted_thinking(r["redactedContent"])
        return out.thinking(r.get("text") or "", r.get("signature"))
    return out.start()  # citations, images...: nothing an Anthropic client can take
