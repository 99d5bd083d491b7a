"""The circuit breaker's states, on its own clock."""

from __future__ import annotations

import time

from tandem.services.fallback.circuit import CircuitBreaker, CircuitState


def test_opens_after_consecutive_failures_and_half_opens_for_one_trial():
    breaker = CircuitBreaker(failures=2, open_s=0.2)
    breaker.failure()
    assert breaker.allow() and breaker.state is CircuitState.CLOSED
    breaker.failure()
    assert breaker.state is CircuitState.OPEN and not breaker.allow()
    time.sleep(0.25)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow(), "only one trial call while half-open"
    breaker.failure()
    assert breaker.state is CircuitState.OPEN
    time.sleep(0.25)
    assert breaker.allow()
    breaker.success()
    assert breaker.state is CircuitState.CLOSED and breaker.allow()


def test_a_success_resets_the_failure_count():
    breaker = CircuitBreaker(failures=2, open_s=10)
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state is CircuitState.CLOSED
