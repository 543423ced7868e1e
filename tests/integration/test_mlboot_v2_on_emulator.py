"""mlboot's public API -> its azureml-v2 backend -> unmodified azure-ai-ml -> the emulator."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

pytest.importorskip("azure.ai.ml", reason="the v2 extra (mlboot[v2]) is not installed")

import mlboot
from emulator import Emulator, StaticTokenCredential, isolate_v2_sdk, v2_client_kwargs
from mlboot.exceptions import (
    ComputeMismatchError,
    NotFoundError,
    RunFailedError,
    ServiceError,
    WorkspaceNotFoundError,
)

pytestmark = pytest.mark.sdk

FAST = 0.01  # seconds between two status polls: the emulator moves a run on per read


@pytest.fixture
def credential(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> StaticTokenCredential:
    isolate_v2_sdk(monkeypatch, emulator)
    return StaticTokenCredential.for_emulator(emulator)


@pytest.fixture
def workspace(config: Path, credential: StaticTokenCredential) -> mlboot.Workspace:
    return mlboot.workspace_from_config(config, auth=credential, backend="azureml-v2")


def _rewrite(config: Path, **changes: str) -> Path:
    data = json.loads(config.read_text(encoding="utf-8"))
    config.write_text(json.dumps({**data, **changes}), encoding="utf-8")
    return config


def _submit(
    workspace: mlboot.Workspace,
    source_dir: Path,
    environment: mlboot.Environment | None = None,
) -> mlboot.Run:
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute="cpu-cluster",
        experiment="exp",
        source_directory=source_dir,
        environment=environment or mlboot.Environment.from_docker_image("team/train:1"),
    )


def _poller_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("LROPoller") and t.is_alive()]


# ---- workspace --------------------------------------------------------------------------------


def test_the_workspace_is_found_with_one_arm_lookup(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    assert workspace.name == emulator.workspace.name
    assert workspace.location == "westeurope"
    assert emulator.route_sequence() == ["arm.workspace.get"]


def test_the_config_file_chooses_the_v2_backend(
    emulator: Emulator, config: Path, credential: StaticTokenCredential
) -> None:
    workspace = mlboot.workspace_from_config(
        _rewrite(config, mlboot_backend="azureml-v2"), auth=credential
    )

    assert type(workspace.backend).__name__ == "AzureMLV2Backend"
    assert emulator.route_sequence() == ["arm.workspace.get"]


def test_a_missing_workspace_is_not_found_at_once(
    emulator: Emulator, config: Path, credential: StaticTokenCredential
) -> None:
    missing = _rewrite(config, workspace_name="no-such-ws")

    with pytest.raises(WorkspaceNotFoundError, match="no-such-ws"):
        mlboot.workspace_from_config(missing, auth=credential, backend="azureml-v2")


# ---- compute ----------------------------------------------------------------------------------


def test_a_new_cluster_is_created_and_waited_for_on_mlboots_clock(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    target = mlboot.get_or_create_compute_target(
        workspace, "gpu-cluster", vm_size="STANDARD_NC6", max_nodes=2, vm_priority="lowpriority"
    )

    assert target.name == "gpu-cluster"
    (put,) = emulator.requests_to("arm.compute.put")
    assert put.header("If-None-Match") == "*"
    body = emulator.compute("gpu-cluster").last_request_body
    assert body["properties"]["properties"]["vmPriority"] == "LowPriority"
    assert _poller_threads() == []


def test_an_existing_cluster_is_reused_and_a_drift_is_refused(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_D2_V3", max_nodes=4)

    reused = mlboot.get_or_create_compute_target(
        workspace, "cpu-cluster", vm_size="STANDARD_D2_V3", max_nodes=4
    )
    with pytest.raises(ComputeMismatchError):
        mlboot.get_or_create_compute_target(
            workspace, "cpu-cluster", vm_size="STANDARD_NC6", max_nodes=4
        )

    assert reused.name == "cpu-cluster"
    assert emulator.count("arm.compute.put") == 0


def test_a_rescale_is_a_full_put_that_keeps_the_priority(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    emulator.add_compute(
        "cpu-cluster", vm_size="STANDARD_D2_V3", vm_priority="LowPriority", max_nodes=4
    )

    mlboot.get_or_create_compute_target(
        workspace,
        "cpu-cluster",
        vm_size="STANDARD_D2_V3",
        vm_priority="lowpriority",
        max_nodes=8,
        on_mismatch="update",
    )

    body = emulator.compute("cpu-cluster").last_request_body
    cluster = body["properties"]["properties"]
    assert cluster["vmPriority"] == "LowPriority"
    assert cluster["scaleSettings"]["maxNodeCount"] == 8
    assert _poller_threads() == []


# ---- runs -------------------------------------------------------------------------------------


def test_a_submitted_run_uploads_the_plan_and_reports_logs_and_metrics(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.add_compute("cpu-cluster")
    emulator.program_job(
        ("Queued", "Running", "Completed"),
        logs="epoch 1\nepoch 2\n",
        metrics={"loss": [0.5, 0.25], "acc": 0.9},
    )
    plan = mlboot.plan_snapshot(source_dir)

    run = mlboot.submit_script(
        workspace,
        "train.py",
        compute="cpu-cluster",
        experiment="exp",
        source_directory=source_dir,
        arguments=["--lr", "0.1", "$HOME"],
        environment=mlboot.Environment.from_docker_image("team/train:1"),
        tags={"team": "vision"},
    )
    status = run.wait(timeout=60, poll_interval=FAST)

    assert status is mlboot.RunStatus.COMPLETED
    (code,) = emulator.code_versions
    assert sorted(emulator.code_files(code)) == sorted(plan.files)
    job = emulator.job(run.id)
    properties = job.body["properties"]
    assert properties["experimentName"] == "exp"
    assert properties["tags"] == {"team": "vision"}
    assert shlex.split(properties["command"]) == ["python", "train.py", "--lr", "0.1", "$HOME"]
    assert run.logs() == "epoch 1\nepoch 2\n"
    assert run.metrics() == {"acc": [0.9], "loss": [0.5, 0.25]}


def _git_repository(folder: Path, url: str) -> str:
    """Make ``folder`` a git repository with one commit, remote ``url``; its commit id."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("project\n", encoding="utf-8")
    for arguments in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", url],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "1"],
    ):
        subprocess.run(["git", *arguments], cwd=folder, check=True, timeout=60)  # noqa: S603, S607  (git, fixed arguments)
    out = subprocess.run(
        ["git", "rev-parse", "HEAD"],  # noqa: S607  (git from the PATH)
        cwd=folder,
        check=True,
        timeout=60,
        capture_output=True,
    )
    return out.stdout.decode().strip()


@pytest.fixture
def launcher_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: another git repository (azure-ai-ml alone would record it)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for name in [n for n in os.environ if n.startswith(("AZUREML_GIT_", "GIT_"))]:
        monkeypatch.delenv(name)
    checkout = tmp_path / "elsewhere"
    _git_repository(checkout, "https://example.invalid/other/launcher.git")
    monkeypatch.chdir(checkout)
    return checkout


def test_a_run_records_its_source_folders_git_details_not_the_working_directorys(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, launcher_checkout: Path
) -> None:
    emulator.add_compute("cpu-cluster")
    commit = _git_repository(source_dir, "https://example.invalid/team/project.git")

    run = _submit(workspace, source_dir)

    recorded = emulator.job(run.id).body["properties"]["properties"]
    assert recorded["mlflow.source.git.repoURL"] == "https://example.invalid/team/project.git"
    assert recorded["mlflow.source.git.commit"] == commit
    assert recorded["mlflow.source.git.branch"] == "main"
    assert recorded["azureml.git.dirty"] == "False"


def test_a_source_folder_outside_git_records_no_git_details_even_from_a_checkout(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, launcher_checkout: Path
) -> None:
    emulator.add_compute("cpu-cluster")

    run = _submit(workspace, source_dir)

    recorded = emulator.job(run.id).body["properties"].get("properties") or {}
    assert not [name for name in recorded if "git" in name]


def test_the_environment_is_created_beside_the_upload_and_the_job_names_it(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.add_compute("cpu-cluster")

    run = _submit(workspace, source_dir)

    (environment,) = emulator.environment_versions
    assert environment.properties["image"] == "team/train:1"
    environment_id = emulator.job(run.id).body["properties"]["environmentId"]
    assert environment_id.endswith(
        f"/environments/{environment.name}/versions/{environment.version}"
    )
    routes = emulator.route_sequence(include_blob=False)
    assert routes.count("v2.environment.put") == 1
    assert routes[-1] == "v2.job.put"


def test_a_registered_environment_is_named_by_the_job_and_not_created(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    source_dir: Path,
    credential: StaticTokenCredential,
) -> None:
    from azure.ai.ml import MLClient  # noqa: PLC0415  (after the module's importorskip)
    from azure.ai.ml.entities import Environment as SdkEnvironment  # noqa: PLC0415  (the same)

    emulator.add_compute("cpu-cluster")
    state = emulator.workspace
    client = MLClient(
        credential, state.subscription_id, state.resource_group, state.name, **v2_client_kwargs()
    )
    client.environments.create_or_update(
        SdkEnvironment(name="train-env", version="3", image="team/train:1")
    )
    emulator.clear_requests()

    run = _submit(workspace, source_dir, mlboot.Environment.from_registered("train-env", "3"))

    assert emulator.count("v2.environment.put") == 0
    environment_id = emulator.job(run.id).body["properties"]["environmentId"]
    assert environment_id.endswith("/environments/train-env/versions/3")


def test_a_failed_upload_waits_for_the_environment_and_raises_the_uploads_error(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    source_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlboot._backends.azureml_v2 import _azureml_v2 as v2  # noqa: PLC0415  (needs the v2 extra)

    emulator.add_compute("cpu-cluster")

    def refused(client: object, request: object) -> str:
        raise ServiceError("the code upload was refused")

    monkeypatch.setattr(v2, "upload_snapshot", refused)
    before = {t.ident for t in threading.enumerate()}

    with pytest.raises(ServiceError, match="upload was refused"):
        _submit(workspace, source_dir)

    assert emulator.count("v2.environment.put") == 1  # it ended before the error was raised
    assert emulator.count("v2.job.put") == 0
    assert [
        t for t in threading.enumerate() if t.ident not in before and t.name == "mlboot-submit"
    ] == []


def test_a_failed_run_raises_with_the_services_error(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.add_compute("cpu-cluster")
    emulator.program_job(
        ("Running", "Failed"),
        logs="loading\nValueError: bad rate\n",
        error={"code": "UserError", "message": "ValueError: bad rate"},
    )

    run = _submit(workspace, source_dir)

    with pytest.raises(RunFailedError, match="bad rate"):
        run.wait(timeout=60, poll_interval=FAST)


def test_a_run_is_reattached_by_name_and_canceled_without_waiting(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    emulator.add_job("job-1", ["Running"], experiment_name="exp")

    run = mlboot.get_run(workspace, "job-1")
    run.cancel()

    assert run.experiment == "exp"
    assert emulator.count("v2.job.cancel") == 1
    assert _poller_threads() == []


def test_an_unknown_run_is_not_found(workspace: mlboot.Workspace) -> None:
    with pytest.raises(NotFoundError):
        mlboot.get_run(workspace, "no-such-job")


def test_following_a_run_prints_its_log_as_it_grows(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    source_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator.add_compute("cpu-cluster")
    emulator.program_job(("Running", "Running", "Completed"), logs="epoch 1\nepoch 2\n")
    run = _submit(workspace, source_dir)
    capsys.readouterr()

    status = run.wait(timeout=60, poll_interval=FAST, show_output=True)

    printed = capsys.readouterr().out
    assert status is mlboot.RunStatus.COMPLETED
    assert "epoch 1\nepoch 2\n" in printed
    assert printed.count("epoch 1") == 1
