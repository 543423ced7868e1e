"""Every Backend operation the public API uses, under transient, permanent and slow faults.

mlboot retries only what it repeats itself (status polls: ``get_run_status``, and
``get_compute`` while waiting for provisioning) and what the SDK sends once without a retry of
its own (``check_registered_environment``, ``list_runs``), under its one policy; every other
operation is attempted once,
because the azureml-core backend already retries those requests itself and mlboot must not
multiply them.  Each case asserts the outcome and the exact number of attempts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from reliability_ledger import LEDGER

import mlboot
from mlboot._deadline import CALL_BOUND_SECONDS
from mlboot._retry import DEFAULT_POLICY
from mlboot.exceptions import (
    AuthenticationError,
    MlbootError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
    WaitTimeoutError,
)
from mlboot.testing import FakeBackend, FaultKind

BOUND = DEFAULT_POLICY.attempts

POLL = "get_compute (provisioning poll)"
"""The case of ``get_compute`` polled while waiting: the faults spare the lookup before it."""


def _fail(fake: FakeBackend, case: str, error: FaultKind | BaseException, *, times: int) -> None:
    if case == POLL:
        fake.fail("get_compute", error, times=times, after=1)
    else:
        fake.fail(case, error, times=times)


def _attempts(fake: FakeBackend, case: str) -> int:
    """How many times the case's operation was called (for a poll: after the lookup; for an
    upload: of the input's files, not of the marker sent once they are all there)."""
    if case == POLL:
        return len(fake.calls_to("get_compute")) - 1
    calls = fake.calls_to(case)
    if case == "upload_to_datastore":
        calls = [c for c in calls if not str(c.arguments["files"][0][1]).endswith(".complete")]
    return len(calls)


@attrs.frozen
class Scenario:
    fake: FakeBackend
    workspace: mlboot.Workspace
    config: Path
    source: Path
    tmp: Path


def _workspace(s: Scenario) -> object:
    return mlboot.workspace_from_config(s.config, backend=s.fake)


def _get_compute(s: Scenario) -> object:
    s.fake.add_compute("cpu-cluster", max_nodes=4)
    return mlboot.get_or_create_compute_target(
        s.workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4
    )


def _create_compute(s: Scenario) -> object:
    return mlboot.get_or_create_compute_target(
        s.workspace, "gpu-new", vm_size="Standard_NC6s_v3", max_nodes=2, wait=False
    )


def _provisioning(s: Scenario) -> object:
    s.fake.program_provisioning("gpu-new", seconds=0)
    return mlboot.get_or_create_compute_target(
        s.workspace, "gpu-new", vm_size="Standard_NC6s_v3", max_nodes=2
    )


def _scale(s: Scenario) -> object:
    s.fake.add_compute("cpu-cluster", max_nodes=2)
    return mlboot.get_or_create_compute_target(
        s.workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4, on_mismatch="update"
    )


def _submit(s: Scenario) -> object:
    return mlboot.submit_script(
        s.workspace, "train.py", compute="cpu", experiment="exp", source_directory=s.source
    )


def _registered(s: Scenario) -> object:
    return mlboot.submit_script(
        s.workspace,
        "train.py",
        compute="cpu",
        experiment="exp",
        source_directory=s.source,
        environment=mlboot.Environment.from_registered("train-env", "2"),
    )


def _submit_with_data(s: Scenario, **data: mlboot.Input) -> object:
    return mlboot.submit_script(
        s.workspace,
        "train.py",
        compute="cpu",
        experiment="exp",
        source_directory=s.source,
        inputs=data,
    )


def _local_input(s: Scenario) -> object:
    """A local folder as an input: the default datastore's lookup, the marker check, the upload."""
    folder = s.tmp / "data"
    folder.mkdir(exist_ok=True)
    (folder / "rows.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    return _submit_with_data(s, rows=mlboot.Input(folder))


def _dataset_input(s: Scenario) -> object:
    s.fake.add_dataset("images", versions=["1"])
    return _submit_with_data(s, images=mlboot.Input("azureml:images:1"))


def _existing_run(s: Scenario) -> mlboot.Run:
    s.fake.add_run(
        "run-1",
        statuses=("Running", "Completed"),
        logs="done\n",
        metrics={"loss": [0.5]},
        outputs={"model.txt": b"w"},
    )
    return mlboot.Run(id="run-1", experiment="experiment", workspace=s.workspace)


def _status(s: Scenario) -> object:
    return _existing_run(s).status()


def _details(s: Scenario) -> object:
    _existing_run(s)
    return mlboot.get_run(s.workspace, "run-1")


def _logs(s: Scenario) -> object:
    return _existing_run(s).logs()


def _metrics(s: Scenario) -> object:
    return _existing_run(s).metrics()


def _download(s: Scenario) -> object:
    return _existing_run(s).download_outputs(s.tmp / "out")


def _file_names(s: Scenario) -> object:
    return _existing_run(s).file_names()


def _download_files(s: Scenario) -> object:
    return _existing_run(s).download_files(s.tmp / "files")


def _list(s: Scenario) -> object:
    _existing_run(s)
    return mlboot.list_runs(s.workspace)


def _cancel(s: Scenario) -> object:
    _existing_run(s).cancel()
    return None


# operation -> (how the public API reaches it, retried by mlboot's policy?)
OPERATIONS: dict[str, tuple[Callable[[Scenario], object], bool]] = {
    "get_workspace": (_workspace, False),
    "get_compute": (_get_compute, False),
    "create_compute": (_create_compute, False),
    POLL: (_provisioning, True),
    "update_compute_scale": (_scale, False),
    "check_registered_environment": (_registered, True),
    "submit_run": (_submit, False),
    "get_datastore": (_local_input, True),
    "datastore_file_exists": (_local_input, True),
    "upload_to_datastore": (_local_input, True),
    "check_registered_dataset": (_dataset_input, True),
    "get_run_status": (_status, True),
    "get_run_details": (_details, False),
    "get_run_logs": (_logs, False),
    "get_run_metrics": (_metrics, False),
    "download_run_outputs": (_download, False),
    "list_run_files": (_file_names, False),
    "download_run_files": (_download_files, False),
    "cancel_run": (_cancel, False),
    "list_runs": (_list, True),
}

PERMANENT: dict[FaultKind, type[MlbootError]] = {
    "auth": AuthenticationError,
    "permission": PermissionDeniedError,
    "not_found": NotFoundError,
}


@pytest.fixture
def scenario(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    config_path: Path,
    source_dir: Path,
    tmp_path: Path,
) -> Scenario:
    return Scenario(fake, workspace, config_path, source_dir, tmp_path)


def test_the_matrix_covers_every_operation_the_public_api_uses() -> None:
    from mlboot._backends.fake._fake import OPERATIONS as FAKE_OPERATIONS  # noqa: PLC0415

    # The SDK objects are not part of the seam: every operation the fake knows is exercised.
    assert set(OPERATIONS) - {POLL} == FAKE_OPERATIONS


@pytest.mark.parametrize("kind", ["transient", "server", "throttled", "network"])
@pytest.mark.parametrize("times", [1, 2, 3, 4])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_transient_faults(scenario: Scenario, operation: str, times: int, kind: FaultKind) -> None:
    exercise, retried = OPERATIONS[operation]
    _fail(scenario.fake, operation, kind, times=times)
    survives = retried and times < BOUND
    if survives:
        exercise(scenario)
    else:
        with pytest.raises(ServiceError) as info:
            exercise(scenario)
        assert info.value.transient
    attempts = _attempts(scenario.fake, operation)
    expected = (times + 1 if survives else min(times, BOUND)) if retried else 1
    assert attempts == expected
    assert attempts <= BOUND
    if retried and not survives:
        LEDGER.bound(attempts)
    if not retried and times == 1:
        # Attempted once, typed as transient: the caller's own second call goes through.
        exercise(scenario)
    LEDGER.fault(min(times, attempts), survived=survives, attempts=attempts)


@pytest.mark.parametrize("kind", sorted(PERMANENT))
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_permanent_faults_fail_fast_with_their_type(
    scenario: Scenario, operation: str, kind: FaultKind
) -> None:
    exercise, _retried = OPERATIONS[operation]
    _fail(scenario.fake, operation, kind, times=10)
    with pytest.raises(PERMANENT[kind]) as info:
        exercise(scenario)
    assert isinstance(info.value, PERMANENT[kind])
    assert _attempts(scenario.fake, operation) == 1
    creates = len(scenario.fake.calls_to("create_compute"))
    assert creates == (1 if operation in {"create_compute", POLL} else 0)
    LEDGER.fault(1, survived=False, attempts=1)
    LEDGER.failed_fast()


def test_a_failed_compute_lookup_never_leads_to_a_create(scenario: Scenario) -> None:
    scenario.fake.fail("get_compute", "transient", times=5)
    with pytest.raises(ServiceError):
        _create_compute(scenario)
    assert scenario.fake.calls_to("create_compute") == []


# -- slow answers on the polled operations ---------------------------------------------------


def _slow(fake: FakeBackend, operation: str, seconds: float) -> None:
    fake.before(operation, lambda _call: fake.clock.advance(seconds))


def test_slow_status_polls_still_end_the_wait_on_time(scenario: Scenario) -> None:
    scenario.fake.add_run("run-1", statuses=("Running",))
    _slow(scenario.fake, "get_run_status", 25.0)
    run = mlboot.get_run(scenario.workspace, "run-1")
    with pytest.raises(WaitTimeoutError):
        run.wait(timeout=100, poll_interval=5)
    polls = len(scenario.fake.calls_to("get_run_status"))
    # Each poll costs 25 s plus the pause: the time-out is reached after a handful of polls.
    assert 2 <= polls <= 5
    assert scenario.fake.clock.monotonic() <= 100 + 25 + 5


def test_slow_and_failing_status_polls_stop_at_the_status_bound(scenario: Scenario) -> None:
    scenario.fake.add_run("run-1", statuses=("Running", "Completed"))
    _slow(scenario.fake, "get_run_status", 50.0)
    scenario.fake.fail("get_run_status", "transient", times=10)
    run = mlboot.Run(id="run-1", experiment="e", workspace=scenario.workspace)
    with pytest.raises(WaitTimeoutError, match="bound of one status read") as info:
        run.status()
    assert isinstance(info.value.__cause__, ServiceError)
    attempts = len(scenario.fake.calls_to("get_run_status"))
    # 50 s per answer: no retry starts once 120 s have passed, so fewer than 4 attempts.
    assert attempts == 3
    LEDGER.fault(attempts, survived=False, attempts=attempts)


def test_slow_transient_status_polls_survive_within_the_bound(scenario: Scenario) -> None:
    scenario.fake.add_run("run-1", statuses=("Running", "Completed"))
    _slow(scenario.fake, "get_run_status", 10.0)
    scenario.fake.fail("get_run_status", "throttled", times=2)
    run = mlboot.get_run(scenario.workspace, "run-1")
    assert run.wait(poll_interval=1) is mlboot.RunStatus.COMPLETED
    # Two throttled answers, then the first real one (an added run reads its second status).
    assert len(scenario.fake.calls_to("get_run_status")) == 2 + 1
    # Retry-After (1 s) is honoured: no back-off shorter than it.
    assert min(scenario.fake.clock.sleeps) >= 1.0
    LEDGER.fault(2, survived=True, attempts=3)


def test_slow_provisioning_polls_end_in_a_timeout_not_a_hang(scenario: Scenario) -> None:
    scenario.fake.program_provisioning("gpu-new", seconds=10_000)
    _slow(scenario.fake, "get_compute", 20.0)
    with pytest.raises(WaitTimeoutError):
        mlboot.get_or_create_compute_target(
            scenario.workspace, "gpu-new", vm_size="Standard_NC6s_v3", max_nodes=2, timeout=120
        )
    assert scenario.fake.clock.monotonic() <= 120 + 20 + 30
    assert len(scenario.fake.calls_to("create_compute")) == 1


def test_a_failed_run_survives_transient_faults_reading_its_error(scenario: Scenario) -> None:
    scenario.fake.add_run("run-9", statuses=("Running", "Failed"), logs="boom\n", error="OOM")
    scenario.fake.fail("get_run_details", "transient", times=2)
    scenario.fake.fail("get_run_logs", "network", times=1)
    run = mlboot.Run(id="run-9", experiment="e", workspace=scenario.workspace)
    with pytest.raises(mlboot.exceptions.RunFailedError) as info:
        run.wait(poll_interval=1)
    assert info.value.error == "OOM"
    assert info.value.log_tail == ("boom",)
    assert len(scenario.fake.calls_to("get_run_details")) == 3
    assert len(scenario.fake.calls_to("get_run_logs")) == 2
    LEDGER.fault(3, survived=True, attempts=3)


# -- lasting faults: every time-out and documented bound holds -------------------------------


LASTING: dict[str, Callable[[str], BaseException]] = {
    "throttled-retry-after-25": lambda op: ThrottledError(f"{op}: HTTP 429", retry_after=25.0),
    "throttled": lambda op: ThrottledError(f"{op}: HTTP 429", retry_after=1.0),
    "server": lambda op: ServiceError(f"{op}: HTTP 500", status=500, transient=True),
    "network": lambda op: NetworkError(f"{op}: connection reset"),
}


def _wait_30(s: Scenario) -> object:
    s.fake.add_run("run-1", statuses=("Running",))
    return mlboot.Run(id="run-1", experiment="e", workspace=s.workspace).wait(timeout=30)


def _provisioning_60(s: Scenario) -> object:
    s.fake.program_provisioning("gpu-new", seconds=10_000)
    return mlboot.get_or_create_compute_target(
        s.workspace, "gpu-new", vm_size="Standard_NC6s_v3", max_nodes=2, timeout=60
    )


# call -> (the operation that keeps failing, the call, its time-out or documented bound)
BOUNDED_CALLS: dict[str, tuple[str, Callable[[Scenario], object], float]] = {
    "Run.wait(timeout=30)": ("get_run_status", _wait_30, 30.0),
    "Run.status()": ("get_run_status", _status, CALL_BOUND_SECONDS),
    "get_or_create_compute_target(timeout=60)": (POLL, _provisioning_60, 60.0),
}


@pytest.mark.parametrize("fault", sorted(LASTING))
@pytest.mark.parametrize("call", sorted(BOUNDED_CALLS))
def test_every_time_out_and_bound_holds_under_a_lasting_fault(
    scenario: Scenario, call: str, fault: str
) -> None:
    operation, exercise, bound = BOUNDED_CALLS[call]
    _fail(scenario.fake, operation, LASTING[fault](operation), times=100_000)
    clock = scenario.fake.clock
    started = clock.monotonic()
    # The retries run out first (a typed transient error) or the deadline does (a time-out).
    with pytest.raises((WaitTimeoutError, ServiceError)) as info:
        exercise(scenario)
    elapsed = clock.monotonic() - started
    assert elapsed <= bound, info.value
    if isinstance(info.value, ServiceError):
        assert info.value.transient
    LEDGER.deadline(elapsed, bound)
    LEDGER.fault(_attempts(scenario.fake, operation), survived=False, attempts=1)
