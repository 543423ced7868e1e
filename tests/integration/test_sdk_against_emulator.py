"""The real, unmodified azureml-core against the Azure ML emulator on 127.0.0.1.

These tests pin down how the SDK behaves on the wire (what it asks, how it retries, what it
raises) so that mlboot's adapter can be built and tested on the same emulator.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msrest.exceptions
import pytest
import requests
from azureml.core import Environment, Experiment, Run, ScriptRunConfig, Workspace
from azureml.core.compute import AmlCompute, ComputeInstance, ComputeTarget
from azureml.exceptions import ActivityFailedException, ComputeTargetException

from emulator import Emulator, EmulatorAuth, quota_error, sdk_run_warnings

pytestmark = pytest.mark.sdk

DRIVER_LOG = (
    "2024-01-01 00:00:00 Starting the daemon thread to refresh tokens in background\n"
    "epoch 1 loss 0.50\n"
    "epoch 2 loss 0.25\n"
    "The activity completed successfully. Finalizing run...\n"
)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _submit(workspace: Any, source_dir: Path, experiment: str = "train-emulated") -> Any:
    config = ScriptRunConfig(
        source_directory=str(source_dir),
        script="train.py",
        arguments=["--epochs", 2],
        compute_target="cpu-cluster",
        environment=Environment("emulated-env"),
    )
    return Experiment(workspace, experiment).submit(config)


@pytest.fixture
def cluster(emulator: Emulator) -> None:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port with a bound socket that never listens: connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# ---- workspace ------------------------------------------------------------------------------


def test_workspace_found_with_one_arm_get(emulator: Emulator) -> None:
    state = emulator.workspace

    ws = Workspace(state.subscription_id, state.resource_group, state.name, auth=emulator.auth)

    assert (ws.name, ws.resource_group, ws.location) == (
        state.name,
        state.resource_group,
        "westeurope",
    )
    (get,) = emulator.requests
    assert (get.route, get.status) == ("arm.workspace.get", 200)
    assert get.query == {"api-version": ["2022-05-01"]}
    scheme, token = get.headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    assert _claims(token)["tid"] == emulator.tenant_id
    details = ws.get_details()  # asks ARM again
    assert details["discoveryUrl"] == emulator.discovery_url
    assert details["workspaceid"] == state.workspace_id
    assert emulator.count("arm.workspace.get") == 2


def test_workspace_not_found_is_a_404_from_arm(emulator: Emulator) -> None:
    state = emulator.workspace

    with pytest.raises(Exception, match=r"(?i)not found") as raised:
        Workspace.get(
            "no-such-ws",
            auth=emulator.auth,
            subscription_id=state.subscription_id,
            resource_group=state.resource_group,
        )

    assert type(raised.value).__name__ == "ProjectSystemException"
    assert [(r.route, r.status) for r in emulator.requests] == [("arm.workspace.get", 404)]
    assert emulator.requests[0].params["workspace"] == "no-such-ws"


def test_workspace_unreachable_is_swallowed_until_first_use(
    emulator: Emulator, dead_port: int
) -> None:
    # Costs ~22 s: msrest's urllib3 retry (backoff 0.8: 1.6 + 3.2 + 6.4 s) runs twice, once in
    # Workspace.get and once on first property access. No SDK knob shortens it.

    state = emulator.workspace
    auth = EmulatorAuth(
        resource_manager_url=f"https://127.0.0.1:{dead_port}/",
        tenant_id=emulator.tenant_id,
        object_id=emulator.object_id,
        subscriptions={state.subscription_id: "Emulated subscription"},
    )

    ws = Workspace.get(
        state.name,
        auth=auth,
        subscription_id=state.subscription_id,
        resource_group=state.resource_group,
    )  # no exception: the connection error is swallowed here

    with pytest.raises(msrest.exceptions.ClientRequestError, match="Connection refused"):
        _ = ws.location
    assert emulator.requests == []


# ---- compute --------------------------------------------------------------------------------


def test_compute_lookup_exists_with_exactly_one_compute_get(
    emulator: Emulator, workspace: Any
) -> None:
    emulator.add_compute(
        "cpu-cluster",
        vm_size="STANDARD_D2_V2",
        vm_priority="LowPriority",
        min_nodes=1,
        max_nodes=5,
        idle_seconds_before_scaledown=1800,
        current_node_count=1,
    )
    emulator.clear_requests()

    target = ComputeTarget(workspace, "cpu-cluster")

    assert isinstance(target, AmlCompute)
    assert (target.vm_size, target.vm_priority, target.provisioning_state) == (
        "STANDARD_D2_V2",
        "LowPriority",
        "Succeeded",
    )
    settings = target.scale_settings
    # the emulator answers the service's normalised duration, PT30M
    assert (
        settings.minimum_node_count,
        settings.maximum_node_count,
        settings.idle_seconds_before_scaledown,
    ) == (
        1,
        5,
        1800,
    )
    assert target.status.current_node_count == 1
    assert target.provisioning_errors is None
    assert emulator.route_sequence() == ["discovery", "compute.get"]
    assert emulator.count("compute.get") == 1
    assert emulator.requests_to("compute.get")[0].query == {"api-version": ["2020-02-02"]}


def test_compute_lookup_missing_raises_compute_target_not_found(
    emulator: Emulator, workspace: Any
) -> None:
    with pytest.raises(ComputeTargetException) as raised:
        ComputeTarget(workspace, "ghost-cluster")

    assert raised.value.message.startswith(
        "ComputeTargetNotFound: Compute Target with name ghost-cluster"
    )
    assert [(r.route, r.status) for r in emulator.requests_to("compute.get")] == [
        ("compute.get", 404)
    ]


def test_compute_lookup_of_another_kind(emulator: Emulator, workspace: Any) -> None:
    emulator.add_compute("dev-box", kind="ComputeInstance", vm_size="STANDARD_DS11_V2")

    target = ComputeTarget(workspace, "dev-box")

    assert isinstance(target, ComputeInstance)
    assert (target.type, target.vm_size, target.status.state) == (
        "ComputeInstance",
        "STANDARD_DS11_V2",
        "Running",
    )
    assert emulator.count("compute.get") == 1


def test_compute_create_and_provision(
    emulator: Emulator, workspace: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # One InProgress poll: ComputeTarget.wait_for_completion then sleeps a hard-coded 5 s.
    emulator.program_provisioning("gpu-cluster", states=["Creating", "Creating", "Succeeded"])
    config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_NC6",
        vm_priority="lowpriority",
        min_nodes=0,
        max_nodes=2,
        idle_seconds_before_scaledown=600,
    )

    emulator.clear_requests()
    target = ComputeTarget.create(workspace, "gpu-cluster", config)
    assert target.provisioning_state == "Creating"
    target.wait_for_completion(show_output=True)

    assert target.provisioning_state == "Succeeded"
    assert target.scale_settings.idle_seconds_before_scaledown == 600
    put = emulator.requests_to("arm.compute.put")[0]
    assert put.status == 201
    assert put.path.endswith("/workspaces/emulated-ws/computes/gpu-cluster")
    body = emulator.compute("gpu-cluster").last_request_body
    assert body is not None
    assert body["location"] == "westeurope"
    assert body["properties"]["computeType"] == "AmlCompute"
    assert body["properties"]["properties"]["vmSize"] == "STANDARD_NC6"
    assert body["properties"]["properties"]["vmPriority"] == "lowpriority"
    assert body["properties"]["properties"]["scaleSettings"] == {
        "minNodeCount": 0,
        "maxNodeCount": 2,
        "nodeIdleTimeBeforeScaleDown": "PT600S",
    }
    assert emulator.count("arm.compute.operation") == 2
    assert emulator.route_sequence()[:3] == ["arm.compute.put", "discovery", "compute.get"]
    # the SDK prints the async operation's states: InProgress, a dot per 5 s poll, then Succeeded
    output = capsys.readouterr().out
    assert output.startswith("InProgress.\nSucceeded")
    assert 'Provisioning operation finished, operation "Succeeded"' in output


def test_compute_provisioning_failed_with_quota_error(emulator: Emulator, workspace: Any) -> None:
    emulator.program_provisioning(
        "big-cluster", states=["Creating", "Failed"], errors=[quota_error()]
    )
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_DS3_V2", max_nodes=100)

    target = ComputeTarget.create(workspace, "big-cluster", config)
    with pytest.raises(ComputeTargetException, match="QuotaExceeded"):
        target.wait_for_completion(show_output=False)

    assert target.provisioning_state == "Failed"
    assert target.provisioning_errors[0]["error"]["code"] == "QuotaExceeded"
    assert (
        "exceeding approved standardDSv2Family Cores quota"
        in target.provisioning_errors[0]["error"]["message"]
    )
    assert emulator.count("arm.compute.operation") == 1


def test_compute_scale_update(emulator: Emulator, workspace: Any) -> None:
    emulator.add_compute(
        "cpu-cluster", min_nodes=0, max_nodes=4, idle_seconds_before_scaledown=1800
    )
    target = ComputeTarget(workspace, "cpu-cluster")

    target.update(min_nodes=1, max_nodes=8, idle_seconds_before_scaledown=900)
    target.wait_for_completion(show_output=False)

    patch = emulator.requests_to("arm.compute.patch")
    assert [r.status for r in patch] == [200]
    body = emulator.compute("cpu-cluster").last_request_body
    assert body == {
        "properties": {
            "computeType": "AmlCompute",
            "properties": {
                "scaleSettings": {
                    "minNodeCount": 1,
                    "maxNodeCount": 8,
                    "nodeIdleTimeBeforeScaleDown": "PT900S",
                }
            },
        }
    }
    fresh = ComputeTarget(workspace, "cpu-cluster")
    assert (fresh.scale_settings.minimum_node_count, fresh.scale_settings.maximum_node_count) == (
        1,
        8,
    )
    assert fresh.scale_settings.idle_seconds_before_scaledown == 900
    assert fresh.vm_size == "STANDARD_DS3_V2"


# ---- submission and runs --------------------------------------------------------------------


@sdk_run_warnings
@pytest.mark.usefixtures("cluster")
def test_submit_uploads_the_snapshot_the_emulator_captures(
    emulator: Emulator, workspace: Any, source_dir: Path
) -> None:
    run = _submit(workspace, source_dir)

    state = emulator.run(run.id)
    assert state.snapshot_id is not None
    assert state.definition is not None
    snapshot = emulator.snapshots[state.snapshot_id]
    # .amlignore keeps data/ and *.log out, and is uploaded itself
    assert snapshot.paths == {".amlignore", "train.py", "pkg/__init__.py", "pkg/model.py"}
    assert snapshot.files["pkg/model.py"] == b"WEIGHTS = [1, 2, 3]\n"
    assert snapshot.files["pkg/__init__.py"] == b""
    assert sorted(snapshot.tree_paths) == sorted(snapshot.paths)
    blob_puts = emulator.requests_to("blob.put")
    assert len(blob_puts) == 4
    assert {r.host for r in blob_puts} == {f"{emulator.blob_host}:{emulator.port}"}
    assert all(r.header("x-ms-blob-type") == "BlockBlob" for r in blob_puts)
    configuration = state.definition["Configuration"]
    assert (configuration["script"], configuration["arguments"], configuration["target"]) == (
        "train.py",
        ["--epochs", 2],
        "cpu-cluster",
    )
    assert configuration["environment"]["name"] == "emulated-env"
    assert emulator.requests_to("execution.snapshotrun")[0].query["runId"] == [run.id]
    skipped = {"discovery", "arm.workspace.get"}
    sequence = [name for name in emulator.route_sequence(include_blob=False) if name not in skipped]
    assert sequence == [
        "history.experiment.get",
        "history.experiment.create",
        "compute.get",
        "content.snapshot.latest",
        "content.snapshot.getblob",
        "content.snapshot.create",
        "execution.snapshotrun",
        "history.run.patch",
    ]
    assert run.get_properties()["ContentSnapshotId"] == state.snapshot_id


@sdk_run_warnings
@pytest.mark.usefixtures("cluster")
def test_run_waits_to_completed_then_metrics_and_outputs(
    emulator: Emulator,
    workspace: Any,
    source_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator.program_run(
        ["Queued", "Preparing", "Running", "Finalizing", "Completed"],
        logs=DRIVER_LOG,
        metrics={
            "accuracy": 0.93,
            "loss": [0.5, 0.25],
            "epochs": 2,
            "confusion": {"tp": [5, 6], "fp": [1, 0]},
        },
        outputs={"model.pkl": b"\x80\x04weights", "reports/summary.json": b'{"ok": true}'},
    )
    run = _submit(workspace, source_dir)

    details = run.wait_for_completion(show_output=True)

    assert details["status"] == "Completed"
    assert details["target"] == "cpu-cluster"
    assert "azureml-logs/70_driver_log.txt" in details["logFiles"]
    assert "epoch 2 loss 0.25" in capsys.readouterr().out
    assert emulator.run(run.id).served_statuses[-1] == "Completed"
    assert "Running" in emulator.run(run.id).served_statuses
    assert run.get_metrics() == {
        "accuracy": 0.93,
        "loss": [0.5, 0.25],
        "epochs": 2,
        "confusion": {"tp": [5, 6], "fp": [1, 0]},
    }
    assert emulator.count("metric.list") == 1
    assert emulator.count("metric.full") == 4

    run.download_files(prefix="outputs", output_directory=str(tmp_path / "downloaded"))

    downloaded = tmp_path / "downloaded" / "outputs"
    assert (downloaded / "model.pkl").read_bytes() == b"\x80\x04weights"
    assert (downloaded / "reports" / "summary.json").read_bytes() == b'{"ok": true}'


@sdk_run_warnings
@pytest.mark.usefixtures("cluster")
def test_a_growing_log_is_served_as_written_and_a_run_ends_when_told(
    emulator: Emulator, workspace: Any, source_dir: Path
) -> None:
    emulator.program_run(["Running"], logs="")
    run = _submit(workspace, source_dir)
    url = run.get_details()["logFiles"]["azureml-logs/70_driver_log.txt"]  # the run starts
    emulator.append_log(run.id, "epoch 1\n")
    first = requests.get(url, timeout=10).text
    emulator.append_log(run.id, "epoch 2\n")
    second = requests.get(url, timeout=10).text  # the same URL, no run read in between
    before = run.get_status()

    emulator.set_run_status(run.id, "Completed")

    assert (first, second) == ("epoch 1\n", "epoch 1\nepoch 2\n")
    assert before == "Running"
    assert [run.get_status(), run.get_status()] == ["Completed", "Completed"]
    assert run.get_details_with_logs()["logFiles"] == {
        "azureml-logs/70_driver_log.txt": "epoch 1\nepoch 2\n"
    }


@sdk_run_warnings
@pytest.mark.usefixtures("cluster")
def test_wait_without_output_returns_at_finalizing(
    emulator: Emulator, workspace: Any, source_dir: Path
) -> None:
    # every read of the run moves one step: Finalizing lasts for two reads (the last status poll
    # and the get_details that follows it)
    emulator.program_run(["Queued", "Running", "Finalizing", "Finalizing", "Completed"])
    run = _submit(workspace, source_dir)

    details = run.wait_for_completion()

    # the SDK's default stops waiting at Finalizing, before the run's real outcome is known
    assert details["status"] == "Finalizing"
    assert run.get_status() == "Completed"


@sdk_run_warnings
@pytest.mark.usefixtures("cluster")
def test_run_failed_raises_with_the_service_error_and_log(
    emulator: Emulator, workspace: Any, source_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.program_run(
        ["Queued", "Running", "Failed"],
        logs={
            "user_logs/std_log.txt": "Traceback (most recent call last):\nValueError: bad rate\n"
        },
        error={"code": "UserError", "message": "ValueError: bad rate"},
    )
    run = _submit(workspace, source_dir)

    with pytest.raises(ActivityFailedException, match="bad rate"):
        run.wait_for_completion(show_output=True)

    assert "ValueError: bad rate" in capsys.readouterr().out
    details = run.get_details()
    assert details["status"] == "Failed"
    assert details["error"]["error"]["code"] == "UserError"
    # user_logs/ come from the artifact service, not from run history
    assert list(details["logFiles"]) == ["user_logs/std_log.txt"]
    assert emulator.count("artifact.list_prefix") >= 2


@sdk_run_warnings
@pytest.mark.filterwarnings(
    r"ignore:setDaemon\(\) is deprecated:DeprecationWarning"
)  # azureml/_common
@pytest.mark.usefixtures("cluster")
def test_cancel_moves_the_run_to_canceled(
    emulator: Emulator, workspace: Any, source_dir: Path
) -> None:
    emulator.program_run(["Queued", "Running"])  # would never end by itself
    run = _submit(workspace, source_dir)

    run.cancel()

    assert [r.status for r in emulator.requests_to("execution.cancel")] == [200]
    assert run.get_status() == "CancelRequested"
    details = run.wait_for_completion()  # Canceled returns quietly
    assert details["status"] == "Canceled"
    assert emulator.run(run.id).cancel_requested


@sdk_run_warnings
@pytest.mark.usefixtures("cluster")
def test_reattach_to_a_run_by_id(emulator: Emulator, workspace: Any, source_dir: Path) -> None:
    emulator.program_run(["Queued", "Running", "Completed"], metrics={"accuracy": 0.5})
    submitted = _submit(workspace, source_dir, experiment="reattach")
    emulator.clear_requests()

    again = Run(Experiment(workspace, "reattach"), submitted.id)
    by_workspace = Run.get(workspace, submitted.id)

    assert again.id == by_workspace.id == submitted.id
    assert by_workspace.experiment.name == "reattach"
    assert again.wait_for_completion()["status"] == "Completed"
    assert again.get_metrics() == {"accuracy": 0.5}
    assert emulator.count("history.run.get.workspace") == 1
    assert emulator.count("history.experiment.get_by_id") == 1


@sdk_run_warnings
def test_reattach_to_a_run_the_emulator_already_had(emulator: Emulator, workspace: Any) -> None:
    existing = emulator.add_run(
        "nightly", ["Completed"], run_id="nightly_1700000000_abcd1234", metrics={"f1": 0.7}
    )

    run = Run(Experiment(workspace, "nightly"), existing.run_id)

    assert run.get_status() == "Completed"
    assert run.get_metrics() == {"f1": 0.7}


# ---- faults ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("cluster")
def test_fault_503_twice_then_success(emulator: Emulator, workspace: Any) -> None:
    emulator.fail("compute.get", 503, times=2)

    started = time.monotonic()
    target = ComputeTarget(workspace, "cpu-cluster")

    assert target.name == "cpu-cluster"
    assert [r.status for r in emulator.requests_to("compute.get")] == [503, 503, 200]
    assert time.monotonic() - started < 2  # AZUREML_DEFAULT_503_BACKOFF=0


@sdk_run_warnings
@pytest.mark.usefixtures("cluster")
def test_fault_429_with_retry_after_is_honoured_by_msrest_clients(
    emulator: Emulator, workspace: Any, source_dir: Path
) -> None:
    emulator.program_run(["Running"])
    run = _submit(workspace, source_dir)
    emulator.fail("history.run.get", 429, times=1, retry_after=1)

    assert run.get_status() == "Running"

    first, second = emulator.requests_to("history.run.get")
    assert (first.status, first.fault, second.status) == (429, "status", 200)
    assert second.started - first.started >= 0.9  # urllib3 slept Retry-After


@pytest.mark.usefixtures("cluster")
def test_fault_429_retry_after_is_ignored_by_the_data_plane_retry(
    emulator: Emulator, workspace: Any
) -> None:
    emulator.fail("compute.get", 429, times=1, retry_after=30)

    started = time.monotonic()
    ComputeTarget(workspace, "cpu-cluster")

    # clientbase retries after AZUREML_DEFAULT_BACKOFF (default 32 s, 0 here), not Retry-After
    assert [r.status for r in emulator.requests_to("compute.get")] == [429, 200]
    assert time.monotonic() - started < 5


@pytest.mark.usefixtures("cluster")
def test_fault_connection_reset_is_retried(emulator: Emulator, workspace: Any) -> None:
    emulator.reset_connection("compute.get")

    ComputeTarget(workspace, "cpu-cluster")

    assert [r.fault for r in emulator.requests_to("compute.get")] == ["reset", None]


@pytest.mark.usefixtures("cluster")
def test_fault_slow_answer(emulator: Emulator, workspace: Any) -> None:
    emulator.delay("compute.get", 0.5)

    started = time.monotonic()
    ComputeTarget(workspace, "cpu-cluster")

    assert time.monotonic() - started >= 0.5
    assert [r.fault for r in emulator.requests_to("compute.get")] == ["delay"]


# ---- the emulator itself ---------------------------------------------------------------------


def test_emulator_logs_unknown_routes_refuses_anonymous_calls_and_checks_fault_routes(
    emulator: Emulator,
) -> None:
    answer = requests.get(emulator.url + "/no/such/thing", timeout=10)  # trusts the CA bundle

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NoRouteInEmulator"
    assert [r.path for r in emulator.unknown_requests] == ["/no/such/thing"]
    emulator.unknown_requests_expected = True
    # like ARM, the emulator wants a bearer token (the SDK always sends one)
    anonymous = requests.get(emulator.url + emulator.workspace.arm_id, timeout=10)
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (
        401,
        "AuthenticationFailed",
    )
    with pytest.raises(ValueError, match="unknown route"):
        emulator.fail("compute.gets", 503)
