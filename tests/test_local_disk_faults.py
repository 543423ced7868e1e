"""Every public call on a local run answers a failing disk with an mlboot error, never a bare one.

The failure is injected (full disk, read-only file system, used-up quota, failing disk) into each
file primitive the local backend reads or writes through, one at a time, while a public call
runs on a finished run; the run, read again once the disk works, is unharmed.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, NoReturn

import pytest

import mlboot
from mlboot import LocalBackend, RunStatus
from mlboot.exceptions import LocalStorageError, MlbootError

CONFIG = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-local",
    "workspace_name": "ws-local",
}
SCRIPT = """\
import pathlib
import mlboot
mlboot.log_metric("loss", 0.5)
mlboot.output_dir().joinpath("model.txt").write_text("weights")
print("trained")
"""
ERRNOS = {
    "full": errno.ENOSPC,
    "read-only": errno.EROFS,
    "quota": errno.EDQUOT,
    "io-error": errno.EIO,
}
# Where the failure is injected: the file primitives the local backend goes through.
PRIMITIVES: dict[str, tuple[object, str]] = {
    "Path.read_text": (pathlib.Path, "read_text"),
    "Path.write_text": (pathlib.Path, "write_text"),
    "Path.open": (pathlib.Path, "open"),
    "Path.iterdir": (pathlib.Path, "iterdir"),
    "Path.mkdir": (pathlib.Path, "mkdir"),
    "Path.replace": (pathlib.Path, "replace"),
    "Path.touch": (pathlib.Path, "touch"),
    "Path.stat": (pathlib.Path, "stat"),
    "os.open": (os, "open"),
    "os.scandir": (os, "scandir"),
    "shutil.copy2": (shutil, "copy2"),
}


class Finished(NamedTuple):
    workspace: mlboot.Workspace
    run: mlboot.Run


CALLS: dict[str, Callable[[Finished, Path], object]] = {
    "Run.status": lambda done, _: done.run.status(),
    "Run.wait": lambda done, _: done.run.wait(timeout=5),
    "Run.logs": lambda done, _: done.run.logs(),
    "Run.metrics": lambda done, _: done.run.metrics(),
    "Run.download_outputs": lambda done, place: done.run.download_outputs(place / "download"),
    "Run.cancel": lambda done, _: done.run.cancel(),
    "get_run": lambda done, _: mlboot.get_run(done.workspace, done.run.id),
    "list_runs": lambda done, _: mlboot.list_runs(done.workspace),
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    place = tmp_path_factory.mktemp("disk-faults")
    config = place / "config.json"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")
    workspace = mlboot.workspace_from_config(config, backend=LocalBackend(place / ".mlboot"))
    pool = mlboot.get_or_create_compute_target(
        workspace, "cpu", vm_size="Standard_DS3_v2", max_nodes=1
    )
    project = place / "src"
    project.mkdir()
    (project / "train.py").write_text(SCRIPT, encoding="utf-8")
    run = mlboot.submit_script(
        workspace, "train.py", compute=pool, experiment="faults", source_directory=project
    )
    assert run.wait(timeout=60) is RunStatus.COMPLETED
    return Finished(workspace, run)


def _raised(action: Callable[[], object]) -> BaseException | None:
    try:
        action()
    except Exception as exc:  # noqa: BLE001  (the test asserts what it is)
        return exc
    return None


@pytest.mark.reliability("disk")
@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("where", [f"{p}:{f}" for p in PRIMITIVES for f in ERRNOS])
def test_every_public_call_on_a_local_run_raises_an_mlboot_error_when_the_disk_fails(
    finished: Finished,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    where: str,
) -> None:
    primitive, fault = where.split(":")
    code = ERRNOS[fault]

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise OSError(code, os.strerror(code), str(tmp_path / "refused"))

    owner, name = PRIMITIVES[primitive]
    with monkeypatch.context() as patched:
        patched.setattr(owner, name, refuse)
        raised = _raised(lambda: CALLS[call](finished, tmp_path))

    # Success, or an mlboot error; a file error is a LocalStorageError saying why and the fix.
    assert raised is None or isinstance(raised, MlbootError), repr(raised)
    if isinstance(raised, LocalStorageError):
        assert isinstance(raised, OSError)
        assert raised.errno == code
        assert "Fix:" in str(raised)

    # Nothing was damaged: once the disk works again the run reads back as it ended.
    assert finished.run.status() is RunStatus.COMPLETED
    assert finished.run.metrics() == {"loss": [0.5]}


@pytest.mark.reliability("disk")
def test_list_runs_on_an_unreadable_workspace_says_the_disk_failed_and_where(
    finished: Finished, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path) -> NoReturn:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(self))

    monkeypatch.setattr(pathlib.Path, "iterdir", refuse)
    with pytest.raises(LocalStorageError) as failed:
        mlboot.list_runs(finished.workspace)
    message = str(failed.value)
    assert message.startswith("listing the local runs failed: the disk holding")
    assert str(finished.workspace.backend.root) in message  # type: ignore[attr-defined]
    assert "input/output error" in message
