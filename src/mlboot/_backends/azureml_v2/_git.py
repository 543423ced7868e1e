"""The git details of a v2 job: read from its source folder, as on azureml-core.

azure-ai-ml's ``jobs.create_or_update`` records them itself (``get_git_properties``), but from
the process's working directory, whatever the job's code folder is, and in five ``git``
processes.  mlboot reads them from the source folder instead, in at most two, and sets them on
the job; :func:`install_git_hook` makes azure-ai-ml's own reading a no-op for mlboot's submits
only (a user's own ``jobs.create_or_update`` in the same process is unchanged).

The properties and their meaning are azure-ai-ml's (``GitProperties``): the repository URL, the
branch, the commit, whether the folder has changes (``git status --porcelain`` non-empty), and
the build id and URL, each overridable by its ``AZUREML_GIT_*`` variable.  A repository URL that
carries a credential is dropped with the branch, commit and dirty flag, as azure-ai-ml does.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

# azure-ai-ml's names (azure.ai.ml.constants._common.GitProperties), repeated so that reading
# them needs no SDK import.
ENV_REPOSITORY_URI = "AZUREML_GIT_REPOSITORY_URI"
ENV_BRANCH = "AZUREML_GIT_BRANCH"
ENV_COMMIT = "AZUREML_GIT_COMMIT"
ENV_DIRTY = "AZUREML_GIT_DIRTY"
ENV_BUILD_ID = "AZUREML_GIT_BUILD_ID"
ENV_BUILD_URI = "AZUREML_GIT_BUILD_URI"
PROP_REPOSITORY_URI = "mlflow.source.git.repoURL"
PROP_BRANCH = "mlflow.source.git.branch"
PROP_COMMIT = "mlflow.source.git.commit"
PROP_DIRTY = "azureml.git.dirty"
PROP_BUILD_ID = "azureml.git.build_id"
PROP_BUILD_URI = "azureml.git.build_uri"

GIT_SECONDS = 30.0
"""How long one ``git`` process may take before its answer counts as unknown."""

# A user name or token before the host of an http(s) URL (azure-ai-ml's has_pat_token, for
# http too): such a URL is never recorded.
_CREDENTIAL_IN_URL = re.compile(r"^https?://(?:[^/@]+/)?[^/@]+@", re.IGNORECASE)

Runner = Callable[[list[str], Path], "str | None"]
"""Runs ``git`` with the given arguments in a folder; its output, or ``None`` if it failed."""


def run_git(arguments: list[str], folder: Path) -> str | None:
    """``git <arguments>`` in ``folder``: its standard output, or ``None`` on any failure.

    Never prompts (no terminal, ``GIT_TERMINAL_PROMPT=0``) and never waits longer than
    :data:`GIT_SECONDS`.
    """
    try:
        done = subprocess.run(  # noqa: S603  (git, fixed arguments; no shell)
            ["git", *arguments],  # noqa: S607  (git from the PATH, as azure-ai-ml runs it)
            cwd=folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_SECONDS,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")


def _in_repository(folder: Path, environ: Mapping[str, str]) -> bool:
    """Whether git could find a repository for ``folder`` (a ``.git`` in it or above it)."""
    if environ.get("GIT_DIR"):
        return True  # git is told where the repository is
    current = folder.resolve()
    return any((candidate / ".git").exists() for candidate in (current, *current.parents))


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


def _flag(value: str | None) -> str | None:
    if value is None:
        return None
    return str(value.strip().lower() in {"true", "1"})


def git_properties(
    folder: Path,
    *,
    environ: Mapping[str, str] | None = None,
    run: Runner = run_git,
) -> dict[str, str]:
    """The job properties describing ``folder``'s git state (empty outside a repository)."""
    env = os.environ if environ is None else environ
    url = env.get(ENV_REPOSITORY_URI)
    branch = env.get(ENV_BRANCH)
    commit = env.get(ENV_COMMIT)
    dirty = env.get(ENV_DIRTY)
    if _in_repository(folder, env):
        # One status for the branch, the commit and the changes under the folder.
        status = run(["status", "--porcelain=v2", "--branch", "--", "."], folder)
        if status is not None:
            headers = dict(
                line[2:].split(" ", 1)
                for line in status.splitlines()
                if line.startswith("# ") and " " in line[2:]
            )
            found_commit = headers.get("branch.oid", "")
            found_branch = headers.get("branch.head", "")
            commit = commit or (None if found_commit.startswith("(") else found_commit)
            branch = branch or (None if found_branch.startswith("(") else found_branch)
            changed = any(line and not line.startswith("#") for line in status.splitlines())
            dirty = dirty or str(changed)
        else:
            # A status that failed or ran out of time (a huge untracked tree): the branch and
            # commit from git's cheap reads, as azure-ai-ml has them; the changes stay unknown.
            commit = commit or run(["rev-parse", "HEAD"], folder)
            branch = branch or run(["symbolic-ref", "--short", "HEAD"], folder)
        if not url:
            url = run(["ls-remote", "--get-url"], folder)
    properties = {
        PROP_REPOSITORY_URI: _text(url),
        PROP_BRANCH: _text(branch),
        PROP_COMMIT: _text(commit),
        PROP_DIRTY: _flag(dirty),
        PROP_BUILD_ID: _text(env.get(ENV_BUILD_ID)),
        PROP_BUILD_URI: _text(env.get(ENV_BUILD_URI)),
    }
    recorded_url = properties[PROP_REPOSITORY_URI]
    if recorded_url is not None and _CREDENTIAL_IN_URL.match(recorded_url):
        for name in (PROP_REPOSITORY_URI, PROP_BRANCH, PROP_COMMIT, PROP_DIRTY):
            properties[name] = None
    return {name: value for name, value in properties.items() if value is not None}


# -- azure-ai-ml's own reading, off for mlboot's submits ---------------------------------------

_set_by_mlboot: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "mlboot_git_properties_set", default=False
)
_hook_lock = threading.Lock()
_hook_installed = False


@contextlib.contextmanager
def set_by_mlboot() -> Iterator[None]:
    """Within the block, azure-ai-ml's job submission reads no git details of its own."""
    token = _set_by_mlboot.set(True)
    try:
        yield
    finally:
        _set_by_mlboot.reset(token)


def install_git_hook() -> None:
    """Wrap azure-ai-ml's ``get_git_properties`` so that it is skipped inside :func:`set_by_mlboot`.

    Installed once per process; outside the block it is azure-ai-ml's own function.
    """
    global _hook_installed  # noqa: PLW0603  (one installation per process)
    with _hook_lock:
        if _hook_installed:
            return
        from azure.ai.ml.operations import _job_operations  # noqa: PLC0415  (no public name)

        # The module's imported name, which jobs.create_or_update calls (not re-exported).
        original: Callable[..., dict[str, str]] | None = getattr(
            _job_operations, "get_git_properties", None
        )
        if original is None:  # pragma: no cover  (an azure-ai-ml that reads git elsewhere)
            _hook_installed = True  # its own reading stays; the job carries mlboot's as well
            return
        sdk_reading: Callable[..., dict[str, str]] = original

        def get_git_properties(*args: Any, **kwargs: Any) -> dict[str, str]:
            if _set_by_mlboot.get():
                return {}  # the job already carries its source folder's details
            return sdk_reading(*args, **kwargs)

        _job_operations.get_git_properties = get_git_properties  # type: ignore[attr-defined]  # the hook
        _hook_installed = True
