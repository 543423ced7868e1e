"""Any file of a run, read back: ``Run.file_names`` and ``Run.download_files``.

On the fake (programmed files, recorded calls, its clock) and on real local runs (the run
folder mapped to Azure ML's names, links never followed).  The same scenarios on every backend,
the emulator's included, are in tests/contract.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

import mlboot
from local_runs import local_workspace, run_folder, submit_local
from mlboot import Run
from mlboot.backend import WorkspaceRef
from mlboot.exceptions import (
    InvalidInputError,
    LocalStorageError,
    NotFoundError,
    ServiceError,
    ThrottledError,
)
from mlboot.testing import FakeBackend

LOCAL_DEADLINE = 60.0

RUN_FILES = {
    "logs/train.csv": b"epoch,loss\n1,0.5\n",
    "azureml-logs/70_driver_log.txt": b"driver\n",
}


def start(fake: FakeBackend, workspace: mlboot.Workspace, **program: Any) -> Run:
    """A completed run doing ``program``, put in place as if submitted elsewhere."""
    fake.add_run("run-1", experiment="exp", statuses=("Completed",), **program)
    return Run(id="run-1", experiment="exp", workspace=workspace)


@pytest.fixture
def run(fake: FakeBackend, workspace: mlboot.Workspace) -> Run:
    return start(
        fake,
        workspace,
        logs="epoch 1\n",
        outputs={"model.pt": b"weights", "eval/report.json": b"{}"},
        files=RUN_FILES,
    )


# -- file_names ------------------------------------------------------------------------------------


def test_file_names_lists_the_log_the_outputs_and_every_other_file_sorted(run: Run) -> None:
    assert run.file_names() == [
        "azureml-logs/70_driver_log.txt",
        "logs/train.csv",
        "outputs/eval/report.json",
        "outputs/model.pt",
        "user_logs/std_log.txt",
    ]


def test_file_names_with_a_prefix_keeps_the_names_that_start_with_it(run: Run) -> None:
    assert run.file_names(prefix="outputs/") == ["outputs/eval/report.json", "outputs/model.pt"]
    assert run.file_names(prefix="logs") == ["logs/train.csv"]
    assert run.file_names(prefix="outputs/model") == ["outputs/model.pt"]
    assert run.file_names(prefix="nothing/") == []


def test_file_names_of_a_run_the_service_does_not_know_is_not_found(
    workspace: mlboot.Workspace,
) -> None:
    with pytest.raises(NotFoundError):
        Run(id="gone", experiment="exp", workspace=workspace).file_names()


def test_a_transient_listing_failure_is_not_retried_by_mlboot(fake: FakeBackend, run: Run) -> None:
    # The SDK retries its listing itself; mlboot's retries on top would multiply them.
    fake.fail("list_run_files", "transient", times=1)

    with pytest.raises(ServiceError) as caught:
        run.file_names()

    assert caught.value.transient
    assert len(fake.calls_to("list_run_files")) == 1
    assert run.file_names(prefix="logs/") == ["logs/train.csv"]


def test_a_throttled_listing_is_a_throttled_error_with_its_retry_after(
    fake: FakeBackend, run: Run, tmp_path: Path
) -> None:
    fake.fail("list_run_files", "throttled", times=2)

    for call in (run.file_names, lambda: run.download_files(tmp_path / "got")):
        with pytest.raises(ThrottledError) as caught:
            call()
        assert caught.value.retry_after == 1.0
    assert len(fake.calls_to("list_run_files")) == 2
    assert fake.calls_to("download_run_files") == []
    assert fake.clock.sleeps == []


BAD_PREFIXES = [
    pytest.param(42, "it must be a str or None", id="not-a-str"),
    pytest.param(b"outputs/", "it must be a str or None", id="bytes"),
    pytest.param("../secrets", "'..'", id="dot-dot"),
    pytest.param("outputs/../..", "'..'", id="dot-dot-inside"),
    pytest.param("/etc/", "relative", id="absolute"),
    pytest.param("outputs\\model", "use /", id="backslash"),
    pytest.param("out\x00puts", "NUL", id="nul"),
]


@pytest.mark.parametrize(("prefix", "rule"), BAD_PREFIXES)
def test_a_bad_prefix_is_refused_before_anything_remote(
    fake: FakeBackend, run: Run, tmp_path: Path, prefix: object, rule: str
) -> None:
    for call in (
        lambda: run.file_names(prefix=prefix),  # type: ignore[arg-type]
        lambda: run.download_files(tmp_path / "got", prefix=prefix),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert caught.value.field == "prefix"
        assert caught.value.value == prefix
        assert rule in caught.value.rule
        assert "prefix='outputs/'" in caught.value.fix
    assert fake.calls == []
    assert not (tmp_path / "got").exists()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), True, "60"])
def test_a_bad_timeout_is_refused_before_anything_remote(
    fake: FakeBackend, run: Run, tmp_path: Path, timeout: object
) -> None:
    with pytest.raises(InvalidInputError) as listing:
        run.file_names(timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError) as download:
        run.download_files(tmp_path, timeout=timeout)  # type: ignore[arg-type]
    assert listing.value.field == download.value.field == "timeout"
    assert fake.calls == []


# -- download_files --------------------------------------------------------------------------------


def test_download_files_writes_every_file_at_destination_slash_its_name(
    fake: FakeBackend, run: Run, tmp_path: Path
) -> None:
    destination = tmp_path / "got"

    paths = run.download_files(destination)

    names = run.file_names()
    assert paths == [destination / name for name in names]
    assert (destination / "user_logs" / "std_log.txt").read_bytes() == b"epoch 1\n"
    assert (destination / "logs" / "train.csv").read_bytes() == RUN_FILES["logs/train.csv"]
    assert (destination / "outputs" / "model.pt").read_bytes() == b"weights"
    (call,) = fake.calls_to("download_run_files")
    assert call.arguments["names"] == tuple(names)
    assert call.arguments["destination"] == destination


def test_download_files_with_a_prefix_fetches_only_those_names(
    fake: FakeBackend, run: Run, tmp_path: Path
) -> None:
    paths = run.download_files(tmp_path / "got", prefix="logs/")

    assert paths == [tmp_path / "got" / "logs" / "train.csv"]
    assert sorted(p.relative_to(tmp_path / "got").as_posix() for p in _files(tmp_path / "got")) == [
        "logs/train.csv"
    ]
    assert fake.calls_to("download_run_files")[0].arguments["names"] == ("logs/train.csv",)


def test_download_files_with_the_outputs_prefix_is_download_outputs(
    run: Run, tmp_path: Path
) -> None:
    files = run.download_files(tmp_path / "files", prefix="outputs/")
    outputs = run.download_outputs(tmp_path / "outputs")

    assert [p.relative_to(tmp_path / "files") for p in files] == [
        p.relative_to(tmp_path / "outputs") for p in outputs
    ]
    assert [p.read_bytes() for p in files] == [p.read_bytes() for p in outputs]


def test_download_files_of_no_file_makes_the_folder_and_returns_nothing(
    fake: FakeBackend, run: Run, tmp_path: Path
) -> None:
    assert run.download_files(tmp_path / "empty", prefix="nothing/") == []
    assert (tmp_path / "empty").is_dir()


@pytest.mark.parametrize(
    "name",
    ["../escaped.txt", "outputs/../../escaped.txt", "/abs/escaped.txt", "outputs\\..\\x", "a//b"],
)
def test_a_name_from_the_service_that_leads_out_is_refused_and_nothing_is_written(
    fake: FakeBackend, workspace: mlboot.Workspace, tmp_path: Path, name: str
) -> None:
    run = start(fake, workspace, outputs={"model.pt": b"w"}, files={name: b"evil"})
    destination = tmp_path / "deep" / "got"

    with pytest.raises(ServiceError, match="nothing was downloaded") as caught:
        run.download_files(destination)

    assert repr(name) in str(caught.value)
    assert not caught.value.transient
    assert fake.calls_to("download_run_files") == []
    assert not (tmp_path / "deep").exists()
    assert not (tmp_path / "escaped.txt").exists()
    # Leaving it out with a prefix downloads the rest.
    assert run.download_files(destination, prefix="outputs/m") == [
        destination / "outputs" / "model.pt"
    ]


def test_a_link_on_the_way_of_a_file_is_refused_before_anything_is_written(
    fake: FakeBackend, run: Run, tmp_path: Path
) -> None:
    destination = tmp_path / "got"
    destination.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (destination / "logs").symlink_to(elsewhere)

    with pytest.raises(LocalStorageError) as caught:
        run.download_files(destination)

    assert caught.value.filename == str(destination / "logs")
    assert list(elsewhere.iterdir()) == []
    assert _files(destination) == []
    assert fake.calls_to("download_run_files") == []


@pytest.mark.parametrize("destination", ["", None, 42, "file.txt", "a\x00b"])
def test_a_bad_destination_is_refused_before_anything_remote(
    fake: FakeBackend,
    run: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    destination: object,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("file.txt").write_text("", encoding="utf-8")

    with pytest.raises(InvalidInputError) as caught:
        run.download_files(destination)  # type: ignore[arg-type]

    assert (caught.value.field, caught.value.value) == ("destination", destination)
    assert fake.calls == []


def test_a_file_where_a_folder_must_be_is_refused_before_anything_is_written(
    fake: FakeBackend, run: Run, tmp_path: Path
) -> None:
    (tmp_path / "got").mkdir()
    (tmp_path / "got" / "outputs").write_bytes(b"a file")

    with pytest.raises(LocalStorageError, match="not a folder") as caught:
        run.download_files(tmp_path / "got")

    assert caught.value.filename == str(tmp_path / "got" / "outputs")
    assert (tmp_path / "got" / "outputs").read_bytes() == b"a file"
    assert _files(tmp_path / "got") == [tmp_path / "got" / "outputs"]
    assert fake.calls_to("download_run_files") == []


def test_a_failed_download_is_not_retried_by_mlboot(
    fake: FakeBackend, run: Run, tmp_path: Path
) -> None:
    fake.fail("download_run_files", "transient", times=1)

    with pytest.raises(ServiceError) as caught:
        run.download_files(tmp_path / "got")

    assert caught.value.transient
    assert len(fake.calls_to("download_run_files")) == 1
    assert len(run.download_files(tmp_path / "got")) == len(run.file_names())


@pytest.mark.parametrize("files", [{"": b"x"}, {"a.txt": "text"}, {3: b"x"}, ["a.txt"]], ids=repr)
def test_the_fake_refuses_files_it_cannot_hold(fake: FakeBackend, files: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        fake.program_run(files=files)  # type: ignore[arg-type]
    assert caught.value.field == "files"
    with pytest.raises(InvalidInputError):
        fake.add_run("r1", files=files)  # type: ignore[arg-type]


def test_the_fake_leaves_out_a_name_its_run_does_not_have(
    fake: FakeBackend, tmp_path: Path
) -> None:
    fake.add_run("r1", outputs={"a.txt": b"a"})
    ref = WorkspaceRef("s", "rg", "ws")

    written = fake.download_run_files(ref, "r1", tmp_path, ["outputs/a.txt", "outputs/gone"])

    assert written == [tmp_path / "outputs" / "a.txt"]


# -- on the local backend --------------------------------------------------------------------------

LOCAL_SCRIPT = """\
    import os
    from pathlib import Path

    print("epoch 1", flush=True)
    Path("outputs/sub").mkdir(parents=True, exist_ok=True)
    Path("outputs/model.txt").write_bytes(b"weights")
    Path("outputs/sub/report.txt").write_bytes(b"report")
    Path("logs/train.csv").write_bytes(b"epoch,loss\\n1,0.5\\n")
    Path("secret.txt").write_bytes(b"not a run file")
    os.symlink(os.path.abspath("secret.txt"), "logs/link.txt")
    os.symlink(os.path.abspath("."), "logs/wd")
    os.mkfifo("logs/pipe")
    """


@pytest.fixture
def local_run(config_file: Path, tmp_path: Path) -> Run:
    workspace = local_workspace(config_file, tmp_path / ".mlboot")
    run = submit_local(workspace, tmp_path / "local-project", textwrap.dedent(LOCAL_SCRIPT))
    assert run.wait(timeout=LOCAL_DEADLINE, poll_interval=0.05) is mlboot.RunStatus.COMPLETED
    return run


def test_a_local_run_s_files_are_named_as_on_azure_ml_links_and_pipes_left_out(
    local_run: Run,
) -> None:
    assert local_run.file_names() == [
        "logs/train.csv",
        "outputs/model.txt",
        "outputs/sub/report.txt",
        "user_logs/std_log.txt",
    ]
    assert local_run.file_names(prefix="outputs/sub/") == ["outputs/sub/report.txt"]


def test_a_local_run_s_files_download_from_where_the_run_keeps_them(
    local_run: Run, tmp_path: Path
) -> None:
    destination = tmp_path / "got"

    paths = local_run.download_files(destination)

    assert paths == [destination / name for name in local_run.file_names()]
    assert (destination / "logs" / "train.csv").read_bytes() == b"epoch,loss\n1,0.5\n"
    assert (destination / "outputs" / "sub" / "report.txt").read_bytes() == b"report"
    assert "epoch 1" in (destination / "user_logs" / "std_log.txt").read_text(encoding="utf-8")
    assert not any(p.is_symlink() for p in destination.rglob("*"))
    as_files = local_run.download_files(tmp_path / "files", prefix="outputs/")
    as_outputs = local_run.download_outputs(tmp_path / "outputs")
    assert [p.relative_to(tmp_path / "files") for p in as_files] == [
        p.relative_to(tmp_path / "outputs") for p in as_outputs
    ]


def test_a_local_log_folder_swapped_for_a_link_after_the_run_lists_nothing_from_it(
    local_run: Run, tmp_path: Path
) -> None:
    logs = run_folder(local_run) / "wd" / "logs"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen.txt").write_bytes(b"secret")
    logs.rename(tmp_path / "old-logs")
    logs.symlink_to(outside)

    assert local_run.file_names(prefix="logs/") == []
    assert local_run.download_files(tmp_path / "got", prefix="logs/") == []
    assert not (tmp_path / "got" / "logs").exists()


def test_a_local_run_s_mlflow_artifacts_are_its_files_but_not_twice_its_outputs(
    config_file: Path, tmp_path: Path
) -> None:
    workspace = local_workspace(config_file, tmp_path / ".mlboot")
    script = """\
        import mlflow
        from pathlib import Path

        Path("curve.txt").write_text("1 2 3")
        mlflow.log_artifact("curve.txt", artifact_path="plots")
        Path("outputs/model.txt").write_text("weights")
        """
    run = submit_local(workspace, tmp_path / "mlflow-project", textwrap.dedent(script))
    assert run.wait(timeout=LOCAL_DEADLINE, poll_interval=0.05) is mlboot.RunStatus.COMPLETED

    assert run.file_names() == ["outputs/model.txt", "plots/curve.txt", "user_logs/std_log.txt"]
    (curve,) = run.download_files(tmp_path / "got", prefix="plots/")
    assert curve.read_text(encoding="utf-8") == "1 2 3"


def test_a_full_local_download_is_a_local_storage_error_naming_the_file(
    local_run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno  # noqa: PLC0415

    import mlboot._links as links  # noqa: PLC0415

    def full(*args: object, **kwargs: object) -> os.stat_result:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(links, "copy_regular_file", full)

    with pytest.raises(LocalStorageError, match="the disk is full") as caught:
        local_run.download_files(tmp_path / "got", prefix="logs/")

    assert caught.value.filename == str(tmp_path / "got" / "logs" / "train.csv")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())
