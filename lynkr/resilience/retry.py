"""When to try a backend again, and how long to wait first (exponential backoff, full jitter)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from lynkr.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# connect errors, timeouts, 408/409/429/5xx/529 and unreadable answers are worth another try
_RETRYABLE = (UpstreamUnavailable, UpstreamTimeout, UpstreamRateLimited, UpstreamOverloaded,
              UpstreamServerError, UpstreamBadResponse)


def retryable(err: UpstreamError) -> bool:
    return isinstance(err, _RETRYABLE) or err.upstream_status in (408, 409)


def counts_against_backend(err: UpstreamError) -> bool:
    """Failures that say the backend is unwell (for its circuit breaker); a 4xx answer or a rate
    limit says nothing about its health."""
    return isinstance(err, (UpstreamUnavailable, UpstreamTimeout, UpstreamOverloaded, UpstreamServerError,
                            UpstreamBadResponse))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5  # seconds
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or None when not to retry.

        A ``retry-after`` longer than ``max_delay`` means: go elsewhere (None)."""
        if attempt > self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_delay else None
        return random.uniform(0, min(self.max_delay, self.initial_delay * 2 ** (attempt - 1)))
