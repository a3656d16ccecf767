"""A fake Amazon Bedrock Runtime speaking the real wire format.

``POST /model/{modelId}/converse`` answers Converse JSON; ``/converse-stream`` answers binary AWS
event-stream frames (``application/vnd.amazon.eventstream``: prelude with its CRC32, ``:event-type`` /
``:content-type`` / ``:message-type`` string headers, JSON payload with Bedrock's ``p`` padding, message
CRC32), exception frames included. Every request must carry the expected bearer key or a valid SigV4
signature (checked by recomputing it from the request as received, as AWS does).

A scripted ``Answer`` is rendered in Converse form; its ``finish`` is a Converse ``stopReason``.
"""

from __future__ import annotations

import asyncio
import binascii
import itertools
import json
import re
import struct
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import OperationModel
from botocore.session import get_session
from botocore.validate import ParamValidator

from tests.fakes.script import Answer, Failure, Raw, Script, cut

EVENT_STREAM = "application/vnd.amazon.eventstream"
SIGNATURE = "EqQBCkYIBxgCKkBmYWtlLWJlZHJvY2stc2lnbmF0dXJl"  # what the fake signs its reasoning with
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


@dataclass
class FakeAuth:
    """What the fake accepts: this bearer key, or SigV4 by these credentials for this region."""

    api_key: str | None = None
    access_key: str = "AKIDFAKEBEDROCK00001"
    secret_key: str = "fake/secret/key/for/bedrock/tests/000000"
    session_token: str | None = None
    region: str = "us-east-1"


@dataclass
class Call:
    operation: str  # "converse" or "converse-stream"
    model: str  # the model ID, decoded from the path
    raw_path: str
    auth: str  # "bearer" or "sigv4"


@dataclass
class FakeBedrock:
    script: Script = field(default_factory=Script)
    auth: FakeAuth = field(default_factory=FakeAuth)
    calls: list[Call] = field(default_factory=list)


FAKE = web.AppKey("fake_bedrock", FakeBedrock)


# --- event-stream encoding (botocore decodes only; this is the encoder) --------------------------


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32), string headers,
    payload, CRC32 of everything before it."""
    head = b"".join(
        struct.pack(">B", len(k.encode())) + k.encode() + struct.pack(">BH", 7, len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + head + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event_frame(event_type: str, payload: dict[str, Any], *, padding: bool = True) -> bytes:
    body = dict(payload)
    if padding:  # Bedrock pads payloads so their length does not leak the text
        body["p"] = PADDING[: 1 + len(json.dumps(payload)) % len(PADDING)]
    return encode_frame({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                        json.dumps(body, ensure_ascii=False).encode())


def exception_frame(exception_type: str, message: str, **extra: Any) -> bytes:
    return encode_frame({":exception-type": exception_type, ":content-type": "application/json",
                         ":message-type": "exception"}, json.dumps({"message": message, **extra}).encode())


def error_frame(code: str, message: str) -> bytes:
    return encode_frame({":error-code": code, ":error-message": message, ":message-type": "error"}, b"")


def frames(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(event_frame(name, payload) for name, payload in events)


# --- rendering a scripted answer -------------------------------------------------------------------


def _stop(a: Answer) -> str:
    return a.finish or ("tool_use" if a.tool_calls else "end_turn")


def _usage(a: Answer) -> dict[str, int]:
    return {"inputTokens": a.prompt_tokens, "outputTokens": a.completion_tokens,
            "totalTokens": a.prompt_tokens + a.completion_tokens + a.cached_tokens,
            "cacheReadInputTokens": a.cached_tokens, "cacheWriteInputTokens": 0}


def render_events(a: Answer) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    index = 0

    def delta(d: dict[str, Any]) -> None:
        events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": d}))

    if a.reasoning:
        for piece in cut(a.reasoning, a.pieces):
            delta({"reasoningContent": {"text": piece}})
        delta({"reasoningContent": {"signature": SIGNATURE}})
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if a.text:
        for piece in cut(a.text, a.pieces):
            delta({"text": piece})
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for i, call in enumerate(a.tool_calls):
        events.append(("contentBlockStart", {"contentBlockIndex": index, "start": {
            "toolUse": {"toolUseId": call.id or f"tooluse_fake{i}", "name": call.name}}}))
        for piece in cut(call.arguments, a.pieces):
            delta({"toolUse": {"input": piece}})
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    events.append(("messageStop", {"stopReason": _stop(a)}))
    events.append(("metadata", {"usage": _usage(a), "metrics": {"latencyMs": 42}}))
    return events


def render_body(a: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if a.reasoning:
        content.append({"reasoningContent": {"reasoningText": {"text": a.reasoning, "signature": SIGNATURE}}})
    if a.text:
        content.append({"text": a.text})
    for i, call in enumerate(a.tool_calls):
        content.append({"toolUse": {"toolUseId": call.id or f"tooluse_fake{i}", "name": call.name,
                                    "input": json.loads(call.arguments or "{}")}})
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": _stop(a),
            "usage": _usage(a), "metrics": {"latencyMs": 42}}


def aws_error(status: int, error_type: str, message: str, *, key: str = "message") -> Failure:
    """An HTTP error as Bedrock sends it: JSON body and the x-amzn-ErrorType header."""
    return Failure(status, {key: message}, {"x-amzn-ErrorType": error_type + ERROR_TYPE_SUFFIX})


# --- request validation -----------------------------------------------------------------------------


@cache
def operation_model(operation: str) -> OperationModel:
    name = {"converse": "Converse", "converse-stream": "ConverseStream"}[operation]
    return get_session().get_service_model("bedrock-runtime").operation_model(name)


def validate_request(operation: str, model: str, body: dict[str, Any]) -> str | None:
    """What real Bedrock would refuse with a ValidationException: the shapes of the botocore service model
    (unknown fields, types, required members), and the conversation rules Converse enforces."""
    report = ParamValidator().validate({"modelId": model, **body}, operation_model(operation).input_shape)
    if report.has_errors():
        return report.generate_report()
    messages = body.get("messages") or []
    if not messages or messages[0]["role"] != "user":
        return "A conversation must start with a user message."
    for i, (a, b) in enumerate(itertools.pairwise(messages)):
        if a["role"] == b["role"]:
            return f"A conversation must alternate between user and assistant roles (messages.{i + 1})."
    uses: set[str] = set()
    for i, m in enumerate(messages):
        if not m["content"]:
            return f"The content field in the Message object at messages.{i} is empty."
        for j, block in enumerate(m["content"]):
            if "text" in block and not block["text"].strip():
                return f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank."
            if "toolUse" in block:
                uses.add(block["toolUse"]["toolUseId"])
            if "toolResult" in block and block["toolResult"]["toolUseId"] not in uses:
                return f"messages.{i}.content.{j}: toolResult for an unknown toolUseId"
    has_tool_blocks = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    if has_tool_blocks and not body.get("toolConfig"):
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    return None


# --- auth ------------------------------------------------------------------------------------------

_SIGV4 = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
                    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$")


def check_auth(request: web.Request, body: bytes, auth: FakeAuth) -> tuple[str, str | None]:
    """("bearer" | "sigv4" | "none", error message or None)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        ok = auth.api_key is not None and header == f"Bearer {auth.api_key}"
        return "bearer", None if ok else "Invalid API Key format: Must start with pre-defined prefix"
    m = _SIGV4.match(header)
    if not m:
        return "none", "Missing Authentication Token"
    if m["key"] != auth.access_key:
        return "sigv4", "The security token included in the request is invalid."
    if (m["region"], m["service"]) != (auth.region, "bedrock"):
        return "sigv4", f"Credential should be scoped to a valid region and service, not {m['region']}/{m['service']}"
    amz_date = request.headers.get("X-Amz-Date", "")
    if amz_date[:8] != m["date"]:
        return "sigv4", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP"
    if auth.session_token is not None and request.headers.get("X-Amz-Security-Token") != auth.session_token:
        return "sigv4", "The security token included in the request is invalid."
    signed = m["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return "sigv4", "SignedHeaders must include host and x-amz-date"
    # recompute from the request as received: raw path, the signed headers, the body bytes
    url = f"{request.scheme}://{request.host}{request.raw_path}"
    aws = AWSRequest(method=request.method, url=url, data=body,
                     headers={name: request.headers.get(name, "") for name in signed})
    aws.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(auth.access_key, auth.secret_key, auth.session_token), "bedrock", auth.region)
    expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
    if expected != m["sig"]:
        return "sigv4", ("The request signature we calculated does not match the signature you provided. "
                         "Check your AWS Secret Access Key and signing method.")
    return "sigv4", None


# --- handlers --------------------------------------------------------------------------------------


async def _send_failure_or_raw(request: web.Request, reply: Failure | Raw) -> web.StreamResponse:
    if isinstance(reply, Failure):
        body = reply.body if isinstance(reply.body, (bytes, str)) else json.dumps(reply.body)
        return web.Response(status=reply.status, body=body, headers=reply.headers, content_type="application/json")
    resp = web.StreamResponse(status=reply.status, headers={"Content-Type": reply.content_type})
    await resp.prepare(request)
    await resp.write(reply.body)
    if reply.drop_after:
        assert request.transport is not None
        request.transport.close()
    return resp


async def _handle(request: web.Request, operation: str) -> web.StreamResponse:
    fake = request.app[FAKE]
    raw = await request.read()
    kind, problem = check_auth(request, raw, fake.auth)
    prefix = "/model/"
    model = unquote(request.raw_path[len(prefix): -len("/" + operation)])
    fake.calls.append(Call(operation, model, request.raw_path, kind))
    if problem is not None:
        error = "AccessDeniedException" if kind == "bearer" else (
            "InvalidSignatureException" if "signature" in problem else "UnrecognizedClientException")
        failure = aws_error(403, error, problem)
        return await _send_failure_or_raw(request, failure)
    try:
        body = json.loads(raw)
    except ValueError:
        return await _send_failure_or_raw(request, aws_error(400, "SerializationException", "body is not JSON"))
    if (invalid := validate_request(operation, model, body)) is not None:
        fake.script.requests.append(body)
        return await _send_failure_or_raw(request, aws_error(400, "ValidationException", invalid))
    reply = fake.script.next(body, dict(request.headers))
    if isinstance(reply, (Failure, Raw)):
        return await _send_failure_or_raw(request, reply)
    if operation == "converse":
        return web.json_response(render_body(reply), headers={"x-amzn-RequestId": "fake-request-id"})
    resp = web.StreamResponse(headers={"Content-Type": EVENT_STREAM, "x-amzn-RequestId": "fake-request-id"})
    await resp.prepare(request)
    for name, payload in render_events(reply):
        await resp.write(event_frame(name, payload))
        if reply.delay:
            await asyncio.sleep(reply.delay)
    return resp


async def converse(request: web.Request) -> web.StreamResponse:
    return await _handle(request, "converse")


async def converse_stream(request: web.Request) -> web.StreamResponse:
    return await _handle(request, "converse-stream")


def make_app(fake: FakeBedrock) -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app[FAKE] = fake
    app.router.add_post("/model/{model:.+}/converse", converse)
    app.router.add_post("/model/{model:.+}/converse-stream", converse_stream)
    return app
