"""Request bodies: JSON parsed with clear errors, and tool lists that clients resend on every turn parsed once.

Claude Code sends the same ~24 tools with every request: ~30 KB of JSON schemas, three quarters of a
typical body. ``ToolsSeen.parse`` finds the raw bytes of a body's top-level ``tools`` value with msgspec
(its ``Raw`` type skips a value without building it, exactly: escapes, whitespace and nesting included).
When they are byte for byte the tools of an earlier request, only the rest of the body is parsed and
validated, and ``tools`` is that earlier list: one ``KnownTools`` object, shared. Converters memoise
their output by that object (``lynkr.convert.schema.ToolsMemo``), so a turn neither parses, validates nor
compares its tools again. Anything unusual (no tools, a small body, JSON that msgspec or orjson reads
differently) takes the plain path: ``load_json`` and the validator, as if this module were not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import msgspec
import orjson

from lynkr.errors import InvalidRequest

R = TypeVar("R")


def load_json(raw: bytes) -> Any:
    """A request body as JSON, or a 400 that says what is wrong with it."""
    if not raw:
        raise InvalidRequest("request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON ({exc})") from None


class Serialized(list):  # type: ignore[type-arg]
    """A list shared between requests that carries its JSON (``json``, made once): backend request bodies are
    serialised by ``lynkr.providers.http.dump_json``, which copies these bytes in instead of serialising ~30 KB
    of tool schemas again on every turn. Never change it."""

    __slots__ = ("json",)

    def __init__(self, items: list[Any], json: bytes | None = None) -> None:
        super().__init__(items)
        self.json = orjson.dumps(items) if json is None else json


class KnownTools(Serialized):
    """A tools list seen before: one object for every request that sends the same bytes (``json``: those
    bytes), or converted once from such a list. ``functions``: the tools with an ``input_schema`` (the
    client's own tools, what non-Anthropic backends are given), also the same object every time.
    ``derived(make)``: ``make(self)``, made once per list (converters memoise by the object, not by content)."""

    __slots__ = ("_derived", "functions")

    def __init__(self, tools: list[dict[str, Any]], json: bytes | None = None, *, filtered: bool = False) -> None:
        super().__init__(tools, json)
        self._derived: dict[Callable[[KnownTools], Any], Any] = {}
        if filtered or all(isinstance(t, dict) and "input_schema" in t for t in tools):
            self.functions: KnownTools = self
        else:
            self.functions = KnownTools([t for t in tools if isinstance(t, dict) and "input_schema" in t],
                                        filtered=True)

    def derived(self, make: Callable[[KnownTools], R]) -> R:
        try:
            return cast(R, self._derived[make])
        except KeyError:
            result = self._derived[make] = make(self)
            return result


_members = msgspec.json.Decoder(dict[str, msgspec.Raw])


class ToolsSeen:
    """The tool lists of recent requests, by their bytes (at most ``size``; the oldest goes first). Bodies
    under ``min_body`` bytes are parsed plainly: their tools, if any, cost little."""

    def __init__(self, size: int = 16, min_body: int = 4096) -> None:
        self.size, self.min_body = size, min_body
        # the validator is part of an entry: tools one route took unchecked are not known to another
        self._by_length: dict[int, list[tuple[bytes, KnownTools, Callable[[Any], Any]]]] = {}
        self._order: list[bytes] = []

    def parse(self, raw: bytes, validate: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """``validate(load_json(raw))``, with the tools of a body seen before taken from it."""
        members = span = None
        # a quick look first (bytes.find is fastest with this needle: ~0.3 instructions a byte), so that a
        # large body without tools is not read twice
        if len(raw) >= self.min_body and raw.find(b'"tool') >= 0:
            try:
                members = _members.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                pass  # not a JSON object: the plain path says what is wrong
            else:
                tools = members.get("tools")
                span = bytes(tools) if tools is not None else None
        if span is not None and members is not None and (known := self._find(span, validate)) is not None:
            body = _load_without_tools(members)
            if body is not None:
                body = validate(body)
                body["tools"] = known  # in its place: the parsed body had "tools": [] there
                return body
        body = validate(load_json(raw))
        if span is not None and type(body.get("tools")) is list:
            body["tools"] = self._remember(span, body["tools"], validate)
        return body

    def _find(self, span: bytes, validate: Callable[[Any], Any]) -> KnownTools | None:
        for seen, known, checked_by in self._by_length.get(len(span), ()):
            if seen == span and checked_by is validate:
                return known
        return None

    def _remember(self, span: bytes, tools: list[dict[str, Any]], validate: Callable[[Any], Any]) -> KnownTools:
        known = KnownTools(tools, span)
        self._by_length.setdefault(len(span), []).append((span, known, validate))
        self._order.append(span)
        if len(self._order) > self.size:
            oldest = self._order.pop(0)
            same = self._by_length[len(oldest)]
            same[:] = [entry for entry in same if entry[0] is not oldest]
            if not same:
                del self._by_length[len(oldest)]
        return known


def _load_without_tools(members: dict[str, msgspec.Raw]) -> Any:
    """The body rebuilt from its members' raw bytes with ``"tools": []``, parsed by orjson; None when orjson
    cannot take it (the plain path then gives the error orjson would)."""
    try:
        rest = b"{" + b",".join([orjson.dumps(k) + (b":[]" if k == "tools" else b":" + bytes(v))
                                 for k, v in members.items()]) + b"}"
        return orjson.loads(rest)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None


tools_seen = ToolsSeen()
"""The process's recent tool lists (``POST /v1/messages``, ``/v1/chat/completions`` and ``/v1/responses``)."""
