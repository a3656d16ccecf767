"""Anthropic Messages ⇄ Ollama ``/api/chat``: requests, answers and NDJSON streams."""

from __future__ import annotations

from collections.abc import AsyncIterable
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
from lynkr.convert.schema import function_tools
from lynkr.convert.tables import OLLAMA_DONE_TO_STOP, OLLAMA_THINKING_MODEL
from lynkr.convert.translated import TranslatedStream
from lynkr.errors import UpstreamBadResponse, UpstreamServerError

BACKEND = "ollama"


@dataclass(frozen=True, slots=True)
class OllamaTarget:
    model: str
    keep_alive: str | None = None
    num_ctx: int | None = None
    max_output_tokens: int | None = None


def anthropic_to_ollama(req: dict[str, Any], target: OllamaTarget, *, stream: bool) -> dict[str, Any]:
    system_parts: list[str] = []
    if s := hub.system_prompt(req):
        system_parts.append(s)
    names = hub.tool_names_by_id(req["messages"])
    messages: list[dict[str, Any]] = []
    for msg in req["messages"]:
        role = msg["role"]
        if role == "system":
            # Ollama's chat templates put system text first; a mid-conversation system turn joins it
            if text := hub.text_of(msg["content"]):
                system_parts.append(text)
        elif role == "assistant":
            messages.extend(_assistant(msg["content"]))
        else:
            messages.extend(_user(msg["content"], names))
    if system_parts:
        messages.insert(0, {"role": "system", "content": "\n\n".join(system_parts)})

    options: dict[str, Any] = {}
    max_tokens = req.get("max_tokens")
    if max_tokens is not None:
        options["num_predict"] = min(max_tokens, target.max_output_tokens or max_tokens)
    if target.num_ctx:
        options["num_ctx"] = target.num_ctx
    for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k")):
        if req.get(src) is not None:
            options[dst] = req[src]
    if req.get("stop_sequences"):
        options["stop"] = req["stop_sequences"]

    out: dict[str, Any] = {"model": target.model, "messages": messages, "stream": stream}
    if options:
        out["options"] = options
    if target.keep_alive is not None:
        out["keep_alive"] = _keep_alive(target.keep_alive)
    tools = hub.function_tools(req)
    if tools and (req.get("tool_choice") or {}).get("type") != "none":
        out["tools"] = function_tools(tools)
    effort = hub.reasoning_effort(req)
    if OLLAMA_THINKING_MODEL.search(target.model):
        # gpt-oss takes a level; the others a boolean
        level = effort if effort in ("low", "medium", "high") else "high"  # gpt-oss knows only these three
        out["think"] = (level if effort else "low") if "gpt-oss" in target.model else effort is not None
    if (schema := hub.output_schema(req)) is not None:
        out["format"] = schema
    return out


def _keep_alive(value: str) -> str | int:
    """OLLAMA_KEEP_ALIVE: a duration ('10m'), or seconds ('300', '-1', '0')."""
    try:
        return int(value)
    except ValueError:
        return value


def _assistant(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for b in hub.blocks(content):
        t = b.get("type")
        if t == "text":
            texts.append(b["text"])
        elif t == "thinking":
            thinking.append(b.get("thinking", ""))
        elif t == "tool_use":
            calls.append({"function": {"name": b["name"], "arguments": b.get("input") or {}}})
    if not (texts or calls or thinking):
        return []
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if thinking:
        msg["thinking"] = "".join(thinking)
    if calls:
        msg["tool_calls"] = calls
    return [msg]


def _user(content: str | list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    images: list[str] = []
    for b in hub.blocks(content):
        t = b.get("type")
        if t == "tool_result":
            text, imgs = hub.tool_result_content(b)
            tool: dict[str, Any] = {"role": "tool", "content": text,
                                    "tool_name": names.get(b["tool_use_id"], "")}
            if imgs:
                tool["images"] = [hub.image_base64(i, backend=BACKEND) for i in imgs]
            out.append(tool)
        elif t == "text":
            texts.append(b["text"])
        elif t == "image":
            images.append(hub.image_base64(b, backend=BACKEND))
        elif t == "document":
            texts.append(hub.document_text(b, backend=BACKEND))
    if texts or images:
        msg: dict[str, Any] = {"role": "user", "content": "\n\n".join(texts)}
        if images:
            msg["images"] = images
        out.append(msg)
    return out


# --- answers -----------------------------------------------------------------------------------


def ollama_usage(resp: dict[str, Any]) -> dict[str, int]:
    return usage_block(resp.get("prompt_eval_count") or 0, resp.get("eval_count") or 0)


def _stop_reason(done_reason: str | None, saw_tool_call: bool) -> str:
    if saw_tool_call:
        return "tool_use"
    return OLLAMA_DONE_TO_STOP.get(done_reason or "stop", "end_turn")


def _arguments(fn: dict[str, Any]) -> dict[str, Any]:
    args = fn.get("arguments") or {}
    if isinstance(args, str):  # some Ollama-compatible servers send a JSON string (lenient, like OpenAI's)
        return parse_tool_input(args)
    return args if isinstance(args, dict) else {"value": args}


def ollama_to_anthropic(resp: dict[str, Any], *, model: str, message_id: str | None = None) -> dict[str, Any]:
    if resp.get("error"):
        raise UpstreamServerError(str(resp["error"]))
    msg = resp.get("message")
    if msg is None:
        raise UpstreamBadResponse("Ollama answer has no message")
    message = empty_message(message_id or new_message_id(), model, ollama_usage(resp))
    content = message["content"]
    if msg.get("thinking"):
        content.append({"type": "thinking", "thinking": msg["thinking"], "signature": ""})
    if msg.get("content"):
        content.append({"type": "text", "text": msg["content"]})
    calls = msg.get("tool_calls") or ()
    for call in calls:
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or new_tool_id(), "name": fn.get("name", ""),
                        "input": _arguments(fn)})
    message["stop_reason"] = _stop_reason(resp.get("done_reason"), bool(calls))
    return message


def ollama_stream_to_anthropic(
    lines: AsyncIterable[dict[str, Any]], *, model: str, message_id: str | None = None
) -> TranslatedStream:
    """Translate Ollama NDJSON stream objects into Anthropic events, as they arrive."""
    return TranslatedStream(lines, OllamaStreamTranslation(model=model, message_id=message_id))


class OllamaStreamTranslation:
    """Ollama NDJSON stream objects -> Anthropic events, one object at a time (``lynkr.convert.translated``);
    complete at the ``done`` line (what follows it is not read)."""

    __slots__ = ("_final", "_n_calls", "complete", "out")

    def __init__(self, *, model: str, message_id: str | None = None) -> None:
        self.out = MessageStream(model=model, message_id=message_id)
        self._final: dict[str, Any] | None = None
        self._n_calls = 0
        self.complete = False

    def feed(self, obj: dict[str, Any]) -> list[Event]:
        if obj.get("error"):
            raise UpstreamServerError(f"Ollama stream error: {obj['error']}")
        out = self.out
        msg = obj.get("message") or {}
        events: list[Event] = out.start()
        if msg.get("thinking"):
            events += out.thinking(msg["thinking"])
        if msg.get("content"):
            events += out.text(msg["content"])
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") or {}
            events += out.tool_call(self._n_calls, id=call.get("id"), name=fn.get("name"),
                                    arguments=orjson.dumps(_arguments(fn)).decode())
            self._n_calls += 1
        if obj.get("done"):
            self._final, self.complete = obj, True
        return events

    def end(self) -> list[Event]:
        final = self._final
        if final is None:
            raise UpstreamBadResponse("Ollama closed the stream before it was done")
        return self.out.finish(_stop_reason(final.get("done_reason"), self.out.saw_tool_call), ollama_usage(final))
