"""JSON Schema (any draft, as clients write tool schemas) -> the OpenAPI 3.0 subset Gemini's ``Schema`` takes:
``$ref`` is inlined, type arrays become ``nullable``, ``const`` an ``enum``, unsupported keywords and formats
go. Tool declarations are memoised by content (clients resend the same tools every turn)."""

from __future__ import annotations

from typing import Any

import orjson

from lynkr.convert.schema import ToolsMemo

# Schema keywords Gemini accepts and lynkr keeps as they are
_SCALARS = ("title", "description", "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength",
            "pattern", "minProperties", "maxProperties")
# the formats Gemini accepts, by type (others are refused: "only 'enum' and 'date-time' are supported")
_FORMATS = {"string": {"enum", "date-time"}, "number": {"float", "double"}, "integer": {"int32", "int64"}}
_MAX_DEPTH = 32


def gemini_schema(schema: Any) -> dict[str, Any]:
    """``schema`` (JSON Schema, any draft) rewritten to the OpenAPI 3.0 subset Gemini's ``Schema`` takes."""
    if not isinstance(schema, dict):
        return {}
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _schema(schema, defs, (), 0)


def _is_null(s: Any) -> bool:
    return isinstance(s, dict) and s.get("type") == "null" and len(s) <= 2 and set(s) <= {"type", "description"}


def _merge(into: dict[str, Any], sub: dict[str, Any]) -> None:
    """allOf: properties and required add up; any other keyword is taken where not set yet."""
    for key, value in sub.items():
        if key == "properties":
            into["properties"] = {**into.get("properties", {}), **value}
        elif key == "required":
            into["required"] = list(dict.fromkeys([*into.get("required", []), *value]))
        else:
            into.setdefault(key, value)


def _schema(s: Any, defs: dict[str, Any], seen: tuple[str, ...], depth: int) -> dict[str, Any]:
    if not isinstance(s, dict) or depth > _MAX_DEPTH:
        return {}  # `true` / `{}`: anything
    ref = s.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        rest = {k: v for k, v in s.items() if k != "$ref"}
        if name in seen or name not in defs:  # recursive or unknown: an object the model fills freely
            return {"type": "object", **({"description": s["description"]} if "description" in s else {})}
        return _schema({**defs[name], **rest}, defs, (*seen, name), depth + 1)

    out: dict[str, Any] = {}
    nullable = s.get("nullable") is True
    kind = s.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        nullable = nullable or "null" in kind
        kind = types[0] if len(types) == 1 else None
        if len(types) > 1:
            out["anyOf"] = [{"type": t} for t in types]
    if kind == "null":
        nullable, kind = True, None
    if isinstance(kind, str):
        out["type"] = kind

    enum = [s["const"]] if "const" in s else s.get("enum")
    choices = ""
    if isinstance(enum, list):
        if None in enum:
            nullable = True
        values = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in enum if v is not None]
        if values and out.get("type", "string") == "string":
            out["enum"] = values
            out["type"] = "string"
        elif values:  # Gemini takes enums of strings only: other types say their values in words
            choices = f"one of: {', '.join(values)}"

    for key in ("anyOf", "oneOf"):
        alts = s.get(key)
        if not isinstance(alts, list):
            continue
        subs = []
        for alt in alts:
            if _is_null(alt):
                nullable = True
            else:
                subs.append(_schema(alt, defs, seen, depth + 1))
        if len(subs) == 1:
            for k, v in subs[0].items():
                out.setdefault(k, v)
        elif subs:
            out["anyOf"] = subs
    for sub in s.get("allOf") or ():
        _merge(out, _schema(sub, defs, seen, depth + 1))

    props = s.get("properties")
    if isinstance(props, dict):
        out["properties"] = {**out.get("properties", {}),
                             **{name: _schema(sub, defs, seen, depth + 1) for name, sub in props.items()}}
    required = [r for r in [*out.get("required", []), *(s.get("required") or ())]
                if isinstance(r, str) and r in out.get("properties", {})]
    if required:
        out["required"] = list(dict.fromkeys(required))
    elif "required" in out:
        del out["required"]

    items = s.get("items", (s.get("prefixItems") or [None])[0])
    if isinstance(items, list):  # draft-04 tuple form: the first item's schema
        items = items[0] if items else None
    if isinstance(items, dict):
        out["items"] = _schema(items, defs, seen, depth + 1)
    elif out.get("type") == "array":
        out["items"] = {"type": "string"}  # Gemini requires items for an array

    fmt = s.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(str(out.get("type")), ()):
        out["format"] = fmt
    for key in _SCALARS:
        if key in s and not isinstance(s[key], (dict, list)):
            out[key] = s[key]
    if choices:
        out["description"] = f"{out['description']} ({choices})" if out.get("description") else choices
    if nullable:
        out["nullable"] = True
    if out.get("type") not in (None, "object"):
        out.pop("properties", None)  # Gemini: "only allowed for OBJECT type"
        out.pop("required", None)
    elif not out.get("properties"):
        out.pop("properties", None)  # a free-form object: {"type": "object"} (an empty map is refused)
        out.pop("required", None)
    return out


def function_declaration(tool: dict[str, Any]) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": tool["name"], "description": tool.get("description", "")}
    params = gemini_schema(tool.get("input_schema") or {})
    if params.get("properties") or params.get("type") not in (None, "object"):
        decl["parameters"] = params  # a function without parameters declares none
    return decl


function_declarations = ToolsMemo(lambda tools: [function_declaration(t) for t in tools])
"""Anthropic tools as Gemini ``functionDeclarations``, memoised by content (the list is shared: do not change
it)."""
