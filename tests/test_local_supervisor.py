"""The local supervisor's own module: what it imports, its clock-free helpers, waking waiters."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mlboot
from mlboot import _script_api
from mlboot._backends.local import _local_supervisor as supervisor
from mlboot._backends.local._local_supervisor import ExitWatch, RunFolder, wait_for_change

DEADLINE = 30.0  # a woken waiter returns at once; this only bounds a broken one


@pytest.fixture
def folder(tmp_path: Path) -> RunFolder:
    path = tmp_path / "runs" / "exp_1700000000_0123abcd"
    path.mkdir(parents=True)
    run = RunFolder(path)
    run.write_status("Running")
    return run


def fifos(folder: RunFolder) -> list[str]:
    return sorted(path.name for path in folder.waiters.iterdir()) if folder.waiters.exists() else []


class Waiter:
    """``wait_for_change`` in a thread, as another process's ``Run.wait`` would call it."""

    def __init__(self, folder: RunFolder, status: str, seconds: float = DEADLINE) -> None:
        self.slept: list[float] = []
        self.thread = threading.Thread(
            target=wait_for_change, args=(folder, status, seconds), kwargs={"sleep": self.sleep}
        )
        self.thread.start()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def returned(self) -> bool:
        self.thread.join(DEADLINE)
        return not self.thread.is_alive()


@pytest.fixture
def waiters() -> Iterator[list[Waiter]]:
    started: list[Waiter] = []
    yield started
    for waiter in started:  # never leave a thread behind, whatever the test did
        waiter.thread.join(DEADLINE)


def wait_for_fifos(folder: RunFolder, count: int) -> None:
    """Until ``count`` waiters have their FIFO in place: each makes it at once, then blocks."""
    deadline = time.monotonic() + DEADLINE
    while len([name for name in fifos(folder) if not name.startswith(".")]) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{count} waiters never made their FIFOs: {fifos(folder)}")


# -- what the supervisor costs to start -----------------------------------------------------------


def test_the_supervisor_loads_without_the_rest_of_mlboot() -> None:
    # The supervisor is a fresh interpreter per run: everything it imports is paid per run.
    package = Path(mlboot.__file__).parent
    check = (
        "modules = set(sys.modules)\n"
        "print(sorted(m for m in modules if m.split('.')[0] == 'mlboot'))\n"
        "print(sorted(modules & {'attr', 'attrs', 'logging', 'typing', 'datetime', 'secrets',\n"
        "                        'shutil', 'traceback', 'tempfile', 'hashlib'}))\n"
        "print(hasattr(sys.modules['mlboot'], '__file__'))\n"
    )
    result = subprocess.run(  # noqa: S603  (our own interpreter, our own code)
        [sys.executable, "-S", "-c", supervisor.LOADER + check, "", "", str(package)],
        capture_output=True,
        text=True,
        check=True,
        timeout=DEADLINE,
    )
    mlboot_modules, heavy, init_ran = result.stdout.splitlines()
    assert mlboot_modules == (
        "['mlboot', 'mlboot._backends', 'mlboot._backends.local', "
        "'mlboot._backends.local._local_supervisor', 'mlboot._localio', 'mlboot._spellings', "
        "'mlboot.exceptions']"
    )
    assert heavy == "[]"
    assert init_ran == "False"  # mlboot/__init__.py was never executed
    assert supervisor.BOOTSTRAP.endswith(
        supervisor.LOADER + "sys.exit(supervise(sys.argv[1], int(sys.argv[2])))\n"
    )


def test_its_copies_of_the_script_api_constants_agree() -> None:
    assert supervisor.RUN_DIR_VARIABLE == _script_api.RUN_DIR_VARIABLE
    assert supervisor.OUTPUTS_FOLDER == _script_api.OUTPUTS_FOLDER


def test_now_is_utc_iso_8601_with_milliseconds_as_before() -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    stamp = supervisor.now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert before <= parsed <= dt.datetime.now(dt.timezone.utc)


# -- noticing that the script ended --------------------------------------------------------------


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_exit_watch_tells_a_running_script_from_an_ended_one(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        with ExitWatch(process) as exited:
            assert not exited(0)  # it is reading its stdin: it cannot have ended
            assert process.stdin is not None
            process.stdin.close()
            assert exited(DEADLINE)  # returns when it ends, not after DEADLINE
            assert process.returncode == 0
    finally:
        process.kill()
        process.wait()


# -- waking waiters ------------------------------------------------------------------------------


def test_a_waiter_returns_as_soon_as_the_status_changes(
    folder: RunFolder, waiters: list[Waiter]
) -> None:
    waiter = Waiter(folder, "Running")
    waiters.append(waiter)
    wait_for_fifos(folder, 1)

    folder.write_status("Finalizing")

    assert waiter.returned()  # long before its DEADLINE-second pause
    assert waiter.slept == []
    assert fifos(folder) == []  # it removed its FIFO


def test_every_waiter_is_woken_and_a_final_status_leaves_no_fifo_behind(
    folder: RunFolder, waiters: list[Waiter]
) -> None:
    waiters.extend(Waiter(folder, "Running") for _ in range(3))
    wait_for_fifos(folder, 3)

    folder.write_status("Completed")

    assert fifos(folder) == []  # removed by the writer, since nothing changes after this
    assert all(waiter.returned() for waiter in waiters)


def test_a_waiter_returns_at_once_when_the_status_already_changed(folder: RunFolder) -> None:
    slept: list[float] = []
    wait_for_change(folder, "Queued", DEADLINE, sleep=slept.append)  # it is Running already
    assert slept == []
    assert fifos(folder) == []


def test_a_fifo_nobody_reads_is_removed_and_other_files_are_left_alone(folder: RunFolder) -> None:
    folder.waiters.mkdir()
    os.mkfifo(folder.waiters / "12345-deadbeef")  # its waiter was killed in its pause
    (folder.waiters / "notes.txt").write_text("not a FIFO\n")
    os.mkfifo(folder.waiters / ".12345-cafef00d")  # a waiter about to open it

    folder.write_status("Running", script_pid=1)

    assert fifos(folder) == [".12345-cafef00d", "notes.txt"]
    assert (folder.waiters / "notes.txt").read_text() == "not a FIFO\n"


def test_without_a_fifo_a_waiter_checks_the_status_then_sleeps(folder: RunFolder) -> None:
    folder.waiters.write_text("a file where the folder should be\n")  # mkdir fails
    slept: list[float] = []

    wait_for_change(folder, "Running", 2.5, sleep=slept.append)
    assert slept == [2.5]

    wait_for_change(folder, "Queued", 2.5, sleep=slept.append)
    assert slept == [2.5]  # it had changed: no sleep


def test_a_damaged_status_file_ends_the_pause_for_the_next_read_to_report(
    folder: RunFolder,
) -> None:
    folder.status_file.write_text("{not json", encoding="utf-8")
    slept: list[float] = []
    wait_for_change(folder, "Running", DEADLINE, sleep=slept.append)
    assert slept == []


def test_a_pause_of_zero_returns_without_touching_the_folder(folder: RunFolder) -> None:
    wait_for_change(folder, "Running", 0)
    assert not folder.waiters.exists()


def test_a_final_status_also_removes_fifos_not_yet_opened_and_the_empty_folder(
    folder: RunFolder,
) -> None:
    folder.waiters.mkdir()
    os.mkfifo(folder.waiters / ".12345-cafef00d")  # its waiter was killed before opening it

    folder.write_status("Canceled")

    assert not folder.waiters.exists()


def test_a_status_file_without_a_status_reads_as_not_started_for_the_waiter(
    folder: RunFolder,
) -> None:
    folder.status_file.write_text("{}\n", encoding="utf-8")  # as get_run_status reads it
    folder.waiters.write_text("a file where the folder should be\n")  # the sleeping path
    slept: list[float] = []

    wait_for_change(folder, "NotStarted", 2.5, sleep=slept.append)

    assert slept == [2.5]  # the same status: a full pause, not a busy loop


def _open_descriptors() -> set[str]:
    fds = Path("/proc/self/fd")
    return {path.name for path in fds.iterdir()} if fds.is_dir() else set()


def test_a_waiter_that_cannot_remove_its_fifo_still_returns_and_closes_it(
    folder: RunFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_before = _open_descriptors()

    def refuse(self: Path, **_: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)  # the folder was made read-only meanwhile
    wait_for_change(folder, "Queued", DEADLINE)  # it is Running: returns after its first read
    monkeypatch.undo()

    assert _open_descriptors() <= open_before
    assert len(fifos(folder)) == 1  # left behind, for the final status to remove
