"""next_batch: everything an async generator gives without waiting, in one go; nothing lost or stuck."""

from __future__ import annotations

import asyncio

import pytest

from lynkr.batched import Batched
from lynkr.resilience.shedding import LoadShedder
from lynkr.server.batching import next_batch


def make(log: list[str], fail_after: int | None = None):
    async def gen():
        try:
            for i in range(3):
                yield i
            await asyncio.sleep(0.001)  # a real wait (I/O)
            yield 3
            yield 4
            if fail_after is not None:
                raise ValueError("backend broke")
            await asyncio.sleep(0.001)
            yield 5
        finally:
            log.append("closed")

    return gen()


async def test_runs_are_taken_whole_and_waits_are_awaited():
    log: list[str] = []
    events = make(log)
    out: list[int] = []
    pending = next_batch(events, out)
    assert out == [0, 1, 2] and pending is not None
    out = [await pending]
    pending = next_batch(events, out)
    assert out == [3, 4] and pending is not None
    assert await pending == 5
    assert next_batch(events, []) is None
    assert log == ["closed"]


async def test_a_failure_after_items_is_raised_only_after_they_are_taken():
    events = make([], fail_after=1)
    pending = next_batch(events, [])  # 0, 1, 2 then the wait
    assert pending is not None
    out: list[int] = [await pending]  # 3
    failing = next_batch(events, out)
    assert out == [3, 4] and failing is not None
    with pytest.raises(ValueError, match="backend broke"):
        await failing


async def test_abandoned_and_cancelled_steps_leave_the_generator_closable():
    log: list[str] = []
    events = make(log)
    pending = next_batch(events, [])
    assert pending is not None
    pending.close()
    await events.aclose()
    assert log == ["closed"]

    log.clear()
    events = make(log)
    pending = next_batch(events, [])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pending, 0.0001)  # cancellation reaches the generator
    await events.aclose()
    assert log == ["closed"]


async def test_limit_yields_to_the_loop():
    async def endless():
        i = 0
        while True:
            yield i
            i += 1

    events = endless()
    out: list[int] = []
    pending = next_batch(events, out, limit=10)
    assert out == list(range(10))
    assert pending is not None and await pending == 10
    await events.aclose()


async def test_a_generator_that_ends_after_a_wait_ends_the_pending_step():
    async def gen():
        yield 1
        await asyncio.sleep(0.001)  # e.g. the backend's end of stream, in a read of its own

    out: list[int] = []
    pending = next_batch(gen(), out)
    assert out == [1] and pending is not None
    with pytest.raises(StopAsyncIteration):
        await pending


async def test_the_writer_ends_a_stream_that_ends_after_a_wait_cleanly(aiohttp_client):
    """The last event, then a wait, then the end: the client gets the events and nothing else (lynkr used
    to take the end for a failure, log "stream failed" and append an error event to a finished stream)."""
    from aiohttp import web

    from lynkr.server.keys import SHEDDER
    from lynkr.server.streaming import stream_events

    async def events():
        yield b"data: 2\n\n"
        yield b"data: [DONE]\n\n"
        await asyncio.sleep(0.01)

    async def handler(request: web.Request) -> web.StreamResponse:
        rest = events()
        return await stream_events(request, b"data: 1\n\n", rest, encode=lambda b: b,
                                   encode_error=lambda err: b"data: ERROR\n\n", ping=None, ping_interval=15,
                                   headers={})

    app = web.Application()
    app[SHEDDER] = LoadShedder()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert await resp.read() == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"


class Outcome:
    """What the stream writer reports to the dispatcher (lynkr.dispatch.StreamOutcome), written down."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.seen: list[bytes] = []

    def observe(self, items: list[bytes]) -> None:
        self.seen.extend(items)

    def ended(self) -> None:
        self.calls.append("ended")

    def failed(self, err: object) -> None:
        self.calls.append("failed")

    def stalled(self) -> None:
        self.calls.append("stalled")

    def release(self) -> None:  # always last: the writer is done
        self.calls.append("release")


async def _write_stream(aiohttp_client, events, *, idle_timeout: float = 5.0, block_writes_after: int | None = None,
                        first: bytes | None = b"data: 1\n\n"):
    """Run the stream writer in a real app; returns (client bytes or None, the outcome's record). ``first``
    None: the writer's first item is taken from ``events()`` (as the dispatcher does)."""
    from aiohttp import web

    from lynkr.server.keys import SHEDDER
    from lynkr.server.streaming import stream_events

    outcome = Outcome()

    async def handler(request: web.Request) -> web.StreamResponse:
        stream = events()
        head = first if first is not None else await anext(stream)
        return await stream_events(request, head, stream, encode=lambda b: b,
                                   encode_error=lambda err: b"data: ERROR\n\n", ping=None, ping_interval=15,
                                   headers={}, idle_timeout=idle_timeout, outcome=outcome)  # type: ignore[arg-type]

    app = web.Application()
    app[SHEDDER] = LoadShedder()
    app.router.add_get("/", handler)
    if block_writes_after is not None:  # a client that stops reading for a while: one write takes 0.6 s
        writes = 0
        original = web.StreamResponse.write

        async def write(self: web.StreamResponse, data: bytes) -> None:
            nonlocal writes
            writes += 1
            if writes == block_writes_after + 1:
                await asyncio.sleep(0.6)
            await original(self, data)

        app.on_startup.append(lambda _: _patch(write))
    client = await aiohttp_client(app)
    resp = await client.get("/")
    return await resp.read(), outcome


_patched: list[object] = []


async def _patch(write: object) -> None:
    from aiohttp import web

    _patched.append(web.StreamResponse.write)
    web.StreamResponse.write = write  # type: ignore[method-assign,assignment]


@pytest.fixture(autouse=True)
def _unpatch():
    yield
    from aiohttp import web

    while _patched:
        web.StreamResponse.write = _patched.pop()  # type: ignore[method-assign]


async def test_the_writer_reports_a_clean_end_once_and_observes_every_item(aiohttp_client):
    async def events():
        yield b"data: 2\n\n"
        await asyncio.sleep(0.01)
        yield b"data: 3\n\n"

    body, outcome = await _write_stream(aiohttp_client, events)
    assert body == b"data: 1\n\ndata: 2\n\ndata: 3\n\n"
    assert outcome.calls == ["ended", "release"]
    assert outcome.seen == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]


async def test_a_streams_headers_go_out_with_its_first_events(aiohttp_client, monkeypatch):
    """One system call, not two: the response headers are not written alone before the first events."""
    from aiohttp.http_writer import StreamWriter

    sent: list[bytes] = []
    write, writelines = StreamWriter._write, StreamWriter._writelines
    monkeypatch.setattr(StreamWriter, "_write", lambda self, chunk: (sent.append(bytes(chunk)), write(self, chunk)))
    monkeypatch.setattr(StreamWriter, "_writelines", lambda self, chunks: (
        sent.append(b"".join(chunks)), writelines(self, chunks)))

    async def events():
        await asyncio.sleep(0.01)
        yield b"data: 2\n\n"

    body, _ = await _write_stream(aiohttp_client, events)
    assert body == b"data: 1\n\ndata: 2\n\n"
    first = next(chunk for chunk in sent if chunk.startswith(b"HTTP/1.1 200"))
    assert first.endswith(b"\r\n\r\n9\r\ndata: 1\n\n\r\n")  # the headers, then the first event's chunk


async def test_a_silent_backend_is_its_stall(aiohttp_client):
    async def events():
        yield b"data: 2\n\n"
        await asyncio.sleep(10)
        yield b"data: 3\n\n"

    body, outcome = await _write_stream(aiohttp_client, events, idle_timeout=0.2)
    assert body.endswith(b"data: ERROR\n\n")
    assert outcome.calls == ["stalled", "release"]


async def test_a_client_that_stops_reading_is_not_the_backends_stall(aiohttp_client):
    """The idle timeout also ends a stream whose client stopped taking writes; the backend did nothing wrong,
    so its breaker hears no stall (it heard the stream's end: the backend's stream had ended)."""
    async def events():
        yield b"data: 2\n\n"
        await asyncio.sleep(0.01)
        yield b"data: 3\n\n"

    body, outcome = await _write_stream(aiohttp_client, events, idle_timeout=0.2, block_writes_after=1)
    assert body.endswith(b"data: ERROR\n\n")  # the writer still gives up on the stuck client
    assert outcome.calls == ["ended", "release"]


class Frames:
    """A translation that passes bytes through, ending with one closing frame (lynkr.convert.translated)."""

    complete = False  # its input's end says when it is whole

    def feed(self, item: bytes) -> list[bytes]:
        return [item]

    def end(self) -> list[bytes]:
        return [b"data: end\n\n"]


class SlowReads(Batched[bytes]):
    """An input read in batches (as SSEJson), each read after ``pause`` seconds; ``ended`` with the last."""

    def __init__(self, *reads: list[bytes], pause: float = 0.0) -> None:
        super().__init__()
        self.reads, self.pause = list(reads), pause

    async def read_batch(self) -> list[bytes] | None:
        if not self.reads:
            self.ended = True
            return None
        if self.pause:
            await asyncio.sleep(self.pause)
        batch = self.reads.pop(0)
        self.ended = not self.reads
        return batch

    async def __anext__(self) -> bytes:
        raise AssertionError("read in batches")

    async def aclose(self) -> None:
        pass


async def test_a_translated_stream_goes_out_a_read_at_a_time_and_reports_its_end(aiohttp_client):
    """A stream that hands out a read's worth of events (TranslatedStream) is written one batch per read,
    its closing events with the last read's, and its end is reported once, before the last write."""
    from lynkr.convert.translated import TranslatedStream

    reads = ([b"data: 1\n\n", b"data: 2\n\n"], [b"data: 3\n\n"], [b"data: 4\n\n", b"data: 5\n\n"])
    body, outcome = await _write_stream(
        aiohttp_client, lambda: TranslatedStream(SlowReads(*reads, pause=0.01), Frames()), first=None)
    assert body == b"data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: 5\n\ndata: end\n\n"
    assert outcome.calls == ["ended", "release"]
    assert b"".join(outcome.seen) == body  # every item observed once


async def test_a_translated_stream_whose_backend_goes_silent_is_its_stall(aiohttp_client):
    from lynkr.convert.translated import TranslatedStream

    body, outcome = await _write_stream(aiohttp_client, lambda: TranslatedStream(_SilentAfterFirst(), Frames()),
                                        idle_timeout=0.2, first=None)
    assert body == b"data: 1\n\ndata: ERROR\n\n"
    assert outcome.calls == ["stalled", "release"]


class _SilentAfterFirst(SlowReads):
    def __init__(self) -> None:
        super().__init__([b"data: 1\n\n"], [b"data: 2\n\n"])

    async def read_batch(self) -> list[bytes] | None:
        if len(self.reads) == 1:
            await asyncio.sleep(10)
        return await super().read_batch()


async def test_stepped_gives_a_generators_runs_and_knows_its_end_with_the_last() -> None:
    """Any async generator as a Batched stream: each batch is what it gives without waiting; ``ended`` is set
    with the last batch, or after a wait that found the end (then read_batch gives None)."""
    from lynkr.server.batching import Stepped

    async def events():
        yield 1
        yield 2
        await asyncio.sleep(0)
        yield 3
        await asyncio.sleep(0)
        yield 4
        yield 5

    stream = Stepped(events())
    assert stream.ready() == [1, 2] and not stream.ended
    assert await stream.read_batch() == [3] and not stream.ended
    assert await stream.read_batch() == [4, 5] and stream.ended
    assert await stream.read_batch() is None

    async def ends_after_a_wait():
        yield 1
        await asyncio.sleep(0)

    stream = Stepped(ends_after_a_wait())
    assert stream.ready() == [1] and not stream.ended
    assert await stream.read_batch() is None and stream.ended
    await stream.aclose()
