"""The mlboot command, end to end: `python -m mlboot` in subprocesses, on the local backend."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlboot._cli import ExitCode, exit_code_for, main
from mlboot.exceptions import (
    AuthenticationError,
    ComputeMismatchError,
    ConfigNotFoundError,
    InvalidInputError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RunFailedError,
    SnapshotTooLargeError,
    WaitTimeoutError,
    WorkspaceNotFoundError,
)
from mlboot.testing import FakeBackend, use_backend

CONFIG = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-cli",
    "workspace_name": "ws-cli",
    "mlboot_backend": "local",
}
DEADLINE = 30.0

TRAIN = """\
import sys
import mlboot
epochs = int(sys.argv[sys.argv.index("--epochs") + 1])
for epoch in range(epochs):
    mlboot.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
    print(f"epoch {epoch}")
(mlboot.output_dir() / "model.txt").write_text("weights")
"""

CRASH = """\
print("about to fail")
raise RuntimeError("the data is gone")
"""

WAIT_FOR_GATE = """\
import sys, time
from pathlib import Path
deadline = time.monotonic() + 60
while not Path(sys.argv[1]).exists() and time.monotonic() < deadline:
    time.sleep(0.02)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    source = tmp_path / "src"
    source.mkdir()
    for name, text in {"train.py": TRAIN, "crash.py": CRASH, "gated.py": WAIT_FOR_GATE}.items():
        (source / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "go"
    yield path
    path.touch()  # lets any gated run end, whatever the test did


def mlboot(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLBOOT_", "AZUREML_"))}
    return subprocess.run(  # noqa: S603  (our own interpreter and package)
        [sys.executable, "-m", "mlboot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=env,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mlboot: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def ensure_pool(project: Path) -> None:
    result = mlboot(
        project, "compute", "ensure", "cpu-pool", "--vm-size", "Standard_DS3_v2", "--max-nodes", "2"
    )
    assert result.returncode == ExitCode.OK, result.stderr


# -- help and usage ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["submit"],
        ["compute"],
        ["compute", "ensure"],
        ["runs"],
        ["runs", "show"],
        ["runs", "wait"],
        ["runs", "logs"],
        ["runs", "cancel"],
        ["runs", "download"],
        ["runs", "files"],
    ],
)
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mlboot {' '.join(command)}".rstrip())
    assert "124  a wait timed out" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("mlboot ")


def test_python_dash_m_mlboot_runs_the_command(tmp_path: Path) -> None:
    result = mlboot(tmp_path, "--help")
    assert result.returncode == ExitCode.OK
    assert result.stdout.startswith("usage: mlboot ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["submit", "train.py"], "the following arguments are required: --compute, --experiment"),
        (["submit", "x.py", "--compute", "c", "--experiment", "e", "--timeout", "5"], "--timeout"),
        (["runs", "show", "x", "--", "extra"], "only for 'mlboot submit'"),
        (["compute", "ensure", "c", "--vm-size", "Standard_D2_v3", "--max-nodes", "two"], "int"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == ExitCode.BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("mlboot: error: mlboot")
    assert expected in line


def test_script_options_before_double_dash_get_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["submit", "train.py", "--epochs", "3", "--compute", "c", "--experiment", "e"]
    assert main(args) == ExitCode.BAD_INPUT
    assert "the script's own options go after '--'" in capsys.readouterr().err


def test_a_missing_config_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    result = mlboot(tmp_path, "runs", "show", "some-run")
    assert result.returncode == ExitCode.BAD_INPUT
    line = one_error_line(result)
    assert "no workspace config file found" in line
    assert "--config PATH" in line
    verbose = mlboot(tmp_path, "-v", "runs", "show", "some-run")
    assert f"searched {tmp_path / '.azureml' / 'config.json'}" in verbose.stderr
    assert "Traceback" not in verbose.stderr


def test_errors_map_to_documented_exit_codes() -> None:
    cases = {
        RunFailedError("x", run_id="r"): ExitCode.RUN_FAILED,
        WaitTimeoutError("x"): ExitCode.TIMEOUT,
        InvalidInputError("f", 1, "rule", "fix"): ExitCode.BAD_INPUT,
        ConfigNotFoundError("x"): ExitCode.BAD_INPUT,
        SnapshotTooLargeError("x"): ExitCode.BAD_INPUT,
        ComputeMismatchError("x", {}): ExitCode.BAD_INPUT,
        AuthenticationError("x"): ExitCode.AUTHENTICATION,
        PermissionDeniedError("x"): ExitCode.AUTHENTICATION,
        WorkspaceNotFoundError("x"): ExitCode.NOT_FOUND,
        NotFoundError("x"): ExitCode.NOT_FOUND,
        NetworkError("x"): ExitCode.ERROR,
        RuntimeError("a bug"): ExitCode.ERROR,
    }
    for error, code in cases.items():
        assert exit_code_for(error) == code, error
    assert len({int(code) for code in ExitCode}) == len(ExitCode)


@pytest.mark.reliability("secrets")
def test_an_authentication_failure_exits_3_without_a_traceback_or_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {k: v for k, v in CONFIG.items() if k != "mlboot_backend"}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cr3t-value-never-printed")
    fake = FakeBackend()
    fake.fail("get_workspace", "auth")

    with use_backend(fake):
        code = main(["--config", str(tmp_path / "config.json"), "--json", "runs", "show", "r1"])
        assert code == ExitCode.AUTHENTICATION
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        assert "s3cr3t" not in captured.out + captured.err
        assert len(captured.err.splitlines()) == 1
        assert json.loads(captured.out)["error"]["type"] == "AuthenticationError"


# -- end to end on the local backend -----------------------------------------------------------


def test_compute_ensure_creates_reuses_and_reports_a_mismatch(project: Path) -> None:
    args = ["compute", "ensure", "cpu-pool", "--vm-size", "Standard_DS3_v2", "--max-nodes", "2"]
    created = mlboot(project, "--json", *args)
    assert created.returncode == ExitCode.OK, created.stderr
    assert json.loads(created.stdout) == {
        "name": "cpu-pool",
        "kind": "AmlCompute",
        "vm_size": "STANDARD_DS3_V2",
        "vm_priority": "dedicated",
        "min_nodes": 0,
        "max_nodes": 2,
        "idle_seconds_before_scaledown": 1800,
        "provisioning_state": "Succeeded",
    }
    again = mlboot(project, *args)
    assert again.returncode == ExitCode.OK
    using = (
        f"Using existing compute target 'cpu-pool' in workspace 'ws-cli' (resource group "
        f"'rg-cli', subscription {CONFIG['subscription_id']}) (state Succeeded)"
    )
    summary = (
        "Compute target cpu-pool: STANDARD_DS3_V2, dedicated, 0 to 2 nodes, 1800 s idle before "
        "scale-down, Succeeded"
    )
    assert again.stdout.splitlines() == [using, summary]

    differs = mlboot(project, *args[:-1], "3", "--json")
    assert differs.returncode == ExitCode.BAD_INPUT
    assert "max_nodes: requested 3, actual 2" in one_error_line(differs)
    error = json.loads(differs.stdout)["error"]
    assert error["type"] == "ComputeMismatchError"
    assert error["exit_code"] == ExitCode.BAD_INPUT

    updated = mlboot(project, *args[:-1], "3", "--on-mismatch", "update", "--json")
    assert updated.returncode == ExitCode.OK
    assert json.loads(updated.stdout)["max_nodes"] == 3


def test_submit_wait_json_reports_the_completed_run(project: Path) -> None:
    ensure_pool(project)
    result = mlboot(
        project,
        "submit",
        "train.py",
        "--source-dir",
        "src",
        "--compute",
        "cpu-pool",
        "--experiment",
        "cli",
        "--wait",
        "--json",
        "--",
        "--epochs",
        "3",
    )
    assert result.returncode == ExitCode.OK, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "Completed"
    assert record["experiment"] == "cli"
    assert record["metrics"] == {"loss": [1.0, 0.5, 1 / 3]}
    assert record["error"] is None
    assert (Path(record["outputs"]) / "model.txt").read_text() == "weights"
    assert Path(record["outputs"]).is_relative_to(project / ".mlboot")


def test_submit_wait_streams_the_log_in_human_mode(project: Path) -> None:
    ensure_pool(project)
    result = mlboot(
        project,
        *("submit", "src/train.py", "--compute", "cpu-pool", "--experiment", "cli", "--wait"),
        *("--", "--epochs", "2"),
    )
    assert result.returncode == ExitCode.OK, result.stderr
    assert "epoch 1" in result.stdout
    assert "status     Completed" in result.stdout
    assert "metric     loss = 0.5 (last of 2)" in result.stdout


def test_a_failed_run_exits_1_with_one_error_line(project: Path) -> None:
    ensure_pool(project)
    result = mlboot(
        project,
        *("submit", "crash.py", "--source-dir", "src", "--compute", "cpu-pool"),
        *("--experiment", "cli", "--wait"),
    )
    assert result.returncode == ExitCode.RUN_FAILED
    line = one_error_line(result)
    assert "failed" in line
    assert "RuntimeError: the data is gone" in line
    assert "about to fail" in result.stdout  # the streamed log
    assert "status     Failed" in result.stdout


def test_a_failed_run_with_json_prints_one_object_with_the_log_tail(project: Path) -> None:
    ensure_pool(project)
    result = mlboot(
        project,
        *("submit", "crash.py", "--source-dir", "src", "--compute", "cpu-pool"),
        *("--experiment", "cli", "--wait", "--json"),
    )
    assert result.returncode == ExitCode.RUN_FAILED
    record = json.loads(result.stdout)  # exactly one JSON document
    assert record["status"] == "Failed"
    assert "RuntimeError: the data is gone" in record["error"]
    assert record["log_tail"][0] == "about to fail"
    assert "failed" in one_error_line(result)


def test_runs_commands_follow_a_run_submitted_without_waiting(project: Path, gate: Path) -> None:
    ensure_pool(project)
    submitted = mlboot(
        project,
        *("submit", "gated.py", "--source-dir", "src", "--compute", "cpu-pool"),
        *("--experiment", "cli", "--json", "--", str(gate)),
    )
    assert submitted.returncode == ExitCode.OK, submitted.stderr
    run_id = json.loads(submitted.stdout)["run_id"]

    started = time.monotonic()
    timed_out = mlboot(project, "runs", "wait", run_id, "--timeout", "0.5", "--json")
    assert timed_out.returncode == ExitCode.TIMEOUT
    assert "still" in one_error_line(timed_out)
    assert time.monotonic() - started < DEADLINE

    shown = mlboot(project, "runs", "show", run_id, "--json")
    assert shown.returncode == ExitCode.OK
    assert json.loads(shown.stdout)["status"] in {"NotStarted", "Queued", "Running"}

    canceled = mlboot(project, "runs", "cancel", run_id)
    assert canceled.returncode == ExitCode.OK
    assert canceled.stdout.startswith(f"Asked to cancel run {run_id}")
    assert re.search(r"it is (CancelRequested|Canceled) now", canceled.stdout), canceled.stdout

    waited = mlboot(project, "runs", "wait", run_id)
    assert waited.returncode == ExitCode.RUN_CANCELED
    assert "status     Canceled" in waited.stdout

    logs = mlboot(project, "runs", "logs", run_id, "--json")
    assert logs.returncode == ExitCode.OK
    assert json.loads(logs.stdout) == {"run_id": run_id, "logs": ""}


def test_runs_download_and_logs(project: Path, tmp_path: Path) -> None:
    ensure_pool(project)
    submitted = mlboot(
        project,
        *("submit", "train.py", "--source-dir", "src", "--compute", "cpu-pool"),
        *("--experiment", "cli", "--wait", "--json", "--", "--epochs", "1"),
    )
    run_id = json.loads(submitted.stdout)["run_id"]
    logs = mlboot(project, "runs", "logs", run_id)
    assert logs.stdout == "epoch 0\n"
    downloaded = mlboot(project, "runs", "download", run_id, str(tmp_path / "dl"), "--json")
    assert json.loads(downloaded.stdout)["files"] == [
        str(tmp_path / "dl" / "outputs" / "model.txt")
    ]


def test_runs_files_lists_a_run_s_files_and_download_prefix_fetches_them(
    project: Path, tmp_path: Path
) -> None:
    ensure_pool(project)
    submitted = mlboot(
        project,
        *("submit", "train.py", "--source-dir", "src", "--compute", "cpu-pool"),
        *("--experiment", "cli", "--wait", "--json", "--", "--epochs", "1"),
    )
    run_id = json.loads(submitted.stdout)["run_id"]

    listed = mlboot(project, "runs", "files", run_id, "--json")
    assert json.loads(listed.stdout) == {
        "run_id": run_id,
        "names": ["outputs/model.txt", "user_logs/std_log.txt"],
    }
    plain = mlboot(project, "runs", "files", run_id, "--prefix", "user_logs/")
    assert plain.stdout == "user_logs/std_log.txt\n"
    none = mlboot(project, "runs", "files", run_id, "--prefix", "logs/")
    assert none.stdout == f"Run {run_id} has no files whose names start with 'logs/'.\n"

    downloaded = mlboot(
        project, "runs", "download", run_id, str(tmp_path / "dl"), "--prefix", "user_logs/"
    )
    log = tmp_path / "dl" / "user_logs" / "std_log.txt"
    assert downloaded.stdout == f"{log}\n"
    assert log.read_text(encoding="utf-8") == "epoch 0\n"
    everything = mlboot(project, "runs", "download", run_id, str(tmp_path / "all"), "--prefix", "")
    assert everything.stdout.splitlines() == [
        str(tmp_path / "all" / "outputs" / "model.txt"),
        str(tmp_path / "all" / "user_logs" / "std_log.txt"),
    ]


def test_a_bad_prefix_on_the_command_line_is_a_bad_input(project: Path) -> None:
    result = mlboot(project, "runs", "files", "cli_1_deadbeef", "--prefix", "../x", "--json")
    assert result.returncode == ExitCode.BAD_INPUT
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "InvalidInputError"
    assert error["message"].startswith("--prefix ../x is invalid: it must not have a '..' part")
    assert "was not found" not in result.stderr  # refused before the run was looked up


def test_an_unknown_run_exits_4(project: Path) -> None:
    result = mlboot(project, "runs", "show", "cli_1_deadbeef")
    assert result.returncode == ExitCode.NOT_FOUND
    assert "was not found" in one_error_line(result)


def test_local_flag_needs_no_config_key(project: Path, tmp_path: Path) -> None:
    plain = {k: v for k, v in CONFIG.items() if k != "mlboot_backend"}
    (project / "config.json").write_text(json.dumps(plain), encoding="utf-8")
    args = ["compute", "ensure", "cpu-pool", "--vm-size", "Standard_DS3_v2", "--max-nodes", "1"]
    result = mlboot(project, "--local", *args)
    assert result.returncode == ExitCode.OK, result.stderr
    assert (project / ".mlboot" / "computes" / "cpu-pool.json").is_file()
    after_command = mlboot(project, *args, "--local", "--json")  # options after the command too
    assert json.loads(after_command.stdout)["max_nodes"] == 1


def test_a_multi_line_error_is_one_line_with_the_rest_on_verbose(project: Path) -> None:
    ensure_pool(project)
    big = project / "big"
    big.mkdir()
    (big / "train.py").write_text("print('never')\n", encoding="utf-8")
    for n in range(2001):
        (big / f"f{n}.txt").touch()
    args = ["submit", "train.py", "--source-dir", "big", "--compute", "cpu-pool"]
    result = mlboot(project, *args, "--experiment", "cli")
    assert result.returncode == ExitCode.BAD_INPUT
    line = one_error_line(result)
    assert "too large" in line
    assert line.endswith("(more with --verbose)")
    verbose = mlboot(project, *args, "--experiment", "cli", "--verbose")
    assert "Create " in verbose.stderr  # the ready-to-paste .amlignore advice
    assert ".amlignore" in verbose.stderr
    assert "Traceback" not in verbose.stderr
    assert not (project / ".mlboot" / "runs").exists() or not any(
        (project / ".mlboot" / "runs").iterdir()
    )


def test_a_missing_script_is_bad_input(project: Path) -> None:
    ensure_pool(project)
    result = mlboot(
        project,
        *("submit", "missing.py", "--source-dir", "src", "--compute", "cpu-pool"),
        *("--experiment", "cli"),
    )
    assert result.returncode == ExitCode.BAD_INPUT
    assert "SCRIPT 'missing.py' is invalid" in one_error_line(result)


def test_the_mlboot_console_script_is_declared() -> None:
    pyproject = Path(__file__).parent.parent / "pyproject.toml"
    assert '[project.scripts]\nmlboot = "mlboot._cli:main"\n' in pyproject.read_text()


def test_the_cli_reaches_backends_only_through_the_public_functions() -> None:
    # No backend module is loaded by the command itself: it never checks a backend's class.
    code = "import sys, mlboot._cli; print(sorted(m for m in sys.modules if m in BACKENDS))"
    backends = (
        "{'mlboot._backends.local', 'mlboot._backends.local._local', 'mlboot._backends.azureml', "
        "'mlboot._backends.azureml._azureml', 'mlboot._backends.fake', 'mlboot.testing'}"
    )
    result = subprocess.run(  # noqa: S603  (our own interpreter)
        [sys.executable, "-c", f"BACKENDS = {backends}\n{code}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
