"""OpenAI embeddings request shape (``POST /v1/embeddings``), for validating what clients send.

Validation only: the handler keeps the client's dict, so fields not checked here (``user``, vendor
extras) survive on the way to an OpenAI-compatible backend.
"""

from __future__ import annotations

from typing import Any, Literal

from lynkr.errors import InvalidRequest

MAX_INPUTS = 2048  # OpenAI's limit per request; editors batch below it
ENCODINGS = ("float", "base64")

InputKind = Literal["text", "tokens"]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def input_kind(value: Any) -> InputKind:
    """Classify ``input``: text (a string or strings) or tokens (an array of token ids, or several).
    Raises InvalidRequest naming ``input`` for anything else."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("must not be an empty string", field="input")
        return "text"
    if not isinstance(value, list):
        raise InvalidRequest(f"must be a string, an array of strings or an array of token arrays, "
                             f"not {type(value).__name__}", field="input")
    if not value:
        raise InvalidRequest("must not be an empty array", field="input")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(f"at most {MAX_INPUTS} inputs per request (got {len(value)})", field="input")
    if all(isinstance(v, str) for v in value):
        if empty := [i for i, v in enumerate(value) if not v]:
            raise InvalidRequest(f"item {empty[0]} is an empty string", field="input")
        return "text"
    if all(_is_int(v) for v in value):
        return "tokens"
    if all(isinstance(v, list) and v and all(_is_int(t) for t in v) for v in value):
        return "tokens"
    raise InvalidRequest("must be a string, an array of strings, an array of token ids or an array of "
                         "non-empty token-id arrays (no mixing)", field="input")


def text_inputs(value: str | list[str]) -> list[str]:
    """The texts of a text ``input`` (see ``input_kind``), always as a list."""
    return [value] if isinstance(value, str) else list(value)


def validate_embeddings_request(body: Any) -> dict[str, Any]:
    """Check an OpenAI embeddings request; return it unchanged. Errors name the offending field."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    if body.get("input") is None:
        raise InvalidRequest("is required (a string or an array of strings)", field="input")
    input_kind(body["input"])
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise InvalidRequest("must be a non-empty string", field="model")
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODINGS:
        raise InvalidRequest(f"must be 'float' or 'base64' (got {encoding!r})", field="encoding_format")
    dims = body.get("dimensions")
    if dims is not None and (not _is_int(dims) or dims < 1):
        raise InvalidRequest(f"must be a positive integer (got {dims!r})", field="dimensions")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("must be a string", field="user")
    return body
