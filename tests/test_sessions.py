"""Session transcripts: every request and answer of a session, in SQLite, retention, GET /v1/sessions/{id}."""

from __future__ import annotations

import sqlite3
import time

import pytest

from lynkr.server import create_app
from lynkr.server.routes.sessions import SESSIONS
from tests.conftest import claude_request, openai_settings
from tests.fakes.script import Answer
from tests.test_server_messages import read_events

ALICE, BOB, ADMIN = "sk-alice-000000", "sk-bob-11111111", "sk-admin-222222"


@pytest.fixture
async def lynkr(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(lambda body: Answer(text="reply", prompt_tokens=9, completion_tokens=4))
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, session_transcripts_enabled=True)))
    return client


def turn(history, text):
    return [*history, {"role": "user", "content": text}]


async def test_each_turn_of_a_claude_code_session_is_recorded_once(lynkr):
    h = {"X-Claude-Code-Session-Id": "sess-1"}
    msgs = turn([], "first")
    await lynkr.post("/v1/messages", json=claude_request(messages=msgs), headers=h)
    msgs = turn([*msgs, {"role": "assistant", "content": "reply"}], "second")
    resp = await lynkr.post("/v1/messages", json=claude_request(messages=msgs, stream=True), headers=h)
    await read_events(resp)
    await lynkr.post("/v1/messages", json=claude_request(), headers={"x-session-id": "other"})
    await lynkr.post("/v1/messages", json=claude_request())  # no session: not recorded
    got = await (await lynkr.get("/v1/sessions/sess-1")).json()
    assert got["id"] == "sess-1" and len(got["turns"]) == 2
    one, two = got["turns"]
    assert one["request"]["messages"] == [{"role": "user", "content": "first"}] and one["messages_from"] == 0
    assert one["response"]["content"] == [{"type": "text", "text": "reply"}] and one["stream"] is False
    assert one["usage"] == {"input_tokens": 9, "output_tokens": 4} and one["provider"] == "openai"
    # the second turn stores only what was new, and its streamed answer folded into a message
    assert two["messages_from"] == 1 and [m["content"] for m in two["request"]["messages"]] == ["reply", "second"]
    assert two["stream"] is True and two["response"]["content"][0]["text"] == "reply"
    assert len((await (await lynkr.get("/v1/sessions/other")).json())["turns"]) == 1
    assert (await lynkr.get("/v1/sessions/none-such")).status == 404


async def test_openai_dialects_and_errors_are_recorded(lynkr, openai_upstream):
    h = {"x-session-id": "s2"}
    await lynkr.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "a"}]},
                     headers=h)
    await read_events(await lynkr.post("/v1/responses", json={"model": "gpt-4o", "input": "b", "stream": True},
                                       headers=h))
    bad = await lynkr.post("/v1/messages", json=claude_request(max_tokens=0), headers=h)
    assert bad.status == 400
    turns = (await (await lynkr.get("/v1/sessions/s2")).json())["turns"]
    assert [t["path"] for t in turns] == ["/v1/chat/completions", "/v1/responses", "/v1/messages"]
    assert turns[0]["response"]["choices"][0]["message"]["content"] == "reply"
    assert turns[1]["response"]["status"] == "completed" and turns[1]["stream"] is True
    assert turns[2]["status"] == 400 and turns[2]["response"]["error"]["type"] == "invalid_request_error"


async def test_client_keys_read_only_their_own_turns(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(lambda body: Answer(text="reply"))
    client = await aiohttp_client(create_app(openai_settings(
        openai_upstream, lynkr_api_keys=f"alice={ALICE},bob={BOB}", lynkr_admin_key=ADMIN,
        session_transcripts_enabled=True)))
    for key in (ALICE, BOB):
        await client.post("/v1/messages", json=claude_request(), headers={"x-api-key": key, "x-session-id": "shared"})
    mine = await (await client.get("/v1/sessions/shared", headers={"x-api-key": ALICE})).json()
    assert [t["client_key"] for t in mine["turns"]] == ["alice"]
    everything = await (await client.get("/v1/sessions/shared", headers={"x-api-key": ADMIN})).json()
    assert [t["client_key"] for t in everything["turns"]] == ["alice", "bob"]
    assert (await client.get("/v1/sessions/shared")).status == 401


async def test_retention_sweep_and_a_separate_session_db(openai_upstream, aiohttp_client, tmp_path):
    openai_upstream.script.respond_with(lambda body: Answer(text="reply"))
    path = tmp_path / "sessions.db"
    app = create_app(openai_settings(openai_upstream, session_db_path=path, session_retention_days=1,
                                     session_transcripts_enabled=True))
    client = await aiohttp_client(app)
    await client.post("/v1/messages", json=claude_request(), headers={"x-session-id": "old"})
    store = app[SESSIONS]
    await store.db.flush()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM session_turns").fetchone()[0] == 1
    await store.sweep(now=time.time() + 2 * 86_400)
    assert (await client.get("/v1/sessions/old")).status == 404


async def test_transcripts_can_be_switched_off(openai_upstream, aiohttp_client):
    openai_upstream.script.respond_with(lambda body: Answer(text="reply"))
    client = await aiohttp_client(create_app(openai_settings(openai_upstream, session_transcripts_enabled=False)))
    assert (await client.post("/v1/messages", json=claude_request(), headers={"x-session-id": "s"})).status == 200
    resp = await client.get("/v1/sessions/s")
    assert resp.status == 404 and "SESSION_TRANSCRIPTS_ENABLED" in (await resp.json())["error"]["message"]


async def test_a_request_refused_before_any_work_is_not_a_turn(openai_upstream, aiohttp_client):
    """Admission (draining, load shedding) runs before transcripts, as authentication does: a refusal that
    reached no backend leaves no turn."""
    from lynkr.server.keys import STATE

    openai_upstream.script.respond_with(lambda body: Answer(text="reply"))
    app = create_app(openai_settings(openai_upstream, session_transcripts_enabled=True))
    client = await aiohttp_client(app)
    h = {"x-session-id": "s3"}
    app[STATE]["draining"] = True
    refused = await client.post("/v1/messages", json=claude_request(), headers=h)
    assert refused.status == 503 and refused.headers["retry-after"]
    app[STATE]["draining"] = False
    assert (await client.get("/v1/sessions/s3")).status == 404
    assert (await client.post("/v1/messages", json=claude_request(), headers=h)).status == 200
    assert len((await (await client.get("/v1/sessions/s3")).json())["turns"]) == 1
