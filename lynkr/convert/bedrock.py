"""Anthropic Messages ⇄ Amazon Bedrock Converse / ConverseStream: requests, answers, event streams.

Shapes follow the ``bedrock-runtime`` 2023-09-30 service model (REST JSON: blobs travel as base64
strings). The full history is converted block by block: earlier ``tool_use`` / ``tool_result`` turns
become ``toolUse`` / ``toolResult`` blocks, images stay images, signed thinking stays
``reasoningContent`` for Claude. ConverseStream's binary ``application/vnd.amazon.eventstream`` frames
are decoded incrementally by ``EventStreamDecoder`` (botocore's parser, CRC-checked) and translated
as they arrive by ``converse_stream_to_anthropic``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError

from lynkr.convert import hub
from lynkr.convert.anthropic_stream import (
    Event,
    MessageStream,
    empty_message,
    new_message_id,
    new_tool_id,
    usage_block,
)
from lynkr.convert.schema import DEFAULT_DROP, clean_schema
from lynkr.errors import (
    InvalidRequest,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamPermissionError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)

BACKEND = "bedrock"
Block = dict[str, Any]
BedrockEvent = tuple[str, dict[str, Any]]  # (``:event-type``, JSON payload)


@dataclass(frozen=True, slots=True)
class BedrockTarget:
    model: str  # a model ID, inference-profile ID or ARN
    max_output_tokens: int | None = None


# --- what each model family accepts ------------------------------------------------------------

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
    for t in hub.function_tools(req):
        spec: Block = {"name": t["name"], "inputSchema": {"json": clean_schema(t["input_schema"], DEFAULT_DROP)}}
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

# ConverseStream exception frames (``:exception-type``) -> lynkr's error classes
_STREAM_EXCEPTIONS: dict[str, type[UpstreamError]] = {
    "throttlingException": UpstreamRateLimited,
    "validationException": UpstreamBadRequest,
    "serviceUnavailableException": UpstreamOverloaded,
    "internalServerException": UpstreamServerError,
    "modelStreamErrorException": UpstreamServerError,
    "modelTimeoutException": UpstreamTimeout,
    "accessDeniedException": UpstreamPermissionError,
}


def _header(message: EventStreamMessage, name: str) -> str:
    value = message.headers.get(name)
    return value if isinstance(value, str) else ""


class EventStreamDecoder:
    """AWS event-stream frames -> ``(event type, payload)``, fed bytes as they arrive in any pieces.

    botocore's ``EventStreamBuffer`` parses the frames and checks both CRC32s; its errors, and
    ``exception`` / ``error`` frames, become lynkr upstream errors (raised after the events before them).
    """

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()
        self._pending = 0  # bytes fed but not yet part of a whole frame

    def feed(self, data: bytes) -> Iterator[BedrockEvent]:
        if not data:
            return
        self._pending += len(data)
        self._buffer.add_data(data)
        while True:
            try:
                message = next(self._buffer)
            except StopIteration:
                return
            except ParserError as exc:
                raise UpstreamBadResponse(f"Bedrock sent a broken event-stream frame ({exc})",
                                          provider=BACKEND) from None
            self._pending -= message.prelude.total_length
            yield self._event(message)

    def close(self) -> None:
        if self._pending:
            raise UpstreamBadResponse(f"Bedrock's stream ended inside a frame ({self._pending} bytes left over)",
                                      provider=BACKEND)

    @staticmethod
    def _event(message: EventStreamMessage) -> BedrockEvent:
        kind = _header(message, ":message-type") or "event"
        if kind == "exception":
            name = _header(message, ":exception-type")
            raise _exception(name, _payload(message, name))
        if kind == "error":
            code, text = _header(message, ":error-code"), _header(message, ":error-message")
            raise UpstreamServerError(f"Bedrock stream error {code}: {text}", provider=BACKEND)
        name = _header(message, ":event-type")
        return name, _payload(message, name)


def _payload(message: EventStreamMessage, name: str) -> dict[str, Any]:
    try:
        value = orjson.loads(message.payload) if message.payload else {}
    except orjson.JSONDecodeError:
        raise UpstreamBadResponse(f"Bedrock {name or 'event'} frame payload is not JSON: {message.payload[:200]!r}",
                                  provider=BACKEND) from None
    if not isinstance(value, dict):
        raise UpstreamBadResponse(f"Bedrock {name or 'event'} frame payload is not an object", provider=BACKEND)
    return value


def _exception(name: str, payload: dict[str, Any]) -> UpstreamError:
    cls = _STREAM_EXCEPTIONS.get(name, UpstreamServerError)
    text = str(payload.get("message") or payload.get("Message") or "no message")
    if payload.get("originalStatusCode") or payload.get("originalMessage"):
        text += f" (model said {payload.get('originalStatusCode', '?')}: {payload.get('originalMessage', '')})"
    return cls(f"Bedrock {name or 'exception'}: {text}", provider=BACKEND)


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
