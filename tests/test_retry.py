"""The one retry policy: transient errors only, bounded in attempts and time, Retry-After."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlboot._retry import RetryPolicy, call_with_retries
from mlboot.exceptions import AuthenticationError, ServiceError, ThrottledError
from mlboot.testing import FakeClock


def flaky(errors: list[Exception], result: str = "ok") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return calls, operation


def test_transient_errors_are_retried_until_success() -> None:
    clock = FakeClock()
    calls, operation = flaky([ServiceError("503", status=503, transient=True)] * 2)
    assert call_with_retries(operation, clock=clock, what="poll", rng=lambda: 1.0) == "ok"
    assert len(calls) == 3
    assert clock.sleeps == [1.0, 2.0]


def test_non_transient_errors_are_never_retried() -> None:
    clock = FakeClock()
    calls, operation = flaky([AuthenticationError("401")])
    with pytest.raises(AuthenticationError):
        call_with_retries(operation, clock=clock, what="poll")
    assert len(calls) == 1
    assert clock.sleeps == []


def test_attempts_are_bounded_and_the_last_error_surfaces() -> None:
    clock = FakeClock()
    errors: list[Exception] = [
        ServiceError(f"503 #{i}", status=503, transient=True) for i in range(9)
    ]
    calls, operation = flaky(errors)
    with pytest.raises(ServiceError, match="#3"):
        call_with_retries(operation, clock=clock, what="poll", policy=RetryPolicy(attempts=4))
    assert len(calls) == 4


def test_retry_after_is_honoured_when_longer_than_the_back_off() -> None:
    clock = FakeClock()
    calls, operation = flaky([ThrottledError("429", retry_after=7.0)])
    call_with_retries(operation, clock=clock, what="poll", rng=lambda: 0.5)
    assert clock.sleeps == [7.0]
    assert len(calls) == 2


def test_total_time_bounds_the_retries() -> None:
    clock = FakeClock()
    calls, operation = flaky([ThrottledError("429", retry_after=100.0)] * 3)
    with pytest.raises(ThrottledError):
        call_with_retries(
            operation, clock=clock, what="poll", policy=RetryPolicy(max_total_seconds=150)
        )
    assert len(calls) == 2
    assert clock.sleeps == [100.0]


def test_back_off_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert [policy.delay(n, None, lambda: 1.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(3, None, lambda: 0.25) == 1.0
