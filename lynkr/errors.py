"""The one error tree of lynkr, and how each inbound API renders it.

    LynkrError                       status  anthropic type          openai type
    ├── ConfigError                  (CLI only: a one-line, actionable startup error)
    ├── ClientError                  400     invalid_request_error   invalid_request_error
    │   ├── InvalidRequest           400     invalid_request_error   invalid_request_error
    │   ├── NotFound                 404     not_found_error         not_found_error
    │   ├── MethodNotAllowed         405     invalid_request_error   invalid_request_error
    │   └── RequestTooLarge          413     request_too_large       invalid_request_error
    ├── AccessError                  inbound access control (lynkr.access): the caller, not the backend
    │   ├── AuthenticationFailed     401     authentication_error    invalid_request_error (+ x-should-retry: false)
    │   ├── PermissionDenied         403     permission_error        permission_error      (+ x-should-retry: false)
    │   ├── RateLimitExceeded        429     rate_limit_error        rate_limit_exceeded  (+ retry-after, ratelimit)
    │   └── BudgetExceeded           429     rate_limit_error        insufficient_quota   (+ x-should-retry: false)
    ├── Overloaded                   529     overloaded_error        server_error  (lynkr saturated; + retry-after)
    │   └── OverloadedOpenAI         503     overloaded_error        server_error  (the same, for OpenAI SDKs)
    ├── ShuttingDown                 503     overloaded_error        server_error  (draining; + retry-after)
    ├── NotConfigured                501     api_error               not_configured  (+ x-should-retry: false)
    └── UpstreamError                the backend failed us; always names the backend
        ├── UpstreamBadRequest       400     invalid_request_error   invalid_request_error
        ├── UpstreamAuthError        401     authentication_error    authentication_error
        ├── UpstreamPermissionError  403     permission_error        permission_error
        ├── UpstreamNotFound         404     not_found_error         not_found_error
        ├── UpstreamRateLimited      429     rate_limit_error        rate_limit_exceeded  (+ retry-after)
        ├── UpstreamOverloaded       529     overloaded_error        server_error         (+ retry-after)
        ├── UpstreamServerError      500     api_error               server_error
        ├── UpstreamTimeout          504     timeout_error           timeout
        ├── UpstreamUnavailable      502     api_error               server_error  (connection refused, DNS...)
        └── UpstreamBadResponse      502     api_error               server_error  (unparseable answer)

Foreign exceptions (aiohttp, json, asyncio timeouts) are mapped at the provider boundary
(``lynkr.providers.http``); handlers and middlewares only ever see these classes.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class LynkrError(Exception):
    status: ClassVar[int] = 500
    anthropic_type: ClassVar[str] = "api_error"
    openai_type: ClassVar[str] = "server_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class ConfigError(LynkrError):
    """Settings that cannot work; the CLI prints the message and exits 2."""


class ClientError(LynkrError):
    status = 400
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class InvalidRequest(ClientError):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class NotFound(ClientError):
    status = 404
    anthropic_type = "not_found_error"
    openai_type = "not_found_error"


class MethodNotAllowed(ClientError):
    status = 405


class RequestTooLarge(ClientError):
    status = 413
    anthropic_type = "request_too_large"


class AccessError(LynkrError):
    """Refused by lynkr's own access control; ``headers`` go out with the error response."""

    openai_code: ClassVar[str | None] = None

    def __init__(self, message: str, *, retry_after: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.headers = headers or {}


class AuthenticationFailed(AccessError):
    status = 401
    anthropic_type = "authentication_error"
    openai_type = "invalid_request_error"
    openai_code = "invalid_api_key"


class PermissionDenied(AccessError):
    status = 403
    anthropic_type = "permission_error"
    openai_type = "permission_error"


class RateLimitExceeded(AccessError):
    status = 429
    anthropic_type = "rate_limit_error"
    openai_type = "rate_limit_exceeded"
    openai_code = "rate_limit_exceeded"


class BudgetExceeded(AccessError):
    """A key's daily or monthly budget is spent: retrying before ``retry-after`` cannot help, so the SDKs
    are told not to retry (``x-should-retry: false``)."""

    status = 429
    anthropic_type = "rate_limit_error"
    openai_type = "insufficient_quota"
    openai_code = "insufficient_quota"


class Overloaded(LynkrError):
    """lynkr itself (not a backend) is over its limits."""

    status = 529
    anthropic_type = "overloaded_error"
    openai_type = "server_error"


class OverloadedOpenAI(Overloaded):
    """The same refusal for OpenAI-dialect clients, whose SDKs know 503 (529 is Anthropic's)."""

    status = 503


ABORTED = "lynkr is shutting down and this answer did not finish within GRACEFUL_SHUTDOWN_TIMEOUT; retry"


class ShuttingDown(LynkrError):
    status = 503
    anthropic_type = "overloaded_error"
    openai_type = "server_error"


class NotConfigured(LynkrError):
    """An endpoint lynkr has but the settings give it no backend for (e.g. embeddings with no embeddings
    backend). 501 because this server, as configured, does not implement it; retrying cannot help, so the
    response says ``x-should-retry: false`` (honoured by the openai and anthropic SDKs, which retry every 5xx)."""

    status = 501
    openai_type = "not_configured"


class UpstreamError(LynkrError):
    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        upstream_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.provider = provider
        self.upstream_status = upstream_status


class UpstreamBadRequest(UpstreamError):
    status = 400
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class UpstreamAuthError(UpstreamError):
    status = 401
    anthropic_type = "authentication_error"
    openai_type = "authentication_error"


class UpstreamPermissionError(UpstreamError):
    status = 403
    anthropic_type = "permission_error"
    openai_type = "permission_error"


class UpstreamNotFound(UpstreamError):
    status = 404
    anthropic_type = "not_found_error"
    openai_type = "not_found_error"


class UpstreamRateLimited(UpstreamError):
    status = 429
    anthropic_type = "rate_limit_error"
    openai_type = "rate_limit_exceeded"


class UpstreamOverloaded(UpstreamError):
    status = 529
    anthropic_type = "overloaded_error"


class UpstreamServerError(UpstreamError):
    status = 500


class UpstreamTimeout(UpstreamError):
    status = 504
    anthropic_type = "timeout_error"
    openai_type = "timeout"


class UpstreamUnavailable(UpstreamError):
    status = 502


class UpstreamBadResponse(UpstreamError):
    status = 502


def upstream_error_for_status(status: int) -> type[UpstreamError]:
    """The error class for a non-2xx status a backend answered with."""
    if status == 401:
        return UpstreamAuthError
    if status == 403:
        return UpstreamPermissionError
    if status == 404:
        return UpstreamNotFound
    if status in (408, 504):
        return UpstreamTimeout
    if status == 429:
        return UpstreamRateLimited
    if status in (503, 529):
        return UpstreamOverloaded
    if 400 <= status < 500:
        return UpstreamBadRequest
    return UpstreamServerError


# --- rendering: the only place that knows each API's error shape ---------------------------------


def anthropic_error_body(err: LynkrError, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": err.anthropic_type, "message": err.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def openai_error_body(err: LynkrError) -> dict[str, Any]:
    code: str | None = getattr(err, "field", None) and "invalid_value"
    if isinstance(err, UpstreamError) and err.upstream_status:
        code = f"upstream_{err.upstream_status}"
    if isinstance(err, AccessError) and err.openai_code:
        code = err.openai_code
    return {
        "error": {
            "message": err.message,
            "type": err.openai_type,
            "param": getattr(err, "field", None),
            "code": code,
        }
    }


def error_headers(err: LynkrError) -> dict[str, str]:
    if isinstance(err, NotConfigured):
        return {"x-should-retry": "false"}
    headers = dict(err.headers) if isinstance(err, AccessError) else {}
    if isinstance(err, BudgetExceeded | AuthenticationFailed | PermissionDenied):
        headers["x-should-retry"] = "false"  # the same key, again, cannot do better
    if err.retry_after is not None:
        # whole seconds, rounded up: a client that waits exactly this long is let in
        headers["retry-after"] = str(max(0, math.ceil(err.retry_after)))
    return headers
