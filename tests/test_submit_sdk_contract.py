"""The runs part of the azureml-core adapter against the real installed SDK, without network.

``_run_script_run_config`` builds the real ``ScriptRunConfig`` (and ``Environment``,
``PyTorchConfiguration``, ``MpiConfiguration``) from a ``RunRequest``; each field is read back
off the SDK objects.  The remaining adapter methods are driven with a stand-in SDK run or a
replaced ``Experiment``/``Run.get``, the only places that would talk to the service.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import mlboot
from mlboot import Environment, MpiDistribution, PyTorchDistribution, RunStatus
from mlboot._backends.azureml._azureml import (
    AzureMLBackend,
    _run_error_message,
    _run_metrics,
    _run_primary_log,
    _run_quiet_sdk,
    _run_script_run_config,
)
from mlboot.backend import RunRequest, WorkspaceRef
from mlboot.exceptions import (
    LocalStorageError,
    MlbootWarning,
    NotFoundError,
    ServiceError,
    SnapshotLinkError,
)
from mlboot.testing import FakeClock

pytestmark = pytest.mark.sdk

LOCAL = f"{sys.version_info.major}.{sys.version_info.minor}"
REF = WorkspaceRef("00000000-0000-0000-0000-000000000000", "rg", "ws")
CONDA = """\
name: train
channels: [conda-forge]
dependencies:
  - python=3.10
  - numpy=1.26
  - pip:
    - torch==2.3.1
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "train.py").write_text("print('hi')\n", encoding="utf-8")
    return folder


def request_for(source: Path, **fields: Any) -> RunRequest:
    values: dict[str, Any] = {
        "experiment": "exp",
        "source_directory": source,
        "script": "train.py",
        "compute": "gpu-cluster",
    }
    values.update(fields)
    return RunRequest(**values)


def python_of(config: Any) -> str:
    return str(config.run_config.environment.python.conda_dependencies.get_python_version())


# -- ScriptRunConfig -------------------------------------------------------------------------------


def test_the_basic_fields(source: Path) -> None:
    config = _run_script_run_config(
        request_for(source, script="sub/train.py", arguments=("--epochs", "3", "--lr", "0.1"))
    )

    assert config.source_directory == str(source)
    assert config.script == "sub/train.py"
    assert config.arguments == ["--epochs", "3", "--lr", "0.1"]
    assert config.run_config.target == "gpu-cluster"
    assert config.run_config.node_count == 1
    assert config.run_config.max_run_duration_seconds == 2592000  # the SDK's default, 30 days
    assert config.run_config.mpi.node_count == 1  # untouched default
    assert config.run_config.framework == "Python"


def test_max_run_duration(source: Path) -> None:
    config = _run_script_run_config(request_for(source, max_run_duration_seconds=5400))

    assert config.run_config.max_run_duration_seconds == 5400


def test_without_an_environment_the_sdk_default_is_what_the_docs_say(source: Path) -> None:
    config = _run_script_run_config(request_for(source))

    environment = config.run_config.environment
    assert environment.name == "default-environment"
    assert environment.docker.base_image.startswith(
        "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
    )
    assert environment.python.user_managed_dependencies is False
    assert python_of(config) == "3.8.13"
    assert list(environment.python.conda_dependencies.pip_packages) == ["azureml-defaults"]


def test_a_pip_environment(source: Path, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy>=1.26\ntorch==2.3.1\n", encoding="utf-8")
    environment = Environment.from_pip_requirements(
        requirements, name="train-env", variables={"TOKENIZERS_PARALLELISM": "false"}
    )

    config = _run_script_run_config(request_for(source, environment=environment))

    sdk = config.run_config.environment
    assert sdk.name == "train-env"
    assert python_of(config) == LOCAL  # never the SDK's silent python=3.8.13
    assert list(sdk.python.conda_dependencies.pip_packages) == ["numpy>=1.26", "torch==2.3.1"]
    assert f"python={LOCAL}" in list(sdk.python.conda_dependencies.conda_packages)
    assert sdk.python.user_managed_dependencies is False
    assert config.run_config.environment_variables == {"TOKENIZERS_PARALLELISM": "false"}


def test_a_pip_environment_with_an_explicit_python(source: Path, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy\n", encoding="utf-8")
    environment = Environment.from_pip_requirements(requirements, python_version="3.12.4")

    config = _run_script_run_config(request_for(source, environment=environment))

    assert python_of(config) == "3.12.4"


def test_a_conda_environment(source: Path, tmp_path: Path) -> None:
    conda = tmp_path / "environment.yml"
    conda.write_text(CONDA, encoding="utf-8")
    environment = Environment.from_conda_specification(conda)

    config = _run_script_run_config(request_for(source, environment=environment))

    dependencies = config.run_config.environment.python.conda_dependencies
    assert python_of(config) == "3.10"
    assert list(dependencies.conda_packages) == ["python=3.10", "numpy=1.26"]
    assert list(dependencies.pip_packages) == ["torch==2.3.1"]
    assert list(dependencies.conda_channels) == ["conda-forge"]


def test_a_conda_file_without_python_gets_the_local_version_and_no_sdk_warning(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conda = tmp_path / "environment.yml"
    conda.write_text("dependencies:\n  - numpy\n", encoding="utf-8")
    environment = Environment.from_conda_specification(conda)

    with caplog.at_level(logging.WARNING):
        config = _run_script_run_config(request_for(source, environment=environment))

    assert python_of(config) == LOCAL
    assert "No Python version provided" not in caplog.text


def test_a_docker_image_alone(source: Path) -> None:
    environment = Environment.from_docker_image("myregistry.azurecr.io/train:1.4")

    config = _run_script_run_config(request_for(source, environment=environment))

    sdk = config.run_config.environment
    assert sdk.docker.base_image == "myregistry.azurecr.io/train:1.4"
    assert sdk.python.user_managed_dependencies is True  # the image's own Python runs


def test_a_docker_image_with_a_conda_file(source: Path, tmp_path: Path) -> None:
    conda = tmp_path / "environment.yml"
    conda.write_text(CONDA, encoding="utf-8")
    environment = Environment.from_docker_image(
        "nvcr.io/nvidia/pytorch:24.05-py3", conda_specification=conda
    )

    config = _run_script_run_config(request_for(source, environment=environment))

    sdk = config.run_config.environment
    assert sdk.docker.base_image == "nvcr.io/nvidia/pytorch:24.05-py3"
    assert sdk.python.user_managed_dependencies is False
    assert python_of(config) == "3.10"
    assert list(sdk.python.conda_dependencies.pip_packages) == ["torch==2.3.1"]


def test_a_docker_image_with_a_pip_file(source: Path, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy\n", encoding="utf-8")
    environment = Environment.from_docker_image(
        "ubuntu:22.04", pip_requirements=requirements, python_version="3.11"
    )

    config = _run_script_run_config(request_for(source, environment=environment))

    sdk = config.run_config.environment
    assert sdk.docker.base_image == "ubuntu:22.04"
    assert python_of(config) == "3.11"
    assert list(sdk.python.conda_dependencies.pip_packages) == ["numpy"]


def test_a_registered_environment_is_looked_up_by_name_and_version(
    source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azureml.core import Environment as SdkEnvironment  # noqa: PLC0415

    looked_up: list[tuple[object, str, object]] = []
    with _run_quiet_sdk():  # the SDK's own YAML reader warns while building one
        registered = SdkEnvironment.from_docker_image("registered-env", "ubuntu:22.04")

    def fake_get(workspace: object, name: str, version: object = None, label: object = None) -> Any:
        looked_up.append((workspace, name, version))
        return registered

    monkeypatch.setattr(SdkEnvironment, "get", staticmethod(fake_get))
    workspace = object()
    environment = Environment.from_registered("AzureML-sklearn-1.5", "7", variables={"A": "1"})

    config = _run_script_run_config(request_for(source, environment=environment), workspace)

    assert looked_up == [(workspace, "AzureML-sklearn-1.5", "7")]
    assert config.run_config.environment is registered
    assert config.run_config.environment_variables == {"A": "1"}


def test_a_registered_environment_that_is_missing_raises_not_found(
    source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azureml.core import Environment as SdkEnvironment  # noqa: PLC0415

    def fake_get(workspace: object, name: str, version: object = None, label: object = None) -> Any:
        # What azureml-core raises for a non-200 answer: a bare Exception with the status.
        raise Exception("Error retrieving the environment definition. Code: 404\n: {}")  # noqa: TRY002

    monkeypatch.setattr(SdkEnvironment, "get", staticmethod(fake_get))
    environment = Environment.from_registered("nope", "1")

    with pytest.raises(NotFoundError, match="environment 'nope' version 1 was not found"):
        _run_script_run_config(request_for(source, environment=environment), object())


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [(503, ServiceError, True), (429, ServiceError, True), (400, ServiceError, False)],
)
def test_other_answers_to_an_environment_lookup_keep_their_status(
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    error: type[ServiceError],
    transient: bool,
) -> None:
    from azureml.core import Environment as SdkEnvironment  # noqa: PLC0415

    attempts: list[str] = []

    def fake_get(workspace: object, name: str, version: object = None, label: object = None) -> Any:
        attempts.append(name)
        message = f"Error retrieving the environment definition. Code: {status}\n: busy"
        raise Exception(message)  # noqa: TRY002  (what azureml-core raises)

    monkeypatch.setattr(SdkEnvironment, "get", staticmethod(fake_get))
    environment = Environment.from_registered("env", "1")

    with pytest.raises(error) as caught:
        _run_script_run_config(request_for(source, environment=environment), object())

    assert caught.value.status == status
    assert caught.value.transient is transient
    # azureml-core sends this request once, and so does the backend: mlboot's one policy
    # retries only transient answers, above the seam (submit_script; see tests/test_submit.py).
    assert len(attempts) == 1


def test_a_checked_registered_environment_is_sent_without_a_second_lookup(
    source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azureml.core import Environment as SdkEnvironment  # noqa: PLC0415

    with _run_quiet_sdk():
        registered = SdkEnvironment.from_docker_image("registered-env", "ubuntu:22.04")
    answers: list[object] = [
        Exception("Error retrieving the environment definition. Code: 503\n: busy"),
        registered,
    ]
    looked_up: list[tuple[object, str, object]] = []

    def fake_get(workspace: object, name: str, version: object = None, label: object = None) -> Any:
        looked_up.append((workspace, name, version))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(SdkEnvironment, "get", staticmethod(fake_get))
    backend = AzureMLBackend(clock=FakeClock())
    sdk_workspace = object()
    backend._workspaces[REF] = sdk_workspace
    environment = Environment.from_registered("env", "1")

    with pytest.raises(ServiceError) as caught:  # one request: the retry is mlboot's, above
        backend.check_registered_environment(REF, "env", "1")
    assert caught.value.transient
    backend.check_registered_environment(REF, "env", "1")
    config = _run_script_run_config(
        request_for(source, environment=environment),
        sdk_workspace,
        registered=backend._registered(REF, environment),
    )

    assert config.run_config.environment is registered
    assert answers == []
    assert looked_up == [(sdk_workspace, "env", "1")] * 2
    assert backend._registered(REF, environment) is None


def test_building_a_config_leaves_no_filter_behind(source: Path) -> None:
    sdk_logger = logging.getLogger("azureml.core.environment")
    filters_before = list(sdk_logger.filters)

    _run_script_run_config(request_for(source))

    assert sdk_logger.filters == filters_before
    from azureml.core import Environment as SdkEnvironment  # noqa: PLC0415

    with pytest.warns(PendingDeprecationWarning):  # outside, the SDK's warning is untouched
        SdkEnvironment("plain")


def test_pytorch_distribution(source: Path) -> None:
    config = _run_script_run_config(
        request_for(
            source,
            distribution=PyTorchDistribution(process_count_per_node=4),
            node_count=3,
        )
    )

    run_config = config.run_config
    assert run_config.node_count == 3
    assert run_config.pytorch.node_count == 3
    assert run_config.pytorch.process_count == 12  # the SDK counts processes in total
    assert run_config.pytorch.communication_backend == "nccl"
    assert run_config.framework == "PyTorch"


def test_pytorch_with_gloo(source: Path) -> None:
    config = _run_script_run_config(
        request_for(source, distribution=PyTorchDistribution(communication_backend="gloo"))
    )

    assert config.run_config.pytorch.communication_backend == "gloo"
    assert config.run_config.pytorch.process_count == 1


def test_mpi_distribution(source: Path) -> None:
    config = _run_script_run_config(
        request_for(source, distribution=MpiDistribution(process_count_per_node=2), node_count=5)
    )

    run_config = config.run_config
    assert run_config.node_count == 5
    assert run_config.mpi.node_count == 5
    assert run_config.mpi.process_count_per_node == 2
    assert run_config.framework == "Python"
    assert run_config.communicator == "IntelMpi"


# -- the rest of the SDK's vocabulary --------------------------------------------------------------


def test_run_status_covers_every_sdk_status() -> None:
    from azureml._restclient.constants import RunStatus as SdkRunStatus  # noqa: PLC0415

    sdk = set(SdkRunStatus.list())
    assert {status.value for status in RunStatus} == sdk | {"Unknown"}
    assert {s.value for s in RunStatus if s.is_running} == set(SdkRunStatus.get_running_statuses())
    assert {s.value for s in RunStatus if s.is_post_processing} == set(
        SdkRunStatus.get_post_processing_statuses()
    )


@pytest.mark.parametrize(
    ("names", "primary"),
    [
        (["user_logs/std_log.txt", "azureml-logs/70_driver_log.txt"], "user_logs/std_log.txt"),
        (
            ["user_logs/std_log_process_01.txt", "user_logs/std_log_process_00.txt"],
            "user_logs/std_log_process_00.txt",
        ),
        (
            [
                "azureml-logs/55_azureml-execution-tvmps.txt",
                "azureml-logs/70_driver_log.txt",
                "logs/azureml/job_prep.log",
            ],
            "azureml-logs/70_driver_log.txt",
        ),
        (
            ["azureml-logs/70_driver_log_1.txt", "azureml-logs/70_driver_log_0.txt"],
            "azureml-logs/70_driver_log_0.txt",
        ),
        (
            ["azureml-logs/70_driver_log_worker_1.txt", "azureml-logs/70_driver_log_worker_0.txt"],
            "azureml-logs/70_driver_log_worker_0.txt",
        ),
        (["system_logs/lifecycler/execution-wrapper.txt", "logs/azureml/x.log"], None),
        ([], None),
    ],
)
def test_the_log_that_holds_the_scripts_output(names: list[str], primary: str | None) -> None:
    assert _run_primary_log(names) == primary


def test_metrics_are_normalised_to_lists() -> None:
    raw = {
        "loss": [0.9, 0.4],
        "accuracy": 0.93,
        "epochs": 10,
        "note": "ok",
        "confusion": {"tp": [5, 6], "fp": [1, 0]},
        "odd": [None, {"x": 1}],
    }

    assert _run_metrics(raw) == {
        "loss": [0.9, 0.4],
        "accuracy": [0.93],
        "epochs": [10],
        "note": ["ok"],
        "confusion/tp": [5, 6],
        "confusion/fp": [1, 0],
        "odd": ["None", "{'x': 1}"],
    }
    assert _run_metrics(None) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, None),
        ({}, None),
        (
            {
                "error": {
                    "code": "UserError",
                    "message": "Execution failed. User process exited with status code 1.",
                    "details": [{"code": "x", "message": "ModuleNotFoundError: No module 'foo'"}],
                },
                "time": "0001-01-01T00:00:00.000Z",
            },
            (
                "UserError: Execution failed. User process exited with status code 1.; "
                "ModuleNotFoundError: No module 'foo'"
            ),
        ),
        ({"error": {"message": "plain"}}, "plain"),
        ({"error": {"code": "OnlyCode"}}, "OnlyCode"),
        ("a bare string", "a bare string"),
    ],
)
def test_the_services_error_message(raw: object, message: str | None) -> None:
    assert _run_error_message(raw) == message


# -- the adapter's methods, with a stand-in SDK run ------------------------------------------------


class StandInExperiment:
    def __init__(self, name: str) -> None:
        self.name = name


class StandInRun:
    """The slice of ``azureml.core.Run`` the adapter uses, answering from memory."""

    def __init__(self, run_id: str = "exp_1_abc", files: dict[str, bytes] | None = None) -> None:
        self.id = run_id
        self.experiment = StandInExperiment("exp")
        self.status = "NotStarted"
        self.canceled = False
        self.files = files or {}
        self.downloaded: list[str] = []
        self.disk_error: OSError | None = None
        self.details: dict[str, Any] = {
            "runId": run_id,
            "status": "Failed",
            "startTimeUtc": "2024-05-01T10:00:00Z",
            "endTimeUtc": "2024-05-01T10:05:00Z",
            "error": {"error": {"code": "UserError", "message": "boom"}},
            "logFiles": {
                "azureml-logs/55_azureml-execution.txt": "https://blob/55",
                "user_logs/std_log.txt": "https://blob/std",
            },
        }

    def get_portal_url(self) -> str:
        return f"https://ml.azure.com/runs/{self.id}"

    def get_status(self) -> str:
        return "Running"

    def get_details(self) -> dict[str, Any]:
        return self.details

    def get_metrics(self) -> dict[str, Any]:
        return {"loss": [0.5, 0.25], "auc": 0.9}

    def get_file_names(self) -> list[str]:
        return sorted(self.files)

    def download_files(self, prefix: str, output_directory: str) -> None:
        for name, content in self.files.items():
            if name.startswith(prefix + "/"):
                target = Path(output_directory) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)

    def download_file(self, name: str, output_file_path: str) -> None:
        # azureml-core's: one artifact by name, written to the path given (a missing one raises).
        if self.disk_error is not None:
            raise self.disk_error
        Path(output_file_path).write_bytes(self.files[name])
        self.downloaded.append(name)

    def cancel(self) -> None:
        self.canceled = True


def backend_with(run: StandInRun) -> AzureMLBackend:
    backend = AzureMLBackend()
    backend._runs[(REF, run.id)] = run
    return backend


def test_status_details_metrics_and_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    run = StandInRun()
    backend = backend_with(run)

    assert backend.get_run_status(REF, run.id) == "Running"
    details = backend.get_run_details(REF, run.id)
    assert details.run_id == run.id
    assert details.experiment == "exp"
    assert details.status == "Failed"
    assert details.error == "UserError: boom"
    assert details.portal_url == f"https://ml.azure.com/runs/{run.id}"
    assert (details.start_time, details.end_time) == (
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:05:00Z",
    )
    assert backend.get_run_metrics(REF, run.id) == {"loss": [0.5, 0.25], "auc": [0.9]}
    backend.cancel_run(REF, run.id)
    assert run.canceled
    assert backend.azureml_run(REF, run.id) is run


def test_logs_are_read_from_the_primary_log_file(monkeypatch: pytest.MonkeyPatch) -> None:
    run = StandInRun()
    downloaded: list[str] = []

    def download(url: str) -> str:
        downloaded.append(url)
        return "epoch 1\n"

    monkeypatch.setattr("mlboot._backends.azureml._azureml._run_download_text", download)

    assert backend_with(run).get_run_logs(REF, run.id) == "epoch 1\n"
    assert downloaded == ["https://blob/std"]


def test_no_log_file_yet_is_an_empty_log() -> None:
    run = StandInRun()
    run.details["logFiles"] = {}

    assert backend_with(run).get_run_logs(REF, run.id) == ""


def test_outputs_are_downloaded_and_listed(tmp_path: Path) -> None:
    run = StandInRun(
        files={"outputs/model.pt": b"w", "outputs/eval/r.json": b"{}", "logs/x.txt": b"log"}
    )

    paths = backend_with(run).download_run_outputs(REF, run.id, tmp_path)

    assert sorted(paths) == [tmp_path / "outputs/eval/r.json", tmp_path / "outputs/model.pt"]
    assert not (tmp_path / "logs").exists()


def test_an_output_name_leaving_the_destination_is_refused(tmp_path: Path) -> None:
    run = StandInRun(files={"outputs/../../escape.txt": b"x"})

    with pytest.raises(ServiceError, match="outside"):
        backend_with(run).download_run_outputs(REF, run.id, tmp_path / "dest")

    assert not (tmp_path / "escape.txt").exists()


def test_run_files_are_listed_sorted_and_downloaded_one_by_one_by_name(tmp_path: Path) -> None:
    run = StandInRun(
        files={"user_logs/std_log.txt": b"log", "outputs/model.pt": b"w", "logs/a/b.txt": b"b"}
    )
    backend = backend_with(run)

    assert backend.list_run_files(REF, run.id) == [
        "logs/a/b.txt",
        "outputs/model.pt",
        "user_logs/std_log.txt",
    ]
    paths = backend.download_run_files(REF, run.id, tmp_path, ["logs/a/b.txt", "outputs/model.pt"])

    assert paths == [tmp_path / "logs/a/b.txt", tmp_path / "outputs/model.pt"]
    assert run.downloaded == ["logs/a/b.txt", "outputs/model.pt"]
    assert (tmp_path / "logs/a/b.txt").read_bytes() == b"b"
    assert not (tmp_path / "user_logs").exists()


def test_a_run_file_name_leaving_the_destination_is_refused_before_any_download(
    tmp_path: Path,
) -> None:
    run = StandInRun(files={"outputs/a.txt": b"a", "../escape.txt": b"x"})

    with pytest.raises(ServiceError, match="outside"):
        backend_with(run).download_run_files(
            REF, run.id, tmp_path / "dest", ["outputs/a.txt", "../escape.txt"]
        )

    assert run.downloaded == []
    assert not (tmp_path / "escape.txt").exists()


def test_a_full_disk_while_the_sdk_writes_a_run_file_is_a_local_storage_error(
    tmp_path: Path,
) -> None:
    run = StandInRun(files={"outputs/model.pt": b"w"})
    run.disk_error = OSError(errno.EFBIG, "File too large")

    with pytest.raises(LocalStorageError, match="largest file size allowed") as caught:
        backend_with(run).download_run_files(REF, run.id, tmp_path, ["outputs/model.pt"])

    assert caught.value.errno == errno.EFBIG
    assert caught.value.filename == str(tmp_path / "outputs/model.pt")


def test_submit_run_submits_the_built_config_with_tags(
    source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azureml.core  # noqa: PLC0415

    submitted: list[tuple[str, Any, Any]] = []
    run = StandInRun("exp_2_def")

    class ReplacedExperiment:
        def __init__(self, workspace: object, name: str) -> None:
            self.workspace = workspace
            self.name = name

        def submit(self, config: Any, tags: Any = None) -> StandInRun:
            submitted.append((self.name, config, tags))
            return run

    monkeypatch.setattr(azureml.core, "Experiment", ReplacedExperiment)
    backend = AzureMLBackend()
    backend._workspaces[REF] = object()

    with pytest.warns(MlbootWarning, match=r"default environment .* Python 3\.8") as caught:
        details = backend.submit_run(
            REF, request_for(source, tags={"team": "nlp"}, arguments=("--x", "1"))
        )

    assert len(caught.list) == 1  # no environment: one warning, before anything is sent
    ((experiment, config, tags),) = submitted
    assert experiment == "exp"
    assert config.script == "train.py"
    assert config.arguments == ["--x", "1"]
    assert tags == {"team": "nlp"}
    assert details.run_id == "exp_2_def"
    assert details.status == "NotStarted"
    assert details.error is None
    assert backend.azureml_run(REF, "exp_2_def") is run  # kept: no lookup needed


def test_an_unknown_run_id_raises_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    import azureml.core  # noqa: PLC0415

    class ServiceException(Exception):  # noqa: N818  (the SDK's own name)
        status_code = 404

    def fake_get(workspace: object, run_id: str) -> Any:
        raise ServiceException("RunNotFound: run was not found")

    monkeypatch.setattr(azureml.core.Run, "get", staticmethod(fake_get))
    backend = AzureMLBackend()
    backend._workspaces[REF] = object()

    with pytest.raises(NotFoundError):
        backend.get_run_status(REF, "no-such-run")
    assert (REF, "no-such-run") not in backend._runs


def test_a_run_looked_up_once_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import azureml.core  # noqa: PLC0415

    lookups: list[str] = []
    run = StandInRun("exp_3")

    def fake_get(workspace: object, run_id: str) -> Any:
        lookups.append(run_id)
        return run

    monkeypatch.setattr(azureml.core.Run, "get", staticmethod(fake_get))
    backend = AzureMLBackend()
    backend._workspaces[REF] = object()

    backend.get_run_status(REF, "exp_3")
    backend.get_run_status(REF, "exp_3")

    assert lookups == ["exp_3"]


def test_mlboot_get_run_through_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    import azureml.core  # noqa: PLC0415

    run = StandInRun("exp_4")
    run.details["status"] = "Running"
    monkeypatch.setattr(azureml.core.Run, "get", staticmethod(lambda *_: run))
    backend = AzureMLBackend()
    backend._workspaces[REF] = object()
    workspace = mlboot.Workspace(
        name=REF.name,
        subscription_id=REF.subscription_id,
        resource_group=REF.resource_group,
        location="westeurope",
        backend=backend,
    )

    handle = mlboot.get_run(workspace, "exp_4")

    assert (handle.id, handle.experiment) == ("exp_4", "exp")
    assert handle.portal_url == "https://ml.azure.com/runs/exp_4"
    assert handle.to_azureml() is run


@pytest.mark.filterwarnings("ignore:No environment given:mlboot.exceptions.MlbootWarning")
def test_submit_run_uploads_a_staging_folder_holding_exactly_the_plan(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azureml.core  # noqa: PLC0415

    (source / "lib").mkdir()
    (source / "lib" / "model.py").write_text("X = 1\n", encoding="utf-8")
    (source / "alias.py").symlink_to("lib/model.py")
    (source / "empty").mkdir()
    (source / ".mlboot" / "runs" / "r" / "waiters").mkdir(parents=True)
    os.mkfifo(source / ".mlboot" / "runs" / "r" / "waiters" / "1-ab")
    (source / ".amlignore").write_text("!.mlboot\n", encoding="utf-8")
    seen: dict[str, Any] = {}

    class ReplacedExperiment:
        def __init__(self, workspace: object, name: str) -> None:
            del workspace, name

        def submit(self, config: Any, tags: Any = None) -> StandInRun:
            del tags
            staged = Path(config.source_directory)
            seen["staged"] = staged
            seen["tree"] = sorted(
                (path.relative_to(staged).as_posix(), path.is_dir()) for path in staged.rglob("*")
            )
            seen["content"] = (staged / "alias.py").read_text(encoding="utf-8")
            return StandInRun("exp_3_abc")

    monkeypatch.setattr(azureml.core, "Experiment", ReplacedExperiment)
    backend = AzureMLBackend()
    backend._workspaces[REF] = object()

    backend.submit_run(REF, request_for(source))

    assert seen["tree"] == [
        (".amlignore", False),
        ("alias.py", False),
        ("empty", True),  # azureml-core's tree of the snapshot has empty folders
        ("lib", True),
        ("lib/model.py", False),
        ("train.py", False),
    ]
    assert seen["content"] == "X = 1\n"
    assert seen["staged"].name == source.name
    assert not seen["staged"].exists()  # removed once the service has the snapshot
    assert source.joinpath(".mlboot", "runs", "r", "waiters", "1-ab").is_fifo()  # untouched


def test_submit_run_refuses_a_link_out_before_the_sdk_is_called(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azureml.core  # noqa: PLC0415

    (tmp_path / "secret").write_text("x", encoding="utf-8")
    (source / "secret").symlink_to(tmp_path / "secret")
    calls: list[str] = []
    monkeypatch.setattr(azureml.core, "Experiment", lambda *_: calls.append("Experiment"))
    backend = AzureMLBackend()
    backend._workspaces[REF] = object()

    with pytest.raises(SnapshotLinkError) as caught:
        backend.submit_run(REF, request_for(source))

    assert (caught.value.link, caught.value.target) == ("secret", str(tmp_path / "secret"))
    assert calls == []


def test_a_link_in_the_download_destination_is_refused_before_the_sdk_writes(
    tmp_path: Path,
) -> None:
    run = StandInRun(files={"outputs/model.pt": b"w"})
    victim = tmp_path / "victim"
    victim.mkdir()
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / "outputs").symlink_to(victim)

    with pytest.raises(LocalStorageError, match="symbolic link") as caught:
        backend_with(run).download_run_outputs(REF, run.id, destination)

    assert caught.value.filename == str(destination / "outputs")
    assert list(victim.iterdir()) == []
