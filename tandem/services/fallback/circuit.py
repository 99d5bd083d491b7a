"""A circuit breaker for the upstream: closed -> open after N consecutive failures -> half-open
(one trial call) after a cool-down -> closed on success, open again on failure."""

from __future__ import annotations

import time
from enum import IntEnum


class CircuitState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(self, failures: int, open_s: float):
        self.threshold = failures
        self.open_s = open_s
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if time.monotonic() - self.opened_at >= self.open_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open, only one trial at a time)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def retry_in(self) -> float:
        return 0.0 if self.opened_at is None else max(0.0, self.open_s - (time.monotonic() - self.opened_at))

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._trial_running = False

    def failure(self) -> None:
        self.failures += 1
        self._trial_running = False
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = time.monotonic()
