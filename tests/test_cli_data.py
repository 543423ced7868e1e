"""``mlboot submit --input/--output/--mode``: data from the command line, on the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlboot._cli import ExitCode, main

CONFIG = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-cli",
    "workspace_name": "ws-cli",
    "mlboot_backend": "local",
}
REPORT = """\
import os, pathlib, sys
data = pathlib.Path(os.environ["MLBOOT_INPUT_data"])
out = pathlib.Path(sys.argv[2])
writable = os.access(data / "x.csv", os.W_OK)
(out / "report.txt").write_text(f"{data.name}:{len(list(data.iterdir()))}:{writable}")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "report.py").write_text(REPORT, encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    ensure = ["compute", "ensure", "cpu-pool", "--vm-size", "Standard_DS3_v2", "--max-nodes", "1"]
    assert main(ensure) == ExitCode.OK
    return tmp_path


SUBMIT = ["submit", "report.py", "--source-dir", "src", "--compute", "cpu-pool"]


def test_inputs_outputs_and_modes_reach_the_script(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(
        [
            *SUBMIT,
            *("--experiment", "cli-data", "--input", "data=data", "--mode", "data=download"),
            *("--output", "report", "--wait", "--json", "--", "--out", "${{outputs.report}}"),
        ]
    )
    record = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK, record
    landed = project / ".mlboot/datastores/workspaceblobstore/dataset" / record["run_id"] / "report"
    assert (landed / "report.txt").read_text(encoding="utf-8") == "data:1:True"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--input", "data"], "--input 'data': write it as NAME=SOURCE"),
        (["--mode", "data"], "--mode 'data': write it as NAME=MODE"),
        (["--input", "a=x", "--input", "a=y"], "--input a=... is given twice"),
        (["--input", "a=x", "--output", "a"], "the name 'a' is given twice"),
        (["--mode", "b=mount"], "--mode b=... names no --input or --output"),
    ],
)
def test_a_malformed_data_option_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main([*SUBMIT, "--experiment", "cli-data", *options]) == ExitCode.BAD_INPUT
    assert message in capsys.readouterr().err


def test_a_bad_mode_is_refused_naming_the_rule(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    options = ["--experiment", "cli-data", "--output", "m", "--mode", "m=download", "--json"]
    assert main([*SUBMIT, *options]) == ExitCode.BAD_INPUT
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["type"] == "InvalidInputError"
    assert "'upload' (copied when the script ends)" in error["message"]
    assert not (project / ".mlboot" / "runs").exists() or not any(
        (project / ".mlboot" / "runs").iterdir()
    )
