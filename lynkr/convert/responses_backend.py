"""Anthropic Messages (the hub) ⇄ OpenAI Responses API *backends*: OpenAI's ``/v1/responses`` and Azure
OpenAI's Responses URL form. Requests, answers and streams (pure functions).

(``lynkr.convert.responses`` is the other side: Responses *clients* such as Codex.)

Where the Responses API differs from the hub, and what this module does about it:

- **System prompt and turns.** ``system`` becomes ``instructions``; a mid-conversation system turn a
  ``developer`` message. Assistant turns are split into items in their order: ``message`` items
  (``output_text``), ``function_call`` items (the ``tool_use`` id is the ``call_id``) and ``reasoning``
  items; tool results are ``function_call_output`` items, their images a user message after them.
- **Reasoning.** With ``store: false`` nothing is kept upstream, so a reasoning model's reasoning is
  asked for as ``encrypted_content`` and carried in the thinking block's signature (tagged as OpenAI's by
  ``lynkr.convert.signatures``), then sent back as a ``reasoning`` item. Its summary, when the backend
  sends one, is the thinking text. Thinking blocks without such a signature cannot be sent back.
- **Tools** are flat ``{"type": "function", "name", ...}`` with ``strict: false`` (the Responses API makes
  tools strict by default, and strict mode refuses most of Claude Code's schemas).
- **Limits.** ``max_output_tokens`` (at least 16, the API's minimum: Claude Code probes with
  ``max_tokens: 1``); no stop sequences and no ``top_k`` exist here, so they are left out.
- **Usage.** ``input_tokens`` counts cached tokens too; the hub's excludes them
  (``cache_read_input_tokens`` holds them).
- **Streams** are typed events; text, reasoning summary and argument deltas become Anthropic deltas as they
  arrive, each output item one content block. ``response.failed`` and ``error`` events raise the matching
  ``UpstreamError``; a stream that ends without ``response.completed`` (or ``.incomplete``) is a bad answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from lynkr.convert import hub
from lynkr.convert.anthropic_stream import (
    Event,
    MessageStream,
    empty_message,
    new_message_id,
    new_tool_id,
    parse_tool_input,
    usage_block,
)
from lynkr.convert.schema import DEFAULT_DROP, ToolsMemo, clean_schema
from lynkr.convert.tables import output_limit
from lynkr.errors import (
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
    upstream_error_for_status,
)

MIN_OUTPUT_TOKENS = 16  # the Responses API refuses a smaller max_output_tokens
ENCRYPTED_REASONING = "reasoning.encrypted_content"
FINAL_EVENTS = ("response.completed", "response.incomplete")


@dataclass(frozen=True, slots=True)
class ResponsesTarget:
    """What one Responses backend accepts."""

    backend: str
    model: str
    max_output_tokens: int | None = None
    # a reasoning model: it takes reasoning.effort, returns encrypted reasoning, and refuses temperature/top_p
    reasoning: bool = False


# --- requests ------------------------------------------------------------------------------------


def anthropic_to_responses(req: dict[str, Any], target: ResponsesTarget, *, stream: bool) -> dict[str, Any]:
    """An Anthropic Messages request as a Responses API request for ``target``."""
    items: list[dict[str, Any]] = []
    for msg in req["messages"]:
        role = msg["role"]
        if role == "system":
            text = hub.text_of(msg["content"])
            if text:
                items.append({"type": "message", "role": "developer",
                              "content": [{"type": "input_text", "text": text}]})
        elif role == "assistant":
            items.extend(_assistant(msg["content"]))
        else:
            items.extend(_user(msg["content"], target.backend))

    out: dict[str, Any] = {"model": target.model, "input": items, "store": False}
    if system := hub.system_prompt(req):
        out["instructions"] = system
    limits = [n for n in (target.max_output_tokens, output_limit(target.model)) if n]
    max_tokens = req.get("max_tokens")
    if max_tokens is not None:
        out["max_output_tokens"] = max(MIN_OUTPUT_TOKENS, min([max_tokens, *limits]))

    if target.reasoning:
        out["include"] = [ENCRYPTED_REASONING]
        effort = hub.reasoning_effort(req)
        if effort:
            out["reasoning"] = {"effort": effort if effort in ("low", "medium", "high") else "high"}
    else:
        for key in ("temperature", "top_p"):
            if req.get(key) is not None:
                out[key] = req[key]

    tools = hub.function_tools(req)
    if tools:
        out["tools"] = responses_tools(tools)
        choice = req.get("tool_choice") or {}
        kind = choice.get("type")
        if kind == "any":
            out["tool_choice"] = "required"
        elif kind == "tool":
            out["tool_choice"] = {"type": "function", "name": choice["name"]}
        elif kind in ("auto", "none"):
            out["tool_choice"] = kind
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False

    schema = hub.output_schema(req)
    if schema is not None:
        out["text"] = {"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": False}}
    if stream:
        out["stream"] = True
    return out


def _responses_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "function", "name": t["name"], "description": t.get("description", ""),
             "parameters": clean_schema(t["input_schema"], DEFAULT_DROP), "strict": False}
            for t in tools]


responses_tools = ToolsMemo(_responses_tools)
"""Anthropic tools as Responses function tools, schemas cleaned; memoised by content like
``lynkr.convert.schema.function_tools`` (the returned list is shared: do not change it)."""


def _assistant(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    texts: list[str] = []

    def flush() -> None:
        if texts:
            out.append({"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "".join(texts)}]})
            texts.clear()

    for b in hub.blocks(content):
        t = b.get("type")
        if t == "text" and b.get("text"):
            texts.append(b["text"])
        elif t == "tool_use":
            flush()
            out.append({"type": "function_call", "call_id": b["id"], "name": b["name"],
                        "arguments": orjson.dumps(b.get("input") or {}).decode()})
        elif t == "thinking" and b.get("signature"):  # this backend's encrypted reasoning (see signatures.py)
            flush()
            summary = [{"type": "summary_text", "text": b["thinking"]}] if b.get("thinking") else []
            out.append({"type": "reasoning", "summary": summary, "encrypted_content": b["signature"]})
        # unsigned thinking and redacted_thinking: nothing the backend can take back
    flush()
    return out


def _user(content: str | list[dict[str, Any]], backend: str) -> list[dict[str, Any]]:
    """A user turn: its tool results first (each a function_call_output item), then one user message."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for b in hub.blocks(content):
        t = b.get("type")
        if t == "tool_result":
            text, images = hub.tool_result_content(b)
            out.append({"type": "function_call_output", "call_id": b["tool_use_id"], "output": text})
            parts.extend(_image(img, backend) for img in images)
        elif t == "text":
            parts.append({"type": "input_text", "text": b["text"]})
        elif t == "image":
            parts.append(_image(b, backend))
        elif t == "document":
            parts.append(_document(b, backend))
    if parts:
        out.append({"type": "message", "role": "user", "content": parts})
    return out


def _image(block: dict[str, Any], backend: str) -> dict[str, Any]:
    return {"type": "input_image", "image_url": hub.image_url(block, backend=backend), "detail": "auto"}


def _document(block: dict[str, Any], backend: str) -> dict[str, Any]:
    """A PDF (base64 or URL) as an ``input_file``; a text document as text."""
    source = block.get("source") or {}
    if source.get("media_type") == "application/pdf" and source.get("type") == "base64":
        return {"type": "input_file", "filename": block.get("title") or "document.pdf",
                "file_data": f"data:application/pdf;base64,{source['data']}"}
    if source.get("type") == "url":
        return {"type": "input_file", "file_url": str(source["url"])}
    return {"type": "input_text", "text": hub.document_text(block, backend=backend)}


# --- answers -------------------------------------------------------------------------------------


def responses_usage(usage: dict[str, Any] | None) -> dict[str, int]:
    """Responses usage -> Anthropic usage (input excluding cached tokens, which are cache reads)."""
    if not usage:
        return usage_block()
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    return usage_block(max((usage.get("input_tokens") or 0) - cached, 0), usage.get("output_tokens") or 0,
                       cache_read=cached)


_CODE_STATUS = {"rate_limit_exceeded": UpstreamRateLimited, "insufficient_quota": UpstreamRateLimited,
                "context_length_exceeded": UpstreamBadRequest, "server_error": UpstreamServerError}


def response_error(error: Any, prefix: str = "") -> UpstreamError:
    """The typed error for a Responses ``error`` object (of ``response.failed``, an ``error`` event or an
    error body): by its ``code`` (a name such as ``rate_limit_exceeded``, or an HTTP status)."""
    code = error.get("code") if isinstance(error, dict) else None
    message = prefix + (str(error.get("message") or error) if isinstance(error, dict) else str(error))
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return upstream_error_for_status(code)(message, upstream_status=code)
    if isinstance(code, str):
        if code in _CODE_STATUS:
            return _CODE_STATUS[code](message)
        if code.startswith("invalid"):  # invalid_prompt, invalid_image, invalid_request_error...
            return UpstreamBadRequest(message)
    return UpstreamServerError(message)


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()


def _summary_text(item: dict[str, Any]) -> str:
    return "\n\n".join(p.get("text") or "" for p in item.get("summary") or () if isinstance(p, dict))


def _message_text(item: dict[str, Any]) -> str:
    """A message item's text: its output_text parts, and a refusal's text (or the client would see nothing)."""
    texts = []
    for part in item.get("content") or ():
        if isinstance(part, dict):
            kind = part.get("type")
            if kind == "output_text":
                texts.append(part.get("text") or "")
            elif kind == "refusal":
                texts.append(part.get("refusal") or "")
    return "".join(texts)


def _stop_reason(response: dict[str, Any], saw_tool_call: bool) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return "refusal" if reason == "content_filter" else "max_tokens"
    return "tool_use" if saw_tool_call else "end_turn"


def _raise_failed(response: dict[str, Any], prefix: str = "") -> None:
    if response.get("status") == "failed" or (response.get("error") and "output" not in response):
        raise response_error(response.get("error") or {"message": "the response failed"}, prefix)


def responses_to_anthropic(resp: dict[str, Any], *, model: str, message_id: str | None = None) -> dict[str, Any]:
    """A non-streamed Response object as an Anthropic message."""
    if not isinstance(resp, dict):
        raise UpstreamBadResponse(f"backend answer is not a response object: {str(resp)[:200]}")
    _raise_failed(resp)
    output = resp.get("output")
    if not isinstance(output, list):
        raise UpstreamBadResponse(f"backend answer has no output list: {str(resp)[:200]}")
    message = empty_message(message_id or new_message_id(), model, responses_usage(resp.get("usage")))
    content = message["content"]
    saw_tool_call = False
    for item in output:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "reasoning":
            text, signature = _summary_text(item), item.get("encrypted_content") or ""
            if text or signature:
                content.append({"type": "thinking", "thinking": text, "signature": signature})
        elif kind == "message":
            if text := _message_text(item):
                content.append({"type": "text", "text": text})
        elif kind == "function_call":
            saw_tool_call = True
            content.append({"type": "tool_use", "id": item.get("call_id") or new_tool_id(),
                            "name": item.get("name") or "",
                            "input": parse_tool_input(_arguments_text(item.get("arguments")))})
        # built-in tool calls (web_search_call...) are never asked for
    message["stop_reason"] = _stop_reason(resp, saw_tool_call)
    return message


async def responses_stream_to_anthropic(
    events: AsyncIterable[dict[str, Any]], *, model: str, message_id: str | None = None
) -> AsyncIterator[Event]:
    """Translate Responses stream events into Anthropic events, as they arrive. Each output item is one
    content block (closed by its ``response.output_item.done``)."""
    out = MessageStream(model=model, message_id=message_id)
    final: dict[str, Any] | None = None
    arguments_seen: set[Any] = set()  # function calls whose arguments came as deltas
    async for ev in events:
        kind = ev.get("type")
        emitted: list[Event] = []
        if kind in ("response.created", "response.in_progress"):
            emitted = out.start()  # the backend accepted the request; content follows (maybe after long reasoning)
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            emitted = out.text(ev.get("delta") or "")
        elif kind == "response.reasoning_summary_part.added":
            if (ev.get("summary_index") or 0) > 0:  # parts of one summary, joined as the full answer joins them
                emitted = out.thinking("\n\n")
        elif kind == "response.reasoning_summary_text.delta":
            emitted = out.thinking(ev.get("delta") or "")
        elif kind == "response.output_item.added":
            item = ev.get("item") or {}
            if item.get("type") == "function_call":
                emitted = _tool_call(out, ev, item)
        elif kind == "response.function_call_arguments.delta":
            arguments_seen.add(_key(ev))
            emitted = _tool_call(out, ev, {}, ev.get("delta") or "")
        elif kind == "response.output_item.done":
            emitted = _item_done(out, ev, arguments_seen)
        elif kind in FINAL_EVENTS:
            final = ev.get("response") or {}
        elif kind == "response.failed":
            _raise_failed({"status": "failed", **(ev.get("response") or {})}, "backend stream error: ")
        elif kind == "error":
            raise response_error(ev, "backend stream error: ")
        for e in emitted:
            yield e
    if final is None:
        raise UpstreamBadResponse("backend closed the stream before response.completed")
    for e in out.finish(_stop_reason(final, out.saw_tool_call), responses_usage(final.get("usage"))):
        yield e


def _key(ev: dict[str, Any]) -> Any:
    """Which output item an event is about (its output_index; its item id from servers without one)."""
    index = ev.get("output_index")
    return index if index is not None else ev.get("item_id") or (ev.get("item") or {}).get("id")


def _tool_call(out: MessageStream, ev: dict[str, Any], item: dict[str, Any], arguments: str = "") -> list[Event]:
    try:
        return out.tool_call(_key(ev), id=item.get("call_id"), name=item.get("name"),
                             arguments=arguments)
    except ValueError as exc:
        raise UpstreamBadResponse(f"backend interleaved function calls: {exc}") from None


def _item_done(out: MessageStream, ev: dict[str, Any], arguments_seen: set[Any]) -> list[Event]:
    """An output item is complete: what only its final form carries (encrypted reasoning, arguments a
    backend sent whole), then its block ends."""
    item = ev.get("item") or {}
    kind = item.get("type")
    emitted: list[Event] = []
    if kind == "reasoning" and item.get("encrypted_content"):
        emitted = out.thinking("", signature=item["encrypted_content"])
    elif kind == "function_call" and _key(ev) not in arguments_seen:
        emitted = _tool_call(out, ev, item, _arguments_text(item.get("arguments")))
    elif kind not in ("reasoning", "message", "function_call"):
        return emitted  # an item lynkr never asked for (built-in tools): no block was opened for it
    return emitted + out.end_block()


# --- Responses clients passed through ------------------------------------------------------------


class PassthroughWatch:
    """Watches a Responses stream passed through to a Responses client unchanged, so that when the backend
    fails mid-stream the client's stream still ends with a ``response.failed`` that fits: after the last
    sequence number, on the last response snapshot. None when the backend's own ``response.failed`` (or
    ``error`` event) already reached the client."""

    def __init__(self) -> None:
        self.seq = -1
        self.response: dict[str, Any] | None = None
        self.backend_failed = False

    def observe(self, ev: dict[str, Any]) -> None:
        if ev.get("type") in ("response.failed", "error"):
            self.backend_failed = True
        if isinstance(ev.get("sequence_number"), int):
            self.seq = ev["sequence_number"]
        if isinstance(ev.get("response"), dict):
            self.response = ev["response"]

    def failed(self, message: str, code: str, fallback: dict[str, Any]) -> dict[str, Any] | None:
        """The closing event (on ``fallback`` when no snapshot came), or None when the backend sent its own."""
        if self.backend_failed:
            return None
        response = {**(self.response or fallback), "status": "failed", "error": {"code": code, "message": message}}
        return {"type": "response.failed", "sequence_number": self.seq + 1, "response": response}
