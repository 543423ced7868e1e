"""mlboot.list_runs: a workspace's recent runs, newest first, filtered and bounded."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import mlboot
from mlboot.exceptions import InvalidInputError
from mlboot.testing import FakeBackend


def _workspace(backend: mlboot.Backend) -> mlboot.Workspace:
    return mlboot.Workspace(
        name="ws",
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg",
        location="westeurope",
        backend=backend,
    )


def test_the_fake_lists_newest_first_filtered_and_bounded() -> None:
    fake = FakeBackend()
    fake.add_run("a_1", experiment="a", statuses=("Completed",))
    fake.add_run("b_2", experiment="b", statuses=("Failed",))
    fake.add_run("a_3", experiment="a", statuses=("Running",))
    workspace = _workspace(fake)
    assert [info.run.id for info in mlboot.list_runs(workspace)] == ["a_3", "b_2", "a_1"]
    assert [info.run.id for info in mlboot.list_runs(workspace, experiment="a")] == ["a_3", "a_1"]
    failed = mlboot.list_runs(workspace, status="failed")
    assert [(info.run.id, info.status) for info in failed] == [("b_2", mlboot.RunStatus.FAILED)]
    assert [info.run.id for info in mlboot.list_runs(workspace, limit=1)] == ["a_3"]
    assert mlboot.list_runs(workspace, experiment="missing") == []


@pytest.mark.parametrize(
    ("keywords", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"status": "Done"}, "status"),
        ({"experiment": ""}, "experiment"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    keywords: dict[str, object], field: str
) -> None:
    fake = FakeBackend()
    with pytest.raises(InvalidInputError) as caught:
        mlboot.list_runs(_workspace(fake), **keywords)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert fake.calls_to("list_runs") == []


def test_the_local_backend_reads_run_folders_and_skips_others(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for run_id, experiment, submitted, status in [
        ("e_1_aaaaaaaa", "e", "2026-01-01T00:00:00.000Z", "Completed"),
        ("e_2_bbbbbbbb", "e", "2026-01-02T00:00:00.000Z", "Failed"),
    ]:
        folder = runs / run_id
        folder.mkdir(parents=True)
        request = {"run_id": run_id, "experiment": experiment, "submitted_at": submitted}
        (folder / "run.json").write_text(json.dumps(request))
        record = {
            "status": status,
            "start_time": "2026-01-01T00:00:00.000Z",
            "end_time": "2026-01-01T00:01:30.500Z",
        }
        (folder / "status.json").write_text(json.dumps(record))
    (runs / "half_made").mkdir()  # no run.json: not (yet) a run
    found = mlboot.list_runs(_workspace(mlboot.LocalBackend(tmp_path)))
    assert [info.run.id for info in found] == ["e_2_bbbbbbbb", "e_1_aaaaaaaa"]
    assert found[0].status is mlboot.RunStatus.FAILED
    assert found[0].duration == dt.timedelta(seconds=90.5)
