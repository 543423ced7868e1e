"""The data contract: the same launcher's inputs and outputs mean the same on every backend.

Each scenario runs over every harness (``contract_harnesses.HARNESSES``): what the script read
from each input (its files and mode) and where its outputs landed (a datastore's files once the
run ended) must be the same.  The fake runs nothing: its harness plays the script on the request
the fake recorded, reading and writing the fake's datastores where the request says, so the
request itself is what is checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from contract_harnesses import DATA_FILES, DATASTORE, RESULT_FILE, Harness

import mlboot
from mlboot import Input, Output, RunStatus

pytestmark = [
    pytest.mark.filterwarnings("ignore:No environment given:mlboot.exceptions.MlbootWarning"),
]

CLUSTER = "cpu-cluster"
SIZE = "Standard_DS3_v2"
TIMEOUT = 60.0


@pytest.fixture
def workspace(harness: Harness) -> mlboot.Workspace:
    workspace = harness.open(harness.config())
    harness.add_cluster(CLUSTER, vm_size=SIZE.upper(), max_nodes=4)
    mlboot.get_or_create_compute_target(workspace, CLUSTER, vm_size=SIZE, max_nodes=4)
    return workspace


def run_data_script(harness: Harness, workspace: mlboot.Workspace, **data: object) -> mlboot.Run:
    run = mlboot.submit_script(
        workspace,
        "train.py",
        compute=CLUSTER,
        experiment="contract-data",
        source_directory=harness.data_project(),
        **data,  # type: ignore[arg-type]  # arguments/inputs/outputs, as each scenario needs
    )
    assert run.wait(timeout=TIMEOUT, poll_interval=0.05) is RunStatus.COMPLETED
    return run


@pytest.mark.parametrize("mode", ["mount", "download"])
def test_a_local_folder_input_reaches_the_script_with_its_files(
    harness: Harness, workspace: mlboot.Workspace, tmp_path: Path, mode: str
) -> None:
    folder = tmp_path / "local-data"
    for path, content in DATA_FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)
    run = run_data_script(harness, workspace, arguments=["--data", Input(folder, mode=mode)])  # type: ignore[arg-type]  # one of the two modes
    assert harness.data_seen(run) == {"input_0": (mode, DATA_FILES)}


@pytest.mark.parametrize("mode", ["mount", "download"])
def test_a_datastore_input_reaches_the_script_in_each_mode(
    harness: Harness, workspace: mlboot.Workspace, mode: str
) -> None:
    harness.add_datastore(DATASTORE, {f"images/{k}": v for k, v in DATA_FILES.items()})
    run = run_data_script(
        harness,
        workspace,
        inputs={
            "images": Input(f"azureml://datastores/{DATASTORE}/paths/images", mode=mode),  # type: ignore[arg-type]  # one of the two
            "one": Input(f"azureml://datastores/{DATASTORE}/paths/images/a.txt", mode=mode),  # type: ignore[arg-type]  # one of the two
        },
    )
    assert harness.data_seen(run) == {
        "images": (mode, DATA_FILES),
        "one": (mode, {"a.txt": DATA_FILES["a.txt"]}),
    }


@pytest.mark.parametrize("mode", ["upload", "mount"])
def test_an_output_lands_at_its_datastore_path_once_the_run_ended(
    harness: Harness, workspace: mlboot.Workspace, mode: str
) -> None:
    harness.add_datastore(DATASTORE, {})
    run = run_data_script(
        harness,
        workspace,
        outputs={
            "model": Output(f"azureml://datastores/{DATASTORE}/paths/models/{{run-id}}", mode=mode)  # type: ignore[arg-type]  # one of the two
        },
    )
    assert harness.datastore_files(DATASTORE, run) == {
        f"models/{run.id}/{RESULT_FILE}": b"output model"
    }


def test_a_default_output_lands_under_the_run_in_the_default_datastore(
    harness: Harness, workspace: mlboot.Workspace
) -> None:
    run = run_data_script(harness, workspace, arguments=["--out", Output()])
    files = harness.datastore_files("workspaceblobstore", run)
    assert files[f"dataset/{run.id}/output_0/{RESULT_FILE}"] == b"output output_0"
