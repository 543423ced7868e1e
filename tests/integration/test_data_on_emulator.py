"""Data in and out of runs with the real, unmodified azureml-core against the emulator.

These tests pin down, on the wire, how azureml-core expresses each input and output of a run
(datastore lookups, datastore uploads, and the ``dataReferences``/``data``/``outputData``
sections of the run definition it posts), and that the emulator serves that flow. mlboot's data
adapter is tested later through the same accessors (``Emulator.run_data``, ``datastore_files``).
See docs/dev/data-on-azureml-core.md for what each call needs.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azureml.core import Dataset, Datastore, Environment, Experiment, ScriptRunConfig
from azureml.core.runconfig import Data, DataLocation, DataPath, Uri
from azureml.data import OutputFileDatasetConfig
from azureml.data.dataset_consumption_config import DatasetConsumptionConfig
from azureml.exceptions import UserErrorException

from emulator import Emulator, RunInput, RunOutput, sdk_run_warnings

pytestmark = [
    pytest.mark.sdk,
    # azureml-core's dataset and output-dataset code calls datetime.utcnow(), deprecated since
    # Python 3.12: the SDK's warning, not ours.
    pytest.mark.filterwarnings(
        "ignore:datetime.datetime.utcnow\\(\\) is deprecated:DeprecationWarning"
    ),
]


@pytest.fixture
def cluster(emulator: Emulator) -> None:
    emulator.add_compute("cpu-cluster")


@pytest.fixture
def local_folder(tmp_path: Path) -> Path:
    """A local input folder: two files, one in a sub-folder."""
    root = tmp_path / "local-input"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_bytes(b"a,b\n1,2\n")
    (root / "sub" / "b.txt").write_bytes(b"bee")
    return root


def _submit(workspace: Any, source_dir: Path, arguments: list[Any], **data: Any) -> Any:
    config = ScriptRunConfig(
        source_directory=str(source_dir),
        script="train.py",
        arguments=arguments,
        compute_target="cpu-cluster",
        environment=Environment("emulated-env"),
    )
    if "data_references" in data:
        config.run_config.data_references = {
            ref.data_reference_name: ref.to_config() for ref in data["data_references"]
        }
    return Experiment(workspace, "data-emulated").submit(config)


def _blob_calls(emulator: Emulator) -> list[tuple[str, str]]:
    """(method, path inside the container) of every blob request, in order."""
    return [(r.method, r.path.split("/", 2)[2]) for r in emulator.requests if r.is_blob]


# ---- datastores ----------------------------------------------------------------------------


def test_every_workspace_has_workspaceblobstore_as_its_default_datastore(
    emulator: Emulator, workspace: Any
) -> None:
    emulator.clear_requests()

    default = workspace.get_default_datastore()
    by_name = Datastore.get(workspace, "workspaceblobstore")

    state = emulator.datastore("workspaceblobstore")
    assert (default.name, default.datastore_type, default.credential_type) == (
        "workspaceblobstore",
        "AzureBlob",
        "AccountKey",
    )
    assert (by_name.container_name, by_name.account_name) == (
        state.container_name,
        emulator.storage_account,
    )
    assert default.endpoint == f"{emulator.blob_suffix}:{emulator.port}"
    assert emulator.route_sequence() == ["discovery", "datastore.get_default", "datastore.get"]


def test_added_datastores_are_found_by_name_and_listed(emulator: Emulator, workspace: Any) -> None:
    emulator.add_datastore("training_data", container_name="training", tags={"team": "vision"})

    found = Datastore.get(workspace, "training_data")
    listed = workspace.datastores

    assert (found.container_name, found.credential_type) == ("training", "AccountKey")
    assert sorted(listed) == ["training_data", "workspaceblobstore"]
    # The SDK lists with includeSecret=true: listed datastores can upload too.
    assert emulator.requests_to("datastore.list")[0].query["includeSecret"] == ["true"]
    assert listed["training_data"].account_key == found.account_key


def test_a_missing_datastore_is_a_user_error_naming_it(emulator: Emulator, workspace: Any) -> None:
    with pytest.raises(UserErrorException, match="DataStore nowhere was not found"):
        Datastore.get(workspace, "nowhere")

    assert emulator.statuses("datastore.get") == [404]


def test_add_datastore_can_change_the_default(emulator: Emulator, workspace: Any) -> None:
    emulator.add_datastore("curated", default=True)

    assert workspace.get_default_datastore().name == "curated"


def test_add_datastore_rejects_names_the_service_would_refuse(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="lower-case letters, digits and '_'"):
        emulator.add_datastore("Training-Data")


# ---- uploads -------------------------------------------------------------------------------


def test_upload_without_overwrite_sends_head_then_a_create_only_put_per_file(
    emulator: Emulator, workspace: Any, local_folder: Path
) -> None:
    datastore = workspace.get_default_datastore()
    emulator.clear_requests()

    reference = datastore.upload(
        str(local_folder), target_path="inputs/local", overwrite=False, show_progress=False
    )

    assert emulator.datastore_files("workspaceblobstore", "inputs/") == {
        "inputs/local/a.csv": b"a,b\n1,2\n",
        "inputs/local/sub/b.txt": b"bee",
    }
    # One existence check per file, in os.walk order, each followed (from a thread pool, so
    # interleaved with the next checks) by one PUT of that file.
    calls = _blob_calls(emulator)
    files = ["inputs/local/a.csv", "inputs/local/sub/b.txt"]
    assert [path for method, path in calls if method == "HEAD"] == files
    assert sorted(path for method, path in calls if method == "PUT") == files
    assert all(calls.index(("HEAD", f)) < calls.index(("PUT", f)) for f in files)
    puts = emulator.requests_to("blob.put")
    assert {put.header("If-None-Match") for put in puts} == {"*"}
    assert {put.header("Authorization").split(":")[0] for put in puts} == {"SharedKey emustore"}
    assert (reference.datastore.name, reference.path_on_datastore) == (
        "workspaceblobstore",
        "inputs/local",
    )


@pytest.fixture
def uploaded_then_changed(emulator: Emulator, workspace: Any, local_folder: Path) -> Any:
    """The default datastore, after ``local_folder`` was uploaded to ``in/`` and then a.csv
    changed locally; requests cleared."""
    datastore = workspace.get_default_datastore()
    datastore.upload(str(local_folder), target_path="in", overwrite=False, show_progress=False)
    (local_folder / "a.csv").write_bytes(b"changed\n")
    emulator.clear_requests()
    return datastore


def test_a_second_upload_without_overwrite_only_checks_each_file(
    emulator: Emulator, uploaded_then_changed: Any, local_folder: Path
) -> None:
    # What mlboot's content-addressed upload is measured against: the SDK sends nothing but
    # it still asks once per file, and never compares contents (a changed file is skipped too).
    datastore = uploaded_then_changed

    datastore.upload(str(local_folder), target_path="in", overwrite=False, show_progress=False)

    assert _blob_calls(emulator) == [("HEAD", "in/a.csv"), ("HEAD", "in/sub/b.txt")]
    assert emulator.datastore_files("workspaceblobstore", "in/")["in/a.csv"] == b"a,b\n1,2\n"


def test_upload_with_overwrite_puts_every_file_without_checking(
    emulator: Emulator, uploaded_then_changed: Any, local_folder: Path
) -> None:
    datastore = uploaded_then_changed

    datastore.upload(str(local_folder), target_path="in", overwrite=True, show_progress=False)

    assert sorted(_blob_calls(emulator)) == [("PUT", "in/a.csv"), ("PUT", "in/sub/b.txt")]
    assert {put.header("If-None-Match") for put in emulator.requests_to("blob.put")} == {None}
    assert emulator.datastore_files("workspaceblobstore", "in/")["in/a.csv"] == b"changed\n"


class _Messages(logging.Handler):
    """Keeps the raw messages of the records it gets (never formats them)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(str(record.msg))


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_refused_put_is_only_logged_and_upload_still_returns_a_reference(
    emulator: Emulator, workspace: Any, local_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The PUTs run as tasks whose handler logs the exception: datastore.upload neither raises
    # nor says which files are missing (mlboot's adapter must check the outcome itself). The
    # SDK's log call is malformed (an extra argument and no '%s'): a handler that formats it,
    # as pytest's do, raises TypeError out of upload, so this test keeps the records away from
    # pytest's handlers.
    sdk_logger = logging.getLogger("azureml.data.azure_storage_datastore")
    kept = _Messages()
    monkeypatch.setattr(sdk_logger, "propagate", False)
    monkeypatch.setattr(sdk_logger, "handlers", [kept])
    datastore = workspace.get_default_datastore()
    emulator.fail("blob.put", 403, times=2)

    reference = datastore.upload(str(local_folder), target_path="in", show_progress=False)

    assert reference.path_on_datastore == "in"
    assert emulator.statuses("blob.put") == [403, 403]
    assert emulator.datastore_files("workspaceblobstore", "in/") == {}
    failed = "Upload failed, please make sure target_path does not start with invalid characters."
    assert kept.messages.count(failed) == 2
    # The SDK leaves a failed file open (its task closes the file only after a successful PUT):
    # collected here, its ResourceWarning is ignored here instead of failing a later test.
    gc.collect()


def test_a_refused_existence_check_raises_from_upload(
    emulator: Emulator, workspace: Any, local_folder: Path
) -> None:
    # The HEADs run in the caller's thread, so their errors do reach the caller.
    datastore = workspace.get_default_datastore()
    emulator.fail("blob.head", 403)

    with pytest.raises(HttpResponseError):
        datastore.upload(str(local_folder), target_path="in", show_progress=False)

    assert emulator.count("blob.put") == 0


def test_upload_files_places_files_relative_to_their_common_folder(
    emulator: Emulator, workspace: Any, local_folder: Path
) -> None:
    datastore = workspace.get_default_datastore()

    reference = datastore.upload_files(
        [str(local_folder / "a.csv"), str(local_folder / "sub" / "b.txt")],
        target_path="picked",
        overwrite=False,
        show_progress=False,
    )

    assert set(emulator.datastore_files("workspaceblobstore", "picked/")) == {
        "picked/a.csv",
        "picked/sub/b.txt",
    }
    assert reference.path_on_datastore == "picked"


def test_a_sas_datastore_uploads_with_its_token(
    emulator: Emulator, workspace: Any, local_folder: Path
) -> None:
    emulator.add_datastore("shared", credential_type="Sas")

    Datastore.get(workspace, "shared").upload(
        str(local_folder), target_path="x", overwrite=True, show_progress=False
    )

    assert set(emulator.datastore_files("shared")) == {"x/a.csv", "x/sub/b.txt"}
    assert all(put.query["sig"] == ["emulated"] for put in emulator.requests_to("blob.put"))


def test_a_datastore_without_credentials_refuses_to_upload(
    emulator: Emulator, workspace: Any, local_folder: Path
) -> None:
    emulator.add_datastore("identity_only", credential_type="None")
    datastore = Datastore.get(workspace, "identity_only")
    emulator.clear_requests()

    with pytest.raises(UserErrorException, match="does not have an access key"):
        datastore.upload(str(local_folder), target_path="x", show_progress=False)

    assert _blob_calls(emulator) == []


def test_download_lists_the_prefix_and_fetches_each_blob(
    emulator: Emulator, workspace: Any, tmp_path: Path
) -> None:
    # How a launcher reads an output back from its datastore path after the run.
    emulator.put_datastore_file("workspaceblobstore", "runs/r1/model/weights.bin", b"\x00\x01")
    emulator.put_datastore_file("workspaceblobstore", "runs/r1/model/meta/card.json", b"{}")
    emulator.put_datastore_file("workspaceblobstore", "runs/r1/model/empty.txt", b"")
    emulator.put_datastore_file("workspaceblobstore", "runs/r2/model/weights.bin", b"other")
    datastore = workspace.get_default_datastore()
    emulator.clear_requests()

    count = datastore.download(str(tmp_path / "got"), prefix="runs/r1/", show_progress=False)

    assert count == 3
    assert (tmp_path / "got" / "runs/r1/model/weights.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "got" / "runs/r1/model/empty.txt").read_bytes() == b""
    assert (tmp_path / "got" / "runs/r1/model/meta/card.json").read_bytes() == b"{}"
    assert emulator.requests_to("blob.list")[0].query["prefix"] == ["runs/r1/"]
    # The empty blob: a ranged GET answered 416, then a whole GET, as the service answers.
    assert sorted(
        (r.path.split("/", 2)[2], r.status) for r in emulator.requests_to("blob.get")
    ) == [
        ("runs/r1/model/empty.txt", 200),
        ("runs/r1/model/empty.txt", 416),
        ("runs/r1/model/meta/card.json", 206),
        ("runs/r1/model/weights.bin", 206),
    ]


def test_a_listing_is_paged_by_maxresults_and_marker(emulator: Emulator, workspace: Any) -> None:
    for name in ("a", "b", "c"):
        emulator.put_datastore_file("workspaceblobstore", f"p/{name}", name.encode())
    container = workspace.get_default_datastore().blob_service.get_container_client(
        emulator.datastore("workspaceblobstore").container_name
    )

    names = [blob.name for blob in container.list_blobs(name_starts_with="p/", results_per_page=2)]

    assert names == ["p/a", "p/b", "p/c"]
    assert [r.query.get("marker") for r in emulator.requests_to("blob.list")] == [None, ["p/c"]]


# ---- inputs and outputs in the run definition ----------------------------------------------


@sdk_run_warnings
def test_datastore_inputs_reach_the_run_definition_as_mount_and_download(
    emulator: Emulator, workspace: Any, source_dir: Path, cluster: None
) -> None:
    emulator.add_datastore("training_data", container_name="training")
    datastore = Datastore.get(workspace, "training_data")
    images = datastore.path("images/").as_mount()
    labels = datastore.path("labels/train.csv").as_download(path_on_compute="data/labels.csv")
    emulator.clear_requests()

    run = _submit(
        workspace,
        source_dir,
        ["--images", str(images), "--labels", str(labels)],
        data_references=[images, labels],
    )

    data = emulator.run_data(run.id)
    assert data.after("--images") == RunInput(
        name=images.data_reference_name,
        kind="data_reference",
        mode="mount",
        datastore="training_data",
        path="images/",
        path_on_compute=None,
    )
    assert data.after("--labels") == RunInput(
        name=labels.data_reference_name,
        kind="data_reference",
        mode="download",
        datastore="training_data",
        path="labels/train.csv",
        path_on_compute="data/labels.csv",
    )
    assert data.outputs == {}
    # Submitting looks no datastore up: a misspelt name would only fail on the compute.
    assert not [r for r in emulator.requests if r.route.startswith("datastore.")]


@sdk_run_warnings
def test_a_local_folder_uploaded_first_is_mounted_from_the_default_datastore(
    emulator: Emulator, workspace: Any, source_dir: Path, cluster: None, local_folder: Path
) -> None:
    uploaded = workspace.get_default_datastore().upload(
        str(local_folder), target_path="uploads/local-input", show_progress=False
    )
    mounted = uploaded.as_mount()

    run = _submit(workspace, source_dir, ["--data", str(mounted)], data_references=[mounted])

    given = emulator.run_data(run.id).after("--data")
    assert isinstance(given, RunInput)
    assert (given.datastore, given.path, given.mode) == (
        "workspaceblobstore",
        "uploads/local-input",
        "mount",
    )
    assert emulator.datastore_files("workspaceblobstore", given.path or "") == {
        "uploads/local-input/a.csv": b"a,b\n1,2\n",
        "uploads/local-input/sub/b.txt": b"bee",
    }


@sdk_run_warnings
def test_outputs_reach_the_run_definition_as_upload_and_mount(
    emulator: Emulator, workspace: Any, source_dir: Path, cluster: None
) -> None:
    emulator.add_datastore("models")
    models = Datastore.get(workspace, "models")
    default = workspace.get_default_datastore()
    model = OutputFileDatasetConfig(name="model", destination=(models, "runs/{run-id}/model"))
    scratch = OutputFileDatasetConfig(name="scratch", destination=(default, "scratch/"))
    under_run = OutputFileDatasetConfig(name="under_run")

    run = _submit(
        workspace,
        source_dir,
        [
            "--model",
            model.as_upload(overwrite=True),
            "--scratch",
            scratch.as_mount(),
            "--plain",
            under_run,
        ],
    )

    data = emulator.run_data(run.id)
    assert data.arguments[1::2] == [
        "DatasetOutputConfig:model",
        "DatasetOutputConfig:scratch",
        "DatasetOutputConfig:under_run",
    ]
    assert data.after("--model") == RunOutput(
        name="model", mode="upload", datastore="models", path="runs/{run-id}/model", overwrite=True
    )
    assert data.after("--scratch") == RunOutput(
        name="scratch", mode="mount", datastore="workspaceblobstore", path="scratch/"
    )
    # No destination: the service picks a path under the run; the SDK's default mode is mount.
    assert data.after("--plain") == RunOutput(name="under_run", mode="mount")
    assert data.inputs == {}


@sdk_run_warnings
def test_an_upload_output_without_overwrite_says_so(
    emulator: Emulator, workspace: Any, source_dir: Path, cluster: None
) -> None:
    output = OutputFileDatasetConfig(
        name="metrics", destination=(workspace.get_default_datastore(), "metrics")
    ).as_upload()

    run = _submit(workspace, source_dir, ["--out", output])

    assert emulator.run_data(run.id).outputs["metrics"].overwrite is False
    raw = emulator.submitted_run_definition(run.id)["Configuration"]["outputData"]["metrics"]
    assert raw["additionalOptions"]["uploadOptions"] == {"overwrite": False, "sourceGlobs": None}


@sdk_run_warnings
def test_a_data_reference_object_in_arguments_fails_only_after_the_snapshot_upload(
    emulator: Emulator, workspace: Any, source_dir: Path, cluster: None
) -> None:
    # azureml-core serialises arguments as JSON: a DataReference must be given as str(ref).
    reference = workspace.get_default_datastore().path("data").as_mount()

    with pytest.raises(TypeError, match="DataReference is not JSON serializable"):
        _submit(workspace, source_dir, ["--data", reference], data_references=[reference])

    assert emulator.count("content.snapshot.create") == 1
    assert emulator.count("execution.snapshotrun") == 0


@sdk_run_warnings
def test_a_data_reference_placeholder_without_its_section_is_left_unresolved(
    emulator: Emulator, workspace: Any, source_dir: Path, cluster: None
) -> None:
    # The SDK does not check that a "$AZUREML_DATAREFERENCE_x" argument has its entry in
    # run_config.data_references: the run is submitted and the compute would get the raw text.
    reference = workspace.get_default_datastore().path("data").as_mount()

    run = _submit(workspace, source_dir, ["--data", str(reference)])

    data = emulator.run_data(run.id)
    assert data.inputs == {}
    assert data.unresolved_arguments == [str(reference)]


@sdk_run_warnings
def test_url_and_datastore_inputs_can_be_written_as_data_entries_without_the_dataset_runtime(
    emulator: Emulator, workspace: Any, source_dir: Path, cluster: None
) -> None:
    # Dataset.File.from_files(url) needs azureml-dataset-runtime; the run configuration's own
    # Data/DataLocation types express the same input without it (arguments name them by the
    # placeholder the SDK itself writes for dataset inputs).
    web = Data(
        data_location=DataLocation(uri=Uri(path="https://example.org/d.csv", is_file=True)),
        mechanism="download",
        environment_variable_name="web",
        path_on_compute="web/d.csv",
    )
    folder = Data(
        data_location=DataLocation(data_path=DataPath("workspaceblobstore", "data/x")),
        mechanism="mount",
        environment_variable_name="folder",
    )
    config = ScriptRunConfig(
        source_directory=str(source_dir),
        script="train.py",
        arguments=[
            "--web",
            "DatasetConsumptionConfig:web",
            "--x",
            "DatasetConsumptionConfig:folder",
        ],
        compute_target="cpu-cluster",
        environment=Environment("emulated-env"),
    )
    config.run_config.data = {"web": web, "folder": folder}

    run = Experiment(workspace, "data-emulated").submit(config)

    data = emulator.run_data(run.id)
    assert data.after("--web") == RunInput(
        name="web",
        kind="uri",
        mode="download",
        path_on_compute="web/d.csv",
        url="https://example.org/d.csv",
    )
    assert data.after("--x") == RunInput(
        name="folder", kind="data_path", mode="mount", datastore="workspaceblobstore", path="data/x"
    )


# ---- registered datasets -------------------------------------------------------------------


@sdk_run_warnings
def test_registered_datasets_are_consumed_by_version_and_latest_without_the_dataset_runtime(
    emulator: Emulator, workspace: Any, source_dir: Path, cluster: None
) -> None:
    first = emulator.add_dataset("images", "workspaceblobstore", "data/images/v1/")
    second = emulator.add_dataset("images", "workspaceblobstore", "data/images/v2/")
    emulator.clear_requests()

    latest = Dataset.get_by_name(workspace, "images")
    pinned = Dataset.get_by_name(workspace, "images", version=1)
    run = _submit(
        workspace,
        source_dir,
        [
            "--latest",
            latest.as_named_input("images").as_mount(),
            "--pinned",
            pinned.as_named_input("images_v1").as_download(path_on_compute="v1"),
            "--moving",
            DatasetConsumptionConfig("moving", (workspace, "images"), mode="mount"),
        ],
    )

    data = emulator.run_data(run.id)
    assert (latest.version, pinned.version) == (2, 1)
    assert data.after("--latest") == RunInput(
        name="images",
        kind="dataset",
        mode="mount",
        dataset_id=second.saved_id,
        dataset_name="images",
        dataset_version="2",
    )
    assert data.after("--pinned") == RunInput(
        name="images_v1",
        kind="dataset",
        mode="download",
        path_on_compute="v1",
        dataset_id=first.saved_id,
        dataset_name="images",
        dataset_version="1",
    )
    # A (workspace, name) tuple consumes whatever is latest when the run starts: no id.
    moving = data.after("--moving")
    assert isinstance(moving, RunInput)
    assert (moving.dataset_id, moving.dataset_name, moving.dataset_version) == (
        None,
        "images",
        "latest",
    )
    # One lookup by name, then one definition fetch, per get_by_name.
    lookups = [r.query.get("versionId") for r in emulator.requests_to("dataset.get_by_name")]
    assert lookups == [None, ["1"], None]
    assert emulator.count("data.dataversion.get") == 3


def test_a_missing_dataset_is_a_user_error_after_a_v2_lookup_too(
    emulator: Emulator, workspace: Any
) -> None:
    with pytest.raises(UserErrorException, match='Cannot find dataset registered with name "nope"'):
        Dataset.get_by_name(workspace, "nope")

    # After the v1 404 the SDK asks the v2 data-asset route with the name itself.
    assert [r.route for r in emulator.requests if r.status == 404] == [
        "dataset.get_by_name",
        "data.dataversion.get",
    ]
    assert emulator.requests_to("data.dataversion.get")[0].params["dataset"] == "nope"


def test_datasets_built_from_paths_need_the_dataset_runtime(workspace: Any) -> None:
    datastore = workspace.get_default_datastore()

    with pytest.raises(ImportError, match='Missing required package "azureml-dataset-runtime"'):
        Dataset.File.from_files(path=(datastore, "data/"))
    with pytest.raises(ImportError, match='Missing required package "azureml-dataset-runtime"'):
        Dataset.File.from_files(path="https://example.org/data.csv")
    with pytest.raises(ModuleNotFoundError, match=r"azureml\.dataprep"):
        Dataset.File.upload_directory(str(Path(__file__).parent), (datastore, "x"))
