"""Anthropic Messages API request shape, for validating what clients send.

Validation only: handlers keep working on the client's own dict, so fields we do not model here
survive untouched. Block types we do not know pass as ``OtherBlock`` (new betas appear monthly).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import Discriminator, Field, InstanceOf, Tag, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from lynkr.errors import InvalidRequest

# A JSON object whose contents are not checked here: an isinstance test, not a field-by-field copy of
# the dict (pydantic builds a copy of every dict it validates; tool schemas are most of a request).
JSONObject = InstanceOf[dict]  # type: ignore[type-arg]


class _Base(TypedDict, total=False):
    cache_control: JSONObject


class TextBlock(_Base, total=False):
    type: Required[Literal["text"]]
    text: Required[str]


class ImageSource(TypedDict, total=False):
    type: Required[Literal["base64", "url", "file"]]
    media_type: str
    data: str
    url: str
    file_id: str


class ImageBlock(_Base, total=False):
    type: Required[Literal["image"]]
    source: Required[ImageSource]


class ToolUseBlock(_Base, total=False):
    type: Required[Literal["tool_use"]]
    id: Required[str]
    name: Required[str]
    input: Required[JSONObject]


class ToolResultBlock(_Base, total=False):
    type: Required[Literal["tool_result"]]
    tool_use_id: Required[str]
    content: str | list[JSONObject]
    is_error: bool


class ThinkingBlock(_Base, total=False):
    type: Required[Literal["thinking"]]
    thinking: Required[str]
    signature: str


class OtherBlock(TypedDict, total=False):
    type: Required[str]


def _block_tag(v: Any) -> str:
    t = v.get("type") if isinstance(v, dict) else None
    # a non-string type ({"type": {}}) is an "other" block, which then fails validation as a 400
    return t if isinstance(t, str) and t in {"text", "image", "tool_use", "tool_result", "thinking"} else "other"


Block = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_block_tag),
]


class Message(TypedDict):
    role: Literal["user", "assistant", "system"]
    content: str | list[Block]


class Tool(TypedDict, total=False):
    name: Required[str]
    type: str
    description: str
    input_schema: JSONObject


class MessagesRequest(TypedDict, total=False):
    model: Required[str]
    messages: Required[list[Message]]
    max_tokens: Required[Annotated[int, Field(ge=1)]]
    system: str | list[TextBlock]
    stream: bool
    tools: list[Tool]
    tool_choice: JSONObject
    temperature: Annotated[float, Field(ge=0)]
    top_p: float
    top_k: int
    stop_sequences: list[str]
    thinking: JSONObject
    metadata: JSONObject


class CountTokensRequest(TypedDict, total=False):
    model: Required[str]
    messages: Required[list[Message]]
    system: str | list[TextBlock]
    tools: list[Tool]
    thinking: NotRequired[JSONObject]


_messages = TypeAdapter(MessagesRequest)
_count = TypeAdapter(CountTokensRequest)


_TAGS = frozenset({"text", "image", "tool_use", "tool_result", "thinking", "other"})


def _json_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as the JSON path a client knows (union branch names removed)."""
    out: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and (part == "str" or "[" in part):
            continue  # a union member's name, not a key
        if (isinstance(part, str) and part in _TAGS and i >= 2 and isinstance(loc[i - 1], int)
                and "tagged-union" in str(loc[i - 2])):
            continue  # the block-type tag pydantic inserts after an index into a list of blocks
        out.append(str(part))
    return ".".join(out)


def _raise(exc: ValidationError) -> None:
    # the deepest error is the most specific one (union branches that failed early are shallower)
    err = max(exc.errors(include_url=False), key=lambda e: len(e["loc"]))
    raise InvalidRequest(err["msg"], field=_json_path(err["loc"]) or None) from None


def validate_messages_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        _messages.validate_python(body)
    except ValidationError as exc:
        _raise(exc)
    return body


def validate_count_tokens_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        _count.validate_python(body)
    except ValidationError as exc:
        _raise(exc)
    return body
