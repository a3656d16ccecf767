"""AWS event streams (``application/vnd.amazon.eventstream``, Bedrock's ConverseStream): binary frames ->
``(event type, JSON payload)``, decoded incrementally by botocore's parser (both CRC32s checked); exception
and error frames become lynkr's upstream errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError

from lynkr.errors import (
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamPermissionError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)

BACKEND = "bedrock"
BedrockEvent = tuple[str, dict[str, Any]]  # (``:event-type``, JSON payload)

# ConverseStream exception frames (``:exception-type``) -> lynkr's error classes
_STREAM_EXCEPTIONS: dict[str, type[UpstreamError]] = {
    "throttlingException": UpstreamRateLimited,
    "validationException": UpstreamBadRequest,
    "serviceUnavailableException": UpstreamOverloaded,
    "internalServerException": UpstreamServerError,
    "modelStreamErrorException": UpstreamServerError,
    "modelTimeoutException": UpstreamTimeout,
    "accessDeniedException": UpstreamPermissionError,
}


def _header(message: EventStreamMessage, name: str) -> str:
    value = message.headers.get(name)
    return value if isinstance(value, str) else ""


class EventStreamDecoder:
    """AWS event-stream frames -> ``(event type, payload)``, fed bytes as they arrive in any pieces.

    botocore's ``EventStreamBuffer`` parses the frames and checks both CRC32s; its errors, and
    ``exception`` / ``error`` frames, become lynkr upstream errors (raised after the events before them).
    """

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()
        self._pending = 0  # bytes fed but not yet part of a whole frame

    def feed(self, data: bytes) -> Iterator[BedrockEvent]:
        if not data:
            return
        self._pending += len(data)
        self._buffer.add_data(data)
        while True:
            try:
                message = next(self._buffer)
            except StopIteration:
                return
            except ParserError as exc:
                raise UpstreamBadResponse(f"Bedrock sent a broken event-stream frame ({exc})",
                                          provider=BACKEND) from None
            self._pending -= message.prelude.total_length
            yield self._event(message)

    def close(self) -> None:
        if self._pending:
            raise UpstreamBadResponse(f"Bedrock's stream ended inside a frame ({self._pending} bytes left over)",
                                      provider=BACKEND)

    @staticmethod
    def _event(message: EventStreamMessage) -> BedrockEvent:
        kind = _header(message, ":message-type") or "event"
        if kind == "exception":
            name = _header(message, ":exception-type")
            raise _exception(name, _payload(message, name))
        if kind == "error":
            code, text = _header(message, ":error-code"), _header(message, ":error-message")
            raise UpstreamServerError(f"Bedrock stream error {code}: {text}", provider=BACKEND)
        name = _header(message, ":event-type")
        return name, _payload(message, name)


def _payload(message: EventStreamMessage, name: str) -> dict[str, Any]:
    try:
        value = orjson.loads(message.payload) if message.payload else {}
    except orjson.JSONDecodeError:
        raise UpstreamBadResponse(f"Bedrock {name or 'event'} frame payload is not JSON: {message.payload[:200]!r}",
                                  provider=BACKEND) from None
    if not isinstance(value, dict):
        raise UpstreamBadResponse(f"Bedrock {name or 'event'} frame payload is not an object", provider=BACKEND)
    return value


def _exception(name: str, payload: dict[str, Any]) -> UpstreamError:
    cls = _STREAM_EXCEPTIONS.get(name, UpstreamServerError)
    text = str(payload.get("message") or payload.get("Message") or "no message")
    if payload.get("originalStatusCode") or payload.get("originalMessage"):
        text += f" (model said {payload.get('originalStatusCode', '?')}: {payload.get('originalMessage', '')})"
    return cls(f"Bedrock {name or 'exception'}: {text}", provider=BACKEND)
