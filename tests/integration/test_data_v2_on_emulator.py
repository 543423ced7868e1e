"""A run's data on the azureml-v2 backend: mlboot -> unmodified azure-ai-ml -> the emulator.

The data contract (``tests/contract/test_data_contract.py``) shows that a script sees the same
files on every backend; these pin down what only the v2 backend does: a registered data asset's
lookup and type, a URL input, the upload of a local input through the datastore's own blob
credential, the refusals before the job PUT, and a submit that prints nothing.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("azure.ai.ml", reason="the v2 extra (mlboot[v2]) is not installed")

import mlboot
from emulator import Emulator, StaticTokenCredential, isolate_v2_sdk
from mlboot import Input, Output
from mlboot.exceptions import InvalidInputError, MlbootWarning, NotFoundError, WaitTimeoutError
from mlboot.testing import FakeClock

pytestmark = pytest.mark.sdk


@pytest.fixture
def workspace(
    emulator: Emulator, config: Path, monkeypatch: pytest.MonkeyPatch
) -> mlboot.Workspace:
    isolate_v2_sdk(monkeypatch, emulator)
    emulator.add_compute("cpu-cluster")
    credential = StaticTokenCredential.for_emulator(emulator)
    return mlboot.workspace_from_config(config, auth=credential, backend="azureml-v2")


def _submit(workspace: mlboot.Workspace, source_dir: Path, **data: object) -> mlboot.Run:
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute="cpu-cluster",
        experiment="data",
        source_directory=source_dir,
        environment=mlboot.Environment.from_docker_image("team/train:1"),
        **data,  # type: ignore[arg-type]  # arguments=, inputs=, outputs=, timeout= of the test
    )


def _job_inputs(emulator: Emulator, run: mlboot.Run) -> dict[str, dict[str, str]]:
    return dict(emulator.job(run.id).properties["inputs"])


def test_a_registered_data_asset_goes_by_name_with_the_type_it_was_registered_with(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    uri = "azureml://datastores/workspaceblobstore/paths/labels.csv"
    emulator.add_data_asset("labels", uri, version="1", data_type="uri_file")
    emulator.add_data_asset("labels", uri, version="2", data_type="uri_file")
    emulator.add_data_asset("images", "azureml://datastores/workspaceblobstore/paths/img")

    run = _submit(
        workspace,
        source_dir,
        arguments=["--labels", Input("azureml:labels@latest", mode="download")],
        inputs={"images": Input("azureml:images:1")},
    )

    inputs = _job_inputs(emulator, run)
    assert inputs["input_0"] == {
        "jobInputType": "uri_file",
        "uri": inputs["input_0"]["uri"],
        "mode": "Download",
    }
    # azure-ai-ml resolves a name to the version's ARM id before the PUT: the latest is 2.
    assert inputs["input_0"]["uri"].endswith("/data/labels/versions/2")
    assert inputs["images"]["jobInputType"] == "uri_folder"
    assert inputs["images"]["mode"] == "ReadOnlyMount"
    assert inputs["images"]["uri"].endswith("/data/images/versions/1")


def test_a_missing_data_asset_fails_before_anything_is_uploaded_or_submitted(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    with pytest.raises(NotFoundError, match="registered data asset 'nope' version 4"):
        _submit(workspace, source_dir, inputs={"x": Input("azureml:nope:4")})

    assert emulator.jobs == {}
    assert emulator.code_versions == []


def test_a_tabular_data_asset_is_refused_before_the_submit(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.add_data_asset(
        "table", "azureml://datastores/workspaceblobstore/paths/t", data_type="mltable"
    )

    with pytest.raises(InvalidInputError, match="mltable") as caught:
        _submit(workspace, source_dir, inputs={"x": Input("azureml:table:1")})

    assert caught.value.value == "azureml:table:1"
    assert emulator.jobs == {}


def test_a_url_input_is_a_downloaded_file(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    run = _submit(
        workspace,
        source_dir,
        inputs={"web": Input("https://example.org/data/a.csv", mode="download")},
    )

    assert _job_inputs(emulator, run)["web"] == {
        "jobInputType": "uri_file",
        "uri": "https://example.org/data/a.csv",
        "mode": "Download",
    }


def test_a_local_file_is_uploaded_once_and_reaches_the_job_as_a_file(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, tmp_path: Path
) -> None:
    local = tmp_path / "weights.bin"
    local.write_bytes(b"\x00\x01weights")

    first = _submit(workspace, source_dir, inputs={"w": Input(local)})
    uploads_after_first = len(emulator.requests_to("blob.put"))
    second = _submit(workspace, source_dir, inputs={"w": Input(local)})

    uri = _job_inputs(emulator, first)["w"]["uri"]
    assert _job_inputs(emulator, first)["w"]["jobInputType"] == "uri_file"
    prefix = "azureml://datastores/workspaceblobstore/paths/"
    assert uri.startswith(prefix)
    path = uri.removeprefix(prefix)
    assert path.startswith("mlboot/inputs/sha256-")
    assert path.endswith("/weights.bin")
    assert emulator.datastore_files("workspaceblobstore")[path] == b"\x00\x01weights"
    assert _job_inputs(emulator, second)["w"]["uri"] == uri
    # The second submit found the marker: only its snapshot's blobs were sent again, if any.
    new_puts = emulator.requests_to("blob.put")[uploads_after_first:]
    assert not [r for r in new_puts if "mlboot/inputs/" in r.path]


def test_an_unknown_datastore_is_refused_before_anything_is_uploaded(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "data.csv").write_text("a\n", encoding="utf-8")

    with pytest.raises(InvalidInputError, match="no datastore called 'missing'") as caught:
        _submit(
            workspace,
            source_dir,
            inputs={"local": Input(tmp_path / "data.csv")},
            outputs={"out": Output("azureml://datastores/missing/paths/o")},
        )

    assert caught.value.field == "outputs['out'].destination"
    assert emulator.requests_to("blob.put") == []
    assert emulator.jobs == {}


def test_a_submit_with_data_prints_nothing(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    source_dir: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a\n", encoding="utf-8")
    capfd.readouterr()

    _submit(
        workspace,
        source_dir,
        arguments=["--in", Input(tmp_path / "in"), "--out", Output()],
    )

    # azure-ai-ml's code upload prints a colour reset and a blank line to stderr by itself.
    assert capfd.readouterr() == ("", "")


def test_a_local_input_upload_that_keeps_failing_ends_by_the_submits_timeout(
    emulator: Emulator,
    config: Path,
    source_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # azure-storage-blob's own retry pauses (15 s, then longer) go through mlboot's deadline on
    # the backend's clock: on a FakeClock nothing sleeps for real, and a pause that leaked past
    # the hook would hold this test for minutes.
    from mlboot._backends.azureml_v2._azureml_v2 import AzureMLV2Backend  # noqa: PLC0415

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a\n", encoding="utf-8")
    isolate_v2_sdk(monkeypatch, emulator)
    emulator.add_compute("cpu-cluster")
    clock = FakeClock()
    workspace = mlboot.workspace_from_config(
        config,
        auth=StaticTokenCredential.for_emulator(emulator),
        backend=AzureMLV2Backend(clock=clock),
    )
    emulator.fail("blob.put", 503, times=100_000)
    started = time.monotonic()

    with pytest.raises(WaitTimeoutError) as caught:
        _submit(workspace, source_dir, inputs={"data": Input(tmp_path / "in")}, timeout=60)

    assert time.monotonic() - started < 30, "a retry pause was slept for real"
    # At least storage's first pause (15 s, +-3 s of jitter) went by on the fake clock; a pause
    # that would end past the deadline is not taken at all.
    assert 12 <= clock.monotonic() <= 60 + 1, clock.monotonic()
    assert emulator.count("blob.put") >= 2, "storage's own retry was not reached"
    assert emulator.jobs == {}
    assert caught.value.__cause__ is not None


def test_a_path_ending_in_a_slash_is_a_folder_and_needs_no_storage_access(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.put_datastore_file("workspaceblobstore", "images/a.png", b"png")
    emulator.clear_requests()
    run = _submit(
        workspace,
        source_dir,
        inputs={"x": Input("azureml://datastores/workspaceblobstore/paths/images/")},
    )

    assert _job_inputs(emulator, run)["x"]["jobInputType"] == "uri_folder"
    assert _job_inputs(emulator, run)["x"]["uri"].endswith("/paths/images/")
    heads = [r.params.get("blob_path", "") for r in emulator.requests_to("blob.head")]
    assert [path for path in heads if path.startswith("images")] == []


def test_a_directory_blob_of_a_hierarchical_namespace_is_a_folder(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.put_datastore_file("workspaceblobstore", "images", b"")
    emulator.put_datastore_file("workspaceblobstore", "images/a.png", b"png")
    container = emulator.datastore("workspaceblobstore").container_name
    emulator.set_blob_metadata(f"{container}/images", {"hdi_isfolder": "true"})

    run = _submit(
        workspace,
        source_dir,
        inputs={"x": Input("azureml://datastores/workspaceblobstore/paths/images")},
    )

    assert _job_inputs(emulator, run)["x"]["jobInputType"] == "uri_folder"


def test_a_datastore_this_login_cannot_read_still_submits_as_a_folder_with_a_warning(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    emulator.fail("v2.datastore.secrets", 403, times=10)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", mlboot.exceptions.MlbootWarning)
        run = _submit(
            workspace,
            source_dir,
            inputs={"x": Input("azureml://datastores/workspaceblobstore/paths/images")},
        )

    said = [str(w.message) for w in caught if issubclass(w.category, MlbootWarning)]
    assert [m for m in said if "end the path with '/'" in m] != []
    assert _job_inputs(emulator, run)["x"]["jobInputType"] == "uri_folder"
