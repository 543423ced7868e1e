"""A full or read-only disk under the local workspace: typed errors, and a run that ends Failed.

A real small tmpfs is mounted for these tests, which needs root (CI runs as root); elsewhere
they are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import mlboot
from mlboot import LocalBackend, RunStatus
from mlboot.exceptions import LocalStorageError, RunFailedError

CONFIG = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-local",
    "workspace_name": "ws-local",
}
DEADLINE = 60.0


def _mount(target: Path, options: str) -> None:
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8); CI runs as root")
    done = subprocess.run(  # noqa: S603  (mount(8) with fixed arguments)
        [mount, "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _unmount(target: Path) -> None:
    umount = shutil.which("umount")
    assert umount is not None
    subprocess.run([umount, "-l", str(target)], check=False, timeout=30)  # noqa: S603


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount(disk, "size=512k")
    try:
        yield disk
    finally:
        _unmount(disk)


def _workspace(tmp_path: Path, root: Path) -> mlboot.Workspace:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")
    return mlboot.workspace_from_config(config, backend=LocalBackend(root))


@pytest.mark.reliability("disk")
def test_a_script_that_fills_the_disk_ends_failed_saying_the_disk_is_full_and_where(
    tmp_path: Path, small_disk: Path
) -> None:
    workspace = _workspace(tmp_path, small_disk / ".mlboot")
    pool = mlboot.get_or_create_compute_target(
        workspace, "cpu", vm_size="Standard_DS3_v2", max_nodes=1
    )
    project = tmp_path / "src"
    project.mkdir()
    (project / "train.py").write_text(
        "import sys\nfor i in range(200_000):\n    print('x' * 100, i)\n", encoding="utf-8"
    )

    run = mlboot.submit_script(
        workspace, "train.py", compute=pool, experiment="disk", source_directory=project
    )

    with pytest.raises(RunFailedError) as failed:
        run.wait(timeout=DEADLINE)
    message = str(failed.value)
    assert "the disk is full" in message
    assert str(small_disk) in message  # where
    assert run.status() is RunStatus.FAILED  # recorded, and read back without a raw OSError

    # The next submit on the full disk is a typed error naming the place, not a bare OSError.
    with pytest.raises(LocalStorageError) as refused:
        mlboot.submit_script(
            workspace, "train.py", compute=pool, experiment="disk", source_directory=project
        )
    assert isinstance(refused.value, OSError)
    assert str(small_disk) in str(refused.value)


@pytest.mark.reliability("disk")
def test_a_read_only_workspace_folder_is_a_typed_error_on_every_call_that_writes(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    view = tmp_path / "view"
    disk.mkdir()
    view.mkdir()
    workspace = _workspace(tmp_path, disk / ".mlboot")
    pool = mlboot.get_or_create_compute_target(
        workspace, "cpu", vm_size="Standard_DS3_v2", max_nodes=1
    )
    project = tmp_path / "src"
    project.mkdir()
    (project / "train.py").write_text("print('hi')\n", encoding="utf-8")
    run = mlboot.submit_script(
        workspace, "train.py", compute=pool, experiment="ro", source_directory=project
    )
    assert run.wait(timeout=DEADLINE) is RunStatus.COMPLETED
    _mount_read_only_view(disk, view)
    try:
        # Opening the workspace records it, which needs writing: refused, named, typed.
        with pytest.raises(LocalStorageError) as refused:
            _workspace(tmp_path, view / ".mlboot")
        assert isinstance(refused.value, OSError)
        assert "read-only" in str(refused.value)
        assert str(view) in str(refused.value)
        assert "Fix: make it writable" in str(refused.value)
    finally:
        _unmount(view)


def _mount_read_only_view(source: Path, view: Path) -> None:
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("a read-only bind mount needs root and mount(8); CI runs as root")
    for arguments in (["--bind", str(source), str(view)], ["-o", "remount,bind,ro", str(view)]):
        done = subprocess.run(  # noqa: S603  (mount(8) with fixed arguments)
            [mount, *arguments], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            _unmount(view)
            pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
