"""mlboot's one retry policy, for the operations mlboot itself repeats (status polls, lookups).

Exponential back-off with full jitter, honouring a service's ``Retry-After``, bounded in
attempts, in total time and by the deadline of the public call it runs in.  Only errors marked
``transient`` are retried: a 401, 403, 404 or a validation error fails at once.  Calls the SDK
already retries itself are not wrapped again, so retries never multiply.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

import attrs

from mlboot._clock import Clock
from mlboot._deadline import current as current_deadline
from mlboot._log import logger
from mlboot.exceptions import ServiceError

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@attrs.frozen
class RetryPolicy:
    """How often and how long to try a transient failure again.

    ``attempts`` counts the first call too.  The delay before retry *n* is a random share of
    ``min(max_delay, base_delay * 2 ** (n - 1))``, or the service's ``Retry-After`` when that is
    longer; no retry starts once ``max_total_seconds`` have passed since the first call.
    """

    attempts: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    max_total_seconds: float = attrs.field(default=120.0, validator=attrs.validators.ge(0))

    def delay(self, retry: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        jittered = ceiling * rng()
        return max(jittered, retry_after or 0.0)


DEFAULT_POLICY = RetryPolicy()


def call_with_retries(
    operation: Callable[[], T],
    *,
    clock: Clock,
    what: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    rng: Callable[[], float] = random.random,
) -> T:
    """Call ``operation``; on a transient :class:`~mlboot.exceptions.ServiceError`, try again.

    The last error is re-raised unchanged when the attempts or the time run out.  No retry is
    waited for past the deadline of the call this runs in (:mod:`mlboot._deadline`): the
    deadline is marked as reached and the error raised, for the call to report as a time-out.
    """
    started = clock.monotonic()
    retry = 0
    while True:
        try:
            return operation()
        except ServiceError as exc:  # noqa: PERF203  (retrying is this loop's whole purpose)
            retry += 1
            if not exc.transient or retry >= policy.attempts:
                raise
            delay = policy.delay(retry, exc.retry_after, rng)
            deadline = current_deadline()
            if deadline is not None and not deadline.allows(delay):
                deadline.trip(exc, delay)  # the call's bound() reports it as a time-out
                raise
            if clock.monotonic() - started + delay > policy.max_total_seconds:
                raise
            logger.warning(
                "%s failed (%s); retry %d of %d in %.1f s",
                what,
                exc,
                retry,
                policy.attempts - 1,
                delay,
            )
            clock.sleep(delay)
