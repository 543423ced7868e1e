"""The local supervisor under a failing disk: every run still ends, saying what and where.

Faults (full disk, read-only file system, used-up quota, failing disk) are injected into the
supervisor process itself: the test starts it through a bootstrap that first replaces a file
primitive with one that refuses the paths a rule names, the way the disk would.  Whatever the
supervisor cannot write (``status.json``, the script's log, the working folders, the outputs it
collects), the run reaches a final status that says the disk's problem and the path; when even
the final status cannot be written anywhere, ``Run.status`` and ``Run.wait`` raise a
:class:`~mlboot.exceptions.LocalStorageError` naming it, within their time-out.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import time
from pathlib import Path
from typing import NoReturn

import pytest

import mlboot
import mlboot._backends.local._local as local_backend
from local_runs import local_workspace, run_folder, submit_local
from mlboot import RunStatus
from mlboot._backends.local._local_supervisor import BOOTSTRAP, RunFolder, supervisor_alive
from mlboot.exceptions import LocalStorageError, RunFailedError

DEADLINE = 60.0
FAULTS_VARIABLE = "MLBOOT_TEST_SUPERVISOR_FAULTS"


def injector(rules: str) -> str:
    """Code that installs the faults of ``rules``, a Python expression giving their JSON."""
    return f"""\
import fnmatch as _fnmatch, json as _json, os as _os, pathlib as _pathlib

def _refusing(original, pattern, code):
    def refuse(*args, **kwargs):
        path = args[0] if args else None
        if isinstance(path, (str, _pathlib.PurePath)) and _fnmatch.fnmatch(str(path), pattern):
            raise OSError(code, _os.strerror(code), str(path))
        return original(*args, **kwargs)
    return refuse

for _owner, _name, _pattern, _code in _json.loads({rules}):
    _home = _pathlib.Path if _owner == "Path" else _os
    setattr(_home, _name, _refusing(getattr(_home, _name), _pattern, _code))
"""


INJECT = injector(f"_os.environ.pop({FAULTS_VARIABLE!r}, '[]')")
"""Run before the supervisor's bootstrap: the rules are (owner, function, path glob, errno)."""

SCRIPT = """\
import mlboot
mlboot.log_metric("loss", 0.5)
mlboot.output_dir().joinpath("model.txt").write_text("weights")
print("trained")
"""
REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "is read-only",
    errno.EDQUOT: "the disk quota is used up",
    errno.EIO: "failed to read or write (input/output error)",
}
STATUS_WRITE = ("Path", "write_text", "*/.status.json.*.tmp")
# Each fault: the rules, and the file the final status must name.
FAULTS: dict[str, tuple[list[tuple[str, str, str]], str]] = {
    "status.json": ([STATUS_WRITE], "status.json"),
    "log-open": ([("Path", "open", "*/std_log.txt")], "std_log.txt"),
    "log-full": ([("os", "open", "*/.std_log.txt.room-*")], "std_log.txt"),
    "working-folders": ([("Path", "mkdir", "*/wd/outputs")], "outputs"),
    "outputs-collection": ([("Path", "rename", "*/wd/outputs")], "outputs"),
    "log-and-status": (
        [("os", "open", "*/.std_log.txt.room-*"), STATUS_WRITE],
        "status.json",  # the first file the disk refused
    ),
}

pytestmark = pytest.mark.reliability("disk-supervisor")


@pytest.fixture
def faulty_supervisor(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(local_backend, "BOOTSTRAP", INJECT + BOOTSTRAP)
    return monkeypatch


def _submit(
    config_file: Path,
    tmp_path: Path,
    rules: list[tuple[str, str, str]],
    code: int,
    script: str = SCRIPT,
) -> mlboot.Run:
    """Submit ``script``; the supervisor (if ``faulty_supervisor`` is used) gets the faults."""
    workspace = local_workspace(config_file, tmp_path / "ws")
    with pytest.MonkeyPatch.context() as patched:
        patched.setenv(FAULTS_VARIABLE, json.dumps([[*rule, code] for rule in rules]))
        return submit_local(workspace, tmp_path / "src", script, experiment="faults")


@pytest.mark.parametrize("code", list(REASONS), ids=errno.errorcode.__getitem__)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_disk_fault_in_the_supervisor_ends_the_run_failed_saying_what_and_where(
    faulty_supervisor: pytest.MonkeyPatch,
    config_file: Path,
    tmp_path: Path,
    fault: str,
    code: int,
) -> None:
    rules, named = FAULTS[fault]
    run = _submit(config_file, tmp_path, rules, code)

    started = time.monotonic()
    with pytest.raises(RunFailedError) as failed:
        run.wait(timeout=DEADLINE)
    assert time.monotonic() - started < DEADLINE

    message = str(failed.value)
    assert REASONS[code] in message
    assert f"{named}'" in message  # the path, quoted
    assert "Fix:" in message
    assert run.status() is RunStatus.FAILED
    # Every public read still answers.
    run.logs()
    run.metrics()


def test_a_final_status_no_disk_takes_is_a_typed_error_naming_it_within_the_timeout(
    faulty_supervisor: pytest.MonkeyPatch,
    config_file: Path,
    tmp_path: Path,
) -> None:
    reserve = ("os", "open", "*/status.reserve")
    run = _submit(config_file, tmp_path, [STATUS_WRITE, reserve], errno.ENOSPC)
    folder = run_folder(run)
    supervisor_log = folder / "supervisor_log.txt"

    def ended() -> bool:
        said = "the final status could not be recorded" in supervisor_log.read_text("utf-8")
        return said and not supervisor_alive(RunFolder(folder))

    deadline = time.monotonic() + DEADLINE
    while not ended():
        assert time.monotonic() < deadline, supervisor_log.read_text("utf-8")
        time.sleep(0.05)

    # The same disk, seen from the caller: the status cannot be recorded here either.
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]))

    original_open = os.open

    def refuse_reserve(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith("status.reserve"):
            refuse(path)
        return original_open(path, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(pathlib.Path, "write_text", refuse)
        patched.setattr(os, "open", refuse_reserve)
        for call in (run.status, lambda: run.wait(timeout=5)):
            started = time.monotonic()
            with pytest.raises(LocalStorageError) as refused:
                call()
            assert time.monotonic() - started < 5
            assert "the disk is full" in str(refused.value)
            assert str(folder / "status.json") in str(refused.value)

    # Once the disk has room again, the run is settled as ended, saying what the disk refused.
    with pytest.raises(RunFailedError) as failed:
        run.wait(timeout=DEADLINE)
    assert "the disk is full" in str(failed.value)
    assert str(folder / "status.json") in str(failed.value)


@pytest.mark.parametrize("code", list(REASONS), ids=errno.errorcode.__getitem__)
def test_metrics_the_disk_refuses_end_the_run_failed_saying_what_and_where(
    config_file: Path, tmp_path: Path, code: int
) -> None:
    # Metrics are written by the script's own process: the fault is injected there.
    rules = json.dumps([["Path", "open", "*/metrics.jsonl", code]])
    script = injector(repr(rules)) + SCRIPT
    run = _submit(config_file, tmp_path, [], code, script)

    with pytest.raises(RunFailedError) as failed:
        run.wait(timeout=DEADLINE)

    message = str(failed.value)
    assert "mlboot.log_metric: recording 'loss' failed" in message
    assert REASONS[code] in message
    assert "metrics.jsonl'" in message
    assert run.metrics() == {}
