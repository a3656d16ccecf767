"""Shapes of lynkr's own HTTP surface, for the OpenAPI document (``GET /openapi.json``).

Request shapes the handlers validate come from where they are validated (``lynkr.wire``); the rest are
described here as TypedDicts, loosely (``extra`` fields allowed), the way clients use them.
"""

from __future__ import annotations

from typing import Any, Literal, Required

from typing_extensions import TypedDict

# --- OpenAI Chat Completions ---------------------------------------------------------------------


class ChatMessage(TypedDict, total=False):
    role: Required[Literal["system", "developer", "user", "assistant", "tool"]]
    content: str | list[dict[str, Any]] | None
    name: str
    tool_calls: list[dict[str, Any]]
    tool_call_id: str


class ChatCompletionRequest(TypedDict, total=False):
    model: Required[str]
    messages: Required[list[ChatMessage]]
    stream: bool
    stream_options: dict[str, Any]
    max_tokens: int
    max_completion_tokens: int
    temperature: float
    top_p: float
    n: int
    stop: str | list[str]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    response_format: dict[str, Any]
    user: str


class ChatChoice(TypedDict):
    index: int
    message: dict[str, Any]
    finish_reason: str | None


class ChatCompletion(TypedDict, total=False):
    id: Required[str]
    object: Required[Literal["chat.completion"]]
    created: int
    model: Required[str]
    choices: Required[list[ChatChoice]]
    usage: dict[str, Any]


# --- OpenAI Responses (Codex) --------------------------------------------------------------------


class ResponsesRequest(TypedDict, total=False):
    model: Required[str]
    input: Required[str | list[dict[str, Any]]]
    instructions: str
    stream: bool
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    previous_response_id: str
    max_output_tokens: int
    reasoning: dict[str, Any]
    store: bool


class ResponseObject(TypedDict, total=False):
    id: Required[str]
    object: Required[Literal["response"]]
    status: str
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any]


# --- embeddings, models ---------------------------------------------------------------------------


class EmbeddingsRequest(TypedDict, total=False):
    model: str
    input: Required[str | list[str] | list[int] | list[list[int]]]
    encoding_format: Literal["float", "base64"]
    dimensions: int


class EmbeddingsResponse(TypedDict, total=False):
    object: Required[Literal["list"]]
    data: Required[list[dict[str, Any]]]
    model: str
    usage: dict[str, Any]


class ModelList(TypedDict, total=False):
    object: str
    data: Required[list[dict[str, Any]]]
    backends: list[dict[str, Any]]


# --- Anthropic answers ----------------------------------------------------------------------------


class Usage(TypedDict, total=False):
    input_tokens: Required[int]
    output_tokens: Required[int]
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class MessageResponse(TypedDict, total=False):
    id: Required[str]
    type: Required[Literal["message"]]
    role: Required[Literal["assistant"]]
    model: Required[str]
    content: Required[list[dict[str, Any]]]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Required[Usage]


class TokenCount(TypedDict):
    input_tokens: int


# --- errors ---------------------------------------------------------------------------------------


class AnthropicErrorDetail(TypedDict):
    type: str
    message: str


class AnthropicError(TypedDict, total=False):
    type: Required[Literal["error"]]
    error: Required[AnthropicErrorDetail]
    request_id: str


class OpenAIErrorDetail(TypedDict):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(TypedDict):
    error: OpenAIErrorDetail


# --- admin: keys, limits, sessions ----------------------------------------------------------------


class LimitsBody(TypedDict, total=False):
    """Per-key overrides; null = no limit for this key; absent = the default."""

    rpm: int | None
    tpm: int | None
    daily_requests: int | None
    daily_tokens: int | None
    daily_usd: float | None
    monthly_requests: int | None
    monthly_tokens: int | None
    monthly_usd: float | None


class PeriodUsage(TypedDict):
    period: str
    requests: int
    tokens: int
    cost_usd: float
    resets_in_s: int


class KeyDescription(TypedDict):
    key_id: str
    configured: bool
    limits: LimitsBody
    overrides: LimitsBody
    defaults: LimitsBody
    usage: dict[str, PeriodUsage]


class KeyList(TypedDict):
    object: Literal["list"]
    data: list[KeyDescription]


class SessionTurn(TypedDict):
    turn: int
    at: float
    request_id: str | None
    client_key: str | None
    path: str
    status: int | None
    model: str | None
    provider: str | None
    stream: bool
    messages_from: int
    request: dict[str, Any]
    response: Any
    usage: dict[str, int]


class Session(TypedDict):
    id: str
    object: Literal["session"]
    turns: list[SessionTurn]


class Health(TypedDict, total=False):
    status: Required[str]
    version: str
    uptime_s: float
    provider: str
    model: str
    reason: str
