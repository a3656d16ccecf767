"""Per-backend circuit breakers: after repeated failures a backend is skipped at once for a while.

    closed --(failure_threshold failures in a row)--> open --(timeout)--> half-open
    half-open --(success_threshold successes)--> closed;  half-open --(a failure)--> open
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
    totals: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0, "rejected": 0, "opened": 0})

    def allow(self) -> bool:
        if self.state == "open":
            if self.clock() - self.opened_at >= self.open_timeout:
                self._move("half_open")
            else:
                self.totals["rejected"] += 1
                return False
        return True

    def record_success(self) -> None:
        self.totals["success"] += 1
        self.failures = 0
        if self.state == "half_open":
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
        self.last_change = time.time()

    def snapshot(self) -> dict[str, Any]:
        retry_in = max(0.0, self.open_timeout - (self.clock() - self.opened_at)) if self.state == "open" else None
        return {"name": self.name, "state": self.state, "failureCount": self.failures, "successCount": self.successes,
                "retryInSeconds": retry_in, "lastStateChange": self.last_change, "stats": dict(self.totals)}
