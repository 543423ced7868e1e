"""Data on the local backend: datastores are folders; real scripts read inputs, write outputs."""

from __future__ import annotations

import http.server
import json
import os
import socket
import stat
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import mlboot
from local_runs import POOL, SIZE, run_folder
from mlboot import Input, LocalBackend, Output, RunStatus
from mlboot._backends.local import _local_data
from mlboot.exceptions import InvalidInputError, LocalStorageError, NotFoundError, ServiceError

TIMEOUT = 60.0


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / ".mlboot")


@pytest.fixture
def workspace(config_file: Path, backend: LocalBackend) -> mlboot.Workspace:
    workspace = mlboot.workspace_from_config(config_file, backend=backend)
    mlboot.get_or_create_compute_target(workspace, POOL, vm_size=SIZE, max_nodes=1)
    return workspace


@pytest.fixture
def store(backend: LocalBackend) -> Path:
    """Datastore ``training_data``, holding images/a.txt and images/sub/b.txt."""
    folder = backend.add_datastore("training_data")
    (folder / "images" / "sub").mkdir(parents=True)
    (folder / "images" / "a.txt").write_text("A", encoding="utf-8")
    (folder / "images" / "sub" / "b.txt").write_text("B", encoding="utf-8")
    return folder


def run_script(
    workspace: mlboot.Workspace, tmp_path: Path, script: str, **data: object
) -> mlboot.Run:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    text = textwrap.dedent(READ_TREE) + textwrap.dedent(script)
    (project / "train.py").write_text(text, encoding="utf-8")
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute=POOL,
        experiment="data",
        source_directory=project,
        **data,  # type: ignore[arg-type]  # arguments/inputs/outputs, as each test needs
    )


def finished(run: mlboot.Run) -> dict[str, object]:
    """Wait for the run to complete; what its script wrote to ``seen.json`` in its folder."""
    assert run.wait(timeout=TIMEOUT, poll_interval=0.05) is RunStatus.COMPLETED, run.logs()
    return json.loads((run_folder(run) / "wd" / "seen.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# What the scripts below share: read a tree, try to write into it, say what happened.
READ_TREE = """\
    import json, os, pathlib, stat, sys

    def tree(path):
        path = pathlib.Path(path)
        files = [p for p in sorted(path.rglob("*")) if p.is_file()]
        return {p.relative_to(path).as_posix(): p.read_text() for p in files}

    def try_write(path):
        path = pathlib.Path(path)
        try:
            path.write_text("overwritten")
        except OSError as error:
            return type(error).__name__
        return "written"

    def write_bits(path):
        top = pathlib.Path(path)
        return [oct(p.stat().st_mode & 0o222) for p in [top, *top.rglob("*")]]

    def report(**values):
        pathlib.Path("seen.json").write_text(json.dumps(values))
    """


def test_a_mounted_input_is_a_read_only_copy_that_never_writes_through(
    workspace: mlboot.Workspace, tmp_path: Path, store: Path
) -> None:
    run = run_script(
        workspace,
        tmp_path,
        """
        images = sys.argv[2]
        report(arg=images, env=os.environ["MLBOOT_INPUT_input_0"], files=tree(images),
               bits=sorted(set(write_bits(images))), write=try_write(pathlib.Path(images, "a.txt")))
        """,
        arguments=["--images", Input("azureml://datastores/training_data/paths/images")],
    )
    seen = finished(run)
    assert seen["arg"] == seen["env"] == str(run_folder(run) / "inputs" / "input_0")
    assert seen["files"] == {"a.txt": "A", "sub/b.txt": "B"}
    assert seen["bits"] == ["0o0"]  # no write bit on any file or folder of the copy
    # Only root writes to a file without write bits, and then only to the run's copy.
    assert seen["write"] == ("written" if os.geteuid() == 0 else "PermissionError")
    assert (store / "images" / "a.txt").read_text(encoding="utf-8") == "A"
    # Once the run ended, its folder can be removed again.
    assert (run_folder(run) / "inputs" / "input_0").stat().st_mode & stat.S_IWUSR


def test_a_downloaded_input_is_a_writable_copy(
    workspace: mlboot.Workspace, tmp_path: Path, store: Path
) -> None:
    run = run_script(
        workspace,
        tmp_path,
        """
        path = os.environ["MLBOOT_INPUT_one"]
        report(path=path, files=tree(pathlib.Path(path).parent), write=try_write(path))
        """,
        inputs={
            "one": Input("azureml://datastores/training_data/paths/images/a.txt", mode="download")
        },
    )
    seen = finished(run)
    assert seen["path"] == str(run_folder(run) / "inputs" / "one" / "a.txt")
    assert seen["files"] == {"a.txt": "A"}
    assert seen["write"] == "written"
    assert (store / "images" / "a.txt").read_text(encoding="utf-8") == "A"


def test_a_local_folder_input_is_uploaded_then_copied_like_a_datastore_input(
    workspace: mlboot.Workspace, tmp_path: Path, backend: LocalBackend
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("1,2", encoding="utf-8")
    run = run_script(
        workspace,
        tmp_path,
        "report(files=tree(sys.argv[1]))\n",
        arguments=[Input(data, mode="download")],
    )
    assert finished(run)["files"] == {"x.csv": "1,2"}
    uploaded = backend.datastore_folder() / "mlboot" / "inputs"
    assert [p.name for p in uploaded.glob("sha256-*.complete")] != []


def test_a_missing_datastore_path_fails_the_submit_and_no_run_is_made(
    workspace: mlboot.Workspace, tmp_path: Path, store: Path, backend: LocalBackend
) -> None:
    data = tmp_path / "fresh"
    data.mkdir()
    (data / "x.csv").write_text("1,2", encoding="utf-8")
    with pytest.raises(
        NotFoundError,
        match=r"^inputs\['x'\]\.source='azureml://datastores/training_data/paths/nothing/here': "
        r"'nothing/here' does not exist",
    ):
        run_script(
            workspace,
            tmp_path,
            "print('never')\n",
            arguments=[Input(data)],
            inputs={"x": Input("azureml://datastores/training_data/paths/nothing/here")},
        )
    assert backend.run_ids() == []
    assert not (backend.root / "incoming").exists()  # the backend never started on the run
    # Checked before the upload of the other input: nothing was written to the datastore.
    assert not (backend.datastore_folder() / "mlboot").exists()


def test_a_datastore_that_was_never_made_is_refused_above_the_seam(
    workspace: mlboot.Workspace, tmp_path: Path, backend: LocalBackend
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        run_script(
            workspace,
            tmp_path,
            "print('never')\n",
            outputs={"m": Output("azureml://datastores/elsewhere/paths/m")},
        )
    assert caught.value.field == "outputs['m'].destination"
    assert backend.run_ids() == []


def test_a_link_in_a_datastore_path_is_refused_before_the_script_starts(
    workspace: mlboot.Workspace, tmp_path: Path, store: Path, backend: LocalBackend
) -> None:
    (tmp_path / "outside").mkdir()
    (store / "linked").symlink_to(tmp_path / "outside")
    with pytest.raises(LocalStorageError, match="never writes through a symbolic link"):
        run_script(
            workspace,
            tmp_path,
            "print('never')\n",
            inputs={"x": Input("azureml://datastores/training_data/paths/linked")},
        )
    assert backend.run_ids() == []


def test_uploaded_outputs_land_in_the_datastore_once_the_script_has_ended(
    workspace: mlboot.Workspace, tmp_path: Path, store: Path
) -> None:
    run = run_script(
        workspace,
        tmp_path,
        """
        out = pathlib.Path(sys.argv[2])
        (out / "deep").mkdir()
        (out / "model.txt").write_text("weights")
        (out / "deep" / "log.txt").write_text("log")
        os.symlink("/etc/hostname", out / "leak")
        os.mkfifo(out / "pipe")
        landed = pathlib.Path(sys.argv[4].replace("RUN_ID", os.environ["AZUREML_RUN_ID"]))
        report(during=landed.exists(), out=str(out))
        """,
        arguments=[
            "--out",
            Output("azureml://datastores/training_data/paths/models/{run-id}"),
            "--landed",
            str(store / "models" / "RUN_ID"),
        ],
    )
    seen = finished(run)
    assert seen["during"] is False
    assert seen["out"] == str(run_folder(run) / "data_outputs" / "output_0")
    landed = store / "models" / run.id
    files = {p.relative_to(landed).as_posix() for p in landed.rglob("*") if not p.is_dir()}
    assert files == {"model.txt", "deep/log.txt"}  # the link and the pipe are left out
    assert (landed / "model.txt").read_text(encoding="utf-8") == "weights"
    assert "left out" in (run_folder(run) / "supervisor_log.txt").read_text(encoding="utf-8")


def test_an_upload_into_an_existing_folder_replaces_files_of_the_same_name_only(
    workspace: mlboot.Workspace, tmp_path: Path, store: Path
) -> None:
    (store / "shared").mkdir()
    (store / "shared" / "keep.txt").write_text("old", encoding="utf-8")
    (store / "shared" / "model.txt").write_text("old", encoding="utf-8")
    run = run_script(
        workspace,
        tmp_path,
        "pathlib.Path(sys.argv[1], 'model.txt').write_text('new')\nreport()\n",
        arguments=[Output("azureml://datastores/training_data/paths/shared")],
    )
    finished(run)
    assert (store / "shared" / "model.txt").read_text(encoding="utf-8") == "new"
    assert (store / "shared" / "keep.txt").read_text(encoding="utf-8") == "old"


def test_a_mounted_output_is_written_in_place_while_the_script_runs(
    workspace: mlboot.Workspace, tmp_path: Path, store: Path
) -> None:
    target = store / "live"
    run = run_script(
        workspace,
        tmp_path,
        """
        out = pathlib.Path(os.environ["MLBOOT_OUTPUT_live"])
        (out / "step.txt").write_text("1")
        report(out=str(out), there=(pathlib.Path(sys.argv[1]) / "step.txt").exists())
        """,
        arguments=[str(target)],
        outputs={"live": Output("azureml://datastores/training_data/paths/live", mode="mount")},
    )
    seen = finished(run)
    assert seen == {"out": str(target), "there": True}


def test_a_default_output_goes_under_the_run_in_the_default_datastore(
    workspace: mlboot.Workspace, tmp_path: Path, backend: LocalBackend
) -> None:
    run = run_script(
        workspace,
        tmp_path,
        "pathlib.Path(os.environ['MLBOOT_OUTPUT_model'], 'm.txt').write_text('w')\nreport()\n",
        outputs={"model": Output()},
    )
    finished(run)
    landed = backend.datastore_folder() / "dataset" / run.id / "model" / "m.txt"
    assert landed.read_text(encoding="utf-8") == "w"


def test_placeholders_in_arguments_become_the_paths(
    workspace: mlboot.Workspace, tmp_path: Path, store: Path
) -> None:
    run = run_script(
        workspace,
        tmp_path,
        "report(args=sys.argv[1:])\n",
        arguments=["--data=${{inputs.images}}", "--out=${{outputs.model}}/best"],
        inputs={"images": Input("azureml://datastores/training_data/paths/images")},
        outputs={"model": Output()},
    )
    folder = run_folder(run)
    assert finished(run)["args"] == [
        f"--data={folder / 'inputs' / 'images'}",
        f"--out={folder / 'data_outputs' / 'model'}/best",
    ]


def test_registered_datasets_are_refused_saying_why(
    workspace: mlboot.Workspace, tmp_path: Path, backend: LocalBackend
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        run_script(workspace, tmp_path, "print()\n", inputs={"d": Input("azureml:images:1")})
    assert "no registered datasets" in caught.value.rule
    assert "Input(<folder>)" in caught.value.fix
    assert backend.run_ids() == []


# -- URLs ------------------------------------------------------------------------------------------


class _Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/d/table.csv":
            self.send_error(404)
            return
        body = b"a,b\n1,2\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (its name)
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_input_is_downloaded_before_the_script_starts(
    workspace: mlboot.Workspace, tmp_path: Path, http_base: str
) -> None:
    run = run_script(
        workspace,
        tmp_path,
        "report(text=pathlib.Path(os.environ['MLBOOT_INPUT_t']).read_text())\n",
        inputs={"t": Input(f"{http_base}/d/table.csv", mode="download")},
    )
    assert finished(run)["text"] == "a,b\n1,2\n"


def test_a_url_that_fails_fails_the_submit(
    workspace: mlboot.Workspace, tmp_path: Path, http_base: str, backend: LocalBackend
) -> None:
    with pytest.raises(ServiceError, match=r"downloading .*/missing.csv failed") as caught:
        run_script(
            workspace,
            tmp_path,
            "print()\n",
            inputs={"t": Input(f"{http_base}/missing.csv", mode="download")},
        )
    assert caught.value.status == 404
    assert not caught.value.transient
    assert backend.run_ids() == []


def test_a_silent_server_fails_the_download_at_its_time_out(
    workspace: mlboot.Workspace,
    tmp_path: Path,
    backend: LocalBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_local_data, "URL_TIMEOUT_SECONDS", 0.2)
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(ServiceError, match="timed out") as caught:
            run_script(
                workspace,
                tmp_path,
                "print()\n",
                inputs={"t": Input(f"http://127.0.0.1:{port}/x.csv", mode="download")},
            )
    assert caught.value.transient
    assert backend.run_ids() == []
