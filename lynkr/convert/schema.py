"""JSON Schema cleaning for backends that reject keywords Claude Code's tool schemas carry."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import orjson

from lynkr.wire.body import KnownTools, Serialized

R = TypeVar("R")

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


class ToolsMemo(Generic[R]):
    """``convert(tools)`` memoised. Claude Code sends the same ~24 tools (~30 KB) on every turn. Tools
    the request reader has seen before (``lynkr.wire.body.KnownTools``, one object per list of tools) are
    known by that object (``KnownTools.derived``: a dictionary lookup). Others by content: a tuple of the
    names (the fingerprint) and one deep ``==`` against the tools seen before (~160k instructions for
    Claude Code's tools, about half of serialising them), instead of a recursive copy of every schema.
    Results are shared between requests: callers must not change them; a list comes back as
    ``Serialized``."""

    def __init__(self, convert: Callable[[list[dict[str, Any]]], R], *, size: int = 64, per_names: int = 4) -> None:
        self._convert = convert
        self._size = size
        self._per_names = per_names
        self._seen: OrderedDict[tuple[Any, ...], list[tuple[list[dict[str, Any]], R]]] = OrderedDict()

    def __call__(self, tools: list[dict[str, Any]]) -> R:
        if type(tools) is KnownTools:
            return tools.derived(self._converted)
        try:
            names = tuple([t.get("name") for t in tools])
            bucket = self._seen.get(names)
        except TypeError:  # a name that cannot be a key (validated requests never have one)
            return self._convert(tools)
        if bucket is not None:
            for seen, result in bucket:
                if seen == tools:
                    return result
        result = self._converted(tools)
        # a copy of our own: the request's dicts are the handler's, and a later change must not alter the key
        entry = (orjson.loads(orjson.dumps(tools)), result)
        if bucket is None:
            self._seen[names] = [entry]
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
        else:
            bucket.insert(0, entry)
            del bucket[self._per_names:]
        return result

    def _converted(self, tools: list[dict[str, Any]]) -> R:
        result = self._convert(tools)
        return cast(R, Serialized(cast(list[Any], result))) if type(result) is list else result


def _function_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {
            "name": t["name"],
            "description": t.get("description", ""),
            "parameters": clean_schema(t["input_schema"], DEFAULT_DROP),
        }}
        for t in tools
    ]


function_tools = ToolsMemo(_function_tools)
"""Anthropic tools as OpenAI-style function declarations (Chat Completions and Ollama take these), schemas
cleaned; memoised by content (the returned list is shared: do not change it)."""
