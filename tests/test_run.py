"""The Run handle: waiting, failures, time-outs, streaming, and the rest, on FakeBackend's clock."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import uuid
from pathlib import Path
from typing import Any

import pytest

import mlboot
from fake_workspaces import make_workspace
from mlboot import Run, RunStatus, get_run, submit_script
from mlboot.backend import WorkspaceRef
from mlboot.exceptions import (
    InvalidInputError,
    MlbootError,
    NotFoundError,
    PermissionDeniedError,
    RunFailedError,
    SdkObjectUnavailableError,
    ServiceError,
    WaitTimeoutError,
)
from mlboot.testing import FakeBackend

# Every status string azureml-core 1.61 knows (azureml/_restclient/constants.py, RunStatus).
SDK_STATUSES = (
    "NotStarted",
    "Queued",
    "Preparing",
    "Provisioning",
    "Starting",
    "Running",
    "Unapproved",
    "NotResponding",
    "Pausing",
    "Paused",
    "CancelRequested",
    "Finalizing",
    "Completed",
    "Failed",
    "Canceled",
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("print('training')\n", encoding="utf-8")
    return tmp_path


def start(fake: FakeBackend, workspace: mlboot.Workspace, project: Path, **program: Any) -> Run:
    """Program the next run, submit it, and forget the calls made so far."""
    fake.program_run(**program)
    run = submit_script(
        workspace, "train.py", compute="cpu", experiment="exp", source_directory=project
    )
    fake.calls.clear()
    return run


def operations(fake: FakeBackend) -> list[str]:
    return [call.operation for call in fake.calls]


# -- RunStatus -------------------------------------------------------------------------------------


def test_every_sdk_status_has_a_member() -> None:
    for text in SDK_STATUSES:
        member = RunStatus.from_service(text)
        assert member.value == text
        assert member is not RunStatus.UNKNOWN
    assert {m.value for m in RunStatus} == {*SDK_STATUSES, "Unknown"}


@pytest.mark.parametrize(
    ("status", "terminal", "running", "post_processing"),
    [
        (RunStatus.NOT_STARTED, False, True, False),
        (RunStatus.QUEUED, False, True, False),
        (RunStatus.PREPARING, False, True, False),
        (RunStatus.PROVISIONING, False, True, False),
        (RunStatus.STARTING, False, True, False),
        (RunStatus.RUNNING, False, True, False),
        (RunStatus.UNAPPROVED, False, True, False),
        (RunStatus.NOT_RESPONDING, False, True, False),
        (RunStatus.PAUSING, False, True, False),
        (RunStatus.PAUSED, False, True, False),
        (RunStatus.CANCEL_REQUESTED, False, False, True),
        (RunStatus.FINALIZING, False, False, True),
        (RunStatus.COMPLETED, True, False, False),
        (RunStatus.FAILED, True, False, False),
        (RunStatus.CANCELED, True, False, False),
        (RunStatus.UNKNOWN, False, False, False),
    ],
)
def test_status_groups(
    status: RunStatus, terminal: bool, running: bool, post_processing: bool
) -> None:
    assert status.is_terminal is terminal
    assert status.is_running is running
    assert status.is_post_processing is post_processing
    assert status.is_successful is (status is RunStatus.COMPLETED)


def test_an_unknown_status_string_does_not_crash(caplog: pytest.LogCaptureFixture) -> None:
    text = f"Rebooting{uuid.uuid4().hex}"  # never seen before in this process

    with caplog.at_level(logging.WARNING, logger="mlboot"):
        status = RunStatus.from_service(text)
        again = RunStatus.from_service(text)

    assert status is again is RunStatus.UNKNOWN
    assert not status.is_terminal
    assert caplog.text.count(repr(text)) == 1  # one warning, not one per poll


def test_status_strings_compare_without_regard_to_case() -> None:
    assert RunStatus.from_service("completed") is RunStatus.COMPLETED
    assert str(RunStatus.CANCEL_REQUESTED) == "CancelRequested"
    assert RunStatus.RUNNING.value == "Running"
    assert f"{RunStatus.RUNNING}" == "Running"


def test_status_reads_the_current_status(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Queued", "Running"])

    assert run.status() is RunStatus.QUEUED
    assert run.status() is RunStatus.RUNNING
    assert operations(fake) == ["get_run_status", "get_run_status"]


# -- wait: outcomes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "ended"),
    [
        pytest.param(["Queued", "Running", "Completed"], RunStatus.COMPLETED, id="completed"),
        pytest.param(
            ["Running", "Finalizing", "Finalizing", "Completed"],
            RunStatus.COMPLETED,
            id="never-while-finalizing",
        ),
        pytest.param(
            ["Running", "CancelRequested", "CancelRequested", "Canceled"],
            RunStatus.CANCELED,
            id="never-while-cancel-is-requested",
        ),
        pytest.param(
            ["Running", "Hibernating", "Hibernating", "Completed"],
            RunStatus.COMPLETED,
            id="through-an-unknown-status",
        ),
    ],
)
def test_wait_polls_until_a_final_status_and_returns_it(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    statuses: list[str],
    ended: RunStatus,
) -> None:
    run = start(fake, workspace, project, statuses=statuses)

    assert run.wait() is ended
    assert operations(fake) == ["get_run_status"] * len(statuses)


def test_a_run_that_fails_while_finalizing_raises(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(
        fake,
        workspace,
        project,
        statuses=["Running", "Finalizing", "Failed"],
        logs="epoch 1\nboom\n",
        error="UserError: the script exited with code 1",
    )

    with pytest.raises(RunFailedError) as caught:
        run.wait()

    assert caught.value.error == "UserError: the script exited with code 1"
    assert caught.value.log_tail == ("epoch 1", "boom")


def test_a_failed_run_raises_with_its_id_url_error_and_log_tail(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    log = "".join(f"line {n}\n" for n in range(1, 121))
    run = start(
        fake,
        workspace,
        project,
        statuses=["Running", "Failed"],
        logs=log,
        error="UserError: CUDA out of memory",
    )

    with pytest.raises(RunFailedError) as caught:
        run.wait()

    failure = caught.value
    assert isinstance(failure, RuntimeError)
    assert isinstance(failure, MlbootError)
    assert failure.run_id == run.id
    assert failure.portal_url == run.portal_url
    assert failure.error == "UserError: CUDA out of memory"
    assert len(failure.log_tail) == 50
    assert failure.log_tail[0] == "line 71"
    assert failure.log_tail[-1] == "line 120"
    message = str(failure)
    assert run.id in message
    assert "CUDA out of memory" in message
    assert "line 120" in message
    assert "line 70\n" not in message


def test_a_failed_run_without_a_readable_log_still_raises_run_failed(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Failed"], error="boom")
    fake.fail("get_run_logs", "permission")

    with pytest.raises(RunFailedError) as caught:
        run.wait()

    assert caught.value.error == "boom"
    assert caught.value.log_tail == ()


def test_a_failed_run_without_an_error_message_says_so(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Failed"])

    with pytest.raises(RunFailedError, match="no error message") as caught:
        run.wait()

    assert caught.value.error is None


def test_cancel_then_wait_returns_canceled(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Running"])
    assert run.status() is RunStatus.RUNNING

    run.cancel()

    assert run.wait() is RunStatus.CANCELED
    assert operations(fake)[:2] == ["get_run_status", "cancel_run"]
    assert fake.calls[1].arguments == {"ref": workspace.ref, "run_id": run.id}


# -- wait: time -----------------------------------------------------------------------------------


def test_the_pause_between_polls_grows_to_a_minute(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Running"] * 14 + ["Completed"])

    run.wait()

    expected = [2.0, 3.0, 4.5, 6.75, 10.125, 15.1875, 22.78125, 34.171875, 51.2578125]
    expected += [60.0] * 5
    assert fake.clock.sleeps == pytest.approx(expected)


def test_a_long_first_pause_stays_constant(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Running"] * 3 + ["Completed"])

    run.wait(poll_interval=90)

    assert fake.clock.sleeps == [90.0, 90.0, 90.0]


def test_a_time_out_raises_and_leaves_the_run_running(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Queued", "Running"])

    with pytest.raises(WaitTimeoutError) as caught:
        run.wait(timeout=10)

    assert isinstance(caught.value, TimeoutError)
    assert "Running" in str(caught.value)
    assert "left running" in str(caught.value)
    assert fake.clock.monotonic() == 10.0
    assert fake.clock.sleeps == [2.0, 3.0, 4.5, 0.5]
    assert "cancel_run" not in operations(fake)
    assert run.status() is RunStatus.RUNNING


def test_a_time_out_may_be_a_timedelta(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Running"])

    with pytest.raises(WaitTimeoutError):
        run.wait(timeout=dt.timedelta(minutes=5))

    assert fake.clock.monotonic() == 300.0


def test_waiting_again_after_a_time_out_reaches_the_end(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Running"] * 5 + ["Completed"])
    with pytest.raises(WaitTimeoutError):
        run.wait(timeout=4)

    assert run.wait() is RunStatus.COMPLETED


class WakingFake(FakeBackend):
    """A backend whose pauses end early when the status changes, as LocalBackend's do."""

    def __init__(self, *, woken_after: float | None) -> None:
        super().__init__()
        self.woken_after = woken_after  # None: nothing changes, the pause runs its course
        self.pauses: list[tuple[WorkspaceRef, str, str, float]] = []

    def pause_until_status_changes(
        self, ref: WorkspaceRef, run_id: str, status: str, seconds: float
    ) -> None:
        self.pauses.append((ref, run_id, status, seconds))
        self.clock.advance(seconds if self.woken_after is None else self.woken_after)


def test_wait_pauses_through_a_backend_that_wakes_on_a_status_change(project: Path) -> None:
    fake = WakingFake(woken_after=0.25)
    workspace = make_workspace(fake)
    run = start(fake, workspace, project, statuses=["Queued", "Running", "Completed"])

    assert run.wait(poll_interval=2) is RunStatus.COMPLETED

    # The status it last read, and the pause the schedule asks for; no clock.sleep at all.
    assert fake.pauses == [
        (workspace.ref, run.id, "Queued", 2.0),
        (workspace.ref, run.id, "Running", 3.0),
    ]
    assert fake.clock.sleeps == []
    assert fake.clock.monotonic() == 0.5  # woken early twice


def test_a_waking_backend_still_gets_pauses_cut_to_the_time_out(project: Path) -> None:
    fake = WakingFake(woken_after=None)
    run = start(fake, make_workspace(fake), project, statuses=["Running"])

    with pytest.raises(WaitTimeoutError):
        run.wait(timeout=4, poll_interval=2)

    assert [seconds for *_, seconds in fake.pauses] == [2.0, 2.0]
    assert fake.clock.sleeps == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *(("timeout", value) for value in [0, -1, math.nan, math.inf, True, "60", dt.timedelta(0)]),
        *(("poll_interval", value) for value in [0, -2, math.nan, math.inf, False, "2"]),
    ],
)
def test_bad_time_outs_and_poll_intervals_are_refused_before_polling(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, field: str, value: object
) -> None:
    run = start(fake, workspace, project)

    with pytest.raises(InvalidInputError) as caught:
        run.wait(**{field: value})

    assert caught.value.field == field
    assert fake.calls == []


# -- wait: failures of the polls themselves --------------------------------------------------------


def test_transient_poll_failures_are_survived(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Running", "Completed"])
    fake.fail("get_run_status", "transient", times=2)
    fake.fail("get_run_status", "throttled", times=1)

    assert run.wait() is RunStatus.COMPLETED
    assert operations(fake) == ["get_run_status"] * 5


def test_a_lasting_transient_failure_ends_the_wait_after_a_few_attempts(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Running"])
    fake.fail("get_run_status", "server", times=100)

    with pytest.raises(ServiceError) as caught:
        run.wait()

    assert caught.value.transient
    assert operations(fake) == ["get_run_status"] * 4  # the retry policy's attempts


def test_a_permanent_poll_failure_surfaces_at_once(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, statuses=["Running"])
    fake.fail("get_run_status", "permission")

    with pytest.raises(PermissionDeniedError):
        run.wait()

    assert operations(fake) == ["get_run_status"]
    assert fake.clock.sleeps == []


# -- wait: output ----------------------------------------------------------------------------------


class ReplacingLogBackend(FakeBackend):
    """A FakeBackend whose run log is a different text at each read (the last one repeats)."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__()
        self.texts = texts
        self.reads = 0

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        super().get_run_logs(ref, run_id)
        self.reads += 1
        return self.texts[min(self.reads, len(self.texts)) - 1]


class GrowingLogBackend(ReplacingLogBackend):
    """A FakeBackend whose run log grows by one piece at every read."""

    def __init__(self, pieces: list[str]) -> None:
        super().__init__(list(itertools.accumulate(pieces)))


def test_show_output_prints_each_piece_of_the_log_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = GrowingLogBackend(["epoch 1\n", "epoch 2\n", "epoch 3\nsaving", " model\n"])
    run = start(fake, make_workspace(fake), project, statuses=["Running"] * 3 + ["Completed"])

    run.wait(show_output=True)

    out = capsys.readouterr().out
    for line in ("epoch 1", "epoch 2", "epoch 3", "saving model"):
        assert out.count(line) == 1
    assert out.index("epoch 1") < out.index("epoch 2") < out.index("epoch 3")
    assert out.index("saving model") < out.index(f"Run {run.id} ended Completed")
    assert run.id in out.splitlines()[0]
    assert "Running" in out


def test_show_output_reads_the_log_as_often_as_the_sdk_between_slow_status_reads(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = GrowingLogBackend([f"line {n}\n" for n in range(40)])
    run = start(fake, make_workspace(fake), project, statuses=["Running", "Completed"])

    run.wait(show_output=True, poll_interval=60.0)

    # One 60 s pause between the two status reads, the log read every 2 s within it, as
    # azureml-core's wait_for_completion(show_output=True) does for the first half minute.
    assert len(fake.calls_to("get_run_status")) == 2
    assert fake.clock.sleeps[:13] == [2.0] * 13
    assert sum(fake.clock.sleeps) == pytest.approx(60.0)
    assert fake.reads >= 20
    assert "line 20" in capsys.readouterr().out


class ReadTimesBackend(FakeBackend):
    """A FakeBackend that notes, on its clock, when the status and the log were read."""

    def __init__(self) -> None:
        super().__init__()
        self.status_reads: list[float] = []
        self.log_reads: list[float] = []

    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        self.status_reads.append(self.clock.monotonic())
        return super().get_run_status(ref, run_id)

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        self.log_reads.append(self.clock.monotonic())
        return super().get_run_logs(ref, run_id)


def test_show_output_never_reads_the_log_later_than_the_sdk_would_over_a_long_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = ReadTimesBackend()
    run = start(fake, make_workspace(fake), project, statuses=["Running"] * 18 + ["Completed"])

    run.wait(show_output=True)

    def sdk_pause(elapsed: float) -> float:  # Run._wait_before_polling, azureml/core/run.py
        return max(2.0, 60.0 / (1.0 + 100.0 * math.exp(-elapsed / 20.0)))

    reads = fake.log_reads
    assert reads[0] == 0.0  # at once; the SDK's first log read comes after 2 s
    assert reads[-1] > 600.0  # the sigmoid's whole climb to 60 s, and beyond
    for before, after in itertools.pairwise(reads):
        assert 0 < after - before <= sdk_pause(before) + 1e-9, (before, after)
    assert set(fake.status_reads) <= set(reads)  # each status read shows the log it led to
    assert "Completed" in capsys.readouterr().out


def test_status_lines_never_join_a_partial_log_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = GrowingLogBackend(["no newline yet"])
    run = start(fake, make_workspace(fake), project, statuses=["Running", "Completed"])

    run.wait(show_output=True)

    lines = capsys.readouterr().out.splitlines()
    assert "no newline yet" in lines
    assert lines[-1] == f"Run {run.id} ended Completed"


def test_without_show_output_nothing_is_printed_and_no_log_is_read(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = start(fake, workspace, project, statuses=["Running", "Completed"], logs="hello\n")

    run.wait()

    assert capsys.readouterr() == ("", "")
    assert "get_run_logs" not in operations(fake)


def test_a_failed_run_with_show_output_prints_its_log_and_raises(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = start(fake, workspace, project, statuses=["Failed"], logs="Traceback\n", error="x")

    with pytest.raises(RunFailedError):
        run.wait(show_output=True)

    assert capsys.readouterr().out.count("Traceback") == 1


def test_an_unreadable_log_does_not_end_the_wait(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = start(fake, workspace, project, statuses=["Running", "Running", "Completed"], logs="ok\n")
    fake.fail("get_run_logs", "permission")

    assert run.wait(show_output=True) is RunStatus.COMPLETED

    assert "no more log will be shown" in caplog.text
    assert "ok" not in capsys.readouterr().out.splitlines()
    assert operations(fake).count("get_run_logs") == 1


def test_a_log_that_starts_over_is_shown_whole(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = ReplacingLogBackend(["preparing image\n", "epoch 1\nepoch 2\n"])
    run = start(fake, make_workspace(fake), project, statuses=["Running", "Running", "Completed"])

    run.wait(show_output=True)

    out = capsys.readouterr().out
    assert out.count("preparing image") == 1
    assert out.count("epoch 1") == 1
    assert out.count("epoch 2") == 1
    assert out.index("preparing image") < out.index("epoch 1")


def test_a_transient_log_failure_is_tried_again_at_the_next_poll(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = start(fake, workspace, project, statuses=["Running", "Running", "Completed"], logs="ok\n")
    fake.fail("get_run_logs", "transient", times=4)  # every attempt of the first poll

    assert run.wait(show_output=True) is RunStatus.COMPLETED

    assert "will try again" in caplog.text
    assert capsys.readouterr().out.splitlines().count("ok") == 1


def test_status_changes_are_logged_at_info(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = start(fake, workspace, project, statuses=["Queued", "Queued", "Running", "Completed"])

    with caplog.at_level(logging.INFO, logger="mlboot"):
        run.wait()

    changes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Run ")]
    assert [message.split(" is ")[1].split(" after")[0] for message in changes] == [
        "Queued",
        "Running",
        "Completed",
    ]


# -- the other methods -----------------------------------------------------------------------------


def test_metrics_returns_every_logged_value(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, metrics={"loss": [0.9, 0.5, 0.2], "accuracy": [0.8]})

    assert run.metrics() == {"loss": [0.9, 0.5, 0.2], "accuracy": [0.8]}
    assert operations(fake) == ["get_run_metrics"]


def test_logs_returns_the_log_so_far(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project, logs="step 1\nstep 2\n")

    assert run.logs() == "step 1\nstep 2\n"


def test_download_outputs_writes_and_returns_the_files(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, tmp_path: Path
) -> None:
    run = start(
        fake, workspace, project, outputs={"model.pt": b"weights", "eval/report.json": b"{}"}
    )
    destination = tmp_path / "downloads" / "run-1"

    paths = run.download_outputs(destination)

    assert sorted(paths) == sorted(
        [destination / "outputs" / "model.pt", destination / "outputs" / "eval" / "report.json"]
    )
    assert (destination / "outputs" / "model.pt").read_bytes() == b"weights"
    assert fake.calls[-1].arguments["destination"] == destination


def test_download_outputs_refuses_a_file_as_destination(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, tmp_path: Path
) -> None:
    run = start(fake, workspace, project)
    target = tmp_path / "file.txt"
    target.write_text("", encoding="utf-8")

    with pytest.raises(InvalidInputError) as caught:
        run.download_outputs(target)

    assert caught.value.field == "destination"
    assert fake.calls == []


@pytest.mark.parametrize("destination", ["", 42, None])
def test_download_outputs_needs_a_path(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, destination: object
) -> None:
    run = start(fake, workspace, project)

    with pytest.raises(InvalidInputError):
        run.download_outputs(destination)  # type: ignore[arg-type]

    assert fake.calls == []


def test_to_azureml_reaches_the_backend(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = start(fake, workspace, project)

    with pytest.raises(NotImplementedError) as caught:
        run.to_azureml()

    # The fake has no SDK objects: a typed error names the run, and the backend is not asked.
    assert isinstance(caught.value, SdkObjectUnavailableError)
    assert f"run {run.id!r}" in str(caught.value)
    assert operations(fake) == []


def test_runs_are_equal_by_id_and_experiment(fake: FakeBackend) -> None:
    one = Run("id-1", "exp", workspace=make_workspace(fake))
    other = Run("id-1", "exp", workspace=make_workspace(FakeBackend()))

    assert one == other
    assert "workspace" not in repr(one)


# -- get_run ---------------------------------------------------------------------------------------


def test_get_run_reattaches_to_an_existing_run(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_run("nightly_1700000000_1", experiment="nightly", statuses=["Running", "Completed"])

    run = get_run(workspace, "nightly_1700000000_1")

    assert run.id == "nightly_1700000000_1"
    assert run.experiment == "nightly"
    assert run.portal_url is not None
    assert operations(fake) == ["get_run_details"]
    assert run.wait() is RunStatus.COMPLETED


def test_get_run_finds_a_run_submitted_in_this_process(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    submitted = start(fake, workspace, project)

    assert get_run(workspace, submitted.id) == submitted


def test_get_run_raises_not_found_for_an_unknown_id(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    with pytest.raises(NotFoundError, match="'no-such-run'") as caught:
        get_run(workspace, "no-such-run")

    assert isinstance(caught.value, LookupError)
    assert "Fix:" in str(caught.value)
    assert operations(fake) == ["get_run_details"]


@pytest.mark.parametrize("run_id", ["", " id", "id\n", 42, None])
def test_get_run_refuses_a_bad_id(
    fake: FakeBackend, workspace: mlboot.Workspace, run_id: object
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        get_run(workspace, run_id)  # type: ignore[arg-type]

    assert caught.value.field == "run_id"
    assert fake.calls == []


def test_get_run_needs_a_workspace(fake: FakeBackend) -> None:
    with pytest.raises(InvalidInputError) as caught:
        get_run("ws", "id")  # type: ignore[arg-type]

    assert caught.value.field == "workspace"


def test_show_output_prints_the_last_log_lines_before_the_final_status(
    fake: FakeBackend, workspace: mlboot.Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_run("ordered", statuses=["Running", "Completed"], logs="epoch 1\nsaved model\n")
    get_run(workspace, "ordered").wait(show_output=True, timeout=600)
    lines = capsys.readouterr().out.splitlines()
    last_log = lines.index("saved model")
    final = next(i for i, line in enumerate(lines) if "Completed after" in line)
    assert last_log < final


class _FoldersHere(FakeBackend):
    """A fake whose runs also have folders on this machine, as the local backend's do."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def run_folder(self, run_id: str) -> Path:
        return self.root / run_id


def test_a_backend_with_local_run_folders_is_told_apart_by_its_capability(tmp_path: Path) -> None:
    from mlboot._run import backend_name, local_outputs, runs_on_this_machine  # noqa: PLC0415

    here = _FoldersHere(tmp_path)
    remote = FakeBackend()

    assert runs_on_this_machine(here)
    assert not runs_on_this_machine(remote)
    assert backend_name(here) == "the local backend"
    assert backend_name(remote) == "Azure ML"
    assert (
        local_outputs(Run("r1", "e", workspace=make_workspace(here))) == tmp_path / "r1" / "outputs"
    )
    assert local_outputs(Run("r1", "e", workspace=make_workspace(remote))) is None


def test_reading_a_runs_details_retries_a_transient_failure(fake: FakeBackend) -> None:
    from mlboot._run import read_details  # noqa: PLC0415

    fake.add_run("r1", experiment="e", statuses=("Failed",), error="OOM")
    fake.fail("get_run_details", "transient", times=1)

    details = read_details(Run("r1", "e", workspace=make_workspace(fake)))

    assert details.run_id == "r1"
    assert [call.operation for call in fake.calls] == ["get_run_details"] * 2
    assert len(fake.clock.sleeps) == 1
