"""``mlboot runs plot``: a PNG of metrics over steps, on any backend; matplotlib is an extra."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import mlboot
from mlboot import LocalBackend, Run, RunStatus, Workspace
from mlboot._cli import ExitCode, main
from mlboot._plot import plot_metrics
from mlboot.exceptions import InvalidInputError, LocalStorageError, MissingExtraError
from mlboot.testing import FakeBackend

CONFIG = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-plot",
    "workspace_name": "ws-plot",
    "mlboot_backend": "local",
}
TRAIN = """\
import math, sys
import mlboot
scale = float(sys.argv[1])
for step in range(20):
    mlboot.log_metric("loss", scale * math.exp(-step / 5), step=step)
    mlboot.log_metric("accuracy", 1 - scale * math.exp(-step / 4) / 2, step=step)
mlboot.log_metric("accuracy", float("nan"), step=20)
mlboot.log_metric("note", "done")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(TRAIN, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def submit(workspace: Workspace, scale: float) -> Run:
    if workspace.backend.get_compute(workspace.ref, "cpu") is None:  # type: ignore[attr-defined]
        mlboot.get_or_create_compute_target(workspace, "cpu", vm_size="Standard_D2_v3", max_nodes=2)
    run = mlboot.submit_script(
        workspace, "train.py", compute="cpu", experiment="plots", source_directory="src",
        arguments=[scale],
    )  # fmt: skip
    assert run.wait(timeout=60, poll_interval=0.05) is RunStatus.COMPLETED
    return run


def pixels(path: Path) -> object:
    from matplotlib import image  # noqa: PLC0415  (the plot extra, installed for the tests)

    return image.imread(path)


def test_runs_plot_writes_a_png_that_is_not_blank_comparing_two_runs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = mlboot.workspace_from_config(project / "config.json")
    first, second = submit(workspace, 1.0), submit(workspace, 0.5)
    capsys.readouterr()
    out = project / "charts" / "loss.png"
    code = main(["runs", "plot", first.id, "loss", "accuracy", "--with", second.id, "-o",
                 str(out), "--json"])  # fmt: skip
    assert code == ExitCode.OK
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "file": str(out),
        "run_ids": [first.id, second.id],
        "metrics": ["loss", "accuracy"],
    }
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    picture = pixels(out)
    assert picture.shape[0] > 400  # type: ignore[attr-defined]  # two panels, one above the other
    assert float(picture[..., :3].std()) > 0.05  # type: ignore[index]  # lines, not a blank page


def test_runs_plot_draws_every_numeric_metric_by_default(project: Path) -> None:
    workspace = mlboot.workspace_from_config(project / "config.json")
    run = submit(workspace, 1.0)
    written, names = plot_metrics([run], project / "all.png")
    assert names == ["loss", "accuracy"]  # "note" is a str: not drawn
    assert written.stat().st_size > 10_000


def test_runs_plot_of_a_metric_no_run_logged_names_those_there_are(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = mlboot.workspace_from_config(project / "config.json")
    run = submit(workspace, 1.0)
    capsys.readouterr()
    assert main(["runs", "plot", run.id, "los", "-o", "x.png"]) == ExitCode.BAD_INPUT
    error = capsys.readouterr().err
    assert "'los'" in error
    assert "'loss', 'accuracy'" in error
    assert not (project / "x.png").exists()


def fake_run(project: Path) -> Run:
    backend = FakeBackend()
    backend.add_run("plots_1_abcdef12", metrics={"loss": [1.0, 0.5, 0.25, 0.2], "note": ["x"]})
    workspace = mlboot.workspace_from_config(project / "config.json", backend=backend)
    return mlboot.get_run(workspace, "plots_1_abcdef12")


def test_plot_on_a_backend_without_steps_draws_values_in_logging_order(project: Path) -> None:
    written, names = plot_metrics([fake_run(project)], project / "fake.png")
    assert names == ["loss"]
    assert float(pixels(written)[..., :3].std()) > 0.05  # type: ignore[index]


def test_plot_without_matplotlib_says_which_extra_to_install(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = fake_run(project)
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # an import of it fails, as if missing
    with pytest.raises(MissingExtraError, match=r"mlboot\[plot\]") as caught:
        plot_metrics([run], project / "none.png")
    assert caught.value.extra == "plot"
    assert isinstance(caught.value, ImportError)
    assert not (project / "none.png").exists()


def test_plot_refuses_a_file_that_is_not_a_png(project: Path) -> None:
    workspace = mlboot.workspace_from_config(project / "config.json")
    assert isinstance(workspace.backend, LocalBackend)
    run = submit(workspace, 1.0)
    with pytest.raises(InvalidInputError, match="PNG"):
        plot_metrics([run], project / "chart.jpg")


@pytest.mark.parametrize("output", ["bad\x00name.png", b"chart.png", 3, ""])
def test_plot_refuses_an_output_that_is_no_file_name(project: Path, output: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        plot_metrics([fake_run(project)], output)  # type: ignore[arg-type]
    assert caught.value.field == "output"


def test_plot_into_a_folder_or_an_unwritable_place_is_a_typed_error(project: Path) -> None:
    run = fake_run(project)
    (project / "charts.png").mkdir()
    with pytest.raises(InvalidInputError, match="it is a folder"):
        plot_metrics([run], project / "charts.png")
    (project / "blocker").write_text("a file where a folder is needed", encoding="utf-8")
    with pytest.raises(LocalStorageError, match="writing the chart") as caught:
        plot_metrics([run], project / "blocker" / "chart.png")
    assert isinstance(caught.value, OSError)


def test_plot_replaces_a_link_at_the_output_and_never_writes_through_it(project: Path) -> None:
    victim = project / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (project / "chart.png").symlink_to(victim)
    written, _ = plot_metrics([fake_run(project)], project / "chart.png")
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not written.is_symlink()
    assert written.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in project.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("runs", "metrics", "field"),
    [("abc", (), "runs"), ([], (), "runs"), (["x"], (), "runs"), (None, "loss", "metrics")],
)
def test_plot_refuses_runs_and_metrics_of_the_wrong_kind(
    project: Path, runs: object, metrics: object, field: str
) -> None:
    given = [fake_run(project)] if runs is None else runs
    with pytest.raises(InvalidInputError) as caught:
        plot_metrics(given, project / "x.png", metrics)  # type: ignore[arg-type]
    assert caught.value.field == field
