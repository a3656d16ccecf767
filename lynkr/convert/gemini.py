"""Anthropic Messages ⇄ Google Gemini ``generateContent`` / ``streamGenerateContent``: requests, answers
and streams (pure functions).

Where Gemini differs from the hub, and what this module does about it:

- **No tool-call ids.** Gemini names the function and sends its arguments whole (never in fragments);
  lynkr mints ``toolu_`` ids, and a ``tool_result`` goes back as a ``functionResponse`` named after the
  ``tool_use`` it answers (found in the history).
- **Thought signatures.** Gemini puts an opaque ``thoughtSignature`` on the part it belongs to (a thought,
  a ``functionCall``, the last text part) and must get it back *on that part* (Gemini 3 refuses function
  calls without theirs). Every signature becomes a thinking block's signature, which clients return
  verbatim:
    * a thought part's own signature signs the thinking block holding the thought's text;
    * a ``functionCall``'s signature becomes a text-less thinking block just *before* the tool_use;
    * a text part's signature becomes a text-less thinking block just *after* the text (it comes with the
      last piece of the text when streamed).
  Going back, a text-less signed thinking block attaches to the following ``functionCall``, else to the
  text part before it, else to the next part. A function call in the current turn that has no signature
  (a history from another backend) gets Google's documented placeholder instead.
- **JSON Schema subset.** Tool schemas are rewritten to the OpenAPI subset Gemini accepts
  (``lynkr.convert.gemini_schema``).
- The answer (``candidates[0]``) is read the same way streamed or not: a non-streamed answer is the
  stream of one chunk, folded — so the two can never disagree.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from lynkr.convert import hub
from lynkr.convert.anthropic_stream import Event, MessageStream, fold_events, new_tool_id, usage_block
from lynkr.convert.gemini_schema import function_declarations, gemini_schema
from lynkr.errors import (
    InvalidRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamServerError,
    upstream_error_for_status,
)

BACKEND = "gemini"
MAX_OUTPUT_TOKENS = 65_536  # Gemini 2.5 and 3 models allow at most this many output tokens
MAX_STOP_SEQUENCES = 5
# Google's documented stand-in for a function call whose signature was never seen (a history written by
# another model): it tells Gemini 3 to skip its signature check for that call.
PLACEHOLDER_SIGNATURE = "context_engineering_is_the_way_to_go"

THINKING_MODEL = re.compile(r"(^|/)gemini-(2\.5|[3-9])")
LEVEL_MODEL = re.compile(r"(^|/)gemini-([3-9])")  # thinkingLevel instead of thinkingBudget
PRO_MODEL = re.compile(r"-pro")

# Gemini finishReason -> Anthropic stop_reason (a function call in the answer makes it tool_use)
FINISH_TO_STOP: dict[str, str] = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "LANGUAGE": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
}


@dataclass(frozen=True, slots=True)
class GeminiTarget:
    model: str
    max_output_tokens: int | None = None  # MAX_OUTPUT_TOKENS, when set


# --- requests ----------------------------------------------------------------------------------


def anthropic_to_gemini(req: dict[str, Any], target: GeminiTarget) -> dict[str, Any]:
    """An Anthropic Messages request as a Gemini ``generateContent`` request (the model goes in the URL)."""
    names = hub.tool_names_by_id(req["messages"])
    system: list[str] = []
    if text := hub.system_prompt(req):
        system.append(text)
    contents: list[dict[str, Any]] = []
    for msg in req["messages"]:
        role = msg["role"]
        if role == "system":  # Gemini has one system instruction: a mid-conversation one joins it
            if text := hub.text_of(msg["content"]):
                system.append(text)
            continue
        if role == "assistant":
            parts, gemini_role = _model_parts(msg["content"]), "model"
        else:
            parts, gemini_role = _user_parts(msg["content"], names), "user"
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:  # Gemini wants the roles to alternate
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    _sign_current_turn(contents)

    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}

    tools = hub.function_tools(req)
    if tools:
        out["tools"] = [{"functionDeclarations": function_declarations(tools)}]
        if config := _function_calling_config(req.get("tool_choice") or {}):
            out["toolConfig"] = {"functionCallingConfig": config}

    generation = _generation_config(req, target)
    schema = hub.output_schema(req)
    if schema is not None and not tools:  # Gemini refuses JSON mode together with function calling
        generation["responseMimeType"] = "application/json"
        generation["responseSchema"] = gemini_schema(schema)
    if generation:
        out["generationConfig"] = generation
    return out


def _function_calling_config(choice: dict[str, Any]) -> dict[str, Any] | None:
    kind = choice.get("type")
    if kind == "auto":
        return {"mode": "AUTO"}
    if kind == "any":
        return {"mode": "ANY"}
    if kind == "tool":
        return {"mode": "ANY", "allowedFunctionNames": [choice["name"]]}
    if kind == "none":
        return {"mode": "NONE"}  # declarations stay: the history may call them
    return None


def _generation_config(req: dict[str, Any], target: GeminiTarget) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if (max_tokens := req.get("max_tokens")) is not None:
        config["maxOutputTokens"] = min(n for n in (max_tokens, target.max_output_tokens, MAX_OUTPUT_TOKENS) if n)
    for src, dst in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        if req.get(src) is not None:
            config[dst] = req[src]
    if stops := req.get("stop_sequences"):
        config["stopSequences"] = stops[:MAX_STOP_SEQUENCES]
    if thinking := _thinking_config(req, target.model):
        config["thinkingConfig"] = thinking
    return config


def _thinking_config(req: dict[str, Any], model: str) -> dict[str, Any] | None:
    """Thinking asked for -> Gemini's thinkingConfig (with the thoughts' summaries returned); None leaves
    the model's default, which for Gemini 2.5 and 3 is to think without showing it."""
    thinking = req.get("thinking") or {}
    kind = thinking.get("type")
    if kind not in ("enabled", "adaptive") or not THINKING_MODEL.search(model):
        return None
    effort = hub.reasoning_effort(req)
    if LEVEL_MODEL.search(model):
        return {"thinkingLevel": "low" if effort in ("low", "minimal") else "high", "includeThoughts": True}
    if kind == "adaptive":
        return {"thinkingBudget": -1, "includeThoughts": True}  # dynamic: the model decides
    cap = 32_768 if PRO_MODEL.search(model) else 24_576
    budget = min(max(int(thinking.get("budget_tokens") or 0), 1024), cap)
    return {"thinkingBudget": budget, "includeThoughts": True}


def _model_parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An assistant turn's blocks as Gemini parts, each signature back on the part it came with."""
    blocks = hub.blocks(content)
    parts: list[dict[str, Any]] = []
    pending: str | None = None  # a signature waiting for the next part

    def add(part: dict[str, Any]) -> None:
        nonlocal pending
        if pending:
            part["thoughtSignature"] = pending
            pending = None
        parts.append(part)

    for i, b in enumerate(blocks):
        kind = b.get("type")
        if kind == "thinking":
            text, signature = b.get("thinking") or "", b.get("signature") or ""
            if text:
                part: dict[str, Any] = {"text": text, "thought": True}
                if signature:
                    part["thoughtSignature"] = signature
                add(part)
            elif signature:
                following = blocks[i + 1].get("type") if i + 1 < len(blocks) else None
                prev = parts[-1] if parts else None
                if (following != "tool_use" and prev is not None and "text" in prev and not prev.get("thought")
                        and "thoughtSignature" not in prev):
                    prev["thoughtSignature"] = signature
                else:
                    pending = signature
        elif kind == "text":
            if b.get("text"):
                add({"text": b["text"]})
        elif kind == "tool_use":
            add({"functionCall": {"name": b["name"], "args": b.get("input") or {}}})
        elif kind in ("image", "document"):
            add(_media_part(b))
        # redacted_thinking and Anthropic server-tool blocks have no Gemini form
    if pending and parts and "thoughtSignature" not in parts[-1]:
        parts[-1]["thoughtSignature"] = pending
    return parts


def _user_parts(content: str | list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """A user turn: function responses first (in the order of the calls), then the rest."""
    responses: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for b in hub.blocks(content):
        kind = b.get("type")
        if kind == "tool_result":
            text, images = hub.tool_result_content(b)
            key = "error" if b.get("is_error") else "output"
            name = names.get(b["tool_use_id"], b["tool_use_id"])
            responses.append({"functionResponse": {"name": name, "response": {key: text}}})
            rest.extend(_media_part(img) for img in images)
        elif kind == "text":
            if b.get("text"):
                rest.append({"text": b["text"]})
        elif kind in ("image", "document"):
            rest.append(_media_part(b))
    return responses + rest


def _media_part(block: dict[str, Any]) -> dict[str, Any]:
    """An image or document block: base64 -> inlineData, a URL -> fileData, a text document -> text."""
    source = block.get("source") or {}
    kind = source.get("type")
    default_mime = "application/pdf" if block.get("type") == "document" else "image/png"
    if kind == "base64":
        return {"inlineData": {"mimeType": source.get("media_type") or default_mime, "data": source["data"]}}
    if kind == "text":
        return {"text": hub.document_text(block, backend=BACKEND)}
    if kind == "url":
        url = str(source.get("url", ""))
        if url.startswith("data:"):
            head, _, data = url.partition(",")
            return {"inlineData": {"mimeType": head[5:].split(";", 1)[0] or default_mime, "data": data}}
        guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
        return {"fileData": {"mimeType": guessed or default_mime, "fileUri": url}}
    raise InvalidRequest(f"{block.get('type')} source type {kind!r} cannot be sent to Gemini; send base64 or a URL",
                         field="source.type")


def _sign_current_turn(contents: list[dict[str, Any]]) -> None:
    """Gemini 3 checks the first function call of every model step since the user last wrote text: one
    without a signature (history from another backend) gets the placeholder Google documents for it."""
    start = 0
    for i, c in enumerate(contents):
        if c["role"] == "user" and any("text" in p or "inlineData" in p or "fileData" in p for p in c["parts"]):
            start = i
    for c in contents[start:]:
        if c["role"] != "model":
            continue
        call = next((p for p in c["parts"] if "functionCall" in p), None)
        if call is not None and "thoughtSignature" not in call:
            call["thoughtSignature"] = PLACEHOLDER_SIGNATURE


# --- answers -----------------------------------------------------------------------------------


def gemini_usage(meta: dict[str, Any] | None) -> dict[str, int]:
    """usageMetadata -> Anthropic usage: input excludes cached tokens, output includes thoughts."""
    if not meta:
        return usage_block()
    cached = meta.get("cachedContentTokenCount") or 0
    prompt = (meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0)
    output = (meta.get("candidatesTokenCount") or 0) + (meta.get("thoughtsTokenCount") or 0)
    return usage_block(max(prompt - cached, 0), output, cache_read=cached)


def gemini_error(error: Any, prefix: str = "") -> UpstreamError:
    """``{"error":{"code","message","status"}}`` (a body, or a chunk inside a stream) -> the typed error."""
    code = error.get("code") if isinstance(error, dict) else None
    message = prefix + (str(error.get("message") or error) if isinstance(error, dict) else str(error))
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return upstream_error_for_status(code)(message, upstream_status=code)
    return UpstreamServerError(message)


def _signature_block(out: MessageStream, signature: str) -> list[Event]:
    """A thinking block holding only a signature (one that belongs to a function call or a text part)."""
    return out.end_block() + out.thinking("", signature)


class _Reader:
    """Reads Gemini answer chunks (one for a non-streamed answer) into Anthropic events."""

    def __init__(self, model: str, message_id: str | None) -> None:
        self.blocks = MessageStream(model=model, message_id=message_id)
        self.calls = 0
        self.finish: str | None = None
        self.blocked = False
        self.usage: dict[str, Any] | None = None

    def chunk(self, chunk: dict[str, Any]) -> list[Event]:
        if chunk.get("error"):
            raise gemini_error(chunk["error"], "Gemini stream error: ")
        if chunk.get("usageMetadata"):
            self.usage = chunk["usageMetadata"]
        events = self.blocks.start()
        candidates = chunk.get("candidates") or ()
        if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            self.blocked = True
        for candidate in candidates[:1]:
            for part in (candidate.get("content") or {}).get("parts") or ():
                events += self.part(part)
            if candidate.get("finishReason"):
                self.finish = candidate["finishReason"]
        return events

    def part(self, part: dict[str, Any]) -> list[Event]:
        out = self.blocks
        signature = part.get("thoughtSignature") or None
        if part.get("thought"):
            return out.thinking(part.get("text") or "", signature)
        if "functionCall" in part:
            call = part["functionCall"] or {}
            events = _signature_block(out, signature) if signature else []
            args = call.get("args")
            events += out.tool_call(self.calls, id=new_tool_id(), name=call.get("name") or "",
                                    arguments=orjson.dumps(args if isinstance(args, dict) else {}).decode())
            self.calls += 1
            return events
        events = out.text(part["text"]) if isinstance(part.get("text"), str) else []
        if signature:
            events += _signature_block(out, signature)
        return events  # executable code, inline images and other parts have no Anthropic form

    def end(self) -> list[Event]:
        if self.finish is None and not self.blocked:
            raise UpstreamBadResponse("Gemini ended the answer without a finishReason")
        if self.blocks.saw_tool_call:
            stop = "tool_use"
        elif self.blocked:
            stop = "refusal"
        else:
            stop = FINISH_TO_STOP.get(self.finish or "", "end_turn")
        return self.blocks.finish(stop, gemini_usage(self.usage))


def gemini_events(chunks: Iterable[dict[str, Any]], *, model: str, message_id: str | None = None) -> list[Event]:
    reader = _Reader(model, message_id)
    events: list[Event] = []
    for chunk in chunks:
        events += reader.chunk(chunk)
    return events + reader.end()


def gemini_to_anthropic(resp: dict[str, Any], *, model: str, message_id: str | None = None) -> dict[str, Any]:
    """A non-streamed ``generateContent`` answer as an Anthropic message."""
    if resp.get("error") and not resp.get("candidates"):
        raise gemini_error(resp["error"])
    if not resp.get("candidates") and not (resp.get("promptFeedback") or {}).get("blockReason"):
        raise UpstreamBadResponse("Gemini answer has no candidates")
    return fold_events(gemini_events([resp], model=model, message_id=message_id))


async def gemini_stream_to_anthropic(
    chunks: AsyncIterable[dict[str, Any]], *, model: str, message_id: str | None = None
) -> AsyncIterator[Event]:
    """Translate ``streamGenerateContent?alt=sse`` chunks into Anthropic events, as they arrive."""
    reader = _Reader(model, message_id)
    seen = False
    async for chunk in chunks:
        seen = True
        for ev in reader.chunk(chunk):
            yield ev
    if not seen:
        raise UpstreamBadResponse("Gemini closed the stream without sending an answer")
    for ev in reader.end():
        yield ev
