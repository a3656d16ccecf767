from tests.conftest import claude_request
from tests.fakes.script import Answer, ToolCall


async def test_smoke_stream(lynkr_openai):
    client, script = lynkr_openai
    script.enqueue(Answer(text="Hello there", tool_calls=[ToolCall("Write", '{"file_path": "a", "content": "hi"}')]))
    resp = await client.post("/v1/messages?beta=true", json=claude_request(stream=True))
    assert resp.status == 200, await resp.text()
    print(await resp.text())


async def test_smoke_json(lynkr_ollama):
    client, script = lynkr_ollama
    script.enqueue(Answer(text="Hello there", reasoning="hmm"))
    resp = await client.post("/v1/messages", json=claude_request())
    print(await resp.json())
    assert resp.status == 200
