"""The behavioural contract of every backend, through the public API only.

Each test runs over every harness in ``contract_harnesses.HARNESSES`` (the fake, the local
backend, azureml-core on the emulator) and expects the same observable results: the same
values, the same errors with the same fields, the same warnings.  A difference between
backends is a defect of one of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from contract_harnesses import (
    ESCAPING_NAME,
    FAILURE,
    FAILURE_LOG,
    FILE_NAMES,
    LOG_LINES,
    METRICS,
    MISSING_WORKSPACE,
    OUTPUTS,
    QUOTA_CODE,
    RESOURCE_GROUP,
    RUN_LOG_FILE,
    SUBSCRIPTION,
    WORKSPACE,
    Harness,
    Outcome,
)

import mlboot
from mlboot import RunStatus
from mlboot.exceptions import (
    ComputeMismatchError,
    ComputeProvisioningError,
    LocalStorageError,
    MlbootWarning,
    NotFoundError,
    RunFailedError,
    ServiceError,
    WorkspaceNotFoundError,
)

pytestmark = [
    # The azureml-core backend warns that a run without an environment uses the SDK's default
    # one; that warning is pinned in tests/integration, and is not part of this contract.
    pytest.mark.filterwarnings("ignore:No environment given:mlboot.exceptions.MlbootWarning"),
    # Warnings azureml-core itself raises on its run paths (see emulator.sdk_run_warnings).
    pytest.mark.filterwarnings(
        r"ignore:\s*(load|round_trip_load_all) will be removed, use:PendingDeprecationWarning"
    ),
    pytest.mark.filterwarnings(r"ignore:'imghdr' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings(r"ignore:setDaemon\(\) is deprecated:DeprecationWarning"),
]

CLUSTER = "cpu-cluster"
SIZE = "Standard_DS3_v2"
EXPERIMENT = "contract-exp"
TIMEOUT = 60.0  # on the backend's clock: fake seconds for the fake, real ones elsewhere
POLL = 0.05


@pytest.fixture
def workspace(harness: Harness) -> mlboot.Workspace:
    return harness.open(harness.config())


@pytest.fixture
def cluster(harness: Harness, workspace: mlboot.Workspace) -> mlboot.ComputeTarget:
    harness.add_cluster(CLUSTER, vm_size=SIZE.upper(), max_nodes=4)
    return mlboot.get_or_create_compute_target(workspace, CLUSTER, vm_size=SIZE, max_nodes=4)


def submit(harness: Harness, workspace: mlboot.Workspace, outcome: Outcome) -> mlboot.Run:
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute=CLUSTER,
        experiment=EXPERIMENT,
        source_directory=harness.project(outcome),
    )


def finish(run: mlboot.Run) -> RunStatus:
    return run.wait(timeout=TIMEOUT, poll_interval=POLL)


def completed(harness: Harness, workspace: mlboot.Workspace, outcome: Outcome) -> mlboot.Run:
    """A run of ``outcome`` submitted and waited for, which completed."""
    run = submit(harness, workspace, outcome)
    assert finish(run) is RunStatus.COMPLETED
    return run


def linked_destination(tmp_path: Path, entry: str) -> tuple[Path, Path]:
    """A destination folder whose ``entry`` is a link to a folder: (destination, that folder)."""
    destination, victim = tmp_path / "files", tmp_path / "victim"
    destination.mkdir()
    victim.mkdir()
    (destination / entry).symlink_to(victim)
    return destination, victim


# ---- workspace ----------------------------------------------------------------------------------


def test_an_existing_workspace_is_found_with_the_names_of_the_config(harness: Harness) -> None:
    config = harness.config()
    workspace = harness.open(config)
    assert (workspace.subscription_id, workspace.resource_group, workspace.name) == (
        SUBSCRIPTION,
        RESOURCE_GROUP,
        WORKSPACE,
    )
    assert workspace.config_path == config
    assert workspace.location


def test_a_missing_workspace_is_not_found(harness: Harness) -> None:
    harness.forget_workspace(MISSING_WORKSPACE)
    with pytest.raises(WorkspaceNotFoundError, match=MISSING_WORKSPACE):
        harness.open(harness.config(MISSING_WORKSPACE))


# ---- compute ------------------------------------------------------------------------------------


def test_a_missing_cluster_is_created_and_ready(workspace: mlboot.Workspace) -> None:
    target = mlboot.get_or_create_compute_target(
        workspace, "new-cluster", vm_size=SIZE, max_nodes=2, vm_priority="LowPriority"
    )
    assert (target.name, target.kind, target.provisioning_state) == (
        "new-cluster",
        "AmlCompute",
        "Succeeded",
    )
    assert target.vm_size == SIZE.upper()  # the service's spelling
    assert (target.vm_priority, target.min_nodes, target.max_nodes) == ("lowpriority", 0, 2)
    assert target.idle_seconds_before_scaledown == 1800
    again = mlboot.get_or_create_compute_target(
        workspace, "new-cluster", vm_size=SIZE, max_nodes=2, vm_priority="lowpriority"
    )
    assert again == target


def test_an_existing_matching_cluster_is_used_as_it_is(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    harness.add_cluster(CLUSTER, vm_size=SIZE.upper(), max_nodes=4)
    target = mlboot.get_or_create_compute_target(workspace, CLUSTER, vm_size=SIZE, max_nodes=4)
    assert (target.name, target.provisioning_state, target.max_nodes) == (CLUSTER, "Succeeded", 4)
    assert target.vm_size == SIZE.upper()  # the service's spelling of the existing cluster


def test_an_existing_differing_cluster_raises_listing_every_difference(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    harness.add_cluster(CLUSTER, vm_size=SIZE.upper(), max_nodes=2)
    with pytest.raises(ComputeMismatchError) as info:
        mlboot.get_or_create_compute_target(
            workspace, CLUSTER, vm_size="Standard_NC6s_v3", max_nodes=4
        )
    assert info.value.differences == {
        "vm_size": ("Standard_NC6s_v3", SIZE.upper()),
        "max_nodes": (4, 2),
    }
    # Nothing was changed.
    target = mlboot.get_or_create_compute_target(workspace, CLUSTER, vm_size=SIZE, max_nodes=2)
    assert target.max_nodes == 2


def test_on_mismatch_warn_warns_once_and_uses_the_cluster_as_it_is(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    harness.add_cluster(CLUSTER, vm_size=SIZE.upper(), max_nodes=2)
    with pytest.warns(MlbootWarning, match="max_nodes: requested 4, actual 2") as caught:
        target = mlboot.get_or_create_compute_target(
            workspace, CLUSTER, vm_size=SIZE, max_nodes=4, on_mismatch="warn"
        )
    assert len(caught.list) == 1
    assert target.max_nodes == 2


def test_on_mismatch_update_changes_the_scale_in_place(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    harness.add_cluster(CLUSTER, vm_size=SIZE.upper(), max_nodes=2)
    target = mlboot.get_or_create_compute_target(
        workspace, CLUSTER, vm_size=SIZE, max_nodes=4, min_nodes=1, on_mismatch="update"
    )
    assert (target.min_nodes, target.max_nodes, target.provisioning_state) == (1, 4, "Succeeded")
    again = mlboot.get_or_create_compute_target(
        workspace, CLUSTER, vm_size=SIZE, max_nodes=4, min_nodes=1
    )
    assert (again.min_nodes, again.max_nodes) == (1, 4)


def test_on_mismatch_update_still_refuses_another_vm_size(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    harness.add_cluster(CLUSTER, vm_size=SIZE.upper(), max_nodes=2)
    with pytest.raises(ComputeMismatchError, match="Nothing was changed") as info:
        mlboot.get_or_create_compute_target(
            workspace, CLUSTER, vm_size="Standard_NC6s_v3", max_nodes=4, on_mismatch="update"
        )
    assert set(info.value.differences) == {"vm_size", "max_nodes"}


def test_a_failed_provisioning_raises_the_service_errors(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    harness.fail_provisioning("gpu-nodes")
    with pytest.raises(ComputeProvisioningError, match="ended Failed") as info:
        mlboot.get_or_create_compute_target(
            workspace, "gpu-nodes", vm_size="Standard_NC6s_v3", max_nodes=8
        )
    assert [code for code, _ in info.value.errors] == [QUOTA_CODE]


# ---- runs ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("cluster")
def test_a_submitted_run_completes_with_its_logs_metrics_and_outputs(
    harness: Harness, workspace: mlboot.Workspace, tmp_path: Path
) -> None:
    run = submit(harness, workspace, "complete")
    assert run.experiment == EXPERIMENT
    assert run.id
    assert run.status() in {
        RunStatus.NOT_STARTED,
        RunStatus.QUEUED,
        RunStatus.STARTING,
        RunStatus.RUNNING,
        RunStatus.FINALIZING,
        RunStatus.COMPLETED,
    }
    assert finish(run) is RunStatus.COMPLETED
    assert run.status() is RunStatus.COMPLETED
    logs = run.logs()
    assert all(line in logs for line in LOG_LINES)
    assert {name: list(values) for name, values in run.metrics().items()} == METRICS
    downloaded = run.download_outputs(tmp_path / "downloads")
    outputs = tmp_path / "downloads" / "outputs"
    assert downloaded == sorted(outputs / name for name in OUTPUTS)
    assert {p.relative_to(outputs).as_posix(): p.read_bytes() for p in downloaded} == OUTPUTS


@pytest.mark.usefixtures("cluster")
def test_a_completed_run_s_files_are_listed_and_downloaded_by_their_azure_ml_names(
    harness: Harness, workspace: mlboot.Workspace, tmp_path: Path
) -> None:
    run = completed(harness, workspace, "complete")
    assert run.file_names() == FILE_NAMES
    assert run.file_names(prefix="outputs/") == [f"outputs/{name}" for name in sorted(OUTPUTS)]
    assert run.file_names(prefix="logs/") == [RUN_LOG_FILE[0]]

    destination = tmp_path / "files"
    paths = run.download_files(destination)

    assert paths == [destination / name for name in FILE_NAMES]
    assert {name: (destination / "outputs" / name).read_bytes() for name in OUTPUTS} == OUTPUTS
    assert (destination / RUN_LOG_FILE[0]).read_text(encoding="utf-8") == RUN_LOG_FILE[1]
    log = (destination / "user_logs" / "std_log.txt").read_text(encoding="utf-8")
    assert all(line in log for line in LOG_LINES)
    # The outputs prefix is download_outputs, file for file.
    only_outputs = run.download_files(tmp_path / "only", prefix="outputs/")
    outputs = run.download_outputs(tmp_path / "outputs")
    assert [p.relative_to(tmp_path / "only") for p in only_outputs] == [
        p.relative_to(tmp_path / "outputs") for p in outputs
    ]


@pytest.mark.usefixtures("cluster")
def test_a_link_on_the_way_of_a_run_file_is_refused_before_anything_is_written(
    harness: Harness, workspace: mlboot.Workspace, tmp_path: Path
) -> None:
    run = completed(harness, workspace, "complete")
    destination, victim = linked_destination(tmp_path, "logs")

    with pytest.raises(LocalStorageError, match="symbolic link") as caught:
        run.download_files(destination)

    assert caught.value.filename == str(destination / "logs")
    assert list(victim.iterdir()) == []
    assert sorted(p.name for p in destination.iterdir()) == ["logs"]


@pytest.mark.usefixtures("cluster")
def test_a_file_name_leading_out_of_the_destination_is_refused(
    harness: Harness, workspace: mlboot.Workspace, tmp_path: Path
) -> None:
    run = completed(harness, workspace, "escaping_file")
    assert ESCAPING_NAME in run.file_names()
    destination = tmp_path / "a" / "b"

    with pytest.raises(ServiceError, match="nothing was downloaded") as caught:
        run.download_files(destination)

    assert repr(ESCAPING_NAME) in str(caught.value)
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert run.download_files(destination, prefix="outputs/model") == [
        destination / "outputs" / "model.txt"
    ]


@pytest.mark.usefixtures("cluster")
def test_a_failed_run_raises_with_the_error_and_the_log_tail(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    run = submit(harness, workspace, "fail")
    with pytest.raises(RunFailedError, match=run.id) as info:
        finish(run)
    failure = info.value
    assert failure.run_id == run.id
    assert failure.portal_url == run.portal_url
    assert FAILURE in (failure.error or "")
    assert FAILURE_LOG[0] in failure.log_tail
    assert failure.log_tail[-1] == FAILURE
    assert run.status() is RunStatus.FAILED


@pytest.mark.usefixtures("cluster")
def test_a_canceled_run_ends_canceled(harness: Harness, workspace: mlboot.Workspace) -> None:
    run = submit(harness, workspace, "run_until_canceled")
    run.cancel()
    assert run.status() in {RunStatus.CANCEL_REQUESTED, RunStatus.CANCELED}
    assert finish(run) is RunStatus.CANCELED
    run.cancel()  # canceling a finished run changes nothing
    assert run.status() is RunStatus.CANCELED


@pytest.mark.usefixtures("cluster")
def test_a_run_is_reattached_by_its_id(harness: Harness, workspace: mlboot.Workspace) -> None:
    run = submit(harness, workspace, "complete")
    again = mlboot.get_run(harness.open(harness.config()), run.id)
    assert again == run
    assert finish(again) is RunStatus.COMPLETED
    assert {name: list(values) for name, values in again.metrics().items()} == METRICS
    assert run.status() is RunStatus.COMPLETED


@pytest.mark.usefixtures("cluster")
def test_a_finished_run_is_listed_newest_first(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    first = submit(harness, workspace, "complete")
    assert finish(first) is RunStatus.COMPLETED
    run = submit(harness, workspace, "complete")
    assert finish(run) is RunStatus.COMPLETED
    listed = mlboot.list_runs(workspace, experiment=EXPERIMENT)
    assert [info.run for info in listed] == [run, first]
    assert [info.status for info in listed] == [RunStatus.COMPLETED] * 2
    listed = mlboot.list_runs(workspace, experiment=EXPERIMENT, limit=1)
    assert [info.run for info in listed] == [run]


def test_reattaching_to_an_unknown_run_is_not_found(workspace: mlboot.Workspace) -> None:
    with pytest.raises(NotFoundError, match="no-such-run"):
        mlboot.get_run(workspace, "no-such-run")
