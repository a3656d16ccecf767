"""Prompt cache (exact match) and semantic cache, through the real app: hits, misses, expiry, stream replay
consumed by the SDK stream helpers, what is never cached, and different questions never sharing an answer."""

from __future__ import annotations

import json
import time

import anthropic
import openai
import pytest

from lynkr.cache import store as cache_store
from lynkr.cache.keys import canonical_key, last_question, nondeterministic, tool_turn
from lynkr.cache.store import cosine, normalize
from lynkr.convert.anthropic_stream import fold_events
from lynkr.server import create_app
from lynkr.server.keys import OBSERVERS
from tests.conftest import claude_request, openai_settings
from tests.fakes import bow_embeddings
from tests.fakes.script import Answer, ToolCall
from tests.test_server_messages import assert_well_formed, read_events

ANSWER = Answer(text="Paris is the capital of France. " * 4, prompt_tokens=120, completion_tokens=33)


def counter():
    n = 0

    def respond(body):
        nonlocal n
        n += 1
        return Answer(text=f"answer {n}: " + "lorem ipsum " * 10, prompt_tokens=100 + n, completion_tokens=20 + n)

    return respond


@pytest.fixture
async def cached(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(counter())
    app = create_app(openai_settings(openai_upstream, prompt_cache_enabled=True, session_transcripts_enabled=True))
    records = []
    app[OBSERVERS].append(records.append)
    client = await aiohttp_client(app)
    return client, openai_upstream.script, records


# --- keys and policy (pure) ------------------------------------------------------------------------------


def test_canonical_key_ignores_order_stream_and_metadata_but_not_content():
    a = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stream": True}
    b = {"messages": [{"content": "x", "role": "user"}], "max_tokens": 5, "model": "m", "metadata": {"user_id": "u"}}
    assert canonical_key({"d": 1}, a) == canonical_key({"d": 1}, b)
    assert canonical_key({"d": 1}, a) != canonical_key({"d": 2}, a)
    for change in ({"max_tokens": 6}, {"model": "n"}, {"system": "s"}, {"tools": [{"name": "t"}]},
                   {"some_new_field": 1}, {"messages": [{"role": "user", "content": "y"}]}):
        assert canonical_key({}, {**a, **change}) != canonical_key({}, a)


def test_what_counts_as_nondeterministic_or_a_tool_turn():
    assert nondeterministic({}) is None and nondeterministic({"temperature": 0}) is None
    assert nondeterministic({"top_p": 1}) is None
    for body in ({"temperature": 0.7}, {"top_p": 0.9}, {"top_k": 5}, {"n": 2}, {"logprobs": True},
                 {"thinking": {"type": "enabled", "budget_tokens": 1024}}):
        assert nondeterministic(body), body
    assert not tool_turn({"messages": [{"role": "user", "content": "hi"}]})
    assert tool_turn({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]})


def test_last_question_splits_the_context_from_the_question():
    body = {"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                       {"role": "user", "content": [{"type": "text", "text": " Why? "}]}]}
    text, context = last_question(body)
    assert text == "Why?"
    assert context["messages"][:2] == body["messages"][:2] and context["messages"][2]["content"] == "<question>"
    assert last_question({"messages": [{"role": "assistant", "content": "x"}]}) is None
    assert last_question({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}) is None


def test_cosine_of_normalized_vectors():
    assert cosine(normalize([1, 0]), normalize([2, 0])) == pytest.approx(1.0)
    assert cosine(normalize([1, 0]), normalize([0, 3])) == 0
    assert cosine(normalize([1, 0]), normalize([1, 0, 0])) == 0  # another model: never similar
    assert normalize([0, 0]) == []


# --- exact cache: hits and misses ------------------------------------------------------------------------


async def test_identical_request_is_served_from_the_cache_with_cache_read_usage(cached):
    client, script, records = cached
    first = await client.post("/v1/messages", json=claude_request())
    assert first.status == 200 and first.headers["X-Lynkr-Cache"] == "miss"
    live = await first.json()
    second = await client.post("/v1/messages", json=claude_request())
    assert second.status == 200, await second.text()
    assert second.headers["X-Lynkr-Cache"] == "hit; exact"
    assert second.headers["X-Lynkr-Provider"] == "openai" and second.headers["X-Lynkr-Model"] == "gpt-4o"
    hit = await second.json()
    assert len(script.requests) == 1
    assert hit["content"] == live["content"] and hit["stop_reason"] == live["stop_reason"]
    assert hit["id"] != live["id"]
    assert hit["usage"] == {"input_tokens": 0, "output_tokens": 21, "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 101}
    assert [r.extra.get("cache") for r in records] == ["miss", "hit"]
    assert records[1].cache_read_tokens == 101
    # a different question is a miss
    other = await client.post("/v1/messages", json=claude_request(messages=[{"role": "user", "content": "Say bye"}]))
    assert other.headers["X-Lynkr-Cache"] == "miss" and len(script.requests) == 2


async def test_a_streamed_answer_is_stored_and_replayed_as_a_real_stream(cached):
    client, script, _ = cached
    live = await client.post("/v1/messages", json=claude_request(stream=True))
    live_events = await read_events(live)
    assert_well_formed(live_events)
    replay = await client.post("/v1/messages", json=claude_request(stream=True))
    assert replay.headers["X-Lynkr-Cache"] == "hit; exact"
    assert replay.headers["Content-Type"].startswith("text/event-stream")
    events = await read_events(replay)
    assert_well_formed(events)
    assert len(script.requests) == 1
    deltas = [d for _, d in events if d["type"] == "content_block_delta"]
    assert len(deltas) > 1  # text in pieces, as a live stream sends it
    a, b = fold_events(d for _, d in live_events), fold_events(d for _, d in events)
    assert a["content"] == b["content"] and b["usage"]["cache_read_input_tokens"] == 101
    # the stored answer serves the non-streamed request too
    plain = await (await client.post("/v1/messages", json=claude_request())).json()
    assert plain["content"] == a["content"] and len(script.requests) == 1


async def test_anthropic_sdk_stream_helper_consumes_a_replayed_stream(cached):
    client, script, _ = cached
    base = str(client.make_url("")).rstrip("/")
    async with anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0) as sdk:
        kwargs = {"model": "claude-opus-4-8", "max_tokens": 200,
                  "messages": [{"role": "user", "content": "What is the capital of France?"}]}
        live = await sdk.messages.create(**kwargs)  # stored from a non-streamed answer...
        async with sdk.messages.stream(**kwargs) as stream:  # ...and replayed as a stream
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
        with_raw = await sdk.messages.with_raw_response.create(**kwargs)
    assert len(script.requests) == 1
    assert len(pieces) > 1 and "".join(pieces) == live.content[0].text
    assert final.content[0].text == live.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.cache_read_input_tokens == live.usage.input_tokens and final.usage.input_tokens == 0
    assert with_raw.headers["x-lynkr-cache"] == "hit; exact"


async def test_entries_expire_after_the_ttl(cached, monkeypatch):
    client, script, _ = cached
    await client.post("/v1/messages", json=claude_request())
    assert (await client.post("/v1/messages", json=claude_request())).headers["X-Lynkr-Cache"] == "hit; exact"
    later = time.time() + 301  # PROMPT_CACHE_TTL_MS defaults to 300000
    monkeypatch.setattr(cache_store.time, "time", lambda: later)
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.headers["X-Lynkr-Cache"] == "miss"
    assert len(script.requests) == 2


async def test_cached_answers_survive_a_restart(openai_upstream, aiohttp_client, tmp_path):
    openai_upstream.script.respond_with(counter())
    settings = openai_settings(openai_upstream, prompt_cache_enabled=True, lynkr_data_dir=tmp_path)
    client = await aiohttp_client(create_app(settings))
    text = (await (await client.post("/v1/messages", json=claude_request())).json())["content"][0]["text"]
    await client.close()
    client = await aiohttp_client(create_app(settings))
    resp = await client.post("/v1/messages", json=claude_request())
    assert resp.headers["X-Lynkr-Cache"] == "hit; exact"
    assert (await resp.json())["content"][0]["text"] == text and len(openai_upstream.script.requests) == 1


async def test_max_entries_evicts_the_least_recently_used(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(counter())
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, prompt_cache_enabled=True,
                                                             prompt_cache_max_entries=2)))

    def ask(q):
        return client.post("/v1/messages", json=claude_request(messages=[{"role": "user", "content": q}]))

    for q in ("one", "two", "one", "three"):  # "two" is the least recently used when "three" arrives
        await ask(q)
    assert (await ask("one")).headers["X-Lynkr-Cache"] == "hit; exact"
    assert (await ask("three")).headers["X-Lynkr-Cache"] == "hit; exact"
    assert (await ask("two")).headers["X-Lynkr-Cache"] == "miss"


# --- never cached --------------------------------------------------------------------------------------


@pytest.mark.parametrize("over", [
    {"temperature": 0.8}, {"top_p": 0.5}, {"top_k": 40},
    {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 4096},
    {"messages": [{"role": "user", "content": "run it"},
                  {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash",
                                                     "input": {"command": "ls"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.txt"}]}]},
])
async def test_non_deterministic_sampling_and_tool_turns_are_never_cached(cached, over):
    client, script, records = cached
    for _ in range(2):
        resp = await client.post("/v1/messages", json=claude_request(**over))
        assert resp.status == 200, await resp.text()
        assert "X-Lynkr-Cache" not in resp.headers
    assert len(script.requests) == 2
    assert all("cache" not in r.extra for r in records)


async def test_an_answer_that_calls_a_tool_is_not_stored(cached):
    client, script, _ = cached
    script.respond_with(lambda body: Answer(text="", tool_calls=[ToolCall("Bash", json.dumps({"command": "ls"}))]))
    for _ in range(2):
        assert (await client.post("/v1/messages", json=claude_request())).headers["X-Lynkr-Cache"] == "miss"
    assert len(script.requests) == 2


async def test_tool_turns_are_cached_when_configured(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(
        lambda body: Answer(text="", tool_calls=[ToolCall("Bash", json.dumps({"command": "ls"}), id="c1")]))
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, prompt_cache_enabled=True,
                                                             prompt_cache_tool_turns=True)))
    first = await (await client.post("/v1/messages", json=claude_request())).json()
    replay = await client.post("/v1/messages", json=claude_request(stream=True))
    message = fold_events(d for _, d in await read_events(replay))
    assert message["content"] == first["content"] and message["stop_reason"] == "tool_use"
    assert len(openai_upstream.script.requests) == 1


async def test_keys_never_share_answers(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(counter())
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, prompt_cache_enabled=True,
                                                             lynkr_api_keys="a=sk-aaaaaaaaaa,b=sk-bbbbbbbbbb")))
    for key in ("sk-aaaaaaaaaa", "sk-bbbbbbbbbb"):
        resp = await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": key})
        assert resp.headers["X-Lynkr-Cache"] == "miss"
    assert len(openai_upstream.script.requests) == 2


async def test_failures_are_not_cached(cached):
    client, script, _ = cached
    from tests.fakes.script import Failure

    script.enqueue(Failure(500, {"error": {"message": "boom"}}))
    assert (await client.post("/v1/messages", json=claude_request())).status >= 500
    assert (await client.post("/v1/messages", json=claude_request())).headers["X-Lynkr-Cache"] == "miss"


# --- Chat Completions ---------------------------------------------------------------------------------


async def test_chat_completions_hit_and_stream_replay_through_the_openai_sdk(cached):
    client, script, _ = cached
    base = str(client.make_url("")).rstrip("/") + "/v1"
    async with openai.AsyncOpenAI(base_url=base, api_key="x", max_retries=0) as sdk:
        kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "What is 2+2?"}]}
        live = await sdk.chat.completions.create(**kwargs)
        again = await sdk.chat.completions.create(**kwargs)
        stream = await sdk.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
    assert len(script.requests) == 1
    assert again.choices[0].message.content == live.choices[0].message.content
    assert again.usage.prompt_tokens_details.cached_tokens == again.usage.prompt_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == live.choices[0].message.content
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens > 0


async def test_dialects_do_not_share_entries(cached):
    client, script, _ = cached
    await client.post("/v1/messages", json=claude_request(model="gpt-4o", messages=[{"role": "user", "content": "q"}]))
    resp = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "max_tokens": 1024,
                                                            "messages": [{"role": "user", "content": "q"}]})
    assert resp.headers["X-Lynkr-Cache"] == "miss" and len(script.requests) == 2


# --- semantic cache -------------------------------------------------------------------------------------


@pytest.fixture
async def semantic(openai_upstream, aiohttp_client, aiohttp_server):
    embedder = await aiohttp_server(bow_embeddings.make_app())
    openai_upstream.script.respond_with(lambda body: Answer(
        text="ANSWER TO: " + body["messages"][-1]["content"], prompt_tokens=50, completion_tokens=10))
    settings = openai_settings(openai_upstream, semantic_cache_enabled=True, semantic_cache_threshold=0.8,
                               embeddings_provider="llamacpp",
                               llamacpp_embeddings_endpoint=str(embedder.make_url("/v1/embeddings")))
    client = await aiohttp_client(create_app(settings))
    return client, openai_upstream.script, embedder.app[bow_embeddings.CALLS]


def ask(client, question, **over):
    return client.post("/v1/messages", json=claude_request(messages=[{"role": "user", "content": question}], **over))


async def test_paraphrases_share_an_answer(semantic):
    client, script, calls = semantic
    first = await (await ask(client, "What is the capital of France?")).json()
    for paraphrase in ("what's the capital of france", "Tell me the capital city of France, please",
                       "France: capital?"):
        resp = await ask(client, paraphrase)
        assert resp.headers["X-Lynkr-Cache"] == "hit; semantic", paraphrase
        assert float(resp.headers["X-Lynkr-Cache-Similarity"]) >= 0.8
        assert (await resp.json())["content"] == first["content"]
    assert len(script.requests) == 1
    assert calls[0] == "What is the capital of France?"  # real embeddings of the question were asked for


QUESTIONS = [
    "What is the capital of France?", "What is the capital of Germany?", "What is the population of France?",
    "How do I sort a list in Python?", "How do I sort a list in Rust?", "How do I reverse a list in Python?",
    "How do I sort a dict in Python?", "Explain list comprehensions in Python", "Explain closures in Python",
    "What does git rebase do?", "What does git merge do?", "What does git revert do?",
    "Write a haiku about the sea", "Write a haiku about the mountains", "Write a limerick about the sea",
]


async def test_different_questions_never_share_an_answer(semantic):
    client, script, _ = semantic
    for q in QUESTIONS:
        resp = await ask(client, q)
        assert resp.headers["X-Lynkr-Cache"] == "miss", q
        assert (await resp.json())["content"][0]["text"] == "ANSWER TO: " + q
    # and asking them all again, each gets its own answer back
    for q in QUESTIONS:
        resp = await ask(client, q)
        assert (await resp.json())["content"][0]["text"] == "ANSWER TO: " + q, q
    assert len(script.requests) == len(QUESTIONS)


async def test_the_same_question_in_another_conversation_is_not_shared(semantic):
    client, script, _ = semantic
    await ask(client, "What is the capital of France?")
    for over in ({"system": "Answer in French."}, {"max_tokens": 77}, {"model": "claude-opus-4-8"}):
        resp = await ask(client, "What's the capital of France?", **over)
        assert resp.headers["X-Lynkr-Cache"] == "miss", over
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
               {"role": "user", "content": "What is the capital of France?"}]
    resp = await client.post("/v1/messages", json=claude_request(messages=earlier))
    assert resp.headers["X-Lynkr-Cache"] == "miss"
    assert len(script.requests) == 5


async def test_default_threshold_only_matches_near_identical_questions(openai_upstream, aiohttp_client,
                                                                       aiohttp_server):
    embedder = await aiohttp_server(bow_embeddings.make_app())
    openai_upstream.script.respond_with(counter())
    client = await aiohttp_client(create_app(openai_settings(
        openai_upstream, semantic_cache_enabled=True, embeddings_provider="llamacpp",
        llamacpp_embeddings_endpoint=str(embedder.make_url("/v1/embeddings")))))
    await ask(client, "What is the capital of France?")
    assert (await ask(client, "what IS the capital of france")).headers["X-Lynkr-Cache"] == "hit; semantic"
    assert (await ask(client, "the capital city of France")).headers["X-Lynkr-Cache"] == "miss"  # 0.82 < 0.95


async def test_a_failing_embeddings_backend_makes_a_miss_not_an_error(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(counter())
    client = await aiohttp_client(create_app(openai_settings(
        openai_upstream, semantic_cache_enabled=True, embeddings_provider="llamacpp",
        llamacpp_embeddings_endpoint="http://127.0.0.1:9/v1/embeddings")))
    for _ in range(2):
        resp = await ask(client, "What is the capital of France?")
        assert resp.status == 200 and resp.headers["X-Lynkr-Cache"] == "miss"


async def test_semantic_cache_without_an_embeddings_backend_is_off(ollama_upstream, aiohttp_client):
    from tests.conftest import make_settings

    ollama_upstream.script.respond_with(counter())
    settings = make_settings(model_provider="bedrock", aws_bedrock_api_key="k", semantic_cache_enabled=True,
                             aws_bedrock_endpoint=ollama_upstream.url)
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/v1/admin/cache")
    assert (await resp.json())["semantic_cache"] is False


async def test_a_passed_through_chat_stream_is_stored_and_recorded(cached):
    client, script, _ = cached
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Count to three"}]}
    live = await client.post("/v1/chat/completions", json=body, headers={"x-session-id": "chat-s"})
    assert live.headers["X-Lynkr-Cache"] == "miss"
    live_text = await live.text()
    assert "[DONE]" in live_text
    replay = await client.post("/v1/chat/completions", json=body)
    assert replay.headers["X-Lynkr-Cache"] == "hit; exact"

    def text_of(raw: str) -> str:
        out = []
        for line in raw.splitlines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices") or ():
                    out.append(choice["delta"].get("content") or "")
        return "".join(out)

    assert text_of(await replay.text()) == text_of(live_text) != ""
    assert len(script.requests) == 1
    turns = (await (await client.get("/v1/sessions/chat-s")).json())["turns"]
    assert turns[0]["stream"] is True and turns[0]["response"]["content"][0]["text"] == text_of(live_text)
