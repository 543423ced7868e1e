"""The azureml-core backend's data methods -> unmodified azureml-core -> the emulator.

What each seam method sends (one datastore lookup, one HEAD, one PUT per file), how a run's
inputs and outputs reach the run definition (``Emulator.run_data``), and that SDK failures come
back as mlboot's errors.  ``test_data_submit_on_emulator.py`` drives the same through
``mlboot.submit_script``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

import mlboot
from emulator import Emulator, RunInput, RunOutput, sdk_run_warnings
from mlboot._backends.azureml._azureml import AzureMLBackend
from mlboot._clock import SystemClock
from mlboot._deadline import bounded
from mlboot.backend import DataInput, DataOutput, DatastoreInfo, RunRequest
from mlboot.exceptions import (
    InvalidInputError,
    MissingExtraError,
    NotFoundError,
    PermissionDeniedError,
    WaitTimeoutError,
)

pytestmark = [
    pytest.mark.sdk,
]


@pytest.fixture
def backend() -> AzureMLBackend:
    return AzureMLBackend()


@pytest.fixture
def workspace(emulator: Emulator, config: Path, backend: AzureMLBackend) -> mlboot.Workspace:
    return mlboot.workspace_from_config(config, auth=emulator.auth, backend=backend)


@pytest.fixture
def cluster(emulator: Emulator) -> str:
    emulator.add_compute("cpu-cluster")
    return "cpu-cluster"


def _blob_calls(emulator: Emulator) -> list[tuple[str, str]]:
    return [(r.method, r.path.split("/", 2)[2]) for r in emulator.requests if r.is_blob]


# ---- datastores ----------------------------------------------------------------------------


def test_the_default_datastore_and_a_named_one_are_one_lookup_each(
    emulator: Emulator, workspace: mlboot.Workspace, backend: AzureMLBackend
) -> None:
    emulator.add_datastore("training_data")
    emulator.clear_requests()

    default = backend.get_datastore(workspace.ref, None)
    named = backend.get_datastore(workspace.ref, "training_data")

    assert default == DatastoreInfo(name="workspaceblobstore", kind="AzureBlob")
    assert named == DatastoreInfo(name="training_data", kind="AzureBlob")
    routes = [r for r in emulator.route_sequence() if r.startswith("datastore.")]
    assert routes == ["datastore.get_default", "datastore.get"]


def test_a_missing_datastore_is_none_not_an_error(
    emulator: Emulator, workspace: mlboot.Workspace, backend: AzureMLBackend
) -> None:
    assert backend.get_datastore(workspace.ref, "nowhere") is None
    assert emulator.statuses("datastore.get") == [404]


def test_a_refused_datastore_lookup_raises_instead_of_answering_none(
    emulator: Emulator, workspace: mlboot.Workspace, backend: AzureMLBackend
) -> None:
    emulator.fail("datastore.get", 403)

    with pytest.raises(PermissionDeniedError, match="datastore 'training_data'"):
        backend.get_datastore(workspace.ref, "training_data")


def test_a_file_exists_check_is_one_head(
    emulator: Emulator, workspace: mlboot.Workspace, backend: AzureMLBackend
) -> None:
    emulator.put_datastore_file("workspaceblobstore", "mlboot/inputs/sha256-ab.complete", b"")
    backend.get_datastore(workspace.ref, None)
    emulator.clear_requests()

    there = backend.datastore_file_exists(
        workspace.ref, "workspaceblobstore", "mlboot/inputs/sha256-ab.complete"
    )
    absent = backend.datastore_file_exists(
        workspace.ref, "workspaceblobstore", "mlboot/inputs/sha256-cd.complete"
    )

    assert (there, absent) == (True, False)
    assert _blob_calls(emulator) == [
        ("HEAD", "mlboot/inputs/sha256-ab.complete"),
        ("HEAD", "mlboot/inputs/sha256-cd.complete"),
    ]


# ---- uploads -------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> list[tuple[Path, str]]:
    root = tmp_path / "input"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_bytes(b"a,b\n1,2\n")
    (root / "sub" / "b.txt").write_bytes(b"bee")
    (root / "empty").write_bytes(b"")
    return [
        (root / "a.csv", "a.csv"),
        (root / "sub" / "b.txt", "sub/b.txt"),
        (root / "empty", "empty"),
    ]


def test_an_upload_is_one_overwriting_put_per_file_and_no_existence_check(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    backend: AzureMLBackend,
    files: list[tuple[Path, str]],
) -> None:
    emulator.put_datastore_file("workspaceblobstore", "in/x/a.csv", b"old")
    backend.get_datastore(workspace.ref, None)
    emulator.clear_requests()

    backend.upload_to_datastore(workspace.ref, "workspaceblobstore", "in/x", files)

    assert emulator.datastore_files("workspaceblobstore", "in/") == {
        "in/x/a.csv": b"a,b\n1,2\n",
        "in/x/empty": b"",
        "in/x/sub/b.txt": b"bee",
    }
    assert sorted(_blob_calls(emulator)) == [
        ("PUT", "in/x/a.csv"),
        ("PUT", "in/x/empty"),
        ("PUT", "in/x/sub/b.txt"),
    ]
    assert {put.header("If-None-Match") for put in emulator.requests_to("blob.put")} == {None}


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_refused_put_raises_where_the_sdk_upload_only_logs_it(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    backend: AzureMLBackend,
    files: list[tuple[Path, str]],
) -> None:
    emulator.fail("blob.put", 403)

    with pytest.raises(PermissionDeniedError, match="uploading 3 file"):
        backend.upload_to_datastore(workspace.ref, "workspaceblobstore", "in", files)

    assert 403 in emulator.statuses("blob.put")


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_an_upload_ends_by_the_callers_deadline_while_every_put_is_throttled(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    backend: AzureMLBackend,
    files: list[tuple[Path, str]],
) -> None:
    # The storage client retries a 503 three times, 15 s then 18 s then 24 s apart: about a
    # minute per file. Under a 2 s deadline (submit_script's, here set by hand) no retry fits.
    backend.get_datastore(workspace.ref, None)
    emulator.fail("blob.put", 503, times=1000)
    started = time.monotonic()

    with (
        pytest.raises(WaitTimeoutError, match="uploading the input") as caught,
        bounded(SystemClock(), 2.0, what="uploading the input", limit="2 s", fix="wait"),
    ):
        backend.upload_to_datastore(workspace.ref, "workspaceblobstore", "in", files)

    assert time.monotonic() - started <= 3.0
    assert emulator.count("blob.put") >= 1
    assert "the next retry was due" in str(caught.value)


def test_a_datastore_without_a_credential_refuses_before_any_blob_request(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    backend: AzureMLBackend,
    files: list[tuple[Path, str]],
) -> None:
    emulator.add_datastore("identity_only", credential_type="None")
    emulator.clear_requests()

    with pytest.raises(PermissionDeniedError, match="no account key or SAS token"):
        backend.upload_to_datastore(workspace.ref, "identity_only", "in", files)

    assert _blob_calls(emulator) == []


def test_uploading_to_a_missing_datastore_is_not_found(
    workspace: mlboot.Workspace, backend: AzureMLBackend, files: list[tuple[Path, str]]
) -> None:
    with pytest.raises(NotFoundError, match="datastore 'nowhere' does not exist"):
        backend.upload_to_datastore(workspace.ref, "nowhere", "in", files)


# ---- registered datasets -------------------------------------------------------------------


def test_a_registered_dataset_is_checked_by_name_and_version(
    emulator: Emulator, workspace: mlboot.Workspace, backend: AzureMLBackend
) -> None:
    emulator.add_dataset("images", "workspaceblobstore", "data/images/v1/")
    emulator.clear_requests()

    backend.check_registered_dataset(workspace.ref, "images", "1")
    backend.check_registered_dataset(workspace.ref, "images", None)

    lookups = [r.query.get("versionId") for r in emulator.requests_to("dataset.get_by_name")]
    assert lookups == [["1"], None]


def test_a_missing_dataset_is_not_found_naming_it(
    workspace: mlboot.Workspace, backend: AzureMLBackend
) -> None:
    with pytest.raises(NotFoundError, match="registered dataset 'nope' version 3 was not found"):
        backend.check_registered_dataset(workspace.ref, "nope", "3")


def test_a_tabular_dataset_is_refused_before_the_submit(
    workspace: mlboot.Workspace, backend: AzureMLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator registers file datasets only: the lookup answers a tabular one here.
    from azureml.core import Dataset  # noqa: PLC0415
    from azureml.data import TabularDataset  # noqa: PLC0415

    monkeypatch.setattr(Dataset, "get_by_name", staticmethod(lambda *_a, **_k: TabularDataset()))

    with pytest.raises(InvalidInputError, match="'sales' is a TabularDataset") as caught:
        backend.check_registered_dataset(workspace.ref, "sales", "2")

    assert caught.value.value == "azureml:sales:2"


# ---- inputs and outputs of a submitted run -------------------------------------------------


Submit = Callable[..., str]


@pytest.fixture
def submit(
    workspace: mlboot.Workspace, backend: AzureMLBackend, source_dir: Path, cluster: str
) -> Submit:
    """``submit(*arguments, inputs=(), outputs=())`` submits through the backend: the run id."""

    def submitted(
        *arguments: str,
        inputs: tuple[DataInput, ...] = (),
        outputs: tuple[DataOutput, ...] = (),
    ) -> str:
        request = RunRequest(
            experiment="data-exp",
            source_directory=source_dir,
            script="train.py",
            compute=cluster,
            arguments=arguments,
            inputs=inputs,
            outputs=outputs,
        )
        return backend.submit_run(workspace.ref, request).run_id

    return submitted


@sdk_run_warnings
def test_datastore_inputs_are_data_references_named_for_the_input(
    emulator: Emulator, submit: Submit
) -> None:
    emulator.add_datastore("training_data")
    inputs = (
        DataInput("images", "mount", "datastore", datastore="training_data", path="images"),
        DataInput("labels", "download", "datastore", datastore="training_data", path=""),
    )

    run_id = submit("--images", "${{inputs.images}}", "--labels=${{inputs.labels}}", inputs=inputs)

    data = emulator.run_data(run_id)
    assert data.arguments == [
        "--images",
        "$AZUREML_DATAREFERENCE_MLBOOT_INPUT_images",
        "--labels=$AZUREML_DATAREFERENCE_MLBOOT_INPUT_labels",
    ]
    assert data.after("--images") == RunInput(
        name="MLBOOT_INPUT_images",
        kind="data_reference",
        mode="mount",
        datastore="training_data",
        path="images",
    )
    # The datastore's root ("") is sent as null, as the SDK sends it.
    labels = data.inputs["MLBOOT_INPUT_labels"]
    assert (labels.mode, labels.datastore, labels.path) == ("download", "training_data", None)
    configuration = emulator.submitted_run_definition(run_id)["Configuration"]
    assert configuration["environmentVariables"] == {
        "MLBOOT_INPUT_images": "$AZUREML_DATAREFERENCE_MLBOOT_INPUT_images",
        "MLBOOT_INPUT_labels": "$AZUREML_DATAREFERENCE_MLBOOT_INPUT_labels",
    }


@sdk_run_warnings
def test_registered_datasets_are_consumed_under_the_input_variable(
    emulator: Emulator, workspace: mlboot.Workspace, backend: AzureMLBackend, submit: Submit
) -> None:
    first = emulator.add_dataset("images", "workspaceblobstore", "data/images/v1/")
    second = emulator.add_dataset("images", "workspaceblobstore", "data/images/v2/")
    backend.check_registered_dataset(workspace.ref, "images", "1")
    emulator.clear_requests()
    inputs = (
        DataInput("pinned", "download", "dataset", dataset="images", version="1"),
        DataInput("latest", "mount", "dataset", dataset="images"),
    )

    run_id = submit("--a", "${{inputs.pinned}}", "--b", "${{inputs.latest}}", inputs=inputs)

    data = emulator.run_data(run_id)
    pinned, latest = data.after("--a"), data.after("--b")
    assert isinstance(pinned, RunInput)
    assert isinstance(latest, RunInput)
    assert (pinned.name, pinned.mode, pinned.dataset_id, pinned.dataset_version) == (
        "MLBOOT_INPUT_pinned",
        "download",
        first.saved_id,
        "1",
    )
    assert (latest.name, latest.mode, latest.dataset_id, latest.dataset_version) == (
        "MLBOOT_INPUT_latest",
        "mount",
        second.saved_id,
        "2",
    )
    # The checked one is reused: only the one not checked before is looked up by the submit.
    lookups = [r.query.get("versionId") for r in emulator.requests_to("dataset.get_by_name")]
    assert lookups == [None]


@sdk_run_warnings
def test_outputs_go_to_a_datastore_path_or_under_the_run(
    emulator: Emulator, submit: Submit
) -> None:
    emulator.add_datastore("models")
    outputs = (
        DataOutput("model", "upload", datastore="models", path="runs/{run-id}/{output-name}"),
        DataOutput("scratch", "mount", datastore="workspaceblobstore", path="scratch"),
        DataOutput("logs", "upload"),
    )

    run_id = submit(
        "--model=${{outputs.model}}",
        "--scratch",
        "${{outputs.scratch}}",
        "${{outputs.logs}}",
        outputs=outputs,
    )

    data = emulator.run_data(run_id)
    assert data.arguments == [
        "--model=$MLBOOT_OUTPUT_model",
        "--scratch",
        "DatasetOutputConfig:MLBOOT_OUTPUT_scratch",
        "DatasetOutputConfig:MLBOOT_OUTPUT_logs",
    ]
    assert data.outputs["MLBOOT_OUTPUT_model"] == RunOutput(
        name="MLBOOT_OUTPUT_model",
        mode="upload",
        datastore="models",
        path="runs/{run-id}/model",
        overwrite=True,
    )
    assert data.after("--scratch") == RunOutput(
        name="MLBOOT_OUTPUT_scratch", mode="mount", datastore="workspaceblobstore", path="scratch"
    )
    # No destination: where the service would put it, under mlboot's name of the output.
    assert data.outputs["MLBOOT_OUTPUT_logs"] == RunOutput(
        name="MLBOOT_OUTPUT_logs",
        mode="upload",
        datastore="workspaceblobstore",
        path="dataset/{run-id}/logs",
        overwrite=True,
    )


def test_a_url_input_without_the_dataset_runtime_fails_before_any_request(
    emulator: Emulator, submit: Submit
) -> None:
    web = DataInput("web", "download", "url", url="https://example.org/d.csv")
    emulator.clear_requests()

    with pytest.raises(MissingExtraError, match=r"mlboot\[datasets\]") as caught:
        submit("${{inputs.web}}", inputs=(web,))

    assert caught.value.extra == "datasets"
    assert emulator.requests == []


def test_a_placeholder_naming_no_input_is_refused_before_the_snapshot(
    emulator: Emulator, submit: Submit
) -> None:
    emulator.clear_requests()

    with pytest.raises(InvalidInputError, match=r"\$\{\{inputs\.nope\}\} names no input"):
        submit("--x", "${{inputs.nope}}")

    assert emulator.count("content.snapshot.create") == 0
