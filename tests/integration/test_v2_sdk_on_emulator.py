"""The real, unmodified azure-ai-ml (SDK v2) against the emulator's v2 routes.

These tests pin down what reaches the wire for each call of mlboot's flow on v2 (issue 18):
workspace, compute get and create, code upload with a command job, environments, jobs get and
cancel, datastores with secrets, run-history details with the user log, and metric history
through MLflow's REST API. They are the reference for the v2 backend; what they found is in
docs/dev/v2-on-emulator.md.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.ai.ml", reason="the v2 extra (mlboot[v2]) is not installed")

from azure.ai.ml import Input, MLClient, command
from azure.ai.ml.entities import AmlCompute, Environment
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from mlflow.tracking import MlflowClient

from emulator import (
    Emulator,
    StaticTokenCredential,
    isolate_v2_sdk,
    v2_client_kwargs,
)

# Longest any test here may take: the SDK's 30 s poller or a 2 s stream poll would exceed it.
# (workspaces.get imports mlflow when azureml-mlflow is installed: imported above, at collection,
# so that its import time, ~13 s without byte-compiled files, is not counted here.)
_TEST_SECONDS = 10.0
_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"


@pytest.fixture(autouse=True)
def _bounded_time() -> Iterator[None]:
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < _TEST_SECONDS, f"took {elapsed:.1f} s: an SDK wait was not shortened"


@pytest.fixture
def credential(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> StaticTokenCredential:
    isolate_v2_sdk(monkeypatch, emulator)
    return StaticTokenCredential.for_emulator(emulator)


@pytest.fixture
def ml_client(emulator: Emulator, credential: StaticTokenCredential) -> MLClient:
    state = emulator.workspace
    return MLClient(
        credential,
        state.subscription_id,
        state.resource_group,
        state.name,
        **v2_client_kwargs(),
    )


def _poller_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("LROPoller") and t.is_alive()]


def _api_versions(emulator: Emulator, route: str) -> set[str]:
    return {v for r in emulator.requests_to(route) for v in r.query.get("api-version", [])}


def test_workspace_get_gives_location_and_an_mlflow_uri_bound_to_the_emulator(
    emulator: Emulator, ml_client: MLClient, credential: StaticTokenCredential
) -> None:
    workspace = ml_client.workspaces.get(emulator.workspace.name)

    assert workspace.location == "westeurope"
    host = f"127.0.0.1:{emulator.port}"
    assert workspace.mlflow_tracking_uri == (
        f"azureml://{host}/mlflow/v2.0{emulator.workspace.arm_id}"
    )
    assert workspace.discovery_url == emulator.discovery_url
    # MLClient() itself sends nothing: one GET, with the credential's token.
    assert emulator.route_sequence() == ["arm.workspace.get"]
    (request,) = emulator.requests
    assert request.header("Authorization") == f"Bearer {credential.token}"
    assert _api_versions(emulator, "arm.workspace.get") == {"2024-10-01-preview"}
    assert credential.scopes == [(emulator.url + "/.default",)]


def test_compute_get_reads_the_cluster_and_a_missing_one_is_not_found(
    emulator: Emulator, ml_client: MLClient
) -> None:
    emulator.add_compute(
        "cpu-cluster",
        vm_size="STANDARD_D2_V3",
        vm_priority="LowPriority",
        min_nodes=1,
        max_nodes=3,
        idle_seconds_before_scaledown=600,
    )

    compute = ml_client.compute.get("cpu-cluster")
    with pytest.raises(ResourceNotFoundError):
        ml_client.compute.get("no-such-cluster")

    assert isinstance(compute, AmlCompute)
    assert (compute.size, compute.tier) == ("STANDARD_D2_V3", "low_priority")
    assert (compute.min_instances, compute.max_instances) == (1, 3)
    assert compute.idle_time_before_scale_down == 600.0
    assert compute.provisioning_state == "Succeeded"
    assert emulator.statuses("arm.compute.get") == [200, 404]
    assert _api_versions(emulator, "arm.compute.get") == {"2023-08-01-preview"}


def test_compute_create_is_an_upsert_put_and_its_poller_does_not_sleep(
    emulator: Emulator, ml_client: MLClient
) -> None:
    emulator.program_provisioning("gpu-cluster", ["Creating", "Creating", "Succeeded"])
    started = time.monotonic()

    poller = ml_client.compute.begin_create_or_update(
        AmlCompute(name="gpu-cluster", size="STANDARD_NC6", min_instances=0, max_instances=2)
    )
    compute = poller.result(timeout=5)

    assert time.monotonic() - started < 3  # polling_interval=0 reached the ARM client
    assert compute.provisioning_state == "Succeeded"
    assert not _poller_threads()
    # workspace location, the PUT, two polls of the async operation, the final GET
    assert emulator.route_sequence() == [
        "arm.workspace.get",
        "arm.compute.put",
        "arm.compute.operation",
        "arm.compute.operation",
        "arm.compute.get",
    ]
    (put,) = emulator.requests_to("arm.compute.put")
    assert put.header("If-None-Match") is None  # a plain upsert: never a conflict
    body = emulator.compute("gpu-cluster").last_request_body
    assert body is not None
    assert body["properties"]["computeType"] == "AmlCompute"
    assert body["properties"]["properties"]["scaleSettings"] == {
        "maxNodeCount": 2,
        "minNodeCount": 0,
        "nodeIdleTimeBeforeScaleDown": "PT2M",
    }
    assert _api_versions(emulator, "arm.compute.put") == {"2023-08-01-preview"}


def test_compute_put_with_if_none_match_star_is_refused_when_the_compute_exists(
    emulator: Emulator, ml_client: MLClient
) -> None:
    # The public begin_create_or_update takes no headers; the generated operation under it
    # passes a headers= keyword through to the request, which is how a backend can ask for a
    # create-only PUT.
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2")
    rest = AmlCompute(name="cpu-cluster", size="STANDARD_NC6", max_instances=2)
    rest.location = "westeurope"
    operation: Any = ml_client.compute._operation

    with pytest.raises(HttpResponseError) as refused:
        operation.begin_create_or_update(
            emulator.workspace.resource_group,
            emulator.workspace.name,
            compute_name="cpu-cluster",
            parameters=rest._to_rest_object(),
            headers={"If-None-Match": "*"},
        )

    assert refused.value.status_code == 412
    assert emulator.compute("cpu-cluster").vm_size == "STANDARD_DS3_V2"  # untouched
    (put,) = emulator.requests_to("arm.compute.put")
    assert put.header("If-None-Match") == "*"
    assert put.status == 412


def test_command_job_uploads_the_code_folder_then_puts_the_job(
    emulator: Emulator, ml_client: MLClient, source_dir: Path
) -> None:
    job = command(
        code=str(source_dir),
        command="python train.py --lr ${{inputs.lr}}",
        inputs={"lr": 0.1},
        environment="azureml:AzureML-sklearn-1.5@latest",
        compute="cpu-cluster",
        experiment_name="exp",
        display_name="first",
        tags={"team": "ml"},
    )

    submitted = ml_client.jobs.create_or_update(job)

    # The code: is this hash known? no -> a pending upload (a SAS on the default datastore's
    # container) -> each file HEAD then PUT -> the upload marked done (metadata) -> the version.
    routes = emulator.route_sequence()
    assert routes[:2] == ["v2.code.list", "v2.code.pending_upload"]
    assert routes[-2:] == ["v2.code.put", "v2.job.put"]
    blob_routes = routes[2:-2]
    metadata_puts = [
        r for r in emulator.requests_to("blob.put") if r.query.get("comp") == ["metadata"]
    ]
    assert len(metadata_puts) == 1
    file_puts = [r for r in emulator.requests_to("blob.put") if r not in metadata_puts]
    assert [r.header("If-None-Match") for r in file_puts] == ["*"] * 4  # create-only blobs
    assert blob_routes.count("blob.head") == 1  # the first file only: the indicator file
    assert blob_routes.count("blob.put") == 4 + 1  # four files, then their metadata
    (code,) = emulator.code_versions
    # The root .amlignore is applied (data/ and *.log left out) and uploaded itself.
    assert set(emulator.code_files(code)) == {
        ".amlignore",
        "train.py",
        "pkg/__init__.py",
        "pkg/model.py",
    }
    assert emulator.code_files(code)["train.py"] == (source_dir / "train.py").read_bytes()
    assert code.properties["isAnonymous"] is True
    assert code.hash_sha256 == emulator.requests_to("v2.code.list")[0].query["hash"][0]
    assert emulator.requests_to("v2.code.list")[0].query["hashVersion"] == ["202208"]
    # The first file is the indicator: its metadata (name, version) marks the upload done.
    (indicator,) = metadata_puts
    assert indicator.params["blob_path"].endswith("/.amlignore")
    key = f"{indicator.params['container']}/{indicator.params['blob_path']}"
    assert emulator.blob_metadata(key) == {"name": code.name, "version": "1"}

    # The job names the code version, the compute and the environment, unresolved.
    body = emulator.job(submitted.name).body["properties"]
    assert body["jobType"] == "Command"
    assert body["codeId"] == (f"{emulator.workspace.arm_id}/codes/{code.name}/versions/1")
    assert body["computeId"].endswith("/computes/cpu-cluster")
    assert body["environmentId"] == "azureml:AzureML-sklearn-1.5@latest"
    assert body["command"] == "python train.py --lr ${{inputs.lr}}"
    assert body["inputs"]["lr"] == {"jobInputType": "literal", "value": "0.1"}
    assert (body["experimentName"], body["displayName"]) == ("exp", "first")
    assert body["tags"] == {"team": "ml"}
    assert submitted.status == "NotStarted"
    assert _api_versions(emulator, "v2.code.list") == {"2023-04-01"}
    assert _api_versions(emulator, "v2.job.put") == {"2025-01-01-preview"}


def test_a_second_submit_of_the_same_folder_reuses_the_code_without_uploading(
    emulator: Emulator, ml_client: MLClient, source_dir: Path
) -> None:
    def submit() -> Any:
        return ml_client.jobs.create_or_update(
            command(
                code=str(source_dir),
                command="python train.py",
                environment=Environment(image=_IMAGE),
                compute="cpu-cluster",
            )
        )

    first = submit()
    emulator.clear_requests()
    second = submit()

    assert first.name != second.name  # the client picks a new name per job
    # The hash is known: the code version is read back, nothing is uploaded. An inline
    # Environment(image=) is an anonymous environment, PUT again under its content's hash.
    assert emulator.route_sequence() == [
        "v2.code.list",
        "v2.code.get",
        "v2.environment.put",
        "v2.job.put",
    ]
    assert len(emulator.code_versions) == 1
    (environment,) = emulator.environment_versions
    assert environment.name == "CliV2AnonymousEnvironment"
    assert len(environment.version) == 64  # a sha256 of the definition
    assert environment.properties["isAnonymous"] is True


def test_environment_create_or_update_puts_the_image_and_the_conda_file(
    emulator: Emulator, ml_client: MLClient
) -> None:
    conda = {"name": "train", "dependencies": ["python=3.11", {"pip": ["numpy==2.1.0"]}]}

    created = ml_client.environments.create_or_update(
        Environment(name="train-env", image=_IMAGE, conda_file=conda)
    )

    assert (created.name, created.version, created.image) == ("train-env", "1", _IMAGE)
    # No version given: the container's nextVersion is asked first (404: version 1).
    assert emulator.route_sequence() == ["v2.environment.container.get", "v2.environment.put"]
    assert emulator.statuses("v2.environment.container.get") == [404]
    (stored,) = emulator.environment_versions
    assert stored.properties["image"] == _IMAGE
    assert "numpy==2.1.0" in stored.properties["condaFile"]
    assert _api_versions(emulator, "v2.environment.put") == {"2023-04-01-preview"}


def test_jobs_get_follows_the_programmed_statuses_and_set_job_status(
    emulator: Emulator, ml_client: MLClient
) -> None:
    emulator.add_job("job-1", ["Queued", "Running"], experiment_name="exp")

    statuses = [ml_client.jobs.get("job-1").status for _ in range(3)]
    emulator.set_job_status("job-1", "Failed")
    final = ml_client.jobs.get("job-1")

    assert statuses == ["Queued", "Running", "Running"]
    assert final.status == "Failed"
    assert final.experiment_name == "exp"
    assert emulator.job("job-1").served_statuses == ["Queued", "Running", "Running", "Failed"]
    with pytest.raises(ResourceNotFoundError):
        ml_client.jobs.get("no-such-job")
    assert _api_versions(emulator, "v2.job.get") == {"2024-01-01-preview"}


def test_begin_cancel_posts_cancel_and_polls_its_location_without_sleeping(
    emulator: Emulator, ml_client: MLClient
) -> None:
    emulator.add_job("job-1", ["Running"])

    ml_client.jobs.begin_cancel("job-1").result(timeout=5)
    after = [ml_client.jobs.get("job-1").status for _ in range(2)]

    assert not _poller_threads()
    assert emulator.job("job-1").cancel_requested
    assert after == ["CancelRequested", "Canceled"]
    assert emulator.route_sequence() == [
        "v2.job.cancel",
        "v2.job.cancel.operation",
        "v2.job.get",
        "v2.job.get",
    ]
    assert emulator.statuses("v2.job.cancel") == [202]
    assert _api_versions(emulator, "v2.job.cancel") == {"2023-04-01-preview"}


def test_datastore_get_with_secrets_lists_them_with_a_post(
    emulator: Emulator, ml_client: MLClient
) -> None:
    emulator.add_datastore("training_data", credential_type="Sas")

    plain = ml_client.datastores.get("workspaceblobstore")
    with_key = ml_client.datastores.get("workspaceblobstore", include_secrets=True)
    with_sas = ml_client.datastores.get("training_data", include_secrets=True)
    default = ml_client.datastores.get_default()

    assert plain.credentials.account_key is None
    assert with_key.credentials.account_key == emulator.datastore("workspaceblobstore").account_key
    assert with_sas.credentials.sas_token == emulator.datastore("training_data").sas_token
    assert (with_key.account_name, with_key.endpoint) == (
        "emustore",
        f"emulator.localhost:{emulator.port}",
    )
    assert default.name == "workspaceblobstore"
    assert emulator.route_sequence() == [
        "v2.datastore.get",
        "v2.datastore.get",
        "v2.datastore.secrets",
        "v2.datastore.get",
        "v2.datastore.secrets",
        "v2.datastore.list",
    ]
    assert emulator.requests_to("v2.datastore.list")[0].query["isDefault"] == ["true"]
    assert _api_versions(emulator, "v2.datastore.secrets") == {"2024-10-01-preview"}


def test_stream_reads_run_history_details_and_the_user_log_by_its_sas_url(
    emulator: Emulator, ml_client: MLClient
) -> None:
    emulator.add_job("job-1", ["Running", "Running", "Completed"], logs="epoch 1\nepoch 2\n")
    out = io.StringIO()

    with contextlib.redirect_stdout(out):
        ml_client.jobs.stream("job-1")

    assert "Streaming user_logs/std_log.txt" in out.getvalue()
    assert "epoch 1\nepoch 2\n" in out.getvalue()
    assert emulator.route_sequence() == [
        "v2.job.get",
        "arm.workspace.get",  # the run-history URL comes from the workspace's discovery
        "discovery",
        "v2.history.run.details",
        "v2.history.run.details",
        "blob.get",
    ]
    (log,) = emulator.requests_to("blob.get")
    assert log.path.endswith("/user_logs/std_log.txt")
    assert "sig" in log.query
    details = emulator.requests_to("v2.history.run.details")[0]
    assert details.path == f"/history/v1.0{emulator.workspace.arm_id}/runs/job-1/details"


def test_metric_history_is_read_through_mlflow_rest_with_the_clients_credential(
    emulator: Emulator, ml_client: MLClient, credential: StaticTokenCredential
) -> None:
    emulator.add_job("job-1", ["Completed"], metrics={"loss": [0.5, 0.25, 0.125], "acc": 0.9})
    tracking_uri = ml_client.workspaces.get(emulator.workspace.name).mlflow_tracking_uri
    client = MlflowClient(tracking_uri=tracking_uri)

    run = client.get_run("job-1")
    history = client.get_metric_history("job-1", "loss")

    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"loss": 0.125, "acc": 0.9}
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25), (2, 0.125)]
    assert emulator.route_sequence() == [
        "arm.workspace.get",
        "v2.mlflow.run.get",
        "v2.mlflow.metric.history",
    ]
    (request,) = emulator.requests_to("v2.mlflow.metric.history")
    assert request.query["metric_key"] == ["loss"]
    assert request.path.startswith(f"/mlflow/v2.0{emulator.workspace.arm_id}/api/2.0/")
    assert request.header("Authorization") == f"Bearer {credential.token}"


def test_input_paths_on_the_default_datastore_are_sent_as_uris(
    emulator: Emulator, ml_client: MLClient, source_dir: Path
) -> None:
    submitted = ml_client.jobs.create_or_update(
        command(
            code=str(source_dir),
            command="python train.py --data ${{inputs.data}}",
            inputs={
                "data": Input(
                    type="uri_folder", path="azureml://datastores/workspaceblobstore/paths/d/"
                )
            },
            environment=Environment(image=_IMAGE),
            compute="cpu-cluster",
        )
    )

    inputs = emulator.job(submitted.name).body["properties"]["inputs"]
    assert inputs["data"]["jobInputType"] == "uri_folder"
    assert inputs["data"]["uri"] == "azureml://datastores/workspaceblobstore/paths/d/"
    assert "v2.datastore.get" not in emulator.route_sequence()  # not resolved client-side


def test_code_upload_walks_ignored_folders_and_skips_nested_ignore_files(
    emulator: Emulator,
    ml_client: MLClient,
    source_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What mlboot's own upload plan must do instead (issue 18): prune ignored folders, and apply
    # nested ignore files as v1 does.
    (source_dir / "data" / "deep").mkdir()
    (source_dir / "data" / "deep" / "x.bin").write_bytes(b"x")
    (source_dir / "pkg" / ".amlignore").write_text("*.csv\n", encoding="utf-8")
    (source_dir / "pkg" / "table.csv").write_text("a\n1\n", encoding="utf-8")
    visited: list[str] = []
    real_walk = os.walk

    def counting_walk(top: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for item in real_walk(top, *args, **kwargs):
            visited.append(Path(item[0]).relative_to(source_dir).as_posix())
            yield item

    monkeypatch.setattr(os, "walk", counting_walk)

    ml_client.jobs.create_or_update(
        command(
            code=str(source_dir),
            command="python train.py",
            environment=Environment(image=_IMAGE),
            compute="cpu-cluster",
        )
    )

    # Four whole walks (the size check, the hash, the file list, the upload), the ignored data/
    # and data/deep entered by each.
    assert visited.count(".") == 4
    assert visited.count("data/deep") == 4
    (code,) = emulator.code_versions
    files = set(emulator.code_files(code))
    assert "pkg/table.csv" in files  # pkg/.amlignore is not applied
    assert not any(path.startswith("data/") for path in files)  # the root one is


def test_a_failed_job_streams_its_error_from_run_history(
    emulator: Emulator, ml_client: MLClient
) -> None:
    from azure.ai.ml.exceptions import JobException  # noqa: PLC0415 - only this test needs it

    emulator.add_job("job-1", ["Running", "Running", "Failed"], error="CUDA out of memory")

    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(JobException) as failed:
        ml_client.jobs.stream("job-1")

    assert "CUDA out of memory" in str(failed.value)
    assert emulator.job("job-1").served_statuses[-1] == "Failed"


def test_retries_of_503_follow_the_clients_backoff_setting(
    emulator: Emulator, credential: StaticTokenCredential
) -> None:
    # azure-core's RetryPolicy takes its settings from MLClient(**kwargs) too: with
    # retry_backoff_factor=0 two 503s cost no sleep (the default factor 0.8 sleeps 1.6 s, 3.2 s).
    state = emulator.workspace
    client = MLClient(
        credential,
        state.subscription_id,
        state.resource_group,
        state.name,
        retry_backoff_factor=0,
        **v2_client_kwargs(),
    )
    emulator.add_job("job-1", ["Running"])
    emulator.fail("v2.job.get", 503, times=2)
    started = time.monotonic()

    assert client.jobs.get("job-1").status == "Running"

    assert time.monotonic() - started < 1
    assert emulator.statuses("v2.job.get") == [503, 503, 200]
