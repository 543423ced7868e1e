"""Deadlines: no wait passes a call's deadline, and an exceeded one is a typed time-out."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

import mlboot
from mlboot._deadline import (
    CALL_BOUND_SECONDS,
    Background,
    Deadline,
    DeadlineReachedError,
    bounded,
    carried,
    current,
)
from mlboot._retry import call_with_retries
from mlboot.exceptions import ServiceError, ThrottledError, WaitTimeoutError
from mlboot.testing import FakeBackend, FakeClock


def _bounded(
    clock: FakeClock, seconds: float, what: str = "doing it"
) -> contextlib.AbstractContextManager[Deadline]:
    return bounded(clock, seconds, what=what, limit=f"timeout={seconds:g} s", fix="wait less.")


class SdkError(Exception):
    """Stands in for an error of azureml-core."""


def test_a_wait_that_would_pass_the_deadline_is_not_slept() -> None:
    clock = FakeClock()
    sdk_error = SdkError("HTTP 429 Too Many Requests")

    def throttled_twice() -> None:
        with _bounded(clock, 60) as deadline:
            assert current() is deadline
            clock.sleep(32)  # a first back-off fits
            try:
                raise sdk_error
            except SdkError:
                deadline.sleep(64, cause=sdk_error)  # 32 + 64 > 60

    with pytest.raises(WaitTimeoutError) as info:
        throttled_twice()
    assert clock.monotonic() == 32
    assert info.value.__cause__ is sdk_error
    text = str(info.value)
    assert text.startswith("doing it did not finish within timeout=60 s: after 32.0 s")
    assert "the next retry was due 64.0 s later" in text
    assert "SdkError: HTTP 429 Too Many Requests" in text
    assert text.endswith("Fix: wait less.")
    assert current() is None


def test_a_wait_that_fits_is_slept_on_the_clock() -> None:
    clock = FakeClock()
    with _bounded(clock, 10) as deadline:
        deadline.sleep(4, cause=None)
    assert clock.sleeps == [4]


def test_an_error_the_sdk_wrapped_around_the_hook_still_reports_the_time_out() -> None:
    clock = FakeClock()
    sdk_error = SdkError("HTTP 500")

    def wrapped_by_the_sdk() -> None:
        with _bounded(clock, 1) as deadline:
            try:
                try:
                    raise sdk_error
                except SdkError:
                    deadline.sleep(2, cause=None)
            except DeadlineReachedError as hook:
                raise RuntimeError("the SDK's own wrapper") from hook

    with pytest.raises(WaitTimeoutError) as info:
        wrapped_by_the_sdk()
    assert info.value.__cause__ is sdk_error


def test_errors_raised_before_the_deadline_is_reached_pass_unchanged() -> None:
    clock = FakeClock()
    with pytest.raises(ThrottledError), _bounded(clock, 60):
        raise ThrottledError("throttled")


def test_an_inner_bound_never_extends_the_outer_deadline() -> None:
    clock = FakeClock()
    with _bounded(clock, 5, "outer") as outer, _bounded(clock, 120, "inner") as inner:
        assert inner is outer
    with _bounded(clock, 120, "outer") as outer, _bounded(clock, 5, "inner") as inner:
        assert inner is not outer
        assert current() is inner
        assert inner.expires_at < outer.expires_at


def test_work_handed_to_another_thread_carries_the_deadline() -> None:
    clock = FakeClock()
    seen: list[object] = []
    with _bounded(clock, 5) as deadline:
        thread = threading.Thread(target=carried(lambda: seen.append(current())))
        thread.start()
        thread.join(timeout=10)
    assert seen == [deadline]
    assert carried(print) is print  # nothing to carry outside a deadline


def test_background_work_runs_under_the_callers_deadline_and_hands_back_its_value() -> None:
    clock = FakeClock()
    with _bounded(clock, 5) as deadline:
        task = Background(lambda: (current(), threading.current_thread().name), name="mlboot-t")
        seen, thread_name = task.result()
    assert seen is deadline
    assert thread_name == "mlboot-t"


def test_background_work_raises_its_own_error_to_the_caller() -> None:
    def fail() -> None:
        raise SdkError("the PUT was refused")

    task = Background(fail, name="mlboot-t")
    with pytest.raises(SdkError, match="refused"):
        task.result()
    task.settle()  # collecting it again ignores the outcome


def test_background_work_still_running_at_the_deadline_is_the_calls_time_out() -> None:
    clock = FakeClock()
    release = threading.Event()

    def collect_after_the_deadline() -> None:
        with _bounded(clock, 5) as deadline:
            task = Background(lambda: release.wait(10), name="mlboot-t")
            clock.advance(5)  # nothing left: the join gives up at once
            try:
                task.result()
            finally:
                assert deadline.tripped
                release.set()

    with pytest.raises(WaitTimeoutError, match="doing it did not finish"):
        collect_after_the_deadline()


def test_background_work_outside_a_deadline_is_bounded_by_the_call_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("mlboot._deadline.CALL_BOUND_SECONDS", 0.0)
    release = threading.Event()
    task = Background(lambda: release.wait(10), name="the environment's creation")
    try:
        with pytest.raises(WaitTimeoutError, match="the environment's creation did not finish"):
            task.result()
        task.settle()  # returns at the bound too, the task still running
    finally:
        release.set()


def test_background_work_under_a_far_deadline_is_collected() -> None:
    clock = FakeClock()
    with _bounded(clock, 1e10):  # past threading.TIMEOUT_MAX, which join() refuses
        assert Background(lambda: 7, name="mlboot-t").result() == 7


def test_mlboot_retries_stop_at_the_deadline_not_after_the_policy_total() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    def throttled() -> str:
        attempts.append(1)
        raise ThrottledError("throttled (HTTP 429)", retry_after=8.0)

    with pytest.raises(WaitTimeoutError) as info, _bounded(clock, 10):
        call_with_retries(throttled, clock=clock, what="poll")
    assert len(attempts) == 2
    assert clock.sleeps == [8.0]  # the second wait of 8 s would end at 16 s, after 10 s
    assert isinstance(info.value.__cause__, ThrottledError)


# -- the public calls, on the fake backend ---------------------------------------------------------


# The fake and workspace fixtures are tests/conftest.py's.


def _throttled(retry_after: float) -> ServiceError:
    return ThrottledError("throttled (HTTP 429). Fix: try again later.", retry_after=retry_after)


def test_a_wait_ends_by_its_timeout_when_every_poll_is_throttled(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_run("exp_1", experiment="exp", statuses=("Running",))
    run = mlboot.get_run(workspace, "exp_1")
    fake.fail("get_run_status", _throttled(retry_after=20.0), times=1000)
    with pytest.raises(WaitTimeoutError, match=r"^waiting for run 'exp_1' \(experiment 'exp'\)"):
        run.wait(timeout=30)
    assert fake.clock.monotonic() <= 30


def test_a_status_read_ends_within_its_bound_when_every_answer_is_throttled(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_run("exp_1", experiment="exp", statuses=("Running",))
    run = mlboot.get_run(workspace, "exp_1")
    fake.fail("get_run_status", _throttled(retry_after=50.0), times=1000)
    started = fake.clock.monotonic()
    with pytest.raises(WaitTimeoutError, match=r"within the bound of one status read \(120 s\)"):
        run.status()
    assert fake.clock.monotonic() - started <= CALL_BOUND_SECONDS


def test_submit_refuses_a_timeout_that_is_not_a_positive_number(
    workspace: mlboot.Workspace, tmp_path: Path
) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n", encoding="utf-8")
    with pytest.raises(mlboot.exceptions.InvalidInputError, match="timeout=0"):
        mlboot.submit_script(
            workspace,
            "train.py",
            compute="cpu",
            experiment="exp",
            source_directory=tmp_path,
            timeout=0,
        )
