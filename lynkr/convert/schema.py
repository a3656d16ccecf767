"""JSON Schema cleaning for backends that reject keywords Claude Code's tool schemas carry."""

from __future__ import annotations

from typing import Any

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
