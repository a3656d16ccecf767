"""JSON Schema cleaning for backends that reject keywords Claude Code's tool schemas carry."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

# Keywords that hold one sub-schema, a list of them, or a name -> sub-schema map.
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")

# What OpenAI-compatible servers and Ollama choke on (meta keywords, never constraints).
DEFAULT_DROP = frozenset({"$schema", "$id", "$comment"})


def clean_schema(schema: Any, drop: frozenset[str] = DEFAULT_DROP) -> Any:
    """A copy of ``schema`` without the ``drop`` keywords, at every depth (property names kept)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in drop:
            continue
        if key in _MAP and isinstance(value, dict):
            out[key] = {name: clean_schema(sub, drop) for name, sub in value.items()}
        elif key in _MANY and isinstance(value, list):
            out[key] = [clean_schema(sub, drop) for sub in value]
        elif key in _ONE and isinstance(value, dict):
            out[key] = clean_schema(value, drop)
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out:
        out["properties"] = {}
    return out


def function_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic tools as OpenAI-style function declarations (Chat Completions and Ollama take these),
    schemas cleaned. Claude Code sends the same ~24 tools (~60 KB) on every turn, so the result is
    memoised by the tools' content: one serialisation instead of a recursive copy of every schema.
    The returned list is shared between requests: callers must not change it."""
    return _function_tools(orjson.dumps(tools))


@lru_cache(maxsize=64)
def _function_tools(raw: bytes) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {
            "name": t["name"],
            "description": t.get("description", ""),
            "parameters": clean_schema(t["input_schema"], DEFAULT_DROP),
        }}
        for t in orjson.loads(raw)
    ]
