"""POST /v1/embeddings through the real app against fake Ollama and OpenAI-compatible backends, and the
official openai SDK (base64 by default, float on request) over real HTTP."""

from __future__ import annotations

import base64
import struct
from typing import Any

import openai
import pytest

from lynkr.convert.embeddings import normalize_openai_embeddings, pack_base64, unpack_base64
from lynkr.errors import UpstreamBadResponse
from lynkr.server import create_app
from tests.conftest import SECRET, make_settings, ollama_settings, openai_settings
from tests.fakes import openai_server
from tests.fakes.openai_server import EXTRAS, fake_vector
from tests.fakes.script import Failure, Script


def decode(b64: str) -> list[float]:
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def upstream_bodies(upstream: Any, path: str) -> list[dict[str, Any]]:
    return [body for p, body in upstream.server.app[EXTRAS].requests if p == path]


# --- Ollama ------------------------------------------------------------------------------------------


async def test_ollama_batches_inputs_in_one_call(lynkr_ollama, ollama_upstream):
    client, _ = lynkr_ollama
    resp = await client.post("/v1/embeddings", json={"model": "text-embedding-3-small",
                                                     "input": ["hello world", "a b c"]})
    assert resp.status == 200
    assert resp.headers["X-Lynkr-Provider"] == "ollama"
    assert resp.headers["X-Lynkr-Model"] == "nomic-embed-text"
    body = await resp.json()
    assert body == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": fake_vector("hello world")},
                 {"object": "embedding", "index": 1, "embedding": fake_vector("a b c")}],
        "model": "nomic-embed-text",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},  # Ollama's prompt_eval_count
    }
    assert upstream_bodies(ollama_upstream, "/api/embed") == [
        {"model": "nomic-embed-text", "input": ["hello world", "a b c"]}]


async def test_ollama_base64_dimensions_and_keep_alive(ollama_upstream, aiohttp_client):
    settings = ollama_settings(ollama_upstream, ollama_keep_alive="10m", ollama_embeddings_model="mxbai-embed-large")
    client = await aiohttp_client(create_app(settings))
    resp = await client.post("/v1/embeddings", json={"input": "hello", "encoding_format": "base64",
                                                     "dimensions": 2})
    body = await resp.json()
    (item,) = body["data"]
    assert isinstance(item["embedding"], str)
    assert decode(item["embedding"]) == fake_vector("hello")[:2]
    assert body["model"] == "mxbai-embed-large"
    assert upstream_bodies(ollama_upstream, "/api/embed") == [
        {"model": "mxbai-embed-large", "input": ["hello"], "dimensions": 2, "keep_alive": "10m"}]


async def test_ollama_model_names_other_than_openai_ones_pass_through(lynkr_ollama, ollama_upstream):
    client, _ = lynkr_ollama
    resp = await client.post("/v1/embeddings", json={"model": "bge-m3", "input": "x"})
    assert resp.headers["X-Lynkr-Model"] == "bge-m3"
    assert upstream_bodies(ollama_upstream, "/api/embed")[0]["model"] == "bge-m3"


async def test_ollama_rejects_token_arrays_clearly(lynkr_ollama, ollama_upstream):
    client, _ = lynkr_ollama
    for tokens in ([1, 2, 3], [[1, 2], [3]]):
        resp = await client.post("/v1/embeddings", json={"model": "m", "input": tokens})
        assert resp.status == 400
        err = (await resp.json())["error"]
        assert err["param"] == "input" and err["type"] == "invalid_request_error"
        assert "takes text only, not token-id arrays" in err["message"]
    assert upstream_bodies(ollama_upstream, "/api/embed") == []


async def test_separate_ollama_for_embeddings_in_lynkr_url_form(ollama_upstream, openai_upstream, aiohttp_client):
    settings = openai_settings(openai_upstream, embeddings_provider="ollama",
                               ollama_embeddings_endpoint=ollama_upstream.url + "/api/embeddings")
    client = await aiohttp_client(create_app(settings))
    resp = await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hi"})
    assert resp.status == 200 and resp.headers["X-Lynkr-Provider"] == "ollama"
    assert len(upstream_bodies(ollama_upstream, "/api/embed")) == 1
    assert upstream_bodies(openai_upstream, "/v1/embeddings") == []


async def test_ollama_upstream_error_is_openai_shaped(lynkr_ollama, ollama_upstream):
    client, _ = lynkr_ollama
    ollama_upstream.server.app[EXTRAS].fail["/api/embed"] = Failure(
        404, {"error": 'model "nomic-embed-text" not found, try pulling it first'})
    resp = await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    assert resp.status == 404
    err = (await resp.json())["error"]
    assert err["code"] == "upstream_404" and "try pulling it first" in err["message"]


# --- OpenAI-compatible ---------------------------------------------------------------------------


async def test_openai_passthrough_keeps_fields_and_openai_names(lynkr_openai, openai_upstream):
    client, _ = lynkr_openai
    req = {"model": "text-embedding-3-large", "input": ["one", "two"], "encoding_format": "base64",
           "dimensions": 3, "user": "u-1"}
    resp = await client.post("/v1/embeddings", json=req)
    body = await resp.json()
    assert resp.headers["X-Lynkr-Model"] == "text-embedding-3-large"
    assert [decode(d["embedding"]) for d in body["data"]] == [fake_vector("one")[:3], fake_vector("two")[:3]]
    assert body["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
    (sent,) = upstream_bodies(openai_upstream, "/v1/embeddings")
    assert sent == req
    assert openai_upstream.script.headers == []  # the chat route was not used
    # token arrays pass to a backend that accepts them
    resp = await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": [[5, 6], [7]]})
    assert [d["embedding"] for d in (await resp.json())["data"]] == [fake_vector([5, 6]), fake_vector([7])]


async def test_openai_default_model_when_none_is_sent(lynkr_openai, openai_upstream):
    client, _ = lynkr_openai
    await client.post("/v1/embeddings", json={"input": "x"})
    assert upstream_bodies(openai_upstream, "/v1/embeddings")[0]["model"] == "text-embedding-3-small"


async def test_openrouter_maps_openai_names_to_its_embeddings_model(aiohttp_server, aiohttp_client):
    router = await aiohttp_server(openai_server.make_app(Script()))
    settings = make_settings(model_provider="openrouter", openrouter_api_key="sk-or-1",
                             openrouter_endpoint=str(router.make_url("/api/v1/chat/completions")))
    client = await aiohttp_client(create_app(settings))
    resp = await client.post("/v1/embeddings", json={"model": "text-embedding-ada-002", "input": "x"})
    assert resp.headers["X-Lynkr-Model"] == "openai/text-embedding-3-small"
    assert [p for p, _ in router.app[EXTRAS].requests] == ["/api/v1/embeddings"]


async def test_llamacpp_embeddings_endpoint_and_no_model_name(openai_upstream, aiohttp_client):
    settings = make_settings(model_provider="llamacpp", llamacpp_endpoint="http://127.0.0.1:9",
                             llamacpp_embeddings_endpoint=openai_upstream.url + "/v1/embeddings")
    client = await aiohttp_client(create_app(settings))
    resp = await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "abc"})
    assert resp.status == 200
    (sent,) = upstream_bodies(openai_upstream, "/v1/embeddings")
    assert "model" not in sent  # llama-server embeds with the model it loaded


# --- choosing the backend ------------------------------------------------------------------------


async def test_auto_prefers_the_chat_backend_then_openrouter(openai_upstream, aiohttp_server, aiohttp_client):
    router = await aiohttp_server(openai_server.make_app(Script()))
    both = {"openai_api_key": SECRET, "openai_endpoint": openai_upstream.url + "/v1/chat/completions",
            "openrouter_api_key": "sk-or", "openrouter_endpoint": str(router.make_url("/api/v1"))}
    client = await aiohttp_client(create_app(make_settings(model_provider="openai", **both)))
    resp = await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    assert resp.headers["X-Lynkr-Provider"] == "openai"
    client = await aiohttp_client(create_app(make_settings(model_provider="lmstudio", **both)))
    resp = await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    assert resp.headers["X-Lynkr-Provider"] == "openrouter"


async def test_no_embeddings_backend_is_501_and_not_retried(openai_upstream, aiohttp_server):
    settings = make_settings(model_provider="azure-openai", azure_openai_endpoint=openai_upstream.url,
                             azure_openai_api_key=SECRET)
    server = await aiohttp_server(create_app(settings))
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="x", max_retries=2) as client:
        with pytest.raises(openai.InternalServerError) as info:
            await client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert info.value.status_code == 501
    assert info.value.response.headers["x-should-retry"] == "false"
    err = info.value.body
    assert isinstance(err, dict) and err["type"] == "not_configured"
    assert "MODEL_PROVIDER=azure-openai cannot create embeddings" in err["message"]
    assert "EMBEDDINGS_PROVIDER" in err["message"]


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m"}, "input"),
    ({"model": "m", "input": None}, "input"),
    ({"model": "m", "input": ""}, "input"),
    ({"model": "m", "input": []}, "input"),
    ({"model": "m", "input": ["ok", ""]}, "input"),
    ({"model": "m", "input": ["ok", 3]}, "input"),
    ({"model": "m", "input": [[1], []]}, "input"),
    ({"model": "m", "input": {"text": "x"}}, "input"),
    ({"model": "m", "input": ["x"] * 2049}, "input"),
    ({"model": 7, "input": "x"}, "model"),
    ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": "m", "input": "x", "dimensions": "256"}, "dimensions"),
    ({"model": "m", "input": "x", "dimensions": True}, "dimensions"),
    ({"model": "m", "input": "x", "user": 5}, "user"),
])
async def test_bad_input_is_400_naming_the_field(lynkr_openai, openai_upstream, body, param):
    client, _ = lynkr_openai
    resp = await client.post("/v1/embeddings", json=body)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert err["message"].startswith(f"{param}: ")
    assert upstream_bodies(openai_upstream, "/v1/embeddings") == []


async def test_body_that_is_not_an_object(lynkr_openai):
    client, _ = lynkr_openai
    for raw in (b"", b"[1]", b"{nope"):
        resp = await client.post("/v1/embeddings", data=raw, headers={"Content-Type": "application/json"})
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


# --- the official openai SDK ------------------------------------------------------------------


@pytest.fixture(params=["ollama", "openai"])
async def sdk(request, ollama_upstream, openai_upstream, aiohttp_server):
    settings = ollama_settings(ollama_upstream) if request.param == "ollama" else openai_settings(openai_upstream)
    server = await aiohttp_server(create_app(settings))
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="dummy", max_retries=0) as client:
        yield client, (ollama_upstream if request.param == "ollama" else openai_upstream), request.param


async def test_sdk_default_base64(sdk):
    client, upstream, backend = sdk
    raw = await client.embeddings.with_raw_response.create(model="text-embedding-3-small",
                                                           input=["first text", "second"])
    wire = raw.http_response.json()
    assert all(isinstance(d["embedding"], str) for d in wire["data"])  # base64 on the wire, as asked
    result = raw.parse()
    assert [d.embedding for d in result.data] == [fake_vector("first text"), fake_vector("second")]
    assert [d.index for d in result.data] == [0, 1]
    assert result.usage.prompt_tokens > 0
    path = "/api/embed" if backend == "ollama" else "/v1/embeddings"
    (sent,) = upstream_bodies(upstream, path)
    if backend == "openai":
        assert sent["encoding_format"] == "base64"  # passed through; the backend encodes


async def test_sdk_float(sdk):
    client, _, _ = sdk
    result = await client.embeddings.create(model="text-embedding-3-small", input="just one",
                                            encoding_format="float", dimensions=3)
    assert result.data[0].embedding == fake_vector("just one")[:3]
    assert result.object == "list"


async def test_sdk_bad_request(sdk):
    client, _, _ = sdk
    with pytest.raises(openai.BadRequestError) as info:
        await client.embeddings.create(model="text-embedding-3-small", input=[])
    assert info.value.param == "input"


# --- pure conversion ---------------------------------------------------------------------------


def test_base64_is_little_endian_float32():
    vector = [1.0, -2.5, 0.125, 3.0e-8]
    packed = pack_base64(vector)
    assert base64.b64decode(packed) == struct.pack("<4f", *vector)
    assert unpack_base64(packed) == pytest.approx(vector)


def test_normalize_encodes_floats_a_backend_sent_despite_base64():
    data = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 1.0]}],
            "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    out = normalize_openai_embeddings(data, model="m", encoding="base64", provider="llamacpp")
    assert decode(out["data"][0]["embedding"]) == [0.5, 1.0]


def test_normalize_accepts_llamacpp_native_answer_and_orders_by_index():
    data = [{"index": 1, "embedding": [[2.0]]}, {"index": 0, "embedding": [[1.0]]}]
    out = normalize_openai_embeddings(data, model="default", encoding="float", provider="llamacpp")
    assert out == {"object": "list", "model": "default", "usage": {"prompt_tokens": 0, "total_tokens": 0},
                   "data": [{"object": "embedding", "index": 0, "embedding": [1.0]},
                            {"object": "embedding", "index": 1, "embedding": [2.0]}]}


def test_normalize_rejects_garbage():
    with pytest.raises(UpstreamBadResponse):
        normalize_openai_embeddings({"data": [{"embedding": ["x"]}]}, model="m", encoding="float", provider="p")
    with pytest.raises(UpstreamBadResponse):
        normalize_openai_embeddings({"error": "x"}, model="m", encoding="float", provider="p")
