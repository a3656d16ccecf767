"""A translation driven over its input (lynkr.convert.translated): events one by one or a read at a time,
with the closing events in the last read's batch, failures after the events before them, and the input
closed however the stream ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lynkr.batched import Batched
from lynkr.convert.openai_chat import chat_stream_to_anthropic
from lynkr.convert.translated import TranslatedStream
from lynkr.errors import UpstreamError


def chunk(text: str | None = None, *, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


class Reads(Batched[dict[str, Any]]):
    """An input read in batches, like SSEJson: ``read_batch`` per read, ``ended`` with the last."""

    def __init__(self, *reads: list[dict[str, Any]]) -> None:
        super().__init__()
        self.reads = list(reads)
        self.closed = 0

    async def read_batch(self) -> list[dict[str, Any]] | None:
        if not self.reads:
            self.ended = True
            return None
        batch = self.reads.pop(0)
        self.ended = not self.reads
        return batch

    async def __anext__(self) -> dict[str, Any]:
        raise AssertionError("a batched input is read in batches")

    async def aclose(self) -> None:
        self.closed += 1


def types(events: list[dict[str, Any]]) -> list[str]:
    return [ev["type"] + (":" + ev["delta"].get("text", "") if ev["type"] == "content_block_delta" else "")
            for ev in events]


async def test_a_read_at_a_time_with_the_closing_events_in_the_last() -> None:
    source = Reads([chunk("Hel"), chunk("lo")], [chunk(" you", finish="stop")])
    stream = chat_stream_to_anthropic(source, model="m")
    assert isinstance(stream, TranslatedStream)
    first = await anext(stream)  # what the dispatcher takes before the writer starts
    assert first["type"] == "message_start"
    assert types(stream.ready()) == ["content_block_start", "content_block_delta:Hel", "content_block_delta:lo"]
    assert not stream.ended
    last = await stream.read_batch()
    assert last is not None and stream.ended and source.closed == 1
    assert types(last) == ["content_block_delta: you", "content_block_stop", "message_delta", "message_stop"]
    assert await stream.read_batch() is None


async def test_one_by_one_and_a_read_at_a_time_give_the_same_events() -> None:
    reads = [[chunk("a"), chunk("b")], [chunk("c")], [chunk(finish="stop", usage={"prompt_tokens": 3})]]
    one_by_one = [ev async for ev in chat_stream_to_anthropic(Reads(*reads), model="m", message_id="msg_1")]
    batched = chat_stream_to_anthropic(Reads(*reads), model="m", message_id="msg_1")
    by_read: list[dict[str, Any]] = []
    while (batch := await batched.read_batch()) is not None:
        by_read += batch
    assert by_read == one_by_one and one_by_one[-1]["type"] == "message_stop"


async def test_a_failure_comes_after_the_events_before_it_and_the_input_is_closed() -> None:
    source = Reads([chunk("ok"), {"error": {"message": "overloaded", "code": 529}}, chunk("never")])
    stream = chat_stream_to_anthropic(source, model="m")
    batch = await stream.read_batch()
    assert batch is not None and types(batch)[-1] == "content_block_delta:ok" and source.closed == 1
    with pytest.raises(UpstreamError, match="overloaded"):
        await stream.read_batch()
    assert await stream.read_batch() is None


async def test_an_input_read_one_by_one_works_too_and_is_closed_when_the_stream_is() -> None:
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            yield chunk("a")
            yield chunk("b")
        finally:
            closed.append(True)

    gen = chunks()
    stream = chat_stream_to_anthropic(gen, model="m")
    assert (await anext(stream))["type"] == "message_start"
    await stream.aclose()
    assert closed == [True] and await stream.read_batch() is None


async def test_an_empty_answer_is_refused_and_the_input_closed() -> None:
    source = Reads()
    with pytest.raises(UpstreamError, match="without sending an answer"):
        await chat_stream_to_anthropic(source, model="m").read_batch()
    assert source.closed == 1


async def test_an_ollama_answer_is_whole_at_its_done_line_and_the_rest_is_not_read() -> None:
    from lynkr.convert.ollama import ollama_stream_to_anthropic

    def line(text: str, done: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"message": {"role": "assistant", "content": text}, "done": done}
        return out | ({"done_reason": "stop", "prompt_eval_count": 5, "eval_count": 2} if done else {})

    source = Reads([line("a")], [line("b", done=True), line("after done")], [line("never read")])
    stream = ollama_stream_to_anthropic(source, model="m")
    assert isinstance(stream, TranslatedStream)
    first = await stream.read_batch()
    assert first is not None and types(first)[-1] == "content_block_delta:a" and not stream.ended
    last = await stream.read_batch()
    assert last is not None and stream.ended and source.closed == 1 and source.reads == [[line("never read")]]
    assert types(last) == ["content_block_delta:b", "content_block_stop", "message_delta", "message_stop"]
    assert last[-2]["usage"]["output_tokens"] == 2
