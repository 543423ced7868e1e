"""The local backend, end to end: real processes running small scripts written by each test."""

from __future__ import annotations

import io
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

import mlboot
from mlboot import (
    Environment,
    LocalBackend,
    Run,
    RunStatus,
    Workspace,
    get_run,
    plan_snapshot,
    submit_script,
)
from mlboot._backends._seam import StatusChangeWaiter
from mlboot._backends.local._local import default_root, requirement_problems
from mlboot._config import load_config
from mlboot.backend import Backend
from mlboot.exceptions import (
    AbandonedRunError,
    ComputeMismatchError,
    InvalidInputError,
    MlbootWarning,
    NotFoundError,
    RunFailedError,
)
from mlboot.testing import FakeBackend

T = TypeVar("T")

CONFIG = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-local",
    "workspace_name": "ws-local",
}
POOL = "cpu-pool"
SIZE = "Standard_DS3_v2"
DEADLINE = 30.0  # every wait in this file is bounded by this many seconds


def poll(probe: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """The first truthy value of ``probe()``, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state not in {"Z", "X"}


def is_queued(run: Run) -> bool:
    return run.status() is RunStatus.QUEUED


def finish(run: Run, timeout: float = DEADLINE) -> RunStatus:
    return run.wait(timeout=timeout, poll_interval=0.05)


def write_project(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def submit_train(
    workspace: Workspace,
    pool: mlboot.ComputeTarget,
    project: Path,
    *,
    experiment: str = "e",
    **options: Any,
) -> Run:
    """Submit ``project``'s ``train.py`` to ``pool``, with ``submit_script``'s other options."""
    return submit_script(
        workspace,
        "train.py",
        compute=pool,
        experiment=experiment,
        source_directory=project,
        **options,
    )


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLBOOT_", "AZUREML_"))}


def python(code: str, *args: str, timeout: float = DEADLINE) -> str:
    """Run ``code`` in a fresh interpreter (another process, as another user session would)."""
    return interpreter("-c", textwrap.dedent(code), *args, timeout=timeout)


def interpreter(*args: str, cwd: Path | None = None, timeout: float = DEADLINE) -> str:
    """The output of a fresh interpreter run with ``args``, which must succeed."""
    result = subprocess.run(  # noqa: S603  (our own interpreter, our own code)
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / ".mlboot"


@pytest.fixture
def workspace(config_path: Path, root: Path) -> Workspace:
    return mlboot.workspace_from_config(config_path, backend=LocalBackend(root))


@pytest.fixture
def pool(workspace: Workspace) -> mlboot.ComputeTarget:
    return mlboot.get_or_create_compute_target(workspace, POOL, vm_size=SIZE, max_nodes=2)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A file whose creation lets waiting scripts finish; created at teardown in any case."""
    path = tmp_path / "go"
    yield path
    path.touch()


WAIT_FOR_GATE = """\
import sys, time
from pathlib import Path
gate = Path(sys.argv[1])
deadline = time.monotonic() + 60
while not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
print("released")
"""


# -- the seam ----------------------------------------------------------------------------------


def test_local_backend_satisfies_the_backend_protocol(tmp_path: Path) -> None:
    backend: Backend = LocalBackend(tmp_path / "ws")  # type-checked: a Protocol, not a base class
    assert backend.clock.monotonic() <= backend.clock.monotonic()
    assert repr(backend) == f"LocalBackend({str(tmp_path / 'ws')!r})"
    assert not (tmp_path / "ws").exists()  # nothing is written before it is used


def test_the_default_root_is_dot_mlboot_beside_the_project_config(tmp_path: Path) -> None:
    assert default_root(tmp_path / "config.json") == tmp_path / ".mlboot"
    assert default_root(tmp_path / ".azureml" / "config.json") == tmp_path / ".mlboot"
    assert default_root(None) == Path.cwd() / ".mlboot"


# -- compute targets are local pools -----------------------------------------------------------


def test_a_pool_is_created_once_ready_at_once_and_compared_like_a_cluster(
    workspace: Workspace, root: Path
) -> None:
    created = mlboot.get_or_create_compute_target(workspace, POOL, vm_size=SIZE, max_nodes=2)
    assert created.provisioning_state == "Succeeded"
    assert created.max_nodes == 2
    again = mlboot.get_or_create_compute_target(workspace, POOL, vm_size=SIZE, max_nodes=2)
    assert again == created
    assert json.loads((root / "computes" / f"{POOL}.json").read_text())["max_nodes"] == 2

    with pytest.raises(ComputeMismatchError) as mismatch:
        mlboot.get_or_create_compute_target(workspace, POOL, vm_size=SIZE, max_nodes=3)
    assert mismatch.value.differences == {"max_nodes": (3, 2)}

    updated = mlboot.get_or_create_compute_target(
        workspace, POOL, vm_size=SIZE, max_nodes=3, on_mismatch="update"
    )
    assert updated.max_nodes == 3
    assert workspace.backend.get_compute(workspace.ref, POOL.upper()) is not None  # any case


def test_a_pool_file_in_azure_mls_words_reads_in_mlboots(workspace: Workspace, root: Path) -> None:
    # Pools written by earlier versions spell the priority as Azure ML does.
    mlboot.get_or_create_compute_target(
        workspace, POOL, vm_size=SIZE, max_nodes=2, vm_priority="lowpriority"
    )
    file = root / "computes" / f"{POOL}.json"
    assert json.loads(file.read_text())["vm_priority"] == "lowpriority"
    file.write_text(json.dumps({**json.loads(file.read_text()), "vm_priority": "LowPriority"}))

    found = workspace.backend.get_compute(workspace.ref, POOL)

    assert found is not None
    assert found.vm_priority == "lowpriority"


def test_the_snapshot_is_planned_once_above_the_seam_and_handed_down(
    workspace: Workspace,
    pool: mlboot.ComputeTarget,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlboot import _snapshot, _submit  # noqa: PLC0415

    write_project(project, {"train.py": "print('planned once')\n"})
    plans: list[Path] = []
    real_plan = _snapshot.plan_snapshot

    def counting_plan(root: Path) -> _snapshot.SnapshotPlan:
        plans.append(root)
        return real_plan(root)

    monkeypatch.setattr(_submit, "plan_snapshot", counting_plan)
    monkeypatch.setattr(_snapshot, "plan_snapshot", counting_plan)

    run = submit_script(
        workspace, "train.py", compute=pool, experiment="e", source_directory=project
    )

    assert finish(run) is RunStatus.COMPLETED
    assert plans == [project]
    assert "planned once" in run.logs()


def test_submitting_to_a_missing_pool_is_not_found(workspace: Workspace, project: Path) -> None:
    write_project(project, {"train.py": "print('never')\n"})
    with pytest.raises(NotFoundError, match="does not exist in the local workspace"):
        submit_script(
            workspace, "train.py", compute="nope", experiment="e", source_directory=project
        )


def test_unknown_and_malicious_run_ids_are_not_found(
    workspace: Workspace, pool: mlboot.ComputeTarget
) -> None:
    for run_id in ("exp_1_deadbeef", "../computes", "a/b"):
        with pytest.raises(NotFoundError):
            get_run(workspace, run_id)


def test_a_distributed_job_is_refused_before_anything_starts(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path, root: Path
) -> None:
    write_project(project, {"train.py": "print('never')\n"})
    with pytest.raises(InvalidInputError, match="one process on one node"):
        submit_train(
            workspace,
            pool,
            project,
            node_count=2,
            distribution=mlboot.PyTorchDistribution(process_count_per_node=2),
        )
    assert list((root / "runs").iterdir()) == []


# -- runs --------------------------------------------------------------------------------------

TRAIN = """\
import sys
from pathlib import Path
import mlboot

epochs = int(sys.argv[sys.argv.index("--epochs") + 1])
print("arguments:", sys.argv[1:])
for epoch in range(epochs):
    loss = 1.0 / (epoch + 1)
    mlboot.log_metric("loss", loss, step=epoch)
    print(f"epoch {epoch}: loss {loss:.3f}")
mlboot.log_metric("accuracy", 0.9)
print("warning on stderr", file=sys.stderr)
outputs = mlboot.output_dir()
(outputs / "model.txt").write_text("weights")
(outputs / "sub").mkdir()
(outputs / "sub" / "report.txt").write_text("report")
"""


def test_a_run_copies_exactly_the_snapshot_and_completes_with_logs_metrics_and_outputs(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path, tmp_path: Path
) -> None:
    write_project(
        project,
        {
            "train.py": TRAIN,
            "lib/helpers.py": "X = 1\n",
            "data/big.bin": "not for upload\n",
            "notes.tmp": "scratch\n",
            ".amlignore": "data/\n*.tmp\n",
        },
    )
    run = submit_train(workspace, pool, project, experiment="local-test", arguments=["--epochs", 3])
    assert isinstance(workspace.backend, LocalBackend)
    run_dir = workspace.backend.run_folder(run.id)
    assert run_dir == workspace.backend.root / "runs" / run.id
    assert run.portal_url == run_dir.as_uri()
    assert run.id.startswith("local-test_")

    assert finish(run) is RunStatus.COMPLETED

    copied = sorted(
        p.relative_to(run_dir / "wd").as_posix() for p in (run_dir / "wd").rglob("*") if p.is_file()
    )
    assert copied == list(plan_snapshot(project).files)
    assert copied == [".amlignore", "lib/helpers.py", "train.py"]

    logs = run.logs()
    assert "arguments: ['--epochs', '3']" in logs
    assert "epoch 2: loss 0.333" in logs
    assert "warning on stderr" in logs
    assert run.metrics() == {"loss": [1.0, 0.5, 1 / 3], "accuracy": [0.9]}

    downloaded = run.download_outputs(tmp_path / "downloads")
    assert downloaded == [
        tmp_path / "downloads" / "outputs" / "model.txt",
        tmp_path / "downloads" / "outputs" / "sub" / "report.txt",
    ]
    assert downloaded[0].read_text() == "weights"

    details = workspace.backend.get_run_details(workspace.ref, run.id)
    assert details.status == "Completed"
    assert details.error is None
    assert details.start_time is not None
    assert details.end_time is not None
    assert details.start_time <= details.end_time


def test_a_wait_returns_when_the_run_ends_not_at_its_next_poll(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path
) -> None:
    assert isinstance(workspace.backend, StatusChangeWaiter)
    write_project(project, {"train.py": "print('quick')\n"})
    run = submit_train(workspace, pool, project, experiment="prompt")

    started = time.monotonic()
    assert run.wait(timeout=DEADLINE, poll_interval=DEADLINE - 5) is RunStatus.COMPLETED
    # Polling alone would have paused DEADLINE - 5 s after the first status read.
    assert time.monotonic() - started < (DEADLINE - 5) / 2
    assert "quick" in run.logs()
    waiters = workspace.backend.run_folder(run.id) / "waiters"
    assert not waiters.exists() or not list(waiters.iterdir())


def test_show_output_shows_a_line_while_the_script_still_runs(
    workspace: Workspace,
    pool: mlboot.ComputeTarget,
    project: Path,
    gate: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The script prints, then holds until the gate exists; only the wait's output opens it,
    # so the run can complete only if the line was shown before the script ended.
    script = "print('ready', flush=False)\n" + WAIT_FOR_GATE.replace(
        'print("released")', "sys.exit(0 if gate.exists() else 3)"
    )
    write_project(project, {"train.py": script})

    class OpensTheGate(io.StringIO):
        def write(self, text: str) -> int:
            if "ready" in text:
                gate.touch()
            return super().write(text)

    shown = OpensTheGate()
    monkeypatch.setattr(sys, "stdout", shown)
    run = submit_train(workspace, pool, project, experiment="streamed", arguments=[str(gate)])

    assert run.wait(timeout=DEADLINE, show_output=True, poll_interval=DEADLINE - 5) is (
        RunStatus.COMPLETED
    )
    out = shown.getvalue()
    assert out.index("ready") < out.index(f"Run {run.id} ended Completed")


def test_the_same_training_script_runs_unchanged_outside_any_run(project: Path) -> None:
    write_project(project, {"train.py": TRAIN})
    out = interpreter("train.py", "--epochs", "2", cwd=project)
    assert "epoch 1: loss 0.500" in out
    assert (project / "outputs" / "model.txt").read_text() == "weights"
    assert not list(project.rglob("metrics.jsonl"))


def test_a_crashing_script_ends_failed_with_the_error_and_the_log_tail(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path
) -> None:
    write_project(
        project,
        {
            "train.py": """\
                print("loading data")
                def step():
                    raise ValueError("boom in step 3")
                step()
                """
        },
    )
    run = submit_train(workspace, pool, project)
    with pytest.raises(RunFailedError) as failure:
        finish(run)
    error = failure.value
    assert error.run_id == run.id
    assert error.error is not None
    assert "exited with code 1: ValueError: boom in step 3" in error.error
    assert "loading data" in error.log_tail
    assert any("Traceback" in line for line in error.log_tail)
    assert error.log_tail[-1] == "ValueError: boom in step 3"
    assert run.status() is RunStatus.FAILED


def test_cancel_ends_the_whole_process_tree(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids.json"
    write_project(
        project,
        {
            "train.py": """\
                import json, os, subprocess, sys, time
                child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
                with open(sys.argv[1] + ".tmp", "w") as f:
                    json.dump([os.getpid(), child.pid], f)
                os.replace(sys.argv[1] + ".tmp", sys.argv[1])
                time.sleep(120)
                """
        },
    )
    run = submit_train(workspace, pool, project, arguments=[str(pids)])
    script_pid, child_pid = poll(lambda: pids.exists() and json.loads(pids.read_text()), "pids")
    assert alive(script_pid)
    assert alive(child_pid)
    assert run.status() is RunStatus.RUNNING

    run.cancel()
    # At once, before the supervisor's next look at the marker: never Running any more.
    assert run.status() in {RunStatus.CANCEL_REQUESTED, RunStatus.CANCELED}
    assert finish(run) is RunStatus.CANCELED
    assert not alive(script_pid)
    assert not alive(child_pid)
    run.cancel()  # canceling a finished run changes nothing
    assert run.status() is RunStatus.CANCELED


def test_processes_a_finished_script_left_behind_are_ended(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path
) -> None:
    write_project(
        project,
        {
            "train.py": """\
                import subprocess, sys
                child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
                print("left behind:", child.pid)
                """
        },
    )
    run = submit_train(workspace, pool, project)
    assert finish(run) is RunStatus.COMPLETED
    child_pid = int(run.logs().split("left behind:")[1].split()[0])
    assert not alive(child_pid)


def test_a_run_over_its_maximum_duration_is_canceled(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path
) -> None:
    write_project(project, {"train.py": "import time\nprint('start')\ntime.sleep(60)\n"})
    run = submit_train(workspace, pool, project, max_run_duration=1)
    started = time.monotonic()
    assert finish(run) is RunStatus.CANCELED
    assert time.monotonic() - started < 10
    error = workspace.backend.get_run_details(workspace.ref, run.id).error
    assert error is not None
    assert "max_run_duration_seconds=1" in error


def test_a_dead_supervisor_fails_the_run_and_takes_its_processes_down(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path, gate: Path
) -> None:
    write_project(
        project,
        {
            "train.py": "import subprocess, sys\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
            "print('child', child.pid, flush=True)\n" + WAIT_FOR_GATE
        },
    )
    run = submit_train(workspace, pool, project, arguments=[str(gate)])
    assert isinstance(workspace.backend, LocalBackend)
    status_file = workspace.backend.run_folder(run.id) / "status.json"

    def running() -> dict[str, object] | None:
        record = json.loads(status_file.read_text())
        return record if record.get("status") == "Running" else None

    record = poll(running, "the run to start")
    supervisor_pid, script_pid = record["supervisor_pid"], record["script_pid"]
    assert isinstance(supervisor_pid, int)
    assert isinstance(script_pid, int)

    def child_announced() -> str | None:
        text = run.logs()
        return text if "child" in text else None

    child_pid = int(poll(child_announced, "the child's pid").split()[1])
    os.kill(supervisor_pid, signal.SIGKILL)
    poll(lambda: not alive(script_pid), "the script to die with its supervisor")

    assert run.status() is RunStatus.FAILED  # reading the status settles the abandoned run
    poll(lambda: not alive(child_pid), "the script's child to be killed")
    with pytest.raises(RunFailedError, match="ended without recording how the run ended"):
        finish(run)


# -- runs outlive their launcher ---------------------------------------------------------------

LAUNCH = """\
import sys
import mlboot
config, root, project, gate = sys.argv[1:]
workspace = mlboot.workspace_from_config(config, backend=mlboot.LocalBackend(root))
pool = mlboot.get_or_create_compute_target(
    workspace, "cpu-pool", vm_size="Standard_DS3_v2", max_nodes=2
)
run = mlboot.submit_script(
    workspace, "train.py", compute=pool, experiment="e", source_directory=project,
    arguments=[gate],
)
print(run.id)
print(sorted(m for m in sys.modules if m.split(".")[0] == "azureml"))
"""

REATTACH = """\
import sys
import mlboot
config, root, run_id = sys.argv[1:]
workspace = mlboot.workspace_from_config(config, backend=mlboot.LocalBackend(root))
run = mlboot.get_run(workspace, run_id)
print(run.status())
print(dict(run.metrics()))
"""


def test_a_run_outlives_its_launcher_and_any_process_reattaches(
    config_path: Path, root: Path, project: Path, gate: Path
) -> None:
    write_project(
        project,
        {"train.py": "import mlboot\nmlboot.log_metric('started', 1)\n" + WAIT_FOR_GATE},
    )
    out = python(LAUNCH, str(config_path), str(root), str(project), str(gate)).splitlines()
    run_id = out[0]
    assert out[1] == "[]"  # the whole local workflow never imported azureml

    # The launcher has exited; the run goes on, and another process finds it by id.
    workspace = mlboot.workspace_from_config(config_path, backend=LocalBackend(root))
    run = get_run(workspace, run_id)
    poll(run.metrics, "the first metric")
    status, metrics = python(REATTACH, str(config_path), str(root), run_id).splitlines()
    assert status == "Running"
    assert metrics == "{'started': [1]}"

    gate.touch()
    assert finish(run) is RunStatus.COMPLETED
    status, _ = python(REATTACH, str(config_path), str(root), run_id).splitlines()
    assert status == "Completed"
    assert "released" in run.logs()


# -- pools: at most max_nodes runs at once, first come first served ----------------------------

RECORD_TIMES = """\
import sys, time
from pathlib import Path
folder = Path(sys.argv[1])
started = time.time()
time.sleep(0.4)
(folder / sys.argv[2]).write_text(f"{started} {time.time()}")
"""

SUBMIT_MANY = """\
import sys
import mlboot
config, root, project, times, count = sys.argv[1:]
workspace = mlboot.workspace_from_config(config, backend=mlboot.LocalBackend(root))
for n in range(int(count)):
    run = mlboot.submit_script(
        workspace, "train.py", compute="cpu-pool", experiment="pool",
        source_directory=project, arguments=[times, f"other-{n}"],
    )
    print(run.id)
"""


def test_a_pool_of_two_never_runs_more_than_two_of_five_runs_from_two_processes(  # noqa: PLR0917  (fixtures)
    config_path: Path,
    root: Path,
    workspace: Workspace,
    pool: mlboot.ComputeTarget,
    project: Path,
    tmp_path: Path,
) -> None:
    times = tmp_path / "times"
    times.mkdir()
    write_project(project, {"train.py": RECORD_TIMES})
    other = subprocess.Popen(  # noqa: S603  (our own interpreter, our own code)
        [
            sys.executable,
            "-c",
            SUBMIT_MANY,
            str(config_path),
            str(root),
            str(project),
            str(times),
            "2",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    runs = [
        submit_train(
            workspace, pool, project, experiment="pool", arguments=[str(times), f"mine-{n}"]
        )
        for n in range(3)
    ]
    stdout, _ = other.communicate(timeout=DEADLINE)
    assert other.returncode == 0
    runs += [get_run(workspace, run_id) for run_id in stdout.split()]
    assert len(runs) == 5

    for run in runs:
        assert finish(run) is RunStatus.COMPLETED
    intervals = [tuple(map(float, p.read_text().split())) for p in times.iterdir()]
    assert len(intervals) == 5
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running, most = 0, 0
    for _, change in events:
        running += change
        most = max(most, running)
    assert most == 2  # never more than the pool's two nodes, and both were used


def test_a_full_pool_queues_runs_and_starts_them_in_submission_order(
    workspace: Workspace, project: Path, tmp_path: Path, gate: Path
) -> None:
    mlboot.get_or_create_compute_target(workspace, "solo-pool", vm_size=SIZE, max_nodes=1)
    starts = tmp_path / "starts"
    write_project(
        project,
        {
            "train.py": "import sys\n"
            "with open(sys.argv[2], 'a') as f:\n"
            "    f.write(sys.argv[3] + '\\n')\n" + WAIT_FOR_GATE,
        },
    )

    def submit(name: str) -> Run:
        return submit_script(
            workspace,
            "train.py",
            compute="solo-pool",
            experiment="queue",
            source_directory=project,
            arguments=[str(gate), str(starts), name],
        )

    first = submit("first")
    poll(lambda: first.status() is RunStatus.RUNNING, "the first run to start")
    second, third, fourth = submit("second"), submit("third"), submit("fourth")
    for run in (second, third, fourth):
        poll(partial(is_queued, run), f"{run.id} to queue")
    assert first.status() is RunStatus.RUNNING

    third.cancel()
    assert finish(third) is RunStatus.CANCELED
    gate.touch()
    for run in (first, second, fourth):
        assert finish(run) is RunStatus.COMPLETED
    assert starts.read_text().split() == ["first", "second", "fourth"]
    assert third.logs() == ""


# -- the environment ---------------------------------------------------------------------------

DUMP_ENVIRONMENT = """\
import json, os, sys
from pathlib import Path
from azureml.core import Run
names = [n for n in os.environ if n.startswith(("AZUREML_", "MLBOOT_"))]
names += ["MY_SETTING", "PYTHONUNBUFFERED"]
Path("outputs").mkdir(exist_ok=True)
Path("outputs/env.json").write_text(json.dumps({
    "variables": {n: os.environ.get(n) for n in names},
    "cwd": os.getcwd(),
    "executable": sys.executable,
    "argv": sys.argv,
    "azureml_context": type(Run.get_context()).__name__,
}))
"""


def test_the_script_gets_the_variables_azure_ml_sets_and_the_environments(
    workspace: Workspace,
    pool: mlboot.ComputeTarget,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A launcher that itself runs inside an Azure ML run must not leak that run's context.
    monkeypatch.setenv("AZUREML_SERVICE_ENDPOINT", "https://westeurope.api.azureml.ms")
    monkeypatch.setenv("AZUREML_RUN_TOKEN", "not-for-the-local-run")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("attrs\n", encoding="utf-8")
    environment = Environment.from_pip_requirements(
        requirements, variables={"MY_SETTING": "42", "PYTHONUNBUFFERED": "0"}
    )
    write_project(project, {"dump.py": DUMP_ENVIRONMENT})
    run = submit_script(
        workspace,
        "dump.py",
        compute=pool,
        experiment="contract",
        source_directory=project,
        arguments=["a b", "--flag"],
        environment=environment,
    )
    assert finish(run) is RunStatus.COMPLETED
    (env_file,) = run.download_outputs(tmp_path / "out")
    seen = json.loads(env_file.read_text())
    assert isinstance(workspace.backend, LocalBackend)
    run_dir = str(workspace.backend.run_folder(run.id))
    assert seen["variables"] == {
        "AZUREML_RUN_ID": run.id,
        "AZUREML_ARM_SUBSCRIPTION": CONFIG["subscription_id"],
        "AZUREML_ARM_RESOURCEGROUP": CONFIG["resource_group"],
        "AZUREML_ARM_WORKSPACE_NAME": CONFIG["workspace_name"],
        "AZUREML_ARM_PROJECT_NAME": "contract",
        "AZUREML_OUTPUT_DIRECTORY": "./outputs",
        "MLBOOT_RUN_DIR": run_dir,
        "MY_SETTING": "42",
        "PYTHONUNBUFFERED": "0",  # the environment's variables win over mlboot's defaults
    }
    assert seen["cwd"] == f"{run_dir}/wd"
    assert seen["executable"] == sys.executable
    assert seen["argv"] == ["dump.py", "a b", "--flag"]
    assert seen["azureml_context"] == "_OfflineRun"  # azureml-core sees no service to call


def test_a_mismatched_environment_is_named_in_one_warning_and_the_run_goes_on(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "attrs>=20\n"
        "mlboot-surely-not-installed==1.0  # a comment\n"
        "packaging<1\n"
        "pytest; python_version < '3'\n"
        "--extra-index-url https://example.org/simple\n",
        encoding="utf-8",
    )
    write_project(project, {"train.py": "print('ran')\n"})
    environment = Environment.from_pip_requirements(requirements, python_version="3.9")
    with pytest.warns(MlbootWarning) as caught:
        run = submit_train(workspace, pool, project, environment=environment)
    (recorded,) = caught.list
    assert recorded.filename == __file__  # shown at the launcher's own line
    warning = str(recorded.message)
    assert "mlboot-surely-not-installed is not installed" in warning
    assert "packaging" in warning
    assert "outside <1" in warning
    assert "it asks for Python 3.9" in warning
    assert "attrs" not in warning
    assert "pytest" not in warning.replace(sys.executable, "")
    assert "-m pip install mlboot-surely-not-installed==1.0 'packaging<1'" in warning
    assert finish(run) is RunStatus.COMPLETED


def test_a_matching_environment_says_nothing(
    workspace: Workspace,
    pool: mlboot.ComputeTarget,
    project: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("attrs>=20\npackaging\n", encoding="utf-8")
    write_project(project, {"train.py": "print('ran')\n"})
    with caplog.at_level(logging.WARNING, logger="mlboot"):
        run = submit_train(
            workspace, pool, project, environment=Environment.from_pip_requirements(requirements)
        )
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert finish(run) is RunStatus.COMPLETED


def test_requirement_problems_reads_requirements_as_pip_does() -> None:
    versions = {"numpy": "1.26.4", "torch": "2.3.1+cu121", "odd": "not-a-version"}
    problems = requirement_problems(
        [
            "# a comment",
            "",
            "--index-url https://example.org/simple",
            "numpy>=1.26,<2  # fine",
            "Torch==2.3.1",  # a local version label still matches ==2.3.1
            "scipy",
            "numpy<1.20; python_version < '3'",  # marker does not apply
            "pkg @ https://example.org/pkg.whl",
            "odd>=1",
            "numpy \\",
            "  <1.0",
        ],
        installed=lambda name: versions.get(name.lower()),
    )
    assert problems == [
        "scipy is not installed (required: scipy)",
        "pkg is not installed (required: pkg @ https://example.org/pkg.whl)",
        "odd not-a-version cannot be compared with 'odd>=1'",
        "numpy 1.26.4 is installed, outside <1.0 (required: numpy   <1.0)",
    ]


# -- choosing the backend ----------------------------------------------------------------------


def test_the_config_key_chooses_the_local_backend_beside_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "project" / ".azureml" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({**CONFIG, "mlboot_backend": "local"}), encoding="utf-8")
    monkeypatch.chdir(tmp_path / "project")
    workspace = mlboot.workspace_from_config()
    assert isinstance(workspace.backend, LocalBackend)
    assert workspace.backend.root == tmp_path / "project" / ".mlboot"
    assert workspace.location == "local"
    assert (tmp_path / "project" / ".mlboot" / "workspace.json").is_file()


def test_mlboot_backend_local_in_the_environment_runs_a_launcher_offline(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLBOOT_BACKEND", "local")
    workspace = mlboot.workspace_from_config(config_path)
    assert isinstance(workspace.backend, LocalBackend)
    assert workspace.backend.root == config_path.parent / ".mlboot"


def test_backend_argument_wins_then_the_config_key_then_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**CONFIG, "mlboot_backend": "local"}), encoding="utf-8")
    monkeypatch.setenv("MLBOOT_BACKEND", "azureml")
    fake = FakeBackend()
    assert mlboot.workspace_from_config(config, backend=fake).backend is fake
    assert isinstance(mlboot.workspace_from_config(config).backend, LocalBackend)
    assert load_config(config, environ={"MLBOOT_BACKEND": "azureml"}).backend == "local"
    config.write_text(json.dumps({**CONFIG, "mlboot_backend": "azureml"}), encoding="utf-8")
    assert load_config(config, environ={"MLBOOT_BACKEND": "local"}).backend == "azureml"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")
    assert load_config(config, environ={"MLBOOT_BACKEND": "local"}).backend == "local"


# -- the README's main job ---------------------------------------------------------------------


def test_the_example_runs_the_whole_workflow_offline_in_its_own_folder(tmp_path: Path) -> None:
    examples = Path(__file__).parent.parent / "examples"
    copy = tmp_path / "examples"
    for name in ("config.json", "launch.py", "src/train.py", "src/requirements.txt"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((examples / name).read_bytes())
    before = set(tmp_path.rglob("*"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(  # noqa: S603  (our own interpreter, the repository's example)
        [sys.executable, str(copy / "launch.py")],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        env=_child_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warning: the environment matches this interpreter
    out = result.stdout
    assert "epoch 12/12" in out  # the streamed log
    run_id = out.split("Run id:   ")[1].split()[0]
    assert "Status:   Completed" in out
    assert "Metric:   loss = " in out
    output = copy / ".mlboot" / "downloads" / run_id / "outputs" / "model.json"
    assert f"Output:   {output}" in out
    assert json.loads(output.read_text())["b"] == pytest.approx(2.0, abs=0.1)
    created = set(tmp_path.rglob("*")) - before - {elsewhere}
    assert created
    assert all(p.is_relative_to(copy / ".mlboot") for p in created)

    # The command it prints last works as printed, from anywhere, with no venv on the PATH.
    (again,) = [line for line in out.splitlines() if line.startswith("Again:    ")]
    shown = subprocess.run(  # noqa: S603  (the command the example printed)
        shlex.split(again.removeprefix("Again:    ")),
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        env={**_child_env(), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert run_id in shown.stdout
    assert "Completed" in shown.stdout


def test_outputs_and_logs_exist_in_the_working_folder_before_the_script_starts(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path, tmp_path: Path
) -> None:
    # As on Azure ML: a script may write outputs/x.csv and logs/x.txt without creating them.
    write_project(
        project,
        {
            "train.py": (
                "import os\n"
                "print('dirs', os.path.isdir('outputs'), os.path.isdir('logs'))\n"
                "with open('outputs/x.csv', 'w') as f:\n"
                "    f.write('a,b\\n')\n"
                "with open('logs/x.txt', 'w') as f:\n"
                "    f.write('noted\\n')\n"
            )
        },
    )
    run = submit_train(workspace, pool, project)

    assert finish(run) is RunStatus.COMPLETED
    assert "dirs True True" in run.logs()
    (csv,) = run.download_outputs(tmp_path / "out")
    assert csv.read_text() == "a,b\n"


def test_a_run_folder_without_run_json_is_abandoned_and_never_listed_as_a_run(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path, root: Path
) -> None:
    runs = root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    old = runs / "e_1700000000_deadbeef"  # left half made in runs/ by an older mlboot
    (old / "wd").mkdir(parents=True)
    (old / "wd" / "train.py").write_text("print('half')\n", encoding="utf-8")

    with pytest.raises(AbandonedRunError, match=r"no run\.json") as caught:
        mlboot.get_run(workspace, old.name)
    assert isinstance(caught.value, NotFoundError)

    write_project(project, {"train.py": "print('ran')\n"})
    run = submit_train(workspace, pool, project)

    assert finish(run) is RunStatus.COMPLETED
    assert [info.run.id for info in mlboot.list_runs(workspace)] == [run.id]
    assert old.exists()  # never deleted behind the user's back: the error says what to do


@pytest.mark.reliability("secrets")
@pytest.mark.parametrize("as_secret", [True, False], ids=["Secret", "secret-looking-name"])
def test_a_secret_variable_reaches_the_script_and_no_file_of_the_workspace(
    workspace: Workspace, pool: mlboot.ComputeTarget, project: Path, root: Path, as_secret: bool
) -> None:
    token = "hf_planted-" + os.urandom(6).hex()
    write_project(
        project,
        {
            "train.py": (
                "import os, sys\n"
                "print('token matches:', os.environ['HF_TOKEN'] == sys.argv[1][::-1])\n"
            )
        },
    )
    environment = Environment.from_docker_image(
        "python:3.11", variables={"HF_TOKEN": mlboot.Secret(token) if as_secret else token}
    )
    assert token not in repr(environment)

    with pytest.warns(MlbootWarning, match="Docker image") as caught:  # not used locally
        run = submit_train(
            workspace,
            pool,
            project,
            environment=environment,
            arguments=[token[::-1]],  # the script checks the value without the test planting it
        )
    assert all(token not in str(w.message) for w in caught.list)

    assert finish(run) is RunStatus.COMPLETED
    assert "token matches: True" in run.logs()
    files = [Path(top, name) for top, _, names in os.walk(root) for name in names]
    assert any(path.name == "run.json" for path in files)  # the scan reached the run folder
    leaked = [path for path in files if path.is_file() and token.encode() in path.read_bytes()]
    assert leaked == []
