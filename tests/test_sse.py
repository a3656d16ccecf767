"""SSE and NDJSON decoding (bytes split anywhere → whole events), SSE encoding, and the Anthropic event
builder and reducer the stream translators share."""

from __future__ import annotations

import json

import orjson
import pytest

from lynkr.convert.anthropic_stream import MessageStream, fold_events, usage_block
from lynkr.sse import NDJSONDecoder, SSEDecoder, SSEEvent, encode_sse
from tests.transcripts import (
    OLLAMA,
    OPENAI,
    assert_stream_grammar,
    chunkings,
    inside_utf8_chars,
    line_endings,
    shape,
    split_at,
    stream_bytes,
)


def sse(*pieces: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [ev for piece in pieces for ev in decoder.feed(piece)]
    return events + decoder.close()


def ndjson(*pieces: bytes) -> list[object]:
    decoder = NDJSONDecoder()
    objs = [obj for piece in pieces for obj in decoder.feed(piece)]
    return objs + decoder.close()


# --- SSE field parsing (WHATWG event-stream rules) ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"data: hello\n\n", [SSEEvent(None, "hello")]),
        (b"data:hello\n\n", [SSEEvent(None, "hello")]),  # the space after the colon is optional
        (b"data:  two spaces\n\n", [SSEEvent(None, " two spaces")]),  # only one space is stripped
        (b"data: a\ndata: b\n\n", [SSEEvent(None, "a\nb")]),  # multi-line data joins with LF
        (b"data\n\n", [SSEEvent(None, "")]),  # a field name alone has an empty value
        (b"event: message_start\ndata: {}\n\n", [SSEEvent("message_start", "{}")]),
        (b": keep-alive\n\ndata: x\n\n", [SSEEvent(None, "x")]),  # comments are ignored
        (b":\n: OPENROUTER PROCESSING\n\n", []),  # a block of comments dispatches nothing
        (b"retry: 3000\nfoo: bar\ndata: x\n\n", [SSEEvent(None, "x")]),  # unknown fields ignored
        (b"data: x: y\n\n", [SSEEvent(None, "x: y")]),  # only the first colon separates
        (b"\n\n\ndata: x\n\n\n\n", [SSEEvent(None, "x")]),  # extra blank lines dispatch nothing
        (b"id: 7\ndata: a\n\ndata: b\n\n", [SSEEvent(None, "a", "7"), SSEEvent(None, "b", "7")]),  # id persists
        (b"event: a\ndata: 1\n\ndata: 2\n\n", [SSEEvent("a", "1"), SSEEvent(None, "2")]),  # event type resets
    ],
)
def test_sse_fields(raw: bytes, expected: list[SSEEvent]) -> None:
    assert sse(raw) == expected


@pytest.mark.parametrize("ending", ["lf", "crlf", "cr"])
def test_sse_line_endings(ending: str) -> None:
    raw = line_endings(b"event: e\ndata: a\ndata: b\n\ndata: c\n\n", ending)
    assert sse(raw) == [SSEEvent("e", "a\nb"), SSEEvent(None, "c")]


def test_sse_mixed_line_endings() -> None:
    assert sse(b"data: a\r\ndata: b\rdata: c\n\r\n") == [SSEEvent(None, "a\nb\nc")]


def test_sse_crlf_split_between_cr_and_lf_is_one_line_ending() -> None:
    # if the LF after a CR were read as a second line ending, "a" would be dispatched alone
    assert sse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [SSEEvent(None, "a\nb")]


def test_sse_empty_read_between_cr_and_lf() -> None:
    # regression: an empty read used to forget the pending CR, so its LF became a blank line
    assert sse(b"data: a\r", b"", b"\ndata: b\r\n\r\n") == [SSEEvent(None, "a\nb")]


def test_sse_close_dispatches_an_unterminated_final_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.close() == [SSEEvent(None, "[DONE]")]


def test_sse_close_after_complete_events_dispatches_nothing_more() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n\n") == [SSEEvent(None, "x")]
    assert decoder.close() == []


def test_sse_events_are_returned_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n") == []
    assert decoder.feed(b"\ndata: 2") == [SSEEvent(None, "1")]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(None, "2")]


def test_sse_utf8_character_split_across_reads() -> None:
    raw = "data: 設定 🚀\n\n".encode()
    for cut in inside_utf8_chars(raw):
        assert sse(*split_at(raw, cut)) == [SSEEvent(None, "設定 🚀")], cut


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_sse_leading_byte_order_mark_is_dropped(cut: int) -> None:
    raw = b"\xef\xbb\xbfdata: x\n\n"
    assert sse(*split_at(raw, cut)) == [SSEEvent(None, "x")]


def test_sse_byte_order_mark_only_counts_at_the_very_start() -> None:
    assert sse(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [SSEEvent(None, "a")]  # "\ufeffdata" is an unknown field


def test_sse_invalid_utf8_becomes_replacement_characters() -> None:
    assert sse(b"data: caf\xe9 \xff\n\n") == [SSEEvent(None, "caf\ufffd \ufffd")]


def test_sse_event_json() -> None:
    assert SSEEvent(None, '{"a": [1, "é"]}').json() == {"a": [1, "é"]}


# --- SSE transcripts split anywhere -----------------------------------------------------------


@pytest.mark.parametrize("ending", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", OPENAI)
def test_sse_transcript_decodes_the_same_however_it_is_cut(name: str, ending: str) -> None:
    raw = line_endings(stream_bytes(name), ending)
    whole = sse(raw)
    payloads = [ev.data for ev in whole]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks == [json.loads(line[6:]) for line in stream_bytes(name).decode().split("\n")
                      if line.startswith("data: {")]
    assert inside_utf8_chars(raw), "the transcript should hold multi-byte characters"
    for family, cuts in chunkings(raw).items():
        for pieces in cuts:
            assert sse(*pieces) == whole, (family, [len(p) for p in pieces])


def test_sse_crlf_transcript_cut_between_every_cr_and_lf() -> None:
    raw = line_endings(stream_bytes(OPENAI[0]), "crlf")
    expected = sse(raw)
    cr_positions = [i + 1 for i in range(len(raw)) if raw[i : i + 2] == b"\r\n"]
    assert len(cr_positions) > 30
    assert sse(*split_at(raw, *cr_positions)) == expected


# --- sse_json: what the providers read (a bytes fast path for LF streams, the decoder otherwise) --------


class _Body:
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = iter([piece for piece in pieces if piece])  # aiohttp's readany: b"" only at the end

    async def readany(self) -> bytes:
        return next(self.pieces, b"")


class _Response:
    def __init__(self, pieces: list[bytes]) -> None:
        self.content = _Body(pieces)


async def read_sse_json(*pieces: bytes) -> list[object]:
    from lynkr.providers.readers import sse_json

    return [obj async for obj in sse_json(_Response(list(pieces)), "openai")]  # type: ignore[arg-type]


def payloads(raw: bytes) -> list[object]:
    """What the full decoder makes of ``raw``: the JSON payloads before ``[DONE]``."""
    out: list[object] = []
    for ev in sse(raw):
        if ev.data == "[DONE]":
            break
        if ev.data:
            out.append(ev.json())
    return out


@pytest.mark.parametrize("ending", ["lf", "crlf", "cr"])
async def test_sse_json_reads_a_transcript_the_same_however_it_is_cut(ending: str) -> None:
    raw = line_endings(stream_bytes(OPENAI[0]), ending)
    expected = payloads(raw)
    assert len(expected) > 5
    for family, cuts in chunkings(raw).items():
        for pieces in cuts[:60]:
            assert await read_sse_json(*pieces) == expected, (family, [len(p) for p in pieces])


@pytest.mark.parametrize("raw", [
    b'\xef\xbb\xbfdata: {"a": 1}\n\n',  # a byte order mark first
    b': keep-alive\n\nevent: x\nid: 3\ndata: {"a":\ndata:  1}\n\n',  # comments, fields, multi-line data
    b'data: {"a": 1}\n\ndata\n\ndata: {"b": 2}',  # an empty data field; a last event without its blank line
    b'data: {"a": 1}\n\ndata: [DONE]\n\ndata: {"after": 1}\n\n',  # nothing after [DONE]
    b'data: {"a": 1}\n\r\ndata: {"b": 2}\r\n\r\n',  # a CR after the first events
    b'data\ndata: {"a": 1}\n\n',  # a bare "data" line is an empty line of the event's data
    b'data: {"a": 1}\n\n\r\n\xef\xbb\xbfdata: {"b": 2}\n\ndata: {"c": 3}\n\n',  # a mid-stream BOM is no BOM
])
async def test_sse_json_agrees_with_the_decoder(raw: bytes) -> None:
    expected = payloads(raw)
    assert expected
    assert await read_sse_json(raw) == expected
    assert await read_sse_json(*[raw[i:i + 1] for i in range(len(raw))]) == expected


async def test_sse_json_takes_a_mid_stream_byte_order_mark_for_an_ordinary_character() -> None:
    pieces = [b'data: {"a": 1}\n\n', b'\xef\xbb\xbfdata: {"b": 2}\r\n\r\n', b'data: {"c": 3}\n\n']
    assert payloads(b"".join(pieces)) == [{"a": 1}, {"c": 3}]  # "\ufeffdata" is an unknown field
    assert await read_sse_json(*pieces) == [{"a": 1}, {"c": 3}]


async def test_sse_json_refuses_an_event_that_is_not_json() -> None:
    from lynkr.errors import UpstreamBadResponse

    with pytest.raises(UpstreamBadResponse, match="not JSON"):
        await read_sse_json(b'data: {"a": 1}\n\ndata: {oops\n\n')


# --- NDJSON ------------------------------------------------------------------------------------


def test_ndjson_lines() -> None:
    assert ndjson(b'{"a": 1}\n\n{"b": "\xc3\xa9"}\n') == [{"a": 1}, {"b": "é"}]


def test_ndjson_crlf_and_blank_lines() -> None:
    assert ndjson(b'{"a": 1}\r\n\r\n  \r\n{"b": 2}\r\n') == [{"a": 1}, {"b": 2}]


def test_ndjson_close_parses_a_last_line_without_newline() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"done": tr') == [{"a": 1}]
    assert decoder.feed(b"ue}") == []
    assert decoder.close() == [{"done": True}]
    assert decoder.close() == []


def test_ndjson_bad_line_raises_json_error() -> None:
    # the provider maps orjson's error to UpstreamBadResponse
    with pytest.raises(orjson.JSONDecodeError):
        NDJSONDecoder().feed(b"<html>502 Bad Gateway</html>\n")


@pytest.mark.parametrize("ending", ["lf", "crlf"])
@pytest.mark.parametrize("name", OLLAMA)
def test_ndjson_transcript_decodes_the_same_however_it_is_cut(name: str, ending: str) -> None:
    raw = line_endings(stream_bytes(name), ending)
    whole = ndjson(raw)
    assert whole == [json.loads(line) for line in stream_bytes(name).splitlines()]
    assert whole[-1]["done"] is True
    for family, cuts in chunkings(raw).items():
        for pieces in cuts:
            assert ndjson(*pieces) == whole, (family, [len(p) for p in pieces])
    assert ndjson(raw.rstrip()) == whole  # no newline after the final line


# --- encoding ----------------------------------------------------------------------------------


def test_encode_sse_with_event_name() -> None:
    frame = encode_sse("content_block_delta", {"type": "content_block_delta", "delta": {"text": "é"}})
    assert frame == 'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"é"}}\n\n'.encode()


def test_encode_sse_without_event_name_and_raw_bytes() -> None:
    assert encode_sse(None, b"[DONE]") == b"data: [DONE]\n\n"


def test_encoded_frames_decode_back() -> None:
    events = [("message_start", {"type": "message_start", "text": "line\nbreak 🚀"}), (None, {"n": 1})]
    raw = b"".join(encode_sse(name, data) for name, data in events)
    assert [(ev.event, ev.json()) for ev in sse(raw)] == events


# --- Anthropic stream events: the builder every translator drives, and the reducer -------------


def test_message_stream_builds_the_event_grammar() -> None:
    out = MessageStream(model="claude-x", message_id="msg_1")
    events = [*out.start(), *out.start(), *out.thinking("hm"), *out.thinking("", signature="sig"),
              *out.text("Hi"), *out.text(""), *out.text(" there"),
              *out.tool_call(0, id="toolu_a", name="Read", arguments='{"a":'), *out.tool_call(0, arguments=" 1}"),
              *out.tool_call(1, id="toolu_b", name="Grep"),
              *out.finish("tool_use", usage_block(5, 6, cache_read=7))]
    assert_stream_grammar(events)
    assert shape(events) == ["message_start",
                             "start 0 thinking", "delta 0 thinking_delta", "delta 0 signature_delta", "stop 0",
                             "start 1 text", "delta 1 text_delta", "delta 1 text_delta", "stop 1",
                             "start 2 tool_use Read", "delta 2 input_json_delta", "delta 2 input_json_delta", "stop 2",
                             "start 3 tool_use Grep", "stop 3",
                             "message_delta tool_use", "message_stop"]
    assert out.saw_tool_call
    assert fold_events(events) == {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"}, {"type": "text", "text": "Hi there"},
                    {"type": "tool_use", "id": "toolu_a", "name": "Read", "input": {"a": 1}},
                    {"type": "tool_use", "id": "toolu_b", "name": "Grep", "input": {}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 6, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 7},
    }


def test_thinking_after_a_signature_opens_a_new_block() -> None:
    """A signature ends the thinking it signs: more thinking is another block (Gemini signs every thought)."""
    out = MessageStream(model="claude-x", message_id="msg_1")
    events = [*out.thinking("a", signature="s1"), *out.thinking("b"), *out.thinking("", signature="s2"),
              *out.finish("end_turn")]
    assert_stream_grammar(events)
    assert shape(events)[:7] == ["message_start", "start 0 thinking", "delta 0 thinking_delta",
                                 "delta 0 signature_delta", "stop 0", "start 1 thinking", "delta 1 thinking_delta"]
    assert [(b["thinking"], b["signature"]) for b in fold_events(events)["content"]] == [("a", "s1"), ("b", "s2")]


def test_message_stream_with_no_content() -> None:
    out = MessageStream(model="m")
    events = out.finish("end_turn")
    assert shape(events) == ["message_start", "message_delta end_turn", "message_stop"]
    assert events[0]["message"]["id"].startswith("msg_")
    assert fold_events(events)["content"] == []


def test_message_stream_refuses_to_reopen_a_closed_tool_call() -> None:
    out = MessageStream(model="m")
    out.tool_call("a", id="toolu_a", name="A")
    out.text("between")
    with pytest.raises(ValueError, match="continued"):
        out.tool_call("a", arguments="{}")


def test_generated_tool_ids_are_unique() -> None:
    out = MessageStream(model="m")
    events = out.tool_call(0, name="A") + out.tool_call(1, name="B")
    ids = [e["content_block"]["id"] for e in events if e["type"] == "content_block_start"]
    assert len(set(ids)) == 2 and all(i.startswith("toolu_") for i in ids)


def test_fold_ignores_pings_and_keeps_usage_it_was_not_told_about() -> None:
    start = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                                  "content": [], "stop_reason": None, "stop_sequence": None,
                                                  "usage": {"input_tokens": 30, "output_tokens": 1}}}
    events = [start, {"type": "ping"},
              {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
               "usage": {"output_tokens": 9, "input_tokens": None}},
              {"type": "message_stop"}]
    message = fold_events(events)
    assert message["usage"] == {"input_tokens": 30, "output_tokens": 9}
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")
    assert start["message"]["usage"] == {"input_tokens": 30, "output_tokens": 1}  # the event was not mutated


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([], "no message_start"),
        ([{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}],
         "before message_start"),
        ([*MessageStream(model="m", message_id="x").start(),
          {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}], "out of order"),
        ([*MessageStream(model="m", message_id="x").start(),
          {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}], "Overloaded"),
    ],
    ids=["empty", "no-start", "index-gap", "error-event"],
)
def test_fold_rejects_broken_streams(events: list[dict[str, object]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fold_events(events)


async def test_sse_json_reads_a_batch_per_read_and_says_when_it_is_done() -> None:
    """``read_batch``: the payloads one read of the body completes (a read that completes none is waited
    through), ``done`` once ``[DONE]`` came, then None."""
    from lynkr.providers.readers import sse_json

    reader = sse_json(_Response([b'data: {"a": 1}\n\ndata: {"a"', b': 2}\n\ndata: {"a": 3}\n\n', b'data: {"a":',
                                 b' 4}\n\ndata: [DONE]\n\n']), "openai")  # type: ignore[arg-type]
    assert await reader.read_batch() == [{"a": 1}]
    assert await reader.read_batch() == [{"a": 2}, {"a": 3}] and not reader.ended
    assert await reader.read_batch() == [{"a": 4}] and reader.ended  # the half event waited for its end
    assert await reader.read_batch() is None
    assert [obj async for obj in reader] == []


async def test_ndjson_reads_the_objects_of_a_read_and_refuses_a_line_that_is_not_json() -> None:
    from lynkr.errors import UpstreamBadResponse
    from lynkr.providers.readers import ndjson

    reader = ndjson(_Response([b'{"a": 1}\n{"a": 2}\n{"a"', b': 3}\n', b'\n{"a": 4}']), "ollama")  # type: ignore[arg-type]
    assert await reader.read_batch() == [{"a": 1}, {"a": 2}]
    assert await reader.read_batch() == [{"a": 3}]  # the half line waited for its end
    assert await reader.read_batch() == [{"a": 4}] and reader.ended  # the last line needs no newline
    assert await reader.read_batch() is None
    bad = ndjson(_Response([b'{"a": 1}\n{oops\n']), "ollama")  # type: ignore[arg-type]
    with pytest.raises(UpstreamBadResponse, match="ollama sent a stream line that is not JSON"):
        await bad.read_batch()
