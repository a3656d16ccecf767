"""A fake Gemini API (Google AI Studio): ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``.

It answers a scripted ``Answer`` the way Gemini does: ``candidates[0].content.parts`` (thought parts only
when ``includeThoughts`` was asked for, function calls whole, no call ids), a ``thoughtSignature`` on the
first function call (else on the last part), ``usageMetadata``, and SSE frames separated by CRLF. Like the
real API it checks the request first and answers 400 ``INVALID_ARGUMENT`` for what Gemini refuses: unknown
fields (``additionalProperties``, ``$schema``...), schemas outside its subset, roles other than user/model,
and, for gemini-3 models, a function call in the current turn without its signature.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.openai_server import send as send_failure_or_raw
from tests.fakes.script import Answer, Failure, Raw, Script, cut

SCRIPT = web.AppKey("script", Script)
PATHS = web.AppKey("paths", list[str])  # every request's path and query, in order

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}


@dataclass
class GeminiAnswer(Answer):
    """An answer with what only Gemini has."""

    signature: str = ""  # thoughtSignature: on the first function call, else on the last part
    thoughts_tokens: int = 0


# --- the request check -------------------------------------------------------------------------

_TOP = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
_PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
              "codeExecutionResult"}
_PART = _PART_DATA | {"thought", "thoughtSignature", "videoMetadata"}
_SCHEMA = {"type", "format", "title", "description", "nullable", "enum", "items", "properties", "required",
           "anyOf", "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "pattern",
           "minProperties", "maxProperties", "default", "example", "propertyOrdering"}
_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
_GENERATION = {"maxOutputTokens", "temperature", "topP", "topK", "stopSequences", "candidateCount",
               "responseMimeType", "responseSchema", "thinkingConfig", "presencePenalty", "frequencyPenalty", "seed"}


class Invalid(Exception):
    pass


def _schema(s: Any, where: str) -> None:
    if not isinstance(s, dict):
        raise Invalid(f"{where}: a schema must be an object")
    for key in s:
        if key not in _SCHEMA:
            raise Invalid(f'Invalid JSON payload received. Unknown name "{key}" at \'{where}\': Cannot find field.')
    kind = s.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in _TYPES):
        raise Invalid(f"{where}.type: invalid value {kind!r}")
    if ("properties" in s or "required" in s) and kind not in (None, "object", "OBJECT"):
        raise Invalid(f"{where}.properties: only allowed for OBJECT type")
    if "properties" in s and not s["properties"]:
        raise Invalid(f"{where}.properties: should be non-empty for OBJECT type")
    for name in s.get("required") or ():
        if name not in (s.get("properties") or {}):
            raise Invalid(f"{where}.required[{name}]: property is not defined")
    if "enum" in s and (str(kind).lower() != "string" or not all(isinstance(v, str) for v in s["enum"])):
        raise Invalid(f"{where}.enum: only allowed for STRING type")
    if str(kind).lower() == "array" and "items" not in s:
        raise Invalid(f"{where}.items: missing field")
    for name, sub in (s.get("properties") or {}).items():
        _schema(sub, f"{where}.properties[{name}]")
    if "items" in s:
        _schema(s["items"], f"{where}.items")
    for i, sub in enumerate(s.get("anyOf") or ()):
        _schema(sub, f"{where}.any_of[{i}]")


def _current_turn(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start = 0
    for i, c in enumerate(contents):
        if c.get("role") == "user" and any("text" in p or "inlineData" in p or "fileData" in p for p in c["parts"]):
            start = i
    return contents[start:]


def check(body: Any, model: str) -> None:
    if not isinstance(body, dict):
        raise Invalid("Invalid JSON payload received.")
    for key in body:
        if key not in _TOP:
            raise Invalid(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified")
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            raise Invalid(f"Please use a valid role: user, model. (contents[{i}].role={content.get('role')!r})")
        parts = content.get("parts")
        if not parts:
            raise Invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            unknown = set(part) - _PART
            if unknown:
                raise Invalid(f'Unknown name "{sorted(unknown)[0]}" at \'contents[{i}].parts[{j}]\'')
            if len(set(part) & _PART_DATA) != 1:
                raise Invalid(f"contents[{i}].parts[{j}]: a part holds exactly one kind of data")
            if "functionResponse" in part:
                fr = part["functionResponse"]
                if not isinstance(fr.get("name"), str) or not fr["name"] or not isinstance(fr.get("response"), dict):
                    raise Invalid(f"contents[{i}].parts[{j}].function_response: name and response are required")
            if "inlineData" in part and not {"mimeType", "data"} <= set(part["inlineData"]):
                raise Invalid(f"contents[{i}].parts[{j}].inline_data: mimeType and data are required")
    if "gemini-3" in model:
        for content in _current_turn(contents):
            call = next((p for p in content["parts"] if "functionCall" in p), None)
            if content["role"] == "model" and call is not None and not call.get("thoughtSignature"):
                raise Invalid("Function call is missing a thought_signature in functionCall parts.")
    system = body.get("systemInstruction")
    if system is not None and not (isinstance(system, dict) and system.get("parts")):
        raise Invalid("systemInstruction: parts are required")
    for t, tool in enumerate(body.get("tools") or ()):
        for d, decl in enumerate(tool.get("functionDeclarations") or ()):
            if set(decl) - {"name", "description", "parameters", "response", "parametersJsonSchema"}:
                raise Invalid(f"tools[{t}].function_declarations[{d}]: unknown field")
            if "parameters" in decl:
                _schema(decl["parameters"], f"tools[{t}].function_declarations[{d}].parameters")
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    if mode is not None and mode not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        raise Invalid(f"toolConfig.functionCallingConfig.mode: invalid value {mode!r}")
    generation = body.get("generationConfig") or {}
    for key in generation:
        if key not in _GENERATION:
            raise Invalid(f'Unknown name "{key}" at \'generation_config\': Cannot find field.')
    if "responseSchema" in generation:
        _schema(generation["responseSchema"], "generation_config.response_schema")
    thinking = generation.get("thinkingConfig") or {}
    if set(thinking) - {"thinkingBudget", "includeThoughts", "thinkingLevel"}:
        raise Invalid("generation_config.thinking_config: unknown field")
    if len(generation.get("stopSequences") or ()) > 5:
        raise Invalid("generation_config.stop_sequences: at most 5")


# --- answers -----------------------------------------------------------------------------------


def _finish(a: Answer) -> str:
    return _FINISH.get(a.finish, a.finish) if a.finish else "STOP"


def usage(a: Answer) -> dict[str, Any]:
    thoughts = a.thoughts_tokens if isinstance(a, GeminiAnswer) else 0
    meta = {"promptTokenCount": a.prompt_tokens, "candidatesTokenCount": a.completion_tokens,
            "totalTokenCount": a.prompt_tokens + a.completion_tokens + thoughts}
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    if a.cached_tokens:
        meta["cachedContentTokenCount"] = a.cached_tokens
    return meta


def _calls(a: Answer) -> list[dict[str, Any]]:
    return [{"functionCall": {"name": c.name, "args": json.loads(c.arguments or "{}")}} for c in a.tool_calls]


def _sign(parts: list[dict[str, Any]], a: Answer) -> None:
    signature = a.signature if isinstance(a, GeminiAnswer) else ""
    if not signature or not parts:
        return
    target = next((p for p in parts if "functionCall" in p), parts[-1])
    target["thoughtSignature"] = signature


def _response(parts: list[dict[str, Any]], model: str, meta: dict[str, Any],
              finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": meta, "modelVersion": model, "responseId": "fake-response"}


def render_body(a: Answer, model: str, thoughts: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if a.reasoning and thoughts:
        parts.append({"text": a.reasoning, "thought": True})
    if a.text:
        parts.append({"text": a.text})
    parts += _calls(a)
    _sign(parts, a)
    return _response(parts, model, usage(a), _finish(a))


def render_chunks(a: Answer, model: str, thoughts: bool) -> list[dict[str, Any]]:
    """As Gemini streams: thought and text pieces one chunk each, function calls whole in one chunk, the
    finish reason (and the signature of a text answer) with the last piece, usage on every chunk."""
    groups: list[list[dict[str, Any]]] = []
    if a.reasoning and thoughts:
        groups += [[{"text": p, "thought": True}] for p in cut(a.reasoning, a.pieces)]
    groups += [[{"text": p}] for p in cut(a.text, a.pieces)]
    if a.tool_calls:
        groups.append(_calls(a))
    if not groups:
        groups.append([{"text": ""}])
    _sign(groups[-1], a)
    prompt_only = {"promptTokenCount": a.prompt_tokens, "totalTokenCount": a.prompt_tokens}
    return [_response(parts, model, usage(a) if i == len(groups) - 1 else prompt_only,
                      _finish(a) if i == len(groups) - 1 else None)
            for i, parts in enumerate(groups)]


def sse_bytes(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


def error(code: int, message: str, status: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "status": status}}, status=code)


async def generate(request: web.Request) -> web.StreamResponse:
    request.app[PATHS].append(request.path_qs)
    model, _, method = request.match_info["target"].partition(":")
    if method not in ("generateContent", "streamGenerateContent"):
        return error(404, f"Method {method!r} not found", "NOT_FOUND")
    if not request.headers.get("x-goog-api-key"):
        return error(403, "Method doesn't allow unregistered callers (callers without established identity). "
                          "Please use API Key or other form of API consumer identity to call this API.",
                     "PERMISSION_DENIED")
    body = await request.json()
    try:
        check(body, model)
    except Invalid as exc:
        return error(400, str(exc), "INVALID_ARGUMENT")
    reply = request.app[SCRIPT].next(body, dict(request.headers))
    stream = method == "streamGenerateContent"
    if isinstance(reply, (Failure, Raw)):
        return await send_failure_or_raw(request, reply, stream, model)
    thoughts = bool(((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("includeThoughts"))
    if not stream:
        return web.json_response(render_body(reply, model, thoughts))
    if request.query.get("alt") != "sse":  # without alt=sse Gemini streams one JSON array; lynkr never asks for it
        return error(400, "fake: only alt=sse streaming is modelled", "INVALID_ARGUMENT")
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for chunk in render_chunks(reply, model, thoughts):
        await resp.write(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")
        if reply.delay:
            await asyncio.sleep(reply.delay)
    return resp


def make_app(script: Script) -> web.Application:
    app = web.Application(client_max_size=64 * 1024**2)
    app[SCRIPT] = script
    app[PATHS] = []
    app.router.add_post("/v1beta/models/{target}", generate)
    return app
