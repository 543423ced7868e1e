"""A v2 job's git details: its source folder's, read by real git, not the working directory's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlboot._backends.azureml_v2 import _git as git_module
from mlboot._backends.azureml_v2._git import (
    PROP_BRANCH,
    PROP_BUILD_ID,
    PROP_COMMIT,
    PROP_DIRTY,
    PROP_REPOSITORY_URI,
    git_properties,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

URL = "https://example.invalid/team/project.git"
_NO_GIT_VARIABLES = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AZUREML_"))}


def _git(folder: Path, *arguments: str) -> str:
    return subprocess.run(  # noqa: S603  (git with the test's own arguments)
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *arguments],  # noqa: S607  (git from the PATH)
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=_NO_GIT_VARIABLES,
    ).stdout.strip()


def _repository(folder: Path, *, url: str | None = URL, branch: str = "main") -> str:
    """A repository in ``folder`` with one commit of train.py; its commit id."""
    folder.mkdir(parents=True, exist_ok=True)
    _git(folder, "init", "-q", "-b", branch)
    if url is not None:
        _git(folder, "remote", "add", "origin", url)
    (folder / "train.py").write_text("print('hi')\n", encoding="utf-8")
    _git(folder, "add", "train.py")
    _git(folder, "commit", "-q", "-m", "first")
    return _git(folder, "rev-parse", "HEAD")


class Recorder:
    """A runner that records each git command and runs it for real."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, arguments: list[str], folder: Path) -> str | None:
        self.calls.append(arguments)
        return git_module.run_git(arguments, folder)


def test_a_clean_checkout_records_its_url_branch_commit_and_no_changes(tmp_path: Path) -> None:
    commit = _repository(tmp_path / "project")

    properties = git_properties(tmp_path / "project", environ=_NO_GIT_VARIABLES)

    assert properties == {
        PROP_REPOSITORY_URI: URL,
        PROP_BRANCH: "main",
        PROP_COMMIT: commit,
        PROP_DIRTY: "False",
    }


def test_changes_under_the_source_folder_make_it_dirty_and_elsewhere_do_not(
    tmp_path: Path,
) -> None:
    _repository(tmp_path / "repo")
    source = tmp_path / "repo" / "job"
    source.mkdir()
    (source / "train.py").write_text("x = 1\n", encoding="utf-8")
    _git(tmp_path / "repo", "add", "job/train.py")
    _git(tmp_path / "repo", "commit", "-q", "-m", "job")
    (tmp_path / "repo" / "train.py").write_text("changed outside the job\n", encoding="utf-8")

    assert git_properties(source, environ=_NO_GIT_VARIABLES)[PROP_DIRTY] == "False"

    (source / "new.py").write_text("untracked\n", encoding="utf-8")
    assert git_properties(source, environ=_NO_GIT_VARIABLES)[PROP_DIRTY] == "True"


def test_a_folder_outside_any_repository_runs_no_git_and_records_nothing(tmp_path: Path) -> None:
    runner = Recorder()
    (tmp_path / "project").mkdir()

    assert git_properties(tmp_path / "project", environ=_NO_GIT_VARIABLES, run=runner) == {}
    assert runner.calls == []


def test_two_git_processes_at_most_and_one_when_the_url_is_given(tmp_path: Path) -> None:
    _repository(tmp_path / "project")
    runner = Recorder()

    git_properties(tmp_path / "project", environ=_NO_GIT_VARIABLES, run=runner)
    assert [call[0] for call in runner.calls] == ["status", "ls-remote"]

    runner.calls.clear()
    given = {
        **_NO_GIT_VARIABLES,
        git_module.ENV_REPOSITORY_URI: "https://example.invalid/given.git",
    }
    properties = git_properties(tmp_path / "project", environ=given, run=runner)
    assert [call[0] for call in runner.calls] == ["status"]
    assert properties[PROP_REPOSITORY_URI] == "https://example.invalid/given.git"


def test_the_azureml_git_variables_override_what_git_says(tmp_path: Path) -> None:
    _repository(tmp_path / "project")
    environ = {
        **_NO_GIT_VARIABLES,
        git_module.ENV_BRANCH: "release",
        git_module.ENV_COMMIT: "abc123",
        git_module.ENV_DIRTY: "true",
        git_module.ENV_BUILD_ID: "build-7",
    }

    properties = git_properties(tmp_path / "project", environ=environ)

    assert properties[PROP_BRANCH] == "release"
    assert properties[PROP_COMMIT] == "abc123"
    assert properties[PROP_DIRTY] == "True"
    assert properties[PROP_BUILD_ID] == "build-7"


def test_a_detached_head_records_the_commit_but_no_branch(tmp_path: Path) -> None:
    commit = _repository(tmp_path / "project")
    _git(tmp_path / "project", "checkout", "-q", "--detach")

    properties = git_properties(tmp_path / "project", environ=_NO_GIT_VARIABLES)

    assert properties[PROP_COMMIT] == commit
    assert PROP_BRANCH not in properties


def test_a_repository_without_a_remote_or_a_commit_records_what_there_is(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _git(tmp_path / "empty", "init", "-q", "-b", "main")

    properties = git_properties(tmp_path / "empty", environ=_NO_GIT_VARIABLES)

    assert properties == {PROP_BRANCH: "main", PROP_DIRTY: "False"}


@pytest.mark.parametrize(
    "url",
    [
        "https://mytoken@dev.azure.com/org/project/_git/repo",
        "https://dev.azure.com/mytoken@org/project/_git/repo",
        "http://user:secret@example.invalid/repo.git",
    ],
)
def test_a_url_carrying_a_credential_is_never_recorded(tmp_path: Path, url: str) -> None:
    _repository(tmp_path / "project", url=url)

    properties = git_properties(tmp_path / "project", environ=_NO_GIT_VARIABLES)

    assert properties == {}  # nor the branch, commit and changes that go with it


def test_a_git_that_fails_or_hangs_leaves_the_details_unknown(tmp_path: Path) -> None:
    _repository(tmp_path / "project")
    asked: list[list[str]] = []

    def failing(arguments: list[str], folder: Path) -> str | None:
        asked.append(arguments)
        return None  # what run_git answers for a failure or a time-out

    assert git_properties(tmp_path / "project", environ=_NO_GIT_VARIABLES, run=failing) == {}
    assert [call[0] for call in asked] == ["status", "rev-parse", "symbolic-ref", "ls-remote"]


def test_a_status_that_fails_still_records_the_branch_and_commit(tmp_path: Path) -> None:
    commit = _repository(tmp_path / "project")

    def status_fails(arguments: list[str], folder: Path) -> str | None:
        if arguments[0] == "status":
            return None  # e.g. past its time-out on a huge untracked tree
        return git_module.run_git(arguments, folder)

    properties = git_properties(tmp_path / "project", environ=_NO_GIT_VARIABLES, run=status_fails)

    assert properties == {PROP_REPOSITORY_URI: URL, PROP_BRANCH: "main", PROP_COMMIT: commit}


def test_run_git_never_waits_past_its_bound_nor_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        seen.update(kwargs, command=command)
        raise subprocess.TimeoutExpired(command, git_module.GIT_SECONDS)

    monkeypatch.setattr(git_module.subprocess, "run", fake_run)

    assert git_module.run_git(["status"], tmp_path) is None
    assert seen["timeout"] == git_module.GIT_SECONDS
    assert seen["stdin"] == subprocess.DEVNULL
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["GIT_TERMINAL_PROMPT"] == "0"


# -- azure-ai-ml's own reading -------------------------------------------------------------------


def test_azure_ai_mls_own_git_reading_is_skipped_only_inside_mlboots_submit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("azure.ai.ml", reason="the v2 extra (mlboot[v2]) is not installed")
    from azure.ai.ml.operations import _job_operations  # noqa: PLC0415  (after importorskip)

    commit = _repository(tmp_path / "cwd")
    monkeypatch.chdir(tmp_path / "cwd")
    for name in list(os.environ):
        if name.startswith("AZUREML_GIT_"):
            monkeypatch.delenv(name)
    git_module.install_git_hook()
    git_module.install_git_hook()  # once per process, however often asked

    outside = _job_operations.get_git_properties()  # type: ignore[attr-defined]
    with git_module.set_by_mlboot():
        inside = _job_operations.get_git_properties()  # type: ignore[attr-defined]
    after = _job_operations.get_git_properties()  # type: ignore[attr-defined]

    assert outside[PROP_COMMIT] == commit  # a user's own jobs.create_or_update is unchanged
    assert inside == {}
    assert after == outside
