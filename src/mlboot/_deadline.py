"""Deadlines: how long one public call may take, whatever the service answers.

A public call that takes a ``timeout`` (or has a documented bound) runs inside :func:`bounded`.
The deadline is kept per thread, so code far below the call can consult it without it being
passed through every signature: mlboot's own retries (:mod:`mlboot._retry`) and the hooks the
azureml-core backend installs in the SDK's retry loops
(:mod:`mlboot._backends.azureml._azureml`).  A retry whose wait would end after the deadline is
not waited for: the call ends at once with
:class:`~mlboot.exceptions.WaitTimeoutError`, raised from the last error the service caused.

This module imports no SDK; nested deadlines never extend an outer one.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import attrs

from mlboot._clock import Clock
from mlboot.exceptions import MlbootError, WaitTimeoutError

__all__ = [
    "CALL_BOUND_SECONDS",
    "Background",
    "Deadline",
    "DeadlineReachedError",
    "bounded",
    "carried",
    "current",
]

T = TypeVar("T")

CALL_BOUND_SECONDS = 120.0
"""The bound of a call without a ``timeout`` (:meth:`mlboot.Run.status`, one status poll)."""

_SUMMARY_LIMIT = 300


class DeadlineReachedError(Exception):
    """Raised inside the SDK by a hook when a retry would wait past the deadline.

    Never seen by callers: :func:`bounded` turns it (or whatever the SDK made of it) into
    :class:`~mlboot.exceptions.WaitTimeoutError`.
    """

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        super().__init__(f"{deadline.what}: out of time ({deadline.limit})")


@attrs.define(eq=False)
class Deadline:
    """The moment one public call must have ended by, on its backend's clock.

    ``what`` names the call ("looking up compute target 'gpu'"), ``limit`` the bound in words
    ("the time-out, timeout=60 s"), ``fix`` what the caller can do.  ``tripped`` becomes true
    the first time a retry is refused; ``cause`` is then the error that retry would have
    answered, and ``wanted`` the wait it asked for.
    """

    clock: Clock
    expires_at: float
    seconds: float
    what: str
    limit: str
    fix: str
    started: float
    tripped: bool = False
    cause: BaseException | None = None
    wanted: float | None = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def remaining(self) -> float:
        """Seconds left (negative once the deadline has passed)."""
        return self.expires_at - self.clock.monotonic()

    def allows(self, seconds: float) -> bool:
        """Whether a wait of ``seconds`` starting now ends by the deadline."""
        return self.clock.monotonic() + max(0.0, seconds) <= self.expires_at

    def trip(self, cause: BaseException | None, wanted: float | None = None) -> None:
        """Record that the call ran out of time, and why (the first reason wins)."""
        with self._lock:
            if not self.tripped:
                self.tripped = True
                self.cause = cause
                self.wanted = wanted

    def sleep(self, seconds: float, *, cause: BaseException | None) -> None:
        """Wait ``seconds``; raise :class:`DeadlineReachedError` rather than pass the deadline."""
        if not self.allows(seconds):
            self.trip(cause, seconds)
            raise DeadlineReachedError(self)
        self.clock.sleep(seconds)

    def error(self) -> WaitTimeoutError:
        """The caller's error: what ran out of time, the bound, the last answer and the fix."""
        elapsed = self.clock.monotonic() - self.started
        if self.wanted is not None and self.wanted > 0:
            why = (
                f"the next retry was due {self.wanted:.1f} s later, after the deadline, so it "
                "was not waited for"
            )
        else:
            why = "the time was up before the service had answered"
        last = f" The last answer: {_summary(self.cause)}." if self.cause is not None else ""
        return WaitTimeoutError(
            f"{self.what} did not finish within {self.limit}: after {elapsed:.1f} s {why}."
            f"{last} Fix: {self.fix}"
        )


_local = threading.local()


def current() -> Deadline | None:
    """The deadline of the call this thread is in, or ``None``."""
    stack: list[Deadline] = getattr(_local, "stack", [])
    return stack[-1] if stack else None


@contextlib.contextmanager
def _pushed(deadline: Deadline) -> Iterator[None]:
    stack: list[Deadline] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(deadline)
    try:
        yield
    finally:
        stack.pop()


@contextlib.contextmanager
def bounded(clock: Clock, seconds: float, *, what: str, limit: str, fix: str) -> Iterator[Deadline]:
    """Run the ``with`` block under a deadline ``seconds`` from now (or the caller's, if earlier).

    When a hook refused a retry, whatever the block raises is replaced by the deadline's
    :class:`~mlboot.exceptions.WaitTimeoutError`, raised from the error the service gave.
    """
    outer = current()
    now = clock.monotonic()
    if outer is not None and outer.expires_at <= now + seconds:
        yield outer  # the outer call's deadline is the tighter one and reports for both
        return
    deadline = Deadline(
        clock=clock,
        expires_at=now + seconds,
        seconds=seconds,
        what=what,
        limit=limit,
        fix=fix,
        started=now,
    )
    try:
        with _pushed(deadline):
            yield deadline
    except WaitTimeoutError:
        raise
    except Exception as exc:
        if not deadline.tripped:
            raise
        if deadline.cause is None:
            deadline.cause = _sdk_cause(exc)
        # From the SDK's own error: an mlboot error in between only translated it.
        cause = deadline.cause
        if isinstance(cause, MlbootError) and cause.__cause__ is not None:
            cause = cause.__cause__
        raise deadline.error() from cause


def carried(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` bound to this thread's deadline, for running in another thread.

    The SDK hands parts of one call (a snapshot's blob uploads) to its worker threads.
    """
    deadline = current()
    if deadline is None:
        return function

    @functools.wraps(function)
    def run_under_deadline(*args: object, **kwargs: object) -> T:
        with _pushed(deadline):
            return function(*args, **kwargs)

    return run_under_deadline


class Background(Generic[T]):
    """``task`` run on a thread of its own, under the caller's deadline, for the caller to collect.

    For the parts of one call that need not wait for each other (a v2 submit creates its
    environment while its snapshot uploads).  Collecting it (:meth:`result`, :meth:`settle`)
    waits no longer than the caller's deadline leaves, or :data:`CALL_BOUND_SECONDS` outside
    one; the thread is a daemon, so one that overran never keeps the process alive.
    """

    def __init__(self, task: Callable[[], T], *, name: str, what: str | None = None) -> None:
        """``name``: the thread's; ``what``: the task in words, for a time-out's message."""
        self._what = what or name
        self._deadline = current()
        self._outcome: list[T] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(carried(task),), name=name, daemon=True
        )
        self._thread.start()

    def _run(self, task: Callable[[], T]) -> None:
        try:
            self._outcome.append(task())
        except BaseException as exc:  # noqa: BLE001  (handed to the caller by result())
            self._error = exc

    def _joined(self) -> bool:
        deadline = self._deadline
        limit = CALL_BOUND_SECONDS if deadline is None else max(0.0, deadline.remaining())
        self._thread.join(min(limit, threading.TIMEOUT_MAX))  # a timeout=1e10 is allowed
        return not self._thread.is_alive()

    def result(self) -> T:
        """The task's value, or its error raised here; a task still running at the bound is a
        time-out (the deadline's, or :class:`~mlboot.exceptions.WaitTimeoutError`)."""
        if not self._joined():
            if self._deadline is not None:
                self._deadline.trip(None)
                raise DeadlineReachedError(self._deadline)
            raise WaitTimeoutError(
                f"{self._what} did not finish within {CALL_BOUND_SECONDS:g} s. Fix: retry; if it "
                "repeats, check the network connection to Azure."
            )
        if self._error is not None:
            raise self._error
        return self._outcome[0]

    def settle(self) -> None:
        """Wait (as :meth:`result` does) for the task to end, ignoring its outcome."""
        self._joined()


def _sdk_cause(exc: BaseException) -> BaseException | None:
    """The error the SDK handled when a hook raised :class:`DeadlineReachedError`, else ``exc``."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, DeadlineReachedError):
            return link.__context__
        link = link.__cause__ or link.__context__
    return exc


def _summary(exc: BaseException) -> str:
    """One bounded line for the last answer; an mlboot error's own advice is left out."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001  (a foreign __str__ may fail; the name still says something)
        text = ""
    if isinstance(exc, MlbootError):
        text = text.split(" Fix:", 1)[0]
    else:
        text = f"{type(exc).__name__}: {text}"
    text = " ".join(text.split()).rstrip(".")
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 3] + "..."
