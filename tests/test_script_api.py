"""The in-script API: mlboot.log_metric and friends, on Azure ML, locally, and elsewhere."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import types
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

import mlboot
from mlboot import _script_api
from mlboot._script_api import current_destination, read_metrics
from mlboot.exceptions import InvalidInputError, MissingExtraError


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_script_api, "_azureml_run", None)
    monkeypatch.setattr(_script_api, "_said_dropped", False)


@pytest.fixture
def local_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.setenv("MLBOOT_RUN_DIR", str(run_dir))
    return run_dir


class _RecordingRun:
    def __init__(self) -> None:
        self.logged: list[tuple[str, object, dict[str, object]]] = []

    def log(self, name: str, value: object, **kwargs: object) -> None:
        self.logged.append((name, value, kwargs))


@pytest.fixture
def azureml_run(monkeypatch: pytest.MonkeyPatch) -> _RecordingRun:
    """Azure ML's run-context variables, and azureml.core.Run replaced by a recorder."""
    monkeypatch.setenv("AZUREML_RUN_ID", "exp_1_abcdef12")
    monkeypatch.setenv("AZUREML_SERVICE_ENDPOINT", "https://westeurope.api.azureml.ms")
    run = _RecordingRun()
    fake_core = types.ModuleType("azureml.core")
    contexts: list[bool] = []

    class Run:
        @staticmethod
        def get_context() -> _RecordingRun:
            contexts.append(True)
            return run

    fake_core.Run = Run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azureml.core", fake_core)
    run.contexts = contexts  # type: ignore[attr-defined]
    return run


def test_outside_any_run_metrics_are_dropped_with_one_debug_message(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG, logger="mlboot")
    assert current_destination() == "none"
    mlboot.log_metric("loss", 0.5)
    mlboot.log_metric("loss", 0.25, step=1)
    messages = [r.getMessage() for r in caplog.records if r.name == "mlboot"]
    assert len(messages) == 1
    assert "not recorded" in messages[0]
    assert list(tmp_path.iterdir()) == []


def test_local_run_appends_to_the_metrics_file_in_order(local_run: Path) -> None:
    assert current_destination() == "local"
    mlboot.log_metric("loss", 1.5, step=0)
    mlboot.log_metric("loss", 0.75, step=1)
    mlboot.log_metric("note", "converged")
    mlboot.log_metric("epochs", 2)
    records = [json.loads(line) for line in (local_run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["name"], r["value"], r["step"]) for r in records] == [
        ("loss", 1.5, 0),
        ("loss", 0.75, 1),
        ("note", "converged", None),
        ("epochs", 2, None),
    ]
    assert all(isinstance(r["time"], float) for r in records)
    assert read_metrics(local_run) == {"loss": [1.5, 0.75], "note": ["converged"], "epochs": [2]}


def test_non_finite_values_and_number_like_scalars_are_kept(local_run: Path) -> None:
    mlboot.log_metric("loss", float("nan"))
    mlboot.log_metric("loss", float("inf"))
    mlboot.log_metric("ratio", Fraction(1, 4))  # a number that is not a float
    mlboot.log_metric("cost", Decimal("2.5"))  # not even a numbers.Real
    metrics = read_metrics(local_run)
    assert math.isnan(float(metrics["loss"][0]))
    assert metrics["loss"][1] == math.inf
    assert metrics["ratio"] == [0.25]
    assert metrics["cost"] == [2.5]


def test_log_metrics_checks_every_value_before_logging_any(local_run: Path) -> None:
    with pytest.raises(InvalidInputError, match="metric 'acc' must be a number or a str"):
        mlboot.log_metrics({"loss": 0.1, "acc": [0.9]})  # type: ignore[dict-item]
    assert not (local_run / "metrics.jsonl").exists()
    mlboot.log_metrics({"loss": 0.1, "acc": 0.9}, step=3)
    assert read_metrics(local_run) == {"loss": [0.1], "acc": [0.9]}


@pytest.mark.parametrize(
    ("name", "value", "step", "field"),
    [
        ("", 1.0, None, "name"),
        ("loss", True, None, "value"),
        ("loss", None, None, "value"),
        ("loss", [1.0], None, "value"),
        ("loss", Decimal("NaN").__class__("sNaN"), None, "value"),
        ("loss", 1.0, -1, "step"),
        ("loss", 1.0, 1.5, "step"),
    ],
)
def test_bad_metrics_are_refused_everywhere_even_outside_a_run(
    name: str, value: object, step: object, field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        mlboot.log_metric(name, value, step)  # type: ignore[arg-type]
    assert info.value.field == field


def test_a_torn_last_line_is_skipped_when_reading(local_run: Path) -> None:
    mlboot.log_metric("loss", 1.0)
    with (local_run / "metrics.jsonl").open("a", encoding="utf-8") as file:
        file.write('{"name": "loss", "val')
    assert read_metrics(local_run) == {"loss": [1.0]}
    assert read_metrics(local_run / "missing") == {}


def test_on_azureml_metrics_go_to_the_run_context(azureml_run: _RecordingRun) -> None:
    assert current_destination() == "azureml"
    mlboot.log_metric("loss", 0.5)
    mlboot.log_metric("loss", 0.25, step=1)
    mlboot.log_metrics({"acc": 0.9}, step=1)
    assert azureml_run.logged == [
        ("loss", 0.5, {}),
        ("loss", 0.25, {"step": 1}),
        ("acc", 0.9, {"step": 1}),
    ]
    assert len(azureml_run.contexts) == 1  # type: ignore[attr-defined]  # one context per process


def test_a_local_run_wins_over_azureml_variables(
    azureml_run: _RecordingRun, local_run: Path
) -> None:
    assert current_destination() == "local"
    mlboot.log_metric("loss", 0.5)
    assert azureml_run.logged == []
    assert read_metrics(local_run) == {"loss": [0.5]}


def test_azureml_is_only_imported_on_azureml(tmp_path: Path) -> None:
    code = (
        "import sys, mlboot\n"
        "mlboot.log_metric('loss', 1.0)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'azureml'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZUREML_", "MLBOOT_"))}
    env["MLBOOT_RUN_DIR"] = str(tmp_path)
    result = subprocess.run(  # noqa: S603  (our own interpreter, fixed code)
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert result.stdout.strip() == "[]"
    assert read_metrics(tmp_path) == {"loss": [1.0]}


def test_concurrent_writers_never_tear_lines(tmp_path: Path) -> None:
    code = (
        "import sys, mlboot\n"
        "for i in range(200):\n"
        "    mlboot.log_metric('w' + sys.argv[1], 'x' * 500 + str(i), step=i)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZUREML_", "MLBOOT_"))}
    env["MLBOOT_RUN_DIR"] = str(tmp_path)
    writers = [
        subprocess.Popen([sys.executable, "-c", code, str(n)], env=env)  # noqa: S603
        for n in range(4)
    ]
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    lines = (tmp_path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 800
    metrics = read_metrics(tmp_path)
    for n in range(4):
        assert metrics[f"w{n}"] == ["x" * 500 + str(i) for i in range(200)]


def test_output_dir_is_outputs_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = mlboot.output_dir()
    assert folder == tmp_path / "outputs"
    assert folder.is_dir()
    assert mlboot.output_dir() == folder  # idempotent


@pytest.fixture
def v2_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a job of the azureml-v2 backend has: Azure ML's variables and MLBOOT_TRACKING."""
    monkeypatch.setenv("AZUREML_RUN_ID", "exp_1_abcdef12")
    monkeypatch.setenv("AZUREML_SERVICE_ENDPOINT", "https://westeurope.api.azureml.ms")
    monkeypatch.setenv("MLBOOT_TRACKING", "mlflow")


def test_in_a_v2_job_metrics_go_through_mlflow_to_the_jobs_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow", reason="the v2 extra (mlboot[v2]) is not installed")
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    # MLflow's own file store stands in for the workspace's tracking service (its SQL stores
    # need SQLAlchemy, which mlflow-skinny does not bring).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("exp")).info.run_id
    code = (
        "import sys, mlboot\n"
        "mlboot.log_metric('loss', 0.5, step=0)\n"
        "mlboot.log_metric('loss', 0.25, step=1)\n"
        "mlboot.log_metrics({'acc': 0.9}, step=1)\n"
        "print('azureml.core' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZUREML_", "MLBOOT_"))}
    # What Azure ML sets in a job, and what the azureml-v2 backend adds.
    env.update(
        AZUREML_RUN_ID=run_id,
        AZUREML_SERVICE_ENDPOINT="https://westeurope.api.azureml.ms",
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_RUN_ID=run_id,
        MLFLOW_ALLOW_FILE_STORE="true",
        MLBOOT_TRACKING="mlflow",
    )
    result = subprocess.run(  # noqa: S603  (our own interpreter, fixed code)
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )

    # azureml-core is not needed in a v2 job (azureml-mlflow's MLflow plugin loads azureml.mlflow).
    assert result.stdout.strip() == "False"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.25)]
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "acc")] == [(1, 0.9)]


@pytest.mark.usefixtures("v2_job")
def test_in_a_v2_job_a_text_metric_is_refused_before_any_is_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # nothing may reach MLflow
    assert current_destination() == "mlflow"

    with pytest.raises(InvalidInputError, match="MLflow, which keeps numbers only") as caught:
        mlboot.log_metrics({"loss": 0.5, "note": "warm-up"})

    assert (caught.value.field, caught.value.value) == ("value", "warm-up")


@pytest.mark.usefixtures("v2_job")
def test_in_a_v2_job_without_mlflow_the_error_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError

    with pytest.raises(MissingExtraError, match="azureml-mlflow") as caught:
        mlboot.log_metric("loss", 0.5)

    assert caught.value.extra == "v2"
