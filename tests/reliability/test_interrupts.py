"""Ctrl-C during Run.wait: the run goes on (or is canceled when asked); the interrupt goes on."""

from __future__ import annotations

import sys

import pytest
from reliability_ledger import LEDGER

import mlboot
from mlboot.testing import FakeBackend, FakeClock


class InterruptingClock(FakeClock):
    """A fake clock whose ``interrupt_at``-th sleep is interrupted, as by Ctrl-C."""

    def __init__(self, interrupt_at: int = 1) -> None:
        super().__init__()
        self.interrupt_at = interrupt_at

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.sleeps) == self.interrupt_at:
            raise KeyboardInterrupt


@pytest.fixture
def clock() -> InterruptingClock:
    return InterruptingClock()


@pytest.fixture
def running(clock: InterruptingClock, workspace: mlboot.Workspace) -> mlboot.Run:
    fake = FakeBackend(clock=clock)
    fake.add_run("run-42", experiment="exp", statuses=("Running",))
    ws = mlboot.Workspace(
        name=workspace.name,
        subscription_id=workspace.subscription_id,
        resource_group=workspace.resource_group,
        location=workspace.location,
        backend=fake,
    )
    return mlboot.get_run(ws, "run-42")


def _fake(run: mlboot.Run) -> FakeBackend:
    backend = run.workspace.backend
    assert isinstance(backend, FakeBackend)
    return backend


def test_ctrl_c_leaves_the_run_running_and_says_how_to_reattach(
    running: mlboot.Run,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(KeyboardInterrupt):
        running.wait()
    fake = _fake(running)
    assert fake.calls_to("cancel_run") == []
    assert running.status() is mlboot.RunStatus.RUNNING
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        "run-42" in m and "mlboot.get_run(workspace, 'run-42')" in m and "still running" in m
        for m in warnings
    ), warnings
    assert capsys.readouterr().out == ""  # nothing printed unless show_output=True
    LEDGER.interrupt()


def test_ctrl_c_with_show_output_also_prints_the_reattach_hint(
    running: mlboot.Run, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(KeyboardInterrupt):
        running.wait(show_output=True)
    out = capsys.readouterr().out
    assert "mlboot.get_run(workspace, 'run-42')" in out.splitlines()[-1]
    assert _fake(running).calls_to("cancel_run") == []
    LEDGER.interrupt()


def test_cancel_on_interrupt_cancels_once_then_reraises(
    running: mlboot.Run, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(KeyboardInterrupt):
        running.wait(cancel_on_interrupt=True)
    fake = _fake(running)
    assert len(fake.calls_to("cancel_run")) == 1
    assert "asked Azure ML to cancel run run-42" in caplog.text
    # The service takes it from there: CancelRequested, then Canceled.
    assert running.status() is mlboot.RunStatus.CANCEL_REQUESTED
    assert running.status() is mlboot.RunStatus.CANCELED
    LEDGER.interrupt()


def test_a_failed_cancel_does_not_swallow_the_interrupt(
    running: mlboot.Run, caplog: pytest.LogCaptureFixture
) -> None:
    fake = _fake(running)
    fake.fail("cancel_run", "permission")
    with pytest.raises(KeyboardInterrupt):
        running.wait(cancel_on_interrupt=True)
    assert len(fake.calls_to("cancel_run")) == 1
    assert "could not cancel run run-42" in caplog.text
    assert "mlboot.get_run(workspace, 'run-42')" in caplog.text
    LEDGER.interrupt()


def test_ctrl_c_during_a_retry_back_off_is_handled_the_same(
    running: mlboot.Run, clock: InterruptingClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = _fake(running)
    fake.fail("get_run_status", "transient")  # the first sleep is now the retry's back-off
    with pytest.raises(KeyboardInterrupt):
        running.wait()
    assert len(fake.calls_to("get_run_status")) == 1
    assert len(clock.sleeps) == 1
    assert fake.calls_to("cancel_run") == []
    assert "still running" in caplog.text
    LEDGER.interrupt()


def test_ctrl_c_inside_a_status_request_is_handled_the_same(running: mlboot.Run) -> None:
    fake = _fake(running)

    def interrupt(_call: object) -> None:
        raise KeyboardInterrupt

    fake.before("get_run_status", interrupt)
    with pytest.raises(KeyboardInterrupt):
        running.wait(cancel_on_interrupt=True)
    assert len(fake.calls_to("cancel_run")) == 1
    LEDGER.interrupt()


def test_wait_without_interrupt_is_unchanged(workspace: mlboot.Workspace) -> None:
    fake = workspace.backend
    assert isinstance(fake, FakeBackend)
    fake.add_run("run-7", statuses=("Running", "Finalizing", "Completed"))
    run = mlboot.get_run(workspace, "run-7")
    assert run.wait(cancel_on_interrupt=True) is mlboot.RunStatus.COMPLETED
    assert fake.calls_to("cancel_run") == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11+")
def test_the_interrupt_carries_the_reattach_hint_as_a_note(running: mlboot.Run) -> None:
    with pytest.raises(KeyboardInterrupt) as caught:
        running.wait()
    notes = getattr(caught.value, "__notes__", [])
    assert len(notes) == 1
    assert "mlboot.get_run(workspace, 'run-42')" in notes[0]
    assert "still running" in notes[0]
