"""Run.file_names and Run.download_files on the wire: mlboot -> azureml-core -> the emulator.

What each call sends (one artifact listing; per file, one content-info request and one blob
GET), that a prefix downloads only its files, that a name leading out of the destination is
refused before any file is fetched, and how a failing listing is retried.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import mlboot
from emulator import Emulator
from mlboot.exceptions import ServiceError, WaitTimeoutError

pytestmark = [
    pytest.mark.sdk,
]

LOG = "epoch 1\nepoch 2\n"
OUTPUTS = {"model.pt": b"weights", "eval/report.json": b"{}"}
NAMES = [
    "logs/train.csv",
    "outputs/eval/report.json",
    "outputs/model.pt",
    "user_logs/std_log.txt",
]


@pytest.fixture
def workspace(emulator: Emulator, config: Path) -> mlboot.Workspace:
    return mlboot.workspace_from_config(config, auth=emulator.auth)


def _run(emulator: Emulator, workspace: mlboot.Workspace, **outputs: bytes) -> mlboot.Run:
    state = emulator.add_run(
        "exp",
        ("Completed",),
        logs={"user_logs/std_log.txt": LOG, "logs/train.csv": "epoch,loss\n1,0.5\n"},
        outputs={**OUTPUTS, **outputs},
    )
    run = mlboot.get_run(workspace, state.run_id)
    emulator.clear_requests()
    return run


def _fetched(emulator: Emulator) -> list[str]:
    """The artifact paths whose content info azureml-core asked for, in order."""
    return [r.params["artifact_path"] for r in emulator.requests_to("artifact.contentinfo")]


def test_file_names_is_one_artifact_listing(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    run = _run(emulator, workspace)

    assert run.file_names() == NAMES
    assert run.file_names(prefix="outputs/") == NAMES[1:3]

    assert emulator.count("artifact.list") == 2
    assert emulator.route_sequence(include_blob=True) == ["artifact.list", "artifact.list"]


def test_download_files_fetches_each_named_file_once_and_only_those(
    emulator: Emulator, workspace: mlboot.Workspace, tmp_path: Path
) -> None:
    run = _run(emulator, workspace)

    paths = run.download_files(tmp_path / "got", prefix="outputs/")

    assert paths == [tmp_path / "got" / name for name in NAMES[1:3]]
    assert [p.read_bytes() for p in paths] == [b"{}", b"weights"]
    assert emulator.count("artifact.list") == 1
    assert _fetched(emulator) == NAMES[1:3]
    assert len([r for r in emulator.requests if r.is_blob and r.method == "GET"]) == 2
    assert not (tmp_path / "got" / "user_logs").exists()


def test_every_file_lands_at_its_name_below_the_destination(
    emulator: Emulator, workspace: mlboot.Workspace, tmp_path: Path
) -> None:
    run = _run(emulator, workspace)

    paths = run.download_files(tmp_path / "got")

    assert paths == [tmp_path / "got" / name for name in NAMES]
    assert (tmp_path / "got" / "user_logs" / "std_log.txt").read_text(encoding="utf-8") == LOG
    assert _fetched(emulator) == NAMES


def test_a_name_leading_out_of_the_destination_is_refused_before_any_file_is_fetched(
    emulator: Emulator, workspace: mlboot.Workspace, tmp_path: Path
) -> None:
    run = _run(emulator, workspace, **{"outputs/../../escaped.txt": b"x"})

    with pytest.raises(ServiceError, match="nothing was downloaded"):
        run.download_files(tmp_path / "a" / "b")

    assert _fetched(emulator) == []
    assert not any(r.is_blob for r in emulator.requests)
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_a_listing_answered_503_once_is_retried_by_the_sdk_alone(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    run = _run(emulator, workspace)
    emulator.fail("artifact.list", 503, times=1)

    assert run.file_names() == NAMES

    assert emulator.statuses("artifact.list") == [503, 200]


@pytest.mark.parametrize("timeout", [3.0, 5.0])
@pytest.mark.parametrize("call", ["file_names", "download_files"])
def test_a_listing_that_keeps_failing_ends_within_the_timeout(
    emulator: Emulator, workspace: mlboot.Workspace, tmp_path: Path, call: str, timeout: float
) -> None:
    run = _run(emulator, workspace)
    emulator.fail("artifact.list", 503, times=100)
    calls = {
        "file_names": lambda: run.file_names(timeout=timeout),
        "download_files": lambda: run.download_files(tmp_path / "got", timeout=timeout),
    }
    started = time.monotonic()

    # The SDK's retries, bounded by the deadline: either the deadline refuses the next retry
    # (WaitTimeoutError) or the SDK gives up first on the last answer (a transient 503).
    with pytest.raises((WaitTimeoutError, ServiceError)) as caught:
        calls[call]()

    assert time.monotonic() - started <= timeout + 1.0  # the documented margin
    assert "HTTP 503" in str(caught.value)
    if not isinstance(caught.value, WaitTimeoutError):
        assert caught.value.transient
    assert 1 <= emulator.count("artifact.list") <= 16  # azureml-core's own attempts only
    assert _fetched(emulator) == []
    assert not (tmp_path / "got").exists()


def test_a_listing_that_keeps_failing_without_a_timeout_is_attempted_once_by_mlboot(
    emulator: Emulator, workspace: mlboot.Workspace
) -> None:
    run = _run(emulator, workspace)
    emulator.fail("artifact.list", 503, times=100)

    with pytest.raises(ServiceError) as caught:
        run.file_names()

    assert caught.value.transient
    assert caught.value.status == 503
    assert emulator.count("artifact.list") == 16  # azureml-core's: 4 of its own, 4 of msrest each
