"""The azure-ai-ml (SDK v2) backend's translations, over the real SDK's own objects.

Each test builds what azure-ai-ml builds (the command job and its REST body, the compute entity
and its PUT body, REST answers read back into entities, azure-core's exceptions) and checks that
mlboot's records come out and go in unchanged.  Nothing here sends a request: the flow over HTTP
is in ``tests/integration`` (against the emulator).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("azure.ai.ml", reason="the v2 extra (mlboot[v2]) is not installed")

from azure.ai.ml._restclient.arm_ml_service import models as rest_models
from azure.ai.ml.exceptions import ValidationException
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.pipeline.transport import HttpRequest, RequestsTransportResponse

import mlboot
from mlboot import Environment, MpiDistribution, PyTorchDistribution, RunStatus
from mlboot._backends.azureml_v2 import _azureml_v2 as v2
from mlboot._spellings import TERMINAL_RUN_STATUSES
from mlboot.backend import ComputeSpec, DataInput, DataOutput, RunRequest
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
)

CODE_ID = (
    "azureml:/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/"
    "workspaces/ws/codes/c0de/versions/1"
)


@pytest.fixture(autouse=True, scope="module")
def _sdk_loaded() -> None:
    v2.check_installed()


def _request(tmp_path: Path, **fields: Any) -> RunRequest:
    (tmp_path / "train.py").write_text("print('hi')\n", encoding="utf-8")
    values: dict[str, Any] = {
        "experiment": "exp",
        "source_directory": tmp_path,
        "script": "train.py",
        "compute": "gpu",
    }
    values.update(fields)
    return RunRequest(**values)


def _rest_body(request: RunRequest, *, name: str = "exp_1", **data: Any) -> dict[str, Any]:
    """The body azure-ai-ml PUTs for the job (``jobs.create_or_update`` converts it so)."""
    job = v2.sdk_command_job(request, code=CODE_ID, name=name, **data)._to_job()
    body: dict[str, Any] = job._to_rest_object().as_dict()
    return body


# -- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        (),
        ("--lr", "0.1"),
        ("a b", "it's", '"quoted"', "$HOME", "`date`", "; rm -rf /", "*.txt"),
        ("pre${{x}}post", "${{", "$${{y}}", "${{not.a.placeholder}}"),
        ("", "\\", "\n"),
    ],
)
def test_the_command_line_gives_the_script_its_arguments_unchanged(
    arguments: tuple[str, ...],
) -> None:
    line = v2.command_line("src/train.py", arguments)

    assert shlex.split(line) == ["python", "src/train.py", *arguments]
    # azure-ai-ml reads ${{...}} as a placeholder: no literal one may be left in the line.
    assert "${{" not in line


def test_the_runs_inputs_and_outputs_stay_placeholders_and_become_variables() -> None:
    line = v2.command_line(
        "train.py",
        ("--data", "${{inputs.data}}", "--out=${{outputs.model}}/best", "it's ${{"),
        inputs=["data"],
        outputs=["model"],
    )

    # The service replaces each placeholder with a path: a path without a space splits so.
    on_compute = line.replace("${{inputs.data}}", "/mnt/in/data").replace(
        "${{outputs.model}}", "/mnt/out/model"
    )
    assert shlex.split(on_compute) == [
        "MLBOOT_INPUT_data=/mnt/in/data",
        "MLBOOT_OUTPUT_model=/mnt/out/model",
        "python",
        "train.py",
        "--data",
        "/mnt/in/data",
        "--out=/mnt/out/model/best",
        "it's ${{",
    ]


@pytest.mark.parametrize("argument", ["${{inputs.other}}", "x=${{outputs.data}}"])
def test_a_placeholder_of_no_input_or_output_of_the_run_is_refused(argument: str) -> None:
    with pytest.raises(InvalidInputError, match="names no") as caught:
        v2.command_line("train.py", (argument,), inputs=["data"])

    assert caught.value.field == "arguments"


def test_a_script_name_with_a_space_is_quoted_too() -> None:
    assert shlex.split(v2.command_line("my dir/train.py", ())) == ["python", "my dir/train.py"]


# -- the job body -------------------------------------------------------------------------------


def test_the_job_body_carries_every_field_of_the_request(tmp_path: Path) -> None:
    request = _request(
        tmp_path,
        experiment="nightly",
        arguments=("--epochs", "3", "${{not.a.placeholder}}"),
        node_count=3,
        tags={"team": "vision", "ticket": "42"},
        max_run_duration_seconds=5400,
        distribution=PyTorchDistribution(process_count_per_node=4),
    )

    body = _rest_body(request, name="nightly_abc")
    properties = body["properties"]

    assert body["name"] == "nightly_abc"
    assert properties["jobType"] == "Command"
    assert shlex.split(properties["command"]) == [
        "python",
        "train.py",
        "--epochs",
        "3",
        "${{not.a.placeholder}}",
    ]
    assert properties["codeId"] == CODE_ID
    assert properties["computeId"] == "gpu"
    assert properties["experimentName"] == "nightly"
    assert properties["displayName"] == "train.py"
    assert properties["tags"] == {"team": "vision", "ticket": "42"}
    assert properties["resources"]["instanceCount"] == 3
    assert properties["distribution"] == {
        "distributionType": "PyTorch",
        "processCountPerInstance": 4,
    }
    assert properties["limits"] == {"jobLimitsType": "Command", "timeout": "PT1H30M"}


# -- data ---------------------------------------------------------------------------------------


def test_each_kind_of_input_becomes_a_job_input_at_its_uri_in_its_mode(tmp_path: Path) -> None:
    request = _request(
        tmp_path,
        arguments=("--images", "${{inputs.images}}"),
        inputs=(
            DataInput(name="images", mode="mount", kind="datastore", datastore="raw", path="img"),
            DataInput(
                name="labels", mode="download", kind="datastore", datastore="raw", path="l.csv"
            ),
            DataInput(name="web", mode="download", kind="url", url="https://example.org/a.csv"),
            DataInput(name="pinned", mode="mount", kind="dataset", dataset="cats", version="3"),
            DataInput(name="newest", mode="download", kind="dataset", dataset="dogs"),
        ),
    )

    body = _rest_body(request, input_types={"labels": "uri_file", "newest": "uri_file"})

    assert body["properties"]["inputs"] == {
        "images": {
            "jobInputType": "uri_folder",
            "uri": "azureml://datastores/raw/paths/img",
            "mode": "ReadOnlyMount",
        },
        "labels": {
            "jobInputType": "uri_file",
            "uri": "azureml://datastores/raw/paths/l.csv",
            "mode": "Download",
        },
        "web": {"jobInputType": "uri_file", "uri": "https://example.org/a.csv", "mode": "Download"},
        "pinned": {"jobInputType": "uri_folder", "uri": "azureml:cats:3", "mode": "ReadOnlyMount"},
        "newest": {"jobInputType": "uri_file", "uri": "azureml:dogs@latest", "mode": "Download"},
    }
    command = shlex.split(body["properties"]["command"])
    assert command[:5] == [
        f"MLBOOT_INPUT_{name}=${{{{inputs.{name}}}}}"
        for name in ("images", "labels", "web", "pinned", "newest")
    ]
    assert command[5:] == ["python", "train.py", "--images", "${{inputs.images}}"]


def test_an_output_goes_to_its_destination_or_under_the_run_in_the_default_datastore(
    tmp_path: Path,
) -> None:
    request = _request(
        tmp_path,
        outputs=(
            DataOutput(name="model", mode="upload"),
            DataOutput(
                name="ckpt", mode="mount", datastore="results", path="runs/{run-id}/{output-name}"
            ),
        ),
    )

    body = _rest_body(request, name="exp_7f3a", default_datastore="workspaceblobstore")

    assert body["properties"]["outputs"] == {
        "model": {
            "jobOutputType": "uri_folder",
            "uri": "azureml://datastores/workspaceblobstore/paths/dataset/exp_7f3a/model",
            "mode": "Upload",
        },
        "ckpt": {
            "jobOutputType": "uri_folder",
            "uri": "azureml://datastores/results/paths/runs/exp_7f3a/ckpt",
            "mode": "ReadWriteMount",
        },
    }
    assert shlex.split(body["properties"]["command"])[:2] == [
        "MLBOOT_OUTPUT_model=${{outputs.model}}",
        "MLBOOT_OUTPUT_ckpt=${{outputs.ckpt}}",
    ]


def test_a_run_without_data_sends_no_inputs_or_outputs(tmp_path: Path) -> None:
    properties = _rest_body(_request(tmp_path))["properties"]

    assert not properties.get("inputs")
    assert not properties.get("outputs")
    assert shlex.split(properties["command"]) == ["python", "train.py"]


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [
        ((DataInput(name="a", mode="stream", kind="url", url="https://x.org/a"),), ()),
        ((DataInput(name="a", mode="mount", kind="datastore"),), ()),
        ((), (DataOutput(name="o", mode="append"),)),
        ((), (DataOutput(name="o", mode="upload"),)),  # no default datastore given
    ],
)
def test_a_hand_built_data_record_the_sdk_cannot_send_is_refused(
    tmp_path: Path, inputs: tuple[DataInput, ...], outputs: tuple[DataOutput, ...]
) -> None:
    request = _request(tmp_path, inputs=inputs, outputs=outputs)

    with pytest.raises(InvalidInputError) as caught:
        _rest_body(request)

    assert caught.value.field == ("inputs" if inputs else "outputs")


def test_mpi_distribution_is_counted_per_node(tmp_path: Path) -> None:
    request = _request(
        tmp_path, distribution=MpiDistribution(process_count_per_node=2), node_count=2
    )

    properties = _rest_body(request)["properties"]

    assert properties["distribution"] == {"distributionType": "Mpi", "processCountPerInstance": 2}
    assert properties["resources"]["instanceCount"] == 2


def test_a_request_without_limits_or_tags_sends_none(tmp_path: Path) -> None:
    properties = _rest_body(_request(tmp_path))["properties"]

    assert "limits" not in properties
    assert properties.get("tags") in (None, {})
    assert "distribution" not in properties
    assert properties["resources"]["instanceCount"] == 1


def test_the_environment_variables_reach_the_job_with_secrets_revealed(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy\n", encoding="utf-8")
    environment = Environment.from_pip_requirements(
        requirements, variables={"HF_TOKEN": "hf_secret", "MODE": "fast"}
    )

    properties = _rest_body(_request(tmp_path, environment=environment))["properties"]

    assert properties["environmentVariables"] == {
        "MLBOOT_TRACKING": "mlflow",  # mlboot.log_metric goes through MLflow in a v2 job
        "HF_TOKEN": "hf_secret",
        "MODE": "fast",
    }


# -- environments -------------------------------------------------------------------------------


def test_a_pip_file_becomes_a_conda_file_on_the_default_base_image(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# pinned\nnumpy>=1.26  # for arrays\n--extra-index-url https://example.org/simple\n\n"
        "torch==2.3.1\n",
        encoding="utf-8",
    )
    environment = Environment.from_pip_requirements(requirements, python_version="3.11")

    built = v2.sdk_environment(environment)

    assert built.image == v2.DEFAULT_BASE_IMAGE
    assert built.conda_file["dependencies"] == [
        "python=3.11",
        "pip",
        {"pip": ["numpy>=1.26", "--extra-index-url https://example.org/simple", "torch==2.3.1"]},
    ]


def test_a_conda_file_keeps_its_own_python_pin(tmp_path: Path) -> None:
    conda = tmp_path / "environment.yml"
    conda.write_text(
        "name: train\nchannels: [conda-forge]\ndependencies:\n  - python=3.10\n  - numpy\n"
        "  - pip:\n    - requests\n",
        encoding="utf-8",
    )

    built = v2.sdk_environment(Environment.from_conda_specification(conda))

    assert built.image == v2.DEFAULT_BASE_IMAGE
    assert built.conda_file == {
        "name": "train",
        "channels": ["conda-forge"],
        "dependencies": ["python=3.10", "numpy", {"pip": ["requests"]}],
    }


def test_a_conda_file_without_a_python_pin_gets_the_chosen_version(tmp_path: Path) -> None:
    conda = tmp_path / "environment.yml"
    conda.write_text("dependencies:\n  - numpy\n", encoding="utf-8")

    built = v2.sdk_environment(Environment.from_conda_specification(conda, python_version="3.12"))

    assert built.conda_file["dependencies"] == ["python=3.12", "numpy"]


def test_a_docker_image_alone_is_used_as_it_is() -> None:
    built = v2.sdk_environment(Environment.from_docker_image("myregistry.io/team/train:1.2"))

    assert built.image == "myregistry.io/team/train:1.2"
    assert built.conda_file is None


def test_a_docker_image_with_a_pip_file_builds_on_that_image(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("scipy\n", encoding="utf-8")

    built = v2.sdk_environment(
        Environment.from_docker_image(
            "myregistry.io/team/base:2", pip_requirements=requirements, python_version="3.11"
        )
    )

    assert built.image == "myregistry.io/team/base:2"
    assert built.conda_file["dependencies"] == ["python=3.11", "pip", {"pip": ["scipy"]}]


@pytest.mark.parametrize(
    ("version", "reference"),
    [("7", "AzureML-sklearn-1.5:7"), (None, "AzureML-sklearn-1.5@latest")],
)
def test_a_registered_environment_is_named_by_version_or_latest_label(
    tmp_path: Path, version: str | None, reference: str
) -> None:
    environment = Environment.from_registered("AzureML-sklearn-1.5", version=version)

    job = v2.sdk_command_job(
        _request(tmp_path, environment=environment), code=CODE_ID, name="n"
    )._to_job()

    assert job.environment == reference


def test_no_environment_gets_an_explicit_python_on_the_default_image() -> None:
    built = v2.sdk_environment(None)

    assert built.image == v2.DEFAULT_BASE_IMAGE
    assert built.conda_file["dependencies"] == [
        f"python={sys.version_info.major}.{sys.version_info.minor}",
        "pip",
    ]


# -- names and statuses ---------------------------------------------------------------------------


@pytest.mark.parametrize("experiment", ["exp", "my.experiment v2", "___", "a" * 300])
def test_a_job_name_is_one_the_service_accepts_and_new_each_time(experiment: str) -> None:
    import re  # noqa: PLC0415

    first, second = v2.job_name(experiment), v2.job_name(experiment)

    assert first != second
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}", first), first


def test_every_v2_job_status_maps_to_a_known_run_status() -> None:
    for status in rest_models.JobStatus:
        word = v2.run_status(status)
        member = RunStatus.from_service(word)
        assert member.value == word
        assert (member is RunStatus.UNKNOWN) == (status.value == "Unknown")


@pytest.mark.parametrize("status", ["NotResponding", "Paused"])
def test_statuses_v2_counts_final_are_not_final_for_mlboot(status: str) -> None:
    assert v2.run_status(status) == status
    assert status not in TERMINAL_RUN_STATUSES
    assert not RunStatus.from_service(status).is_terminal


def test_an_unknown_status_passes_as_it_is_and_none_is_not_started() -> None:
    assert v2.run_status("Hibernating") == "Hibernating"
    assert v2.run_status(None) == "NotStarted"


# -- compute ------------------------------------------------------------------------------------

_CLUSTER_ANSWER: dict[str, Any] = {
    "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/"
    "workspaces/ws/computes/gpu",
    "name": "gpu",
    "location": "westeurope",
    "properties": {
        "computeType": "AmlCompute",
        "provisioningState": "Failed",
        "provisioningErrors": [
            {
                "error": {
                    "code": "QuotaExceeded",
                    "message": "Operation results in exceeding quota limits of Core.",
                    "details": [{"code": "Family", "message": "standardNCFamily: 0 of 24"}],
                }
            }
        ],
        "properties": {
            "vmSize": "STANDARD_NC6",
            "vmPriority": "LowPriority",
            "scaleSettings": {
                "minNodeCount": 1,
                "maxNodeCount": 4,
                "nodeIdleTimeBeforeScaleDown": "PT30M",
            },
            "errors": [{"error": {"code": "ResizeFailed", "message": "no nodes"}}],
        },
    },
}


def test_a_cluster_answer_reads_into_mlboots_words_with_every_error() -> None:
    info = v2.compute_info(rest_models.ComputeResource(_CLUSTER_ANSWER))

    assert info.name == "gpu"
    assert info.kind == "AmlCompute"
    assert info.provisioning_state == "Failed"
    assert (info.vm_size, info.vm_priority) == ("STANDARD_NC6", "lowpriority")
    assert (info.min_nodes, info.max_nodes, info.idle_seconds_before_scaledown) == (1, 4, 1800)
    assert [(e.code, e.message) for e in info.provisioning_errors] == [
        ("QuotaExceeded", "Operation results in exceeding quota limits of Core."),
        ("Family", "standardNCFamily: 0 of 24"),
        ("ResizeFailed", "no nodes"),
    ]


def test_a_compute_instance_keeps_the_services_kind_and_no_scale() -> None:
    answer = {
        "name": "my-ci",
        "properties": {
            "computeType": "ComputeInstance",
            "provisioningState": "Succeeded",
            "properties": {"vmSize": "STANDARD_DS3_V2"},
        },
    }

    info = v2.compute_info(rest_models.ComputeResource(answer))

    assert (info.name, info.kind, info.provisioning_state) == (
        "my-ci",
        "ComputeInstance",
        "Succeeded",
    )
    assert info.max_nodes is None
    assert info.vm_priority is None


@pytest.mark.parametrize(
    ("priority", "rest"), [("dedicated", "Dedicated"), ("lowpriority", "LowPriority")]
)
def test_the_cluster_put_body_sends_the_whole_spec(priority: str, rest: str) -> None:
    spec = ComputeSpec(
        vm_size="STANDARD_NC6",
        vm_priority=priority,
        min_nodes=0,
        max_nodes=8,
        idle_seconds_before_scaledown=1200,
    )

    body = v2.sdk_cluster("gpu", spec, "westeurope")._to_rest_object().as_dict()

    assert body["location"] == "westeurope"
    assert body["properties"]["computeType"] == "AmlCompute"
    cluster = body["properties"]["properties"]
    assert cluster["vmSize"] == "STANDARD_NC6"
    assert cluster["vmPriority"] == rest
    assert cluster["scaleSettings"] == {
        "minNodeCount": 0,
        "maxNodeCount": 8,
        "nodeIdleTimeBeforeScaleDown": "PT20M",
    }


def test_a_put_body_reads_back_as_the_spec_it_was_built_from() -> None:
    spec = ComputeSpec("STANDARD_D2_V3", "lowpriority", 1, 3, 600)
    body = v2.sdk_cluster("cpu", spec, "eastus")._to_rest_object().as_dict()
    answer = {**body, "name": "cpu"}
    answer["properties"] = {**body["properties"], "provisioningState": "Creating"}

    info = v2.compute_info(rest_models.ComputeResource(answer))

    assert (info.vm_size, info.vm_priority, info.min_nodes, info.max_nodes) == (
        "STANDARD_D2_V3",
        "lowpriority",
        1,
        3,
    )
    assert info.idle_seconds_before_scaledown == 600
    assert info.provisioning_state == "Creating"


# -- the snapshot ---------------------------------------------------------------------------------


class _CodeOperations:
    """Stands in for MLClient's code operations: lists what azure-ai-ml itself would upload."""

    def __init__(self) -> None:
        self.uploaded: list[str] = []
        self.ignore_file: object = None

    def create_or_update(self, code: Any) -> Any:
        from azure.ai.ml._utils._asset_utils import get_upload_files_from_folder  # noqa: PLC0415

        self.ignore_file = code._ignore_file
        root = Path(code.path)
        self.uploaded = sorted(
            Path(local).relative_to(root).as_posix()
            for local, _remote in get_upload_files_from_folder(root, ignore_file=code._ignore_file)
        )
        code._id = CODE_ID
        return code


class _Client:
    def __init__(self) -> None:
        self._code = _CodeOperations()


def test_the_upload_is_exactly_mlboots_plan(tmp_path: Path) -> None:
    source = tmp_path / "project"
    (source / "pkg").mkdir(parents=True)
    (source / "data" / "raw").mkdir(parents=True)
    (source / "train.py").write_text("print(1)\n", encoding="utf-8")
    (source / "pkg" / "model.py").write_text("x = 1\n", encoding="utf-8")
    for index in range(50):
        (source / "data" / "raw" / f"{index}.bin").write_bytes(b"0")
    (source / "debug.log").write_text("noise\n", encoding="utf-8")
    (source / ".amlignore").write_text("data/\n*.log\n", encoding="utf-8")
    request = RunRequest(experiment="e", source_directory=source, script="train.py", compute="c")
    client = _Client()

    code = v2.upload_snapshot(client, request)

    assert code == CODE_ID
    assert client._code.uploaded == sorted(request.snapshot_plan().files)
    assert client._code.uploaded == [".amlignore", "pkg/model.py", "train.py"]


# -- errors ---------------------------------------------------------------------------------------


def _response(status: int, *, headers: dict[str, str] | None = None) -> RequestsTransportResponse:
    raw = requests.Response()
    raw.status_code = status
    raw.reason = "reason"
    raw._content = json.dumps({"error": {"code": "Code", "message": "the message"}}).encode()
    raw.headers["Content-Type"] = "application/json"
    raw.headers.update(headers or {})
    return RequestsTransportResponse(HttpRequest("GET", "https://management.example/x"), raw)


@pytest.mark.parametrize(
    ("status", "kind", "transient"),
    [
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (409, ConflictError, False),
        (412, ConflictError, False),
        (400, ServiceError, False),
        (408, ServiceError, True),
        (500, ServiceError, True),
        (503, ServiceError, True),
    ],
)
def test_an_http_status_decides_the_mlboot_error(
    status: int, kind: type[Exception], transient: bool
) -> None:
    error = v2.translate_sdk_error(HttpResponseError(response=_response(status)), "doing it")

    assert type(error) is kind
    assert "doing it" in str(error)
    assert "the message" in str(error)
    if isinstance(error, ServiceError):
        assert error.transient is transient


def test_throttling_carries_the_services_retry_after() -> None:
    error = v2.translate_sdk_error(
        HttpResponseError(response=_response(429, headers={"Retry-After": "7"})), "reading"
    )

    assert isinstance(error, ThrottledError)
    assert error.transient
    assert error.retry_after == 7.0


def test_a_service_error_wrapped_by_azure_ai_ml_is_found_along_the_causes() -> None:
    def not_found() -> None:
        raise ResourceNotFoundError(response=_response(404))

    def wrapped() -> None:
        try:
            not_found()
        except ResourceNotFoundError as exc:
            raise ValidationException(message="wrapped", no_personal_data_message="w") from exc

    with pytest.raises(ValidationException) as caught:
        wrapped()

    assert isinstance(v2.translate_sdk_error(caught.value, "reading"), NotFoundError)


def test_a_refused_login_is_an_authentication_error() -> None:
    error = v2.translate_sdk_error(ClientAuthenticationError("no token"), "signing in")

    assert isinstance(error, AuthenticationError)


def test_no_answer_at_all_is_a_transient_network_error() -> None:
    error = v2.translate_sdk_error(ServiceRequestError("connection refused"), "looking up")

    assert isinstance(error, NetworkError)
    assert error.transient


def test_an_error_of_mlboots_own_passes_unchanged() -> None:
    mine = ConflictError("taken")

    assert v2.translate_sdk_error(mine, "x") is mine


# -- credentials ----------------------------------------------------------------------------------


def test_mlboots_auth_choices_become_credentials_that_never_prompt() -> None:
    from azure import identity  # noqa: PLC0415

    principal = v2.sdk_credential(
        mlboot.ServicePrincipalAuth("tenant", "client", "s3cret"),
        cloud="AzureCloud",
        tenant_id=None,
    )
    cli = v2.sdk_credential(mlboot.AzureCliAuth(), cloud="AzureCloud", tenant_id=None)
    managed = v2.sdk_credential(
        mlboot.ManagedIdentityAuth("1234"), cloud="AzureUSGovernment", tenant_id=None
    )

    assert isinstance(principal, identity.ClientSecretCredential)
    assert principal._tenant_id == "tenant"
    assert isinstance(cli, identity.AzureCliCredential)
    assert cli._process_timeout == 10
    assert isinstance(managed, identity.ManagedIdentityCredential)


def test_the_default_chain_is_mlboots_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure import identity  # noqa: PLC0415

    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s")

    assert isinstance(
        v2.sdk_credential(None, cloud="AzureCloud", tenant_id=None), identity.ClientSecretCredential
    )


def test_interactive_login_is_refused_where_nobody_can_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")

    with pytest.raises(AuthenticationError, match="nobody can answer"):
        v2.sdk_credential(mlboot.InteractiveAuth(), cloud="AzureCloud", tenant_id=None)


def test_a_token_credential_of_the_callers_is_used_as_it_is() -> None:
    class Token:
        def get_token(self, *scopes: str, **kwargs: object) -> object:
            raise AssertionError(f"not called while building ({scopes}, {kwargs})")

    token = Token()

    assert v2.sdk_credential(token, cloud="AzureCloud", tenant_id=None) is token


def test_anything_else_is_refused_before_a_request() -> None:
    with pytest.raises(InvalidInputError, match="TokenCredential"):
        v2.sdk_credential(object(), cloud="AzureCloud", tenant_id=None)


# -- selection, the extra, quiet ------------------------------------------------------------------

_CONFIG = {
    "subscription_id": "00000000-0000-4000-8000-000000000001",
    "resource_group": "rg-ml",
    "workspace_name": "ws-main",
}


@pytest.mark.parametrize("where", ["argument", "config", "environment"])
def test_azureml_v2_is_chosen_like_the_other_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from mlboot._config import load_config  # noqa: PLC0415
    from mlboot._workspace import _configured_backend  # noqa: PLC0415

    config = dict(_CONFIG)
    if where == "config":
        config["mlboot_backend"] = "azureml-v2"
    file = tmp_path / "config.json"
    file.write_text(json.dumps(config), encoding="utf-8")
    environ = {"MLBOOT_BACKEND": "azureml-v2"} if where == "environment" else {}

    loaded = load_config(file, environ=environ)
    backend = _configured_backend(loaded, "azureml-v2" if where == "argument" else None)

    assert type(backend) is v2.AzureMLV2Backend


_REFUSE_AZURE_AI_ML = textwrap.dedent(
    """\
    import sys

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name == "azure.ai.ml" or name.startswith("azure.ai.ml."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    import socket
    def no_socket(*args, **kwargs):
        raise AssertionError("a socket was opened")
    socket.socket.connect = no_socket
    import mlboot
    from mlboot.exceptions import MissingExtraError
    try:
        mlboot.workspace_from_config(sys.argv[1], backend=sys.argv[2] or None)
    except MissingExtraError as exc:
        print(exc.extra, isinstance(exc, ImportError), "'mlboot[v2]'" in str(exc))
    """
)


@pytest.mark.parametrize("named", ["azureml-v2", ""])
def test_without_the_extra_the_choice_fails_naming_it_before_any_request(
    tmp_path: Path, named: str
) -> None:
    config = {**_CONFIG, "mlboot_backend": "azureml-v2"}
    file = tmp_path / "config.json"
    file.write_text(json.dumps(config), encoding="utf-8")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_PROCESS_", "MLBOOT_"))
    }

    result = subprocess.run(  # noqa: S603  (our own interpreter, fixed code)
        [sys.executable, "-c", _REFUSE_AZURE_AI_ML, str(file), named],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    assert result.stdout.strip() == "v2 True True", result.stderr


def test_the_sdk_prints_nothing_while_a_job_is_built(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # azure-ai-ml's own stderr handler would print its experimental-class notices here.
    request = _request(tmp_path, environment=Environment.from_docker_image("team/img:1"))
    capfd.readouterr()

    _rest_body(request)

    assert capfd.readouterr() == ("", "")


# -- the upload helpers' counter wait ------------------------------------------------------------


@pytest.mark.parametrize("helper", v2.UPLOAD_HELPERS)
def test_an_upload_helpers_endless_counter_wait_ends_with_the_calls_timeout(helper: str) -> None:
    import importlib  # noqa: PLC0415
    import time  # noqa: PLC0415

    from mlboot._deadline import bounded  # noqa: PLC0415
    from mlboot.exceptions import WaitTimeoutError  # noqa: PLC0415
    from mlboot.testing import FakeClock  # noqa: PLC0415

    v2.install_deadline_hooks()  # what every call of the backend's does first
    module = importlib.import_module(helper)
    assert module.time is not time, "the helper's sleep is not bounded"  # else the loop never ends
    clock = FakeClock()
    polls = 0

    def wait_for_a_counter_that_lost_an_update() -> None:
        # The helper's own loop, with a counter that never reaches the total.
        nonlocal polls
        with bounded(clock, 10, what="submitting", limit="timeout=10 s", fix="wait less."):
            while True:
                module.time.sleep(0.5)
                polls += 1

    with pytest.raises(WaitTimeoutError):
        wait_for_a_counter_that_lost_an_update()

    assert polls == 20  # 10 s of 0.5 s pauses, on the call's clock: none slept for real
    assert clock.monotonic() == 10
    assert module.time.monotonic is time.monotonic  # every other name is the real module's
