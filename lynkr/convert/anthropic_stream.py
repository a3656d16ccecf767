"""Anthropic Messages stream events: a per-answer builder and the reducer that folds them.

``MessageStream`` is what every translator (OpenAI Chat, Ollama, ...) drives: it keeps the one
piece of state a translation needs (which content block is open) and emits the exact event
sequence clients expect::

    message_start → (content_block_start → content_block_delta* → content_block_stop)*
                  → message_delta → message_stop

``fold_events`` is the inverse: events → the final message, the same way the SDKs accumulate
them. Tests use it to prove a translated stream equals the non-streamed answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from random import getrandbits
from typing import Any

import orjson

Event = dict[str, Any]


def random_hex() -> str:
    """24 hex digits for an id. Ids name answers and guard nothing, so a pseudo-random 96-bit number
    (reseeded in forked workers) is enough: ``secrets`` costs a system call per id."""
    return f"{getrandbits(96):024x}"


def new_message_id() -> str:
    return "msg_" + random_hex()


def new_tool_id() -> str:
    return "toolu_" + random_hex()


def usage_block(
    input_tokens: int = 0, output_tokens: int = 0, cache_read: int = 0, cache_creation: int = 0
) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
    }


def empty_message(message_id: str, model: str, usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage or usage_block(),
    }


def parse_tool_input(raw: str) -> dict[str, Any]:
    """A tool call's accumulated JSON arguments as the ``input`` object (lenient, like the SDKs)."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_unparsed_arguments": raw}
    return value if isinstance(value, dict) else {"value": value}


class MessageStream:
    """Emits the Anthropic event sequence for one answer. One instance per answer, never shared."""

    __slots__ = ("_kind", "_open_key", "_signed", "_tools", "index", "message_id", "model", "started")

    def __init__(self, *, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id or new_message_id()
        self.index = -1
        self._kind: str | None = None  # type of the open block, None when closed
        self._open_key: object = None
        self._signed = False  # the open thinking block already carries its signature
        self.started = False  # message_start sent (read-only for callers)
        self._tools: dict[object, int] = {}

    def start(self, usage: dict[str, int] | None = None) -> list[Event]:
        if self.started:
            return []
        self.started = True
        return [{"type": "message_start", "message": empty_message(self.message_id, self.model, usage)}]

    def _close(self, out: list[Event]) -> None:
        if self._kind is not None:
            out.append({"type": "content_block_stop", "index": self.index})
            self._kind = None
            self._open_key = None

    def _open(self, out: list[Event], block: dict[str, Any], key: object = None) -> None:
        self._close(out)
        self.index += 1
        self._kind = block["type"]
        self._open_key = key
        self._signed = False
        out.append({"type": "content_block_start", "index": self.index, "content_block": block})

    def text(self, text: str) -> list[Event]:
        if self._kind == "text":  # the usual case: one more delta in the open text block
            return [{"type": "content_block_delta", "index": self.index,
                     "delta": {"type": "text_delta", "text": text}}] if text else []
        out = self.start()
        if not text or (self._kind == "tool_use" and not text.strip()):
            return out  # whitespace between a call's argument fragments would split the call
        if self._kind != "text":
            self._open(out, {"type": "text", "text": ""})
        out.append({"type": "content_block_delta", "index": self.index,
                    "delta": {"type": "text_delta", "text": text}})
        return out

    def thinking(self, text: str, signature: str | None = None) -> list[Event]:
        """Thinking text and/or its signature. A signature ends what it signs: thinking after it opens a
        new block (Gemini signs every thought part)."""
        out = self.start()
        if not text and not signature:
            return out
        if self._kind != "thinking" or self._signed:
            self._open(out, {"type": "thinking", "thinking": "", "signature": ""})
        if text:
            out.append({"type": "content_block_delta", "index": self.index,
                        "delta": {"type": "thinking_delta", "thinking": text}})
        if signature:
            out.append({"type": "content_block_delta", "index": self.index,
                        "delta": {"type": "signature_delta", "signature": signature}})
            self._signed = True
        return out

    def tool_call(
        self, key: object, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> list[Event]:
        """A tool call, or a fragment of one; ``key`` tells parallel calls apart (OpenAI's index).

        Calls are streamed one after another: a new key closes the open block. Blocks cannot be
        reopened, so fragments for a call already closed raise ``ValueError``.
        """
        out = self.start()
        if self._kind != "tool_use" or self._open_key != key:
            if key in self._tools:
                raise ValueError(f"tool call {key!r} continued after another one started")
            self._open(out, {"type": "tool_use", "id": id or new_tool_id(), "name": name or "",
                             "input": {}}, key)
            self._tools[key] = self.index
        if arguments:
            out.append({"type": "content_block_delta", "index": self.index,
                        "delta": {"type": "input_json_delta", "partial_json": arguments}})
        return out

    def redacted_thinking(self, data: str) -> list[Event]:
        """A ``redacted_thinking`` block: it arrives whole, so it opens and closes at once."""
        out = self.start()
        self._open(out, {"type": "redacted_thinking", "data": data})
        self._close(out)
        return out

    def end_block(self) -> list[Event]:
        """Close the open block (for backends that mark block ends, like Bedrock's contentBlockStop),
        so two consecutive blocks of one kind stay two blocks."""
        out = self.start()
        self._close(out)
        return out

    def finish(
        self, stop_reason: str, usage: dict[str, int] | None = None, stop_sequence: str | None = None
    ) -> list[Event]:
        out = self.start(usage)
        self._close(out)
        out.append({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": usage or usage_block()})
        out.append({"type": "message_stop"})
        return out

    @property
    def saw_tool_call(self) -> bool:
        return bool(self._tools)


def fold_events(events: Iterable[Event]) -> dict[str, Any]:
    """Fold a stream of Anthropic events into the final message (as the SDK helpers do)."""
    message: dict[str, Any] | None = None
    json_buf: dict[int, str] = {}
    for ev in events:
        t = ev["type"]
        if t == "message_start":
            message = orjson.loads(orjson.dumps(ev["message"]))
            continue
        if t in ("ping",):
            continue
        if message is None:
            raise ValueError(f"{t} before message_start")
        if t == "content_block_start":
            if ev["index"] != len(message["content"]):
                raise ValueError("content_block_start index out of order")
            message["content"].append(dict(ev["content_block"]))
        elif t == "content_block_delta":
            block = message["content"][ev["index"]]
            d = ev["delta"]
            dt = d["type"]
            if dt == "text_delta":
                block["text"] += d["text"]
            elif dt == "thinking_delta":
                block["thinking"] += d["thinking"]
            elif dt == "signature_delta":
                block["signature"] = d["signature"]
            elif dt == "input_json_delta":
                json_buf[ev["index"]] = json_buf.get(ev["index"], "") + d["partial_json"]
        elif t == "content_block_stop":
            i = ev["index"]
            if message["content"][i]["type"] == "tool_use":
                message["content"][i]["input"] = parse_tool_input(json_buf.pop(i, ""))
        elif t == "message_delta":
            message["stop_reason"] = ev["delta"].get("stop_reason")
            message["stop_sequence"] = ev["delta"].get("stop_sequence")
            for k, v in (ev.get("usage") or {}).items():
                if v is not None:
                    message["usage"][k] = v
        elif t == "error":
            raise ValueError(f"stream error: {ev.get('error')}")
    if message is None:
        raise ValueError("no message_start in stream")
    return message
