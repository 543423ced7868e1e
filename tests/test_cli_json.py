"""The mlboot command's promises to tools and shells: one strict JSON object per exit with
``--json``, fixes said as shell options, ``runs list``, metrics rounded for people, one Ctrl-C
message with the shell command to reattach."""

from __future__ import annotations

import json
import math
import re
import shlex
import warnings
from pathlib import Path

import pytest

from mlboot import _workspace
from mlboot._cli import ExitCode, main, shell_fix
from mlboot.backend import Backend
from mlboot.exceptions import MlbootWarning
from mlboot.testing import FakeBackend, FaultKind

CONFIG = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-cli",
    "workspace_name": "ws-cli",
}


def reject(constant: str) -> object:
    raise AssertionError(f"not strict JSON: {constant}")


def one_object(text: str) -> dict[str, object]:
    data = json.loads(text, parse_constant=reject)  # one value: trailing text fails
    assert isinstance(data, dict)
    return data


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    (tmp_path / "config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    backend = FakeBackend()

    def offline() -> Backend:
        return backend

    monkeypatch.setattr(_workspace, "_default_backend", offline)
    monkeypatch.chdir(tmp_path)
    return backend


# -- one strict JSON object per exit -------------------------------------------------------


@pytest.mark.reliability("strict-json")
def test_nan_and_infinite_metrics_are_strict_json_strings(
    fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_run(
        "r1",
        statuses=["Completed"],
        metrics={"loss": [math.nan], "grad": [math.inf, -math.inf], "acc": [0.123456789012]},
    )
    assert main(["runs", "show", "r1", "--json"]) == ExitCode.OK
    metrics = one_object(capsys.readouterr().out)["metrics"]
    assert metrics == {"loss": ["NaN"], "grad": ["Infinity", "-Infinity"], "acc": [0.123456789012]}


USAGE_ERRORS = [
    ["frobnicate"],
    ["runs"],
    ["runs", "list", "--limit", "many"],
    ["submit", "train.py"],
    ["compute", "ensure", "c", "--vm-size", "S", "--max-nodes", "two"],
    ["compute", "ensure", "c", "--vm-size", "S", "--max-nodes", "2", "--priority", "spot"],
    ["runs", "show", "x", "--", "extra"],
    ["submit", "x.py", "--compute", "c", "--experiment", "e", "--timeout", "5"],
    ["--no-such-option"],
]


@pytest.mark.reliability("strict-json")
@pytest.mark.parametrize("args", USAGE_ERRORS)
@pytest.mark.parametrize("where", ["first", "last"])
def test_a_usage_error_with_json_anywhere_is_one_error_object(
    args: list[str], where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--" in args:
        argv = ["--json", *args] if where == "first" else [*args[:3], "--json", *args[3:]]
    else:
        argv = ["--json", *args] if where == "first" else [*args, "--json"]
    assert main(argv) == ExitCode.BAD_INPUT
    captured = capsys.readouterr()
    error = one_object(captured.out)["error"]
    assert isinstance(error, dict)
    assert error["exit_code"] == ExitCode.BAD_INPUT
    assert error["type"] == "UsageError"
    assert len(captured.err.splitlines()) == 1


# Every subcommand, on every kind of failure the fake backend can give: one object, strict.
COMMANDS = [
    ["runs", "show", "r1"],
    ["runs", "wait", "r1", "--timeout", "5"],
    ["runs", "logs", "r1"],
    ["runs", "cancel", "r1"],
    ["runs", "download", "r1", "out"],
    ["runs", "download", "r1", "out", "--prefix", "outputs/"],
    ["runs", "files", "r1", "--prefix", "outputs/"],
    ["runs", "list"],
    ["compute", "ensure", "cpu", "--vm-size", "Standard_DS3_v2", "--max-nodes", "2"],
    ["submit", "train.py", "--compute", "cpu", "--experiment", "e"],
]
FAULTS = ["ok", "auth", "not_found", "throttled", "network", "interrupt", "bug"]


@pytest.mark.reliability("strict-json")
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("fault", FAULTS)
def test_every_command_and_failure_with_json_writes_exactly_one_strict_object(
    args: list[str], fault: str, fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("train.py").write_text("print('hi')\n", encoding="utf-8")
    fake.add_run("r1", statuses=["Completed"], metrics={"m": [math.nan]})
    fake.add_compute("cpu", vm_size="Standard_DS3_v2", max_nodes=2)
    operation = {"compute": "get_compute", "submit": "submit_run", "runs": "get_workspace"}[args[0]]
    kinds: dict[str, BaseException | FaultKind] = {
        "auth": "auth",
        "not_found": "not_found",
        "throttled": "throttled",
        "network": "network",
        "interrupt": KeyboardInterrupt(),
        "bug": RuntimeError("boom"),
    }
    if fault != "ok":
        kind = kinds[fault]
        try:
            fake.fail("get_workspace" if fault == "interrupt" else operation, kind, times=20)
        except Exception:  # noqa: BLE001  (a fault name this operation does not take)
            pytest.skip(f"{fault} does not apply to {operation}")
    code = main(["--json", *args])
    out = capsys.readouterr().out
    data = one_object(out)
    if fault == "ok":
        assert code == ExitCode.OK, data
    else:
        assert code != ExitCode.OK
        assert isinstance(data["error"], dict)
        assert data["error"]["exit_code"] == code
    if fault == "interrupt":
        assert code == ExitCode.INTERRUPTED


@pytest.mark.reliability("strict-json")
def test_help_with_json_is_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", "--help", "--json"]) == ExitCode.OK
    text = one_object(capsys.readouterr().out)["help"]
    assert isinstance(text, str)
    assert text.startswith("usage: mlboot runs list")


def test_help_without_json_stays_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", "--help"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("usage: mlboot runs list")


# -- Ctrl-C during a wait: one message, the shell command to reattach ------------------------


@pytest.mark.reliability("strict-json")
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_ctrl_c_during_a_wait_says_one_message_with_the_shell_command(
    json_flag: list[str], fake: FakeBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_run("r 1", statuses=["Running"])
    fake.fail("get_run_status", KeyboardInterrupt(), times=5)
    config = str(tmp_path / "config.json")
    code = main(["--config", config, *json_flag, "runs", "wait", "r 1"])
    assert code == ExitCode.INTERRUPTED
    captured = capsys.readouterr()
    command = shlex.join(["mlboot", "runs", "wait", "r 1", "--config", config])
    said = [line for line in (captured.out + captured.err).splitlines() if "Interrupted" in line]
    assert len(said) == 1, captured
    assert command in said[0]
    assert "mlboot.get_run" not in captured.out + captured.err
    assert "mlboot: error" not in captured.err
    if json_flag:
        error = one_object(captured.out)["error"]
        assert isinstance(error, dict)
        assert error["exit_code"] == ExitCode.INTERRUPTED
        assert command in str(error["message"])


# -- fixes in shell terms -----------------------------------------------------------------

# Every Python keyword fix the library's messages give, and what the command line says instead.
KEYWORD_FIXES = {
    "pass on_mismatch='update' to change its scale settings": "--on-mismatch update",
    "because on_mismatch='warn'": "--on-mismatch warn",
    "pass e.g. timeout=3600 for an hour, or None to wait as long as the run takes": (
        "--timeout 3600"
    ),
    "pass e.g. timeout=600 (the default)": "--timeout 600",
    "the time-out (timeout=30 s)": "--timeout 30",
    "or with wait=False not to wait": "--no-wait",
    "pass e.g. limit=20": "--limit 20",
    "pass e.g. status='Failed' or mlboot.RunStatus.FAILED": "--status Failed",
    "Fix: pass environment=mlboot.Environment.from_pip_requirements(...) (or another "
    "Environment) to choose your own.": "--env FILE",
    "call run.wait() again later": "mlboot runs wait RUN_ID",
    "pass script='src/train.py', the path inside source_directory": (
        "give SCRIPT as 'src/train.py', the path inside --source-dir"
    ),
    "Reattach with mlboot.get_run(workspace, 'r1'); stop it with .cancel().": (
        "mlboot runs show r1"
    ),
    "pass max_nodes=4": "--max-nodes 4",
    "pass vm_size='Standard_DS3_v2'": "--vm-size Standard_DS3_v2",
    "pass source_directory='src'": "--source-dir src",
    "pass idle_seconds_before_scaledown=600": "--idle-seconds 600",
    "set AZURE_CLIENT_SECRET for a service principal, or pass auth= explicitly.": (
        "for a service principal."
    ),
}
PYTHON = re.compile(r"\b[a-z_]+=|\bmlboot\.[A-Za-z_]+\(|\brun\.\w+\(")


@pytest.mark.parametrize("text", list(KEYWORD_FIXES))
def test_the_cli_says_each_library_keyword_fix_as_an_option(text: str) -> None:
    said = shell_fix(text)
    assert KEYWORD_FIXES[text] in said
    assert not PYTHON.search(said), said


# Keywords the library's fixes name that no CLI command can get wrong (the CLI never passes
# them, or always passes a valid value), and names that are not keyword arguments.
NOT_FROM_THE_CLI = {
    "python_version",  # Environment(...): the CLI takes requirement files only
    "cancel_on_interrupt",  # Run.wait: the CLI never cancels on Ctrl-C
    "show_output",  # the CLI always passes a bool
    "node_count",  # submit_script distribution options: not CLI options
    "distribution",
    "process_count_per_node",
    "hours",  # max_run_duration=timedelta(hours=...)
    "output_directory",  # an azureml-core call, not a message
}
NOT_KEYWORDS = {"fix", "prefix", "what", "minimum", "allow_timedelta"}


def library_fix_keywords() -> set[str]:
    """Every ``name=`` a fix text in the library's sources mentions."""
    source = Path(__file__).parents[1] / "src" / "mlboot"
    found: set[str] = set()
    for path in source.rglob("*.py"):
        if path.name in {"_cli.py", "_fake.py", "pytest_plugin.py"}:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"\bfix=|Fix:|\"pass |\"call |on_mismatch='|pass \w+=", line):
                found.update(re.findall(r"\b([a-z_]+)=(?!=)", line.split("#")[0]))
    return found - NOT_KEYWORDS


def test_every_keyword_fix_in_the_library_has_a_cli_spelling() -> None:
    keywords = library_fix_keywords()
    assert {"on_mismatch", "timeout", "wait", "limit", "status", "environment", "auth"} <= keywords
    values = {"wait": "False", "auth": " explicitly"}
    for keyword in keywords - NOT_FROM_THE_CLI:
        said = shell_fix(f"or pass {keyword}={values.get(keyword, repr('x'))}")
        assert f"{keyword}=" not in said, (keyword, said)


def test_a_compute_mismatch_fix_names_the_cli_option(
    fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_compute("cpu", vm_size="Standard_DS3_v2", max_nodes=2)
    args = ["compute", "ensure", "cpu", "--vm-size", "Standard_DS3_v2", "--max-nodes", "3"]
    assert main([*args, "--json"]) == ExitCode.BAD_INPUT
    captured = capsys.readouterr()
    assert "--on-mismatch update" in captured.err
    assert "on_mismatch=" not in captured.err + captured.out
    error = one_object(captured.out)["error"]
    assert isinstance(error, dict)
    assert "--on-mismatch update" in str(error["message"])


def test_a_warning_raised_as_an_error_is_said_as_one_not_as_a_bug(
    fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_compute("cpu", vm_size="Standard_DS3_v2", max_nodes=2)
    args = ["compute", "ensure", "cpu", "--vm-size", "Standard_DS3_v2", "--max-nodes", "3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MlbootWarning)  # as python -W error does
        code = main([*args, "--on-mismatch", "warn"])
    err = capsys.readouterr().err
    assert code == ExitCode.ERROR
    assert err.startswith("mlboot: error: a warning, raised as an error (-W error): compute")
    assert "internal error" not in err


# -- runs list ------------------------------------------------------------------------------


def test_runs_list_shows_newest_first_with_filters(
    fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_run("old", experiment="a", statuses=["Completed"])
    fake.add_run("mid", experiment="b", statuses=["Failed"])
    fake.add_run("new", experiment="a", statuses=["Running"])
    assert main(["runs", "list", "--json"]) == ExitCode.OK
    runs = one_object(capsys.readouterr().out)["runs"]
    assert isinstance(runs, list)
    assert [r["run_id"] for r in runs] == ["new", "mid", "old"]
    assert set(runs[0]) == {
        "run_id",
        "experiment",
        "status",
        "start_time",
        "end_time",
        "duration_seconds",
    }
    assert main(["runs", "list", "--experiment", "a", "--limit", "1", "--json"]) == ExitCode.OK
    filtered = one_object(capsys.readouterr().out)["runs"]
    assert isinstance(filtered, list)
    assert [r["run_id"] for r in filtered] == ["new"]
    assert main(["runs", "list", "--status", "failed"]) == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "EXPERIMENT", "STATUS", "STARTED", "DURATION"]
    assert [line.split()[0] for line in lines[1:]] == ["mid"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--limit", "0"], "--limit"),
        (["--status", "Sleeping"], "--status"),
        (["--experiment", " "], "--experiment"),
    ],
)
def test_runs_list_checks_its_options_before_anything_remote(
    args: list[str], field: str, fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "list", *args, "--json"]) == ExitCode.BAD_INPUT
    error = one_object(capsys.readouterr().out)["error"]
    assert isinstance(error, dict)
    assert error["type"] == "InvalidInputError"
    assert field in str(error["message"])
    # The library's own check and words, said in the command's terms (no Python keyword).
    assert f"{field.removeprefix('--')}=" not in str(error["message"])
    assert fake.calls_to("get_workspace") == []
    assert fake.calls_to("list_runs") == []


# -- metrics for people ---------------------------------------------------------------------


def test_metrics_are_rounded_for_people_and_exact_in_json(
    fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_run(
        "r1",
        statuses=["Completed"],
        metrics={"loss": [0.1, 1 / 3], "nan": [math.nan], "inf": [-math.inf], "n": [1234567]},
    )
    assert main(["runs", "show", "r1"]) == ExitCode.OK
    lines = capsys.readouterr().out.splitlines()
    assert "metric     loss = 0.333333 (last of 2)" in lines
    assert "metric     nan = NaN" in lines
    assert "metric     inf = -Infinity" in lines
    assert "metric     n = 1234567" in lines
    assert main(["runs", "show", "r1", "--json"]) == ExitCode.OK
    metrics = one_object(capsys.readouterr().out)["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["loss"] == [0.1, 1 / 3]
