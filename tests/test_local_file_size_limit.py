"""A local run that hits a file size limit (RLIMIT_FSIZE, `ulimit -f`) ends honestly.

The limit is per process and inherited: a script may lower its own, and a submitter started
under one hands it to the supervisor and the script.  Whichever it is, the run ends ``Failed``
with an mlboot message saying the limit was hit and in which file, the supervisor is never
killed by ``SIGXFSZ``, and no public call raises a bare :class:`OSError`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlboot
from local_runs import local_workspace, run_folder, submit_local
from mlboot import RunStatus
from mlboot.exceptions import RunFailedError

DEADLINE = 60.0
LIMIT = 1 << 20
WRITE_PAST_LIMIT = """\
with open(mlboot.output_dir() / "big.bin", "wb") as file:
    for _ in range(64):
        file.write(b"x" * 65536)
"""

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)"),
    pytest.mark.reliability("file-size-limit"),
]


def _run(config_file: Path, tmp_path: Path, script: str) -> mlboot.Run:
    workspace = local_workspace(config_file, tmp_path / "ws")
    return submit_local(workspace, tmp_path / "src", textwrap.dedent(script), experiment="fsize")


def _failure(run: mlboot.Run) -> str:
    with pytest.raises(RunFailedError) as failed:
        run.wait(timeout=DEADLINE)
    assert run.status() is RunStatus.FAILED
    return str(failed.value)


def test_a_script_that_lowers_its_limit_then_writes_a_big_output_fails_naming_the_file(
    config_file: Path, tmp_path: Path
) -> None:
    run = _run(
        config_file,
        tmp_path,
        "import resource, mlboot\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))\n" + WRITE_PAST_LIMIT,
    )

    message = _failure(run)

    assert f"mlboot: the script hit its file size limit of {LIMIT} bytes" in message
    assert str(run_folder(run) / "outputs" / "big.bin") in message
    assert "Fix: raise the limit" in message


def test_a_script_that_logs_past_its_limit_fails_naming_its_log(
    config_file: Path, tmp_path: Path
) -> None:
    run = _run(
        config_file,
        tmp_path,
        """\
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        for line in range(100_000):
            print("x" * 100, line)
        """,
    )

    message = _failure(run)

    assert "mlboot: the script hit its file size limit of 65536 bytes" in message
    log = run_folder(run) / "std_log.txt"
    assert f"in {str(log)!r}" in message
    assert len(run.logs()) == 65536  # what fitted is kept and readable


def test_a_script_killed_by_sigxfsz_fails_saying_the_limit_and_where(
    config_file: Path, tmp_path: Path
) -> None:
    run = _run(
        config_file,
        tmp_path,
        "import resource, signal, mlboot\n"
        # Killed by the signal, as a program that is not Python would be.
        "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))\n" + WRITE_PAST_LIMIT,
    )

    message = _failure(run)

    assert "was ended by signal SIGXFSZ" in message
    assert f"file size limit of {LIMIT} bytes" in message
    assert "big.bin" in message


# Run in a child process started under a low soft limit (the hard one stays unlimited, so a
# script may raise its own): the submitter, the supervisor and the script all inherit it.
CHILD = """\
import json, resource, sys
from pathlib import Path
import mlboot
from mlboot import LocalBackend
from mlboot.exceptions import MlbootError

place, script, limit = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
outcomes = {}

def attempt(name, action):
    try:
        value = action()
    except MlbootError as exc:
        outcomes[name] = {"mlboot": type(exc).__name__, "message": str(exc),
                          "errno": getattr(exc, "errno", None)}
    except Exception as exc:
        outcomes[name] = {"raw": repr(exc)}
    else:
        outcomes[name] = {"value": str(value)}

workspace = mlboot.workspace_from_config(place / "config.json", backend=LocalBackend(place / "ws"))
pool = mlboot.get_or_create_compute_target(workspace, "cpu", vm_size="Standard_DS3_v2", max_nodes=1)
(place / "src").mkdir(exist_ok=True)
(place / "src" / "train.py").write_text(script)
run = None
def submit():
    global run
    run = mlboot.submit_script(workspace, "train.py", compute=pool, experiment="fsize",
                               source_directory=place / "src")
    return run.id
attempt("submit", submit)
if run is not None:
    attempt("wait", lambda: run.wait(timeout=60))
    attempt("status", run.status)
    attempt("logs", lambda: len(run.logs()))
    attempt("metrics", run.metrics)
    attempt("download_outputs", lambda: run.download_outputs(place / "download"))
    attempt("get_run", lambda: mlboot.get_run(workspace, run.id).id)
    attempt("list_runs", lambda: len(mlboot.list_runs(workspace)))
    attempt("cancel", run.cancel)
print(json.dumps(outcomes))
"""


def _under_limit(tmp_path: Path, config_file: Path, script: str, limit: int) -> dict[str, dict]:
    place = tmp_path / "child"
    place.mkdir()
    (place / "config.json").write_text(config_file.read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(  # noqa: S603  (this interpreter, with our own code)
        [sys.executable, "-c", CHILD, str(place), textwrap.dedent(script), str(limit)],
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr
    outcomes: dict[str, dict] = json.loads(done.stdout)
    raw = {name: outcome for name, outcome in outcomes.items() if "raw" in outcome}
    assert raw == {}  # every public call succeeded or raised an mlboot error
    return outcomes


def test_a_supervisor_under_a_low_limit_survives_it_and_ends_the_run_naming_the_log(
    tmp_path: Path, config_file: Path
) -> None:
    outcomes = _under_limit(
        tmp_path, config_file, "for i in range(100_000):\n    print('x' * 100, i)\n", 65536
    )

    assert outcomes["wait"]["mlboot"] == "RunFailedError"
    message = outcomes["wait"]["message"]
    assert "std_log.txt' reached the largest file size allowed" in message
    assert "ulimit -f" in message
    assert outcomes["status"] == {"value": "Failed"}
    assert outcomes["logs"] == {"value": "65536"}
    # The supervisor was not killed by SIGXFSZ: it lived to record how the script ended.
    (run_folder,) = (tmp_path / "child" / "ws" / "runs").iterdir()
    supervisor_log = (run_folder / "supervisor_log.txt").read_text(encoding="utf-8")
    assert "the script ended with exit code 1" in supervisor_log
    assert json.loads((run_folder / "status.json").read_text(encoding="utf-8"))["status"] == (
        "Failed"
    )


def test_a_download_past_the_caller_s_limit_is_a_typed_error_naming_the_file(
    tmp_path: Path, config_file: Path
) -> None:
    script = f"""\
    import resource, mlboot
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    mlboot.output_dir().joinpath("big.bin").write_bytes(b"x" * {LIMIT})
    mlboot.log_metric("loss", 0.5)
    """
    outcomes = _under_limit(tmp_path, config_file, script, 65536)

    assert outcomes["wait"] == {"value": "Completed"}
    assert outcomes["metrics"] == {"value": "{'loss': [0.5]}"}
    refused = outcomes["download_outputs"]
    assert refused["mlboot"] == "LocalStorageError"
    assert refused["errno"] == 27  # EFBIG
    assert str(tmp_path / "child" / "download" / "outputs") in refused["message"]
    assert "reached the largest file size allowed" in refused["message"]


def test_a_submit_under_a_limit_too_low_for_the_run_s_files_is_refused_and_leaves_no_run(
    tmp_path: Path, config_file: Path
) -> None:
    outcomes = _under_limit(tmp_path, config_file, "print('hi')\n", 4096)

    assert outcomes["submit"]["mlboot"] == "LocalStorageError"
    assert "reached the largest file size allowed" in outcomes["submit"]["message"]
    assert str(tmp_path / "child" / "ws") in outcomes["submit"]["message"]
    assert list((tmp_path / "child" / "ws" / "runs").iterdir()) == []
