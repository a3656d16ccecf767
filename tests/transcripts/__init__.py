"""Recorded upstream answers, hand-written in the real wire formats, and helpers to replay them.

Each stream transcript (``*.sse`` for OpenAI Chat Completions, ``*.ndjson`` for Ollama) has a
``*.json`` twin: the same answer as the backend returns it without streaming. The helpers cut a
transcript into pieces the way a socket might (anywhere: inside a UTF-8 character, between ``\\r``
and ``\\n``), decode it like the providers do, and check the Anthropic event grammar.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

from lynkr.sse import NDJSONDecoder, SSEDecoder

HERE = Path(__file__).parent

OPENAI = ("openai_reasoning_parallel_tools", "openai_text_length")
OLLAMA = ("ollama_thinking_tools", "ollama_text_length")


# The model a client asks for in the converter tests (answers carry it back), and request builders.
MODEL = "claude-opus-4-8"


def req(**over: Any) -> dict[str, Any]:
    """A minimal Anthropic Messages request, with ``over`` replacing or adding fields."""
    return {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}], **over}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def stream_bytes(name: str) -> bytes:
    suffix = ".sse" if name.startswith("openai") else ".ndjson"
    return (HERE / (name + suffix)).read_bytes()


def body(name: str) -> dict[str, Any]:
    return json.loads((HERE / (name + ".json")).read_text("utf-8"))


def claude_code_request() -> dict[str, Any]:
    """A fresh copy of the recorded Claude Code request (2.1.197 shape, trimmed to four tools)."""
    return json.loads((HERE / "claude_code_request.json").read_text("utf-8"))


def line_endings(data: bytes, ending: str) -> bytes:
    """The transcript with its LF line endings swapped for ``ending`` (``"lf"``, ``"crlf"``, ``"cr"``)."""
    return data.replace(b"\n", {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}[ending])


def split_at(data: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def every_two_way_split(data: bytes) -> Iterator[list[bytes]]:
    for i in range(len(data) + 1):
        yield split_at(data, i)


def random_splits(data: bytes, n: int, seed: int = 7) -> Iterator[list[bytes]]:
    """``n`` reproducible ways to cut ``data`` into 2 to 40 pieces (empty pieces included)."""
    rng = random.Random(seed)
    for _ in range(n):
        yield split_at(data, *(rng.randint(0, len(data)) for _ in range(rng.randint(1, 39))))


def inside_utf8_chars(data: bytes) -> list[int]:
    """Every offset that falls inside a multi-byte UTF-8 character (before a continuation byte)."""
    return [i for i in range(1, len(data)) if 0x80 <= data[i] <= 0xBF]


def chunkings(data: bytes) -> dict[str, list[list[bytes]]]:
    """Named families of chunkings: whole, byte by byte, every 2-way split, inside each multi-byte
    character at once, and random many-way cuts."""
    return {
        "whole": [[data]],
        "bytewise": [[data[i : i + 1] for i in range(len(data))]],
        "every-2-way-split": list(every_two_way_split(data)),
        "inside-every-utf8-char": [split_at(data, *inside_utf8_chars(data))],
        "random": list(random_splits(data, 200)),
    }


def decode_sse_json(pieces: Iterable[bytes]) -> list[dict[str, Any]]:
    """The JSON payloads of an SSE stream up to ``[DONE]``, as ``lynkr.providers.readers.sse_json`` reads them."""
    decoder = SSEDecoder()
    out: list[dict[str, Any]] = []
    for piece in pieces:
        for ev in decoder.feed(piece):
            if ev.data == "[DONE]":
                return out
            if ev.data:
                out.append(ev.json())
    out.extend(ev.json() for ev in decoder.close() if ev.data and ev.data != "[DONE]")
    return out


def decode_ndjson(pieces: Iterable[bytes]) -> list[dict[str, Any]]:
    decoder = NDJSONDecoder()
    out: list[dict[str, Any]] = []
    for piece in pieces:
        out.extend(decoder.feed(piece))
    out.extend(decoder.close())
    return out


async def aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def collect(events: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ev async for ev in events]


_DELTA_FOR = {"text": {"text_delta"}, "thinking": {"thinking_delta", "signature_delta"},
              "tool_use": {"input_json_delta"}}


def assert_stream_grammar(events: list[dict[str, Any]]) -> None:
    """message_start, then per block start → deltas of the block's kind → stop (indexes 0, 1, ...),
    then one message_delta and message_stop; nothing else, nothing after."""
    types = [e["type"] for e in events]
    assert types[0] == "message_start", types
    assert types[-2:] == ["message_delta", "message_stop"], types
    assert types.count("message_start") == types.count("message_delta") == types.count("message_stop") == 1
    open_block: dict[str, Any] | None = None
    next_index = 0
    for ev in events[1:-2]:
        t = ev["type"]
        if t == "content_block_start":
            assert open_block is None, f"block {next_index} started while another is open"
            assert ev["index"] == next_index
            open_block = ev["content_block"]
        elif t == "content_block_delta":
            assert open_block is not None and ev["index"] == next_index
            assert ev["delta"]["type"] in _DELTA_FOR[open_block["type"]]
        elif t == "content_block_stop":
            assert open_block is not None and ev["index"] == next_index
            open_block = None
            next_index += 1
        else:
            raise AssertionError(f"unexpected {t} inside the message")
    assert open_block is None


def shape(events: list[dict[str, Any]]) -> list[str]:
    """A compact, readable picture of an event stream: ``start 0 tool_use Read``, ``delta 0 text_delta``..."""
    out: list[str] = []
    for ev in events:
        t = ev["type"]
        if t == "content_block_start":
            block = ev["content_block"]
            out.append(" ".join(filter(None, ("start", str(ev["index"]), block["type"], block.get("name")))))
        elif t == "content_block_delta":
            out.append(f"delta {ev['index']} {ev['delta']['type']}")
        elif t == "content_block_stop":
            out.append(f"stop {ev['index']}")
        elif t == "message_delta":
            out.append(f"message_delta {ev['delta']['stop_reason']}")
        else:
            out.append(t)
    return out
