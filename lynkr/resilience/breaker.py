"""Per-backend circuit breakers: after repeated failures a backend is skipped at once for a while.

    closed --(failure_threshold failures in a row)--> open --(timeout)--> half-open
    half-open --(success_threshold successes)--> closed;  half-open --(a failure)--> open

Half-open lets one request through at a time (the probe); the others are refused as while open, so a
backend that is still down is not hit by every request in flight. A probe holds its place until its
outcome is recorded or it is ``release``d (an attempt that said nothing about the backend: the caller's
own 4xx, a client gone), and at most ``open_timeout`` in any case.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int = 5
    success_threshold: int = 2
    open_timeout: float = 30.0  # seconds
    clock: Callable[[], float] = time.monotonic
    state: str = "closed"
    failures: int = 0
    successes: int = 0
    opened_at: float = 0.0
    last_change: float = field(default_factory=time.time)
    probe: object | None = None  # the half-open probe in flight (a token its attempt holds), if any
    probe_since: float = 0.0
    totals: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0, "rejected": 0, "opened": 0})

    def allow(self) -> bool:
        """Whether a request may try this backend now; when half-open, the one that may becomes the probe
        (``probe`` is then its token, for ``release``)."""
        if self.state == "closed":
            return True
        now = self.clock()
        if self.state == "open":
            if now - self.opened_at < self.open_timeout:
                self.totals["rejected"] += 1
                return False
            self._move("half_open")
        if self.probe is not None and now - self.probe_since < self.open_timeout:
            self.totals["rejected"] += 1
            return False
        self.probe, self.probe_since = object(), now
        return True

    def release(self, probe: object | None) -> None:
        """The attempt holding ``probe`` ended without telling anything about the backend: the next request
        may probe."""
        if probe is not None and probe is self.probe:
            self.probe = None

    def retry_in(self) -> float:
        """Seconds until a refused request could be let through: the rest of the open time, or (a probe in
        flight) a second."""
        if self.state == "open":
            return max(0.0, self.open_timeout - (self.clock() - self.opened_at))
        return 1.0

    def record_success(self) -> None:
        self.totals["success"] += 1
        self.failures = 0
        if self.state == "half_open":
            self.probe = None
            self.successes += 1
            if self.successes >= self.success_threshold:
                self._move("closed")

    def record_failure(self) -> None:
        self.totals["failure"] += 1
        self.failures += 1
        if self.state == "half_open" or (self.state == "closed" and self.failures >= self.failure_threshold):
            self._move("open")

    def reset(self) -> None:
        self._move("closed")

    def _move(self, state: str) -> None:
        if state == "open":
            self.opened_at = self.clock()
            self.totals["opened"] += 1
        self.state = state
        self.failures = 0
        self.successes = 0
        self.probe = None
        self.last_change = time.time()

    def snapshot(self) -> dict[str, Any]:
        retry_in = self.retry_in() if self.state == "open" else None
        return {"name": self.name, "state": self.state, "failureCount": self.failures, "successCount": self.successes,
                "retryInSeconds": retry_in, "lastStateChange": self.last_change, "stats": dict(self.totals)}
