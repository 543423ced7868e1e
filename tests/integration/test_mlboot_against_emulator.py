"""mlboot's public API -> its azureml-core adapter -> unmodified azureml-core -> the emulator."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mlboot
from emulator import Emulator, EmulatorAuth, quota_error
from mlboot.exceptions import (
    AuthenticationError,
    ComputeMismatchError,
    ComputeProvisioningError,
    NetworkError,
    PermissionDeniedError,
    ServiceError,
    WorkspaceNotFoundError,
)

pytestmark = pytest.mark.sdk


@pytest.fixture
def workspace(emulator: Emulator, config: Path) -> mlboot.Workspace:
    return mlboot.workspace_from_config(config, auth=emulator.auth)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port bound but never listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# ---- workspace --------------------------------------------------------------------------------


def test_workspace_found_with_one_arm_lookup(emulator: Emulator, config: Path) -> None:
    workspace = mlboot.workspace_from_config(config, auth=emulator.auth)
    assert workspace.name == emulator.workspace.name
    assert workspace.location == "westeurope"
    assert emulator.count("arm.workspace.get") == 1
    assert type(workspace.to_azureml()).__name__ == "Workspace"


def test_workspace_not_found_is_reported_at_once(emulator: Emulator, tmp_path: Path) -> None:
    state = emulator.workspace
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "subscription_id": state.subscription_id,
                "resource_group": state.resource_group,
                "workspace_name": "no-such-ws",
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(WorkspaceNotFoundError, match="no-such-ws"):
        mlboot.workspace_from_config(config, auth=emulator.auth)
    assert emulator.count("arm.workspace.get") == 1


def test_unreachable_workspace_fails_at_once_with_a_clear_error(
    emulator: Emulator, config: Path, dead_port: int
) -> None:
    state = emulator.workspace
    auth = EmulatorAuth(
        resource_manager_url=f"https://127.0.0.1:{dead_port}/",
        tenant_id=emulator.tenant_id,
        object_id=emulator.object_id,
        subscriptions={state.subscription_id: "Emulated subscription"},
    )
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        mlboot.workspace_from_config(config, auth=auth)
    elapsed = time.monotonic() - started
    assert f"127.0.0.1:{dead_port}" in str(info.value)
    assert elapsed < 2.0  # the SDK alone takes ~11 s to swallow it, and ~11 s more to raise it
    assert emulator.requests == []


def _raw_sdk_lookup_attempts(emulator: Emulator) -> int:
    """How many requests the SDK alone sends for one failing workspace lookup."""
    from azureml.core import Workspace  # noqa: PLC0415

    state = emulator.workspace
    emulator.clear_requests()
    with pytest.raises(Exception):  # noqa: B017, PT011  (the SDK's own, untyped failure)
        Workspace.get(
            state.name,
            auth=emulator.auth,
            subscription_id=state.subscription_id,
            resource_group=state.resource_group,
        )
    count = emulator.count("arm.workspace.get")
    emulator.clear_requests()
    return count


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (403, PermissionDeniedError), (500, ServiceError)],
)
def test_workspace_lookup_failures_are_typed_and_never_retried_on_top_of_the_sdk(
    emulator: Emulator, config: Path, status: int, error: type[Exception]
) -> None:
    emulator.fail("arm.workspace.get", status, times=100)
    baseline = _raw_sdk_lookup_attempts(emulator)
    with pytest.raises(error):
        mlboot.workspace_from_config(config, auth=emulator.auth)
    assert emulator.count("arm.workspace.get") == baseline
    # 4xx fail fast; 5xx get only the SDK's own bounded retries.
    assert baseline == 1 if status < 500 else 2 <= baseline <= 5


# ---- compute ----------------------------------------------------------------------------------


def test_existing_matching_cluster_costs_exactly_one_compute_lookup(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    emulator.clear_requests()
    cluster = mlboot.get_or_create_compute_target(
        workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4
    )
    assert cluster.name == "cpu-cluster"
    assert cluster.provisioning_state == "Succeeded"
    assert emulator.count("compute.get") == 1
    assert [r for r in emulator.route_sequence() if r != "discovery"] == ["compute.get"]


def test_existing_differing_cluster_is_reported_not_reused(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=2)
    with pytest.raises(ComputeMismatchError) as info:
        mlboot.get_or_create_compute_target(
            workspace, "cpu-cluster", vm_size="Standard_NC6s_v3", max_nodes=4
        )
    assert set(info.value.differences) == {"vm_size", "max_nodes"}
    assert emulator.count("arm.compute.put") == 0


def test_missing_cluster_is_created_and_provisioned(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    cluster = mlboot.get_or_create_compute_target(
        workspace, "gpu-nodes", vm_size="Standard_NC6s_v3", max_nodes=2, vm_priority="LowPriority"
    )
    assert cluster.provisioning_state == "Succeeded"
    assert emulator.count("arm.compute.put") == 1
    body = emulator.compute("gpu-nodes").last_request_body
    properties = body["properties"]["properties"]
    assert properties["vmSize"] == "Standard_NC6s_v3"
    assert properties["vmPriority"] == "lowpriority"
    assert properties["scaleSettings"]["maxNodeCount"] == 2


def test_provisioning_failure_carries_the_quota_error(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    emulator.program_provisioning(
        "gpu-nodes", states=("Creating", "Failed"), errors=[quota_error()]
    )
    with pytest.raises(ComputeProvisioningError) as info:
        mlboot.get_or_create_compute_target(
            workspace, "gpu-nodes", vm_size="Standard_NC6s_v3", max_nodes=8
        )
    assert any(code == "QuotaExceeded" for code, _ in info.value.errors)


def test_a_failed_lookup_never_creates(emulator: Emulator, workspace: mlboot.Workspace) -> None:
    emulator.fail("compute.get", 403, times=5)
    with pytest.raises(PermissionDeniedError):
        mlboot.get_or_create_compute_target(
            workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4
        )
    assert emulator.count("arm.compute.put") == 0


# ---- submit and runs --------------------------------------------------------------------------

FAST = 0.05  # Run.wait's public poll_interval: the emulator moves one status per read


def _submit(workspace: mlboot.Workspace, source_dir: Path) -> mlboot.Run:
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute="cpu-cluster",
        experiment="emulated-exp",
        source_directory=source_dir,
        arguments=["--epochs", 3],
    )


@pytest.fixture
def cluster(emulator: Emulator) -> str:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    return "cpu-cluster"


def test_submitted_snapshot_is_exactly_the_precheck_list_and_the_run_completes(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, cluster: str, tmp_path: Path
) -> None:
    emulator.program_run(
        ["Queued", "Running", "Finalizing", "Completed"],
        metrics={"loss": [0.5, 0.25], "accuracy": 0.9},
        outputs={"model.txt": b"weights"},
    )
    with pytest.warns(mlboot.exceptions.MlbootWarning, match="No environment given") as caught:
        run = _submit(workspace, source_dir)
    # Exactly one of mlboot's; pytest.warns also records the SDK's own (its first import in
    # the process can fall inside this block), which are not this test's business.
    ours = [w for w in caught if issubclass(w.category, mlboot.exceptions.MlbootWarning)]
    assert len(ours) == 1
    uploaded = emulator.snapshots[emulator.run(run.id).snapshot_id]
    assert sorted(uploaded.files) == list(mlboot.plan_snapshot(source_dir).files)
    assert emulator.run(run.id).definition is not None
    assert run.wait(timeout=60, poll_interval=FAST) is mlboot.RunStatus.COMPLETED
    assert run.metrics()["loss"] == [0.5, 0.25]
    assert list(run.metrics()["accuracy"]) == [0.9]
    paths = run.download_outputs(tmp_path / "out")
    assert [p.read_bytes() for p in paths] == [b"weights"]


def test_a_failed_run_raises_with_the_service_error_and_the_log_tail(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, cluster: str
) -> None:
    emulator.program_run(
        ["Running", "Failed"],
        logs={
            "user_logs/std_log.txt": (
                "epoch 1\nTraceback (most recent call last):\nValueError: bad rate\n"
            )
        },
        error={"code": "UserError", "message": "ValueError: bad rate"},
    )
    run = _submit(workspace, source_dir)
    with pytest.raises(mlboot.exceptions.RunFailedError) as info:
        run.wait(timeout=60, poll_interval=FAST)
    assert info.value.run_id == run.id
    assert "bad rate" in (info.value.error or "")
    assert any("ValueError: bad rate" in line for line in info.value.log_tail)


def test_finalizing_then_failed_is_reported_as_a_failure(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, cluster: str
) -> None:
    emulator.program_run(
        ["Running", "Finalizing", "Finalizing", "Failed"],
        error={"code": "ServiceError", "message": "output upload failed"},
    )
    run = _submit(workspace, source_dir)
    with pytest.raises(mlboot.exceptions.RunFailedError, match=run.id):
        run.wait(timeout=60, poll_interval=FAST)


def test_cancel_ends_canceled_and_reattach_by_id_sees_it(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, cluster: str
) -> None:
    emulator.program_run(["Running", "Running", "Running", "Running", "Running"])
    run = _submit(workspace, source_dir)
    run.cancel()
    assert emulator.run(run.id).cancel_requested
    again = mlboot.get_run(workspace, run.id)
    assert again.id == run.id
    assert again.wait(timeout=60, poll_interval=FAST) is mlboot.RunStatus.CANCELED


def test_reattach_to_a_run_submitted_elsewhere(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    state = emulator.add_run("other-exp", ["Running", "Completed"], metrics={"auc": 0.8})
    run = mlboot.get_run(workspace, state.run_id)
    assert run.experiment == "other-exp"
    assert run.wait(timeout=60, poll_interval=FAST) is mlboot.RunStatus.COMPLETED
    assert list(run.metrics()["auc"]) == [0.8]


def test_reattach_to_an_unknown_run_is_not_found(workspace: mlboot.Workspace) -> None:
    with pytest.raises(mlboot.exceptions.NotFoundError):
        mlboot.get_run(workspace, "no-such-run")


def test_transient_status_failures_do_not_end_the_wait(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, cluster: str
) -> None:
    emulator.program_run(["Running", "Completed"])
    run = _submit(workspace, source_dir)
    emulator.fail("history.run.get", 503, times=2)
    assert run.wait(timeout=60, poll_interval=FAST) is mlboot.RunStatus.COMPLETED
