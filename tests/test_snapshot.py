"""The snapshot pre-check selects what azureml-core uploads, and refuses what it would refuse."""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pathspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlboot._snapshot import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILES,
    DEFAULT_WARN_BYTES,
    SnapshotPlan,
    _anchored_line,
    _Matcher,
    format_bytes,
    plan_snapshot,
)
from mlboot.exceptions import InvalidInputError, MlbootError, SnapshotTooLargeError
from strategies_snapshot import NAMES, Tree, ignore_files, patterns, trees

MiB = 1024**2


def write(root: Path, rel: str, size: int = 1) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def sparse(root: Path, rel: str, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def plan_unlimited(root: Path) -> SnapshotPlan:
    return plan_snapshot(root, max_bytes=10**15, max_files=10**9, environ={})


def files_of(root: Path) -> set[str]:
    return set(plan_unlimited(root).files)


# -- what is selected ---------------------------------------------------------------------------


def test_plan_lists_files_as_sorted_posix_paths_with_their_total_size(tmp_path: Path) -> None:
    write(tmp_path, "train.py", 10)
    write(tmp_path, "pkg/util.py", 20)
    write(tmp_path, "pkg/deep/er/data file.csv", 30)
    write(tmp_path, ".hidden", 5)

    plan = plan_snapshot(tmp_path, environ={})

    assert plan == SnapshotPlan(
        root=tmp_path,
        files=(".hidden", "pkg/deep/er/data file.csv", "pkg/util.py", "train.py"),
        total_bytes=65,
        ignore_file=None,
        folders=("pkg", "pkg/deep", "pkg/deep/er"),
    )
    assert plan.file_count == 4
    assert plan.sdk_checked_bytes == plan.measured_bytes == 65
    assert plan.ignore_path is None


def test_relative_source_directory_becomes_an_absolute_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "src/train.py")
    monkeypatch.chdir(tmp_path)

    plan = plan_snapshot("src/../src", environ={})

    assert plan.root == tmp_path / "src"
    assert plan.files == ("train.py",)


def test_without_ignore_file_git_folder_and_hidden_files_are_uploaded(tmp_path: Path) -> None:
    write(tmp_path, ".git/HEAD")
    write(tmp_path, ".git/objects/ab/cd")
    write(tmp_path, ".env")

    assert files_of(tmp_path) == {".git/HEAD", ".git/objects/ab/cd", ".env"}


def test_gitignore_applies_when_there_is_no_amlignore(tmp_path: Path) -> None:
    write(tmp_path, "run.log")
    write(tmp_path, "train.py")
    (tmp_path / ".gitignore").write_text("*.log\n", encoding="utf-8")

    plan = plan_snapshot(tmp_path, environ={})

    assert set(plan.files) == {".gitignore", "train.py"}
    assert plan.ignore_file == ".gitignore"
    assert plan.ignore_path == tmp_path / ".gitignore"


def test_an_empty_amlignore_still_replaces_gitignore(tmp_path: Path) -> None:
    write(tmp_path, "run.log")
    (tmp_path / ".gitignore").write_text("*.log\n", encoding="utf-8")
    (tmp_path / ".amlignore").write_text("", encoding="utf-8")

    plan = plan_snapshot(tmp_path, environ={})

    assert set(plan.files) == {".amlignore", ".gitignore", "run.log"}
    assert plan.ignore_file == ".amlignore"


def test_nested_ignore_files_are_ordinary_files(tmp_path: Path) -> None:
    write(tmp_path, "sub/run.log")
    (tmp_path / "sub" / ".amlignore").write_text("*.log\n", encoding="utf-8")
    (tmp_path / "sub" / ".gitignore").write_text("*.log\n", encoding="utf-8")

    assert files_of(tmp_path) == {"sub/.amlignore", "sub/.gitignore", "sub/run.log"}


def test_the_ignore_file_is_uploaded_unless_it_matches_itself(tmp_path: Path) -> None:
    write(tmp_path, "a")
    (tmp_path / ".amlignore").write_text("b\n", encoding="utf-8")
    assert files_of(tmp_path) == {".amlignore", "a"}

    (tmp_path / ".amlignore").write_text(".*\n", encoding="utf-8")
    assert files_of(tmp_path) == {"a"}


def test_a_folder_pattern_with_a_slash_lets_a_negation_bring_a_file_back(tmp_path: Path) -> None:
    # "data/" never matches the folder path "data" itself (no trailing slash is given), so the
    # SDK walks in and tests each file: "!data/keep" wins for that one.
    write(tmp_path, "data/big", 100)
    write(tmp_path, "data/keep", 2)
    (tmp_path / ".amlignore").write_text("data/\n!data/keep\n", encoding="utf-8")

    plan = plan_snapshot(tmp_path, environ={})

    assert set(plan.files) == {".amlignore", "data/keep"}
    assert plan.sdk_checked_bytes == plan.total_bytes


def test_an_excluded_folder_is_not_entered_so_a_negation_below_it_is_void(
    tmp_path: Path,
) -> None:
    # "data" matches the folder itself: the upload walk prunes it.  The SDK's size check
    # (os.walk, no pruning) still counts data/keep: both totals are reported.
    write(tmp_path, "data/big", 100)
    write(tmp_path, "data/keep", 2)
    ignore = "data\n!data/keep\n"
    (tmp_path / ".amlignore").write_text(ignore, encoding="utf-8")

    plan = plan_snapshot(tmp_path, environ={})

    assert plan.files == (".amlignore",)
    assert plan.total_bytes == len(ignore)
    assert plan.sdk_checked_bytes == len(ignore) + 2
    assert plan.measured_bytes == len(ignore) + 2


def test_double_star_and_anchored_patterns_follow_gitwildmatch(tmp_path: Path) -> None:
    for rel in ("a/x.ckpt", "a/b/y.ckpt", "logs/1.txt", "src/logs/2.txt", "keep.txt"):
        write(tmp_path, rel)
    (tmp_path / ".amlignore").write_text("a/**/*.ckpt\n/logs\n.amlignore\n", encoding="utf-8")

    assert files_of(tmp_path) == {"src/logs/2.txt", "keep.txt"}


def test_empty_folders_contribute_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    write(tmp_path, "train.py")

    assert files_of(tmp_path) == {"train.py"}


def test_a_link_to_a_folder_is_followed_and_uploaded_under_the_link_name(tmp_path: Path) -> None:
    write(tmp_path, "real/a.txt", 3)
    (tmp_path / "alias").symlink_to("real", target_is_directory=True)

    plan = plan_snapshot(tmp_path, environ={})

    assert plan.files == ("alias/a.txt", "real/a.txt")
    assert plan.total_bytes == 6
    # os.walk in the SDK's size check does not follow folder links.
    assert plan.sdk_checked_bytes == 3


def test_a_link_to_a_file_counts_the_size_of_its_target(tmp_path: Path) -> None:
    root = tmp_path / "root"
    target = write(root, "data/big.bin", 50)
    (root / "big.bin").symlink_to(target)
    (root / ".amlignore").write_text("/data/\n", encoding="utf-8")

    plan = plan_snapshot(root, environ={})

    assert plan.files == (".amlignore", "big.bin")
    assert plan.links == (("big.bin", "data/big.bin"),)
    assert plan.total_bytes == plan.sdk_checked_bytes == 50 + 7


def test_files_the_user_may_not_read_are_left_out_like_the_sdk_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK asks os.access and skips what is unreadable (tests may run as root, where
    # chmod cannot make a file unreadable, so os.access itself is stood in for).
    write(tmp_path, "ok.txt", 1)
    secret = write(tmp_path, "secret.txt", 7)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: os.fspath(path) != str(secret) and real_access(path, mode)
    )

    plan = plan_snapshot(tmp_path, environ={})

    assert plan.files == ("ok.txt",)
    assert plan.sdk_checked_bytes == 8  # the SDK's size check still counts it


def test_unreadable_files_decide_the_file_count_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(6):
        write(tmp_path, f"f{index}")
    real_access = os.access
    hidden = {str(tmp_path / "f0"), str(tmp_path / "f1")}
    monkeypatch.setattr(
        os, "access", lambda path, mode: os.fspath(path) not in hidden and real_access(path, mode)
    )

    assert plan_snapshot(tmp_path, max_files=4, environ={}).file_count == 4
    hidden.discard(str(tmp_path / "f1"))
    with pytest.raises(SnapshotTooLargeError, match=r"5 files > 4"):
        plan_snapshot(tmp_path, max_files=4, environ={})


# -- what cannot be snapshotted -----------------------------------------------------------------


def test_a_broken_link_is_refused_with_the_line_that_leaves_it_out(tmp_path: Path) -> None:
    write(tmp_path, "train.py")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")

    with pytest.raises(InvalidInputError) as caught:
        plan_snapshot(tmp_path, environ={})

    assert caught.value.field == "source_directory"
    assert "'dangling'" in caught.value.rule
    assert "broken" in caught.value.rule
    assert "/dangling" in caught.value.fix
    assert ".amlignore" in caught.value.fix


def test_an_excluded_broken_link_is_harmless(tmp_path: Path) -> None:
    write(tmp_path, "train.py")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / ".amlignore").write_text("/dangling\n", encoding="utf-8")

    assert files_of(tmp_path) == {".amlignore", "train.py"}


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    # Opening a FIFO for reading would block this test forever: a clean error proves it was
    # only looked at.  The SDK fails on it (it takes it for a folder).
    write(tmp_path, "train.py")
    os.mkfifo(tmp_path / "pipe")

    with pytest.raises(InvalidInputError, match=r"named pipe"):
        plan_snapshot(tmp_path, environ={})


def test_an_excluded_fifo_is_harmless(tmp_path: Path) -> None:
    write(tmp_path, "train.py")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / ".amlignore").write_text("pipe\n", encoding="utf-8")

    assert files_of(tmp_path) == {".amlignore", "train.py"}


def test_a_link_loop_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "sub/train.py")
    (tmp_path / "sub" / "again").symlink_to(tmp_path, target_is_directory=True)

    with pytest.raises(InvalidInputError, match=r"'sub/again'.*contains it"):
        plan_snapshot(tmp_path, environ={})


def test_a_subfolder_that_cannot_be_listed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root may list any folder, so the refusal is stood in for (folders are opened by
    # descriptor where the OS allows it, by path elsewhere).
    write(tmp_path, "locked/a")
    real_open, real_scandir = os.open, os.scandir

    def refuse_locked(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(path, str) and path.endswith("locked"):
                raise PermissionError(13, "Permission denied", path)
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "open", refuse_locked(real_open))
    monkeypatch.setattr(os, "scandir", refuse_locked(real_scandir))

    with pytest.raises(InvalidInputError, match=r"'locked'.*cannot be listed"):
        plan_snapshot(tmp_path, environ={})


def test_a_missing_source_directory_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        plan_snapshot(tmp_path / "nope")

    assert caught.value.field == "source_directory"
    assert caught.value.value == str(tmp_path / "nope")
    assert "does not exist" in caught.value.rule
    assert isinstance(caught.value, ValueError)


def test_a_file_as_source_directory_is_invalid_input(tmp_path: Path) -> None:
    script = write(tmp_path, "train.py")

    with pytest.raises(InvalidInputError, match=r"is not a folder"):
        plan_snapshot(script)


def test_an_unreadable_source_directory_is_invalid_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def scandir(path: str) -> object:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "scandir", scandir)

    with pytest.raises(InvalidInputError, match=r"cannot be listed \(Permission denied\)"):
        plan_snapshot(tmp_path)


def test_a_source_directory_that_is_no_path_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match=r"must be a path"):
        plan_snapshot(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["max_bytes", "max_files", "warn_bytes"])
@pytest.mark.parametrize("value", [-1, 1.5, True, "10"])
def test_limits_must_be_whole_numbers(tmp_path: Path, field: str, value: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        plan_snapshot(tmp_path, **{field: value})  # type: ignore[arg-type]

    assert caught.value.field == field


@pytest.mark.parametrize("line", ["!", "trailing\\", "[z-a]"])
def test_an_invalid_pattern_in_the_ignore_file_is_invalid_input(tmp_path: Path, line: str) -> None:
    (tmp_path / ".amlignore").write_text(f"ok\n{line}\n", encoding="utf-8")

    with pytest.raises(InvalidInputError, match=r"invalid gitwildmatch pattern"):
        plan_snapshot(tmp_path)


def test_an_ignore_file_that_cannot_be_read_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / ".amlignore").mkdir()

    with pytest.raises(InvalidInputError, match=r"cannot read"):
        plan_snapshot(tmp_path)


# -- limits -------------------------------------------------------------------------------------


@pytest.mark.sdk
def test_the_defaults_are_the_sdk_constants() -> None:
    from azureml._execution import _commands  # noqa: PLC0415  (the SDK loads only here)
    from azureml._restclient import constants  # noqa: PLC0415

    assert constants.SNAPSHOT_MAX_SIZE_BYTES == DEFAULT_MAX_BYTES == 300 * MiB
    assert constants.SNAPSHOT_MAX_FILES == DEFAULT_MAX_FILES == 2000
    assert _commands._max_zip_size_bytes == DEFAULT_WARN_BYTES == 25 * MiB


def test_exactly_the_size_limit_passes_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    sparse(tmp_path, "weights.bin", DEFAULT_MAX_BYTES)
    assert plan_snapshot(tmp_path, environ={}).total_bytes == DEFAULT_MAX_BYTES

    sparse(tmp_path, "one-more", 1)
    with pytest.raises(SnapshotTooLargeError):
        plan_snapshot(tmp_path, environ={})


def test_exactly_the_file_limit_passes_and_one_file_more_is_refused(tmp_path: Path) -> None:
    for index in range(DEFAULT_MAX_FILES):
        (tmp_path / f"f{index}").touch()
    assert plan_snapshot(tmp_path, environ={}).file_count == DEFAULT_MAX_FILES

    (tmp_path / "one-more").touch()
    with pytest.raises(SnapshotTooLargeError):
        plan_snapshot(tmp_path, environ={})


def test_the_size_limit_holds_the_sdk_size_check_total_too(tmp_path: Path) -> None:
    # Files the upload walk prunes but the SDK's os.walk size check counts.
    write(tmp_path, "data/keep", 100)
    (tmp_path / ".amlignore").write_text("data\n!data/keep\n", encoding="utf-8")

    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(tmp_path, max_bytes=50, environ={})

    assert "116 B in 1 file," in str(caught.value)
    assert "own size check counts 116 B; the files it would upload hold 16 B" in str(caught.value)
    assert "    # 100 B in 1 file\n    /data/\n" in str(caught.value)


@pytest.mark.parametrize("value", ["1", "true", "0", "no"])
def test_any_non_empty_no_file_limit_variable_lifts_the_file_limit(
    tmp_path: Path, value: str
) -> None:
    # The SDK tests `not os.environ.get("AML_SNAPSHOT_NO_FILE_LIMIT")`: even "0" lifts it.
    for index in range(5):
        write(tmp_path, f"f{index}")

    plan = plan_snapshot(tmp_path, max_files=2, environ={"AML_SNAPSHOT_NO_FILE_LIMIT": value})

    assert plan.file_count == 5


def test_an_empty_no_file_limit_variable_lifts_nothing(tmp_path: Path) -> None:
    for index in range(5):
        write(tmp_path, f"f{index}")

    with pytest.raises(SnapshotTooLargeError):
        plan_snapshot(tmp_path, max_files=2, environ={"AML_SNAPSHOT_NO_FILE_LIMIT": ""})


def test_the_no_file_limit_variable_does_not_lift_the_size_limit(tmp_path: Path) -> None:
    write(tmp_path, "big", 100)

    with pytest.raises(SnapshotTooLargeError, match=r"100 bytes > 99"):
        plan_snapshot(tmp_path, max_bytes=99, environ={"AML_SNAPSHOT_NO_FILE_LIMIT": "1"})


def test_the_process_environment_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(3):
        write(tmp_path, f"f{index}")
    monkeypatch.setenv("AML_SNAPSHOT_NO_FILE_LIMIT", "1")
    assert plan_snapshot(tmp_path, max_files=1).file_count == 3

    monkeypatch.delenv("AML_SNAPSHOT_NO_FILE_LIMIT")
    with pytest.raises(SnapshotTooLargeError):
        plan_snapshot(tmp_path, max_files=1)


def test_snapshot_too_large_is_a_value_error_and_an_mlboot_error() -> None:
    assert issubclass(SnapshotTooLargeError, ValueError)
    assert issubclass(SnapshotTooLargeError, MlbootError)


# -- the error message --------------------------------------------------------------------------


@pytest.fixture
def heavy_tree(tmp_path: Path) -> Path:
    """395 MiB (sparse) over folders, checkpoints and a few small files; a .gitignore."""
    sparse(tmp_path, "data/train.bin", 150 * MiB)
    sparse(tmp_path, "data/valid.bin", 50 * MiB)
    sparse(tmp_path, "checkpoints/epoch1.ckpt", 60 * MiB)
    sparse(tmp_path, "checkpoints/epoch2.ckpt", 60 * MiB)
    sparse(tmp_path, "runs/old/model.ckpt", 70 * MiB)
    sparse(tmp_path, "notes/a.txt", 3 * MiB)
    sparse(tmp_path, "extra/b.txt", 2 * MiB)
    sparse(tmp_path, "logs/run.log", 10 * MiB)  # left out by the .gitignore
    write(tmp_path, "train.py", 100)
    (tmp_path / ".gitignore").write_text("__pycache__/\n\n*.log\n", encoding="utf-8")
    return tmp_path


def test_the_error_gives_totals_against_the_limits(heavy_tree: Path) -> None:
    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(heavy_tree, environ={})
    message = str(caught.value)

    assert f"The snapshot of {heavy_tree} is too large" in message
    total = 395 * MiB + 100 + (heavy_tree / ".gitignore").stat().st_size
    assert "395.0 MiB in 9 files" in message
    assert "limits of 300.0 MiB and 2,000 files" in message
    assert f"({total:,} bytes > {300 * MiB:,})" in message
    assert "Nothing was uploaded." in message


def test_the_error_lists_the_five_largest_files_and_top_level_folders(heavy_tree: Path) -> None:
    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(heavy_tree, environ={})
    lines = str(caught.value).splitlines()

    files_at = lines.index("Largest files (.gitignore applied):")
    assert [line.split() for line in lines[files_at + 1 : files_at + 6]] == [
        ["150.0", "MiB", "data/train.bin"],
        ["70.0", "MiB", "runs/old/model.ckpt"],
        ["60.0", "MiB", "checkpoints/epoch1.ckpt"],
        ["60.0", "MiB", "checkpoints/epoch2.ckpt"],
        ["50.0", "MiB", "data/valid.bin"],
    ]
    folders_at = lines.index("Largest top-level folders:")
    assert [line.split() for line in lines[folders_at + 1 : folders_at + 6]] == [
        ["200.0", "MiB", "data/", "(2", "files)"],
        ["120.0", "MiB", "checkpoints/", "(2", "files)"],
        ["70.0", "MiB", "runs/", "(1", "file)"],
        ["3.0", "MiB", "notes/", "(1", "file)"],
        ["2.0", "MiB", "extra/", "(1", "file)"],
    ]


def test_the_error_offers_amlignore_lines_and_warns_that_it_replaces_gitignore(
    heavy_tree: Path,
) -> None:
    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(heavy_tree, environ={})
    message = str(caught.value)

    assert f"Create {heavy_tree / '.amlignore'} with these lines" in message
    assert (
        "\n\n    # from your .gitignore\n    __pycache__/\n    *.log\n"
        "    # 200.0 MiB in 2 files\n    /data/\n\n"
    ) in message
    assert "an .amlignore replaces .gitignore for uploads" in message
    assert "which is why its lines are repeated above" in message
    assert "AML_SNAPSHOT_NO_FILE_LIMIT" not in message  # the file count is fine


def test_a_long_gitignore_is_not_repeated_but_must_be_copied(tmp_path: Path) -> None:
    write(tmp_path, "data/big", 100)
    patterns = [f"*.ext{index}" for index in range(21)]
    (tmp_path / ".gitignore").write_text("\n".join(patterns) + "\n", encoding="utf-8")

    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(tmp_path, max_bytes=50, environ={})
    message = str(caught.value)

    assert "*.ext0" not in message
    assert "    /data/\n" in message
    assert "copy your .gitignore lines into .amlignore too" in message


def test_the_suggested_lines_plus_the_gitignore_lines_bring_the_tree_under_the_limits(
    heavy_tree: Path,
) -> None:
    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(heavy_tree, environ={})
    lines = str(caught.value).splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("before pasting):"))
    end = next(i for i, line in enumerate(lines) if line.startswith("Note:"))
    block = "\n".join(line.removeprefix("    ") for line in lines[start + 1 : end])
    (heavy_tree / ".amlignore").write_text(block + "\n", encoding="utf-8")

    plan = plan_snapshot(heavy_tree, environ={})

    assert plan.ignore_file == ".amlignore"
    assert set(plan.files) == {
        ".amlignore",
        ".gitignore",
        "checkpoints/epoch1.ckpt",
        "checkpoints/epoch2.ckpt",
        "runs/old/model.ckpt",
        "notes/a.txt",
        "extra/b.txt",
        "train.py",
    }


def test_a_suffix_line_is_offered_when_it_removes_more_than_any_folder(tmp_path: Path) -> None:
    for folder in ("a", "b", "c", "d"):
        sparse(tmp_path, f"{folder}/model.ckpt", 90 * MiB)
        write(tmp_path, f"{folder}/train.py")

    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(tmp_path, environ={})

    assert "    # 360.0 MiB in 4 files\n    *.ckpt\n" in str(caught.value)


def test_too_many_files_offers_lines_and_the_variable(tmp_path: Path) -> None:
    for index in range(30):
        write(tmp_path, f"cache/{index}.npy")
    write(tmp_path, "train.py")
    (tmp_path / ".amlignore").write_text("*.log\n", encoding="utf-8")

    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(tmp_path, max_files=10, environ={})
    message = str(caught.value)

    assert "32 files > 10" in message
    assert f"Add these lines to {tmp_path / '.amlignore'}" in message
    assert "\n    /cache/\n" in message or "\n    *.npy\n" in message
    assert "AML_SNAPSHOT_NO_FILE_LIMIT=1 lifts the file limit (not the size limit)" in message
    assert "aka.ms/aml-largefiles" not in message  # the size is fine


def test_without_an_ignore_file_the_error_says_git_is_uploaded(tmp_path: Path) -> None:
    sparse(tmp_path, ".git/objects/pack/big.pack", 20)

    with pytest.raises(SnapshotTooLargeError) as caught:
        plan_snapshot(tmp_path, max_bytes=10, environ={})
    message = str(caught.value)

    assert "everything is uploaded, .git/ included" in message
    assert "\n    /.git/\n" in message


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024 - 1, "1.0 MiB"),
        (300 * MiB, "300.0 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (3 * 1024**4, "3.0 TiB"),
    ],
)
def test_sizes_are_shown_in_binary_units(size: int, text: str) -> None:
    assert format_bytes(size) == text


# -- warning, reading, writing ------------------------------------------------------------------


def test_at_the_warning_size_one_warning_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sparse(tmp_path, "data.bin", DEFAULT_WARN_BYTES)  # the SDK warns at >= 25 MiB

    with caplog.at_level(logging.WARNING, logger="mlboot"):
        plan_snapshot(tmp_path, environ={})

    assert [(r.name, r.levelno) for r in caplog.records] == [("mlboot", logging.WARNING)]
    assert "25.0 MiB in 1 file (warning from 25.0 MiB on)" in caplog.records[0].getMessage()


def test_below_the_warning_size_nothing_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sparse(tmp_path, "data.bin", DEFAULT_WARN_BYTES - 1)

    with caplog.at_level(logging.DEBUG, logger="mlboot"):
        plan_snapshot(tmp_path, environ={})

    assert caplog.records == []


def test_a_refused_snapshot_raises_without_also_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "data.bin", 100)

    with caplog.at_level(logging.DEBUG, logger="mlboot"), pytest.raises(SnapshotTooLargeError):
        plan_snapshot(tmp_path, max_bytes=50, warn_bytes=10, environ={})

    assert caplog.records == []


_opened: list[tuple[str, object, object]] | None = None


def _record_opens(event: str, args: tuple[object, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str):
        _opened.append((args[0], args[1], args[2]))  # path, mode, flags


sys.addaudithook(_record_opens)  # audit hooks cannot be removed: it records only when asked


@contextmanager
def recording_opens() -> Iterator[list[tuple[str, object, object]]]:
    global _opened  # noqa: PLW0603  (the audit hook is process-wide)
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def test_only_the_ignore_file_is_opened_and_nothing_is_written(tmp_path: Path) -> None:
    write(tmp_path, "train.py", 10)
    write(tmp_path, "data/a.bin", 20)
    (tmp_path / "link.bin").symlink_to(tmp_path / "data" / "a.bin")
    (tmp_path / ".gitignore").write_text("*.log\n", encoding="utf-8")
    before = {p: p.lstat() for p in tmp_path.rglob("*")}

    with recording_opens() as opened:
        plan = plan_snapshot(tmp_path, environ={})

    assert plan.total_bytes == 10 + 20 + 20 + 6
    files_opened = [(path, mode) for path, mode, _flags in opened if not Path(path).is_dir()]
    assert files_opened == [(str(tmp_path / ".gitignore"), "r")]
    # Folders may be opened to be listed, never for anything else.
    folder_flags = [flags for path, _mode, flags in opened if Path(path).is_dir()]
    assert all(isinstance(flags, int) and flags & os.O_DIRECTORY for flags in folder_flags)
    after = {p: p.lstat() for p in tmp_path.rglob("*")}
    assert after.keys() == before.keys()
    assert all(after[p].st_mtime_ns == before[p].st_mtime_ns for p in before)


def test_the_audit_hook_does_see_file_reads(tmp_path: Path) -> None:
    # Guards the test above: a walk that read contents would have been caught.
    path = write(tmp_path, "a.bin")

    with recording_opens() as opened:
        path.read_bytes()

    assert [(name, mode) for name, mode, _flags in opened] == [(str(path), "r")]


# -- the ready-to-paste lines -------------------------------------------------------------------

segment_names = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"], exclude_characters="/\x00\n\r", max_codepoint=0x2FF
    )
    | st.sampled_from(" \t\\[]!*?#"),
    min_size=1,
    max_size=8,
).filter(lambda name: name not in {".", ".."})


@settings(max_examples=200, deadline=None)
@given(names=st.lists(segment_names, min_size=1, max_size=3), other=segment_names)
def test_an_anchored_line_matches_exactly_its_path_and_what_is_below(
    names: list[str], other: str
) -> None:
    rel = "/".join(names)
    line = _anchored_line(rel)
    folder_line = _anchored_line(rel, folder=True)
    assert line is not None
    assert folder_line is not None
    # Read back the way the SDK reads .amlignore: a text file, each line with its newline.
    spec = pathspec.PathSpec.from_lines("gitwildmatch", io.StringIO(f"{line}\n"))
    folder_spec = pathspec.PathSpec.from_lines("gitwildmatch", io.StringIO(f"{folder_line}\n"))

    assert spec.match_file(rel)
    assert folder_spec.match_file(f"{rel}/{other}")
    assert not folder_spec.match_file(rel)  # folder lines never hit a plain path
    if other != names[0]:
        assert not spec.match_file(f"{other}/{rel}")  # anchored to the root
    if other != names[-1]:
        assert not spec.match_file("/".join([*names[:-1], other]))


# -- the fast matcher equals pathspec -----------------------------------------------------------

match_paths = st.lists(
    st.sampled_from((*NAMES, "x.py", "data", "sp\\ ", "a*b", "[ab]")), min_size=1, max_size=4
).map("/".join)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(patterns(), max_size=8), paths=st.lists(match_paths, max_size=10))
def test_the_fast_matcher_answers_like_pathspec(lines: list[str], paths: list[str]) -> None:
    try:
        spec = pathspec.PathSpec.from_lines("gitwildmatch", lines)
    except ValueError:
        return  # an invalid pattern; tested elsewhere
    matcher = _Matcher(spec)

    for rel in paths:
        folder, _slash, name = rel.rpartition("/")
        expected = spec.match_file(rel)
        assert matcher(rel) is expected
        assert matcher.in_folder(f"{folder}/" if folder else "")(name) is expected


glob_lines = st.text(st.sampled_from([*"ab.*?[]!/\\ #x-^", "\t"]), min_size=1, max_size=8)
glob_paths = st.lists(
    st.text(st.sampled_from([*"ab.*?[]! #x-^\\"]), min_size=1, max_size=5).filter(
        lambda name: name not in {".", ".."}
    ),
    min_size=1,
    max_size=3,
).map("/".join)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(glob_lines, max_size=5), paths=st.lists(glob_paths, max_size=8))
def test_the_fast_matcher_answers_like_pathspec_on_arbitrary_globs(
    lines: list[str], paths: list[str]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # re's "possible nested set" on "[["
        try:
            spec = pathspec.PathSpec.from_lines("gitwildmatch", [f"{line}\n" for line in lines])
        except (ValueError, re.error):
            return  # the SDK fails on these too; tested elsewhere
    matcher = _Matcher(spec)

    for rel in paths:
        folder, _slash, name = rel.rpartition("/")
        expected = spec.match_file(rel)
        assert matcher(rel) is expected
        assert matcher.in_folder(f"{folder}/" if folder else "")(name) is expected


# -- parity with azureml-core --------------------------------------------------------------------


def sdk_selection(root: Path) -> tuple[set[str], int, int]:
    """The files azureml-core uploads for ``root``, their size, and its size-check total."""
    from azureml._base_sdk_common.merkle_tree import (  # noqa: PLC0415  (the SDK loads only here)
        create_merkletree,
    )
    from azureml._file_utils.file_utils import get_directory_size  # noqa: PLC0415
    from azureml._project.ignore_file import get_project_ignore_file  # noqa: PLC0415

    folder = os.path.abspath(root)  # noqa: PTH100  (what the SDK's Project does)
    exclude = get_project_ignore_file(folder).is_file_excluded
    checked = get_directory_size(folder, size_limit=None, exclude_function=exclude)
    tree = create_merkletree(folder, exclude)

    files: set[str] = set()
    pending = [(tree, "")]
    while pending:
        node, prefix = pending.pop()
        for child in node.children:
            if child.is_file():
                files.add(prefix + child.name)
            else:
                pending.append((child, f"{prefix}{child.name}/"))
    uploaded = sum((root / rel).stat().st_size for rel in files)
    return files, uploaded, checked


def assert_same_selection_as_the_sdk(tree: Tree) -> list[str]:
    """Build ``tree``, compare mlboot's plan with the SDK's selection; say what was seen."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        root.mkdir()
        tree.build(root)
        try:
            expected = sdk_selection(root)
        except (OSError, ValueError, re.error):  # the SDK fails: mlboot must refuse the tree
            with pytest.raises(InvalidInputError):
                plan_unlimited(root)
            return ["the SDK fails on the tree"]
        plan = plan_unlimited(root)

        assert (set(plan.files), plan.total_bytes, plan.sdk_checked_bytes) == expected
        seen = [
            f"ignore file: {plan.ignore_file}",
            f"some files left out: {any(rel not in plan.files for rel in tree.files)}",
        ]
        if plan.sdk_checked_bytes != plan.total_bytes:
            seen.append("the SDK's size check differs from the upload")
        return seen


@pytest.mark.sdk
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(tree=trees())
def test_the_selection_is_the_sdks_over_generated_trees(tree: Tree) -> None:
    for label in assert_same_selection_as_the_sdk(tree):
        event(label)


@pytest.mark.sdk
@pytest.mark.parametrize(
    "tree",
    [
        pytest.param(
            Tree(
                files={"data/x": 1, "data/keep": 2, "a.py": 3},
                empty_folders=(),
                amlignore="data\n!data/keep\n",
                gitignore=None,
                nested_gitignore=None,
                links=(),
            ),
            id="negation-under-pruned-folder",
        ),
        pytest.param(
            Tree(
                files={"data/x": 1, "data/keep": 2},
                empty_folders=("e/f",),
                amlignore=None,
                gitignore="data/\n!data/keep\n",
                nested_gitignore="*\n",
                links=(("alias", "data"), ("x-link", "data/x")),
            ),
            id="folder-pattern-links-nested-ignore",
        ),
        pytest.param(
            Tree(
                files={".git/HEAD": 1, "src/.hidden": 2, "src/sp ": 3, "[x]/#hash": 4},
                empty_folders=(),
                amlignore="*\n!*/\n!.hidden\n\\[x]/\n",
                gitignore="*.py\n",
                nested_gitignore=None,
                links=(),
            ),
            id="star-then-negations",
        ),
    ],
)
def test_the_selection_is_the_sdks_on_known_tricky_trees(tree: Tree) -> None:
    assert "the SDK fails on the tree" not in assert_same_selection_as_the_sdk(tree)


@pytest.mark.sdk
@settings(max_examples=20, deadline=None)
@given(lines=ignore_files)
def test_an_ignore_file_the_sdk_cannot_parse_is_refused_too(lines: str) -> None:
    tree = Tree(
        files={"a": 1},
        empty_folders=(),
        amlignore=lines + "\\\n",  # a trailing backslash is not a valid pattern
        gitignore=None,
        nested_gitignore=None,
        links=(),
    )
    assert assert_same_selection_as_the_sdk(tree) == ["the SDK fails on the tree"]
