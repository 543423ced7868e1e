"""Links never lead out of a run: outputs, downloads, snapshots, and the workspace folder itself.

Real symbolic links, real FIFOs (``os.mkfifo``) and sockets, and real local runs of tiny scripts
in their own processes (the supervisor's), each bounded by ``DEADLINE`` seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlboot
from mlboot import LocalBackend, RunStatus, Workspace, plan_snapshot, submit_script
from mlboot._backends.local._local_supervisor import RunFolder, _collect_outputs, try_lock
from mlboot._links import check_destination, collect_outputs, download_tree
from mlboot._snapshot import LOCAL_WORKSPACE_MARKER, materialize_snapshot
from mlboot.exceptions import (
    AbandonedRunError,
    InvalidInputError,
    LocalStorageError,
    MlbootWarning,
    NotFoundError,
    SnapshotLinkError,
)
from mlboot.testing import FakeClock

DEADLINE = 30.0
NAMES = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-links",
    "workspace_name": "ws-links",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository root holding config.json: the local workspace is ``project/.mlboot``."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(NAMES), encoding="utf-8")
    return folder


@pytest.fixture
def workspace(project: Path) -> Workspace:
    return mlboot.workspace_from_config(
        project / "config.json", backend=LocalBackend(project / ".mlboot")
    )


@pytest.fixture
def backend(workspace: Workspace) -> LocalBackend:
    assert isinstance(workspace.backend, LocalBackend)
    return workspace.backend


@pytest.fixture
def pool(workspace: Workspace) -> mlboot.ComputeTarget:
    return mlboot.get_or_create_compute_target(
        workspace, "cpu", vm_size="Standard_DS3_v2", max_nodes=2
    )


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every run and project, with a file nobody may be handed."""
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not yours", encoding="utf-8")
    return secret.parent


class Runner:
    """Submits tiny scripts as ``train.py`` of the project, to the local pool."""

    def __init__(self, workspace: Workspace, pool: mlboot.ComputeTarget, source: Path) -> None:
        self.workspace = workspace
        self.pool = pool
        self.source = source

    def submit(self, script: str) -> mlboot.Run:
        (self.source / "train.py").write_text(textwrap.dedent(script), encoding="utf-8")
        return submit_script(
            self.workspace,
            "train.py",
            compute=self.pool,
            experiment="links",
            source_directory=self.source,
        )

    def complete(self, script: str) -> mlboot.Run:
        """Submit ``script`` and wait for it to complete."""
        run = self.submit(script)
        assert run.wait(timeout=DEADLINE, poll_interval=0.05) is RunStatus.COMPLETED
        return run


@pytest.fixture
def runner(workspace: Workspace, pool: mlboot.ComputeTarget, project: Path) -> Runner:
    return Runner(workspace, pool, project)


def tree(folder: Path) -> dict[str, str]:
    """Every entry below ``folder`` and what it is, never following a link."""
    kinds = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "link"}
    return {
        path.relative_to(folder).as_posix(): kinds.get(stat.S_IFMT(path.lstat().st_mode), "other")
        for path in folder.rglob("*")
    }


# -- collecting outputs: real runs ----------------------------------------------------------------


@pytest.mark.reliability("links")
def test_outputs_made_a_link_to_a_folder_linking_dev_zero_ends_at_once_and_follows_nothing(
    runner: Runner,
    backend: LocalBackend,
    project: Path,
    tmp_path: Path,
) -> None:
    trap = tmp_path / "trap"
    run = runner.complete(
        f"""\
        import os, shutil
        os.makedirs({str(trap)!r}, exist_ok=True)
        os.symlink("/dev/zero", {str(trap / "zero")!r})
        shutil.rmtree("outputs", ignore_errors=True)
        os.symlink({str(trap)!r}, "outputs")
        """,
    )

    outputs = backend.run_folder(run.id) / "outputs"
    assert outputs.is_dir()
    assert not outputs.is_symlink()
    assert tree(outputs) == {}
    assert "outputs: a symbolic link" in run.logs()
    assert tree(trap) == {"zero": "link"}  # nothing written there, nothing removed
    with pytest.warns(MlbootWarning, match=r"outputs: a symbolic link"):
        assert run.download_outputs(tmp_path / "got") == []


@pytest.mark.reliability("links")
def test_links_pipes_and_sockets_in_outputs_are_left_out_and_only_regular_files_kept(
    runner: Runner,
    backend: LocalBackend,
    project: Path,
    outside: Path,
    tmp_path: Path,
) -> None:
    run = runner.complete(
        f"""\
        import os, socket
        os.makedirs("outputs/sub", exist_ok=True)
        open("outputs/model.txt", "w").write("weights")
        open("outputs/sub/report.txt", "w").write("report")
        os.symlink({str(outside / "secret.txt")!r}, "outputs/secret.txt")
        os.symlink("/dev/zero", "outputs/sub/zero")
        os.symlink({str(outside)!r}, "outputs/elsewhere")
        os.mkfifo("outputs/pipe")
        server = socket.socket(socket.AF_UNIX)
        server.bind("outputs/sock")
        """,
    )

    folder = backend.run_folder(run.id)
    assert tree(folder / "outputs") == {
        "model.txt": "file",
        "sub": "dir",
        "sub/report.txt": "file",
    }
    status = json.loads((folder / "status.json").read_text(encoding="utf-8"))
    assert status["outputs_left_out_count"] == 5
    left_out = " ".join(status["outputs_left_out"])
    assert f"secret.txt: a symbolic link (to {str(outside / 'secret.txt')!r})" in left_out
    assert "sub/zero: a symbolic link (to '/dev/zero')" in left_out
    assert "pipe: a named pipe (FIFO)" in left_out
    assert "sock: a socket" in left_out
    assert tree(outside) == {"secret.txt": "file"}

    with pytest.warns(MlbootWarning, match=r"5 entries left out"):
        written = run.download_outputs(tmp_path / "got")
    assert written == [
        tmp_path / "got" / "outputs" / "model.txt",
        tmp_path / "got" / "outputs" / "sub" / "report.txt",
    ]


@pytest.mark.reliability("links")
def test_a_link_the_script_puts_at_the_run_folder_s_outputs_is_removed_not_written_through(
    runner: Runner,
    backend: LocalBackend,
    project: Path,
    outside: Path,
) -> None:
    run = runner.complete(
        f"""\
        import os
        os.symlink({str(outside)!r}, os.path.join(os.environ["MLBOOT_RUN_DIR"], "outputs"))
        os.makedirs("outputs", exist_ok=True)
        open("outputs/model.txt", "w").write("weights")
        """,
    )

    outputs = backend.run_folder(run.id) / "outputs"
    assert not outputs.is_symlink()
    assert tree(outputs) == {"model.txt": "file"}
    assert tree(outside) == {"secret.txt": "file"}


# -- collecting outputs: the bounds ---------------------------------------------------------------


def make_outputs(folder: Path, files: int) -> Path:
    source = folder / "wd" / "outputs"
    (source / "deep").mkdir(parents=True)
    for index in range(files):
        (source / "deep" / f"f{index}").write_text("x", encoding="utf-8")
    return source


@pytest.mark.reliability("links")
def test_more_entries_than_the_bound_collect_nothing_and_say_so(tmp_path: Path) -> None:
    source = make_outputs(tmp_path, 10)

    done = collect_outputs(source, tmp_path / "outputs", max_entries=5)

    assert done.error is not None
    assert "more than 5 files and folders" in done.error
    assert str(source) in done.error
    assert tree(tmp_path / "outputs") == {}
    assert len(tree(source)) == 11  # left where the script wrote it


@pytest.mark.reliability("links")
def test_a_collection_over_its_time_bound_stops_with_an_error(tmp_path: Path) -> None:
    source = make_outputs(tmp_path, 200)
    clock = FakeClock()

    def slow() -> float:
        clock.sleep(1.0)  # every look at the clock costs a second
        return clock.monotonic()

    done = collect_outputs(source, tmp_path / "outputs", max_seconds=2.5, clock=slow)

    assert done.error is not None
    assert "took too long" in done.error
    assert tree(tmp_path / "outputs") == {}


@pytest.mark.reliability("links")
def test_folders_nested_too_deep_are_refused_not_walked_for_ever(tmp_path: Path) -> None:
    source = tmp_path / "wd" / "outputs"
    deep = source
    for _ in range(110):
        deep /= "d"
    deep.mkdir(parents=True)

    done = collect_outputs(source, tmp_path / "outputs")

    assert done.error is not None
    assert "deeper than 100 levels" in done.error


@pytest.mark.reliability("links")
def test_a_cancel_during_collection_stops_it_and_the_run_is_canceled(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    make_outputs(folder.path, 500)
    folder.cancel_marker.touch()

    error, canceled = _collect_outputs(folder, stoppable=True)

    assert (error, canceled) == (None, True)
    assert tree(folder.outputs) == {}
    # A run canceled before collection still has its outputs collected.
    error, canceled = _collect_outputs(folder, stoppable=False)
    assert (error, canceled) == (None, False)
    assert len(tree(folder.outputs)) == 501


@pytest.mark.reliability("links")
def test_a_sparse_terabyte_costs_nothing_to_collect(tmp_path: Path) -> None:
    source = tmp_path / "wd" / "outputs"
    source.mkdir(parents=True)
    with (source / "huge.bin").open("wb") as huge:
        huge.truncate(1024**4)

    done = collect_outputs(source, tmp_path / "outputs")

    assert (done.error, done.left_out) == (None, [])
    assert (tmp_path / "outputs" / "huge.bin").stat().st_size == 1024**4


# -- downloading ----------------------------------------------------------------------------------


@pytest.fixture
def finished(runner: Runner) -> mlboot.Run:
    return runner.complete(
        """\
        import os
        os.makedirs("outputs/sub", exist_ok=True)
        open("outputs/model.txt", "w").write("weights")
        open("outputs/sub/report.txt", "w").write("report")
        """,
    )


@pytest.mark.reliability("links")
@pytest.mark.parametrize("where", ["outputs", "outputs/sub", "outputs/model.txt"])
def test_a_link_in_the_destination_is_refused_by_name_and_nothing_is_written_through_it(
    finished: mlboot.Run, tmp_path: Path, outside: Path, where: str
) -> None:
    destination = tmp_path / "got"
    link = destination / where
    link.parent.mkdir(parents=True, exist_ok=True)
    target = outside / "secret.txt" if where.endswith(".txt") else outside
    link.symlink_to(target)

    with pytest.raises(LocalStorageError, match="never writes through a symbolic link") as caught:
        finished.download_outputs(destination)

    assert caught.value.filename == str(link)
    assert str(link) in str(caught.value)
    assert isinstance(caught.value, OSError)
    assert tree(outside) == {"secret.txt": "file"}
    assert (outside / "secret.txt").read_text(encoding="utf-8") == "not yours"
    assert not (destination / "outputs" / "model.txt").is_file() or where != "outputs"


@pytest.mark.reliability("links")
def test_a_fifo_in_the_destination_is_refused_without_blocking(
    finished: mlboot.Run, tmp_path: Path
) -> None:
    destination = tmp_path / "got"
    (destination / "outputs").mkdir(parents=True)
    os.mkfifo(destination / "outputs" / "model.txt")

    with pytest.raises(LocalStorageError, match="named pipe"):
        finished.download_outputs(destination)


@pytest.mark.reliability("links")
def test_a_link_left_in_a_run_s_outputs_is_never_copied(
    finished: mlboot.Run, backend: LocalBackend, outside: Path, tmp_path: Path
) -> None:
    # As a process the script left running could, after its outputs were collected.
    outputs = backend.run_folder(finished.id) / "outputs"
    (outputs / "shadow").symlink_to(outside / "secret.txt")
    (outputs / "sub" / "all").symlink_to(outside)
    os.mkfifo(outputs / "pipe")

    with pytest.warns(MlbootWarning, match=r"shadow: a symbolic link") as caught:
        written = finished.download_outputs(tmp_path / "got")

    message = str(caught[0].message)
    assert "sub/all: a symbolic link" in message
    assert "pipe: a named pipe" in message
    assert written == [
        tmp_path / "got" / "outputs" / "model.txt",
        tmp_path / "got" / "outputs" / "sub" / "report.txt",
    ]
    assert tree(tmp_path / "got" / "outputs") == {
        "model.txt": "file",
        "sub": "dir",
        "sub/report.txt": "file",
    }


@pytest.mark.reliability("links")
def test_a_run_s_outputs_folder_swapped_for_a_link_downloads_nothing(
    tmp_path: Path, outside: Path
) -> None:
    (tmp_path / "outputs").symlink_to(outside)

    done = download_tree(tmp_path / "outputs", tmp_path / "got", "outputs")

    assert done.written == []
    assert done.skipped == [f"outputs: a symbolic link (to {str(outside)!r})"]


def test_check_destination_allows_missing_and_real_paths(tmp_path: Path) -> None:
    (tmp_path / "outputs" / "a").mkdir(parents=True)
    (tmp_path / "outputs" / "a" / "f").write_text("old", encoding="utf-8")

    check_destination(tmp_path, ["outputs/a/f", "outputs/b/c/d", "outputs/"])

    with pytest.raises(LocalStorageError, match="not a folder"):
        check_destination(tmp_path, ["outputs/a/f/under"])


# -- snapshots: links -----------------------------------------------------------------------------


@pytest.mark.reliability("links")
def test_a_link_leading_out_of_the_source_is_refused_naming_it_and_its_target(
    project: Path, outside: Path
) -> None:
    (project / "train.py").write_text("", encoding="utf-8")
    (project / "data").symlink_to(outside)

    with pytest.raises(SnapshotLinkError) as caught:
        plan_snapshot(project)

    assert isinstance(caught.value, InvalidInputError)
    assert (caught.value.link, caught.value.target) == ("data", str(outside))
    assert "'data'" in str(caught.value)
    assert str(outside) in str(caught.value)
    assert "/data" in caught.value.fix


@pytest.mark.reliability("links")
def test_a_link_out_is_refused_by_the_local_backend_before_any_run_exists(
    runner: Runner,
    backend: LocalBackend,
    project: Path,
    outside: Path,
) -> None:
    (project / "secret.txt").symlink_to(outside / "secret.txt")

    with pytest.raises(SnapshotLinkError, match=r"secret\.txt"):
        runner.submit("print('never')\n")

    assert backend.run_ids() == []
    assert not list((backend.root / "runs").iterdir())


def test_an_ignored_link_out_is_harmless(project: Path, outside: Path) -> None:
    (project / "data").symlink_to(outside)
    (project / ".amlignore").write_text("/data\n", encoding="utf-8")

    assert plan_snapshot(project).links == ()


def test_a_link_inside_the_source_is_copied_as_its_target_s_contents(
    runner: Runner,
    backend: LocalBackend,
    project: Path,
) -> None:
    (project / "lib").mkdir()
    (project / "lib" / "helpers.py").write_text("X = 1\n", encoding="utf-8")
    (project / "helpers.py").symlink_to("lib/helpers.py")
    (project / "alias").symlink_to("lib", target_is_directory=True)

    plan = plan_snapshot(project)
    assert plan.links == (("alias", "lib"), ("helpers.py", "lib/helpers.py"))

    run = runner.complete("import helpers\nprint(helpers.X)\n")
    wd = backend.run_folder(run.id) / "wd"
    assert tree(wd)["helpers.py"] == "file"
    assert tree(wd)["alias/helpers.py"] == "file"
    assert "link" not in tree(wd).values()


@pytest.mark.reliability("links")
def test_a_file_changed_into_a_link_out_after_planning_is_refused(
    project: Path, outside: Path, tmp_path: Path
) -> None:
    (project / "train.py").write_text("", encoding="utf-8")
    plan = plan_snapshot(project)
    (project / "train.py").unlink()
    (project / "train.py").symlink_to(outside / "secret.txt")

    with pytest.raises(SnapshotLinkError, match="changed after the snapshot was planned"):
        materialize_snapshot(plan, tmp_path / "copy")


# -- snapshots: the workspace folder --------------------------------------------------------------


@pytest.mark.reliability("workspace")
def test_the_workspace_folder_at_the_source_root_is_never_copied_even_when_negated(
    runner: Runner,
    backend: LocalBackend,
    project: Path,
) -> None:
    first = runner.complete("print('first')\n")
    # A live waiter's FIFO, as Run.wait leaves while it waits.
    waiters = backend.run_folder(first.id) / "waiters"
    for _ in range(100):
        waiters.mkdir(exist_ok=True)
        try:
            os.mkfifo(waiters / "12345-abcd")
            break
        except FileNotFoundError:  # the last waiter of the first run removed the folder meanwhile
            continue
    assert (waiters / "12345-abcd").is_fifo()
    (project / ".amlignore").write_text("!.mlboot\n!.mlboot/**\n", encoding="utf-8")
    (project / ".gitignore").write_text("!.mlboot\n", encoding="utf-8")

    plan = plan_snapshot(project)
    assert plan.left_out == (".mlboot",)
    assert not any(name.startswith(".mlboot") for name in plan.files)

    second = runner.complete("import os\nprint(sorted(os.listdir('.')))\n")
    assert ".mlboot" not in tree(backend.run_folder(second.id) / "wd")
    assert "'.mlboot'" not in second.logs()


@pytest.mark.reliability("workspace")
def test_a_workspace_folder_of_any_name_is_recognised_by_its_marker(
    project: Path, tmp_path: Path
) -> None:
    backend = LocalBackend(project / "state" / "local")
    mlboot.workspace_from_config(project / "config.json", backend=backend)
    assert (backend.root / LOCAL_WORKSPACE_MARKER).is_file()
    (project / "train.py").write_text("", encoding="utf-8")
    (project / "runs_alias").symlink_to("state/local/runs", target_is_directory=True)

    plan = plan_snapshot(project)

    assert plan.left_out == ("runs_alias", "state/local")
    assert plan.files == ("config.json", "train.py")
    with pytest.raises(InvalidInputError, match="local workspace folder"):
        plan_snapshot(backend.root)


@pytest.mark.reliability("links")
@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_a_pipe_or_socket_in_the_source_is_refused_by_name(
    project: Path, tmp_path: Path, kind: str
) -> None:
    (project / "train.py").write_text("", encoding="utf-8")
    special = project / "special"
    if kind == "fifo":
        os.mkfifo(special)
    else:
        # Bound through a short relative name: AF_UNIX paths are limited to about 100 bytes.
        server = socket.socket(socket.AF_UNIX)
        cwd = Path.cwd()
        os.chdir(project)
        try:
            server.bind("special")
        finally:
            os.chdir(cwd)
    try:
        with pytest.raises(InvalidInputError, match=r"'special'.*(named pipe|socket)"):
            plan_snapshot(project)
    finally:
        if kind == "socket":
            server.close()


# -- abandoned run folders ------------------------------------------------------------------------


@pytest.mark.reliability("abandoned")
def test_a_submitter_killed_while_copying_leaves_no_run_and_the_next_submit_cleans_up(
    runner: Runner, workspace: Workspace, backend: LocalBackend, project: Path
) -> None:
    (project / "train.py").write_text("print('hello')\n", encoding="utf-8")
    code = f"""\
        import os, signal
        import mlboot, mlboot._snapshot as snapshot
        real = snapshot.materialize_snapshot
        def copy_then_die(plan, destination, **options):
            real(plan, destination, **options)
            os.kill(os.getpid(), signal.SIGKILL)
        snapshot.materialize_snapshot = copy_then_die
        workspace = mlboot.workspace_from_config(
            {str(project / "config.json")!r}, backend=mlboot.LocalBackend({str(backend.root)!r})
        )
        mlboot.submit_script(
            workspace, "train.py", compute="cpu", experiment="killed",
            source_directory={str(project)!r},
        )
        """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLBOOT_", "AZUREML_"))}
    result = subprocess.run(  # noqa: S603  (our own interpreter, our own code)
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        timeout=DEADLINE,
        env=env,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    (left,) = (backend.root / "incoming").iterdir()
    assert (left / "wd" / "train.py").is_file()
    assert backend.run_ids() == []
    with pytest.raises(NotFoundError):
        mlboot.get_run(workspace, left.name)

    run = runner.complete("print('hello')\n")

    assert not left.exists()
    assert backend.run_ids() == [run.id]


@pytest.mark.reliability("abandoned")
def test_a_preparation_still_locked_by_a_live_submitter_is_kept(
    runner: Runner, backend: LocalBackend, project: Path
) -> None:
    busy = backend.root / "incoming" / "busy_1_00000000"
    busy.mkdir(parents=True)
    lock = try_lock(RunFolder(busy).lock_file)
    assert lock is not None
    young = backend.root / "incoming" / "young_1_00000000"  # made, not locked yet
    young.mkdir()
    try:
        run = runner.submit("print('ok')\n")
        assert busy.is_dir()
        assert young.is_dir()
    finally:
        os.close(lock)
    assert run.wait(timeout=DEADLINE, poll_interval=0.05) is RunStatus.COMPLETED


@pytest.mark.reliability("abandoned")
def test_a_run_folder_without_run_json_is_not_a_run(
    workspace: Workspace, backend: LocalBackend
) -> None:
    stale = backend.root / "runs" / "exp_1700000000_deadbeef"
    (stale / "wd").mkdir(parents=True)

    assert backend.run_ids() == []
    with pytest.raises(
        AbandonedRunError, match=r"no run\.json.*abandoned.*delete that folder"
    ) as caught:
        mlboot.get_run(workspace, stale.name)
    assert isinstance(caught.value, NotFoundError)
    assert caught.value.path == str(stale)
    with pytest.raises(AbandonedRunError):
        backend.run_folder(stale.name)
