"""Inputs and outputs through ``mlboot.submit_script`` on the azureml-core backend, on the wire.

mlboot's public call -> its azureml-core backend -> unmodified azureml-core -> the emulator:
each input kind and mode and each output reaches the run definition with the right datastore,
path and mode (``Emulator.run_data``), a local folder is uploaded once by its content, and a
wrong datastore or dataset fails before any snapshot upload.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import mlboot
from emulator import Emulator, RunInput, RunOutput, sdk_run_warnings
from mlboot.exceptions import InvalidInputError, MissingExtraError, NotFoundError

pytestmark = [
    pytest.mark.sdk,
]


@pytest.fixture
def workspace(emulator: Emulator, config: Path) -> mlboot.Workspace:
    emulator.add_compute("cpu-cluster")
    emulator.add_datastore("training_data")
    return mlboot.workspace_from_config(config, auth=emulator.auth)


@pytest.fixture
def local_folder(tmp_path: Path) -> Path:
    root = tmp_path / "local-input"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_bytes(b"a,b\n1,2\n")
    (root / "sub" / "b.txt").write_bytes(b"bee")
    return root


def _submit(
    workspace: mlboot.Workspace, source_dir: Path, *arguments: object, **data: object
) -> mlboot.Run:
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute="cpu-cluster",
        experiment="data-exp",
        source_directory=source_dir,
        arguments=list(arguments),  # type: ignore[arg-type]  (str and mlboot.Input/Output)
        **data,  # type: ignore[arg-type]  (inputs= / outputs=)
    )


def _expected_digest(root: Path) -> str:
    """mlboot's content address of a folder: SHA-256 of its sorted (sha256, size, name) lines."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        content = path.read_bytes()
        name = path.relative_to(root).as_posix()
        lines.append(f"{hashlib.sha256(content).hexdigest()}  {len(content)}  {name}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _where(item: RunInput | RunOutput | None) -> tuple[str | None, ...]:
    assert isinstance(item, RunInput | RunOutput), item
    return (item.name, item.mode, item.datastore, item.path)


def _blob_calls(emulator: Emulator) -> list[tuple[str, str]]:
    return [(r.method, r.path.split("/", 2)[2]) for r in emulator.requests if r.is_blob]


@sdk_run_warnings
def test_a_local_folder_is_uploaded_by_content_then_mounted_from_the_default_datastore(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, local_folder: Path
) -> None:
    run = _submit(workspace, source_dir, "--data", mlboot.Input(local_folder))

    base = f"mlboot/inputs/sha256-{_expected_digest(local_folder)}"
    given = emulator.run_data(run.id).after("--data")
    assert given == RunInput(
        name="MLBOOT_INPUT_input_0",
        kind="data_reference",
        mode="mount",
        datastore="workspaceblobstore",
        path=base + "/",  # read as a prefix of blob names, base alone would take its marker too
    )
    assert emulator.datastore_files("workspaceblobstore", base + "/") == {
        f"{base}/a.csv": b"a,b\n1,2\n",
        f"{base}/sub/b.txt": b"bee",
    }
    # The marker is written last, after every file of the folder.
    calls = [call for call in _blob_calls(emulator) if call[1].startswith("mlboot/")]
    assert calls[0] == ("HEAD", f"{base}.complete")  # not there yet
    data_puts = [path for method, path in calls if method == "PUT"]
    assert data_puts[-1] == f"{base}.complete"
    assert sorted(data_puts[:-1]) == [f"{base}/a.csv", f"{base}/sub/b.txt"]


@sdk_run_warnings
def test_an_unchanged_local_folder_costs_one_existence_check_the_second_time(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, local_folder: Path
) -> None:
    first = _submit(workspace, source_dir, mlboot.Input(local_folder, mode="download"))
    emulator.clear_requests()

    second = _submit(workspace, source_dir, mlboot.Input(local_folder, mode="download"))

    base = f"mlboot/inputs/sha256-{_expected_digest(local_folder)}"
    data_calls = [call for call in _blob_calls(emulator) if call[1].startswith("mlboot/")]
    assert data_calls == [("HEAD", f"{base}.complete")]
    assert emulator.run_data(first.id).inputs == emulator.run_data(second.id).inputs
    assert emulator.run_data(second.id).inputs["MLBOOT_INPUT_input_0"].mode == "download"


@sdk_run_warnings
def test_datastore_inputs_in_each_mode_and_outputs_reach_the_run_definition(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    run = _submit(
        workspace,
        source_dir,
        "--images",
        "${{inputs.images}}",
        "--labels",
        "${{inputs.labels}}",
        "--model",
        mlboot.Output("azureml://datastores/training_data/paths/models/{run-id}"),
        "--scratch=${{outputs.scratch}}",
        inputs={
            "images": mlboot.Input("azureml://datastores/training_data/paths/images"),
            "labels": mlboot.Input(
                "azureml://datastores/training_data/paths/labels/train.csv", mode="download"
            ),
        },
        outputs={"scratch": mlboot.Output(mode="mount")},
    )

    data = emulator.run_data(run.id)
    # (name, mode, datastore, path) of what each argument stands for.
    assert [_where(data.after(flag)) for flag in ("--images", "--labels", "--model")] == [
        ("MLBOOT_INPUT_images", "mount", "training_data", "images"),
        ("MLBOOT_INPUT_labels", "download", "training_data", "labels/train.csv"),
        ("MLBOOT_OUTPUT_output_0", "upload", "training_data", "models/{run-id}"),
    ]
    assert {name: item.kind for name, item in data.inputs.items()} == {
        "MLBOOT_INPUT_images": "data_reference",
        "MLBOOT_INPUT_labels": "data_reference",
    }
    assert data.outputs["MLBOOT_OUTPUT_output_0"].overwrite is True
    assert data.arguments[-1] == "--scratch=$MLBOOT_OUTPUT_scratch"
    assert _where(data.outputs["MLBOOT_OUTPUT_scratch"]) == (
        "MLBOOT_OUTPUT_scratch",
        "mount",
        "workspaceblobstore",
        "dataset/{run-id}/scratch",
    )
    assert data.unresolved_arguments == []
    variables = emulator.submitted_run_definition(run.id)["Configuration"]["environmentVariables"]
    assert variables == {
        "MLBOOT_INPUT_images": "$AZUREML_DATAREFERENCE_MLBOOT_INPUT_images",
        "MLBOOT_INPUT_labels": "$AZUREML_DATAREFERENCE_MLBOOT_INPUT_labels",
    }


@sdk_run_warnings
def test_a_registered_dataset_is_looked_up_once_and_consumed_in_the_run(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.add_dataset("images", "workspaceblobstore", "data/images/v1/")
    second = emulator.add_dataset("images", "workspaceblobstore", "data/images/v2/")
    emulator.clear_requests()

    run = _submit(workspace, source_dir, "--images", mlboot.Input("azureml:images@latest"))

    given = emulator.run_data(run.id).after("--images")
    assert isinstance(given, RunInput)
    assert (given.name, given.kind, given.mode) == ("MLBOOT_INPUT_input_0", "dataset", "mount")
    assert (given.dataset_id, given.dataset_version) == (second.saved_id, "2")
    assert emulator.count("dataset.get_by_name") == 1


def test_a_missing_datastore_fails_before_any_upload(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, local_folder: Path
) -> None:
    emulator.clear_requests()

    with pytest.raises(InvalidInputError, match="no datastore called 'nowhere'"):
        _submit(
            workspace,
            source_dir,
            mlboot.Input(local_folder),
            mlboot.Input("azureml://datastores/nowhere/paths/x"),
        )

    assert emulator.count("content.snapshot.create") == 0
    assert [call for call in _blob_calls(emulator) if call[0] == "PUT"] == []
    assert emulator.statuses("datastore.get") == [404]


def test_a_missing_dataset_fails_before_any_upload(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.clear_requests()

    with pytest.raises(NotFoundError, match="registered dataset 'nope' version 2 was not found"):
        _submit(workspace, source_dir, mlboot.Input("azureml:nope:2"))

    assert emulator.count("content.snapshot.create") == 0
    assert _blob_calls(emulator) == []


def test_a_url_input_without_the_dataset_runtime_fails_before_any_request(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, local_folder: Path
) -> None:
    emulator.clear_requests()

    with pytest.raises(MissingExtraError, match=r"mlboot\[datasets\]"):
        _submit(
            workspace,
            source_dir,
            mlboot.Input(local_folder),
            mlboot.Input("https://example.org/data.csv", mode="download"),
        )

    assert emulator.requests == []
