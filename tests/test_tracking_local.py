"""Local runs record what scripts log through MLflow and azureml-core, and MLflow can read them.

Real scripts in real local runs (subprocesses), each using the logging calls a training script
already makes; ``run.metrics()`` must return exactly what they logged, in logging order.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlboot
from mlboot import LocalBackend, Run, RunStatus, Workspace
from mlboot._tracking_local import (
    append_metric,
    create_run,
    experiment_id,
    read_records,
    store_uri,
)

CONFIG = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-local",
    "workspace_name": "ws-local",
}
DEADLINE = 60.0
NAN, INF = float("nan"), float("inf")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / ".mlboot"


@pytest.fixture
def workspace(tmp_path: Path, root: Path) -> Workspace:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")
    return mlboot.workspace_from_config(config, backend=LocalBackend(root))


def start_script(
    workspace: Workspace,
    tmp_path: Path,
    code: str,
    *,
    environment: mlboot.Environment | None = None,
) -> Run:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "train.py").write_text(textwrap.dedent(code), encoding="utf-8")
    pool = mlboot.get_or_create_compute_target(
        workspace, "cpu", vm_size="Standard_DS3_v2", max_nodes=2
    )
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute=pool,
        experiment="demo",
        source_directory=project,
        environment=environment,
    )


def run_script(workspace: Workspace, tmp_path: Path, code: str) -> Run:
    run = start_script(workspace, tmp_path, code)
    status = run.wait(timeout=DEADLINE, poll_interval=0.05)
    assert status is RunStatus.COMPLETED, run.logs()
    return run


def same(actual: object, expected: object) -> bool:
    """Equality where NaN equals NaN (metric values compared as logged)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        return list(actual) == list(expected) and all(same(actual[k], expected[k]) for k in actual)
    if isinstance(actual, list | tuple) and isinstance(expected, list | tuple):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(actual, float) and isinstance(expected, float):
        return actual == expected or (math.isnan(actual) and math.isnan(expected))
    return type(actual) is type(expected) and actual == expected


MLFLOW_SCRIPT = """\
import sys
import mlflow
import mlboot

mlflow.log_param("lr", 0.1)
mlflow.log_params({"epochs": 3, "optimizer": "adam"})
mlflow.set_tag("kind", "demo")
mlflow.set_tags({"team": "vision", "stage": "dev"})
mlflow.log_metric("loss", 0.5, step=0)
mlboot.log_metric("acc", 0.7, step=0)
mlflow.log_metric("loss", float("nan"), step=1)
mlflow.log_metrics({"acc": float("inf"), "f1": float("-inf")}, step=1)
mlboot.log_metric("note", "converged")
mlflow.log_metric("loss", 0.125, step=2)
open("model.txt", "w").write("weights")
mlflow.log_artifact("model.txt")
import os
os.makedirs("plots", exist_ok=True)
open("plots/curve.txt", "w").write("1 2 3")
mlflow.log_artifacts("plots", artifact_path="plots")
print("azureml imported:", "azureml.core" in sys.modules)
"""


def test_an_mlflow_script_reports_its_metrics_merged_with_mlboot_log_metric_in_order(
    workspace: Workspace, tmp_path: Path, root: Path
) -> None:
    run = run_script(workspace, tmp_path, MLFLOW_SCRIPT)
    assert same(
        run.metrics(),
        {
            "loss": [0.5, NAN, 0.125],
            "acc": [0.7, INF],
            "f1": [-INF],
            "note": ["converged"],
        },
    )
    records = read_records(LocalBackend(root).run_folder(run.id))
    assert same(
        [(name, value, step) for name, value, step, _ in records],
        [
            ("loss", 0.5, 0),
            ("acc", 0.7, 0),
            ("loss", NAN, 1),
            ("acc", INF, 1),
            ("f1", -INF, 1),
            ("note", "converged", None),
            ("loss", 0.125, 2),
        ],
    )
    assert "azureml imported: False" in run.logs()


INTERLEAVED_SCRIPT = """\
import mlflow
import mlboot

with mlflow.start_run():  # resumes the local run's MLflow run
    for i in range(40):
        mlflow.log_metric("b", float(i), step=i)
        mlflow.log_metrics({"z": float(i), "a": float(-i)}, step=i)
        mlboot.log_metric("m", i, step=i)
"""


def test_values_of_different_metrics_logged_within_a_millisecond_keep_their_logging_order(
    workspace: Workspace, tmp_path: Path, root: Path
) -> None:
    # MLflow's file store keeps one file per metric and times in milliseconds: the order among
    # these (logged far faster than one per millisecond) survives only through mlboot's journal.
    run = run_script(workspace, tmp_path, INTERLEAVED_SCRIPT)
    records = read_records(LocalBackend(root).run_folder(run.id))
    expected: list[tuple[str, float | int, int]] = []
    for i in range(40):
        expected += [("b", float(i), i), ("z", float(i), i), ("a", float(-i), i), ("m", i, i)]
    assert same([(name, value, step) for name, value, step, _ in records], expected)
    assert list(run.metrics()) == ["b", "z", "a", "m"]


BROKEN_HOOK_SCRIPT = """\
import sys
sys.modules["mlboot._tracking_local"] = None  # the hook's own module cannot be imported now
import mlflow

mlflow.log_metric("loss", 0.5)
print("imported and logged")
"""


def test_a_hook_that_cannot_patch_never_breaks_the_scripts_import(
    workspace: Workspace, tmp_path: Path
) -> None:
    run = run_script(workspace, tmp_path, BROKEN_HOOK_SCRIPT)
    logs = run.logs()
    assert "imported and logged" in logs
    assert (
        "mlboot could not make mlflow.store.tracking.file_store record into the local run" in logs
    )
    assert same(run.metrics(), {"loss": [0.5]})  # still in MLflow's own files


ODD_NAMES_SCRIPT = """\
import mlboot
from azureml.core import Run

run = Run.get_context()
mlboot.log_metric("x" * 300, 1.0)  # longer than MLflow takes: kept by mlboot only
mlboot.log_metric("\u00e9" * 200, 2.0)  # 400 bytes: no file can be named so
run.log("y" * 300, 3.0)
for name in ("", "/", "../escape.txt"):
    try:
        run.upload_file(name, __file__)
    except ValueError as exc:
        print("refused:", exc)
print("still running")
"""


def test_odd_names_never_break_the_script_and_keep_their_values(
    workspace: Workspace, tmp_path: Path
) -> None:
    run = run_script(workspace, tmp_path, ODD_NAMES_SCRIPT)
    logs = run.logs()
    assert "still running" in logs
    assert logs.count("refused: upload_file") == 3
    assert same(run.metrics(), {"x" * 300: [1.0], "\u00e9" * 200: [2.0], "y" * 300: [3.0]})


V1_TUTORIAL = """\
# A Microsoft v1 tutorial's training script, as written for ScriptRunConfig (unchanged).
import argparse
import os
import sys

from azureml.core import Run

run = Run.get_context()
parser = argparse.ArgumentParser()
parser.add_argument("--regularization", type=float, default=0.01)
args = parser.parse_args()
run.log("Regularization Rate", float(args.regularization))
for epoch in range(3):
    run.log("loss", 1.0 / (epoch + 1), step=epoch)
    run.log_row("progress", epoch=epoch, error=0.5 / (epoch + 1))
run.log("accuracy", float("nan"))
run.log("best", float("inf"))
run.log_list("alphas", [0.1, 0.2, 0.4])
run.log_table("confusion", {"tp": [5, 6], "fp": [1, 0]})
run.tag("framework", "sklearn")
run.set_tags({"owner": "ana", "team": "ml"})
os.makedirs("outputs", exist_ok=True)
with open("model.pkl", "w") as f:
    f.write("weights")
run.upload_file(name="outputs/sklearn_mnist_model.pkl", path_or_stream="model.pkl")
run.upload_file(name="reports/summary.txt", path_or_stream="model.pkl")
print("mlflow imported:", "mlflow" in sys.modules)
"""


@pytest.mark.sdk
def test_a_v1_tutorial_script_run_context_records_into_the_local_run(
    workspace: Workspace, tmp_path: Path, root: Path
) -> None:
    run = run_script(workspace, tmp_path, V1_TUTORIAL)
    assert same(
        run.metrics(),
        {
            "Regularization Rate": [0.01],
            "loss": [1.0, 0.5, 1 / 3],
            "progress/epoch": [0, 1, 2],
            "progress/error": [0.5, 0.25, 0.5 / 3],
            "accuracy": [NAN],
            "best": [INF],
            "alphas": [0.1, 0.2, 0.4],
            "confusion/tp": [5, 6],
            "confusion/fp": [1, 0],
        },
    )
    logs = run.logs()
    assert "Attempted to" not in logs
    assert "mlflow imported: False" in logs
    downloaded = run.download_outputs(tmp_path / "results")
    assert downloaded == [tmp_path / "results" / "outputs" / "sklearn_mnist_model.pkl"]
    records = read_records(LocalBackend(root).run_folder(run.id))
    assert [step for name, _, step, _ in records if name == "loss"] == [0, 1, 2]


def test_mlflow_tracking_client_reads_local_runs_as_the_ui_does(
    workspace: Workspace, tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_script(workspace, tmp_path, MLFLOW_SCRIPT)
    plain = run_script(
        workspace,
        tmp_path,
        "import mlboot\nfor i in range(3):\n    mlboot.log_metric('loss', 1 / (i + 1), step=i)\n"
        "(mlboot.output_dir() / 'out.txt').write_text('x')\n",
    )
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient  # noqa: PLC0415  (the optional extra)

    client = MlflowClient(tracking_uri=store_uri(root))
    experiment = client.get_experiment_by_name("demo")
    assert experiment is not None
    assert experiment.experiment_id == experiment_id("demo")
    found = client.search_runs([experiment.experiment_id])
    assert {r.info.run_id for r in found} == {run.id, plain.id}
    seen = client.get_run(run.id)
    assert seen.info.status == "FINISHED"
    assert seen.data.params == {"lr": "0.1", "epochs": "3", "optimizer": "adam"}
    assert {"kind": "demo", "team": "vision", "stage": "dev"}.items() <= seen.data.tags.items()
    assert seen.data.tags["mlflow.runName"] == run.id
    history = client.get_metric_history(run.id, "loss")
    assert same([(m.step, m.value) for m in history], [(0, 0.5), (1, NAN), (2, 0.125)])
    # mlboot.log_metric's numbers are in MLflow too (a str value is not: MLflow has none).
    assert [(m.step, m.value) for m in client.get_metric_history(run.id, "acc")] == [
        (0, 0.7),
        (1, INF),
    ]
    artifacts = {a.path for a in client.list_artifacts(run.id)}
    assert artifacts == {"model.txt", "plots"}  # it wrote no ./outputs
    other = client.get_run(plain.id)
    assert [m.value for m in client.get_metric_history(plain.id, "loss")] == [1.0, 0.5, 1 / 3]
    assert other.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(plain.id, "outputs")] == ["outputs/out.txt"]


def test_a_failed_run_is_failed_in_mlflow(
    workspace: Workspace, tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = start_script(
        workspace, tmp_path, "import mlflow\nmlflow.log_metric('loss', 1.0)\nraise SystemExit(3)\n"
    )
    with pytest.raises(mlboot.exceptions.RunFailedError):
        run.wait(timeout=DEADLINE, poll_interval=0.05)
    assert run.metrics() == {"loss": [1.0]}
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    assert MlflowClient(tracking_uri=store_uri(root)).get_run(run.id).info.status == "FAILED"


def test_a_script_using_neither_mlflow_nor_azureml_imports_neither(
    workspace: Workspace, tmp_path: Path
) -> None:
    run = run_script(
        workspace,
        tmp_path,
        "import sys, mlboot\nmlboot.log_metric('x', 1)\n"
        "print('imported:', sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'mlflow', 'azureml'}))\n",
    )
    assert "imported: []" in run.logs()
    assert run.metrics() == {"x": [1]}


def test_import_mlboot_does_not_import_mlflow() -> None:
    code = "import sys, mlboot; mlboot.LocalBackend; print('mlflow' in sys.modules)"
    result = subprocess.run(  # noqa: S603  (our own interpreter, our own code)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_the_sitecustomize_the_hook_shadows_still_runs(
    workspace: Workspace, tmp_path: Path
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import os\nos.environ['THEIRS'] = 'ran'\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("")
    environment = mlboot.Environment.from_pip_requirements(
        requirements, variables={"PYTHONPATH": str(theirs)}
    )
    run = start_script(
        workspace,
        tmp_path,
        "import os, sys\nprint('theirs:', os.environ.get('THEIRS'))\n"
        "print('shim on path:', any('_shim' in p for p in sys.path))\n",
        environment=environment,
    )
    assert run.wait(timeout=DEADLINE, poll_interval=0.05) is RunStatus.COMPLETED
    logs = run.logs()
    assert "theirs: ran" in logs
    assert "shim on path: False" in logs


def test_mlboot_log_metric_copies_are_not_counted_twice_and_times_order_the_merge(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    run_dir = root / "runs" / "demo_1_abcdef12"
    run_dir.mkdir(parents=True)
    create_run(root, run_dir, experiment="demo", script="train.py", tags={})
    append_metric(run_dir, "loss", 1.0, 0, when=10.0)
    append_metric(run_dir, "loss", 1.0, 0, when=10.0)  # the same value twice: both kept
    append_metric(run_dir, "odd name?", NAN, None, when=12.0)  # not a name MLflow takes
    mlflow_file = root / "mlruns" / experiment_id("demo") / run_dir.name / "metrics" / "loss"
    with mlflow_file.open("a") as file:  # what MLflow itself appends, between the two times
        file.write("11000 0.5 1\n")
    assert same(
        [(n, v, s) for n, v, s, _ in read_records(run_dir)],
        [("loss", 1.0, 0), ("loss", 1.0, 0), ("loss", 0.5, 1), ("odd name?", NAN, None)],
    )
    assert mlflow_file.read_text().count("\n") == 3


def test_the_offline_run_hook_records_uploads_and_tags_and_refuses_names_leading_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io  # noqa: PLC0415
    import types  # noqa: PLC0415

    from mlboot._tracking_local import patch_offline_run  # noqa: PLC0415

    root = tmp_path / "ws"
    run_dir = root / "runs" / "demo_1_abcdef12"
    run_dir.mkdir(parents=True)
    create_run(root, run_dir, experiment="demo", script="train.py", tags={"given": "yes"})
    module = types.ModuleType("azureml.core.run")

    class _OfflineRun:
        def log(self, name: str, value: object) -> None:
            raise AssertionError(f"not replaced: {name}={value}")

    module._OfflineRun = _OfflineRun  # type: ignore[attr-defined]
    patch_offline_run(module, run_dir)
    working = tmp_path / "wd"
    working.mkdir()
    monkeypatch.chdir(working)
    run = _OfflineRun()
    run.log("loss", 0.5)
    run.upload_file("outputs/a.txt", io.BytesIO(b"bytes"))  # type: ignore[attr-defined]
    run.upload_file("extra/b.txt", io.StringIO("text"))  # type: ignore[attr-defined]
    run.set_tags(["flag"])  # type: ignore[attr-defined]
    for name in ("../escape.txt", "", "/"):
        with pytest.raises(ValueError, match="names no file inside the run's files"):
            run.upload_file(name, io.BytesIO(b"x"))  # type: ignore[attr-defined]
    mlflow_run = root / "mlruns" / experiment_id("demo") / run_dir.name
    assert (working / "outputs" / "a.txt").read_bytes() == b"bytes"
    assert (mlflow_run / "artifacts" / "extra" / "b.txt").read_text() == "text"
    assert (mlflow_run / "tags" / "flag").read_text() == ""
    assert (mlflow_run / "tags" / "given").read_text() == "yes"
    assert not (tmp_path / "escape.txt").exists()
    assert [(n, v, s) for n, v, s, _ in read_records(run_dir)] == [("loss", 0.5, None)]
