"""mlboot.list_runs and `mlboot runs list` through unmodified azureml-core on the emulator."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

import mlboot
from emulator import Emulator
from mlboot import _cli
from mlboot._cli import ExitCode, main

pytestmark = pytest.mark.sdk


@pytest.fixture
def workspace(emulator: Emulator, config: Path) -> mlboot.Workspace:
    return mlboot.workspace_from_config(config, auth=emulator.auth)


def test_list_runs_goes_through_the_sdk_queries_newest_first(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    emulator.add_run("alpha", ("Completed",), run_id="alpha_1")
    emulator.add_run("beta", ("Failed",), run_id="beta_1", error="boom")
    emulator.add_run("alpha", ("Running",), run_id="alpha_2")

    found = mlboot.list_runs(workspace)
    assert [info.run.id for info in found] == ["alpha_2", "beta_1", "alpha_1"]
    assert [str(info.status) for info in found] == ["Running", "Failed", "Completed"]
    assert {info.run.experiment for info in found} == {"alpha", "beta"}
    assert emulator.count("history.experiment.query") == 1
    assert emulator.count("history.run.query") == 2

    alpha = mlboot.list_runs(workspace, experiment="alpha", limit=1)
    assert [info.run.id for info in alpha] == ["alpha_2"]
    failed = mlboot.list_runs(workspace, status="Failed")
    assert [info.run.id for info in failed] == ["beta_1"]
    assert mlboot.list_runs(workspace, experiment="no-such-experiment") == []


def test_the_cli_lists_runs_from_the_sdk(
    emulator: Emulator,
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator.add_run("alpha", ("Completed",), run_id="alpha_1")
    emulator.add_run("alpha", ("Failed",), run_id="alpha_2", error="boom")
    # The command finds credentials in the environment; here they are the emulator's.
    monkeypatch.setattr(
        _cli,
        "workspace_from_config",
        functools.partial(mlboot.workspace_from_config, auth=emulator.auth),
    )
    code = main(["runs", "list", "--config", str(config), "--status", "Failed", "--json"])
    assert code == ExitCode.OK, capsys.readouterr().err
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["run_id"], r["experiment"], r["status"]) for r in runs] == [
        ("alpha_2", "alpha", "Failed")
    ]
