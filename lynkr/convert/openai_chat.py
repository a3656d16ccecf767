"""Anthropic Messages ⇄ OpenAI Chat Completions: requests, answers and streams."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any, Literal

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
from lynkr.convert.schema import function_tools
from lynkr.convert.tables import FINISH_TO_STOP, REASONING_MODEL, output_limit
from lynkr.convert.translated import TranslatedStream
from lynkr.errors import UpstreamBadResponse, UpstreamError, UpstreamServerError, upstream_error_for_status


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """What one OpenAI-compatible backend accepts."""

    backend: str
    model: str
    send_model: bool = True
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    max_output_tokens: int | None = None
    # how reasoning is asked for: OpenAI's reasoning_effort, OpenRouter's reasoning object, or not
    reasoning: Literal["effort", "openrouter", "none"] = "none"
    system_in_conversation: bool = True
    supports_top_k: bool = False
    max_stop_sequences: int | None = None


def anthropic_to_chat(req: dict[str, Any], target: ChatTarget, *, stream: bool) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI Chat Completions request for ``target``."""
    messages: list[dict[str, Any]] = []
    hoisted: list[str] = []
    system = hub.system_prompt(req)
    if system:
        hoisted.append(system)
    for msg in req["messages"]:
        role = msg["role"]
        if role == "system":
            text = hub.text_of(msg["content"])
            if not text:
                continue
            if target.system_in_conversation and messages:
                messages.append({"role": "system", "content": text})
            else:
                hoisted.append(text)
        elif role == "assistant":
            messages.extend(_assistant(msg["content"]))
        else:
            messages.extend(_user(msg["content"], target.backend))
    if hoisted:
        messages.insert(0, {"role": "system", "content": "\n\n".join(hoisted)})

    out: dict[str, Any] = {"messages": messages}
    if target.send_model:
        out["model"] = target.model
    limits = [n for n in (target.max_output_tokens, output_limit(target.model)) if n]
    limit = min(limits) if limits else None
    max_tokens = req.get("max_tokens")
    if max_tokens is not None:
        out[target.max_tokens_field] = min(max_tokens, limit) if limit else max_tokens

    effort = hub.reasoning_effort(req)
    reasoning_model = target.reasoning == "effort" and bool(REASONING_MODEL.search(target.model))
    if effort and reasoning_model:
        out["reasoning_effort"] = effort if effort in ("low", "medium", "high") else "high"
    elif effort and target.reasoning == "openrouter":
        out["reasoning"] = {"effort": effort if effort in ("low", "medium", "high") else "high"}
    if not reasoning_model:
        for key in ("temperature", "top_p"):
            if req.get(key) is not None:
                out[key] = req[key]
    if target.supports_top_k and req.get("top_k") is not None:
        out["top_k"] = req["top_k"]
    stops = req.get("stop_sequences")
    if stops:
        out["stop"] = stops[: target.max_stop_sequences] if target.max_stop_sequences else stops

    tools = hub.function_tools(req)
    choice = req.get("tool_choice") or {}
    if tools and choice.get("type") != "none":
        out["tools"] = function_tools(tools)
        kind = choice.get("type")
        if kind == "any":
            out["tool_choice"] = "required"
        elif kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif kind == "auto":
            out["tool_choice"] = "auto"
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False

    schema = hub.output_schema(req)
    if schema is not None:
        out["response_format"] = {"type": "json_schema",
                                  "json_schema": {"name": "output", "schema": schema, "strict": False}}
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _assistant(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for b in hub.blocks(content):
        t = b.get("type")
        if t == "text":
            texts.append(b["text"])
        elif t == "tool_use":
            calls.append({"id": b["id"], "type": "function", "function": {
                "name": b["name"], "arguments": orjson.dumps(b.get("input") or {}).decode()}})
        # thinking / redacted_thinking: Chat Completions has no way to send reasoning back
    if not texts and not calls:
        return []
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        msg["tool_calls"] = calls
    return [msg]


def _user(content: str | list[dict[str, Any]], backend: str) -> list[dict[str, Any]]:
    """A user turn: tool results first (each its own ``tool`` message), then the rest."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for b in hub.blocks(content):
        t = b.get("type")
        if t == "tool_result":
            text, images = hub.tool_result_content(b)
            out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": text})
            for img in images:  # tool messages carry text only: images follow as user content
                parts.append({"type": "image_url", "image_url": {"url": hub.image_url(img, backend=backend)}})
        elif t == "text":
            parts.append({"type": "text", "text": b["text"]})
        elif t == "image":
            parts.append({"type": "image_url", "image_url": {"url": hub.image_url(b, backend=backend)}})
        elif t == "document":
            parts.append({"type": "text", "text": hub.document_text(b, backend=backend)})
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


# --- answers -----------------------------------------------------------------------------------


def chat_usage(usage: dict[str, Any] | None) -> dict[str, int]:
    """OpenAI usage -> Anthropic usage (input excludes cached tokens, as Anthropic counts them)."""
    if not usage:
        return usage_block()
    # OpenAI reports cache hits in prompt_tokens_details; DeepSeek in prompt_cache_hit_tokens
    cached = ((usage.get("prompt_tokens_details") or {}).get("cached_tokens")
              or usage.get("prompt_cache_hit_tokens") or 0)
    prompt = usage.get("prompt_tokens") or 0
    return usage_block(max(prompt - cached, 0), usage.get("completion_tokens") or 0, cache_read=cached)


def _stop_reason(finish: str | None, saw_tool_call: bool) -> str:
    if saw_tool_call:
        return "tool_use"
    reason = FINISH_TO_STOP.get(finish or "stop", "end_turn")
    # "tool_calls" with no call in the answer: a client waiting for tool_use blocks would find none
    return "end_turn" if reason == "tool_use" else reason


_PLAIN_TEXT = frozenset(("content", "role"))  # a delta with only these keys carries text and nothing else


def _reasoning_text(obj: dict[str, Any]) -> str | None:
    return obj.get("reasoning_content") or obj.get("reasoning")


def _answer_text(obj: dict[str, Any]) -> str:
    """A message's (or delta's) text: a string, or a list of content parts (Mistral and others);
    a refusal (OpenAI structured outputs) is the answer's text too, or the client would see nothing."""
    content = obj.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    text = content if isinstance(content, str) else ""
    refusal = obj.get("refusal")
    return text + refusal if isinstance(refusal, str) else text


def _arguments_text(arguments: Any) -> str:
    """Tool-call arguments as JSON text (a few servers send an object instead of a string)."""
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()


def upstream_error(error: Any, prefix: str = "") -> UpstreamError:
    """The typed error for an ``{"error": ...}`` body or stream chunk; a numeric ``code`` (as
    OpenRouter sends in 200 answers) picks the class the same way an HTTP status would."""
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    message = prefix + _error_message(error)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return upstream_error_for_status(code)(message, upstream_status=code)
    return UpstreamServerError(message)


def chat_to_anthropic(resp: dict[str, Any], *, model: str, message_id: str | None = None) -> dict[str, Any]:
    """A non-streamed Chat Completions answer as an Anthropic message."""
    if resp.get("error") and not resp.get("choices"):
        raise upstream_error(resp["error"])
    choices = resp.get("choices")
    if not choices:
        raise UpstreamBadResponse("backend answer has no choices")
    choice = choices[0]
    msg = choice.get("message") or {}
    message = empty_message(message_id or new_message_id(), model, chat_usage(resp.get("usage")))
    content = message["content"]
    reasoning = _reasoning_text(msg)
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if text := _answer_text(msg):
        content.append({"type": "text", "text": text})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or new_tool_id(), "name": fn.get("name") or "",
                        "input": parse_tool_input(_arguments_text(fn.get("arguments")))})
    message["stop_reason"] = _stop_reason(choice.get("finish_reason"), bool(msg.get("tool_calls")))
    return message


def _error_message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def chat_stream_to_anthropic(
    chunks: AsyncIterable[dict[str, Any]], *, model: str, message_id: str | None = None
) -> TranslatedStream:
    """Translate Chat Completions stream chunks into Anthropic events, as they arrive."""
    return TranslatedStream(chunks, ChatStreamTranslation(model=model, message_id=message_id))


class ChatStreamTranslation:
    """Chat Completions stream chunks -> Anthropic events, one chunk at a time (``lynkr.convert.translated``)."""

    __slots__ = ("_calls", "_finish", "_n_calls", "_usage", "complete", "out")

    def __init__(self, *, model: str, message_id: str | None = None) -> None:
        self.out = MessageStream(model=model, message_id=message_id)
        self.complete = False  # the input's end ([DONE]) says when the answer is whole
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        # upstream tool-call index -> (our stream key, its id). A new id at a known index is a new call:
        # some servers send every call as index 0 (or with no index), one call per chunk.
        self._calls: dict[Any, tuple[int, str | None]] = {}
        self._n_calls = 0

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        # this runs for every chunk of every answer: lookups are kept to what a text delta needs
        if chunk.get("error"):
            raise upstream_error(chunk["error"], "backend stream error: ")
        if u := chunk.get("usage"):
            self._usage = u
        out = self.out
        events: list[Event] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content.__class__ is str and out.started and delta.keys() <= _PLAIN_TEXT:
                events += out.text(content)  # the usual chunk: some text and nothing else
                if f := choice.get("finish_reason"):
                    self._finish = f
                continue
            if not out.started:
                events += out.start()
            if reasoning := _reasoning_text(delta):
                events += out.thinking(reasoning)
            text = content if content.__class__ is str and "refusal" not in delta else _answer_text(delta)
            if text:
                events += out.text(text)
            for n, call in enumerate(delta.get("tool_calls") or ()):
                fn = call.get("function") or {}
                index, call_id = call.get("index", n), call.get("id")
                known = self._calls.get(index)
                if known is None or (call_id and known[1] and call_id != known[1]):
                    known = self._calls[index] = (self._n_calls, call_id)
                    self._n_calls += 1
                try:
                    events += out.tool_call(known[0], id=call_id, name=fn.get("name"),
                                            arguments=_arguments_text(fn.get("arguments")))
                except ValueError as exc:
                    raise UpstreamBadResponse(f"backend interleaved tool calls: {exc}") from None
            if f := choice.get("finish_reason"):
                self._finish = f
        return events

    def end(self) -> list[Event]:
        if not self.out.started:
            raise UpstreamBadResponse("backend closed the stream without sending an answer")
        return self.out.finish(_stop_reason(self._finish, self.out.saw_tool_call), chat_usage(self._usage))
