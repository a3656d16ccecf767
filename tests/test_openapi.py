"""GET /openapi.json describes every route lynkr registers, with schemas for the model endpoints."""

from __future__ import annotations

from lynkr.server import create_app
from tests.conftest import openai_settings


async def test_every_registered_route_is_in_the_document(openai_upstream, aiohttp_client):
    app = create_app(openai_settings(openai_upstream, lynkr_api_keys="sk-client-0000", lynkr_admin_key="sk-admin-0000"))
    client = await aiohttp_client(app)
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "lynkr"
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    assert len(routes) > 20
    for method, path in routes:
        assert method in doc["paths"].get(path, {}), f"{method.upper()} {path} missing from /openapi.json"
    for (method, path) in [("post", "/v1/messages"), ("post", "/v1/chat/completions"), ("post", "/v1/responses"),
                           ("post", "/v1/embeddings"), ("put", "/v1/admin/keys/{key_id}/limits")]:
        op = doc["paths"][path][method]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.split("/")[-1] in doc["components"]["schemas"], path
    messages = doc["components"]["schemas"]["MessagesRequest"]
    assert set(messages["required"]) == {"model", "messages", "max_tokens"}
    assert "text/event-stream" in doc["paths"]["/v1/messages"]["post"]["responses"]["200"]["content"]
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert doc["paths"]["/v1/admin/keys"]["get"]["security"][0] == {"adminKey": []}
    assert doc["paths"]["/v1/messages"]["post"]["security"][0] == {"apiKey": []}
    assert "429" in doc["paths"]["/v1/messages"]["post"]["responses"]
    assert doc["paths"]["/v1/sessions/{session_id}"]["get"]["parameters"][0]["name"] == "session_id"
    # every $ref resolves
    import json
    import re

    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc))):
        assert ref in doc["components"]["schemas"], ref

